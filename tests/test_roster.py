"""The scripted roster: registered by name, beats ConstantAgent, recovers, is vectorised, and its styles
play visibly differently (run with ``-s`` to print the behaviour fingerprints)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from environment import params as P
from environment.agents import OPP, BasedAgent, ScriptedAgent, agent_names, make_agent
from environment.engine import BrawlEngine
from environment.match import play_matches
from environment.observation import OBS_SIZE, ObservationBuilder, observation_bounds
from environment.params import DEFAULT_PARAMS, TOURNAMENT_PARAMS
from environment.roster import MOVE_REACH, MOVE_TRAVEL, ROSTER

NAMES = sorted(ROSTER)
REQUIRED = {"aggressive", "counter", "zoner", "weapon_seeker", "edge_guard", "human"}
# Bots that draw from self.rng act differently when the batch changes shape (the draws are shared), so the
# batch == row-by-row check covers the deterministic ones only; the human gets a same-seed check instead.
RANDOMISED = {"human"}
DETERMINISTIC = [n for n in NAMES if n not in RANDOMISED]


def test_roster_is_registered_and_constructible():
    assert set(NAMES) >= REQUIRED and len(NAMES) >= 6
    for name in NAMES:
        agent = make_agent(name)
        assert type(agent) is ROSTER[name] and isinstance(agent, ScriptedAgent)
        assert agent.name == name and name in agent_names()
        assert len((type(agent).__doc__ or "").split()) >= 15, f"{name} needs a docstring saying how it plays"


@pytest.mark.parametrize("name", [*NAMES, "based"])
def test_beats_constant_agent(name):
    bot = make_agent(name, seed=0)  # seeded: the human's noise is then the same on every run
    stats = play_matches(bot, make_agent("constant"), n_matches=16, max_timesteps=2700, seed=0)
    wins = sum(s.winner == "player_1" for s in stats)
    falls = sum(s.player_1.falls for s in stats)
    assert wins / len(stats) >= 0.8, f"{name} won {wins}/16 against ConstantAgent"
    if name == "based":
        # BasedAgent presses the original's keys frame for frame, and the original has no recovery or gap
        # logic (it walks toward the opponent and jumps when low), so it falls into the gap now and then;
        # what we check for it is that it still wins.
        return
    assert falls <= 2, f"{name} lost {falls} stocks to an opponent that never attacks"


# --- recovery ----------------------------------------------------------------------
# Off-stage starts (x, y, vx): outside both outer edges, drifting away, and deep in the central gap.
OFF_STAGE = [(8.6, 0.0, 3.0), (-8.6, 2.0, -3.0), (9.5, -1.0, 5.0), (0.0, 3.2, 0.0), (-0.6, 3.6, 1.0), (7.9, 1.2, 0.0)]


@pytest.mark.parametrize("name", NAMES)
def test_recovers_to_the_stage(name):
    n = len(OFF_STAGE)
    engine = BrawlEngine(n, seed=3, params=TOURNAMENT_PARAMS)
    engine.reset(p0_side=1)
    s = engine.state
    s.x[:, 0], s.y[:, 0], s.vx[:, 0] = np.array(OFF_STAGE, np.float32).T
    s.state[:, 0] = P.IN_AIR
    s.air_jumps[:, 0] = DEFAULT_PARAMS.air_jumps  # as after walking off a ledge: 2 air jumps, 1 recovery
    s.air_recoveries[:, 0] = DEFAULT_PARAMS.recoveries_per_airtime
    builder, bot, idle = ObservationBuilder(n), make_agent(name, seed=0), make_agent("constant")
    start = np.ones(n, bool)
    for _ in range(150):
        obs = builder.build(s)
        ev = engine.step(np.stack([bot.predict_batch(obs[:, 0], start), idle.predict_batch(obs[:, 1], start)], 1))
        start[:] = False
        assert not ev.knocked_out[:, 0].any(), f"{name} fell from start {OFF_STAGE[int(ev.knocked_out[:, 0].argmax())]}"


# --- vectorisation -------------------------------------------------------------------
def _random_observations(n: int, seed: int = 0) -> np.ndarray:
    """Observations spread over the declared bounds, with the discrete fields rounded to valid values."""
    low, high = observation_bounds()
    obs = np.random.default_rng(seed).uniform(low, high, size=(n, OBS_SIZE)).astype(np.float32)
    for half in (0, OPP):
        discrete = half + np.array([4, 5, 7, 8, 9, 10, 11, 13, 14, 15, 18, 21, 24, 27])
        obs[:, discrete] = np.round(obs[:, discrete])
        obs[:, half + 6] = 1 - obs[:, half + 5]
    return obs


@pytest.mark.parametrize("name", NAMES)
def test_predict_batch_is_a_binary_batch(name):
    agent = make_agent(name)
    obs = _random_observations(256)
    for start in (np.ones(256, bool), np.zeros(256, bool)):  # a fresh batch, then one with memory in use
        keys = agent.predict_batch(obs, start)
        assert keys.shape == (256, P.N_KEYS) and keys.dtype == np.int8
        assert np.isin(keys, (0, 1)).all()
    single = agent.predict(obs[0])
    assert single.shape == (P.N_KEYS,) and np.isin(single, (0, 1)).all()


def _rollout(agent, n: int = 8, frames: int = 240, seed: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observations, episode starts and actions of ``agent`` playing n matches against BasedAgent."""
    engine, builder, other = BrawlEngine(n, max_timesteps=200, seed=seed), ObservationBuilder(n), BasedAgent()
    engine.reset()
    start = np.ones(n, bool)
    obs_log, start_log, act_log = [], [], []
    for _ in range(frames):
        obs = builder.build(engine.state)
        keys = agent.predict_batch(obs[:, 0], start)
        obs_log.append(obs[:, 0].copy())
        start_log.append(start.copy())
        act_log.append(keys)
        ev = engine.step(np.stack([keys, other.predict_batch(obs[:, 1], start)], 1))
        start = ev.done.copy()  # short matches, so episode starts happen mid-rollout too
        engine.reset(np.flatnonzero(ev.done))
    return np.array(obs_log), np.array(start_log), np.array(act_log)


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_batch_equals_rows_one_at_a_time(name):
    obs, start, actions = _rollout(make_agent(name))
    shuffled, single = make_agent(name), make_agent(name)
    order = np.random.default_rng(1)
    for t in range(obs.shape[0]):
        # The same matches handed over in a new order every frame: memory must follow env_ids.
        perm = order.permutation(obs.shape[1])
        got = np.empty_like(actions[t])
        got[perm] = shuffled.predict_batch(obs[t, perm], start[t, perm], env_ids=perm)
        np.testing.assert_array_equal(got, actions[t], err_msg=f"{name}: permuted batch differs at frame {t}")
        for i in range(obs.shape[1]):
            row = single.predict_batch(obs[t, i : i + 1], start[t, i : i + 1], env_ids=np.array([i]))
            np.testing.assert_array_equal(row[0], actions[t, i], err_msg=f"{name}: row {i} differs at frame {t}")


def test_human_is_reproducible_with_a_seed():
    obs, start, _ = _rollout(make_agent("human", seed=7), frames=120)
    runs = [make_agent("human", seed=7), make_agent("human", seed=7), make_agent("human", seed=8)]
    acts = [np.array([agent.predict_batch(obs[t], start[t]) for t in range(obs.shape[0])]) for agent in runs]
    np.testing.assert_array_equal(acts[0], acts[1])
    assert (acts[0] != acts[2]).any()


# --- styles are visibly different ------------------------------------------------------
# Fingerprint components (what each measures) and how far apart two bots must be on one to differ "clearly".
FINGERPRINT = {
    "dist": "mean distance to the opponent",
    "attack": "fraction of frames attacking",
    "air": "fraction of frames airborne",
    "heavy": "fraction of frames in a signature (heavy ground) move",
    "air_atk": "fraction of frames in an air attack",
    "dodge": "fraction of frames dodging",
    "backdash": "fraction of frames backdashing",
    "dash": "fraction of frames dashing or sprinting",
    "taunt": "fraction of frames taunting",
    "pickups": "weapon pickups per match",
    "inside": "fraction of frames on the stage-centre side of the opponent",
    "wait": "fraction of frames standing still near the centre (|x| < 3.2) with the opponent 3+ away",
}
CLEARLY = {
    "dist": 0.5,
    "attack": 0.08,
    "air": 0.15,
    "heavy": 0.06,
    "air_atk": 0.05,
    "dodge": 0.01,
    "backdash": 0.02,
    "dash": 0.008,
    "taunt": 0.005,
    "pickups": 0.5,
    "inside": 0.12,
    "wait": 0.015,
}


def fingerprint(name: str, n: int = 8, frames: int = 900, seed: int = 0) -> dict[str, float]:
    """Behaviour statistics of ``name`` over 2n matches played at once, n against BasedAgent (which comes at
    it) and n against ConstantAgent (which it has to go and get), ``frames`` frames each. 900 frames lets
    the first weapons spawn (after 500–700 frames)."""
    engine, builder = BrawlEngine(2 * n, seed=seed, params=TOURNAMENT_PARAMS), ObservationBuilder(2 * n)
    engine.reset()
    bot, based, idle = make_agent(name, seed=seed), BasedAgent(), make_agent("constant")
    start = np.ones(2 * n, bool)
    sums = dict.fromkeys(FINGERPRINT, 0.0)
    for _ in range(frames):
        obs = builder.build(engine.state)
        me, op = obs[:, 0, :OPP], obs[:, 0, OPP:]
        others = np.concatenate([based.predict_batch(obs[:n, 1], start[:n]), idle.predict_batch(obs[n:, 1], start[n:])])
        ev = engine.step(np.stack([bot.predict_batch(obs[:, 0], start), others], 1))
        for key, value in _frame_stats(me, op, ev.weapon_equip[:, 0]).items():
            sums[key] += value
        start = ev.done.copy()
        engine.reset(np.flatnonzero(ev.done))
    stats = {key: value / frames for key, value in sums.items()}
    stats["pickups"] *= frames / (2 * n)
    return stats


def _frame_stats(me: np.ndarray, op: np.ndarray, equip: np.ndarray) -> dict[str, float]:
    state, move = me[:, 8], me[:, 14]
    same_side = np.sign(me[:, 0]) == np.sign(op[:, 0])
    live = op[:, 8] != P.KO
    inside = same_side & (np.abs(me[:, 0]) < np.abs(op[:, 0]) - 0.3) & live
    dist = np.hypot(me[:, 0] - op[:, 0], me[:, 1] - op[:, 1])
    still = (me[:, 5] > 0.5) & (np.abs(me[:, 2]) < 0.5) & (state != P.ATTACK)
    wait = still & (np.abs(me[:, 0]) < 3.2) & (dist > 3.0) & live
    return {
        "dist": float(dist.mean()),
        "attack": float((state == P.ATTACK).mean()),
        "air": float(me[:, 6].mean()),
        "heavy": float(np.isin(move, (P.NSIG, P.DSIG, P.SSIG)).mean()),
        "air_atk": float(np.isin(move, (P.NAIR, P.DAIR, P.SAIR, P.GROUNDPOUND)).mean()),
        "dodge": float((state == P.DODGE).mean()),
        "backdash": float((state == P.BACKDASH).mean()),
        "dash": float(np.isin(state, (P.DASH, P.SPRINTING)).mean()),
        "taunt": float((state == P.TAUNT).mean()),
        "pickups": float((equip > 0).sum()),
        "inside": float(inside.mean()),
        "wait": float(wait.mean()),
    }


@pytest.fixture(scope="module")
def fingerprints() -> dict[str, dict[str, float]]:
    table = {name: fingerprint(name) for name in NAMES}
    print("\nbehaviour fingerprints (8 matches vs BasedAgent + 8 vs ConstantAgent, 900 frames each)")
    print(f"{'bot':14s}" + "".join(f"{key:>9s}" for key in FINGERPRINT))
    for name, row in table.items():
        print(f"{name:14s}" + "".join(f"{row[key]:9.3f}" for key in FINGERPRINT))
    return table


def test_styles_are_visibly_different(fingerprints):
    for a, b in itertools.combinations(NAMES, 2):
        gaps = {key: abs(fingerprints[a][key] - fingerprints[b][key]) for key in FINGERPRINT}
        assert any(gaps[key] >= CLEARLY[key] for key in FINGERPRINT), f"{a} and {b} play alike: {gaps}"


def test_signature_traits(fingerprints):
    """Each style shows the trait it is named for, more than any other bot."""
    f = fingerprints
    top = {key: max(NAMES, key=lambda name, key=key: f[name][key]) for key in FINGERPRINT}
    assert top["dash"] == "aggressive"
    assert top["air"] == "aerial" and top["air_atk"] == "aerial"
    assert top["heavy"] == "heavy"
    assert top["taunt"] == "human"
    assert top["wait"] == "edge_guard" and f["edge_guard"]["inside"] >= 0.4
    assert {top["backdash"]} <= {"counter", "zoner"} and min(f["counter"]["backdash"], f["zoner"]["backdash"]) >= 0.02
    assert f["weapon_seeker"]["pickups"] >= 0.5 and f["zoner"]["pickups"] >= 0.5


# --- the move tables the styles plan with, against the engine ----------------------------
GROUND_MOVE_KEYS = {
    P.NLIGHT: ("j",), P.DLIGHT: ("s", "j"), P.SLIGHT: ("forward", "j"),
    P.NSIG: ("k",), P.DSIG: ("s", "k"), P.SSIG: ("forward", "k"),
}  # fmt: skip
KEY_INDEX = {name: i for i, name in enumerate(P.KEY_NAMES)}


def _play_ground_moves(cases: list[tuple[int, int, float, float, float | None]]) -> tuple[np.ndarray, np.ndarray]:
    """Each case (weapon, move, x, facing, opponent dx or None) started by player 0 standing on the right
    ground (a light tapped, a signature's keys held 12 frames); returns each row's (backward, forward)
    travel extremes relative to its facing and whether the opponent (parked on the same ground, or far
    away for None) took damage."""
    n = len(cases)
    engine = BrawlEngine(n, seed=0)
    engine.reset(p0_side=1)
    s = engine.state
    for _ in range(40):  # both land
        engine.step(np.zeros((n, 2, P.N_KEYS), np.int8))
    weapon, _, x0, face, opp_dx = zip(*cases, strict=True)
    s.weapon[:, 0], s.x[:, 0], s.vx[:, 0], s.facing[:, 0] = weapon, x0, 0.0, face
    s.x[:, 1] = [x + f * d if d is not None else -5.0 for x, f, d in zip(x0, face, opp_dx, strict=True)]
    s.y[:, 1] = [s.y[i, 0] if d is not None else s.y[i, 1] for i, d in enumerate(opp_dx)]
    s.vx[:, 1] = 0.0
    engine.step(np.zeros((n, 2, P.N_KEYS), np.int8))
    start, extremes = s.x[:, 0].copy(), np.zeros((n, 2))
    for t in range(90):
        keys = np.zeros((n, 2, P.N_KEYS), np.int8)
        for i, (_, m, _, f, _) in enumerate(cases):
            for key in GROUND_MOVE_KEYS[m] if t < (12 if "k" in GROUND_MOVE_KEYS[m] else 1) else ():
                keys[i, 0, KEY_INDEX[("d" if f > 0 else "a") if key == "forward" else key]] = 1
        engine.step(keys)
        along = (s.x[:, 0] - start) * np.array(face)
        extremes[:, 0] = np.maximum(extremes[:, 0], -along)
        extremes[:, 1] = np.maximum(extremes[:, 1], along)
    return extremes, s.damage[:, 1] > 0


def test_move_travel_table_matches_the_engine():
    cases, expected = [], []
    for w, moves in MOVE_TRAVEL.items():
        for m, (back, fwd) in moves.items():
            # Facing left: 4+ units of ground behind at x=2.5, in front at x=6.6.
            cases += [(w, m, 2.5, -1.0, None), (w, m, 6.6, -1.0, None)]
            expected.append((back, fwd))
    extremes, _ = _play_ground_moves(cases)
    measured = np.stack([extremes[0::2, 0], extremes[1::2, 1]], axis=1)
    table = np.array(expected, float)
    # The table may err on the safe side (larger), never on the other.
    assert (measured <= table + 0.35).all() and (measured >= table - 0.65).all(), np.c_[measured, table]


def test_move_reach_far_ends_match_the_engine():
    """At a table's far end (a quarter unit in) the move connects; half a unit beyond it, it does not."""
    cases = []
    for w, moves in MOVE_REACH.items():
        for m, (_, far) in moves.items():
            # One ground is 5 wide: an opponent further than 4.5 in front would stand off it.
            cases += [(w, m, 2.5, 1.0, far - 0.25), (w, m, 2.5, 1.0, min(far + 0.5, 4.5))]
    _, hit = _play_ground_moves(cases)
    labels = [f"{P.WEAPON_NAMES[w]} {P.MOVE_NAMES[m - P.FIRST_MOVE_ID]} at {d:.2f}" for w, m, _, _, d in cases]
    beyond = np.array([d < 4.5 for *_, d in cases[1::2]])
    assert all(hit[0::2]), [label for label, h in zip(labels[0::2], hit[0::2], strict=True) if not h]
    assert not any(hit[1::2] & beyond), [label for label, h in zip(labels[1::2], hit[1::2] & beyond, strict=True) if h]


# --- the random-keys holder (a training opponent, not in the registry) ---------------------------
def test_random_keys_holder_keeps_its_draw_for_a_match_and_redraws_at_the_next():
    _, start, actions = _rollout(make_agent("hold:random_keys", seed=0), n=64, frames=240)
    assert not actions[:, :, [P.K_A, P.K_D]].any(), "it never walks"
    match_id = np.cumsum(start, axis=0)  # per row, which of its matches each frame belongs to
    for row in range(actions.shape[1]):
        for m in np.unique(match_id[:, row]):
            held = actions[match_id[:, row] == m, row]
            assert (held == held[0]).all(), f"row {row} changed its keys within match {m}"
    first = actions[0]
    standing = np.array([k for k in range(P.N_KEYS) if k not in (P.K_A, P.K_D)])
    assert 0.3 < first[:, standing].mean() < 0.7, "each standing key held about half the time"
    assert len({tuple(r) for r in first}) > 40, "64 matches draw many different combinations"
    restarted = np.flatnonzero(match_id[-1] > 1)  # rows whose second match has begun
    assert restarted.size, "the 200-frame matches restart within the rollout"
    second = actions[-1, restarted]
    assert (second != first[restarted]).any(axis=1).mean() > 0.5, "a new match draws new keys"


def test_random_keys_holder_mostly_stays_on_its_ground_so_the_learner_must_cross():
    holder, constant = make_agent("hold:random_keys", seed=1), make_agent("constant")
    stats = play_matches(constant, holder, n_matches=32, max_timesteps=900, seed=2)
    # A few combinations move it (held s+j slides it along the ground, off the edge in the end).
    assert sum(s.player_2.falls > 0 for s in stats) <= 8, "it seldom leaves its ground"
    assert sum(s.player_1.damage_taken > 0 for s in stats) <= 4, "it seldom reaches a bot that waits"
    assert sum(s.winner == "draw" for s in stats) >= 24
