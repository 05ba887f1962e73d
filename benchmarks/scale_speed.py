"""Issue 17's sweep targets: a sweep of 4 trials on Ray across this machine's CPUs against the same
4 trials run one after another, and what Ray adds to a sweep's start.

Usage::

    .venv/bin/python benchmarks/scale_speed.py [--steps 100000] [--check] [--json PATH]
    .venv/bin/python benchmarks/scale_speed.py --smoke      # tiny trials: checks that it runs

Needs Ray (``pip install -r requirements-scale.txt``). Every figure is the wall time of a real
``user/scale.py sweep`` command, run as a user runs it, one command at a time:

- **one after another**: ``sweep --backend local --parallel 1`` runs the 4 trials (the ``cpu``
  config, seeds 0-3, ``--steps`` each, no warm start) as subprocesses one at a time, each with all
  the CPUs' threads, as a user without Ray would;
- **on Ray**: ``sweep --backend ray --parallel <CPUs>`` runs the same 4 trials as Tune trials, one
  CPU each, on a new local Ray;
- **Ray's start-up**: one trial of ``--startup-steps`` on Ray minus the same trial with the local
  backend: the cost of starting Ray, Tune and a trial actor instead of a subprocess.

``--check`` fails when the sweep is under 1.6x faster on Ray or Ray's start-up is over 10 s. The
run folders go to ``--out`` (default ``checkpoints/scale_speed/<time>``; kept, delete them when done).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.report import add_report_flags, finish
from user.scale import ray_available

REPO = Path(__file__).resolve().parents[1]
TARGET_SPEEDUP = 1.6
TARGET_STARTUP_S = 10.0
TRIALS = 4


def sweep_seconds(storage: Path, backend: str, parallel: int, seeds: list[int], steps: int) -> float:
    """Wall seconds of one ``user/scale.py sweep`` command (it must succeed)."""
    command = [
        sys.executable,
        "-m",
        "user.scale",
        "sweep",
        "--backend",
        backend,
        "--parallel",
        str(parallel),
        "--storage",
        str(storage),
        "--config",
        "cpu",
        "--seeds",
        *map(str, seeds),
        "--set",
        "warm_start.seconds=0",
        "--set",
        f"training.total_timesteps={steps}",
        "--set",
        f"training.save_freq={steps}",
    ]
    if backend == "ray":
        command += ["--num-cpus", str(os.cpu_count() or 1)]
    t0 = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise SystemExit(f"sweep --backend {backend} failed ({done.returncode}): {' | '.join(tail)}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100_000, help="training steps per trial (100,000)")
    parser.add_argument("--startup-steps", type=int, default=8_192, help="steps of the start-up trial (8,192)")
    parser.add_argument("--smoke", action="store_true", help="tiny trials: checks that it runs")
    parser.add_argument("--out", type=Path, help="the sweeps' folder (default checkpoints/scale_speed/<time>)")
    add_report_flags(parser)
    cfg = parser.parse_args(argv)
    if not ray_available():
        print("scale_speed needs Ray: pip install -r requirements-scale.txt")
        return 2
    if cfg.smoke:
        cfg.steps, cfg.startup_steps = 1_024, 1_024
    cpus = os.cpu_count() or 1
    root = cfg.out or REPO / "checkpoints" / "scale_speed" / time.strftime("%Y%m%d-%H%M%S")
    seeds = list(range(TRIALS))
    print(f"{TRIALS} trials of the cpu config, {cfg.steps:,} steps each, on {cpus} CPUs")
    sequential = sweep_seconds(root / "one_after_another", "local", 1, seeds, cfg.steps)
    on_ray = sweep_seconds(root / "ray", "ray", cpus, seeds, cfg.steps)
    start_local = sweep_seconds(root / "startup_local", "local", 1, [0], cfg.startup_steps)
    start_ray = sweep_seconds(root / "startup_ray", "ray", 1, [0], cfg.startup_steps)
    speedup, startup = sequential / on_ray, start_ray - start_local
    rows = [
        (f"sweep of {TRIALS}, one after another (local, 1 at a time)", f"{sequential:.1f} s", ""),
        (f"sweep of {TRIALS} on Ray ({cpus} at a time)", f"{on_ray:.1f} s", f"{speedup:.2f}x >= {TARGET_SPEEDUP}x"),
        (f"one trial of {cfg.startup_steps:,} steps, local / Ray", f"{start_local:.1f} / {start_ray:.1f} s", ""),
        ("Ray's start-up for a sweep (the difference)", f"{startup:.1f} s", f"<= {TARGET_STARTUP_S:.0f} s"),
    ]
    print(f"\n{'measure':<58}{'measured':>16}  target")
    for what, value, target in rows:
        print(f"{what:<58}{value:>16}  {target}")
    missed = []
    if not cfg.smoke:
        if speedup < TARGET_SPEEDUP:
            missed.append(f"sweep speed-up {speedup:.2f}x < {TARGET_SPEEDUP}x")
        if startup > TARGET_STARTUP_S:
            missed.append(f"Ray start-up {startup:.1f} s > {TARGET_STARTUP_S:.0f} s")
    results = {
        "cpus": cpus,
        "steps_per_trial": cfg.steps,
        "sequential_s": sequential,
        "ray_s": on_ray,
        "speedup": speedup,
        "startup_local_s": start_local,
        "startup_ray_s": start_ray,
        "ray_startup_s": startup,
        "run_folders": str(root),
    }
    return finish(cfg, "scale_speed", results, missed)


if __name__ == "__main__":
    sys.exit(main())
