"""Frozen constants of Warehouse Brawl and our own move table.

Everything here is a fact of the game (DESIGN.md §3) or a number of our move
table. Nothing here changes during a match; per-match data lives in
``state.py``. Units are metres-like, **y points down**, 30 frames per second.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FPS = 30
DT = 1.0 / FPS

# --- Keys (action layout, DESIGN §4) -------------------------------------------
KEY_NAMES = ("w", "a", "s", "d", "space", "h", "l", "j", "k", "g")
K_W, K_A, K_S, K_D, K_JUMP, K_PICKUP, K_DODGE, K_LIGHT, K_HEAVY, K_TAUNT = range(10)
N_KEYS = 10

# --- Player states (observation value) -----------------------------------------
WALKING, STANDING, TURNAROUND, AIR_TURNAROUND, SPRINTING, STUN, IN_AIR = range(7)
DODGE, ATTACK, DASH, BACKDASH, KO, TAUNT = range(7, 13)
STATE_NAMES = (
    "Walking", "Standing", "Turnaround", "AirTurnaround", "Sprinting", "Stun", "InAir",
    "Dodge", "Attack", "Dash", "BackDash", "KO", "Taunt",
)  # fmt: skip

# --- Moves (observation value while attacking; 0 otherwise) --------------------
NLIGHT, DLIGHT, SLIGHT, NSIG, DSIG, SSIG, NAIR, DAIR, SAIR, RECOVERY, GROUNDPOUND = range(2, 13)
MOVE_NAMES = (
    "NLight", "DLight", "SLight", "NSig", "DSig", "SSig",
    "NAir", "DAir", "SAir", "Recovery", "GroundPound",
)  # fmt: skip
N_MOVES = 11
FIRST_MOVE_ID = 2

# --- Weapons ---------------------------------------------------------------------
PUNCH, SPEAR, HAMMER = 0, 1, 2
WEAPON_NAMES = ("Punch", "Spear", "Hammer")
# Weapon-slot type codes in the observation.
SLOT_NONE, SLOT_SPAWNED, SLOT_DROPPED_SPEAR, SLOT_DROPPED_HAMMER = 0, 1, 2, 3

# --- Match results (engine.result) -----------------------------------------------
RESULT_NONE, RESULT_P0_WINS, RESULT_P1_WINS, RESULT_DRAW = 0, 1, 2, 3


@dataclass(frozen=True)
class GameParams:
    """Physical constants and rules. Frozen: one instance is shared by all matches."""

    # Stage: grounds are solid blocks reaching far below the blast zone.
    right_ground: tuple[float, float, float] = (2.0, 7.0, 0.85)  # x_min, x_max, top y
    left_ground: tuple[float, float, float] = (-7.0, -2.0, 2.85)
    platform_a: tuple[float, float] = (1.0, 0.0)  # shuttle end points (centre)
    platform_b: tuple[float, float] = (-1.0, 2.0)
    platform_size: tuple[float, float] = (2.0, 0.2)
    platform_speed_floor: float = 0.03  # speed profile sin(pi*progress) + floor, units/s
    blast_x: float = 14.0
    blast_y: float = 8.0

    # Players
    spawn_x: float = 5.0
    spawn_y: float = 0.0
    body_w: float = 0.87
    body_h: float = 1.0
    hurt_w: float = 0.93
    hurt_h: float = 1.02
    stocks: int = 3
    respawn_frames: int = 90
    max_damage: float = 700.0

    # Movement
    gravity: float = 17.808
    walk_speed: float = 6.75
    dash_speed: float = 10.0
    dash_frames: int = 9
    sprint_speed: float = 8.0
    backdash_speed: float = 4.0
    backdash_frames: int = 7
    jump_velocity: float = 8.9
    ground_jumps: int = 1
    air_jumps: int = 2
    jump_cooldown: int = 6
    recoveries_per_airtime: int = 1
    max_fall_speed: float = 12.0
    fast_fall_accel: float = 0.475  # per frame, while s is held in the air
    air_steer_accel: float = 0.358  # per frame
    ground_friction: float = 0.6  # fraction of vx kept per frame when idle on ground
    attack_friction: float = 0.85  # ...while attacking on the ground: attacks carry momentum
    dodge_frames: int = 10
    dodge_cooldown_ground: int = 30
    dodge_cooldown_air: int = 82
    still_speed: float = 0.5  # |vx| below this counts as "nearly still" for a dodge
    turnaround_frames: int = 1
    taunt_frames: int = 30
    stun_bounce: float = 0.7
    max_stun_frames: int = 60

    # Knockback: force = fixed + variable * (X/70 + X^2/12000); velocity = dir * force * scale
    knockback_scale: float = 0.096

    # Weapons
    right_spawner: tuple[float, float, float] = (2.6, 6.5, 0.7)  # x_min, x_max, y
    left_spawner: tuple[float, float, float] = (-6.5, -2.6, 2.7)
    spawn_interval: tuple[int, int] = (500, 700)
    respawn_reroll: tuple[float, float] = (0.5, 1.5)
    spawned_lifetime: int = 350
    dropped_lifetime: int = 250
    repickup_lock: int = 15
    pickup_area: tuple[float, float] = (1.5, 0.83)

    # Observation clamps
    obs_pos_clamp: tuple[float, float] = (18.0, 7.0)
    obs_vel_clamp: float = 10.0

    # Match
    max_timesteps: int = 2700

    moves: MoveTable = field(default_factory=lambda: MOVE_TABLE)


# ==================================================================================
# Move table
# ==================================================================================
# A move is a short chain of phases. Each phase lasts `frames`; if it is active it
# carries a hitbox placed by facing (hx is forward distance from the body centre,
# hy is the vertical offset, y down). When a phase ends the move continues at
# `next_hit` if this phase landed a hit, else at `next_miss`; -1 ends the move.
# Phase 0 of a signature (heavy) move is its charge: it lasts at least
# `charge_min` frames and keeps charging while k is held, up to `charge_max`.
# A phase may also drive its owner's velocity (dashing strikes, the recovery's
# upward launch, the ground pound's dive).

MAX_PHASES = 6


@dataclass(frozen=True)
class Phase:
    frames: int
    hitbox: tuple[float, float, float, float] | None = None  # hx, hy, w, h
    damage: float = 0.0
    kb_fixed: float = 0.0
    kb_var: float = 0.0
    direction: tuple[float, float] = (1.0, -0.3)  # forward-signed x, y (down +)
    stun: int = 0
    velocity: tuple[float, float] | None = None  # forward-signed vx, vy while active
    next_hit: int = -2  # -2: the following phase
    next_miss: int = -2


@dataclass(frozen=True)
class Move:
    phases: tuple[Phase, ...]
    charge_min: int = 0
    charge_max: int = 0


def _strike(startup, active, recovery, hitbox, damage, kb, direction, stun, *, lunge=None):
    """Startup → one active phase → recovery."""
    return Move(
        (
            Phase(startup),
            Phase(active, hitbox, damage, kb[0], kb[1], direction, stun, velocity=lunge),
            Phase(recovery, next_hit=-1, next_miss=-1),
        )
    )


def _chain(startup, hits, recovery, hitbox, damages, kb, direction, stun, *, lunge=None):
    """Multi-hit: the first hit opens the chain; a miss goes straight to recovery."""
    n = len(damages)
    recovery_index = 1 + n
    phases = [Phase(startup)]
    for i, dmg in enumerate(damages):
        last = i == n - 1
        phases.append(
            Phase(
                hits,
                hitbox,
                dmg,
                kb[0] if not last else kb[0] * 1.6,
                kb[1] if not last else kb[1] * 1.6,
                direction if last else (0.3, -0.2),
                stun,
                velocity=lunge,
                next_hit=-2,
                next_miss=recovery_index,
            )
        )
    phases.append(Phase(recovery, next_hit=-1, next_miss=-1))
    return Move(tuple(phases))


def _signature(charge, startup, active, recovery, hitbox, damage, kb, direction, stun, *, lunge=None):
    """Charged heavy: charge (held) → startup → active → recovery."""
    move = _strike(startup, active, recovery, hitbox, damage, kb, direction, stun, lunge=lunge)
    return Move((Phase(charge[0]), *move.phases), charge_min=charge[0], charge_max=charge[1])


def _weapon_moves(reach: float, width: float, power: float, speed: int, multi: bool) -> tuple[Move, ...]:
    """One weapon's 11 moves, in move-id order (NLight … GroundPound).

    reach/width size the hitboxes, power scales damage and knockback, speed is
    added to startup and recovery frames (0 fast … 6 slow), multi turns the
    light side attack and the neutral signature into multi-hit chains.
    """
    s = speed
    up, fwd, low = (0.1, -1.0), (1.0, -0.35), (0.6, -0.6)
    side_light = (
        _chain(3 + s, 2, 8 + s, (reach, 0.0, width, 0.5), [3.0 * power] * 3, (14, 10), fwd, 16)
        if multi
        else _strike(4 + s, 3, 9 + s, (reach, 0.0, width, 0.5), 6.0 * power, (18, 14), fwd, 18, lunge=(3.0, 0.0))
    )
    neutral_sig = (
        _chain(6 + s, 3, 14 + s, (reach * 0.9, -0.3, width, 0.9), [5.0 * power, 5.0 * power, 9.0 * power],
               (20, 16), up, 20)
        if multi
        else _signature((8, 24), 5 + s, 4, 16 + s, (reach * 0.6, -0.7, width, 0.9), 13.0 * power, (30, 30), up, 24)
    )  # fmt: skip
    return (
        # NLight: quick jab
        _strike(3 + s, 2, 7 + s, (reach * 0.7, -0.1, width * 0.8, 0.45), 4.0 * power, (14, 10), fwd, 16),
        # DLight: low poke
        _strike(4 + s, 3, 8 + s, (reach * 0.8, 0.35, width, 0.35), 5.0 * power, (16, 10), low, 16),
        side_light,  # SLight
        neutral_sig,  # NSig
        # DSig: charged sweep, both sides via a wide low box
        _signature((10, 30), 5 + s, 4, 18 + s, (0.0, 0.35, 2 * reach + width, 0.4), 12.0 * power, (30, 28), low, 24),
        # SSig: charged dashing strike
        _signature((10, 30), 6 + s, 5, 18 + s, (reach, -0.1, width * 1.2, 0.6), 15.0 * power, (34, 34), fwd, 26,
                   lunge=(6.0, 0.0)),
        # NAir: spinning box around the body
        _strike(3 + s, 4, 8 + s, (0.0, 0.0, 1.6 + width * 0.5, 1.4), 5.0 * power, (16, 12), up, 16),
        # DAir: downward spike
        _strike(5 + s, 4, 10 + s, (0.2, 0.7, width * 0.8, 0.6), 7.0 * power, (20, 18), (0.2, 1.0), 18),
        # SAir: forward air swing
        _strike(4 + s, 3, 9 + s, (reach, -0.1, width, 0.6), 6.5 * power, (18, 16), fwd, 18),
        # Recovery: rising upper cut, launches its user upwards
        _strike(2, 8, 10 + s, (0.3, -0.6, 1.0, 1.0), 6.0 * power, (22, 16), up, 18, lunge=(2.0, -9.5)),
        # GroundPound: dive with a hitbox under the feet
        _strike(6 + s, 12, 12 + s, (0.0, 0.6, 1.2, 0.6), 9.0 * power, (26, 24), (0.3, 1.0), 22, lunge=(0.0, 14.0)),
    )  # fmt: skip


# Punch: fast and short. Spear: long reach and multi-hit. Hammer: slow and strong.
WEAPON_MOVES: tuple[tuple[Move, ...], ...] = (
    _weapon_moves(reach=1.0, width=0.8, power=1.0, speed=0, multi=False),
    _weapon_moves(reach=1.6, width=1.4, power=1.05, speed=2, multi=True),
    _weapon_moves(reach=1.2, width=1.1, power=1.9, speed=6, multi=False),
)


@dataclass(frozen=True)
class MoveTable:
    """The move table compiled to arrays indexed [weapon, move_id - 2, phase]."""

    frames: np.ndarray
    active: np.ndarray
    hitbox: np.ndarray  # [..., 4] hx, hy, w, h
    damage: np.ndarray
    kb_fixed: np.ndarray
    kb_var: np.ndarray
    direction: np.ndarray  # [..., 2] unit vectors, forward-signed x
    stun: np.ndarray
    drives_velocity: np.ndarray
    velocity: np.ndarray  # [..., 2]
    next_hit: np.ndarray
    next_miss: np.ndarray
    charge_min: np.ndarray  # [weapon, move]
    charge_max: np.ndarray


def compile_move_table(weapon_moves=WEAPON_MOVES) -> MoveTable:
    shape = (len(weapon_moves), N_MOVES, MAX_PHASES)
    t = {
        "frames": np.zeros(shape, np.int16),
        "active": np.zeros(shape, bool),
        "hitbox": np.zeros((*shape, 4), np.float32),
        "damage": np.zeros(shape, np.float32),
        "kb_fixed": np.zeros(shape, np.float32),
        "kb_var": np.zeros(shape, np.float32),
        "direction": np.zeros((*shape, 2), np.float32),
        "stun": np.zeros(shape, np.int16),
        "drives_velocity": np.zeros(shape, bool),
        "velocity": np.zeros((*shape, 2), np.float32),
        "next_hit": np.full(shape, -1, np.int8),
        "next_miss": np.full(shape, -1, np.int8),
        "charge_min": np.zeros(shape[:2], np.int16),
        "charge_max": np.zeros(shape[:2], np.int16),
    }
    for w, moves in enumerate(weapon_moves):
        if len(moves) != N_MOVES:
            raise ValueError(f"weapon {WEAPON_NAMES[w]} has {len(moves)} moves, expected {N_MOVES}")
        for m, move in enumerate(moves):
            if len(move.phases) > MAX_PHASES:
                raise ValueError(f"{WEAPON_NAMES[w]} {MOVE_NAMES[m]}: more than {MAX_PHASES} phases")
            t["charge_min"][w, m], t["charge_max"][w, m] = move.charge_min, move.charge_max
            for p, ph in enumerate(move.phases):
                idx = (w, m, p)
                t["frames"][idx] = ph.frames
                if ph.hitbox is not None:
                    t["active"][idx] = True
                    t["hitbox"][idx] = ph.hitbox
                    t["damage"][idx] = ph.damage
                    t["kb_fixed"][idx], t["kb_var"][idx] = ph.kb_fixed, ph.kb_var
                    d = np.asarray(ph.direction, np.float64)
                    t["direction"][idx] = d / np.linalg.norm(d)
                    t["stun"][idx] = ph.stun
                if ph.velocity is not None:
                    t["drives_velocity"][idx] = True
                    t["velocity"][idx] = ph.velocity
                following = p + 1 if p + 1 < len(move.phases) else -1
                t["next_hit"][idx] = following if ph.next_hit == -2 else ph.next_hit
                t["next_miss"][idx] = following if ph.next_miss == -2 else ph.next_miss
    return MoveTable(**t)


MOVE_TABLE = compile_move_table()
DEFAULT_PARAMS = GameParams()
