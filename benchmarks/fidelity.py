"""Fidelity: golden traces recorded from the original engine, replayed through ours.

Usage::

    .venv/bin/python benchmarks/fidelity.py [TRACES ...] [--all-fields] [--outcomes] [--json PATH] [--check]

Default traces: ``../shared/fidelity/traces.jsonl`` (the shared oracle) and
``tests/data/original_traces.jsonl.gz`` (recorded by us from the original engine,
with the observations both players received). Each scenario is replayed
open-loop: the recorded keys of both players are fed frame by frame, from the
same start side, with the same overrides (starting damage, weapon, spawners).
After every frame our state is compared with the recorded one: position ±0.05,
velocity ±0.1, damage ±0.5, state, move and stocks exact (``--all-fields`` adds
facing, floor contact, jumps, recoveries, weapon, damage taken that frame), and,
where the trace has them, all 64 observation values of both players (±1e-3;
weapon slots only where the trace fixed the weapon spawns, since the original
draws them from Python's global random state).

``--outcomes`` also plays each constant action against BasedAgent in the
tournament's match loop and compares win/draw/loss with
``../shared/fidelity/original_outcomes.md``.

Prints one line per scenario, then the summary and the targets:
- scenarios matching on every frame: >= 90%;
- remaining scenarios: frames matched before their first divergence >= 95% of their frames;
- observation values that differ: 0;
- constant-action outcomes (with ``--outcomes``): every cell matches.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import re
import sys
from pathlib import Path

import numpy as np

from environment import params as P
from environment.agents import BasedAgent
from environment.engine import BrawlEngine
from environment.observation import OBS_HALF, SLOTS, ObservationBuilder
from environment.params import DEFAULT_PARAMS, TOURNAMENT_PARAMS, GameParams

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "fidelity"
DEFAULT_TRACES = (SHARED / "traces.jsonl", ROOT / "tests" / "data" / "original_traces.jsonl.gz")
TOLERANCE = {"x": 0.05, "y": 0.05, "vx": 0.1, "vy": 0.1, "damage": 0.5, "dmg_frame": 0.5}
CORE = ("x", "y", "vx", "vy", "damage", "state", "move", "stocks")
EXTRA = ("facing", "grounded", "jumps", "recoveries", "weapon", "dmg_frame")
OBS_TOLERANCE = 1e-3
# Weapon-slot values in a player's 64 (its own slots, then its view of the opponent's copy of them).
WEAPON_SLOT_INDICES = [*range(SLOTS, SLOTS + 12), *range(OBS_HALF + SLOTS, OBS_HALF + SLOTS + 12)]
TARGET_FULL = 0.90
TARGET_FRAMES = 0.95
WEAPONS = {"Punch": P.PUNCH, "Spear": P.SPEAR, "Hammer": P.HAMMER}


def load_traces(paths) -> list[dict]:
    traces = []
    for path in paths:
        path = Path(path)
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as fh:
            traces.extend(json.loads(line) for line in fh if line.strip())
    return traces


def trace_params(trace: dict) -> GameParams:
    """The match loop the trace was recorded with (the tournament's adds a platform update), plus overrides."""
    base = TOURNAMENT_PARAMS if trace.get("loop") == "run_match" else DEFAULT_PARAMS
    return dataclasses.replace(base, **trace.get("params", {}))


def start(trace: dict) -> BrawlEngine:
    """An engine at the trace's first frame: start side, starting damage and weapons, spawner state."""
    engine = BrawlEngine(
        1, max_timesteps=trace["frames"] + 10, seed=int(trace.get("seed", 0)), params=trace_params(trace)
    )
    engine.reset(p0_side=1 if trace["p0_start_x"] > 0 else -1)
    s = engine.state
    for i in range(2):
        init = trace.get("init", {})
        if f"p{i}_damage" in init:
            s.damage[0, i] = float(init[f"p{i}_damage"])
        if f"p{i}_weapon" in init:
            s.weapon[0, i] = WEAPONS[init[f"p{i}_weapon"]]
    spawners = trace.get("spawners")
    if spawners:
        s.spawner_cooldown[0] = s.spawner_base_cooldown[0] = spawners["cooldown"]
        s.spawner_last_spawn[0] = spawners["last_spawn"]
    return engine


def _ours(s, i: int) -> dict:
    return {
        "x": s.x[0, i],
        "y": s.y[0, i],
        "vx": s.vx[0, i],
        "vy": s.vy[0, i],
        "damage": s.damage[0, i],
        "state": s.state[0, i],
        "move": s.move[0, i],
        "stocks": s.stocks[0, i],
        "facing": int(s.facing[0, i] > 0),
        "grounded": int(s.grounded[0, i]),
        "jumps": s.jumps_left[0, i],
        "recoveries": s.recoveries_left[0, i],
        "weapon": s.weapon[0, i],
        "dmg_frame": s.damage_taken_frame[0, i],
    }


def replay(trace: dict, fields=CORE) -> dict:
    """Replay one trace; returns its first divergence (frame, what) and how many frames matched."""
    engine = start(trace)
    builder = ObservationBuilder(1, engine.params) if "obs" in trace else None
    skip = [] if trace.get("weapons") == "fixed" else WEAPON_SLOT_INDICES
    n = trace["frames"]
    bits = 1 << np.arange(P.N_KEYS)
    first, what, obs_mismatch = None, [], 0
    for t in range(n):
        keys = np.array([[(trace["keys"][0][t] & bits) > 0, (trace["keys"][1][t] & bits) > 0]])
        if engine._needs_reset[0]:
            first, what = t, ["match ended early"]
            break
        engine.step(keys)
        bad = _diverging(engine.state, trace, t, fields)
        if builder is not None:
            ours = builder.build(engine.state)[0].reshape(2 * 64)
            theirs = np.asarray(trace["obs"][t], np.float64).reshape(2 * 64)
            diff = (np.abs(ours - theirs) > OBS_TOLERANCE).reshape(2, 64)
            diff[:, skip] = False
            diff = diff.reshape(-1)
            if diff.any():
                obs_mismatch += int(diff.sum())
                bad += [f"p{k // 64}.obs[{k % 64}]" for k in np.flatnonzero(diff)[:3]]
        if bad:
            first, what = t, bad
            break
    return {
        "name": trace["name"],
        "kind": trace.get("kind", "?"),
        "frames": n,
        "first_divergence": first,
        "diverging": what,
        "matched_frames": n if first is None else first,
        "obs_mismatch": obs_mismatch,
        "has_observations": builder is not None,
    }


def _diverging(s, trace: dict, t: int, fields) -> list[str]:
    bad = []
    for i in range(2):
        ours = _ours(s, i)
        for f in fields:
            theirs, mine = trace[f"p{i}"][f][t], float(ours[f])
            if abs(mine - theirs) > TOLERANCE[f] if f in TOLERANCE else mine != theirs:
                bad.append(f"p{i}.{f} theirs={theirs} ours={round(mine, 4)}")
    return bad


def summarize(results: list[dict]) -> dict:
    full = [r for r in results if r["first_divergence"] is None]
    rest = [r for r in results if r["first_divergence"] is not None]
    rest_frames = sum(r["frames"] for r in rest)
    by_kind: dict[str, list[int]] = {}
    for r in results:
        tally = by_kind.setdefault(r["kind"], [0, 0])
        tally[0] += 1
        tally[1] += r["first_divergence"] is None
    return {
        "scenarios": len(results),
        "matched_fully": len(full),
        "matched_fully_share": len(full) / max(len(results), 1),
        "remaining": len(rest),
        "remaining_frames_matched_share": sum(r["matched_frames"] for r in rest) / rest_frames if rest else 1.0,
        "observation_values_differing": sum(r["obs_mismatch"] for r in results),
        "scenarios_with_observations": sum(r["has_observations"] for r in results),
        "by_kind": {k: {"scenarios": v[0], "matched_fully": v[1]} for k, v in sorted(by_kind.items())},
    }


# --- constant actions against BasedAgent, in the tournament's match loop -----------------
CONSTANT_KEYS = {
    "(none)": (),
    "j": (P.K_LIGHT,),
    "k": (P.K_HEAVY,),
    "l": (P.K_DODGE,),
    "w+k": (P.K_W, P.K_HEAVY),
    "s+k": (P.K_S, P.K_HEAVY),
    "d+k": (P.K_D, P.K_HEAVY),
    "space+k": (P.K_JUMP, P.K_HEAVY),
    "w+space+k": (P.K_W, P.K_JUMP, P.K_HEAVY),
}


def constant_vs_based(keys: tuple, slot: int, start_x: float, delay: int = 0, frames: int = 2700) -> str:
    """W/D/L of a constant-action player against BasedAgent (one deterministic match)."""
    engine = BrawlEngine(1, max_timesteps=frames, params=TOURNAMENT_PARAMS)
    side = 1 if start_x > 0 else -1
    engine.reset(p0_side=side if slot == 0 else -side)
    builder, based = ObservationBuilder(1, TOURNAMENT_PARAMS), BasedAgent()
    held = np.zeros(P.N_KEYS, bool)
    held[list(keys)] = True
    for t in range(frames):
        obs = builder.build(engine.state)
        both = np.zeros((1, 2, P.N_KEYS), bool)
        both[0, slot] = held if t >= delay else False
        both[0, 1 - slot] = based.predict_batch(obs[:, 1 - slot], np.array([t == 0]))[0] > 0
        if engine.step(both).done[0]:
            break
    mine, theirs = engine.state.stocks[0, slot], engine.state.stocks[0, 1 - slot]
    return "W" if mine > theirs else "L" if mine < theirs else "D"


def original_outcomes(path: Path = SHARED / "original_outcomes.md") -> dict:
    """The measured cells of the original's outcome tables: {(keys, slot, start_x): 'W'} and delayed W/D/L."""
    fixed, delayed = {}, {}
    section = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## Fixed start"):
            section = "fixed"
        elif line.startswith("## Delayed start"):
            section = "delayed"
        if not line.startswith("| ") or line.startswith("| keys") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        name = cells[0]
        if section == "fixed":
            for cell, (slot, start_x) in zip(cells[1:5], ((0, 5), (0, -5), (1, 5), (1, -5)), strict=True):
                if cell in ("W", "D", "L"):
                    fixed[(name, slot, start_x)] = cell
        elif section == "delayed" and re.fullmatch(r"\d+/\d+/\d+", cells[1]):
            delayed[name] = cells[1]
    return {"fixed": fixed, "delayed": delayed}


def compare_outcomes() -> dict:
    expected = original_outcomes()
    rows = []
    for (name, slot, start_x), theirs in expected["fixed"].items():
        ours = constant_vs_based(CONSTANT_KEYS[name], slot, start_x)
        rows.append({"keys": name, "slot": slot, "start": start_x, "delay": "none", "original": theirs, "ours": ours})
    for name, theirs in expected["delayed"].items():
        results = [
            constant_vs_based(CONSTANT_KEYS[name], 0, 5 if i % 2 == 0 else -5, delay=(7 * i) % 48) for i in range(10)
        ]
        ours = f"{results.count('W')}/{results.count('D')}/{results.count('L')}"
        rows.append({"keys": name, "slot": 0, "start": "±5", "delay": "10 matches", "original": theirs, "ours": ours})
    return {"cells": rows, "matching": sum(r["original"] == r["ours"] for r in rows), "total": len(rows)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("traces", nargs="*", help="trace files (.jsonl or .jsonl.gz); default: the shared and our own")
    ap.add_argument("--all-fields", action="store_true", help="also compare facing, floor, jumps, recoveries, ...")
    ap.add_argument("--outcomes", action="store_true", help="also play the constant-action outcome tables (~1 min)")
    ap.add_argument("--json", type=Path, help="write the figures to this file")
    ap.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = ap.parse_args(argv)
    paths = args.traces or [p for p in DEFAULT_TRACES if p.exists()]
    if not paths:
        print(f"no traces found (looked for {', '.join(map(str, DEFAULT_TRACES))})", file=sys.stderr)
        return 2
    fields = CORE + EXTRA if args.all_fields else CORE
    results = [replay(trace, fields) for trace in load_traces(paths)]
    for r in results:
        if r["first_divergence"] is None:
            print(f"{r['name']:44s} MATCH ({r['frames']} frames)")
        else:
            print(
                f"{r['name']:44s} diverges at frame {r['first_divergence']:4d}/{r['frames']}: "
                + "; ".join(r["diverging"][:3])
            )
    summary = summarize(results)
    print("\n== summary ==")
    print(f"traces: {', '.join(str(p) for p in paths)}")
    print(
        f"scenarios matching on every frame: {summary['matched_fully']} of {summary['scenarios']} "
        f"({summary['matched_fully_share']:.1%}); target >= {TARGET_FULL:.0%}"
    )
    print(
        f"remaining {summary['remaining']} scenarios: frames matched before the first divergence "
        f"{summary['remaining_frames_matched_share']:.1%} of their frames; target >= {TARGET_FRAMES:.0%}"
    )
    print(
        f"observation values differing: {summary['observation_values_differing']} "
        f"(in {summary['scenarios_with_observations']} scenarios with observations); target 0"
    )
    print("by kind: " + ", ".join(f"{k} {v['matched_fully']}/{v['scenarios']}" for k, v in summary["by_kind"].items()))
    ok = (
        summary["matched_fully_share"] >= TARGET_FULL
        and summary["remaining_frames_matched_share"] >= TARGET_FRAMES
        and summary["observation_values_differing"] == 0
    )
    report = {"summary": summary, "scenarios": results}
    if args.outcomes:
        outcomes = compare_outcomes()
        report["outcomes"] = outcomes
        print("\nconstant action vs BasedAgent (tournament loop), original / ours:")
        for row in outcomes["cells"]:
            mark = "" if row["original"] == row["ours"] else "   <-- differs"
            print(
                f"  {row['keys']:10s} slot {row['slot']} start {row['start']!s:3s} delay {row['delay']:10s} "
                f"{row['original']:7s} {row['ours']:7s}{mark}"
            )
        print(f"cells matching: {outcomes['matching']} of {outcomes['total']}; target: all")
        ok &= outcomes["matching"] == outcomes["total"]
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=int))
    if args.check and not ok:
        print("FIDELITY TARGET MISSED", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
