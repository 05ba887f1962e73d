"""Moves in progress: one frame of the current power, hit tests, damage and knockback.

This is the original's ``Power.do_power`` / ``MoveManager.do_move`` /
``Player.apply_damage``, run for the players of ONE slot at a time on the rows
that are attacking (the original updates player 0 completely before player 1,
and a hit lands on the victim's state as it is at that moment).

One frame of a power, in the original's order:
1. A charge power switches to its next power when the move's key is released
   after ``min_charge`` frames, or after ``max_charge`` frames; that frame does
   nothing else.
2. Otherwise the current cast runs its frame: re-hits on earlier victims
   (``rehit``), steering, floor drag, the frame's event (velocity changes,
   pulls, teleports), then, in its active window, the ground probe and the
   hitbox test against the opponent's hurtbox, then recovery bookkeeping and
   the switch to the next cast or power.

Hit shapes are the original's capsules, including its quirk: the straight part
of each capsule is a ``pygame.Rect``, whose coordinates are truncated to
integers, so the rectangle part snaps to a 1-unit grid (the hurtbox's becomes a
single point) and some hits depend on where on the stage they happen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from environment import params as P
from environment.moves import GROUND_PROBE_Y, MOVES, MoveTables, to_world
from environment.params import GameParams
from environment.state import MatchState


@dataclass(frozen=True)
class Capsules:
    """Capsule geometry as the original's ``CapsuleCollider`` builds it, for an array of (w, h)."""

    radius: np.ndarray
    cap_dx: np.ndarray  # the two cap centres sit at the centre ± (cap_dx, cap_dy)
    cap_dy: np.ndarray
    has_rect: np.ndarray  # not a circle (a circle has no straight part)
    rect_left: np.ndarray  # Rect(cx - rect_left, cy - rect_top, rect_w, rect_h), each truncated by pygame
    rect_top: np.ndarray
    rect_w: np.ndarray  # already truncated
    rect_h: np.ndarray


def capsules(w, h) -> Capsules:
    w, h = np.asarray(w, np.float64), np.asarray(h, np.float64)
    radius = np.minimum(w, h) / 2
    vertical, circle = w < h, w == h
    return Capsules(
        radius=radius,
        cap_dx=np.where(vertical | circle, 0.0, w / 2 - radius),
        cap_dy=np.where(vertical, h / 2 - radius, 0.0),
        has_rect=~circle,
        rect_left=np.where(vertical, w / 2, w / 2 - radius),
        rect_top=np.where(vertical, h / 2 - radius, h / 2),
        rect_w=np.trunc(np.where(vertical, w, w - 2 * radius)),
        rect_h=np.trunc(np.where(vertical, h - 2 * radius, h)),
    )


@dataclass(frozen=True)
class Hurtbox:
    """The players' hurtbox: an upright capsule whose straight part truncates to a single point."""

    radius: float
    cap_dy: float
    rect_left: float
    rect_top: float


def hurtbox(p: GameParams) -> Hurtbox:
    c = capsules(to_world(p.hurt_w_raw), to_world(p.hurt_h_raw))
    if not (c.cap_dx == 0 and c.has_rect and c.rect_w == 0 and c.rect_h == 0):
        raise ValueError("the hurtbox is expected to be an upright capsule whose straight part truncates to a point")
    return Hurtbox(float(c.radius), float(c.cap_dy), float(c.rect_left), float(c.rect_top))


def _closer(ax, ay, bx, by, limit) -> np.ndarray:
    """pygame's ``Vector2.distance_to(...) < limit``, same arithmetic."""
    dx, dy = bx - ax, by - ay
    return np.sqrt(dx * dx + dy * dy) < limit


def _circle_meets_rect(cx, cy, r, left, top, right, bottom) -> np.ndarray:
    return _closer(cx, cy, np.maximum(left, np.minimum(cx, right)), np.maximum(top, np.minimum(cy, bottom)), r)


def touches_hurtbox(hb: Hurtbox, hx, hy, c: Capsules, cx, cy) -> np.ndarray:
    """The original's ``hurtbox.intersects(capsule)``: hurtbox centres (hx, hy) against capsules of geometry
    ``c`` centred at (cx, cy); all arguments broadcast together."""
    r1, r2 = hb.radius, c.radius
    # The hurtbox: caps above and below its centre, and a straight part truncated to a point.
    h1y, h2y = hy - hb.cap_dy, hy + hb.cap_dy
    hl, ht = np.trunc(hx - hb.rect_left), np.trunc(hy - hb.rect_top)
    o1x, o1y = cx - c.cap_dx, cy - c.cap_dy
    o2x, o2y = cx + c.cap_dx, cy + c.cap_dy
    reach = r1 + r2
    hit = (_closer(hx, h1y, o1x, o1y, reach) | _closer(hx, h1y, o2x, o2y, reach)
           | _closer(hx, h2y, o1x, o1y, reach) | _closer(hx, h2y, o2x, o2y, reach)
           | _closer(o1x, o1y, hl, ht, r2) | _closer(o2x, o2y, hl, ht, r2))  # fmt: skip
    if np.any(c.has_rect):
        ol, ot = np.trunc(cx - c.rect_left), np.trunc(cy - c.rect_top)
        orr, ob = ol + c.rect_w, ot + c.rect_h
        straight = _circle_meets_rect(hx, h1y, r1, ol, ot, orr, ob) | _circle_meets_rect(hx, h2y, r1, ol, ot, orr, ob)
        hit |= c.has_rect & straight
    return hit


def move_toward(current, target, delta):
    """Godot's move_toward for delta >= 0: step toward target without overshooting."""
    return np.where(current < target, np.minimum(current + delta, target), np.maximum(current - delta, target))


class AttackRunner:
    """Runs one frame of the moves of one slot's attacking players (see the module docstring)."""

    def __init__(self, p: GameParams, on_floor):
        """:param on_floor: ``on_floor(state, rows, slot) -> bool[rows]``, the original's ``is_on_floor``"""
        self.p = p
        self.on_floor = on_floor
        self.m = MOVES
        self.hitboxes = capsules(MOVES.hitbox[..., 2], MOVES.hitbox[..., 3])
        self.hurtbox = hurtbox(p)
        self.kb_scale = p.knockback_scale

    def start(self, s: MatchState, rows, slots, move_id) -> None:
        """Give the listed players a new move (the original's ``AttackState.give_move``)."""
        power = self.m.first_power[s.weapon[rows, slots], move_id]
        s.move[rows, slots] = move_id
        self._enter_power(s, rows, slots, power)
        s.move_victim[rows, slots] = False

    def _enter_power(self, s: MatchState, rows, slots, power) -> None:
        s.power[rows, slots] = power
        s.cast[rows, slots] = self.m.first_cast[power]
        s.cast_frame[rows, slots] = 0
        s.power_frames[rows, slots] = 0
        s.recovery_frames[rows, slots] = 0
        s.power_hit[rows, slots] = False
        s.power_victim[rows, slots] = False
        s.switching[rows, slots] = True

    # ------------------------------------------------------------------------------
    def run(self, s: MatchState, rows: np.ndarray, k: int, held: np.ndarray, raw_h: np.ndarray,
            victim_vulnerable: np.ndarray, ev) -> np.ndarray:
        """One frame of the moves of player ``k`` in ``rows``; returns which moves ended (done)."""
        m, o = self.m, 1 - k
        power, cast, frame = s.power[rows, k], s.cast[rows, k], s.cast_frame[rows, k]
        holding = held[rows, k, m.move_key[s.weapon[rows, k], s.move[rows, k]]]
        power_frames = s.power_frames[rows, k]
        release = m.charge[power] & ((~holding & (power_frames > m.min_charge[power]))
                                     | (power_frames > m.max_charge[power]))  # fmt: skip
        next_power = np.where(release, m.next_miss[power], -1).astype(np.int16)
        done = np.zeros(rows.size, bool)
        go = ~release
        if go.any():
            self._cast_frame(s, rows[go], k, o, power[go], cast[go], frame[go], raw_h, victim_vulnerable[go],
                             next_power, done, go, ev)  # fmt: skip
        s.power_frames[rows, k] += 1
        switch = next_power >= 0
        if switch.any():
            self._enter_power(s, rows[switch], k, next_power[switch])
        return done

    def _cast_frame(self, s, rows, k, o, power, cast, frame, raw_h, vulnerable, next_power, done, go, ev) -> None:
        m = self.m
        facing = s.facing[rows, k]
        event = np.full(rows.size, -1, np.int16)
        in_table = frame < m.event_at.shape[1]
        event[in_table] = m.event_at[cast[in_table], frame[in_table]]
        has_event = event >= 0
        pulls = has_event & m.pull_on[np.maximum(event, 0)]
        # A frame with a pull carries no knockback direction (the original zeroes the hit vector).
        dir_x = np.where(pulls, 0.0, m.hit_dir[cast, 0] * facing)
        dir_y = np.where(pulls, 0.0, m.hit_dir[cast, 1])
        startup, active = m.startup[cast], m.active[cast]
        in_startup = frame < startup
        in_attack = ~in_startup & (frame < startup + active)
        rehit = m.rehit[power] & s.move_victim[rows, k] & ~s.power_victim[rows, k] & vulnerable
        if rehit.any():
            s.power_victim[rows[rehit], k] = True
            self._damage(s, rows[rehit], k, cast[rehit], power[rehit], dir_x[rehit], dir_y[rehit], ev)
        steer = m.steerable[power]
        if steer.any():
            r = rows[steer]
            s.vx[r, k] = move_toward(s.vx[r, k], raw_h[r, k] * self.p.walk_speed, self.p.air_ease)
        drag = m.floor_drag[power]
        if drag.any():
            r = rows[drag]
            s.vx[r, k] = move_toward(s.vx[r, k], 0.0, self.p.air_ease)
        if has_event.any():
            self._events(s, rows[has_event], k, o, event[has_event], power[has_event], pulls[has_event])
        transitioning = np.zeros(rows.size, bool)
        idx = np.flatnonzero(go)
        if in_attack.any():
            self._active_frame(s, rows, k, o, power, cast, in_attack, dir_x, dir_y, vulnerable, transitioning,
                               next_power, idx, ev)  # fmt: skip
        s.cast_frame[rows, k] = frame + 1
        recovering = ~transitioning & ~in_attack & ~in_startup
        if recovering.any():
            self._recovery(s, rows, k, power, cast, recovering, next_power, done, idx)

    def _events(self, s, rows, k, o, event, power, pulls) -> None:
        """The frame's event, in the original's order: pull, polar set, scale, set, add, victims' set, teleport."""
        m = self.m
        facing = s.facing[rows, k]
        x, y = s.x[rows, k], s.y[rows, k]
        if pulls.any():
            # The move's victims (pull_all) or its first victim: with one opponent, the same player.
            victims = s.move_victim[rows, k] & pulls
            if victims.any():
                r, e = rows[victims], event[victims]
                f = facing[victims]
                gain = m.pull[e, 2]
                s.pull_vx[r, o] = gain * ((x[victims] + m.pull[e, 0] * f) - s.x[r, o])
                s.pull_vy[r, o] = gain * ((y[victims] + m.pull[e, 1]) - s.y[r, o])
        vx, vy = s.vx[rows, k], s.vy[rows, k]
        polar = m.polar_on[event]
        vx = np.where(polar, m.polar[event, 0] * facing, vx)
        vy = np.where(polar, m.polar[event, 1], vy)
        vx = np.where(m.scale_on[event, 0], vx * m.scale[event, 0], vx)
        vy = np.where(m.scale_on[event, 1], vy * m.scale[event, 1], vy)
        vx = np.where(m.set_on[event, 0], m.set_v[event, 0] * facing, vx)
        vy = np.where(m.set_on[event, 1], m.set_v[event, 1], vy)
        vx = np.where(m.add_on[event, 0], vx + m.add_v[event, 0] * facing, vx)
        vy = np.where(m.add_on[event, 1], vy + m.add_v[event, 1], vy)
        s.vx[rows, k], s.vy[rows, k] = vx, vy
        victims = s.move_victim[rows, k] & (m.victim_set_on[event].any(axis=1) | m.victim_pos_on[event].any(axis=1))
        if victims.any():
            r, e, f = rows[victims], event[victims], facing[victims]
            set_x, set_y = m.victim_set_on[e, 0], m.victim_set_on[e, 1]
            s.vx[r, o] = np.where(set_x, m.victim_set_v[e, 0] * f, s.vx[r, o])
            s.vy[r, o] = np.where(set_y, m.victim_set_v[e, 1], s.vy[r, o])
            pos_x, pos_y = m.victim_pos_on[e, 0], m.victim_pos_on[e, 1]
            s.x[r, o] = np.where(pos_x, x[victims] + m.victim_pos[e, 0] * f, s.x[r, o])
            s.y[r, o] = np.where(pos_y, y[victims] + m.victim_pos[e, 1], s.y[r, o])

    def _active_frame(self, s, rows, k, o, power, cast, in_attack, dir_x, dir_y, vulnerable, transitioning,
                      next_power, idx, ev) -> None:
        m = self.m
        a = np.flatnonzero(in_attack)
        r, pw, ca = rows[a], power[a], cast[a]
        # The first active frame after a cast switch skips the ground probe; only the last probe counts.
        switching = s.switching[r, k]
        s.switching[r, k] = False
        probed = ~switching & m.has_probe[ca] & (s.y[r, k] + m.probe_dy[ca] > GROUND_PROBE_Y)
        if probed.any():
            transitioning[a[probed]] = True
            to = np.where(m.next_ground[pw] != -1, m.next_ground[pw], m.next_miss[pw])
            next_power[idx[a[probed]]] = to[probed]
        facing = s.facing[r, k]
        box = m.hitbox[ca]
        cx = s.x[r, k][:, None] + box[..., 0] * facing[:, None]
        cy = s.y[r, k][:, None] + box[..., 1]
        geometry = Capsules(*(getattr(self.hitboxes, f)[ca] for f in Capsules.__dataclass_fields__))
        touch = touches_hurtbox(self.hurtbox, s.hurt_x[r, o][:, None], s.hurt_y[r, o][:, None], geometry, cx, cy)
        hit = (touch & m.hitbox_valid[ca]).any(axis=1) & vulnerable[a]
        if hit.any():
            h = np.flatnonzero(hit)
            rh, ph = r[h], pw[h]
            first = ~s.power_hit[rh, k] & m.vel_on_hit[ph]
            if first.any():
                s.vx[rh[first], k] = m.vel_on_hit_xy[ph[first], 0]
                s.vy[rh[first], k] = m.vel_on_hit_xy[ph[first], 1]
            s.power_hit[rh, k] = True
            fresh = ~s.power_victim[rh, k]
            if fresh.any():
                rf = rh[fresh]
                s.power_victim[rf, k] = True
                hf = a[h[fresh]]
                self._damage(s, rf, k, cast[hf], power[hf], dir_x[hf], dir_y[hf], ev)
            s.move_victim[rh, k] = True
            instant = m.instant[ph]
            if instant.any():
                to = np.where(m.next_hit[ph] != -1, m.next_hit[ph], m.next_miss[ph])
                sel = h[instant]
                next_power[idx[a[sel]]] = to[instant]
        last = m.last_cast[ca] & m.last_power[pw]
        if last.any():
            s.recovery_frames[r[last], k] += 1

    def _recovery(self, s, rows, k, power, cast, recovering, next_power, done, idx) -> None:
        m = self.m
        c = np.flatnonzero(recovering)
        r, pw, ca = rows[c], power[c], cast[c]
        last_cast = m.last_cast[ca]
        over = last_cast & (s.recovery_frames[r, k] >= m.recovery[pw])
        ends = over & m.last_power[pw]
        done[idx[c[ends]]] = True
        branch = over & ~m.last_power[pw]
        if branch.any():
            hit = s.power_hit[r, k] & (m.next_hit[pw] != -1)
            to = np.where(hit, m.next_hit[pw], m.next_miss[pw])
            next_power[idx[c[branch]]] = to[branch]
        counting = last_cast & ~over
        s.recovery_frames[r[counting], k] += 1
        following = ~last_cast
        if following.any():
            rf = r[following]
            s.cast[rf, k] = ca[following] + 1
            s.cast_frame[rf, k] = 0
            s.switching[rf, k] = True

    def _damage(self, s, rows, k, cast, power, dir_x, dir_y, ev) -> None:
        """The original's ``apply_damage`` on the opponent of player ``k`` in ``rows``."""
        m, o = self.m, 1 - k
        dmg = m.damage[cast]
        before = s.damage[rows, o]
        X = before + dmg
        force = m.force_fixed[cast] + m.force_var[cast] * (X / 70 + (X**2) / 12000)
        after = np.minimum(self.p.max_damage, before + dmg)
        s.damage[rows, o] = after
        s.damage_taken_frame[rows, o] += dmg
        s.pending_stun[rows, o] = m.stun[power]
        kx, ky = dir_x * force, dir_y * force
        victim_on_floor = self.on_floor(s, rows, o)
        ky = np.where(victim_on_floor & (ky > 0), -ky * self.p.bounce, ky)
        s.kb_vx[rows, o] = kx * self.kb_scale
        s.kb_vy[rows, o] = ky * self.kb_scale
        ev.hit[rows, k] = True
        ev.damage_dealt[rows, k] += after - before
        ev.combo[rows, k] |= s.state[rows, o] == P.STUN
