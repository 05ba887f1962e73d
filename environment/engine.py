"""The batched Warehouse Brawl core: N matches advanced one frame at a time.

``BrawlEngine.step(keys[N, 2, 10])`` runs the frame as a fixed recipe of phase
functions, each ``(state, params, ...)`` updating the struct-of-arrays in place
(in place so that a step allocates little; each phase reads as a pure rule):

    inputs → timers → state machine → actions → movement → platform & collisions
    → hits (damage, knockback, stun, combos) → move phases → weapons
    → knockouts → match end

Masks replace branches: every rule runs on all matches at once and there is no
Python object per match. Both players are processed in one array along axis 1
and interactions are resolved from the pre-interaction state, so swapping the
players swaps the outcome exactly (the mirror-symmetry test relies on this).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from environment import params as P
from environment.params import DEFAULT_PARAMS, GameParams
from environment.state import MatchState, allocate, draw_uniform, seed_streams

try:  # np.count_nonzero's C core, without the Python dispatch layer in front of it
    from numpy._core.multiarray import count_nonzero as _count_nonzero
except ImportError:  # pragma: no cover - a NumPy that moved it
    _count_nonzero = np.count_nonzero


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


@dataclass
class Inputs:
    held: np.ndarray  # (n, 2, 10) bool
    pressed: np.ndarray  # (n, 2, 10) bool, held now and not last frame
    horizontal: np.ndarray  # (n, 2) float32 in {-1, 0, 1}: d minus a


# States in which a player takes new commands (attack, dodge, dash, jump, taunt).
_ACTIONABLE = np.zeros(13, bool)
_ACTIONABLE[[P.WALKING, P.STANDING, P.SPRINTING, P.IN_AIR, P.DASH]] = True
# States whose end is driven by state_timer.
_TIMED = np.zeros(13, bool)
_TIMED[[P.TURNAROUND, P.AIR_TURNAROUND, P.DODGE, P.DASH, P.BACKDASH, P.KO, P.TAUNT]] = True
# Ground-only states, which become InAir when the floor disappears.
_GROUND_ONLY = np.zeros(13, bool)
_GROUND_ONLY[[P.WALKING, P.STANDING, P.TURNAROUND, P.SPRINTING, P.DASH, P.BACKDASH, P.TAUNT]] = True
# Walking toward the facing side keeps a sprint or a dash going instead of walking.
_KEEPS_RUNNING = np.zeros(13, bool)
_KEEPS_RUNNING[[P.SPRINTING, P.DASH]] = True
_FIRST_AIR_MOVE = P.NAIR

# --- Cheap constants ----------------------------------------------------------------
# At N=1 a frame costs what NumPy's per-call overhead costs. NumPy 2 spends ~0.7 µs
# resolving a Python scalar operand on every ufunc call, so the per-frame rules use
# 0-d arrays of the operand's own dtype instead: a Python float meeting a float32
# array is rounded to float32 first anyway, so the results are the same bits.
_ZERO_I8 = np.array(0, np.int8)
_ZERO_I16, _ONE_I16 = np.array(0, np.int16), np.array(1, np.int16)
_ZERO_I32, _ONE_I32 = np.array(0, np.int32), np.array(1, np.int32)
_ZERO_F32 = np.array(0.0, np.float32)
_ZERO_F64 = np.array(0.0)


class _St:
    """Player states as 0-d int8 arrays (``MatchState.state``'s dtype), for comparisons."""

    TURNAROUND = np.array(P.TURNAROUND, np.int8)
    AIR_TURNAROUND = np.array(P.AIR_TURNAROUND, np.int8)
    STUN = np.array(P.STUN, np.int8)
    DODGE = np.array(P.DODGE, np.int8)
    ATTACK = np.array(P.ATTACK, np.int8)
    DASH = np.array(P.DASH, np.int8)
    KO = np.array(P.KO, np.int8)


# Attack direction from (w held, s held, a side key held): 0 neutral, 1 down, 2 side.
# Neutral if w is held or if neither side nor down is; else down if s; else side.
_NEUTRAL, _DOWN, _SIDE = 0, 1, 2
_ATTACK_DIRECTION = np.full((2, 2, 2), _SIDE, np.intp)  # [w, s, side]
_ATTACK_DIRECTION[1] = _NEUTRAL  # w held
_ATTACK_DIRECTION[0, 1] = _DOWN  # s held without w
_ATTACK_DIRECTION[0, 0, 0] = _NEUTRAL  # no direction key
_SIDE_DIRECTION = np.array(_SIDE, np.intp)
# The move started, by (airborne, heavy, direction). Air heavies are the Recovery
# (neutral or side) and the GroundPound (down).
_ATTACK_MOVE = np.array(
    [
        [[P.NLIGHT, P.DLIGHT, P.SLIGHT], [P.NSIG, P.DSIG, P.SSIG]],
        [[P.NAIR, P.DAIR, P.SAIR], [P.RECOVERY, P.GROUNDPOUND, P.RECOVERY]],
    ],
    np.intp,
)


@dataclass(frozen=True)
class _Tables:
    """Lookups derived from the params once: per-state movement rules, the stage, and the
    constants of the per-frame rules as 0-d arrays (see "Cheap constants" above)."""

    params: GameParams
    runs: np.ndarray  # (13,) states that set vx from a running speed
    run_speed: np.ndarray  # (13,) that speed, forward-signed
    ground_friction: np.ndarray  # (13,) fraction of vx kept per grounded frame
    frozen: np.ndarray  # (13,) no motion at all (KO)
    feels_gravity: np.ndarray  # (13,) not weightless: a dodge keeps its momentum but does not fall
    can_fast_fall: np.ndarray  # (13,)
    steers: np.ndarray  # (13,) air steering allowed
    ground_x_min: np.ndarray  # (2,) right ground, left ground
    ground_x_max: np.ndarray
    ground_catch_low: np.ndarray  # (2,) tops with the landing tolerances: a bottom this low has reached it...
    ground_catch_high: np.ndarray  # ...and one this high was above it before the move
    ground_rest_y: np.ndarray  # (2,) centre y of a player standing on each ground
    grounds: tuple  # ((x_min, x_max, top) of each ground, as 0-d float32), for dropped weapons
    platform_next: np.ndarray  # (period, 4) x, y, vx, vy one frame after frame k (mod period) since reset
    platform_frames: np.ndarray  # int32: the period
    phase_base: np.ndarray  # (weapons, 13) flat move-table index of phase 0, by weapon and move id
    charge_max: np.ndarray  # (weapons, 13) charge_max by weapon and move id
    # 0-d constants: float32 unless noted
    dt: np.ndarray
    half_w: np.ndarray
    half_h: np.ndarray
    platform_half_h: np.ndarray
    platform_catch_w: np.ndarray  # |x - platform x| below which a player is over the platform
    catch_low: np.ndarray  # landing tolerances (1e-4 below a top, 1e-3 above it)
    catch_high: np.ndarray
    gravity_step: np.ndarray  # float64: a player's vy is advanced in float64, then rounded
    slot_gravity_step: np.ndarray  # a dropped weapon's, in float32
    fast_fall_accel: np.ndarray  # float64
    max_fall_speed: np.ndarray
    walk_speed: np.ndarray
    air_steer_accel: np.ndarray
    still_speed: np.ndarray
    bounce: np.ndarray  # -stun_bounce
    bounce_speed: np.ndarray  # a stunned player landing faster than this bounces
    blast_x: np.ndarray
    blast_y: np.ndarray


_TABLE_CACHE: dict[int, _Tables] = {}


def _tables(p: GameParams) -> _Tables:
    cached = _TABLE_CACHE.get(id(p))
    if cached is None or cached.params is not p:
        cached = _TABLE_CACHE[id(p)] = _build_tables(p)
    return cached


def _build_tables(p: GameParams) -> _Tables:
    def states(*members, dtype=bool, value=True, default=0):
        arr = np.full(13, default, dtype)
        arr[list(members)] = value
        return arr

    def f32(value):
        return np.array(value, np.float32)

    run_speed = np.zeros(13, np.float32)
    run_speed[[P.WALKING, P.SPRINTING, P.DASH, P.BACKDASH]] = (
        p.walk_speed, p.sprint_speed, p.dash_speed, -p.backdash_speed,
    )  # fmt: skip
    friction = states(P.STANDING, P.TAUNT, P.TURNAROUND, P.STUN, P.DODGE, dtype=np.float32, value=p.ground_friction,
                      default=1)  # fmt: skip
    friction[P.ATTACK] = p.attack_friction  # attacks carry some momentum
    grounds = np.array([p.right_ground, p.left_ground], np.float32)
    ground_top = grounds[:, 2]
    plat_w, plat_h = p.platform_size
    path = platform_period(p)
    # Indexed by the raw move id; ids below the first move (0: none) read move 0's row, as the engine always has.
    move_index = np.maximum(np.arange(13) - P.FIRST_MOVE_ID, 0)
    weapons = np.arange(p.moves.charge_max.shape[0])[:, None]
    phase_base = ((weapons * P.N_MOVES + move_index) * P.MAX_PHASES).astype(np.intp)
    return _Tables(
        params=p,
        runs=states(P.WALKING, P.SPRINTING, P.DASH, P.BACKDASH),
        run_speed=run_speed,
        ground_friction=friction,
        frozen=states(P.KO),
        feels_gravity=~states(P.DODGE, P.KO),
        can_fast_fall=~states(P.STUN, P.ATTACK, P.DODGE, P.KO),
        steers=states(P.IN_AIR, P.AIR_TURNAROUND, P.ATTACK),
        ground_x_min=grounds[:, 0],
        ground_x_max=grounds[:, 1],
        ground_catch_low=ground_top - 1e-4,
        ground_catch_high=ground_top + 1e-3,
        ground_rest_y=ground_top - p.body_h / 2,
        grounds=tuple(tuple(f32(v) for v in ground) for ground in (p.right_ground, p.left_ground)),
        platform_next=np.roll(path, -1, axis=0),
        platform_frames=np.array(len(path), np.int32),
        phase_base=phase_base,
        charge_max=p.moves.charge_max[:, move_index],
        dt=f32(P.DT),
        half_w=f32(p.body_w / 2),
        half_h=f32(p.body_h / 2),
        platform_half_h=f32(plat_h / 2),
        platform_catch_w=f32((plat_w + p.body_w) / 2),
        catch_low=f32(1e-4),
        catch_high=f32(1e-3),
        gravity_step=np.array(p.gravity * P.DT),
        slot_gravity_step=f32(p.gravity * P.DT),
        fast_fall_accel=np.array(p.fast_fall_accel),
        max_fall_speed=f32(p.max_fall_speed),
        walk_speed=f32(p.walk_speed),
        air_steer_accel=f32(p.air_steer_accel),
        still_speed=f32(p.still_speed),
        bounce=f32(-p.stun_bounce),
        bounce_speed=f32(3.0),
        blast_x=f32(p.blast_x),
        blast_y=f32(p.blast_y),
    )


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


class BrawlEngine:
    """N Warehouse Brawl matches as arrays.

    :param n: number of matches
    :param max_timesteps: frames after which a match ends on stocks (draw if equal)
    :param seed: base seed; match i is seeded with ``seed + i``
    """

    def __init__(self, n: int, max_timesteps: int = 2700, seed: int | None = 0, params: GameParams = DEFAULT_PARAMS):
        if not isinstance(n, (int, np.integer)) or n <= 0:
            raise ValueError(f"n (number of matches) must be a positive integer, got {n!r}")
        if not isinstance(max_timesteps, (int, np.integer)) or max_timesteps <= 0:
            raise ValueError(f"max_timesteps must be a positive integer, got {max_timesteps!r}")
        self.n = int(n)
        self.max_timesteps = int(max_timesteps)
        self.params = params
        self.state: MatchState = allocate(self.n)
        self.events = StepEvents.allocate(self.n)
        self._needs_reset = np.ones(self.n, bool)
        base = 0 if seed is None else int(seed)
        self.state.rng[:] = seed_streams(base + np.arange(self.n))

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
        self._needs_reset[rows] = False

    def get_state(self) -> dict[str, np.ndarray]:
        """Copies of every state array (for exact resume)."""
        return {**{f.name: getattr(self.state, f.name).copy() for f in fields(self.state)},
                "needs_reset": self._needs_reset.copy()}  # fmt: skip

    def set_state(self, saved: dict[str, np.ndarray]) -> None:
        for f in fields(self.state):
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
        step_matches(self.state, self.params, held, ev, self.max_timesteps)
        self._needs_reset |= ev.done
        return ev


# ==================================================================================
# Reset
# ==================================================================================
def reset_matches(s: MatchState, p: GameParams, rows: np.ndarray, p0_side: int | None = None) -> None:
    if p0_side is None:
        side = np.where(draw_uniform(s.rng, rows) < 0.5, 1.0, -1.0).astype(np.float32)
    else:
        side = np.full(rows.size, float(np.sign(p0_side)), np.float32)
    spawn = np.stack([side * p.spawn_x, -side * p.spawn_x], axis=1)
    s.spawn_x[rows] = spawn
    for name in ("vx", "vy", "state_timer", "jump_cooldown", "dodge_cooldown", "stun_frames", "damage",
                 "move", "move_phase", "phase_timer", "charge", "weapon"):  # fmt: skip
        getattr(s, name)[rows] = 0
    for name in ("grounded", "on_platform", "dodge_in_air", "phase_hit", "prev_keys"):
        getattr(s, name)[rows] = False
    s.x[rows] = spawn
    s.y[rows] = p.spawn_y
    s.facing[rows] = -np.sign(spawn)  # face the centre
    s.state[rows] = P.IN_AIR
    s.jumps_left[rows] = p.air_jumps
    s.recoveries_left[rows] = p.recoveries_per_airtime
    s.stocks[rows] = p.stocks
    s.frame[rows] = 0
    s.done[rows] = False
    s.result[rows] = P.RESULT_NONE
    s.platform_x[rows], s.platform_y[rows] = p.platform_a
    s.platform_vx[rows] = 0.0
    s.platform_vy[rows] = 0.0
    for name in ("slot_x", "slot_y", "slot_vy", "slot_kind", "slot_timer", "slot_lock"):
        getattr(s, name)[rows] = 0
    lo, hi = p.spawn_interval
    for spawner in range(2):
        s.spawn_timer[rows, spawner] = (lo + draw_uniform(s.rng, rows) * (hi - lo)).astype(np.int32)


# ==================================================================================
# Step
# ==================================================================================
# Every rule runs on all N matches, and at N=1 its cost is NumPy's per-call overhead.
# So a rule that concerns few players first checks that someone is concerned
# (`any_nonzero`: cheap at N=1, free at large N), constants are typed 0-d arrays (see
# "Cheap constants"), and state tables are read with `take` (several times cheaper
# than fancy indexing on tiny arrays).
def step_matches(s: MatchState, p: GameParams, held: np.ndarray, ev: StepEvents, max_timesteps: int) -> None:
    inp = decode_inputs(s, held)
    tick_timers(s)
    end_timed_states(s, p, inp)
    start_actions(s, p, inp)
    apply_movement(s, p, inp)
    move_platform_and_collide(s, p)
    resolve_hits(s, p, ev)
    advance_moves(s, p, inp)
    update_weapons(s, p, inp, ev)
    resolve_knockouts(s, p, ev)
    check_match_end(s, p, ev, max_timesteps)


def any_nonzero(arr: np.ndarray) -> bool:
    """``arr.any()``, ~10x cheaper on tiny arrays and ~4x at N=4096 (no Python-level wrappers)."""
    return _count_nonzero(arr) > 0


def _either(pair: np.ndarray) -> np.ndarray:
    """(n,) from (n, 2): either entry true. Many times faster than any(axis=1) on a size-2 axis."""
    return pair[:, 0] | pair[:, 1]


def _as_index(mask: np.ndarray) -> np.ndarray:
    """A bool array as 0/1 integers, to index a table with (a bool index would select instead)."""
    return mask.view(np.uint8)


def decode_inputs(s: MatchState, held: np.ndarray) -> Inputs:
    pressed = held & ~s.prev_keys
    s.prev_keys[...] = held
    horizontal = np.subtract(held[..., P.K_D], held[..., P.K_A], dtype=np.float32)
    return Inputs(held, pressed, horizontal)


def _count_down(arr: np.ndarray) -> None:
    """Decrement the positive entries of an int16 timer (most timers are 0 most of the time)."""
    if any_nonzero(arr):
        arr -= arr > _ZERO_I16  # subtracting a mask beats a masked subtract (where=) at large N


def tick_timers(s: MatchState) -> None:
    _count_down(s.jump_cooldown)
    _count_down(s.dodge_cooldown)
    _count_down(s.stun_frames)
    _count_down(s.state_timer)


def _settle(s: MatchState, mask: np.ndarray) -> None:
    """Return players to their idle state for where they are (ground or air)."""
    if any_nonzero(mask):
        s.state[mask] = np.where(s.grounded[mask], P.STANDING, P.IN_AIR)


def end_timed_states(s: MatchState, p: GameParams, inp: Inputs) -> None:
    st = s.state
    ended = _TIMED.take(st) & (s.state_timer <= _ZERO_I16)
    if any_nonzero(ended):
        _end_timed(s, p, inp, ended)
    _settle(s, (st == _St.STUN) & (s.stun_frames <= _ZERO_I16))


def _end_timed(s: MatchState, p: GameParams, inp: Inputs, ended: np.ndarray) -> None:
    st = s.state
    turned = ended & ((st == _St.TURNAROUND) | (st == _St.AIR_TURNAROUND))
    s.facing[turned] *= -1
    dodged = ended & (st == _St.DODGE)
    if any_nonzero(dodged):
        s.dodge_cooldown[dodged] = np.where(s.dodge_in_air[dodged], p.dodge_cooldown_air, p.dodge_cooldown_ground)
    respawned = ended & (st == _St.KO)
    sprint = ended & (st == _St.DASH) & (inp.horizontal == s.facing) & s.grounded
    _settle(s, ended)
    st[turned & s.grounded] = P.WALKING
    st[sprint] = P.SPRINTING
    if any_nonzero(respawned):
        _respawn(s, p, respawned)


def _respawn(s: MatchState, p: GameParams, mask: np.ndarray) -> None:
    s.x[mask] = s.spawn_x[mask]
    s.y[mask] = p.spawn_y
    s.vx[mask] = 0.0
    s.vy[mask] = 0.0
    s.facing[mask] = -np.sign(s.spawn_x[mask])
    s.grounded[mask] = False
    s.on_platform[mask] = False
    s.state[mask] = P.IN_AIR
    s.jumps_left[mask] = p.air_jumps
    s.recoveries_left[mask] = p.recoveries_per_airtime


def start_actions(s: MatchState, p: GameParams, inp: Inputs) -> None:
    """New commands from actionable players, by priority: attack, l, jump, taunt, walk.

    Each starter takes the players it served out of ``free``, so a lower priority never overrides it.
    """
    free = _ACTIONABLE.take(s.state)
    if any_nonzero(s.done):
        free[s.done] = False
    if not any_nonzero(free):
        return
    held, pressed, horiz = inp.held, inp.pressed, inp.horizontal
    _start_attacks(s, p, free, held, horiz)
    _start_dodge_or_dash(s, p, free, pressed[..., P.K_DODGE], horiz)
    _start_jump(s, p, free, pressed[..., P.K_JUMP], horiz)
    taunt = free & pressed[..., P.K_TAUNT] & s.grounded
    if any_nonzero(taunt):
        s.state[taunt] = P.TAUNT
        s.state_timer[taunt] = p.taunt_frames
        free[taunt] = False
    _choose_locomotion(s, p, free, horiz)


def _start_attacks(s: MatchState, p: GameParams, free, held, horiz) -> None:
    heavy = held[..., P.K_HEAVY]
    want = free & (heavy | held[..., P.K_LIGHT])
    if not any_nonzero(want):
        return
    free[want] = False  # asking is enough: an air heavy refused below does not fall through to other commands
    # From here on, only the matches where someone asked for an attack.
    rows = np.flatnonzero(_either(want))
    heavy, h, air = heavy[rows], horiz[rows], ~s.grounded[rows]
    up, down, side = held[rows, :, P.K_W], held[rows, :, P.K_S], h != _ZERO_F32
    direction = _ATTACK_DIRECTION[_as_index(up), _as_index(down), _as_index(side)]
    move = _ATTACK_MOVE[_as_index(air), _as_index(heavy), direction]
    # One recovery per airtime: without one left, the air heavy does nothing.
    recovery = move == P.RECOVERY
    start = want[rows] & ~(recovery & (s.recoveries_left[rows] <= _ZERO_I8))
    if not any_nonzero(start):
        return
    turn = start & (direction == _SIDE_DIRECTION)
    if any_nonzero(turn):
        s.facing[rows] = np.where(turn, h, s.facing[rows])
    spent = start & recovery
    if any_nonzero(spent):
        s.recoveries_left[rows] -= spent
    started = np.zeros(want.shape, bool)
    started[rows] = start
    s.move[started] = move[start]
    s.move_phase[started] = 0
    s.charge[started] = 0
    s.phase_hit[started] = False
    s.state[started] = P.ATTACK
    t = _tables(p)
    s.phase_timer[started] = p.moves.frames.reshape(-1).take(t.phase_base[s.weapon[started], s.move[started]])


def _start_dodge_or_dash(s: MatchState, p: GameParams, free, pressed_l, horiz) -> None:
    want = free & pressed_l
    if not any_nonzero(want):
        return
    t = _tables(p)
    ground = s.grounded
    still = (horiz == _ZERO_F32) & (np.abs(s.vx) < t.still_speed)
    dodge = want & (s.dodge_cooldown == _ZERO_I16) & (~ground | still)
    dash = want & ground & (horiz == s.facing)
    backdash = want & ground & (horiz == -s.facing)
    s.state[dodge] = P.DODGE
    s.state_timer[dodge] = p.dodge_frames
    s.dodge_in_air[dodge] = ~ground[dodge]
    s.state[dash] = P.DASH
    s.state_timer[dash] = p.dash_frames
    s.state[backdash] = P.BACKDASH
    s.state_timer[backdash] = p.backdash_frames
    free &= ~(dodge | dash | backdash)


def _start_jump(s: MatchState, p: GameParams, free, pressed_jump, horiz) -> None:
    jump = free & pressed_jump
    if not any_nonzero(jump):
        return
    jump &= (s.jumps_left > _ZERO_I8) & (s.jump_cooldown == _ZERO_I16)
    if not any_nonzero(jump):
        return
    s.vy[jump] = -p.jump_velocity
    s.jumps_left[jump] -= 1
    s.jump_cooldown[jump] = p.jump_cooldown
    s.grounded[jump] = False
    s.on_platform[jump] = False
    s.state[jump] = np.where(horiz[jump] == -s.facing[jump], P.AIR_TURNAROUND, P.IN_AIR)
    s.state_timer[jump] = p.turnaround_frames
    free[jump] = False


def _choose_locomotion(s: MatchState, p: GameParams, free, horiz) -> None:
    """Walk, turn, stand or keep sprinting/dashing, for players that started nothing."""
    if not any_nonzero(free):
        return
    st = s.state
    away = (horiz == -s.facing) & (horiz != _ZERO_F32)
    ground = free & s.grounded
    if any_nonzero(ground):
        toward = horiz == s.facing
        st[ground & toward & ~_KEEPS_RUNNING.take(st)] = P.WALKING
        st[ground & (horiz == _ZERO_F32) & (st != _St.DASH)] = P.STANDING
        turn = ground & away
        st[turn] = P.TURNAROUND
        s.state_timer[turn] = p.turnaround_frames
    air = free & ~s.grounded
    if any_nonzero(air):
        air_turn = air & away
        st[air_turn] = P.AIR_TURNAROUND
        s.state_timer[air_turn] = p.turnaround_frames
        st[air & ~away] = P.IN_AIR


def apply_movement(s: MatchState, p: GameParams, inp: Inputs) -> None:
    t = _tables(p)
    st, vx, vy = s.state, s.vx, s.vy
    ground = s.grounded
    airborne = ~ground
    runs = t.runs.take(st)
    if any_nonzero(runs):
        np.copyto(vx, t.run_speed.take(st) * s.facing, where=runs)
    np.multiply(vx, t.ground_friction.take(st), out=vx, where=ground)
    # Gravity, fast-fall and the fall-speed cap (knockback may exceed the cap).
    # vy is advanced in float64 (then rounded to float32), every player, falling or not.
    falling = airborne & t.feels_gravity.take(st)
    fall_step = np.where(falling, t.gravity_step, _ZERO_F64)
    fast_fall = falling & inp.held[..., P.K_S]
    if any_nonzero(fast_fall):
        fast_fall &= t.can_fast_fall.take(st)
        fall_step += np.where(fast_fall, t.fast_fall_accel, _ZERO_F64)
    vy += fall_step
    capped = falling & (st != _St.STUN)
    if any_nonzero(capped):
        np.copyto(vy, np.minimum(vy, t.max_fall_speed), where=capped)
    _steer_in_air(s, t, airborne, inp.horizontal)
    frozen = t.frozen.take(st)
    if any_nonzero(frozen):
        np.copyto(vx, 0.0, where=frozen)
        np.copyto(vy, 0.0, where=frozen)
    attacking = st == _St.ATTACK
    if any_nonzero(attacking):
        flat = _flat_phase_index(s, p)
        drive = attacking & p.moves.drives_velocity.reshape(-1).take(flat)
        if any_nonzero(drive):
            vel = p.moves.velocity.reshape(-1, 2)[flat]
            np.copyto(vx, vel[..., 0] * s.facing, where=drive)
            np.copyto(vy, vel[..., 1], where=drive)  # an upward drive lifts off: collisions won't land it


def _steer_in_air(s: MatchState, t: _Tables, airborne: np.ndarray, h: np.ndarray) -> None:
    """Air steering never pushes past walking speed, but does not brake knockback."""
    steer = airborne & (h != _ZERO_F32)
    if not any_nonzero(steer):
        return
    steer &= t.steers.take(s.state)
    vx = s.vx
    limit = np.maximum(t.walk_speed, vx * h)  # current speed along h, if faster
    # minimum(maximum(...)) is np.clip's own arithmetic (they could differ only on NaN or
    # signed-zero bounds; these are at least walking speed) without its slow Python wrapper.
    steered = np.minimum(np.maximum(vx + t.air_steer_accel * h, -limit), limit)
    np.copyto(vx, steered, where=steer)


def _flat_phase_index(s: MatchState, p: GameParams) -> np.ndarray:
    """Index into the flattened move table for each player's current phase."""
    return _tables(p).phase_base[s.weapon, s.move] + s.move_phase


def move_platform_and_collide(s: MatchState, p: GameParams) -> None:
    t = _tables(p)
    # Bottoms before anything moves: a surface catches players that were above it.
    prev_bottom = s.y + t.half_h
    old_top = s.platform_y - t.platform_half_h
    _move_platform(s, t)
    prev_x = s.x.copy()
    s.x += s.vx * t.dt
    s.y += s.vy * t.dt
    was_grounded = s.grounded.copy()
    bottom = s.y + t.half_h
    descending = s.vy >= _ZERO_F32
    # Grounds, both at once on a trailing axis: (n, 2 players, 2 grounds).
    x3, bottom3 = s.x[..., None], bottom[..., None]
    over_ground = (x3 + t.half_w > t.ground_x_min) & (x3 - t.half_w < t.ground_x_max)
    on_ground = (
        over_ground
        & (bottom3 >= t.ground_catch_low)
        & (prev_bottom[..., None] <= t.ground_catch_high)
        & descending[..., None]
    )
    # The platform is one-way: it catches players falling onto its top. Usually nobody is over it.
    on_platform = np.abs(s.x - s.platform_x[:, None]) < t.platform_catch_w
    if any_nonzero(on_platform):
        new_top = (s.platform_y - t.platform_half_h)[:, None]
        on_platform &= (bottom >= new_top - t.catch_low) & (prev_bottom <= old_top[:, None] + t.catch_high) & descending
    landed_ground = on_ground[..., 0] | on_ground[..., 1]
    landing = landed_ground | on_platform
    wall = over_ground & (bottom3 > t.ground_catch_high)
    if any_nonzero(wall):
        wall &= ~landing[..., None]
        if any_nonzero(wall):
            _push_out_of_walls(s, t, wall, prev_x)
    _land(s, t, landing, landed_ground, on_ground, on_platform)
    _landing_and_takeoff(s, p, was_grounded)


def _push_out_of_walls(s: MatchState, t: _Tables, wall: np.ndarray, prev_x: np.ndarray) -> None:
    """Side walls of the grounds: pushed back out the way the player came."""
    for k in range(2):
        hit = wall[..., k]
        mid = (t.ground_x_min[k] + t.ground_x_max[k]) / 2
        outside = np.where(prev_x < mid, t.ground_x_min[k] - t.half_w, t.ground_x_max[k] + t.half_w)
        np.copyto(s.x, outside, where=hit)
        np.copyto(s.vx, 0.0, where=hit)


def _move_platform(s: MatchState, t: _Tables) -> None:
    """Advance the shuttle, carrying the players who stand on it.

    The platform's path depends only on the frame number (every match starts it
    at end A), so it is read from one precomputed period of the motion.
    """
    now = t.platform_next[s.frame % t.platform_frames]
    ride = s.grounded & s.on_platform
    if any_nonzero(ride):
        s.x += np.where(ride, (now[:, 0] - s.platform_x)[:, None], 0.0)
        s.y += np.where(ride, (now[:, 1] - s.platform_y)[:, None], 0.0)
    s.platform_x[...] = now[:, 0]
    s.platform_y[...] = now[:, 1]
    s.platform_vx[...] = now[:, 2]
    s.platform_vy[...] = now[:, 3]


def platform_period(p: GameParams) -> np.ndarray:
    """One full round trip of the platform, frame by frame: rows of (x, y, vx, vy).

    Row k is the platform k frames after a reset. Speed profile sin(pi*progress)
    + floor units/s along the segment A→B; it clips at each end and reverses, so
    after reaching A again it is back in its reset state and the path repeats.
    """
    (ax, ay), (bx, by) = p.platform_a, p.platform_b
    length = float(np.hypot(bx - ax, by - ay))
    ux, uy = (bx - ax) / length, (by - ay) / length
    rows = [(ax, ay, 0.0, 0.0)]
    progress, direction = 0.0, 1.0
    while True:
        speed = np.sin(np.pi * progress) + p.platform_speed_floor
        progress += direction * speed * P.DT / length
        if progress >= 1.0 or progress <= 0.0:
            direction = -direction
        progress = min(max(progress, 0.0), 1.0)
        back_home = progress == 0.0 and direction > 0
        if back_home:
            return np.array(rows, np.float32)
        rows.append((ax + (bx - ax) * progress, ay + (by - ay) * progress,
                     ux * speed * direction, uy * speed * direction))  # fmt: skip


def _land(s: MatchState, t: _Tables, landing, landed_ground, on_ground, on_platform) -> None:
    """Put players on the surface below (a ground before the platform); stunned players
    falling fast bounce instead."""
    if not any_nonzero(landing):
        s.grounded[...] = False
        s.on_platform[...] = False
        return
    stay = landing
    bounce = landing & (s.state == _St.STUN)
    if any_nonzero(bounce):
        bounce &= s.vy > t.bounce_speed
        stay = landing & ~bounce
        np.multiply(s.vy, t.bounce, out=s.vy, where=bounce)
    platform_only = on_platform
    if any_nonzero(on_platform):
        platform_only = on_platform & ~landed_ground
        top = (s.platform_y - t.platform_half_h)[:, None]
        np.copyto(s.y, top - t.half_h, where=platform_only)
    # The first ground if on it, else the second.
    ground_y = t.ground_rest_y.take(_as_index(~on_ground[..., 0]))
    np.copyto(s.y, ground_y, where=landed_ground)
    s.vy[stay] = 0.0
    s.grounded[...] = stay
    s.on_platform[...] = stay & platform_only


def _landing_and_takeoff(s: MatchState, p: GameParams, was_grounded: np.ndarray) -> None:
    st = s.state
    s.jumps_left[s.grounded] = p.ground_jumps + p.air_jumps
    changed = s.grounded ^ was_grounded
    if not any_nonzero(changed):
        return
    landed = changed & s.grounded
    if any_nonzero(landed):
        s.recoveries_left[landed] = p.recoveries_per_airtime
        # Air moves end on landing.
        air_move_ended = landed & (st == _St.ATTACK) & (s.move >= _FIRST_AIR_MOVE)
        s.move[air_move_ended] = 0
        airborne_idle = landed & ((st == P.IN_AIR) | (st == P.AIR_TURNAROUND) | air_move_ended)
        st[airborne_idle] = P.STANDING
    took_off = changed & was_grounded
    if any_nonzero(took_off):
        # Walking off a ledge spends the ground jump.
        np.minimum(s.jumps_left, p.air_jumps, out=s.jumps_left, where=took_off)
        st[took_off & _GROUND_ONLY.take(st)] = P.IN_AIR


def resolve_hits(s: MatchState, p: GameParams, ev: StepEvents) -> None:
    """Active hitboxes against the other player's hurtbox; damage, knockback, stun, combos.

    Past the active-frame test it works on the matches with a hitbox out only (a small share).
    """
    attacking = (s.state == _St.ATTACK) & ~s.phase_hit
    if not any_nonzero(attacking):
        return
    t = p.moves
    flat = _flat_phase_index(s, p)
    active = attacking & t.active.reshape(-1).take(flat)
    if not any_nonzero(active):
        return
    rows = np.flatnonzero(_either(active))
    active, flat = active[rows], flat[rows]
    weapon, move = s.weapon[rows], s.move[rows]
    x, y, facing, state = s.x[rows], s.y[rows], s.facing[rows], s.state[rows]
    box = t.hitbox.reshape(-1, 4)[flat]  # (k, 2, 4)
    hx = x + facing * box[..., 0]
    hy = y + box[..., 1]
    tx, ty = x[:, ::-1], y[:, ::-1]
    vulnerable = (state != _St.DODGE) & (state != _St.KO)
    hit = (
        active
        & vulnerable[:, ::-1]
        & (np.abs(hx - tx) < (box[..., 2] + p.hurt_w) / 2)
        & (np.abs(hy - ty) < (box[..., 3] + p.hurt_h) / 2)
    )
    if any_nonzero(hit):
        _apply_hits(s, p, rows, hit, flat, weapon, move, ev)


def _apply_hits(s: MatchState, p: GameParams, rows, hit, flat, weapon, move, ev: StepEvents) -> None:
    """Everything here reads the pre-hit state of both players, so a trade (both hitting on
    the same frame) resolves symmetrically."""
    t = p.moves
    move_index = np.maximum(move - P.FIRST_MOVE_ID, 0)
    charge_min = t.charge_min[weapon, move_index]
    charge_max = t.charge_max[weapon, move_index]
    span = np.maximum(charge_max - charge_min, 1)
    charge_mult = 1.0 + 0.5 * np.clip((s.charge[rows] - charge_min) / span, 0.0, 1.0) * (charge_max > 0)
    dmg = t.damage.reshape(-1)[flat] * charge_mult
    target_damage = s.damage[rows][:, ::-1]
    new_damage = np.minimum(target_damage + dmg, p.max_damage)
    X = new_damage
    force = t.kb_fixed.reshape(-1)[flat] + t.kb_var.reshape(-1)[flat] * (X / 70.0 + X * X / 12000.0)
    direction = t.direction.reshape(-1, 2)[flat]
    kb_vx = direction[..., 0] * s.facing[rows] * force * p.knockback_scale
    kb_vy = direction[..., 1] * force * p.knockback_scale
    stun = t.stun.reshape(-1)[flat]
    was_stunned = s.state[rows][:, ::-1] == P.STUN
    ev.hit[rows] |= hit
    ev.damage_dealt[rows] += np.where(hit, new_damage - target_damage, 0.0)
    ev.combo[rows] |= hit & was_stunned
    s.phase_hit[rows] |= hit
    r, victim = np.nonzero(hit[:, ::-1])  # the player on the receiving end of each hit
    attacker = 1 - victim
    m = rows[r]
    s.damage[m, victim] = new_damage[r, attacker]
    s.vx[m, victim] = kb_vx[r, attacker]
    s.vy[m, victim] = kb_vy[r, attacker]
    s.stun_frames[m, victim] = stun[r, attacker]
    s.state[m, victim] = P.STUN
    s.move[m, victim] = 0
    s.grounded[m, victim] = False
    s.on_platform[m, victim] = False


def advance_moves(s: MatchState, p: GameParams, inp: Inputs) -> None:
    attacking = s.state == _St.ATTACK
    if not any_nonzero(attacking):
        return
    t = _tables(p)
    moves = p.moves
    charge_max = t.charge_max[s.weapon, s.move]
    charging = attacking & (charge_max > _ZERO_I16) & (s.move_phase == _ZERO_I8)
    extend = charging  # all false unless someone charges
    if any_nonzero(charging):
        s.charge[charging] += 1
        # A signature move keeps charging while k is held, up to its maximum.
        extend = charging & inp.held[..., P.K_HEAVY] & (s.charge < charge_max) & (s.phase_timer <= _ONE_I16)
    _count_down(s.phase_timer)
    s.phase_timer[extend] = 1
    ended = attacking & (s.phase_timer <= _ZERO_I16)
    if not any_nonzero(ended):
        return
    base = t.phase_base[s.weapon, s.move]
    flat = base + s.move_phase
    nxt = np.where(s.phase_hit, moves.next_hit.reshape(-1).take(flat), moves.next_miss.reshape(-1).take(flat))
    finished = ended & (nxt < 0)
    s.move[finished] = 0
    _settle(s, finished)
    cont = ended & (nxt >= 0)
    s.move_phase[cont] = nxt[cont]
    s.phase_hit[cont] = False
    s.phase_timer[cont] = moves.frames.reshape(-1).take(base[cont] + nxt[cont])


def update_weapons(s: MatchState, p: GameParams, inp: Inputs, ev: StepEvents) -> None:
    _tick_spawners(s, p)
    _tick_dropped(s, p)
    press_h = inp.pressed[..., P.K_PICKUP]
    if not any_nonzero(press_h):
        return
    press_h = press_h & (s.state != _St.ATTACK) & (s.state != _St.KO) & ~s.done[:, None]
    if not any_nonzero(press_h):
        return
    _drop_weapons(s, p, press_h & (s.weapon > 0), ev)
    _pick_up_weapons(s, p, press_h & (s.weapon == 0) & ~ev.weapon_drop, ev)


def _tick_spawners(s: MatchState, p: GameParams) -> None:
    spawned = s.slot_kind[:, :2] > _ZERO_I8
    timers = s.slot_timer[:, :2]
    timers -= spawned  # a lying weapon's timer is >= 1, so this never goes below 0
    waiting = ~spawned
    s.spawn_timer -= waiting
    expired = spawned & (timers <= _ZERO_I16)
    if any_nonzero(expired):
        s.slot_kind[:, :2][expired] = 0
        _reroll_spawn_timers(s, p, expired)
    due = waiting & (s.spawn_timer <= _ZERO_I32)
    if not any_nonzero(due):
        return
    for spawner, (x_min, x_max, y) in enumerate((p.right_spawner, p.left_spawner)):
        rows = np.flatnonzero(due[:, spawner])
        if rows.size == 0:
            continue
        kind = np.where(draw_uniform(s.rng, rows) < 0.5, P.SPEAR, P.HAMMER)
        s.slot_kind[rows, spawner] = kind
        s.slot_x[rows, spawner] = x_min + draw_uniform(s.rng, rows) * (x_max - x_min)
        s.slot_y[rows, spawner] = y
        s.slot_timer[rows, spawner] = p.spawned_lifetime
        s.slot_lock[rows, spawner] = 0


def _reroll_spawn_timers(s: MatchState, p: GameParams, emptied: np.ndarray) -> None:
    """After a spawner's weapon despawns or is taken, draw its next interval."""
    lo, hi = p.spawn_interval
    r_lo, r_hi = p.respawn_reroll
    for spawner in range(2):
        rows = np.flatnonzero(emptied[:, spawner])
        if rows.size:
            base = lo + draw_uniform(s.rng, rows) * (hi - lo)
            scale = r_lo + draw_uniform(s.rng, rows) * (r_hi - r_lo)
            s.spawn_timer[rows, spawner] = (base * scale).astype(np.int32)


def _tick_dropped(s: MatchState, p: GameParams) -> None:
    """Dropped weapons age, fall until they rest on a ground, and vanish (timeout or blast line)."""
    lying = s.slot_kind[:, 2:] > _ZERO_I8
    if not any_nonzero(lying):
        return
    t = _tables(p)
    rows, k = np.nonzero(lying)
    cols = k + 2
    timer = s.slot_timer[rows, cols] - _ONE_I16
    s.slot_timer[rows, cols] = timer
    s.slot_lock[rows, cols] = np.maximum(s.slot_lock[rows, cols] - _ONE_I16, _ZERO_I16)
    x, y = s.slot_x[rows, cols], s.slot_y[rows, cols]
    vy = np.minimum(s.slot_vy[rows, cols] + t.slot_gravity_step, t.max_fall_speed)
    new_y = y + vy * t.dt
    for x_min, x_max, top in t.grounds:
        rest = (x >= x_min) & (x <= x_max) & (y <= top) & (new_y >= top)
        new_y[rest] = top
        vy[rest] = 0.0
    s.slot_y[rows, cols] = new_y
    s.slot_vy[rows, cols] = vy
    gone = (timer <= _ZERO_I16) | (new_y > t.blast_y)
    s.slot_kind[rows[gone], cols[gone]] = 0


def _drop_weapons(s: MatchState, p: GameParams, drop: np.ndarray, ev: StepEvents) -> None:
    """Player i's weapon lands in slot 2 + i, replacing any it dropped before."""
    rows, players = np.nonzero(drop)
    if rows.size == 0:
        return
    cols = players + 2
    s.slot_kind[rows, cols] = s.weapon[rows, players]
    s.slot_x[rows, cols] = s.x[rows, players]
    s.slot_y[rows, cols] = s.y[rows, players]
    s.slot_vy[rows, cols] = 0.0
    s.slot_timer[rows, cols] = p.dropped_lifetime
    s.slot_lock[rows, cols] = p.repickup_lock
    s.weapon[rows, players] = 0
    ev.weapon_drop[rows, players] = True


def _pick_up_weapons(s: MatchState, p: GameParams, want: np.ndarray, ev: StepEvents) -> None:
    """h pressed while unarmed: take the nearest reachable weapon (the closer player wins a tie-break)."""
    lying = s.slot_kind > 0
    rows = np.flatnonzero(_either(want) & (lying[:, 0] | lying[:, 1] | lying[:, 2] | lying[:, 3]))
    if rows.size == 0:
        return
    area_w, area_h = p.pickup_area
    kind = s.slot_kind[rows]
    # (k matches, 2 players, 4 slots)
    dx = np.abs(s.x[rows][:, :, None] - s.slot_x[rows][:, None, :])
    dy = np.abs(s.y[rows][:, :, None] - s.slot_y[rows][:, None, :])
    reachable = (
        want[rows][:, :, None]
        & (kind[:, None, :] > 0)
        & (s.slot_lock[rows][:, None, :] <= 0)
        & (dx < (area_w + p.body_w) / 2)
        & (dy < (area_h + p.body_h) / 2)
    )
    if not reachable.any():
        return
    dist = np.where(reachable, dx * dx + dy * dy, np.inf)
    choice = np.argmin(dist, axis=2)  # (k, 2)
    best = np.take_along_axis(dist, choice[..., None], axis=2)[..., 0]
    has = np.isfinite(best)
    # Both players reaching for the same weapon: the closer one gets it; a tie, nobody.
    same = has[:, 0] & has[:, 1] & (choice[:, 0] == choice[:, 1])
    loses = np.zeros_like(has)
    loses[:, 0] = same & (best[:, 0] >= best[:, 1])
    loses[:, 1] = same & (best[:, 1] >= best[:, 0])
    r, players = np.nonzero(has & ~loses)
    if r.size == 0:
        return
    m, slots = rows[r], choice[r, players]
    taken = s.slot_kind[m, slots]
    s.weapon[m, players] = taken
    ev.weapon_equip[m, players] = taken
    s.slot_kind[m, slots] = 0
    spawner_taken = slots < 2
    if spawner_taken.any():
        emptied = np.zeros((s.n, 2), bool)
        emptied[m[spawner_taken], slots[spawner_taken]] = True
        _reroll_spawn_timers(s, p, emptied)


def resolve_knockouts(s: MatchState, p: GameParams, ev: StepEvents) -> None:
    t = _tables(p)
    out = (np.abs(s.x) > t.blast_x) | (np.abs(s.y) > t.blast_y)
    if not any_nonzero(out):
        return
    out &= s.state != _St.KO
    s.stocks[out] -= 1
    ev.knocked_out |= out
    s.state[out] = P.KO
    s.state_timer[out] = p.respawn_frames
    s.x[out] = s.spawn_x[out]
    s.y[out] = p.spawn_y
    s.vx[out] = 0.0
    s.vy[out] = 0.0
    s.damage[out] = 0.0
    s.weapon[out] = 0
    s.move[out] = 0
    s.stun_frames[out] = 0
    s.grounded[out] = False
    s.on_platform[out] = False


def check_match_end(s: MatchState, p: GameParams, ev: StepEvents, max_timesteps: int) -> None:
    s.frame += _ONE_I32
    no_stocks = s.stocks <= _ZERO_I8
    timed_out = s.frame >= max_timesteps
    if not (any_nonzero(no_stocks) or any_nonzero(timed_out)):
        return
    out_of_stocks = _either(no_stocks)
    done = out_of_stocks | timed_out
    timed_out &= ~out_of_stocks  # running out of stocks on the last frame is not a time-out
    st0, st1 = s.stocks[:, 0], s.stocks[:, 1]
    result = np.where(st0 > st1, P.RESULT_P0_WINS, np.where(st1 > st0, P.RESULT_P1_WINS, P.RESULT_DRAW))
    s.result[done] = result[done]
    s.done |= done
    ev.done[:] = done
    ev.truncated[:] = timed_out
    ev.result[:] = np.where(done, result, P.RESULT_NONE)
