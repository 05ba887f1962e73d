"""A menu of named moves ("macros"), each one fixed set of held keys.

Fighting-game agents pick from a small menu of moves instead of pressing ten keys
independently (issue 14: FightLadder, DIAMBRA, Phillip, FightingICE). This module is
that menu, defined once as data: the judge (``benchmarks/learn_quality.py``) holds each
macro as a constant-action opponent, and a macro policy head can map its choices through
:func:`macro_keys`. The environment still speaks ``MultiBinary(10)``
(keys ``w a s d space h l j k g``); the mapping happens at that boundary.

Directions are absolute (``left`` = ``a``, ``right`` = ``d``), not relative to the
opponent. What a key combination does depends on the state (DESIGN.md §3 and the
engine's ``rules.py``): on the ground a fresh ``l`` with a direction is a dash while
walking that way (so ``dash_left`` after ``walk_left``) and a backdash when the direction
is behind the player; from standing still toward the facing it starts a walk. In the
air a fresh ``l`` dodges. An attack's direction is down if ``s`` is held, else side if
``a``/``d`` is held, else neutral; in the air heavy neutral/side is the Recovery and
heavy down the GroundPound. Jump, dodge, dash, pick-up and taunt act on the frame the
key goes down, so holding one of those macros acts once; choosing it again after
another macro acts again.

====  ================  ==========  =================================================
id    name              keys        what it does
====  ================  ==========  =================================================
0     idle              (none)      nothing: stand, or drift down in the air
1     walk_left         a           walk left (air: steer left)
2     walk_right        d           walk right (air: steer right)
3     dash_left         a l         ground: dash (or backdash) left; air: dodge
4     dash_right        d l         ground: dash (or backdash) right; air: dodge
5     jump              space       jump straight up (ground or air jump)
6     jump_left         a space     jump while moving left
7     jump_right        d space     jump while moving right
8     fast_fall         s           fall faster while airborne
9     fast_fall_left    a s         fast-fall while steering left
10    fast_fall_right   d s         fast-fall while steering right
11    dodge             l           dodge in place (ground when nearly still, or air)
12    light_neutral     j           neutral light (air: neutral air)
13    light_left        a j         side light facing left (air: side air)
14    light_right       d j         side light facing right (air: side air)
15    light_down        s j         down light (air: down air)
16    heavy_neutral     k           neutral heavy, charged while held (air: Recovery)
17    heavy_left        a k         side heavy facing left (air: Recovery)
18    heavy_right       d k         side heavy facing right (air: Recovery)
19    heavy_down        s k         down heavy (air: GroundPound)
20    pickup_drop       h           pick up a weapon in reach, or drop the held one
21    pickup_left       a h         walk left and pick up on the way
22    pickup_right      d h         walk right and pick up on the way
23    taunt             g           taunt (ground only)
====  ================  ==========  =================================================

:data:`MACROS` holds the rows, :data:`MACRO_KEYS` the same table as a ``(24, 10)`` bool
array in key order, and :func:`macro_keys` turns macro ids (any shape) into key arrays.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from environment import params as P


class Macro(NamedTuple):
    name: str
    keys: str  # key names from params.KEY_NAMES, space-separated ("" = none)
    description: str


# The table in the module docstring, as data; a test checks that the two agree.
MACROS: tuple[Macro, ...] = (
    Macro("idle", "", "nothing: stand, or drift down in the air"),
    Macro("walk_left", "a", "walk left (air: steer left)"),
    Macro("walk_right", "d", "walk right (air: steer right)"),
    Macro("dash_left", "a l", "ground: dash (or backdash) left; air: dodge"),
    Macro("dash_right", "d l", "ground: dash (or backdash) right; air: dodge"),
    Macro("jump", "space", "jump straight up (ground or air jump)"),
    Macro("jump_left", "a space", "jump while moving left"),
    Macro("jump_right", "d space", "jump while moving right"),
    Macro("fast_fall", "s", "fall faster while airborne"),
    Macro("fast_fall_left", "a s", "fast-fall while steering left"),
    Macro("fast_fall_right", "d s", "fast-fall while steering right"),
    Macro("dodge", "l", "dodge in place (ground when nearly still, or air)"),
    Macro("light_neutral", "j", "neutral light (air: neutral air)"),
    Macro("light_left", "a j", "side light facing left (air: side air)"),
    Macro("light_right", "d j", "side light facing right (air: side air)"),
    Macro("light_down", "s j", "down light (air: down air)"),
    Macro("heavy_neutral", "k", "neutral heavy, charged while held (air: Recovery)"),
    Macro("heavy_left", "a k", "side heavy facing left (air: Recovery)"),
    Macro("heavy_right", "d k", "side heavy facing right (air: Recovery)"),
    Macro("heavy_down", "s k", "down heavy (air: GroundPound)"),
    Macro("pickup_drop", "h", "pick up a weapon in reach, or drop the held one"),
    Macro("pickup_left", "a h", "walk left and pick up on the way"),
    Macro("pickup_right", "d h", "walk right and pick up on the way"),
    Macro("taunt", "g", "taunt (ground only)"),
)
N_MACROS = len(MACROS)
MACRO_NAMES: tuple[str, ...] = tuple(m.name for m in MACROS)


def keys_from_names(names: str) -> np.ndarray:
    """A (10,) bool key vector from space-separated key names, e.g. ``"a space"``."""
    vector = np.zeros(P.N_KEYS, bool)
    for name in names.split():
        if name not in P.KEY_NAMES:
            raise ValueError(f"unknown key {name!r}; keys are {' '.join(P.KEY_NAMES)}")
        vector[P.KEY_NAMES.index(name)] = True
    return vector


MACRO_KEYS: np.ndarray = np.stack([keys_from_names(m.keys) for m in MACROS])
MACRO_KEYS.flags.writeable = False  # one table for everyone: nobody edits it in place


def macro_id(name: str) -> int:
    """The id of a macro by name."""
    try:
        return MACRO_NAMES.index(name)
    except ValueError:
        raise KeyError(f"unknown macro {name!r}; macros: {', '.join(MACRO_NAMES)}") from None


def macro_keys(ids) -> np.ndarray:
    """Key arrays for macro ids: shape ``ids.shape + (10,)``, bool, in key order.

    Raises on ids that are not whole numbers in ``[0, N_MACROS)`` (never wraps or clips).
    """
    arr = np.asarray(ids)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind != "f" or not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise TypeError(f"macro ids must be whole numbers, got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= N_MACROS):
        bad = arr[(arr < 0) | (arr >= N_MACROS)].ravel()[:5].tolist()
        raise ValueError(f"macro ids must be in [0, {N_MACROS}), got {bad}")
    return MACRO_KEYS[arr]


# nearest_macro's per-key mismatch cost: a wrong action key (jump, pick-up, dodge/dash,
# attacks, taunt) changes the move, a wrong direction only its heading; w is in no macro.
# s costs a little more than a/d because a held s makes an attack a down attack whatever
# else is held (a + s + k is heavy_down, not heavy_left).
_KEY_COSTS = {"w": 0.0, "a": 1.0, "d": 1.0, "s": 1.5}
_KEY_MISMATCH_COST = np.array([_KEY_COSTS.get(k, 2.0) for k in P.KEY_NAMES])


def nearest_macro(keys) -> np.ndarray:
    """The macro closest to each key vector: shape ``keys.shape[:-1]``, int64 ids.

    Distance is a weighted count of mismatched keys (action keys 2, ``s`` 1.5, ``a``/``d``
    1, ``w`` 0); ties go to the lower id. Maps scripted bots' keys onto the menu for behaviour
    cloning; every macro's own keys map back to that macro.
    """
    arr = np.asarray(keys) > 0.5
    if arr.shape[-1:] != (P.N_KEYS,):
        raise ValueError(f"keys must have a last axis of {P.N_KEYS}, got shape {arr.shape}")
    mismatch = arr[..., None, :] != MACRO_KEYS  # (..., N_MACROS, 10)
    return np.argmin(mismatch @ _KEY_MISMATCH_COST, axis=-1).astype(np.int64)


def describe_keys(keys) -> str:
    """Key names of one (10,) key vector, e.g. ``"a+k"`` (``"none"`` when nothing is held)."""
    pressed = np.asarray(keys).reshape(P.N_KEYS) > 0.5
    return "+".join(name for name, on in zip(P.KEY_NAMES, pressed, strict=True) if on) or "none"


__all__ = [
    "MACROS",
    "MACRO_KEYS",
    "MACRO_NAMES",
    "N_MACROS",
    "Macro",
    "describe_keys",
    "keys_from_names",
    "macro_id",
    "macro_keys",
    "nearest_macro",
]
