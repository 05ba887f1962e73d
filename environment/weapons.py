"""Weapon spawners, pickups and drops, as the original runs them after each physics step.

The original's order, every frame once the bodies have moved:
1. **Drops.** A player not attacking who presses ``h`` while armed drops its weapon
   at (x + 0.1 * facing, y + 0.27); it cannot pick up a *dropped* weapon for 15 frames.
2. **Pickups**, spawner by spawner in list order (right spawner, left spawner,
   dropped weapons oldest first), player 0 before player 1, for players not
   attacking and unarmed: a spawner's weapon once its spawn animation (36 frames)
   has played, with ``h`` held or pressed; a dropped weapon with ``h`` freshly
   pressed. The player's hurtbox capsule must touch a pickup capsule centred on
   where the weapon's body was before this frame's physics step.
3. **Spawner updates.** A spawner's weapon vanishes after 350 frames; an empty
   spawner spawns a Spear or a Hammer (even odds) at a random x once its cooldown
   has passed since its last spawn or pickup, but only while no dropped weapon
   exists. Each despawn or pickup redraws the cooldown in [0.5, 1.5] × its first
   value. A dropped weapon vanishes 250 frames after it was dropped.

Weapons are physics bodies (boxes that fall and rest on the grounds and the
platform, never touching players). The observation shows where each weapon
*appeared*, not where its body lies.

Randomness comes from the match's own stream, so positions and types differ from
the original's draws (which depend on Python's global random state), but follow
the same distributions.
"""

from __future__ import annotations

import numpy as np

from environment import params as P
from environment.attacks import capsules, hurtbox, touches_hurtbox
from environment.params import GameParams
from environment.physics import FAT_MARGIN
from environment.state import N_SPAWNERS, MatchState, draw_int, draw_uniform, forget_contacts


class WeaponRules:
    def __init__(self, p: GameParams):
        self.p = p
        self.hurtbox = hurtbox(p)
        self.spawner_pickup = capsules(*p.pickup_size)
        self.dropped_pickup = capsules(*p.dropped_pickup_size)

    # --- reset ---------------------------------------------------------------------------
    def reset(self, s: MatchState, rows: np.ndarray) -> None:
        p = self.p
        for field in ("weapon_kind", "weapon_vx", "weapon_vy", "weapon_bias_vx", "weapon_bias_vy", "weapon_order"):
            getattr(s, field)[rows] = 0
        for spawner in range(N_SPAWNERS):
            cooldown = draw_int(s.rng, rows, *p.spawner_cooldown)
            s.spawner_cooldown[rows, spawner] = cooldown
            s.spawner_base_cooldown[rows, spawner] = cooldown
            # The original starts each spawner "cooldown - randint(0, 350)" frames before frame 0.
            s.spawner_last_spawn[rows, spawner] = -(cooldown - draw_int(s.rng, rows, 0, p.first_spawn_head_start))
            s.spawner_ready[rows, spawner] = False

    # --- one frame -------------------------------------------------------------------------
    def step(self, s: MatchState, pressed: np.ndarray, held: np.ndarray, ev) -> None:
        """Drops, pickups and spawner updates, after the physics step and the frame count's increment."""
        lying = s.weapon_kind > 0
        h_pressed = pressed[..., P.K_PICKUP]
        wants = h_pressed | held[..., P.K_PICKUP]
        if not (lying.any() or h_pressed.any()):
            self._update_spawners(s, np.zeros(s.n, bool))
            return
        free = s.state != P.ATTACK
        self._drop(s, free & h_pressed & (s.weapon != P.PUNCH), ev)
        picked_dropped = self._pick_up(s, free & wants, free & h_pressed, ev)
        self._update_spawners(s, picked_dropped)

    def _drop(self, s: MatchState, drop: np.ndarray, ev) -> None:
        for player in range(2):
            rows = np.flatnonzero(drop[:, player])
            if rows.size == 0:
                continue
            slot = self._free_dropped_slot(s, rows)
            x = s.x[rows, player] + self.p.drop_offset[0] * s.facing[rows, player]
            y = s.y[rows, player] + self.p.drop_offset[1]
            s.weapon_kind[rows, slot] = s.weapon[rows, player]
            s.weapon_home_x[rows, slot], s.weapon_home_y[rows, slot] = x, y
            s.weapon_x[rows, slot], s.weapon_y[rows, slot] = x, y
            s.weapon_seen_x[rows, slot], s.weapon_seen_y[rows, slot] = x, y
            for field in ("weapon_vx", "weapon_vy", "weapon_bias_vx", "weapon_bias_vy"):
                getattr(s, field)[rows, slot] = 0.0
            self._new_body(s, rows, slot)
            s.weapon_born[rows, slot] = s.frame[rows]
            s.weapon_order[rows, slot] = s.weapon_order[rows].max(axis=1) + 1
            s.pickup_lock[rows, player] = s.frame[rows] + self.p.repickup_lock
            s.weapon[rows, player] = P.PUNCH
            ev.weapon_drop[rows, player] = True

    def _free_dropped_slot(self, s: MatchState, rows: np.ndarray) -> np.ndarray:
        """An empty dropped-weapon column; when all are taken (vanishingly rare) the oldest drop is replaced."""
        kinds = s.weapon_kind[rows, N_SPAWNERS:]
        order = np.where(kinds > 0, s.weapon_order[rows, N_SPAWNERS:], -1)
        empty = kinds == 0
        choice = np.where(empty.any(axis=1), empty.argmax(axis=1),
                          np.where(kinds > 0, order, np.iinfo(np.int32).max).argmin(axis=1))  # fmt: skip
        return N_SPAWNERS + choice

    def _pick_up(self, s: MatchState, wants: np.ndarray, fresh: np.ndarray, ev) -> np.ndarray:
        """Pickups in the original's order; returns which matches had a dropped weapon taken (it still counts
        as listed during this frame's spawner updates)."""
        taken_dropped = np.zeros(s.n, bool)
        everyone = np.arange(s.n)
        for spawner, cols in self._pickup_order(s):
            for player in range(2):
                lying = s.weapon_kind[everyone, cols] > 0
                if spawner:
                    can = wants[:, player] & lying & s.spawner_ready[everyone, np.minimum(cols, N_SPAWNERS - 1)]
                    shape = self.spawner_pickup
                else:
                    can = fresh[:, player] & lying & (s.frame >= s.pickup_lock[:, player])
                    shape = self.dropped_pickup
                can &= s.weapon[:, player] == P.PUNCH
                if not can.any():
                    continue
                rows = np.flatnonzero(can)
                col = cols[rows]
                touch = touches_hurtbox(self.hurtbox, s.hurt_x[rows, player], s.hurt_y[rows, player], shape,
                                        s.weapon_seen_x[rows, col], s.weapon_seen_y[rows, col])  # fmt: skip
                rows, col = rows[touch], col[touch]
                if rows.size == 0:
                    continue
                kind = s.weapon_kind[rows, col]
                s.weapon[rows, player] = kind
                ev.weapon_equip[rows, player] = kind
                s.weapon_kind[rows, col] = 0
                if spawner:
                    s.spawner_last_spawn[rows, col] = s.frame[rows]
                    self._redraw_cooldown(s, rows, col)
                else:
                    taken_dropped[rows] = True
        return taken_dropped

    @staticmethod
    def _pickup_order(s: MatchState) -> list[tuple[bool, np.ndarray]]:
        """(is a spawner, column per match) in the original's list order: the two spawners, then the dropped
        weapons of each match, oldest first."""
        order = [(True, np.full(s.n, c)) for c in range(N_SPAWNERS)]
        dropped = s.weapon_kind[:, N_SPAWNERS:] > 0
        count = int(dropped.sum(axis=1).max()) if dropped.any() else 0
        if count:
            age = np.where(dropped, s.weapon_order[:, N_SPAWNERS:], np.iinfo(np.int32).max)
            by_age = np.argsort(age, axis=1, kind="stable") + N_SPAWNERS
            order += [(False, by_age[:, rank]) for rank in range(count)]
        return order

    def _redraw_cooldown(self, s: MatchState, rows: np.ndarray, col) -> None:
        base = s.spawner_base_cooldown[rows, col]
        lo, hi = self.p.cooldown_reroll
        s.spawner_cooldown[rows, col] = draw_int(s.rng, rows, (base * lo).astype(np.int64), (base * hi).astype(np.int64))

    def _update_spawners(self, s: MatchState, picked_dropped: np.ndarray) -> None:
        p, now = self.p, s.frame
        dropped_listed = (s.weapon_kind[:, N_SPAWNERS:] > 0).any(axis=1) | picked_dropped
        for col in range(N_SPAWNERS):
            lying = s.weapon_kind[:, col] > 0
            since = now - s.spawner_last_spawn[:, col]
            s.spawner_ready[:, col] |= lying & (since >= p.spawn_animation_frames)
            expired = lying & (now - s.weapon_born[:, col] > p.spawned_lifetime)
            if expired.any():
                rows = np.flatnonzero(expired)
                s.weapon_kind[rows, col] = 0
                self._redraw_cooldown(s, rows, col)
            due = ~lying & (since >= s.spawner_cooldown[:, col]) & ~dropped_listed
            if due.any():
                self._spawn(s, np.flatnonzero(due), col)
        dropped = s.weapon_kind[:, N_SPAWNERS:]
        if dropped.any():
            old = (now[:, None] - s.weapon_born[:, N_SPAWNERS:] >= p.dropped_lifetime) & (dropped > 0)
            dropped[old] = 0

    def _new_body(self, s: MatchState, rows: np.ndarray, col) -> None:
        """A weapon body enters the physics engine: no contacts yet, a fresh broad-phase box, at rest."""
        way, age = s.weapon_contact_way[rows, col], s.weapon_contact_age[rows, col]
        forget_contacts(way, age)
        s.weapon_contact_way[rows, col], s.weapon_contact_age[rows, col] = way, age
        x, y = s.weapon_x[rows, col], s.weapon_y[rows, col]
        hw, hh = self.p.weapon_body[0] / 2, self.p.weapon_body[1] / 2
        mx, my = 2 * hw * FAT_MARGIN, 2 * hh * FAT_MARGIN
        s.weapon_fat_box[rows, col] = np.stack([x - hw - mx, y - hh - my, x + hw + mx, y + hh + my], axis=-1)

    def _spawn(self, s: MatchState, rows: np.ndarray, col: int) -> None:
        x_min, x_max, y = self.p.right_spawner if col == 0 else self.p.left_spawner
        x = x_min + draw_uniform(s.rng, rows) * (x_max - x_min)
        kind = np.where(draw_uniform(s.rng, rows) < 0.5, P.SPEAR, P.HAMMER)
        s.weapon_kind[rows, col] = kind
        for field, value in (("weapon_home_x", x), ("weapon_home_y", y), ("weapon_x", x), ("weapon_y", y),
                             ("weapon_seen_x", x), ("weapon_seen_y", y), ("weapon_vx", 0.0), ("weapon_vy", 0.0),
                             ("weapon_bias_vx", 0.0), ("weapon_bias_vy", 0.0)):  # fmt: skip
            getattr(s, field)[rows, col] = value
        self._new_body(s, rows, col)
        s.weapon_born[rows, col] = s.frame[rows]
        s.spawner_last_spawn[rows, col] = s.frame[rows]
        s.spawner_ready[rows, col] = False
