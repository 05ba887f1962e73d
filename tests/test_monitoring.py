"""Evaluation, monitoring files, alerts and the inspection modes of user/train_agent.py."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from environment.agents import agent_names, make_agent
from environment.evaluation import EvaluationStopped, PerformanceBenchmark, play_vs_opponents
from tests.test_train_agent import tiny_config
from user import monitoring
from user import train_agent as T
from user.monitoring import EVAL_COLUMNS, STRATEGY_COLUMNS, ProgressLineCallback, StrategyStats
from user.plots import training_curves_figure
from user.resume import RESUME_SCHEMA, capture_state, restore_state

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A finished tiny run with two evaluations (steps 256 and 512)."""
    run_dir = tmp_path_factory.mktemp("monitoring") / "run"
    config = tiny_config(eval__matches_per_opponent=2, eval__max_timesteps=90, training__final_video="true")
    T.run_training_loop(config, run_dir, progress=False)
    return run_dir


def test_output_files_are_complete_and_consistent(tiny_run):
    for name in (
        "monitor.csv",
        "metrics.csv",
        "evaluation_results.csv",
        "behavior_metrics.csv",
        "reward_breakdown.csv",
        "ratings.csv",
        "strategy_analysis.csv",
        "alerts.csv",
        "config.json",
        "training.log",
        "training_curves.png",
        "match_vs_based.mp4",
        "manifest.json",
    ):
        assert (tiny_run / name).exists(), name
    evaluation = pd.read_csv(tiny_run / "evaluation_results.csv")
    assert list(evaluation.columns) == EVAL_COLUMNS
    assert sorted(evaluation["step"].unique()) == [256, 512], "evaluations follow eval_freq"
    assert len(evaluation) == 2 * len(agent_names()) and set(evaluation["opponent"]) == set(agent_names())
    for column in ("win_rate", "draw_rate", "loss_rate"):
        assert evaluation[column].between(0, 1).all()
    assert ((evaluation["win_rate"] + evaluation["draw_rate"] + evaluation["loss_rate"]) - 1).abs().max() < 1e-3
    ratings = pd.read_csv(tiny_run / "ratings.csv")
    assert {"rl_model_256", "rl_model_512", "based"} <= set(ratings["name"])
    strategy = pd.read_csv(tiny_run / "strategy_analysis.csv")
    assert list(strategy.columns) == STRATEGY_COLUMNS and len(strategy) >= 3
    assert (strategy["attention_entropy"] > 0).all()
    metrics = pd.read_csv(tiny_run / "metrics.csv")
    assert {"grad_norm_before_clip", "grad_norm_after_clip", "entropy", "approx_kl", "sps"} <= set(metrics.columns)
    assert (metrics["grad_norm_after_clip"] <= 0.5 + 1e-4).all()
    monitor = pd.read_csv(tiny_run / "monitor.csv", skiprows=1)
    behavior = pd.read_csv(tiny_run / "behavior_metrics.csv")
    assert len(monitor) == len(behavior) > 0
    assert (behavior["attack_rate"].between(0, 1)).all()


def test_training_curves_have_every_panel(tiny_run):
    figure = training_curves_figure(tiny_run)
    titles = [ax.get_title().lower() for ax in figure.axes]
    for word in ("reward", "win rate", "damage ratio", "entropy", "elo"):
        assert any(word in t for t in titles), (word, titles)


def test_an_always_zero_reward_term_raises_an_alert(tmp_path):
    config = tiny_config(eval__alert_window=5)
    run = T.TrainingRun(config, tmp_path, torch.device("cpu"))
    for _ in range(5):
        run.alerts.episode({"damage_interaction": 0.0, "win": 1.0}, total=1.0)
    run.alerts.check(step=100)
    run.close()
    alerts = pd.read_csv(tmp_path / "alerts.csv")
    kinds = dict(zip(alerts["alert"], alerts["detail"], strict=True))
    assert "damage_interaction" in kinds["reward_term_never_fires"]
    assert "flat_reward" in kinds


@pytest.mark.parametrize(
    ("mode", "extra", "produces"),
    [
        ("eval", ["--episodes", "1", "--max-timesteps", "60"], "rl_model_512_steps_eval.csv"),
        ("demo", ["--opponent", "aggressive", "--max-timesteps", "60"], "rl_model_512_steps_vs_aggressive.mp4"),
        ("analyze_strategy", ["--episodes", "1", "--max-timesteps", "120"],
         "rl_model_512_steps_strategy_analysis/strategy_latents_pca.png"),
    ],
)  # fmt: skip
def test_inspection_modes_run_on_a_checkpoint(tiny_run, mode, extra, produces):
    command = [sys.executable, "user/train_agent.py", "--mode", mode, "--agent_path", str(tiny_run), *extra]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (tiny_run / produces).exists()
    if mode == "analyze_strategy":
        assert "Verdict: the encoder" in done.stdout
        assert (tiny_run / "rl_model_512_steps_strategy_analysis" / "strategy_analysis.csv").exists()


def test_league_mode_rates_snapshots_and_bots(tiny_run):
    done = subprocess.run(
        [
            sys.executable,
            "user/train_agent.py",
            "--mode",
            "league",
            "--run",
            str(tiny_run),
            "--episodes",
            "1",
            "--max-timesteps",
            "30",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    league = pd.read_csv(tiny_run / "league.csv")
    assert {"rl_model_512", "based", "constant"} <= set(league["name"])


def test_modes_explain_missing_or_wrong_paths(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "user/train_agent.py",
            "--mode",
            "eval",
            "--agent_path",
            str(tmp_path / "rl_model_5_steps.zip"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "checkpoint not found" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    done = subprocess.run(
        [sys.executable, "user/train_agent.py", "--mode", "eval"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and "needs --agent_path" in done.stdout + done.stderr


def test_performance_benchmark_api():
    results = PerformanceBenchmark(make_agent("based"), ["constant", "random"], num_episodes=2, max_timesteps=120).run()
    assert set(results) == {"constant", "random"}
    for entry in results.values():
        assert {"win_rate", "avg_reward", "damage_ratio", "knockouts", "draws"} <= set(entry)
        assert 0 <= entry["win_rate"] <= 1


def test_progress_line_shows_the_last_updates_kl_and_clip_fraction(caplog):
    callback = ProgressLineCallback(total_timesteps=1000, interval_s=0.0, action_repeat=4)
    values: dict = {}
    callback.model = SimpleNamespace(logger=SimpleNamespace(name_to_value=values), num_timesteps=0)
    with caplog.at_level("INFO", logger="train_agent"):
        callback.on_step()  # before the first update: no KL yet
        values.update({"train/approx_kl": 0.0123, "train/clip_fraction": 0.081})
        callback.model.num_timesteps = 500
        callback.on_step()
    lines = [r.getMessage() for r in caplog.records if "steps/s" in r.getMessage()]
    assert "KL" not in lines[0] and lines[-1].endswith("| KL 0.0123, clip 0.081")


def test_the_final_video_appears_whole_or_not_at_all(tmp_path, monkeypatch):
    config = tiny_config()
    run = T.TrainingRun(config, tmp_path / "run", torch.device("cpu"))
    agent = T.snapshot_agent(run.model, config["agent"], "cpu")

    def killed_mid_match(agent, opponent, max_timesteps, video_path):
        Path(video_path).write_bytes(b"half a video")
        raise KeyboardInterrupt

    monkeypatch.setattr(monitoring, "run_eval_match", killed_mid_match)
    with pytest.raises(KeyboardInterrupt):  # a bare KeyboardInterrupt has no message to match
        monitoring.write_final_video(run, agent)
    assert not [p.name for p in run.run_dir.iterdir() if "match_vs_based" in p.name], "no partial video left"
    monkeypatch.undo()
    video, stats = monitoring.write_final_video(run, agent)
    assert stats.player_1.result in ("win", "draw", "loss")
    assert video == run.run_dir / "match_vs_based.mp4" and video.stat().st_size > 1000
    assert [p.name for p in run.run_dir.iterdir() if "match_vs_based" in p.name] == ["match_vs_based.mp4"]
    run.close()


def test_a_stop_signal_ends_an_evaluation_at_once_and_the_resumed_run_plays_it_again(tmp_path):
    frames = []

    def stop_after_three_frames() -> bool:
        frames.append(1)
        return len(frames) > 3

    with pytest.raises(EvaluationStopped, match="the evaluation was stopped"):
        play_vs_opponents(
            make_agent("based"), {"random": make_agent("random")}, 4, 2700, should_stop=stop_after_three_frames
        )
    assert len(frames) == 4
    config = tiny_config(eval__matches_per_opponent=50, eval__max_timesteps=9000)
    run = T.TrainingRun(config, tmp_path / "run", torch.device("cpu"))
    next_eval = run.next_eval
    run.stop_flag.reason = "SIGTERM"
    t0 = time.monotonic()
    assert run.evaluate(next_eval) == []
    assert time.monotonic() - t0 < 2.0, "a stop ends the evaluation within 2 s"
    assert run.next_eval == next_eval and run.eval_history == [], "nothing recorded: the resumed run evaluates again"
    assert (tmp_path / "run" / "evaluation_results.csv").read_text().count("\n") <= 1
    run.close()


def test_the_first_strategy_row_after_a_resume_matches_the_unbroken_run():
    """Issue 18: the per-episode latent sums travel in the resume state, so the first row after a
    resume has its drift and episode count (it had an empty drift and 0 episodes)."""
    rng = torch.Generator().manual_seed(0)
    latents = torch.randn(40, 3, 4, generator=rng)
    weights = torch.softmax(torch.randn(40, 3, 5, generator=rng), 2)
    steps = list(zip(latents, weights, torch.rand(40, 3, generator=rng) < 0.3, strict=True))

    def feed(stats, part):
        for latent, weights, dones in part:
            stats.add(SimpleNamespace(last_latent=latent, last_pool_weights=weights), dones.numpy())

    straight, stopped = StrategyStats(3), StrategyStats(3)
    feed(straight, steps[:20])
    feed(stopped, steps[:20])
    straight.row(20)
    stopped.row(20)
    schema = tuple(f for f in RESUME_SCHEMA if f.path == "trainer/strategy")
    saved = capture_state(SimpleNamespace(strategy=stopped), schema)
    resumed = StrategyStats(3)
    restore_state(SimpleNamespace(strategy=resumed), saved, schema)
    feed(straight, steps[20:])
    feed(resumed, steps[20:])
    expected = straight.row(40)
    assert expected["episodes"] > 0 and expected["latent_drift"] != ""
    assert resumed.row(40) == expected


def test_the_stop_flag_takes_the_signals_on_the_main_thread_only():
    """Ray Tune runs trials in a thread, where Python refuses signal handlers (issue 17, item 1)."""
    before = signal.getsignal(signal.SIGTERM)
    flag, errors = monitoring.StopFlag(), []

    def install_elsewhere():
        try:
            flag.install()
        except Exception as exc:  # what signal.signal raises off the main thread
            errors.append(exc)

    worker = threading.Thread(target=install_elsewhere)
    worker.start()
    worker.join()
    assert errors == [] and signal.getsignal(signal.SIGTERM) is before
    flag.uninstall()  # nothing was installed: nothing to put back
    assert signal.getsignal(signal.SIGTERM) is before
    flag.install()
    try:
        assert signal.getsignal(signal.SIGTERM) == flag._handle
    finally:
        flag.uninstall()
    assert signal.getsignal(signal.SIGTERM) is before
