"""What a training run writes down and checks while it runs: logs, CSV files, progress, alerts, evaluations.

- :func:`setup_logging`, :func:`log_config`: the log on stdout and in ``training.log``.
- :func:`open_run_logs`: the run's CSV files (DESIGN.md §6) with their columns; SB3 Monitor
  format for ``monitor.csv``.
- :class:`MetricsRecorder` (``metrics.csv``), :class:`EpisodeLogCallback` (``monitor.csv``,
  ``reward_breakdown.csv``, ``behavior_metrics.csv``), :class:`ProgressLineCallback`,
  :class:`StrategyStats` (``strategy_analysis.csv``), :class:`SanityAlerts` (``alerts.csv``).
- :class:`StopFlag`: SIGINT / SIGTERM only ask the trainer to stop at its next safe point.
- :func:`evaluate_agent`: an agent against named opponents, all matches batched.

Nothing here knows the network architecture: the trainer's objects are read through the
attributes they expose (``run.model``, ``run.logs``, an extractor's ``last_latent``).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat

from environment import params as P
from environment.agents import Agent, agent_names, make_agent
from environment.checkpoints import CsvLog, PortableError, temp_name_for
from environment.evaluation import (
    EvaluationStopped,
    format_table,
    headline_line,
    play_vs_opponents,
    result_list,
    success_table,
    summarize,
)
from environment.match import run_match
from environment.observation import STATE
from environment.params import MATCH_FRAMES
from environment.rewards import default_reward_manager
from user.controls import reweight_opponents
from user.plots import plot_training_curves
from user.resume import LOW_DISK, DiskFullError, is_disk_full, low_disk_error

log = logging.getLogger("train_agent")

# Frames per match unless a config says otherwise: the game's own default (90 s at 30 FPS).


class DivergenceError(PortableError, RuntimeError):
    """A non-finite loss, gradient or parameter: training stopped before it could spread."""


# ==================================================================================
# === Logging ===
# ==================================================================================
LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"


class RunLogFileHandler(logging.FileHandler):
    """training.log; a failed write (a full disk) is said once, in one line, and the file is then
    left alone while stdout keeps the log (logging's default prints a traceback per record)."""

    failed = False

    def handleError(self, record: logging.LogRecord) -> None:
        if self.failed:
            return
        self.failed = True
        exc = sys.exc_info()[1]
        print(f"training.log: writing failed ({exc}); logging to stdout only from now on", file=sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)


def setup_logging(run_dir: Path | None = None) -> None:
    """Log to stdout and, when a run folder is given, to its training.log (appending).

    Python warnings (low disk space, a skipped damaged checkpoint) go to the same place.
    """
    logging.captureWarnings(True)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in list(root.handlers):
        if getattr(handler, "_brawl", False):
            root.removeHandler(handler)
            handler.close()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if run_dir is not None:
        handlers.append(RunLogFileHandler(run_dir / "training.log", mode="a"))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(LOG_FORMAT, "%H:%M:%S"))
        handler._brawl = True  # type: ignore[attr-defined]
        root.addHandler(handler)


def config_table(config: dict, prefix: str = "") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for key, value in config.items():
        if isinstance(value, dict) and key not in ("opponents", "net_arch"):
            rows += config_table(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", json.dumps(value, default=list)))
    return rows


def log_config(config: dict) -> None:
    rows = config_table(config)
    width = max(len(k) for k, _ in rows)
    log.info("Resolved config:\n%s", "\n".join(f"  {k:<{width}}  {v}" for k, v in rows))


# ==================================================================================
# === CSV files ===
# ==================================================================================
MONITOR_COLUMNS = ["r", "l", "t", "step", "result", "opponent"]  # SB3 Monitor format; extra keys after r,l,t
BEHAVIOR_COLUMNS = [
    "step",
    "episode",
    "opponent",
    "result",
    "damage_dealt",
    "damage_taken",
    "damage_ratio",
    "knockouts",
    "falls",
    "weapon_pickups",
    "weapon_drops",
    "combos",
    "survival_s",
    "attack_rate",
]
METRIC_KEYS = {  # metrics.csv column ← SB3 logger key
    "sps": "time/fps",
    "policy_loss": "train/policy_gradient_loss",
    "value_loss": "train/value_loss",
    "entropy_loss": "train/entropy_loss",
    "approx_kl": "train/approx_kl",
    "clip_fraction": "train/clip_fraction",
    "explained_variance": "train/explained_variance",
    "learning_rate": "train/learning_rate",
    "clip_range": "train/clip_range",
    "ent_coef": "train/ent_coef",
    "grad_norm_before_clip": "train/grad_norm_before_clip",
    "grad_norm_after_clip": "train/grad_norm_after_clip",
    "ep_rew_mean": "rollout/ep_rew_mean",
    "ep_len_mean": "rollout/ep_len_mean",
    "n_updates": "train/n_updates",
    "self_play_temperature": "selfplay/temperature",
}
EVAL_COLUMNS = [
    "step",
    "opponent",
    "matches",
    "win_rate",
    "draw_rate",
    "loss_rate",
    "damage_ratio",
    "knockouts_per_match",
    "falls_per_match",
    "weapon_pickups_per_match",
    "mean_survival_s",
    "avg_reward",
]
STRATEGY_COLUMNS = ["step", "latent_mean", "latent_std", "attention_entropy", "latent_drift", "episodes"]
METRIC_COLUMNS = ["step", *METRIC_KEYS, "entropy"]
RATING_COLUMNS = ["step", "name", "rating", "games"]
ALERT_COLUMNS = ["step", "alert", "detail"]
OPPONENT_WEIGHT_COLUMNS = ["step", "opponent", "weight", "win_rate"]
EXPLOITER_COLUMNS = ["step", "win_rate", "admitted", "path"]


def monitor_start_time(run_dir: Path) -> float:
    """``t_start`` of an existing monitor.csv (a resumed run keeps the first session's clock, so ``t``
    keeps growing), else now."""
    monitor = run_dir / "monitor.csv"
    if monitor.exists():
        try:
            with monitor.open() as f:
                return json.loads(f.readline().lstrip("#"))["t_start"]
        except (ValueError, KeyError):
            log.warning("%s has no readable t_start line; times restart at 0", monitor)
    return time.time()


def open_run_logs(run_dir: Path, config: dict, reward_terms: list[str], t_start: float) -> dict[str, CsvLog]:
    """The run's CSV files, created or reopened (a resumed run appends), by short name."""
    comment = "#" + json.dumps({"t_start": t_start, "env_id": "WarehouseBrawl-BrawlVecEnv"})
    logs = {
        "monitor": CsvLog(run_dir / "monitor.csv", MONITOR_COLUMNS, comment_line=comment),
        "metrics": CsvLog(run_dir / "metrics.csv", METRIC_COLUMNS),
        "evaluation": CsvLog(run_dir / "evaluation_results.csv", EVAL_COLUMNS),
        "ratings": CsvLog(run_dir / "ratings.csv", RATING_COLUMNS),
        "alerts": CsvLog(run_dir / "alerts.csv", ALERT_COLUMNS),
    }
    controls = config["controls"]
    if controls["opponent_weighting"]["mode"] != "off" or controls["opponent_schedule"]["enabled"]:
        logs["opponent_weights"] = CsvLog(run_dir / "opponent_weights.csv", OPPONENT_WEIGHT_COLUMNS)
    if controls["exploiter"]["every_updates"]:
        logs["exploiters"] = CsvLog(run_dir / "exploiters.csv", EXPLOITER_COLUMNS)
    logs["strategy"] = CsvLog(run_dir / "strategy_analysis.csv", STRATEGY_COLUMNS)
    if config["training"]["debug_csvs"]:
        breakdown = ["step", "episode", "opponent", *reward_terms, "total"]
        logs["reward_breakdown"] = CsvLog(run_dir / "reward_breakdown.csv", breakdown)
        logs["behavior_metrics"] = CsvLog(run_dir / "behavior_metrics.csv", BEHAVIOR_COLUMNS)
    return logs


class StopFlag:
    """SIGINT/SIGTERM only set this flag; the trainer stops at its next safe point.

    A second Ctrl-C interrupts at once (KeyboardInterrupt) for users who really mean it.
    """

    def __init__(self):
        self.reason: str | None = None
        self._previous: dict[int, Any] = {}

    def __bool__(self) -> bool:
        return self.reason is not None

    def install(self) -> None:
        """Handle SIGINT/SIGTERM from now on. Python takes signal handlers on the main thread only;
        elsewhere (a Ray Tune trial, a notebook's worker thread) the caller keeps its own handlers and
        stops the run by setting ``reason`` (what a handler would do)."""
        if threading.current_thread() is not threading.main_thread():
            log.info("Not on the main thread: SIGINT/SIGTERM stay with the caller (set run.stop_flag.reason to stop)")
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.reason is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.reason = name
        log.warning("%s received: saving a checkpoint at the next safe point, then exiting", name)


class MetricsRecorder:
    """One metrics.csv row per PPO update, written right after the update.

    SB3 dumps its logger before each update, so a dumped row would mix one
    rollout's speed with the previous update's losses; reading the logger's
    values after the update keeps each row about one update. Non-finite losses
    raise DivergenceError here, before any checkpoint of the diverged policy.
    """

    def __init__(self, csv_log):
        self.csv = csv_log
        self._last_step: int | None = None
        self._last_time = time.monotonic()
        self.last_row: dict[str, Any] = {}

    def record(self, step: int, values: dict[str, Any], episodes=()) -> dict[str, Any] | None:
        """``episodes``: SB3's recent episode infos (model.ep_info_buffer), for ep_rew_mean / ep_len_mean."""
        if "train/value_loss" not in values or step == self._last_step:  # no update since the last row
            return None
        now = time.monotonic()
        row: dict[str, Any] = {"step": step}
        for column, key in METRIC_KEYS.items():
            value = values.get(key)
            row[column] = float(value) if isinstance(value, (int, float, np.floating)) else ""
        if episodes:  # SB3 clears these from its logger before the update; compute them here
            row["ep_rew_mean"] = round(float(np.mean([ep["r"] for ep in episodes])), 4)
            row["ep_len_mean"] = round(float(np.mean([ep["l"] for ep in episodes])), 1)
        if self._last_step is not None:
            row["sps"] = round((step - self._last_step) / max(now - self._last_time, 1e-9), 1)
        self._last_step, self._last_time = step, now
        bad = [k for k in ("policy_loss", "value_loss", "entropy_loss") if row[k] != "" and not math.isfinite(row[k])]
        if bad:
            raise DivergenceError(f"non-finite training loss ({', '.join(bad)}) at step {step}")
        row["entropy"] = -row["entropy_loss"] if row["entropy_loss"] != "" else ""
        self.csv.append(row)
        self.last_row = row
        return row


class EpisodeLogCallback(BaseCallback):
    """Writes monitor.csv (SB3 Monitor format), reward_breakdown.csv and behavior_metrics.csv per episode."""

    def __init__(self, run):
        super().__init__()
        self.run = run

    def _on_step(self) -> bool:
        obs = self.locals["new_obs"]
        dones = self.locals["dones"]
        counters = self.run.counters
        # The returned observation after a done is the next match's first: count before it.
        counters["attack_frames"] += (obs[:, STATE] == P.ATTACK) & ~dones
        extractor = getattr(self.model.policy, "features_extractor", None)
        if hasattr(extractor, "last_latent"):  # a strategy encoder: record its latents
            self.run.strategy.add(extractor, dones)
        for i in np.flatnonzero(dones):
            info = self.locals["infos"][i]
            if "episode" in info:
                self._log_episode(info, int(counters["attack_frames"][i]))
            counters["attack_frames"][i] = 0
        return True

    def _log_episode(self, info: dict, attack_frames: int) -> None:
        ep, logs = info["episode"], self.run.logs
        self.run.counters["episodes"] += 1
        self.run.record_training_match(ep["opponent"], ep["result"])
        self.run.alerts.episode(info.get("reward_terms", {}), ep["r"])
        episode = self.run.counters["episodes"]
        t = round(time.time() - self.run.monitor_t_start, 6)
        logs["monitor"].append(
            {
                "r": round(ep["r"], 6),
                "l": ep["l"],
                "t": t,
                "step": self.num_timesteps,
                "result": ep["result"],
                "opponent": ep["opponent"],
            }
        )
        if not self.run.config["training"]["debug_csvs"]:
            return
        step = self.num_timesteps
        terms = info.get("reward_terms", {})
        logs["reward_breakdown"].append(
            {
                "step": step,
                "episode": episode,
                "opponent": ep["opponent"],
                **{k: round(v, 6) for k, v in terms.items()},
                "total": round(ep["r"], 6),
            }
        )
        seconds = ep["l"] / P.FPS
        logs["behavior_metrics"].append(
            {
                "step": step,
                "episode": episode,
                "opponent": ep["opponent"],
                "result": ep["result"],
                "damage_dealt": round(ep["damage_dealt"], 3),
                "damage_taken": round(ep["damage_taken"], 3),
                "damage_ratio": round(ep["damage_dealt"] / max(ep["damage_taken"], 1.0), 4),
                "knockouts": ep["knockouts"],
                "falls": ep["falls"],
                "weapon_pickups": ep["weapon_pickups"],
                "weapon_drops": ep["weapon_drops"],
                "combos": ep["combos"],
                "survival_s": round(seconds / max(ep["falls"], 1), 3),
                "attack_rate": round(attack_frames / ep["l"], 4),
            }
        )


class ProgressLineCallback(BaseCallback):
    """A plain progress line every few seconds, for logs under nohup (no terminal, no bar)."""

    def __init__(self, total_timesteps: int, interval_s: float, action_repeat: int = 1):
        super().__init__()
        self.total = total_timesteps
        self.interval = interval_s
        self.action_repeat = action_repeat  # game frames per step
        self._last = 0.0
        self._t0 = self._steps0 = None

    def _on_step(self) -> bool:
        now = time.monotonic()
        if self._t0 is None:
            self._t0, self._steps0, self._last = now, self.num_timesteps, now
        if now - self._last >= self.interval:
            self._last = now
            sps = (self.num_timesteps - self._steps0) / max(now - self._t0, 1e-9)
            eta = (self.total - self.num_timesteps) / max(sps, 1e-9)
            frames = f" ({sps * self.action_repeat:,.0f} frames/s)" if self.action_repeat > 1 else ""
            log.info(
                "step %s/%s (%.1f%%) | %s steps/s%s | ETA %s%s",
                f"{self.num_timesteps:,}",
                f"{self.total:,}",
                100 * self.num_timesteps / self.total,
                f"{sps:,.0f}",
                frames,
                clock(eta),
                self._update_health(),
            )
        return True

    def _update_health(self) -> str:
        """The last PPO update's approx-KL and clip fraction (aim: 0.005-0.02 and 0.05-0.2), if any yet.

        SB3 records them in train() and clears them at the next dump, so during a rollout the
        logger still holds the previous update's values."""
        values = self.model.logger.name_to_value
        if "train/approx_kl" not in values:
            return ""
        return f" | KL {values['train/approx_kl']:.4f}, clip {values.get('train/clip_fraction', math.nan):.3f}"


def clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


# ==================================================================================
# === Evaluation and checks ===
# ==================================================================================


def eval_opponent_names(config: dict) -> list[str]:
    chosen = config["eval"]["opponents"]
    return agent_names() if chosen == "roster" else list(chosen)


def evaluate_agent(
    agent: Agent,
    opponent_names: list[str],
    matches_per_opponent: int,
    max_timesteps: int,
    seed: int = 0,
    should_stop: Callable[[], bool] | None = None,
) -> list:
    """The agent against each named opponent, every match batched in one engine.

    Opponents are seeded from ``seed``, so an evaluation repeats exactly. Each
    returned EvalRow also carries ``results`` (the agent's win/draw/loss list).
    (Its signature is ``evaluate_with_snapshots``' first six, which ``duplicates`` pairs.)
    """
    rows, _ = evaluate_with_snapshots(agent, opponent_names, matches_per_opponent, max_timesteps, seed, should_stop)
    return rows


def evaluate_with_snapshots(
    agent: Agent,
    opponent_names: list[str],
    matches_per_opponent: int,
    max_timesteps: int,
    seed: int = 0,
    should_stop: Callable[[], bool] | None = None,
    snapshots: dict[str, Agent] | None = None,
    snapshot_matches: int = 0,
) -> tuple[list, dict[str, list[str]]]:
    """``evaluate_agent``, with ``snapshot_matches`` against each of ``snapshots`` played in the
    same engine pass: (the bots' EvalRows, each snapshot's results). An evaluation's cost is its
    frames (the policy is called once per frame for all matches), so one pass costs about half of
    a roster pass followed by a snapshot pass."""
    bots = {name: make_agent(name, seed=seed + i) for i, name in enumerate(opponent_names)}
    snapshots = snapshots or {}
    counts = {**{name: matches_per_opponent for name in bots}, **{name: snapshot_matches for name in snapshots}}
    played = play_vs_opponents(
        agent,
        {**bots, **snapshots},
        counts,
        max_timesteps,
        seed=seed,
        reward_manager=default_reward_manager(),
        should_stop=should_stop,
    )
    rows = []
    for name in bots:
        row = summarize(name, played[name])
        row.results = result_list(played[name])  # type: ignore[attr-defined]
        rows.append(row)
    return rows, {name: result_list(played[name]) for name in snapshots}


def eval_csv_row(row) -> dict[str, Any]:
    d = row.to_dict()
    return {k: (round(d[k], 4) if isinstance(d[k], float) else d[k]) for k in EVAL_COLUMNS if k != "step"}


class StrategyStats:
    """Per-rollout statistics of the strategy encoder, for strategy_analysis.csv.

    Reads the latent and pooling weights the extractor computed for each rollout
    step; drift is the distance between an env's mean latent over one episode and
    over its previous episode.
    """

    def __init__(self, n_envs: int):
        self.episode_sum: np.ndarray | None = None
        self.episode_len = np.zeros(n_envs)
        self.previous_mean: np.ndarray | None = None
        self.reset_rollout()

    def reset_rollout(self) -> None:
        self.values: list[np.ndarray] = []
        self.entropies: list[float] = []
        self.drifts: list[float] = []

    def add(self, extractor, dones: np.ndarray) -> None:
        latent = extractor.last_latent
        if latent is None or latent.shape[0] != len(dones):
            return
        latent = latent.float().cpu().numpy()
        weights = extractor.last_pool_weights.float().cpu().numpy()
        self.values.append(latent)
        self.entropies.append(float(-(weights * np.log(weights + 1e-12)).sum(axis=1).mean()))
        if self.episode_sum is None:
            self.episode_sum = np.zeros_like(latent)
            self.previous_mean = np.full_like(latent, np.nan)
        self.episode_sum += latent
        self.episode_len += 1
        for i in np.flatnonzero(dones):
            mean = self.episode_sum[i] / max(self.episode_len[i], 1)
            if not np.isnan(self.previous_mean[i]).any():
                self.drifts.append(float(np.linalg.norm(mean - self.previous_mean[i])))
            self.previous_mean[i] = mean
            self.episode_sum[i] = 0.0
            self.episode_len[i] = 0

    def get_state(self) -> dict[str, Any]:
        """The per-episode sums a resumed run needs for its first drift (a rollout's values are not
        kept: state is captured at a rollout's start, right after row() emptied them).

        Copies: add() updates the sums in place, and a stop mid-rollout saves the state captured
        at the rollout's start, after add() has run for the steps since."""
        if self.episode_sum is None:
            return {}
        return {
            "episode_sum": self.episode_sum.copy(),
            "episode_len": self.episode_len.copy(),
            "previous_mean": self.previous_mean.copy(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        if state:
            self.episode_sum = np.array(state["episode_sum"])
            self.episode_len = np.array(state["episode_len"])
            self.previous_mean = np.array(state["previous_mean"])

    def row(self, step: int) -> dict[str, Any] | None:
        if not self.values:
            return None
        values = np.concatenate(self.values)
        row = {
            "step": step,
            "latent_mean": round(float(values.mean()), 5),
            "latent_std": round(float(values.std()), 5),
            "attention_entropy": round(float(np.mean(self.entropies)), 5),
            "latent_drift": round(float(np.mean(self.drifts)), 5) if self.drifts else "",
            "episodes": len(self.drifts),
        }
        self.reset_rollout()
        return row


class SanityAlerts:
    """Checks that catch a run going wrong; each alert goes to the log and alerts.csv.

    - a reward term that never fired over the last ``eval.alert_window`` episodes
    - a flat total reward (no variation over that window)
    - non-finite losses (also stops the run: see DivergenceError)
    - entropy collapse (policy entropy below ``eval.entropy_floor``)
    - CUDA present but unused
    - self-play snapshots that exist but were never played
    """

    def __init__(self, run):
        self.run = run
        self.window = run.config["eval"]["alert_window"]
        self.term_fired: dict[str, list[bool]] = {}
        self.returns: list[float] = []
        self.raised: set[str] = set()

    def episode(self, terms: dict[str, float], total: float) -> None:
        for name, value in terms.items():
            history = self.term_fired.setdefault(name, [])
            history.append(value != 0.0)
            del history[: -self.window]
        self.returns.append(total)
        del self.returns[: -self.window]

    def raise_alert(self, step: int, kind: str, detail: str) -> None:
        key = f"{kind}:{detail}"
        if key in self.raised:
            return
        self.raised.add(key)
        log.warning("ALERT %s: %s", kind, detail)
        self.run.logs["alerts"].append({"step": step, "alert": kind, "detail": detail})

    def check(self, step: int) -> None:
        for name, fired in self.term_fired.items():
            if len(fired) >= self.window and not any(fired):
                self.raise_alert(
                    step,
                    "reward_term_never_fires",
                    f"reward term {name!r} was 0 in each of the last {self.window} episodes",
                )
        if len(self.returns) >= self.window and float(np.std(self.returns)) < 1e-6:
            self.raise_alert(step, "flat_reward", f"episode reward stuck at {self.returns[-1]:.4g}")
        logger = getattr(self.run.model, "_logger", None)  # set once learning starts
        entropy = logger.name_to_value.get("train/entropy_loss") if logger is not None else None
        floor = self.run.config["eval"]["entropy_floor"]
        if entropy is not None and -entropy < floor:
            self.raise_alert(step, "entropy_collapse", f"policy entropy {-entropy:.3f} < {floor}")
        if torch.cuda.is_available() and self.run.device.type != "cuda":
            self.raise_alert(step, "cuda_unused", f"a CUDA GPU is present but training runs on {self.run.device}")
        first = self.run.counters.get("episodes_at_first_snapshot")
        since = self.run.counters["episodes"] - first if first is not None else 0
        if since >= 50 and self.run.self_play.served == 0 and self.run.opponents_use_self_play():
            self.raise_alert(
                step, "snapshots_never_loaded", f"{since} episodes since the first snapshot and none played a snapshot"
            )


def run_eval_match(
    agent: Agent,
    opponent: str | Agent = "based",
    max_timesteps: int = MATCH_FRAMES,
    video_path: str | Path | None = None,
    seed: int = 0,
):
    """One match of ``agent`` (player 1) against ``opponent``; writes an MP4 when video_path is given."""
    opponent_agent = make_agent(opponent, seed=seed) if isinstance(opponent, str) else opponent
    return run_match(agent, opponent_agent, max_timesteps, str(video_path) if video_path else None, seed)


def evaluate_run(run, steps: int) -> list[dict[str, Any]]:
    """Play the whole scripted roster (batched), log the results, ratings and plot."""
    ev = run.config["eval"]
    t0 = time.monotonic()
    agent = run.snapshot_agent()
    opponents = eval_opponent_names(run.config)
    log.info(
        "Evaluating at step %s: %d matches against each of %d bots",
        f"{steps:,}",
        ev["matches_per_opponent"],
        len(opponents),
    )
    should_stop = lambda: bool(run.stop_flag)  # noqa: E731
    try:
        snapshots = recent_snapshots(run)  # Elo matches, in the same pass as the bots'
        rows, by_name = evaluate_with_snapshots(
            agent,
            opponents,
            ev["matches_per_opponent"],
            ev["max_timesteps"],
            seed=steps,
            should_stop=should_stop,
            snapshots={_snapshot_name(path): a for path, a in snapshots.items()},
            snapshot_matches=ev["snapshot_matches"],
        )
        snapshot_results = {path: by_name[_snapshot_name(path)] for path in snapshots}
    except EvaluationStopped:
        # Nothing was written and next_eval is unchanged: the resumed run plays this evaluation again.
        log.info(
            "Evaluation at step %s stopped after %.1f s (%s)", f"{steps:,}", time.monotonic() - t0, run.stop_flag.reason
        )
        return []
    run.next_eval = (steps // ev["eval_freq"] + 1) * ev["eval_freq"]
    run.logs["evaluation"].append_many([{"step": steps, **eval_csv_row(r)} for r in rows])
    _rate(run, f"rl_model_{steps}", rows, snapshot_results, steps)
    run.eval_history.append({"step": steps, **{r.opponent: r.win_rate for r in rows}})
    reweight_opponents(run, steps, {r.opponent: r.win_rate for r in rows}, run.snapshot_win_rates)
    log.info(
        "Evaluation at step %s (%.1f s):\n%s",
        f"{steps:,}",
        time.monotonic() - t0,
        format_table([eval_csv_row(r) for r in rows]),
    )
    log.info("Success criteria:\n%s", format_table(success_table(rows)))
    log.info(headline_line(run.eval_history))  # issue 14's headline, and the best checkpoint by it
    based = next((r.win_rate for r in rows if r.opponent == "based"), None)
    if based is not None and hasattr(run.reward_manager, "alpha"):  # the curriculum follows the BasedAgent win rate
        log.info("Curriculum: sparse reward weight now %.2f", run.reward_manager.update(based))
    run.alerts.check(steps)
    plot_training_curves(run.run_dir)
    return [eval_csv_row(r) for r in rows]


def recent_snapshots(run) -> dict[Path, Agent]:
    """The newest snapshots, for Elo matches. Each is read afresh: the self-play pool's agent
    objects hold the memory of the training matches they play, which these matches must not
    touch (a resumed run, whose pool cache differs, would then play differently)."""
    ev = run.config["eval"]
    recent = [p for p in run.save_handler.history if p.exists()][-ev["snapshot_opponents"] :]
    return {p: run.self_play.agent_loader(p) for p in recent}


def _snapshot_name(path: Path) -> str:
    return "snapshot:" + path.name.removesuffix("_steps.zip")


def _rate(run, name: str, rows, snapshot_results: dict[Path, list[str]], steps: int) -> None:
    """Elo from this evaluation's matches, plus those against the newest snapshots."""
    for row in rows:
        run.ratings.update_from_results(name, row.opponent, row.results)  # type: ignore[attr-defined]
    for path, results in snapshot_results.items():
        run.ratings.update_from_results(name, path.name.removesuffix("_steps.zip"), results)
        run.snapshot_win_rates[path] = results.count("win") / len(results)
    run.logs["ratings"].append_many(
        [{"step": steps, "name": n, "rating": round(r, 2), "games": g} for n, r, g in run.ratings.table()]
    )


def write_final_video(run, agent) -> tuple[Path, Any]:
    """The agent against BasedAgent, filmed to match_vs_based.mp4 atomically: into a temporary name
    (removed if the match or the encoder fails; a run started later removes one a kill left), then
    moved into place. When MP4 cannot be written the renderer falls back to a GIF, moved the same way."""
    video = run.run_dir / "match_vs_based.mp4"
    tmp = temp_name_for(video)
    log.info("Filming the final match against BasedAgent -> %s", video.name)
    try:
        stats = run_eval_match(agent, "based", run.config["env"]["max_timesteps"], tmp)
        written = tmp if tmp.is_file() else tmp.with_suffix(".gif")
        final = video if written == tmp else video.with_suffix(".gif")
        os.replace(written, final)
    finally:
        for leftover in (tmp, tmp.with_suffix(".gif")):
            leftover.unlink(missing_ok=True)
    return final, stats


def finish_run(run) -> None:
    """Final evaluation plot, a match video against BasedAgent, and where everything went."""
    if run.stop_flag.reason == LOW_DISK:
        raise low_disk_error(run)
    if run.stop_flag:
        log.info("Stopped early: continue with  python user/train_agent.py --resume %s", run.run_dir)
        return
    try:
        _write_final_outputs(run)
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        raise DiskFullError(
            f"the disk under {run.run_dir} is full: the final checkpoint rl_model_{run.model.num_timesteps}_steps.zip "
            f"is saved, but {Path(exc.filename or 'the plot or video').name} could not be written (the CSVs are whole)"
        ) from None


def _write_final_outputs(run) -> None:
    plot_training_curves(run.run_dir)
    if run.config["training"]["final_video"]:
        agent = run.snapshot_agent()
        video, stats = write_final_video(run, agent)
        log.info(
            "Final match vs BasedAgent: %s (damage %.0f-%.0f, knockouts %d-%d) -> %s",
            stats.player_1.result,
            stats.player_1.damage_dealt,
            stats.player_2.damage_dealt,
            stats.player_1.knockouts,
            stats.player_2.knockouts,
            video.name,
        )
    log.info(
        "Outputs in %s: checkpoints rl_model_<N>_steps.zip (+ _transformer_encoder.pth), monitor.csv, "
        "metrics.csv, evaluation_results.csv, behavior_metrics.csv, reward_breakdown.csv, ratings.csv, "
        "strategy_analysis.csv, alerts.csv, training_curves.png, config.json, training.log",
        run.run_dir,
    )


# SB3's own logger: TensorBoard event files when tensorboard is installed (optional).
def tensorboard_dir(run_dir: Path) -> str | None:
    return str(run_dir / "tensorboard") if importlib.util.find_spec("tensorboard") else None


def configure_sb3_logger(run) -> None:
    formats: list[Any] = []
    if tensorboard_dir(run.run_dir):
        formats.append(TensorBoardOutputFormat(tensorboard_dir(run.run_dir)))
    run.model.set_logger(Logger(str(run.run_dir), formats))
