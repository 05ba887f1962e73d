"""The batched core: determinism, batch parity, player-swap symmetry, invariants, physics facts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from environment import params as P
from environment.engine import BrawlEngine
from environment.observation import ObservationBuilder, observation_bounds

DT = P.DT


def random_keys(seed: int, frames: int, n: int, p: float = 0.25) -> np.ndarray:
    return np.random.default_rng(seed).random((frames, n, 2, P.N_KEYS)) < p


def rollout(engine: BrawlEngine, keys: np.ndarray) -> np.ndarray:
    """Observations (frames, n, 2, 64) over a key sequence, restarting finished matches."""
    builder = ObservationBuilder(engine.n)
    out = []
    for frame_keys in keys:
        ev = engine.step(frame_keys)
        out.append(builder.build(engine.state).copy())
        if ev.done.any():
            engine.reset(np.flatnonzero(ev.done))
    return np.stack(out)


def settled_engine(n: int = 1, p0_side: int = 1, frames: int = 40) -> BrawlEngine:
    """Matches where both players have landed on their start grounds."""
    engine = BrawlEngine(n, seed=0)
    engine.reset(p0_side=p0_side)
    for _ in range(frames):
        engine.step(np.zeros((n, 2, P.N_KEYS), bool))
    assert engine.state.grounded.all()
    return engine


def hold(engine: BrawlEngine, frames: int, p0_keys=(), p1_keys=()) -> list[tuple[float, float, float, float]]:
    """Step with keys held; returns player 0's (x, y, vx, vy) after each frame."""
    keys = np.zeros((engine.n, 2, P.N_KEYS), bool)
    keys[:, 0, list(p0_keys)] = True
    keys[:, 1, list(p1_keys)] = True
    s = engine.state
    trace = []
    for _ in range(frames):
        engine.step(keys)
        trace.append((float(s.x[0, 0]), float(s.y[0, 0]), float(s.vx[0, 0]), float(s.vy[0, 0])))
    return trace


# --- determinism and parity ---------------------------------------------------------------
def test_same_seed_same_trajectory_and_different_seed_differs():
    keys = random_keys(1, 700, 4)
    a = rollout(_fresh(4, seed=7), keys)
    b = rollout(_fresh(4, seed=7), keys)
    c = rollout(_fresh(4, seed=8), keys)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def _fresh(n: int, seed: int) -> BrawlEngine:
    engine = BrawlEngine(n, seed=seed, max_timesteps=600)
    engine.reset()
    return engine


def test_batch_of_8_equals_8_single_matches():
    keys = random_keys(2, 800, 8)
    batched = rollout(_fresh(8, seed=100), keys)
    for i in range(8):
        single = rollout(_fresh(1, seed=100 + i), keys[:, i : i + 1])
        np.testing.assert_array_equal(batched[:, i], single[:, 0], err_msg=f"match {i}")


def test_swapping_players_mirrors_observations_and_outcome():
    keys = random_keys(3, 900, 16, p=0.3)
    a = BrawlEngine(16, seed=5, max_timesteps=900)
    a.reset(p0_side=1)
    b = BrawlEngine(16, seed=5, max_timesteps=900)
    b.reset(p0_side=-1)  # player 1 of b stands where player 0 of a stood
    ba, bb = ObservationBuilder(16), ObservationBuilder(16)
    results_a, results_b = [], []
    dealt = 0.0
    for frame_keys in keys:
        ea = a.step(frame_keys)
        eb = b.step(frame_keys[:, ::-1])
        dealt += float(ea.damage_dealt.sum())
        np.testing.assert_array_equal(ba.build(a.state), bb.build(b.state)[:, ::-1])
        np.testing.assert_array_equal(ea.damage_dealt, eb.damage_dealt[:, ::-1])
        if ea.done.any():
            results_a.append(ea.result.copy())
            results_b.append(eb.result.copy())
            break
    swap = {P.RESULT_P0_WINS: P.RESULT_P1_WINS, P.RESULT_P1_WINS: P.RESULT_P0_WINS}
    for ra, rb in zip(results_a, results_b, strict=True):
        assert [swap.get(int(r), int(r)) for r in ra] == rb.tolist()
    assert dealt > 0, "the symmetric rollout should include hits"


# --- invariants (property-based) ------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), press=st.floats(0.05, 0.6), horizon=st.integers(50, 400))
def test_invariants_hold_under_random_play(seed, press, horizon):
    n = 8
    engine = BrawlEngine(n, seed=seed, max_timesteps=horizon)
    engine.reset()
    builder = ObservationBuilder(n)
    low, high = observation_bounds()
    rng = np.random.default_rng(seed)
    stocks = engine.state.stocks.copy()
    ended = np.zeros(n, bool)
    for frame in range(horizon):
        ev = engine.step(rng.random((n, 2, P.N_KEYS)) < press)
        obs = builder.build(engine.state)
        assert np.isfinite(obs).all()
        assert (obs >= low).all() and (obs <= high).all(), np.argwhere((obs < low) | (obs > high))[:3]
        s = engine.state
        assert ((s.damage >= 0) & (s.damage <= 700)).all()
        assert ((s.stocks >= 0) & (s.stocks <= 3)).all()
        assert (s.stocks <= stocks).all(), "stocks never increase within a match"
        stocks = s.stocks.copy()
        ended |= ev.done
        if frame == horizon - 1:
            assert ended.all(), "every match ends by max_timesteps"
        elif ev.done.any():  # a match that ended on stocks starts again; its stocks refill
            engine.reset(np.flatnonzero(ev.done))
            stocks = engine.state.stocks.copy()


def test_float_actions_and_bad_input():
    engine = BrawlEngine(2, seed=0)
    engine.reset()
    engine.step(np.full((2, 2, 10), 0.7, np.float32))  # floats > 0.5 count as pressed
    assert engine.state.prev_keys.all()
    with pytest.raises(ValueError, match="shape"):
        engine.step(np.zeros((2, 10)))
    with pytest.raises(ValueError, match="NaN"):
        engine.step(np.full((2, 2, 10), np.nan))
    with pytest.raises(TypeError, match="dtype"):
        engine.step(np.full((2, 2, 10), "x"))
    with pytest.raises(ValueError, match="positive"):
        BrawlEngine(0)
    with pytest.raises(ValueError, match="max_timesteps"):
        BrawlEngine(2, max_timesteps=0)


def test_step_after_match_end_requires_reset():
    engine = BrawlEngine(1, seed=0, max_timesteps=3)
    engine.reset()
    for _ in range(3):
        ev = engine.step(np.zeros((1, 2, 10), bool))
    assert ev.done[0] and ev.truncated[0] and ev.result[0] == P.RESULT_DRAW
    with pytest.raises(RuntimeError, match="reset"):
        engine.step(np.zeros((1, 2, 10), bool))
    engine.reset()
    engine.step(np.zeros((1, 2, 10), bool))


# --- physics facts (DESIGN §3) --------------------------------------------------------------
def test_jump_height_is_about_2_2_units():
    engine = settled_engine()
    y0 = float(engine.state.y[0, 0])
    trace = hold(engine, 1, p0_keys=[P.K_JUMP]) + hold(engine, 40)
    apex = min(y for _, y, _, _ in trace)
    assert y0 - apex == pytest.approx(8.9**2 / (2 * 17.808), abs=0.15)


def test_walk_speed():
    engine = settled_engine(p0_side=1)  # player 0 on the right ground at x=5, facing left
    trace = hold(engine, 6, p0_keys=[P.K_A])
    x = [t[0] for t in trace]
    assert trace[-1][2] == pytest.approx(-6.75)
    assert x[-1] - x[-2] == pytest.approx(-6.75 * DT, abs=1e-5)


def test_dash_then_sprint():
    engine = settled_engine(p0_side=1)
    keys = np.zeros((1, 2, 10), bool)
    keys[0, 0, [P.K_A, P.K_DODGE]] = True
    engine.step(keys)  # press l with a held: dash left
    assert engine.state.state[0, 0] == P.DASH
    trace = [(float(engine.state.vx[0, 0]), int(engine.state.state[0, 0]))]
    trace += [(t[2], int(engine.state.state[0, 0])) for t in hold(engine, 1, p0_keys=[P.K_A])]
    for _ in range(10):
        hold(engine, 1, p0_keys=[P.K_A])
        trace.append((float(engine.state.vx[0, 0]), int(engine.state.state[0, 0])))
    dash = [v for v, s in trace if s == P.DASH]
    sprint = [v for v, s in trace if s == P.SPRINTING]
    assert len(dash) == 9 and all(v == pytest.approx(-10.0) for v in dash)
    assert sprint and all(v == pytest.approx(-8.0) for v in sprint)


def test_knockout_at_blast_zone_costs_a_stock_and_respawns_after_90_frames():
    engine = settled_engine(p0_side=1)
    s = engine.state
    s.x[0, 0], s.vx[0, 0], s.grounded[0, 0], s.state[0, 0] = 13.95, 9.0, False, P.IN_AIR
    s.damage[0, 0], s.weapon[0, 0] = 120.0, P.SPEAR
    ev = engine.step(np.zeros((1, 2, 10), bool))
    assert ev.knocked_out[0].tolist() == [True, False]
    assert s.stocks[0].tolist() == [2, 3] and s.state[0, 0] == P.KO
    assert s.damage[0, 0] == 0 and s.weapon[0, 0] == P.PUNCH
    hold(engine, 89)
    assert s.state[0, 0] == P.KO
    hold(engine, 1)
    assert s.state[0, 0] != P.KO and s.x[0, 0] == pytest.approx(5.0)


def _knockback_speed(target_damage: float) -> float:
    engine = settled_engine(p0_side=1)
    s = engine.state
    s.x[0, 1] = s.x[0, 0] - 1.2  # player 1 just left of player 0 (who faces left)
    s.y[0, 1] = s.y[0, 0]
    s.damage[0, 1] = target_damage
    keys = np.zeros((1, 2, 10), bool)
    keys[0, 0, P.K_LIGHT] = True
    for _ in range(12):
        ev = engine.step(keys)
        if ev.hit[0, 0]:
            return float(np.hypot(s.vx[0, 1], s.vy[0, 1]))
    raise AssertionError("the jab never hit")


def test_knockback_grows_with_damage():
    low, mid, high = _knockback_speed(0.0), _knockback_speed(100.0), _knockback_speed(300.0)
    assert low < mid < high
    assert high > 3 * low


def test_combo_when_hitting_a_stunned_player():
    engine = settled_engine(p0_side=1)
    s = engine.state
    s.x[0, 1], s.y[0, 1] = s.x[0, 0] - 1.0, s.y[0, 0]
    keys = np.zeros((1, 2, 10), bool)
    keys[0, 0, P.K_LIGHT] = True
    hits, combos = 0, 0
    for _ in range(60):
        ev = engine.step(keys)
        hits += ev.hit[0, 0]
        combos += ev.combo[0, 0]
        s.x[0, 1] = s.x[0, 0] - 1.0  # keep the target in range
    assert hits >= 2 and combos >= 1


def test_weapon_spawn_timing_and_despawn():
    engine = BrawlEngine(64, seed=3, max_timesteps=2700)
    engine.reset()
    s = engine.state
    spawned_at = np.full((64, 2), -1)
    despawned_at = np.full((64, 2), -1)
    idle = np.zeros((64, 2, 10), bool)
    for frame in range(1, 1100):
        engine.step(idle)
        present = s.slot_kind[:, :2] > 0
        spawned_at[(spawned_at < 0) & present] = frame
        despawned_at[(spawned_at > 0) & (despawned_at < 0) & ~present] = frame
    assert ((spawned_at >= 500) & (spawned_at <= 701)).all(), spawned_at.min()
    lifetime = despawned_at - spawned_at
    assert (lifetime == 350).all()
    kinds = set(np.unique(s.slot_kind[:, :2]).tolist()) | {1, 2}
    assert kinds <= {0, 1, 2}


def test_pickup_and_drop_with_h():
    engine = settled_engine(p0_side=1)
    s = engine.state
    s.slot_kind[0, 0], s.slot_x[0, 0], s.slot_y[0, 0], s.slot_timer[0, 0] = P.HAMMER, s.x[0, 0], 0.7, 300
    keys = np.zeros((1, 2, 10), bool)
    keys[0, 0, P.K_PICKUP] = True
    ev = engine.step(keys)
    assert ev.weapon_equip[0, 0] == P.HAMMER and s.weapon[0, 0] == P.HAMMER and s.slot_kind[0, 0] == 0
    engine.step(np.zeros((1, 2, 10), bool))  # release h
    ev = engine.step(keys)  # press again: drop
    assert ev.weapon_drop[0, 0] and s.weapon[0, 0] == P.PUNCH
    assert s.slot_kind[0, 2] == P.HAMMER and s.slot_lock[0, 2] == 15
    engine.step(np.zeros((1, 2, 10), bool))
    ev = engine.step(keys)  # locked for 15 frames: no re-pickup yet
    assert s.weapon[0, 0] == P.PUNCH
    for _ in range(14):
        engine.step(np.zeros((1, 2, 10), bool))
    ev = engine.step(keys)
    assert s.weapon[0, 0] == P.HAMMER


def test_moving_platform_shuttles_and_carries_riders():
    engine = BrawlEngine(1, seed=0)
    engine.reset(p0_side=1)
    s = engine.state
    xs, ys = [], []
    for _ in range(600):
        engine.step(np.zeros((1, 2, 10), bool))
        xs.append(float(s.platform_x[0]))
        ys.append(float(s.platform_y[0]))
    assert min(xs) == pytest.approx(-1.0, abs=0.02) and max(xs) == pytest.approx(1.0, abs=0.02)
    assert max(np.hypot(np.diff(xs), np.diff(ys))) * P.FPS == pytest.approx(1.03, abs=0.02)
    # Drop player 0 onto the platform and check it rides along.
    s.x[0, 0], s.y[0, 0] = s.platform_x[0], s.platform_y[0] - 1.0
    s.vx[0, 0] = s.vy[0, 0] = 0.0
    s.grounded[0, 0], s.state[0, 0] = False, P.IN_AIR
    for _ in range(20):
        engine.step(np.zeros((1, 2, 10), bool))
    assert s.on_platform[0, 0]
    offset = float(s.x[0, 0] - s.platform_x[0])
    for _ in range(30):
        engine.step(np.zeros((1, 2, 10), bool))
    assert float(s.x[0, 0] - s.platform_x[0]) == pytest.approx(offset, abs=1e-4)
    assert float(s.platform_y[0] - 0.1 - (s.y[0, 0] + 0.5)) == pytest.approx(0.0, abs=1e-4)


def test_damage_is_capped_at_700():
    engine = settled_engine(p0_side=1)
    s = engine.state
    s.damage[0, 1] = 699.0
    s.x[0, 1], s.y[0, 1] = s.x[0, 0] - 1.0, s.y[0, 0]
    keys = np.zeros((1, 2, 10), bool)
    keys[0, 0, P.K_LIGHT] = True
    for _ in range(12):
        ev = engine.step(keys)
        if ev.hit[0, 0]:
            break
    assert s.damage[0, 1] == 700.0 and ev.damage_dealt[0, 0] == pytest.approx(1.0)


def test_match_ends_on_stocks_with_a_winner():
    engine = settled_engine(p0_side=1)
    s = engine.state
    s.stocks[0, 1] = 1
    s.x[0, 1], s.vx[0, 1], s.state[0, 1], s.grounded[0, 1] = -13.99, -5.0, P.IN_AIR, False
    ev = engine.step(np.zeros((1, 2, 10), bool))
    assert ev.done[0] and not ev.truncated[0] and ev.result[0] == P.RESULT_P0_WINS


def test_every_move_of_every_weapon_runs_and_ends():
    """All 33 moves start from the right inputs, run their phases and end."""
    t = P.MOVE_TABLE
    assert t.frames.shape == (3, 11, P.MAX_PHASES)
    for weapon in range(3):
        for move in range(P.N_MOVES):
            assert t.frames[weapon, move, 0] > 0
            assert t.active[weapon, move].any(), (P.WEAPON_NAMES[weapon], P.MOVE_NAMES[move])
    # Hammer is slow and strong, Spear reaches far, Punch is fast.
    startup = t.frames[:, :, 0]
    assert (startup[2] >= startup[0]).all()
    reach = t.hitbox[..., 0].max(axis=(1, 2))
    assert reach[1] > reach[0]
    assert t.damage[2].max() > t.damage[0].max()
    assert t.charge_max.max() > t.charge_min.max() > 0


def test_air_dodge_keeps_momentum_without_gravity_and_is_invulnerable():
    engine = settled_engine(p0_side=1)
    s = engine.state
    s.x[0, 0], s.y[0, 0], s.vx[0, 0], s.vy[0, 0] = 4.0, -2.0, 3.0, -1.0
    s.grounded[0, 0], s.state[0, 0] = False, P.IN_AIR
    keys = np.zeros((1, 2, 10), bool)
    keys[0, 0, P.K_DODGE] = True
    engine.step(keys)
    assert s.state[0, 0] == P.DODGE
    for _ in range(8):
        engine.step(np.zeros((1, 2, 10), bool))
        assert s.state[0, 0] == P.DODGE
        assert (s.vx[0, 0], s.vy[0, 0]) == (pytest.approx(3.0), pytest.approx(-1.0))
    # Invulnerable: a jab that would connect does nothing while dodging.
    engine = settled_engine(p0_side=1)
    s = engine.state
    s.x[0, 1], s.y[0, 1] = s.x[0, 0] - 1.0, s.y[0, 0]
    keys = np.zeros((1, 2, 10), bool)
    keys[0, 1, P.K_DODGE] = True  # player 1 dodges in place...
    keys[0, 0, P.K_LIGHT] = True  # ...as player 0 jabs
    hits = 0
    for _ in range(8):
        hits += engine.step(keys).hit[0, 0]
        keys[0, 1, P.K_DODGE] = False
    assert hits == 0
