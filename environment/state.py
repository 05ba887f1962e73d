"""The state of N matches: a few structured arrays, and a per-match random stream.

| array      | shape              | one row per                                               |
|------------|--------------------|-----------------------------------------------------------|
| `players`  | (n, 2)             | player (slot 0 is the tournament's player 0, updated first) |
| `matches`  | (n,)               | match (frame, result, the moving platform, random stream)  |
| `weapons`  | (n, W)             | weapon body: columns 0/1 the right/left spawner's, then dropped ones |
| `spawners` | (n, 2)             | weapon spawner                                            |
| `contacts` | (n, 2 + W, 3)      | the physics engine's memory of each (body, solid) contact |

Every field is also an attribute of ``MatchState``: ``state.x`` is the ``(n, 2)``
view ``players["x"]``, ``state.frame`` the ``(n,)`` view ``matches["frame"]``,
``state.weapon_kind`` the ``(n, W)`` view ``weapons["weapon_kind"]``, and so on:
writing into a view writes the state.

The original keeps one Python object per player *state* (InAir, Stun, Dodge, ...)
and those objects remember what they were last told (jumps left, recoveries)
even while another state is current. The ``air_*``, ``turn_*``, ``stun_*``,
``dodge_*`` and ``attack_*`` fields are those memories: which one is read
depends on the current state, exactly as in the original.

Physics is float64 throughout, as in the original's physics engine.

Randomness is a splitmix64 counter per match, so match i of a batch draws
exactly what a lone match with the same seed draws, whatever the other matches do.
"""

from __future__ import annotations

import numpy as np

N_SPAWNERS = 2  # the right and the left weapon spawner
N_SOLIDS = 3  # right ground, left ground, moving platform
CONTACT_MEMORY = 3  # steps a contact is remembered after it ends (pymunk's collision persistence)

_F8, _I1, _I2, _I4, _B = "f8", "i1", "i2", "i4", "?"
PLAYER_DTYPE = np.dtype([
    # body
    ("x", _F8), ("y", _F8), ("vx", _F8), ("vy", _F8),
    ("bias_vx", _F8), ("bias_vy", _F8),  # the physics engine's position correction, spent at the next step
    ("gravity_off", _B),  # dodging or knocked out: the body ignores gravity
    ("facing", _F8),  # +1 right, -1 left
    ("spawn_x", _F8),  # start point x in this match (±5)
    ("hurt_x", _F8), ("hurt_y", _F8),  # where this player's hurtbox was last placed (its own update sets it)
    ("fat_left", _F8), ("fat_top", _F8), ("fat_right", _F8), ("fat_bottom", _F8),  # the broad phase's box
    ("reinserted_at", _I4),  # frame the broad phase last re-inserted the body (physics.py)
    # game
    ("state", _I1), ("timer", _I2),  # the current state and its countdown (turnaround, dash, dodge, stun, ...)
    ("dodge_cooldown", _I2), ("damage", _F8), ("stocks", _I1), ("weapon", _I1),
    ("pickup_lock", _I4),  # frame before which this player cannot pick up a dropped weapon
    ("pending_stun", _I2),  # stun dealt to the current state, taken at its next update
    ("kb_vx", _F8), ("kb_vy", _F8),  # knockback to add to the velocity at the next update
    ("pull_vx", _F8), ("pull_vy", _F8),  # pull toward an attacker's point, added at the next update
    ("damage_taken_frame", _F8),
    # the observation's view, refreshed at the end of every step
    ("grounded", _B), ("jumps_left", _I1), ("recoveries_left", _I1),
    # what each state object remembers
    ("air_jump_timer", _I2), ("air_jumps", _I1), ("air_recoveries", _I1),
    ("turn_jump_timer", _I2), ("turn_jumps", _I1), ("turn_recoveries", _I1),
    ("stun_jumps", _I1), ("stun_has_jumps", _B),
    ("dodge_jumps", _I1), ("dodge_recoveries", _I1), ("dodge_has_jumps", _B), ("dodge_grounded", _B),
    ("attack_jumps", _I1), ("attack_recoveries", _I1),
    # the move being performed (moves.py)
    ("move", _I1),  # move id 2..12 while attacking, else 0
    ("power", _I2), ("cast", _I2), ("cast_frame", _I2), ("power_frames", _I2), ("recovery_frames", _I2),
    ("power_hit", _B),  # the current power has connected
    ("power_victim", _B),  # ...and damaged the opponent
    ("switching", _B),  # the cast just changed: its first active frame skips the ground probe
    ("move_victim", _B),  # the opponent was hit during this move (events and pulls follow it)
    # input
    ("prev_keys", _I2),  # keys held last frame, one bit per key
    ("horizontal", _I1),  # the original's a/d press-order memory (0 none, 1 L, 2 R, 3 L then R, 4 R then L)
])  # fmt: skip
MATCH_DTYPE = np.dtype([
    ("frame", _I4), ("done", _B), ("result", _I1),
    ("platform_x", _F8), ("platform_y", _F8), ("platform_vx", _F8), ("platform_vy", _F8),
    ("rng", "u8"),  # splitmix64 counter
    ("drops", _I4),  # weapons dropped so far (orders dropped weapons by age)
])  # fmt: skip
WEAPON_DTYPE = np.dtype([
    ("weapon_kind", _I1),  # 0 none, 1 Spear, 2 Hammer
    ("weapon_x", _F8), ("weapon_y", _F8), ("weapon_vx", _F8), ("weapon_vy", _F8),
    ("weapon_bias_vx", _F8), ("weapon_bias_vy", _F8),
    ("weapon_seen_x", _F8), ("weapon_seen_y", _F8),  # the body's position as last copied out (pickups test it)
    ("weapon_home_x", _F8), ("weapon_home_y", _F8),  # where it appeared: what the observation shows
    ("weapon_born", _I4), ("weapon_order", _I4),
    ("weapon_fat_left", _F8), ("weapon_fat_top", _F8), ("weapon_fat_right", _F8), ("weapon_fat_bottom", _F8),
    ("weapon_reinserted_at", _I4),
])  # fmt: skip
SPAWNER_DTYPE = np.dtype([
    ("spawner_cooldown", _I4), ("spawner_base_cooldown", _I4),
    ("spawner_last_spawn", _I4),  # frame of the last spawn or pickup
    ("spawner_ready", _B),  # the spawn animation has played: the weapon can be picked up
])  # fmt: skip
CONTACT_DTYPE = np.dtype([
    ("way", _I1),  # way out of the solid at the last contact (0 up, 1 down, 2 left, 3 right), -1 none
    ("age", _I1),  # steps since the last contact (0: touching at the last step)
    ("jn", _F8), ("jt", _F8),  # normal and friction impulse accumulated at the last contact
])  # fmt: skip

_ARRAYS = ("players", "matches", "weapons", "spawners", "contacts")
_FIELD_HOME = {
    name: array
    for array, dtype in zip(_ARRAYS[:4], (PLAYER_DTYPE, MATCH_DTYPE, WEAPON_DTYPE, SPAWNER_DTYPE), strict=True)
    for name in dtype.names
}


class MatchState:
    """The five structured arrays; every field is readable as an attribute (a writable view)."""

    __slots__ = _ARRAYS

    def __init__(self, players, matches, weapons, spawners, contacts):
        self.players, self.matches, self.weapons, self.spawners, self.contacts = (
            players,
            matches,
            weapons,
            spawners,
            contacts,
        )

    def __getattr__(self, name: str) -> np.ndarray:
        home = _FIELD_HOME.get(name)
        if home is None:
            raise AttributeError(f"MatchState has no field {name!r}")
        return getattr(self, home)[name]

    @property
    def n(self) -> int:
        return self.players.shape[0]

    @property
    def n_weapons(self) -> int:
        return self.weapons.shape[1]

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in _ARRAYS}

    def copy(self) -> MatchState:
        return MatchState(*(getattr(self, name).copy() for name in _ARRAYS))


def allocate(n: int, max_dropped: int = 6) -> MatchState:
    """Zeroed state for n matches; call ``engine.reset`` before stepping."""
    n_weapons = N_SPAWNERS + max_dropped
    return MatchState(
        players=np.zeros((n, 2), PLAYER_DTYPE),
        matches=np.zeros(n, MATCH_DTYPE),
        weapons=np.zeros((n, n_weapons), WEAPON_DTYPE),
        spawners=np.zeros((n, N_SPAWNERS), SPAWNER_DTYPE),
        contacts=np.zeros((n, 2 + n_weapons, N_SOLIDS), CONTACT_DTYPE),
    )


# --- splitmix64, vectorized (the kernels have a scalar twin: kernel.draw) ------------------
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
