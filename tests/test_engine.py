"""The batched engine: determinism, batch parity, input checks, invariants, and the original's rules and quirks.

Frame-by-frame agreement with the original engine is tested in ``test_fidelity.py``;
these tests pin the rules a reader of ``rules.py``/``attacks.py``/``physics.py``
would check first, each with the original's numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from environment import params as P
from environment.engine import BrawlEngine
from environment.observation import ObservationBuilder, observation_bounds
from environment.params import DEFAULT_PARAMS

REST_Y_RIGHT = 0.41552  # where a player falling from the spawn point comes to rest on the right ground


def keys_of(*pressed, n=1):
    k = np.zeros((n, 2, P.N_KEYS), bool)
    for slot, key in pressed:
        k[:, slot, key] = True
    return k


def random_keys(seed, frames, n, press=0.2):
    return np.random.default_rng(seed).random((frames, n, 2, P.N_KEYS)) < press


def run(engine, keys):
    states = []
    for frame in keys:
        ev = engine.step(frame)
        states.append(engine.state.copy())
        if ev.done.any():
            engine.reset(np.flatnonzero(ev.done))
    return states


def test_same_seed_same_trajectory_and_different_seed_differs():
    keys = random_keys(0, 400, 4)
    a, b, c = BrawlEngine(4, seed=7), BrawlEngine(4, seed=7), BrawlEngine(4, seed=8)
    for e in (a, b, c):
        e.reset()
    sa, sb, sc = run(a, keys), run(b, keys), run(c, keys)
    assert all(
        np.array_equal(x.players, y.players) and np.array_equal(x.weapons, y.weapons)
        for x, y in zip(sa, sb, strict=True)
    )
    assert not all(np.array_equal(x.players, z.players) for x, z in zip(sa, sc, strict=True))


def test_batch_of_8_equals_8_single_matches():
    keys = random_keys(1, 300, 8, press=0.3)
    batch = BrawlEngine(8, seed=100)
    batch.reset()
    singles = [BrawlEngine(1, seed=100 + i) for i in range(8)]
    for e in singles:
        e.reset()
    for frame in keys:
        batch.step(frame)
        for i, e in enumerate(singles):
            e.step(frame[i : i + 1])
    for i, e in enumerate(singles):
        assert np.array_equal(batch.state.players[i], e.state.players[0])
        assert np.array_equal(batch.state.weapons[i], e.state.weapons[0])


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), press=st.floats(0.05, 0.6), horizon=st.integers(50, 400))
def test_invariants_hold_under_random_play(seed, press, horizon):
    n = 4
    engine = BrawlEngine(n, seed=seed)
    engine.reset()
    builder = ObservationBuilder(n)
    low, high = observation_bounds()
    stocks = engine.state.stocks.copy()
    for frame in random_keys(seed, horizon, n, press):
        ev = engine.step(frame)
        s = engine.state
        assert ((s.damage >= 0) & (s.damage <= 700)).all()
        assert ((s.state >= 0) & (s.state <= 12)).all()
        assert (s.stocks <= stocks).all()
        stocks = s.stocks.copy()
        obs = builder.build(s)
        assert np.isfinite(obs).all() and (obs >= low).all() and (obs <= high).all()
        assert ((s.move == 0) | (s.state == P.ATTACK)).all()
        if ev.done.any():
            engine.reset(np.flatnonzero(ev.done))
            stocks = engine.state.stocks.copy()


def test_float_actions_and_bad_input():
    engine = BrawlEngine(2)
    engine.reset()
    engine.step(np.full((2, 2, P.N_KEYS), 0.7))
    assert np.all(engine.state.prev_keys == (1 << P.N_KEYS) - 1)
    with pytest.raises(ValueError, match="keys must have shape"):
        engine.step(np.zeros((2, 10)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        engine.step(np.full((2, 2, P.N_KEYS), np.nan))
    with pytest.raises(TypeError, match="keys must be bool or numeric"):
        engine.step(np.full((2, 2, P.N_KEYS), "a"))
    with pytest.raises(ValueError, match="positive integer"):
        BrawlEngine(0)


def test_step_before_reset_and_after_the_end_is_refused():
    engine = BrawlEngine(1, max_timesteps=3)
    with pytest.raises(RuntimeError, match="never reset"):
        engine.step(keys_of())
    engine.reset()
    for _ in range(3):
        ev = engine.step(keys_of())
    assert ev.done[0] and ev.truncated[0] and ev.result[0] == P.RESULT_DRAW
    with pytest.raises(RuntimeError, match="call reset"):
        engine.step(keys_of())


def test_spawn_in_the_air_with_no_jumps_and_land_where_the_fall_overshot():
    engine = BrawlEngine(1)
    engine.reset(p0_side=1)
    s = engine.state
    assert (s.state[0] == P.IN_AIR).all() and (s.jumps_left[0] == 0).all() and (s.recoveries_left[0] == 0).all()
    assert s.facing[0, 0] == -1 and s.facing[0, 1] == 1  # both face the centre
    for _ in range(8):
        engine.step(keys_of())
    # The physics engine stops a body where its fall step overshot the ground's top (0.85): not at 0.35.
    assert s.y[0, 0] == pytest.approx(REST_Y_RIGHT, abs=1e-9) and s.vy[0, 0] == 0
    assert s.state[0, 0] == P.STANDING and s.grounded[0, 0] and s.jumps_left[0, 0] == 0  # ground states keep no count


def test_walking_speed_is_reduced_by_ground_friction():
    """The walk sets vx = 6.75 each frame; the position moves 0.225, the friction leaves 6.4591 (0.49 × g·dt)."""
    engine = BrawlEngine(1)
    engine.reset(p0_side=1)
    for _ in range(10):
        engine.step(keys_of())
    x0 = engine.state.x[0, 0]
    for _ in range(5):
        engine.step(keys_of((0, P.K_A)))  # it faces left already: the first frame only starts the walk
    assert x0 - engine.state.x[0, 0] == pytest.approx(4 * 6.75 / 30)
    assert engine.state.vx[0, 0] == pytest.approx(-(6.75 - 0.49 * 17.808 / 30), abs=1e-3)


def test_jump_is_checked_before_attack_on_the_ground():
    """The original checks a fresh space before an attack: holding j does not stop a jump."""
    engine = BrawlEngine(1)
    engine.reset(p0_side=1)
    for _ in range(10):
        engine.step(keys_of())
    engine.step(keys_of((0, P.K_LIGHT), (0, P.K_JUMP)))
    assert engine.state.vy[0, 0] < 0 and engine.state.state[0, 0] == P.IN_AIR


def test_scattered_starts_put_that_share_of_matches_anywhere_on_the_grounds():
    n, share = 2000, 0.25
    fixed = BrawlEngine(n, seed=7, params=P.TOURNAMENT_PARAMS)
    plain = BrawlEngine(n, seed=7, params=P.TOURNAMENT_PARAMS, scattered_starts=0.0)
    scattered = BrawlEngine(n, seed=7, params=P.TOURNAMENT_PARAMS, scattered_starts=share)
    for engine in (fixed, plain, scattered):
        engine.reset()
    # Off (the default): the tournament's start points, and the streams draw nothing extra.
    np.testing.assert_array_equal(plain.state.x, fixed.state.x)
    np.testing.assert_array_equal(plain.state.rng, fixed.state.rng)
    assert set(np.abs(fixed.state.x).ravel().tolist()) == {5.0}
    x = scattered.state.x.copy()
    moved = np.abs(np.abs(x[:, 0]) - 5.0) > 1e-9
    assert abs(moved.mean() - share) < 0.04  # 2,000 matches: 3.5 standard deviations
    on_left = (x >= -6.5) & (x <= -2.5)
    on_right = (x >= 2.5) & (x <= 6.5)
    assert (on_left | on_right).all()  # inside a ground, half a unit from its ends
    same_ground = moved & (on_left[:, 0] == on_left[:, 1])
    assert same_ground.sum() > 100  # some matches start with both players on one ground...
    assert (np.abs(x[:, 0] - x[:, 1]) >= 1.0).all()  # ...never on top of each other
    assert (scattered.state.facing == np.where(x < 0, 1.0, -1.0)).all()  # facing the centre, as the original
    for _ in range(90):
        scattered.step(np.zeros((n, 2, P.N_KEYS), bool))
    assert (scattered.state.state == P.STANDING).all()  # everyone lands on a ground
    again = BrawlEngine(n, seed=7, params=P.TOURNAMENT_PARAMS, scattered_starts=share)
    again.reset()
    np.testing.assert_array_equal(again.state.x, x)  # drawn from the matches' own streams


@pytest.mark.parametrize("share", [-0.1, 1.0, "half", True])
def test_scattered_starts_reject_a_share_outside_0_to_1(share):
    with pytest.raises((ValueError, TypeError), match="scattered_starts must be"):
        BrawlEngine(1, scattered_starts=share)


def test_knocked_out_player_stays_where_it_died_then_respawns():
    engine = BrawlEngine(1)
    engine.reset(p0_side=1)
    s = engine.state
    s.x[0, 0] = 14.5  # past the blast line
    engine.step(keys_of())
    assert s.state[0, 0] == P.KO and s.stocks[0, 0] == 2
    where = (s.x[0, 0], s.y[0, 0])
    for _ in range(89):
        engine.step(keys_of())
        assert s.state[0, 0] == P.KO and (s.x[0, 0], s.y[0, 0]) == where
    engine.step(keys_of())
    assert s.state[0, 0] == P.IN_AIR and s.x[0, 0] == 5.0 and s.damage[0, 0] == 0
    assert s.jumps_left[0, 0] == 0 and s.recoveries_left[0, 0] == 0


def test_hit_on_player_1_lands_the_same_frame_and_on_player_0_the_next():
    """Player 0 updates first: its hit stuns player 1 in the same frame; player 1's hit waits a frame."""
    for attacker in (0, 1):
        engine = BrawlEngine(1)
        engine.reset(p0_side=1 if attacker == 0 else -1)
        s = engine.state
        for _ in range(10):
            engine.step(keys_of())
        s.x[0, 1 - attacker] = s.x[0, attacker] - 0.6  # the victim stands just in front (attacker faces left)
        for _ in range(2):
            engine.step(keys_of())
        frames = 0
        while s.state[0, 1 - attacker] != P.STUN and frames < 30:
            ev = engine.step(keys_of((attacker, P.K_LIGHT)))
            frames += 1
            if ev.hit[0, attacker]:
                hit_frame = frames
        assert s.state[0, 1 - attacker] == P.STUN
        assert frames - hit_frame == (0 if attacker == 0 else 1)


def test_knockback_is_added_to_the_velocity_and_grows_with_damage():
    speeds = []
    for damage in (0.0, 300.0):
        engine = BrawlEngine(1)
        engine.reset(p0_side=1)
        s = engine.state
        for _ in range(10):
            engine.step(keys_of())
        s.x[0, 1], s.y[0, 1], s.vy[0, 1] = s.x[0, 0] - 0.6, s.y[0, 0], 0.0
        s.damage[0, 1] = damage
        for _ in range(2):
            engine.step(keys_of())
        for _ in range(12):  # a side light (no pull: its hit carries knockback)
            ev = engine.step(keys_of((0, P.K_A), (0, P.K_LIGHT)))
            if ev.hit[0, 0]:
                break
        speeds.append(np.hypot(s.vx[0, 1], s.vy[0, 1]))
    assert speeds[1] > 2 * speeds[0] > 0


def test_damage_is_capped_at_700():
    engine = BrawlEngine(1)
    engine.reset(p0_side=1)
    s = engine.state
    for _ in range(10):
        engine.step(keys_of())
    s.damage[0, 1] = 699.0
    s.x[0, 1] = s.x[0, 0] - 0.6
    for _ in range(14):
        engine.step(keys_of((0, P.K_LIGHT)))
    assert s.damage[0, 1] == 700.0 and s.damage_taken_frame.max() <= 13.0


def test_weapon_pickup_drop_and_the_relock():
    """h on a ready spawner weapon takes it; h again drops it in front; the dropper waits 15 frames."""
    engine = BrawlEngine(1)
    engine.reset(p0_side=1)
    s = engine.state
    s.spawner_last_spawn[0] = 10_000  # no natural spawns in this test
    for _ in range(10):
        engine.step(keys_of())
    s.weapon_kind[0, 0] = P.HAMMER
    s.weapon_x[0, 0] = s.weapon_seen_x[0, 0] = s.x[0, 0]
    s.weapon_y[0, 0] = s.weapon_seen_y[0, 0] = s.y[0, 0]
    s.weapon_born[0, 0] = 10
    s.spawner_ready[0, 0] = True
    ev = engine.step(keys_of((0, P.K_PICKUP)))
    assert ev.weapon_equip[0, 0] == P.HAMMER and s.weapon[0, 0] == P.HAMMER and s.weapon_kind[0, 0] == 0
    engine.step(keys_of())
    x, y, facing = s.x[0, 0], s.y[0, 0], s.facing[0, 0]
    ev = engine.step(keys_of((0, P.K_PICKUP)))
    assert ev.weapon_drop[0, 0] and s.weapon[0, 0] == P.PUNCH
    column = 2 + int(np.argmax(s.weapon_kind[0, 2:] > 0))
    assert s.weapon_kind[0, column] == P.HAMMER
    assert s.weapon_home_x[0, column] == pytest.approx(x + 0.1 * facing)
    assert s.weapon_home_y[0, column] == pytest.approx(y + 0.27)
    assert s.pickup_lock[0, 0] == s.frame[0] + 15


def test_every_move_of_every_weapon_runs_and_ends():
    """Start each of the 11 moves of each weapon from its keys, on the ground or in the air, and see it end."""
    ground = {  # the keys that start each move: one table on the ground, one in the air (alike in shape)
        P.NLIGHT: [P.K_LIGHT],
        P.DLIGHT: [P.K_S, P.K_LIGHT],
        P.SLIGHT: [P.K_A, P.K_LIGHT],
        P.NSIG: [P.K_HEAVY],
        P.DSIG: [P.K_S, P.K_HEAVY],
        P.SSIG: [P.K_A, P.K_HEAVY],
    }
    air = {
        P.NAIR: [P.K_LIGHT],
        P.DAIR: [P.K_S, P.K_LIGHT],
        P.SAIR: [P.K_A, P.K_LIGHT],
        P.RECOVERY: [P.K_HEAVY],
        P.GROUNDPOUND: [P.K_S, P.K_HEAVY],
    }
    for weapon in (P.PUNCH, P.SPEAR, P.HAMMER):
        for move, keys in {**ground, **air}.items():
            engine = BrawlEngine(1)
            engine.reset(p0_side=1)
            s = engine.state
            s.spawner_last_spawn[0] = 10_000
            for _ in range(10):
                engine.step(keys_of())
            s.weapon[0, 0] = weapon
            if move in air:
                engine.step(keys_of((0, P.K_JUMP)))
                engine.step(keys_of())
            engine.step(keys_of(*((0, k) for k in keys)))
            seen = int(s.move[0, 0])
            frames = 0
            while s.state[0, 0] == P.ATTACK and frames < 200:
                engine.step(keys_of())
                frames += 1
            assert seen == move, (P.WEAPON_NAMES[weapon], P.MOVE_NAMES[move - 2])
            assert s.state[0, 0] != P.ATTACK, (P.WEAPON_NAMES[weapon], P.MOVE_NAMES[move - 2])


def test_state_round_trip_is_bit_identical():
    keys = random_keys(3, 200, 3, press=0.3)
    a = BrawlEngine(3, seed=5)
    a.reset()
    run(a, keys[:100])
    saved = a.get_state()
    b = BrawlEngine(3, seed=99)
    b.set_state(saved)
    run(a, keys[100:])
    run(b, keys[100:])
    assert all(np.array_equal(getattr(a.state, k), getattr(b.state, k)) for k in a.state.arrays())
    with pytest.raises(ValueError, match="different n_envs"):
        BrawlEngine(2).set_state(saved)


def test_params_are_the_originals():
    p = DEFAULT_PARAMS
    assert (p.gravity, p.walk_speed, p.jump_speed, p.max_fall_speed, p.respawn_frames) == (17.808, 6.75, 8.9, 12.0, 90)
    assert p.knockback_scale == pytest.approx(0.096) and p.collision_slop == pytest.approx(0.1)
