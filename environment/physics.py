"""The original's physics step (one pymunk ``space.step``), for boxes that never turn.

The tournament's engine moves players and weapons with the pymunk physics engine:
every body is a box that never turns (its moment of inertia is huge), the two
grounds are static boxes and the moving platform is a kinematic box. For that
case pymunk's step comes down to these rules, run per body:

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
arbiter (``MatchState.contacts``): a body touching two solids at once (a ground
and the platform), where the 10 solver passes do not converge and the result
depends on the order and on the impulses carried over from the last step; and
a contact that resumes within two steps of ending, which starts from its old
impulses without applying them (so it can briefly pull the body back).

pymunk solves a body's arbiters in the order its broad phase (a bounding-box tree)
finds them, which depends on the tree's whole history. It mostly comes down to
this: whenever a body's box leaves its "fattened" box the tree re-inserts it, next
to its nearest neighbour and ahead of it; a body re-inserted at least as recently
as the platform meets the ground first, else the platform first. Measured on the
original (239 player frames touching two solids, 30 matches), this picks pymunk's
order 80% of the time (a fixed order: 70% at best). This is the one place where
the engine knowingly differs from the original.

A resting player therefore sinks into the ground by however far its last fall
step overshot (up to the slop), as in the original: it stands at y = 0.4155 on
the right ground, not 0.35.
"""

from __future__ import annotations

import numpy as np

from environment.jit import kernel

SOLVER_PASSES = 10  # pymunk's default iteration count
# Columns of the multi-contact solver's scratch rows (one row per solid: ground 0, ground 1, platform).
TOUCHING, WAY, DEPTH, JN, JT, WARM, N_ACC, T_ACC, B_ACC = 0, 1, 2, 3, 4, 5, 6, 8, 10
SCRATCH_COLUMNS = 12
FAT_MARGIN = 0.1  # the broad phase fattens a box by 10% of its size, or by 0.1 s of its velocity if more
PLATFORM = 2  # solid index of the moving platform (0, 1: the grounds)
_NX = np.array([0.0, 0.0, -1.0, 1.0])  # outward normal of each way out of a solid: up, down, left, right
_NY = np.array([-1.0, 1.0, 0.0, 0.0])


@kernel
def fat_box(x, y, vx, vy, hw, hh):
    """The broad phase's fattened box around a body (pymunk's GetBB): left, top, right, bottom."""
    mx, my = 2 * hw * FAT_MARGIN, 2 * hh * FAT_MARGIN
    fx, fy = vx * FAT_MARGIN, vy * FAT_MARGIN
    return (x - hw + min(-mx, fx), y - hh + min(-my, fy), x + hw + max(mx, fx), y + hh + max(my, fy))


@kernel
def left_fat_box(x, y, hw, hh, left, top, right, bottom) -> bool:
    """Did the body's box leave its fattened box (so the broad phase re-inserts it)?"""
    return x - hw < left or y - hh < top or x + hw > right or y + hh > bottom


@kernel
def _touch(x, y, hw, hh, left, top, right, bottom):
    """(touching, way out, depth): penetration along each way out (up, down, left, right); the least one wins."""
    d0, d1, d2, d3 = (y + hh) - top, bottom - (y - hh), (x + hw) - left, right - (x - hw)
    if d0 < 0 or d1 < 0 or d2 < 0 or d3 < 0:
        return False, -1, 0.0
    way, depth = 0, d0
    if d1 < depth:
        way, depth = 1, d1
    if d2 < depth:
        way, depth = 2, d2
    if d3 < depth:
        way, depth = 3, d3
    return True, way, depth


@kernel
def solve_contacts(
    x,
    y,
    vx,
    vy,
    bvx,
    bvy,
    hw,
    hh,
    friction_ground,
    friction_platform,
    px,
    py,
    pvx,
    pvy,
    memory,
    ground_first,
    scratch,
    K,
):
    """Rules 2 and 4 for one body after rules 1 and 3; returns the new (vx, vy, bvx, bvy).

    :param memory: the body's (3,) row of ``MatchState.contacts``, updated in place
    :param ground_first: solve a ground before the platform when touching both (see the module docstring)
    :param scratch: a (3, SCRATCH_COLUMNS) float array the solver may overwrite (one per engine)
    """
    t0, w0, d0 = _touch(x, y, hw, hh, K.g0_left, K.g0_top, K.g0_right, K.g0_bottom)
    t1, w1, d1 = _touch(x, y, hw, hh, K.g1_left, K.g1_top, K.g1_right, K.g1_bottom)
    t2, w2, d2 = _touch(x, y, hw, hh, px - K.platform_hw, py - K.platform_hh, px + K.platform_hw, py + K.platform_hh)
    count = int(t0) + int(t1) + int(t2)
    if count == 0:
        for s in range(3):
            memory[s].age = min(memory[s].age + 1, 3)
        return vx, vy, bvx, bvy
    if count == 1:
        s, way, depth = (0, w0, d0) if t0 else ((1, w1, d1) if t1 else (2, w2, d2))
        mem = memory[s]
        jn, jt, warm = _remembered(mem, way)
        mu = friction_platform if s == PLATFORM else friction_ground
        svx, svy = (pvx, pvy) if s == PLATFORM else (0.0, 0.0)
        vx, vy, bvx, bvy, jn, jt = _solve_one(vx, vy, bvx, bvy, way, depth, jn, jt, warm, mu, svx, svy, K)
        for other in range(3):
            if other != s:
                memory[other].age = min(memory[other].age + 1, 3)
        mem.way, mem.age, mem.jn, mem.jt = way, 0, jn, jt
        return vx, vy, bvx, bvy
    # Several solids: the solver's working values live in the caller's scratch rows (nothing allocated).
    touching, way, depth = scratch[:, TOUCHING], scratch[:, WAY], scratch[:, DEPTH]
    jn, jt, warm = scratch[:, JN], scratch[:, JT], scratch[:, WARM]
    for s, (t, w, d) in enumerate(((t0, w0, d0), (t1, w1, d1), (t2, w2, d2))):
        touching[s], way[s], depth[s] = t, w, d
        jn[s], jt[s], warm[s] = _remembered(memory[s], w) if t else (0.0, 0.0, False)
    vx, vy, bvx, bvy = _solve_several(
        vx, vy, bvx, bvy, scratch, friction_ground, friction_platform, pvx, pvy, ground_first, K
    )
    for s in range(3):
        mem = memory[s]
        if touching[s]:
            mem.way, mem.age, mem.jn, mem.jt = int(way[s]), 0, jn[s], jt[s]
        else:
            mem.age = min(mem.age + 1, 3)
    return vx, vy, bvx, bvy


@kernel
def _remembered(mem, way):
    """Impulses a resumed contact starts from: re-applied first if it touched at the last step (pymunk's warm
    start), else only the starting point of this step's accumulation (pymunk's "first contact")."""
    if mem.way == way and mem.age < 3:
        return mem.jn, mem.jt, mem.age == 0
    return 0.0, 0.0, False


@kernel
def _bias(depth, K):
    return K.bias_coef * (depth - K.slop) / K.dt if depth > K.slop else 0.0


@kernel
def _solve_one(vx, vy, bvx, bvy, way, depth, jn, jt, warm, mu, svx, svy, K):
    """One arbiter: the solver's converged answer in closed form (a warm start changes nothing)."""
    nx, ny = _NX[way], _NY[way]
    start_n = 0.0 if warm else jn
    start_t = 0.0 if warm else jt
    rvx, rvy = vx - svx, vy - svy
    vn = rvx * nx + rvy * ny
    vt = rvx * -ny + rvy * nx
    n_acc = max(start_n - vn, 0.0)
    limit = mu * n_acc
    t_acc = min(max(start_t - vt, -limit), limit)
    dn, dt = n_acc - start_n, t_acc - start_t
    vx += nx * dn - ny * dt
    vy += ny * dn + nx * dt
    push = max(_bias(depth, K) - (bvx * nx + bvy * ny), 0.0)
    bvx += nx * push
    bvy += ny * push
    return vx, vy, bvx, bvy, n_acc, t_acc


@kernel
def _solve_several(vx, vy, bvx, bvy, scratch, friction_ground, friction_platform, pvx, pvy, ground_first, K):
    """Several arbiters: pymunk's solver as it runs: warm start, 10 passes, two contact points per arbiter
    (the first holds the remembered impulse). Reads the arbiters from ``scratch``, returns their summed
    impulses in its JN and JT columns."""
    touching, way, depth = scratch[:, TOUCHING], scratch[:, WAY], scratch[:, DEPTH]
    jn, jt, warm = scratch[:, JN], scratch[:, JT], scratch[:, WARM]
    n_acc, t_acc, b_acc = scratch[:, N_ACC : N_ACC + 2], scratch[:, T_ACC : T_ACC + 2], scratch[:, B_ACC : B_ACC + 2]
    order = (0, 1, 2) if ground_first else (2, 0, 1)
    for s in range(3):
        if touching[s] and warm[s]:
            nx, ny = _NX[int(way[s])], _NY[int(way[s])]
            vx += nx * jn[s] - ny * jt[s]
            vy += ny * jn[s] + nx * jt[s]
    for s in range(3):
        n_acc[s, 0], t_acc[s, 0] = jn[s], jt[s]
        n_acc[s, 1] = t_acc[s, 1] = b_acc[s, 0] = b_acc[s, 1] = 0.0
    for _ in range(SOLVER_PASSES):
        for s in order:
            if not touching[s]:
                continue
            nx, ny = _NX[int(way[s])], _NY[int(way[s])]
            svx, svy = (pvx, pvy) if s == PLATFORM else (0.0, 0.0)
            mu = friction_platform if s == PLATFORM else friction_ground
            bias = _bias(depth[s], K)
            for k in range(2):
                rvx, rvy = vx - svx, vy - svy
                vn = rvx * nx + rvy * ny
                vt = rvx * -ny + rvy * nx
                vbn = bvx * nx + bvy * ny
                b_new = max(b_acc[s, k] + (bias - vbn), 0.0)
                n_new = max(n_acc[s, k] - vn, 0.0)
                limit = mu * n_new
                t_new = min(max(t_acc[s, k] - vt, -limit), limit)
                db, dn, dt = b_new - b_acc[s, k], n_new - n_acc[s, k], t_new - t_acc[s, k]
                b_acc[s, k], n_acc[s, k], t_acc[s, k] = b_new, n_new, t_new
                vx += nx * dn - ny * dt
                vy += ny * dn + nx * dt
                bvx += nx * db
                bvy += ny * db
    for s in range(3):
        jn[s] = n_acc[s, 0] + n_acc[s, 1]
        jt[s] = t_acc[s, 0] + t_acc[s, 1]
    return vx, vy, bvx, bvy


@kernel
def forget_contacts(memory) -> None:
    """A new body (or a new match): no remembered contacts."""
    for s in range(memory.shape[0]):
        memory[s].way = -1
        memory[s].age = 3
