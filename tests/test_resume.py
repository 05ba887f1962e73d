"""Long unattended runs: exact resume, signals, corrupt checkpoints, poisoned files, divergence, disk budget."""

from __future__ import annotations

import copy
import errno
import io
import json
import logging
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import zipfile
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
import torch

from environment.checkpoints import (
    CheckpointError,
    CheckpointManifest,
    CheckpointNotFoundError,
    CsvLog,
    RunFolderInUseError,
    RunFolderLock,
    load_state_tree,
)
from environment.self_play import snapshot_names, snapshot_steps
from tests.test_train_agent import SELF_PLAY_ONLY, TINY_SETS, tiny_config
from user import agent_io, monitoring
from user import train_agent as T
from user.agent_io import load_state_dict_file
from user.config_tools import load_config_json
from user.resume import DiskFullError

REPO = Path(__file__).resolve().parents[1]
RESUME_SETS = [
    *TINY_SETS,
    "training.total_timesteps=768",
    "training.save_freq=256",
    "eval.eval_freq=100000",
    "agent.n_epochs=2",
    "self_play.opponents={self_play: [0.5, null], based: [0.3, based], random: [0.2, random]}",
]


def train_command(run_dir: Path, extra: list[str] | None = None) -> list[str]:
    cmd = [sys.executable, "user/train_agent.py", "--config", "test", "--run-dir", str(run_dir), "--progress", "lines"]
    for item in RESUME_SETS:
        cmd += ["--set", item]
    return cmd + (extra or [])


def trainer_cli(*args: str) -> subprocess.CompletedProcess:
    """``python user/train_agent.py ARGS`` from the repo root; its output as text."""
    cmd = [sys.executable, "user/train_agent.py", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)


def trainer_process(cmd: list[str]) -> subprocess.Popen:
    """A trainer started from the repo root, its stdout and stderr one text stream (to watch, then signal)."""
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def policy_params(zip_path: Path) -> dict[str, torch.Tensor]:
    with zipfile.ZipFile(zip_path) as archive:
        return torch.load(io.BytesIO(archive.read("policy.pth")), weights_only=True)


def monitor_rows(run_dir: Path) -> list[list[str]]:
    lines = (run_dir / "monitor.csv").read_text().splitlines()
    return [line.split(",") for line in lines[2:]]


def run_until_sigterm(run_dir: Path, after: str) -> tuple[int, str]:
    """Start training, send SIGTERM once ``after`` appears in its log; returns (exit code, log)."""
    proc = trainer_process(train_command(run_dir))
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if after in line:
            proc.send_signal(signal.SIGTERM)
            break
    rest, _ = proc.communicate(timeout=120)
    return proc.returncode, "".join(lines) + rest


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    subprocess.run(train_command(run_dir), cwd=REPO, check=True, capture_output=True, timeout=300)
    return run_dir


def test_sigterm_then_resume_is_bit_identical_to_an_uninterrupted_run(uninterrupted, tmp_path):
    run_dir = tmp_path / "run"
    code, output = run_until_sigterm(run_dir, "Saved checkpoint rl_model_256_steps.zip")
    assert code == 0, output[-2000:]
    assert "SIGTERM received" in output
    # It stopped at the next safe point: the SIGTERM checkpoint is the last one, before the run's end.
    stopped_at = max(CheckpointManifest(run_dir).steps())
    assert 256 <= stopped_at < 768 and "Stopped early" in output, output[-2000:]
    for name in ("monitor.csv", "metrics.csv", "behavior_metrics.csv", "reward_breakdown.csv"):
        assert (run_dir / name).read_text().endswith("\n"), f"{name} ends in a partial row"
    # The checkpoint left behind loads (weights only).
    T.load_agent(run_dir)
    done = trainer_cli("--resume", str(run_dir), "--progress", "lines")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    a = policy_params(uninterrupted / "rl_model_768_steps.zip")
    b = policy_params(run_dir / "rl_model_768_steps.zip")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # Same opponents in the same order, same returns; steps never go back and no row repeats.
    rows_a, rows_b = monitor_rows(uninterrupted), monitor_rows(run_dir)
    assert [(r[3], r[5], r[0]) for r in rows_a] == [(r[3], r[5], r[0]) for r in rows_b]
    steps = [int(line.split(",")[0]) for line in (run_dir / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == sorted(set(steps))


def test_truncated_newest_checkpoint_falls_back_to_the_previous_one(uninterrupted, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(uninterrupted, run_dir)
    newest = run_dir / "rl_model_768_steps.zip"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    config = load_config_json(run_dir / "config.json")
    run = T.TrainingRun(T.validate_config(config), run_dir, torch.device("cpu"))
    with pytest.warns(UserWarning, match="rl_model_768_steps.zip"):
        step = run.restore()
    assert step == 512
    run.close()


def test_resume_refuses_to_start_from_scratch_and_names_bad_input(tmp_path, uninterrupted):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text((uninterrupted / "config.json").read_text())
    config = T.validate_config(load_config_json(empty / "config.json"))
    run = T.TrainingRun(config, empty, torch.device("cpu"))
    with pytest.raises(CheckpointError, match="no valid checkpoint"):
        run.restore()
    run.close()
    (empty / "config.json").write_text("{not json")
    with pytest.raises(T.ConfigError, match="config.json is not valid JSON"):
        T.resume_training(empty)
    with pytest.raises(T.ConfigError, match="conflicts with the run's config"):
        T.resume_training(uninterrupted, config_name="10m")
    with pytest.raises(T.ConfigError, match="run folder not found"):
        T.resume_training(tmp_path / "nowhere")


def test_fresh_run_never_reuses_a_folder_with_checkpoints(uninterrupted):
    with pytest.raises(T.ConfigError, match="already holds checkpoints"):
        T.run_training_loop(tiny_config(), uninterrupted)


class _Marker:
    """Unpickling this creates a file: a stand-in for code hidden in a checkpoint."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_poisoned_checkpoints_are_rejected_without_running_code(tmp_path, uninterrupted):
    marker = tmp_path / "pwned"
    poisoned_zip = tmp_path / "rl_model_1_steps.zip"
    with zipfile.ZipFile(uninterrupted / "rl_model_768_steps.zip") as src, zipfile.ZipFile(poisoned_zip, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "policy.pth":
                buffer = io.BytesIO()
                torch.save({"weights": _Marker(str(marker))}, buffer)
                data = buffer.getvalue()
            dst.writestr(name, data)
    poisoned_pth = tmp_path / "rl_model_1_steps_transformer_encoder.pth"
    poisoned_pth.write_bytes(pickle.dumps(_Marker(str(marker))))
    with pytest.raises(CheckpointError, match="policy.pth.*not a weights-only checkpoint"):
        T.load_agent(poisoned_zip)
    policy = T.load_agent(uninterrupted / "rl_model_768_steps.zip").policy
    with pytest.raises(CheckpointError, match="policy.pth.*not a weights-only checkpoint"):
        agent_io.load_policy_weights(policy, poisoned_zip)
    with pytest.raises(CheckpointError, match="not a weights-only checkpoint"):
        load_state_dict_file(poisoned_pth)
    assert not marker.exists()


def test_missing_checkpoint_path_is_named(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="rl_model_9_steps.zip"):
        agent_io.resolve_checkpoint(tmp_path / "rl_model_9_steps.zip")


def _nan_gradients_after(run: T.TrainingRun, updates: int) -> None:
    """Make every gradient NaN from the given update on (a stand-in for divergence)."""
    calls = {"n": 0}
    optimizer = run.model.policy.optimizer
    original = optimizer.step

    def poisoned_step(closure=None):
        calls["n"] += 1
        if calls["n"] > updates:
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.grad.fill_(float("nan"))
        return original(closure)

    optimizer.step = poisoned_step


def test_nan_injection_stops_the_run_with_a_clear_error_and_no_bad_checkpoint(tmp_path):
    config = tiny_config()
    run = T.TrainingRun(config, tmp_path, torch.device("cpu"))
    _nan_gradients_after(run, updates=3)
    with pytest.raises(T.DivergenceError, match="non-finite gradient norm"):
        T._learn(run, progress=False)
    manifest = CheckpointManifest(tmp_path)
    assert manifest.steps(), "checkpoints before the divergence are kept"
    for step in manifest.steps():
        params = policy_params(tmp_path / f"rl_model_{step}_steps.zip")
        assert all(torch.isfinite(t).all() for t in params.values())


def test_rollback_mode_returns_to_the_last_good_checkpoint_with_a_lower_learning_rate(tmp_path):
    config = tiny_config(training__on_divergence="rollback")
    run = T.TrainingRun(config, tmp_path, torch.device("cpu"))
    optimizer = run.model.policy.optimizer
    original, state = optimizer.step, {"n": 0}

    def once_nan(closure=None):
        state["n"] += 1
        if state["n"] == 5:  # one bad update, in the third of four
            next(iter(optimizer.param_groups[0]["params"])).grad.fill_(float("nan"))
        return original(closure)

    optimizer.step = once_nan
    T._learn(run, progress=False)
    assert run.config["agent"]["learning_rate"] == pytest.approx(2.5e-4 * 0.5)
    assert run.model.num_timesteps == config["training"]["total_timesteps"]
    assert config["agent"]["learning_rate"] == 2.5e-4, "the caller's config is left as it was"
    assert load_config_json(tmp_path / "config.json")["agent"]["learning_rate"] == pytest.approx(2.5e-4 * 0.5)


def _free_space(monkeypatch, free_bytes: int) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 * 2**30, 10 * 2**30 - free_bytes, free_bytes))


def test_a_save_below_the_disk_reserve_stops_the_run_with_that_checkpoint_and_resumes_exactly(tmp_path, monkeypatch):
    straight = T.run_training_loop(tiny_config(), tmp_path / "straight", progress=False)
    with monkeypatch.context() as patch:
        _free_space(patch, 2**30)  # 1 GiB free, below the 5 GiB reserve
        with pytest.raises(DiskFullError, match=r"fell below training.min_free_gb \(5 GiB\).*checkpoint of step 128"):
            T.run_training_loop(tiny_config(training__min_free_gb=5.0), tmp_path / "low", progress=False)
    assert CheckpointManifest(tmp_path / "low").steps() == [128], "it stopped at the first save, with it"
    assert not (tmp_path / "low" / RunFolderLock.NAME).exists(), "the lock is released on the way out"
    T.resume_training(tmp_path / "low", ["training.min_free_gb=0"], progress=False)
    a, b = (policy_params(run / "rl_model_512_steps.zip") for run in (straight.run_dir, tmp_path / "low"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_with_no_room_for_a_checkpoint_the_run_stops_at_its_first_save_and_says_so(tmp_path, monkeypatch):
    _free_space(monkeypatch, 2**20)  # 1 MiB free
    with pytest.raises(CheckpointError, match=r"no room for a checkpoint at step 128 .*1 MiB free.*no checkpoint"):
        T.run_training_loop(tiny_config(training__min_free_gb=5.0), tmp_path / "full", progress=False)
    assert not (tmp_path / "full" / RunFolderLock.NAME).exists()
    monkeypatch.undo()
    assert not CheckpointManifest(tmp_path / "full").steps()


def _disk_full(name: str) -> OSError:
    return OSError(errno.ENOSPC, "No space left on device", name)


def test_a_full_disk_while_plotting_stops_with_a_checkpoint_that_resumes(tmp_path, monkeypatch):
    def plot_fails(run_dir, out_path=None):
        raise _disk_full(str(Path(run_dir) / "training_curves.png"))

    with monkeypatch.context() as patch:
        patch.setattr(monitoring, "plot_training_curves", plot_fails)  # the evaluation at step 256 plots
        with pytest.raises(
            DiskFullError,
            match=r"full \(writing training_curves.png at step 256 failed\); stopped "
            r"with a checkpoint of step 256",
        ):
            T.run_training_loop(tiny_config(), tmp_path / "run", progress=False)
    assert max(CheckpointManifest(tmp_path / "run").steps()) == 256
    resumed = T.resume_training(tmp_path / "run", progress=False)
    assert resumed.model.num_timesteps == 512


def test_a_full_disk_while_logging_a_match_stops_with_the_rollouts_checkpoint(tmp_path, monkeypatch):
    original = CsvLog.append_many

    def append_many(log, rows):
        rows = list(rows)
        if log.path.name == "monitor.csv" and any(int(r["step"]) > 320 for r in rows):
            raise _disk_full(str(log.path))
        return original(log, rows)

    with (
        monkeypatch.context() as patch,
        pytest.raises(
            DiskFullError,
            match=r"writing monitor.csv at step (\d+) "
            r"failed.*checkpoint of step \1",
        ) as e,
    ):
        patch.setattr(CsvLog, "append_many", append_many)
        # Matches of 120 decisions (480 frames at the recipe's 4 per decision): the first monitor.csv
        # rows past step 320 come mid-rollout, between the evaluations at 256 and 512.
        config = tiny_config(training__save_freq=1000, env__max_timesteps=480)
        T.run_training_loop(config, tmp_path / "run", progress=False)
    step = int(re.search(r"checkpoint of step (\d+)", str(e.value)).group(1))
    assert CheckpointManifest(tmp_path / "run").entry(step)["extra"]["resume_point"] is True
    assert (tmp_path / "run" / "monitor.csv").read_text().endswith("\n")
    assert T.resume_training(tmp_path / "run", progress=False).model.num_timesteps == 512


def test_a_failed_training_log_write_is_one_line_and_stdout_keeps_the_log(tmp_path, capsys):
    handler = monitoring.RunLogFileHandler(tmp_path / "training.log")
    handler.stream = type(
        "FullDisk",
        (),
        {
            "write": lambda self, text: (_ for _ in ()).throw(_disk_full("x")),
            "flush": lambda self: None,
            "close": lambda self: None,
        },
    )()
    for message in ("one", "two"):
        handler.emit(logging.LogRecord("train_agent", logging.INFO, __file__, 1, message, None, None))
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "training.log: writing failed" in err and "Traceback" not in err


def test_max_saved_keeps_the_newest_and_the_pool_points_at_existing_files(tmp_path):
    config = tiny_config(training__max_saved=2)
    run = T.run_training_loop(config, tmp_path / "run", progress=False)
    names = [p.name for p in sorted((tmp_path / "run").glob("rl_model_*_steps.zip"), key=snapshot_steps)]
    assert names[-1] == "rl_model_512_steps.zip"  # the newest always stays
    # Four were saved (every 128 steps); past max_saved the oldest go, except one that a match
    # plays (now, or in a kept checkpoint's resume state) or the best by the headline.
    assert len(names) <= 2, f"max_saved=2 kept {names}"
    assert all(p.exists() for p in run.save_handler.history)
    assert sorted(CheckpointManifest(tmp_path / "run").steps()) == sorted(snapshot_steps(n) for n in names)
    state_files = list((tmp_path / "run").glob("rl_model_*_state.*"))
    assert len(state_files) == 2 * len(names) and os.path.exists(tmp_path / "run" / "manifest.json")


@pytest.mark.slow  # 1,536 steps then 512 more; test_every_kept_checkpoint... covers the rotation by default
def test_resume_works_after_snapshot_rotation_while_matches_still_play_old_snapshots(tmp_path):
    """Regression: max_saved once deleted a snapshot that a running match still played against."""
    # Matches of 150 frames span several saves (every 128 steps = 32 frames per env).
    config = tiny_config(
        training__max_saved=1,
        env__max_timesteps=150,
        training__total_timesteps=1536,
        **SELF_PLAY_ONLY,
    )
    run = T.run_training_loop(config, tmp_path / "run", progress=False)
    in_use = run.venv.core.snapshots_in_use()
    assert in_use - {"rl_model_1536_steps.zip"}, "matches still play snapshots older than the newest"
    for name in in_use:
        assert (tmp_path / "run" / name).exists(), f"{name} is in use and must not be deleted"
    resumed = T.resume_training(tmp_path / "run", ["training.total_timesteps=2048"])
    assert resumed.model.num_timesteps == 2048


def test_snapshot_names_not_paths_are_stored_so_a_moved_run_resumes(uninterrupted, tmp_path):
    moved = tmp_path / "elsewhere" / "run"
    shutil.copytree(uninterrupted, moved)
    resumed = T.resume_training(moved, ["training.total_timesteps=1024"])
    assert resumed.model.num_timesteps == 1024


def test_resume_refuses_to_change_what_the_checkpoint_depends_on(uninterrupted):
    with pytest.raises(T.ConfigError, match="--resume cannot change env"):
        T.resume_training(uninterrupted, ["env.n_envs=8"])
    with pytest.raises(T.ConfigError, match="cannot change agent.sequence_length"):
        T.resume_training(uninterrupted, ["agent.sequence_length=4"])


def test_every_kept_checkpoint_can_find_the_snapshots_its_matches_play(tmp_path):
    """Regression (found by benchmarks/soak.py): a stop mid-rollout saves the state captured at the
    rollout start; a snapshot it references must survive rotation even if no live match plays it."""
    config = tiny_config(
        training__max_saved=1,
        env__max_timesteps=150,
        training__total_timesteps=1536,
        **SELF_PLAY_ONLY,
    )
    T.run_training_loop(config, tmp_path / "run", progress=False)
    manifest = CheckpointManifest(tmp_path / "run")
    for step in manifest.steps():
        state = load_state_tree(tmp_path / "run" / f"rl_model_{step}_steps_state")
        used = snapshot_names(state["env"]["opponent_keys"])
        assert all((tmp_path / "run" / name).exists() for name in used), (step, used)
        assert manifest.entry(step)["extra"]["uses"] == sorted(used)


def test_a_second_trainer_on_a_run_folder_is_refused_and_a_killed_ones_lock_is_taken_over(uninterrupted, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(uninterrupted, run_dir)
    with RunFolderLock(run_dir):  # this process plays the trainer that holds the folder
        with pytest.raises(RunFolderInUseError, match=f"in use by process {os.getpid()}"):
            T.resume_training(run_dir, ["training.total_timesteps=1024"], progress=False)
        refused = trainer_cli("--resume", str(run_dir), "--set", "training.total_timesteps=1024")
        assert refused.returncode == 2 and f"in use by process {os.getpid()}" in refused.stderr + refused.stdout
        assert "Traceback" not in refused.stderr
    before = (run_dir / "metrics.csv").read_text()
    assert max(CheckpointManifest(run_dir).steps()) == 768, "the refused runs wrote no checkpoint"
    # A trainer killed with SIGKILL leaves its lock behind; the next --resume takes it over.
    proc = trainer_process(
        [sys.executable, "user/train_agent.py", "--resume", str(run_dir), "--set", "training.total_timesteps=100000"]
    )
    for line in proc.stdout:
        if "Resuming" in line:
            proc.kill()
            break
    proc.communicate(timeout=60)
    assert json.loads((run_dir / RunFolderLock.NAME).read_text())["pid"] == proc.pid
    with pytest.warns(UserWarning, match=f"taking over the lock of process {proc.pid}"):
        T.resume_training(run_dir, ["training.total_timesteps=1024"], progress=False)
    assert max(CheckpointManifest(run_dir).steps()) == 1024 and not (run_dir / RunFolderLock.NAME).exists()
    assert (run_dir / "metrics.csv").read_text().startswith(before.splitlines()[0])


def _damage(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes: only the SHA-256 can tell
    path.write_bytes(bytes(data))


def test_damaged_checkpoints_are_refused_by_every_loading_mode_unless_no_verify(uninterrupted, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(uninterrupted, run_dir)
    zips = sorted(run_dir.glob("rl_model_*_steps.zip"))
    for zip_path in zips:
        _damage(zip_path)
    with pytest.raises(CheckpointError, match="no checkpoint in .* matches manifest.json.*--no-verify"):
        T.load_agent(run_dir)
    with pytest.raises(CheckpointError, match="sha256 differs.*--no-verify"):
        T.load_agent(zips[-1])  # a .zip named directly is checked against the manifest beside it
    for mode in ("eval", "export"):
        cmd = [sys.executable, "user/train_agent.py", "--mode", mode, "--agent_path", str(run_dir)]
        cmd += ["--out", str(tmp_path / f"{mode}_out"), "--episodes", "1", "--max-timesteps", "30"]
        refused = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
        output = refused.stdout + refused.stderr
        assert refused.returncode == 2 and "matches manifest.json" in output and "Traceback" not in output, output
    # Flipped bytes in the middle of a zip member may still load (zip's CRC is checked per read);
    # what --no-verify promises is that verification no longer refuses it.
    assert agent_io.resolve_checkpoint(run_dir, verify=False) == zips[-1]
    assert agent_io.resolve_checkpoint(zips[-1], verify=False) == zips[-1]


SCHEDULE_SETS = [
    "controls.opponent_schedule.enabled=true",
    "controls.opponent_schedule.groups=[[random], [based, constant]]",
    "controls.opponent_schedule.permanent=[hold:heavy_neutral]",
    "controls.opponent_schedule.min_matches=2",
    "controls.opponent_schedule.window=8",
    "controls.opponent_schedule.gate=0.01",
    "env.max_timesteps=30",  # many short matches, so the schedule sees outcomes
    "env.n_envs=8",
]


def test_the_opponent_schedule_plays_its_bots_logs_weights_and_resumes_exactly(tmp_path):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    command = train_command(straight) + [arg for s in SCHEDULE_SETS for arg in ("--set", s)]
    subprocess.run(command, cwd=REPO, check=True, capture_output=True, timeout=300)
    weights = (straight / "opponent_weights.csv").read_text().splitlines()
    assert weights[0] == "step,opponent,weight,win_rate" and len(weights) > 1
    state = load_state_tree(straight / "rl_model_768_steps_state")  # what a resume would continue from
    assert state["trainer"]["opponent_schedule"]["groups_admitted"] >= 1
    opponents = {row[5] for row in monitor_rows(straight)}
    assert opponents <= {"self_play", "constant", "based", "random", "hold:heavy_neutral"}
    assert {"hold:heavy_neutral", "random"} <= opponents
    # Stopped after its first snapshot, then resumed: the same weights and matches as straight through.
    proc = trainer_process(train_command(stopped) + [arg for s in SCHEDULE_SETS for arg in ("--set", s)])
    for line in proc.stdout:
        if "Saved checkpoint rl_model_256_steps.zip" in line:
            proc.send_signal(signal.SIGTERM)
            break
    proc.communicate(timeout=120)
    assert trainer_cli("--resume", str(stopped)).returncode == 0
    a, b = policy_params(straight / "rl_model_768_steps.zip"), policy_params(stopped / "rl_model_768_steps.zip")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [(r[3], r[5], r[0]) for r in monitor_rows(straight)] == [(r[3], r[5], r[0]) for r in monitor_rows(stopped)]


# With eval.eval_freq 384: evaluations at 384 and 768; an evaluated policy is saved too, and the
# schedule counts from the last save: checkpoints at 256, 384, 640 and 768. With 512: an evaluation
# and a scheduled save at 512.
STOP_SETS = [*RESUME_SETS, "self_play.handler=latest"]  # latest: a pooled stop is served at once


@pytest.fixture(scope="module")
def unbroken_with_evaluations(tmp_path_factory):
    """eval_freq -> an unbroken run's folder (made on first use)."""
    runs: dict[int, Path] = {}

    def run_with(eval_freq: int) -> Path:
        if eval_freq not in runs:
            runs[eval_freq] = tmp_path_factory.mktemp("unbroken") / "run"
            T.run_training_loop(_stop_config(eval_freq), runs[eval_freq], progress=False)
        return runs[eval_freq]

    return run_with


def _stop_config(eval_freq: int) -> dict:
    sets = [*STOP_SETS, f"eval.eval_freq={eval_freq}"]
    return T.validate_config(T.apply_overrides(copy.deepcopy(T.TRAIN_CONFIG_TEST), sets))


def _stop_at(monkeypatch, moment: str) -> None:
    """Set the trainer's stop flag (what SIGTERM or Ctrl-C does) at one moment of the run."""
    if moment == "mid-rollout":  # 64 steps into the rollout that starts at 512
        original_step = T.RolloutBoundaryCallback._on_step

        def on_step(callback):
            if callback.model.num_timesteps == 576:
                callback.run.stop_flag.reason = "SIGTERM"
            return original_step(callback)

        monkeypatch.setattr(T.RolloutBoundaryCallback, "_on_step", on_step)
    elif moment == "between saves":  # at the safe point of step 512: no save or evaluation is due there
        original_start = T.RolloutBoundaryCallback._on_rollout_start

        def on_rollout_start(callback):
            if callback.model.num_timesteps == 512:
                callback.run.stop_flag.reason = "SIGTERM"
            original_start(callback)

        monkeypatch.setattr(T.RolloutBoundaryCallback, "_on_rollout_start", on_rollout_start)
    else:  # during the first evaluation: a few frames into its pass (the roster's and the Elo snapshots' matches)
        phase = "evaluate_with_snapshots"
        original_evaluate = T.TrainingRun.evaluate

        def evaluate(run, steps):
            if run.eval_history:
                return original_evaluate(run, steps)
            frames = iter(range(10**9))
            original_play = getattr(monitoring, phase)

            def play(*args, should_stop, **kwargs):
                def stop_after_a_few_frames():
                    if next(frames) == 20:
                        run.stop_flag.reason = "SIGTERM"
                    return should_stop()

                return original_play(*args, should_stop=stop_after_a_few_frames, **kwargs)

            monkeypatch.setattr(monitoring, phase, play)
            try:
                return original_evaluate(run, steps)
            finally:
                monkeypatch.setattr(monitoring, phase, original_play)

        monkeypatch.setattr(T.TrainingRun, "evaluate", evaluate)


@pytest.mark.parametrize(
    ("moment", "stop_step", "eval_freq"),
    [
        ("mid-rollout", 512, 384),
        ("between saves", 512, 384),
        ("during an evaluation", 384, 384),
        ("during an evaluation", 512, 512),  # at a scheduled save: its snapshot must not be in the replay's pool
    ],
)
def test_a_stop_between_scheduled_saves_resumes_bit_identically_with_self_play(
    unbroken_with_evaluations, tmp_path, monkeypatch, moment, stop_step, eval_freq
):
    """Issue 18, item 3: the stop's checkpoint is a resume point only. It neither joins the self-play
    pool nor moves the save schedule, and it is removed once the resumed run saves past it."""
    run_dir = tmp_path / "run"
    config = _stop_config(eval_freq)
    unbroken = unbroken_with_evaluations(eval_freq)
    with monkeypatch.context() as patch:
        _stop_at(patch, moment)
        stopped = T.run_training_loop(config, run_dir, progress=False)
    assert stopped.model.num_timesteps < 768
    manifest = CheckpointManifest(run_dir)
    assert max(manifest.steps()) == stop_step
    assert manifest.entry(stop_step)["extra"]["resume_point"] is True
    assert stop_step not in {snapshot_steps(p) for p in stopped.save_handler.history}
    T.load_agent(run_dir)  # the stop's checkpoint serves eval and export like any other
    T.resume_training(run_dir, progress=False)
    a = policy_params(unbroken / "rl_model_768_steps.zip")
    b = policy_params(run_dir / "rl_model_768_steps.zip")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert sorted(p.name for p in run_dir.glob("rl_model_*_steps.zip")) == sorted(
        p.name for p in unbroken.glob("rl_model_*_steps.zip")
    )
    for name in (
        "monitor.csv",
        "evaluation_results.csv",
        "opponent_weights.csv",
        "ratings.csv",
        "strategy_analysis.csv",
    ):
        if (unbroken / name).exists():
            straight = (unbroken / name).read_text().splitlines()
            resumed = (run_dir / name).read_text().splitlines()
            if name == "monitor.csv":  # drop the wall-clock column
                straight, resumed = (
                    [line.split(",")[:2] + line.split(",")[3:] for line in s[2:]] for s in (straight, resumed)
                )
            assert straight == resumed, name


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda c: c["agent"].update(n_steps=64), "agent.n_steps"),
        (lambda c: c["reward"]["terms"].update(danger_zone=2.0), "reward"),
        (lambda c: c["training"].update(seed=5), "training.seed"),
        (lambda c: c["agent"].update(net_arch={"pi": [8], "vf": [16]}), "agent.net_arch"),
    ],
)
def test_a_hand_edited_config_json_cannot_change_what_the_checkpoint_was_trained_with(
    uninterrupted, tmp_path, edit, named
):
    run_dir = tmp_path / "run"
    shutil.copytree(uninterrupted, run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    edit(config)
    (run_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(T.ConfigError, match=rf"config.json changes {named}.*rl_model_768_steps.zip was trained with"):
        T.resume_training(run_dir, ["training.total_timesteps=1024"], progress=False)


def test_a_config_json_that_is_not_a_mapping_is_one_line(uninterrupted, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(uninterrupted, run_dir)
    (run_dir / "config.json").write_text("[1, 2]")
    with pytest.raises(T.ConfigError, match="must hold a mapping of config sections, got a list"):
        T.resume_training(run_dir, progress=False)


def test_a_failed_resume_leaves_config_json_as_it_was(uninterrupted, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(uninterrupted, run_dir)
    before = (run_dir / "config.json").read_text()
    with pytest.raises(T.DivergenceError, match="non-finite"):
        T.resume_training(run_dir, ["agent.learning_rate=1e6", "training.total_timesteps=4096"], progress=False)
    assert (run_dir / "config.json").read_text() == before
    # A --set that trains lands in config.json with the resumed run's first checkpoint.
    T.resume_training(run_dir, ["training.total_timesteps=1024"], progress=False)
    assert load_config_json(run_dir / "config.json")["training"]["total_timesteps"] == 1024


def test_a_deleted_snapshot_that_the_newest_checkpoint_plays_falls_back_to_the_previous_one(tmp_path):
    config = tiny_config(
        env__max_timesteps=30,
        training__total_timesteps=1024,
        training__max_saved=10,
        **SELF_PLAY_ONLY,
    )
    run_dir = tmp_path / "run"
    T.run_training_loop(config, run_dir, progress=False)
    manifest = CheckpointManifest(run_dir)
    newest = max(manifest.steps())
    used = manifest.entry(newest)["extra"]["uses"]
    assert used, "the newest checkpoint's matches play a snapshot"
    victim = max(used, key=snapshot_steps)
    (run_dir / victim).unlink()
    # The previous good checkpoint: the newest older one whose matches play only files still there.
    expected = max(
        s
        for s in manifest.steps()
        if s < newest and s != snapshot_steps(victim) and victim not in manifest.entry(s)["extra"]["uses"]
    )
    with pytest.warns(UserWarning, match=f"play {victim}, which is missing"):
        resumed = T.resume_training(run_dir, ["training.total_timesteps=1152"], progress=False)
    assert resumed.model.num_timesteps == 1152
    log = (run_dir / "training.log").read_text()
    assert f"Resuming {run_dir} from step {expected:,}" in log


def test_an_evaluation_never_touches_the_memory_of_the_pools_snapshot_agents(tmp_path):
    """Found by the soak's twin run: Elo matches against snapshots played the pool's own agent
    objects, overwriting the memory of the training matches they were in; a resumed run, whose pool
    cache differs, then played differently. The evaluation now reads each snapshot afresh."""
    config = tiny_config(env__max_timesteps=30, **SELF_PLAY_ONLY)
    run = T.run_training_loop(config, tmp_path / "run", progress=False)
    cached = dict(run.self_play.cache)
    assert cached, "the pool has agents in memory"
    before = {p: {k: v.copy() for k, v in a.get_state().items()} for p, a in cached.items()}
    snapshots = monitoring.recent_snapshots(run)
    assert snapshots and not set(snapshots.values()) & set(cached.values()), "read afresh, not the pool's"
    _, results = monitoring.evaluate_with_snapshots(
        run.snapshot_agent(), ["based"], 1, 30, seed=999, snapshots={p.name: a for p, a in snapshots.items()},
        snapshot_matches=config["eval"]["snapshot_matches"],
    )  # fmt: skip
    assert results and all(len(r) == config["eval"]["snapshot_matches"] for r in results.values())
    for path, agent in cached.items():
        after = agent.get_state()
        assert all(np.array_equal(before[path][k], after[k]) for k in after), path.name
    assert dict(run.self_play.cache) == cached
