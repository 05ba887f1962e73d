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
    """Fills a preallocated (n, 2, 64) buffer: row [i, k] is what player k of match i sees."""

    def __init__(self, n: int, p: GameParams = DEFAULT_PARAMS):
        self.p = p
        self.half = np.zeros((n, 2, OBS_HALF), np.float32)
        self.out = np.zeros((n, 2, OBS_SIZE), np.float32)
        # Observer-relative slot order: spawner R, spawner L, own drop, other's drop.
        self.slot_order = np.array([[0, 1, 2, 3], [0, 1, 3, 2]])
        cx, cy = p.obs_pos_clamp
        cv = p.obs_vel_clamp
        self.motion_low = np.array([-cx, -cy, -cv, -cv], np.float32)
        self.motion_high = -self.motion_low

    def build(self, s: MatchState) -> np.ndarray:
        p, h = self.p, self.half
        # Two stacked blocks instead of 32 column writes: at small N each numpy
        # call costs more than its arithmetic.
        motion = np.stack([s.x, s.y, s.vx, s.vy], axis=-1)
        np.clip(motion, self.motion_low, self.motion_high, out=h[..., 0:4])
        h[..., 4:16] = np.stack(
            [
                s.facing > 0, s.grounded, ~s.grounded, s.jumps_left, s.state, s.recoveries_left,
                np.where(s.state == P.DODGE, s.state_timer, 0), np.minimum(s.stun_frames, p.max_stun_frames),
                s.damage / p.max_damage, s.stocks, s.move, s.weapon,
            ],
            axis=-1,
        )  # fmt: skip
        self._fill_slots(s)
        h[..., 28:32] = np.stack([s.platform_x, s.platform_y, s.platform_vx, s.platform_vy], axis=-1)[:, None, :]
        self.out[..., :OBS_HALF] = h
        self.out[..., OBS_HALF:] = h[:, ::-1]
        return self.out

    def _fill_slots(self, s: MatchState) -> None:
        cx, cy = self.p.obs_pos_clamp
        kind = s.slot_kind
        present = kind > 0
        # Type code: spawner slots show 1 while a weapon waits there; dropped slots
        # show 2 (Spear) or 3 (Hammer).
        code = np.where(present, kind + 1, 0)
        code[:, :2] = present[:, :2]
        block = np.stack([np.clip(s.slot_x, -cx, cx), np.clip(s.slot_y, -cy, cy), code], axis=-1)
        block *= present[..., None]
        n = kind.shape[0]
        self.half[..., 16:28] = block[:, self.slot_order].reshape(n, 2, 12)
