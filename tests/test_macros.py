"""environment/macros.py: the macro table is one table, maps to the engine's keys, and does what it says."""

from __future__ import annotations

import re

import numpy as np
import pytest

from environment import macros as M
from environment import params as P
from environment.engine import BrawlEngine
from environment.observation import ObservationBuilder

# Observation indices (DESIGN.md §4) of the observing player.
X, VY, FACING, STATE, MOVE = 0, 3, 4, 8, 14


def test_the_docstring_table_is_the_data():
    rows = re.findall(r"^(\d+)\s+(\w+)\s+(\(none\)|[a-z ]+?)\s{2,}(.+)$", M.__doc__, re.M)
    assert [(int(i), name) for i, name, _, _ in rows] == list(enumerate(M.MACRO_NAMES))
    for (_, _, keys, description), macro in zip(rows, M.MACROS, strict=True):
        assert keys.replace("(none)", "").split() == macro.keys.split()
        assert description.strip() == macro.description


def test_the_table_is_a_small_menu_of_distinct_moves():
    assert 24 <= M.N_MACROS <= 32
    assert len(set(M.MACRO_NAMES)) == M.N_MACROS
    assert M.MACRO_KEYS.shape == (M.N_MACROS, P.N_KEYS) and M.MACRO_KEYS.dtype == bool
    assert len({row.tobytes() for row in M.MACRO_KEYS}) == M.N_MACROS, "two macros hold the same keys"
    assert not M.MACRO_KEYS.flags.writeable


def test_macro_keys_use_the_engines_key_order():
    assert P.KEY_NAMES == ("w", "a", "s", "d", "space", "h", "l", "j", "k", "g")
    expected = {
        "idle": [],
        "walk_left": [P.K_A],
        "dash_right": [P.K_D, P.K_DODGE],
        "jump_left": [P.K_A, P.K_JUMP],
        "fast_fall": [P.K_S],
        "dodge": [P.K_DODGE],
        "light_down": [P.K_S, P.K_LIGHT],
        "heavy_neutral": [P.K_HEAVY],
        "heavy_right": [P.K_D, P.K_HEAVY],
        "pickup_drop": [P.K_PICKUP],
        "taunt": [P.K_TAUNT],
    }
    for name, keys in expected.items():
        assert np.flatnonzero(M.macro_keys(M.macro_id(name))).tolist() == sorted(keys), name


def test_macro_keys_is_batched_and_refuses_bad_ids():
    ids = np.array([[0, 16], [5, M.N_MACROS - 1]])
    keys = M.macro_keys(ids)
    assert keys.shape == (2, 2, P.N_KEYS) and keys.dtype == bool
    assert (keys[0, 1] == M.MACRO_KEYS[16]).all()
    assert M.macro_keys(np.array([3.0, 4.0])).shape == (2, P.N_KEYS)
    for bad, error in (
        ([M.N_MACROS], ValueError),
        ([-1], ValueError),
        ([1.5], TypeError),
        ([True], TypeError),
        ([np.nan], TypeError),
    ):
        with pytest.raises(error, match="macro ids"):
            M.macro_keys(np.array(bad))
    with pytest.raises(KeyError, match="unknown macro 'uppercut'"):
        M.macro_id("uppercut")
    with pytest.raises(ValueError, match="unknown key 'x'"):
        M.keys_from_names("a x")
    assert M.describe_keys(M.macro_keys(M.macro_id("jump_right"))) == "d+space"
    assert M.describe_keys(np.zeros(P.N_KEYS)) == "none"


def _step_until(engine: BrawlEngine, keys: np.ndarray, condition, limit: int = 150) -> np.ndarray:
    """Step with ``keys`` until ``condition(player 0's observation)``; returns that observation."""
    builder = ObservationBuilder(1)
    for _ in range(limit):
        obs = builder.build(engine.state)[0, 0]
        if condition(obs):
            return obs.copy()
        engine.step(keys)
    raise AssertionError(f"condition not reached in {limit} frames")


def _standing_engine() -> BrawlEngine:
    """Player 0 landed on the right ground and standing (facing left, toward the centre)."""
    engine = BrawlEngine(1, seed=0)
    engine.reset(p0_side=1)
    _step_until(engine, np.zeros((1, 2, P.N_KEYS), bool), lambda obs: obs[STATE] == P.STANDING)
    return engine


def _standing_player_holds(macro: str, frames: int, first: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A standing player holds ``macro`` (after 2 frames of ``first``, if given): its observation
    before and after ``frames`` frames of it."""
    engine, builder = _standing_engine(), ObservationBuilder(1)
    keys = np.zeros((1, 2, P.N_KEYS), bool)
    before = builder.build(engine.state)[0, 0].copy()
    assert before[STATE] == P.STANDING and before[FACING] == 0, "the test wants a standing player facing left"
    if first is not None:
        keys[0, 0] = M.macro_keys(M.macro_id(first))
        for _ in range(2):
            engine.step(keys)
    keys[0, 0] = M.macro_keys(M.macro_id(macro))
    for _ in range(frames):
        engine.step(keys)
    return before, builder.build(engine.state)[0, 0]


@pytest.mark.parametrize(
    ("macro", "state", "move", "facing", "first"),
    [
        ("light_neutral", P.ATTACK, P.NLIGHT, 0, None),
        ("light_left", P.ATTACK, P.SLIGHT, 0, None),
        ("light_right", P.ATTACK, P.SLIGHT, 1, None),  # a side move turns toward its direction
        ("light_down", P.ATTACK, P.DLIGHT, 0, None),
        ("heavy_neutral", P.ATTACK, P.NSIG, 0, None),
        ("heavy_left", P.ATTACK, P.SSIG, 0, None),
        ("heavy_right", P.ATTACK, P.SSIG, 1, None),
        ("heavy_down", P.ATTACK, P.DSIG, 0, None),
        ("dodge", P.DODGE, 0, 0, None),
        ("dash_left", P.DASH, 0, 0, "walk_left"),  # while walking that way: a dash
        ("dash_right", P.BACKDASH, 0, 0, None),  # away from it: a backdash
        ("taunt", P.TAUNT, 0, 0, None),
        ("idle", P.STANDING, 0, 0, None),
    ],
)
def test_each_grounded_move_starts_what_its_name_says(macro, state, move, facing, first):
    frames = (_standing_player_holds(macro, k, first)[1] for k in (1, 2, 3))
    seen = [tuple(after[[STATE, MOVE, FACING]]) for after in frames]
    assert (state, move, facing) in seen, f"{macro}: (state, move, facing) in its first 3 frames: {seen}"


@pytest.mark.parametrize(
    ("macro", "dx_sign"),
    [
        ("walk_left", -1),
        ("walk_right", 1),
        ("pickup_left", -1),
        ("pickup_right", 1),
        ("jump_left", -1),
        ("jump_right", 1),
    ],
)
def test_moves_with_a_direction_go_that_way(macro, dx_sign):
    before, after = _standing_player_holds(macro, frames=6)
    assert np.sign(after[X] - before[X]) == dx_sign


def test_jumps_leave_the_ground_and_fast_fall_falls_faster():
    for macro in ("jump", "jump_left", "jump_right"):
        _, after = _standing_player_holds(macro, frames=2)
        assert after[STATE] in (P.IN_AIR, P.AIR_TURNAROUND) and after[VY] < 0, macro
    # Past the jump's apex, holding s falls faster than holding nothing.
    fall = {}
    for macro in ("idle", "fast_fall"):
        engine, keys = _standing_engine(), np.zeros((1, 2, P.N_KEYS), bool)
        keys[0, 0] = M.macro_keys(M.macro_id("jump"))
        engine.step(keys)
        keys[0, 0] = False
        _step_until(engine, keys, lambda obs: obs[VY] > 0)  # past the apex
        keys[0, 0] = M.macro_keys(M.macro_id(macro))
        for _ in range(3):
            engine.step(keys)
        fall[macro] = ObservationBuilder(1).build(engine.state)[0, 0, VY]
    assert fall["fast_fall"] > fall["idle"] > 0


def test_nearest_macro_maps_each_macro_to_itself_and_bot_keys_to_the_move_they_make():
    assert M.nearest_macro(M.MACRO_KEYS).tolist() == list(range(M.N_MACROS))
    cases = {
        "w": "idle",
        "w j": "light_neutral",
        "d space j": "jump_right",
        "s k l": "heavy_down",
        "w a h": "pickup_left",
        "a h j": "light_left",
        "a s k": "heavy_down",
        "s d j": "light_down",
        "a s space": "jump_left",
    }
    keys = np.stack([M.keys_from_names(names) for names in cases])
    assert [M.MACRO_NAMES[i] for i in M.nearest_macro(keys)] == list(cases.values())
    assert M.nearest_macro(keys.reshape(1, len(cases), P.N_KEYS)).shape == (1, len(cases))
    with pytest.raises(ValueError, match="last axis"):
        M.nearest_macro(np.zeros((3, 9)))
