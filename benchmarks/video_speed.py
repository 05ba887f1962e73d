"""Video speed: render and encode 90 s of BasedAgent vs BasedAgent to an MP4.

Usage::

    .venv/bin/python benchmarks/video_speed.py [--frames 2700] [--seed 0] [--keep DIR]

Prints a table of the figures next to their targets (≤ 10 s, ≤ 500 MB) and
the tournament engine's own figures for comparison.

A BasedAgent mirror match always ends by knockouts after 1,526 frames, so the
main figure films back-to-back matches (the engine restarts when one ends,
exactly as ``run_match``'s loop otherwise runs) until 90 s of play are on
video: ``frames`` steps plus the initial frame, as ``run_match`` writes them.
The real ``run_match(..., video_path=...)`` call is timed on its own as well.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.report import add_report_flags, finish
from environment import params as P
from environment import render
from environment.agents import Agent, make_agent
from environment.engine import BrawlEngine
from environment.match import run_match
from environment.observation import ObservationBuilder
from environment.render import MatchRenderer, open_video_writer
from environment.state import MatchState

REFERENCE = {"render_fps": 44.0, "video_s": 77.0, "peak_mb": 3.7 * 1024}
TARGETS = {"video_s": 10.0, "peak_mb": 500.0}


@dataclass
class Decoded:
    frames: int
    seconds: float
    size: tuple[int, int]


class Match:
    """One engine row driven by two agents; restarts by itself when a match ends."""

    def __init__(self, seed: int, max_timesteps: int):
        self.engine = BrawlEngine(1, max_timesteps=max_timesteps, seed=seed)
        self.engine.reset(seeds=seed)
        self.builder = ObservationBuilder(1)
        self.agents: tuple[Agent, Agent] = (make_agent("based"), make_agent("based"))
        self.start = np.ones(1, bool)
        self.matches = 1

    def step(self) -> MatchState:
        if self.engine.state.done[0]:
            self.engine.reset()
            self.start[:] = True
            self.matches += 1
        obs = self.builder.build(self.engine.state)
        keys = np.empty((1, 2, P.N_KEYS), np.int8)
        for k, agent in enumerate(self.agents):
            keys[:, k] = agent.predict_batch(obs[:, k], self.start)
        self.start[:] = False
        self.engine.step(keys)
        return self.engine.state


def cpu_seconds() -> tuple[float, float]:
    """User + system CPU time of this process and of its finished children (ffmpeg)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def film(path: Path, frames: int, seed: int) -> tuple[float, int]:
    """Seconds to simulate, render and encode ``frames`` steps (+ the initial frame); matches played."""
    t0 = time.perf_counter()
    match = Match(seed, max_timesteps=P.DEFAULT_PARAMS.max_timesteps)
    renderer = MatchRenderer()
    limit = match.engine.max_timesteps
    with open_video_writer(path) as writer:
        writer.append(renderer.render(match.engine.state, 0, limit))
        for frame in range(frames):
            writer.append(renderer.render(match.step(), 0, limit))
            if frame % 300 == 299:
                _sample_children()  # ffmpeg's peak: it can only be read while it runs
        _sample_children()
    return time.perf_counter() - t0, match.matches


def render_only_fps(frames: int, seed: int) -> float:
    """Frames/s of MatchRenderer.render alone, over recorded states of the same play."""
    match = Match(seed, max_timesteps=P.DEFAULT_PARAMS.max_timesteps)
    states = [match.step().copy() for _ in range(frames)]
    renderer = MatchRenderer()
    t0 = time.perf_counter()
    for state in states:
        renderer.render(state, 0, match.engine.max_timesteps)
    return frames / (time.perf_counter() - t0)


def time_run_match(path: Path, seed: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    stats = run_match(make_agent("based"), make_agent("based"), video_path=str(path), seed=seed)
    return time.perf_counter() - t0, stats.frames


def decode(path: Path) -> Decoded:
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    count = sum(1 for _ in reader)
    return Decoded(count, count / meta["fps"], tuple(meta["size"]))


def _high_water_mb(pid: int | str = "self") -> float | None:
    """VmHWM (peak resident memory of the process's own address space) from /proc, MB; None off Linux.

    Not ru_maxrss: Linux carries the parent's peak across fork + exec into the child's ru_maxrss, so a
    process started by a large one (this one, by env_speed.py; ffmpeg, by this one) reports the
    parent's peak instead of its own.
    """
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def _child_pids() -> list[int]:
    pids = []
    for children in Path("/proc/self/task").glob("*/children"):
        try:
            pids += [int(pid) for pid in children.read_text().split()]
        except (OSError, ValueError):
            continue
    return pids


_child_peak_mb = 0.0  # the largest high-water mark read off a live child (ffmpeg) so far


def _sample_children() -> None:
    global _child_peak_mb
    for pid in _child_pids():
        _child_peak_mb = max(_child_peak_mb, _high_water_mb(pid) or 0.0)


def peak_rss_mb() -> tuple[float, float]:
    """Peak resident memory of this process and of its largest child (ffmpeg, sampled while it ran), MB.

    Off Linux (no /proc) both fall back to ru_maxrss, an upper bound there."""
    own = _high_water_mb()
    if own is None:
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    child = _child_peak_mb or resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, child


def _row(name: str, value: str, target: str = "", reference: str = "") -> str:
    return f"{name:<40}{value:>18}  {target:<12}{reference}".rstrip()


def report(frames: int, seed: int, out_dir: Path) -> dict:
    video = out_dir / "video_speed.mp4"
    cpu_before = cpu_seconds()
    seconds, matches = film(video, frames, seed)
    own, child = peak_rss_mb()  # before anything else can raise the peaks
    cpu_py, cpu_ff = (after - before for after, before in zip(cpu_seconds(), cpu_before, strict=True))
    decoded = decode(video)
    fps = render_only_fps(min(frames, 1500), seed)
    match_s, match_frames = time_run_match(out_dir / "run_match.mp4", seed)
    mb = video.stat().st_size / 1e6
    print(
        f"Video: BasedAgent vs BasedAgent, seed {seed}, 720x480, H.264 {render.MP4_PRESET} CRF {render.MP4_CRF}, "
        f"{frames} steps + initial frame ({matches} back-to-back matches)"
    )
    print(_row("measure", "value", "target", "tournament engine"))
    print(
        _row(
            f"render + write {frames / P.FPS:g} s of play to MP4",
            f"{seconds:.2f} s",
            "<= 10 s",
            f"{REFERENCE['video_s']:g} s",
        )
    )
    print(_row("  CPU time, python / ffmpeg", f"{cpu_py:.2f} / {cpu_ff:.2f} s"))
    print(_row("rendering alone", f"{fps:,.0f} frames/s", "", f"{REFERENCE['render_fps']:g} frames/s"))
    print(_row("peak RSS, python + ffmpeg", f"{own + child:.0f} MB", "<= 500 MB", "3.7 GB"))
    print(_row("  python / ffmpeg", f"{own:.0f} / {child:.0f} MB"))
    print(_row("output file size", f"{mb:.2f} MB"))
    print(_row("decoded", f"{decoded.frames} frames, {decoded.seconds:.2f} s, {decoded.size[0]}x{decoded.size[1]}"))
    print(_row(f"run_match with video ({match_frames}-frame match)", f"{match_s:.2f} s"))
    missed = [f"video took {seconds:.2f} s (target <= {TARGETS['video_s']:g} s)"] * (seconds > TARGETS["video_s"])
    missed += [f"peak RSS {own + child:.0f} MB (target <= {TARGETS['peak_mb']:g} MB)"] * (
        own + child > TARGETS["peak_mb"]
    )
    print("TARGETS MISSED" if missed else "targets met")
    return {
        "frames": frames,
        "seed": seed,
        "seconds": seconds,
        "matches": matches,
        "render_fps": fps,
        "peak_rss_mb": own + child,
        "python_mb": own,
        "ffmpeg_mb": child,
        "file_mb": mb,
        "run_match_s": match_s,
        "run_match_frames": match_frames,
        "targets": TARGETS,
        "missed": missed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=2700, help="steps of play to film (default 2700 = 90 s)")
    parser.add_argument("--seed", type=int, default=0, help="match seed (default 0)")
    parser.add_argument("--keep", type=Path, default=None, help="write the videos into this folder and keep them")
    parser.add_argument(
        "--preset", default=None, help=f"x264 preset to try instead of the default ({render.MP4_PRESET})"
    )
    add_report_flags(parser)
    args = parser.parse_args(argv)
    if args.preset:
        render.MP4_PRESET = args.preset
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        results = report(args.frames, args.seed, args.keep)
    else:
        with tempfile.TemporaryDirectory() as tmp:  # removed again with the videos
            results = report(args.frames, args.seed, Path(tmp))
    return finish(args, "video_speed", results, results["missed"])


if __name__ == "__main__":
    sys.exit(main())
