"""Environment speed: the batched core, the RL environments, resets and video, against their targets.

Usage::

    .venv/bin/python benchmarks/env_speed.py [--quick] [--no-video] [--json PATH]

Prints the machine, then one table: each measure on this machine, its target
(pass/fail where there is one), the tournament engine's figure (pymunk + pygame:
4,740 frames/s single-process, 270 ms reset, 44 rendered frames/s at 720x480, a
90-s match video in 77 s with 3.7 GB peak memory) and the speed-up over it.

Statistic: every rate is the MEDIAN of several repetitions (5, or 2 with
``--quick``) of a timed loop of at least 2 s (0.3 s with ``--quick``) run after
a warm-up (for the batched rows, at least STEADY_FRAMES frames: see there); the
best repetition is shown next to it. Pass/fail is judged on the median.
"per CPU-s" is the same median on this process's CPU time instead of wall time
and "CPU" the share of wall time the process got: when other processes share the
cores the wall figures drop and these two tell by how much. Numpy
runs on one thread (OMP/OPENBLAS/MKL_NUM_THREADS=1, set before numpy is
imported). The video is filmed in a subprocess (by ``benchmarks/video_speed.py``'s
own ``film``), so its peak RSS is its own; it counts the python process plus
its largest child (ffmpeg), as video_speed.py does.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_ENV_BEFORE = dict(os.environ)  # the video subprocess gets the caller's environment, not the pins below
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported: the batched-core target is for one thread


import argparse
import json
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from benchmarks.report import add_report_flags, finish
from environment import params as P
from environment.agents import make_agent
from environment.engine import BrawlEngine
from environment.envs import BrawlVecEnv, SelfPlayWarehouseBrawl, WarehouseBrawl
from environment.observation import ObservationBuilder
from environment.self_play import OpponentsCfg

ROOT = Path(__file__).resolve().parents[1]

# The tournament's own engine (pymunk + pygame), measured single-process.
REF_FPS = 4740.0  # frames/s
REF_RESET_MS = 270.0
REF_RENDER_FPS = 44.0
REF_VIDEO_S = 77.0
REF_PEAK_MB = 3.7 * 1024

KEY_P = 0.2  # probability that a key is pressed in the batched-core runs
N_KEY_FRAMES = 64  # pre-generated key frames, cycled
# Batched runs start every match on frame 0 together, and the first frames are cheaper (no weapon has spawned,
# no match has ended yet: ~1.4x faster). Warming up this many frames first measures the steady state of a
# long training run, where matches end and restart every step and weapons are about.
STEADY_FRAMES = 600


@dataclass
class Row:
    measure: str
    value: float | None
    unit: str
    target: float | None = None  # None: informational
    higher_is_better: bool = True
    best: float | None = None  # the best repetition, where repeated
    reference: str = "—"
    speedup: float | None = None  # over the tournament engine
    note: str = ""
    per_cpu: float | None = None  # the value on this process's CPU time (what an idle core would give)
    cpu_share: float | None = None  # CPU time / wall time during the measure
    reps: list[float] = field(default_factory=list)

    @property
    def passed(self) -> bool | None:
        if self.target is None or self.value is None:
            return None
        return self.value >= self.target if self.higher_is_better else self.value <= self.target


@dataclass
class Timing:
    median: float  # of the wall-clock figures
    best: float
    reps: list[float]
    per_cpu: float | None = None  # median of the same figures on this process's CPU time instead of wall time
    cpu_share: float | None = None  # median CPU time / wall time: < 1 when other processes took the core


def measure_rate(step: Callable[[], int], seconds: float, reps: int, warmup: float, warmup_units: int = 0) -> Timing:
    """Units per second of ``step`` (which returns the units it did): median and best of ``reps`` loops.

    The warm-up lasts ``warmup`` seconds and at least ``warmup_units`` units.
    """
    _run_for(step, warmup, warmup_units)
    rates, cpu_rates, shares = [], [], []
    for _ in range(reps):
        units, wall, cpu = _run_for(step, seconds)
        rates.append(units / wall)
        cpu_rates.append(units / max(cpu, 1e-9))
        shares.append(cpu / wall)
    return Timing(statistics.median(rates), max(rates), rates, statistics.median(cpu_rates), statistics.median(shares))


def _run_for(step: Callable[[], int], seconds: float, min_units: int = 0) -> tuple[int, float, float]:
    units = 0
    c0, t0 = time.process_time(), time.perf_counter()
    while True:
        for _ in range(8):  # check the clock every few steps
            units += step()
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and units >= min_units:
            return units, elapsed, time.process_time() - c0


# ==================================================================================
# Measures
# ==================================================================================
def batched_core(n: int, cfg: argparse.Namespace) -> tuple[Timing, dict[str, float]]:
    """Match-frames/s of BrawlEngine.step at N=n, random keys, finished matches reset in the loop."""
    rng = np.random.default_rng(0)
    keys = rng.random((N_KEY_FRAMES, n, 2, P.N_KEYS)) < KEY_P
    engine = BrawlEngine(n, seed=0)
    engine.reset()
    counter = {"step": 0, "frames": 0, "hits": 0, "kos": 0, "pickups": 0, "ended": 0}

    def step() -> int:
        i = counter["step"]
        counter["step"] = i + 1
        ev = engine.step(keys[i % N_KEY_FRAMES])
        if ev.done.any():
            done = np.flatnonzero(ev.done)
            counter["ended"] += done.size
            engine.reset(done)
        if i % 16 == 0:  # sample the activity now and then (cheap): the whole game is being played
            counter["frames"] += n
            counter["hits"] += int(ev.hit.sum())
            counter["kos"] += int(ev.knocked_out.sum())
            counter["pickups"] += int((ev.weapon_equip > 0).sum())
        return n

    timing = measure_rate(step, cfg.seconds, cfg.reps, cfg.warmup, STEADY_FRAMES * n)
    per_k = 1000.0 / max(counter["frames"], 1)
    activity = {
        "hits_per_1k_frames": counter["hits"] * per_k,
        "kos_per_1k_frames": counter["kos"] * per_k,
        "pickups_per_1k_frames": counter["pickups"] * per_k,
        "matches_ended": counter["ended"],
    }
    return timing, activity


def vec_env(n: int, cfg: argparse.Namespace) -> Timing:
    """Learner-steps/s of BrawlVecEnv.step with random actions, BasedAgent opponents, default reward."""
    env = BrawlVecEnv(n, opponents=OpponentsCfg({"based": (1.0, "based")}), seed=0)
    env.reset()
    rng = np.random.default_rng(1)
    actions = (rng.random((N_KEY_FRAMES, n, P.N_KEYS)) < 0.5).astype(np.int8)  # as MultiBinary.sample()
    counter = [0]

    def step() -> int:
        env.step(actions[counter[0] % N_KEY_FRAMES])
        counter[0] += 1
        return n

    return measure_rate(step, cfg.seconds, cfg.reps, cfg.warmup, STEADY_FRAMES * n)


def _random_actions(seed: int, count: int = 1024) -> np.ndarray:
    return (np.random.default_rng(seed).random((count, P.N_KEYS)) < 0.5).astype(np.int8)


def single_env(cfg: argparse.Namespace, opponent=None) -> Timing:
    """Steps/s of SelfPlayWarehouseBrawl.step with random actions, reset when an episode ends."""
    env = SelfPlayWarehouseBrawl() if opponent is None else SelfPlayWarehouseBrawl(opponent=opponent)
    env.reset(seed=0)
    actions = _random_actions(2)
    counter = [0]

    def step() -> int:
        i = counter[0]
        counter[0] = i + 1
        _, _, terminated, truncated, _ = env.step(actions[i % len(actions)])
        if terminated or truncated:
            env.reset()
        return 1

    return measure_rate(step, cfg.seconds, cfg.reps, cfg.warmup)


def raw_engine_single(cfg: argparse.Namespace) -> Timing:
    """Steps/s of BrawlEngine(1).step + ObservationBuilder(1).build, random keys for both players."""
    engine = BrawlEngine(1, seed=0)
    engine.reset()
    builder = ObservationBuilder(1)
    keys = np.random.default_rng(3).random((1024, 1, 2, P.N_KEYS)) < 0.5
    counter = [0]

    def step() -> int:
        i = counter[0]
        counter[0] = i + 1
        ev = engine.step(keys[i % len(keys)])
        builder.build(engine.state)
        if ev.done[0]:
            engine.reset()
        return 1

    return measure_rate(step, cfg.seconds, cfg.reps, cfg.warmup)


def pettingzoo_env(cfg: argparse.Namespace) -> Timing:
    """Steps/s of the PettingZoo WarehouseBrawl parallel env, random actions for both players."""
    env = WarehouseBrawl()
    env.reset(seed=0)
    a0, a1 = _random_actions(4), _random_actions(5)
    counter = [0]

    def step() -> int:
        i = counter[0] % len(a0)
        counter[0] += 1
        _, _, terminations, truncations, _ = env.step({"player_0": a0[i], "player_1": a1[i]})
        if terminations["player_0"] or truncations["player_0"]:
            env.reset()
        return 1

    return measure_rate(step, cfg.seconds, cfg.reps, cfg.warmup)


def reset_ms(make_env: Callable[[], object], calls: int, reps: int) -> Timing:
    """Mean ms per ``reset()`` over ``calls`` calls; median and best (lowest) of ``reps`` such means."""
    env = make_env()
    env.reset()  # warm-up
    means, cpu_means, shares = [], [], []
    for _ in range(reps):
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(calls):
            env.reset()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        means.append(wall / calls * 1000.0)
        cpu_means.append(cpu / calls * 1000.0)
        shares.append(cpu / wall)
    return Timing(statistics.median(means), min(means), means, statistics.median(cpu_means), statistics.median(shares))


_VIDEO_CHILD = """
import json
import tempfile
from pathlib import Path
from benchmarks import video_speed as vs
with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "env_speed.mp4"
    seconds, matches = vs.film(path, {frames}, {seed})
    own, child = vs.peak_rss_mb()  # before anything else can raise the peaks
    decoded = vs.decode(path)
    size_mb = path.stat().st_size / 1e6
render_fps = vs.render_only_fps({render_frames}, {seed}) if {render_frames} else None
print("ENV_SPEED_JSON " + json.dumps(dict(seconds=seconds, matches=matches, own_mb=own, child_mb=child,
      frames=decoded.frames, video_s=decoded.seconds, size=decoded.size, file_mb=size_mb, render_fps=render_fps)))
"""


def video(frames: int, render_frames: int, seed: int = 0) -> dict:
    """Film ``frames`` steps with video_speed.film in a fresh subprocess; its seconds and peak RSS."""
    code = _VIDEO_CHILD.format(frames=frames, seed=seed, render_frames=render_frames)
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=dict(_ENV_BEFORE), capture_output=True, text=True, check=False
    )
    for line in proc.stdout.splitlines():
        if line.startswith("ENV_SPEED_JSON "):
            return json.loads(line.removeprefix("ENV_SPEED_JSON "))
    raise RuntimeError(f"video subprocess failed (rc {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


# ==================================================================================
# Report
# ==================================================================================
def machine() -> dict[str, str]:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "?")
    except OSError:
        cpu = platform.processor() or "?"
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "load_avg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "numpy_threads": os.environ["OMP_NUM_THREADS"],
    }


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit in ("ms", "s"):
        return f"{value:,.2f} {unit}"
    return f"{value:,.0f} {unit}"


def _fmt_target(row: Row) -> str:
    if row.target is None:
        return "—"
    sign = ">=" if row.higher_is_better else "<="
    return f"{sign} {_fmt(row.target, row.unit)}"


def _detail(r: Row) -> str:
    if r.per_cpu is None:
        return ""
    return f" (median {_fmt(r.value, r.unit)}, per CPU-s {_fmt(r.per_cpu, r.unit)}, CPU {100 * r.cpu_share:.0f}%)"


def print_table(rows: list[Row]) -> None:
    header = (
        "measure",
        "value (median)",
        "best",
        "per CPU-s",
        "CPU",
        "target",
        "pass",
        "tournament",
        "speed-up",
        "note",
    )
    cells = [header]
    for r in rows:
        passed = {None: "—", True: "PASS", False: "FAIL"}[r.passed]
        speedup = "—" if r.speedup is None else f"{r.speedup:,.1f}x"
        share = "—" if r.cpu_share is None else f"{100 * r.cpu_share:.0f}%"
        cells.append(
            (
                r.measure,
                _fmt(r.value, r.unit),
                "—" if r.best is None else _fmt(r.best, r.unit),
                _fmt(r.per_cpu, r.unit),
                share,
                _fmt_target(r),
                passed,
                r.reference,
                speedup,
                r.note,
            )
        )
    widths = [max(len(c[k]) for c in cells) for k in range(len(header))]
    right = {1, 2, 3, 4, 8}

    def line(c: tuple[str, ...]) -> str:
        parts = [c[k].rjust(widths[k]) if k in right else c[k].ljust(widths[k]) for k in range(len(c))]
        return "  ".join(parts).rstrip()

    print(line(header))
    print("  ".join("-" * w for w in widths))
    for c in cells[1:]:
        print(line(c))


def run(cfg: argparse.Namespace) -> dict:
    info = machine()
    print(
        f"Machine: nproc {info['nproc']} ({info['cpu']}), python {info['python']}, numpy {info['numpy']}, "
        f"numpy threads {info['numpy_threads']}, load average {info['load_avg']}"
    )
    print(
        f"Statistic: median of {cfg.reps} repetitions of a >= {cfg.seconds:g} s timed loop after a "
        f"{cfg.warmup:g} s warm-up (batched rows: >= {STEADY_FRAMES} frames, steady state) (best repetition "
        "alongside); pass/fail on the median. 'per CPU-s': the median on "
        "process CPU time, 'CPU': CPU time / wall time (below 100% = other processes took the core)."
        f"{'  [--quick: smoke run, timings short]' if cfg.quick else ''}"
    )
    print(flush=True)
    t_start = time.perf_counter()
    rows: list[Row] = []

    def rate_row(measure, timing, unit, target=None, note="", reference=f"{REF_FPS:,.0f} frames/s", speedup=True):
        rows.append(
            Row(
                measure,
                timing.median,
                unit,
                target,
                True,
                timing.best,
                reference,
                timing.median / REF_FPS if speedup else None,
                note,
                timing.per_cpu,
                timing.cpu_share,
                timing.reps,
            )
        )

    # 1-2. batched core
    for n, target in ((4096, 1_000_000.0), (1024, None), (256, None)):
        timing, act = batched_core(n, cfg)
        note = (
            f"keys p={KEY_P}; per 1k frames: {act['hits_per_1k_frames']:.1f} hits, "
            f"{act['kos_per_1k_frames']:.2f} KOs, {act['pickups_per_1k_frames']:.2f} pickups"
        )
        rate_row(f"batched core BrawlEngine.step, N={n}", timing, "frames/s", target, note)
    # 3. VecEnv
    rate_row(
        "BrawlVecEnv N=1024 vs based, default reward",
        vec_env(1024, cfg),
        "steps/s",
        200_000.0,
        "learner-steps/s; random actions",
    )
    # 4. single-match envs
    rate_row(
        "SelfPlayWarehouseBrawl (vs based)", single_env(cfg), "steps/s", 5_000.0, "random actions, reset on episode end"
    )
    rate_row("SelfPlayWarehouseBrawl (vs constant)", single_env(cfg, make_agent("constant")), "steps/s")
    rate_row("BrawlEngine(1).step + observation build", raw_engine_single(cfg), "steps/s")
    rate_row("PettingZoo WarehouseBrawl (parallel)", pettingzoo_env(cfg), "steps/s", note="two players' rewards")
    # 5. resets
    single_reset = reset_ms(SelfPlayWarehouseBrawl, 200, cfg.reps)
    rows.append(
        Row(
            "SelfPlayWarehouseBrawl.reset()",
            single_reset.median,
            "ms",
            1.0,
            False,
            single_reset.best,
            f"{REF_RESET_MS:g} ms",
            REF_RESET_MS / single_reset.median,
            "mean of 200 calls",
            single_reset.per_cpu,
            single_reset.cpu_share,
            single_reset.reps,
        )
    )
    vec_calls = 5 if cfg.quick else 20
    vec_reset = reset_ms(lambda: BrawlVecEnv(1024, seed=0), vec_calls, cfg.reps)
    rows.append(
        Row(
            "BrawlVecEnv(1024).reset()",
            vec_reset.median,
            "ms",
            None,
            False,
            vec_reset.best,
            f"{REF_RESET_MS:g} ms x1024",
            REF_RESET_MS * 1024 / vec_reset.median,
            f"mean of {vec_calls} calls; all 1024 matches",
            vec_reset.per_cpu,
            vec_reset.cpu_share,
            vec_reset.reps,
        )
    )
    # 6. video
    video_runs: list[dict] = []
    if not cfg.no_video:
        frames = 300 if cfg.quick else 2700
        runs = 1 if cfg.quick else 2
        for k in range(runs):
            video_runs.append(video(frames, render_frames=(300 if cfg.quick else 900) if k == 0 else 0))
        secs = [v["seconds"] for v in video_runs]
        peaks = [v["own_mb"] + v["child_mb"] for v in video_runs]
        v0 = video_runs[0]
        play = f"{frames / P.FPS:g}-s match"
        quick_note = "; --quick: 10 s of play, target n/a" if cfg.quick else ""
        rows.append(
            Row(
                f"video: write a {play} to MP4",
                statistics.median(secs),
                "s",
                None if cfg.quick else 10.0,
                False,
                min(secs),
                f"{REF_VIDEO_S:g} s",
                REF_VIDEO_S / statistics.median(secs),
                f"subprocess x{runs}; {v0['frames']} frames {v0['size'][0]}x{v0['size'][1]}, "
                f"{v0['file_mb']:.1f} MB{quick_note}",
                reps=secs,
            )
        )
        rows.append(
            Row(
                "video: peak RSS (python + ffmpeg)",
                max(peaks),
                "MB",
                None if cfg.quick else 500.0,
                False,
                min(peaks),
                "3.7 GB",
                REF_PEAK_MB / max(peaks),
                f"worst run shown; python {v0['own_mb']:.0f} + ffmpeg {v0['child_mb']:.0f} MB",
                reps=peaks,
            )
        )
        if v0.get("render_fps"):
            rows.append(
                Row(
                    "video: rendering alone (720x480)",
                    v0["render_fps"],
                    "frames/s",
                    None,
                    True,
                    None,
                    f"{REF_RENDER_FPS:g} frames/s",
                    v0["render_fps"] / REF_RENDER_FPS,
                    "MatchRenderer.render over recorded states, 1 run",
                )
            )

    print_table(rows)
    wall = time.perf_counter() - t_start
    missed = [r.measure for r in rows if r.passed is False]
    missed_detail = [r.measure + _detail(r) for r in rows if r.passed is False]
    checked = [r for r in rows if r.passed is not None]
    print()
    print(f"Load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; measuring took {wall:.1f} s")
    if missed:
        print(f"MISSED {len(missed)} of {len(checked)} targets: " + "; ".join(missed_detail))
    else:
        print(f"all targets met ({len(checked)} checked)")
    return {
        "machine": info,
        "quick": cfg.quick,
        "statistic": f"median of {cfg.reps} reps of >= {cfg.seconds} s after {cfg.warmup} s warm-up",
        "rows": [asdict(r) | {"passed": r.passed} for r in rows],
        "video_runs": video_runs,
        "missed": missed,
        "all_targets_met": not missed,
        "wall_s": wall,
        "load_avg_after": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short timings (smoke run)")
    parser.add_argument("--no-video", action="store_true", help="skip the video measurement")
    add_report_flags(parser)
    cfg = parser.parse_args(argv)
    cfg.seconds, cfg.reps, cfg.warmup = (0.3, 2, 0.2) if cfg.quick else (2.0, 5, 1.0)
    results = run(cfg)
    return finish(cfg, "env_speed", results, results["missed"])


if __name__ == "__main__":
    sys.exit(main())
