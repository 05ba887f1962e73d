"""The strategy extractor alone, the streaming encoder against the seed's full-window one, side by side.

Usage::

    .venv/bin/python benchmarks/encoder_speed.py [--config 10m] [--threads 1] [--check] [--json PATH]
    .venv/bin/python benchmarks/encoder_speed.py --smoke      # tiny sizes, a few repeats (the test suite)

Both extractors are built at the config's sizes (default ``10m``: d 256, 8 heads, 6 layers, a 90-frame
window), with the same inputs, on the CPU with ``--threads`` torch threads (default 1), and timed in
turns (new, old, new, old, ...) so that the machine's drift hits both alike:

- **rollout step**: ``--envs`` (16) streams, each step's window one frame on from the last, under
  ``torch.no_grad()`` as in SB3's rollout; the streaming encoder uses its cache;
- **training minibatch**: forward and backward of one minibatch of ``--batch-size`` rows (default
  128 of rollouts of ``--n-steps`` 512: the seed's, which issue 15's target is about; the full-window
  encoder needs ~8 MB of activations per row, so the 10m config's 2,048 would take ~16 GB here)
  laid out as sb3-contrib lays them out (consecutive steps of the env-major buffer, one sequence
  per env, zero padding to the longest), cycling through minibatch start offsets spread over a
  rollout.

Statistic: the median over ``--repeats`` of each timing; the ratio is old / new. ``--check`` fails
when the ratios miss issue 15's targets (rollout step >= 20x, minibatch >= 15x) at the 10m sizes.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.flops import minibatch_sequences
from benchmarks.report import add_report_flags, finish
from user.train_agent import CONFIGS, build_policy

TARGETS = {"rollout step": 20.0, "training minibatch": 15.0}
SMOKE_SIZES = {"latent_dim": 32, "num_heads": 2, "num_layers": 2, "sequence_length": 12, "attention_window": 3}


def extractor_of(agent_config: dict, encoder: str, seed: int = 0):
    a = {**copy.deepcopy(agent_config), "encoder": encoder}
    torch.manual_seed(seed)
    return build_policy(a).features_extractor


def stream_rows(n_streams: int, steps: int, length: int, seed: int = 1) -> torch.Tensor:
    """(steps, n_streams, 64 + length x 32): each stream's window moves on one frame a step."""
    g = torch.Generator().manual_seed(seed)
    frames = torch.randn(n_streams, steps + length - 1, 32, generator=g)
    obs = torch.randn(steps, n_streams, 64, generator=g)
    windows = torch.stack([frames[:, t : t + length].flatten(1) for t in range(steps)])
    return torch.cat([obs, windows], dim=-1)


def minibatch(n_steps: int, batch_size: int, length: int, offset: int, seed: int) -> torch.Tensor:
    """One minibatch as sb3-contrib pads it, starting ``offset`` steps into an env's block."""
    lengths = minibatch_sequences(n_steps, batch_size, offset)
    longest, rows = max(lengths), []
    for i, n in enumerate(lengths):
        sequence = stream_rows(1, n, length, seed=seed + i)[:, 0]
        rows += [sequence, torch.zeros(longest - n, sequence.shape[1])]
    return torch.cat(rows)


def time_rollout(extractor, rows: torch.Tensor) -> float:
    """Seconds per step over ``rows`` (steps, envs, D), after the first (cache-filling) step."""
    extractor.eval()
    with torch.no_grad():
        extractor(rows[0])
        t0 = time.perf_counter()
        for step in rows[1:]:
            extractor(step)
    return (time.perf_counter() - t0) / (len(rows) - 1)


def time_minibatch(extractor, batch: torch.Tensor) -> float:
    extractor.train()
    extractor.zero_grad(set_to_none=True)
    t0 = time.perf_counter()
    extractor(batch).square().mean().backward()
    return time.perf_counter() - t0


def measure(agent_config: dict, envs: int, steps: int, repeats: int) -> dict[str, dict[str, float]]:
    a = agent_config
    extractors = {name: extractor_of(a, name) for name in ("streaming", "full_window")}
    times: dict[str, dict[str, list[float]]] = {k: {"streaming": [], "full_window": []} for k in TARGETS}
    offsets = [round(i * a["n_steps"] / repeats) % a["n_steps"] for i in range(repeats)]
    for r in range(repeats):
        rows = stream_rows(envs, steps + 1, a["sequence_length"], seed=10 + r)
        batch = minibatch(a["n_steps"], a["batch_size"], a["sequence_length"], offsets[r], seed=100 * r)
        for name, extractor in extractors.items():  # in turns: drift hits both
            times["rollout step"][name].append(time_rollout(extractor, rows))
            times["training minibatch"][name].append(time_minibatch(extractor, batch))
    return {k: {name: statistics.median(v) for name, v in by_encoder.items()} for k, by_encoder in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # (a list of argparse flags: duplicates pairs it with other benchmarks' by shape alone)
    parser.add_argument("--config", default="10m", choices=sorted(CONFIGS), help="sizes from this config (10m)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--envs", type=int, default=16, help="streams in the rollout step (16)")
    parser.add_argument("--steps", type=int, default=20, help="rollout steps timed per repeat (20)")
    parser.add_argument("--repeats", type=int, default=7, help="timings of each kind per encoder (7)")
    parser.add_argument("--batch-size", type=int, default=128, help="minibatch rows (128, the seed's)")
    parser.add_argument("--n-steps", type=int, default=512, help="rollout length the minibatch is cut from (512)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and counts: checks that it runs")
    add_report_flags(parser)
    cfg = parser.parse_args(argv)
    torch.set_num_threads(cfg.threads)
    config = copy.deepcopy(CONFIGS[cfg.config])
    config["agent"].update(batch_size=cfg.batch_size, n_steps=cfg.n_steps)
    if cfg.smoke:
        config["agent"].update(SMOKE_SIZES, n_steps=16, batch_size=32)
        config["env"]["n_envs"] = 4
        cfg.envs, cfg.steps, cfg.repeats = 4, 3, 2
    config["env"]["n_envs"] = max(
        config["env"]["n_envs"], -(-config["agent"]["batch_size"] // config["agent"]["n_steps"])
    )
    a = config["agent"]
    print(
        f"Strategy extractor at the '{cfg.config}' sizes{' (smoke: tiny)' if cfg.smoke else ''}: d {a['latent_dim']}, "
        f"{a['num_heads']} heads, {a['num_layers']} layers, window {a['sequence_length']} frames, streaming "
        f"attention_window {a['attention_window']}; CPU, {cfg.threads} thread(s); median of {cfg.repeats}"
    )
    medians = measure(a, cfg.envs, cfg.steps, cfg.repeats)
    print(f"\n{'measure':<36}{'full_window':>14}{'streaming':>14}{'ratio':>9}{'target':>9}")
    results: dict = {"config": cfg.config, "threads": cfg.threads, "smoke": cfg.smoke, "rows": {}}
    missed = []
    for kind, label in (
        ("rollout step", f"rollout step, {cfg.envs} envs"),
        ("training minibatch", "training minibatch"),
    ):
        old, new = medians[kind]["full_window"], medians[kind]["streaming"]
        ratio = old / new
        label = f"{label} ({a['batch_size']} rows)" if kind == "training minibatch" else label
        print(f"{label:<36}{old * 1e3:>11.2f} ms{new * 1e3:>11.2f} ms{ratio:>8.1f}x{TARGETS[kind]:>8.0f}x")
        results["rows"][kind] = {"full_window_s": old, "streaming_s": new, "ratio": ratio, "target": TARGETS[kind]}
        if ratio < TARGETS[kind] and cfg.config == "10m" and not cfg.smoke:
            missed.append(f"{kind}: {ratio:.1f}x < {TARGETS[kind]:.0f}x")
    return finish(cfg, "encoder_speed", results, missed)


if __name__ == "__main__":
    sys.exit(main())
