"""Safe checkpoint files for long training runs: atomic writes, a hash manifest, crash-proof CSV logs.

Why this module exists (DESIGN.md §6: ``checkpoints/<run_name>/rl_model_<N>_steps.zip`` +
``rl_model_<N>_steps_transformer_encoder.pth``, CSV logs, ``config.json``, ``training.log``):

- 10-hour runs get killed (OOM, ``kill``, full disk, power). Whole files (snapshots, ``config.json``,
  the manifest) go through :func:`atomic_path` (temp file in the same folder → fsync → ``os.replace``),
  so a reader sees the old file or the new one, never half of one.
- :class:`CheckpointManifest` records the size and sha256 of each snapshot's files in
  ``manifest.json``; :meth:`CheckpointManifest.latest_valid` walks back past a truncated or modified
  snapshot to the newest one that verifies. (It catches crashes and accidental edits; it is not a
  signature: whoever can write the files can rewrite the manifest too.)
- Students load each other's checkpoints, so nothing here unpickles: :func:`read_zip_json_member`
  reads our own plain-JSON zip members and :func:`load_state_tree` refuses pickled arrays. The
  weights-only torch loaders live with the trainer (``user/agent_io.py``), so that the game
  package never needs torch.
- Nothing is read without a bound (issue 18, item 7): a path that is not a regular file
  (``/dev/zero``, a FIFO, a folder) is refused before it is opened for reading, and every file or
  zip member read into memory has a size cap: :data:`MAX_WEIGHTS_BYTES` for weights,
  :data:`MAX_JSON_BYTES` for configs and JSON members, :data:`MAX_RUN_JSON_BYTES` for the
  manifest and the resume state's JSON (:func:`require_file`, :func:`read_regular_file`).
- :class:`RunFolderLock` lets one process at a time write a run folder.
- :func:`free_bytes`: the free space a save checks before it writes (the trainer's disk reserve).
- :class:`CsvLog` appends whole rows only, repairs a crash-truncated last line and, on resume from an
  older checkpoint, drops rows logged after it (:meth:`CsvLog.drop_rows_after`).

Problems are reported as :class:`CheckpointWarning` through :mod:`warnings`; call
``logging.captureWarnings(True)`` to route them into ``training.log``.
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import socket
import stat
import time
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "MAX_JSON_BYTES",
    "MAX_RUN_JSON_BYTES",
    "MAX_WEIGHTS_BYTES",
    "CheckpointError",
    "CheckpointManifest",
    "CheckpointNotFoundError",
    "CheckpointWarning",
    "CorruptCheckpointError",
    "CsvLog",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "free_bytes",
    "open_zip",
    "read_regular_file",
    "read_zip_json_member",
    "remove_stale_temp_files",
    "require_file",
    "sha256_file",
    "stale_temp_files",
]

StrPath = str | os.PathLike[str]

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
_CHUNK = 1 << 20

# Read caps (issue 18, item 7): what a checkpoint holds is read into memory, so a file or zip member
# larger than these is refused by its declared size, before any of it is read. Far above what a
# real run writes (a 10M-step checkpoint is a few MiB; its resume-state JSON grows ~15 KB per 1M steps).
MAX_WEIGHTS_BYTES = 1 << 30  # a .pth file, a .pth member of a checkpoint zip, an array of the resume state
MAX_JSON_BYTES = 4 << 20  # a JSON member of a checkpoint zip, config.json, a --config-file
MAX_RUN_JSON_BYTES = 256 << 20  # manifest.json and the resume state's .json, which grow with the run


# === Errors ===


class PortableError(Exception):
    """A project exception that pickles as its nearest builtin one, e.g. ``ValueError("ConfigError: ...")``.

    Ray sends a remote task's exception to the driver pickled; a driver (or any process) without this
    project on its path could not import the class and lost the error (issue 17, problem 4). The
    message keeps the class name. Nothing in the project pickles exceptions itself: worker processes
    send tracebacks as text (``environment/worker_vec_env.py``)."""

    def __reduce__(self):
        builtin = next(c for c in type(self).__mro__ if c.__module__ == "builtins")
        return builtin, (f"{type(self).__name__}: {self}",)


class CheckpointError(PortableError):
    """A checkpoint, manifest or run log is missing, corrupt, unsafe or inconsistent."""


class CorruptCheckpointError(CheckpointError):
    """A checkpoint file does not match what the manifest recorded (missing, wrong size, wrong hash)."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """A checkpoint path does not exist."""


class CheckpointWarning(UserWarning):
    """A checkpoint was skipped or rejected, or disk space ran low or recovered."""


def _warn(message: str, stacklevel: int = 3) -> None:
    """Report through :mod:`warnings`; ``stacklevel`` points the report at the caller of our public method."""
    warnings.warn(message, CheckpointWarning, stacklevel=stacklevel)


# === Atomic writes ===


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable. Best effort: not possible on every OS (e.g. Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "ab") as f:  # a writable handle: Windows cannot fsync a read-only one
        os.fsync(f.fileno())


def temp_name_for(final: Path) -> Path:
    """A fresh temporary name next to ``final`` that :func:`stale_temp_files` recognises (for writers
    that cannot use :func:`atomic_path`, e.g. one whose output path may change)."""
    return _temp_name(Path(final))


def _temp_name(final: Path) -> Path:
    """``.<name>.tmp-<pid>-<random><suffix>`` next to ``final``; keeps the suffix so that writers that
    append one when it is missing (SB3's ``model.save`` adds ``.zip``) write exactly this path."""
    while True:
        candidate = final.with_name(f".{final.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}{final.suffix}")
        if not candidate.exists():
            return candidate


@contextlib.contextmanager
def atomic_path(path: StrPath) -> Iterator[Path]:
    """Yield a temporary path in the same folder as ``path``; on success, move it onto ``path``.

    The writer (``torch.save(obj, tmp)``, ``model.save(tmp)``, ...) must create the temporary file.
    On a clean exit the file is fsynced and ``os.replace``-d onto ``path`` (atomic on POSIX and
    Windows), then the folder is fsynced. If the block raises, the temporary file is removed and
    ``path`` is left untouched. The parent folder is created if needed.

    :raises CheckpointError: the writer did not create the temporary file.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(final)
    try:
        yield tmp
        if not tmp.is_file():
            raise CheckpointError(f"atomic write of {final}: the writer did not create the temporary file {tmp}")
        _fsync_file(tmp)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(final.parent)


_TEMP_PATTERN = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)-[0-9a-f]{8}(?P<suffix>\.[^.]*)?$")


def stale_temp_files(folder: StrPath) -> list[Path]:
    """Temporary files of :func:`atomic_path` in ``folder`` left by a killed process (not this one)."""
    folder = Path(folder)
    return [p for p in sorted(folder.iterdir()) if _is_stale_temp(p)] if folder.is_dir() else []


def _is_stale_temp(path: Path) -> bool:
    match = _TEMP_PATTERN.match(path.name)
    if not match or not path.is_file() or int(match["pid"]) == os.getpid():
        return False
    return (match["suffix"] or "") == Path(match["name"]).suffix


def remove_stale_temp_files(folder: StrPath) -> list[Path]:
    """Delete :func:`stale_temp_files` (only those names) and return them. Call it when a run starts
    or resumes, while no other process writes into ``folder``."""
    removed = stale_temp_files(folder)
    for p in removed:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    return removed


def atomic_write_bytes(path: StrPath, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        # O_EXCL: never follow a planted symlink; mode 0o666 lets the umask decide, like open().
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data)


def atomic_write_text(path: StrPath, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    atomic_write_bytes(path, text.encode(encoding))


def sha256_file(path: StrPath) -> str:
    """Hex sha256 of a file's contents, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


# === Manifest ===


def _relative_name(run_dir: Path, file: StrPath) -> str:
    resolved = Path(file).resolve()
    try:
        return resolved.relative_to(run_dir.resolve()).as_posix()
    except ValueError:
        raise ValueError(f"checkpoint file {file} is not inside the run folder {run_dir}") from None


def _check_relative_name(manifest: Path, name: object) -> str:
    """A manifest file name must be a plain relative path inside the run folder (no '..', not absolute)."""
    if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
        raise CheckpointError(f"{manifest} is corrupt: file name {name!r} is not a relative path inside the run")
    return name


class CheckpointManifest:
    """``run_dir/manifest.json``: the files, sizes and sha256 of every recorded checkpoint.

    Layout (JSON, written atomically)::

        {"format": 1, "checkpoints": {"<step>": {"step": N, "time": <epoch s>, "extra": {...},
                                                "files": {"<relative name>": {"sha256": "...", "bytes": n}}}}}

    One writer per run folder (the training process); readers may run at any time.
    A missing manifest is an empty one; an unreadable one raises :class:`CheckpointError`.
    """

    def __init__(self, run_dir: StrPath) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / MANIFEST_NAME

    # --- reading ---

    def _load(self) -> dict[int, dict[str, Any]]:
        if not self.path.exists():
            return {}
        try:
            raw = json.loads(read_regular_file(self.path, "manifest", MAX_RUN_JSON_BYTES).decode("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CheckpointError(f"{self.path} is unreadable or not JSON: {e}") from e
        if not isinstance(raw, dict) or not isinstance(raw.get("checkpoints"), dict):
            raise CheckpointError(f"{self.path} is corrupt: expected an object with a 'checkpoints' object")
        return {self._parse_step(k): self._parse_entry(v) for k, v in raw["checkpoints"].items()}

    def _parse_step(self, key: str) -> int:
        try:
            return int(key)
        except ValueError:
            raise CheckpointError(f"{self.path} is corrupt: checkpoint key {key!r} is not a step number") from None

    def _parse_entry(self, entry: object) -> dict[str, Any]:
        files = entry.get("files") if isinstance(entry, dict) else None
        if not isinstance(files, dict) or not files:
            raise CheckpointError(f"{self.path} is corrupt: a checkpoint entry has no 'files' object")
        for name, meta in files.items():
            _check_relative_name(self.path, name)
            ok = isinstance(meta, dict) and isinstance(meta.get("sha256"), str) and isinstance(meta.get("bytes"), int)
            if not ok:
                raise CheckpointError(f"{self.path} is corrupt: entry for {name!r} lacks 'sha256'/'bytes'")
        return entry  # type: ignore[return-value]

    def _entry(self, step: int, entries: Mapping[int, dict[str, Any]] | None = None) -> dict[str, Any]:
        entries = self._load() if entries is None else entries
        if step not in entries:
            raise CheckpointError(f"{self.path}: no checkpoint recorded for step {step} (have {sorted(entries)})")
        return entries[step]

    def steps(self) -> list[int]:
        """Recorded steps, ascending."""
        return sorted(self._load())

    def entry(self, step: int) -> dict[str, Any]:
        """The recorded entry of ``step`` (``step``, ``time``, ``extra``, ``files``)."""
        return self._entry(step)

    def files(self, step: int) -> list[Path]:
        """Paths of the files recorded for ``step``."""
        return [self.run_dir / name for name in self._entry(step)["files"]]

    # --- writing ---

    def _save(self, entries: Mapping[int, dict[str, Any]]) -> None:
        body = {"format": MANIFEST_FORMAT, "checkpoints": {str(s): entries[s] for s in sorted(entries)}}
        atomic_write_text(self.path, json.dumps(body, indent=1) + "\n")

    def record(self, step: int, files: Sequence[StrPath], extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Hash ``files`` (which must lie inside the run folder) and record them as checkpoint ``step``.

        Call it right after the files were written. Re-recording a step replaces its entry.

        :param extra: JSON-serializable metadata kept with the entry (e.g. ``{"elo": 1210.5}``).
        :return: the new entry.
        """
        if not files:
            raise ValueError(f"checkpoint {step}: no files to record")
        extra_dict = dict(extra or {})
        try:
            json.dumps(extra_dict)
        except (TypeError, ValueError) as e:
            raise ValueError(f"checkpoint {step}: extra metadata is not JSON-serializable: {e}") from e
        recorded = {}
        for file in files:
            path = Path(file)
            if not path.is_file():
                raise CheckpointNotFoundError(f"checkpoint {step}: file to record {path} does not exist")
            recorded[_relative_name(self.run_dir, path)] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        entry = {"step": int(step), "time": time.time(), "extra": extra_dict, "files": recorded}
        entries = self._load()
        entries[int(step)] = entry
        self._save(entries)
        return entry

    def remove(self, step: int, delete_files: bool = False) -> None:
        """Forget checkpoint ``step``; with ``delete_files=True`` also delete the files recorded for it
        (and only those, skipping any that another recorded step still lists), e.g. when rotating out
        old self-play snapshots. The manifest is updated first, so a crash never leaves it listing
        deleted files."""
        entries = self._load()
        entry = self._entry(step, entries)
        del entries[step]
        self._save(entries)
        if delete_files:
            still_used = {name for other in entries.values() for name in other["files"]}
            for name in set(entry["files"]) - still_used:
                with contextlib.suppress(FileNotFoundError):
                    (self.run_dir / name).unlink()

    # --- verification ---

    def verify(self, step: int) -> None:
        """Check that every file of ``step`` exists with the recorded size and sha256.

        :raises CorruptCheckpointError: naming the first file that is missing or differs.
        """
        self._verify_entry(step, self._entry(step))

    def _verify_entry(self, step: int, entry: Mapping[str, Any]) -> None:
        for name, meta in entry["files"].items():
            path = self.run_dir / name
            if not path.is_file():
                raise CorruptCheckpointError(f"checkpoint {step}: {path} is missing")
            size = path.stat().st_size
            if size != meta["bytes"]:
                raise CorruptCheckpointError(
                    f"checkpoint {step}: {path} has {size} bytes, the manifest recorded {meta['bytes']} (truncated?)"
                )
            if sha256_file(path) != meta["sha256"]:
                raise CorruptCheckpointError(f"checkpoint {step}: {path} sha256 differs from the manifest (modified)")

    def latest_valid(self, before: int | None = None) -> tuple[int, list[Path]] | None:
        """Newest checkpoint that verifies, as ``(step, files)``; ``None`` if there is none.

        Each newer checkpoint that fails :meth:`verify` is reported with a :class:`CheckpointWarning`
        naming the file and the reason, then skipped.

        :param before: only consider steps strictly smaller than this.
        """
        entries = self._load()
        for step in sorted(entries, reverse=True):
            if before is not None and step >= before:
                continue
            try:
                self._verify_entry(step, entries[step])
            except CorruptCheckpointError as e:
                _warn(f"skipping checkpoint {step} in {self.run_dir}: {e}")
                continue
            return step, [self.run_dir / name for name in entries[step]["files"]]
        return None


# === Reading files safely ===


def _not_found(path: Path, what: str = "checkpoint") -> CheckpointNotFoundError:
    """An error naming ``path`` and, when its folder exists, a few similar names there."""
    message = f"{what} {path} does not exist"
    if path.parent.is_dir():
        names = sorted(p.name for p in path.parent.iterdir())
        hints = difflib.get_close_matches(path.name, names, n=5, cutoff=0.5)
        message += f"; similar files in {path.parent}: {hints}" if hints else f"; {path.parent} has no similar files"
    else:
        message += f" (folder {path.parent} does not exist either)"
    return CheckpointNotFoundError(message)


def _file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a plain file")


def _check_regular(p: Path, st: os.stat_result, what: str, max_bytes: int | None) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"{what} {p} is not a regular file (it is {_file_kind(st.st_mode)})")
    if max_bytes is not None and st.st_size > max_bytes:
        raise CheckpointError(f"{what} {p} is {st.st_size:,} bytes, over the {max_bytes:,}-byte limit")


def require_file(path: StrPath, what: str = "checkpoint", max_bytes: int | None = None) -> Path:
    """``path`` if it is an existing regular file (of at most ``max_bytes``), checked without opening it.

    :raises CheckpointNotFoundError: it does not exist (the message lists similar names).
    :raises CheckpointError: a folder, device, FIFO or socket, or a file over ``max_bytes``.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise _not_found(p, what) from None
    except OSError as e:
        raise CheckpointError(f"cannot read {what} {p}: {e.strerror}") from None
    _check_regular(p, st, what, max_bytes)
    return p


def read_regular_file(path: StrPath, what: str, max_bytes: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes`` of them.

    The file is opened without blocking (a FIFO would otherwise wait for a writer) and checked
    through its own descriptor, so a path swapped for a device after a check is refused too.

    :raises CheckpointNotFoundError, CheckpointError: as :func:`require_file`, naming ``path``.
    """
    p = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(p, flags)
    except FileNotFoundError:
        raise _not_found(p, what) from None
    except OSError as e:  # e.g. a folder on Windows, no permission
        raise CheckpointError(f"cannot read {what} {p}: {e.strerror}") from None
    try:
        _check_regular(p, os.fstat(fd), what, max_bytes)
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:  # it grew since the check
        raise CheckpointError(f"{what} {p} is over the {max_bytes:,}-byte limit")
    return data


def open_zip(path: StrPath) -> tuple[Path, zipfile.ZipFile]:
    p = require_file(path, "model zip")
    try:
        return p, zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(f"{p} is not a valid zip file: {e}") from e


def read_zip_json_member(path: StrPath, name: str, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Parse the zip entry ``name`` of ``path`` as plain JSON (for our own metadata entries).

    Only :func:`json.loads` is used. Objects carrying SB3's ``":serialized:"`` key (base64 pickles that
    SB3 would unpickle) are refused so that nobody passes them on to SB3's ``json_to_data``.

    :raises CheckpointError: missing entry, too big, not UTF-8 JSON, or holding serialized objects.
    """
    p, archive = open_zip(path)
    with archive:
        try:
            info = archive.getinfo(name)
        except KeyError:
            raise CheckpointError(f"{p} has no entry {name!r} (entries: {archive.namelist()})") from None
        if info.file_size > max_bytes:
            raise CheckpointError(f"{p} entry {name!r} is {info.file_size:,} bytes, over the {max_bytes:,}-byte limit")
        try:
            value = json.loads(archive.read(info).decode("utf-8"), object_hook=_refuse_serialized)
        except (zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CheckpointError(f"{p} entry {name!r} is not plain JSON: {e}") from e
        except _SerializedObjectError:
            raise CheckpointError(f"{p} entry {name!r} holds pickled objects (':serialized:'); refusing") from None
    return value


class _SerializedObjectError(Exception):
    pass


def _refuse_serialized(obj: dict[str, Any]) -> dict[str, Any]:
    if ":serialized:" in obj:
        raise _SerializedObjectError
    return obj


# === Disk budget ===


def free_bytes(path: StrPath) -> int:
    """Free bytes on the filesystem holding ``path`` (or its nearest existing parent)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


class RunFolderInUseError(CheckpointError):
    """Another live process holds the run folder's lock."""


class RunFolderLock:
    """One writer per run folder: ``run.lock`` holds the owner's PID, host and start time.

    Two trainers on one folder would interleave their CSV rows and mix their checkpoints, so the
    second is refused with the holder named. The file is created with O_EXCL (atomic on local
    file systems). A lock whose process is gone (same host, PID not alive: a SIGKILL, a crash,
    a power cut) is stale: it is taken over with a warning. Released by :meth:`release` or on
    leaving the ``with`` block; only by the process that holds it.
    """

    NAME = "run.lock"

    def __init__(self, run_dir: StrPath) -> None:
        self.path = Path(run_dir) / self.NAME
        self.held = False

    def acquire(self) -> RunFolderLock:
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        for _ in range(3):  # a stale lock is removed, then created again: another process may win the race
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._clear_if_stale()
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(owner, fh)
            self.held = True
            return self
        raise RunFolderInUseError(f"could not take the lock {self.path}: it keeps reappearing")

    def _clear_if_stale(self) -> None:
        holder = self._holder()
        if holder is None:  # unreadable: being written right now, or damaged; a damaged one stays for a human
            raise RunFolderInUseError(
                f"{self.path.parent} is locked ({self.path} exists but cannot be read); if no trainer uses "
                f"this folder, delete {self.path}"
            )
        pid, host = holder.get("pid"), holder.get("host")
        if host == socket.gethostname() and isinstance(pid, int) and not _process_alive(pid):
            _warn(f"{self.path.parent}: taking over the lock of process {pid}, which is gone", stacklevel=4)
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        raise RunFolderInUseError(
            f"{self.path.parent} is in use by process {pid} on {host} (since {holder.get('started', '?')}); "
            f"wait for it to finish or stop it, or, if it is gone, delete {self.path}"
        )

    def _holder(self) -> dict | None:
        try:
            holder = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return holder if isinstance(holder, dict) else None

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        holder = self._holder()
        if holder is not None and holder.get("pid") == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def __enter__(self) -> RunFolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    # A killed child its parent has not reaped yet still answers signal 0: a zombie holds nothing.
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return "Z" not in line.split()[1]
    return True


# === CSV logs ===


def _truncate_partial_line(path: Path) -> int:
    """Cut a trailing line without a newline (left by a crash mid-write). Returns the bytes removed."""
    with open(path, "r+b") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        keep = 0
        position = size
        while position > 0:  # scan backwards in chunks for the last newline
            start = max(0, position - _CHUNK)
            f.seek(start)
            index = f.read(position - start).rfind(b"\n")
            if index >= 0:
                keep = start + index + 1
                break
            position = start
        f.truncate(keep)
        return size - keep


class CsvLog:
    """An append-only CSV log that survives crashes and resumes.

    - Each :meth:`append` writes exactly one whole line and flushes it.
    - Opening an existing file checks its header against ``columns`` and cuts a partial last line.
    - Optional first comment line (SB3 ``monitor.csv``: ``#{"t_start": ..., "env_id": ...}``), written
      on creation, kept as it is on resume, skipped when reading.

    :param comment_line: text of the comment line for a new file (a leading ``#`` is added if missing).
    """

    def __init__(self, path: StrPath, columns: Sequence[str], comment_line: str | None = None) -> None:
        self.path = Path(path)
        self.columns = list(columns)
        if len(set(self.columns)) != len(self.columns) or not self.columns:
            raise ValueError(f"CsvLog {self.path}: columns must be non-empty and unique, got {self.columns}")
        self._terminator = "\n"
        if self.path.exists() and self.path.stat().st_size > 0:
            self._open_existing(comment_line)
        else:
            self._create(comment_line)
        self._file = self._open_append()

    # --- opening ---

    def _open_append(self) -> io.FileIO:
        # Kept open for the log's lifetime (closed by close()/__exit__), so no `with` here. Unbuffered:
        # nothing waits in a buffer that a full disk could leave half-written at close().
        return open(self.path, "ab", buffering=0)

    def _create(self, comment_line: str | None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = ""
        if comment_line is not None:
            comment = comment_line.rstrip("\r\n")
            text = (comment if comment.startswith("#") else "#" + comment) + "\n"
        atomic_write_text(self.path, text + self._format(self.columns))

    def _open_existing(self, comment_line: str | None) -> None:
        header, terminator = self._read_head()  # complete lines only: checked before anything is changed
        if header is not None:
            self._check_header(header)
            self._terminator = terminator
        removed = _truncate_partial_line(self.path)
        if removed:
            _warn(f"{self.path}: removed a partial last line ({removed} bytes) left by an interrupted write", 4)
        if header is None and self.path.stat().st_size == 0:
            self._create(comment_line)
        elif header is None:  # only the comment line survived: add the header
            with open(self.path, "a", encoding="utf-8", newline="") as f:
                f.write(self._format(self.columns))

    def _read_text(self) -> str:
        try:
            return self.path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            raise CheckpointError(f"{self.path} is not a UTF-8 CSV file: {e}") from e

    def _read_head(self) -> tuple[list[str] | None, str]:
        """(header fields, header line terminator) of the file on disk, skipping a comment line."""
        text = self._read_text()
        if text.startswith("#"):
            text = text.partition("\n")[2]
        first, newline, _ = text.partition("\n")
        if not newline:  # no complete header line (a partial one was already cut)
            return None, "\n"
        terminator = "\r\n" if first.endswith("\r") else "\n"
        return next(csv.reader([first.removesuffix("\r")])), terminator

    def _check_header(self, header: list[str]) -> None:
        if header == self.columns:
            return
        n = len(header)
        if header == self.columns[:n]:
            detail = f"the new columns {self.columns[n:]} were added at the end"
        elif self.columns == header[: len(self.columns)]:
            detail = f"the file has extra columns {header[len(self.columns) :]} at the end"
        else:
            detail = (
                f"missing {sorted(set(self.columns) - set(header))}, extra {sorted(set(header) - set(self.columns))}"
            )
        raise CheckpointError(
            f"{self.path} has header {header} but this run logs {self.columns} ({detail}); "
            "move the old file aside or resume with the same columns"
        )

    # --- writing ---

    def _format(self, values: Iterable[Any]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator=self._terminator).writerow(values)
        return buffer.getvalue()

    def _row_line(self, row: Mapping[str, Any]) -> str:
        unknown = sorted(set(row) - set(self.columns))
        if unknown:
            raise ValueError(f"{self.path}: unknown columns {unknown} (columns are {self.columns})")
        cells = ["" if row.get(c) is None else str(row[c]) for c in self.columns]
        bad = [c for c, v in zip(self.columns, cells, strict=True) if "\n" in v or "\r" in v]
        if bad:
            raise ValueError(f"{self.path}: values of {bad} contain a line break")
        return self._format(cells)

    def append(self, row: Mapping[str, Any]) -> None:
        """Write one row (missing columns → empty cells) and flush it."""
        self.append_many([row])

    def append_many(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Write several rows with one write and one flush (all rows are validated first)."""
        data = "".join(self._row_line(r) for r in rows).encode("utf-8")
        self._require_open()
        size = self._file.seek(0, os.SEEK_END)
        try:
            written = 0
            while written < len(data):
                written += self._file.write(data[written:])
        except OSError:
            # E.g. a full disk: cut back to whole lines, so the file stays readable and resumable.
            with contextlib.suppress(OSError):
                self._file.truncate(size)
            raise

    # --- reading / resuming ---

    def _read_all(self) -> tuple[str | None, list[str], list[list[str]]]:
        """(comment line, header, complete data rows) as on disk."""
        text = self._read_text()
        comment = None
        if text.startswith("#"):
            comment, _, text = text.partition("\n")
            comment += "\n"
        complete = text[: text.rfind("\n") + 1]  # ignore a partial last line, should one appear
        rows = list(csv.reader(io.StringIO(complete)))
        return comment, (rows[0] if rows else []), rows[1:]

    def rows(self) -> list[dict[str, str]]:
        """All complete data rows, as dicts of strings."""
        _, header, rows = self._read_all()
        return [dict(zip(header, r, strict=False)) for r in rows]

    def last_value(self, column: str) -> str | None:
        """The value of ``column`` in the last complete row (``None`` if there are no rows)."""
        self._require_column(column)
        rows = self.rows()
        return rows[-1].get(column) if rows else None

    def drop_rows_after(self, column: str, value: float) -> int:
        """Rewrite the file (atomically) keeping only rows whose numeric ``column`` is ``<= value``.

        Use when resuming from an older checkpoint, so logged steps stay strictly increasing. Call it
        before anything else opens the file: the file is replaced, so other open handles (e.g. an SB3
        ``Monitor`` already writing ``monitor.csv``) would keep writing to the old, unlinked copy.

        :return: the number of rows dropped.
        :raises CheckpointError: a row's ``column`` is not a number.
        """
        self._require_column(column)
        self._require_open()
        comment, header, rows = self._read_all()
        index = header.index(column)
        kept = [r for r in rows if self._number(r, index, column) <= value]
        if len(kept) == len(rows):
            return 0
        self._file.close()
        try:
            body = "".join(self._format(r) for r in [header, *kept])
            atomic_write_text(self.path, (comment or "") + body)
        finally:
            self._file = self._open_append()
        return len(rows) - len(kept)

    def _number(self, row: list[str], index: int, column: str) -> float:
        try:
            return float(row[index])
        except (IndexError, ValueError):
            raise CheckpointError(f"{self.path}: row {row} has no numeric {column!r}") from None

    def _require_open(self) -> None:
        if self._file.closed:
            raise ValueError(f"{self.path}: log is closed")

    def _require_column(self, column: str) -> None:
        if column not in self.columns:
            raise ValueError(f"{self.path}: no column {column!r} (columns are {self.columns})")

    def close(self) -> None:
        """Close the file (idempotent)."""
        self._file.close()

    def __enter__(self) -> CsvLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ==================================================================================
# Resume state: nested dicts of arrays and JSON values, stored without pickle
# ==================================================================================
_ARRAY_MARK = "__array__"


def _split_tree(tree: Any, prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    """JSON-able copy of ``tree`` with every ndarray moved to ``arrays`` (keyed by its path)."""
    if isinstance(tree, np.ndarray):
        arrays[prefix] = tree
        return {_ARRAY_MARK: prefix}
    if isinstance(tree, dict):
        for key in tree:
            if not isinstance(key, str) or "/" in key:
                raise CheckpointError(f"state key {key!r} at {prefix or '<root>'} must be a string without '/'")
        return {key: _split_tree(value, _child(prefix, key), arrays) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_split_tree(value, _child(prefix, str(i)), arrays) for i, value in enumerate(tree)]
    if isinstance(tree, np.generic):
        return tree.item()
    return tree


def _child(prefix: str, key: str) -> str:
    return f"{prefix}/{key}" if prefix else key


def _join_tree(tree: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    if isinstance(tree, dict):
        if set(tree) == {_ARRAY_MARK}:
            return arrays[tree[_ARRAY_MARK]]
        return {key: _join_tree(value, arrays) for key, value in tree.items()}
    if isinstance(tree, list):
        return [_join_tree(value, arrays) for value in tree]
    return tree


def save_state_tree(stem: StrPath, tree: Mapping[str, Any]) -> list[Path]:
    """Write ``<stem>.npz`` (arrays) and ``<stem>.json`` (the rest), atomically; returns both paths.

    Neither file can carry code: arrays are saved without pickling and everything
    else must be plain JSON.
    """
    stem = Path(stem)
    arrays: dict[str, np.ndarray] = {}
    skeleton = _split_tree(dict(tree), "", arrays)
    npz_path, json_path = stem.with_name(stem.name + ".npz"), stem.with_name(stem.name + ".json")
    for key, value in arrays.items():
        if value.dtype == object:
            raise CheckpointError(f"state array {key} has dtype object; only plain arrays can be saved")
    with atomic_path(npz_path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    atomic_write_text(json_path, json.dumps(skeleton))
    return [npz_path, json_path]


def load_state_tree(stem: StrPath) -> dict[str, Any]:
    """Read what :func:`save_state_tree` wrote; refuses pickled arrays."""
    stem = Path(stem)
    npz_path, json_path = stem.with_name(stem.name + ".npz"), stem.with_name(stem.name + ".json")
    require_file(npz_path, "resume state")
    try:
        skeleton = json.loads(read_regular_file(json_path, "resume state", MAX_RUN_JSON_BYTES).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptCheckpointError(f"{json_path} is not valid JSON: {e}") from None
    _check_member_sizes(npz_path, MAX_WEIGHTS_BYTES)
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        raise CorruptCheckpointError(f"{npz_path} is not a plain array archive: {e}") from None
    return _join_tree(skeleton, arrays)


def _check_member_sizes(path: Path, max_bytes: int) -> None:
    """Refuse a zip (an ``.npz``) with a member over ``max_bytes``, by the sizes its directory declares."""
    try:
        with zipfile.ZipFile(path) as archive:
            big = [(i.filename, i.file_size) for i in archive.infolist() if i.file_size > max_bytes]
    except (zipfile.BadZipFile, OSError) as e:
        raise CorruptCheckpointError(f"{path} is not a plain array archive: {e}") from None
    if big:
        name, size = big[0]
        raise CheckpointError(f"{path} entry {name!r} is {size:,} bytes, over the {max_bytes:,}-byte limit")
