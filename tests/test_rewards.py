"""Reward terms and RewardManager on hand-made frames, plus one run on the real engine."""

from __future__ import annotations

import numpy as np
import pytest

from environment import params as P
from environment import rewards as R
from environment.engine import BrawlEngine, StepEvents
from environment.rewards import RewardContext, RewardManager, RewTerm
from environment.state import MatchState, allocate

DT = 1.0 / 30.0


def make_ctx(n: int = 1, player: int = 0) -> RewardContext:
    """A quiet frame: both players standing still at x = ±3 on y = 0, nothing happened."""
    s = allocate(n)
    s.state[:] = P.STANDING
    s.x[:] = [-3.0, 3.0]
    keys = np.zeros((n, 2, P.N_KEYS), bool)
    return RewardContext(s, s.x.copy(), s.y.copy(), StepEvents.allocate(n), keys, player=player)


def single(term: RewTerm, ctx: RewardContext, signal: str | None = None) -> np.ndarray:
    """Total reward of a manager holding only ``term``."""
    if signal is None:
        return RewardManager({"t": term}).compute(ctx)
    return RewardManager(signal_subscriptions={"t": (signal, term)}).compute(ctx)


# --- dense terms -----------------------------------------------------------------------
def test_damage_interaction_modes():
    ctx = make_ctx()
    ctx.events.damage_dealt[0] = [14.0, 7.0]
    assert R.damage_interaction(ctx)[0] == pytest.approx(0.05)
    assert R.damage_interaction(ctx, mode="dealt_only")[0] == pytest.approx(0.1)
    assert R.damage_interaction(ctx, mode="taken_only")[0] == pytest.approx(-0.05)
    ctx.player = 1
    assert R.damage_interaction(ctx)[0] == pytest.approx(-0.05)
    with pytest.raises(ValueError, match="mode"):
        R.damage_interaction(ctx, mode="bogus")


def test_danger_zone_only_low_and_alive():
    ctx = make_ctx(3)
    ctx.state.y[:, 0] = [5.0, 3.0, 5.0]
    ctx.state.state[2, 0] = P.KO
    np.testing.assert_allclose(R.danger_zone(ctx), [-DT, 0.0, 0.0])
    np.testing.assert_allclose(R.danger_zone(ctx, height=2.0), [-DT, -DT, 0.0])


def test_attack_spam_and_too_many_keys():
    ctx = make_ctx(2)
    ctx.state.state[0, 0] = P.ATTACK
    ctx.state.state[1, 1] = P.ATTACK  # the opponent attacking costs the learner nothing
    np.testing.assert_allclose(R.attack_spam(ctx), [-DT, 0.0])
    ctx.keys[0, 0, :4] = True
    ctx.keys[1, 0, :3] = True
    ctx.keys[1, 1, :] = True
    np.testing.assert_allclose(R.too_many_keys(ctx), [-DT, 0.0])
    np.testing.assert_allclose(R.too_many_keys(ctx, max_keys=2), [-DT, -DT])
    ctx.keys = ctx.keys.astype(np.float32) * 0.9  # float keys: > 0.5 is pressed
    np.testing.assert_allclose(R.too_many_keys(ctx), [-DT, 0.0])


def test_closing_distance_sign_and_ko():
    ctx = make_ctx(3)
    ctx.prev_x[:] = [[-4.0, 4.0], [-2.0, 2.0], [-4.0, 4.0]]
    ctx.state.state[2, 1] = P.KO
    np.testing.assert_allclose(R.closing_distance(ctx), [2.0, -2.0, 0.0], atol=1e-6)
    ctx.state.state[2, 1] = P.IN_AIR
    ctx.events.knocked_out[2, 1] = True
    assert R.closing_distance(ctx)[2] == 0.0


def test_own_approach_pays_only_the_learners_own_step_toward_the_opponent():
    # Row 0: the learner walked 1 toward a standing opponent. Row 1: the learner stood still while
    # the opponent walked 1 in (closing_distance pays that, own_approach does not). Row 2: the
    # learner stepped 1 away. Row 3: an approach on a knockout's frame.
    ctx = make_ctx(4)
    ctx.state.grounded[:] = True
    ctx.prev_x[:] = [[-4.0, 3.0], [-3.0, 4.0], [-2.0, 3.0], [-4.0, 3.0]]
    ctx.events.knocked_out[3, 1] = True
    np.testing.assert_allclose(R.own_approach(ctx), [1.0, 0.0, -1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(R.closing_distance(ctx), [1.0, 1.0, -1.0, 0.0], atol=1e-6)
    ctx.player = 1  # from the other slot, row 1 is the opponent's own step in
    np.testing.assert_allclose(R.own_approach(ctx)[:2], [0.0, 1.0], atol=1e-6)
    # A step toward the opponent that ends in the air (off a ledge, over the gap) earns nothing.
    ctx = make_ctx(2)
    ctx.prev_x[:] = [[-4.0, 3.0], [-4.0, 3.0]]
    ctx.state.grounded[:, 0] = [False, True]
    np.testing.assert_allclose(R.own_approach(ctx), [0.0, 1.0], atol=1e-6)


def test_distance_cost_charges_each_unit_beyond_near_every_second():
    # Row 0: 7 apart (4 beyond near 3). Row 1: 2 apart (within reach: free). Row 2: 7 apart with
    # the opponent KO. Row 3: 7 apart on a knockout's frame.
    ctx = make_ctx(4)
    ctx.state.x[:] = [[-3.5, 3.5], [-1.0, 1.0], [-3.5, 3.5], [-3.5, 3.5]]
    ctx.state.y[:] = 0.0
    ctx.state.state[2, 1] = P.KO
    ctx.events.knocked_out[3, 0] = True
    np.testing.assert_allclose(R.distance_cost(ctx), [-4.0 * DT, 0.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(R.distance_cost(ctx, near=6.0)[0], -1.0 * DT, atol=1e-6)
    ctx.player = 1  # the same for either slot: it is the players' distance
    np.testing.assert_allclose(R.distance_cost(ctx)[0], -4.0 * DT, atol=1e-6)


def test_edge_pressure():
    ctx = make_ctx(4)
    ctx.state.x[:, 1] = [10.5, -10.5, 3.0, 3.0]
    ctx.state.y[3, 1] = 6.1  # halfway from 4.2 to the blast line at 8
    np.testing.assert_allclose(R.edge_pressure(ctx), [0.5 * DT, 0.5 * DT, 0.0, 0.5 * DT], rtol=1e-5)
    ctx.state.state[0, 1] = P.KO
    assert R.edge_pressure(ctx)[0] == 0.0


def test_toward_weapon_only_when_unarmed():
    ctx = make_ctx(4)
    s = ctx.state
    ctx.prev_x[:, 0] = -3.0
    s.x[:, 0] = -2.0
    s.weapon_kind[:, 0] = P.SPEAR
    s.weapon_x[:, 0], s.weapon_y[:, 0] = 4.0, 0.0
    s.weapon_kind[:, 3] = P.HAMMER  # nearer, behind the learner: it walked away from this one
    s.weapon_x[:, 3], s.weapon_y[:, 3] = -4.0, 0.0
    s.weapon[1, 0] = P.HAMMER  # armed
    s.weapon_kind[2] = 0  # nothing lying
    s.weapon[3, 1] = P.SPEAR  # only the opponent armed: irrelevant
    s.weapon_kind[3, 3] = 0  # only the spear in front
    np.testing.assert_allclose(R.toward_weapon(ctx), [-1.0, 0.0, 0.0, 1.0], atol=1e-6)


# --- signal terms ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "result, player, expected",
    [
        (P.RESULT_P0_WINS, 0, 1.0),
        (P.RESULT_P1_WINS, 0, -1.0),
        (P.RESULT_DRAW, 0, 0.0),
        (P.RESULT_P0_WINS, 1, -1.0),
        (P.RESULT_P1_WINS, 1, 1.0),
    ],
)
def test_on_win(result, player, expected):
    ctx = make_ctx(2, player=player)
    ctx.events.done[0] = True
    ctx.events.result[0] = result
    np.testing.assert_array_equal(R.on_win(ctx), [expected, 0.0])


def test_on_knockout_both_directions():
    ctx = make_ctx(4)
    ctx.events.knocked_out[:] = [[False, True], [True, False], [True, True], [False, False]]
    np.testing.assert_array_equal(R.on_knockout(ctx), [1, -1, 0, 0])
    np.testing.assert_array_equal(R.on_knockout_dealt(ctx), [1, 0, 1, 0])
    np.testing.assert_array_equal(R.on_knockout_taken(ctx), [0, 1, 1, 0])
    total = single(RewTerm(R.on_knockout_taken, -8.0), ctx, "knockout")
    np.testing.assert_array_equal(total, [0, -8, -8, 0])


def test_combo_equip_drop():
    ctx = make_ctx(3)
    ctx.events.combo[:] = [[True, False], [False, True], [True, True]]
    np.testing.assert_array_equal(R.on_combo(ctx), [1, 0, 1])
    ctx.events.weapon_equip[:] = [[P.HAMMER, 0], [P.SPEAR, P.HAMMER], [0, P.SPEAR]]
    np.testing.assert_allclose(R.on_equip(ctx), [1.0, 0.5, 0.0])
    np.testing.assert_allclose(R.on_equip(ctx, hammer=3.0, spear=2.0), [3.0, 2.0, 0.0])
    ctx.events.weapon_drop[:] = [[True, False], [False, True], [False, False]]
    np.testing.assert_array_equal(R.on_drop(ctx), [1, 0, 0])
    np.testing.assert_array_equal(single(RewTerm(R.on_drop, -2.0), ctx, "weapon_drop"), [-2, 0, 0])


# --- manager ---------------------------------------------------------------------------
def test_default_manager_is_the_outcome_reward_with_its_totals():
    mgr = R.default_reward_manager()
    assert mgr.term_names == R.sparse_reward_manager().term_names == ["damage_interaction", "win", "knockout"]
    ctx = make_ctx(3)
    ctx.events.damage_dealt[0] = [14.0, 7.0]
    ctx.events.knocked_out[1, 1] = True
    ctx.events.combo[1, 0] = True  # no shaping: a combo or a pickup is worth nothing by itself
    ctx.events.weapon_equip[2, 0] = P.HAMMER
    ctx.events.done[2], ctx.events.result[2] = True, P.RESULT_P1_WINS
    total = mgr.compute(ctx)
    assert total.dtype == np.float32 and total.shape == (3,)
    np.testing.assert_allclose(total, [0.05, 50.0, -100.0], rtol=1e-6)
    np.testing.assert_allclose(mgr.last_terms["knockout"], [0, 50, 0])
    np.testing.assert_allclose(mgr.last_terms["win"], [0, 0, -100])
    np.testing.assert_allclose(sum(mgr.last_terms.values()), total, rtol=1e-6)


def test_sparse_manager():
    mgr = R.sparse_reward_manager()
    ctx = make_ctx(2)
    ctx.events.knocked_out[:, 1] = True
    ctx.events.done[1], ctx.events.result[1] = True, P.RESULT_P0_WINS
    np.testing.assert_allclose(mgr.compute(ctx), [50.0, 150.0])


def test_episode_sums_and_pop():
    mgr = RewardManager({"spam": RewTerm(R.attack_spam, 3.0)}, {"ko": ("knockout", RewTerm(R.on_knockout, 2.0))})
    ctx = make_ctx(3)
    ctx.state.state[:, 0] = P.ATTACK
    for _ in range(3):
        mgr.compute(ctx)
    ctx.events.knocked_out[1, 1] = True
    mgr.compute(ctx)
    np.testing.assert_allclose(mgr.episode_sums["spam"], [-0.4] * 3, rtol=1e-6)
    np.testing.assert_allclose(mgr.episode_sums["ko"], [0, 2, 0])
    popped = mgr.pop_episode_sums([1, 2])
    np.testing.assert_allclose(popped["spam"], [-0.4, -0.4], rtol=1e-6)
    np.testing.assert_allclose(popped["ko"], [2, 0])
    np.testing.assert_allclose(mgr.episode_sums["spam"], [-0.4, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(mgr.episode_sums["ko"], [0, 0, 0])
    popped["spam"][0] = 99.0  # a copy, not a view
    assert mgr.episode_sums["spam"][1] == 0.0


def test_signal_func_called_only_when_fired_and_masked():
    calls = []

    def count(ctx):
        calls.append(1)
        return np.ones(ctx.n)  # deliberately non-zero everywhere: the manager masks it

    mgr = RewardManager(signal_subscriptions={"c": ("weapon_drop", RewTerm(count, 2.0))})
    ctx = make_ctx(3)
    for _ in range(5):
        np.testing.assert_array_equal(mgr.compute(ctx), 0.0)
    assert calls == []
    ctx.events.weapon_drop[1, 1] = True
    np.testing.assert_array_equal(mgr.compute(ctx), [0, 2, 0])
    assert len(calls) == 1
    ctx.events.weapon_drop[:] = False
    np.testing.assert_array_equal(mgr.compute(ctx), 0.0)
    np.testing.assert_array_equal(mgr.last_terms["c"], 0.0)
    assert len(calls) == 1


def test_validation_errors():
    with pytest.raises(ValueError, match=r"bogus.*knockout"):
        RewardManager(signal_subscriptions={"x": ("bogus", RewTerm(R.on_win))})
    with pytest.raises(TypeError, match="func must be callable"):
        RewTerm("not a function")
    for weight in (float("nan"), float("inf"), "1"):
        with pytest.raises(ValueError, match="weight"):
            RewTerm(R.on_win, weight)
    with pytest.raises(ValueError, match="'dz'"):
        RewardManager({"dz": RewTerm(R.danger_zone, params={"hieght": 3.0})})
    with pytest.raises(ValueError, match="twice"):
        RewardManager({"a": RewTerm(R.attack_spam)}, {"a": ("win", RewTerm(R.on_win))})


def test_wrong_shape_and_non_finite_name_the_term():
    ctx = make_ctx(4)
    with pytest.raises(ValueError, match="'short'"):
        RewardManager({"ok": RewTerm(R.attack_spam), "short": RewTerm(lambda c: np.zeros(3))}).compute(ctx)
    with pytest.raises(ValueError, match=r"'nan'.*non-finite"):
        RewardManager({"ok": RewTerm(R.attack_spam), "nan": RewTerm(lambda c: np.full(c.n, np.nan))}).compute(ctx)


def test_reset_resizes_buffers():
    mgr = R.default_reward_manager()
    mgr.compute(make_ctx(2))
    assert mgr.episode_sums["damage_interaction"].shape == (2,)
    assert mgr.compute(make_ctx(5)).shape == (5,)
    assert all(v.shape == (5,) for v in mgr.last_terms.values())
    with pytest.raises(ValueError, match="player must be 0 or 1"):
        make_ctx(1, player=2)


# --- symmetry ----------------------------------------------------------------------------
def all_terms_manager() -> RewardManager:
    dense = {
        "damage": R.damage_interaction,
        "danger": R.danger_zone,
        "spam": R.attack_spam,
        "keys": R.too_many_keys,
        "closing": R.closing_distance,
        "edge": R.edge_pressure,
        "weapon": R.toward_weapon,
    }
    signals = {
        "win": ("win", R.on_win),
        "ko": ("knockout", R.on_knockout),
        "ko_dealt": ("knockout", R.on_knockout_dealt),
        "ko_taken": ("knockout", R.on_knockout_taken),
        "combo": ("hit_during_stun", R.on_combo),
        "equip": ("weapon_equip", R.on_equip),
        "drop": ("weapon_drop", R.on_drop),
    }
    return RewardManager(
        {name: RewTerm(f, 1.5) for name, f in dense.items()},
        {name: (sig, RewTerm(f, -0.5)) for name, (sig, f) in signals.items()},
    )


def random_ctx(n: int, seed: int) -> RewardContext:
    rng = np.random.default_rng(seed)
    ctx = make_ctx(n)
    s, ev = ctx.state, ctx.events
    s.x[:] = rng.uniform(-15, 15, (n, 2))
    s.y[:] = rng.uniform(-2, 9, (n, 2))
    s.state[:] = rng.integers(0, 13, (n, 2))
    s.weapon[:] = rng.integers(0, 3, (n, 2))
    w = s.n_weapons
    s.weapon_kind[:] = rng.integers(0, 3, (n, w)) * (rng.random((n, w)) < 0.5)
    s.weapon_x[:] = rng.uniform(-7, 7, (n, w))
    s.weapon_y[:] = rng.uniform(0, 3, (n, w))
    ctx.prev_x[:] = s.x + rng.normal(0, 0.3, (n, 2))
    ctx.prev_y[:] = s.y + rng.normal(0, 0.3, (n, 2))
    ctx.keys[:] = rng.random((n, 2, P.N_KEYS)) < 0.35
    ev.damage_dealt[:] = rng.uniform(0, 20, (n, 2)) * (rng.random((n, 2)) < 0.3)
    ev.combo[:] = rng.random((n, 2)) < 0.2
    ev.knocked_out[:] = rng.random((n, 2)) < 0.2
    ev.weapon_equip[:] = rng.integers(0, 3, (n, 2)) * (rng.random((n, 2)) < 0.3)
    ev.weapon_drop[:] = rng.random((n, 2)) < 0.2
    ev.done[:] = rng.random(n) < 0.3
    ev.result[:] = np.where(ev.done, rng.integers(1, 4, n), 0)
    s.result[:] = ev.result
    return ctx


def swap_players(ctx: RewardContext) -> RewardContext:
    """The same frame with the two player slots exchanged, seen by the other player."""
    s: MatchState = ctx.state.copy()
    s.players[:] = s.players[:, ::-1].copy()  # weapons lie where they lie: the same for both players
    swap_result = np.array([0, 2, 1, 3], np.int8)
    s.result[:] = swap_result[s.result]
    ev = StepEvents(**{k: v.copy() for k, v in vars(ctx.events).items()})
    for name in ("hit", "damage_dealt", "combo", "knocked_out", "weapon_equip", "weapon_drop"):
        getattr(ev, name)[:] = getattr(ev, name)[:, ::-1].copy()
    ev.result[:] = swap_result[ev.result]
    return RewardContext(
        s,
        ctx.prev_x[:, ::-1].copy(),
        ctx.prev_y[:, ::-1].copy(),
        ev,
        ctx.keys[:, ::-1].copy(),
        ctx.params,
        player=1 - ctx.player,
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_player_symmetry(seed):
    ctx = random_ctx(200, seed)
    a, b = all_terms_manager(), all_terms_manager()
    total_a = a.compute(ctx)
    total_b = b.compute(swap_players(ctx))
    for name in a.term_names:
        np.testing.assert_allclose(a.last_terms[name], b.last_terms[name], atol=1e-6, err_msg=name)
        assert np.any(a.last_terms[name] != 0), name  # the random frame exercises every term
    np.testing.assert_allclose(total_a, total_b, atol=1e-5)


# --- the real engine ---------------------------------------------------------------------
def test_engine_integration_episode_sums():
    n, frames = 64, 300
    engine = BrawlEngine(n=n, max_timesteps=120, seed=3)
    engine.reset()
    mgr = all_terms_manager()
    rng = np.random.default_rng(0)
    mine = {name: np.zeros(n) for name in mgr.term_names}
    ended = 0
    for _ in range(frames):
        keys = rng.random((n, 2, P.N_KEYS)) < 0.25
        s = engine.state
        prev_x, prev_y = s.x.copy(), s.y.copy()
        ev = engine.step(keys)
        reward = mgr.compute(RewardContext(s, prev_x, prev_y, ev, keys))
        assert reward.shape == (n,) and reward.dtype == np.float32
        assert np.isfinite(reward).all()
        for name, values in mgr.last_terms.items():
            mine[name] += values
        done = np.flatnonzero(ev.done)
        if done.size:
            ended += done.size
            popped = mgr.pop_episode_sums(done)
            for name in mgr.term_names:
                np.testing.assert_allclose(popped[name], mine[name][done], atol=1e-6, err_msg=name)
                mine[name][done] = 0.0
            engine.reset(done)
    assert ended >= n  # every match ended at least once (max_timesteps 120)
    for name in mgr.term_names:
        np.testing.assert_allclose(mgr.episode_sums[name], mine[name], atol=1e-6, err_msg=name)
