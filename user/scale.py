"""Past one machine (issue 17): many training runs at once, and Elo ratings of runs, on Ray or without it.

Run
    python user/scale.py sweep --config cpu --seeds 0 1 2 --grid agent.ent_coef=0.01 --grid agent.ent_coef=0.003
    python user/scale.py sweep --resume                      # continue the sweep in --storage after a crash
    python user/scale.py rate checkpoints/scale/sweep/runs/set0_seed0 checkpoints/scale/sweep/runs/set1_seed0
    python user/scale.py sweep --storage /shared/sweep1 --ray-address 10.0.0.5:6379 ...   # a cluster (README)

Subcommands
- ``sweep``: the grid of ``--seeds`` × ``--grid`` override sets (``--grid`` takes the trainer's ``--set``
  items; give it once per set), each trial a real trainer run (``run_training_loop``) in
  ``<storage>/runs/<trial>``. On Ray each trial is a Tune trial (``--parallel`` at once, 1 CPU each)
  that reports every scheduled checkpoint to Tune (``on_checkpoint``); a trial that fails is retried
  (``--max-failures``) and continues from its run folder's newest checkpoint, exactly as ``--resume``
  does. Without Ray (``--backend local``, or Ray not installed) the trials run as subprocesses of this
  script, ``--parallel`` at a time, with the same retries.
- ``rate``: a round robin with Elo over the newest snapshots of run folders and the scripted roster:
  the trainer's ``--mode league`` (user/modes.py), whose rows are played as Ray tasks (a task whose
  worker dies is retried) and applied in the league's canonical order, so the table equals the local
  one. Without Ray, the local round robin.
- ``search``: hyperparameter search with Optuna's TPE (``--param KEY=KIND:ARGS``, ``--trials``), on Ray through
  Tune's OptunaSearch, without it Optuna alone (its study in ``optuna.db``); trials run as a sweep's do.
- ``pbt``: population-based training on Ray (Tune's PopulationBasedTraining): members that fall behind
  continue a better member's run with mutated ``--mutate`` values, only those a ``--resume`` accepts.

Every subcommand takes ``--ray-address`` (default: start a new local Ray on this machine, bound to
127.0.0.1: never an old cluster that an earlier run left behind), ``--storage`` (default
``checkpoints/scale/<subcommand>``; a folder every machine sees at the same path for a cluster),
``--resume`` (continue what ``--storage`` holds) and ``--backend ray|local``.

Outputs under ``--storage``: ``experiment.json`` (the trials), ``runs/<trial>/`` (each trial's run
folder, the trainer's usual outputs), ``reports/<trial>.jsonl`` (one line per checkpoint: the
trainer's ``on_checkpoint`` summary), ``results.csv`` (one row per trial per checkpoint) and
``results.png`` (each trial's worst-bot win rate over steps, the best trial's in bold), ``tune/``
(Ray Tune's own state); ``rate`` writes ``league.csv`` and keeps each played row in ``rate_rows/``.
Ray itself is optional: ``pip install -r requirements-scale.txt``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import dataclasses
import functools
import importlib.util
import io
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from environment.checkpoints import (
    CheckpointError,
    CheckpointManifest,
    PortableError,
    RunFolderLock,
    atomic_write_text,
)
from environment.evaluation import format_table
from user.config_tools import ConfigError, apply_overrides

log = logging.getLogger("scale")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RAY_TEMP = REPO / "checkpoints" / "ray_tmp"  # git-ignored; Ray's sockets need a short path
# A results.csv row: the trial, then what the trainer's on_checkpoint summary says of the checkpoint.
SUMMARY_COLUMNS = (
    "step",
    "worst_win_rate",
    "mean_win_rate",
    "evaluated_at",
    "elo",
    "steps_per_s",
    "ep_rew_mean",
    "checkpoint",
)
RESULT_COLUMNS = ["trial", "seed", "overrides", *SUMMARY_COLUMNS]


# ==================================================================================
# === Plans: the trials of a sweep ===
# ==================================================================================
def parse_seeds(seeds: list[str] | None) -> list[int] | None:
    """``--seeds 0 1 2`` (or ``0,1,2``) as distinct integers."""
    if not seeds:
        return None
    out: list[int] = []
    for item in (part for s in seeds for part in s.split(",") if part != ""):
        try:
            seed = int(item)
        except ValueError:
            raise ConfigError(f"--seeds: {item!r} is not an integer") from None
        if seed in out:
            raise ConfigError(f"--seeds repeats {seed}: each seed runs once per override set")
        out.append(seed)
    return out


def check_override_items(items: list[str], flag: str) -> None:
    for item in items:
        key = item.split("=", 1)[0]
        if "=" not in item or not key:
            raise ConfigError(f"{flag} expects key.path=value, got {item!r}")


def plan_sweep(config: dict, seeds: list[int] | None, grid: list[list[str]] | None) -> list[dict[str, Any]]:
    """The sweep's trials, override set by override set, seed by seed: ``{name, seed, overrides, config}``
    with each config resolved and validated here, so a bad value stops before any trial starts."""
    from user.train_agent import validate_config  # the trainer's checks (and torch) only when planning

    sets = grid or [[]]
    for items in sets:
        check_override_items(items, "--grid")
    seeds = seeds if seeds is not None else [int(config["training"]["seed"])]
    trials = []
    for j, items in enumerate(sets):
        for seed in seeds:
            resolved = validate_config(apply_overrides(copy.deepcopy(config), [*items, f"training.seed={seed}"]))
            init_from = resolved["training"]["init_from"]
            if init_from:  # Tune moves a trial's working directory: a relative path would follow it
                resolved["training"]["init_from"] = str(Path(init_from).expanduser().resolve())
            trials.append({"name": f"set{j}_seed{seed}", "seed": seed, "overrides": list(items), "config": resolved})
    return trials


def run_dir_of(storage: Path, name: str) -> Path:
    return storage / "runs" / name


def reports_of(storage: Path, name: str) -> Path:
    return storage / "reports" / f"{name}.jsonl"


def write_experiment(storage: Path, kind: str, trials: list[dict[str, Any]]) -> None:
    start_experiment(storage, {"kind": kind, "trials": trials})


def start_experiment(storage: Path, experiment: dict[str, Any]) -> None:
    """Write a new experiment.json; one already there is continued with --resume, never replaced."""
    if (storage / "experiment.json").exists():
        raise ConfigError(
            f"{storage} already holds an experiment: continue it with --resume, or choose another --storage"
        )
    storage.mkdir(parents=True, exist_ok=True)
    atomic_write_text(storage / "experiment.json", json.dumps(experiment, indent=2, default=list))


def read_experiment(storage: Path) -> dict[str, Any]:
    path = storage / "experiment.json"
    try:
        experiment = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--resume: {storage} holds no experiment (no experiment.json)") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(experiment, dict) or not isinstance(experiment.get("trials"), list):
        raise ConfigError(f"{path} has no list of trials")
    return experiment


def trial_named(storage: Path, name: str) -> dict[str, Any]:
    """A trial of the experiment: listed in experiment.json (sweep) or sampled into trials/<name>.json (search)."""
    sampled = storage / "trials" / f"{name}.json"
    if sampled.exists():
        return json.loads(sampled.read_text(encoding="utf-8"))
    for trial in read_experiment(storage)["trials"]:
        if trial["name"] == name:
            return trial
    raise ConfigError(f"{storage / 'experiment.json'} has no trial {name!r}")


def sampled_trial_names(storage: Path) -> list[str]:
    return sorted(p.stem for p in (storage / "trials").glob("*.json"))


# --- search: the space of --param KEY=KIND:ARGS ------------------------------------------------
PARAM_KINDS = ("uniform", "loguniform", "int", "choice")


def parse_param(item: str) -> tuple[str, dict[str, Any]]:
    """``agent.learning_rate=loguniform:1e-5:1e-3`` → ``("agent.learning_rate", {"kind": ..., ...})``;
    kinds: ``uniform:LOW:HIGH``, ``loguniform:LOW:HIGH``, ``int:LOW:HIGH`` (both ends included),
    ``choice:[A, B, ...]`` (a YAML list of the trainer's --set values)."""
    from user.config_tools import load_yaml

    key, _, spec = item.partition("=")
    kind, _, rest = spec.partition(":")
    if not key or not spec:
        raise ConfigError(f"--param expects key.path=KIND:ARGS, got {item!r}")
    if kind not in PARAM_KINDS:
        raise ConfigError(f"--param {key}: unknown kind {kind!r}; choose from {', '.join(PARAM_KINDS)}")
    if kind == "choice":
        try:
            choices = load_yaml(rest)
        except Exception:
            choices = None
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"--param {key}: choice needs a YAML list, e.g. choice:[512, 1024], got {rest!r}")
        return key, {"kind": kind, "choices": choices}
    low, _, high = rest.partition(":")
    try:
        bounds = (int(low), int(high)) if kind == "int" else (float(low), float(high))
    except ValueError:
        raise ConfigError(f"--param {key}: {kind} needs LOW:HIGH numbers, got {rest!r}") from None
    if not bounds[0] < bounds[1] or (kind == "loguniform" and bounds[0] <= 0):
        raise ConfigError(
            f"--param {key}: need LOW < HIGH{' and LOW > 0' if kind == 'loguniform' else ''}, got {rest!r}"
        )
    return key, {"kind": kind, "low": bounds[0], "high": bounds[1]}


SEARCH_METRICS = ("worst_win_rate", "mean_win_rate", "elo", "ep_rew_mean")


def plan_search(config: dict, params: list[str], trials: int, metric: str = "worst_win_rate") -> dict[str, Any]:
    """The search's experiment: the base config and the parsed space, each key checked against the
    trainer's config (with the space's first value) before anything runs."""
    from user.train_agent import validate_config

    if trials < 1:
        raise ConfigError(f"--trials must be a positive integer, got {trials}")
    if metric not in SEARCH_METRICS:
        raise ConfigError(f"--metric {metric!r}: choose from {', '.join(SEARCH_METRICS)}")
    if not params:
        raise ConfigError("search needs at least one --param key.path=KIND:ARGS")
    space = dict(parse_param(item) for item in params)
    for key, spec in space.items():
        sample = spec["choices"][0] if spec["kind"] == "choice" else spec["low"]
        validate_config(apply_overrides(copy.deepcopy(config), [f"{key}={json.dumps(sample)}"]))
    return {"kind": "search", "base": config, "space": space, "trials": [], "n_trials": trials, "metric": metric}


def sampled_trial(experiment: dict[str, Any], name: str, values: dict[str, Any]) -> dict[str, Any]:
    """A trial of the search with these sampled ``values``, its config resolved like a sweep's."""
    values = {key: getattr(value, "item", lambda v=value: v)() for key, value in values.items()}  # NumPy scalars
    overrides = [f"{key}={json.dumps(values[key])}" for key in experiment["space"]]
    seed = int(experiment["base"]["training"]["seed"])
    trial = plan_sweep(experiment["base"], [seed], [overrides])[0]
    return {**trial, "name": name, "params": values}


# ==================================================================================
# === One trial: a trainer run that resumes where it stopped ===
# ==================================================================================
class TrialCrash(PortableError, RuntimeError):
    """The crash a test asks for (``crash_once`` in a trial): raised once, after a checkpoint's report."""


def report_row(trial: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """A results.csv row from the trainer's on_checkpoint summary (resume.checkpoint_summary)."""
    return {
        "trial": trial["name"],
        "seed": trial["seed"],
        "overrides": " ".join(trial["overrides"]),
        **{k: summary.get(k) for k in SUMMARY_COLUMNS},
    }


def newest_checkpoint_step(run_dir: Path) -> int | None:
    """The step of the run folder's newest checkpoint that a resume would take (None: none)."""
    from user.resume import newest_resumable

    if not (run_dir / "manifest.json").exists():
        return None
    found = newest_resumable(CheckpointManifest(run_dir))
    return None if found is None else found[0]


def append_report(path: Path, row: dict[str, Any]) -> None:
    """One line per report; a line torn by a killed trial is ended first (and skipped when read)."""
    with open(path, "ab") as fh:
        if fh.tell() > 0:
            with open(path, "rb") as last:
                last.seek(-1, os.SEEK_END)
                if last.read(1) != b"\n":
                    fh.write(b"\n")
        fh.write((json.dumps(row) + "\n").encode())
        fh.flush()
        os.fsync(fh.fileno())


def set_aside(run_dir: Path) -> Path | None:
    """Move a run folder that holds no usable checkpoint (a trial that failed before its first save)
    out of the way, whole: ``<trial>.attempt<k>``. Refused while a live trainer holds it."""
    if not run_dir.exists() or not any(run_dir.iterdir()):
        return None
    with RunFolderLock(run_dir):  # a live holder is refused here; a dead one's lock is taken over
        pass
    k = 1
    while (aside := run_dir.with_name(f"{run_dir.name}.attempt{k}")).exists():
        k += 1
    run_dir.rename(aside)
    log.warning("%s held no checkpoint to resume from; moved it to %s and starting the trial afresh", run_dir, aside)
    return aside


def run_trial(
    trial: dict[str, Any],
    storage: Path,
    report: Callable[[dict[str, Any], dict[str, Any]], None] | None = None,
    resume_overrides: list[str] | None = None,
) -> None:
    """Run one trial to its last step: a new run, or the continuation of its folder's newest checkpoint
    (a retried or resumed trial continues exactly, as ``--resume`` does, with ``resume_overrides`` as its
    ``--set``: PBT's mutated values). Each scheduled checkpoint appends its row to ``reports/<trial>.jsonl``
    and is passed to ``report`` (Ray Tune's)."""
    from user import train_agent as T

    run_dir, reports = run_dir_of(storage, trial["name"]), reports_of(storage, trial["name"])
    reports.parent.mkdir(parents=True, exist_ok=True)

    def on_checkpoint(summary: dict[str, Any]) -> None:
        row = report_row(trial, summary)
        append_report(reports, row)
        if report is not None:
            report(row, summary)
        marker = trial.get("crash_once")
        if marker and not Path(marker).exists():
            Path(marker).write_text(f"crashed after step {summary['step']}\n", encoding="utf-8")
            raise TrialCrash(f"trial {trial['name']}: the crash asked for (crash_once) after step {summary['step']}")

    step = newest_checkpoint_step(run_dir)
    total = trial["config"]["training"]["total_timesteps"]
    if step is not None and step >= total:
        log.info("Trial %s is finished (step %s)", trial["name"], f"{step:,}")
    elif step is not None:
        log.info("Trial %s continues from its checkpoint at step %s", trial["name"], f"{step:,}")
        T.resume_training(run_dir, resume_overrides, progress=False, on_checkpoint=on_checkpoint)
    else:
        set_aside(run_dir)
        T.run_training_loop(copy.deepcopy(trial["config"]), run_dir, progress=False, on_checkpoint=on_checkpoint)


# ==================================================================================
# === Results: results.csv and results.png ===
# ==================================================================================
def read_reports(path: Path) -> list[dict[str, Any]]:
    rows = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(json.JSONDecodeError):  # a line torn by a killed trial
                rows.append(json.loads(line))
    return rows


def collect_results(storage: Path, trial_names: list[str]) -> list[dict[str, Any]]:
    """One row per trial per checkpoint step, trials in plan order, steps ascending; a step reported
    twice (a retried trial) keeps its newest report."""
    rows = []
    for name in trial_names:
        by_step = {row["step"]: row for row in read_reports(reports_of(storage, name))}
        rows += [by_step[s] for s in sorted(by_step)]
    return rows


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> Path:
    """``rows`` as a CSV of ``columns`` (None and NaN as empty cells), written atomically."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_cell(row.get(c)) for c in columns] for row in rows)
    atomic_write_text(path, out.getvalue())
    return path


def write_results(rows: list[dict[str, Any]], path: Path) -> Path:
    return write_csv(path, RESULT_COLUMNS, rows)


def best_trial(rows: list[dict[str, Any]]) -> str | None:
    """The trial whose newest evaluated checkpoint has the best worst-bot win rate (None: no evaluation)."""
    final: dict[str, float] = {}
    for row in rows:  # steps ascending per trial: the last evaluated one wins
        if row.get("worst_win_rate") is not None:
            final[row["trial"]] = row["worst_win_rate"]
    return max(final, key=lambda name: final[name]) if final else None


def plot_results(rows: list[dict[str, Any]], path: Path) -> Path:
    """Each trial's worst-bot win rate over steps (thin), the best trial's bold."""
    from user.plots import _new_figure, _save_png

    fig = _new_figure((8, 5))
    ax = fig.add_subplot()
    best = best_trial(rows)
    for name in dict.fromkeys(row["trial"] for row in rows):
        points = sorted(
            (r["evaluated_at"], r["worst_win_rate"])
            for r in rows
            if r["trial"] == name and r["worst_win_rate"] is not None
        )
        points = list(dict.fromkeys(points))  # checkpoints between evaluations repeat the last one
        if not points:
            continue
        steps, rates = zip(*points, strict=True)
        style = {"linewidth": 3, "zorder": 3} if name == best else {"linewidth": 1, "alpha": 0.6}
        ax.plot(steps, rates, marker="o", label=f"{name} (best)" if name == best else name, **style)
    if best is None:
        ax.text(0.5, 0.5, "no evaluation yet", ha="center", va="center", transform=ax.transAxes)
    ax.set(
        title="Worst win rate over the public bots, per trial",
        xlabel="training step",
        ylabel="worst-bot win rate",
        ylim=(-0.02, 1.02),
    )
    if best is not None:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save_png(fig, path)


def finish_results(storage: Path, trial_names: list[str]) -> list[dict[str, Any]]:
    rows = collect_results(storage, trial_names)
    write_results(rows, storage / "results.csv")
    plot_results(rows, storage / "results.png")
    best = best_trial(rows)
    log.info(
        "Wrote %s (%d rows) and %s%s",
        storage / "results.csv",
        len(rows),
        storage / "results.png",
        f"; best trial by worst-bot win rate: {best}" if best else "",
    )
    return rows


# ==================================================================================
# === Ray: a session, the Tune sweep, rating tasks ===
# ==================================================================================
def ray_available() -> bool:
    return importlib.util.find_spec("ray") is not None


def pick_backend(backend: str | None, ray_address: str | None) -> str:
    if backend is None:
        backend = "ray" if ray_available() else "local"
        if backend == "local":
            log.info("Ray is not installed: running on this machine (--backend local)")
    if backend == "ray" and not ray_available():
        raise ConfigError(
            "--backend ray: Ray is not installed (pip install -r requirements-scale.txt), or use --backend local"
        )
    if backend == "local" and ray_address:
        raise ConfigError("--ray-address needs --backend ray (the local backend runs on this machine only)")
    return backend


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int | None, temp_dir: Path = DEFAULT_RAY_TEMP) -> Iterator[Any]:
    """Ray for the length of a command. Already initialised (a test, a notebook): used and left running.
    ``address`` given: that cluster is joined. Otherwise a NEW local instance (never a leftover cluster
    found through RAY_ADDRESS or /tmp/ray), bound to 127.0.0.1, no dashboard, Ray's token authentication
    left on, its files in ``temp_dir``; shut down at the end."""
    import ray

    if ray.is_initialized():
        yield ray
        return
    t0 = time.monotonic()
    environ_before = dict(os.environ)
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
    else:
        temp_dir = temp_dir.resolve()
        if len(str(temp_dir)) > 60:  # Ray's unix sockets live below it (a path limit of 107 bytes)
            raise ConfigError(
                f"--ray-temp-dir {temp_dir} is too long for Ray's sockets; give a path under 60 characters"
            )
        temp_dir.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("RAY_TMPDIR", str(temp_dir))  # Tune's file locks too (else /tmp/_ray_lockfiles)
        ray.init(
            address="local",
            num_cpus=num_cpus,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            _temp_dir=str(temp_dir),
            logging_level=logging.WARNING,
        )
    log.info("Ray up in %.1f s (%s)", time.monotonic() - t0, address or "a new local instance")
    try:
        yield ray
    finally:
        ray.shutdown()
        if "RAY_TMPDIR" not in environ_before:
            os.environ.pop("RAY_TMPDIR", None)


def _tune_trial(param: dict[str, Any], storage: str) -> None:
    """A Tune trial: the trial named in ``param`` (read from the shared experiment.json), reporting each
    checkpoint to Tune with a Tune checkpoint that points at the run folder."""
    from ray import tune

    storage_path = Path(storage)
    trial = trial_named(storage_path, param["trial"])
    restored = tune.get_checkpoint()
    if restored is not None:
        log.info("Tune restarts trial %s from its checkpoint %s", trial["name"], restored.path)
    _run_reporting(trial, storage_path, None)


def _tuner(trial_fn, storage: Path, resume: bool, max_failures: int, new, checkpoints_kept: int = 1):
    """The Tune experiment in ``<storage>/tune``: restored when ``resume`` finds one (its errored trials
    run again from their checkpoints), else a new one from ``new() -> (param_space, TuneConfig)``; each
    trial takes one CPU and is retried ``max_failures`` times."""
    from ray import tune

    trainable = tune.with_resources(tune.with_parameters(trial_fn, storage=str(storage)), {"cpu": 1})
    tune_dir = storage / "tune"
    if resume and tune.Tuner.can_restore(str(tune_dir)):
        return tune.Tuner.restore(str(tune_dir), trainable, resume_errored=True)
    param_space, tune_config = new()
    run_config = tune.RunConfig(
        name="tune",
        storage_path=str(storage),
        failure_config=tune.FailureConfig(max_failures=max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=checkpoints_kept),
        verbose=0,
    )
    return tune.Tuner(trainable, param_space=param_space, tune_config=tune_config, run_config=run_config)


def sweep_on_ray(storage: Path, names: list[str], parallel: int | None, max_failures: int, resume: bool) -> list[str]:
    """Run (or continue) the experiment's trials as Tune trials; returns the names of trials that failed."""
    from ray import tune

    def new() -> tuple[dict, Any]:
        return {"trial": tune.grid_search(names)}, tune.TuneConfig(max_concurrent_trials=parallel, reuse_actors=False)

    grid = _tuner(_tune_trial, storage, resume, max_failures, new).fit()
    failed = []
    for result in grid:
        if result.error is not None:
            name = result.config["trial"]
            failed.append(name)
            log.error("Trial %s failed: %s", name, str(result.error).strip().splitlines()[-1][:300])
    return failed


def sweep_locally(storage: Path, names: list[str], parallel: int, max_failures: int) -> list[str]:
    """The trials as subprocesses of this script (``trial``), ``parallel`` at a time; a failed one is
    started again (it continues from its newest checkpoint) up to ``max_failures`` times."""
    pending = list(names)
    return run_subprocess_trials(storage, parallel, max_failures, lambda: pending.pop(0) if pending else None)


def run_subprocess_trials(
    storage: Path,
    parallel: int,
    max_failures: int,
    next_trial: Callable[[], str | None],
    finished: Callable[[str, bool], None] | None = None,
) -> list[str]:
    """Run trials as subprocesses, ``parallel`` at a time, asking ``next_trial()`` for the next name (None:
    no more) and telling ``finished(name, ok)``; a failed trial is started again up to ``max_failures``
    times. Ctrl-C or SIGTERM stops every running trial with SIGTERM, which saves its checkpoint first.
    Returns the trials that failed."""
    runner = _SubprocessTrials(storage, parallel)
    retry: list[str] = []
    failures: dict[str, int] = {}
    failed: list[str] = []
    more = True
    with _sigterm_as_interrupt():
        try:
            while True:
                while len(runner.running) < parallel and (retry or more):
                    name = retry.pop(0) if retry else next_trial()
                    if name is None:
                        more = False
                    else:
                        runner.start(name)
                if not runner.running:
                    return failed
                for name, code in runner.wait_for_exits():
                    if code != 0 and failures.get(name, 0) < max_failures:
                        failures[name] = failures.get(name, 0) + 1
                        log.warning("Trial %s exited with %d: retry %d of %d", name, code, failures[name], max_failures)
                        retry.append(name)
                        continue
                    if code != 0:
                        failed.append(name)
                        log.error("Trial %s failed (exit %d); its output: %s", name, code, runner.log_of(name))
                    if finished is not None:
                        finished(name, code == 0)
        except KeyboardInterrupt:
            stopped = runner.stop_all()
            raise ConfigError(
                f"stopped: {stopped} running trial(s) saved a checkpoint; continue with --resume --storage {storage}"
            ) from None


class _SubprocessTrials:
    """The local backend's running trials: ``python -m user.scale trial`` per trial, output in logs/."""

    def __init__(self, storage: Path, parallel: int):
        self.storage = storage
        (storage / "logs").mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ)
        self.env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // parallel)))
        self.running: dict[str, subprocess.Popen] = {}

    def log_of(self, name: str) -> Path:
        return self.storage / "logs" / f"{name}.log"

    def start(self, name: str) -> None:
        command = [sys.executable, "-m", "user.scale", "trial", "--storage", str(self.storage), "--trial", name]
        with open(self.log_of(name), "a", encoding="utf-8") as out:
            self.running[name] = subprocess.Popen(command, cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        log.info("Trial %s started (pid %d)", name, self.running[name].pid)

    def wait_for_exits(self) -> list[tuple[str, int]]:
        time.sleep(0.5)
        exited = [(name, proc.returncode) for name, proc in self.running.items() if proc.poll() is not None]
        for name, code in exited:
            del self.running[name]
            if code == 0:
                log.info("Trial %s finished", name)
        return exited

    def stop_all(self) -> int:
        for proc in self.running.values():
            proc.terminate()  # the trainer's SIGTERM: a checkpoint at the next safe point, then exit
        for proc in self.running.values():
            proc.wait()
        return len(self.running)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends the local runner as Ctrl-C does (main thread only; elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def write_sampled_trial(storage: Path, trial: dict[str, Any]) -> None:
    (storage / "trials").mkdir(parents=True, exist_ok=True)
    path = storage / "trials" / f"{trial['name']}.json"
    if not path.exists():  # a retried or resumed trial keeps the values it was sampled with
        atomic_write_text(path, json.dumps(trial, indent=2, default=list))


def _tune_search_trial(param: dict[str, Any], storage: str) -> None:
    """A Tune trial of ``search``: the values OptunaSearch sampled, as a trainer run (see _tune_trial)."""
    from ray import tune

    storage_path = Path(storage)
    name = f"trial_{tune.get_context().get_trial_id()}"
    write_sampled_trial(storage_path, sampled_trial(read_experiment(storage_path), name, param))
    _tune_trial({"trial": name}, storage)


def tune_space(space: dict[str, Any]) -> dict[str, Any]:
    from ray import tune

    make = {
        "uniform": lambda s: tune.uniform(s["low"], s["high"]),
        "loguniform": lambda s: tune.loguniform(s["low"], s["high"]),
        "int": lambda s: tune.randint(s["low"], s["high"] + 1),  # Tune's upper end is excluded
        "choice": lambda s: tune.choice(s["choices"]),
    }
    return {key: make[spec["kind"]](spec) for key, spec in space.items()}


def search_on_ray(
    storage: Path, experiment: dict[str, Any], parallel: int | None, max_failures: int, resume: bool, seed: int
) -> list[str]:
    """The search as Tune trials sampled by Optuna's TPE (OptunaSearch), maximising ``metric``."""
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    def new() -> tuple[dict, Any]:
        searcher = OptunaSearch(metric=experiment["metric"], mode="max", seed=seed)
        config = tune.TuneConfig(
            search_alg=searcher, num_samples=experiment["n_trials"], max_concurrent_trials=parallel
        )
        return tune_space(experiment["space"]), config

    tuner = _tuner(_tune_search_trial, storage, resume, max_failures, new)
    return [f"trial_{r.metrics.get('trial_id', '?')}" for r in tuner.fit() if r.error is not None]


def search_locally(storage: Path, experiment: dict[str, Any], parallel: int, max_failures: int, seed: int) -> list[str]:
    """The search with Optuna's TPE directly (its study in ``optuna.db``, so --resume continues it), the
    trials as subprocesses like a local sweep's; a trial's value is its last report's ``metric``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name="search",
        storage=f"sqlite:///{storage / 'optuna.db'}",
        load_if_exists=True,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
    )
    distributions = {
        key: (
            optuna.distributions.CategoricalDistribution([json.dumps(c) for c in spec["choices"]])
            if spec["kind"] == "choice"
            else optuna.distributions.IntDistribution(spec["low"], spec["high"])
            if spec["kind"] == "int"
            else optuna.distributions.FloatDistribution(spec["low"], spec["high"], log=spec["kind"] == "loguniform")
        )
        for key, spec in experiment["space"].items()
    }
    numbers: dict[str, int] = {}
    unfinished = [t.number for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]  # a stopped driver

    def next_trial() -> str | None:
        if unfinished:
            number = unfinished.pop(0)
        elif len(study.trials) < experiment["n_trials"]:
            trial = study.ask(distributions)
            values = {
                k: json.loads(v) if experiment["space"][k]["kind"] == "choice" else v for k, v in trial.params.items()
            }
            number = trial.number
            write_sampled_trial(storage, sampled_trial(experiment, f"trial_{number:03d}", values))
        else:
            return None
        numbers[f"trial_{number:03d}"] = number
        return f"trial_{number:03d}"

    def finished(name: str, ok: bool) -> None:
        rows = read_reports(reports_of(storage, name))
        value = rows[-1].get(experiment["metric"]) if rows else None
        if ok and value is not None:
            study.tell(numbers[name], value)
        else:
            study.tell(numbers[name], state=optuna.trial.TrialState.FAIL)

    return run_subprocess_trials(storage, parallel, max_failures, next_trial, finished)


def run_search(
    storage: Path,
    experiment: dict[str, Any] | None,
    backend: str,
    parallel: int | None,
    max_failures: int = 2,
    resume: bool = False,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Write the search's experiment (or continue the one in ``storage``), run it, write results.csv and
    the plot. Needs Optuna (requirements-scale.txt)."""
    if importlib.util.find_spec("optuna") is None:
        raise ConfigError("search needs Optuna: pip install -r requirements-scale.txt")
    if parallel is not None and parallel < 1:
        raise ConfigError(f"--parallel must be a positive integer, got {parallel}")
    if resume:
        experiment = read_experiment(storage)
        if experiment.get("kind") != "search":
            raise ConfigError(f"--resume: {storage} holds a {experiment.get('kind')}, not a search")
    else:
        start_experiment(storage, experiment)
    assert experiment is not None
    log.info(
        "Search of %d trials over %s in %s (%s backend)",
        experiment["n_trials"],
        ", ".join(experiment["space"]),
        storage,
        backend,
    )
    if backend == "ray":
        failed = search_on_ray(storage, experiment, parallel, max_failures, resume, seed)
    else:
        failed = search_locally(storage, experiment, parallel or (os.cpu_count() or 1), max_failures, seed)
    rows = finish_results(storage, sampled_trial_names(storage))
    if failed:
        raise ConfigError(f"{len(failed)} trial(s) failed: {', '.join(failed)}; fix the cause, then --resume")
    return rows


# --- pbt: population-based training, mutating only what a resume accepts -----------------------------
def plan_pbt(config: dict, population: int, mutations: list[str]) -> dict[str, Any]:
    """The population (``member<i>``, seeds ``seed + i``) and the mutated values' space; a key that a
    ``--resume`` may not change (user/resume.py's frozen keys: sizes, env, reward, seed, ...) is refused."""
    from user.resume import check_resumable_changes
    from user.train_agent import validate_config

    if population < 2:
        raise ConfigError(f"--population must be at least 2 (PBT copies the better members), got {population}")
    if not mutations:
        raise ConfigError("pbt needs at least one --mutate key.path=KIND:ARGS")
    space = dict(parse_param(item) for item in mutations)
    for key, spec in space.items():
        sample = spec["choices"][-1] if spec["kind"] == "choice" else spec["high"]
        changed = validate_config(apply_overrides(copy.deepcopy(config), [f"{key}={json.dumps(sample)}"]))
        try:
            check_resumable_changes(config, changed)
        except ConfigError:
            raise ConfigError(f"--mutate {key}: a resumed run cannot change it, so PBT cannot mutate it") from None
    seed = int(config["training"]["seed"])
    members = plan_sweep(config, [seed + i for i in range(population)], None)
    for i, member in enumerate(members):
        member["name"] = f"member{i}"
    return {"kind": "pbt", "trials": members, "space": space}


def adopt_checkpoint(run_dir: Path, source: Path, step: int) -> None:
    """PBT's exploit: this member continues ``source``'s run from its checkpoint at ``step``. Its own folder
    is moved aside whole; the source's files up to ``step`` are copied (checkpoints newer than ``step`` are
    not, so a resume takes ``step``; the logs are cut back to it by the resume)."""
    from environment.self_play import snapshot_steps

    set_aside(run_dir)
    run_dir.mkdir(parents=True)
    for path in sorted(source.iterdir()):
        if not path.is_file() or path.name == RunFolderLock.NAME or path.name.startswith("."):
            continue
        if path.name.startswith("rl_model_") and snapshot_steps(path) > step:
            continue
        shutil.copy2(path, run_dir / path.name)
    log.info("PBT: %s continues %s from step %s", run_dir.name, source.name, f"{step:,}")


def pbt_member(storage: Path, trial_id: str, planned: str) -> str:
    """The member a Tune trial is, for good: PBT's exploit copies the better trial's whole config, our
    ``trial`` key included, so the name is kept per Tune trial id from its first start."""
    path = storage / "members" / f"{trial_id}.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))["member"]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"member": planned}))
    return planned


def _tune_pbt_trial(param: dict[str, Any], storage: str) -> None:
    """A PBT member: its run with the current mutated values (``--set`` on resume); after an exploit, Tune
    hands it another member's checkpoint pointer, whose run it adopts first."""
    from ray import tune

    storage_path = Path(storage)
    experiment = read_experiment(storage_path)
    trial = trial_named(storage_path, pbt_member(storage_path, tune.get_context().get_trial_id(), param["trial"]))
    values = {key: param[key] for key in experiment["space"]}
    values = {key: getattr(v, "item", lambda v=v: v)() for key, v in values.items()}
    overrides = [f"{key}={json.dumps(value)}" for key, value in values.items()]
    run_dir = run_dir_of(storage_path, trial["name"])
    restored = tune.get_checkpoint()
    if restored is not None:
        pointer = json.loads((Path(restored.path) / "pointer.json").read_text(encoding="utf-8"))
        if Path(pointer["run_dir"]) != run_dir:
            adopt_checkpoint(run_dir, Path(pointer["run_dir"]), int(pointer["step"]))
    trial = {**trial, "overrides": overrides, "config": apply_overrides(trial["config"], overrides), "params": values}
    _run_reporting(trial, storage_path, overrides)


def _run_reporting(trial: dict[str, Any], storage: Path, resume_overrides: list[str]) -> None:
    """run_trial with Tune reporting (see _tune_trial), resuming with ``resume_overrides``."""
    from ray import tune

    pointer = storage / "pointers" / trial["name"]

    def report(row: dict[str, Any], summary: dict[str, Any]) -> None:
        pointer.mkdir(parents=True, exist_ok=True)
        run_dir = str(run_dir_of(storage, trial["name"]))
        atomic_write_text(pointer / "pointer.json", json.dumps({"run_dir": run_dir, **row}))
        metrics = {k: (math.nan if row[k] is None else row[k]) for k in RESULT_COLUMNS[3:-1]}
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(pointer)))

    run_trial(trial, storage, report, resume_overrides)


def pbt_on_ray(
    storage: Path,
    experiment: dict[str, Any],
    interval: int,
    metric: str,
    quantile: float,
    max_failures: int,
    resume: bool,
    synch: bool = False,
) -> list[str]:
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining

    def new() -> tuple[dict, Any]:
        space = tune_space(experiment["space"])
        scheduler = PopulationBasedTraining(
            time_attr="step",
            perturbation_interval=interval,
            hyperparam_mutations=space,
            quantile_fraction=quantile,
            metric=metric,
            mode="max",
            synch=synch,
        )
        names = [t["name"] for t in experiment["trials"]]
        config = tune.TuneConfig(scheduler=scheduler, reuse_actors=False)
        return {"trial": tune.grid_search(names), **space}, config

    # PBT copies older checkpoints (tiny pointers to run folders), so it keeps more of them.
    tuner = _tuner(_tune_pbt_trial, storage, resume, max_failures, new, checkpoints_kept=5)
    return [r.config["trial"] for r in tuner.fit() if r.error is not None]


def run_pbt(
    storage: Path,
    experiment: dict[str, Any] | None,
    interval: int,
    metric: str = "worst_win_rate",
    quantile: float = 0.25,
    max_failures: int = 2,
    resume: bool = False,
    synch: bool = False,
) -> list[dict[str, Any]]:
    """PBT on Ray (it must be up): the members train, and at every ``interval`` steps the worst
    ``quantile`` continue the best ones' checkpoints with mutated values; results.csv and the plot.
    ``synch``: every member waits at each interval for the others (each then restarts from its checkpoint)."""
    if metric not in SEARCH_METRICS:
        raise ConfigError(f"--metric {metric!r}: choose from {', '.join(SEARCH_METRICS)}")
    if interval < 1:
        raise ConfigError(f"--interval must be a positive number of steps, got {interval}")
    if not 0 < quantile <= 0.5:
        raise ConfigError(f"--quantile must be in (0, 0.5], got {quantile}")
    if resume:
        experiment = read_experiment(storage)
    else:
        start_experiment(storage, experiment)
    assert experiment is not None
    names = [t["name"] for t in experiment["trials"]]
    log.info("PBT of %d members over %s in %s", len(names), ", ".join(experiment["space"]), storage)
    failed = pbt_on_ray(storage, experiment, interval, metric, quantile, max_failures, resume, synch)
    rows = finish_results(storage, names)
    if failed:
        raise ConfigError(f"{len(failed)} member(s) failed: {', '.join(failed)}; fix the cause, then --resume")
    return rows


# ==================================================================================
# === Commands ===
# ==================================================================================
def storage_of(args: argparse.Namespace) -> Path:
    return Path(args.storage or REPO / "checkpoints" / "scale" / args.command).expanduser().resolve()


def run_sweep(
    storage: Path,
    trials: list[dict[str, Any]] | None,
    backend: str,
    parallel: int | None,
    max_failures: int = 2,
    resume: bool = False,
) -> list[dict[str, Any]]:
    """Write the experiment (or, with ``resume``, continue the one in ``storage``), run its trials on
    ``backend`` (Ray must be up for "ray": :func:`ray_session`), then write results.csv and the plot."""
    if parallel is not None and parallel < 1:
        raise ConfigError(f"--parallel must be a positive integer, got {parallel}")
    if max_failures < 0:
        raise ConfigError(f"--max-failures must be 0 or more, got {max_failures}")
    if resume:
        trials = read_experiment(storage)["trials"]
    else:
        write_experiment(storage, "sweep", trials or [])
    names = [t["name"] for t in trials or []]
    log.info("Sweep of %d trials in %s (%s backend)", len(names), storage, backend)
    if backend == "ray":
        failed = sweep_on_ray(storage, names, parallel, max_failures, resume)
    else:
        failed = sweep_locally(storage, names, parallel or (os.cpu_count() or 1), max_failures)
    rows = finish_results(storage, names)
    if failed:
        raise ConfigError(f"{len(failed)} trial(s) failed: {', '.join(failed)}; fix the cause, then --resume")
    return rows


def _cmd_sweep(args: argparse.Namespace) -> int:
    storage = storage_of(args)
    backend = pick_backend(args.backend, args.ray_address)
    check_override_items(args.set or [], "--set")
    trials = None
    if args.resume:
        if args.grid or args.seeds or args.set or args.config or args.config_file:
            raise ConfigError("--resume continues the sweep in --storage with its own trials; drop the grid flags")
    else:
        from user import train_agent as T

        seeds = parse_seeds(args.seeds)
        for items in args.grid or []:
            check_override_items(items, "--grid")
        args_for_config = argparse.Namespace(config=args.config, config_file=args.config_file, set=args.set)
        trials = plan_sweep(T.resolve_cli_config(args_for_config), seeds, args.grid)
    run = functools.partial(run_sweep, storage, trials, backend, args.parallel, args.max_failures, args.resume)
    return _print_outcome(storage, _on_backend(args, backend, run), "trial")


def _on_backend(args: argparse.Namespace, backend: str, run: Callable[[], list]) -> list:
    """``run()``, inside a Ray session (a new local Ray, or --ray-address's) when the backend is Ray."""
    if backend != "ray":
        return run()
    with ray_session(args.ray_address, args.num_cpus, Path(args.ray_temp_dir)):
        return run()


def _print_outcome(storage: Path, rows: list, role: str, describe: Callable[[str], str] = lambda name: "") -> int:
    """Name the best trial (the best worst-bot win rate at its newest evaluation) and where the results went."""
    best = best_trial(rows)
    if best:
        print(f"best {role}: {best}{describe(best)} ({run_dir_of(storage, best)})")
    print(f"wrote {storage / 'results.csv'} and {storage / 'results.png'}")
    return 0


def _new_plan_base(args: argparse.Namespace, searched: list[str] | None, flag: str, what: str) -> dict | None:
    """The base config of a new search or PBT, with ``--set`` and the searched values checked
    before anything starts; None on ``--resume``, which continues the plan kept in --storage."""
    if args.resume:
        if searched or args.set or args.config or args.config_file:
            raise ConfigError(f"--resume continues the {what} kept in --storage; drop {flag}/--set/--config")
        return None
    from user import train_agent as T

    check_override_items(args.set or [], "--set")
    for item in searched or []:
        parse_param(item)  # a bad value stops before the config is built
    return T.resolve_cli_config(argparse.Namespace(config=args.config, config_file=args.config_file, set=args.set))


def _cmd_search(args: argparse.Namespace) -> int:
    storage = storage_of(args)
    backend = pick_backend(args.backend, args.ray_address)
    base = _new_plan_base(args, args.param, "--param", "search")
    experiment = None if base is None else plan_search(base, args.param or [], args.trials, args.metric)
    run = functools.partial(
        run_search, storage, experiment, backend, args.parallel, args.max_failures, args.resume, args.search_seed
    )
    rows = _on_backend(args, backend, run)
    return _print_outcome(storage, rows, "trial", lambda name: " " + json.dumps(trial_named(storage, name)["params"]))


def _cmd_pbt(args: argparse.Namespace) -> int:
    storage = storage_of(args)
    backend = pick_backend(args.backend, args.ray_address)
    if backend != "ray":
        raise ConfigError(
            "pbt runs on Ray only (pip install -r requirements-scale.txt); without it, use sweep or search"
        )
    base = _new_plan_base(args, args.mutate, "--mutate", "PBT")
    experiment = None if base is None else plan_pbt(base, args.population, args.mutate or [])
    run = functools.partial(
        run_pbt,
        storage,
        experiment,
        args.interval,
        args.metric,
        args.quantile,
        args.max_failures,
        args.resume,
        args.synch,
    )
    return _print_outcome(storage, _on_backend(args, backend, run), "member")


def _cmd_trial(args: argparse.Namespace) -> int:
    storage = Path(args.storage).resolve()
    trial = trial_named(storage, args.trial)
    run_trial(trial, storage)
    step = newest_checkpoint_step(run_dir_of(storage, trial["name"]))
    if step is None or step < trial["config"]["training"]["total_timesteps"]:  # stopped by a signal: not done
        log.error("Trial %s stopped at step %s, before its last step; it continues from there", trial["name"], step)
        return 3
    return 0


def _rate_row_task(players: list, row: int, matches: int, max_timesteps: int, crash_marker: str | None = None):
    """One row of the league's round robin, in a Ray worker. ``crash_marker`` (tests): the first task to
    run kills its worker process once, as a machine failure would; Ray retries the task."""
    import torch

    torch.set_num_threads(1)  # one CPU per task
    if crash_marker and not Path(crash_marker).exists():
        Path(crash_marker).write_text(f"killed the worker of row {row}\n", encoding="utf-8")
        os._exit(1)
    from user.modes import league_row
    from user.train_agent import load_agent

    return league_row(players, row, matches, max_timesteps, load_agent)


def rate_runs(
    run_dirs: list[Path],
    storage: Path,
    backend: str,
    matches: int = 4,
    max_timesteps: int | None = None,
    snapshots: int = 6,
    resume: bool = False,
    crash_marker: str | None = None,
) -> list[dict[str, Any]]:
    """The league table of ``run_dirs`` (their newest ``snapshots`` valid snapshots) and the roster, the
    rows played locally or as Ray tasks, applied in the league's canonical order; each finished row is
    kept in ``rate_rows/`` (``resume`` reuses the rows of the same plan)."""
    from user.modes import league_participants, league_row, league_table, write_league_table
    from user.monitoring import MATCH_FRAMES

    for flag, value in (("--episodes", matches), ("--max-timesteps", max_timesteps), ("--snapshots", snapshots)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be a positive integer, got {value}")
    max_timesteps = max_timesteps or MATCH_FRAMES
    players = league_participants([Path(r).expanduser().resolve() for r in run_dirs], snapshots)
    plan = {"players": [dataclasses.asdict(p) for p in players], "matches": matches, "max_timesteps": max_timesteps}
    rows_dir = storage / "rate_rows"
    if (storage / "rate.json").exists():
        if not resume:
            raise ConfigError(
                f"{storage} already holds a rating: continue it with --resume, or choose another --storage"
            )
        if json.loads((storage / "rate.json").read_text(encoding="utf-8")) != plan:
            raise ConfigError(
                f"--resume: {storage / 'rate.json'} rates other players or settings; choose another --storage"
            )
    elif resume:
        raise ConfigError(f"--resume: {storage} holds no rating (no rate.json)")
    rows_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(storage / "rate.json", json.dumps(plan, indent=2))
    n_rows = len(players) - 1
    rows: list[dict[str, list[str]] | None] = [None] * n_rows
    for i in range(n_rows):
        with contextlib.suppress(FileNotFoundError):
            rows[i] = json.loads((rows_dir / f"{i}.json").read_text(encoding="utf-8"))
    todo = [i for i in range(n_rows) if rows[i] is None]
    log.info("Rating %d players: %d of %d rows to play (%s backend)", len(players), len(todo), n_rows, backend)
    if backend == "ray":
        import ray

        task = ray.remote(num_cpus=1, max_retries=3)(_rate_row_task)
        futures = {task.remote(players, i, matches, max_timesteps, crash_marker): i for i in todo}
        pending = list(futures)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            i = futures[done[0]]
            try:
                rows[i] = ray.get(done[0])
            except ray.exceptions.RayError as exc:  # the task failed after its retries: one line, the cause's
                cause = str(exc).strip().splitlines()[-1][:300]
                raise ConfigError(f"rate: row {i} ({players[i].name}) failed: {cause}; --resume replays it") from None
            atomic_write_text(rows_dir / f"{i}.json", json.dumps(rows[i]))
    else:
        from user.train_agent import load_agent

        for i in todo:
            rows[i] = league_row(players, i, matches, max_timesteps, load_agent)
            atomic_write_text(rows_dir / f"{i}.json", json.dumps(rows[i]))
    table = league_table(players, rows)  # type: ignore[arg-type]
    write_league_table(table, storage / "league.csv")
    return table


def _cmd_rate(args: argparse.Namespace) -> int:
    storage = storage_of(args)
    backend = pick_backend(args.backend, args.ray_address)
    t0 = time.monotonic()
    kwargs = {"matches": args.episodes, "max_timesteps": args.max_timesteps, "snapshots": args.snapshots}
    if backend == "ray":
        with ray_session(args.ray_address, args.num_cpus, Path(args.ray_temp_dir)):
            table = rate_runs(args.runs, storage, backend, resume=args.resume, **kwargs)
    else:
        table = rate_runs(args.runs, storage, backend, resume=args.resume, **kwargs)
    print(f"Round robin of {len(table)} agents ({time.monotonic() - t0:.1f} s):")
    print(format_table(table))
    print(f"wrote {storage / 'league.csv'}")
    return 0


# ==================================================================================
# === league: role learners and one league actor (user/league.py) ===
# ==================================================================================
LEAGUE_ACTOR = "league"
LEAGUE_NAMESPACE = "warehouse_brawl"


def parse_segments(items: list[str] | None) -> dict[str, int]:
    """``--segments main=4 main_exploiter=4`` as {role: count} (default: main and main exploiter, 4 each)."""
    from user.league import ROLES

    if not items:
        return {"main": 4, "main_exploiter": 4}
    out: dict[str, int] = {}
    for item in items:
        role, _, count = item.partition("=")
        if role not in ROLES or not count.isdigit() or int(count) < 1 or role in out:
            raise ConfigError(f"--segments expects ROLE=COUNT once per role ({', '.join(ROLES)}), got {item!r}")
        out[role] = int(count)
    return out


def pid_file(storage: Path, name: str) -> Path:
    """Where a league process writes its pid (the soak benchmark kills them)."""
    return storage / "pids" / f"{name}.pid"


def write_pid(storage: Path, name: str) -> None:
    path = pid_file(storage, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, f"{os.getpid()}\n")


class LeagueActor:
    """The league in a Ray actor: Ray restarts it after a crash with the same arguments, and the new
    one reloads league.json (user/league.py)."""

    def __init__(self, storage: str, rules: dict[str, Any]):
        from user.league import League, LeagueRules

        write_pid(Path(storage), LEAGUE_ACTOR)
        self.league = League(storage, LeagueRules(**rules))

    def plan(self, role: str) -> dict[str, Any]:
        return self.league.plan(role)

    def report(self, role: str, segment: int, step: int, checkpoint: str, results: dict[str, list[int]]):
        return self.league.report(role, segment, step, checkpoint, results)


class _RayLeagueClient:
    """A learner's view of the league actor: each call blocks; calls cut by the actor's crash are
    retried by Ray (max_task_retries) once it has restarted."""

    def __init__(self, actor):
        self.actor = actor

    def plan(self, role: str) -> dict[str, Any]:
        import ray

        return ray.get(self.actor.plan.remote(role))

    def report(self, role: str, segment: int, step: int, checkpoint: str, results: dict[str, list[int]]):
        import ray

        return ray.get(self.actor.report.remote(role, segment, step, checkpoint, results))


def _league_role_task(role: str, storage: str, base_config: dict, rules: dict[str, Any]) -> int:
    """One role's learner in a Ray worker (one CPU); started again by Ray when its worker dies."""
    import ray
    import torch

    from user.league import LeagueRules, run_role

    torch.set_num_threads(1)
    write_pid(Path(storage), role)
    actor = ray.get_actor(LEAGUE_ACTOR, namespace=LEAGUE_NAMESPACE)
    return run_role(role, Path(storage), _RayLeagueClient(actor), base_config, LeagueRules(**rules))


def league_trial_names(storage: Path) -> list[str]:
    """Every segment run the league has started, role by role (results.csv's trials)."""
    runs = storage / "runs"
    return sorted(f"{d.parent.name}/{d.name}" for d in runs.glob("*/g*_seg*") if d.is_dir() and "." not in d.name)


def run_league(
    storage: Path,
    base_config: dict | None,
    rules: dict[str, Any] | None,
    max_failures: int = 2,
    resume: bool = False,
) -> list[dict[str, Any]]:
    """The league on Ray (Ray must be up: :func:`ray_session`): the league actor and one task per role;
    returns the pool's Elo table and writes league.csv, results.csv and results.png."""
    import ray

    from user.league import League, LeagueRules

    if resume:
        experiment = read_experiment(storage)
        base_config, rules = experiment["config"], experiment["rules"]
    else:
        LeagueRules(**rules)  # a bad rule stops here, before anything is written
        start_experiment(storage, {"kind": "league", "config": base_config, "rules": rules, "trials": []})
    League(storage, LeagueRules(**rules))  # league.json exists (or is checked) before any learner asks
    actor = (
        ray.remote(LeagueActor)
        .options(
            name=LEAGUE_ACTOR,
            namespace=LEAGUE_NAMESPACE,
            num_cpus=0,
            max_restarts=-1,
            max_task_retries=-1,
        )
        .remote(str(storage), rules)
    )
    task = ray.remote(num_cpus=1, max_retries=max_failures, retry_exceptions=True)(_league_role_task)
    futures = {task.remote(role, str(storage), base_config, rules): role for role in rules["segments"]}
    failed = []
    try:
        for future, role in futures.items():
            try:
                ray.get(future)
            except ray.exceptions.RayError as exc:
                failed.append(role)
                log.error("League role %s failed: %s", role, str(exc).strip().splitlines()[-1][:300])
    finally:
        ray.kill(actor, no_restart=True)
    league = League(storage)
    table = league.table()
    write_csv(storage / "league.csv", ["name", "role", "step", "elo", "games"], table)
    finish_results(storage, league_trial_names(storage))
    print(format_table(table, "{:.1f}"))
    if failed:
        raise ConfigError(f"league role(s) {', '.join(failed)} failed; fix the cause, then --resume")
    return table


def _cmd_league(args: argparse.Namespace) -> int:
    storage = storage_of(args)
    backend = pick_backend(args.backend, args.ray_address)
    league_flags = [args.segments, args.segment_steps]
    if args.resume and (any(league_flags) or args.set or args.config or args.config_file):
        raise ConfigError(
            "--resume continues the league kept in --storage; drop --segments/--segment-steps/--set/--config"
        )
    if backend == "local":
        return _league_locally(args, storage)
    rules = None
    base = _new_plan_base(args, None, "--segments", "league")  # None on --resume (checked above)
    if base is not None:
        from user.train_agent import validate_config

        base = validate_config(base)
        rules = {
            "segments": parse_segments(args.segments),
            "segment_steps": args.segment_steps or int(base["training"]["total_timesteps"]) // 8,
            "eval_matches": args.eval_matches,
            "main_admit_win_rate": args.main_admit,
            "exploiter_admit_win_rate": args.exploiter_admit,
            "pool_share": args.pool_share,
        }
    with ray_session(args.ray_address, args.num_cpus, Path(args.ray_temp_dir)):
        run_league(storage, base, rules, args.max_failures, args.resume)
    print(f"wrote {storage / 'league.json'}, {storage / 'league.csv'}, {storage / 'results.csv'}")
    return 0


def _league_locally(args: argparse.Namespace, storage: Path) -> int:
    """Without Ray: one trainer run whose exploiter phases (controls.exploiter) train main exploiters
    against the main agent and admit the winners to its self-play pool, as a sweep of one trial."""
    if args.segments or args.segment_steps:
        raise ConfigError("--segments/--segment-steps need Ray (--backend ray); the local league is one run")
    trials = None
    base = _new_plan_base(args, None, "--segments", "league")  # None on --resume (checked above)
    if base is not None:
        items = [f"controls.exploiter.every_updates={args.exploiter_every}"]
        items.append(f"controls.exploiter.win_threshold={args.exploiter_admit}")
        trials = plan_sweep(base, None, [items])
        trials[0]["name"] = "main"
    rows = run_sweep(storage, trials, "local", 1, args.max_failures, args.resume)
    return _print_outcome(storage, rows, "run")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Many training runs and ratings at once, on Ray or on this machine (issue 17).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="See README.md, 'More than one machine'.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--ray-address",
        help="join this Ray cluster (host:port); default: start a new local Ray on this machine, bound to 127.0.0.1",
    )
    common.add_argument(
        "--storage", help="results and run folders (default checkpoints/scale/<subcommand>); shared on a cluster"
    )
    common.add_argument("--resume", action="store_true", help="continue what --storage holds")
    common.add_argument("--backend", choices=["ray", "local"], help="default: ray when installed, else local")
    common.add_argument("--num-cpus", type=int, help="CPUs of the local Ray instance (default: all)")
    common.add_argument(
        "--ray-temp-dir", default=str(DEFAULT_RAY_TEMP), help=f"the local Ray's files (default {DEFAULT_RAY_TEMP})"
    )

    # What every training subcommand takes: the trials' config and their retries.
    training = argparse.ArgumentParser(add_help=False)
    training.add_argument("--config", help="the trainer's config name (default: TRAIN_CONFIG)")
    training.add_argument("--config-file", help="load the base config from a YAML or JSON file")
    training.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="an override for every trial (the trainer's --set)"
    )
    training.add_argument("--max-failures", type=int, default=2, help="retries of a failed trial (default 2)")
    parallel = argparse.ArgumentParser(add_help=False)
    parallel.add_argument("--parallel", type=int, help="trials at once (default: as many as the CPUs allow, one each)")

    sweep = commands.add_parser(
        "sweep", parents=[common, training, parallel], help="a grid of seeds x --grid override sets"
    )
    sweep.add_argument("--seeds", nargs="+", metavar="SEED", help="seeds, e.g. --seeds 0 1 2 (default: the config's)")
    sweep.add_argument(
        "--grid",
        action="append",
        nargs="+",
        metavar="KEY=VALUE",
        help="one override set (the trainer's --set items); give --grid once per set",
    )
    sweep.set_defaults(func=_cmd_sweep)

    search = commands.add_parser(
        "search", parents=[common, training, parallel], help="hyperparameter search with Optuna's TPE"
    )
    search.add_argument(
        "--param",
        action="append",
        metavar="KEY=KIND:ARGS",
        help="a searched value: uniform:LOW:HIGH, loguniform:LOW:HIGH, int:LOW:HIGH or choice:[A, B]",
    )
    search.add_argument("--trials", type=int, default=8, help="trials to sample (default 8)")
    search.add_argument(
        "--metric",
        default="worst_win_rate",
        choices=SEARCH_METRICS,
        help="maximised, as of each trial's last checkpoint (default worst_win_rate)",
    )
    search.add_argument("--search-seed", type=int, default=0, help="the sampler's seed (default 0)")
    search.set_defaults(func=_cmd_search)

    pbt = commands.add_parser("pbt", parents=[common, training], help="population-based training (Ray only)")
    pbt.add_argument(
        "--mutate",
        action="append",
        metavar="KEY=KIND:ARGS",
        help="a mutated value, as search's --param; only values a --resume may change",
    )
    pbt.add_argument("--population", type=int, default=4, help="members (default 4), seeds seed..seed+N-1")
    pbt.add_argument("--interval", type=int, required=True, help="training steps between perturbations")
    pbt.add_argument("--metric", default="worst_win_rate", choices=SEARCH_METRICS, help="maximised")
    pbt.add_argument("--quantile", type=float, default=0.25, help="share of members replaced each time (default 0.25)")
    pbt.add_argument("--synch", action="store_true", help="members wait for each other at every interval")
    pbt.set_defaults(func=_cmd_pbt)

    rate = commands.add_parser("rate", parents=[common], help="a round robin with Elo over run folders and the roster")
    rate.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="run folders")
    rate.add_argument("--episodes", type=int, default=4, help="matches per pair (default 4, as --mode league)")
    rate.add_argument("--max-timesteps", type=int, default=None, help="frames per match (default: the game's 2700)")
    rate.add_argument("--snapshots", type=int, default=6, help="newest valid snapshots per run (default 6)")
    rate.set_defaults(func=_cmd_rate)

    league = commands.add_parser(
        "league", parents=[common, training], help="a main agent and exploiters, each its own learner (Ray)"
    )
    league.add_argument(
        "--segments",
        nargs="+",
        metavar="ROLE=COUNT",
        help="segments per role: main, main_exploiter, league_exploiter (default main=4 main_exploiter=4)",
    )
    league.add_argument(
        "--segment-steps", type=int, help="training steps per segment (default: the config's total / 8)"
    )
    league.add_argument("--eval-matches", type=int, default=8, help="matches per opponent after a segment (default 8)")
    league.add_argument(
        "--main-admit", type=float, default=0.5, help="win rate vs its pool opponents that admits main (default 0.5)"
    )
    league.add_argument(
        "--exploiter-admit", type=float, default=0.7, help="win rate vs its targets that admits an exploiter (0.7)"
    )
    league.add_argument("--pool-share", type=float, default=0.5, help="main's matches against the pool (default 0.5)")
    league.add_argument(
        "--exploiter-every",
        type=int,
        default=20,
        help="local backend: PPO updates between the trainer's exploiter phases (default 20)",
    )
    league.set_defaults(func=_cmd_league)

    trial = commands.add_parser(
        "trial", help="run one trial of the experiment in --storage (the local backend's worker)"
    )
    trial.add_argument("--storage", required=True)
    trial.add_argument("--trial", required=True, help="the trial's name in experiment.json")
    trial.set_defaults(func=_cmd_trial)
    return parser


def main(argv: list[str] | None = None) -> int:
    from user.monitoring import setup_logging

    args = build_parser().parse_args(argv)
    setup_logging()
    try:
        return args.func(args)
    except (ConfigError, CheckpointError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    # Ray pickles functions by module: run main from user.scale, never from __main__.
    from user import scale

    sys.exit(scale.main())
