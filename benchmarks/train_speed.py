"""Training speed: end-to-end steps/s (rollout + PPO update) of the trainer's agent types.

Usage::

    .venv/bin/python benchmarks/train_speed.py [--quick] [--steps N] [--types ppo,recurrent_ppo,...]
    .venv/bin/python benchmarks/train_speed.py --sweep [--type transformer_strategy] [--n-envs 4,8,16] \
        [--workers 1,2,4] [--env-only]
    .venv/bin/python benchmarks/train_speed.py --precision          # CUDA only
    .venv/bin/python benchmarks/train_speed.py --flops              # GFLOP per agent step, every config
    ... [--device auto|cpu|cuda] [--json PATH]

Main table: each agent type (``ppo``, ``recurrent_ppo``, ``transformer_strategy``) built by the
trainer's own ``build_model`` at the TEST config's sizes (``TRAIN_CONFIG_TEST`` agent and env
settings: 64 envs, n_steps 256, batch 2048, 10 epochs, ...), on a ``BrawlVecEnv`` whose opponent mix
is BasedAgent only (no snapshots needed; ``OpponentHistory`` around it for transformer_strategy, the
action space made ``float_multibinary()``, the config's reward). Alongside, the tournament template's
way of training: plain SB3 ``RecurrentPPO("MlpLstmPolicy", lstm_hidden_size=512)`` (sb3-contrib's
defaults otherwise: n_steps 128, batch 128, 10 epochs) on ONE ``SelfPlayWarehouseBrawl()`` in a
``DummyVecEnv`` ("template" row); every type's steps/s is also given as a ratio to it.

Statistic: steps/s = learner steps / wall time of ONE ``model.learn(N)`` call (rollouts and their
PPO updates, N rounded up to whole rollouts of n_steps x n_envs), after a warm-up ``learn`` of one
rollout followed by a one-epoch update (the same model: allocations, cuDNN autotuning and
torch.compile happen there). "rollout" is the share of the wall time spent collecting rollouts;
"CPU" is process CPU time / wall time (200% = two busy cores; well below the thread count means
other processes took the cores). ``--max-minutes`` bounds each measurement: when the warm-up
predicts that the N steps would take longer, fewer rollouts are timed (the note says so), and
when even one rollout + update would, the row is the warm-up's estimate, marked "est.".

``--sweep``: steps/s of one ``--type`` (default transformer_strategy at the CPU config's sizes,
``TRAIN_CONFIG_CPU``) for each ``--n-envs`` and each ``--workers`` count (default 1); batch_size must
divide n_steps x n_envs, so each row uses the largest divisor of it that is <= the config's
batch_size (shown). workers=1 is the in-process ``BrawlVecEnv``; workers=W > 1 is a
``WorkerVecEnv`` (``environment/worker_vec_env.py``: W processes each stepping a BrawlVecEnv over
n_envs/W matches, arrays in shared memory; pairs with W > n_envs are skipped), and "vs workers=1"
is the ratio to the workers=1 row of the same n_envs. Worker start-up is not timed.
``--sweep --env-only``: the same grid without a model: frames/s of stepping the env alone with
random actions (``ceil(--steps / n_envs)`` steps after a short warm-up, bounded by --max-minutes),
the backend's raw speed; "CPU" is the main process only (the workers' time is not in it).
``--precision``: steps/s of ``--type`` at the TEST sizes for training.precision fp32 / bf16 / fp16
and training.compile false / true (``build_model`` applies them through
``apply_precision_and_compile``); CUDA only, a clear skip line otherwise.

Threads: torch uses the trainer's ``pick_device`` setting (all cores, or OMP_NUM_THREADS if set).
"""

from __future__ import annotations

import argparse
import copy
import functools
import gc
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger

from benchmarks.flops import step_flops
from benchmarks.report import add_report_flags, finish
from environment.envs import BrawlVecEnv, SelfPlayWarehouseBrawl
from environment.self_play import OpponentsCfg
from environment.worker_vec_env import WorkerVecEnv
from user.config_tools import AGENT_TYPES, apply_overrides
from user.env_wrappers import OpponentHistory, float_multibinary
from user.train_agent import (
    CONFIGS,
    build_model,
    build_policy,
    build_reward_manager,
    pick_device,
    seed_everything,
    uses_history,
    validate_config,
)

TARGET_PPO_SPS = 5_000.0  # ppo at the TEST sizes on 2 CPU cores
REF_TEMPLATE_PPO_SPS = 1_060.0  # tournament template PPO on this 2-core CPU
REF_TEMPLATE_RPPO_SPS = 160.0  # tournament template RecurrentPPO on this 2-core CPU
TEMPLATE = "template"  # the plain-SB3 RecurrentPPO baseline, as a --types entry
BASED_ONLY = {"based": (1.0, "based")}
ENV_WARMUP_STEPS = 20  # env-only: untimed steps first (allocations, opponent grouping)


# ==================================================================================
# Measuring
# ==================================================================================
class PhaseTimer(BaseCallback):
    """Wall time spent collecting rollouts (the rest of ``learn`` is the PPO update)."""

    def __init__(self):
        super().__init__()
        self.rollout_s = 0.0
        self.rollouts = 0
        self._t0 = 0.0

    def _on_rollout_start(self) -> None:
        self._t0 = time.perf_counter()

    def _on_rollout_end(self) -> None:
        self.rollout_s += time.perf_counter() - self._t0
        self.rollouts += 1

    def _on_step(self) -> bool:
        return True


@dataclass
class Row:
    label: str
    agent_type: str
    n_envs: int
    n_steps: int
    batch_size: int
    n_epochs: int
    workers: int = 1  # 1: in-process BrawlVecEnv; more: a WorkerVecEnv with that many processes
    steps: int = 0  # learner steps timed
    wall_s: float = math.nan
    sps: float | None = None
    rollout_share: float | None = None  # of the wall time
    cpu_share: float | None = None  # process CPU time / wall time
    warmup_s: float = math.nan
    estimated: bool = False  # sps is the warm-up's estimate, nothing was timed
    vs_template: float | None = None
    vs_reference: float | None = None  # over the tournament figure for the same algorithm
    target: float | None = None
    note: str = ""
    error: str = ""

    @property
    def passed(self) -> bool | None:
        if self.target is None or self.sps is None:
            return None
        return self.sps >= self.target


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_learn(model, row: Row, steps: int, max_seconds: float, device: torch.device) -> Row:
    """Warm up, then time one ``model.learn`` of ``steps`` (whole rollouts) into ``row``."""
    rollout = model.n_steps * model.n_envs
    epochs = model.n_epochs
    warm = PhaseTimer()
    model.n_epochs = 1  # the warm-up: one rollout, one epoch of updates
    t0 = time.perf_counter()
    model.learn(1, callback=warm)
    _sync(device)
    row.warmup_s = time.perf_counter() - t0
    model.n_epochs = epochs
    update1_s = max(row.warmup_s - warm.rollout_s, 0.0)
    iteration_s = warm.rollout_s + epochs * update1_s  # predicted rollout + full update
    n_rollouts = max(1, math.ceil(steps / rollout))
    if iteration_s > max_seconds:
        row.estimated = True
        row.steps = rollout
        row.wall_s = iteration_s
        row.sps = rollout / iteration_s
        row.rollout_share = warm.rollout_s / iteration_s
        _add_note(
            row,
            f"est. from the warm-up (rollout {warm.rollout_s:.1f} s + {epochs} x {update1_s:.1f} s "
            "epoch): one iteration would exceed --max-minutes",
        )
        return row
    if n_rollouts * iteration_s > max_seconds:
        fit = max(1, int(max_seconds // iteration_s))
        _add_note(row, f"{fit} of {n_rollouts} rollouts timed (--max-minutes)")
        n_rollouts = fit
    timer = PhaseTimer()
    s0 = model.num_timesteps
    c0, t0 = time.process_time(), time.perf_counter()
    model.learn(n_rollouts * rollout, callback=timer, reset_num_timesteps=False)
    _sync(device)
    row.wall_s = time.perf_counter() - t0
    cpu = time.process_time() - c0
    row.steps = model.num_timesteps - s0
    row.sps = row.steps / row.wall_s
    row.rollout_share = timer.rollout_s / row.wall_s
    row.cpu_share = cpu / row.wall_s
    return row


def _add_note(row: Row, note: str) -> None:
    row.note = "; ".join(x for x in (row.note, note) if x)


def trainer_config(
    base: str, agent_type: str, overrides: list[str], device: str, n_envs: int | None = None
) -> tuple[dict, str]:
    """The named config for ``agent_type`` against BasedAgent only; a note if batch_size was adjusted."""
    config = copy.deepcopy(CONFIGS[base])
    config["agent"]["type"] = agent_type
    config["self_play"]["opponents"] = dict(BASED_ONLY)
    config["training"]["device"] = device
    config = apply_overrides(config, overrides)
    note = ""
    if n_envs is not None:
        config["env"]["n_envs"] = n_envs
        a = config["agent"]
        rollout = a["n_steps"] * n_envs
        batch = max(b for b in range(2, min(a["batch_size"], rollout) + 1) if rollout % b == 0)
        if batch != a["batch_size"]:
            note = f"batch_size {a['batch_size']} -> {batch} (must divide {a['n_steps']} x {n_envs})"
            a["batch_size"] = batch
    return validate_config(config), note


def make_venv(config: dict, workers: int = 1):
    """The config's env against BasedAgent only: in process (workers=1) or a WorkerVecEnv."""
    env_cfg, seed = config["env"], config["training"]["seed"]
    if workers == 1:
        return BrawlVecEnv(
            env_cfg["n_envs"],
            opponents=OpponentsCfg(dict(BASED_ONLY)),
            reward_manager=build_reward_manager(config["reward"]),
            max_timesteps=env_cfg["max_timesteps"],
            seed=seed,
        )
    return WorkerVecEnv.for_scripted_opponents(
        env_cfg["n_envs"],
        workers,
        dict(BASED_ONLY),
        max_timesteps=env_cfg["max_timesteps"],
        seed=seed,
        reward_manager_factory=functools.partial(build_reward_manager, config["reward"]),
    )


def measure_type(
    config: dict, label: str, steps: int, max_seconds: float, device: torch.device, note: str = "", workers: int = 1
) -> Row:
    a, env_cfg = config["agent"], config["env"]
    row = Row(
        label, a["type"], env_cfg["n_envs"], a["n_steps"], a["batch_size"], a["n_epochs"], workers=workers, note=note
    )
    seed_everything(config["training"]["seed"])
    venv = model = None
    try:
        venv = make_venv(config, workers)
        env = OpponentHistory(venv, a["sequence_length"]) if uses_history(a) else venv
        env.action_space = float_multibinary()
        model = build_model(config, env, device)
        tr = config["training"]
        if tr["precision"] != "fp32" or tr["compile"]:  # show that build_model applied them
            extractor = getattr(model.policy, "features_extractor", None)
            encoder = getattr(extractor, "encoder", None)
            compiled = getattr(encoder, "_compiled_call_impl", None) is not None
            _add_note(
                row,
                f"encoder autocast {getattr(extractor, 'autocast_dtype', None)}, LSTM autocast "
                f"{getattr(model.policy, 'autocast_dtype', None)}, encoder compiled {compiled}",
            )
        time_learn(model, row, steps, max_seconds, device)
    except Exception as exc:  # a row that fails is reported; the others still run
        row.error = f"{type(exc).__name__}: {str(exc)[:200]}"
    finally:
        del model
        if venv is not None:
            venv.close()  # stops a WorkerVecEnv's processes
        _release(device)
    return row


@dataclass
class EnvRow:
    """Env-only stepping speed of one (n_envs, workers) pair."""

    n_envs: int
    workers: int
    frames: int = 0  # learner frames timed (n_envs per step)
    wall_s: float = math.nan
    fps: float | None = None
    cpu_share: float | None = None  # main process CPU time / wall time
    vs_one: float | None = None  # over workers=1 at the same n_envs
    note: str = ""
    error: str = ""


def measure_env(config: dict, workers: int, steps: int, max_seconds: float) -> EnvRow:
    """Frames/s of stepping the config's env alone with random actions (no model)."""
    n = config["env"]["n_envs"]
    row, venv = EnvRow(n, workers), None
    try:
        venv = make_venv(config, workers)
        time_env_steps(venv, row, max(1, math.ceil(steps / n)), max_seconds)
    except Exception as exc:  # reported in the row
        row.error = f"{type(exc).__name__}: {str(exc)[:200]}"
    finally:
        if venv is not None:
            venv.close()
    return row


def time_env_steps(venv, row: EnvRow, n_steps: int, max_seconds: float) -> EnvRow:
    pool = np.random.default_rng(0).random((16, row.n_envs, 10)) < 0.5  # drawn before timing
    venv.reset()
    for k in range(ENV_WARMUP_STEPS):
        venv.step(pool[k % len(pool)])
    done = 0
    c0, t0 = time.process_time(), time.perf_counter()
    while done < n_steps:
        venv.step(pool[done % len(pool)])
        done += 1
        if done % 64 == 0 and time.perf_counter() - t0 > max_seconds:
            _add_note(row, f"{done} of {n_steps} steps timed (--max-minutes)")
            break
    row.wall_s = time.perf_counter() - t0
    row.frames = done * row.n_envs
    row.fps = row.frames / row.wall_s
    row.cpu_share = (time.process_time() - c0) / row.wall_s
    return row


def measure_template(steps: int, max_seconds: float, device: torch.device, seed: int = 0) -> Row:
    """Plain SB3 RecurrentPPO("MlpLstmPolicy", lstm_hidden_size=512) on ONE env in a DummyVecEnv."""
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    def make_env():
        env = SelfPlayWarehouseBrawl()
        # sb3-contrib's recurrent buffer keeps actions in the space's dtype and then fails on int8
        # MultiBinary in the Bernoulli log-probability; the env accepts floats.
        env.action_space = float_multibinary()
        return env

    seed_everything(seed)
    model = RecurrentPPO(
        "MlpLstmPolicy",
        DummyVecEnv([make_env]),
        policy_kwargs={"lstm_hidden_size": 512},
        verbose=0,
        seed=seed,
        device=device,
    )
    model.set_logger(Logger(folder=None, output_formats=[]))  # SB3's default leaves a folder in the temp dir
    row = Row(
        "template RecurrentPPO, 1 env (DummyVecEnv)",
        "MlpLstmPolicy",
        1,
        model.n_steps,
        model.batch_size,
        model.n_epochs,
    )
    try:
        time_learn(model, row, steps, max_seconds, device)
    except Exception as exc:  # reported in the row
        row.error = f"{type(exc).__name__}: {str(exc)[:200]}"
    finally:
        del model
        _release(device)
    row.vs_reference = row.sps / REF_TEMPLATE_RPPO_SPS if row.sps else None
    return row


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# ==================================================================================
# Report
# ==================================================================================
def device_line(device: torch.device) -> dict[str, str]:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        name = f"CUDA {props.name} ({props.total_memory / 2**30:.1f} GiB), torch {torch.__version__}"
    elif device.type == "mps":
        name = "Apple MPS"
    else:
        try:
            lines = Path("/proc/cpuinfo").read_text().splitlines()
            cpu = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "?")
        except OSError:
            cpu = platform.processor() or "?"
        name = f"CPU {cpu}, {os.cpu_count()} cores, torch {torch.__version__}"
    return {
        "device": name,
        "torch_threads": str(torch.get_num_threads()),
        "load_avg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _fmt_sps(row: Row) -> str:
    if row.error:
        return "error"
    return "—" if row.sps is None else f"{row.sps:,.0f}" + (" est." if row.estimated else "")


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f}%"


def _ratio(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}x"


def print_table(header: tuple[str, ...], cells: list[tuple[str, ...]], right: set[int]) -> None:
    widths = [max(len(c[k]) for c in [header, *cells]) for k in range(len(header))]

    def line(c: tuple[str, ...]) -> str:
        return "  ".join(c[k].rjust(widths[k]) if k in right else c[k].ljust(widths[k]) for k in range(len(c))).rstrip()

    print(line(header))
    print("  ".join("-" * w for w in widths))
    for c in cells:
        print(line(c))


def print_rows(rows: list[Row], first: str = "type", ratio: str = "vs template", workers: bool = False) -> None:
    """The results table; ``workers`` adds a "workers" column after n_envs (the sweep's)."""
    header = (
        first,
        "n_envs",
        "n_steps",
        "batch",
        "epochs",
        "steps",
        "wall s",
        "steps/s",
        "rollout",
        "CPU",
        ratio,
        "vs tournament",
        "target",
        "pass",
        "note",
    )
    cells = []
    for r in rows:
        passed = {None: "—", True: "PASS", False: "FAIL"}[r.passed]
        target = "—" if r.target is None else f">= {r.target:,.0f}"
        note = r.error or r.note
        cells.append(
            (
                r.label,
                str(r.n_envs),
                str(r.n_steps),
                str(r.batch_size),
                str(r.n_epochs),
                f"{r.steps:,}",
                "—" if math.isnan(r.wall_s) else f"{r.wall_s:.1f}",
                _fmt_sps(r),
                _pct(r.rollout_share),
                _pct(r.cpu_share),
                _ratio(r.vs_template),
                _ratio(r.vs_reference),
                target,
                passed,
                note,
            )
        )
    right = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
    if workers:
        header = (*header[:2], "workers", *header[2:])
        cells = [(*c[:2], str(r.workers), *c[2:]) for c, r in zip(cells, rows, strict=True)]
        right = {k + (k >= 2) for k in right} | {2}
    print_table(header, cells, right=right)


def print_env_rows(rows: list[EnvRow]) -> None:
    header = ("sweep", "n_envs", "workers", "frames", "wall s", "frames/s", "CPU (main)", "vs workers=1", "note")
    cells = [
        (
            f"n_envs={r.n_envs}",
            str(r.n_envs),
            str(r.workers),
            f"{r.frames:,}",
            "—" if math.isnan(r.wall_s) else f"{r.wall_s:.2f}",
            "error" if r.error else f"{r.fps:,.0f}",
            _pct(r.cpu_share),
            _ratio(r.vs_one),
            r.error or r.note,
        )
        for r in rows
    ]
    print_table(header, cells, right={1, 2, 3, 4, 5, 6, 7})


def sizes_line(config: dict) -> str:
    a, e = config["agent"], config["env"]
    return (
        f"latent_dim {a['latent_dim']}, {a['num_heads']} heads, {a['num_layers']} layers, sequence "
        f"{a['sequence_length']}, LSTM {a['lstm_hidden_size']}, net_arch {a['net_arch']}, n_envs {e['n_envs']}, "
        f"n_steps {a['n_steps']}, batch {a['batch_size']}, {a['n_epochs']} epochs"
    )


# ==================================================================================
# Modes
# ==================================================================================
def run_main_table(cfg: argparse.Namespace, device: torch.device) -> dict:
    types = cfg.types
    config_name = cfg.config or "test"
    base, _ = trainer_config(config_name, "ppo", cfg.set, cfg.device)
    print(
        f"Main table: config '{config_name}' sizes ({sizes_line(base)}), BasedAgent-only opponents"
        + (f"; overrides {cfg.set}" if cfg.set else "")
    )
    print(
        f"Targets: ppo >= {TARGET_PPO_SPS:,.0f} steps/s on 2 CPU cores. Reference figures: tournament template "
        f"PPO ≈ {REF_TEMPLATE_PPO_SPS:,.0f} steps/s, RecurrentPPO ≈ {REF_TEMPLATE_RPPO_SPS:,.0f} steps/s on "
        "this 2-core CPU."
    )
    print(flush=True)
    rows: list[Row] = []
    template: Row | None = None
    if TEMPLATE in types:
        template = measure_template(cfg.template_steps, cfg.max_minutes * 60, device)
        _progress(template)
    for agent_type in (t for t in types if t != TEMPLATE):
        config, _ = trainer_config(config_name, agent_type, cfg.set, cfg.device)
        row = measure_type(config, agent_type, cfg.steps, cfg.max_minutes * 60, device)
        if agent_type == "ppo":
            row.target = TARGET_PPO_SPS
            row.vs_reference = row.sps / REF_TEMPLATE_PPO_SPS if row.sps else None
        else:
            row.vs_reference = row.sps / REF_TEMPLATE_RPPO_SPS if row.sps else None
        rows.append(row)
        _progress(row)
    if template is not None:
        rows.append(template)
        for r in rows:
            if r.sps and template.sps:
                r.vs_template = r.sps / template.sps
    print()
    print_rows(rows)
    print(
        "vs tournament: ppo over the template PPO figure (1,060), the recurrent types and the template over the "
        "template RecurrentPPO figure (160)."
    )
    if device.type != "cpu":
        print(f"(the target and the reference figures are for 2 CPU cores; this ran on {device})")
    return {"mode": "main", "config": config_name, "overrides": cfg.set, "rows": [_row_dict(r) for r in rows]}


def sweep_grid(cfg: argparse.Namespace) -> list[tuple[int, int]]:
    """The (n_envs, workers) pairs to measure; a pair with more workers than envs is skipped."""
    skipped = [(n, w) for n in cfg.n_envs for w in cfg.workers if w > n]
    if skipped:
        print(f"skipped (more workers than envs): {', '.join(f'n_envs={n} workers={w}' for n, w in skipped)}")
    return [(n, w) for n in cfg.n_envs for w in cfg.workers if w <= n]


def _vs_one_worker(rows: list, speed: str, ratio: str) -> None:
    """Set ``ratio`` on each row: its ``speed`` over the workers=1 row of the same n_envs."""
    ones = {r.n_envs: getattr(r, speed) for r in rows if r.workers == 1}
    for r in rows:
        one, mine = ones.get(r.n_envs), getattr(r, speed)
        setattr(r, ratio, mine / one if (one and mine) else None)


def run_sweep(cfg: argparse.Namespace, device: torch.device) -> dict:
    config_name = cfg.config or "cpu"
    base, _ = trainer_config(config_name, cfg.type, cfg.set, cfg.device)
    if cfg.env_only:
        return run_env_sweep(cfg, config_name, base)
    print(
        f"Sweep of n_envs x workers {cfg.workers} for {cfg.type} at config '{config_name}' sizes "
        f"({sizes_line(base)}); batch_size per row: the largest divisor of n_steps x n_envs <= the config's"
        + (f"; overrides {cfg.set}" if cfg.set else "")
    )
    print(flush=True)
    rows = []
    for n, w in sweep_grid(cfg):
        config, note = trainer_config(config_name, cfg.type, cfg.set, cfg.device, n_envs=n)
        row = measure_type(config, f"n_envs={n}", cfg.steps, cfg.max_minutes * 60, device, note, workers=w)
        rows.append(row)
        _progress(row, workers=True)
    several = len(cfg.workers) > 1
    if several:
        _vs_one_worker(rows, "sps", "vs_template")
    print()
    print_rows(rows, first="sweep", ratio="vs workers=1" if several else "vs template", workers=True)
    best = max((r for r in rows if r.sps), key=lambda r: r.sps, default=None)
    if best is not None:
        print(
            f"fastest: {best.label} workers={best.workers} ({best.sps:,.0f} steps/s). More envs also change what "
            "each PPO update learns from: pick the fastest n_envs you are happy to train with."
        )
    result = {
        "mode": "sweep",
        "config": config_name,
        "type": cfg.type,
        "workers": cfg.workers,
        "rows": [_row_dict(r) for r in rows],
    }
    if several:
        result["note"] = "vs_template holds the ratio to workers=1 at the same n_envs"
    return result


def run_env_sweep(cfg: argparse.Namespace, config_name: str, base: dict) -> dict:
    e = base["env"]
    print(
        f"Env-only sweep of n_envs x workers {cfg.workers}: the env of config '{config_name}' (max_timesteps "
        f"{e['max_timesteps']}, BasedAgent-only opponents, the config's reward) stepped with random actions, no "
        f"model; {ENV_WARMUP_STEPS} warm-up steps, then ceil({cfg.steps} / n_envs) timed steps"
    )
    print(flush=True)
    rows = []
    for n, w in sweep_grid(cfg):
        config, _ = trainer_config(config_name, cfg.type, cfg.set, cfg.device, n_envs=n)
        row = measure_env(config, w, cfg.steps, cfg.max_minutes * 60)
        rows.append(row)
        what = row.error or f"{row.fps:,.0f} frames/s ({row.frames:,} frames in {row.wall_s:.2f} s)"
        print(f"  n_envs={n} workers={w}: {what}", flush=True)
    _vs_one_worker(rows, "fps", "vs_one")
    print()
    print_env_rows(rows)
    return {"mode": "env_only_sweep", "config": config_name, "workers": cfg.workers, "rows": [asdict(r) for r in rows]}


def run_precision(cfg: argparse.Namespace, device: torch.device) -> dict:
    if device.type != "cuda":
        print(
            f"--precision: SKIPPED: training.precision bf16/fp16 and this comparison need a CUDA GPU; "
            f"this machine trains on {device} (torch.cuda.is_available() = {torch.cuda.is_available()})"
        )
        return {"mode": "precision", "skipped": True, "reason": f"no CUDA (device {device})"}
    config_name = cfg.config or "test"
    base, _ = trainer_config(config_name, cfg.type, cfg.set, cfg.device)
    print(f"Precision / compile for {cfg.type} at config '{config_name}' sizes ({sizes_line(base)})")
    print(flush=True)
    rows = []
    for precision in ("fp32", "bf16", "fp16"):
        for compiled in (False, True):
            sets = [*cfg.set, f"training.precision={precision}", f"training.compile={str(compiled).lower()}"]
            config, _ = trainer_config(config_name, cfg.type, sets, cfg.device)
            row = measure_type(
                config, f"{precision} compile={str(compiled).lower()}", cfg.steps, cfg.max_minutes * 60, device
            )
            rows.append(row)
            _progress(row)
    fp32 = rows[0].sps
    for r in rows:
        r.vs_template = r.sps / fp32 if (r.sps and fp32) else None
    print()
    print_rows(rows, first="precision", ratio="vs fp32")
    print("(vs fp32: the ratio to fp32 without compile; compilation happens in the warm-up, which is not timed)")
    return {
        "mode": "precision",
        "config": config_name,
        "type": cfg.type,
        "rows": [_row_dict(r) for r in rows],
        "note": "vs_template holds the ratio to fp32 without compile",
    }


def run_flops(cfg: argparse.Namespace) -> dict:
    """GFLOP per agent step of every named config (benchmarks/flops.py), with the seed's full-window
    encoder beside each transformer config."""
    print("GFLOP per agent step, counted from the shapes (benchmarks/flops.py; matrix products only)\n")
    print(f"{'config':<20}{'type':<22}{'encoder':<13}{'rollout':>10}{'update':>10}{'total':>10}")
    rows = []
    for name in CONFIGS:
        config = validate_config(apply_overrides(copy.deepcopy(CONFIGS[name]), cfg.set))
        a = config["agent"]
        encoders = ("streaming", "full_window") if a["type"] == "transformer_strategy" else (a["encoder"],)
        for encoder in encoders:
            config["agent"]["encoder"] = encoder
            counted = step_flops(config, build_policy(config["agent"]))
            row = {"config": name, "type": a["type"], "encoder": encoder, "rollout_gflop": counted.rollout / 1e9}
            row.update(update_gflop=counted.update / 1e9, gflop_per_step=counted.total / 1e9)
            rows.append(row)
            shown = encoder if a["type"] == "transformer_strategy" else "-"
            print(
                f"{name:<20}{a['type']:<22}{shown:<13}{row['rollout_gflop']:>10.4f}{row['update_gflop']:>10.4f}"
                f"{row['gflop_per_step']:>10.4f}"
            )
    return {"mode": "flops", "overrides": cfg.set, "rows": rows}


def _progress(row: Row, workers: bool = False) -> None:
    what = row.error or (
        f"{_fmt_sps(row)} steps/s ({row.steps:,} steps in {row.wall_s:.1f} s, warm-up {row.warmup_s:.1f} s)"
    )
    label = f"{row.label} workers={row.workers}" if workers else row.label
    print(f"  {label}: {what}", flush=True)


def _row_dict(row: Row) -> dict:
    return asdict(row) | {"passed": row.passed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="default: auto")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="learner steps per measurement, rounded up to whole rollouts (default 16384; --quick: one rollout)",
    )
    parser.add_argument(
        "--template-steps",
        type=int,
        default=None,
        help="steps for the template RecurrentPPO baseline (default 1024; --quick: 256)",
    )
    parser.add_argument("--quick", action="store_true", help="fewer steps (same sizes)")
    parser.add_argument(
        "--types",
        default=f"ppo,recurrent_ppo,transformer_strategy,{TEMPLATE}",
        help=f"main-table rows, from {', '.join(AGENT_TYPES)} and '{TEMPLATE}' (the plain-SB3 baseline)",
    )
    parser.add_argument("--sweep", action="store_true", help="steps/s of --type for each of --n-envs")
    parser.add_argument(
        "--type", default="transformer_strategy", choices=AGENT_TYPES, help="agent type for --sweep / --precision"
    )
    parser.add_argument("--n-envs", default="4,8,16,32,64", help="n_envs values for --sweep")
    parser.add_argument(
        "--workers",
        default="1",
        help="worker-process counts for --sweep (1: in-process BrawlVecEnv; more: WorkerVecEnv), "
        "e.g. 1,2,4 (default 1)",
    )
    parser.add_argument(
        "--env-only",
        action="store_true",
        help="with --sweep: time env stepping alone (random actions, no model); frames/s",
    )
    parser.add_argument("--precision", action="store_true", help="fp32/bf16/fp16 x compile (CUDA only)")
    parser.add_argument(
        "--flops", action="store_true", help="GFLOP per agent step of every named config (counted, nothing trained)"
    )
    parser.add_argument(
        "--config", choices=list(CONFIGS), default=None, help="sizes to use (default: test; cpu for --sweep)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override (as train_agent.py --set); printed with the table",
    )
    parser.add_argument(
        "--max-minutes", type=float, default=20.0, help="bound on each timed learn (see the module doc; default 20)"
    )
    add_report_flags(parser)
    cfg = parser.parse_args(argv)
    cfg.types = [t.strip() for t in cfg.types.split(",") if t.strip()]
    unknown = [t for t in cfg.types if t not in (*AGENT_TYPES, TEMPLATE)]
    if unknown:
        parser.error(f"unknown --types {unknown}; choose from {', '.join((*AGENT_TYPES, TEMPLATE))}")
    cfg.n_envs = [int(x) for x in cfg.n_envs.split(",") if x.strip()]
    cfg.workers = [int(x) for x in cfg.workers.split(",") if x.strip()]
    if not cfg.workers or min(cfg.workers) < 1:
        parser.error(f"--workers needs integers >= 1, got {cfg.workers}")
    if cfg.env_only and not cfg.sweep:
        parser.error("--env-only is a mode of --sweep: add --sweep")
    if cfg.steps is None:
        cfg.steps = 1 if cfg.quick else 16_384
    if cfg.template_steps is None:
        cfg.template_steps = 256 if cfg.quick else 1024

    device = pick_device(cfg.device, announce=False)
    info = device_line(device)
    print(
        f"Device: {info['device']}; torch threads {info['torch_threads']}; load average {info['load_avg']}"
        + ("  [--quick: fewer steps]" if cfg.quick else "")
    )
    t0 = time.perf_counter()
    results: dict = {"machine": info, "quick": cfg.quick, "steps": cfg.steps, "modes": []}
    if cfg.flops:
        results["modes"].append(run_flops(cfg))
    elif not (cfg.sweep or cfg.precision):
        results["modes"].append(run_main_table(cfg, device))
    if cfg.sweep:
        results["modes"].append(run_sweep(cfg, device))
    if cfg.precision:
        results["modes"].append(run_precision(cfg, device))
    results["wall_s"] = time.perf_counter() - t0
    print(f"\nLoad average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; took {results['wall_s']:.1f} s")
    missed = [
        f"{row['label']}: {row['sps']:,.0f} steps/s (target {row['target']:,.0f})"
        for mode in results["modes"]
        for row in mode.get("rows", [])
        if row.get("target") and row.get("sps") is not None and row["sps"] < row["target"]
    ]
    return finish(cfg, "train_speed", results, missed)


if __name__ == "__main__":
    sys.exit(main())
