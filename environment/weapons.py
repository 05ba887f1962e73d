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
from environment.attacks import touches_hurtbox
from environment.jit import kernel
from environment.moves import capsule_geometry
from environment.physics import fat_box, forget_contacts
from environment.state import N_SPAWNERS

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)


@kernel
def draw(match, K) -> float:
    """One U[0, 1) draw from the match's splitmix64 stream (the twin of ``state.draw_uniform``)."""
    if K.fixed_weapon_draws:
        return 0.0
    z = match.rng + _GOLDEN
    match.rng = z
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    z = z ^ (z >> _S31)
    return float(z >> _S11) * (1.0 / 9007199254740992.0)


@kernel
def draw_int(match, low, high, K) -> int:
    """An integer in [low, high], like Python's randint."""
    return low + int(np.floor(draw(match, K) * (high - low + 1)))


@kernel
def step_weapons(
    pl, match, weapons, spawners, contacts, held, pressed, equip, dropped_now, pickup_geom, dropped_geom, K
) -> None:
    """Drops, pickups and spawner updates of one match, after the physics step and the frame count's increment.

    :param equip: (2,) weapon each player picked up this frame (output)
    :param dropped_now: (2,) whether each player dropped its weapon (output)
    """
    for i in range(2):
        p = pl[i]
        if p.state != P.ATTACK and (pressed[i] >> P.K_PICKUP) & 1 and p.weapon != P.PUNCH:
            _drop(p, match, weapons, contacts, K)
            dropped_now[i] = True
    taken_dropped = False
    if ((held[0] | held[1] | pressed[0] | pressed[1]) >> P.K_PICKUP) & 1:
        taken_dropped = _pick_up(pl, match, weapons, spawners, held, pressed, equip, pickup_geom, dropped_geom, K)
    _update_spawners(match, weapons, spawners, contacts, taken_dropped, K)


@kernel
def _drop(p, match, weapons, contacts, K) -> None:
    col = _free_dropped_column(weapons)
    w = weapons[col]
    x, y = p.x + K.drop_dx * p.facing, p.y + K.drop_dy
    w.weapon_kind = p.weapon
    w.weapon_home_x, w.weapon_home_y = x, y
    w.weapon_born = match.frame
    _new_body(w, contacts[2 + col], x, y, K)
    match.drops += 1
    w.weapon_order = match.drops
    p.pickup_lock = match.frame + int(K.repickup_lock)
    p.weapon = P.PUNCH


@kernel
def _free_dropped_column(weapons) -> int:
    """An empty dropped-weapon column; when all are taken (vanishingly rare) the oldest drop is replaced."""
    oldest = -1
    for col in range(N_SPAWNERS, weapons.shape[0]):
        if weapons[col].weapon_kind == 0:
            return col
        if oldest < 0 or weapons[col].weapon_order < weapons[oldest].weapon_order:
            oldest = col
    return oldest


@kernel
def _new_body(w, memory, x, y, K) -> None:
    """A weapon body enters the physics engine at rest at (x, y), with no contacts and a fresh broad-phase box."""
    w.weapon_x = w.weapon_seen_x = x
    w.weapon_y = w.weapon_seen_y = y
    w.weapon_vx = w.weapon_vy = w.weapon_bias_vx = w.weapon_bias_vy = 0.0
    box = fat_box(x, y, 0.0, 0.0, K.weapon_hw, K.weapon_hh)
    w.weapon_fat_left, w.weapon_fat_top, w.weapon_fat_right, w.weapon_fat_bottom = box
    w.weapon_reinserted_at = w.weapon_born  # a new body is inserted into the broad phase
    forget_contacts(memory)


@kernel
def _next_by_age(weapons, after) -> int:
    """The dropped weapon dropped next after drop number ``after`` (-1 none): dropped weapons oldest first."""
    best = -1
    for col in range(N_SPAWNERS, weapons.shape[0]):
        w = weapons[col]
        if w.weapon_kind > 0 and w.weapon_order > after and (best < 0 or w.weapon_order < weapons[best].weapon_order):
            best = col
    return best


@kernel
def _pick_up(pl, match, weapons, spawners, held, pressed, equip, pickup_geom, dropped_geom, K) -> bool:
    """Pickups in the original's order; returns whether a dropped weapon was taken (it still counts as
    listed during this frame's spawner updates)."""
    taken_dropped = False
    for col in range(N_SPAWNERS):
        _offer(pl, match, weapons[col], spawners[col], True, held, pressed, equip, pickup_geom, K)
    order = 0
    col = _next_by_age(weapons, order)
    while col >= 0:
        order = weapons[col].weapon_order
        taken_dropped |= _offer(pl, match, weapons[col], spawners[0], False, held, pressed, equip, dropped_geom, K)
        col = _next_by_age(weapons, order)
    return taken_dropped


@kernel
def _offer(pl, match, w, sp, spawner, held, pressed, equip, geom, K) -> bool:
    """Player 0, then player 1, may take weapon w (a spawner's, or a dropped one); returns whether it was taken."""
    for i in range(2):
        p = pl[i]
        if w.weapon_kind == 0 or p.weapon != P.PUNCH or p.state == P.ATTACK:
            continue
        if spawner:
            if not (sp.spawner_ready and ((held[i] | pressed[i]) >> P.K_PICKUP) & 1):
                continue
        elif not ((pressed[i] >> P.K_PICKUP) & 1 and match.frame >= p.pickup_lock):
            continue
        if not touches_hurtbox(
            p.hurt_x,
            p.hurt_y,
            w.weapon_seen_x,
            w.weapon_seen_y,
            geom[0],
            geom[1],
            geom[2],
            geom[3] != 0,
            geom[4],
            geom[5],
            geom[6],
            geom[7],
            K,
        ):
            continue
        p.weapon = w.weapon_kind
        equip[i] = w.weapon_kind
        w.weapon_kind = 0
        if spawner:
            sp.spawner_last_spawn = match.frame
            _redraw_cooldown(sp, match, K)
        return True
    return False


@kernel
def _redraw_cooldown(sp, match, K) -> None:
    base = sp.spawner_base_cooldown
    sp.spawner_cooldown = draw_int(match, int(base * K.reroll_lo), int(base * K.reroll_hi), K)


@kernel
def _update_spawners(match, weapons, spawners, contacts, taken_dropped, K) -> None:
    now = match.frame
    dropped_listed = taken_dropped
    for col in range(N_SPAWNERS, weapons.shape[0]):
        dropped_listed |= weapons[col].weapon_kind > 0
    for col in range(N_SPAWNERS):
        w, sp = weapons[col], spawners[col]
        since = now - sp.spawner_last_spawn
        if w.weapon_kind > 0:
            if since >= K.spawn_animation_frames:
                sp.spawner_ready = True
            if now - w.weapon_born > K.spawned_lifetime:
                w.weapon_kind = 0
                _redraw_cooldown(sp, match, K)
        elif since >= sp.spawner_cooldown and not dropped_listed:
            _spawn(col, w, sp, match, contacts, K)
    for col in range(N_SPAWNERS, weapons.shape[0]):
        w = weapons[col]
        if w.weapon_kind > 0 and now - w.weapon_born >= K.dropped_lifetime:
            w.weapon_kind = 0


@kernel
def _spawn(col, w, sp, match, contacts, K) -> None:
    if col == 0:
        x0, x1, y = K.right_spawner_x0, K.right_spawner_x1, K.right_spawner_y
    else:
        x0, x1, y = K.left_spawner_x0, K.left_spawner_x1, K.left_spawner_y
    x = x0 + draw(match, K) * (x1 - x0)
    w.weapon_kind = P.SPEAR if draw(match, K) < 0.5 else P.HAMMER
    w.weapon_home_x, w.weapon_home_y = x, y
    w.weapon_born = match.frame
    _new_body(w, contacts[2 + col], x, y, K)
    sp.spawner_last_spawn = match.frame
    sp.spawner_ready = False


def pickup_geometries(p: P.GameParams) -> tuple[np.ndarray, np.ndarray]:
    """Capsule geometry (``moves.capsule_geometry``) of a spawner's and of a dropped weapon's pickup area."""
    return np.array(capsule_geometry(*p.pickup_size)), np.array(capsule_geometry(*p.dropped_pickup_size))


@kernel
def reset_spawners(match, weapons, spawners, K) -> None:
    """A new match: no weapons; each spawner draws its cooldown and starts that long minus up to 350 frames
    before frame 0 (so the first weapons appear within the first 350 frames)."""
    for col in range(weapons.shape[0]):
        weapons[col].weapon_kind = 0
    for col in range(N_SPAWNERS):
        sp = spawners[col]
        cooldown = draw_int(match, int(K.cooldown_lo), int(K.cooldown_hi), K)
        sp.spawner_cooldown = sp.spawner_base_cooldown = cooldown
        sp.spawner_last_spawn = -(cooldown - draw_int(match, 0, int(K.first_spawn_head_start), K))
        sp.spawner_ready = False
