"""The 64-value observation (DESIGN §4), index by index as the tournament's engine builds it.

32 values for the observing player, then the same 32 for its opponent:

| idx   | meaning                                                                       |
|-------|-------------------------------------------------------------------------------|
| 0–1   | position x, y (clamped ±18, ±7)                                               |
| 2–3   | velocity x, y (clamped ±10)                                                   |
| 4     | facing (1 right, 0 left)                                                      |
| 5 / 6 | on the floor / not on the floor                                               |
| 7     | jumps left: the current state's memory (0 in states that keep none)           |
| 8     | state                                                                         |
| 9     | recoveries left, likewise                                                     |
| 10    | dodge frames left (0 unless dodging)                                          |
| 11    | stun frames left (0 unless stunned)                                           |
| 12    | damage / 700                                                                  |
| 13    | stocks                                                                        |
| 14    | move (0, or 2–12 while attacking)                                             |
| 15    | weapon (0 Punch, 1 Spear, 2 Hammer)                                           |
| 16–27 | 4 weapon slots × [x, y, type]                                                 |
| 28–29 | moving platform position                                                      |
| 30–31 | moving platform velocity                                                      |

"Jumps left" counts air jumps: 0 at spawn and respawn until the first landing, 2
after leaving the ground, and 0 while on the ground (ground states keep no count),
exactly as the original reports it.

Weapon slots are the original's spawner list, the same for both players: the
right spawner, the left spawner, then dropped weapons oldest first (the first
two). A spawner shows its spawn point and type 1 while its weapon is there; a
dropped weapon shows where it was dropped and type 2 (Spear) or 3 (Hammer);
an empty slot shows zeros.
"""

from __future__ import annotations

import numpy as np

from environment import params as P
from environment.moves import MOVES
from environment.params import DEFAULT_PARAMS, GameParams
from environment.state import N_SPAWNERS, MatchState

OBS_HALF = 32
OBS_SIZE = 64

# Named indices into one player's half: the one place that defines them (add OPP for the opponent's).
X, Y, VX, VY, FACING, GROUNDED, AERIAL, JUMPS, STATE, RECOVERIES = range(10)
DODGE_LEFT, STUN_LEFT, DAMAGE, STOCKS, MOVE, WEAPON = range(10, 16)
SLOTS = 16  # 4 × [x, y, type]
PLATFORM_X, PLATFORM_Y, PLATFORM_VX, PLATFORM_VY = range(28, 32)
OPP = OBS_HALF


def observation_bounds(p: GameParams = DEFAULT_PARAMS) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of the 64 values; every observation lies inside (a test checks)."""
    cx, cy = p.obs_pos_clamp
    cv = p.obs_vel_clamp
    (ax, ay), (bx, by) = p.platform_waypoints
    plat_speed = 1.0 + p.platform_speed_floor
    low = np.zeros(OBS_HALF, np.float32)
    high = np.zeros(OBS_HALF, np.float32)
    low[0:4], high[0:4] = (-cx, -cy, -cv, -cv), (cx, cy, cv, cv)
    high[4:16] = (
        1,
        1,
        1,
        p.air_jumps,
        12,
        p.recoveries_per_airtime,
        p.dodge_frames,
        int(MOVES.powers["stun"].max()),
        1,
        p.stocks,
        12,
        2,
    )
    for slot in range(4):
        i = SLOTS + 3 * slot
        low[i : i + 3] = (-cx, -cy, 0)
        high[i : i + 3] = (cx, cy, 3)
    low[28:30], high[28:30] = (min(ax, bx), min(ay, by)), (max(ax, bx), max(ay, by))
    low[30:32], high[30:32] = -plat_speed, plat_speed
    return np.concatenate([low, low]), np.concatenate([high, high])


class ObservationBuilder:
    """Fills a preallocated (n, 2, 64) float32 buffer: row [i, k] is what player k of match i sees."""

    def __init__(self, n: int, p: GameParams = DEFAULT_PARAMS):
        self.p = p
        self.out = np.zeros((n, 2, OBS_SIZE), np.float32)
        self.half = self.out[..., :OBS_HALF]  # the observer's own half, built first
        self.slots = np.zeros((n, 4, 3), np.float64)

    def build(self, s: MatchState) -> np.ndarray:
        h, p = self.half, self.p
        cx, cy = p.obs_pos_clamp
        cv = p.obs_vel_clamp
        h[..., X] = np.clip(s.x, -cx, cx)
        h[..., Y] = np.clip(s.y, -cy, cy)
        h[..., VX] = np.clip(s.vx, -cv, cv)
        h[..., VY] = np.clip(s.vy, -cv, cv)
        h[..., FACING] = s.facing > 0
        h[..., GROUNDED] = s.grounded
        h[..., AERIAL] = ~s.grounded
        h[..., JUMPS] = s.jumps_left
        h[..., STATE] = s.state
        h[..., RECOVERIES] = s.recoveries_left
        h[..., DODGE_LEFT] = np.where(s.state == P.DODGE, s.timer, 0)
        h[..., STUN_LEFT] = np.where(s.state == P.STUN, s.timer, 0)
        h[..., DAMAGE] = s.damage / p.max_damage
        h[..., STOCKS] = s.stocks
        h[..., MOVE] = s.move
        h[..., WEAPON] = s.weapon
        h[..., SLOTS : SLOTS + 12] = self._slots(s).reshape(s.n, 1, 12)
        h[..., PLATFORM_X] = np.clip(s.platform_x, -cx, cx)[:, None]
        h[..., PLATFORM_Y] = np.clip(s.platform_y, -cy, cy)[:, None]
        h[..., PLATFORM_VX] = np.clip(s.platform_vx, -cv, cv)[:, None]
        h[..., PLATFORM_VY] = np.clip(s.platform_vy, -cv, cv)[:, None]
        self.out[..., OBS_HALF:] = h[:, ::-1]
        return self.out

    def _slots(self, s: MatchState) -> np.ndarray:
        cx, cy = self.p.obs_pos_clamp
        block = self.slots
        block[...] = 0.0
        kind = s.weapon_kind
        columns = np.zeros((s.n, 4), np.intp)
        columns[:, :N_SPAWNERS] = np.arange(N_SPAWNERS)
        listed = np.ones((s.n, 4), bool)  # a dropped slot shows a weapon only if that many lie around
        dropped = kind[:, N_SPAWNERS:] > 0
        if dropped.any():
            age = np.where(dropped, s.weapon_order[:, N_SPAWNERS:], np.iinfo(np.int32).max)
            oldest = np.argsort(age, axis=1, kind="stable")[:, : 4 - N_SPAWNERS] + N_SPAWNERS
            columns[:, N_SPAWNERS:] = oldest
        else:
            listed[:, N_SPAWNERS:] = False
        rows = np.arange(s.n)[:, None]
        k = kind[rows, columns]
        present = (k > 0) & listed
        block[..., 0] = np.where(present, np.clip(s.weapon_home_x[rows, columns], -cx, cx), 0.0)
        block[..., 1] = np.where(present, np.clip(s.weapon_home_y[rows, columns], -cy, cy), 0.0)
        dropped_type = np.where(k == P.SPEAR, 2, 3)
        block[..., 2] = np.where(present, np.where(columns < N_SPAWNERS, 1, dropped_type), 0)
        return block
