"""Hostile-but-realistic inputs (issue 18): each is refused with a one-line error naming what is wrong,
before anything is read without bound or written."""

from __future__ import annotations

import builtins
import copy
import errno
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from environment import render
from environment.checkpoints import (
    MAX_JSON_BYTES,
    MAX_WEIGHTS_BYTES,
    CheckpointError,
    CheckpointManifest,
    load_state_tree,
    save_state_tree,
)
from tests.test_train_agent import TINY_SETS, tiny_config
from user import agent_io
from user import train_agent as T
from user.config_tools import ConfigError, load_config_file, load_config_json

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this system")


def _declare_member_size(zip_path: Path, member: str, size: int) -> None:
    """Make the zip's central directory claim ``size`` uncompressed bytes for ``member`` (a zip bomb's
    claim, or a huge member) without writing them: the reader must refuse it by the size alone."""
    data = bytearray(zip_path.read_bytes())
    name = member.encode()
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + name_len] == name:
            struct.pack_into("<I", data, at + 24, size)
            zip_path.write_bytes(bytes(data))
            return
        at = data.find(b"PK\x01\x02", at + 4)
    raise AssertionError(f"{member} not in {zip_path}")


def _pth_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


# --- item 7: unbounded reads ---------------------------------------------------------------
@needs_fifo
def test_non_regular_files_are_refused_before_reading(tmp_path, capsys):
    fifo = tmp_path / "rl_model_8_steps.zip"
    os.mkfifo(fifo)  # opening it for reading would wait forever for a writer
    for path, kind in ((Path("/dev/zero"), "character device"), (fifo, "FIFO")):
        with pytest.raises(CheckpointError, match=f"{path} is not a regular file \\(it is a {kind}"):
            agent_io.resolve_checkpoint(path)
        with pytest.raises(CheckpointError, match=f"{path} is not a regular file"):
            agent_io.read_agent_config(path, {})
    with pytest.raises(ConfigError, match=f"config file {tmp_path} is not a regular file \\(it is a folder\\)"):
        load_config_file(tmp_path, {})
    yaml_fifo = tmp_path / "config.yaml"
    os.mkfifo(yaml_fifo)
    with pytest.raises(ConfigError, match=f"{yaml_fifo} is not a regular file"):
        load_config_file(yaml_fifo, {})
    with pytest.raises(ConfigError, match=f"{yaml_fifo} is not a regular file"):
        load_config_json(yaml_fifo)
    run = tmp_path / "run"
    run.mkdir()
    os.mkfifo(run / "manifest.json")
    with pytest.raises(CheckpointError, match="manifest .*manifest.json is not a regular file"):
        CheckpointManifest(run).steps()
    capsys.readouterr()
    # The command line: a one-line error naming the path, exit status 2 (it used to read /dev/zero
    # until the out-of-memory killer stopped it).
    assert T.main(["--mode", "eval", "--agent_path", "/dev/zero"]) == 2
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "/dev/zero is not a regular file" in lines[0], lines


def test_every_member_read_from_a_checkpoint_is_capped(tmp_path):
    # A config member over MAX_JSON_BYTES (4 MiB) is refused, naming the zip and the member.
    zip_path = tmp_path / "big_config.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(agent_io.CONFIG_MEMBER, json.dumps({"pad": "x" * MAX_JSON_BYTES}))
    with pytest.raises(CheckpointError, match="big_config.zip entry 'brawl_agent_config.json' is .* over the"):
        agent_io.read_agent_config(zip_path, {})
    # A policy member that declares more than MAX_WEIGHTS_BYTES (1 GiB) is refused unread.
    zip_path = tmp_path / "rl_model_8_steps.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("policy.pth", _pth_bytes({"w": torch.zeros(2)}))
    _declare_member_size(zip_path, "policy.pth", MAX_WEIGHTS_BYTES + 1)
    limit = f"{MAX_WEIGHTS_BYTES + 1:,} bytes, over the {MAX_WEIGHTS_BYTES:,}-byte limit"
    with pytest.raises(CheckpointError, match=f"entry 'policy.pth' is {limit}"):
        agent_io.check_sb3_zip(zip_path)
    with pytest.raises(CheckpointError, match=f"entry 'policy.pth' is {limit}"):
        agent_io.load_policy_weights(torch.nn.Linear(1, 1), zip_path)
    # A .pth file over the cap (sparse: nothing is written) is refused by its size.
    encoder = tmp_path / "rl_model_8_steps_transformer_encoder.pth"
    with open(encoder, "wb") as f:
        f.truncate(MAX_WEIGHTS_BYTES + 1)
    with pytest.raises(CheckpointError, match=f"weights file {encoder} is {limit}"):
        agent_io.load_state_dict_file(encoder)
    # The resume state's arrays too.
    stem = tmp_path / "rl_model_8_steps_state"
    save_state_tree(stem, {"a": np.zeros(3)})
    _declare_member_size(stem.with_name(stem.name + ".npz"), "a.npy", MAX_WEIGHTS_BYTES + 1)
    with pytest.raises(CheckpointError, match=f"entry 'a.npy' is {limit}"):
        load_state_tree(stem)


# --- item 8: export errors are one line ------------------------------------------------------
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A tiny transformer agent's checkpoint zip (untrained weights), alone in its folder."""
    folder = tmp_path_factory.mktemp("checkpoint")
    config = tiny_config()
    run = T.TrainingRun(config, folder / "run", torch.device("cpu"))
    zip_path = folder / "rl_model_64_steps.zip"
    agent_io.save_checkpoint_pair(run.model, zip_path, config["agent"])
    return zip_path


def test_exporting_a_truncated_checkpoint_is_a_one_line_error(tiny_checkpoint, tmp_path, capsys):
    data = tiny_checkpoint.read_bytes()
    broken = tmp_path / "cut" / tiny_checkpoint.name  # no config.json beside it
    broken.parent.mkdir()
    for size in (0, len(data) // 3, 2 * len(data) // 3, len(data) - 1):
        broken.write_bytes(data[:size])
        capsys.readouterr()
        assert T.main(["--mode", "export", "--agent_path", str(broken), "--out", str(tmp_path / "bundle")]) == 2
        lines = capsys.readouterr().out.strip().splitlines()
        assert len(lines) == 1 and str(broken) in lines[0], (size, lines)
    assert not (tmp_path / "bundle").exists()
    # As a script: export.py must not import the training script a second time (as user.train_agent
    # beside __main__), or its errors are classes that main() does not catch.
    cmd = [sys.executable, "user/train_agent.py", "--mode", "export", "--agent_path", str(broken)]
    done = subprocess.run([*cmd, "--out", str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True, timeout=300)
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 2 and len(output.splitlines()) == 1 and "Traceback" not in output, output
    code = "import sys, user.modes, user.export; print('user.train_agent' in sys.modules)"
    imported = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert imported.stdout.strip() == "False", imported.stderr


# --- item 9: config validation gaps ----------------------------------------------------------
def _test_config() -> dict:
    return copy.deepcopy(T.CONFIGS["test"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.seed=-1", "training.seed must be an integer from 0 to 4294967295"),
        ("training.seed=4294967296", "training.seed must be an integer from 0 to 4294967295"),
        ("training.seed=1.5", "training.seed must be an integer"),
        ("agent.net_arch=big", "agent.net_arch must be a mapping {pi: \\[widths\\], vf: \\[widths\\]}, got 'big'"),
        ("agent.net_arch=[64, 64]", "agent.net_arch must be a mapping"),
        ("agent.net_arch={pi: [64]}", "agent.net_arch must be a mapping"),
        ("agent.net_arch.pi=[0]", "agent.net_arch.pi must be a list of positive integers"),
        ("agent.net_arch.vf=[8.5]", "agent.net_arch.vf must be a list of positive integers"),
        ("self_play.opponents.based=[.inf, based]", "self_play.opponents.based: weight must be a finite number"),
        ("self_play.opponents.based=[1e400, based]", "self_play.opponents.based: weight must be a finite number"),
        ("eval.snapshot_matches=0", "eval.snapshot_matches must be a positive integer, got 0"),
        ("eval.snapshot_opponents=0", "eval.snapshot_opponents must be a positive integer, got 0"),
    ],
)
def test_config_gaps_fail_validation_naming_the_key(override, message):
    config = T.apply_overrides(_test_config(), [override])
    with pytest.raises(ConfigError, match=message):
        T.validate_config(config)


def test_a_config_gap_stops_the_trainer_before_its_run_folder_exists(tmp_path, capsys):
    for override in ("training.seed=-1", "agent.net_arch=big", "eval.snapshot_matches=0"):
        key = override.partition("=")[0]
        run_dir = tmp_path / key
        capsys.readouterr()
        assert T.main(["--config", "test", "--set", override, "--run-dir", str(run_dir)]) == 2
        lines = capsys.readouterr().out.strip().splitlines()
        assert len(lines) == 1 and key in lines[0], lines
        assert not run_dir.exists()


def test_set_inside_net_arch_or_the_opponent_mix_keeps_the_other_entries():
    base = _test_config()
    config = T.apply_overrides(base, ["agent.net_arch.pi=[32]"])
    assert config["agent"]["net_arch"] == {"pi": [32], "vf": base["agent"]["net_arch"]["vf"]}
    entries = ["self_play.opponents.based=[0.5, based]", "self_play.opponents.random=[1, random]"]
    config = T.validate_config(T.apply_overrides(base, entries))
    opponents = {name: list(value) for name, value in config["self_play"]["opponents"].items()}
    before = {name: list(value) for name, value in base["self_play"]["opponents"].items()}
    assert opponents == {**before, "based": [0.5, "based"], "random": [1, "random"]}
    # A mapping for the whole value still replaces it (as --set's help says).
    config = T.apply_overrides(base, ["self_play.opponents={based: [1.0, based]}"])
    assert config["self_play"]["opponents"] == {"based": [1.0, "based"]}
    with pytest.raises(ConfigError, match="agent.net_arch has no entry 'pi'"):
        T.apply_overrides(base, ["agent.net_arch={vf: [8]}", "agent.net_arch.pi.x=1"])


def test_exponent_numbers_are_floats_in_set_values_and_config_files(tmp_path):
    schedule = "controls.schedules.learning_rate={kind: linear, start: 5e-4, end: 1.0e4}"
    config = T.apply_overrides(_test_config(), ["agent.learning_rate=1E-3", "agent.clip_range=[2e-1]", schedule])
    assert config["agent"]["learning_rate"] == 1e-3 and config["agent"]["clip_range"] == [0.2]
    assert config["controls"]["schedules"]["learning_rate"] == {"kind": "linear", "start": 5e-4, "end": 1e4}
    path = tmp_path / "lr.yaml"
    path.write_text("agent:\n  learning_rate: 1e-3\n  ent_coef: 5E-4\ntraining:\n  seed: 3\n")
    config = T.validate_config(load_config_file(path, T._BASE_CONFIG))
    a = config["agent"]
    assert (a["learning_rate"], a["ent_coef"], config["training"]["seed"]) == (1e-3, 5e-4, 3)
    # Strings stay strings, and YAML 1.1's own float spelling still works.
    assert T.apply_overrides(_test_config(), ["training.run_name=e3x"])["training"]["run_name"] == "e3x"
    assert T.apply_overrides(_test_config(), ["agent.learning_rate=2.5e-4"])["agent"]["learning_rate"] == 2.5e-4


# --- small items ------------------------------------------------------------------------------
def _one_line_error(capsys, argv: list[str]) -> str:
    """The error line of a command that must exit 2 with one (after any INFO lines), no traceback."""
    capsys.readouterr()
    assert T.main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    errors = [line for line in lines if " ERROR " in line]
    assert errors == lines[-1:] and "Traceback" not in captured.out + captured.err, lines
    return errors[0]


def test_demo_writes_what_it_says_and_names_the_real_cause(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    demo = ["--mode", "demo", "--agent_path", str(tiny_checkpoint), "--max-timesteps", "20", "--out"]
    # An extension it cannot write is refused (it printed "wrote x.txt" and wrote x.gif).
    assert "a demo video is written as .mp4 or .gif" in _one_line_error(capsys, [*demo, str(tmp_path / "x.txt")])
    assert not list(tmp_path.iterdir())
    (tmp_path / "folder.mp4").mkdir()
    assert "is not a file" in _one_line_error(capsys, [*demo, str(tmp_path / "folder.mp4")])
    # A folder that does not exist yet is created, and the file printed is the file written.
    out = tmp_path / "new" / "x.gif"
    assert T.main([*demo, str(out)]) == 0
    assert capsys.readouterr().out.strip().endswith(f"wrote {out}") and out.read_bytes().startswith(b"GIF89a")
    # ffmpeg dies on the first frames and the GIF it falls back to cannot be written (a full disk):
    # the error names the disk, not the writer's "ValueError: seek of closed file".
    monkeypatch.setattr(render, "_ffmpeg_exe", lambda: shutil.which("false"))

    def disk_full(self, path, fps):
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(render._GifStream, "__init__", disk_full)
    line = _one_line_error(capsys, [*demo, str(tmp_path / "full.mp4")])
    assert "could not write the video" in line and "No space left on device" in line, line


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--episodes", "0"], "--episodes must be a positive integer, got 0"),
        (["--episodes", "-3"], "--episodes must be a positive integer, got -3"),
        (["--max-timesteps", "0"], "--max-timesteps must be a positive integer, got 0"),
        (["--max-timesteps", "-1"], "--max-timesteps must be a positive integer, got -1"),
    ],
)
@pytest.mark.parametrize("mode", ["eval", "demo", "analyze_strategy"])
def test_match_counts_and_lengths_below_one_are_one_line_errors(tiny_checkpoint, capsys, mode, flags, message):
    line = _one_line_error(capsys, ["--mode", mode, "--agent_path", str(tiny_checkpoint), *flags])
    assert message in line  # --episodes 0 used to mean 50 matches silently


@pytest.mark.parametrize(
    "override", ["name=../../x", "training.run_name=../escaped", "training.run_name=a/b", "training.run_name=.."]
)
def test_run_names_cannot_leave_the_save_path(override, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deep" / "er").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "deep" / "er")
    key = override.partition("=")[0]
    tiny = [flag for item in TINY_SETS for flag in ("--set", item)]  # were the name accepted, a short run
    line = _one_line_error(capsys, ["--config", "test", *tiny, "--set", override])
    assert f"{key} must be one folder name inside training.save_path" in line, line
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")] == ["deep", "deep/er"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("controls.opponent_schedule.groups=[[based], [nobody]]", "unknown agent 'nobody'"),
        ("controls.opponent_schedule.floor=0.5", "floor < cap"),
        ("controls.opponent_weighting.mode=pfsp_hard", "both set the bots' weights"),
    ],
)
def test_opponent_schedule_configs_are_checked(override, message):
    sets = {"controls__opponent_schedule__enabled": "true", "controls__opponent_schedule__groups": "[[based]]"}
    key, value = override.split("=", 1)
    with pytest.raises(T.ConfigError, match=message):
        tiny_config(**{**sets, key.replace(".", "__"): value})


# --- small item: a read-only folder --------------------------------------------------------
@pytest.fixture
def read_only_folder(tmp_path, monkeypatch) -> Path:
    """A folder every write into fails as on a read-only file system (EROFS), whoever runs the tests
    (root ignores permission bits, so they cannot make it)."""
    folder = (tmp_path / "read_only").resolve()
    folder.mkdir()
    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir

    def inside(path) -> bool:
        return isinstance(path, (str, bytes, os.PathLike)) and Path(os.fsdecode(path)).resolve().is_relative_to(folder)

    def refuse(path):
        raise OSError(errno.EROFS, "Read-only file system", os.fsdecode(path))

    def guarded_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and inside(file):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def guarded_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(path):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def guarded_mkdir(path, *args, **kwargs):
        if inside(path):
            refuse(path)
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(io, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    monkeypatch.setattr(os, "mkdir", guarded_mkdir)
    return folder


@pytest.mark.parametrize("mode", ["train", "eval", "analyze_strategy", "export", "demo"])
def test_a_read_only_folder_is_a_one_line_error_in_every_mode(tiny_checkpoint, read_only_folder, capsys, mode):
    if mode == "train":
        tiny = [flag for item in TINY_SETS for flag in ("--set", item)]
        argv = ["--config", "test", *tiny, "--run-dir", str(read_only_folder / "run")]
    else:
        out = read_only_folder / ("x.mp4" if mode == "demo" else "out")
        argv = ["--mode", mode, "--agent_path", str(tiny_checkpoint), "--out", str(out)]
        argv += ["--max-timesteps", "20"] + ([] if mode in ("demo", "export") else ["--episodes", "1"])
    line = _one_line_error(capsys, argv)
    assert str(read_only_folder) in line and "Read-only file system" in line, line


def test_resuming_a_run_in_a_read_only_folder_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "read_only" / "run"
    T.run_training_loop(tiny_config(training__total_timesteps=128), run_dir, progress=False)
    real_os_open = os.open

    def guarded_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_CREAT) and Path(os.fsdecode(path)).parent == run_dir:
            raise OSError(errno.EROFS, "Read-only file system", os.fsdecode(path))
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded_os_open)  # the run lock is the first thing written
    line = _one_line_error(capsys, ["--resume", str(run_dir)])
    assert f"cannot write in {run_dir}: Read-only file system" in line, line
