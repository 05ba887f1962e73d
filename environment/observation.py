"""The 64-value observation (DESIGN §4): 32 values for the observer, then 32 for the opponent.

| idx   | meaning                                                    |
|-------|------------------------------------------------------------|
| 0–1   | position x, y (clamped ±18, ±7)                            |
| 2–3   | velocity x, y (clamped ±10)                                |
| 4     | facing (1 right, 0 left)                                   |
| 5 / 6 | grounded / aerial                                          |
| 7     | jumps left                                                 |
| 8     | state                                                      |
| 9     | recoveries left                                            |
| 10    | dodge frames left                                          |
| 11    | stun frames left                                           |
| 12    | damage / 700                                               |
| 13    | stocks                                                     |
| 14    | move (0, or 2–12)                                          |
| 15    | weapon (0 Punch, 1 Spear, 2 Hammer)                        |
| 16–27 | 4 weapon slots × [x, y, type]                              |
| 28–29 | moving platform position                                   |
| 30–31 | moving platform velocity                                   |

Weapon slots, from the point of view of the half's player: the right spawner's
weapon, the left spawner's, the weapon this player dropped, the weapon the
other player dropped. Types: 0 none, 1 spawner weapon, 2 dropped Spear,
3 dropped Hammer. Ordering slots by owner keeps the game symmetric: swapping
the players swaps the two halves exactly.
"""

from __future__ import annotations

import numpy as np

from environment import params as P
from environment.params import DEFAULT_PARAMS, GameParams
from environment.state import MatchState

OBS_HALF = 32
OBS_SIZE = 64


def observation_bounds(p: GameParams = DEFAULT_PARAMS) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of the 64 values; every observation lies inside (a test checks)."""
    cx, cy = p.obs_pos_clamp
    cv = p.obs_vel_clamp
    (ax, ay), (bx, by) = p.platform_a, p.platform_b
    plat_speed = 1.0 + p.platform_speed_floor
    low = np.zeros(OBS_HALF, np.float32)
    high = np.zeros(OBS_HALF, np.float32)
    low[0:4], high[0:4] = (-cx, -cy, -cv, -cv), (cx, cy, cv, cv)
    high[4:16] = (1, 1, 1, p.ground_jumps + p.air_jumps, 12, p.recoveries_per_airtime,
                  p.dodge_frames, p.max_stun_frames, 1, p.stocks, 12, 2)  # fmt: skip
    for slot in range(4):
        i = 16 + 3 * slot
        low[i : i + 3] = (-cx, -cy, 0)
        high[i : i + 3] = (cx, cy, 3)
    low[28:30], high[28:30] = (min(ax, bx), min(ay, by)), (max(ax, bx), max(ay, by))
    low[30:32], high[30:32] = -plat_speed, plat_speed
    return np.concatenate([low, low]), np.concatenate([high, high])


class ObservationBuilder:
    """Fills a preallocated (n, 2, 64) buffer: row [i, k] is what player k of match i sees.

    At small N each NumPy call costs more than its arithmetic, so every value is
    computed by as few calls as possible and stored straight into its column.
    """

    def __init__(self, n: int, p: GameParams = DEFAULT_PARAMS):
        self.p = p
        self.out = np.zeros((n, 2, OBS_SIZE), np.float32)
        self.half = self.out[..., :OBS_HALF]  # the observer's own half, built first
        cx, cy = p.obs_pos_clamp
        cv = p.obs_vel_clamp
        # Clamps as 0-d float32 arrays: NumPy handles them faster than Python floats (same results).
        self.clamps = [np.array(c, np.float32) for c in (-cx, cx, -cy, cy, -cv, cv)]
        self.slots = np.zeros((n, 4, 3), np.float32)  # [x, y, type] per slot, in state order
        # Type code by slot and kind: spawner slots show 1 while a weapon waits there;
        # dropped slots show 2 (Spear) or 3 (Hammer); empty slots 0.
        self.slot_codes = np.array([[0, 1, 1], [0, 1, 1], [0, 2, 3], [0, 2, 3]], np.float32).reshape(-1)
        self.slot_code_row = np.array([0, 3, 6, 9], np.int8)  # where each slot's row starts in slot_codes
        self.zero_i8 = np.array(0, np.int8)
        self.zero_f32 = np.array(0.0, np.float32)
        self.dodge = np.array(P.DODGE, np.int8)
        self.max_stun = np.array(p.max_stun_frames, np.int16)
        self.max_damage = np.array(p.max_damage, np.float32)

    def build(self, s: MatchState) -> np.ndarray:
        h = self.half
        x_low, x_high, y_low, y_high, v_low, v_high = self.clamps
        # minimum(maximum(...)) is np.clip's arithmetic (the bounds are nonzero, so not even a
        # zero's sign can differ) without its Python wrapper. Values are computed, then stored:
        # at N=1 that is cheaper than a ufunc writing into the strided column.
        h[..., 0] = np.minimum(np.maximum(s.x, x_low), x_high)
        h[..., 1] = np.minimum(np.maximum(s.y, y_low), y_high)
        h[..., 2] = np.minimum(np.maximum(s.vx, v_low), v_high)
        h[..., 3] = np.minimum(np.maximum(s.vy, v_low), v_high)
        h[..., 4] = s.facing > self.zero_f32
        h[..., 5] = s.grounded
        h[..., 6] = ~s.grounded
        h[..., 7] = s.jumps_left
        h[..., 8] = s.state
        h[..., 9] = s.recoveries_left
        np.multiply(s.state_timer, s.state == self.dodge, out=h[..., 10])  # dodge frames left
        h[..., 11] = np.minimum(s.stun_frames, self.max_stun)
        h[..., 12] = s.damage / self.max_damage
        h[..., 13] = s.stocks
        h[..., 14] = s.move
        h[..., 15] = s.weapon
        self._fill_slots(s)
        h[..., 28] = s.platform_x[:, None]
        h[..., 29] = s.platform_y[:, None]
        h[..., 30] = s.platform_vx[:, None]
        h[..., 31] = s.platform_vy[:, None]
        self.out[..., OBS_HALF:] = h[:, ::-1]
        return self.out

    def _fill_slots(self, s: MatchState) -> None:
        block, h = self.slots, self.half
        x_low, x_high, y_low, y_high = self.clamps[:4]
        present = s.slot_kind > self.zero_i8
        # An empty slot shows 0 (with the sign of its stale position, as x * 0 has).
        block[..., 0] = np.minimum(np.maximum(s.slot_x, x_low), x_high) * present
        block[..., 1] = np.minimum(np.maximum(s.slot_y, y_low), y_high) * present
        block[..., 2] = self.slot_codes.take(s.slot_kind + self.slot_code_row)
        # Observer-relative slot order: spawner R, spawner L, own drop, other's drop.
        n = block.shape[0]
        h[:, 0, 16:28] = block.reshape(n, 12)
        h[:, 1, 16:22] = block[:, :2].reshape(n, 6)
        h[:, 1, 22:28] = block[:, 3:1:-1].reshape(n, 6)
