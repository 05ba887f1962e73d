"""Frozen constants of Warehouse Brawl, as the tournament's engine has them.

Every number here is the original engine's (``shared/fidelity/README.md`` §3 lists
where each comes from); the move data lives in ``moves.py``. Nothing here changes
during a match; per-match data lives in ``state.py``. Units are metres-like,
**y points down** (gravity is +y), 30 frames per second.
"""

from __future__ import annotations

from dataclasses import dataclass

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

    # Stage. Each ground is a solid block (x_min, x_max, top y, bottom y); the moving platform is a
    # 2 x 0.2 kinematic box shuttling between two waypoints, starting halfway, toward the second.
    right_ground: tuple[float, float, float, float] = (2.0, 7.0, 0.85, 5.0)
    left_ground: tuple[float, float, float, float] = (-7.0, -2.0, 2.85, 7.0)
    ground_centre_y: tuple[float, float] = (1.0, 3.0)  # body y of each ground: a player below it is not on it
    platform_start: tuple[float, float] = (0.0, 1.0)
    platform_waypoints: tuple[tuple[float, float], tuple[float, float]] = ((1.0, 0.0), (-1.0, 2.0))
    platform_size: tuple[float, float] = (2.0, 0.2)
    platform_speed_floor: float = 0.03  # speed profile sin(pi * progress) + floor, units/s
    platform_stop_distance: float = 0.1  # within this of a waypoint the platform stops for a frame and turns
    platform_stand_half_width: float = 1.25  # |x - platform x| within which a player can stand on it
    platform_stand_clearance: float = 0.01  # ...and its centre must be this far above the platform's
    blast_x: float = 14.0  # floor(29.8 / 2)
    blast_y: float = 8.0  # floor(16.8 / 2)

    # Players (runs of same-typed fields look alike to the `duplicates` tool: they are data)
    spawn_x: float = 5.0
    spawn_y: float = 0.0
    body_w: float = 0.87
    body_h: float = 1.0
    hurt_w_raw: int = 145  # the hurtbox capsule, in the files' pixels (world = raw * 0.0064)
    hurt_h_raw: int = 160
    stocks: int = 3
    respawn_frames: int = 90
    max_damage: float = 700.0

    # Movement (velocities in units/s, eases in units/s per frame)
    gravity: float = 17.808
    walk_speed: float = 6.75
    dash_speed: float = 10.0
    dash_frames: int = 9
    sprint_speed: float = 8.0
    backdash_speed: float = 4.0
    backdash_frames: int = 7
    jump_speed: float = 8.9
    air_jumps: int = 2  # jumps left after leaving the ground (0 at spawn and respawn until landing)
    recoveries_per_airtime: int = 1
    jump_cooldown: int = 6
    max_fall_speed: float = 12.0
    fast_fall_ease: float = 14.25 / 30
    air_ease: float = 10.75 / 30  # air steering and the floor drag of some moves
    stun_ease: float = 10.75 / 30 / 1.5  # horizontal slow-down while stunned
    bounce: float = 0.7  # a stunned player hitting the floor, or a downward hit on a grounded one
    dodge_frames: int = 10
    dodge_cooldown_ground: int = 30
    dodge_cooldown_air: int = 82
    turnaround_frames: int = 1
    taunt_frames: int = 30
    min_stun_exit_jumps: int = 1  # a stun that ends in the air leaves at least this many jumps
    axis_dead_zone: float = 1e-2  # |d - a| below this is "no horizontal input"

    # Knockback: force = fixed + variable * (X/70 + X^2/12000), X = damage before the hit + the hit's
    # damage; the victim's velocity gains direction * force * knockback_scale once.
    knockback_scale: float = 1.024 / 320 * 30

    # Physics engine (pymunk's defaults as the original uses them)
    friction_player: float = 0.7
    friction_ground: float = 0.7
    friction_platform: float = 0.9
    friction_weapon: float = 100000000000.0  # the original's weapons "stick" where they land
    collision_slop: float = 0.10000000149011612  # pymunk's default, a float32 0.1
    collision_bias: float = 0.0017970074436457143  # pymunk's default, (1 - 0.1) ** 60

    # Weapons
    right_spawner: tuple[float, float, float] = (2.6, 6.5, 0.7)  # x range, y of the right spawner
    left_spawner: tuple[float, float, float] = (-2.6, -6.5, 2.7)  # x = -uniform(2.6, 6.5), as the original draws it
    spawner_cooldown: tuple[int, int] = (500, 700)  # drawn once per spawner at reset
    first_spawn_head_start: int = 350  # the first spawn comes up to this many frames early
    cooldown_reroll: tuple[float, float] = (0.5, 1.5)  # after each despawn: randint(cooldown * lo, cooldown * hi)
    spawned_lifetime: int = 350  # a spawned weapon vanishes after this many frames
    spawn_animation_frames: int = 36  # a spawned weapon can be picked up this long after it appears
    dropped_lifetime: int = 250
    repickup_lock: int = 15  # frames before the dropper can pick anything up again
    drop_offset: tuple[float, float] = (0.1, 0.27)  # dropped at (x + 0.1 * facing_sign, y + 0.27)
    pickup_size: tuple[float, float] = (1.5, 0.83)  # pickup capsule of a spawner's weapon
    dropped_pickup_size: tuple[float, float] = (1.5, 16 / 48)  # ...of a dropped weapon
    weapon_body: tuple[float, float] = (40 / 48, 16 / 48 + 0.5)  # falling weapon's box
    max_dropped: int = 6  # dropped weapons lying at once per match (more is vanishingly rare)
    # Every weapon draw takes its lowest value (x at the spawner's first end, a Spear, the shortest cooldown):
    # replays traces recorded from the original with its random source fixed that way. Off in play.
    fixed_weapon_draws: bool = False

    # Observation clamps
    obs_pos_clamp: tuple[float, float] = (18.0, 7.0)
    obs_vel_clamp: float = 10.0

    # Match
    max_timesteps: int = 2700

    # The tournament's match loop (run_match) updates the platform once more before every step;
    # the bare env.step, which the golden traces record, does not. The difference shows when the
    # platform reaches a waypoint: with the extra update it turns without a stopped frame.
    platform_extra_update: bool = False


DEFAULT_PARAMS = GameParams()
MATCH_FRAMES = DEFAULT_PARAMS.max_timesteps  # one match, 90 s: every API's default match length
TOURNAMENT_PARAMS = GameParams(platform_extra_update=True)


def kernel_params(p: GameParams) -> np.ndarray:
    """The constants the compiled engine reads, as a one-element structured array (field = attribute)."""
    hurt_w, hurt_h = p.hurt_w_raw * 2 * (1.024 / 320), p.hurt_h_raw * 2 * (1.024 / 320)
    values = {  # one parameter per line: runs of it look alike to the `duplicates` tool; it is data
        "dt": DT,
        "gravity_step": p.gravity * DT,
        "bias_coef": 1.0 - p.collision_bias**DT,
        "slop": p.collision_slop,
        "walk_speed": p.walk_speed,
        "dash_speed": p.dash_speed,
        "sprint_speed": p.sprint_speed,
        "backdash_speed": p.backdash_speed,
        "jump_speed": p.jump_speed,
        "max_fall_speed": p.max_fall_speed,
        "fast_fall_ease": p.fast_fall_ease,
        "air_ease": p.air_ease,
        "stun_ease": p.stun_ease,
        "bounce": p.bounce,
        "knockback_scale": p.knockback_scale,
        "max_damage": p.max_damage,
        "blast_x": p.blast_x,
        "blast_y": p.blast_y,
        "dead_zone": p.axis_dead_zone,
        "spawn_x": p.spawn_x,
        "spawn_y": p.spawn_y,
        "platform_x0": p.platform_start[0],
        "platform_y0": p.platform_start[1],
        "half_w": p.body_w / 2,
        "half_h": p.body_h / 2,
        "platform_hw": p.platform_size[0] / 2,
        "platform_hh": p.platform_size[1] / 2,
        "stand_half_width": p.platform_stand_half_width,
        "stand_clearance": p.platform_stand_clearance,
        "g0_left": p.right_ground[0],
        "g0_right": p.right_ground[1],
        "g0_top": p.right_ground[2],
        "g0_bottom": p.right_ground[3],
        "g0_centre": p.ground_centre_y[0],
        "g1_left": p.left_ground[0],
        "g1_right": p.left_ground[1],
        "g1_top": p.left_ground[2],
        "g1_bottom": p.left_ground[3],
        "g1_centre": p.ground_centre_y[1],
        "friction_player_ground": p.friction_player * p.friction_ground,
        "friction_player_platform": p.friction_player * p.friction_platform,
        "friction_weapon_ground": p.friction_weapon * p.friction_ground,
        "friction_weapon_platform": p.friction_weapon * p.friction_platform,
        "weapon_hw": p.weapon_body[0] / 2,
        "weapon_hh": p.weapon_body[1] / 2,
        "hurt_w": hurt_w,
        "hurt_h": hurt_h,
        "pickup_w": p.pickup_size[0],
        "pickup_h": p.pickup_size[1],
        "dropped_pickup_w": p.dropped_pickup_size[0],
        "dropped_pickup_h": p.dropped_pickup_size[1],
        "drop_dx": p.drop_offset[0],
        "drop_dy": p.drop_offset[1],
        "right_spawner_x0": p.right_spawner[0],
        "right_spawner_x1": p.right_spawner[1],
        "right_spawner_y": p.right_spawner[2],
        "left_spawner_x0": p.left_spawner[0],
        "left_spawner_x1": p.left_spawner[1],
        "left_spawner_y": p.left_spawner[2],
        "reroll_lo": p.cooldown_reroll[0],
        "reroll_hi": p.cooldown_reroll[1],
        "air_jumps": p.air_jumps,
        "recoveries": p.recoveries_per_airtime,
        "jump_cooldown": p.jump_cooldown,
        "dodge_frames": p.dodge_frames,
        "dodge_cooldown_ground": p.dodge_cooldown_ground,
        "dodge_cooldown_air": p.dodge_cooldown_air,
        "turnaround_frames": p.turnaround_frames,
        "taunt_frames": p.taunt_frames,
        "dash_frames": p.dash_frames,
        "backdash_frames": p.backdash_frames,
        "respawn_frames": p.respawn_frames,
        "min_stun_exit_jumps": p.min_stun_exit_jumps,
        "spawned_lifetime": p.spawned_lifetime,
        "spawn_animation_frames": p.spawn_animation_frames,
        "dropped_lifetime": p.dropped_lifetime,
        "repickup_lock": p.repickup_lock,
        "cooldown_lo": p.spawner_cooldown[0],
        "cooldown_hi": p.spawner_cooldown[1],
        "first_spawn_head_start": p.first_spawn_head_start,
        "stocks": p.stocks,
        "fixed_weapon_draws": float(p.fixed_weapon_draws),
    }
    record = np.zeros(1, [(name, "f8") for name in values])
    for name, value in values.items():
        record[name] = value
    return record
