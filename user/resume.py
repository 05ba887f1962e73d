"""A running trainer's checkpoints: what one saves beyond the weights (one declared schema), and resuming.

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

import errno
import json
import logging
import random
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sb3_contrib.common.recurrent.type_aliases import RNNStates

from environment.checkpoints import (
    CheckpointError,
    CheckpointManifest,
    CheckpointWarning,
    atomic_write_text,
    free_bytes,
    load_state_tree,
    save_state_tree,
)
from environment.evaluation import EloRatings, best_steps_by_headline, public_bot_names, worst_public_win_rate
from environment.self_play import snapshot_files, snapshot_names, snapshot_steps
from user.agent_io import restart_stream_cache, save_checkpoint_pair, set_parameters_safely
from user.config_tools import ConfigError, lookup, merge_config, with_encoder_of_its_time

log = logging.getLogger("train_agent")

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
    Field(
        "trainer/opponent_schedule",
        lambda run: ABSENT if run.opponent_schedule is None else run.opponent_schedule.get_state(),
        lambda run, v: run.opponent_schedule.set_state(v),
    ),
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
    Field("trainer/strategy", lambda run: run.strategy.get_state(), lambda run, v: run.strategy.set_state(v)),
    # What the checkpoint was trained with: --resume checks a hand-edited config.json against it.
    Field("trainer/config", lambda run: run.config, lambda run, v: None),
    Field("rng", lambda run: rng_state(), lambda run, v: set_rng_state(v)),  # last: nothing may draw after it
)


def capture_state(run, schema: tuple[Field, ...] = RESUME_SCHEMA) -> dict[str, Any]:
    """Everything beyond the weights that a resumed run needs to continue exactly, as a nested tree."""
    model = getattr(run, "model", None)
    if model is not None:  # the learner's encoder cache too (TransformerStrategyAgent.get_state says why)
        restart_stream_cache(model.policy)
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


# ==================================================================================
# === Checkpoints of a running trainer ===
# ==================================================================================
FINAL_SAVE_MARGIN = 16 * 2**20  # bytes beyond the last checkpoint's size a final save wants free


def save_checkpoint(
    run, steps: int, state: dict[str, Any] | None = None, final: bool = False, resume_point: bool = False
) -> Path | None:
    """Write the checkpoint pair plus its resume state, record them, and prune old snapshots.

    ``state`` is the training state captured at the same step (a fresh
    capture by default). The policy is checked for non-finite values first:
    a diverged policy is never written. Below the ``training.min_free_gb``
    reserve the checkpoint is still written while it fits, and a scheduled one
    then stops the run (:data:`LOW_DISK`; the CLI exits 2 saying so, and
    ``--resume`` continues exactly); one that cannot fit stops the run with a
    :class:`CheckpointError` naming the newest checkpoint on disk. Never a
    silent end without a model.

    A ``resume_point`` (a stop between scheduled saves) is written like any
    checkpoint, so eval, export and ``--resume`` take it, but an unbroken run
    would not have it: it stays out of the self-play pool and the save schedule,
    and the resumed run removes it once it saves again (see :func:`_drop_resume_points`).
    """
    if steps == run.last_saved_step:
        return None
    previous = run.save_handler.latest()
    expected = sum(f.stat().st_size for f in snapshot_files(previous) if f.exists()) if previous else 0
    free, reserve = free_bytes(run.run_dir), int(run.config["training"]["min_free_gb"] * 2**30)
    if free - expected < reserve:
        _check_room_below_reserve(run, steps, expected, previous, free)
        if not final:
            run.stop_flag.reason = LOW_DISK
    run.check_finite("refusing to write a checkpoint")
    zip_path = run.save_handler.snapshot_path(steps)
    if not resume_point:
        _drop_resume_points(run, keep=steps)
    files = save_checkpoint_pair(run.model, zip_path, run.config["agent"])
    state = state if state is not None else run.capture_state()
    files += save_state_tree(resume_state_stem(zip_path), state)
    # The snapshots this checkpoint's matches play: kept on disk as long as this checkpoint is.
    extra: dict[str, Any] = {"uses": snapshots_in_env_state(state["env"])}
    if resume_point:
        run.manifest.record(steps, files, extra={**extra, RESUME_POINT: True})
        write_run_config(run)
        run.last_saved_step = steps
        log.info(
            "Saved checkpoint %s (a resume point: outside the self-play pool and the save schedule)", zip_path.name
        )
        return zip_path
    run.manifest.record(steps, files, extra=extra)
    write_run_config(run)
    run.self_play.add_loaded(zip_path, run.snapshot_agent())
    for doomed in run.save_handler.record(zip_path):
        run.manifest.remove(snapshot_steps(doomed))
    run.last_saved_step = steps
    run.counters.setdefault("episodes_at_first_snapshot", run.counters["episodes"])
    log.info("Saved checkpoint %s", zip_path.name)
    if run.on_checkpoint is not None:  # a caller's hook (e.g. a Ray Tune trial reporting): scheduled saves only
        run.on_checkpoint(checkpoint_summary(run, steps, zip_path, files))
    return zip_path


RESUME_POINT = "resume_point"  # manifest extra: a stop's checkpoint, not one of the run's snapshots


def is_resume_point(manifest, step: int) -> bool:
    return bool(manifest.entry(step).get("extra", {}).get(RESUME_POINT))


def _drop_resume_points(run, keep: int) -> None:
    """Remove the resume points a new scheduled checkpoint supersedes (at step ``keep`` one is
    overwritten instead). Their matches' snapshots must not protect anything from rotation that an
    unbroken run would rotate out, and the newer checkpoint continues the same run."""
    for step in run.manifest.steps():
        if step != keep and is_resume_point(run.manifest, step):
            run.manifest.remove(step, delete_files=True)
            log.info("Removed the resume point at step %s (superseded by step %s)", f"{step:,}", f"{keep:,}")


def write_run_config(run) -> None:
    """config.json follows the newest checkpoint: a resumed run's --set lands with its first save."""
    text = json.dumps(run.config, indent=2, default=list)
    path = run.run_dir / "config.json"
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        atomic_write_text(path, text)


def trained_config(run_dir: Path) -> tuple[str, dict] | None:
    """(checkpoint name, config it was trained with) of the run's newest valid checkpoint; None when
    there is none, or it was saved before checkpoints kept their config."""
    manifest = CheckpointManifest(run_dir)
    with warnings.catch_warnings():  # the restore that follows reports every skipped checkpoint
        warnings.simplefilter("ignore", CheckpointWarning)
        found = newest_resumable(manifest) if manifest.path.exists() else None
    if found is None:
        return None
    zip_path = next(f for f in found[1] if f.name.endswith(".zip"))
    config = load_state_tree(resume_state_stem(zip_path)).get("trainer", {}).get("config")
    return (zip_path.name, config) if isinstance(config, dict) else None


LOW_DISK = "low disk space"  # the stop flag's reason after a save below the disk reserve


def _check_room_below_reserve(run, steps: int, expected: int, previous: Path | None, free: int) -> None:
    if free < expected + FINAL_SAVE_MARGIN:
        newest = f"the newest checkpoint on disk is {previous.name}" if previous else "no checkpoint was saved"
        raise CheckpointError(
            f"no room for a checkpoint at step {steps:,} in {run.run_dir}: {free / 2**20:.0f} MiB free, "
            f"about {(expected + FINAL_SAVE_MARGIN) / 2**20:.0f} MiB needed; {newest} (free space, then --resume)"
        )
    log.warning(
        "Writing the checkpoint at step %s below the training.min_free_gb reserve (%.0f MiB free); "
        "the run stops after it",
        f"{steps:,}",
        free / 2**20,
    )


# ==================================================================================
# === A full disk ===
# ==================================================================================
class DiskFullError(CheckpointError):
    """The disk filled up, or fell below the reserve, during training; the message says which
    checkpoint, if any, was saved and what to do."""


def low_disk_error(run) -> DiskFullError:
    """Why a run stopped at a save below the reserve (see :func:`save_checkpoint`)."""
    return DiskFullError(
        f"free disk space under {run.run_dir} fell below training.min_free_gb "
        f"({run.config['training']['min_free_gb']:g} GiB): {free_bytes(run.run_dir) / 2**20:.0f} MiB free; "
        f"stopped with the checkpoint of step {run.last_saved_step:,}. Free space (or lower the reserve: "
        f"--set training.min_free_gb=...), then --resume {run.run_dir}"
    )


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def stop_for_full_disk(run, exc: OSError) -> DiskFullError:
    """A write failed for lack of space: save a checkpoint of the last consistent state if one
    fits, and return the error that ends the run (the caller raises it; the CLI exits 2).

    The state captured at the latest safe point matches the weights unless an update ran since
    (a failure at the next safe point, before its capture): then it is captured afresh.
    """
    what = Path(exc.filename).name if getattr(exc, "filename", None) else "a log file"
    captured = run.captured
    if captured is None or captured["model"]["n_updates"] != run.model._n_updates:
        captured = run.capture_state()
    step = captured["model"]["num_timesteps"]
    try:
        run.save_checkpoint(step, captured, final=True, resume_point=True)
    except (OSError, CheckpointError) as failure:
        newest = run.save_handler.latest()
        detail = failure if isinstance(failure, CheckpointError) else "no room for it either"
        return DiskFullError(
            f"the disk under {run.run_dir} is full (writing {what} at step {step:,} failed), and no checkpoint "
            f"of step {step:,} could be written ({detail}); the newest checkpoint on disk is "
            f"{newest.name if newest else 'none'}: free space, then --resume {run.run_dir}"
        )
    return DiskFullError(
        f"the disk under {run.run_dir} is full (writing {what} at step {step:,} failed); stopped with a "
        f"checkpoint of step {step:,}: free space, then --resume {run.run_dir}"
    )


def keep_snapshot(run, path: Path) -> bool:
    """Past max_saved, keep a snapshot that a match plays (now, or in the saved state of a kept
    checkpoint, so that checkpoint still resumes) or one of the best by the evaluation's headline."""
    if path.name in run.venv.snapshots_in_use():
        return True
    for step in run.manifest.steps():
        if path.name in run.manifest.entry(step).get("extra", {}).get("uses", []):
            return True
    # "Best" is issue 14's headline (worst win rate over the public bots), not Elo: Elo
    # rewards beating BasedAgent by one held key as much as beating the whole roster.
    keep_best = max(1, run.config["training"]["max_saved"] // 5)
    on_disk = {snapshot_steps(p) for p in run.save_handler.history}
    evaluated = [e for e in run.eval_history if e["step"] in on_disk]
    return snapshot_steps(path) in best_steps_by_headline(evaluated, keep_best)


def restore_latest(run) -> int:
    """Continue from the newest checkpoint that verifies; returns its step.

    A truncated or altered newest checkpoint is reported and the previous
    good one is used. With none valid, it stops: never a silent fresh start.
    From a resume point the pool and the save schedule are the scheduled
    snapshots', as the unbroken run has them.
    """
    found = newest_resumable(run.manifest)
    if found is None:
        raise CheckpointError(
            f"{run.run_dir} has no valid checkpoint to resume from (manifest.json lists none that verify and "
            "whose matches' snapshots are all there); refusing to start from scratch"
        )
    step, files = found
    zip_path = next(f for f in files if f.name.endswith(".zip"))
    set_parameters_safely(run.model, zip_path)
    state = load_state_tree(resume_state_stem(zip_path))
    run.save_handler.history = [
        p
        for p in run.save_handler.history
        if snapshot_steps(p) <= step
        and _verifies(run, snapshot_steps(p))
        and not is_resume_point(run.manifest, snapshot_steps(p))
    ]
    restore_state(run, state)
    for csv in run.logs.values():
        csv.drop_rows_after("step", step)
    run.metrics._last_step = step
    scheduled = run.save_handler.latest()
    # A damaged newer file must not delay the next save; a resume point's step is saved again
    # when the resumed run's safe point there (e.g. a stopped evaluation) asks for a save.
    run.save_handler.last_save_step = snapshot_steps(scheduled) if scheduled else 0
    run.last_saved_step = run.save_handler.last_save_step
    return step


def newest_resumable(manifest) -> tuple[int, list[Path]] | None:
    """The newest checkpoint that verifies and whose matches' snapshot opponents are all on disk
    and whole; each newer one is reported (a warning naming the file) and skipped."""
    before = None
    while (found := manifest.latest_valid(before=before)) is not None:
        step = found[0]
        broken = next(
            (n for n in manifest.entry(step).get("extra", {}).get("uses", []) if not _snapshot_whole(manifest, n)), None
        )
        if broken is None:
            return found
        warnings.warn(
            f"skipping checkpoint {step} in {manifest.run_dir}: its matches play {broken}, which is missing or "
            "damaged; resuming from the previous checkpoint",
            CheckpointWarning,
            stacklevel=2,
        )
        before = step
    return None


def _snapshot_whole(manifest, name: str) -> bool:
    if not (manifest.run_dir / name).is_file():
        return False
    try:
        step = snapshot_steps(name)
        if step in manifest.steps():
            manifest.verify(step)
    except (ValueError, CheckpointError):
        return False
    return True


def _verifies(run, step: int) -> bool:
    """A damaged snapshot stays on disk (it is the user's) but leaves the opponent pool."""
    if step not in run.manifest.steps():
        return False
    try:
        run.manifest.verify(step)
        return True
    except CheckpointError as exc:
        log.warning("Leaving a damaged snapshot out of the opponent pool: %s", exc)
        return False


def resume_state_stem(zip_path: Path) -> Path:
    """``rl_model_<N>_steps_state``: the stem of a checkpoint's resume state (.npz + .json)."""
    return zip_path.with_name(zip_path.name.removesuffix(".zip") + "_state")


def snapshots_in_env_state(env_state: dict | list[dict]) -> list[str]:
    """File names of the snapshots a saved env state's matches play (a WorkerVecEnv saves one state per worker)."""
    states = env_state if isinstance(env_state, list) else [env_state]
    return sorted(snapshot_names(key for state in states for key in state["opponent_keys"]))


# ==================================================================================
# === Training loop ===
# ==================================================================================


# What a resumed run must keep: the weights, the env state and the logs' columns depend on them.
_FROZEN_ON_RESUME = (
    "agent.type",
    "agent.action_head",
    "agent.latent_dim",
    "agent.num_heads",
    "agent.num_layers",
    "agent.sequence_length",
    "agent.encoder",
    "agent.attention_window",
    "agent.lstm_hidden_size",
    "agent.shared_lstm",
    "agent.enable_critic_lstm",
    "agent.net_arch",
    "agent.n_steps",
    "env",
    "reward",
    "self_play.opponents",
    "training.seed",
    "training.debug_csvs",
    "controls.opponent_weighting",
    "controls.exploiter",
    "controls.opponent_schedule",
)


def _first_frozen_change(before: dict, after: dict) -> str | None:
    return next((dotted for dotted in _FROZEN_ON_RESUME if lookup(before, dotted) != lookup(after, dotted)), None)


def check_resumable_changes(saved: dict, new: dict) -> None:
    dotted = _first_frozen_change(saved, new)
    if dotted is not None:
        raise ConfigError(
            f"--resume cannot change {dotted} (the run has {json.dumps(lookup(saved, dotted))}); "
            "start a new run with --set training.init_from=<checkpoint> to reuse its weights"
        )


def check_against_checkpoint(run_dir: Path, config: dict, base_config: dict) -> None:
    """The frozen keys must match the config the newest valid checkpoint was trained with (kept in
    its resume state), whatever config.json says now: a hand edit cannot slip past the check."""
    found = trained_config(run_dir)
    if found is None:  # no valid checkpoint (restore says so), or one saved before configs were kept
        return
    name, trained = found
    if isinstance(trained.get("agent"), dict):
        trained = {**trained, "agent": with_encoder_of_its_time(trained["agent"])}
    trained = merge_config(base_config, trained)
    dotted = _first_frozen_change(trained, config)
    if dotted is not None:
        raise ConfigError(
            f"{run_dir / 'config.json'} changes {dotted}: {name} was trained with "
            f"{json.dumps(lookup(trained, dotted))}, the config now has {json.dumps(lookup(config, dotted))}; "
            "--resume cannot change it (undo the edit, or start a new run with --set training.init_from=...)"
        )


def checkpoint_summary(run, steps: int, zip_path: Path, files: list[Path]) -> dict[str, Any]:
    """What a run's ``on_checkpoint`` hook gets with each scheduled checkpoint (issue 17): where it is
    and how the run stands. Win rates are the newest evaluation's (``evaluated_at``; None before the
    first), the Elo is this snapshot's when it was rated at its own step, speed and reward the last
    update's (None before the first)."""
    latest = run.eval_history[-1] if run.eval_history else {}
    worst = worst_public_win_rate({k: v for k, v in latest.items() if k != "step"})
    public = [latest[name] for name in public_bot_names() if name in latest]
    name, row = f"rl_model_{steps}", run.metrics.last_row
    return {
        "step": steps,
        "checkpoint": str(zip_path),
        "files": [str(f) for f in files],
        "evaluated_at": latest.get("step"),
        "worst_win_rate": worst[1] if worst else None,
        "mean_win_rate": float(np.mean(public)) if public else None,
        "elo": run.ratings.rating(name) if name in run.ratings.ratings else None,
        "steps_per_s": row.get("sps") or None,
        "ep_rew_mean": row.get("ep_rew_mean") if row.get("ep_rew_mean") != "" else None,
    }
