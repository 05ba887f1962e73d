"""Checkpoint safety: atomic writes, the hash manifest, weights-only loading of poisoned files, disk guard, CSV logs."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import pickle
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO
from stable_baselines3.common.envs import IdentityEnv
from stable_baselines3.common.monitor import ResultsWriter, load_results
from stable_baselines3.common.save_util import json_to_data

from environment import checkpoints as ck
from environment.checkpoints import (
    CheckpointError,
    CheckpointManifest,
    CheckpointNotFoundError,
    CheckpointWarning,
    CorruptCheckpointError,
    CsvLog,
    RunFolderInUseError,
    RunFolderLock,
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    read_zip_json_member,
    sha256_file,
)
from user.agent_io import check_sb3_zip, load_sb3_params, load_state_dict_file, set_parameters_safely

# === Helpers ===


class Poison:
    """Unpickling this calls ``open(marker, "w")``: a visible side effect standing in for arbitrary code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def poisoned_pth_bytes(marker: Path, nested: bool = False) -> bytes:
    obj = {"weight": torch.zeros(2), "evil": Poison(marker)} if nested else Poison(marker)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


def tiny_ppo(seed: int = 0) -> PPO:
    return PPO("MlpPolicy", IdentityEnv(dim=2), n_steps=64, batch_size=64, policy_kwargs={"net_arch": [16]}, seed=seed)


def rewrite_zip(src: Path, dst: Path, replace: dict[str, bytes]) -> Path:
    """Copy an SB3 zip, replacing the named entries' bytes."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, replace.get(info.filename, zin.read(info)))
    return dst


@pytest.fixture(scope="module")
def sb3_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sb3") / "rl_model_64_steps.zip"
    with atomic_path(path) as tmp:
        tiny_ppo(seed=1).save(tmp)
    return path


# === Atomic writes ===


def test_atomic_write_replaces_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "config.json"
    atomic_write_text(target, "one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert leftovers(target.parent) == []
    assert sha256_file(target) == hashlib.sha256(b"two").hexdigest()


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_atomic_path_writer_failure_keeps_old_file(tmp_path: Path, error: type[BaseException]) -> None:
    target = tmp_path / "rl_model_10_steps_transformer_encoder.pth"
    target.write_bytes(b"old good checkpoint")
    with pytest.raises(error, match="killed mid-write"), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(f".{target.name}.tmp-") and tmp.suffix == ".pth"
        tmp.write_bytes(b"half of a new chec")
        raise error("killed mid-write")
    assert target.read_bytes() == b"old good checkpoint"
    assert leftovers(tmp_path) == []


def test_atomic_path_new_file_never_partial(tmp_path: Path) -> None:
    target = tmp_path / "new.pth"
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        torch.save({"w": torch.ones(3)}, tmp)
        raise RuntimeError("boom")
    assert not target.exists() and leftovers(tmp_path) == []


def test_atomic_path_writer_that_writes_nothing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="did not create"), atomic_path(tmp_path / "x.pth"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_with_sb3_save_keeps_the_zip_name(sb3_zip: Path) -> None:
    # SB3 appends ".zip" to suffix-less paths; the temp name keeps the suffix, so nothing strays.
    assert sorted(p.name for p in sb3_zip.parent.iterdir()) == [sb3_zip.name]


def test_stale_temp_files_from_a_killed_writer_are_found_and_removed(tmp_path: Path) -> None:
    other_pid = os.getpid() + 1
    stale = [
        tmp_path / f".rl_model_5_steps.zip.tmp-{other_pid}-0123abcd.zip",
        tmp_path / f".cfg.tmp-{other_pid}-deadbeef",
    ]
    mine = tmp_path / f".x.pth.tmp-{os.getpid()}-0123abcd.pth"  # this process may still be writing it
    user_files = [tmp_path / ".notes.tmp-1-0123abcd.txt", tmp_path / "rl_model_5_steps.zip", tmp_path / ".hidden"]
    for p in [*stale, mine, *user_files]:
        p.write_bytes(b"x")
    assert ck.stale_temp_files(tmp_path) == sorted(stale)
    assert ck.remove_stale_temp_files(tmp_path) == sorted(stale)
    assert sorted(tmp_path.iterdir()) == sorted([mine, *user_files])


# === Manifest ===


def make_checkpoint(run_dir: Path, step: int) -> list[Path]:
    zip_path = run_dir / f"rl_model_{step}_steps.zip"
    enc_path = run_dir / f"rl_model_{step}_steps_transformer_encoder.pth"
    atomic_write_bytes(zip_path, os.urandom(2000))
    with atomic_path(enc_path) as tmp:
        torch.save({"w": torch.full((4,), float(step))}, tmp)
    return [zip_path, enc_path]


def test_manifest_record_verify_and_fallback_past_truncated_newest(tmp_path: Path) -> None:
    manifest = CheckpointManifest(tmp_path)
    assert manifest.steps() == [] and manifest.latest_valid() is None
    first = make_checkpoint(tmp_path, 100)
    manifest.record(100, first, extra={"elo": 1000.0})
    newest = make_checkpoint(tmp_path, 200)
    manifest.record(200, newest)
    assert manifest.steps() == [100, 200]
    assert manifest.entry(100)["extra"] == {"elo": 1000.0}
    assert manifest.latest_valid() == (200, newest)

    with open(newest[0], "r+b") as f:  # a crash cut the newest zip short
        f.truncate(1234)
    with pytest.raises(CorruptCheckpointError, match=r"rl_model_200_steps\.zip has 1234 bytes"):
        manifest.verify(200)
    with pytest.warns(CheckpointWarning, match=r"skipping checkpoint 200 .*rl_model_200_steps\.zip.*truncated"):
        assert manifest.latest_valid() == (100, first)
    assert manifest.latest_valid(before=100) is None
    assert json.loads(manifest.path.read_text())["format"] == 1
    assert leftovers(tmp_path) == []


def test_manifest_rejects_same_size_tampering_and_missing_files(tmp_path: Path) -> None:
    manifest = CheckpointManifest(tmp_path)
    files = make_checkpoint(tmp_path, 5)
    manifest.record(5, files)
    data = bytearray(files[1].read_bytes())
    data[-1] ^= 0xFF
    files[1].write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError, match=r"transformer_encoder\.pth sha256 differs"):
        manifest.verify(5)
    files[0].unlink()
    with pytest.raises(CorruptCheckpointError, match=r"rl_model_5_steps\.zip is missing"):
        manifest.verify(5)
    with pytest.raises(CheckpointError, match="no checkpoint recorded for step 6"):
        manifest.verify(6)


def test_manifest_remove_deletes_only_that_snapshot(tmp_path: Path) -> None:
    manifest = CheckpointManifest(tmp_path)
    keep, drop = make_checkpoint(tmp_path, 1), make_checkpoint(tmp_path, 2)
    manifest.record(1, keep)
    manifest.record(2, drop)
    manifest.remove(1)  # forget only
    assert manifest.steps() == [2] and all(p.exists() for p in keep)
    manifest.remove(2, delete_files=True)
    assert manifest.steps() == [] and not any(p.exists() for p in drop)


def test_manifest_rejects_files_outside_the_run(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.pth"
    outside.write_bytes(b"x")
    with pytest.raises(ValueError, match="not inside the run folder"):
        CheckpointManifest(tmp_path / "run").record(1, [outside])


@pytest.mark.parametrize(
    "content",
    [
        '{"format": 1, "checkpoints": {"10": {"files": {"a.zip"',  # truncated JSON
        "[]",
        '{"format": 1, "checkpoints": {"ten": {"files": {"a.zip": {"sha256": "0", "bytes": 1}}}}}',
        '{"format": 1, "checkpoints": {"10": {"files": {"../../etc/passwd": {"sha256": "0", "bytes": 1}}}}}',
    ],
)
def test_corrupt_manifest_raises_naming_it(tmp_path: Path, content: str) -> None:
    (tmp_path / "manifest.json").write_text(content)
    manifest = CheckpointManifest(tmp_path)
    with pytest.raises(CheckpointError, match=r"manifest\.json"):
        manifest.latest_valid()
    with pytest.raises(CheckpointError, match=r"manifest\.json"):
        manifest.record(1, make_checkpoint(tmp_path, 1))


# === Safe loading: genuine files ===


def test_load_state_dict_file_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "enc.pth"
    torch.save({"layer.weight": torch.arange(6.0).reshape(2, 3)}, path)
    assert torch.equal(load_state_dict_file(path)["layer.weight"], torch.arange(6.0).reshape(2, 3))


def test_load_state_dict_file_missing_names_path_and_hints(tmp_path: Path) -> None:
    (tmp_path / "rl_model_1000_steps_transformer_encoder.pth").write_bytes(b"")
    missing = tmp_path / "rl_model_1000_step_transformer_encoder.pth"
    with pytest.raises(CheckpointNotFoundError, match=r"rl_model_1000_step_transformer_encoder\.pth does not") as e:
        load_state_dict_file(missing)
    assert isinstance(e.value, FileNotFoundError)
    assert "rl_model_1000_steps_transformer_encoder.pth" in str(e.value)  # the hint
    with pytest.raises(CheckpointNotFoundError, match="does not exist either"):
        load_state_dict_file(tmp_path / "no_run" / "x.pth")


@pytest.mark.parametrize("content", [b"", b"not a pickle at all", pickle.dumps([1, 2, 3], protocol=2)])
def test_load_state_dict_file_rejects_garbage(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"bad\.pth"):
        load_state_dict_file(path)


def test_genuine_sb3_zip_passes_and_loads(sb3_zip: Path) -> None:
    names = check_sb3_zip(sb3_zip)
    assert {"data", "policy.pth", "policy.optimizer.pth", "pytorch_variables.pth"} <= set(names)
    params = load_sb3_params(sb3_zip)
    assert set(params) == {"policy", "policy.optimizer"}
    saved = params["policy"]
    for load in (
        lambda m: m.set_parameters(str(sb3_zip), exact_match=True),
        lambda m: set_parameters_safely(m, sb3_zip),
    ):
        model = tiny_ppo(seed=2)
        assert not all(torch.equal(model.policy.state_dict()[k], saved[k]) for k in saved)
        load(model)
        loaded = model.policy.state_dict()
        assert loaded.keys() == saved.keys() and all(torch.equal(loaded[k], saved[k]) for k in saved)


def test_recurrent_ppo_zip_roundtrip(tmp_path: Path) -> None:
    def make(seed: int) -> RecurrentPPO:
        kwargs = {"net_arch": [8], "lstm_hidden_size": 8}
        return RecurrentPPO(
            "MlpLstmPolicy", IdentityEnv(dim=2), n_steps=16, batch_size=16, policy_kwargs=kwargs, seed=seed
        )

    path = tmp_path / "rl_model_16_steps.zip"
    with atomic_path(path) as tmp:
        make(1).save(tmp)
    assert "policy.pth" in check_sb3_zip(path)
    model = make(2)
    set_parameters_safely(model, path)
    saved = load_sb3_params(path)["policy"]
    assert all(torch.equal(model.policy.state_dict()[k], saved[k]) for k in saved)


def test_set_parameters_safely_rejects_a_model_of_another_shape(sb3_zip: Path) -> None:
    other = PPO("MlpPolicy", IdentityEnv(dim=2), policy_kwargs={"net_arch": [8]})
    with pytest.raises(CheckpointError, match=r"rl_model_64_steps\.zip does not fit"):
        set_parameters_safely(other, sb3_zip)


def test_check_sb3_zip_rejects_non_models(tmp_path: Path) -> None:
    not_zip = tmp_path / "model.zip"
    not_zip.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError, match=r"model\.zip is not a valid zip"):
        check_sb3_zip(not_zip)
    no_policy = tmp_path / "nopolicy.zip"
    with zipfile.ZipFile(no_policy, "w") as z:
        z.writestr("data", "{}")
    with pytest.raises(CheckpointError, match=r"nopolicy\.zip is not an SB3 model zip: no 'policy\.pth'"):
        check_sb3_zip(no_policy)
    with pytest.raises(CheckpointNotFoundError, match=r"absent\.zip"):
        check_sb3_zip(tmp_path / "absent.zip")


def test_read_zip_json_member(tmp_path: Path, sb3_zip: Path) -> None:
    path = rewrite_zip(sb3_zip, tmp_path / "m.zip", {})
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("brawl_meta.json", json.dumps({"elo": 1200.5, "opponents": ["based"]}))
        z.writestr("bad.json", "{not json")
    assert read_zip_json_member(path, "brawl_meta.json") == {"elo": 1200.5, "opponents": ["based"]}
    with pytest.raises(CheckpointError, match=r"m\.zip entry 'bad\.json' is not plain JSON"):
        read_zip_json_member(path, "bad.json")
    with pytest.raises(CheckpointError, match=r"no entry 'meta\.json'"):
        read_zip_json_member(path, "meta.json")
    # SB3's "data" is JSON too, but carries base64 pickles: refused, never decoded.
    with pytest.raises(CheckpointError, match="':serialized:'"):
        read_zip_json_member(path, "data")


# === Safe loading: poisoned files ===


def test_poison_is_live_when_loaded_unsafely(tmp_path: Path) -> None:
    """Control: proves the payload used below really runs code under plain pickle."""
    marker = tmp_path / "control_marker"
    torch.load(io.BytesIO(poisoned_pth_bytes(marker)), weights_only=False).close()
    assert marker.exists()


@pytest.mark.parametrize("nested", [False, True])
def test_poisoned_pth_is_rejected_without_running_code(tmp_path: Path, nested: bool) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "rl_model_1_steps_transformer_encoder.pth"
    path.write_bytes(poisoned_pth_bytes(marker, nested))
    with pytest.raises(CheckpointError, match=r"transformer_encoder\.pth is not a weights-only checkpoint"):
        load_state_dict_file(path)
    assert not marker.exists()


@pytest.mark.parametrize("entry", ["policy.pth", "policy.optimizer.pth", "pytorch_variables.pth"])
def test_poisoned_sb3_zip_is_rejected_by_us_and_by_set_parameters(tmp_path: Path, sb3_zip: Path, entry: str) -> None:
    marker = tmp_path / "pwned"
    path = rewrite_zip(sb3_zip, tmp_path / "rl_model_64_steps.zip", {entry: poisoned_pth_bytes(marker)})
    with pytest.raises(CheckpointError, match=rf"entry '{entry}' is not a weights-only checkpoint"):
        check_sb3_zip(path)
    with pytest.raises(CheckpointError, match=rf"entry '{entry}' is not a weights-only checkpoint"):
        set_parameters_safely(tiny_ppo(), path)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):  # SB3's loader is weights-only too
        tiny_ppo().set_parameters(str(path), exact_match=True)
    assert not marker.exists()


def test_poisoned_data_entry_is_never_touched(tmp_path: Path, sb3_zip: Path) -> None:
    marker = tmp_path / "pwned_by_data"
    payload = base64.b64encode(pickle.dumps(Poison(marker))).decode()
    data = json.dumps({"policy_class": {":type:": "<class 'type'>", ":serialized:": payload}})
    control = json.dumps({"x": {":serialized:": base64.b64encode(pickle.dumps(Poison(tmp_path / "ctl"))).decode()}})
    json_to_data(control)["x"].close()  # what PPO.load would do with "data": runs the payload
    assert (tmp_path / "ctl").exists()

    path = rewrite_zip(sb3_zip, tmp_path / "evil_data.zip", {"data": data.encode()})
    opened: list[str] = []
    real_open = zipfile.ZipFile.open

    def spy(self: zipfile.ZipFile, name: str | zipfile.ZipInfo, *args: object, **kwargs: object):
        opened.append(name.filename if isinstance(name, zipfile.ZipInfo) else name)
        return real_open(self, name, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(zipfile.ZipFile, "open", spy)
        assert "data" in check_sb3_zip(path)
        model = tiny_ppo()
        set_parameters_safely(model, path)
    assert "policy.pth" in opened and "data" not in opened
    model.set_parameters(str(path), exact_match=True)  # SB3 skips "data" here (load_data=False)
    assert not marker.exists()


# === Disk budget ===


def test_csv_log_appends_whole_rows_and_reads_last_value(tmp_path: Path) -> None:
    path = tmp_path / "run" / "behavior_metrics.csv"
    with CsvLog(path, ["step", "win_rate", "note"]) as log:
        assert log.last_value("step") is None
        log.append({"step": 10, "win_rate": 0.5, "note": "a, quoted"})
        log.append_many([{"step": 20, "win_rate": 0.25}, {"step": 30}])
        assert log.last_value("step") == "30"
        with pytest.raises(ValueError, match=r"unknown columns \['elo', 'wins'\]"):
            log.append({"step": 40, "wins": 1, "elo": 2})
        with pytest.raises(ValueError, match="line break"):
            log.append({"step": 40, "note": "two\nlines"})
    assert path.read_text() == 'step,win_rate,note\n10,0.5,"a, quoted"\n20,0.25,\n30,,\n'


def test_csv_log_truncates_partial_last_line_on_reopen(tmp_path: Path) -> None:
    path = tmp_path / "reward_breakdown.csv"
    path.write_text("step,total\n1,0.5\n2,0.7\n3,0.")  # killed mid-row
    with pytest.warns(CheckpointWarning, match=r"reward_breakdown\.csv: removed a partial last line \(4 bytes\)"):
        log = CsvLog(path, ["step", "total"])
    assert log.last_value("step") == "2"
    log.append({"step": 3, "total": 0.9})
    log.close()
    assert path.read_text() == "step,total\n1,0.5\n2,0.7\n3,0.9\n"


def test_csv_log_partial_header_or_comment_is_rebuilt(tmp_path: Path) -> None:
    partial_header = tmp_path / "a.csv"
    partial_header.write_text("ste")
    with pytest.warns(CheckpointWarning, match="partial last line"), CsvLog(partial_header, ["step"]) as log:
        log.append({"step": 1})
    assert partial_header.read_text() == "step\n1\n"
    partial_comment = tmp_path / "b.csv"
    partial_comment.write_text('#{"t_sta')
    warned = pytest.warns(CheckpointWarning, match="partial last line")
    with warned, CsvLog(partial_comment, ["r"], comment_line='{"t_start": 2.0}') as log:
        assert log.last_value("r") is None
    assert partial_comment.read_text() == '#{"t_start": 2.0}\nr\n'


def test_csv_log_header_mismatch_names_file_and_explains(tmp_path: Path) -> None:
    path = tmp_path / "evaluation_results.csv"
    path.write_text("step,win_rate\n1,0.5\n2,0.")
    with pytest.raises(CheckpointError, match=r"evaluation_results\.csv has header .*new columns \['elo'\]"):
        CsvLog(path, ["step", "win_rate", "elo"])
    with pytest.raises(CheckpointError, match=r"extra columns \['win_rate'\]"):
        CsvLog(path, ["step"])
    with pytest.raises(CheckpointError, match=r"missing \['loss'\], extra \['win_rate'\]"):
        CsvLog(path, ["step", "loss"])
    assert path.read_text() == "step,win_rate\n1,0.5\n2,0."  # untouched, partial line included


def test_csv_log_drop_rows_after_for_resume(tmp_path: Path) -> None:
    path = tmp_path / "strategy_analysis.csv"
    log = CsvLog(path, ["step", "value"])
    log.append_many({"step": s, "value": s * 2} for s in (100, 200, 300, 400))
    assert log.drop_rows_after("step", 200) == 2
    assert log.drop_rows_after("step", 200) == 0
    log.append({"step": 300, "value": -1})  # the resumed run logs step 300 again, once
    log.close()
    assert log.last_value("step") == "300"  # readable after close, but no more writes
    with pytest.raises(ValueError, match="closed"):
        log.append({"step": 400})
    with path.open() as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == [100, 200, 300] and leftovers(tmp_path) == []


def test_csv_log_comment_line_and_sb3_monitor_format(tmp_path: Path) -> None:
    created = tmp_path / "created.csv"
    with CsvLog(created, ["r", "l", "t"], comment_line='{"t_start": 1.0, "env_id": "brawl"}') as log:
        log.append({"r": 1.5, "l": 10, "t": 0.1})
        assert log.last_value("r") == "1.5"
    assert created.read_text().splitlines()[0] == '#{"t_start": 1.0, "env_id": "brawl"}'

    # A monitor.csv written by SB3 itself, killed mid-row, then resumed through CsvLog.
    writer = ResultsWriter(str(tmp_path / "monitor.csv"), header={"t_start": 5.0, "env_id": "brawl"})
    writer.write_row({"r": 1.0, "l": 5, "t": 0.5})
    writer.write_row({"r": 2.0, "l": 6, "t": 1.0})
    writer.file_handler.write("3.0,7")
    writer.close()
    monitor = tmp_path / "monitor.csv"
    with pytest.warns(CheckpointWarning, match="partial last line"), CsvLog(monitor, ["r", "l", "t"]) as log:
        assert log.last_value("t") == "1.0"
        log.append({"r": 3.0, "l": 7, "t": 1.5})
        assert log.drop_rows_after("t", 1.0) == 1
        log.append({"r": 4.0, "l": 8, "t": 2.0})
    frame = load_results(str(tmp_path))
    assert frame["r"].tolist() == [1.0, 2.0, 4.0] and frame["t"].tolist() == [0.5, 1.0, 2.0]
    lines = monitor.read_bytes().split(b"\n")
    assert lines[0] == b'#{"t_start": 5.0, "env_id": "brawl"}' and lines[-1] == b""
    assert all(line.endswith(b"\r") for line in lines[1:-1])  # SB3's "\r\n" rows are continued in kind


# --- one writer per run folder ----------------------------------------------------------------
def _write_holder(run_dir: Path, pid: int, host: str | None = None) -> None:
    holder = {"pid": pid, "host": host or socket.gethostname(), "started": "earlier"}
    (run_dir / RunFolderLock.NAME).write_text(json.dumps(holder))


def test_run_folder_lock_is_exclusive_and_released(tmp_path):
    with RunFolderLock(tmp_path) as lock:
        holder = json.loads(lock.path.read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(RunFolderInUseError, match=rf"in use by process {os.getpid()} on {socket.gethostname()}"):
            RunFolderLock(tmp_path).acquire()
    assert not lock.path.exists()
    RunFolderLock(tmp_path).acquire().release()  # free again


def test_run_folder_lock_refuses_a_live_holder_and_takes_over_a_dead_ones(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _write_holder(tmp_path, sleeper.pid)
        with pytest.raises(RunFolderInUseError, match=f"in use by process {sleeper.pid}.*delete .*run.lock"):
            RunFolderLock(tmp_path).acquire()
        _write_holder(tmp_path, sleeper.pid, host="another-machine")  # can't tell: refused
        with pytest.raises(RunFolderInUseError, match="another-machine"):
            RunFolderLock(tmp_path).acquire()
    finally:
        sleeper.kill()
        sleeper.wait()
    _write_holder(tmp_path, sleeper.pid)  # its process is gone: a stale lock
    with pytest.warns(CheckpointWarning, match=f"taking over the lock of process {sleeper.pid}"):
        lock = RunFolderLock(tmp_path).acquire()
    assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    lock.release()
    (tmp_path / RunFolderLock.NAME).write_text("{not json")  # damaged: left for a human
    with pytest.raises(RunFolderInUseError, match="cannot be read"):
        RunFolderLock(tmp_path).acquire()


def test_releasing_never_removes_another_processs_lock(tmp_path):
    lock = RunFolderLock(tmp_path).acquire()
    _write_holder(tmp_path, os.getpid() + 1)  # someone replaced it (e.g. after deleting ours by hand)
    lock.release()
    assert (tmp_path / RunFolderLock.NAME).exists()
