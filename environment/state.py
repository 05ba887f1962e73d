"""Struct-of-arrays state for N matches, and a per-match random stream.

Player fields are shaped ``(n, 2)``: match, then player slot (slot 0 is the
tournament's player 0, who is processed first every frame). Match fields are
``(n,)``. Weapon fields are ``(n, W)``: columns 0 and 1 are the right and left
spawners' weapons, the rest are dropped weapons.

The original keeps one Python object per player *state* (InAir, Stun, Dodge, ...)
and those objects remember what they were last told (jumps left, recoveries)
even while another state is current. The ``air_*``, ``turn_*``, ``stun_*``,
``dodge_*`` and ``attack_*`` fields are those memories: which one is read
depends on the current state, exactly as in the original.

Physics is float64 throughout, as in the original's physics engine: a batch of
matches and a lone match compute the same bits.

Randomness is a splitmix64 counter per match, so match i of a batch draws
exactly what a lone match with the same seed draws, whatever the other matches do.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from environment.params import N_KEYS
from environment.physics import N_SOLIDS, PERSISTENCE

N_SPAWNERS = 2  # the right and the left weapon spawner


@dataclass
class MatchState:
    # --- players (n, 2): body --------------------------------------------------------
    x: np.ndarray
    y: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    bias_vx: np.ndarray  # the physics engine's position-correction velocity, spent at the next step
    bias_vy: np.ndarray
    gravity_off: np.ndarray  # dodging or knocked out: the body ignores gravity
    facing: np.ndarray  # +1 right, -1 left (float64, it multiplies offsets)
    spawn_x: np.ndarray  # start point x of this player in this match (±5)
    hurt_x: np.ndarray  # where this player's hurtbox was last placed (its own update sets it)
    hurt_y: np.ndarray
    contact_way: np.ndarray  # (n, 2, 3) the physics engine's memory of each (body, solid) contact: physics.py
    contact_age: np.ndarray
    contact_jn: np.ndarray
    contact_jt: np.ndarray
    fat_box: np.ndarray  # (n, 2, 4) the physics broad phase's box around the body
    # --- players: game ---------------------------------------------------------------
    state: np.ndarray  # P.WALKING .. P.TAUNT
    timer: np.ndarray  # the current state's countdown (turnaround, dash, dodge, stun, taunt, KO, ...)
    dodge_cooldown: np.ndarray
    damage: np.ndarray
    stocks: np.ndarray
    weapon: np.ndarray  # 0 Punch, 1 Spear, 2 Hammer
    pickup_lock: np.ndarray  # frame number before which this player cannot pick up a dropped weapon
    pending_stun: np.ndarray  # stun frames dealt to the current state, taken at its next update
    kb_vx: np.ndarray  # knockback to add to the velocity at this player's next update
    kb_vy: np.ndarray
    pull_vx: np.ndarray  # pull toward an attacker's target point, added at the next update
    pull_vy: np.ndarray
    damage_taken_frame: np.ndarray  # damage taken this frame (the original's damage_taken_this_frame)
    # --- players: the observation's view, refreshed at the end of every step -------------
    grounded: np.ndarray  # the original's is_on_floor()
    jumps_left: np.ndarray  # the current state's jump memory, 0 in states that keep none
    recoveries_left: np.ndarray
    # --- players: what each state object remembers -----------------------------------
    air_jump_timer: np.ndarray
    air_jumps: np.ndarray
    air_recoveries: np.ndarray
    turn_jump_timer: np.ndarray  # AirTurnaround's copy while the turn lasts
    turn_jumps: np.ndarray
    turn_recoveries: np.ndarray
    stun_jumps: np.ndarray
    stun_has_jumps: np.ndarray  # the Stun object has been told a jump count at least once
    dodge_jumps: np.ndarray
    dodge_recoveries: np.ndarray
    dodge_has_jumps: np.ndarray  # ...the Dodge object (only air dodges tell it)
    dodge_grounded: np.ndarray
    attack_jumps: np.ndarray
    attack_recoveries: np.ndarray
    # --- players: the move being performed ---------------------------------------------
    move: np.ndarray  # move id 2..12 while attacking, else 0
    power: np.ndarray  # global power row (moves.py)
    cast: np.ndarray  # global cast row
    cast_frame: np.ndarray  # frames run by the current cast
    power_frames: np.ndarray  # frames run by the current power
    recovery_frames: np.ndarray  # recovery frames counted by the current power
    power_hit: np.ndarray  # the current power has connected
    power_victim: np.ndarray  # the current power has damaged the opponent
    switching: np.ndarray  # the cast just changed: its first active frame skips the ground probe
    move_victim: np.ndarray  # the opponent has been hit during this move (its victim: pulls and events follow it)
    # --- players: input -------------------------------------------------------------
    prev_keys: np.ndarray  # (n, 2, 10) keys held last frame, for press/release edges
    horizontal: np.ndarray  # the original's left/right press-order memory (0 none, 1 L, 2 R, 3 L then R, 4 R then L)
    # --- matches (n,) ---------------------------------------------------------------
    frame: np.ndarray
    done: np.ndarray
    result: np.ndarray
    platform_x: np.ndarray
    platform_y: np.ndarray
    platform_vx: np.ndarray
    platform_vy: np.ndarray
    rng: np.ndarray  # uint64 splitmix64 counter
    # --- weapons (n, W) ----------------------------------------------------------------
    weapon_kind: np.ndarray  # 0 none, 1 Spear, 2 Hammer
    weapon_x: np.ndarray  # the falling body
    weapon_y: np.ndarray
    weapon_vx: np.ndarray
    weapon_vy: np.ndarray
    weapon_bias_vx: np.ndarray
    weapon_bias_vy: np.ndarray
    weapon_seen_x: np.ndarray  # the body's position as last copied out (pickups test this one)
    weapon_seen_y: np.ndarray
    weapon_home_x: np.ndarray  # where it appeared: what the observation shows
    weapon_home_y: np.ndarray
    weapon_born: np.ndarray  # frame it appeared
    weapon_order: np.ndarray  # creation order of dropped weapons (the observation lists them by it)
    weapon_contact_way: np.ndarray  # (n, W, 3) as the players' contact_* fields
    weapon_contact_age: np.ndarray
    weapon_contact_jn: np.ndarray
    weapon_contact_jt: np.ndarray
    weapon_fat_box: np.ndarray
    # --- spawners (n, 2) --------------------------------------------------------------
    spawner_cooldown: np.ndarray
    spawner_base_cooldown: np.ndarray
    spawner_last_spawn: np.ndarray  # frame of the last spawn or pickup
    spawner_ready: np.ndarray  # the spawn animation has finished: the weapon can be picked up

    @property
    def n(self) -> int:
        return self.x.shape[0]

    @property
    def n_weapons(self) -> int:
        return self.weapon_kind.shape[1]

    def copy(self) -> MatchState:
        return MatchState(**{f.name: getattr(self, f.name).copy() for f in fields(self)})


_F64, _I8, _I16, _I32 = np.float64, np.int8, np.int16, np.int32
_PLAYER_FIELDS = {
    "x": _F64, "y": _F64, "vx": _F64, "vy": _F64, "bias_vx": _F64, "bias_vy": _F64, "gravity_off": bool,
    "facing": _F64, "spawn_x": _F64, "hurt_x": _F64, "hurt_y": _F64,
    "state": _I8, "timer": _I16, "dodge_cooldown": _I16, "damage": _F64, "stocks": _I8, "weapon": _I8,
    "pickup_lock": _I32, "pending_stun": _I16, "kb_vx": _F64, "kb_vy": _F64, "pull_vx": _F64, "pull_vy": _F64,
    "damage_taken_frame": _F64, "grounded": bool, "jumps_left": _I8, "recoveries_left": _I8,
    "air_jump_timer": _I16, "air_jumps": _I8, "air_recoveries": _I8,
    "turn_jump_timer": _I16, "turn_jumps": _I8, "turn_recoveries": _I8,
    "stun_jumps": _I8, "stun_has_jumps": bool,
    "dodge_jumps": _I8, "dodge_recoveries": _I8, "dodge_has_jumps": bool, "dodge_grounded": bool,
    "attack_jumps": _I8, "attack_recoveries": _I8,
    "move": _I8, "power": _I16, "cast": _I16, "cast_frame": _I16, "power_frames": _I16, "recovery_frames": _I16,
    "power_hit": bool, "power_victim": bool, "switching": bool, "move_victim": bool,
    "horizontal": _I8,
}  # fmt: skip
_MATCH_FIELDS = {
    "frame": _I32, "done": bool, "result": _I8,
    "platform_x": _F64, "platform_y": _F64, "platform_vx": _F64, "platform_vy": _F64, "rng": np.uint64,
}  # fmt: skip
_WEAPON_FIELDS = {
    "weapon_kind": _I8, "weapon_x": _F64, "weapon_y": _F64, "weapon_vx": _F64, "weapon_vy": _F64,
    "weapon_bias_vx": _F64, "weapon_bias_vy": _F64, "weapon_seen_x": _F64, "weapon_seen_y": _F64,
    "weapon_home_x": _F64, "weapon_home_y": _F64, "weapon_born": _I32, "weapon_order": _I32,
}  # fmt: skip
_CONTACT_FIELDS = {"way": _I8, "age": _I8, "jn": _F64, "jt": _F64}
_SPAWNER_FIELDS = {
    "spawner_cooldown": _I32, "spawner_base_cooldown": _I32, "spawner_last_spawn": _I32, "spawner_ready": bool,
}  # fmt: skip


def allocate(n: int, max_dropped: int = 6) -> MatchState:
    """Zeroed state for n matches; call ``engine.reset`` before stepping."""
    arrays = {name: np.zeros((n, 2), dt) for name, dt in _PLAYER_FIELDS.items()}
    arrays |= {name: np.zeros(n, dt) for name, dt in _MATCH_FIELDS.items()}
    arrays |= {name: np.zeros((n, N_SPAWNERS + max_dropped), dt) for name, dt in _WEAPON_FIELDS.items()}
    arrays |= {name: np.zeros((n, N_SPAWNERS), dt) for name, dt in _SPAWNER_FIELDS.items()}
    arrays["prev_keys"] = np.zeros((n, 2, N_KEYS), bool)
    for prefix, bodies in (("", 2), ("weapon_", N_SPAWNERS + max_dropped)):
        for name, dt in _CONTACT_FIELDS.items():
            arrays[f"{prefix}contact_{name}"] = np.zeros((n, bodies, N_SOLIDS), dt)
        arrays[f"{prefix}fat_box"] = np.zeros((n, bodies, 4))
    return MatchState(**arrays)


def forget_contacts(way: np.ndarray, age: np.ndarray) -> None:
    """A new body (or a new match): no remembered contacts."""
    way[...] = -1
    age[...] = PERSISTENCE


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


def draw_int(rng: np.ndarray, rows: np.ndarray, low, high) -> np.ndarray:
    """One integer in [low, high] (inclusive, like Python's randint) for each listed match."""
    low = np.asarray(low, np.int64)
    span = np.asarray(high, np.int64) - low + 1
    return low + np.floor(draw_uniform(rng, rows) * span).astype(np.int64)
