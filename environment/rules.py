"""The players' state machine: one frame of the original's ``PlayerObjectState`` classes.

Each player is in one of 13 states. Every frame a player's current state runs,
in this order (the original's ``physics_process`` chain):

1. **Base** (every state): out of the blast zone → KO; a stun dealt since the last
   update → Stun (the jump count carries over from states that keep one); else
   the dodge cooldown ticks.
2. **The state's own rules**, which may name the next state. Ground states with
   control check, in order: jump (fresh ``space`` on the floor), leaving the
   floor, dodge (fresh ``l`` with no direction), attack, taunt, then their own
   movement (turning, stopping, dashing, walking). Air states with control check:
   air turn (and nothing else that frame), fast fall and steering, landing,
   jump, dodge, attack (a jump and an attack can start on the same frame).
3. **After the rules** (``after_rules``): the hurtbox moves to the body, the
   knockback and pull dealt since the last update are added to the velocity,
   then the old state's exit and the new state's entry run.

The original keeps one object per state, and those objects remember jump and
recovery counts across visits (``state.py`` lists which); the rules here read
and write those memories exactly where the original does, quirks included
(e.g. a stun ending in the air restores at least one jump but not the
recoveries; a taunt always ends in a ground state, even in the air).

Masks replace branches: every rule runs on all matches at once, on ``(n, 2)``
arrays restricted by a player mask, so the engine can run the two player slots
in the original's order where it matters (see ``engine.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from environment import params as P
from environment.attacks import move_toward
from environment.params import GameParams
from environment.state import MatchState

NONE = -1  # "no transition this frame" in the next-state array

# States in which the ground rules (jump, fall, dodge, attack, taunt) apply.
GROUND_CONTROL = np.zeros(13, bool)
GROUND_CONTROL[[P.WALKING, P.STANDING, P.TURNAROUND, P.SPRINTING, P.DASH]] = True
AIR_CONTROL = np.zeros(13, bool)
AIR_CONTROL[[P.IN_AIR, P.AIR_TURNAROUND]] = True

# The move a key combination asks for, by (airborne, heavy, direction 0 neutral / 1 down / 2 side).
_ATTACK_MOVE = np.array(
    [
        [[P.NLIGHT, P.DLIGHT, P.SLIGHT], [P.NSIG, P.DSIG, P.SSIG]],
        [[P.NAIR, P.DAIR, P.SAIR], [P.RECOVERY, P.GROUNDPOUND, P.RECOVERY]],
    ],
    np.int8,
)

# The original's HorizontalState: which of a/d was pressed last, and what is left after releases.
H_NONE, H_LEFT, H_RIGHT, H_LEFT_RIGHT, H_RIGHT_LEFT = range(5)
_RELEASE_LEFT = np.array([H_NONE, H_NONE, H_RIGHT, H_RIGHT, H_RIGHT], np.int8)
_RELEASE_RIGHT = np.array([H_NONE, H_LEFT, H_NONE, H_LEFT, H_LEFT], np.int8)
_PRESS_RIGHT = np.array([H_RIGHT, H_LEFT_RIGHT, H_RIGHT, H_LEFT_RIGHT, H_RIGHT_LEFT], np.int8)
_PRESS_LEFT = np.array([H_LEFT, H_LEFT, H_RIGHT_LEFT, H_LEFT_RIGHT, H_RIGHT_LEFT], np.int8)
_LAST_DIRECTION = np.array([0.0, -1.0, 1.0, 1.0, -1.0])


@dataclass
class Inputs:
    held: np.ndarray  # (n, 2, 10)
    pressed: np.ndarray  # held now, not last frame
    raw_h: np.ndarray  # (n, 2) d - a
    raw_v: np.ndarray  # w - s
    no_h: np.ndarray  # neither a nor d
    request: np.ndarray  # (n, 2) the move the keys ask for on the ground (0 none)
    request_air: np.ndarray  # ...in the air


def read_inputs(s: MatchState, held: np.ndarray) -> Inputs:
    """Key edges, axes and the move request; updates the press memories in ``s``."""
    prev = s.prev_keys
    pressed = held & ~prev
    released = prev & ~held
    s.prev_keys[...] = held
    a, d = held[..., P.K_A], held[..., P.K_D]
    h = s.horizontal
    h[...] = np.where(released[..., P.K_A], _RELEASE_LEFT[h], h)
    h[...] = np.where(released[..., P.K_D], _RELEASE_RIGHT[h], h)
    h[...] = np.where(pressed[..., P.K_D], _PRESS_RIGHT[h], h)
    h[...] = np.where(pressed[..., P.K_A], _PRESS_LEFT[h], h)
    raw_h = d.astype(np.float64) - a
    raw_v = held[..., P.K_W].astype(np.float64) - held[..., P.K_S]
    heavy = held[..., P.K_HEAVY]
    any_attack = heavy | held[..., P.K_LIGHT]
    down_key = held[..., P.K_S]
    neutral = (~(a | d) & ~down_key) | held[..., P.K_W]
    direction = np.where(neutral, 0, np.where(down_key, 1, 2))
    request = np.where(any_attack, _ATTACK_MOVE[0, heavy.astype(np.intp), direction], 0).astype(np.int8)
    request_air = np.where(any_attack, _ATTACK_MOVE[1, heavy.astype(np.intp), direction], 0).astype(np.int8)
    return Inputs(held, pressed, raw_h, raw_v, ~(a | d), request, request_air)


def from_direction(direction: np.ndarray) -> np.ndarray:
    """The original's Facing.from_direction: right if > 0, else left (0 included)."""
    return np.where(direction > 0, 1.0, -1.0)


def turns(facing: np.ndarray, direction: np.ndarray) -> np.ndarray:
    return ((facing > 0) & (direction < 0)) | ((facing < 0) & (direction > 0))


class StateMachine:
    def __init__(self, p: GameParams):
        self.p = p
        g = np.array([p.right_ground, p.left_ground])
        self.ground_x_min, self.ground_x_max = g[:, 0], g[:, 1]
        self.ground_y_min, self.ground_y_max = g[:, 2], g[:, 3]
        self.ground_centre_y = np.array(p.ground_centre_y)
        self.half_w, self.half_h = p.body_w / 2, p.body_h / 2
        self.plat_hw, self.plat_hh = p.platform_size[0] / 2, p.platform_size[1] / 2

    # --- geometry ---------------------------------------------------------------------
    def on_floor(self, s: MatchState, rows=None, slot=None) -> np.ndarray:
        """The original's ``is_on_floor``: the body's box touches a ground's box with its centre no lower than
        the ground's centre, or touches the platform from above within its standing width."""
        if rows is None:
            x, y = s.x, s.y
            px, py = s.platform_x[:, None], s.platform_y[:, None]
        else:
            x, y = s.x[rows, slot], s.y[rows, slot]
            px, py = s.platform_x[rows], s.platform_y[rows]
        left, right, top, bottom = x - self.half_w, x + self.half_w, y - self.half_h, y + self.half_h
        out = np.zeros(x.shape, bool)
        for g in range(2):
            out |= ((right >= self.ground_x_min[g]) & (left <= self.ground_x_max[g]) & (bottom >= self.ground_y_min[g])
                    & (top <= self.ground_y_max[g]) & (y <= self.ground_centre_y[g]))  # fmt: skip
        out |= (self._touches_platform(left, right, top, bottom, px, py)
                & (y <= py - self.p.platform_stand_clearance)
                & (px - self.p.platform_stand_half_width <= x) & (x <= px + self.p.platform_stand_half_width))  # fmt: skip
        return out

    def _touches_platform(self, left, right, top, bottom, px, py) -> np.ndarray:
        return (right >= px - self.plat_hw) & (left <= px + self.plat_hw) & (bottom >= py - self.plat_hh) & (
            top <= py + self.plat_hh
        )

    def over_platform(self, s: MatchState) -> np.ndarray:
        """Body box touching the platform's box (the walking/standing rule that rides it)."""
        px, py = s.platform_x[:, None], s.platform_y[:, None]
        return self._touches_platform(s.x - self.half_w, s.x + self.half_w, s.y - self.half_h, s.y + self.half_h,
                                      px, py)  # fmt: skip

    def ground_state(self, inp: Inputs) -> np.ndarray:
        return np.where(np.abs(inp.raw_h) > self.p.axis_dead_zone, P.WALKING, P.STANDING).astype(np.int8)

    # --- 1. base -------------------------------------------------------------------------
    def base(self, s: MatchState, mask: np.ndarray, nxt: np.ndarray, ev) -> np.ndarray:
        """Blast zone, pending stun and the dodge cooldown; returns who goes on to its state's rules."""
        st = s.state
        ko = st == P.KO
        out = mask & ((np.abs(s.x) > self.p.blast_x) | (np.abs(s.y) > self.p.blast_y))
        np.copyto(nxt, P.KO, where=out & ~ko)
        stunned = mask & ~out & (s.pending_stun > 0)
        if stunned.any():
            go = stunned & ~ko
            keeps, jumps = self.jump_memory(s)
            np.copyto(s.stun_jumps, jumps, where=go & keeps)
            s.stun_has_jumps |= go & keeps
            np.copyto(s.timer, s.pending_stun, where=go)
            ev.combo |= (go & (st == P.STUN))[:, ::-1]
            np.copyto(nxt, P.STUN, where=go)
            np.copyto(s.pending_stun, 0, where=stunned)
        ticks = mask & ~out & ~stunned
        np.copyto(s.dodge_cooldown, np.maximum(s.dodge_cooldown - 1, 0), where=ticks)
        return (ticks & ~ko) | (mask & ko)

    def jump_memory(self, s: MatchState) -> tuple[np.ndarray, np.ndarray]:
        """(has one, value) of the current state object's jump count, as the observation reads it."""
        st = s.state
        jumps = np.select(
            [st == P.IN_AIR, st == P.AIR_TURNAROUND, st == P.STUN, st == P.DODGE, st == P.ATTACK],
            [s.air_jumps, s.turn_jumps, s.stun_jumps, s.dodge_jumps, s.attack_jumps], 0,
        )  # fmt: skip
        has = ((st == P.IN_AIR) | (st == P.AIR_TURNAROUND) | (st == P.ATTACK) | ((st == P.STUN) & s.stun_has_jumps)
               | ((st == P.DODGE) & s.dodge_has_jumps))  # fmt: skip
        return has, jumps.astype(np.int8)

    def recovery_memory(self, s: MatchState) -> np.ndarray:
        st = s.state
        return np.select(
            [st == P.IN_AIR, st == P.AIR_TURNAROUND, (st == P.DODGE) & s.dodge_has_jumps, st == P.ATTACK],
            [s.air_recoveries, s.turn_recoveries, s.dodge_recoveries, s.attack_recoveries], 0,
        ).astype(np.int8)  # fmt: skip

    # --- 2. the states' own rules (all but Attack) ---------------------------------------
    def control(self, s: MatchState, inp: Inputs, go: np.ndarray, nxt: np.ndarray, floor: np.ndarray,
                start_attack) -> None:
        """Rules of every non-attacking state for the players in ``go``.

        :param start_attack: ``start_attack(state, rows, slots, move_ids)`` gives players a new move
        """
        st = s.state
        ground = go & GROUND_CONTROL[st]
        if ground.any():
            self._ground(s, inp, ground, nxt, floor, start_attack)
        air = go & AIR_CONTROL[st]
        if air.any():
            self._air(s, inp, air, nxt, floor, start_attack)
        for state, rule in ((P.BACKDASH, self._backdash), (P.STUN, self._stun), (P.DODGE, self._dodge),
                            (P.TAUNT, self._taunt), (P.KO, self._ko)):  # fmt: skip
            who = go & (st == state)
            if who.any():
                rule(s, inp, who, nxt, floor)

    def _ground(self, s, inp, g, nxt, floor, start_attack) -> None:
        p = self.p
        press = inp.pressed
        still = np.abs(inp.raw_h) < p.axis_dead_zone
        jump = g & press[..., P.K_JUMP] & floor
        if jump.any():
            np.copyto(s.vy, -p.jump_speed, where=jump)
            np.copyto(s.facing, from_direction(inp.raw_h), where=jump & ~still)
        leave = jump | (g & ~floor)
        if leave.any():
            self._refresh_air(s, leave)
            np.copyto(nxt, P.IN_AIR, where=leave)
        rest = g & ~leave
        dodge = rest & still & press[..., P.K_DODGE] & (s.dodge_cooldown <= 0)
        if dodge.any():
            np.copyto(s.dodge_cooldown, p.dodge_cooldown_ground, where=dodge)
            s.dodge_grounded |= dodge
            np.copyto(nxt, P.DODGE, where=dodge)
        rest &= ~dodge
        attack = rest & (inp.request > 0)
        if attack.any():
            np.copyto(s.attack_jumps, p.air_jumps, where=attack)
            np.copyto(s.attack_recoveries, p.recoveries_per_airtime, where=attack)
            rows, slots = np.nonzero(attack)
            start_attack(s, rows, slots, inp.request[rows, slots])
            np.copyto(nxt, P.ATTACK, where=attack)
        rest &= ~attack
        taunt = rest & press[..., P.K_TAUNT]
        np.copyto(nxt, P.TAUNT, where=taunt)
        rest &= ~taunt
        if rest.any():
            self._ground_movement(s, inp, rest, nxt, floor)

    def _refresh_air(self, s, who) -> None:
        """InAirState.refresh: a fresh airtime (2 air jumps, 1 recovery, no jump cooldown)."""
        np.copyto(s.air_jump_timer, 0, where=who)
        np.copyto(s.air_jumps, self.p.air_jumps, where=who)
        np.copyto(s.air_recoveries, self.p.recoveries_per_airtime, where=who)

    def _ground_movement(self, s, inp, rest, nxt, floor) -> None:
        p, st, held, press = self.p, s.state, inp.held, inp.pressed
        right = s.facing > 0
        a, d = held[..., P.K_A], held[..., P.K_D]
        dash_key = press[..., P.K_DODGE]
        turn_to = np.where(dash_key, P.BACKDASH, P.TURNAROUND)
        # Walking and sprinting: turn when the other side is pressed, or held without this side.
        running = rest & ((st == P.WALKING) | (st == P.SPRINTING))
        if running.any():
            forward_held = np.where(right, d, a)
            back_held = np.where(right, a, d)
            back_pressed = np.where(right, press[..., P.K_A], press[..., P.K_D])
            turn = running & (back_pressed | (~forward_held & back_held))
            np.copyto(nxt, turn_to, where=turn)
            stop = running & ~turn & inp.no_h
            np.copyto(nxt, P.STANDING, where=stop)
            dash = running & ~turn & ~stop & dash_key
            np.copyto(nxt, P.DASH, where=dash)
            moving = running & ~turn & ~stop & ~dash
            walk = moving & (st == P.WALKING)
            ride = walk & self.over_platform(s) & ~held[..., P.K_S] & floor
            np.copyto(s.vx, s.facing * p.walk_speed + s.platform_vx[:, None], where=ride)
            np.copyto(s.vy, s.vy + s.platform_vy[:, None], where=ride)
            np.copyto(s.vx, s.facing * p.walk_speed, where=walk & ~ride)
            np.copyto(s.vx, s.facing * p.sprint_speed, where=moving & (st == P.SPRINTING))
        standing = rest & (st == P.STANDING)
        if standing.any():
            turn = standing & turns(s.facing, inp.raw_h)
            np.copyto(nxt, turn_to, where=turn)
            walk = standing & ~turn & (np.abs(inp.raw_h) > p.axis_dead_zone)
            np.copyto(s.facing, from_direction(inp.raw_h), where=walk)
            np.copyto(nxt, P.WALKING, where=walk)
            idle = standing & ~turn & ~walk
            ride = idle & self.over_platform(s) & ~held[..., P.K_S] & floor
            np.copyto(s.vx, s.platform_vx[:, None], where=ride)
            np.copyto(s.vy, s.platform_vy[:, None], where=ride)
            np.copyto(s.vx, move_toward(s.vx, 0.0, p.walk_speed), where=idle & ~ride)
        turning = rest & (st == P.TURNAROUND)
        if turning.any():
            over = turning & (s.timer <= 0)
            if over.any():
                self._finish_turn(s, over, nxt, P.WALKING, P.TURNAROUND, P.STANDING)
            waiting = turning & ~over
            np.copyto(nxt, P.BACKDASH, where=waiting & dash_key)
            np.copyto(s.timer, np.maximum(s.timer - 1, 0), where=waiting & ~dash_key)
        dashing = rest & (st == P.DASH)
        if dashing.any():
            np.copyto(s.vx, s.facing * p.dash_speed, where=dashing)
            np.copyto(s.timer, np.maximum(s.timer - 1, 0), where=dashing)
            np.copyto(nxt, P.SPRINTING, where=dashing & (s.timer <= 0))

    def _finish_turn(self, s, over, nxt, toward_new, toward_old, otherwise) -> None:
        """End of a (air) turnaround: face the other way, then pick the next state by the last side pressed."""
        last = _LAST_DIRECTION[s.horizontal]
        old = s.facing.copy()
        np.copyto(s.facing, -old, where=over)
        target = np.where(-old == last, toward_new, np.where(old == last, toward_old, otherwise))
        np.copyto(nxt, target, where=over)

    def _air(self, s, inp, a, nxt, floor, start_attack) -> None:
        p, st = self.p, s.state
        in_air = st == P.IN_AIR
        turn = a & in_air & turns(s.facing, inp.raw_h)
        if turn.any():
            np.copyto(s.turn_jump_timer, s.air_jump_timer, where=turn)
            np.copyto(s.turn_jumps, s.air_jumps, where=turn)
            np.copyto(s.turn_recoveries, s.air_recoveries, where=turn)
            np.copyto(nxt, P.AIR_TURNAROUND, where=turn)
        b = a & ~turn
        fast_fall = b & (inp.raw_v < -0.5) & (s.vy > 0)
        np.copyto(s.vy, move_toward(s.vy, p.max_fall_speed, p.fast_fall_ease), where=fast_fall)
        np.copyto(s.vy, np.minimum(s.vy, p.max_fall_speed), where=b & ~fast_fall)
        np.copyto(s.vx, move_toward(s.vx, inp.raw_h * p.walk_speed, p.air_ease), where=b)
        land = b & floor
        np.copyto(nxt, self.ground_state(inp), where=land)
        c = b & ~land
        if not c.any():
            return
        # The current object's jump memory: InAir's own, or AirTurnaround's copy.
        jt = np.where(in_air, s.air_jump_timer, s.turn_jump_timer)
        jl = np.where(in_air, s.air_jumps, s.turn_jumps)
        rl = np.where(in_air, s.air_recoveries, s.turn_recoveries)
        jump = c & inp.pressed[..., P.K_JUMP] & (jt <= 0) & (jl > 0)
        if jump.any():
            np.copyto(s.vy, -p.jump_speed, where=jump)
            np.copyto(s.facing, from_direction(inp.raw_h), where=jump)
            jt = np.where(jump, p.jump_cooldown, jt)
            jl = np.where(jump, jl - 1, jl)
        jt = np.where(c, np.maximum(jt - 1, 0), jt)
        dodge = c & inp.pressed[..., P.K_DODGE] & (s.dodge_cooldown <= 0)
        if dodge.any():
            np.copyto(s.dodge_cooldown, p.dodge_cooldown_air, where=dodge)
            np.copyto(s.dodge_jumps, jl, where=dodge)
            np.copyto(s.dodge_recoveries, rl, where=dodge)
            s.dodge_has_jumps |= dodge
            s.dodge_grounded &= ~dodge
            np.copyto(nxt, P.DODGE, where=dodge)
        want = c & ~dodge & (inp.request_air > 0)
        attack = want
        if want.any():
            recovery = want & (inp.request_air == P.RECOVERY)
            attack = want & (~recovery | (rl > 0))
            rl = np.where(recovery & attack, rl - 1, rl)
            np.copyto(s.attack_jumps, jl, where=attack)
            np.copyto(s.attack_recoveries, rl, where=attack)
            rows, slots = np.nonzero(attack)
            start_attack(s, rows, slots, inp.request_air[rows, slots])
            np.copyto(nxt, P.ATTACK, where=attack)
        for field, value in ((s.air_jump_timer, jt), (s.air_jumps, jl), (s.air_recoveries, rl)):
            np.copyto(field, value, where=c & in_air)
        for field, value in ((s.turn_jump_timer, jt), (s.turn_jumps, jl), (s.turn_recoveries, rl)):
            np.copyto(field, value, where=c & ~in_air)
        turning = c & ~in_air & ~dodge & ~attack
        if turning.any():
            over = turning & (s.timer <= 0)
            if over.any():
                self._finish_turn(s, over, nxt, P.IN_AIR, P.AIR_TURNAROUND, P.IN_AIR)
                back = over & (nxt == P.IN_AIR)  # set_jumps: InAir takes over the turn's memory
                np.copyto(s.air_jump_timer, s.turn_jump_timer, where=back)
                np.copyto(s.air_jumps, s.turn_jumps, where=back)
                np.copyto(s.air_recoveries, s.turn_recoveries, where=back)
            np.copyto(s.timer, np.maximum(s.timer - 1, 0), where=turning & ~over)

    def _backdash(self, s, inp, who, nxt, floor) -> None:
        np.copyto(s.vx, -s.facing * self.p.backdash_speed, where=who)
        self._count_down(s, inp, who, nxt)

    def _taunt(self, s, inp, who, nxt, floor) -> None:
        # The original ends a taunt in a ground state even in the air (it tests a method, always true).
        self._count_down(s, inp, who, nxt)

    def _count_down(self, s, inp, who, nxt) -> None:
        np.copyto(s.timer, np.maximum(s.timer - 1, 0), where=who)
        np.copyto(nxt, self.ground_state(inp), where=who & (s.timer <= 0))

    def _stun(self, s, inp, who, nxt, floor) -> None:
        p = self.p
        np.copyto(s.timer, np.maximum(s.timer - 1, 0), where=who)
        np.copyto(s.vx, move_toward(s.vx, 0.0, p.stun_ease), where=who)
        still = who & (s.timer > 0)
        np.copyto(s.vy, -s.vy * p.bounce, where=still & floor & (s.vy > 0))
        over = who & ~still
        np.copyto(nxt, self.ground_state(inp), where=over & floor)
        airborne = over & ~floor
        jumps = np.where(s.stun_has_jumps, np.maximum(p.min_stun_exit_jumps, s.stun_jumps), p.min_stun_exit_jumps)
        np.copyto(s.air_jumps, jumps, where=airborne)
        np.copyto(nxt, P.IN_AIR, where=airborne)

    def _dodge(self, s, inp, who, nxt, floor) -> None:
        np.copyto(s.timer, np.maximum(s.timer - 1, 0), where=who)
        over = who & (s.timer <= 0)
        np.copyto(nxt, self.ground_state(inp), where=over & s.dodge_grounded)
        airborne = over & ~s.dodge_grounded
        restore = airborne & s.dodge_has_jumps
        np.copyto(s.air_jumps, s.dodge_jumps, where=restore)
        np.copyto(s.air_jump_timer, 0, where=restore)
        np.copyto(s.air_recoveries, s.dodge_recoveries, where=restore)
        np.copyto(nxt, P.IN_AIR, where=airborne)

    def _ko(self, s, inp, who, nxt, floor) -> None:
        s.timer[who] -= 1
        back = who & (s.timer <= 0)
        if back.any():
            np.copyto(s.x, s.spawn_x, where=back)
            np.copyto(s.y, self.p.spawn_y, where=back)
            np.copyto(s.vx, 0.0, where=back)
            np.copyto(s.vy, 0.0, where=back)
            np.copyto(s.damage, 0.0, where=back)
            np.copyto(s.weapon, P.PUNCH, where=back)
            np.copyto(s.air_jumps, 0, where=back)
            np.copyto(s.air_recoveries, 0, where=back)
            np.copyto(nxt, P.IN_AIR, where=back)

    # --- attack end -----------------------------------------------------------------------
    def end_attacks(self, s: MatchState, inp: Inputs, rows, slot, nxt, floor) -> None:
        """Moves that ended this frame: back to the ground, or to the air with the attack's jump memory."""
        grounded = floor[rows, slot]
        nxt[rows, slot] = np.where(grounded, self.ground_state(inp)[rows, slot], P.IN_AIR)
        air = rows[~grounded]
        s.air_jumps[air, slot] = s.attack_jumps[air, slot]
        s.air_recoveries[air, slot] = s.attack_recoveries[air, slot]
        s.air_jump_timer[air, slot] = 0

    def refresh_view(self, s: MatchState) -> None:
        """The observation's view of the players (``grounded``, ``jumps_left``, ``recoveries_left``)."""
        s.grounded[...] = self.on_floor(s)
        has, jumps = self.jump_memory(s)
        s.jumps_left[...] = np.where(has, jumps, 0)
        s.recoveries_left[...] = self.recovery_memory(s)

    # --- 3. after the rules ------------------------------------------------------------------
    def after_rules(self, s: MatchState, inp: Inputs, who: np.ndarray, nxt: np.ndarray, ev) -> None:
        """Hurtbox, pending knockback and pull, then exit/entry of the state changes, for the players in ``who``."""
        np.copyto(s.hurt_x, s.x, where=who)
        np.copyto(s.hurt_y, s.y, where=who)
        np.copyto(s.vx, s.vx + s.kb_vx + s.pull_vx, where=who)
        np.copyto(s.vy, s.vy + s.kb_vy + s.pull_vy, where=who)
        for field in (s.kb_vx, s.kb_vy, s.pull_vx, s.pull_vy):
            np.copyto(field, 0.0, where=who)
        change = who & (nxt != NONE)
        if not change.any():
            return
        old, new = s.state, nxt
        # Exit: a dodge or a knockout hands the body back to gravity, at rest.
        leave_frozen = change & ((old == P.DODGE) | (old == P.KO))
        self._freeze(s, leave_frozen, gravity_off=False)
        np.copyto(s.move, 0, where=change & (old == P.ATTACK) & (new != P.ATTACK))
        np.copyto(s.pending_stun, 0, where=change)
        np.copyto(s.state, new, where=change)
        p = self.p
        for state, frames in ((P.TURNAROUND, p.turnaround_frames), (P.AIR_TURNAROUND, p.turnaround_frames),
                              (P.DASH, p.dash_frames), (P.BACKDASH, p.backdash_frames), (P.TAUNT, p.taunt_frames),
                              (P.DODGE, p.dodge_frames), (P.KO, p.respawn_frames)):  # fmt: skip
            np.copyto(s.timer, frames, where=change & (new == state))
        np.copyto(s.vx, s.vx / 3, where=change & (new == P.AIR_TURNAROUND))
        frozen = change & ((new == P.DODGE) | (new == P.KO))
        self._freeze(s, frozen, gravity_off=True)
        knocked_out = change & (new == P.KO)
        if knocked_out.any():
            s.stocks[knocked_out] -= 1
            ev.knocked_out |= knocked_out
        attack = change & (new == P.ATTACK) & ~inp.no_h
        np.copyto(s.facing, from_direction(inp.raw_h), where=attack)

    @staticmethod
    def _freeze(s, who, gravity_off: bool) -> None:
        np.copyto(s.vx, 0.0, where=who)
        np.copyto(s.vy, 0.0, where=who)
        np.copyto(s.gravity_off, gravity_off, where=who)
