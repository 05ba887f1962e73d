"""The batched Warehouse Brawl core: N matches advanced one frame at a time, as the tournament's engine does.

``BrawlEngine.step(keys[N, 2, 10])`` runs one frame of the original
``WarehouseBrawl.step`` for every match, in the original's order:

    keys → platform velocity → player 0's update → player 1's update
    → physics step (players, weapons, platform) → drops, pickups, spawners → match end

Player 0 is updated completely before player 1, and that order is part of the
game: player 0's attacks test player 1's hurtbox where it was placed one update
earlier, and a hit on player 1 takes effect in the same frame while a hit on
player 0 waits for its next update. The engine reproduces it by running the
phases that interact in slot order (``rules.py`` and ``attacks.py`` work on one
slot or on both, by mask) and the rest for both slots at once.

Masks replace branches: every rule runs on all N matches at once and there is
no Python object per match. A rule that concerns nobody this frame is skipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from environment import params as P
from environment.attacks import AttackRunner
from environment.params import DEFAULT_PARAMS, DT, GameParams
from environment.physics import Bodies, apply_gravity, build_solids, integrate_positions, refit, solve_contacts
from environment.rules import NONE, StateMachine, read_inputs
from environment.state import MatchState, allocate, draw_uniform, forget_contacts, seed_streams
from environment.weapons import WeaponRules


@dataclass
class StepEvents:
    """What happened during one frame, for every match. Player arrays are (n, 2)."""

    hit: np.ndarray  # player landed a hit
    damage_dealt: np.ndarray  # damage the player dealt this frame (after the 700 cap)
    combo: np.ndarray  # player hit an opponent who was already stunned
    knocked_out: np.ndarray  # player lost a stock
    weapon_equip: np.ndarray  # weapon the player picked up (0 none, 1 Spear, 2 Hammer)
    weapon_drop: np.ndarray  # player dropped its weapon
    done: np.ndarray  # (n,) the match ended this frame
    truncated: np.ndarray  # (n,) ...because it reached max_timesteps
    result: np.ndarray  # (n,) RESULT_* once done

    @classmethod
    def allocate(cls, n: int) -> StepEvents:
        return cls(
            hit=np.zeros((n, 2), bool),
            damage_dealt=np.zeros((n, 2), np.float32),
            combo=np.zeros((n, 2), bool),
            knocked_out=np.zeros((n, 2), bool),
            weapon_equip=np.zeros((n, 2), np.int8),
            weapon_drop=np.zeros((n, 2), bool),
            done=np.zeros(n, bool),
            truncated=np.zeros(n, bool),
            result=np.zeros(n, np.int8),
        )

    def clear(self) -> None:
        for arr in vars(self).values():
            arr.fill(0)


def any_nonzero(arr: np.ndarray) -> bool:
    """True if any element is nonzero (``np.count_nonzero`` is the cheapest test on small arrays)."""
    return np.count_nonzero(arr) > 0


def validate_keys(keys: np.ndarray, n: int) -> np.ndarray:
    """Keys as a bool (n, 2, 10) array; raises on a wrong shape, dtype or NaN."""
    keys = np.asarray(keys)
    if keys.shape != (n, 2, P.N_KEYS):
        raise ValueError(f"keys must have shape ({n}, 2, {P.N_KEYS}), got {keys.shape}")
    if keys.dtype == bool:
        return keys
    if not (np.issubdtype(keys.dtype, np.number)):
        raise TypeError(f"keys must be bool or numeric, got dtype {keys.dtype}")
    if np.issubdtype(keys.dtype, np.floating) and not np.isfinite(keys).all():
        raise ValueError("keys contain NaN or infinite values")
    return keys > 0.5


# ==================================================================================
# The moving platform
# ==================================================================================
class PlatformPath:
    """The platform's motion, which depends only on the frame number: computed once, frame by frame.

    Row f holds the velocity the platform takes during frame f and its position after
    that frame's physics step. Its rule (the original's): head for the current waypoint
    at speed sin(pi * progress) + 0.03 along the segment; within 0.1 of it, stop for
    that frame and turn to the other waypoint.
    """

    def __init__(self, p: GameParams):
        self.p = p
        self.rows = np.zeros((0, 4))
        self._x, self._y = p.platform_start
        self._to_second = True

    def _velocity(self) -> tuple[float, float]:
        (ax, ay), (bx, by) = self.p.platform_waypoints
        tx, ty = (bx, by) if self._to_second else (ax, ay)
        dx, dy = tx - self._x, ty - self._y
        dist = math.sqrt(dx * dx + dy * dy)
        if dist < self.p.platform_stop_distance:
            self._to_second = not self._to_second
            return 0.0, 0.0
        seg_x, seg_y = bx - ax, by - ay
        seg_len = max(math.sqrt(seg_x * seg_x + seg_y * seg_y), 0.05)
        progress = ((self._x - ax) * seg_x + (self._y - ay) * seg_y) / (seg_len * seg_len)
        progress = max(0.0, min(1.0, progress))
        speed = 1 * math.sin(progress * math.pi) + self.p.platform_speed_floor
        return dx / dist * speed, dy / dist * speed

    def upto(self, frames: int) -> np.ndarray:
        """The table with at least ``frames`` rows."""
        if frames > len(self.rows):
            extra = []
            for _ in range(max(frames - len(self.rows), 1024)):
                if self.p.platform_extra_update:
                    self._velocity()
                vx, vy = self._velocity()
                self._x += vx * DT
                self._y += vy * DT
                extra.append((vx, vy, self._x, self._y))
            self.rows = np.concatenate([self.rows, np.array(extra)])
        return self.rows


# ==================================================================================
# The engine
# ==================================================================================
class BrawlEngine:
    """N Warehouse Brawl matches as arrays.

    :param n: number of matches
    :param max_timesteps: frames after which a match ends on stocks (draw if equal)
    :param seed: base seed; match i is seeded with ``seed + i``
    :param params: the game's constants; ``params.TOURNAMENT_PARAMS`` adds the platform
        update of the tournament's match loop
    """

    def __init__(self, n: int, max_timesteps: int = 2700, seed: int | None = 0, params: GameParams = DEFAULT_PARAMS):
        if not isinstance(n, (int, np.integer)) or n <= 0:
            raise ValueError(f"n (number of matches) must be a positive integer, got {n!r}")
        if not isinstance(max_timesteps, (int, np.integer)) or max_timesteps <= 0:
            raise ValueError(f"max_timesteps must be a positive integer, got {max_timesteps!r}")
        self.n = int(n)
        self.max_timesteps = int(max_timesteps)
        self.params = params
        self.state: MatchState = allocate(self.n, params.max_dropped)
        self.events = StepEvents.allocate(self.n)
        self._needs_reset = np.ones(self.n, bool)
        base = 0 if seed is None else int(seed)
        self.state.rng[:] = seed_streams(base + np.arange(self.n))
        self.rules = StateMachine(params)
        self.attacks = AttackRunner(params, self.rules.on_floor)
        self.weapons = WeaponRules(params)
        self.solids = build_solids(params)
        self.platform = PlatformPath(params)
        self.platform.upto(self.max_timesteps + 1)
        self._slot = np.zeros((2, self.n, 2), bool)  # masks of slot 0 and slot 1
        self._slot[0, :, 0] = True
        self._slot[1, :, 1] = True
        f, g, plat = params.friction_player, params.friction_ground, params.friction_platform
        self._player_friction = np.array([f * g, f * g, f * plat])
        w = params.friction_weapon
        self._weapon_friction = np.array([w * g, w * g, w * plat])
        self._player_half = (params.body_w / 2, params.body_h / 2)
        self._weapon_half = (params.weapon_body[0] / 2, params.weapon_body[1] / 2)

    # --- lifecycle ---------------------------------------------------------------
    def reset(self, rows=None, seeds=None, p0_side: int | None = None) -> None:
        """Start new matches in ``rows`` (all by default).

        :param seeds: reseed those matches (one int each, or one int for all, offset
            by the row's position in ``rows``); otherwise their streams continue
        :param p0_side: +1/-1 to put player 0 on the right/left start point instead
            of drawing the side from the match's stream (tests use this)
        """
        rows = np.arange(self.n) if rows is None else np.atleast_1d(np.asarray(rows, dtype=np.intp))
        if rows.size == 0:
            return
        s = self.state
        if seeds is not None:
            seeds = np.asarray(seeds, dtype=np.int64)
            seeds = seeds + np.arange(rows.size) if seeds.ndim == 0 else seeds
            s.rng[rows] = seed_streams(seeds)
        reset_matches(s, self.params, rows, p0_side)
        self.weapons.reset(s, rows)
        self.rules.refresh_view(s)
        self._needs_reset[rows] = False

    def get_state(self) -> dict[str, np.ndarray]:
        """Copies of every state array (for exact resume)."""
        return {**{f.name: getattr(self.state, f.name).copy() for f in fields(self.state)},
                "needs_reset": self._needs_reset.copy()}  # fmt: skip

    def set_state(self, saved: dict[str, np.ndarray]) -> None:
        for f in fields(self.state):
            if f.name not in saved:
                raise ValueError(f"saved engine state has no field {f.name!r} (made by an older engine?)")
            value = saved[f.name]
            if value.shape != getattr(self.state, f.name).shape:
                raise ValueError(f"saved engine field {f.name} has shape {value.shape}, "
                                 f"expected {getattr(self.state, f.name).shape} (different n_envs?)")  # fmt: skip
            getattr(self.state, f.name)[...] = value
        self._needs_reset[:] = saved["needs_reset"]

    def step(self, keys: np.ndarray) -> StepEvents:
        """Advance every match one frame; returns this frame's events (reused buffers)."""
        held = validate_keys(keys, self.n)
        if any_nonzero(self._needs_reset):
            bad = np.flatnonzero(self._needs_reset)[:5].tolist()
            raise RuntimeError(f"step() on matches that ended or were never reset (rows {bad}); call reset() first")
        ev = self.events
        ev.clear()
        self._step(held, ev)
        self._needs_reset |= ev.done
        return ev

    # --- one frame ----------------------------------------------------------------
    def _step(self, held: np.ndarray, ev: StepEvents) -> None:
        s, rules = self.state, self.rules
        s.damage_taken_frame[...] = 0.0
        out_of_stocks = (s.stocks <= 0).any(axis=1)  # the original ends the match the frame after
        inp = read_inputs(s, held)
        path = self.platform.upto(int(s.frame.max()) + 1)[s.frame]
        s.platform_vx[...] = path[:, 0]
        s.platform_vy[...] = path[:, 1]
        nxt = np.full((s.n, 2), NONE, np.int8)
        # Player 0's update, up to its attacks; then player 1's base rules see what it dealt.
        go = rules.base(s, self._slot[0], nxt, ev)
        self._attack(0, go, inp, nxt, ev)
        go |= rules.base(s, self._slot[1], nxt, ev)
        floor = rules.on_floor(s)
        rules.control(s, inp, go & (s.state != P.ATTACK), nxt, floor, self.attacks.start)
        rules.after_rules(s, inp, self._slot[0], nxt, ev)
        self._attack(1, go, inp, nxt, ev)
        rules.after_rules(s, inp, self._slot[1], nxt, ev)
        self._physics(path)
        s.frame += 1
        self.weapons.step(s, inp.pressed, inp.held, ev)
        rules.refresh_view(s)
        self._end_matches(out_of_stocks, ev)

    def _attack(self, k: int, go: np.ndarray, inp, nxt: np.ndarray, ev: StepEvents) -> None:
        s = self.state
        rows = np.flatnonzero(go[:, k] & (s.state[:, k] == P.ATTACK))
        if rows.size == 0:
            return
        vulnerable = s.state[rows, 1 - k] != P.DODGE
        done = self.attacks.run(s, rows, k, inp.held, inp.raw_h, vulnerable, ev)
        if done.any():
            ended = rows[done]
            self.rules.end_attacks(s, inp, ended, k, nxt, self.rules.on_floor(s))

    def _physics(self, path: np.ndarray) -> None:
        """One pymunk step: the platform, the players, the weapons' bodies."""
        s, solids = self.state, self.solids
        s.platform_x[...] = path[:, 2]
        s.platform_y[...] = path[:, 3]
        platform = (s.platform_x[:, None], s.platform_y[:, None], s.platform_vx[:, None], s.platform_vy[:, None])
        players = Bodies(s.x, s.y, s.vx, s.vy, s.bias_vx, s.bias_vy, s.contact_way, s.contact_age, s.contact_jn,
                         s.contact_jt, s.fat_box)  # fmt: skip
        half_w, half_h = self._player_half
        reinserted = integrate_positions(players, half_w, half_h)
        apply_gravity(s.vy, s.gravity_off, solids)
        solve_contacts(players, half_w, half_h, self._player_friction, solids, platform, reinserted)
        lying = s.weapon_kind > 0
        if lying.any():
            rows = np.flatnonzero(lying.any(axis=1))
            names = ("x", "y", "vx", "vy", "bias_vx", "bias_vy", "contact_way", "contact_age", "contact_jn",
                     "contact_jt", "fat_box")  # fmt: skip
            weapons = Bodies(*(getattr(s, f"weapon_{name}")[rows] for name in names))
            s.weapon_seen_x[rows] = weapons.x
            s.weapon_seen_y[rows] = weapons.y
            half_w, half_h = self._weapon_half
            reinserted = integrate_positions(weapons, half_w, half_h)
            apply_gravity(weapons.vy, None, solids)
            solve_contacts(weapons, half_w, half_h, self._weapon_friction, solids, tuple(a[rows] for a in platform),
                           reinserted)  # fmt: skip
            keep = lying[rows]  # empty columns keep their last values
            for name, value in zip(names, vars(weapons).values(), strict=True):
                field = getattr(s, f"weapon_{name}")
                mask = keep if value.ndim == 2 else keep[..., None]
                field[rows] = np.where(mask, value, field[rows])

    def _end_matches(self, out_of_stocks: np.ndarray, ev: StepEvents) -> None:
        s = self.state
        timed_out = s.frame >= self.max_timesteps
        done = out_of_stocks | timed_out
        if not done.any():
            return
        st0, st1 = s.stocks[:, 0], s.stocks[:, 1]
        result = np.where(st0 > st1, P.RESULT_P0_WINS, np.where(st1 > st0, P.RESULT_P1_WINS, P.RESULT_DRAW))
        s.result[done] = result[done]
        s.done |= done
        ev.done[:] = done
        ev.truncated[:] = timed_out & ~out_of_stocks
        ev.result[:] = np.where(done, result, P.RESULT_NONE)


# ==================================================================================
# Reset
# ==================================================================================
def reset_matches(s: MatchState, p: GameParams, rows: np.ndarray, p0_side: int | None = None) -> None:
    """The original's reset: both players in the air at their start points, facing the centre, with no
    jumps and no recoveries until they land; 3 stocks; the platform halfway along its path."""
    if p0_side is None:
        side = np.where(draw_uniform(s.rng, rows) < 0.5, 1.0, -1.0)
    else:
        side = np.full(rows.size, float(np.sign(p0_side)))
    spawn = np.stack([side * p.spawn_x, -side * p.spawn_x], axis=1)
    for f in fields(s):
        if f.name in ("rng",) or f.name.startswith(("weapon_", "spawner_")):
            continue
        getattr(s, f.name)[rows] = 0
    s.spawn_x[rows] = spawn
    s.x[rows] = spawn
    s.y[rows] = p.spawn_y
    s.facing[rows] = np.where(spawn < 0, 1.0, -1.0)  # face the centre
    s.state[rows] = P.IN_AIR
    s.stocks[rows] = p.stocks
    s.result[rows] = P.RESULT_NONE
    s.platform_x[rows], s.platform_y[rows] = p.platform_start
    way, age = s.contact_way[rows], s.contact_age[rows]
    forget_contacts(way, age)
    s.contact_way[rows], s.contact_age[rows] = way, age
    players = Bodies(*(getattr(s, name)[rows] for name in ("x", "y", "vx", "vy", "bias_vx", "bias_vy", "contact_way",
                                                            "contact_age", "contact_jn", "contact_jt", "fat_box")))
    refit(players, p.body_w / 2, p.body_h / 2, True)
    s.fat_box[rows] = players.fat
