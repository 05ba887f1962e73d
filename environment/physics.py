"""The original's physics step (one pymunk ``space.step``), for axis-aligned boxes.

The tournament's engine moves players and weapons with the pymunk physics engine:
every body is a box that never turns (its moment of inertia is huge), the two
grounds are static boxes and the moving platform is a kinematic box. For that
case pymunk's step comes down to these rules, applied here to all bodies at once:

1. **Positions first**: ``p += (v + v_bias) * dt`` with the velocity the game
   logic left (so a frame's move uses the velocity from before its gravity);
   the position-correction velocity ``v_bias`` is then spent.
2. **Contacts** are found at the new positions: a body touching or overlapping
   a solid is pushed along the axis of least penetration (pymunk's result for
   two boxes). Each (body, solid) pair is pymunk's *arbiter*.
3. **Velocities**: ``v += g * dt`` (not while dodging or knocked out).
4. **Contact impulses**: pymunk's sequential-impulse solver. Per arbiter it
   removes the approaching part of the relative normal velocity, removes up to
   ``friction × normal impulse`` of the sliding velocity, and, where a body is
   deeper than the collision slop, sets ``v_bias`` to push out a share of the
   excess at the next step. Nothing bounces (every elasticity product is 0).

With one arbiter the solver's answer has a closed form, used for almost every
body. Two things need pymunk's memory of the impulses it applied, kept per
arbiter (``contact_*`` fields): a body touching two solids at once (a ground
and the platform), where the 10 solver passes do not converge and the result
depends on the order and on the impulses carried over from the last step; and
a contact that resumes within two steps of ending, which starts from its old
impulses without applying them (so it can briefly pull the body back).

A resting player therefore sinks into the ground by however far its last fall
step overshot (up to the slop), as in the original: it stands at y = 0.4155 on
the right ground, not 0.35.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from environment.params import DT, GameParams

SOLVER_PASSES = 10  # pymunk's default iteration count
PERSISTENCE = 3  # steps an arbiter is remembered after its last contact (pymunk's default)
# Outward normal and tangent of each way out of a solid: push up, down, left, right.
_NX = np.array([0.0, 0.0, -1.0, 1.0])
_NY = np.array([-1.0, 1.0, 0.0, 0.0])
N_SOLIDS = 3  # right ground, left ground, platform
# pymunk solves a body's arbiters in the order its broad phase (a bounding-box tree) finds them, which
# depends on the tree's history. What that history mostly comes down to: a body whose box left its
# "fattened" box this step is re-inserted and meets the grounds first; otherwise the platform usually
# comes first. Measured on the original over 30 matches (239 player frames touching two solids), this
# rule picks pymunk's order 77% of the time; a fixed order picks it 70% of the time at best.
GROUND_FIRST, PLATFORM_FIRST = (0, 1, 2), (2, 0, 1)
FAT_MARGIN = 0.1  # the tree fattens a box by 10% of its size, or by 0.1 s of its velocity if more


@dataclass(frozen=True)
class Solids:
    """The stage's boxes and the solver's constants."""

    x_min: np.ndarray  # (2,) the grounds
    x_max: np.ndarray
    y_min: np.ndarray
    y_max: np.ndarray
    platform_half: tuple[float, float]
    gravity_step: float
    bias_coef: float
    slop: float


def build_solids(p: GameParams) -> Solids:
    grounds = np.array([p.right_ground, p.left_ground])
    return Solids(
        x_min=grounds[:, 0], x_max=grounds[:, 1], y_min=grounds[:, 2], y_max=grounds[:, 3],
        platform_half=(p.platform_size[0] / 2, p.platform_size[1] / 2),
        gravity_step=p.gravity * DT,
        bias_coef=1.0 - p.collision_bias**DT,
        slop=p.collision_slop,
    )  # fmt: skip


@dataclass
class Bodies:
    """Views of one kind of body (players or weapons): arrays of the same shape, arbiter memories with a
    trailing axis of N_SOLIDS."""

    x: np.ndarray
    y: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    bias_vx: np.ndarray
    bias_vy: np.ndarray
    way: np.ndarray  # (..., 3) way out of each solid at the last contact, -1 none
    age: np.ndarray  # (..., 3) steps since the last contact (0: touching at the last step)
    jn: np.ndarray  # (..., 3) accumulated normal impulse of each arbiter at its last contact
    jt: np.ndarray  # (..., 3) accumulated friction impulse
    fat: np.ndarray  # (..., 4) the broad phase's fattened box (left, top, right, bottom)


def integrate_positions(b: Bodies, half_w: float, half_h: float) -> np.ndarray:
    """Rule 1, in place. Returns which bodies the broad phase re-inserts this step (their box left its
    fattened box, which is then rebuilt around the new box and the velocity)."""
    b.x += (b.vx + b.bias_vx) * DT
    b.y += (b.vy + b.bias_vy) * DT
    b.bias_vx[...] = 0.0
    b.bias_vy[...] = 0.0
    left, right, top, bottom = b.x - half_w, b.x + half_w, b.y - half_h, b.y + half_h
    fat = b.fat
    moved = (left < fat[..., 0]) | (top < fat[..., 1]) | (right > fat[..., 2]) | (bottom > fat[..., 3])
    if moved.any():
        refit(b, half_w, half_h, moved)
    return moved


def refit(b: Bodies, half_w: float, half_h: float, where) -> None:
    """The broad phase's fattened box around the body's current box and velocity (pymunk's GetBB)."""
    mx, my = 2 * half_w * FAT_MARGIN, 2 * half_h * FAT_MARGIN
    vx, vy = b.vx * FAT_MARGIN, b.vy * FAT_MARGIN
    box = np.stack([b.x - half_w + np.minimum(-mx, vx), b.y - half_h + np.minimum(-my, vy),
                    b.x + half_w + np.maximum(mx, vx), b.y + half_h + np.maximum(my, vy)], axis=-1)  # fmt: skip
    np.copyto(b.fat, box, where=np.asarray(where)[..., None])


def apply_gravity(vy: np.ndarray, gravity_off: np.ndarray | None, solids: Solids) -> None:
    """Rule 3: ``vy = vy * 1 + g * dt`` for bodies that feel gravity."""
    if gravity_off is None:
        vy += solids.gravity_step
    else:
        vy += np.where(gravity_off, 0.0, solids.gravity_step)


def solve_contacts(b: Bodies, half_w: float, half_h: float, friction: np.ndarray, solids: Solids,
                   platform: tuple, reinserted: np.ndarray) -> None:
    """Rules 2 and 4 for bodies whose rules 1 and 3 already ran.

    :param friction: (3,) friction product against each solid
    :param platform: (x, y, vx, vy) of the platform after its own move, each broadcastable to ``b.x``
    :param reinserted: bodies the broad phase re-inserted this step (see GROUND_FIRST)
    """
    px, py, pvx, pvy = (np.broadcast_to(a, b.x.shape) for a in platform)
    hw, hh = solids.platform_half
    x_min = _stack(solids.x_min[0], solids.x_min[1], px - hw)
    x_max = _stack(solids.x_max[0], solids.x_max[1], px + hw)
    y_min = _stack(solids.y_min[0], solids.y_min[1], py - hh)
    y_max = _stack(solids.y_max[0], solids.y_max[1], py + hh)
    x, y = b.x[..., None], b.y[..., None]
    # Penetration along each way out: up, down, left, right.
    depths = np.stack([(y + half_h) - y_min, y_max - (y - half_h), (x + half_w) - x_min, x_max - (x - half_w)])
    touching = (depths >= 0).all(axis=0)
    np.copyto(b.age, np.minimum(b.age + 1, PERSISTENCE), where=~touching)
    if not touching.any():
        return
    idx = np.nonzero(touching.any(axis=-1))
    t = touching[idx]
    way = depths[(slice(None), *idx)].argmin(axis=0)
    depth = np.take_along_axis(depths[(slice(None), *idx)], way[None], axis=0)[0]
    svx = np.stack([np.zeros_like(pvx[idx]), np.zeros_like(pvx[idx]), pvx[idx]], axis=-1)
    svy = np.stack([np.zeros_like(pvy[idx]), np.zeros_like(pvy[idx]), pvy[idx]], axis=-1)
    old_way, old_age = b.way[idx], b.age[idx]
    same = t & (old_way == way)
    retouch = same & (old_age >= 1) & (old_age < PERSISTENCE)  # remembered, but not applied (a first contact)
    warm = same & (old_age == 0)  # touching at the last step: pymunk re-applies the last impulses first
    c = _Contacts(
        nx=_NX[way], ny=_NY[way], svx=svx, svy=svy, friction=np.broadcast_to(friction, t.shape), touching=t,
        bias=np.where(depth > solids.slop, solids.bias_coef * (depth - solids.slop) / DT, 0.0),
        jn=np.where(retouch | warm, b.jn[idx], 0.0), jt=np.where(retouch | warm, b.jt[idx], 0.0),
    )  # fmt: skip
    vx, vy, bvx, bvy = b.vx[idx], b.vy[idx], b.bias_vx[idx], b.bias_vy[idx]
    several = t.sum(axis=-1) > 1
    one = ~several
    if one.any():
        _solve_one(c, one, vx, vy, bvx, bvy, warm)
    if several.any():
        _solve_several(c, several, vx, vy, bvx, bvy, warm, reinserted[idx])
    b.vx[idx], b.vy[idx], b.bias_vx[idx], b.bias_vy[idx] = vx, vy, bvx, bvy
    b.way[idx] = np.where(t, way, old_way)
    b.age[idx] = np.where(t, 0, np.minimum(old_age + 1, PERSISTENCE))
    b.jn[idx] = np.where(t, c.jn, b.jn[idx])
    b.jt[idx] = np.where(t, c.jt, b.jt[idx])


def _stack(a, b, c) -> np.ndarray:
    return np.stack(np.broadcast_arrays(a, b, c), axis=-1)


@dataclass
class _Contacts:
    """Arbiters of the touching bodies: (k, 3) arrays, one column per solid."""

    nx: np.ndarray
    ny: np.ndarray
    svx: np.ndarray
    svy: np.ndarray
    friction: np.ndarray
    touching: np.ndarray
    bias: np.ndarray
    jn: np.ndarray  # accumulated impulses (start: remembered ones, or 0)
    jt: np.ndarray


def _solve_one(c: _Contacts, rows, vx, vy, bvx, bvy, warm) -> None:
    """One arbiter: the solver's converged answer in closed form (a warm start changes nothing)."""
    j = c.touching[rows].argmax(axis=-1)
    r = np.flatnonzero(rows)
    nx, ny = c.nx[r, j], c.ny[r, j]
    start_n = np.where(warm[r, j], 0.0, c.jn[r, j])
    start_t = np.where(warm[r, j], 0.0, c.jt[r, j])
    rvx, rvy = vx[r] - c.svx[r, j], vy[r] - c.svy[r, j]
    vn = rvx * nx + rvy * ny
    vt = rvx * -ny + rvy * nx
    jn = np.maximum(start_n - vn, 0.0)
    limit = c.friction[r, j] * jn
    jt = np.minimum(np.maximum(start_t - vt, -limit), limit)
    dn, dt = jn - start_n, jt - start_t
    vx[r] += nx * dn - ny * dt
    vy[r] += ny * dn + nx * dt
    push = np.maximum(c.bias[r, j] - (bvx[r] * nx + bvy[r] * ny), 0.0)
    bvx[r] += nx * push
    bvy[r] += ny * push
    c.jn[r, j], c.jt[r, j] = jn, jt


def _solve_several(c: _Contacts, rows, vx, vy, bvx, bvy, warm, reinserted) -> None:
    """Several arbiters: pymunk's solver as it runs, warm start, 10 passes, two contact points per arbiter
    (the first holds the remembered impulse)."""
    for first in (True, False):
        order = rows & (reinserted == first)
        if order.any():
            _solve_in_order(c, order, vx, vy, bvx, bvy, warm, GROUND_FIRST if first else PLATFORM_FIRST)


def _solve_in_order(c: _Contacts, rows, vx, vy, bvx, bvy, warm, order) -> None:
    r = np.flatnonzero(rows)
    t = c.touching[r]
    nx, ny, svx, svy, mu = c.nx[r], c.ny[r], c.svx[r], c.svy[r], c.friction[r]
    w = warm[r]
    vx_, vy_ = vx[r], vy[r]
    vx_ += np.sum(np.where(w, nx * c.jn[r] - ny * c.jt[r], 0.0), axis=-1)
    vy_ += np.sum(np.where(w, ny * c.jn[r] + nx * c.jt[r], 0.0), axis=-1)
    jn = np.stack([c.jn[r], np.zeros_like(c.jn[r])], axis=-1)  # (k, 3, 2)
    jt = np.stack([c.jt[r], np.zeros_like(c.jt[r])], axis=-1)
    jb = np.zeros_like(jn)
    bvx_, bvy_ = bvx[r], bvy[r]
    for _ in range(SOLVER_PASSES):
        for s in order:
            on = t[:, s]
            if not on.any():
                continue
            for k in range(2):
                rvx, rvy = vx_ - svx[:, s], vy_ - svy[:, s]
                vn = rvx * nx[:, s] + rvy * ny[:, s]
                vt = rvx * -ny[:, s] + rvy * nx[:, s]
                vbn = bvx_ * nx[:, s] + bvy_ * ny[:, s]
                b_new = np.maximum(jb[:, s, k] + (c.bias[r, s] - vbn), 0.0)
                n_new = np.maximum(jn[:, s, k] - vn, 0.0)
                limit = mu[:, s] * n_new
                t_new = np.minimum(np.maximum(jt[:, s, k] - vt, -limit), limit)
                db = np.where(on, b_new - jb[:, s, k], 0.0)
                dn = np.where(on, n_new - jn[:, s, k], 0.0)
                dt = np.where(on, t_new - jt[:, s, k], 0.0)
                jb[:, s, k] += db
                jn[:, s, k] += dn
                jt[:, s, k] += dt
                vx_ += nx[:, s] * dn - ny[:, s] * dt
                vy_ += ny[:, s] * dn + nx[:, s] * dt
                bvx_ += nx[:, s] * db
                bvy_ += ny[:, s] * db
    vx[r], vy[r], bvx[r], bvy[r] = vx_, vy_, bvx_, bvy_
    c.jn[r] = jn.sum(axis=-1)
    c.jt[r] = jt.sum(axis=-1)
