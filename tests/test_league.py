"""user/league.py (issue 17): the league's matchmaking, admission rules and league.json, without Ray.
The league on Ray (its actor killed mid-league) is tested in tests/test_scale.py."""

from __future__ import annotations

import json

import pytest

from tests.test_train_agent import tiny_config
from user import league as L
from user.config_tools import ConfigError


def rules(**changes) -> L.LeagueRules:
    return L.LeagueRules(**{"segments": {"main": 3, "main_exploiter": 3}, "segment_steps": 128, **changes})


def test_pfsp_weights_favour_the_opponents_the_learner_loses_to():
    weights = L.pfsp_weights({"strong": 0.0, "even": 0.5, "weak": 1.0, "new": None})
    assert weights == pytest.approx({"strong": 1 / 1.5, "even": 0.25 / 1.5, "weak": 0.0, "new": 0.25 / 1.5})
    assert L.pfsp_weights({"a": 1.0, "b": 1.0}) == {"a": 0.5, "b": 0.5}  # all beaten: uniform
    assert L.pfsp_weights({}) == {}
    assert L.win_rate([3, 1, 0]) == 0.75 and L.win_rate([0, 0, 0]) is None


def test_the_first_main_joins_the_pool_and_the_exploiter_waits_for_it(tmp_path):
    league = L.League(tmp_path, rules())
    plan = league.plan("main_exploiter")
    assert plan["wait"] and not plan["done"] and plan["opponents"] == {}
    main = league.plan("main")
    assert (main["segment"], main["init_from"], main["opponents"], main["wait"]) == (0, None, {}, False)
    decision = league.report("main", 0, 128, "/runs/main0.zip", {})
    assert decision == {"player": "main_g0_s0", "admitted": True, "win_rate": None, "reset": False}
    target = league.plan("main_exploiter")
    assert not target["wait"] and target["opponents"] == {"main_g0_s0": [1.0, "/runs/main0.zip"]}
    assert league.plan("main")["init_from"] == "/runs/main0.zip"  # the next segment continues these weights
    assert league.state["events"][0] | {"time": 0} == {
        "event": "admit",
        "player": "main_g0_s0",
        "win_rate": None,
        "role": "main",
        "segment": 0,
        "step": 128,
        "time": 0,
    }


def test_main_is_admitted_by_its_win_rate_and_matched_by_pfsp(tmp_path):
    league = L.League(tmp_path, rules())
    league.report("main", 0, 128, "/m0.zip", {})
    below = league.report("main", 1, 256, "/m1.zip", {"main_g0_s0": [3, 2, 3]})  # 3 of 8 < 0.5
    assert below["admitted"] is False and below["win_rate"] == 0.375
    league.report("main_exploiter", 0, 128, "/e0.zip", {"main_g0_s0": [8, 0, 0]})  # admitted: 1.0 >= 0.7
    plan = league.plan("main")
    # Main's newest player that met each opponent: its segment 1 won 3/8 against main_g0_s0, and
    # main_g0_s0 itself lost 8/8 to the exploiter.
    expected = L.pfsp_weights({"main_g0_s0": 0.375, "main_exploiter_g0_s0": 0.0})
    assert {name: share for name, (share, _) in plan["opponents"].items()} == pytest.approx(expected)
    assert plan["opponents"]["main_exploiter_g0_s0"][1] == "/e0.zip"
    assert league.state["payoff"]["main_g0_s0"]["main_g0_s1"] == [3, 2, 3]  # both sides of the table


def test_an_admitted_exploiter_resets_to_its_start_weights(tmp_path):
    league = L.League(tmp_path, rules())
    league.report("main", 0, 128, "/m0.zip", {})
    missed = league.report("main_exploiter", 0, 128, "/e0.zip", {"main_g0_s0": [5, 0, 3]})  # 0.625 < 0.7
    assert not missed["admitted"] and league.plan("main_exploiter")["init_from"] == "/e0.zip"
    hit = league.report("main_exploiter", 1, 256, "/e1.zip", {"main_g0_s0": [6, 0, 2]})  # 0.75
    assert hit == {"player": "main_exploiter_g0_s1", "admitted": True, "win_rate": 0.75, "reset": True}
    plan = league.plan("main_exploiter")
    assert (plan["generation"], plan["init_from"], plan["step"], plan["segment"]) == (1, None, 256, 2)
    assert L.segment_name("main_exploiter", plan["generation"], plan["segment"]) == "main_exploiter/g1_seg2"
    assert [(e["event"], e["player"], e["step"]) for e in league.state["events"]] == [
        ("admit", "main_g0_s0", 128),
        ("admit", "main_exploiter_g0_s1", 256),
        ("reset", "main_exploiter_g0_s1", 256),
    ]
    league.report("main_exploiter", 2, 384, "/e2.zip", {"main_g0_s0": [0, 0, 8]})
    assert league.plan("main_exploiter")["done"]


def test_a_report_made_twice_is_recorded_once_and_one_out_of_order_is_refused(tmp_path):
    league = L.League(tmp_path, rules())
    first = league.report("main", 0, 128, "/m0.zip", {})
    before = json.loads((tmp_path / L.LEAGUE_FILE).read_text())
    again = L.League(tmp_path).report("main", 0, 999, "/elsewhere.zip", {})  # a learner retrying after a crash
    assert again == first
    assert json.loads((tmp_path / L.LEAGUE_FILE).read_text()) == before
    with pytest.raises(ConfigError, match="reported segment 5, but its next segment is 1"):
        league.report("main", 5, 640, "/m5.zip", {})
    with pytest.raises(ConfigError, match="'ghost', which is not in the pool"):
        league.report("main", 1, 256, "/m1.zip", {"ghost": [1, 0, 0]})
    with pytest.raises(ConfigError, match=r"must be \[wins, draws, losses\]"):
        league.report("main", 1, 256, "/m1.zip", {"main_g0_s0": [1, 0]})
    with pytest.raises(ConfigError, match="role 'league_exploiter' is not in this league"):
        league.plan("league_exploiter")


def test_league_json_round_trips_and_a_restarted_league_continues_from_it(tmp_path):
    league = L.League(tmp_path, rules())
    league.report("main", 0, 128, "/m0.zip", {})
    league.report("main_exploiter", 0, 128, "/e0.zip", {"main_g0_s0": [8, 0, 0]})
    reloaded = L.League(tmp_path, rules())  # what the restarted actor does
    assert reloaded.snapshot() == league.snapshot()
    assert reloaded.plan("main") == league.plan("main")
    assert [row["name"] for row in reloaded.table()] == ["main_exploiter_g0_s0", "main_g0_s0"]  # by Elo
    with pytest.raises(ConfigError, match="holds a league with other rules"):
        L.League(tmp_path, rules(segment_steps=256))
    (tmp_path / L.LEAGUE_FILE).write_text('{"version": 1}')
    with pytest.raises(ConfigError, match="is not a league file"):
        L.League(tmp_path)
    with pytest.raises(ConfigError, match="not found: no league to continue"):
        L.League(tmp_path / "none")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"segments": {"main_exploiter": 2}}, "must name the main role"),
        ({"segments": {"main": 2, "coach": 1}}, "unknown role 'coach'"),
        ({"segments": {"main": 0}}, "segments of main must be a positive integer"),
        ({"segment_steps": 0}, "segment_steps must be a positive integer"),
        ({"exploiter_admit_win_rate": 1.5}, "exploiter_admit_win_rate must be in [0, 1]"),
        ({"pool_share": 1.0}, "pool_share must be in (0, 1)"),
    ],
)
def test_bad_league_rules_are_named(changes, message):
    with pytest.raises(ConfigError) as caught:
        rules(**changes)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_segment_config_trains_against_the_plan_from_the_plans_weights():
    base = tiny_config()
    plan = {"role": "main", "segment": 1, "init_from": "/m0.zip", "opponents": {"main_g0_s0": [1.0, "/m0.zip"]}}
    config = L.segment_config(base, plan, 256, pool_share=0.5)
    own = sum(w for w, _ in base["self_play"]["opponents"].values())
    assert config["self_play"]["opponents"]["league:main_g0_s0"] == (pytest.approx(own), "checkpoint:/m0.zip")
    assert config["training"]["init_from"] == "/m0.zip" and config["warm_start"]["seconds"] == 0.0
    assert config["training"]["total_timesteps"] == 256 and config["training"]["seed"] == base["training"]["seed"] + 1
    exploiter = {"role": "main_exploiter", "segment": 3, "init_from": None, "opponents": plan["opponents"]}
    config = L.segment_config(base, exploiter, 256, pool_share=0.5)
    weights = {name: w for name, (w, _) in config["self_play"]["opponents"].items()}
    assert weights["league:main_g0_s0"] == 1.0 and sum(weights.values()) == 1.0  # the pool only
    entries = {name: entry for name, (_, entry) in config["self_play"]["opponents"].items()}
    assert entries == {
        **{n: e for n, (_, e) in base["self_play"]["opponents"].items()},
        "league:main_g0_s0": "checkpoint:/m0.zip",
    }
    assert config["training"]["seed"] == base["training"]["seed"] + L.ROLE_SEED_OFFSET["main_exploiter"]
    assert config["training"]["init_from"] == base["training"]["init_from"]  # its start weights
