"""A trained agent on disk and in play: checkpoint pairs, weights-only loading, ``TransformerStrategyAgent``.

A checkpoint is a pair (DESIGN.md §6): ``rl_model_<N>_steps.zip`` in SB3's format plus our
plain-JSON agent config member, and ``rl_model_<N>_steps_transformer_encoder.pth`` (the strategy
encoder's state dict, for transformer agents). Students load each other's checkpoints and pickle
executes code, so every load here goes through ``torch.load(..., weights_only=True)``; SB3's
``PPO.load`` / ``RecurrentPPO.load`` unpickle the zip's ``"data"`` entry with cloudpickle and are
never called: :func:`set_parameters_safely` loads into a freshly built model instead.

This module does not know the network architecture: that is ``user/train_agent.py``'s. Loading a
playable agent from a file takes the trainer's policy builder (:func:`load_agent`); the trainer's
own ``load_agent`` passes it.
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn as nn
from gymnasium import spaces

from environment import params as P
from environment.agents import Agent, check_observation_batch
from environment.checkpoints import (
    MAX_WEIGHTS_BYTES,
    CheckpointError,
    CheckpointManifest,
    CheckpointNotFoundError,
    CheckpointWarning,
    CorruptCheckpointError,
    StrPath,
    atomic_path,
    open_zip,
    read_regular_file,
    read_zip_json_member,
    require_file,
)
from environment.macros import macro_keys
from environment.observation import OBS_HALF, OBS_SIZE
from environment.self_play import snapshot_steps
from user.config_tools import ConfigError, load_config_json, with_encoder_of_its_time

CONFIG_MEMBER = "brawl_agent_config.json"  # plain-JSON member we add to every checkpoint zip
ENCODER_SUFFIX = "_transformer_encoder.pth"
# Entries of an SB3 zip that hold torch variables rather than module/optimizer state dicts.
SB3_VARIABLE_ENTRIES = frozenset({"pytorch_variables.pth", "tensors.pth"})

# (agent config, device) -> a policy of that architecture with fresh weights: the trainer's build_policy.
PolicyBuilder = Callable[[dict, "torch.device | str"], Any]


# ==================================================================================
# === Weights-only loading ===
# ==================================================================================
def _weights_only_load(source: StrPath | io.BytesIO, label: str, map_location: Any) -> Any:
    """``torch.load`` with ``weights_only=True`` (explicit, so no environment variable can turn it off)."""
    try:
        return torch.load(source, map_location=map_location, weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{label} is not a weights-only checkpoint or is corrupt: {type(e).__name__}: {e}") from e


def load_state_dict_file(path: StrPath, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a ``torch.save``-d state dict (e.g. ``*_transformer_encoder.pth``) without running code.

    Only ``torch.load(..., weights_only=True)`` is used: tensors, primitive containers and the few
    classes torch allow-lists. A pickle that names any other callable is rejected.

    :raises CheckpointNotFoundError: the file does not exist (the message lists similar names).
    :raises CheckpointError: not a regular file, over ``MAX_WEIGHTS_BYTES``, not a weights-only
        pickle, corrupt, or not a dict.
    """
    p = Path(path)
    obj = _weights_only_load(io.BytesIO(read_regular_file(p, "weights file", MAX_WEIGHTS_BYTES)), str(p), map_location)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{p} holds a {type(obj).__name__}, expected a state dict")
    return obj


def _load_sb3_entries(
    path: StrPath, map_location: Any, max_entry_bytes: int | None
) -> tuple[list[str], dict[str, Any]]:
    """Names of all entries and the weights-only-loaded content of every ``.pth`` entry.

    Never reads the ``"data"`` entry (SB3 stores cloudpickled objects there). An entry whose
    declared size is over ``max_entry_bytes`` (default ``MAX_WEIGHTS_BYTES``) is refused unread.
    """
    max_entry_bytes = MAX_WEIGHTS_BYTES if max_entry_bytes is None else max_entry_bytes
    p, archive = open_zip(path)
    with archive:
        names = archive.namelist()
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise CheckpointError(f"{p} is ambiguous: duplicate zip entries {duplicates}")
        if "policy.pth" not in names:
            raise CheckpointError(f"{p} is not an SB3 model zip: no 'policy.pth' entry (entries: {names})")
        loaded = {}
        for info in archive.infolist():
            if not info.filename.lower().endswith(".pth"):
                continue
            label = f"{p} entry {info.filename!r}"
            if info.file_size > max_entry_bytes:
                raise CheckpointError(f"{label} is {info.file_size:,} bytes, over the {max_entry_bytes:,}-byte limit")
            try:
                buffer = io.BytesIO(archive.read(info))  # also checks the entry's CRC
            except (zipfile.BadZipFile, OSError, EOFError) as e:
                raise CheckpointError(f"{label} is corrupt: {e}") from e
            loaded[info.filename] = _weights_only_load(buffer, label, map_location)
    for name, obj in loaded.items():
        if name not in SB3_VARIABLE_ENTRIES and not isinstance(obj, dict):
            raise CheckpointError(f"{p} entry {name!r} holds a {type(obj).__name__}, expected a state dict")
    return names, loaded


def check_sb3_zip(path: StrPath, map_location: Any = "cpu", max_entry_bytes: int | None = None) -> list[str]:
    """Check that ``path`` is an SB3 model zip whose every ``.pth`` entry is a weights-only pickle.

    Run it before ``model.set_parameters(path)`` on a file from someone else. It checks: the file
    exists, is a zip, has no duplicate entry names, has ``policy.pth``, and that each ``.pth`` entry
    (each is what ``set_parameters`` would load) loads with ``torch.load(weights_only=True)`` from
    memory and is a dict (except ``pytorch_variables.pth``). The ``"data"`` entry is never read.

    :param max_entry_bytes: refuse larger ``.pth`` entries (they are read into memory); default
        ``environment.checkpoints.MAX_WEIGHTS_BYTES`` (1 GiB).
    :return: the zip's entry names.
    :raises CheckpointNotFoundError, CheckpointError: naming the file (and entry) and the problem.
    """
    names, _ = _load_sb3_entries(path, map_location, max_entry_bytes)
    return names


def load_sb3_params(path: StrPath, map_location: Any = "cpu", max_entry_bytes: int | None = None) -> dict[str, Any]:
    """The state dicts of an SB3 model zip, as ``{"policy": ..., "policy.optimizer": ...}``, loaded safely.

    Same checks as :func:`check_sb3_zip`; the result can be passed to ``model.set_parameters(params)``
    (``pytorch_variables.pth`` is left out, as ``set_parameters`` does).
    """
    _, loaded = _load_sb3_entries(path, map_location, max_entry_bytes)
    return {name[: -len(".pth")]: obj for name, obj in loaded.items() if name not in SB3_VARIABLE_ENTRIES}


class _SB3Model(Protocol):
    def get_parameters(self) -> dict[str, dict[str, Any]]: ...

    def set_parameters(self, load_path_or_dict: Any, exact_match: bool = ..., device: Any = ...) -> None: ...


def set_parameters_safely(model: _SB3Model, path: StrPath, exact_match: bool = True) -> None:
    """Load the weights of the SB3 zip ``path`` into an already built ``model`` (PPO, RecurrentPPO...).

    The file is read once, checked by :func:`load_sb3_params`, its entry names are checked against the
    model's (``model.get_parameters()``), and the checked tensors are handed to ``model.set_parameters``
    (so the file cannot change between the check and the load).

    :raises CheckpointError: unsafe or corrupt file, or weights that do not fit the model.
    """
    p = Path(path)
    params = load_sb3_params(p)
    expected = set(model.get_parameters())
    unexpected, missing = sorted(set(params) - expected), sorted(expected - set(params))
    if unexpected or (exact_match and missing):
        raise CheckpointError(f"{p} does not fit this model: unexpected entries {unexpected}, missing {missing}")
    try:
        model.set_parameters(params, exact_match=exact_match)
    except (ValueError, RuntimeError, KeyError) as e:
        raise CheckpointError(f"{p} does not fit this model: {e}") from e


# ==================================================================================
# === Checkpoint pairs ===
# ==================================================================================
def encoder_path_for(zip_path: Path | str) -> Path:
    zip_path = Path(zip_path)
    return zip_path.with_name(zip_path.name.removesuffix(".zip") + ENCODER_SUFFIX)


def strategy_encoder(policy) -> nn.Module | None:
    """The policy's transformer strategy encoder, or None for agent types without one."""
    return getattr(getattr(policy, "features_extractor", None), "encoder", None)


def save_checkpoint_pair(model, zip_path: Path, agent_config: dict) -> list[Path]:
    """Write ``<name>.zip`` (SB3 format + our config member) and ``<name>_transformer_encoder.pth``.

    Both are written atomically: a crash leaves the previous files intact.
    """
    zip_path = Path(zip_path)
    with atomic_path(zip_path) as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(CONFIG_MEMBER, json.dumps(agent_config, default=list))
    files = [zip_path]
    encoder = strategy_encoder(model.policy)
    if encoder is not None:
        encoder_file = encoder_path_for(zip_path)
        with atomic_path(encoder_file) as tmp:
            torch.save(encoder.state_dict(), tmp)
        files.append(encoder_file)
    return files


def read_agent_config(zip_path: Path, defaults: dict) -> dict:
    """The agent config stored in a checkpoint (plain JSON; nothing is unpickled) over ``defaults``.

    ``defaults`` (the trainer's shared agent config) fills keys that did not exist yet when an
    older checkpoint was written. A zip without our member falls back to its run's config.json.
    """
    require_file(zip_path, "checkpoint")  # not /dev/zero, a FIFO or a folder
    try:
        with zipfile.ZipFile(zip_path) as archive:
            has_member = CONFIG_MEMBER in archive.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise CheckpointError(f"{zip_path} is not a readable checkpoint zip: {exc}") from None
    if has_member:
        member = read_zip_json_member(zip_path, CONFIG_MEMBER)
    else:
        config_json = zip_path.parent / "config.json"
        if not config_json.exists():
            raise ConfigError(f"{zip_path} carries no agent config and {config_json} does not exist")
        member = load_config_json(config_json)["agent"]
    # Checkpoints from before the macro head have no action_head: they output ten keys.
    return {**defaults, "action_head": "keys", **with_encoder_of_its_time(member)}


def load_policy_weights(policy, zip_path: Path, device: torch.device | str = "cpu") -> None:
    """Load a checkpoint's policy (and encoder) weights, weights only; explains shape mismatches.

    The zip is read once, every ``.pth`` member checked and capped (:func:`load_sb3_params`)."""
    state = load_sb3_params(zip_path, map_location=device)["policy"]
    _load_matching(policy, state, zip_path)
    encoder_file = encoder_path_for(zip_path)
    encoder = strategy_encoder(policy)
    if encoder is None:
        return
    if not encoder_file.exists():
        raise CheckpointError(f"{zip_path}: its transformer encoder file {encoder_file} is missing")
    _load_matching(encoder, load_state_dict_file(encoder_file, map_location=device), encoder_file)


def _load_matching(module: nn.Module, state: dict, source: Path) -> None:
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or wrong:
        details = (
            wrong[:3] + [f"missing {missing[:3]}"] * bool(missing) + [f"unexpected {unexpected[:3]}"] * bool(unexpected)
        )
        raise CheckpointError(f"{source} was saved by a different architecture ({'; '.join(details)})")
    module.load_state_dict(state)


def resolve_checkpoint(path: Path | str, verify: bool = True) -> Path:
    """A checkpoint zip from a file path or a run folder (its newest valid checkpoint).

    With ``verify`` (the default) a checkpoint listed in its folder's ``manifest.json`` must match the
    recorded sizes and SHA-256: a run folder whose checkpoints all fail, or a named ``.zip`` that fails,
    is a :class:`CorruptCheckpointError`. ``verify=False`` (``--no-verify``) loads the newest anyway.
    """
    path = Path(path)
    if path.is_dir():
        return _newest_in_run_folder(path, verify)
    if not path.exists():
        hint = ""
        if path.parent.is_dir():
            near = sorted(p.name for p in path.parent.glob("*.zip"))[-5:]
            hint = f"; checkpoints there: {', '.join(near)}" if near else f"; {path.parent} holds no .zip files"
        raise CheckpointNotFoundError(f"checkpoint not found: {path}{hint}")
    require_file(path, "checkpoint")  # /dev/zero, a FIFO, a socket: refused before anything reads it
    if verify:
        _verify_named_checkpoint(path)
    return path


def _newest_in_run_folder(run_dir: Path, verify: bool) -> Path:
    zips = sorted(run_dir.glob("rl_model_*_steps.zip"), key=snapshot_steps)
    if not zips:
        raise CheckpointNotFoundError(f"no checkpoint (rl_model_<N>_steps.zip) in run folder {run_dir}")
    if not (run_dir / "manifest.json").exists() or not verify:
        return zips[-1]
    with warnings.catch_warnings(record=True) as skipped:
        warnings.simplefilter("always", CheckpointWarning)
        found = CheckpointManifest(run_dir).latest_valid()
    for warning in skipped:  # each newer checkpoint that failed, named with its reason
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if found is None:
        reasons = "; ".join(str(w.message) for w in skipped[-3:]) or "manifest.json lists none of them"
        raise CorruptCheckpointError(
            f"no checkpoint in {run_dir} matches manifest.json ({reasons}); pass --no-verify to load "
            f"the newest, {zips[-1].name}, anyway"
        )
    _, files = found
    return next(f for f in files if f.name.endswith(".zip"))


def _verify_named_checkpoint(zip_path: Path) -> None:
    """A .zip named directly is checked against the manifest beside it, when that lists its step."""
    if not (zip_path.parent / "manifest.json").exists():
        return
    manifest = CheckpointManifest(zip_path.parent)
    try:
        step = snapshot_steps(zip_path)
    except ValueError:  # renamed or copied out of its run: no manifest entry to check it against
        return
    if step not in manifest.steps():
        return
    try:
        manifest.verify(step)
    except CorruptCheckpointError as exc:
        raise CorruptCheckpointError(f"{exc}; pass --no-verify to load it anyway") from None


# ==================================================================================
# === The trained agent in play ===
# ==================================================================================
@dataclass
class _Plan:
    """One ``predict_batch`` call: its rows, which of them decide now, and their decided keys."""

    obs: np.ndarray
    starts: np.ndarray
    ids: np.ndarray
    deciding: np.ndarray
    decided: np.ndarray | None = None


@dataclass
class PolicyRequest:
    """What a policy step needs for the deciding rows of one agent."""

    obs: np.ndarray  # the policy's observations (with the history window)
    state: tuple[np.ndarray, np.ndarray] | None  # LSTM (h, c), (layers, n, hidden); None: no LSTM
    starts: np.ndarray
    ids: np.ndarray  # the rows' match ids


class TransformerStrategyAgent(Agent):
    """A trained policy playing as an environment Agent.

    (``user/submission_agent.py`` repeats its per-match memory and ``predict_batch`` on purpose: an
    export bundle runs without this package.)

    ``predict`` keeps its own LSTM state and opponent history; ``predict_batch``
    does the same per match (``env_ids``), vectorised. Build one from a checkpoint
    with :func:`load_agent` (the trainer's ``load_agent``), which reads weights only.

    :param policy: the policy to play (built by the trainer's ``build_policy``)
    :param agent_config: its full agent config (type, sizes, ``action_repeat``, ``action_head``)
    :param deterministic: take the most likely action instead of sampling
    """

    name = "transformer_strategy"

    def __init__(self, policy, agent_config: dict, device: torch.device | str = "cpu", deterministic: bool = True):
        super().__init__()
        self.device = torch.device(device)
        self.deterministic = deterministic
        self.agent_config = agent_config
        self.policy = policy
        self.policy.set_training_mode(False)
        self.initialized = True
        self._capacity = 0
        self._allocate(1)

    # --- per-match memory --------------------------------------------------------------
    @property
    def recurrent(self) -> bool:
        return self.agent_config["type"] != "ppo"

    @property
    def uses_history(self) -> bool:
        return self.agent_config["type"] == "transformer_strategy"

    def _allocate(self, capacity: int) -> None:
        a = self.agent_config
        old = [getattr(self, name, None) for name in ("_h", "_c", "_history", "_frames_held", "_held")]
        self._h = np.zeros((1, capacity, a["lstm_hidden_size"]), np.float32)
        self._c = np.zeros_like(self._h)
        self._history = np.zeros((capacity, a["sequence_length"], OBS_HALF), np.float32)
        # action_repeat: frames since the last decision, and the keys being held.
        self._frames_held = np.zeros(capacity, np.int64)
        self._held = np.zeros((capacity, P.N_KEYS), np.int8)
        if old[0] is not None:
            k = self._capacity
            self._h[:, :k], self._c[:, :k] = old[0], old[1]
            self._history[:k], self._frames_held[:k], self._held[:k] = old[2:]
        self._capacity = capacity

    def reset(self) -> None:
        self._h[:] = 0.0
        self._c[:] = 0.0
        self._history[:] = 0.0
        self._frames_held[:] = 0
        self._held[:] = 0
        self._single_started = False

    def predict(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, np.float32).reshape(1, OBS_SIZE)
        first = not getattr(self, "_single_started", False)
        self._single_started = True
        return self.predict_batch(obs, np.array([first]), np.array([0]))[0]

    def predict_batch(
        self, obs: np.ndarray, episode_start: np.ndarray, env_ids: np.ndarray | None = None
    ) -> np.ndarray:
        plan = self._plan(obs, episode_start, env_ids)
        if plan.deciding.any():
            request = self._request(plan)
            plan.decided = self._apply(request, *self._policy_step(request))
        return self._finish(plan)

    # --- one step in three phases, so that several agents can share the policy call -------------
    def batch_key(self) -> tuple | None:
        """Agents with equal keys can be stepped in one call (user/batched_play.py); None: alone."""
        if not hasattr(self, "_batch_key"):  # the architecture and play mode never change
            from user.batched_play import batch_key  # the stacked forward needs torch.func: loaded on use

            self._batch_key = batch_key(self)
        return self._batch_key

    @staticmethod
    def predict_together(agents, obs_list, starts_list, ids_list) -> list[np.ndarray]:
        """``predict_batch`` of several agents of one architecture (equal ``batch_key``), with one
        stacked policy call for all their deciding rows instead of one call per agent."""
        from user.batched_play import stacked_policy_step

        plans = [a._plan(o, s, i) for a, o, s, i in zip(agents, obs_list, starts_list, ids_list, strict=True)]
        deciding = [(a, p, a._request(p)) for a, p in zip(agents, plans, strict=True) if p.deciding.any()]
        if len(deciding) > 1:
            results = stacked_policy_step([a.policy for a, _, _ in deciding], [r for _, _, r in deciding])
        else:  # one agent deciding this frame: its own call
            results = [agent._policy_step(request) for agent, _, request in deciding]
        for (agent, plan, request), (actions, states) in zip(deciding, results, strict=True):
            plan.decided = agent._apply(request, actions, states)
        return [a._finish(p) for a, p in zip(agents, plans, strict=True)]

    def _plan(self, obs: np.ndarray, episode_start: np.ndarray, env_ids: np.ndarray | None) -> _Plan:
        """Which rows decide now: every frame, or with ``action_repeat`` on a match's first frame and
        every ``repeat`` frames after it, as in training (BrawlVecEnv(action_repeat=...))."""
        obs = check_observation_batch(obs)
        n = obs.shape[0]
        ids = np.arange(n) if env_ids is None else np.asarray(env_ids, np.intp)
        if n and ids.max() >= self._capacity:
            self._allocate(max(int(ids.max()) + 1, 2 * self._capacity))
        starts = np.asarray(episode_start, bool)
        repeat = self.agent_config["action_repeat"]
        if repeat == 1 or n == 0:
            return _Plan(obs, starts, ids, np.ones(n, bool))
        self._frames_held[ids[starts]] = 0
        return _Plan(obs, starts, ids, self._frames_held[ids] % repeat == 0)

    def _request(self, plan: _Plan) -> PolicyRequest:
        """The deciding rows' policy input: their history windows moved on, LSTM state (zeroed at starts)."""
        d = plan.deciding
        obs, starts, ids = plan.obs[d], plan.starts[d], plan.ids[d]
        state = None
        if self.recurrent:
            self._h[:, ids[starts]] = 0.0
            self._c[:, ids[starts]] = 0.0
            state = (self._h[:, ids], self._c[:, ids])
        return PolicyRequest(self._policy_obs(obs, ids, starts), state, starts, ids)

    def _policy_step(self, request: PolicyRequest) -> tuple[np.ndarray, tuple | None]:
        extractor = getattr(self.policy, "features_extractor", None)
        if hasattr(extractor, "stream_ids"):  # the streaming encoder keeps each match's frames by id
            extractor.stream_ids = torch.as_tensor(request.ids)
        if not self.recurrent:
            return self.policy.predict(request.obs, deterministic=self.deterministic)[0], None
        # sb3-contrib's predict() without its per-call set_training_mode(False), which walks every
        # module (~0.6 ms a call, a tenth of an evaluation frame): this policy is in eval mode for good.
        policy = self.policy
        with torch.no_grad():
            obs = torch.as_tensor(request.obs, device=policy.device)
            states = tuple(torch.as_tensor(s, dtype=torch.float32, device=policy.device) for s in request.state)
            starts = torch.as_tensor(request.starts, dtype=torch.float32, device=policy.device)
            actions, (h, c) = policy._predict(
                obs, lstm_states=states, episode_starts=starts, deterministic=self.deterministic
            )
        return actions.cpu().numpy().reshape((-1, *policy.action_space.shape)), (h.cpu().numpy(), c.cpu().numpy())

    def _apply(self, request: PolicyRequest, actions: np.ndarray, states: tuple | None) -> np.ndarray:
        """Keep the new LSTM state; the actions as ten keys."""
        if states is not None:
            self._h[:, request.ids], self._c[:, request.ids] = states
        if isinstance(self.policy.action_space, spaces.Discrete):  # the macro head: ids → keys
            return macro_keys(np.asarray(actions).reshape(len(request.ids))).astype(np.int8)
        return (np.asarray(actions) > 0.5).astype(np.int8)

    def _finish(self, plan: _Plan) -> np.ndarray:
        if self.agent_config["action_repeat"] == 1 or len(plan.ids) == 0:
            return plan.decided if plan.decided is not None else np.zeros((0, P.N_KEYS), np.int8)
        if plan.decided is not None:
            self._held[plan.ids[plan.deciding]] = plan.decided
        self._frames_held[plan.ids] += 1
        return self._held[plan.ids].copy()

    def _policy_obs(self, obs: np.ndarray, ids: np.ndarray, starts: np.ndarray) -> np.ndarray:
        if not self.uses_history:
            return obs
        window = self._history[ids]
        window[starts] = 0.0
        window[:, :-1] = window[:, 1:]
        window[:, -1] = obs[:, OBS_HALF:]
        self._history[ids] = window
        return np.concatenate([obs, window.reshape(len(obs), -1)], axis=1)

    def save(self, file_path: str) -> None:
        raise TypeError("save a TransformerStrategyAgent through the trainer's model (save_checkpoint_pair)")

    def get_state(self) -> dict[str, np.ndarray]:
        # A capture is where a resumed run starts, with an empty encoder cache (the streaming
        # encoder's first step then encodes whole windows): restarting this agent's cache here
        # makes the uninterrupted run take the same path, so both continue bit for bit.
        restart_stream_cache(self.policy)
        return {
            "h": self._h.copy(),
            "c": self._c.copy(),
            "history": self._history.copy(),
            "frames_held": self._frames_held.copy(),
            "held": self._held.copy(),
        }

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        self._capacity = state["history"].shape[0]
        self._h, self._c, self._history = state["h"].copy(), state["c"].copy(), state["history"].copy()
        self._frames_held = state["frames_held"].copy()
        self._held = state["held"].copy()


def restart_stream_cache(policy) -> None:
    """Empty the streaming encoder's rollout cache, if the policy has one (see ``get_state``)."""
    extractor = getattr(policy, "features_extractor", None)
    if hasattr(extractor, "reset_cache"):
        extractor.reset_cache()


def load_agent(
    path: Path | str,
    build_policy: PolicyBuilder,
    agent_defaults: dict,
    device: torch.device | str = "cpu",
    deterministic: bool = True,
    verify: bool = True,
) -> TransformerStrategyAgent:
    """The agent in a checkpoint .zip or a run folder (its newest valid checkpoint), weights only.

    :param build_policy: the trainer's ``build_policy`` (the architecture lives there)
    :param agent_defaults: the trainer's shared agent config, for keys older checkpoints lack
    :param verify: check the checkpoint against its run's manifest (:func:`resolve_checkpoint`)
    """
    zip_path = resolve_checkpoint(path, verify)
    agent_config = read_agent_config(zip_path, agent_defaults)
    policy = build_policy(agent_config, device)
    load_policy_weights(policy, zip_path, device)
    return TransformerStrategyAgent(policy, agent_config, device=device, deterministic=deterministic)


def snapshot_agent(
    model, agent_config: dict, build_policy: PolicyBuilder, device: torch.device | str
) -> TransformerStrategyAgent:
    """An in-memory opponent copy of the model's current policy (no disk read)."""
    policy = build_policy(agent_config, device)
    policy.load_state_dict(model.policy.state_dict())
    return TransformerStrategyAgent(policy, agent_config, device=device)
