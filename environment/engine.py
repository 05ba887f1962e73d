"""The batched Warehouse Brawl core: N matches advanced one frame at a time, as the tournament's engine does.

``BrawlEngine.step(keys[N, 2, 10])`` runs one frame of the original
``WarehouseBrawl.step`` for every match, in the original's order:

    keys → platform velocity → player 0's update → player 1's update
    → physics step (players, weapons, platform) → drops, pickups, spawners → match end

Player 0 is updated completely before player 1, and that order is part of the
game: player 0's attacks test player 1's hurtbox where it was placed one update
earlier, and a hit on player 1 takes effect in the same frame while a hit on
player 0 waits for its next update.

The rules are compiled with Numba: one loop over matches, each frame of each
match written as the original runs it (``rules.py``, ``attacks.py``,
``physics.py``, ``weapons.py``), on the struct-of-arrays state of ``state.py``.
There is no Python object per match. The first import compiles the kernels
(about a minute) and caches them next to the sources; later imports load them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from environment import params as P
from environment.attacks import run_move, start_move
from environment.jit import kernel
from environment.moves import MOVES
from environment.params import DEFAULT_PARAMS, DT, GameParams, kernel_params
from environment.physics import SCRATCH_COLUMNS, fat_box, forget_contacts, left_fat_box, solve_contacts
from environment.rules import (
    after_rules,
    base,
    control,
    end_attack,
    jump_memory,
    on_floor,
    read_keys,
    recovery_memory,
)
from environment.state import MatchState, allocate, draw_uniform, seed_streams
from environment.weapons import pickup_geometries, reset_spawners, step_weapons


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
# Scattered starts (training only)
# ==================================================================================
# Start points keep this far inside each ground's ends, so that nobody starts over the gap or the
# void; two players closer than SCATTER_MIN_GAP are not both drawn onto one spot.
SCATTER_EDGE_MARGIN = 0.5
SCATTER_MIN_GAP = 1.0


def check_scattered_starts(share) -> None:
    if isinstance(share, bool) or not isinstance(share, (int, float, np.integer, np.floating)):
        raise TypeError(f"scattered_starts must be a number, got {share!r}")
    if not 0.0 <= float(share) < 1.0:
        raise ValueError(f"scattered_starts must be in [0, 1) (a share of matches), got {share!r}")


def scattered_start_points(rng: np.ndarray, rows: np.ndarray, params: GameParams) -> np.ndarray:
    """Start x of (player 0, player 1) for each listed match: each uniform over both grounds (inset by
    SCATTER_EDGE_MARGIN), drawn from the match's own stream. A second player drawn within
    SCATTER_MIN_GAP of the first is mirrored onto the other ground."""
    (l0, l1), (r0, r1) = params.left_ground[:2], params.right_ground[:2]
    left = (l0 + SCATTER_EDGE_MARGIN, l1 - SCATTER_EDGE_MARGIN)
    right = (r0 + SCATTER_EDGE_MARGIN, r1 - SCATTER_EDGE_MARGIN)
    left_width, right_width = left[1] - left[0], right[1] - right[0]
    points = np.empty((rows.size, 2))
    for player in range(2):
        u = draw_uniform(rng, rows) * (left_width + right_width)
        points[:, player] = np.where(u < left_width, left[0] + u, right[0] + u - left_width)
    too_close = np.abs(points[:, 0] - points[:, 1]) < SCATTER_MIN_GAP
    points[too_close, 1] = -points[too_close, 1]  # the two grounds span mirrored x ranges
    return points


# ==================================================================================
# The moving platform
# ==================================================================================
class PlatformPath:
    """The platform's motion, which depends only on the frame number: computed once, frame by frame.

    Row f holds the velocity the platform takes during frame f, its position after
    that frame's physics step, and the last frame (up to f) at which the physics
    engine's broad phase re-inserted it (see ``physics.py``). Its rule (the
    original's): head for the current waypoint at speed sin(pi * progress) + 0.03
    along the segment; within 0.1 of it, stop for that frame and turn to the other
    waypoint.
    """

    def __init__(self, p: GameParams):
        self.p = p
        self.rows = np.zeros((0, 5))
        self._x, self._y = p.platform_start
        self._to_second = True
        hw, hh = p.platform_size[0] / 2, p.platform_size[1] / 2
        self._half = (hw, hh)
        self._fat = fat_box(self._x, self._y, 0.0, 0.0, hw, hh)  # as inserted at the match's start
        self._reinserted = -2.0  # before the players, who are created after it

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
            hw, hh = self._half
            for f in range(len(self.rows), len(self.rows) + max(frames - len(self.rows), 1024)):
                if self.p.platform_extra_update:
                    self._velocity()
                vx, vy = self._velocity()
                self._x += vx * DT
                self._y += vy * DT
                if left_fat_box(self._x, self._y, hw, hh, *self._fat):
                    self._fat = fat_box(self._x, self._y, vx, vy, hw, hh)
                    self._reinserted = float(f)
                extra.append((vx, vy, self._x, self._y, self._reinserted))
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
    :param params: the game's constants. ``DEFAULT_PARAMS`` is the original stepped frame by frame (how
        the golden traces were recorded); ``TOURNAMENT_PARAMS`` adds the extra platform update that the
        tournament's match loop makes every frame (the platform then turns at its waypoints without a
        stopped frame): the game agents are judged in, and what the environments,
        ``run_match``/``play_matches`` and evaluation use.
    :param scattered_starts: the share of matches (0 to below 1) that start with each player at a
        random point over the two grounds instead of the tournament's start points (training only: it
        shows the learner standing opponents at places and distances the fixed starts never make;
        0, the default, draws nothing extra, so the match streams are the original's)
    """

    def __init__(
        self,
        n: int,
        max_timesteps: int = P.MATCH_FRAMES,
        seed: int | None = 0,
        params: GameParams = DEFAULT_PARAMS,
        scattered_starts: float = 0.0,
    ):
        if not isinstance(n, (int, np.integer)) or n <= 0:
            raise ValueError(f"n (number of matches) must be a positive integer, got {n!r}")
        check_scattered_starts(scattered_starts)
        self.scattered_starts = float(scattered_starts)
        if not isinstance(max_timesteps, (int, np.integer)) or max_timesteps <= 0:
            raise ValueError(f"max_timesteps must be a positive integer, got {max_timesteps!r}")
        self.n = int(n)
        self.max_timesteps = int(max_timesteps)
        self.params = params
        self.state: MatchState = allocate(self.n, params.max_dropped)
        self.events = StepEvents.allocate(self.n)
        self._needs_reset = np.ones(self.n, bool)
        base_seed = 0 if seed is None else int(seed)
        self.state.rng[:] = seed_streams(base_seed + np.arange(self.n))
        self.platform = PlatformPath(params)
        self._path = self.platform.upto(self.max_timesteps + 1)
        self._constants = kernel_params(params)
        self._pickups = pickup_geometries(params)
        self._dealt = np.zeros((self.n, 2, 3))  # per player: [hit, damage dealt, combo] this frame
        self._held = np.zeros((self.n, 2), np.int64)  # keys held this frame, as bitmasks
        self._pressed = np.zeros((self.n, 2), np.int64)  # keys pressed this frame
        self._solver_scratch = np.zeros((3, SCRATCH_COLUMNS))  # the contact solver's working rows

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
        if p0_side is None:
            sides = np.where(draw_uniform(s.rng, rows) < 0.5, 1.0, -1.0)
        else:
            sides = np.full(rows.size, float(np.sign(p0_side)))
        starts = np.stack([sides * self.params.spawn_x, -sides * self.params.spawn_x], axis=1)
        if self.scattered_starts > 0.0:
            scatter = draw_uniform(s.rng, rows) < self.scattered_starts
            starts[scatter] = scattered_start_points(s.rng, rows[scatter], self.params)
        streams = s.rng[rows].copy()
        for array in (s.players, s.matches, s.weapons, s.spawners):
            array[rows] = np.zeros((), array.dtype)
        s.rng[rows] = streams
        _reset_matches(s.players, s.matches, s.weapons, s.spawners, s.contacts, rows, starts, self._constants[0])
        self._needs_reset[rows] = False

    def get_state(self) -> dict[str, np.ndarray]:
        """Copies of every state array (for exact resume)."""
        return {**{name: a.copy() for name, a in self.state.arrays().items()}, "needs_reset": self._needs_reset.copy()}

    def set_state(self, saved: dict[str, np.ndarray]) -> None:
        for name, current in self.state.arrays().items():
            value = saved.get(name)
            if value is None or value.dtype != current.dtype:
                raise ValueError(
                    f"saved engine state has no {name!r} array of this engine's layout (made by an older engine?)"
                )
            if value.shape != current.shape:
                raise ValueError(
                    f"saved engine array {name} has shape {value.shape}, expected {current.shape} (different n_envs?)"
                )
            current[...] = value
        self._needs_reset[:] = saved["needs_reset"]

    def step(self, keys: np.ndarray) -> StepEvents:
        """Advance every match one frame; returns this frame's events (reused buffers)."""
        held = validate_keys(keys, self.n)
        if self._needs_reset.any():
            bad = np.flatnonzero(self._needs_reset)[:5].tolist()
            raise RuntimeError(f"step() on matches that ended or were never reset (rows {bad}); call reset() first")
        ev = self.events
        ev.clear()
        s = self.state
        frame = int(s.frame.max())
        if frame + 1 >= len(self._path):
            self._path = self.platform.upto(frame + 2)
        _step_matches(
            s.players,
            s.matches,
            s.weapons,
            s.spawners,
            s.contacts,
            held,
            self._path,
            self.max_timesteps,
            self._constants[0],
            *MOVES.kernel_args(),
            *self._pickups,
            self._dealt,
            self._held,
            self._pressed,
            ev.knocked_out,
            ev.weapon_equip,
            ev.weapon_drop,
            ev.done,
            ev.truncated,
            ev.result,
            self._solver_scratch,
        )
        ev.hit[...] = self._dealt[..., 0] > 0
        ev.damage_dealt[...] = self._dealt[..., 1]
        ev.combo[...] = self._dealt[..., 2] > 0
        self._needs_reset |= ev.done
        return ev


# ==================================================================================
# The compiled frame
# ==================================================================================
# Compiled kernels take their arrays one by one (numba passes no structs), so the argument lists
# below repeat each other (the `duplicates` tool pairs them): each is the list its callee declares.
@kernel
def _step_matches(
    players,
    matches,
    weapons,
    spawners,
    contacts,
    held,
    path,
    max_timesteps,
    K,
    powers,
    casts,
    hitboxes,
    events,
    event_at,
    first_power,
    move_key,
    pickup_geom,
    dropped_geom,
    dealt,
    held_buffer,
    pressed_buffer,
    knocked_out,
    equip,
    dropped,
    done,
    truncated,
    result,
    solver_scratch,
) -> None:
    keys = held_buffer  # (n, 2) bitmasks of the held keys: bit k is key k
    for m in range(players.shape[0]):
        for i in range(2):
            mask = 0
            for k in range(held.shape[2]):
                if held[m, i, k]:
                    mask |= 1 << k
            keys[m, i] = mask
    held = keys
    for m in range(players.shape[0]):
        pl, match = players[m], matches[m]
        dealt[m] = 0.0
        out_of_stocks = pl[0].stocks <= 0 or pl[1].stocks <= 0  # the original ends the match the frame after
        pressed = pressed_buffer[m]
        for i in range(2):
            pl[i].damage_taken_frame = 0.0
            pressed[i] = read_keys(pl[i], held[m, i])
        f = match.frame
        match.platform_vx, match.platform_vy = path[f, 0], path[f, 1]
        for i in range(2):
            knocked_out[m, i] = _update_player(
                pl[i],
                pl[1 - i],
                match,
                held[m, i],
                pressed[i],
                K,
                powers,
                casts,
                hitboxes,
                events,
                event_at,
                first_power,
                move_key,
                dealt[m, i],
            )
        match.platform_x, match.platform_y = path[f, 2], path[f, 3]
        _physics(pl, match, weapons[m], contacts[m], path[f, 4], solver_scratch, K)
        match.frame = f + 1
        step_weapons(
            pl,
            match,
            weapons[m],
            spawners[m],
            contacts[m],
            held[m],
            pressed,
            equip[m],
            dropped[m],
            pickup_geom,
            dropped_geom,
            K,
        )
        for i in range(2):
            _refresh_view(pl[i], match, K)
        timed_out = match.frame >= max_timesteps
        if out_of_stocks or timed_out:
            st0, st1 = pl[0].stocks, pl[1].stocks
            res = P.RESULT_P0_WINS if st0 > st1 else (P.RESULT_P1_WINS if st1 > st0 else P.RESULT_DRAW)
            match.result = res
            match.done = True
            done[m] = True
            truncated[m] = timed_out and not out_of_stocks
            result[m] = res


@kernel
def _update_player(
    p, q, match, held, pressed, K, powers, casts, hitboxes, events, event_at, first_power, move_key, dealt
) -> bool:
    """One player's update (the original's Player.physics_process); returns whether it was knocked out."""
    px, py = match.platform_x, match.platform_y
    nxt, go = base(p, K)
    if go:
        floor = on_floor(p.x, p.y, px, py, K)
        if p.state == P.ATTACK:
            if run_move(p, q, held, px, py, K, powers, casts, hitboxes, events, event_at, move_key, dealt):
                nxt = end_attack(p, held, floor, K)
        else:
            nxt, move = control(p, held, pressed, floor, px, py, match.platform_vx, match.platform_vy, K)
            if move != 0:
                start_move(p, move, first_power, powers)
    return after_rules(p, held, nxt, K)


@kernel
def _physics(pl, match, weapons, contacts, platform_reinserted, scratch, K) -> None:
    """One pymunk step: the players, then the weapons' bodies (the platform has already moved)."""
    px, py, pvx, pvy = match.platform_x, match.platform_y, match.platform_vx, match.platform_vy
    for i in range(2):
        p = pl[i]
        p.x += (p.vx + p.bias_vx) * K.dt
        p.y += (p.vy + p.bias_vy) * K.dt
        p.bias_vx = p.bias_vy = 0.0
        if left_fat_box(p.x, p.y, K.half_w, K.half_h, p.fat_left, p.fat_top, p.fat_right, p.fat_bottom):
            p.fat_left, p.fat_top, p.fat_right, p.fat_bottom = fat_box(p.x, p.y, p.vx, p.vy, K.half_w, K.half_h)
            p.reinserted_at = match.frame
        ground_first = p.reinserted_at >= platform_reinserted
        if not p.gravity_off:
            p.vy = p.vy + K.gravity_step
        p.vx, p.vy, p.bias_vx, p.bias_vy = solve_contacts(
            p.x,
            p.y,
            p.vx,
            p.vy,
            p.bias_vx,
            p.bias_vy,
            K.half_w,
            K.half_h,
            K.friction_player_ground,
            K.friction_player_platform,
            px,
            py,
            pvx,
            pvy,
            contacts[i],
            ground_first,
            scratch,
            K,
        )
    for col in range(weapons.shape[0]):
        w = weapons[col]
        if w.weapon_kind == 0:
            continue
        w.weapon_seen_x, w.weapon_seen_y = w.weapon_x, w.weapon_y
        w.weapon_x += (w.weapon_vx + w.weapon_bias_vx) * K.dt
        w.weapon_y += (w.weapon_vy + w.weapon_bias_vy) * K.dt
        w.weapon_bias_vx = w.weapon_bias_vy = 0.0
        if left_fat_box(
            w.weapon_x,
            w.weapon_y,
            K.weapon_hw,
            K.weapon_hh,
            w.weapon_fat_left,
            w.weapon_fat_top,
            w.weapon_fat_right,
            w.weapon_fat_bottom,
        ):
            box = fat_box(w.weapon_x, w.weapon_y, w.weapon_vx, w.weapon_vy, K.weapon_hw, K.weapon_hh)
            w.weapon_fat_left, w.weapon_fat_top, w.weapon_fat_right, w.weapon_fat_bottom = box
            w.weapon_reinserted_at = match.frame
        ground_first = w.weapon_reinserted_at >= platform_reinserted
        w.weapon_vy = w.weapon_vy + K.gravity_step
        w.weapon_vx, w.weapon_vy, w.weapon_bias_vx, w.weapon_bias_vy = solve_contacts(
            w.weapon_x,
            w.weapon_y,
            w.weapon_vx,
            w.weapon_vy,
            w.weapon_bias_vx,
            w.weapon_bias_vy,
            K.weapon_hw,
            K.weapon_hh,
            K.friction_weapon_ground,
            K.friction_weapon_platform,
            px,
            py,
            pvx,
            pvy,
            contacts[2 + col],
            ground_first,
            scratch,
            K,
        )


@kernel
def _refresh_view(p, match, K) -> None:
    """The observation's view of a player: on the floor, and the current state's jump and recovery memory."""
    p.grounded = on_floor(p.x, p.y, match.platform_x, match.platform_y, K)
    has, jumps = jump_memory(p)
    p.jumps_left = jumps if has else 0
    p.recoveries_left = recovery_memory(p)


# ==================================================================================
# Reset
# ==================================================================================
@kernel
def _reset_matches(players, matches, weapons, spawners, contacts, rows, starts, K) -> None:
    """The original's reset: both players in the air at their start points (``starts[r]``: player 0's
    x, player 1's x), facing the centre, with no jumps and no recoveries until they land; 3 stocks;
    the platform halfway along its path."""
    for r in range(rows.size):
        m = rows[r]
        match = matches[m]
        match.platform_x, match.platform_y = K.platform_x0, K.platform_y0
        for i in range(2):
            p = players[m, i]
            start = starts[r, i]
            p.spawn_x = start
            p.x, p.y = start, K.spawn_y
            p.facing = 1.0 if start < 0 else -1.0
            p.state = P.IN_AIR
            p.stocks = int(K.stocks)
            p.fat_left, p.fat_top, p.fat_right, p.fat_bottom = fat_box(p.x, p.y, 0.0, 0.0, K.half_w, K.half_h)
            p.reinserted_at = -1  # created right after the platform
            _refresh_view(p, match, K)
        for b in range(contacts.shape[1]):
            forget_contacts(contacts[m, b])
        reset_spawners(match, weapons[m], spawners[m], K)
