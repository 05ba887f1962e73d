"""What a checkpoint saves beyond the weights so that a resumed run continues exactly: one declared schema.

Each :class:`Field` names where a value sits in the saved tree (``"trainer/next_eval"``), how to
read it from the running trainer and how to put it back. :func:`capture_state` and
:func:`restore_state` both walk :data:`RESUME_SCHEMA`, so what is saved and what is restored
cannot drift apart: a new piece of state is one new line here. Restoring follows the schema's
order (the env's matches before the self-play pool's bookkeeping, the random streams last).

The tree holds numpy arrays and JSON values only; ``environment.checkpoints.save_state_tree``
writes it without pickle. The run object is the trainer's ``TrainingRun`` (read through its
attributes: ``model``, ``venv``, ``history``, ``self_play``, ``counters``, ...).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sb3_contrib.common.recurrent.type_aliases import RNNStates

from environment.evaluation import EloRatings

ABSENT = object()  # what a capture returns for state this run does not have (no LSTM, no history, ...)


@dataclass(frozen=True)
class Field:
    """One piece of resume state.

    :param path: its place in the saved tree, ``/``-separated
    :param capture: run → value (``ABSENT`` to save nothing)
    :param restore: (run, saved value) → None
    :param when_missing: restore with this value when the tree lacks the field (state written
        before the field existed, or a run without it); None: skip the restore
    """

    path: str
    capture: Callable[[Any], Any]
    restore: Callable[[Any, Any], None]
    when_missing: Callable[[], Any] | None = None


def rng_state() -> dict[str, Any]:
    """Python's, NumPy's global and torch's random streams (and CUDA's, when present)."""
    version, mt_state, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [version, list(mt_state), gauss],
        "numpy": {"keys": keys.copy(), "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state().numpy().copy(),
    }
    if torch.cuda.is_available():
        state["cuda"] = [s.numpy().copy() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, mt_state, gauss = state["python"]
    random.setstate((version, tuple(mt_state), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"], n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(torch.as_tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.as_tensor(s, dtype=torch.uint8) for s in state["cuda"]])


# --- how each piece is read and put back ---------------------------------------------------
def _model_field(key: str, attr: str, read: Callable[[Any], Any]) -> Field:
    return Field(f"model/{key}", lambda run: read(getattr(run.model, attr)), lambda run, v: setattr(run.model, attr, v))


def _counter_field(key: str) -> Field:
    def restore(run, value):
        run.counters[key] = value

    return Field(f"trainer/{key}", lambda run: run.counters.get(key), restore)


def _lstm_states(run) -> Any:
    lstm = getattr(run.model, "_last_lstm_states", None)
    if lstm is None:  # the feed-forward ppo type
        return ABSENT
    return [t.detach().cpu().numpy().copy() for t in (*lstm.pi, *lstm.vf)]


def _set_lstm_states(run, arrays) -> None:
    t = [torch.as_tensor(a, device=run.device) for a in arrays]
    run.model._last_lstm_states = RNNStates((t[0], t[1]), (t[2], t[3]))


def _set_attack_frames(run, values) -> None:
    run.counters["attack_frames"][:] = values


def _set_episodes_at_first_snapshot(run, value) -> None:
    if value is not None:  # None: no snapshot was saved yet, and the counter stays unset
        run.counters["episodes_at_first_snapshot"] = value


def _set_ep_info_buffer(run, episodes) -> None:
    window = run.model._stats_window_size
    run.model.ep_info_buffer = deque(episodes, maxlen=window)
    run.model.ep_success_buffer = deque(maxlen=window)  # SB3 creates both or neither


def _set_snapshot_win_rates(run, pairs) -> None:
    run.snapshot_win_rates = {run.self_play.path_for_name(name): x for name, x in pairs}


def _set_curriculum_alpha(run, alpha) -> None:
    run.reward_manager.alpha = alpha


def _set_history(run, state) -> None:
    run.history.set_state(state)


def _set_trainer_attr(attr: str) -> Callable[[Any, Any], None]:
    return lambda run, value: setattr(run, attr, value)


RESUME_SCHEMA: tuple[Field, ...] = (
    _model_field("num_timesteps", "num_timesteps", int),
    _model_field("n_updates", "_n_updates", int),
    _model_field("episode_num", "_episode_num", int),
    _model_field("last_obs", "_last_obs", np.array),
    _model_field("last_episode_starts", "_last_episode_starts", np.array),
    Field("model/lstm", _lstm_states, _set_lstm_states),
    # The matches in play (engine, opponents and their memory, reward sums); snapshot opponents are
    # found again by file name through the self-play handler.
    Field("env", lambda run: run.venv.get_state(), lambda run, v: run.venv.set_state(v)),
    Field("history", lambda run: ABSENT if run.history is None else run.history.get_state(), _set_history),
    Field("self_play", lambda run: run.self_play.get_state(), lambda run, v: run.self_play.set_state(v)),
    Field("trainer/next_eval", lambda run: run.next_eval, _set_trainer_attr("next_eval")),
    _counter_field("episodes"),
    Field("trainer/attack_frames", lambda run: run.counters["attack_frames"].copy(), _set_attack_frames),
    Field(
        "trainer/episodes_at_first_snapshot",
        lambda run: run.counters.get("episodes_at_first_snapshot"),
        _set_episodes_at_first_snapshot,
    ),
    Field(
        "trainer/ratings",
        lambda run: run.ratings.to_dict(),
        lambda run, v: setattr(run, "ratings", EloRatings.from_dict(v)),
    ),
    Field("trainer/eval_history", lambda run: run.eval_history, lambda run, v: setattr(run, "eval_history", list(v))),
    _counter_field("exploiter_at"),
    # Logging only; state written before this field existed still resumes.
    Field(
        "trainer/ep_info_buffer",
        lambda run: list(run.model.ep_info_buffer or []),
        _set_ep_info_buffer,
        when_missing=list,
    ),
    Field(
        "trainer/opponent_weights",
        lambda run: {name: w for name, (w, _) in run.opponents.opponents.items()},
        lambda run, v: run.set_opponent_weights(v),
    ),
    Field(
        "trainer/snapshot_win_rates",
        lambda run: [[p.name, x] for p, x in run.snapshot_win_rates.items()],
        _set_snapshot_win_rates,
    ),
    Field(
        "trainer/curriculum_alpha",
        lambda run: getattr(run.reward_manager, "alpha", ABSENT),
        _set_curriculum_alpha,
    ),
    Field("rng", lambda run: rng_state(), lambda run, v: set_rng_state(v)),  # last: nothing may draw after it
)


def capture_state(run, schema: tuple[Field, ...] = RESUME_SCHEMA) -> dict[str, Any]:
    """Everything beyond the weights that a resumed run needs to continue exactly, as a nested tree."""
    tree: dict[str, Any] = {}
    for field in schema:
        value = field.capture(run)
        if value is ABSENT:
            continue
        *parents, leaf = field.path.split("/")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def restore_state(run, tree: dict[str, Any], schema: tuple[Field, ...] = RESUME_SCHEMA) -> None:
    """Put a captured tree back into ``run``, field by field in the schema's order."""
    for field in schema:
        found, value = _get(tree, field.path)
        if not found:
            if field.when_missing is None:
                continue
            value = field.when_missing()
        field.restore(run, value)


def _get(tree: dict[str, Any], path: str) -> tuple[bool, Any]:
    node: Any = tree
    for part in path.split("/"):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node
