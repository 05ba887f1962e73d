"""Evaluation speed: a CPU-config-sized transformer agent against the whole roster, 50 matches each.

Usage::

    .venv/bin/python benchmarks/eval_speed.py [--matches 50] [--agent-path P] [--json PATH]

Times the trainer's ``evaluate_agent`` (every match of every opponent batched in one engine, the
agent's ``predict_batch`` once per frame on all live matches) for an agent of the
``TRAIN_CONFIG_CPU`` architecture, untrained (a fresh ``TransformerStrategyAgent`` built from that
config, random weights, deterministic actions) unless ``--agent-path`` gives a checkpoint .zip or
run folder, against every registered agent (``agent_names()``), ``--matches`` each (default 50),
90-s matches (max_timesteps 2700). Target: < 60 s on 2 CPU cores.

The batched loop runs until the longest match ends, so the time depends on how long the matches
last: the table gives the frames simulated and the longest match next to the time. An untrained
agent's matches can be shorter or longer than a trained one's.
Torch threads follow the trainer's ``pick_device`` (all cores, or OMP_NUM_THREADS if set).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import torch

import user.train_agent as ta
from benchmarks.report import add_report_flags, finish
from environment.agents import Agent, agent_names
from user.agent_io import TransformerStrategyAgent, resolve_checkpoint
from user.monitoring import evaluate_agent

TARGET_S = 60.0


class CountingAgent(Agent):
    """Plays as ``agent``; counts the batched frames, the match-frames and the time spent in the agent."""

    def __init__(self, agent: Agent):
        super().__init__()
        self.agent = agent
        self.calls = self.rows = 0
        self.seconds = 0.0

    def reset(self) -> None:
        self.agent.reset()

    def predict_batch(self, obs, episode_start, env_ids=None):
        t0 = time.perf_counter()
        actions = self.agent.predict_batch(obs, episode_start, env_ids)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        self.rows += len(obs)
        return actions


def build_agent(agent_path: Path | None, seed: int) -> tuple[TransformerStrategyAgent, str]:
    if agent_path is not None:
        zip_path = resolve_checkpoint(agent_path)
        agent = ta.load_agent(zip_path)
        return agent, f"{zip_path} ({agent.agent_config['type']})"
    config = copy.deepcopy(ta.TRAIN_CONFIG_CPU)
    torch.manual_seed(seed)
    agent = TransformerStrategyAgent(ta.build_policy(config["agent"]), config["agent"])
    a = config["agent"]
    what = (
        f"untrained cpu-config transformer_strategy (latent {a['latent_dim']}, {a['num_heads']} heads, "
        f"{a['num_layers']} layer(s), sequence {a['sequence_length']}, LSTM {a['lstm_hidden_size']})"
    )
    return agent, what


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--matches", type=int, default=50, help="matches per opponent (default 50)")
    parser.add_argument("--agent-path", type=Path, default=None, help="checkpoint .zip or run folder to evaluate")
    parser.add_argument("--max-timesteps", type=int, default=2700, help="frames per match (default 2700)")
    parser.add_argument("--seed", type=int, default=0)
    add_report_flags(parser)
    cfg = parser.parse_args(argv)

    ta.pick_device("cpu", announce=False)  # the agent runs on the CPU; sets torch's thread count
    agent, what = build_agent(cfg.agent_path, cfg.seed)
    opponents = agent_names()
    print(f"Agent: {what}")
    print(
        f"Opponents: {len(opponents)} ({', '.join(opponents)}), {cfg.matches} matches each, max_timesteps "
        f"{cfg.max_timesteps}; torch threads {torch.get_num_threads()}, nproc {os.cpu_count()}, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(flush=True)
    counter = CountingAgent(agent)
    c0, t0 = time.process_time(), time.perf_counter()
    rows = evaluate_agent(counter, opponents, cfg.matches, cfg.max_timesteps, seed=cfg.seed)
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - c0
    matches = sum(r.matches for r in rows)
    judged = cfg.matches == 50 and cfg.max_timesteps == 2700  # the target's setting
    passed = seconds < TARGET_S if judged else None
    verdict = {True: "PASS", False: "FAIL", None: "n/a (target is for 50 matches of 2700 frames)"}[passed]
    table = [
        ("seconds", f"{seconds:.1f} s", f"< {TARGET_S:.0f} s on 2 CPU cores", verdict),
        ("matches", f"{matches:,}", "—", "—"),
        ("matches/s", f"{matches / seconds:.1f}", "—", "—"),
        ("match-frames played", f"{counter.rows:,}", "—", "—"),
        ("batched frames (longest match)", f"{counter.calls:,}", f"<= {cfg.max_timesteps:,}", "—"),
        ("match-frames/s", f"{counter.rows / seconds:,.0f}", "—", "—"),
        ("agent's share of the time", f"{100 * counter.seconds / seconds:.0f}%", "—", "—"),
        ("CPU time / wall time", f"{100 * cpu / seconds:.0f}%", "—", "—"),
    ]
    header = ("measure", "value", "target", "pass")
    widths = [max(len(c[k]) for c in [header, *table]) for k in range(4)]
    for i, c in enumerate([header, None, *table]):
        if c is None:
            print("  ".join("-" * w for w in widths))
            continue
        print("  ".join(c[k].rjust(widths[k]) if k == 1 and i else c[k].ljust(widths[k]) for k in range(4)).rstrip())
    print()
    print("per opponent: " + ", ".join(f"{r.opponent} {100 * r.win_rate:.0f}% wins" for r in rows))
    results = {
        "agent": what,
        "opponents": opponents,
        "matches_per_opponent": cfg.matches,
        "matches": matches,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "match_frames": counter.rows,
        "batched_frames": counter.calls,
        "agent_seconds": counter.seconds,
        "matches_per_s": matches / seconds,
        "target_s": TARGET_S,
        "passed": passed,
        "threads": torch.get_num_threads(),
        "rows": [r.to_dict() for r in rows],
    }
    missed = [f"evaluation took {seconds:.1f} s (target < {TARGET_S:.0f} s)"] if passed is False else []
    return finish(cfg, "eval_speed", results, missed)


if __name__ == "__main__":
    sys.exit(main())
