"""The run's controls beyond PPO's own: value schedules (learning rate, clip, entropy, self-play
temperature), opponent weighting from evaluations (inverse win rate, PFSP), the opponent
schedule's log rows, and the exploiter's admission. Configured under ``controls`` (train_agent.py)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("train_agent")


# ==================================================================================
# === Schedules ===
# ==================================================================================
def schedule_value(spec: dict | None, progress: float, default: float) -> float:
    """A schedule's value at training progress 0 → 1 (``default`` when there is no schedule)."""
    if spec is None:
        return default
    start, end = spec["start"], spec["end"]
    if spec["kind"] == "constant":
        return start
    if spec["kind"] == "linear":
        return start + (end - start) * progress
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * progress))  # cosine


def sb3_schedule(spec: dict | None, default: float) -> float | Callable[[float], float]:
    """A value for SB3, which calls schedules with the progress *remaining* (1 → 0)."""
    if spec is None:
        return default
    return lambda remaining: schedule_value(spec, 1.0 - remaining, default)


# ==================================================================================
# === Opponent weighting ===
# ==================================================================================
def opponent_priority(weighting: dict, win_rate: float) -> float:
    """Unnormalised weight of an opponent the agent beats with probability ``win_rate``."""
    x = min(max(win_rate, 0.0), 1.0)
    if weighting["mode"] == "pfsp_hard":
        value = (1.0 - x) ** weighting["pfsp_power"]
    elif weighting["mode"] == "pfsp_variance":
        value = x * (1.0 - x)
    else:  # inverse_win_rate
        value = 1.0 - x
    return max(value, weighting["floor"])


def admit_exploiter(win_rate: float, threshold: float) -> bool:
    """An exploiter joins the pool only when it beats the main agent often enough."""
    return win_rate > threshold


def reweight_opponents(run, steps: int, win_rates: dict[str, float], snapshot_win_rates: dict[Path, float]) -> None:
    """Adaptive / PFSP opponent weights from the latest evaluation (controls.opponent_weighting)."""
    w = run.config["controls"]["opponent_weighting"]
    if w["mode"] == "off":
        return
    bots = {name: entry for name, (_, entry) in run.opponents.opponents.items() if isinstance(entry, str)}
    share = sum(run.bot_share.values())
    raw = {name: opponent_priority(w, win_rates.get(entry, 0.5)) for name, entry in bots.items()}
    total = sum(raw.values())
    new = {name: share * value / total for name, value in raw.items()}
    run.set_opponent_weights(new)
    if w["mode"].startswith("pfsp"):
        run.self_play.snapshot_weights = {p: opponent_priority(w, x) for p, x in snapshot_win_rates.items()}
    rows = [
        {
            "step": steps,
            "opponent": name,
            "weight": round(w, 5),
            "win_rate": round(win_rates.get(bots[name], math.nan), 4),
        }
        for name, w in new.items()
    ]
    run.logs["opponent_weights"].append_many(rows)
    log.info("Opponent weights: %s", ", ".join(f"{n} {v:.3f}" for n, v in new.items()))


def log_opponent_schedule(run, steps: int, evaluated: bool) -> None:
    """The schedule's rows in opponent_weights.csv: at the start, after each completed evaluation
    (a stopped one is played again after the resume, and logs then), and when a group is admitted."""
    schedule = run.opponent_schedule
    if schedule is None:
        return
    if evaluated or steps == 0 or run.counters.pop("schedule_admitted", False):
        rows = schedule.summary_rows(steps)
        run.logs["opponent_weights"].append_many(
            [{k: r[k] for k in ("step", "opponent", "weight", "win_rate")} for r in rows]
        )
        log.info("Opponent weights: %s", ", ".join(f"{r['opponent']} {r['weight']:.3f}" for r in rows))
