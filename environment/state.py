"""Struct-of-arrays state for N matches, and a per-match random stream.

Player fields are shaped ``(n, 2)``: match, then player slot. Match fields are
``(n,)``. Weapon slots are ``(n, 4)``: 0 the right spawner's weapon, 1 the left
spawner's, 2 the weapon dropped by player 0, 3 the one dropped by player 1.

Randomness is a splitmix64 counter per match, so match i of a batch draws
exactly what a lone match with the same seed draws: batched and single runs are
bit-identical, whatever the other matches do.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from environment.params import N_KEYS

N_WEAPON_SLOTS = 4


@dataclass
class MatchState:
    # Players (n, 2)
    x: np.ndarray
    y: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    facing: np.ndarray  # +1 right, -1 left
    spawn_x: np.ndarray  # start point x of this player in this match (±5)
    grounded: np.ndarray
    on_platform: np.ndarray
    state: np.ndarray
    state_timer: np.ndarray  # frames left in a timed state (dash, dodge, taunt, KO, ...)
    jumps_left: np.ndarray
    jump_cooldown: np.ndarray
    recoveries_left: np.ndarray
    dodge_cooldown: np.ndarray
    dodge_in_air: np.ndarray
    stun_frames: np.ndarray
    damage: np.ndarray
    stocks: np.ndarray
    move: np.ndarray  # 0, or move id 2..12 while attacking
    move_phase: np.ndarray
    phase_timer: np.ndarray
    charge: np.ndarray
    phase_hit: np.ndarray  # the current phase has landed its hit
    weapon: np.ndarray  # 0 Punch, 1 Spear, 2 Hammer
    prev_keys: np.ndarray  # (n, 2, 10) keys held last frame, for press edges
    # Matches (n,)
    frame: np.ndarray
    done: np.ndarray
    result: np.ndarray
    platform_x: np.ndarray
    platform_y: np.ndarray
    platform_vx: np.ndarray
    platform_vy: np.ndarray
    rng: np.ndarray  # uint64 splitmix64 counter
    # Weapons (n, 4) and spawners (n, 2)
    slot_x: np.ndarray
    slot_y: np.ndarray
    slot_vy: np.ndarray
    slot_kind: np.ndarray  # 0 empty, 1 Spear, 2 Hammer
    slot_timer: np.ndarray  # frames until it vanishes
    slot_lock: np.ndarray  # frames until it can be picked up
    spawn_timer: np.ndarray  # (n, 2) frames until each spawner spawns

    @property
    def n(self) -> int:
        return self.x.shape[0]

    def copy(self) -> MatchState:
        return MatchState(**{f.name: getattr(self, f.name).copy() for f in fields(self)})


_PLAYER_FIELDS = {
    "x": np.float32, "y": np.float32, "vx": np.float32, "vy": np.float32,
    "facing": np.float32, "spawn_x": np.float32, "grounded": bool, "on_platform": bool,
    "state": np.int8, "state_timer": np.int16, "jumps_left": np.int8, "jump_cooldown": np.int16,
    "recoveries_left": np.int8, "dodge_cooldown": np.int16, "dodge_in_air": bool,
    "stun_frames": np.int16, "damage": np.float32, "stocks": np.int8, "move": np.int8,
    "move_phase": np.int8, "phase_timer": np.int16, "charge": np.int16, "phase_hit": bool,
    "weapon": np.int8,
}  # fmt: skip
_MATCH_FIELDS = {
    "frame": np.int32, "done": bool, "result": np.int8,
    "platform_x": np.float32, "platform_y": np.float32,
    "platform_vx": np.float32, "platform_vy": np.float32, "rng": np.uint64,
}  # fmt: skip
_SLOT_FIELDS = {
    "slot_x": np.float32, "slot_y": np.float32, "slot_vy": np.float32, "slot_kind": np.int8,
    "slot_timer": np.int16, "slot_lock": np.int16,
}  # fmt: skip


def allocate(n: int) -> MatchState:
    """Zeroed state for n matches; call ``engine.reset`` before stepping."""
    arrays = {name: np.zeros((n, 2), dt) for name, dt in _PLAYER_FIELDS.items()}
    arrays |= {name: np.zeros(n, dt) for name, dt in _MATCH_FIELDS.items()}
    arrays |= {name: np.zeros((n, N_WEAPON_SLOTS), dt) for name, dt in _SLOT_FIELDS.items()}
    arrays["prev_keys"] = np.zeros((n, 2, N_KEYS), bool)
    arrays["spawn_timer"] = np.zeros((n, 2), np.int32)
    return MatchState(**arrays)


# --- splitmix64, vectorized -------------------------------------------------------
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TWO_POW_MINUS_53 = 1.0 / (1 << 53)


def _mix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def seed_streams(seeds) -> np.ndarray:
    """uint64 stream states from integer seeds (any int, negative ones too)."""
    raw = np.asarray(seeds, dtype=np.int64).astype(np.uint64)
    return _mix(raw + _GOLDEN)


def draw_uniform(rng: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One U[0, 1) draw for each listed match, advancing only those streams."""
    advanced = rng[rows] + _GOLDEN
    rng[rows] = advanced
    return (_mix(advanced) >> np.uint64(11)).astype(np.float64) * _TWO_POW_MINUS_53
