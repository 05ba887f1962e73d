"""Scripted roster: fighting styles that play visibly differently.

Every style is a :class:`~environment.agents.ScriptedAgent` vectorised over the
batch (boolean masks, no Python loop over matches) and registered by name at
import time, so ``make_agent("zoner")`` works anywhere.

All styles share one frame recipe (:meth:`StyleAgent.act`):

1. ``play``: the style sets its keys for every row and says where it wants to be;
2. :func:`edge_safety`: grounded rows never walk, dash or lunge off a ledge by accident;
3. :func:`recover`: rows that are airborne off stage get their keys replaced by a
   recovery (steer back, jump near the apex, then the
   air heavy ``k`` without ``s``, i.e. the Recovery move).

Stage facts used (DESIGN §3): right ground x∈[2, 7] top 0.85, left ground
x∈[−7, −2] top 2.85 (y points down), players stand with centre y = top − 0.5;
the moving platform is followed onto when the opponent stands on it.

The roster (registry name → style):

- ``aggressive``: rushdown; dashes in, jab/side-light strings, side-heavy finishers, air chases.
- ``counter``: keeps 2.7 apart, dodges/backdashes attacks, punishes recovery and stun with jabs.
- ``zoner``: fetches a (spear) weapon, pokes at its weapon's maximum reach, backdashes away.
- ``weapon_seeker``: goes for every weapon on the stage, then fights with charged signatures.
- ``edge_guard``: waits at its inner ledge, hits outward from the centre side, guards ledges.
- ``human``: BasedAgent-like play with a 6–12 frame reaction delay, held keys, fumbles, taunts.
- ``aerial``: short hops, air attacks and ground pounds.
- ``heavy``: charges signatures from outside jab range and releases them as the opponent walks in.

Win rate of the bot in the first player slot (player 0), 64 matches of 2700 frames per cell in the
tournament's game (seed 0, agents seeded), measured with ``python -m environment.roster`` (:func:`win_rate_table`)::

    bot            vs constant   vs random    vs based
    aggressive            1.00        1.00        1.00
    counter               1.00        1.00        1.00
    zoner                 0.92        1.00        0.73
    weapon_seeker         0.81        1.00        0.94
    edge_guard            1.00        1.00        1.00
    human                 1.00        0.98        0.83
    aerial                1.00        0.98        1.00
    heavy                 1.00        1.00        1.00
    based                 1.00        0.91        0.00

The faithful engine is not symmetric between the player slots (player 0 is updated first, and its
hits are tested against player 1's hurtbox of the frame before): BasedAgent in slot 0 loses all 64
mirror matches. BasedAgent also falls into the gap now and then, as the original does, which
flatters several rows of that column.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from environment import params as P
from environment.agents import (
    DAMAGE,
    FACING,
    GROUNDED,
    JUMPS,
    MOVE,
    OPP,
    RECOVERIES,
    SLOTS,
    STATE,
    VX,
    VY,
    WEAPON,
    ScriptedAgent,
    X,
    Y,
    make_agent,
    register_agent,
)
from environment.params import DEFAULT_PARAMS

# --- stage geometry ----------------------------------------------------------------
_GP = DEFAULT_PARAMS
INNER = _GP.right_ground[0]  # |x| of both grounds' inner edges (2)
OUTER = _GP.right_ground[1]  # |x| of their outer edges (7)
HALF_W = _GP.body_w / 2
HALF_H = _GP.body_h / 2
STAND_Y_RIGHT = _GP.right_ground[2] - HALF_H  # centre y of a player standing on the right ground
STAND_Y_LEFT = _GP.left_ground[2] - HALF_H
SAFE_IN, SAFE_OUT = INNER + 0.5, OUTER - 0.5  # where ground targets are clamped to
# A player's box still overlaps a ground while |x| is in (LO, HI).
LO, HI = INNER - HALF_W, OUTER + HALF_W
# Pick-up reach: the 1.5×0.83 area around the weapon plus half the body (a little inside it).
PICK_DX = (_GP.pickup_size[0] + _GP.body_w) / 2 - 0.15
PICK_DY = (_GP.pickup_size[1] + _GP.body_h) / 2 - 0.1

PLATFORM_X = 28  # observation index of the moving platform's x (then y, vx, vy)
PLAT_REACH = (_GP.platform_size[0] + _GP.body_w) / 2 - 0.15  # |x - platform x| that still stands on it

_ACTIONABLE = np.zeros(13, bool)
_ACTIONABLE[[P.WALKING, P.STANDING, P.SPRINTING, P.IN_AIR, P.DASH]] = True


def side(x: np.ndarray) -> np.ndarray:
    """+1 for the right half of the stage, −1 for the left one."""
    return np.where(x >= 0, 1.0, -1.0)


def stand_y(s: np.ndarray) -> np.ndarray:
    """Centre y of a player standing on the ground of side ``s``."""
    return np.where(s > 0, STAND_Y_RIGHT, STAND_Y_LEFT)


def clamp_stage(tx: np.ndarray) -> np.ndarray:
    """The nearest point to ``tx`` that is safely inside a ground (targets in the gap go to its side)."""
    return side(tx) * np.clip(np.abs(tx), SAFE_IN, SAFE_OUT)


class View:
    """Named columns of a batch of observations plus derived geometry; every field has shape (n,)."""

    def __init__(self, obs: np.ndarray, frame: np.ndarray):
        me, op = obs[:, :OPP], obs[:, OPP:]
        self.obs = obs
        self.frame = frame
        self.even = frame % 2 == 0  # edge-triggered keys are pressed on even frames only
        self.x, self.y, self.vx, self.vy = me[:, X], me[:, Y], me[:, VX], me[:, VY]
        self.face = np.where(me[:, FACING] > 0.5, 1.0, -1.0)
        self.grounded = me[:, GROUNDED] > 0.5
        self.jumps, self.recs = me[:, JUMPS], me[:, RECOVERIES]
        self.state = me[:, STATE].astype(np.intp)
        self.move = me[:, MOVE].astype(np.intp)
        self.weapon = me[:, WEAPON].astype(np.intp)
        self.ox, self.oy, self.ovx = op[:, X], op[:, Y], op[:, VX]
        self.ostate = op[:, STATE].astype(np.intp)
        self.ogrounded = op[:, GROUNDED] > 0.5
        self.odamage = op[:, DAMAGE]
        self.dx, self.dy = self.ox - self.x, self.oy - self.y
        self.adx = np.abs(self.dx)
        self.dist = np.hypot(self.dx, self.dy)
        self.toward = side(self.dx)  # direction of the opponent
        self.facing_opp = self.face == self.toward
        self.actionable = _ACTIONABLE[self.state]
        self.opp_ko = self.ostate == P.KO
        self.opp_stunned = self.ostate == P.STUN
        self.opp_attacking = self.ostate == P.ATTACK
        self.on_ground = self.grounded & (np.abs(self.x) > LO)  # on a main ground, not the platform
        self.slots = obs[:, SLOTS : SLOTS + 12].reshape(-1, 4, 3)
        self.px = obs[:, PLATFORM_X]
        self.plat_stand = obs[:, PLATFORM_X + 1] - _GP.platform_size[1] / 2 - HALF_H  # centre y standing on it
        ax = np.abs(self.ox)
        below = self.oy > stand_y(side(self.ox)) + 0.3
        self.opp_off = ~self.ogrounded & ~self.opp_ko & ((ax > OUTER + 0.1) | (ax < LO) | below)


# --- key helpers (all act on the rows of ``mask``) ----------------------------------------
def press_dir(keys: np.ndarray, mask: np.ndarray, direction: np.ndarray) -> None:
    keys[:, P.K_D] |= mask & (direction > 0)
    keys[:, P.K_A] |= mask & (direction < 0)


def on_platform_span(v: View, tx: np.ndarray) -> np.ndarray:
    """Targets in the gap that the moving platform lies under (reachable by standing on it)."""
    return (np.abs(tx) < LO + 0.3) & (np.abs(tx - v.px) < PLAT_REACH)


def reachable(v: View, spot: np.ndarray) -> np.ndarray:
    """A spacing spot (opponent x ∓ offset) that can be stood on: if it lies over the bare gap, the mirror
    spot on the opponent's other side, else the opponent's own x (e.g. to follow it onto the platform)."""
    bare = (np.abs(spot) < LO + 0.3) & ~on_platform_span(v, spot)
    mirror = 2 * v.ox - spot
    mirror_bare = (np.abs(mirror) < LO + 0.3) & ~on_platform_span(v, mirror)
    return np.where(bare, np.where(mirror_bare, v.ox, mirror), spot)


def walk_to(v: View, keys: np.ndarray, mask: np.ndarray, tx: np.ndarray, tol: float = 0.2) -> None:
    """Walk toward ``tx`` clamped onto the stage or the platform, crossing between the grounds by
    :func:`crossing_target` (the platform is the way up to the higher right ground), and hopping up onto
    the platform when it is above us."""
    tx = crossing_target(v, tx)
    plat = on_platform_span(v, tx)
    tx = np.where(plat, np.clip(tx, v.px - 0.7, v.px + 0.7), clamp_stage(tx))
    # Boarding the platform from beside it: rise clear of its deck before drifting over it, or its side
    # stops us (it is solid from every side).
    beside = plat & ~v.grounded & (v.y > v.plat_stand - 0.05) & (np.abs(v.x - v.px) > PLAT_REACH - 0.25)
    tx = np.where(beside, v.px + side(v.x - v.px) * (PLAT_REACH + 0.35), tx)
    # ...and climb: an air jump once the first one is spent below the deck.
    climb_deck = mask & beside & (v.vy > -1.0) & (v.jumps > 0)
    d = tx - v.x
    # On the ground a press sets the speed; in the air it only nudges it (there is no air friction), so
    # steer toward the speed that arrives without overshooting: brake when coming in too fast.
    air_steer = np.clip(3.0 * d, -_GP.walk_speed, _GP.walk_speed) - v.vx
    steer = np.where(v.grounded, d, air_steer)
    press_dir(keys, mask & (np.abs(steer) > np.where(v.grounded, tol, 0.5)), steer)
    # The platform may be up to ~1 unit above the ground next to it: hop on from the inner edge.
    hop = mask & plat & v.on_ground & (np.abs(v.x - v.px) < PLAT_REACH + 1.4) & (v.plat_stand < v.y - 0.2)
    air_hop = mask & plat & ~v.grounded & (v.y > v.plat_stand - 0.2) & (v.vy > 0) & (v.jumps > 0)
    air_hop &= ~((np.abs(v.x - v.px) < PLAT_REACH) & (v.y < v.plat_stand + 0.05))  # over the deck: we land
    # Going down to the low left ground: walk off the right ground's inner edge, then one air jump carries
    # us over the gap (a jump from the ledge would meet the platform's underside when it is at that end).
    drop = mask & ~v.grounded & (v.vx < -3.0) & (tx < 0) & (v.x > -LO) & (v.y > STAND_Y_RIGHT + 0.6)
    drop &= v.jumps >= _GP.air_jumps
    keys[:, P.K_JUMP] |= (hop | air_hop | drop | climb_deck) & v.even


ELEVATOR_BOARD_X = -0.3  # the platform is far enough to the left to be boarded from the left ground
ELEVATOR_LEAVE_X = 0.6  # riding it right, it is close enough to the right ground to step off


def crossing_target(v: View, tx: np.ndarray) -> np.ndarray:
    """Where to head for now to reach ``tx`` on the other ground.

    The right ground is 2 units above the left one and the platform shuttles between a low-left and a
    high-right waypoint, right across the path of a jump: the reliable way up is to ride it. On the left
    ground: board it while it is on the left, else wait at the inner ledge. On the platform: stay on it
    until it is near the right ground, then walk off onto it. The way down (right to left) is direct.
    """
    # Up from the left ground to the right one, or to the platform (hop-able only when it is low and left).
    left_to_right = (v.x < 0) & ((tx > INNER - HALF_W) | on_platform_span(v, tx))
    riding = v.grounded & ~v.on_ground & (np.abs(v.x - v.px) < PLAT_REACH + 0.2)
    board = left_to_right & (v.on_ground | ~v.grounded) & (v.px < ELEVATOR_BOARD_X)
    wait = left_to_right & v.on_ground & ~board
    stay = riding & (tx > v.px + 1.0) & (v.px < ELEVATOR_LEAVE_X)
    out = np.where(board | stay, v.px, tx)
    return np.where(wait, -(INNER + 0.6), out)


def attack(keys: np.ndarray, mask: np.ndarray, heavy: bool, kind: str, toward: np.ndarray) -> None:
    """Start a move: ``kind`` is 'neutral' (w held, hits where we face), 'down' (s) or 'side' (toward)."""
    keys[:, P.K_HEAVY if heavy else P.K_LIGHT] |= mask
    if kind == "neutral":
        keys[:, P.K_W] |= mask
    elif kind == "down":
        keys[:, P.K_S] |= mask
    else:  # the direction must be unambiguous: a+d together reads as neutral
        keys[mask, P.K_A] = toward[mask] < 0
        keys[mask, P.K_D] = toward[mask] > 0


def turn_to(v: View, keys: np.ndarray, mask: np.ndarray) -> None:
    """Tap toward the opponent when facing away (a 1-frame turnaround), so neutral moves hit it."""
    press_dir(keys, mask & ~v.facing_opp & v.grounded, v.toward)


def room_behind(v: View) -> np.ndarray:
    """Ground left behind us when backing away from the opponent (large when not on a main ground)."""
    away_out = (-v.toward * side(v.x)) > 0
    room = np.where(away_out, OUTER - np.abs(v.x), np.abs(v.x) - INNER)
    return np.where(v.on_ground, room, 9.0)


def keep_spacing(v: View, keys: np.ndarray, mask: np.ndarray, want: np.ndarray, slack: float = 0.35) -> None:
    """Hold the opponent at |dx| ≈ want: walk in when too far, backdash (which keeps us facing it) when too
    close, otherwise face it. Backdashes start on even frames and nothing is held in between, so that the
    end of one never reads as a turnaround."""
    far = mask & (v.adx > want + slack)
    walk_to(v, keys, far, reachable(v, v.ox - v.toward * want), tol=0.0)
    near = mask & (v.adx < want - slack)
    back = near & v.grounded & v.facing_opp & v.even
    keys[:, P.K_DODGE] |= back
    press_dir(keys, back | (near & ~v.grounded), -v.toward)
    turn_to(v, keys, mask & ~far & ~(near & v.facing_opp))


def nearest_weapon(v: View, types: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(found, x, y) of the nearest weapon of the given slot types that lies over a ground."""
    wx, wy, wt = v.slots[..., 0], v.slots[..., 1], v.slots[..., 2]
    ax = np.abs(wx)
    ok = np.isin(wt, types) & (ax > INNER + 0.1) & (ax < OUTER - 0.1) & (wy < stand_y(side(wx)) + 1.0)
    cost = np.where(ok, np.abs(wx - v.x[:, None]) + np.abs(wy - v.y[:, None]), np.inf)
    best = np.argmin(cost, axis=1)
    rows = np.arange(v.x.shape[0])
    return np.isfinite(cost[rows, best]), wx[rows, best], wy[rows, best]


def go_pick_up(v: View, keys: np.ndarray, mask: np.ndarray, wx: np.ndarray, wy: np.ndarray) -> None:
    """Walk (and climb) to a weapon and press h on alternate frames once in reach (h acts on the press edge)."""
    walk_to(v, keys, mask, wx, tol=0.3)
    reach = mask & (np.abs(wx - v.x) < PICK_DX) & (np.abs(wy - v.y) < PICK_DY) & (v.state != P.ATTACK)
    keys[:, P.K_PICKUP] |= reach & v.even
    # The weapon may be on the other ground: hop when it is above us.
    keys[:, P.K_JUMP] |= mask & v.grounded & (wy < v.y - 1.2) & (np.abs(wx - v.x) < 2.5) & v.even


# --- safety layers ---------------------------------------------------------------
LUNGE_HEAVY = 2.3  # how far the punch's side signature (dashing strike) carries its user, slide included

# How far each grounded move carries its user (units, slide included): (backward, forward) of its facing,
# by weapon. Measured on the engine by starting each move standing with 4+ units of ground behind or in
# front and taking the extremes of its x over 3 s (tests/test_roster.py repeats this); the spear's side
# signature (4.15 there) and the hammer's side light (2.0) are kept at the larger values an earlier
# measurement that ran off the ledge gave. Some travel a long way: the spear's side signature, the
# hammer's sweep (4.8 forward), the spear's sweep (2.1 backward).
MOVE_TRAVEL = {
    P.PUNCH: {P.NLIGHT: (0, 0), P.DLIGHT: (0, 1.25), P.SLIGHT: (0, 2.2), P.NSIG: (0, 0), P.DSIG: (0, 0),
              P.SSIG: (0, 1.0)},
    P.SPEAR: {P.NLIGHT: (0, 0.1), P.DLIGHT: (0, 1.3), P.SLIGHT: (0, 1.2), P.NSIG: (0, 0.4), P.DSIG: (2.1, 0),
              P.SSIG: (0, 4.5)},
    P.HAMMER: {P.NLIGHT: (0, 0.75), P.DLIGHT: (0, 0), P.SLIGHT: (0, 2.6), P.NSIG: (0, 0), P.DSIG: (0, 4.8),
               P.SSIG: (0, 0.95)},
}  # fmt: skip
_GROUND_MOVES = (P.NLIGHT, P.DLIGHT, P.SLIGHT, P.NSIG, P.DSIG, P.SSIG)
_TRAVEL = np.array([[MOVE_TRAVEL[w][m] for m in _GROUND_MOVES] for w in (P.PUNCH, P.SPEAR, P.HAMMER)])


def ledge_room(v: View, direction: np.ndarray) -> np.ndarray:
    """Distance we can travel along ``direction`` (±1) before dropping off the ground we stand on."""
    outward = direction * side(v.x) > 0
    return np.where(outward, HI - np.abs(v.x), np.abs(v.x) - LO)


def move_fits(v: View, kind: np.ndarray, heavy: np.ndarray, heading: np.ndarray) -> np.ndarray:
    """Whether the grounded move ``kind`` (0 neutral, 1 down, 2 side; light or heavy), done facing
    ``heading``, stays on the ground with half a unit to spare at both ends of its travel."""
    back, fwd = np.moveaxis(_TRAVEL[v.weapon, kind + 3 * heavy.astype(np.intp)], -1, 0)
    return (fwd + 0.5 < ledge_room(v, heading)) & ((back == 0) | (back + 0.5 < ledge_room(v, -heading)))


def edge_safety(v: View, keys: np.ndarray, desired: np.ndarray) -> None:
    """Stop grounded rows from walking, dashing or lunging over a ledge they did not mean to cross."""
    # Rows landing this frame count too: the engine may start a ground move on the landing frame.
    landing = ~v.grounded & (np.abs(v.x) > LO) & (np.abs(v.x) < HI) & (v.vy >= 0)
    on = v.on_ground | (landing & (np.abs(v.y - stand_y(side(v.x))) < 0.35))
    s = side(v.x)
    horiz = keys[:, P.K_D].astype(np.float32) - keys[:, P.K_A]
    outward = horiz * s > 0
    room = ledge_room(v, horiz)
    # Walking (not lunging) off the inner edge on purpose: to the other ground or onto the platform.
    crossing = ~outward & ((side(desired) != s) | on_platform_span(v, desired))
    # How far a press can carry us: a walk stops within ~0.6, a dash ~3.5.
    dash = keys[:, P.K_DODGE] & (horiz == v.face)
    backdash = keys[:, P.K_DODGE] & (horiz == -v.face)
    need = np.where(dash, 3.6, 0.6 + 0.1 * np.abs(v.vx) + np.where(backdash, 0.8, 0.0))
    # Crossing on purpose: a dash that would overshoot becomes a plain walk off the edge.
    keys[on & crossing & (room < need), P.K_DODGE] = False
    attacking = keys[:, P.K_LIGHT] | keys[:, P.K_HEAVY]
    block = on & (horiz != 0) & ~attacking & (room < need) & ~(crossing & ~keys[:, P.K_DODGE])
    keys[block, P.K_A] = False
    keys[block, P.K_D] = False
    keys[block, P.K_DODGE] = False
    _safe_ground_attack(v, keys, on & attacking)
    # Ground attacks keep 85 % of the run-up speed per frame and cannot be cancelled once we slide off
    # the ground: don't start one sliding toward a ledge.
    slide = on & (np.abs(v.vx) > 0.3) & (ledge_room(v, np.sign(v.vx)) < 0.19 * np.abs(v.vx) + 0.3)
    keys[slide, P.K_LIGHT] = False
    keys[slide, P.K_HEAVY] = False
    # A taunt cannot be cancelled and keeps the run-up's slide: only standing, well inside a main ground.
    calm = v.on_ground & (np.abs(v.vx) < 0.5) & (np.minimum(ledge_room(v, 1.0), ledge_room(v, -1.0)) > 1.0)
    keys[~calm, P.K_TAUNT] = False


def _safe_ground_attack(v: View, keys: np.ndarray, rows: np.ndarray) -> None:
    """A grounded move that would carry us over the ledge it travels toward becomes the neutral or down
    move of the same strength that stays on the ground, or no attack at all."""
    heavy = keys[:, P.K_HEAVY]
    horiz = keys[:, P.K_D].astype(np.float32) - keys[:, P.K_A]
    up, down = keys[:, P.K_W], keys[:, P.K_S] & ~keys[:, P.K_W]
    kind = np.where(down, 1, np.where((horiz != 0) & ~up, 2, 0))
    heading = np.where(kind == 2, horiz, v.face)
    fits = move_fits(v, kind, heavy, heading)
    # A press against our facing may turn us first (or not, mid-turnaround): it must fit either way.
    unsure = (kind != 2) & (horiz != 0) & (horiz != v.face)
    fits &= ~unsure | move_fits(v, kind, heavy, -heading)
    risky = rows & ~fits
    if not risky.any():
        return
    neutral_fits = move_fits(v, np.zeros_like(kind), heavy, v.face)
    down_fits = move_fits(v, np.ones_like(kind), heavy, v.face)
    keys[risky, P.K_A] = keys[risky, P.K_D] = keys[risky, P.K_W] = keys[risky, P.K_S] = False
    keys[:, P.K_W] |= risky & neutral_fits
    keys[:, P.K_S] |= risky & ~neutral_fits & down_fits
    none = risky & ~neutral_fits & ~down_fits
    keys[none, P.K_LIGHT] = keys[none, P.K_HEAVY] = False


DAIR_TRAVEL = 3.8  # how far the air light with s (a diving lunge at ~5.7 units/s) carries forward


def no_dive_off_stage(v: View, keys: np.ndarray) -> None:
    """Air attacks only over a ground or the platform's deck; the air light with s (a diving lunge that
    carries DAIR_TRAVEL forward) only where it lands on the ground below us."""
    ahead = v.x + 0.3 * v.vx
    ax = np.abs(ahead)
    over = ((ax > LO + 0.3) & (ax < HI - 0.3)) | ((np.abs(ahead - v.px) < PLAT_REACH) & (v.y < v.plat_stand))
    air = ~v.grounded
    down = air & keys[:, P.K_S] & ~keys[:, P.K_W]
    land = np.abs(v.x + v.face * DAIR_TRAVEL)
    lands = over & (land > LO + 0.3) & (land < HI - 0.3) & (side(v.x + v.face * DAIR_TRAVEL) == side(v.x))
    keys[down & ~lands, P.K_LIGHT] = False
    # Every air attack runs to its end, jumps locked out, and some carry us sideways or down: none over
    # the gap or beyond an edge (recover() adds the Recovery move afterwards when it is needed).
    keys[air & ~over, P.K_LIGHT] = False
    keys[air & ~over, P.K_HEAVY] = False


def _outside(u: np.ndarray) -> np.ndarray:
    """How far position ``u`` (measured along a ground's side) lies outside that ground's span."""
    return np.maximum(LO + 0.25 - u, 0.0) + np.maximum(u - (HI - 0.25), 0.0)


def recover(v: View, keys: np.ndarray, desired: np.ndarray, allowance: float) -> np.ndarray:
    """Replace the keys of airborne off-stage rows by a recovery; returns those rows.

    :param desired: the x the style wants to reach; in the gap it picks which ground to aim for
    :param allowance: how far beyond a ground's edge the style may fly on purpose (edge-guarding)
    """
    ahead = v.x + 0.25 * v.vx  # where our drift takes us in ~8 frames
    in_gap = (np.abs(v.x) < LO) | (np.abs(ahead) < LO)
    # In the gap keep going the way we are flying (no dithering), else head for the nearer ground: the
    # right one (2 units higher) only from its half and not far below its top.
    nearer = np.where((v.x > 0) & (v.y < STAND_Y_RIGHT + 2.0), 1.0, -1.0)
    tgt = np.where(in_gap, np.where(np.abs(v.vx) > 3.0, side(v.vx), nearer), side(v.x))
    # Deep in the gap the right ground (2 units higher) may be out of reach: take the left one.
    tgt = np.where(in_gap & (tgt > 0) & (v.y > STAND_Y_RIGHT + 3.0), -1.0, tgt)
    sy = stand_y(tgt)
    u = v.x * tgt  # position along the target's side
    out = np.maximum(_outside(u), _outside(ahead * tgt))
    falling_spent = (v.jumps <= 0) & (v.vy > 0)
    danger = ~v.grounded & (out > 0) & ((out > allowance) | (v.y > sy - 0.3) | falling_spent)
    # Above the platform and drifting over it: we will land on it.
    danger &= ~((np.abs(ahead - v.px) < PLAT_REACH) & (v.y < v.plat_stand - 0.05))
    # Boarding the platform on purpose (walk_to's way up): leave it to walk_to while a jump is left.
    boarding = on_platform_span(v, crossing_target(v, desired)) & (np.abs(v.x - v.px) < PLAT_REACH + 1.8)
    # Only while it can still work: rising, or at the deck's level with a jump left (falling below the
    # deck, a jump meets the platform's underside).
    near_deck = (v.y < v.plat_stand) | ((v.y < v.plat_stand + 0.3) & (v.jumps > 0))
    danger &= ~(boarding & (near_deck | ((v.vy < 0) & (v.y < v.plat_stand + 1.6))))
    if not danger.any():
        return danger
    keys[danger] = False
    aim = tgt * np.clip(u, SAFE_IN + 0.2, SAFE_OUT - 0.2)
    press_dir(keys, danger, aim - v.x)
    need_up = v.y > sy - 0.6
    keys[:, P.K_JUMP] |= danger & need_up & (v.jumps > 0) & (v.vy > -1.5) & v.even
    # Out of jumps: the air heavy without s is the Recovery move (once per airtime).
    keys[:, P.K_HEAVY] |= danger & need_up & (v.jumps <= 0) & (v.recs > 0) & (v.vy > 0)
    return danger


# --- the shared frame recipe -----------------------------------------------------------
class StyleAgent(ScriptedAgent):
    """Base of the roster: per-match frame counter, then play → edge safety → recovery."""

    name = "style"
    memory: ClassVar[dict[str, type]] = {"frame": np.int64}
    allowance = 0.3  # see :func:`recover`

    def act(self, obs: np.ndarray, keys: np.ndarray, ids: np.ndarray) -> None:
        frame = self.mem["frame"]
        v = View(obs, frame[ids].copy())
        frame[ids] += 1
        desired = self.play(v, keys, ids)
        self._cross(v, keys, desired)
        edge_safety(v, keys, desired)
        no_dive_off_stage(v, keys)
        recover(v, keys, desired, self.allowance)

    def play(self, v: View, keys: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Set the style's keys for every row; return the x each row is heading for."""
        raise NotImplementedError

    @staticmethod
    def _cross(v: View, keys: np.ndarray, desired: np.ndarray) -> None:
        """Rows on their way up to the other ground follow the crossing plan, whatever the style steered."""
        detour = crossing_target(v, desired) != desired
        if detour.any():
            keys[detour, P.K_A] = keys[detour, P.K_D] = keys[detour, P.K_JUMP] = False
            walk_to(v, keys, detour, desired, tol=0.3)


# ==================================================================================
# The styles
# ==================================================================================
class AggressiveAgent(StyleAgent):
    """Rushdown: dashes and sprints straight in, chains jabs and side lights, finishes with side heavies,
    jumps after airborne opponents and fights them with air attacks; camps the respawn point."""

    name = "aggressive"

    def play(self, v: View, keys: np.ndarray, ids: np.ndarray) -> np.ndarray:
        g, air = v.grounded, ~v.grounded
        walk_to(v, keys, np.ones_like(g), v.ox, tol=0.3)
        # Dash in from afar (l on a press edge toward where we face), then keep sprinting.
        dash = g & (v.adx > 1.7) & v.facing_opp & np.isin(v.state, (P.STANDING, P.WALKING)) & v.even
        keys[:, P.K_DODGE] |= dash
        level = np.abs(v.dy) < 0.8
        close = g & level & (v.adx < 1.8) & ~v.opp_ko
        finisher = close & (v.odamage > 0.17) & (v.frame % 3 == 0)
        jab = close & ~finisher & (v.adx < 0.9) & v.facing_opp
        attack(keys, finisher, True, "side", v.toward)
        attack(keys, jab, False, "neutral", v.toward)
        attack(keys, close & ~finisher & ~jab, False, "side", v.toward)
        # Chase airborne opponents upward.
        above = (v.dy < -0.8) & (v.adx < 2.5) & ~v.opp_ko
        keys[:, P.K_JUMP] |= above & (g | ((v.vy > 0) & (v.jumps > 0))) & v.even
        self._air_attacks(v, keys, air & ~v.opp_ko)
        return v.ox

    @staticmethod
    def _air_attacks(v: View, keys: np.ndarray, air: np.ndarray) -> None:
        down = air & (v.dy > 0.4) & (v.dy < 1.6) & (v.adx < 0.7)
        side_hit = air & ~down & (np.abs(v.dy) < 0.7) & (v.adx < 1.9)
        spin = air & ~down & ~side_hit & (v.dist < 1.4)
        attack(keys, down, False, "down", v.toward)
        attack(keys, side_hit, False, "side", v.toward)
        attack(keys, spin, False, "neutral", v.toward)
        press_dir(keys, air & ~(down | side_hit | spin), v.toward)  # air-steer after it


class CounterAgent(StyleAgent):
    """Counter-puncher: keeps a spacing distance (backdashing to restore it), dodges in place or backdashes
    when a close opponent starts an attack, then punishes the attack's recovery or a stun with quick jabs
    and side lights; a passive opponent gets a poke now and then."""

    name = "counter"
    memory: ClassVar[dict[str, type]] = {
        "frame": np.int64,
        "calm": np.int64,  # frames since the opponent last attacked
        "opp_attack": np.int64,  # frames the opponent has been in its current attack
        "cooldown": np.int64,  # frames until our dodge is available again
    }
    spacing = 2.7

    def play(self, v: View, keys: np.ndarray, ids: np.ndarray) -> np.ndarray:
        calm, oatk, cool = self.mem["calm"], self.mem["opp_attack"], self.mem["cooldown"]
        oatk[ids] = np.where(v.opp_attacking, oatk[ids] + 1, 0)
        calm[ids] = np.where(v.opp_attacking, 0, calm[ids] + 1)
        cool[ids] = np.maximum(cool[ids] - 1, 0)
        live = ~v.opp_ko
        threat = v.opp_attacking & (oatk[ids] <= 6) & (v.dist < 2.8) & v.grounded
        # The attack's startup and active frames are over: its recovery is open.
        opening = (v.opp_stunned | (v.opp_attacking & (oatk[ids] > 8))) & (v.dist < 3.2)
        poke = (calm[ids] > 30) & (v.frame % 44 < 18)
        cornered = (room_behind(v) < 1.0) & (v.adx < self.spacing)
        engage = (opening | poke | (cornered & (calm[ids] > 10))) & ~threat & live
        self._evade(v, keys, threat, cool, ids)
        self._punish(v, keys, engage)
        keep_spacing(v, keys, ~threat & ~engage, np.full(v.x.shape, self.spacing))
        return np.where(engage, v.ox, reachable(v, v.ox - v.toward * self.spacing))

    def _evade(self, v: View, keys: np.ndarray, threat: np.ndarray, cool: np.ndarray, ids: np.ndarray) -> None:
        still = np.abs(v.vx) < 0.5
        dodge = threat & still & (cool[ids] == 0) & v.even
        keys[:, P.K_DODGE] |= dodge  # l with no direction while still: an invulnerable dodge
        cool[ids] = np.where(dodge, 32, cool[ids])
        backdash = threat & ~dodge & v.facing_opp & v.even
        keys[:, P.K_DODGE] |= backdash
        press_dir(keys, backdash, -v.toward)

    @staticmethod
    def _punish(v: View, keys: np.ndarray, engage: np.ndarray) -> None:
        walk_to(v, keys, engage, v.ox, tol=0.5)
        level = np.abs(v.dy) < 0.7
        jab = engage & level & (v.adx < 1.0) & v.facing_opp
        poke = engage & level & ~jab & (v.adx < 1.75)
        attack(keys, jab, False, "neutral", v.toward)
        attack(keys, poke, False, "side", v.toward)


# Preferred spacing (opponent distance) per weapon for the zoner: Punch, Spear, Hammer.
_ZONER_RANGE = np.array([1.55, 2.35, 1.85])


class ZonerAgent(StyleAgent):
    """Spear zoner/kiter: fetches a weapon (never a dropped Hammer) when unarmed and it is not near the
    opponent, hovers at its weapon's maximum reach poking with side lights and side signatures, and
    backdashes away whenever the opponent steps inside that range."""

    name = "zoner"

    def play(self, v: View, keys: np.ndarray, ids: np.ndarray) -> np.ndarray:
        found, wx, wy = nearest_weapon(v, (P.SLOT_SPAWNED, P.SLOT_DROPPED_SPEAR))
        seek = (v.weapon == P.PUNCH) & found & (np.abs(wx - v.ox) > 1.5)
        go_pick_up(v, keys, seek, wx, wy)
        fight = ~seek
        r = _ZONER_RANGE[v.weapon]
        cornered = (room_behind(v) < 1.0) & (v.adx < r)
        keep_spacing(v, keys, fight & ~cornered, r)
        level = np.abs(v.dy) < 0.6
        in_range = fight & v.grounded & level & (v.adx < r + 0.3) & ((v.adx > r - 0.9) | cornered) & ~v.opp_ko
        big = in_range & (v.odamage > 0.2) & (v.frame % 4 == 0)
        keys[in_range, P.K_DODGE] = False
        attack(keys, big, True, "side", v.toward)
        attack(keys, in_range & ~big, False, "side", v.toward)
        return np.where(seek, wx, reachable(v, v.ox - v.toward * r))


class WeaponSeekerAgent(StyleAgent):
    """Weapon seeker: whenever unarmed and a weapon lies on the stage it walks or jumps to it and picks it
    up (h on alternate frames); armed, it brawls with charged signature moves; meanwhile it jabs."""

    name = "weapon_seeker"

    def play(self, v: View, keys: np.ndarray, ids: np.ndarray) -> np.ndarray:
        found, wx, wy = nearest_weapon(v, (P.SLOT_SPAWNED, P.SLOT_DROPPED_SPEAR, P.SLOT_DROPPED_HAMMER))
        seek = (v.weapon == P.PUNCH) & found
        go_pick_up(v, keys, seek, wx, wy)
        armed = ~seek & (v.weapon != P.PUNCH)
        unarmed = ~seek & ~armed
        walk_to(v, keys, ~seek, reachable(v, v.ox - v.toward * np.where(armed, 1.1, 0.7)), tol=0.25)
        g, live = v.grounded, ~v.opp_ko
        level = np.abs(v.dy) < 0.8
        # Heavies: hold k for a short charge window, then let go so the move fires.
        window = v.frame % 20 < 12
        sweep = armed & g & live & level & (v.adx < 0.8) & window
        lunge = armed & g & live & level & ~sweep & (v.adx < 2.0) & window
        uppercut = armed & g & live & (v.dy < -0.8) & (v.dy > -2.2) & (v.adx < 1.2) & window
        attack(keys, sweep, True, "down", v.toward)
        attack(keys, lunge, True, "side", v.toward)
        attack(keys, uppercut & ~sweep & ~lunge, True, "neutral", v.toward)
        turn_to(v, keys, uppercut)
        jab = unarmed & g & live & level & (v.adx < 1.7)
        attack(keys, jab, False, "side", v.toward)
        return np.where(seek, wx, v.ox)


class EdgeGuardAgent(StyleAgent):
    """Edge-guarder: waits at the inner ledge of its own ground (next to the centre platform) while the
    opponent comes to it; an idle or close opponent is engaged from its centre side so that hits send it
    toward the nearer blast line. Once the opponent is knocked off stage it goes to the nearest ledge and
    meets the recovery with side lights and hop-off down-airs, never flying more than a body length past
    the edge itself."""

    name = "edge_guard"
    memory: ClassVar[dict[str, type]] = {"frame": np.int64, "idle": np.int64}
    allowance = 1.2
    reach_out = 0.9  # how far past a ledge it will fly to spike

    def play(self, v: View, keys: np.ndarray, ids: np.ndarray) -> np.ndarray:
        idle = self.mem["idle"]
        idle[ids] = np.where((np.abs(v.ovx) < 0.5) & v.ogrounded, idle[ids] + 1, 0)
        guard = v.opp_off
        os_ = side(v.ox)
        ledge = os_ * np.where(np.abs(v.ox) > 4.5, SAFE_OUT - 0.1, SAFE_IN - 0.1)
        engage = ~guard & ~v.opp_ko & ((idle[ids] > 50) | (v.dist < 3.0))
        home = ~guard & ~engage
        home_x = side(v.x) * SAFE_IN
        walk_to(v, keys, home, home_x, tol=0.3)
        turn_to(v, keys, home & (np.abs(v.x - home_x) <= 0.3))
        self._engage(v, keys, engage)
        self._guard(v, keys, guard, ledge)
        return np.where(guard, ledge, np.where(engage, v.ox, home_x))

    @staticmethod
    def _engage(v: View, keys: np.ndarray, engage: np.ndarray) -> None:
        # Stand on the centre side of the opponent so that our hits send it toward the nearer blast line.
        out = side(v.ox)
        inner_side = (v.x * out) < (v.ox * out) - 0.3
        walk_to(v, keys, engage, reachable(v, v.ox - out * 1.2), tol=0.25)
        level = np.abs(v.dy) < 0.7
        hit = engage & v.grounded & inner_side & level & (v.adx < 1.8)
        big = hit & (v.odamage > 0.18) & (v.frame % 3 == 0)
        attack(keys, big, True, "side", out)
        attack(keys, hit & ~big, False, "side", out)

    def _guard(self, v: View, keys: np.ndarray, guard: np.ndarray, ledge: np.ndarray) -> None:
        g = v.grounded
        walk_to(v, keys, guard & g, ledge, tol=0.2)
        level = np.abs(v.dy) < 0.7
        at_ledge = guard & g & (np.abs(v.x - ledge) < 0.6)
        poke = at_ledge & level & (v.adx < 1.9)
        attack(keys, poke, False, "side", v.toward)
        low = (v.dy > 0.4) & (v.dy < 2.0) & (v.adx < 1.4)
        keys[:, P.K_JUMP] |= at_ledge & ~poke & low & v.even  # hop off to spike it
        turn_to(v, keys, guard & g & ~poke & (np.abs(v.x - ledge) <= 0.2))
        air = guard & ~g
        spike = air & (v.dy > 0.3) & (v.dy < 1.6) & (v.adx < 0.6)
        attack(keys, spike, False, "down", v.toward)
        # Follow it in the air, but only up to reach_out past the ledge we guard from.
        s = side(ledge)
        tx = s * np.clip(v.ox * s, INNER - self.reach_out, OUTER + self.reach_out)
        press_dir(keys, air & ~spike & (np.abs(tx - v.x) > 0.2), tx - v.x)


class AerialAgent(StyleAgent):
    """Air fighter: approaches in short hops, fights almost only with neutral/side/down airs and drops
    ground pounds onto opponents below it (only over a ground, never over the gap)."""

    name = "aerial"

    def play(self, v: View, keys: np.ndarray, ids: np.ndarray) -> np.ndarray:
        g, air, live = v.grounded, ~v.grounded, ~v.opp_ko
        walk_to(v, keys, g, v.ox, tol=0.3)
        # Hop whenever near; in the air climb to the opponent's height plus a little.
        keys[:, P.K_JUMP] |= g & (v.adx < 3.5) & live & v.even
        climb = air & (v.dy < -0.3) & (v.vy > 0) & (v.jumps > 1) & (v.y > -1.0) & v.even  # not into the sky
        keys[:, P.K_JUMP] |= climb
        over = (np.abs(v.x) > INNER + 0.4) & (np.abs(v.x) < OUTER - 0.4)
        pound = air & live & over & (v.adx < 0.5) & (v.dy > 1.2) & (v.dy < 3.0)
        attack(keys, pound, True, "down", v.toward)
        AggressiveAgent._air_attacks(v, keys, air & live & ~pound)
        return v.ox


# Where each grounded move connects with a standing opponent: (nearest, farthest) distance in front, by
# weapon, measured on the engine (each move started standing, facing an opponent parked at distances
# -1..4.5 in steps of 0.25; a negative near end means it also hits just behind; signatures charged 12
# frames). The spear's side signature and the hammer's sweep lunge to at least 4.5, the end of the scan.
# tests/test_roster.py checks the far ends on the engine.
MOVE_REACH = {
    P.PUNCH: {P.NLIGHT: (-0.25, 1.0), P.DLIGHT: (-0.25, 2.0), P.SLIGHT: (-0.25, 1.75), P.NSIG: (-0.25, 0.75),
              P.DSIG: (-1.0, 1.5), P.SSIG: (-0.25, 1.75)},
    P.SPEAR: {P.NLIGHT: (0.25, 2.25), P.DLIGHT: (0.25, 0.75), P.SLIGHT: (-0.25, 3.75), P.NSIG: (1.25, 2.75),
              P.DSIG: (-1.0, 1.0), P.SSIG: (2.25, 4.5)},
    P.HAMMER: {P.NLIGHT: (-0.25, 2.25), P.DLIGHT: (-0.25, 2.0), P.SLIGHT: (0.25, 3.75), P.NSIG: (-0.25, 1.5),
               P.DSIG: (1.25, 4.5), P.SSIG: (0.25, 3.5)},
}  # fmt: skip


def reach(weapon: np.ndarray, move: int, end: int) -> np.ndarray:
    """MOVE_REACH's near (end=0) or far (end=1) distance of ``move`` for each row's weapon."""
    table = np.array([MOVE_REACH[w][move][end] for w in (P.PUNCH, P.SPEAR, P.HAMMER)])
    return table[weapon]


def in_reach(v: View, move: int, margin: float = 0.15) -> np.ndarray:
    return (v.adx >= reach(v.weapon, move, 0)) & (v.adx <= reach(v.weapon, move, 1) - margin)


class HeavyHitterAgent(StyleAgent):
    """Heavy hitter: walks in (never dashes or jumps to chase) and starts charging a signature from outside
    jab range, holding the charge while the opponent walks into it and releasing when it will connect:
    a dashing strike from range, a sweep up close, an uppercut at opponents above."""

    name = "heavy"
    memory: ClassVar[dict[str, type]] = {"frame": np.int64, "charging": np.int64}

    def play(self, v: View, keys: np.ndarray, ids: np.ndarray) -> np.ndarray:
        charging = self.mem["charging"]
        attacking = v.state == P.ATTACK
        # The dashing strike would carry us off the ledge in front: sweep instead, which needs us closer in.
        no_lunge = v.on_ground & (ledge_room(v, v.toward) < LUNGE_HEAVY + 0.8)  # edge_safety's margin and more
        strike_spot = (reach(v.weapon, P.SSIG, 0) + reach(v.weapon, P.SSIG, 1)) / 2
        sweep_spot = np.maximum(reach(v.weapon, P.DSIG, 1) - 0.4, 0.3)
        spacing = np.where(no_lunge, sweep_spot, strike_spot)
        walk_to(v, keys, ~attacking, reachable(v, v.ox - v.toward * spacing), tol=0.3)
        live = ~v.opp_ko
        level = np.abs(v.dy) < 0.7
        start = v.grounded & v.actionable & live
        sweep = start & level & in_reach(v, P.DSIG)
        upper = start & ~sweep & (v.dy < -0.8) & (v.dy > -2.2) & (v.adx < reach(v.weapon, P.NSIG, 1))
        # An opponent running in covers ground while the minimum charge and the startup run.
        incoming = np.maximum(-v.ovx * v.toward, 0.0)
        strike = start & ~sweep & ~upper & level & ~no_lunge
        # It swings a little early (up to 1.0 beyond the far end): the charge is its style, not a sure hit.
        strike &= (v.adx >= reach(v.weapon, P.SSIG, 0)) & (v.adx < reach(v.weapon, P.SSIG, 1) + 1.0 + 0.5 * incoming)
        attack(keys, sweep, True, "down", v.toward)
        attack(keys, upper, True, "neutral", v.toward)
        turn_to(v, keys, upper)
        attack(keys, strike, True, "side", v.toward)
        # Keep charging while the opponent is not yet where the move will land (0.2 s of closing speed ahead).
        closing = np.maximum((v.vx - v.ovx) * v.toward, 0.0)
        far = np.select(
            [v.move == m for m in (P.SSIG, P.DSIG, P.NSIG)],
            [reach(v.weapon, m, 1) for m in (P.SSIG, P.DSIG, P.NSIG)],
            0.0,
        )
        waiting = (closing > 1.0) & (v.adx - 0.2 * closing > far)  # it is walking into the move: not yet
        # ...and, out of jab range (2+ away), a wind-up of up to 24 frames: the charge is the style (it does not
        # change the damage); closer in, a wind-up only gets it jabbed.
        hold = (
            attacking
            & (charging[ids] > 0)
            & (charging[ids] < 30)
            & live
            & (waiting | ((charging[ids] < 24) & (v.adx > 2.0)))
        )
        keys[:, P.K_HEAVY] |= hold
        charging[ids] = np.where(sweep | upper | strike | hold, charging[ids] + 1, 0)
        return v.ox


class HumanLikeAgent(StyleAgent):
    """Noisy human: BasedAgent-like decisions taken on the observation of 6–12 frames ago (a per-match
    reaction delay), held for 2–7 frames, with occasional random inputs, heavies and taunts. Recovery and
    ledge safety react to the current frame (instinct)."""

    name = "human"
    memory: ClassVar[dict[str, type]] = {"frame": np.int64, "delay": np.int64, "hold": np.int64, "held": np.int64}
    history = 13  # frames of observations kept per match (≥ the longest delay + 1)
    edge_fear = 6.2  # |x| beyond which it walks back toward the centre (BasedAgent: 5.335)

    def __init__(self, file_path: str | None = None, seed: int | None = None):
        super().__init__(file_path, seed)
        self._hist = np.zeros((0, self.history, OPP * 2), np.float32)

    def reset(self) -> None:
        super().reset()
        self._hist[:] = 0

    # The observation history lives outside ``self.mem`` (it is 2-D per match): carry it through resumes.
    def get_state(self) -> dict:
        return {**super().get_state(), "history": self._hist.copy()}

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self._hist = np.asarray(state["history"], np.float32).copy()

    def play(self, v: View, keys: np.ndarray, ids: np.ndarray) -> np.ndarray:
        late = View(self._remember(v, ids), v.frame)
        hold, held = self.mem["hold"], self.mem["held"]
        decide = hold[ids] <= 0
        fresh = np.zeros_like(keys)
        self._decide(late, fresh)
        bits = np.where(decide, _pack(fresh), held[ids])
        held[ids] = bits
        hold[ids] = np.where(decide, self.rng.integers(2, 8, ids.shape[0]), hold[ids] - 1)
        keys[:] = _unpack(bits)
        # Instinct on the current frame: a decision taken while (late) grounded must not spend the air
        # jumps high up, nor turn a ground heavy into the once-per-airtime Recovery move.
        air = ~v.grounded
        keys[air, P.K_HEAVY] = False
        keys[air & (v.y < stand_y(side(v.x)) - 1.0), P.K_JUMP] = False
        return np.where(np.abs(late.x) > self.edge_fear, 0.0, late.ox)

    def _remember(self, v: View, ids: np.ndarray) -> np.ndarray:
        if self._hist.shape[0] <= ids.max():
            grown = np.zeros((max(int(ids.max()) + 1, 2 * self._hist.shape[0]), *self._hist.shape[1:]), np.float32)
            grown[: self._hist.shape[0]] = self._hist
            self._hist = grown
        delay = self.mem["delay"]
        fresh = v.frame == 0
        self._hist[ids[fresh]] = v.obs[fresh][:, None, :]  # a new match: its past is its first frame
        delay[ids[fresh]] = self.rng.integers(6, 13, int(fresh.sum()))
        self._hist[ids, v.frame % self.history] = v.obs
        return self._hist[ids, (v.frame - delay[ids]) % self.history]

    def _decide(self, d: View, keys: np.ndarray) -> None:
        n = d.x.shape[0]
        r = self.rng.random((n, 5))
        # BasedAgent's plan, a little less rigid: back off the very edge, else chase unless it is stunned.
        off_centre = np.abs(d.x) > self.edge_fear
        chase = ~off_centre & ~d.opp_stunned & ~d.opp_ko
        walk_to(d, keys, off_centre, np.zeros(n), tol=0.3)
        walk_to(d, keys, chase, d.ox, tol=0.3)
        keys[:, P.K_JUMP] |= (d.oy < d.y - 0.8) & (d.adx < 3.0)
        close = (d.dist < 2.0) & ~d.opp_ko
        heavy = close & (r[:, 0] < 0.15)
        attack(keys, heavy, True, "side", d.toward)
        attack(keys, close & ~heavy & (r[:, 1] < 0.7), False, "side", d.toward)
        keys[:, P.K_LIGHT] |= close & ~heavy
        keys[:, P.K_TAUNT] |= (d.opp_ko & (r[:, 2] < 0.3)) | (r[:, 3] < 0.01)
        noise = r[:, 4] < 0.06
        keys[noise] = self.rng.random((int(noise.sum()), P.N_KEYS)) < 0.3
        # Fumbles never burn the air jumps or the recovery: those are what bring a human back.
        keys[noise & ~d.grounded, P.K_JUMP] = False
        keys[noise & ~d.grounded, P.K_HEAVY] = False


_BITS = 1 << np.arange(P.N_KEYS)


def _pack(keys: np.ndarray) -> np.ndarray:
    return (keys.astype(np.int64) * _BITS).sum(axis=1)


def _unpack(bits: np.ndarray) -> np.ndarray:
    return (bits[:, None] & _BITS) > 0


ROSTER: dict[str, type[StyleAgent]] = {
    cls.name: cls
    for cls in (
        AggressiveAgent,
        CounterAgent,
        ZonerAgent,
        WeaponSeekerAgent,
        EdgeGuardAgent,
        HumanLikeAgent,
        AerialAgent,
        HeavyHitterAgent,
    )
}
for _name, _cls in ROSTER.items():
    register_agent(_name, _cls)


def win_rate_table(
    n_matches: int = 64, seed: int = 0, opponents: tuple[str, ...] = ("constant", "random", "based")
) -> str:
    """Win rate of every roster bot (and BasedAgent) in player slot 0 against each opponent, as a text table."""
    from environment.match import play_matches  # only needed here: keeps importing the roster light

    lines = [f"{'bot':14s}" + "".join(f"{'vs ' + o:>12s}" for o in opponents)]
    for name in [*ROSTER, "based"]:
        cells = []
        for opponent in opponents:
            bot, other = make_agent(name, seed=seed), make_agent(opponent, seed=seed + 1)  # reproducible noise
            stats = play_matches(bot, other, n_matches=n_matches, seed=seed)
            cells.append(f"{sum(s.winner == 'player_1' for s in stats) / n_matches:12.2f}")
        lines.append(f"{name:14s}" + "".join(cells))
    return "\n".join(lines)


if __name__ == "__main__":
    print(win_rate_table())
