"""The players' state machine: one frame of the original's ``PlayerObjectState`` classes.

Each player is in one of 13 states. Every frame a player's update runs, in this
order (the original's ``Player.physics_process``):

1. **Base** (every state): out of the blast zone → KO; a stun dealt since the last
   update → Stun (the jump count carries over from states that keep one); else
   the dodge cooldown ticks.
2. **The state's own rules**, which may name the next state. Ground states with
   control check, in order: jump (fresh ``space`` on the floor), leaving the
   floor, dodge (fresh ``l`` with no direction), attack, taunt, then their own
   movement (turning, stopping, dashing, walking). Air states with control check:
   air turn (and nothing else that frame), fast fall and steering, landing,
   jump, dodge, attack (a jump and an attack can start on the same frame).
   An attacking player runs one frame of its move instead (``attacks.py``).
3. **After the rules**: the hurtbox moves to the body, the knockback and pull
   dealt since the last update are added to the velocity, then the old state's
   exit and the new state's entry run.

The original keeps one object per state, and those objects remember jump and
recovery counts across visits (``state.py``); the rules read and write those
memories exactly where the original does, quirks included (a stun ending in the
air restores at least one jump but not the recoveries; a taunt always ends in a
ground state, even in the air).

Keys arrive as bitmasks: bit k is key k of ``w a s d space h l j k g``.
"""

from __future__ import annotations

import numpy as np

from environment import params as P
from environment.jit import kernel

NONE = -1  # "no transition this frame"

# The move a key combination asks for, by (airborne, heavy, direction 0 neutral / 1 down / 2 side).
ATTACK_MOVE = np.array(
    [
        [[P.NLIGHT, P.DLIGHT, P.SLIGHT], [P.NSIG, P.DSIG, P.SSIG]],
        [[P.NAIR, P.DAIR, P.SAIR], [P.RECOVERY, P.GROUNDPOUND, P.RECOVERY]],
    ],
    np.int64,
)
# The original's HorizontalState: which of a/d was pressed last, and what is left after releases.
H_NONE, H_LEFT, H_RIGHT, H_LEFT_RIGHT, H_RIGHT_LEFT = range(5)
RELEASE_LEFT = np.array([H_NONE, H_NONE, H_RIGHT, H_RIGHT, H_RIGHT])
RELEASE_RIGHT = np.array([H_NONE, H_LEFT, H_NONE, H_LEFT, H_LEFT])
PRESS_RIGHT = np.array([H_RIGHT, H_LEFT_RIGHT, H_RIGHT, H_LEFT_RIGHT, H_RIGHT_LEFT])
PRESS_LEFT = np.array([H_LEFT, H_LEFT, H_RIGHT_LEFT, H_LEFT_RIGHT, H_RIGHT_LEFT])
LAST_DIRECTION = np.array([0.0, -1.0, 1.0, 1.0, -1.0])


@kernel
def key(mask, k) -> bool:
    return (mask >> k) & 1 == 1


@kernel
def axis_h(held) -> float:
    """d minus a."""
    return (1.0 if key(held, P.K_D) else 0.0) + (-1.0 if key(held, P.K_A) else 0.0)


@kernel
def from_direction(direction) -> float:
    """The original's Facing.from_direction: right if > 0, else left (0 included)."""
    return 1.0 if direction > 0 else -1.0


@kernel
def turns(facing, direction) -> bool:
    return (facing > 0 and direction < 0) or (facing < 0 and direction > 0)


@kernel
def move_toward(current, target, delta):
    """Godot's move_toward for delta >= 0: step toward target without overshooting."""
    if current == target:
        return target
    if current < target:
        return min(current + delta, target)
    return max(current - delta, target)


@kernel
def read_keys(p, held) -> int:
    """Key edges and the a/d press-order memory; returns the freshly pressed keys."""
    prev = p.prev_keys
    pressed = held & ~prev
    released = prev & ~held
    p.prev_keys = held
    h = p.horizontal
    if key(released, P.K_A):
        h = RELEASE_LEFT[h]
    if key(released, P.K_D):
        h = RELEASE_RIGHT[h]
    if key(pressed, P.K_D):
        h = PRESS_RIGHT[h]
    if key(pressed, P.K_A):
        h = PRESS_LEFT[h]
    p.horizontal = h
    return pressed


@kernel
def requested_move(held, airborne) -> int:
    """The original's get_move: k held = heavy, else j held = light; neutral if w is held or no direction."""
    heavy = key(held, P.K_HEAVY)
    if not (heavy or key(held, P.K_LIGHT)):
        return 0
    side = key(held, P.K_A) or key(held, P.K_D)
    down = key(held, P.K_S)
    neutral = (not side and not down) or key(held, P.K_W)
    direction = 0 if neutral else (1 if down else 2)
    return ATTACK_MOVE[1 if airborne else 0, 1 if heavy else 0, direction]


@kernel
def on_floor(x, y, px, py, K) -> bool:
    """The original's ``is_on_floor``: the body's box touches a ground's box with its centre no lower than
    the ground's centre, or touches the platform from above within its standing width."""
    left, right, top, bottom = x - K.half_w, x + K.half_w, y - K.half_h, y + K.half_h
    if right >= K.g0_left and left <= K.g0_right and bottom >= K.g0_top and top <= K.g0_bottom and y <= K.g0_centre:
        return True
    if right >= K.g1_left and left <= K.g1_right and bottom >= K.g1_top and top <= K.g1_bottom and y <= K.g1_centre:
        return True
    return (
        touches_platform(x, y, px, py, K)
        and y <= py - K.stand_clearance
        and px - K.stand_half_width <= x <= px + K.stand_half_width
    )


@kernel
def touches_platform(x, y, px, py, K) -> bool:
    return (
        x + K.half_w >= px - K.platform_hw
        and x - K.half_w <= px + K.platform_hw
        and y + K.half_h >= py - K.platform_hh
        and y - K.half_h <= py + K.platform_hh
    )


@kernel
def ground_state(held, K) -> int:
    return P.WALKING if abs(axis_h(held)) > K.dead_zone else P.STANDING


@kernel
def jump_memory(p):
    """(has one, value) of the current state object's jump count, as the observation reads it."""
    st = p.state
    if st == P.IN_AIR:
        return True, p.air_jumps
    if st == P.AIR_TURNAROUND:
        return True, p.turn_jumps
    if st == P.ATTACK:
        return True, p.attack_jumps
    if st == P.STUN:
        return p.stun_has_jumps, p.stun_jumps
    if st == P.DODGE:
        return p.dodge_has_jumps, p.dodge_jumps
    return False, 0


@kernel
def recovery_memory(p) -> int:
    st = p.state
    if st == P.IN_AIR:
        return p.air_recoveries
    if st == P.AIR_TURNAROUND:
        return p.turn_recoveries
    if st == P.ATTACK:
        return p.attack_recoveries
    if st == P.DODGE and p.dodge_has_jumps:
        return p.dodge_recoveries
    return 0


# --- 1. base --------------------------------------------------------------------------------
@kernel
def base(p, K):
    """Blast zone, pending stun, dodge cooldown; returns (next state, whether the state's rules run)."""
    ko = p.state == P.KO
    if abs(p.x) > K.blast_x or abs(p.y) > K.blast_y:
        # A knocked-out player is frozen out of bounds: its own rules still count down.
        return (NONE, True) if ko else (P.KO, False)
    if p.pending_stun > 0:
        stun = p.pending_stun
        p.pending_stun = 0
        if ko:
            return NONE, True
        has, jumps = jump_memory(p)
        if has:
            p.stun_jumps = jumps
            p.stun_has_jumps = True
        p.timer = stun
        return P.STUN, False
    p.dodge_cooldown = max(p.dodge_cooldown - 1, 0)
    return NONE, True


# --- 2. the states' own rules (all but Attack) ----------------------------------------------
@kernel
def control(p, held, pressed, floor, px, py, pvx, pvy, K) -> tuple:
    """Rules of a non-attacking state; returns (next state, move id to start or 0)."""
    st = p.state
    if st == P.WALKING or st == P.STANDING or st == P.TURNAROUND or st == P.SPRINTING or st == P.DASH:
        return _ground(p, held, pressed, floor, px, py, pvx, pvy, K)
    if st == P.IN_AIR or st == P.AIR_TURNAROUND:
        return _air(p, held, pressed, floor, K)
    if st == P.BACKDASH:
        p.vx = -p.facing * K.backdash_speed
        return _count_down(p, held, K), 0
    if st == P.STUN:
        return _stun(p, held, floor, K), 0
    if st == P.DODGE:
        return _dodge(p, held, K), 0
    if st == P.TAUNT:
        # The original ends a taunt in a ground state even in the air (it tests a method, always true).
        return _count_down(p, held, K), 0
    return _knocked_out(p, K), 0


@kernel
def _refresh_air(p, K) -> None:
    """InAirState.refresh: a fresh airtime (2 air jumps, 1 recovery, no jump cooldown)."""
    p.air_jump_timer = 0
    p.air_jumps = int(K.air_jumps)
    p.air_recoveries = int(K.recoveries)


@kernel
def _ground(p, held, pressed, floor, px, py, pvx, pvy, K):
    direction = axis_h(held)
    still = abs(direction) < K.dead_zone
    if key(pressed, P.K_JUMP) and floor:
        p.vy = -K.jump_speed
        if not still:
            p.facing = from_direction(direction)
        _refresh_air(p, K)
        return P.IN_AIR, 0
    if not floor:
        _refresh_air(p, K)
        return P.IN_AIR, 0
    if still and key(pressed, P.K_DODGE) and p.dodge_cooldown <= 0:
        p.dodge_cooldown = int(K.dodge_cooldown_ground)
        p.dodge_grounded = True
        return P.DODGE, 0
    move = requested_move(held, False)
    if move != 0:
        p.attack_jumps = int(K.air_jumps)
        p.attack_recoveries = int(K.recoveries)
        return P.ATTACK, move
    if key(pressed, P.K_TAUNT):
        return P.TAUNT, 0
    return _ground_movement(p, held, pressed, floor, direction, px, py, pvx, pvy, K), 0


@kernel
def _ground_movement(p, held, pressed, floor, direction, px, py, pvx, pvy, K) -> int:
    st = p.state
    right = p.facing > 0
    dash_key = key(pressed, P.K_DODGE)
    turn_to = P.BACKDASH if dash_key else P.TURNAROUND
    if st == P.WALKING or st == P.SPRINTING:
        # Turn when the other side is freshly pressed, or held without this side.
        forward_held = key(held, P.K_D if right else P.K_A)
        back_held = key(held, P.K_A if right else P.K_D)
        back_pressed = key(pressed, P.K_A if right else P.K_D)
        if back_pressed or (not forward_held and back_held):
            return turn_to
        if not (key(held, P.K_A) or key(held, P.K_D)):
            return P.STANDING
        if dash_key:
            return P.DASH
        if st == P.SPRINTING:
            p.vx = p.facing * K.sprint_speed
        elif touches_platform(p.x, p.y, px, py, K) and not key(held, P.K_S) and floor:
            p.vx = p.facing * K.walk_speed + pvx  # walking on the platform rides it
            p.vy = p.vy + pvy
        else:
            p.vx = p.facing * K.walk_speed
        return NONE
    if st == P.STANDING:
        if turns(p.facing, direction):
            return turn_to
        if abs(direction) > K.dead_zone:
            p.facing = from_direction(direction)
            return P.WALKING
        if touches_platform(p.x, p.y, px, py, K) and not key(held, P.K_S) and floor:
            p.vx, p.vy = pvx, pvy
        else:
            p.vx = move_toward(p.vx, 0.0, K.walk_speed)
        return NONE
    if st == P.TURNAROUND:
        if p.timer <= 0:
            return _finish_turn(p, P.WALKING, P.TURNAROUND, P.STANDING)
        if dash_key:
            return P.BACKDASH
        p.timer = max(p.timer - 1, 0)
        return NONE
    # Dash
    p.vx = p.facing * K.dash_speed
    p.timer = max(p.timer - 1, 0)
    return P.SPRINTING if p.timer <= 0 else NONE


@kernel
def _finish_turn(p, toward_new, toward_old, otherwise) -> int:
    """End of a (air) turnaround: face the other way, then pick the next state by the last side pressed."""
    last = LAST_DIRECTION[p.horizontal]
    old = p.facing
    p.facing = -old
    if -old == last:
        return toward_new
    if old == last:
        return toward_old
    return otherwise


@kernel
def _air(p, held, pressed, floor, K):
    in_air = p.state == P.IN_AIR
    direction = axis_h(held)
    if in_air and turns(p.facing, direction):
        p.turn_jump_timer, p.turn_jumps, p.turn_recoveries = p.air_jump_timer, p.air_jumps, p.air_recoveries
        return P.AIR_TURNAROUND, 0
    vertical = (1.0 if key(held, P.K_W) else 0.0) + (-1.0 if key(held, P.K_S) else 0.0)
    if vertical < -0.5 and p.vy > 0:
        p.vy = move_toward(p.vy, K.max_fall_speed, K.fast_fall_ease)
    else:
        p.vy = min(p.vy, K.max_fall_speed)
    p.vx = move_toward(p.vx, direction * K.walk_speed, K.air_ease)
    if floor:
        return ground_state(held, K), 0
    # The current object's jump memory: InAir's own, or AirTurnaround's copy.
    if in_air:
        jt, jl, rl = p.air_jump_timer, p.air_jumps, p.air_recoveries
    else:
        jt, jl, rl = p.turn_jump_timer, p.turn_jumps, p.turn_recoveries
    if key(pressed, P.K_JUMP) and jt <= 0 and jl > 0:
        p.vy = -K.jump_speed
        p.facing = from_direction(direction)
        jt = int(K.jump_cooldown)
        jl -= 1
    jt = max(jt - 1, 0)
    nxt, move = NONE, 0
    if key(pressed, P.K_DODGE) and p.dodge_cooldown <= 0:
        p.dodge_cooldown = int(K.dodge_cooldown_air)
        p.dodge_jumps, p.dodge_recoveries, p.dodge_has_jumps, p.dodge_grounded = jl, rl, True, False
        nxt = P.DODGE
    else:
        want = requested_move(held, True)
        if want != 0 and (want != P.RECOVERY or rl > 0):
            if want == P.RECOVERY:
                rl -= 1
            p.attack_jumps, p.attack_recoveries = jl, rl
            nxt, move = P.ATTACK, want
    if in_air:
        p.air_jump_timer, p.air_jumps, p.air_recoveries = jt, jl, rl
    else:
        p.turn_jump_timer, p.turn_jumps, p.turn_recoveries = jt, jl, rl
        if nxt == NONE:
            if p.timer <= 0:
                nxt = _finish_turn(p, P.IN_AIR, P.AIR_TURNAROUND, P.IN_AIR)
                if nxt == P.IN_AIR:  # set_jumps: InAir takes over the turn's memory
                    p.air_jump_timer, p.air_jumps, p.air_recoveries = jt, jl, rl
            else:
                p.timer = max(p.timer - 1, 0)
    return nxt, move


@kernel
def _count_down(p, held, K) -> int:
    p.timer = max(p.timer - 1, 0)
    return ground_state(held, K) if p.timer <= 0 else NONE


@kernel
def _stun(p, held, floor, K) -> int:
    p.timer = max(p.timer - 1, 0)
    p.vx = move_toward(p.vx, 0.0, K.stun_ease)
    if p.timer > 0:
        if floor and p.vy > 0:
            p.vy = -p.vy * K.bounce
        return NONE
    if floor:
        return ground_state(held, K)
    least = int(K.min_stun_exit_jumps)
    p.air_jumps = max(least, p.stun_jumps) if p.stun_has_jumps else least
    return P.IN_AIR


@kernel
def _dodge(p, held, K) -> int:
    p.timer = max(p.timer - 1, 0)
    if p.timer > 0:
        return NONE
    if p.dodge_grounded:
        return ground_state(held, K)
    if p.dodge_has_jumps:
        p.air_jumps, p.air_jump_timer, p.air_recoveries = p.dodge_jumps, 0, p.dodge_recoveries
    return P.IN_AIR


@kernel
def _knocked_out(p, K) -> int:
    p.timer -= 1
    if p.timer > 0:
        return NONE
    p.x, p.y, p.vx, p.vy = p.spawn_x, K.spawn_y, 0.0, 0.0
    p.damage = 0.0
    p.weapon = P.PUNCH
    p.air_jumps = 0
    p.air_recoveries = 0
    return P.IN_AIR


@kernel
def end_attack(p, held, floor, K) -> int:
    """A move ended: back to the ground, or to the air with the attack's jump memory."""
    if floor:
        return ground_state(held, K)
    p.air_jumps, p.air_recoveries, p.air_jump_timer = p.attack_jumps, p.attack_recoveries, 0
    return P.IN_AIR


# --- 3. after the rules --------------------------------------------------------------------
@kernel
def after_rules(p, held, nxt, K) -> bool:
    """Hurtbox, pending knockback and pull, then exit/entry of a state change; returns whether it was
    knocked out (entered KO) this frame."""
    p.hurt_x, p.hurt_y = p.x, p.y
    p.vx = p.vx + p.kb_vx + p.pull_vx
    p.vy = p.vy + p.kb_vy + p.pull_vy
    p.kb_vx = p.kb_vy = p.pull_vx = p.pull_vy = 0.0
    if nxt == NONE:
        return False
    old = p.state
    # Exit: a dodge or a knockout hands the body back to gravity, at rest; a move is over.
    if old == P.DODGE or old == P.KO:
        p.vx = p.vy = 0.0
        p.gravity_off = False
    if old == P.ATTACK and nxt != P.ATTACK:
        p.move = 0
    p.pending_stun = 0
    p.state = nxt
    # Entry.
    if nxt == P.TURNAROUND:
        p.timer = int(K.turnaround_frames)
    elif nxt == P.AIR_TURNAROUND:
        p.timer = int(K.turnaround_frames)
        p.vx = p.vx / 3
    elif nxt == P.DASH:
        p.timer = int(K.dash_frames)
    elif nxt == P.BACKDASH:
        p.timer = int(K.backdash_frames)
    elif nxt == P.TAUNT:
        p.timer = int(K.taunt_frames)
    elif nxt == P.DODGE:
        p.timer = int(K.dodge_frames)
        p.vx = p.vy = 0.0
        p.gravity_off = True
    elif nxt == P.KO:
        p.timer = int(K.respawn_frames)
        p.vx = p.vy = 0.0
        p.gravity_off = True
        p.stocks -= 1
        return True
    elif nxt == P.ATTACK and (key(held, P.K_A) or key(held, P.K_D)):
        p.facing = from_direction(axis_h(held))
    return False
