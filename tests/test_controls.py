"""The trainer's controls (user/train_agent.py, _SHARED_CONTROLS_CONFIG and training.precision / compile):
schedules, opponent weighting, exploiter phases, mixed precision and torch.compile."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch._inductor.runtime.cache_dir_utils import default_cache_dir

from environment.agents import agent_names, make_agent
from environment.self_play import SelfPlayRandom
from tests.test_train_agent import tiny_config
from user import controls
from user import train_agent as T
from user.resume import rng_state

LINEAR = {"kind": "linear", "start": 1.0, "end": 0.0}
COSINE = {"kind": "cosine", "start": 1.0, "end": 0.0}
CONSTANT = {"kind": "constant", "start": 0.3, "end": 0.9}
# The older weighting modes set the bots' weights themselves: the opponent schedule (on in every
# named config) goes off, and the mix is the base config's (snapshots, based and constant).
WEIGHTING_MIX = {
    "controls__opponent_schedule__enabled": "false",
    "self_play__opponents": "{self_play: [0.8, null], based: [0.15, based], constant: [0.05, constant]}",
}


# --- schedules ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "values"),
    [(LINEAR, [1.0, 0.5, 0.0]), (COSINE, [1.0, 0.5, 0.0]), (CONSTANT, [0.3, 0.3, 0.3]), (None, [7.0, 7.0, 7.0])],
)
def test_schedule_values_at_the_start_middle_and_end(spec, values):
    assert [controls.schedule_value(spec, p, default=7.0) for p in (0.0, 0.5, 1.0)] == pytest.approx(values)


def test_cosine_schedule_lingers_at_both_ends():
    quarter = controls.schedule_value(COSINE, 0.25, default=0.0)
    assert quarter == pytest.approx(0.5 + 0.5 * math.cos(math.pi / 4)) and quarter > 0.75


def test_sb3_schedule_turns_remaining_progress_into_training_progress():
    schedule = controls.sb3_schedule({"kind": "linear", "start": 1e-3, "end": 1e-4}, default=5.0)
    # SB3 calls schedules with the progress *remaining*: 1 at the start, 0 at the end.
    assert [schedule(r) for r in (1.0, 0.5, 0.0)] == pytest.approx([1e-3, 5.5e-4, 1e-4])
    assert controls.sb3_schedule(None, default=5.0) == 5.0


def test_a_run_follows_its_schedules(tmp_path):
    config = tiny_config(
        controls__schedules__learning_rate="{kind: linear, start: 1.0e-3, end: 1.0e-4}",
        controls__schedules__clip_range="{kind: linear, start: 0.3, end: 0.1}",
        controls__schedules__ent_coef="{kind: linear, start: 0.02, end: 0.0}",
        controls__schedules__self_play_temperature="{kind: linear, start: 0.0, end: 4.0}",
        eval__eval_freq=100_000,
    )
    T.run_training_loop(config, tmp_path / "run", progress=False)
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv").set_index("step")
    total = config["training"]["total_timesteps"]  # 512: updates after steps 128, 256, 384 and 512
    for step in (128, 256, 384, 512):
        progress = step / total  # SB3 reads lr and clip for the update that ends here
        assert metrics.loc[step, "learning_rate"] == pytest.approx(1e-3 + (1e-4 - 1e-3) * progress)
        assert metrics.loc[step, "clip_range"] == pytest.approx(0.3 + (0.1 - 0.3) * progress)
    for step in (128, 256, 384):  # set at the start of the rollout that begins at this step
        assert metrics.loc[step, "ent_coef"] == pytest.approx(0.02 * (1 - step / total))
        assert metrics.loc[step, "self_play_temperature"] == pytest.approx(4.0 * step / total)


def test_greedy_rollout_rows_follow_their_schedule(tmp_path):
    config = tiny_config(controls__schedules__greedy_rollout_share="{kind: linear, start: 0.0, end: 0.5}")
    run = T.TrainingRun(config, tmp_path, torch.device("cpu"))
    try:
        n, total = config["env"]["n_envs"], config["training"]["total_timesteps"]
        assert run.model.policy.greedy_rows is None, "the schedule starts at 0: every row samples"
        counts = []
        for step in (0, total // 2, total):
            run.apply_schedules(step)
            rows = run.model.policy.greedy_rows
            counts.append(0 if rows is None else int(rows.sum()))
        assert counts == [0, round(0.25 * n), round(0.5 * n)]
        run.model.learn(128)  # a rollout with the scheduled rows trains
    finally:
        run.close()


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        ({"controls__schedules__greedy_rollout_share": "{kind: linear, start: 0.0, end: 1.0}"}, "end must be below 1"),
        (
            {"agent__type": "ppo", "controls__schedules__greedy_rollout_share": "{kind: constant, start: 0.2, end: 0}"},
            "greedy_rollout_share needs a recurrent agent type",
        ),
    ],
)
def test_greedy_rollout_schedule_is_validated(sets, message):
    with pytest.raises(T.ConfigError, match=message):
        tiny_config(**sets)


def test_schedules_are_validated():
    with pytest.raises(T.ConfigError, match="controls.schedules.learning_rate.end must be > 0"):
        tiny_config(controls__schedules__learning_rate="{kind: linear, start: 1.0e-3, end: 0}")
    with pytest.raises(T.ConfigError, match="controls.schedules.ent_coef.kind must be one of"):
        tiny_config(controls__schedules__ent_coef="{kind: step, start: 0.1, end: 0.0}")


# --- opponent weighting (to be replaced by the opponent schedule of issue 14) -----------------
@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("inverse_win_rate", [1.0, 0.75, 0.05]),
        ("pfsp_hard", [1.0, 0.5625, 0.05]),
        ("pfsp_variance", [0.05, 0.1875, 0.05]),
    ],
)
def test_opponent_priority_per_mode(mode, expected):
    weighting = {"mode": mode, "floor": 0.05, "pfsp_power": 2.0}
    assert [controls.opponent_priority(weighting, x) for x in (0.0, 0.25, 1.0)] == pytest.approx(expected)


def test_reweighting_keeps_the_bots_share_and_favours_the_hard_ones(tmp_path):
    config = tiny_config(controls__opponent_weighting__mode="inverse_win_rate", **WEIGHTING_MIX)
    run = T.TrainingRun(config, tmp_path, torch.device("cpu"))
    try:
        share = sum(run.bot_share.values())
        controls.reweight_opponents(run, 0, {"based": 0.9, "constant": 0.1}, {})
        weights = {name: w for name, (w, _) in run.opponents.opponents.items()}
        assert weights["based"] + weights["constant"] == pytest.approx(share)
        assert weights["constant"] > weights["based"]
        assert weights["self_play"] == config["self_play"]["opponents"]["self_play"][0]
    finally:
        run.close()


def test_pfsp_weights_the_snapshots_by_the_evaluations_results(tmp_path):
    config = tiny_config(controls__opponent_weighting__mode="pfsp_hard", **WEIGHTING_MIX)
    run = T.TrainingRun(config, tmp_path, torch.device("cpu"))
    try:
        beaten, beating = tmp_path / "rl_model_128_steps.zip", tmp_path / "rl_model_256_steps.zip"
        controls.reweight_opponents(run, 0, {"based": 0.5, "constant": 0.5}, {beaten: 0.9, beating: 0.1})
        weighting = config["controls"]["opponent_weighting"]
        assert run.self_play.snapshot_weights == {
            beaten: pytest.approx(controls.opponent_priority(weighting, 0.9)),
            beating: pytest.approx((1 - 0.1) ** 2),
        }
        assert run.self_play.snapshot_weights[beating] > 10 * run.self_play.snapshot_weights[beaten]
    finally:
        run.close()


def _choice_shares(pool: SelfPlayRandom, snapshots: list[Path], draws: int = 4000) -> list[float]:
    counts = np.bincount([snapshots.index(pool.choose(snapshots)) for _ in range(draws)], minlength=len(snapshots))
    return (counts / draws).tolist()


def test_temperature_and_pfsp_weights_shape_which_snapshot_plays(tmp_path):
    snapshots = [tmp_path / f"rl_model_{step}_steps.zip" for step in (100, 200, 300, 400)]
    pool = SelfPlayRandom(lambda path: make_agent("constant"), seed=0)
    assert _choice_shares(pool, snapshots) == pytest.approx([0.25] * 4, abs=0.03)  # temperature 0: uniform
    pool.temperature = 4.0  # snapshot i of n weighs exp(4 i / n): the newest is e^3 times the oldest
    shares = _choice_shares(pool, snapshots)
    expected = np.exp(4.0 * np.arange(4) / 4)
    assert shares == pytest.approx((expected / expected.sum()).tolist(), abs=0.03)
    pool.temperature = 0.0
    pool.snapshot_weights = {snapshots[0]: 7.0}  # PFSP priorities multiply in (missing ones weigh 1)
    assert _choice_shares(pool, snapshots) == pytest.approx([0.7, 0.1, 0.1, 0.1], abs=0.03)


def test_the_roster_pool_adds_every_bot_and_keeps_the_bots_share(tmp_path):
    config = tiny_config(
        controls__opponent_weighting__mode="inverse_win_rate",
        controls__opponent_weighting__pool="roster",
        **WEIGHTING_MIX,
    )
    run = T.TrainingRun(config, tmp_path, torch.device("cpu"))
    try:
        bots = {entry: w for w, entry in run.opponents.opponents.values() if isinstance(entry, str)}
        configured = config["self_play"]["opponents"]
        share = sum(w for w, entry in configured.values() if entry is not None)
        assert set(bots) == set(agent_names())
        assert all(w == pytest.approx(share / len(bots)) for w in bots.values())
        assert run.opponents.opponents["self_play"][0] == configured["self_play"][0]
    finally:
        run.close()


# --- exploiter phases (to be replaced by the opponent schedule of issue 14) --------------------
def test_an_exploiter_phase_leaves_the_main_runs_random_streams_unchanged(tmp_path):
    config = tiny_config(
        controls__exploiter="{every_updates: 1, steps: 128, init: fork, win_threshold: 0.01, eval_matches: 2}"
    )
    run = T.TrainingRun(config, tmp_path, torch.device("cpu"))
    try:
        run.model.learn(128)
        before = rng_state()
        admitted = T.run_exploiter_phase(run, 128)
        after = rng_state()
        assert np.array_equal(before["torch"], after["torch"]) and before["python"] == after["python"]
        assert np.array_equal(before["numpy"]["keys"], after["numpy"]["keys"])
        assert admitted == (run.logs["exploiters"].last_value("admitted") == "True")
        assert controls.admit_exploiter(0.6, 0.55) and not controls.admit_exploiter(0.55, 0.55)
    finally:
        run.close()


# --- precision and torch.compile ---------------------------------------------------------
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_low_precision_needs_a_cuda_gpu():
    with pytest.raises(T.ConfigError, match="training.precision=bf16 needs a CUDA GPU"):
        tiny_config(training__precision="bf16")


def test_precision_turns_on_autocast_for_the_encoder_and_the_lstm_only():
    agent = tiny_config()["agent"]
    policy = T.build_policy(agent)
    T.apply_precision_and_compile(policy, {"precision": "fp16", "compile": False})
    assert policy.autocast_dtype is torch.float16
    assert policy.features_extractor.autocast_dtype is torch.float16
    fp32 = T.build_policy(agent)
    T.apply_precision_and_compile(fp32, {"precision": "fp32", "compile": False})
    assert fp32.autocast_dtype is None and fp32.features_extractor.autocast_dtype is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="autocast runs on CUDA only")
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_low_precision_trains_on_cuda(tmp_path, precision):
    config = tiny_config(training__precision=precision, training__device="cuda")
    run = T.TrainingRun(config, tmp_path, torch.device("cuda"))
    try:
        run.model.learn(128)
        run.check_finite()
    finally:
        run.close()


@pytest.fixture
def inductor_cache_in_tmp_path(tmp_path, monkeypatch):
    """torch.compile's caches in the test's folder; its precompiled headers, which always go to the system
    temp folder, are removed again unless they were there before."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    headers = Path(default_cache_dir()) / "precompiled_headers"
    existed = headers.exists()
    yield
    if not existed:
        shutil.rmtree(headers, ignore_errors=True)


@pytest.mark.usefixtures("inductor_cache_in_tmp_path")
def test_compiled_encoder_matches_the_eager_one_and_keeps_its_names():
    agent = tiny_config(agent__encoder="full_window")["agent"]
    compiled = T.build_policy(agent)
    eager = T.build_policy(agent)
    eager.load_state_dict(compiled.state_dict())
    T.apply_precision_and_compile(compiled, {"precision": "fp32", "compile": True})
    assert compiled.state_dict().keys() == eager.state_dict().keys(), "checkpoints load either way"
    obs = torch.as_tensor(np.stack([compiled.observation_space.sample() for _ in range(4)]))
    with torch.no_grad():
        torch.testing.assert_close(compiled.features_extractor(obs), eager.features_extractor(obs))


def test_compiling_the_streaming_encoder_is_a_config_error():
    with pytest.raises(T.ConfigError, match="training.compile compiles the full-window encoder only"):
        tiny_config(training__compile=True)
