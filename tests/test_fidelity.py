"""Our engine against the original: golden traces, its move data, its observation, its match outcomes.

The oracle lives outside the project (``../shared/fidelity``: the original's move
data and 207 golden traces); ``tests/data/original_traces.jsonl.gz`` holds traces
we recorded from the original engine ourselves, with the observations both
players received, so the observation is checked index by index.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import fidelity
from environment import params as P
from environment.engine import PlatformPath
from environment.moves import DATA_PATH, MOVE_FILE_NAMES, MOVES, WEAPON_FILE_NAMES, load_move_data
from environment.params import TOURNAMENT_PARAMS

SHARED = fidelity.SHARED
OUR_TRACES = fidelity.ROOT / "tests" / "data" / "original_traces.jsonl.gz"
needs_shared = pytest.mark.skipif(not (SHARED / "traces.jsonl").exists(), reason=f"no fidelity oracle at {SHARED}")


@needs_shared
def test_shared_golden_traces_replay_frame_for_frame():
    results = [
        fidelity.replay(t, fidelity.CORE + fidelity.EXTRA) for t in fidelity.load_traces([SHARED / "traces.jsonl"])
    ]
    summary = fidelity.summarize(results)
    assert summary["scenarios"] == 207
    diverging = [
        (r["name"], r["first_divergence"], r["diverging"][:2]) for r in results if r["first_divergence"] is not None
    ]
    assert summary["matched_fully_share"] >= fidelity.TARGET_FULL, diverging
    assert summary["remaining_frames_matched_share"] >= fidelity.TARGET_FRAMES, diverging


def test_our_golden_traces_replay_with_every_observation_value():
    results = [fidelity.replay(t, fidelity.CORE + fidelity.EXTRA) for t in fidelity.load_traces([OUR_TRACES])]
    kinds = {r["kind"] for r in results}
    assert {"match", "run_match", "weapons"} <= kinds
    assert all(r["has_observations"] for r in results)
    diverging = [
        (r["name"], r["first_divergence"], r["diverging"][:2]) for r in results if r["first_divergence"] is not None
    ]
    assert not diverging
    assert fidelity.summarize(results)["observation_values_differing"] == 0


@needs_shared
def test_move_data_is_the_shared_oracle():
    with open(SHARED / "moves.json", encoding="utf-8") as fh:
        assert load_move_data(DATA_PATH) == json.load(fh)


def test_move_tables_are_the_originals_conversions():
    """Frame counts halved by floor division, offsets in world units, branches resolved: as the original reads them."""
    data = load_move_data()
    unarmed_nsig = data["weapons"]["Unarmed"]["NSig"]
    row = MOVES.first_power[P.PUNCH, P.NSIG]
    charge, strike = MOVES.powers[row], MOVES.powers[row + 1]
    assert bool(charge["charge"]) and charge["min_charge"] == 5 and charge["max_charge"] == 36
    assert charge["next_miss"] == row + 1 and bool(strike["last_power"]) and strike["stun"] == 9
    cast = MOVES.casts[strike["first_cast"]]
    assert (cast["startup"], cast["active"], cast["damage"]) == (2, 3, 20)
    box = unarmed_nsig["powers"][1]["casts"][0]["hitboxes"][0]
    assert MOVES.hitboxes[strike["first_cast"], 0, 0] == box["dx_raw"] * 2 * (1.024 / 320)
    # Every cast of every move: frames halved, damage and hitbox counts as stored.
    k = 0
    for weapon in WEAPON_FILE_NAMES:  # in the engine's order: Punch, Spear, Hammer
        for move in MOVE_FILE_NAMES:
            for power in data["weapons"][weapon][move]["powers"]:
                for c in power["casts"]:
                    row = MOVES.casts[k]
                    assert row["startup"] == c["startup_raw"] // 2 and row["active"] == c["active_raw"] // 2
                    assert row["damage"] == c["damage"] and row["n_hitboxes"] == len(c["hitboxes"])
                    k += 1
    assert k == len(MOVES.casts)


def test_hitboxes_with_zero_active_frames_never_go_live():
    """Halving turns 1-frame raw windows into 0 frames: those casts have hitboxes that never hit (7 in the data)."""
    dead = (MOVES.casts["n_hitboxes"] > 0) & (MOVES.casts["active"] == 0)
    assert int(dead.sum()) == 7


@pytest.mark.slow
@needs_shared
def test_constant_actions_against_based_agent_end_as_in_the_original():
    outcomes = fidelity.compare_outcomes()
    differing = [c for c in outcomes["cells"] if c["original"] != c["ours"]]
    # The table's 24 single matches (7 actions, per slot and start side) and its 9 rows of 10 matches.
    assert outcomes["total"] == 33 and not differing, differing


def test_held_k_loses_to_based_agent_and_j_wins_from_the_right_as_player_0():
    """The headline cells of the original's table: held k never wins; slots are not symmetric."""
    assert fidelity.constant_vs_based((P.K_HEAVY,), 0, 5) == "L"
    assert fidelity.constant_vs_based((P.K_LIGHT,), 0, 5) == "W"
    assert fidelity.constant_vs_based((P.K_LIGHT,), 1, 5) == "L"


def test_tournament_loop_turns_the_platform_without_a_stopped_frame():
    """run_match updates the platform once more per frame: at a waypoint it turns at once instead of stopping."""
    bare = PlatformPath(fidelity.DEFAULT_PARAMS).upto(200)
    loop = PlatformPath(TOURNAMENT_PARAMS).upto(200)
    stops = np.flatnonzero((bare[:, 0] == 0) & (bare[:, 1] == 0))
    assert stops.size >= 1 and not ((loop[:, 0] == 0) & (loop[:, 1] == 0)).any()
    assert np.array_equal(bare[: stops[0]], loop[: stops[0]])
