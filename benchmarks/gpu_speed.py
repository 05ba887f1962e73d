"""The full-size architecture on a GPU: the `10m` config's speed, FLOPs and memory, streaming vs full-window.

Usage::

    .venv/bin/python benchmarks/gpu_speed.py [--precision fp16] [--max-minutes 2.5] [--json PATH] [--check]
    .venv/bin/python benchmarks/gpu_speed.py --cpu-smoke     # tiny sizes on the CPU: checks that it runs

For each encoder (``streaming``, the default, and ``full_window``, the seed's) the trainer's own model
at the ``10m`` config's sizes (d 256, 8 heads, 6 layers, 90 frames, LSTM 512, 64 envs, n_steps 256,
batch 2048, 10 epochs) trains against BasedAgent (``benchmarks/train_speed.py``'s ``measure_type``:
a warm-up of one rollout and one epoch, then whole rollouts and their updates timed, or the warm-up's
estimate when one iteration would not fit ``--max-minutes``; so the script stays under 8 minutes
on a GPU whose warm-ups take under a minute: two rows of at most 2.5 minutes timed, plus an
evaluation's fixed cost measured on the CPU). It prints

- steps/s, and the projected wall time of 10M steps at that speed;
- GFLOP per agent step, rollout and update (``benchmarks/flops.py``, counted from the shapes);
- the achieved TFLOP/s (GFLOP per step x steps/s) and peak GPU memory;
- side by side, the same for the full-window encoder, and the ratios.

On a GPU, ``training.precision`` is ``--precision`` (fp16 by default: what a T4 runs; Turing has no
bf16 tensor cores). Without a GPU each row is also projected to a T4 (not a GPU measurement):

    10M x (GFLOP per step / (30% of the T4's 65 TFLOP/s fp16 peak)
           + seconds per step outside the networks, measured here: the ``ppo`` type with an 8-wide
             MLP at the same env sizes (env stepping, SB3's loop and buffers)
           + the policy calls' fixed cost, measured here: each call of the same network structure at
             width 8 with a handful of rows, one rollout call per n_envs steps and n_epochs
             minibatch passes per batch_size samples; what a GPU cannot go below however fast
             its arithmetic)

``--check`` fails when the evaluations take over 5% of the projected run, or the streaming encoder's
GFLOP/step is above 0.7 or its projected 10M-step time above 1 h.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sb3_contrib.common.recurrent.type_aliases import RNNStates

from benchmarks.encoder_speed import stream_rows
from benchmarks.exploitability import one_torch_thread
from benchmarks.flops import snapshot_share, step_flops
from benchmarks.report import add_report_flags, finish
from benchmarks.train_speed import Row, device_line, measure_type, trainer_config
from environment.evaluation import play_vs_opponents, scripted_opponents
from user.agent_io import TransformerStrategyAgent
from user.train_agent import CONFIGS, build_policy, pick_device

T4_FP16_PEAK = 65e12  # FLOP/s, tensor cores
T4_UTILISATION = 0.30
TARGET_GFLOP = 0.7
TARGET_HOURS = 1.0
TARGET_EVAL_SHARE = 0.05
STEPS_10M = 10_000_000
SMOKE_SETS = [
    "agent.latent_dim=32",
    "agent.num_heads=2",
    "agent.num_layers=2",
    "agent.sequence_length=12",
    "agent.attention_window=3",
    "agent.lstm_hidden_size=32",
    "agent.n_steps=16",
    "agent.batch_size=32",
    "agent.n_epochs=2",
    "env.n_envs=4",
    "eval.matches_per_opponent=1",
    "eval.max_timesteps=60",
    "eval.snapshot_matches=1",
]


def measure_encoder(cfg: argparse.Namespace, encoder: str, device: torch.device) -> dict:
    sets = [*cfg.set, f"agent.encoder={encoder}", f"training.precision={cfg.precision}"]
    config, _ = trainer_config("10m", "transformer_strategy", sets, cfg.device)
    # timed against BasedAgent only; counted with the 10m config's own opponent mix (its self-play share)
    counted_config = {**config, "self_play": CONFIGS["10m"]["self_play"]}
    flops = step_flops(counted_config, build_policy(config["agent"]))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    if cfg.project_only:
        row = Row(encoder, "transformer_strategy", 0, 0, 0, 0, note="not timed (--project-only)")
    else:
        row = measure_type(config, encoder, cfg.steps, cfg.max_minutes * 60, device)
    out = {
        "encoder": encoder,
        "steps_per_s": row.sps,
        "estimated": row.estimated,
        "note": row.note,
        "error": row.error,
        "rollout_gflop": flops.rollout / 1e9,
        "update_gflop": flops.update / 1e9,
        "gflop_per_step": flops.total / 1e9,
        "peak_gpu_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
    }
    out["config"] = config
    out["achieved_tflops"] = flops.total * row.sps / 1e12 if row.sps else None
    out["hours_10m"] = STEPS_10M / row.sps / 3600 if row.sps else None
    return out


def outside_network_s_per_step(cfg: argparse.Namespace, device: torch.device) -> float | None:
    """Seconds per step spent outside the networks' arithmetic on this machine: the ``ppo`` type with a
    one-layer 8-wide MLP at the same env sizes (env stepping, SB3's loop and buffers; its network
    is negligible)."""
    sets = [*cfg.set, "agent.net_arch={pi: [8], vf: [8]}"]
    config, _ = trainer_config("10m", "ppo", sets, cfg.device)
    row = measure_type(config, "ppo", cfg.steps, cfg.max_minutes * 60, device)
    return 1.0 / row.sps if row.sps else None


def narrow_agent(agent_config: dict) -> dict:
    """The same network structure (layers, heads, window, LSTM) at width 8: its calls' arithmetic is
    negligible, so timing them measures their fixed cost."""
    return {**agent_config, "latent_dim": 8, "num_heads": 1, "lstm_hidden_size": 8, "net_arch": {"pi": [8], "vf": [8]}}


def call_overhead_s_per_step(config: dict, self_play: bool, repeats: int = 7) -> float:
    """Per-step share of the policy calls' fixed cost: each call's ops dispatched one after another,
    measured on one thread with the same network structure (layers, heads, window, LSTM) at width 8
    and a handful of rows (a rollout call of 2 envs one frame on; a minibatch of one 16-step
    sequence, forward and backward), so the arithmetic is negligible; times one rollout call per
    ``n_envs`` steps (two with self-play: the snapshots in play share one stacked call) and
    ``n_epochs`` minibatch passes per ``batch_size`` samples. On a GPU this is
    the launch-bound floor a step cannot go below however fast the arithmetic (the arithmetic
    itself is the FLOP term)."""
    a, n_envs = config["agent"], config["env"]["n_envs"]
    policy = build_policy(narrow_agent(a))
    length = a["sequence_length"] if a["type"] == "transformer_strategy" else 1
    width = policy.observation_space.shape[0]
    zeros = torch.zeros(1, 2, 8)

    def rollout_call(obs):
        with torch.no_grad():
            policy.forward(obs, RNNStates((zeros, zeros), (zeros, zeros)), torch.zeros(2))

    def update_call(batch):
        values, log_prob, _ = policy.evaluate_actions(
            batch, torch.zeros(len(batch), *policy.action_space.shape), _one_sequence_states(), torch.zeros(len(batch))
        )
        (values.sum() + log_prob.sum()).backward()

    with one_torch_thread():
        # each env one frame on per rollout call; the first call fills the cache and is not counted
        rollout_s = _median_after_first(rollout_call, stream_rows(2, repeats + 1, length)[..., :width])
        batches = [stream_rows(1, 16, length, seed=r)[:, 0, :width] for r in range(repeats + 1)]
        update_s = _median_after_first(update_call, batches)
    # With self-play in the mix, the snapshots in play add one stacked call a frame (user/batched_play.py),
    # counted at the learner's rollout call.
    rollout_calls = 2 if self_play else 1
    return rollout_calls * rollout_s / n_envs + a["n_epochs"] * update_s / a["batch_size"]


def _median_after_first(call, inputs) -> float:
    """Median seconds of ``call(x)`` over ``inputs``, the first (warm-up) call left out."""
    times = []
    for x in inputs:
        t0 = time.perf_counter()
        call(x)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def evaluation_floor_s(config: dict) -> float:
    """Seconds of one of the trainer's evaluations when the network's arithmetic is negligible:
    an agent of the config's structure at width 8 (argmax, one thread) plays the evaluation's
    matches (``eval.matches_per_opponent`` against every scripted bot and ``eval.snapshot_matches``
    against each of ``eval.snapshot_opponents`` snapshots, all in one engine pass), engine
    included, each phase scaled to matches that last the whole ``eval.max_timesteps`` (an
    evaluation steps until its longest match ends; an untrained agent's end early, a trained
    agent's often do not). The evaluation calls the policy once per frame for all its matches,
    so on a GPU this fixed cost, not the arithmetic, is what an evaluation costs."""
    a, ev = config["agent"], config["eval"]
    narrow = narrow_agent(a)

    def agent() -> TransformerStrategyAgent:
        return TransformerStrategyAgent(build_policy(narrow), narrow)

    def full_length_s(opponents: dict, matches: dict[str, int]) -> float:
        t0 = time.perf_counter()
        played = play_vs_opponents(agent(), opponents, matches, ev["max_timesteps"])
        longest = max(match["frames"] for results in played.values() for match in results)
        return (time.perf_counter() - t0) * ev["max_timesteps"] / max(longest, 1)

    with one_torch_thread():
        bots = scripted_opponents()
        snapshots = {f"snapshot{i}": agent() for i in range(ev["snapshot_opponents"])}
        counts = {**dict.fromkeys(bots, ev["matches_per_opponent"]), **dict.fromkeys(snapshots, ev["snapshot_matches"])}
        return full_length_s({**bots, **snapshots}, counts)  # one pass, as the trainer plays them


def _one_sequence_states() -> RNNStates:
    h = torch.zeros(1, 1, 8)
    return RNNStates((h, h), (h, h))


def t4_projection_hours(gflop_per_step: float, overhead_s: float | None) -> float | None:
    if overhead_s is None:
        return None
    flop_s = gflop_per_step * 1e9 / (T4_FP16_PEAK * T4_UTILISATION)
    return STEPS_10M * (flop_s + overhead_s) / 3600


def _f(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def print_table(rows: list[dict], gpu: bool) -> None:
    header = ["encoder", "steps/s", "rollout GFLOP", "update GFLOP", "GFLOP/step", "TFLOP/s", "peak GiB", "10M steps"]
    if not gpu:
        header.append("T4 10M (from FLOPs)")
    print("  ".join(f"{h:>19}" if i else f"{h:<12}" for i, h in enumerate(header)))
    for r in rows:
        cells = [
            _f(r["steps_per_s"], ",.1f") + (" est." if r["estimated"] else ""),
            _f(r["rollout_gflop"], ".4f"),
            _f(r["update_gflop"], ".3f"),
            _f(r["gflop_per_step"], ".3f"),
            _f(r["achieved_tflops"], ".3f"),
            _f(r["peak_gpu_gib"], ".2f"),
            _f(r["hours_10m"], ".2f") + " h",
        ]
        if not gpu:
            cells.append(_f(r.get("t4_hours"), ".2f") + " h")
        print(f"{r['encoder']:<12}  " + "  ".join(f"{c:>19}" for c in cells))
        if r["error"] or r["note"]:
            print(f"{'':<12}  {r['error'] or r['note']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # (flags spelled as train_speed.py's, whose argparse block duplicates pairs with this one)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="default: auto")
    parser.add_argument("--precision", default=None, choices=["fp32", "bf16", "fp16"], help="fp16 on CUDA")
    parser.add_argument("--steps", type=int, default=32_768, help="learner steps to time per row (whole rollouts)")
    parser.add_argument(
        "--max-minutes", type=float, default=2.5, help="time bound on each row's timed part (default 2.5)"
    )
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on the CPU, to check the script")
    parser.add_argument(
        "--project-only",
        action="store_true",
        help="without a GPU: skip timing the full-size training (hours on a CPU); FLOPs, the measured "
        "fixed costs and the T4 projection only",
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides")
    add_report_flags(parser)
    cfg = parser.parse_args(argv)
    if cfg.cpu_smoke:
        cfg.device, cfg.set, cfg.steps, cfg.max_minutes = "cpu", [*SMOKE_SETS, *cfg.set], 64, 1.0
    device = pick_device(cfg.device, announce=False)
    gpu = device.type == "cuda"
    cfg.precision = cfg.precision or ("fp16" if gpu else "fp32")
    if gpu and cfg.project_only:
        parser.error("--project-only is for machines without a GPU: on a GPU the rows are measured")
    if not gpu and cfg.precision != "fp32":
        parser.error(f"--precision {cfg.precision} needs a CUDA GPU (this run is on {device})")
    print(f"{device_line(device)['device']}; precision {cfg.precision}" + (" (cpu smoke: tiny sizes)" * cfg.cpu_smoke))
    rows = [measure_encoder(cfg, encoder, device) for encoder in ("streaming", "full_window")]
    outside = None if gpu else outside_network_s_per_step(cfg, device)
    for r in rows:
        # the timed rows play BasedAgent only; the projection counts the 10m config's own self-play
        self_play = snapshot_share(CONFIGS["10m"]) > 0
        r["call_overhead_s_per_step"] = None if gpu else call_overhead_s_per_step(r["config"], self_play)
        overhead = None if outside is None else outside + r["call_overhead_s_per_step"]
        r["t4_hours"] = None if gpu else t4_projection_hours(r["gflop_per_step"], overhead)
    print()
    print_table(rows, gpu)
    new, old = rows
    if new["steps_per_s"] and old["steps_per_s"]:
        print(
            f"\nstreaming / full_window: {new['steps_per_s'] / old['steps_per_s']:.1f}x steps/s, "
            f"{old['gflop_per_step'] / new['gflop_per_step']:.1f}x fewer FLOPs per step"
        )
    if not gpu:
        print(
            f"T4 projection (not a GPU measurement): FLOPs at {T4_UTILISATION:.0%} of {T4_FP16_PEAK / 1e12:.0f} "
            f"TFLOP/s fp16, plus {_f(outside and outside * 1e3, '.3f')} ms/step measured here outside the networks "
            "(env, SB3 loop: ppo with an 8-wide MLP), plus the policy calls' floor measured at width 8 "
            + ", ".join(f"({r['encoder']} {r['call_overhead_s_per_step'] * 1e3:.3f} ms/step)" for r in rows)
        )
    projected = new["hours_10m"] if gpu else new["t4_hours"]
    config = new["config"]
    evaluations = config["training"]["total_timesteps"] // config["eval"]["eval_freq"]
    eval_s = evaluation_floor_s(config)
    eval_share = None if projected is None else evaluations * eval_s / (projected * 3600)
    print(
        f"evaluations: {evaluations} per 10M-step run (eval_freq {config['eval']['eval_freq']:,}), each at least "
        f"{eval_s:.1f} s (the policy's fixed cost per frame, measured here at width 8, engine included): "
        f"{_f(eval_share, '.1%')} of the projected run"
    )
    missed = []
    if new["gflop_per_step"] > TARGET_GFLOP:
        missed.append(f"GFLOP/step {new['gflop_per_step']:.3f} > {TARGET_GFLOP}")
    if not cfg.cpu_smoke and (projected is None or projected > TARGET_HOURS):
        missed.append(f"projected 10M-step time {_f(projected, '.2f')} h > {TARGET_HOURS} h")
    if not cfg.cpu_smoke and (eval_share is None or eval_share > TARGET_EVAL_SHARE):
        missed.append(f"evaluations {_f(eval_share, '.1%')} of the run > {TARGET_EVAL_SHARE:.0%}")
    results = {"device": device_line(device), "precision": cfg.precision, "smoke": cfg.cpu_smoke}
    results["rows"] = [{k: v for k, v in r.items() if k != "config"} for r in rows]
    results["outside_network_s_per_step"] = outside
    results["evaluation"] = {"per_run": evaluations, "floor_s": eval_s, "share_of_run": eval_share}
    return finish(cfg, "gpu_speed", results, missed)


if __name__ == "__main__":
    sys.exit(main())
