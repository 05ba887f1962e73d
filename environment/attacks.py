"""Moves in progress: one frame of the current power, hit tests, damage and knockback.

This is the original's ``Power.do_power`` / ``MoveManager.do_move`` /
``Player.apply_damage`` for one attacking player. The original updates player 0
completely before player 1, so a hit lands on the victim's state as it is at
that moment, and player 0's attacks test player 1's hurtbox where player 1's
previous update left it.

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

import math

from environment import params as P
from environment.jit import kernel
from environment.moves import (
    GROUND_PROBE_Y,
    HB_CAP_DX,
    HB_CAP_DY,
    HB_DX,
    HB_DY,
    HB_H,
    HB_HAS_RECT,
    HB_RADIUS,
    HB_RECT_H,
    HB_RECT_LEFT,
    HB_RECT_TOP,
    HB_RECT_W,
    HB_W,
    MOVES,
)
from environment.rules import move_toward, on_floor


@kernel
def _closer(ax, ay, bx, by, limit) -> bool:
    """pygame's ``Vector2.distance_to(...) < limit``, same arithmetic."""
    dx, dy = bx - ax, by - ay
    return math.sqrt(dx * dx + dy * dy) < limit


@kernel
def _circle_meets_rect(cx, cy, r, left, top, right, bottom) -> bool:
    return _closer(cx, cy, max(left, min(cx, right)), max(top, min(cy, bottom)), r)


@kernel
def touches_hurtbox(hx, hy, cx, cy, radius, cap_dx, cap_dy, has_rect, rect_left, rect_top, rect_w, rect_h, K) -> bool:
    """The original's ``hurtbox.intersects(capsule)`` for a hurtbox centred at (hx, hy) and a capsule of the
    given geometry (``moves.capsule_geometry``) centred at (cx, cy)."""
    w1, h1 = K.hurt_w, K.hurt_h
    r1 = min(w1, h1) / 2
    cap1 = h1 / 2 - r1
    # The hurtbox: caps above and below its centre, and a straight part truncated to a single point.
    h1y, h2y = hy - cap1, hy + cap1
    hl, ht = float(int(hx - w1 / 2)), float(int(hy - (h1 / 2 - r1)))
    o1x, o1y = cx - cap_dx, cy - cap_dy
    o2x, o2y = cx + cap_dx, cy + cap_dy
    reach = r1 + radius
    if (
        _closer(hx, h1y, o1x, o1y, reach)
        or _closer(hx, h1y, o2x, o2y, reach)
        or _closer(hx, h2y, o1x, o1y, reach)
        or _closer(hx, h2y, o2x, o2y, reach)
    ):
        return True
    if has_rect:
        ol, ot = float(int(cx - rect_left)), float(int(cy - rect_top))
        orr, ob = ol + rect_w, ot + rect_h
        if _circle_meets_rect(hx, h1y, r1, ol, ot, orr, ob) or _circle_meets_rect(hx, h2y, r1, ol, ot, orr, ob):
            return True
    # (Two truncated rectangles touch only if both have a size; the hurtbox's has none.)
    return _closer(o1x, o1y, hl, ht, radius) or _closer(o2x, o2y, hl, ht, radius)


@kernel
def start_move(p, move_id, first_power, powers) -> None:
    """The original's ``AttackState.give_move``: the move of the player's current weapon."""
    p.move = move_id
    enter_power(p, first_power[p.weapon, move_id], powers)
    p.move_victim = False


@kernel
def enter_power(p, power, powers) -> None:
    p.power = power
    p.cast = powers[power].first_cast
    p.cast_frame = 0
    p.power_frames = 0
    p.recovery_frames = 0
    p.power_hit = False
    p.power_victim = False
    p.switching = True


@kernel
def run_move(p, q, held, px, py, K, powers, casts, hitboxes, events, event_at, move_key, out) -> bool:
    """One frame of player p's move against opponent q; returns whether the move ended.

    ``out`` collects what p dealt: [hit, damage dealt, combo].
    """
    pw = powers[p.power]
    holding = (held >> move_key[p.weapon, p.move]) & 1 == 1
    done = False
    next_power = -1
    if pw.charge and ((not holding and p.power_frames > pw.min_charge) or p.power_frames > pw.max_charge):
        next_power = pw.next_miss
    else:
        done, next_power = _cast_frame(p, q, held, px, py, K, powers, casts, hitboxes, events, event_at, out)
    p.power_frames += 1
    if next_power >= 0:
        enter_power(p, next_power, powers)
    return done


@kernel
def _cast_frame(p, q, held, px, py, K, powers, casts, hitboxes, events, event_at, out):
    pw = powers[p.power]
    c = p.cast
    ca = casts[c]
    frame = p.cast_frame
    ev = event_at[c, frame] if frame < event_at.shape[1] else -1
    pulls = ev >= 0 and events[ev].pull_on
    # A frame with a pull carries no knockback direction (the original zeroes the hit vector).
    dir_x = 0.0 if pulls else ca.dir_x * p.facing
    dir_y = 0.0 if pulls else ca.dir_y
    in_startup = frame < ca.startup
    in_attack = not in_startup and frame < ca.startup + ca.active
    vulnerable = q.state != P.DODGE
    if pw.rehit and p.move_victim and not p.power_victim and vulnerable:
        p.power_victim = True
        _damage(p, q, ca, pw, dir_x, dir_y, px, py, K, out)
    if pw.steerable:
        p.vx = move_toward(p.vx, _axis(held) * K.walk_speed, K.air_ease)
    if pw.floor_drag:
        p.vx = move_toward(p.vx, 0.0, K.air_ease)
    if ev >= 0:
        _event(p, q, events[ev])
    transitioning = False
    next_power = -1
    if in_attack:
        # The first active frame after a cast switch skips the ground probe; only the last probe counts.
        if p.switching:
            p.switching = False
        elif ca.has_probe and p.y + ca.probe_dy > GROUND_PROBE_Y:
            transitioning = True
            next_power = pw.next_ground if pw.next_ground != -1 else pw.next_miss
        if ca.n_hitboxes > 0 and _hits(p, q, c, ca.n_hitboxes, hitboxes, K) and vulnerable:
            if not p.power_hit and pw.vel_on_hit:
                p.vx, p.vy = pw.vel_on_hit_x, pw.vel_on_hit_y
            p.power_hit = True
            if not p.power_victim:
                p.power_victim = True
                _damage(p, q, ca, pw, dir_x, dir_y, px, py, K, out)
            p.move_victim = True
            if pw.instant:
                next_power = pw.next_hit if pw.next_hit != -1 else pw.next_miss
        if ca.last_cast and pw.last_power:
            p.recovery_frames += 1
    p.cast_frame = frame + 1
    done = False
    if not transitioning and not in_attack and not in_startup:
        if ca.last_cast:
            if p.recovery_frames >= pw.recovery:
                if pw.last_power:
                    done = True
                else:
                    next_power = pw.next_hit if (p.power_hit and pw.next_hit != -1) else pw.next_miss
            else:
                p.recovery_frames += 1
        else:
            p.cast = c + 1
            p.cast_frame = 0
            p.switching = True
    return done, next_power


@kernel
def _axis(held) -> float:
    return (1.0 if (held >> P.K_D) & 1 else 0.0) + (-1.0 if (held >> P.K_A) & 1 else 0.0)


@kernel
def _event(p, q, e) -> None:
    """The frame's event, in the original's order: pull, polar set, scale, set, add, victims' set, teleport."""
    f = p.facing
    x, y = p.x, p.y
    victim = p.move_victim  # with one opponent, "the move's victims" and "its first victim" are one player
    if e.pull_on and victim:
        q.pull_vx = e.pull_gain * ((x + e.pull_dx * f) - q.x)
        q.pull_vy = e.pull_gain * ((y + e.pull_dy) - q.y)
    if e.polar_on:
        p.vx, p.vy = e.polar_x * f, e.polar_y
    if e.scale_x_on:
        p.vx = p.vx * e.scale_x
    if e.scale_y_on:
        p.vy = p.vy * e.scale_y
    if e.set_x_on:
        p.vx = e.set_x * f
    if e.set_y_on:
        p.vy = e.set_y
    if e.add_x_on:
        p.vx = p.vx + e.add_x * f
    if e.add_y_on:
        p.vy = p.vy + e.add_y
    if victim:
        if e.victim_set_x_on:
            q.vx = e.victim_set_x * f
        if e.victim_set_y_on:
            q.vy = e.victim_set_y
        if e.victim_pos_x_on:
            q.x = x + e.victim_pos_x * f
        if e.victim_pos_y_on:
            q.y = y + e.victim_pos_y


@kernel
def _hits(p, q, c, count, hitboxes, K) -> bool:
    """Does any hitbox of cast c touch q's hurtbox (where q's last update placed it)?"""
    for h in range(count):
        b = hitboxes[c, h]
        cx = p.x + b[HB_DX] * p.facing
        cy = p.y + b[HB_DY]
        if touches_hurtbox(
            q.hurt_x,
            q.hurt_y,
            cx,
            cy,
            b[HB_RADIUS],
            b[HB_CAP_DX],
            b[HB_CAP_DY],
            b[HB_HAS_RECT] != 0,
            b[HB_RECT_LEFT],
            b[HB_RECT_TOP],
            b[HB_RECT_W],
            b[HB_RECT_H],
            K,
        ):
            return True
    return False


@kernel
def _damage(p, q, ca, pw, dir_x, dir_y, px, py, K, out) -> None:
    """The original's ``apply_damage`` on q: damage, stun, and knockback added at q's next update."""
    dmg = ca.damage
    before = q.damage
    X = before + dmg
    force = ca.force_fixed + ca.force_var * (X / 70 + (X**2) / 12000)
    after = min(K.max_damage, before + dmg)
    q.damage = after
    q.damage_taken_frame += dmg
    q.pending_stun = pw.stun
    kx, ky = dir_x * force, dir_y * force
    if on_floor(q.x, q.y, px, py, K) and ky > 0:
        ky = -ky * K.bounce
    q.kb_vx = kx * K.knockback_scale
    q.kb_vy = ky * K.knockback_scale
    out[0] = 1.0
    out[1] += after - before
    if q.state == P.STUN:
        out[2] = 1.0


def live_hitboxes(state, row: int, slot: int) -> list[tuple[float, float, float, float]]:
    """World (centre x, centre y, w, h) of each hitbox player ``slot`` of match ``row`` had live in the frame just
    run (empty unless it is attacking in an active window). For drawing; the engine tests them as capsules."""
    if int(state.state[row, slot]) != P.ATTACK or int(state.cast_frame[row, slot]) == 0:
        return []
    c, frame = int(state.cast[row, slot]), int(state.cast_frame[row, slot]) - 1
    cast = MOVES.casts[c]
    if not int(cast["startup"]) <= frame < int(cast["startup"]) + int(cast["active"]):
        return []
    x, y, facing = float(state.x[row, slot]), float(state.y[row, slot]), float(state.facing[row, slot])
    boxes = MOVES.hitboxes[c, : int(cast["n_hitboxes"])]
    return [(x + b[HB_DX] * facing, y + b[HB_DY], b[HB_W], b[HB_H]) for b in boxes]
