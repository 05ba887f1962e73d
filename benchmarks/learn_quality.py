"""The honest judge (issue 14): an agent against every public bot and every constant-action bot.

Usage::

    .venv/bin/python benchmarks/learn_quality.py --agent checkpoints/<run>     # a run's newest checkpoint
    .venv/bin/python benchmarks/learn_quality.py --agent aggressive           # a registered bot
    .venv/bin/python benchmarks/learn_quality.py --agent hold:heavy_neutral   # held k
        [--matches 100] [--max-timesteps 9000] [--modes sampled,argmax,argmax_eps] [--opponents all]
        [--seed 0] [--check] [--json PATH]
    .venv/bin/python benchmarks/learn_quality.py --minutes 30 [--set KEY=VALUE ...]  # train, then judge

``--agent`` is a checkpoint ``.zip``, a run folder (its newest valid checkpoint, loaded as
weights only), a registered scripted bot, or ``hold:<macro>``: a bot that holds one macro
of ``environment/macros.py`` in every frame (``hold:heavy_neutral`` holds ``k``). Bots
let the judge be checked on agents whose strength is known. Without ``--agent`` it first
trains the ``cpu`` config for ``--minutes`` (see :func:`train`), then judges that run.

What it plays. ``--matches`` (default 100) matches against each opponent: every public
bot (the scripted bots in the agent registry, what ``--mode eval`` and the trainer's
evaluation play) and the constant-action family: ``hold:<macro>`` for every macro but
``idle``, which is the public ``constant`` bot (held ``k`` is ``hold:heavy_neutral``).
The agent starts on the right in half of each opponent's matches and on the left in the
other half, and plays player 1 in half and player 2 in the other half (the original
engine updates player 1 first, which changes outcomes: ``shared/fidelity/README.md``
§3); the four combinations take turns, so they balance when ``--matches`` is a multiple
of 4. Matches last ``--max-timesteps`` frames (default 9000, the tournament's battles;
training and the trainer's evaluation use 2700). Every match of a mode runs in one
batched engine (``environment.evaluation.play_vs_opponents``). Three play modes:

- ``sampled``: actions drawn from the policy, as it plays in training;
- ``argmax``: the most likely action (the tournament's deterministic play);
- ``argmax_eps``: argmax, but in 1% of frames the keys are replaced by a macro drawn
  uniformly from the macro table (a robustness probe: a trick that needs an exact
  sequence of frames breaks).

A scripted ``--agent`` plays every mode the same way (its own randomness; the 1% noise
still applies in ``argmax_eps``).

What it prints, per mode and opponent: win, draw and loss rates with Wilson 95%
intervals; the damage ratio (total dealt / max(total taken, 1)); self-destructs per
match: knockouts of the agent with no hit taken in the preceding 90 frames (3 s,
``environment.evaluation.SELF_DESTRUCT_WINDOW``: walking or jumping off the stage, or a
failed recovery from a place the agent chose); the share of frames the agent held its
commonest key combination and the distinct key combinations (of the 1024) it held per
match. Actions are counted per frame, before the 1% noise: a decision held for
``action_repeat`` frames counts that many times, which leaves the shares unchanged.
Then per mode: the headline, the WORST win rate over the public bots (never the rate
against BasedAgent alone), their mean, the worst constant-action bot, and the action
statistics over the matches against the public bots. For a run folder it also prints
the mean approx-KL and clip fraction of the run's last ``--kl-updates`` updates
(``metrics.csv``; issue 14 aims for 0.005-0.02 and 0.05-0.2) and which public bots the
run trained against (``config.json``).

Targets (:data:`TARGETS`, issue 14's Targets table, 100 matches per cell) are printed as
PASS / FAIL / "not measured" (a mode not played, or not every opponent it needs).
The exploiter's win rate is measured by ``benchmarks/exploitability.py``, not here.

``--json PATH`` writes every figure (``benchmarks/report.py``: with ``missed`` and
``all_targets_met``). Exit status: 0; with ``--check``, 1 when a measured target is missed or
none was measured; 2 on bad input (one line naming the problem).
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import user.train_agent as ta
from benchmarks.report import add_match_length_flag, add_report_flags, finish
from environment import params as P
from environment.agents import HOLD_PREFIX, Agent, HoldMacroAgent, agent_names, make_agent
from environment.checkpoints import CheckpointError
from environment.evaluation import (
    SelfDestructCounter,
    play_vs_opponents,
    public_bot_names,
    summarize,
    wilson_interval,
)
from environment.macros import MACRO_KEYS, MACRO_NAMES, N_MACROS, describe_keys, macro_id, macro_keys
from environment.play import _positive_int  # argparse type: a positive whole number
from user.agent_io import resolve_checkpoint
from user.monitoring import configure_sb3_logger, finish_run

ROOT = Path(__file__).resolve().parents[1]

MODES = ("sampled", "argmax", "argmax_eps")
RANDOM_ACTION_PROBABILITY = 0.01  # argmax_eps: share of frames whose keys are replaced by a random macro
KL_UPDATES = 10  # metrics.csv rows averaged for the approx-KL line
_KEY_BITS = 1 << np.arange(P.N_KEYS)  # a key combination as a 10-bit code


class JudgeError(ValueError):
    """Bad input to the judge: reported as one line, exit status 2."""


# ==================================================================================
# Agents: constant-action bots, noise, action counting, and --agent specs
# ==================================================================================
class RandomMacroNoise(Agent):
    """Plays as ``inner``, but each frame and row, with ``probability``, holds a uniformly drawn macro instead.

    ``inner`` still sees every frame, so its memory (LSTM state, held action) is kept.
    """

    def __init__(self, inner: Agent, probability: float, seed: int):
        super().__init__()
        self.inner, self.probability = inner, probability
        self.rng = np.random.default_rng(seed)

    def reset(self) -> None:
        self.inner.reset()

    def predict_batch(self, obs, episode_start, env_ids=None):
        keys = np.array(self.inner.predict_batch(obs, episode_start, env_ids), dtype=np.int8)
        noisy = self.rng.random(len(keys)) < self.probability
        keys[noisy] = MACRO_KEYS[self.rng.integers(N_MACROS, size=int(noisy.sum()))]
        return keys


class ActionTally(Agent):
    """Plays as ``inner`` and counts, per match row (``env_ids``), the frames each key combination was held.

    ``counts[row, code]``: code = the keys as a 10-bit number (key i = bit i).
    """

    def __init__(self, inner: Agent, n_rows: int):
        super().__init__()
        self.inner = inner
        self.counts = np.zeros((n_rows, 1 << P.N_KEYS), np.int32)

    def reset(self) -> None:
        self.inner.reset()

    def predict_batch(self, obs, episode_start, env_ids=None):
        keys = self.inner.predict_batch(obs, episode_start, env_ids)
        rows = np.arange(len(obs)) if env_ids is None else np.asarray(env_ids, np.intp)
        self.counts[rows, (np.asarray(keys) > 0.5) @ _KEY_BITS] += 1  # rows are distinct: += is exact
        return keys


def opponent_agent(name: str, seed: int | None = None) -> Agent:
    """A public bot by registry name, or ``hold:<macro>``."""
    if name.startswith(HOLD_PREFIX):
        macro = name.removeprefix(HOLD_PREFIX)
        if macro not in MACRO_NAMES:
            raise JudgeError(f"unknown macro {macro!r} in {name!r}; macros: {', '.join(MACRO_NAMES)}")
        return HoldMacroAgent(macro, seed=seed)
    if name not in agent_names():
        raise JudgeError(
            f"unknown opponent {name!r}; public bots: {', '.join(public_bot_names())}, or {HOLD_PREFIX}<macro>"
        )
    return make_agent(name, seed=seed)


@dataclass
class AgentUnderTest:
    """What ``--agent`` named: ``make(mode)`` builds a fresh player for one play mode."""

    label: str
    run_dir: Path | None  # the run folder of a checkpoint (for metrics.csv and config.json)
    make: Callable[[str], Agent]
    scripted: bool


def agent_under_test(spec: str, seed: int) -> AgentUnderTest:
    """Resolve ``--agent``: a checkpoint .zip, a run folder, a registered bot or ``hold:<macro>``."""
    path = Path(spec)
    if path.exists() or path.suffix == ".zip" or "/" in spec:
        zip_path = resolve_checkpoint(path)  # raises CheckpointError with a reason and nearby checkpoints

        def make_policy(mode: str) -> Agent:
            return ta.load_agent(zip_path, deterministic=mode != "sampled")

        make_policy("argmax")  # a checkpoint that cannot load fails here, before any match
        return AgentUnderTest(str(zip_path), zip_path.parent, make_policy, scripted=False)
    if spec.startswith(HOLD_PREFIX) or spec in agent_names():
        opponent_agent(spec)  # validates the name

        def make_bot(mode: str) -> Agent:
            return opponent_agent(spec, seed=seed + 10_000)

        return AgentUnderTest(spec, None, make_bot, scripted=True)
    raise JudgeError(
        f"--agent {spec!r} is not a checkpoint .zip, a run folder, a registered bot "
        f"({', '.join(agent_names())}) or {HOLD_PREFIX}<macro>"
    )


def player_for_mode(agent: AgentUnderTest, mode: str, n_rows: int, seed: int) -> tuple[Agent, ActionTally]:
    """The agent as it plays ``mode``, wrapped to count its actions (before any noise)."""
    tally = ActionTally(agent.make(mode), n_rows)
    player: Agent = tally
    if mode == "argmax_eps":
        player = RandomMacroNoise(tally, RANDOM_ACTION_PROBABILITY, seed)
    return player, tally


def constant_family() -> list[str]:
    """``hold:<macro>`` for every macro but idle (holding nothing is the public ``constant`` bot)."""
    return [f"{HOLD_PREFIX}{name}" for name in MACRO_NAMES if name != "idle"]


def opponent_names(choice: str) -> list[str]:
    """``--opponents``: "all" (public bots, then the constant-action family) or a comma-separated list."""
    if choice == "all":
        return [*public_bot_names(), *constant_family()]
    names = [name.strip() for name in choice.split(",") if name.strip()]
    if not names:
        raise JudgeError("--opponents is empty; give 'all' or a comma-separated list of opponents")
    for name in names:
        opponent_agent(name)  # validates
    if len(set(names)) != len(names):
        raise JudgeError(f"--opponents names an opponent twice: {choice!r}")
    return names


# ==================================================================================
# Playing and summarizing
# ==================================================================================
def play_mode(
    agent: AgentUnderTest, mode: str, names: list[str], matches: int, max_timesteps: int, seed: int
) -> dict[str, Any]:
    """Every match of one mode in one batched engine; returns the mode's summary (see :func:`summarize_mode`)."""
    n_rows = len(names) * matches
    player, tally = player_for_mode(agent, mode, n_rows, seed)
    opponents = {name: opponent_agent(name, seed=seed + i) for i, name in enumerate(names)}
    counter = SelfDestructCounter(n_rows)
    torch.manual_seed(seed)  # sampled actions repeat from run to run
    t0 = time.monotonic()
    played = play_vs_opponents(
        player,
        opponents,
        matches,
        max_timesteps,
        seed=seed,
        alternate_sides=True,
        trackers=[counter],
        alternate_slots=True,
    )
    seconds = time.monotonic() - t0
    counts = {name: tally.counts[j * matches : (j + 1) * matches] for j, name in enumerate(names)}
    return summarize_mode(mode, played, counts, seconds)


def action_stats(counts: np.ndarray) -> dict[str, Any]:
    """The commonest key combination (and its share of all frames) and the distinct ones per match.

    :param counts: (matches, 1024) frames per key combination, from :class:`ActionTally`
    """
    totals = counts.sum(axis=0)
    code = int(np.argmax(totals))
    keys = (code & _KEY_BITS) > 0
    return {
        "commonest_action": describe_keys(keys),
        "commonest_share": float(totals[code] / max(totals.sum(), 1)),
        "distinct_per_match": float((counts > 0).sum(axis=1).mean()),
    }


def summarize_cell(opponent: str, matches: list[dict[str, Any]], counts: np.ndarray) -> dict[str, Any]:
    """One opponent's figures: rates with Wilson intervals, damage ratio, self-destructs, actions."""
    n = len(matches)
    row = summarize(opponent, matches)
    cell: dict[str, Any] = {"opponent": opponent, "matches": n}
    for outcome, plural, rate in (
        ("win", "wins", row.win_rate),
        ("draw", "draws", row.draw_rate),
        ("loss", "losses", row.loss_rate),
    ):
        count = round(rate * n)
        cell[plural] = count
        cell[f"{outcome}_rate"] = rate
        cell[f"{outcome}_ci95"] = wilson_interval(count, n)
    cell["damage_ratio"] = row.damage_ratio
    cell["self_destructs_per_match"] = sum(m["self_destructs"] for m in matches) / n
    cell["started_right"] = sum(m["start_side"] > 0 for m in matches)
    cell["as_player_2"] = sum(m["agent_slot"] == 1 for m in matches)
    return {**cell, **action_stats(counts)}


def summarize_mode(
    mode: str, played: dict[str, list[dict[str, Any]]], counts: dict[str, np.ndarray], seconds: float
) -> dict[str, Any]:
    """A mode's cells plus the figures the targets read (None where an opponent they need was not played)."""
    cells = {name: summarize_cell(name, matches, counts[name]) for name, matches in played.items()}
    public = public_bot_names()
    everyone = all(name in cells for name in public)
    played_public = [name for name in public if name in cells]
    summary: dict[str, Any] = {
        "mode": mode,
        "seconds": seconds,
        "cells": cells,
        "public_played": played_public,
        "worst_public": None,
        "worst_public_win_rate": None,
        "mean_public_win_rate": None,
        "worst_constant": None,
        "worst_constant_win_rate": None,
    }
    if played_public:
        worst = min(played_public, key=lambda name: cells[name]["win_rate"])
        summary["worst_public"] = worst
        if everyone:  # a worst over some of the bots is shown, never judged
            summary["worst_public_win_rate"] = cells[worst]["win_rate"]
            summary["mean_public_win_rate"] = float(np.mean([cells[name]["win_rate"] for name in public]))
        summary.update(
            {f"public_{k}": v for k, v in action_stats(np.concatenate([counts[n] for n in played_public])).items()}
        )
    family = ["constant", *constant_family()]
    if all(name in cells for name in family):
        worst = min(family, key=lambda name: cells[name]["win_rate"])
        summary["worst_constant"], summary["worst_constant_win_rate"] = worst, cells[worst]["win_rate"]
    return summary


# ==================================================================================
# Targets
# ==================================================================================
@dataclass(frozen=True)
class Target:
    """One row of issue 14's Targets table: ``value(mode summary) <comparison> threshold`` in ``mode``."""

    key: str
    measure: str
    mode: str
    comparison: str  # ">=" or "<="
    threshold: float
    value: Callable[[dict[str, Any]], float | None]

    def met(self, value: float) -> bool:
        return value >= self.threshold if self.comparison == ">=" else value <= self.threshold


def _cell_value(opponent: str, field: str) -> Callable[[dict[str, Any]], float | None]:
    def value(summary: dict[str, Any]) -> float | None:
        cell = summary["cells"].get(opponent)
        return None if cell is None else cell[field]

    return value


def _public_value(field: str) -> Callable[[dict[str, Any]], float | None]:
    """A figure over the public-bot matches, measured only when every public bot was played."""

    def value(summary: dict[str, Any]) -> float | None:
        return summary.get(field) if summary["mean_public_win_rate"] is not None else None

    return value


# Issue 14's Targets table, as far as one run of the judge can measure it. Issue 14 names
# the mode for the win-rate rows; the action-variety rows are judged in argmax play, where
# one held combination shows (sampled play varies by construction).
TARGETS: tuple[Target, ...] = (
    Target("worst_public_sampled", "worst win rate over the public bots", "sampled", ">=", 0.50,
           lambda s: s["worst_public_win_rate"]),
    Target("worst_public_argmax", "worst win rate over the public bots", "argmax", ">=", 0.50,
           lambda s: s["worst_public_win_rate"]),
    Target("mean_public_sampled", "mean win rate over the public bots", "sampled", ">=", 0.70,
           lambda s: s["mean_public_win_rate"]),
    Target("based_sampled", "win rate vs based", "sampled", ">=", 0.80, _cell_value("based", "win_rate")),
    Target("based_argmax", "win rate vs based", "argmax", ">=", 0.85, _cell_value("based", "win_rate")),
    Target("aggressive_sampled", "win rate vs aggressive", "sampled", ">=", 0.50,
           _cell_value("aggressive", "win_rate")),
    Target("constant_family_sampled", "worst win rate over the constant-action bots", "sampled", ">=", 0.90,
           lambda s: s["worst_constant_win_rate"]),
    Target("constant_family_argmax", "worst win rate over the constant-action bots", "argmax", ">=", 0.90,
           lambda s: s["worst_constant_win_rate"]),
    Target("commonest_share_argmax", "commonest action's share of frames (public bots)", "argmax", "<=", 0.35,
           _public_value("public_commonest_share")),
    Target("distinct_actions_argmax", "distinct actions per match (public bots)", "argmax", ">=", 8,
           _public_value("public_distinct_per_match")),
    Target("self_destructs_argmax", "self-destructs per match vs constant", "argmax", "<=", 0.3,
           _cell_value("constant", "self_destructs_per_match")),
)  # fmt: skip


def check_targets(summaries: dict[str, dict[str, Any]], targets: tuple[Target, ...] = TARGETS) -> list[dict[str, Any]]:
    """Each target's value and status ("PASS", "FAIL" or "not measured") from the modes' summaries."""
    results = []
    for target in targets:
        summary = summaries.get(target.mode)
        value = target.value(summary) if summary is not None else None
        status = "not measured" if value is None else ("PASS" if target.met(value) else "FAIL")
        goal = f"{target.comparison} {target.threshold:g}"
        results.append(
            {
                "target": target.key,
                "measure": target.measure,
                "mode": target.mode,
                "goal": goal,
                "value": value,
                "status": status,
            }
        )
    return results


def missed_targets(results: list[dict[str, Any]]) -> list[str]:
    """What ``--check`` fails on: every measured target missed, or that none was measured."""
    if all(r["status"] == "not measured" for r in results):
        return ["no target was measured (play a mode and every opponent a target needs)"]
    return [f"{r['measure']} ({r['mode']}) {r['goal']}: {r['value']:.3g}" for r in results if r["status"] == "FAIL"]


def check_passed(results: list[dict[str, Any]]) -> bool:
    """``--check`` passes: every measured target met, and at least one measured."""
    return not missed_targets(results)


# ==================================================================================
# The run behind a checkpoint: approx-KL and the bots it trained against
# ==================================================================================
def recent_update_stats(run_dir: Path, updates: int = KL_UPDATES) -> dict[str, float] | None:
    """Mean approx_kl and clip_fraction over the last ``updates`` rows of ``metrics.csv`` that have them."""
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return None
    with path.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if _number(r.get("approx_kl")) is not None][-updates:]
    if not rows:
        return None
    stats = {"updates": float(len(rows)), "approx_kl": float(np.mean([_number(r["approx_kl"]) for r in rows]))}
    clip = [_number(r.get("clip_fraction")) for r in rows]
    if all(c is not None for c in clip):
        stats["clip_fraction"] = float(np.mean(clip))
    return stats


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def trained_against(run_dir: Path) -> list[str] | None:
    """The bots in the run's opponent mix (``config.json``), the opponent schedule's when it was on
    (the bots it could admit); None when the config cannot be read."""
    try:
        config = json.loads((run_dir / "config.json").read_text())
        mix = config["self_play"]["opponents"]
        controls = config.get("controls", {})
        pool = controls.get("opponent_weighting", {}).get("pool", "mix")
        schedule = controls.get("opponent_schedule", {"enabled": False})
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if schedule.get("enabled"):
        return sorted({name for group in schedule["groups"] for name in group} | set(schedule["permanent"]))
    if pool == "roster":
        return agent_names()
    return sorted({entry[1] for entry in mix.values() if isinstance(entry[1], str)})


# ==================================================================================
# Printing
# ==================================================================================
def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _rate_with_interval(cell: dict[str, Any], outcome: str) -> str:
    low, high = cell[f"{outcome}_ci95"]
    return f"{_pct(cell[f'{outcome}_rate'])} [{100 * low:.0f}-{100 * high:.0f}]"


def cell_line(cell: dict[str, Any]) -> tuple[str, ...]:
    name = cell["opponent"]
    keys = describe_keys(macro_keys(macro_id(name.removeprefix(HOLD_PREFIX)))) if name.startswith(HOLD_PREFIX) else ""
    ratio = cell["damage_ratio"]
    return (
        name,
        keys,
        str(cell["matches"]),
        _rate_with_interval(cell, "win"),
        _rate_with_interval(cell, "draw"),
        _rate_with_interval(cell, "loss"),
        f"{ratio:.2f}" if ratio < 1000 else f"{ratio:.3g}",
        f"{cell['self_destructs_per_match']:.2f}",
        f"{cell['commonest_action']} {_pct(cell['commonest_share'])}",
        f"{cell['distinct_per_match']:.1f}",
    )


def print_aligned(header: tuple[str, ...], lines: list[tuple[str, ...]]) -> None:
    widths = [max(len(c[k]) for c in [header, *lines]) for k in range(len(header))]
    for c in [header, tuple("-" * w for w in widths), *lines]:
        print("  ".join(c[k].ljust(widths[k]) if k < 2 else c[k].rjust(widths[k]) for k in range(len(c))))


def print_mode(summary: dict[str, Any], matches: int, max_timesteps: int) -> None:
    print()
    print(
        f"== {summary['mode']}: {matches} matches per opponent, {max_timesteps} frames each, both sides and slots "
        f"({summary['seconds']:.0f} s) =="
    )
    header = (
        "opponent",
        "keys",
        "n",
        "win [95% CI]",
        "draw [95% CI]",
        "loss [95% CI]",
        "dmg ratio",
        "self-destr/match",
        "commonest action",
        "distinct/match",
    )
    print_aligned(header, [cell_line(c) for c in summary["cells"].values()])
    cells, public = summary["cells"], summary["public_played"]
    if summary["worst_public"] is not None:
        worst = cells[summary["worst_public"]]
        everyone = summary["mean_public_win_rate"] is not None
        scope = "" if everyone else f" (only {len(public)} of the public bots played)"
        print(
            f"HEADLINE ({summary['mode']}): worst win rate over the public bots{scope}: "
            f"{_rate_with_interval(worst, 'win')} of {worst['matches']} vs {worst['opponent']}"
        )
        if summary["mean_public_win_rate"] is not None:
            print(f"  mean win rate over the {len(public)} public bots: {_pct(summary['mean_public_win_rate'])}")
        print(
            f"  actions vs the public bots: commonest {summary['public_commonest_action']} "
            f"{_pct(summary['public_commonest_share'])} of frames; {summary['public_distinct_per_match']:.1f} "
            "distinct key combinations per match"
        )
    if summary["worst_constant"] is not None:
        worst = cells[summary["worst_constant"]]
        print(f"  worst constant-action bot: {worst['opponent']} ({_rate_with_interval(worst, 'win')})")


def print_targets(results: list[dict[str, Any]]) -> None:
    print()
    print("Targets (issue 14; exploiter's win rate <= 60%: benchmarks/exploitability.py):")
    lines = []
    for r in results:
        value = "-" if r["value"] is None else f"{r['value']:.3g}"
        lines.append((r["measure"], r["mode"], r["goal"], value, r["status"]))
    print_aligned(("measure", "mode", "target", "value", "status"), lines)


def print_run_context(agent: AgentUnderTest) -> None:
    public = public_bot_names()
    print(f"Public roster ({len(public)} bots, from the agent registry): {', '.join(public)}")
    if agent.run_dir is None:
        return
    seen = trained_against(agent.run_dir)
    if seen is not None:
        never = [name for name in public if name not in seen]
        print(f"  the run trained against {', '.join(seen) or 'no scripted bot'}; never saw {', '.join(never) or '-'}")
    stats = recent_update_stats(agent.run_dir)
    if stats is None:
        print(f"  approx-KL: no metrics.csv with approx_kl in {agent.run_dir}")
    else:
        clip = f", clip fraction {stats['clip_fraction']:.3f}" if "clip_fraction" in stats else ""
        print(
            f"  last {stats['updates']:.0f} updates (metrics.csv): mean approx-KL {stats['approx_kl']:.4f}{clip} "
            "(issue 14 aims for 0.005-0.02 and 0.05-0.2)"
        )


# ==================================================================================
# Judging (importable: tests call it with tiny settings)
# ==================================================================================
def judge(
    spec: str,
    matches: int = 100,
    max_timesteps: int = 9000,
    modes: tuple[str, ...] = MODES,
    opponents: str = "all",
    seed: int = 0,
    quiet: bool = False,
) -> dict[str, Any]:
    """Play every mode and check the targets; returns the report (what ``--json`` writes)."""
    if matches <= 0 or max_timesteps <= 0:
        raise JudgeError(f"--matches and --max-timesteps must be positive, got {matches} and {max_timesteps}")
    agent = agent_under_test(spec, seed)
    names = opponent_names(opponents)
    if not quiet:
        alike = " (a scripted bot: sampled and argmax play alike)" if agent.scripted else ""
        print(f"Judging {agent.label}{alike}: modes {', '.join(modes)}; {len(names)} opponents x {matches} matches")
        print_run_context(agent)
    summaries = {}
    for mode in modes:
        summaries[mode] = play_mode(agent, mode, names, matches, max_timesteps, seed)
        if not quiet:
            print_mode(summaries[mode], matches, max_timesteps)
    results = check_targets(summaries)
    if not quiet:
        print_targets(results)
        missed = missed_targets(results)
        print(f"Verdict: {'every measured target met' if not missed else f'{len(missed)} missed'}")
    update_stats = recent_update_stats(agent.run_dir) if agent.run_dir is not None else None
    return {
        "agent": agent.label,
        "matches": matches,
        "max_timesteps": max_timesteps,
        "seed": seed,
        "public_bots": public_bot_names(),
        "modes": summaries,
        "targets": results,
        "passed": check_passed(results),
        "recent_updates": update_stats,
        "trained_against": trained_against(agent.run_dir) if agent.run_dir is not None else None,
    }


def parse_modes(text: str) -> tuple[str, ...]:
    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise JudgeError(f"--modes {text!r}: choose from {', '.join(MODES)} (comma-separated)")
    return modes


# ==================================================================================
# Training (without --agent): the cpu config under a wall-clock budget, then the judge
# ==================================================================================
def train(config: dict, run_dir: Path, minutes: float, progress: bool) -> dict:
    """``run_training_loop`` with a wall-clock budget; returns the training figures.

    When the budget runs out while steps remain, the run's ``StopFlag`` is set (as SIGTERM
    does): the checkpoint of the current rollout boundary is written and training stops
    cleanly (continue with ``train_agent.py --resume DIR``).
    """
    ta.validate_config(config)
    if (run_dir / "manifest.json").exists() or any(run_dir.glob("rl_model_*_steps.zip")):
        raise ta.ConfigError(
            f"{run_dir} already holds checkpoints: choose another --run-dir, or judge it with --agent {run_dir}"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    ta.setup_logging(run_dir)
    ta.log_config(config)
    from environment.checkpoints import atomic_write_text

    atomic_write_text(run_dir / "config.json", json.dumps(config, indent=2, default=list))
    ta.seed_everything(config["training"]["seed"])
    device = ta.pick_device(config["training"]["device"])
    run = ta.TrainingRun(config, run_dir, device)
    configure_sb3_logger(run)
    total = config["training"]["total_timesteps"]
    budget_hit = threading.Event()

    def out_of_time() -> None:
        # Only while steps remain: once the last rollout is in, the run finishes (final save) as usual.
        if run.model.num_timesteps < total and not run.stop_flag:
            budget_hit.set()
            run.stop_flag.reason = f"time budget of {minutes:g} min"
            ta.log.warning(
                "Time budget of %g min reached: saving a checkpoint at the next safe point, then stopping", minutes
            )

    timer = threading.Timer(minutes * 60, out_of_time) if minutes > 0 else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    t0 = time.monotonic()
    try:
        ta._learn(run, progress)  # the trainer's learn: callbacks, signals, divergence policy
    finally:
        if timer is not None:
            timer.cancel()
    wall = time.monotonic() - t0
    steps = int(run.model.num_timesteps)
    finish_run(run)  # plot and final video (skipped by the trainer when stopped early)
    return {
        "wall_s": wall,
        "steps": steps,
        "sps": steps / wall if wall > 0 else math.nan,
        "stopped_by_budget": budget_hit.is_set(),
        "stop_reason": run.stop_flag.reason or "finished",
        "device": str(device),
        "total_timesteps": total,
        "last_checkpoint_step": run.last_saved_step,
    }


def train_for_judging(cfg: argparse.Namespace) -> tuple[Path, dict]:
    config = ta.apply_overrides(copy.deepcopy(ta.TRAIN_CONFIG_CPU), cfg.set)
    if cfg.total_timesteps is not None:
        config["training"]["total_timesteps"] = cfg.total_timesteps
    run_dir = cfg.run_dir or ROOT / "checkpoints" / f"learn_quality__{time.strftime('%Y%m%d-%H%M%S')}"
    print(
        f"Training config 'cpu' ({config['agent']['type']}) into {run_dir}, budget "
        f"{f'{cfg.minutes:g} min' if cfg.minutes > 0 else 'none'}"
        + (f", overrides {cfg.set}" if cfg.set else "")
        + "; torch threads from OMP_NUM_THREADS="
        + (os.environ.get("OMP_NUM_THREADS") or "(unset: all cores)"),
        flush=True,
    )
    training = train(config, run_dir, cfg.minutes, progress=cfg.progress == "bar")
    print(
        f"Training: {training['steps']:,} steps in {training['wall_s'] / 60:.1f} min = {training['sps']:,.0f} "
        f"steps/s on {training['device']} ({training['stop_reason']})"
    )
    return run_dir, training


# ==================================================================================
# CLI
# ==================================================================================
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--agent",
        "--agent-path",
        dest="agent",
        default=None,
        help="checkpoint .zip, run folder, registered bot or hold:<macro> (default: train first)",
    )
    parser.add_argument("--matches", type=_positive_int, default=100, help="matches per opponent and mode (100)")
    add_match_length_flag(parser)
    parser.add_argument("--modes", default=",".join(MODES), help=f"play modes, comma-separated ({','.join(MODES)})")
    parser.add_argument(
        "--opponents", default="all", help="'all' (public bots + constant-action family) or a comma-separated list"
    )
    parser.add_argument("--seed", type=int, default=0, help="match and bot seed (default 0)")
    add_report_flags(parser)  # --json PATH, --check
    training = parser.add_argument_group("training first (without --agent)")
    training.add_argument("--minutes", type=float, default=30.0, help="training wall-clock budget (0 = none)")
    training.add_argument("--total-timesteps", type=int, default=None, help="training.total_timesteps")
    training.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="config override, as train_agent.py --set"
    )
    training.add_argument(
        "--run-dir", type=Path, default=None, help="run folder (default checkpoints/learn_quality__<timestamp>)"
    )
    training.add_argument("--progress", choices=["bar", "lines"], default="lines", help="training progress display")
    return parser


def main(argv: list[str] | None = None) -> int:
    cfg = build_parser().parse_args(argv)
    training = None
    try:
        modes = parse_modes(cfg.modes)
        spec = cfg.agent
        if spec is None:
            run_dir, training = train_for_judging(cfg)
            spec = str(run_dir)
        else:
            ta.setup_logging()
        report = judge(spec, cfg.matches, cfg.max_timesteps, modes, cfg.opponents, cfg.seed)
    except (JudgeError, ta.ConfigError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report["training"] = training
    return finish(cfg, "learn_quality", report, missed_targets(report["targets"]))


if __name__ == "__main__":
    sys.exit(main())
