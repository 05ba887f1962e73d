"""Soak test: training under random SIGTERM / SIGKILL and resume cycles, then an engine invariant fuzz.

Usage::

    .venv/bin/python benchmarks/soak.py [--minutes 20] [--seed 0] [--run-dir DIR]
        [--fuzz-frames 10000000] [--skip-soak] [--skip-fuzz] [--json PATH]

(a) Soak (``--minutes``, default 20). ``python user/train_agent.py --config test --run-dir D --progress
lines`` runs as a subprocess with small but real overrides (:data:`TRAINER_SETS`: the CPU config's
agent sizes, n_steps 64, save_freq 2048, a short evaluation every 16,384 steps, no final video,
total_timesteps out of reach; ``--trainer-set`` adds more). After a random 5-40 s (seeded by
``--seed``) it gets SIGTERM or SIGKILL at random; the soak waits for it to exit, then restarts it with
``--resume D``. The first launch is fresh; so is any launch while D holds no valid checkpoint yet (a
process killed before its first save), after D is emptied: a fresh start into a folder whose CSVs
hold rows of a dead attempt would append to them. Expected exits: SIGKILL -9; SIGTERM 0 (the
trainer saves at its next safe point and exits; it gets ``--term-timeout`` s) or -15 when the
signal came before the trainer installed its handler (start-up). Any other exit is a failure. When
the time is up, a last resume runs ``--final-steps`` more steps (``--set
training.total_timesteps=<latest checkpoint + N>``) and must finish with exit status 0.

Then the run folder is checked: every checkpoint in manifest.json verifies
(``CheckpointManifest.verify``), loads (``TransformerStrategyAgent.from_checkpoint``) and its resume
state loads (``load_state_tree``); the newest is at the final target step; every CSV parses with
pandas (monitor.csv after its comment line), ends with a newline and has no row with a wrong
number of fields; the steps of every CSV with a ``step`` column (metrics, monitor, behavior_metrics,
reward_breakdown, evaluation_results, ...) never decrease, and metrics.csv's strictly increase;
no temporary files of interrupted atomic writes are left (``stale_temp_files``). Checkpoint files
not listed in the manifest are reported (information only).

(b) Fuzz (``--fuzz-frames``, default 10,000,000 match-frames): ``BrawlEngine`` with
``--fuzz-matches`` (4096) matches, random keys whose press probability is redrawn per match and
player every 64 frames (squared uniform: from almost idle to mashing), finished matches reset.
Checked on every frame of every match: the 64-value observation of both players is finite and
within ``observation_bounds()``; positions and velocities are finite; damage in [0, 700]; stocks in
[0, 3] and never increasing within a match; no match runs past max_timesteps, one that reaches it
ends on that frame (truncated), and every ended match has a result. ``--fuzz-max-timesteps``
defaults to 900 (not the game's 2700) so that, within 10M frames at 4096 matches (2,441 frames
each), matches do reach their time limit and the truncation rule is exercised.

Fault kinds (one drawn per cycle, seeded; self-play is in the opponent mix throughout: the test
config plays its snapshots in 80% of matches): ``signal`` (above); ``sigterm in evaluation`` (SIGTERM
0.2-2 s after the trainer logs ``Evaluating at step``: exit 0, the time to exit is reported, over 10 s
is a failure); ``second trainer`` (a second ``--resume`` on the folder while one runs: exit 2 naming
the holder, no traceback); ``low disk`` (``--set training.min_free_gb=1000000``, a reserve above the
free space, standing in for a full disk: the run stops at its next save with that checkpoint, exit
2 with the message; the next launch puts the reserve back); ``corrupt manifest`` (half of
manifest.json: ``--resume`` refuses in one line, exit 2; the manifest is then put back);
``damaged checkpoint`` (a byte flipped in the newest checkpoint: the resume falls back past it). The
final stage films the final video and is SIGTERMed while filming (no partial ``match_vs_based.mp4``
may appear), then runs again to a whole, decodable video. Unless ``--skip-twin``, an uninterrupted
twin run to the same final step in ``<run dir>_twin`` must end with bit-identical weights.

Prints a summary table; exits 1 on any failure, 0 otherwise. Subprocess output goes to
``<run dir>_soak.log``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pandas as pd
import torch

from benchmarks.report import add_report_flags, finish
from environment import params as P
from environment.checkpoints import CheckpointManifest, load_state_tree, stale_temp_files
from environment.engine import BrawlEngine
from environment.observation import ObservationBuilder, observation_bounds
from user.agent_io import load_sb3_params
from user.train_agent import load_agent

ROOT = Path(__file__).resolve().parents[1]

TRAINER_SETS = [  # the soak's sizes (its list looks like the tests' TINY_SETS to `duplicates`; other values)
    "agent.latent_dim=32",
    "agent.num_heads=2",
    "agent.num_layers=1",
    "agent.sequence_length=16",
    "agent.lstm_hidden_size=64",
    "agent.net_arch={pi: [64, 64], vf: [64, 64]}",
    "agent.n_epochs=4",
    "agent.n_steps=64",
    "training.save_freq=2048",
    "training.total_timesteps=1000000000",
    "training.final_video=false",
    "training.progress_interval_s=5",
    "eval.eval_freq=16384",
    "eval.matches_per_opponent=1",
    "eval.snapshot_matches=1",
    "warm_start.seconds=0",
]
WAIT_RANGE_S = (5.0, 40.0)
STRICT_STEP_FILES = {"metrics.csv"}


# ==================================================================================
# (a) Soak
# ==================================================================================
@dataclass
class Cycle:
    index: int
    mode: str  # fresh / resume / final
    kind: str = "signal"  # the fault of this cycle (FAULT_KINDS, or the final stage's)
    wait_s: float = 0.0
    signal: str = ""  # SIGTERM / SIGKILL / "" (final run)
    rc: int | None = None
    exit_s: float = 0.0  # from the signal to the exit
    checkpoint_before: int | None = None
    checkpoint_after: int | None = None
    outcome: str = ""
    failure: str = ""


@dataclass
class SoakResult:
    run_dir: str = ""
    cycles: list[Cycle] = field(default_factory=list)
    checkpoints: int = 0
    checkpoints_ok: int = 0
    final_step: int | None = None
    final_target: int | None = None
    csv_files: int = 0
    csv_rows: int = 0
    step_order_violations: int = 0
    stale_temp_files: list[str] = field(default_factory=list)
    orphan_checkpoint_files: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    twin_identical: bool | None = None
    twin_wall_s: float = 0.0


def latest_checkpoint(run_dir: Path) -> int | None:
    if not (run_dir / "manifest.json").exists():
        return None
    found = CheckpointManifest(run_dir).latest_valid()
    return None if found is None else found[0]


class Trainer:
    """One train_agent.py subprocess, its output appended to the soak log."""

    def __init__(self, args: list[str], log_path: Path, header: str):
        self.log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115  (closed in wait())
        self.log.write(f"\n===== {time.strftime('%H:%M:%S')} {header}: {' '.join(args)}\n")
        self.log.flush()
        self.log_path, self.offset = log_path, self.log.tell()  # where this launch's output starts
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "user" / "train_agent.py"), *args],
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait(self, timeout: float | None) -> int | None:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self.log.close()
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)  # this process only, by its id
        self.proc.wait()
        self.log.close()

    def wait_for(self, text: str, timeout: float) -> bool:
        """True once this launch's output holds ``text``; False on a timeout or an exit without it."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if text in self.output_tail(10**6):
                return True
            if self.proc.poll() is not None:
                return text in self.output_tail(10**6)
            time.sleep(0.2)
        return False

    def output_tail(self, lines: int = 12) -> str:
        """The last lines this launch wrote."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.offset)
                text = f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


FAULT_KINDS = {  # kind -> weight of its draw per cycle
    "signal": 4,  # SIGTERM or SIGKILL at a random moment
    "sigterm in evaluation": 2,
    "second trainer": 1,
    "low disk": 1,
    "corrupt manifest": 1,
    "damaged checkpoint": 1,
}
RESERVE_GB = 1.0  # the test config's training.min_free_gb, put back after a low-disk cycle
EVAL_EXIT_LIMIT_S = 10.0  # a SIGTERM during an evaluation slower than this is a failure (target 2 s)


class Soak:
    """The soak's state between cycles: the run folder, the launch arguments, the results."""

    def __init__(self, cfg: argparse.Namespace):
        self.cfg, self.run_dir = cfg, cfg.run_dir
        self.log_path = self.run_dir.with_name(self.run_dir.name + "_soak.log")
        self.res = SoakResult(run_dir=str(self.run_dir))
        self.rng = random.Random(cfg.seed)
        self.sets = [arg for item in [*TRAINER_SETS, *cfg.trainer_set] for arg in ("--set", item)]

    def fresh_args(self, run_dir: Path | None = None) -> list[str]:
        return ["--config", "test", "--run-dir", str(run_dir or self.run_dir), "--progress", "lines", *self.sets]

    def resume_args(self, *extra: str) -> list[str]:
        args = ["--resume", str(self.run_dir), "--progress", "lines", *extra]
        if _saved_reserve(self.run_dir) != RESERVE_GB and "training.min_free_gb=1000000" not in extra:
            args += ["--set", f"training.min_free_gb={RESERVE_GB}"]  # config.json still has a low-disk cycle's
        return args

    def launch(self, index: int, kind: str, extra: list[str] | None = None) -> tuple[Cycle, Trainer]:
        before = latest_checkpoint(self.run_dir)
        if before is None:
            if self.run_dir.exists():
                shutil.rmtree(self.run_dir)  # no valid checkpoint yet: start again in a clean folder
            cycle = Cycle(index, "fresh", kind=kind)
            return cycle, Trainer(self.fresh_args() + (extra or []), self.log_path, f"cycle {index} fresh ({kind})")
        cycle = Cycle(index, "resume", kind=kind, checkpoint_before=before)
        trainer = Trainer(self.resume_args(*(extra or [])), self.log_path, f"cycle {index} resume ({kind})")
        return cycle, trainer

    def finish(self, cycle: Cycle, trainer: Trainer) -> None:
        cycle.checkpoint_after = latest_checkpoint(self.run_dir)
        if cycle.failure:
            self.res.failures.append(f"cycle {cycle.index} ({cycle.kind}): {cycle.failure}\n{trainer.output_tail()}")
        self.res.cycles.append(cycle)
        _print_cycle(cycle)


def _saved_reserve(run_dir: Path) -> float | None:
    try:
        return json.loads((run_dir / "config.json").read_text())["training"]["min_free_gb"]
    except (OSError, ValueError, KeyError):
        return None


def run_soak(cfg: argparse.Namespace) -> SoakResult:
    if cfg.run_dir.exists() and any(cfg.run_dir.iterdir()):
        raise SystemExit(f"--run-dir {cfg.run_dir} exists and is not empty: the soak needs a fresh folder")
    if not cfg.skip_twin and twin_dir(cfg.run_dir).exists():  # never delete a folder the soak did not make
        raise SystemExit(f"{twin_dir(cfg.run_dir)} exists: the twin run needs a fresh folder (or --skip-twin)")
    soak = Soak(cfg)
    t_start = time.monotonic()
    deadline = t_start + cfg.minutes * 60
    print(f"Soak: {cfg.minutes:g} min of fault / resume cycles in {cfg.run_dir} (log {soak.log_path})", flush=True)
    index = 0
    kinds, weights = list(FAULT_KINDS), list(FAULT_KINDS.values())
    while time.monotonic() < deadline:
        index += 1
        kind = soak.rng.choices(kinds, weights)[0]
        needed = 2 if kind == "damaged checkpoint" else 1  # the checkpoints the fault acts on
        if _checkpoint_count(cfg.run_dir) < needed or latest_checkpoint(cfg.run_dir) is None:
            kind = "signal"
        CYCLES[kind](soak, index)
    final_stage(soak, index + 1)
    soak.res.wall_s = time.monotonic() - t_start
    verify_run(cfg.run_dir, soak.res)
    if not cfg.skip_twin and soak.res.final_target is not None:
        compare_with_twin(soak)
    return soak.res


def _checkpoint_count(run_dir: Path) -> int:
    return len(CheckpointManifest(run_dir).steps()) if (run_dir / "manifest.json").exists() else 0


@contextlib.contextmanager
def _finished_or_killed(soak: Soak, cycle: Cycle, trainer: Trainer):
    """Run a fault's checks on a launched trainer: recorded as a finished cycle, or, if the checks
    themselves fail (or the soak is interrupted), the trainer is killed first."""
    try:
        yield
    except BaseException:
        trainer.kill()
        raise
    soak.finish(cycle, trainer)


def _signal_cycle(soak: Soak, index: int, extra: list[str] | None = None, kind: str = "signal") -> None:
    """A launch that gets SIGTERM or SIGKILL after a random wait."""
    cycle, trainer = soak.launch(index, kind, extra)
    with _finished_or_killed(soak, cycle, trainer):
        _signal_after_wait(soak, cycle, trainer, soak.rng.uniform(*WAIT_RANGE_S))


def _signal_after_wait(soak: Soak, cycle: Cycle, trainer: Trainer, wait_s: float) -> None:
    cycle.wait_s = wait_s
    sig = soak.rng.choice([signal.SIGTERM, signal.SIGKILL])
    rc = trainer.wait(wait_s)
    if rc is not None:  # exited by itself before the signal
        cycle.rc = rc
        cycle.failure = f"exited by itself with status {rc} before the {sig.name} due at {wait_s:.0f} s"
        return
    _send(soak, cycle, trainer, sig)


def _send(soak: Soak, cycle: Cycle, trainer: Trainer, sig: signal.Signals) -> None:
    os.kill(trainer.proc.pid, sig)
    cycle.signal = sig.name
    t_sig = time.monotonic()
    limit = soak.cfg.term_timeout if sig == signal.SIGTERM else 60.0
    rc = trainer.wait(limit)
    cycle.exit_s = time.monotonic() - t_sig
    if rc is None:
        cycle.failure = f"still running {limit:g} s after {sig.name}; killed"
        trainer.kill()
        rc = trainer.proc.returncode
    cycle.rc = rc
    if not cycle.failure:
        cycle.outcome, cycle.failure = _judge_exit(sig, rc)


def _sigterm_in_evaluation(soak: Soak, index: int) -> None:
    """SIGTERM once the trainer logs the start of an evaluation; it must exit 0 within seconds."""
    cycle, trainer = soak.launch(index, "sigterm in evaluation")
    with _finished_or_killed(soak, cycle, trainer):
        found = trainer.wait_for("Evaluating at step", timeout=150.0)
        if not found:  # no evaluation came in time (or it exited): a plain SIGTERM then
            cycle.kind = "signal"
            if trainer.proc.poll() is not None:
                cycle.rc, cycle.failure = trainer.proc.returncode, "exited by itself while waiting for an evaluation"
            else:
                _send(soak, cycle, trainer, signal.SIGTERM)
        else:
            time.sleep(soak.rng.uniform(0.2, 2.0))  # inside the evaluation's matches
            _send(soak, cycle, trainer, signal.SIGTERM)
            if not cycle.failure and cycle.exit_s > EVAL_EXIT_LIMIT_S:
                cycle.failure = f"took {cycle.exit_s:.1f} s to exit after SIGTERM during an evaluation"


def _second_trainer(soak: Soak, index: int) -> None:
    """A second --resume on the folder while the first runs: refused (status 2, the holder named)."""
    cycle, trainer = soak.launch(index, "second trainer")
    with _finished_or_killed(soak, cycle, trainer):
        if trainer.wait_for("Resuming" if cycle.mode == "resume" else "Run folder", timeout=120.0):
            second = Trainer(["--resume", str(soak.run_dir)], soak.log_path, f"cycle {index} second trainer")
            rc = second.wait(60.0)
            if rc is None:
                second.kill()
                cycle.failure = "the second trainer was still running after 60 s"
            else:
                text = second.output_tail(40)
                if rc != 2 or "in use by process" not in text or "Traceback" in text:
                    cycle.failure = f"the second trainer exited {rc} without the one-line refusal: {text[-300:]}"
        _signal_after_wait(soak, cycle, trainer, soak.rng.uniform(*WAIT_RANGE_S))


def _low_disk(soak: Soak, index: int) -> None:
    """A reserve above the free space: the run stops at its next save, with it, exit 2 saying so."""
    cycle, trainer = soak.launch(index, "low disk", ["--set", "training.min_free_gb=1000000"])
    with _finished_or_killed(soak, cycle, trainer):
        _expect_one_line_exit_2(cycle, trainer, 240.0, "fell below training.min_free_gb", "stopped at its save")


def _expect_one_line_exit_2(cycle: Cycle, trainer: Trainer, timeout: float, message: str, outcome: str) -> None:
    """The launch must end by itself within ``timeout`` with status 2 and ``message``, no traceback."""
    rc = trainer.wait(timeout)
    if rc is None:
        trainer.kill()
        cycle.failure = f"still running after {timeout:g} s (expected exit 2: {message!r})"
        return
    cycle.rc = rc
    text = trainer.output_tail(20)
    if rc != 2 or message not in text or "Traceback" in text:
        cycle.failure = f"exit {rc} without a one-line error containing {message!r}: {text[-300:]}"
    else:
        cycle.outcome = f"{outcome}, exit 2"


def _corrupt_manifest(soak: Soak, index: int) -> None:
    """Garbage in manifest.json: --resume refuses in one line (exit 2); the manifest is then put back."""
    manifest = soak.run_dir / "manifest.json"
    saved = manifest.read_bytes()
    cycle = Cycle(index, "resume", kind="corrupt manifest", checkpoint_before=latest_checkpoint(soak.run_dir))
    manifest.write_bytes(saved[: len(saved) // 2])
    try:
        trainer = Trainer(soak.resume_args(), soak.log_path, f"cycle {index} resume (corrupt manifest)")
        _expect_one_line_exit_2(cycle, trainer, 60.0, "manifest.json", "refused in one line")
    finally:
        tmp = manifest.with_name(".manifest.json.soak-restore")
        tmp.write_bytes(saved)
        os.replace(tmp, manifest)
    soak.finish(cycle, trainer)


def _damaged_checkpoint(soak: Soak, index: int) -> None:
    """One byte flipped in the newest checkpoint: the resume falls back to the previous one."""
    newest = latest_checkpoint(soak.run_dir)
    zip_path = soak.run_dir / f"rl_model_{newest}_steps.zip"
    data = bytearray(zip_path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    zip_path.write_bytes(bytes(data))
    cycle, trainer = soak.launch(index, "damaged checkpoint")
    with _finished_or_killed(soak, cycle, trainer):
        found = trainer.wait_for("Resuming", timeout=120.0)
        text = trainer.output_tail(30)
        if not found or f"Resuming {soak.run_dir} from step {newest:,}" in text:
            cycle.failure = f"no fall-back past the damaged checkpoint {newest}: {text[-300:]}"
        _signal_after_wait(soak, cycle, trainer, soak.rng.uniform(*WAIT_RANGE_S))


CYCLES = {
    "signal": _signal_cycle,
    "sigterm in evaluation": _sigterm_in_evaluation,
    "second trainer": _second_trainer,
    "low disk": _low_disk,
    "corrupt manifest": _corrupt_manifest,
    "damaged checkpoint": _damaged_checkpoint,
}


def final_stage(soak: Soak, index: int) -> None:
    """A last extension with the final video, SIGTERMed while it films (no partial video may appear
    under its name), then the same extension again, which must finish (exit 0) with a whole video."""
    before = latest_checkpoint(soak.run_dir)
    target = (before or 0) + soak.cfg.final_steps
    soak.res.final_target = target
    extra = ["--set", f"training.total_timesteps={target}", "--set", "training.final_video=true"]
    video = soak.run_dir / "match_vs_based.mp4"
    cycle, trainer = soak.launch(index, "sigterm in video", extra)
    cycle.mode = "final"
    with _finished_or_killed(soak, cycle, trainer):
        if trainer.wait_for("Filming the final match", timeout=soak.cfg.final_timeout):
            time.sleep(0.5)
            os.kill(trainer.proc.pid, signal.SIGTERM)
            cycle.signal = "SIGTERM"
            t_sig = time.monotonic()
            rc = trainer.wait(60.0)
            cycle.exit_s = time.monotonic() - t_sig
            if rc is None:
                trainer.kill()
                cycle.failure = "still filming 60 s after SIGTERM"
            cycle.rc = trainer.proc.returncode
            if cycle.rc not in (0, -signal.SIGTERM):
                cycle.failure = f"exit {cycle.rc} after SIGTERM while filming"
            elif video.exists():
                cycle.failure = "a video appeared under match_vs_based.mp4 although its filming was stopped"
            else:
                cycle.outcome = "stopped while filming; no partial video"
        else:
            trainer.kill()
            cycle.failure = "the final run never started filming"
    _final_run(soak, index + 1, extra, video)


def _final_run(soak: Soak, index: int, extra: list[str], video: Path) -> None:
    cycle, trainer = soak.launch(index, "final run", extra)
    cycle.mode = "final"
    try:
        rc = trainer.wait(soak.cfg.final_timeout)
    except BaseException:
        trainer.kill()
        raise
    if rc is None:
        trainer.kill()
        cycle.failure = f"the final run did not finish within {soak.cfg.final_timeout:g} s"
    cycle.rc = trainer.proc.returncode
    if not cycle.failure and cycle.rc != 0:
        cycle.failure = f"the final run exited with status {cycle.rc}"
    if not cycle.failure:
        cycle.failure = _video_problem(video)
    cycle.outcome = "finished, video whole" if not cycle.failure else "failed"
    soak.finish(cycle, trainer)


def _video_problem(video: Path) -> str:
    if not video.is_file() or video.stat().st_size == 0:
        return "no match_vs_based.mp4 after the final run"
    try:
        frame = next(iter(iio.imiter(video)))
    except Exception as exc:  # any failure to decode is a finding
        return f"match_vs_based.mp4 does not decode: {type(exc).__name__}: {exc}"
    return "" if frame.size else "match_vs_based.mp4 has an empty first frame"


def twin_dir(run_dir: Path) -> Path:
    return run_dir.with_name(run_dir.name + "_twin")


def compare_with_twin(soak: Soak) -> None:
    """An uninterrupted run to the same final step: its final weights must equal the soak's bit for bit."""
    twin = twin_dir(soak.run_dir)
    target = soak.res.final_target
    print(f"Twin: an uninterrupted run to step {target} in {twin}", flush=True)
    args = [*soak.fresh_args(twin), "--set", f"training.total_timesteps={target}"]
    trainer = Trainer(args, soak.log_path, f"twin to {target}")
    t0 = time.monotonic()
    limit = max(1800.0, 2 * soak.cfg.minutes * 60)  # the twin replays the soak's steps without its restarts
    rc = trainer.wait(limit)
    if rc is None:
        trainer.kill()
    soak.res.twin_wall_s = time.monotonic() - t0
    final = latest_checkpoint(soak.run_dir)
    twin_final = latest_checkpoint(twin)
    if rc != 0 or twin_final != final:
        soak.res.twin_identical = False
        detail = f"twin: exit {rc}, final step {twin_final} (the soak's: {final})"
        soak.res.failures.append(f"{detail}\n{trainer.output_tail()}")
        return
    a, b = (load_sb3_params(run / f"rl_model_{final}_steps.zip")["policy"] for run in (soak.run_dir, twin))
    soak.res.twin_identical = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    if not soak.res.twin_identical:
        differing = [k for k in a if k not in b or not torch.equal(a[k], b[k])]
        soak.res.failures.append(f"twin: final weights differ from the soak's in {len(differing)} tensors")


def _judge_exit(sig: signal.Signals, rc: int) -> tuple[str, str]:
    """(outcome, failure) of a process that exited after ``sig``."""
    if sig == signal.SIGKILL:
        return ("killed", "") if rc == -signal.SIGKILL else ("", f"exit status {rc} after SIGKILL (expected -9)")
    if rc == 0:
        return "clean stop", ""
    if rc == -signal.SIGTERM:
        return "SIGTERM before the handler (start-up)", ""
    return "", f"exit status {rc} after SIGTERM (expected 0, or -15 during start-up)"


def _print_cycle(c: Cycle) -> None:
    what = "run to the end" if c.mode == "final" else "no signal"
    if c.signal:
        what = f"{c.signal} after {c.wait_s:.1f} s"
    print(
        f"  cycle {c.index:>3} {c.mode:<6} {c.kind:<21} {what:<24} exit {c.rc} in {c.exit_s:.1f} s -> "
        f"{c.outcome or c.failure}; checkpoint {c.checkpoint_before} -> {c.checkpoint_after}",
        flush=True,
    )


# --- checks of the run folder ---------------------------------------------------------
def verify_run(run_dir: Path, res: SoakResult) -> None:
    manifest = CheckpointManifest(run_dir)
    steps = manifest.steps() if (run_dir / "manifest.json").exists() else []
    res.checkpoints = len(steps)
    for step in steps:
        try:
            manifest.verify(step)
            files = manifest.files(step)
            zip_path = next(f for f in files if f.name.endswith(".zip"))
            load_agent(zip_path)
            load_state_tree(zip_path.with_name(zip_path.name.removesuffix(".zip") + "_state"))
            res.checkpoints_ok += 1
        except Exception as exc:  # any failure to verify or load is a finding
            res.failures.append(f"checkpoint {step}: {type(exc).__name__}: {exc}")
    res.final_step = steps[-1] if steps else None
    if res.final_target is not None and (res.final_step is None or res.final_step < res.final_target):
        res.failures.append(
            f"the newest checkpoint is at step {res.final_step}, not the final target {res.final_target}"
        )
    listed = {name for s in steps for name in manifest.entry(s)["files"]}
    res.orphan_checkpoint_files = sorted(p.name for p in run_dir.glob("rl_model_*") if p.name not in listed)
    for path in sorted(run_dir.glob("*.csv")):
        check_csv(path, res)
    res.stale_temp_files = [p.name for p in stale_temp_files(run_dir)]
    if res.stale_temp_files:
        res.failures.append(f"temporary files of interrupted writes left: {res.stale_temp_files}")


def check_csv(path: Path, res: SoakResult) -> None:
    res.csv_files += 1
    raw = path.read_bytes()
    text = raw.decode("utf-8", errors="replace")
    if raw and not raw.endswith(b"\n"):
        res.failures.append(f"{path.name}: the last line has no newline (a partial row)")
    skip = 1 if text.startswith("#") else 0
    lines = text.splitlines()[skip:]
    rows = list(csv.reader(lines))
    if not rows:
        res.failures.append(f"{path.name}: no header")
        return
    header, body = rows[0], rows[1:]
    bad = [i + 2 + skip for i, r in enumerate(body) if len(r) != len(header)]
    if bad:
        res.failures.append(f"{path.name}: {len(bad)} row(s) with a wrong number of fields (lines {bad[:5]})")
    try:
        df = pd.read_csv(path, skiprows=skip)
    except Exception as exc:  # a parse failure is a finding
        res.failures.append(f"{path.name}: pandas cannot parse it: {type(exc).__name__}: {exc}")
        return
    res.csv_rows += len(df)
    if "step" not in df.columns or df.empty:
        return
    step = pd.to_numeric(df["step"], errors="coerce")
    if step.isna().any():
        res.failures.append(f"{path.name}: {int(step.isna().sum())} missing or non-numeric step value(s)")
        step = step.dropna().reset_index(drop=True)
    diffs = np.diff(step.to_numpy())
    strict = path.name in STRICT_STEP_FILES
    wrong = np.flatnonzero(diffs <= 0) if strict else np.flatnonzero(diffs < 0)
    if wrong.size:
        res.step_order_violations += int(wrong.size)
        i = int(wrong[0])
        kind = "strictly increasing" if strict else "non-decreasing"
        res.failures.append(
            f"{path.name}: steps not {kind}: {wrong.size} place(s), first at data rows {i + 1}-{i + 2} "
            f"(step {step.iloc[i]:g} then {step.iloc[i + 1]:g})"
        )


# ==================================================================================
# (b) Engine fuzz
# ==================================================================================
@dataclass
class FuzzResult:
    frames: int = 0  # match-frames
    engine_steps: int = 0
    matches: int = 0
    max_timesteps: int = 0
    ended_by_stocks: int = 0
    ended_by_time: int = 0
    violations: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    frames_per_s: float = 0.0

    @property
    def total_violations(self) -> int:
        return sum(self.violations.values())


class FrameChecks:
    """The per-frame invariants of the fuzz, counted per kind (match-frames that break it)."""

    def __init__(self, engine: BrawlEngine, res: FuzzResult):
        self.s, self.res = engine.state, res
        self.low, self.high = observation_bounds(engine.params)
        self.max_damage, self.stocks = engine.params.max_damage, engine.params.stocks
        self.max_timesteps = engine.max_timesteps
        self.prev_stocks = self.s.stocks.copy()
        self.counts: Counter[str] = Counter()

    def flag(self, kind: str, bad: np.ndarray, k: int, detail) -> None:
        rows = np.flatnonzero(bad)
        if rows.size:
            self.counts[kind] += int(rows.size)
            if len(self.res.examples) < 10:
                r = int(rows[0])
                self.res.examples.append(f"frame {k}, match {r}: {kind} ({detail(r)})")

    def after_step(self, k: int, obs: np.ndarray, ev) -> None:
        s, low, high, t = self.s, self.low, self.high, self.max_timesteps
        self.flag("observation not finite", ~np.isfinite(obs).all(axis=(1, 2)), k, lambda r: "NaN/inf")
        outside = (obs < low) | (obs > high)
        self.flag(
            "observation out of bounds",
            ~_obs_ok(obs, low, high),
            k,
            lambda r: f"indices {np.flatnonzero(outside[r].any(axis=0))[:5]}",
        )
        motion = np.stack([s.x, s.y, s.vx, s.vy])
        self.flag("position/velocity not finite", ~np.isfinite(motion).all(axis=(0, 2)), k, lambda r: "x/y/vx/vy")
        self.flag(
            "damage outside [0, 700]",
            ((s.damage < 0) | (s.damage > self.max_damage)).any(axis=1),
            k,
            lambda r: f"damage {s.damage[r].tolist()}",
        )
        self.flag(
            "stocks outside [0, 3]",
            ((s.stocks < 0) | (s.stocks > self.stocks)).any(axis=1),
            k,
            lambda r: f"stocks {s.stocks[r].tolist()}",
        )
        self.flag(
            "stocks increased within a match",
            (s.stocks > self.prev_stocks).any(axis=1),
            k,
            lambda r: f"{self.prev_stocks[r].tolist()} -> {s.stocks[r].tolist()}",
        )
        self.flag("match past max_timesteps", s.frame > t, k, lambda r: f"frame {s.frame[r]}")
        self.flag("match not ended at max_timesteps", (s.frame >= t) & ~ev.done, k, lambda r: f"frame {s.frame[r]}")
        self.flag("ended without a result", ev.done & (ev.result == P.RESULT_NONE), k, lambda r: "result none")
        self.flag("truncated before max_timesteps", ev.truncated & (s.frame != t), k, lambda r: f"frame {s.frame[r]}")

    def after_reset(self, k: int, done: np.ndarray) -> None:
        s = self.s
        reset = np.zeros(s.n, bool)
        reset[done] = True
        self.flag(
            "stocks not full after reset",
            reset & (s.stocks != self.stocks).any(axis=1),
            k,
            lambda r: f"stocks {s.stocks[r].tolist()}",
        )

    def end_frame(self) -> None:
        self.prev_stocks[:] = self.s.stocks


def run_fuzz(frames: int, n: int, max_timesteps: int, seed: int, chunk: int = 64) -> FuzzResult:
    res = FuzzResult(matches=n, max_timesteps=max_timesteps)
    rng = np.random.default_rng(seed)
    engine = BrawlEngine(n, max_timesteps=max_timesteps, seed=seed)
    engine.reset()
    builder = ObservationBuilder(n)
    checks = FrameChecks(engine, res)
    steps = math.ceil(frames / n)
    print(
        f"Fuzz: {steps * n:,} match-frames = {steps:,} frames x {n:,} matches, max_timesteps {max_timesteps}",
        flush=True,
    )
    t0 = time.perf_counter()
    checks.flag(
        "observation at reset",
        ~_obs_ok(builder.build(engine.state), checks.low, checks.high),
        -1,
        lambda r: "after reset",
    )
    press_p = np.zeros((n, 2, 1))
    for k in range(steps):
        if k % chunk == 0:
            press_p = rng.random((n, 2, 1)) ** 2  # per match and player: from almost idle to mashing
        keys = rng.random((n, 2, P.N_KEYS)) < press_p
        ev = engine.step(keys)
        checks.after_step(k, builder.build(engine.state), ev)
        done = np.flatnonzero(ev.done)
        if done.size:
            res.ended_by_time += int(ev.truncated[done].sum())
            res.ended_by_stocks += int((~ev.truncated[done]).sum())
            engine.reset(done)
            checks.after_reset(k, done)
        checks.end_frame()
        res.engine_steps += 1
        if (k + 1) % 500 == 0:
            print(f"  {res.engine_steps * n:,} match-frames, {sum(checks.counts.values())} violations", flush=True)
    res.wall_s = time.perf_counter() - t0
    res.frames = res.engine_steps * n
    res.frames_per_s = res.frames / res.wall_s
    res.violations = dict(checks.counts)
    return res


def _obs_ok(obs: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Per match: both players' observations are within the bounds (NaN fails)."""
    return ((obs >= low) & (obs <= high)).all(axis=(1, 2))


# ==================================================================================
# Report
# ==================================================================================
def summary_rows(soak: SoakResult | None, fuzz: FuzzResult | None, wall: float) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    if soak is not None:
        kill_cycles = [c for c in soak.cycles if c.mode != "final"]
        terms = [c for c in kill_cycles if c.signal == "SIGTERM"]
        kills = [c for c in kill_cycles if c.signal == "SIGKILL"]
        clean = sum(c.outcome == "clean stop" for c in terms)
        early = sum(c.outcome.startswith("SIGTERM before") for c in terms)
        cycle_failures = sum(bool(c.failure) for c in kill_cycles)
        in_eval = [c.exit_s for c in kill_cycles if c.kind == "sigterm in evaluation" and c.signal]
        final = [c for c in soak.cycles if c.mode == "final"]
        rows += [
            ("soak cycles (fault + restart)", f"{len(kill_cycles)}", _ok(cycle_failures == 0)),
            *_kind_rows(kill_cycles),
            ("SIGTERM sent", f"{len(terms)} ({clean} clean stops, {early} during start-up)", ""),
            ("SIGKILL sent", f"{len(kills)}", ""),
            (
                "SIGTERM to exit during an evaluation",
                f"max {max(in_eval):.1f} s, median {float(np.median(in_eval)):.1f} s over {len(in_eval)}"
                if in_eval
                else "none sent",
                _ok(all(t <= EVAL_EXIT_LIMIT_S for t in in_eval)),
            ),
            (
                "launches: fresh / resumes",
                f"{sum(c.mode == 'fresh' for c in soak.cycles)} / "
                f"{sum(c.mode in ('resume', 'final') and c.checkpoint_before is not None for c in soak.cycles)}",
                "",
            ),
            *[
                (f"final stage: {c.kind}", f"to step {soak.final_target}: {c.outcome or c.failure}", _ok(not c.failure))
                for c in final
            ],
            (
                "final weights vs an uninterrupted twin",
                {None: "not run", True: "bit-identical", False: "DIFFERENT"}[soak.twin_identical],
                "" if soak.twin_identical is None else _ok(soak.twin_identical),
            ),
            (
                "checkpoints verified + loaded",
                f"{soak.checkpoints_ok} / {soak.checkpoints} (newest {soak.final_step})",
                _ok(soak.checkpoints > 0 and soak.checkpoints_ok == soak.checkpoints),
            ),
            ("CSV files / rows", f"{soak.csv_files} / {soak.csv_rows:,}", ""),
            ("CSV step-order violations", f"{soak.step_order_violations}", _ok(soak.step_order_violations == 0)),
            ("stale temp files", f"{len(soak.stale_temp_files)}", _ok(not soak.stale_temp_files)),
            ("checkpoint files not in manifest", f"{len(soak.orphan_checkpoint_files)}", "info"),
            ("soak failures (all kinds)", f"{len(soak.failures)}", _ok(not soak.failures)),
            ("soak wall time", f"{soak.wall_s / 60:.1f} min", ""),
        ]
    if fuzz is not None:
        ended = f"{fuzz.ended_by_stocks:,} on stocks, {fuzz.ended_by_time:,} at max_timesteps {fuzz.max_timesteps}"
        rows += [
            ("frames fuzzed (match-frames)", f"{fuzz.frames:,} ({fuzz.matches:,} matches x {fuzz.engine_steps:,})", ""),
            ("matches ended", ended, ""),
            ("invariant violations", f"{fuzz.total_violations}", _ok(fuzz.total_violations == 0)),
            ("fuzz wall time", f"{fuzz.wall_s:.1f} s ({fuzz.frames_per_s:,.0f} checked match-frames/s)", ""),
        ]
    rows.append(("wall time", f"{wall / 60:.1f} min", ""))
    return rows


def _kind_rows(cycles: list[Cycle]) -> list[tuple[str, str, str]]:
    rows = []
    for kind in FAULT_KINDS:
        of_kind = [c for c in cycles if c.kind == kind]
        failed = sum(bool(c.failure) for c in of_kind)
        rows.append((f"  cycles: {kind}", f"{len(of_kind)} ({failed} failed)", _ok(failed == 0)))
    return rows


def _ok(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# Flags as in every benchmark script: argparse calls alike in shape (paired by `duplicates`), its own flags.
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="soak duration (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the waits, the signals and the fuzz")
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="soak run folder (default checkpoints/soak__<timestamp>; must be new)",
    )
    parser.add_argument(
        "--trainer-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra train_agent.py --set overrides for the soak run",
    )
    parser.add_argument("--term-timeout", type=float, default=180.0, help="seconds a SIGTERMed trainer gets")
    parser.add_argument("--final-steps", type=int, default=4096, help="steps of the final extension")
    parser.add_argument("--final-timeout", type=float, default=600.0, help="seconds the final run gets")
    parser.add_argument("--fuzz-frames", type=int, default=10_000_000, help="match-frames to fuzz")
    parser.add_argument("--fuzz-matches", type=int, default=4096, help="matches in the fuzzed engine")
    parser.add_argument("--fuzz-max-timesteps", type=int, default=900, help="the fuzzed engine's max_timesteps")
    parser.add_argument("--skip-soak", action="store_true")
    parser.add_argument("--skip-fuzz", action="store_true")
    parser.add_argument("--skip-twin", action="store_true", help="no uninterrupted twin run to compare weights with")
    add_report_flags(parser)  # soak fails (status 1) on any finding, --check or not
    cfg = parser.parse_args(argv)
    if cfg.run_dir is None:
        cfg.run_dir = ROOT / "checkpoints" / f"soak__{time.strftime('%Y%m%d-%H%M%S')}"
    cfg.run_dir = cfg.run_dir.resolve()

    t0 = time.monotonic()
    soak = None if cfg.skip_soak else run_soak(cfg)
    fuzz = None if cfg.skip_fuzz else run_fuzz(cfg.fuzz_frames, cfg.fuzz_matches, cfg.fuzz_max_timesteps, cfg.seed)
    wall = time.monotonic() - t0

    rows = summary_rows(soak, fuzz, wall)
    header = ("measure", "value", "check")
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(3)]
    print()
    for r in [header, None, *rows]:
        if r is None:
            print("  ".join("-" * w for w in widths))
        else:
            print("  ".join(r[k].ljust(widths[k]) for k in range(3)).rstrip())
    failures = (soak.failures if soak else []) + [f"fuzz: {e}" for e in (fuzz.examples if fuzz else [])]
    if soak is not None and soak.orphan_checkpoint_files:
        print(f"\ncheckpoint files not in the manifest (info): {', '.join(soak.orphan_checkpoint_files[:10])}")
    if fuzz is not None and fuzz.violations:
        print("\nfuzz violations by kind: " + "; ".join(f"{k}: {v:,}" for k, v in fuzz.violations.items()))
    ok = not failures and (fuzz is None or fuzz.total_violations == 0)
    if failures:
        print(f"\nFAILED ({len(failures)}):")
        for f in failures:
            print("  - " + f.replace("\n", "\n    "))
    else:
        print("\nall checks passed")
    if soak is not None:
        print(f"run folder: {soak.run_dir}; trainer output: {soak.run_dir}_soak.log")
    body = {
        "soak": asdict(soak) if soak else None,
        "fuzz": (asdict(fuzz) | {"total_violations": fuzz.total_violations}) if fuzz else None,
        "summary": [dict(zip(header, r, strict=True)) for r in rows],
        "passed": ok,
        "wall_s": wall,
    }
    cfg.check = True  # a soak finding is always a failure
    return finish(cfg, "soak", body, failures or ([] if ok else ["fuzz: invariant violations"]))


if __name__ == "__main__":
    sys.exit(main())
