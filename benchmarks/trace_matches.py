"""Where an agent's drawn and lost matches went: matches played the judge's way, with a timeline.

Usage::

    .venv/bin/python benchmarks/trace_matches.py --agent checkpoints/<run> --opponents hold:pickup_drop,constant
        [--mode argmax] [--matches 100] [--max-timesteps 9000] [--every 600] [--results draw,loss] [--seed 0]

The judge (``benchmarks/learn_quality.py``) says how often an agent draws or loses against
each opponent; this says where and doing what. It plays ``--matches`` matches against each
named opponent the judge's way (``--mode``, both spawn sides and both player slots in turn,
``--max-timesteps`` frames; the same kind of matches, not the judge's very ones, whose
seeds depend on every opponent it plays). For each match whose result is in ``--results``
it prints the agent's start side and slot, its commonest key combinations over the match,
then a line every ``--every`` frames: both players' x, y and state and their distance
(read from the agent's observation: y points down; states named as in ``environment/params.py``)
and the keys the agent held. The keys are what reached the engine (with ``argmax_eps``,
after the 1% random moves).

Exit status: 0; 2 on bad input (one line naming the problem).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

import numpy as np
import torch

from benchmarks.learn_quality import (
    MODES,
    JudgeError,
    agent_under_test,
    opponent_agent,
    opponent_names,
    player_for_mode,
)
from benchmarks.report import add_match_length_flag
from environment import params as P
from environment.agents import Agent
from environment.checkpoints import CheckpointError
from environment.evaluation import play_vs_opponents
from environment.macros import describe_keys
from environment.observation import OPP, STATE, X, Y
from environment.play import _positive_int

RESULTS = ("win", "draw", "loss")


class TimelineRecorder(Agent):
    """Wraps the player: per engine row, a snapshot every ``every`` frames and a count of its key combinations."""

    def __init__(self, inner: Agent, every: int):
        self.inner, self.every = inner, every
        self.frames: dict[int, int] = {}
        self.snapshots: dict[int, list[tuple[int, np.ndarray, np.ndarray]]] = {}
        self.key_counts: dict[int, Counter] = {}

    def reset(self) -> None:
        self.inner.reset()

    def predict_batch(self, obs, episode_start, env_ids=None):
        actions = self.inner.predict_batch(obs, episode_start, env_ids)
        for k, row in enumerate(np.asarray(env_ids).tolist()):
            frame = self.frames.get(row, 0)
            keys = np.asarray(actions[k]) > 0.5
            self.key_counts.setdefault(row, Counter())[describe_keys(keys)] += 1
            if frame % self.every == 0:
                self.snapshots.setdefault(row, []).append((frame, obs[k].copy(), keys))
            self.frames[row] = frame + 1
        return actions


def _state_name(value: float) -> str:
    index = round(float(value))
    return P.STATE_NAMES[index] if 0 <= index < len(P.STATE_NAMES) else str(index)


def timeline_line(frame: int, obs: np.ndarray, keys: np.ndarray) -> str:
    """One snapshot: both players' place and state, their distance and the agent's keys."""
    me = f"x {obs[X]:6.2f} y {obs[Y]:5.2f} {_state_name(obs[STATE]):13s}"
    opp = f"x {obs[OPP + X]:6.2f} y {obs[OPP + Y]:5.2f} {_state_name(obs[OPP + STATE]):13s}"
    distance = float(np.hypot(obs[X] - obs[OPP + X], obs[Y] - obs[OPP + Y]))
    return f"  frame {frame:5d}  agent {me} | opponent {opp} | apart {distance:5.2f} | keys {describe_keys(keys)}"


def trace(
    agent_spec: str,
    opponents: list[str],
    mode: str,
    matches: int,
    max_timesteps: int,
    every: int,
    results: tuple[str, ...],
    seed: int,
) -> list[str]:
    """Play and return the printed lines (a header per opponent, a block per traced match)."""
    agent = agent_under_test(agent_spec, seed)
    n_rows = len(opponents) * matches
    player, _ = player_for_mode(agent, mode, n_rows, seed)
    recorder = TimelineRecorder(player, every)
    torch.manual_seed(seed)
    played = play_vs_opponents(
        recorder,
        {name: opponent_agent(name, seed=seed + i) for i, name in enumerate(opponents)},  # seeded as the judge does
        matches,
        max_timesteps,
        seed=seed,
        alternate_sides=True,
        alternate_slots=True,
    )
    lines = [f"Tracing {agent.label} ({mode}): {matches} matches per opponent, {max_timesteps} frames each"]
    for j, name in enumerate(opponents):
        outcomes = [m["player_1"]["result"] for m in played[name]]
        tally = ", ".join(f"{outcomes.count(r)} {r}" for r in RESULTS)
        lines.append(f"== {name}: {tally}")
        for k, match in enumerate(played[name]):
            if match["player_1"]["result"] not in results:
                continue
            row = j * matches + k
            side = "right" if match["start_side"] > 0 else "left"
            frames = recorder.frames[row]
            common = ", ".join(f"{keys} {n / frames:.0%}" for keys, n in recorder.key_counts[row].most_common(3))
            lines.append(
                f"-- match {k}: {match['player_1']['result']} after {match['frames']} frames; agent started "
                f"on the {side} as player {match['agent_slot'] + 1}; commonest keys: {common}"
            )
            lines.extend(timeline_line(*snapshot) for snapshot in recorder.snapshots[row])
    return lines


def parse_results(text: str) -> tuple[str, ...]:
    chosen = tuple(r.strip() for r in text.split(",") if r.strip())
    unknown = [r for r in chosen if r not in RESULTS]
    if not chosen or unknown:
        raise JudgeError(f"--results takes a comma-separated list of {', '.join(RESULTS)} (got {text!r})")
    return chosen


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agent", required=True, help="a checkpoint .zip, a run folder, a registered bot or hold:<macro>")
    p.add_argument("--opponents", required=True, help="comma-separated public bots and hold:<macro> bots")
    p.add_argument("--mode", choices=MODES, default="argmax")
    p.add_argument("--matches", type=_positive_int, default=100, help="matches per opponent (default 100)")
    add_match_length_flag(p)
    p.add_argument("--every", type=_positive_int, default=600, help="frames between timeline lines (default 600)")
    p.add_argument("--results", default="draw,loss", help="which results to trace (default draw,loss)")
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        results = parse_results(args.results)
        opponents = opponent_names(args.opponents)
        lines = trace(
            args.agent, opponents, args.mode, args.matches, args.max_timesteps, args.every, results, args.seed
        )
    except (JudgeError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
