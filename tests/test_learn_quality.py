"""benchmarks/learn_quality.py (the judge) and benchmarks/exploitability.py, at tiny settings.

No test here asserts a win rate measured on today's engine: the judge's verdicts are
checked through what a held key does to the agent's own action statistics, and through
targets that a stage-aware scripted bot meets against bots that stand still or hold one
macro.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import exploitability as X
from benchmarks import learn_quality as J
from environment import params as P
from environment.agents import make_agent
from environment.evaluation import public_bot_names
from environment.macros import MACRO_NAMES, N_MACROS, macro_keys
from user import train_agent as T

TINY = {"matches": 2, "max_timesteps": 900, "modes": ("argmax",)}
# Targets a varied scripted bot meets whatever the engine's numbers (its own action statistics,
# and beating a bot that walks off the stage), and held k fails by construction (one key held
# in every frame). The same check logic, opposite verdicts.
WALKER_TARGET = J.Target(
    "walker_argmax", "win rate vs hold:walk_left", "argmax", ">=", 0.9, J._cell_value("hold:walk_left", "win_rate")
)
BEHAVIOUR_TARGETS = (
    *(t for t in J.TARGETS if t.key in {"commonest_share_argmax", "distinct_actions_argmax"}),
    WALKER_TARGET,
)


@pytest.fixture(scope="module")
def held_k_report():
    return J.judge("hold:heavy_neutral", quiet=True, **TINY)


@pytest.fixture(scope="module")
def aggressive_report():
    return J.judge("aggressive", quiet=True, **TINY)


def test_judge_fails_a_held_k_agent(held_k_report):
    argmax = held_k_report["modes"]["argmax"]
    assert argmax["public_commonest_action"] == "k" and argmax["public_commonest_share"] == 1.0
    assert argmax["public_distinct_per_match"] == 1.0
    status = {r["target"]: r["status"] for r in held_k_report["targets"]}
    assert status["commonest_share_argmax"] == status["distinct_actions_argmax"] == "FAIL"
    assert status["worst_public_sampled"] == "not measured"  # sampled was not played
    assert not held_k_report["passed"]
    assert not J.check_passed(J.check_targets(held_k_report["modes"], BEHAVIOUR_TARGETS))


def test_judge_passes_a_strong_roster_bot_on_the_same_targets(aggressive_report):
    results = J.check_targets(aggressive_report["modes"], BEHAVIOUR_TARGETS)
    assert [r["status"] for r in results] == ["PASS"] * len(BEHAVIOUR_TARGETS), results
    assert J.check_passed(results)


def test_judge_plays_every_public_bot_and_the_constant_family_from_both_sides(aggressive_report):
    cells = aggressive_report["modes"]["argmax"]["cells"]
    family = [f"hold:{name}" for name in MACRO_NAMES if name != "idle"]
    assert list(cells) == [*public_bot_names(), *family]
    assert aggressive_report["public_bots"] == public_bot_names()
    for cell in cells.values():
        assert cell["matches"] == 2 and cell["started_right"] == 1 and cell["as_player_2"] == 0  # 4 combinations
        assert cell["wins"] + cell["draws"] + cell["losses"] == 2
        low, high = cell["win_ci95"]
        assert 0 <= low <= cell["win_rate"] <= high <= 1
        assert 0 < cell["commonest_share"] <= 1 and cell["distinct_per_match"] >= 1


def test_check_fails_when_nothing_was_measured():
    row = {"measure": "win rate vs based", "mode": "argmax", "goal": ">= 0.85", "value": 0.5}
    unmeasured, passed, failed = ({**row, "status": s} for s in ("not measured", "PASS", "FAIL"))
    assert J.missed_targets([unmeasured]) == ["no target was measured (play a mode and every opponent a target needs)"]
    assert J.check_passed([passed, unmeasured])
    assert J.missed_targets([passed, failed]) == ["win rate vs based (argmax) >= 0.85: 0.5"]
    assert not J.check_passed([passed, failed])


def test_cli_check_exit_status_and_json(tmp_path, capsys):
    out = tmp_path / "judge.json"
    args = [
        "--agent",
        "hold:heavy_neutral",
        "--matches",
        "1",
        "--max-timesteps",
        "300",
        "--modes",
        "argmax",
        "--opponents",
        "constant,based,hold:jump",
    ]
    assert J.main([*args, "--json", str(out)]) == 0  # without --check, only a report
    assert J.main([*args, "--check"]) == 1
    printed = capsys.readouterr().out
    assert "HEADLINE (argmax): worst win rate over the public bots (only 2 of the public bots played)" in printed
    report = json.loads(out.read_text())
    assert list(report["modes"]["argmax"]["cells"]) == ["constant", "based", "hold:jump"]
    assert report["modes"]["argmax"]["worst_public_win_rate"] is None  # not every public bot: never judged


@pytest.mark.parametrize(("args", "message"), [
    (["--agent", "nobody"], "--agent 'nobody' is not a checkpoint"),
    (["--agent", "hold:uppercut"], "unknown macro 'uppercut'"),
    (["--agent", "based", "--modes", "greedy"], "--modes 'greedy'"),
    (["--agent", "based", "--opponents", "based,zorro"], "unknown opponent 'zorro'"),
    (["--agent", "based", "--opponents", "based,based"], "names an opponent twice"),
])  # fmt: skip
def test_cli_bad_input_is_one_line_and_exit_2(args, message, capsys):
    assert J.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_cli_missing_or_broken_checkpoint_is_exit_2(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert J.main(["--agent", str(tmp_path / "run")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert J.main(["--agent", str(tmp_path / "run" / "rl_model_5_steps.zip")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    (tmp_path / "run" / "rl_model_5_steps.zip").write_text("not a zip")
    assert J.main(["--agent", str(tmp_path / "run")]) == 2  # fails on loading, before any match
    assert "not a readable checkpoint" in capsys.readouterr().err


def test_action_tally_counts_per_row_and_noise_replaces_whole_actions():
    tally = J.ActionTally(J.HoldMacroAgent("heavy_neutral"), n_rows=5)
    obs = np.zeros((2, 64), np.float32)
    keys = tally.predict_batch(obs, np.ones(2, bool), np.array([1, 4]))
    assert keys[:, P.K_HEAVY].all() and keys.sum() == 2
    code_k = 1 << P.K_HEAVY
    assert tally.counts[[1, 4], code_k].tolist() == [1, 1] and tally.counts.sum() == 2
    always = J.RandomMacroNoise(J.HoldMacroAgent("idle"), probability=1.0, seed=0)
    noisy = always.predict_batch(np.zeros((500, 64), np.float32), np.ones(500, bool))
    table = {macro_keys(i).tobytes() for i in range(N_MACROS)}
    assert all(row.astype(bool).tobytes() in table for row in noisy)
    assert len({row.tobytes() for row in noisy}) > N_MACROS // 2
    never = J.RandomMacroNoise(J.HoldMacroAgent("jump"), probability=0.0, seed=0)
    assert (never.predict_batch(obs, np.ones(2, bool))[:, P.K_JUMP] == 1).all()


def test_recent_update_stats_and_trained_against(tmp_path):
    rows = ["step,approx_kl,clip_fraction", "1,0.5,0.5", *[f"{i},{0.001 * i},0.1" for i in range(2, 14)], "14,,"]
    (tmp_path / "metrics.csv").write_text("\n".join(rows) + "\n")
    stats = J.recent_update_stats(tmp_path, updates=10)
    assert stats["updates"] == 10 and stats["approx_kl"] == pytest.approx(0.001 * np.mean(range(4, 14)))
    assert stats["clip_fraction"] == pytest.approx(0.1)
    assert J.recent_update_stats(tmp_path / "missing") is None
    config = {
        "self_play": {"opponents": {"self_play": [0.1, None], "based": [0.7, "based"], "c": [0.2, "constant"]}},
        "controls": {"opponent_weighting": {"pool": "mix"}},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert J.trained_against(tmp_path) == ["based", "constant"]
    config["controls"]["opponent_weighting"]["pool"] = "roster"
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert "zoner" in J.trained_against(tmp_path)
    schedule = {"enabled": True, "groups": [["zoner"], ["aerial"]], "permanent": ["hold:jump"]}
    config["controls"]["opponent_schedule"] = schedule
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert J.trained_against(tmp_path) == ["aerial", "hold:jump", "zoner"], "the schedule's bots, not the mix's"


# --- exploitability ----------------------------------------------------------------------
def test_film_a_win_films_a_match_the_exploiter_won(tmp_path):
    video = tmp_path / "win.mp4"
    filmed = X.film_a_win(lambda: make_agent("aggressive"), lambda: J.HoldMacroAgent("walk_left"), 600, video, 3)
    assert filmed is not None and filmed["result"] == "win"
    assert filmed["path"] in (str(video), str(video.with_suffix(".gif")))
    assert Path(filmed["path"]).stat().st_size > 0
    assert X.film_a_win(lambda: J.HoldMacroAgent("idle"), lambda: J.HoldMacroAgent("idle"), 60, video, 2) is None


def test_exploitability_runs_end_to_end_on_a_tiny_budget(tmp_path):
    out = tmp_path / "expl"
    report = X.measure(
        "hold:walk_left",
        minutes=0.05,
        matches=2,
        max_timesteps=300,
        n_envs=8,
        out=out,
        video_tries=2,
        train_max_timesteps=300,
    )
    assert report["steps"] > 0 and report["train_s"] < 30
    assert set(report["evaluation"]) == {"argmax", "sampled"}
    for row in report["evaluation"].values():
        assert row["matches"] == 2 and row["wins"] + row["draws"] + row["losses"] == 2
        assert row["wins_started_right"] + row["wins_started_left"] == row["wins"]
    low, high = report["win_ci95"]
    assert 0 <= low <= report["win_rate"] <= high <= 1
    assert report["passed"] == (report["win_rate"] <= 0.6)
    assert list(out.glob("exploiter_*_steps.zip"))
    if report["video"] is not None:
        assert report["video"]["result"] == "win" and (out / "exploiter_win.mp4").exists()
    json.dumps(report)  # what --json writes


def test_exploitability_keeps_a_checkpoint_frozen(tmp_path):
    """A trained agent under test plays through its policy and its weights never change."""
    config = T.apply_overrides(
        copy.deepcopy(T.TRAIN_CONFIG_TEST),
        [
            "agent.type=ppo",
            "agent.net_arch={pi: [16], vf: [16]}",
            "agent.n_steps=32",
            "agent.batch_size=64",
            "env.n_envs=4",
            "env.max_timesteps=120",
            "training.total_timesteps=128",
            "training.save_freq=128",
            "eval.eval_freq=100000",
            "training.final_video=false",
            "warm_start.seconds=0",
        ],
    )
    T.run_training_loop(config, tmp_path / "run", progress=False)
    frozen = X.frozen_player(str(tmp_path / "run"), "argmax", seed=0)
    digest = X.weights_digest(frozen)
    assert digest
    model, _ = X.train_exploiter(X.exploiter_config(8, 300, seed=0), frozen, seconds=2)
    assert model.num_timesteps > 0 and X.weights_digest(frozen) == digest
    assert X.weights_digest(make_agent("based")) == ""


def test_exploitability_bad_input_is_exit_2(capsys):
    assert X.main(["--agent", "based", "--frozen-mode", "greedy"]) == 2
    assert "--frozen-mode 'greedy'" in capsys.readouterr().err
    assert X.main(["--agent", "based", "--minutes", "0"]) == 2


# --- benchmarks/trace_matches.py: where drawn and lost matches went --------------------------------
def test_trace_prints_a_timeline_of_each_drawn_match_and_skips_the_rest(capsys):
    from benchmarks import trace_matches as TM

    argv = ["--agent", "constant", "--opponents", "constant,hold:walk_left", "--matches", "2"]
    assert TM.main([*argv, "--max-timesteps", "300", "--every", "100"]) == 0
    out = capsys.readouterr().out.splitlines()
    # Two bots that stand still draw; hold:walk_left walks off the stage and loses, so it is not traced.
    assert "== constant: 0 win, 2 draw, 0 loss" in out
    assert "== hold:walk_left: 2 win, 0 draw, 0 loss" in out
    headers = [line for line in out if line.startswith("-- match")]
    assert len(headers) == 2 and all("draw after 300 frames" in h for h in headers)
    assert "started on the right as player 1" in headers[0] and "on the left as player 1" in headers[1]
    timeline = [line for line in out if line.startswith("  frame")]
    assert [line.split()[1] for line in timeline] == ["0", "100", "200"] * 2
    assert "Standing" in timeline[-1] and "keys none" in timeline[-1], "both stand on their grounds, holding nothing"


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--results", "tie"], "--results takes"), (["--opponents", "moonwalker"], "unknown opponent 'moonwalker'")],
)
def test_trace_bad_input_is_one_line_and_exit_2(args, message, capsys):
    from benchmarks import trace_matches as TM

    base = {"--agent": "constant", "--opponents": "constant"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    assert TM.main([item for pair in base.items() for item in pair]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
