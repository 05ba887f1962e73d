"""WorkerVecEnv: N matches split across W worker processes, one BrawlVecEnv each.

Design
------
- Rows ``0..N-1`` are split into W contiguous slices as evenly as possible (the first
  ``N % W`` workers get one row more). Worker w builds its own
  :class:`~environment.envs.BrawlVecEnv` over its slice with ``make_slice(first, n_rows)``
  and steps it; the main process is the SB3 ``VecEnv`` the learner sees.
- Observations (N, 64) float32, actions (N, 10) bool, rewards (N,) float32 and dones (N,)
  bool live in shared memory (``multiprocessing`` RawArrays seen as NumPy arrays; every
  worker writes only its own rows). A step costs one tiny command message per worker and
  no array pickling: the per-step payload grows with N, the messages do not.
- The pipes carry only commands (step, reset, attribute and method calls), their small
  replies, and the info dicts of the rows whose match ended in that step (one per ~2700
  frames per row), forwarded unchanged from the worker's BrawlVecEnv
  (``terminal_observation``, ``TimeLimit.truncated``, ``episode``, ``reward_terms``).
- Actions are validated in the main process (:func:`~environment.envs.validate_actions`)
  before they are written, so a bad action raises there as with BrawlVecEnv.
- Errors: an exception in a worker is sent back as its traceback text and raised in the
  main process as a RuntimeError naming the worker (after every other worker's reply of
  that command was read, so the pipes stay in step). A worker that dies is noticed at
  once (its process sentinel is waited on with the pipe) and raises; ``reply_timeout``
  optionally bounds the wait for a live but stuck worker.
- Shutdown: :meth:`WorkerVecEnv.close` (idempotent) asks every worker to stop, joins it,
  and terminates/kills one that does not stop in time; a ``weakref.finalize`` hook does the
  same when the object is garbage-collected or at interpreter exit. Workers are daemonic
  and ignore SIGINT (Ctrl-C reaches the main process, which then closes them). The shared
  arrays are anonymous mappings: nothing named is left to unlink.

Seeding rule (:meth:`WorkerVecEnv.for_scripted_opponents`): the worker whose slice starts
at row ``first`` builds ``BrawlVecEnv(n_rows, seed=seed + first)``, so match i is seeded
``seed + i`` exactly as in one ``BrawlVecEnv(N, seed=seed)``. With ``seed=None`` the
match streams are set to ``first + local row`` (BrawlVecEnv's base 0) and the rest is
unseeded, as in one BrawlVecEnv. ``seed(s)`` before ``reset()`` reseeds match i with
``s + i`` in both. What differs from one BrawlVecEnv: each worker draws the opponent of a
new match from its own random stream (seeded ``seed + first``), and opponent agents are
built per worker (seeded from ``seed + first``): with more than one opponent in the mix,
or opponents that use randomness, the draws differ from a single BrawlVecEnv's (runs still
repeat exactly for the same N, W and seed).

Limitations: opponents must be buildable inside the worker from picklable parts (registry
names, agent classes or picklable factories); the trainer's in-memory self-play snapshot
agents (``SelfPlayHandler`` and its cache, PFSP weights, ``venv.core``) live in the main
process and are not supported. ``get_state()`` returns one BrawlVecEnv state per worker,
so it restores only onto the same N and W. Each worker is a full Python process importing
torch (start-up takes seconds; memory grows by about one interpreter per worker), and on
a machine with few cores the workers compete with the learner's own threads.
"""

from __future__ import annotations

import bisect
import contextlib
import ctypes
import functools
import multiprocessing as mp
import signal
import traceback
import weakref
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import CloudpickleWrapper, VecEnv, VecEnvIndices

from environment import params as P
from environment.envs import BrawlVecEnv, validate_actions
from environment.self_play import OpponentsCfg
from environment.state import seed_streams

OBS_SIZE = 64
JOIN_TIMEOUT_S = 5.0  # how long close() waits for a worker before terminating it


# ==================================================================================
# Rows and shared arrays
# ==================================================================================
def split_rows(n_envs: int, workers: int) -> list[tuple[int, int]]:
    """``(first, n_rows)`` of each worker: contiguous, sizes differing by at most one."""
    if isinstance(n_envs, bool) or not isinstance(n_envs, (int, np.integer)) or n_envs <= 0:
        raise ValueError(f"n_envs must be a positive integer, got {n_envs!r}")
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if workers > n_envs:
        raise ValueError(f"workers ({workers}) must not exceed n_envs ({n_envs}): every worker needs a row")
    base, extra = divmod(int(n_envs), int(workers))
    sizes = [base + (w < extra) for w in range(int(workers))]
    firsts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist()
    return list(zip(firsts, sizes, strict=True))


class SharedArrays:
    """The step's arrays in shared memory: ``obs``, ``actions``, ``reward``, ``done``."""

    SPECS = {
        "obs": (ctypes.c_float, np.float32, (OBS_SIZE,)),
        "actions": (ctypes.c_uint8, np.bool_, (P.N_KEYS,)),
        "reward": (ctypes.c_float, np.float32, ()),
        "done": (ctypes.c_uint8, np.bool_, ()),
    }

    def __init__(self, ctx, n: int):
        self.n = n
        self.raw = {
            name: ctx.RawArray(ctype, n * int(np.prod(shape))) for name, (ctype, _, shape) in self.SPECS.items()
        }
        self._views()

    def _views(self) -> None:
        for name, (_, dtype, shape) in self.SPECS.items():
            setattr(self, name, np.frombuffer(self.raw[name], dtype=dtype).reshape(self.n, *shape))

    def __getstate__(self) -> dict:  # views are rebuilt in the worker
        return {"n": self.n, "raw": self.raw}

    def __setstate__(self, state: dict) -> None:
        self.n, self.raw = state["n"], state["raw"]
        self._views()


# ==================================================================================
# The worker process
# ==================================================================================
class _Slice:
    """A worker's BrawlVecEnv and its rows of the shared arrays."""

    def __init__(self, env: VecEnv, arrays: SharedArrays, first: int, n_rows: int):
        rows = slice(first, first + n_rows)
        self.env = env
        self.obs, self.actions = arrays.obs[rows], arrays.actions[rows]
        self.reward, self.done = arrays.reward[rows], arrays.done[rows]

    def step(self, _) -> dict[int, dict]:
        self.env.step_async(self.actions.copy())
        obs, reward, done, infos = self.env.step_wait()
        self.obs[:], self.reward[:], self.done[:] = obs, reward, done
        return {row: info for row, info in enumerate(infos) if info}

    def reset(self, seed: int | None) -> None:
        if seed is not None:
            self.env.seed(seed)
        self.obs[:] = self.env.reset()

    def get_attr(self, name: str) -> Any:
        return getattr(self.env, name)

    def has_attr(self, name: str) -> bool:
        return hasattr(self.env, name)

    def set_attr(self, args: tuple[str, Any]) -> None:
        setattr(self.env, args[0], args[1])

    def env_method(self, args: tuple[str, tuple, dict, list[int]]) -> list[Any]:
        name, method_args, method_kwargs, rows = args
        return self.env.env_method(name, *method_args, indices=rows, **method_kwargs)

    def call(self, args: tuple[str, tuple, dict]) -> Any:
        name, method_args, method_kwargs = args
        return getattr(self.env, name)(*method_args, **method_kwargs)


def _build_slice(make_slice: CloudpickleWrapper, arrays: SharedArrays, first: int, n_rows: int) -> _Slice:
    env = make_slice.var(first, n_rows)
    if not isinstance(env, VecEnv) or env.num_envs != n_rows:
        got = f"{type(env).__name__} with num_envs {getattr(env, 'num_envs', '?')}"
        raise TypeError(f"make_slice({first}, {n_rows}) must return a VecEnv with num_envs {n_rows}, got {got}")
    return _Slice(env, arrays, first, n_rows)


def _worker_main(
    conn: Connection, make_slice: CloudpickleWrapper, arrays: SharedArrays, first: int, n_rows: int
) -> None:
    """A worker's loop: build the slice, then answer commands until "close" or EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    try:
        work = _build_slice(make_slice, arrays, first, n_rows)
        conn.send(("ok", (work.env.observation_space, work.env.action_space)))
    except Exception:
        conn.send(("error", traceback.format_exc()))
        return
    while True:
        try:
            cmd, data = conn.recv()
        except (EOFError, OSError):  # the main process is gone
            break
        if cmd == "close" or not _answer(conn, work, cmd, data):
            break
    work.env.close()


def _answer(conn: Connection, work: _Slice, cmd: str, data: Any) -> bool:
    """Run one command and send its reply; False when the main process is gone."""
    try:
        reply = ("ok", getattr(work, cmd)(data))
    except Exception:
        reply = ("error", traceback.format_exc())
    try:
        conn.send(reply)
    except (BrokenPipeError, ConnectionResetError):
        return False
    except Exception:  # the reply could not be pickled
        conn.send(("error", traceback.format_exc()))
    return True


def _shutdown(conns: list[Connection], processes: list) -> None:
    """Stop the workers (close message, join, then terminate/kill) and close the pipes."""
    for conn in conns:
        with contextlib.suppress(OSError, ValueError):  # a dead worker or an already closed pipe
            conn.send(("close", None))
    for process in processes:
        process.join(JOIN_TIMEOUT_S)
        if process.is_alive():
            process.terminate()
            process.join(1.0)
        if process.is_alive():
            process.kill()
            process.join()
    for conn in conns:
        conn.close()


# ==================================================================================
# The VecEnv
# ==================================================================================
class WorkerVecEnv(VecEnv):
    """N matches in W worker processes, each stepping a BrawlVecEnv over a contiguous slice.

    :param n_envs: number of matches N
    :param workers: number of worker processes W (1 <= W <= N)
    :param make_slice: picklable ``(first_row, n_rows) -> BrawlVecEnv``, called in each worker
        (a module-level function or ``functools.partial``; lambdas work too: it is sent with
        cloudpickle)
    :param start_method: multiprocessing start method (default "forkserver" where available,
        else "spawn"; "fork" is unsafe once torch threads exist)
    :param reply_timeout: seconds to wait for a live worker's reply before raising (None: no
        limit; a dead worker is always detected at once)
    """

    def __init__(
        self,
        n_envs: int,
        workers: int,
        make_slice: Callable[[int, int], VecEnv],
        start_method: str | None = None,
        reply_timeout: float | None = None,
    ):
        self.slices = split_rows(n_envs, workers)
        self.closed, self.waiting = False, False
        self.reply_timeout = reply_timeout
        ctx = _context(start_method)
        self.arrays = SharedArrays(ctx, int(n_envs))
        self._conns: list[Connection] = []
        self.processes: list = []
        self._finalizer = weakref.finalize(self, _shutdown, self._conns, self.processes)
        try:
            wrapped = CloudpickleWrapper(make_slice)
            for w, (first, n_rows) in enumerate(self.slices):
                self._start_worker(ctx, w, wrapped, first, n_rows)
            spaces = self._gather(range(len(self.slices)))
        except BaseException:
            self.close()
            raise
        super().__init__(int(n_envs), *spaces[0])

    @classmethod
    def for_scripted_opponents(
        cls,
        n_envs: int,
        workers: int,
        opponents: dict[str, tuple[float, Any]],
        reward_manager_factory: Callable[[], Any] | None = None,
        max_timesteps: int = P.MATCH_FRAMES,
        seed: int | None = None,
        action_repeat: int = 1,
        scattered_starts: float = 0.0,
        **kwargs,
    ) -> WorkerVecEnv:
        """Workers each build ``BrawlVecEnv(n_rows, OpponentsCfg(opponents), ..., seed=seed + first)``.

        ``opponents`` is ``{name: (weight, entry)}`` with registry names (or other picklable
        entries) as entries; it is checked here first. See the module doc for the seeding rule.
        Other keyword arguments go to the constructor.
        """
        OpponentsCfg(dict(opponents))  # unknown names and bad weights raise here, not in a worker
        make = functools.partial(
            scripted_slice,
            opponents=dict(opponents),
            max_timesteps=max_timesteps,
            seed=seed,
            reward_manager_factory=reward_manager_factory,
            action_repeat=action_repeat,
            scattered_starts=scattered_starts,
        )
        return cls(n_envs, workers, make, **kwargs)

    # --- workers and messages ----------------------------------------------------------
    def _start_worker(self, ctx, w: int, make_slice: CloudpickleWrapper, first: int, n_rows: int) -> None:
        conn, child = ctx.Pipe()
        process = ctx.Process(
            target=_worker_main,
            args=(child, make_slice, self.arrays, first, n_rows),
            name=f"WorkerVecEnv-{w}",
            daemon=True,
        )
        process.start()
        child.close()  # the worker holds the only other end: its death reads as EOF
        self._conns.append(conn)
        self.processes.append(process)

    def _send(self, w: int, cmd: str, data: Any = None) -> None:
        if self.closed:
            raise RuntimeError("WorkerVecEnv is closed")
        try:
            self._conns[w].send((cmd, data))
        except (BrokenPipeError, ConnectionResetError, EOFError) as exc:
            raise self._dead(w) from exc

    def _recv(self, w: int) -> tuple[str, Any]:
        conn, process = self._conns[w], self.processes[w]
        ready = wait([conn, process.sentinel], self.reply_timeout)
        if not ready:
            raise RuntimeError(
                f"WorkerVecEnv worker {w} (pid {process.pid}) did not answer within {self.reply_timeout} s"
            )
        if conn not in ready and not conn.poll():
            raise self._dead(w)
        try:
            return conn.recv()
        except (EOFError, ConnectionResetError) as exc:
            raise self._dead(w) from exc

    def _dead(self, w: int) -> RuntimeError:
        process = self.processes[w]
        process.join(0.1)
        first, n_rows = self.slices[w]
        return RuntimeError(
            f"WorkerVecEnv worker {w} (pid {process.pid}, rows {first}..{first + n_rows - 1}) "
            f"died (exit code {process.exitcode}); close() this env and build a new one"
        )

    def _gather(self, workers) -> list[Any]:
        """Every listed worker's reply, in order; the first error is raised after all were read."""
        results, errors = [], []
        for w in workers:
            status, payload = self._recv(w)
            if status == "error":
                errors.append(
                    f"WorkerVecEnv worker {w} (rows {self.slices[w][0]}..{sum(self.slices[w]) - 1}) raised:\n{payload}"
                )
            results.append(payload)
        if errors:
            raise RuntimeError("\n".join(errors))
        return results

    def _command(self, cmd: str, data_for: Callable[[int], Any], workers: Sequence[int] | None = None) -> list[Any]:
        """Send ``cmd`` with ``data_for(w)`` to the listed workers (all by default); their replies."""
        workers = range(len(self.slices)) if workers is None else workers
        for w in workers:
            self._send(w, cmd, data_for(w))
        return self._gather(workers)

    def call_workers(self, method_name: str, *args, **kwargs) -> list[Any]:
        """``method_name(*args, **kwargs)`` called once on each worker's BrawlVecEnv; the results."""
        return self._command("call", lambda w: (method_name, args, kwargs))

    def set_opponent_weights(self, weights: dict[str, float]) -> None:
        """New sampling weights for some opponents (by name), in every worker."""
        self.call_workers("set_opponent_weights", weights)

    def snapshots_in_use(self) -> set[str]:
        """Always empty: workers play scripted opponents only."""
        return set()

    # --- the VecEnv API ------------------------------------------------------------------
    def reset(self) -> np.ndarray:
        self._check_idle("reset()")
        seeds = self._seeds
        self._command("reset", lambda w: seeds[self.slices[w][0]])
        self._reset_seeds()
        self._reset_options()
        return self.arrays.obs.copy()

    def step_async(self, actions: np.ndarray) -> None:
        self._check_idle("step_async()")
        self.arrays.actions[:] = validate_actions(actions, self.num_envs)
        for w in range(len(self.slices)):
            self._send(w, "step")
        self.waiting = True

    def step_wait(self):
        if not self.waiting:
            raise RuntimeError("step_wait() called without step_async()")
        self.waiting = False
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for (first, _), ended in zip(self.slices, self._gather(range(len(self.slices))), strict=True):
            for row, info in ended.items():
                infos[first + row] = info
        a = self.arrays
        return a.obs.copy(), a.reward.copy(), a.done.copy(), infos

    def _check_idle(self, what: str) -> None:
        if self.waiting:
            raise RuntimeError(f"{what} while a step is in flight: call step_wait() first")

    def close(self) -> None:
        """Stop the workers and free the pipes; safe to call more than once."""
        if self.closed:
            return
        self.closed = True
        self.waiting = False
        self._finalizer()

    def get_state(self) -> list[dict]:
        """Each worker's ``BrawlVecEnv.get_state()``, in worker order (restore with the same N and W)."""
        self._check_idle("get_state()")
        return self.call_workers("get_state")

    def set_state(self, states: Sequence[dict]) -> None:
        self._check_idle("set_state()")
        if len(states) != len(self.slices):
            raise ValueError(f"set_state() needs one state per worker ({len(self.slices)}), got {len(states)}")
        self._command("call", lambda w: ("set_state", (states[w],), {}))

    # --- attributes and methods, forwarded by row ------------------------------------------
    def _by_worker(self, indices: VecEnvIndices) -> dict[int, list[int]]:
        """``{worker: [local rows]}`` for the given rows, workers in order."""
        grouped: dict[int, list[int]] = {}
        firsts = [first for first, _ in self.slices]
        for row in map(int, self._get_indices(indices)):
            if not 0 <= row < self.num_envs:
                raise IndexError(f"env index {row} out of range for {self.num_envs} envs")
            w = bisect.bisect_right(firsts, row) - 1
            grouped.setdefault(w, []).append(row - self.slices[w][0])
        return grouped

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        grouped = self._by_worker(indices)
        values = self._command("get_attr", lambda w: attr_name, list(grouped))
        return [value for value, rows in zip(values, grouped.values(), strict=True) for _ in rows]

    def has_attr(self, attr_name: str) -> bool:
        """Whether every worker's BrawlVecEnv has the attribute."""
        return all(self._command("has_attr", lambda w: attr_name))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self._command("set_attr", lambda w: (attr_name, value), list(self._by_worker(indices)))

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        """The BrawlVecEnv's ``env_method`` in each worker owning some of the rows (local indices)."""
        grouped = self._by_worker(indices)
        results = self._command(
            "env_method", lambda w: (method_name, method_args, method_kwargs, grouped[w]), list(grouped)
        )
        return [value for values in results for value in values]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> list[np.ndarray]:
        """Frames of every match, rendered in the workers (slow for large N)."""
        return [image for images in self.call_workers("get_images") for image in images]


def _context(start_method: str | None):
    """The multiprocessing context; a forkserver preloads this module (torch included) once."""
    if start_method is None:
        start_method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(start_method)
    if start_method == "forkserver":
        ctx.set_forkserver_preload([__name__])  # no effect once the forkserver runs
    return ctx


def scripted_slice(  # the parameters WorkerVecEnv.for_scripted_opponents forwards to each worker
    first: int,
    n_rows: int,
    *,
    opponents: dict[str, tuple[float, Any]],
    reward_manager_factory: Callable[[], Any] | None = None,
    max_timesteps: int = P.MATCH_FRAMES,
    seed: int | None = None,
    action_repeat: int = 1,
    scattered_starts: float = 0.0,
) -> BrawlVecEnv:
    """The BrawlVecEnv of rows ``first .. first + n_rows - 1`` (seeding rule: module doc)."""
    env = BrawlVecEnv(
        n_rows,
        opponents=OpponentsCfg(dict(opponents)),
        reward_manager=reward_manager_factory() if reward_manager_factory else None,
        max_timesteps=max_timesteps,
        seed=None if seed is None else seed + first,
        action_repeat=action_repeat,
        scattered_starts=scattered_starts,
    )
    if seed is None:  # BrawlVecEnv(seed=None) seeds match i's stream with i: keep that across slices
        env.core.engine.state.rng[:] = seed_streams(first + np.arange(n_rows))
    return env
