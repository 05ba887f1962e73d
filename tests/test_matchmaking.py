"""The opponent schedule (environment/matchmaking.py) and the constant-action bots it can keep."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from environment import params as P
from environment.agents import agent_names, is_agent_name, make_agent
from environment.envs import BrawlVecEnv
from environment.matchmaking import OpponentSchedule, bounded_shares
from environment.self_play import OpponentsCfg

GROUPS = [["constant", "based"], ["aggressive", "zoner"], ["counter"]]


def schedule(**overrides) -> OpponentSchedule:
    config = {
        "groups": GROUPS,
        "permanent": ["hold:heavy_neutral"],
        "gate": 0.6,
        "window": 10,
        "min_matches": 5,
        "floor": 0.03,
        "cap": 0.4,
        "power": 1.0,
        "verify_below": 0.7,
        "verify_share": 0.2,
        **overrides,
    }
    return OpponentSchedule(config, bot_share=0.8)


def play(s: OpponentSchedule, opponent: str, wins: int, losses: int = 0) -> list[bool]:
    return [s.record(opponent, "win") for _ in range(wins)] + [s.record(opponent, "loss") for _ in range(losses)]


def test_groups_are_admitted_in_order_and_only_admitted_opponents_get_weight():
    s = schedule()
    assert s.admitted == ["constant", "based", "hold:heavy_neutral"], "the first group and the permanent bots"
    assert s.weights()["aggressive"] == 0.0
    play(s, "constant", 5)
    play(s, "based", 2, 2)  # 2 of 4: too few matches to trust
    assert s.groups_admitted == 1
    play(s, "based", 2)
    assert s.groups_admitted == 2 and {"aggressive", "zoner"} <= set(s.admitted)
    assert s.weights()["aggressive"] > 0 and s.weights()["counter"] == 0.0
    play(s, "aggressive", 10)
    assert s.groups_admitted == 2, "every bot of the newest group must pass the gate"
    play(s, "zoner", 6, 4)
    assert s.groups_admitted == 3 and s.weights()["counter"] > 0


def test_gating_admits_the_next_group_at_the_threshold_and_not_one_match_before():
    s = schedule(window=10, min_matches=5, gate=0.6)
    play(s, "constant", 5)
    play(s, "based", 2, 3)  # 2 of 5 = 40%
    assert s.groups_admitted == 1
    play(s, "based", 1)  # 3 of 6 = 50%
    assert s.groups_admitted == 1
    assert play(s, "based", 1) == [False], "4 of 7 = 57% < 60%"
    assert play(s, "based", 1) == [True], "5 of 8 = 62.5% >= 60%"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12), st.floats(0.3, 1.0))
def test_floor_and_cap_hold_and_the_shares_sum_to_the_total(priorities, total):
    floor, cap = 0.03, 0.25
    shares = bounded_shares({f"b{i}": p for i, p in enumerate(priorities)}, total, floor, cap)
    assert sum(shares.values()) == pytest.approx(total)
    n = len(priorities)
    if n * floor <= total <= n * cap:
        assert all(floor - 1e-9 <= v <= cap + 1e-9 for v in shares.values())
    else:  # the bounds cannot both hold: an even split
        assert all(v == pytest.approx(total / n) for v in shares.values())


def test_shares_reach_the_total_when_most_priorities_are_zero():
    shares = bounded_shares({"a": 0.0, "b": 0.0, "c": 1.0}, 0.5, 0.03, 0.25)
    assert sum(shares.values()) == pytest.approx(0.5) and shares["c"] == pytest.approx(0.25)


def test_weights_favour_the_opponents_it_loses_to_and_sum_to_the_bot_share():
    s = schedule(cap=0.6)
    play(s, "constant", 10)
    play(s, "based", 2, 8)
    weights = s.weights()
    assert sum(weights.values()) == pytest.approx(0.8)
    assert weights["based"] > weights["hold:heavy_neutral"] > weights["constant"] >= 0.03


def test_the_verification_slice_brings_back_a_forgotten_opponent():
    s = schedule(cap=0.6)
    play(s, "constant", 10)
    for _ in range(5):  # never reaches verify_below: never "forgotten"
        play(s, "based", 1, 1)
    before = s.weights()["constant"]
    assert s.forgotten() == []
    play(s, "constant", 0, 6)  # 4 of 10 now, after 10 of 10
    assert s.forgotten() == ["constant"]
    plain = schedule(cap=0.6, verify_share=0.0)
    plain.set_state(s.get_state())
    assert s.weights()["constant"] > plain.weights()["constant"] > before


def test_permanent_opponents_play_from_the_start_and_the_state_round_trips():
    s = schedule()
    assert s.weights()["hold:heavy_neutral"] > 0
    play(s, "constant", 7, 1)
    play(s, "based", 6)
    restored = schedule()
    restored.set_state(s.get_state())
    assert restored.weights() == s.weights() and restored.admitted == s.admitted
    for opponent, result in [("aggressive", "loss"), ("zoner", "win"), ("constant", "loss")] * 4:
        s.record(opponent, result)
        restored.record(opponent, result)
    assert restored.weights() == s.weights() and restored.get_state() == s.get_state()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"floor": 0.3, "cap": 0.2}, "floor < cap"),
        ({"gate": 0.0}, "gate must be in"),
        ({"groups": [["based"], []]}, "non-empty lists"),
        ({"groups": [["based"], ["based"]]}, "'based' is named twice"),
        ({"min_matches": 20}, "min_matches must be <= "),
        ({"wndow": 5}, "unknown key 'wndow'"),
    ],
)
def test_bad_schedule_configs_name_the_key(override, message):
    with pytest.raises(ValueError, match=message):
        schedule(**override)


def test_hold_bots_are_made_by_name_but_stay_out_of_the_public_roster():
    keys = make_agent("hold:heavy_neutral", seed=0).predict_batch(np.zeros((3, 64), np.float32), np.ones(3, bool))
    assert keys[:, P.KEY_NAMES.index("k")].all() and keys.sum() == 3
    assert is_agent_name("hold:dash_left") and not is_agent_name("hold:moonwalk")
    assert not any(name.startswith("hold:") for name in agent_names())
    with pytest.raises(KeyError, match="unknown macro 'moonwalk'"):
        make_agent("hold:moonwalk")
    venv = BrawlVecEnv(4, opponents=OpponentsCfg({"hold_k": (1.0, "hold:heavy_neutral")}), seed=0)
    venv.reset()
    _, rewards, dones, _ = venv.step(np.zeros((4, P.N_KEYS), np.float32))
    assert rewards.shape == dones.shape == (4,)
