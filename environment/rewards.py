"""Vectorized rewards: the reward of ONE player slot (the learner) for all N matches, every frame.

Spec card. ``me`` is the learner's column (``ctx.player``), ``opp`` the other one;
``dt`` = 1/30 s; y points down. Every term returns an ``(n,)`` array; the manager
multiplies it by the term's weight. "+" terms reward the learner for a positive
value, so give a negative weight to turn a "+1 when ..." signal into a penalty.

Dense terms (called every frame, ``RewTerm(func, weight, params)``):

| term                  | value per frame                                                          | sign |
|-----------------------|--------------------------------------------------------------------------|------|
| damage_interaction    | (dealt − taken) / 140, from ``events.damage_dealt``; modes               | ±    |
|                       | "symmetric", "dealt_only" (dealt/140), "taken_only" (−taken/140)         |      |
| danger_zone           | −dt while y_me > height (4.2; blast line y > 8) and me not KO            | −    |
| attack_spam           | −dt while me is in the Attack state (8)                                  | −    |
| too_many_keys         | −dt while me holds more than max_keys (3) keys                           | −    |
| closing_distance      | |p_me − p_opp| before − after this frame; 0 while either is KO           | ±    |
| own_approach          | the learner's own share of that: |p_me − p_opp| before − |p_me after −    | ±    |
|                       | p_opp before|; waiting while the opponent walks in earns 0; 0 as well   |      |
|                       | for a step that does not end on a ground or the platform (airborne)     |      |
| distance_cost         | −dt · max(0, |p_me − p_opp| − near) (near 3); 0 while either is KO and   | −    |
|                       | on a knockout's frame: standing far from the opponent costs every second |      |
| edge_pressure         | +dt · max(clip((|x_opp| − edge_x)/(14 − edge_x)), clip((y_opp − low_y)/   | +    |
|                       | (8 − low_y))), clip to [0, 1]; 0 while opp is KO                         |      |
| toward_weapon         | while me is unarmed and a weapon lies in a slot: distance to the nearest | ±    |
|                       | lying weapon before − after this frame (slots at their current place)    |      |

Signal terms (``signal_subscriptions={name: (signal, RewTerm)}``), called only on
frames where their signal fired in at least one match:

| term               | signal          | value                                                     | sign |
|--------------------|-----------------|-----------------------------------------------------------|------|
| on_win             | win             | +1 learner won, −1 lost, 0 draw / not ended               | ±    |
| on_knockout        | knockout        | +1 opponent lost a stock, −1 learner lost one (both: 0)   | ±    |
| on_knockout_dealt  | knockout        | +1 opponent lost a stock                                  | +    |
| on_knockout_taken  | knockout        | +1 learner lost a stock (use a negative weight)           | +    |
| on_combo           | hit_during_stun | +1 per combo hit by the learner (hit on a stunned target) | +    |
| on_equip           | weapon_equip    | hammer (1.0) / spear (0.5) when the learner picks one up  | +    |
| on_drop            | weapon_drop     | +1 when the learner drops its weapon (negative weight)    | +    |

Signals and when they fire (per match): knockout ← ``events.knocked_out.any(axis=1)``;
win ← ``events.done``; hit_during_stun ← ``events.combo.any(axis=1)``; weapon_equip ←
``(events.weapon_equip > 0).any(axis=1)``; weapon_drop ← ``events.weapon_drop.any(axis=1)``.
A signal func MUST return 0 for matches where its signal did not fire (the built-ins
do); the manager zeroes those matches anyway, so a forgetful func cannot leak reward.

Managers: ``sparse_reward_manager()`` (damage 1, win 100, knockout 50), which is also
``default_reward_manager()``, the envs' reward when none is given. The trainer's shaped reward is
defined by its config (``user/train_agent.py``).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

import numpy as np

from environment import params as P
from environment.engine import StepEvents, any_nonzero
from environment.params import DEFAULT_PARAMS, GameParams
from environment.state import MatchState

# Damage is normalised by 140, i.e. a fifth of the 700 cap: a typical knockout
# costs 100–200 damage, so the damage term is worth about one unit per stock.
DAMAGE_SCALE = 1.0 / 140.0

_ONES_U8 = np.ones(P.N_KEYS, np.uint8)

SIGNALS = ("knockout", "win", "hit_during_stun", "weapon_equip", "weapon_drop")
DAMAGE_MODES = ("symmetric", "dealt_only", "taken_only")


# ==================================================================================
# Context
# ==================================================================================
@dataclass
class RewardContext:
    """Everything a reward function may read about one frame of N matches.

    :param state: the state after the step
    :param prev_x, prev_y: (n, 2) positions before the step (the env copies them)
    :param events: the step's events
    :param keys: (n, 2, 10) bool keys held this frame
    :param params: the game's constants
    :param player: the learner's slot (0 or 1); the opponent is the other slot
    """

    state: MatchState
    prev_x: np.ndarray
    prev_y: np.ndarray
    events: StepEvents
    keys: np.ndarray
    params: GameParams = DEFAULT_PARAMS
    player: int = 0

    def __post_init__(self) -> None:
        if self.player not in (0, 1):
            raise ValueError(f"player must be 0 or 1, got {self.player!r}")

    @property
    def me(self) -> int:
        """The learner's column in (n, 2) player arrays."""
        return self.player

    @property
    def opp(self) -> int:
        """The opponent's column."""
        return 1 - self.player

    @property
    def n(self) -> int:
        return self.state.n

    @property
    def dt(self) -> float:
        """Seconds per frame: per-second rates are paid as ``rate * dt`` each frame."""
        return P.DT

    def mine(self, arr: np.ndarray) -> np.ndarray:
        """The learner's column of an (n, 2, ...) array (a view)."""
        return arr[:, self.player]

    def theirs(self, arr: np.ndarray) -> np.ndarray:
        """The opponent's column of an (n, 2, ...) array (a view)."""
        return arr[:, 1 - self.player]


# ==================================================================================
# Dense terms
# ==================================================================================
def damage_interaction(ctx: RewardContext, mode: str = "symmetric") -> np.ndarray:
    """(damage dealt − damage taken) / 140 this frame.

    ``mode``: "symmetric" (dealt − taken), "dealt_only" (+dealt) or "taken_only"
    (−taken). Sign: + for dealing damage, − for taking it.
    """
    dealt = ctx.mine(ctx.events.damage_dealt)
    taken = ctx.theirs(ctx.events.damage_dealt)
    if mode == "symmetric":
        return (dealt - taken) * DAMAGE_SCALE
    if mode == "dealt_only":
        return dealt * DAMAGE_SCALE
    if mode == "taken_only":
        return taken * -DAMAGE_SCALE
    raise ValueError(f"damage_interaction mode must be one of {DAMAGE_MODES}, got {mode!r}")


def danger_zone(ctx: RewardContext, height: float = 4.2) -> np.ndarray:
    """−dt per frame (−1 per second) while the learner is below ``height`` (y > height, y down) and not KO.

    Below the stage the only way out is a recovery; the blast line is y > 8.
    """
    y = ctx.mine(ctx.state.y)
    alive = ctx.mine(ctx.state.state) != P.KO
    return ((y > height) & alive) * -ctx.dt


def attack_spam(ctx: RewardContext) -> np.ndarray:
    """−dt per frame spent in the Attack state (8): a price on swinging at nothing."""
    return (ctx.mine(ctx.state.state) == P.ATTACK) * -ctx.dt


def too_many_keys(ctx: RewardContext, max_keys: int = 3) -> np.ndarray:
    """−dt per frame while the learner holds more than ``max_keys`` keys (mashing)."""
    keys = ctx.mine(ctx.keys)
    if keys.dtype != bool:
        keys = keys > 0.5  # float keys, read as the engine reads them
    # A byte dot product counts the keys ~3x faster than count_nonzero(axis=1) at this size.
    held = keys.view(np.uint8) @ _ONES_U8[: keys.shape[1]]
    return (held > max_keys) * -ctx.dt


def _distance(ax: np.ndarray, ay: np.ndarray, bx: np.ndarray, by: np.ndarray) -> np.ndarray:
    return np.hypot(ax - bx, ay - by)


def _either(arr: np.ndarray) -> np.ndarray:
    """(n,) bool: either player's entry of an (n, 2) array is nonzero (faster than any(axis=1))."""
    if arr.dtype == bool:
        return arr[:, 0] | arr[:, 1]
    return (arr[:, 0] != 0) | (arr[:, 1] != 0)


def _knockout_frame(ctx: RewardContext) -> np.ndarray:
    """(n,) bool: either player is KO or was knocked out this frame. A knocked-out player is frozen
    beyond the blast line and then respawns at its start point: neither is movement."""
    ko = ctx.state.state == P.KO
    return ko[:, 0] | ko[:, 1] | _either(ctx.events.knocked_out)


def closing_distance(ctx: RewardContext) -> np.ndarray:
    """Distance between the players before the step minus after it (+ when closing in).

    Units per frame (walking straight at a standing opponent earns 6.75/30 = 0.225).
    0 while either player is KO, and on a knockout's frame: a knocked-out player is frozen
    beyond the blast line and then respawns at its start point, and neither is movement.
    """
    s = ctx.state
    before = _distance(ctx.prev_x[:, 0], ctx.prev_y[:, 0], ctx.prev_x[:, 1], ctx.prev_y[:, 1])
    after = _distance(s.x[:, 0], s.y[:, 0], s.x[:, 1], s.y[:, 1])
    return np.where(_knockout_frame(ctx), 0.0, before - after)


def own_approach(ctx: RewardContext) -> np.ndarray:
    """How far the learner's own movement this frame took it toward the opponent (+ when closing in).

    :func:`closing_distance` pays the learner when the *opponent* walks in too, so against bots
    that approach, waiting earns as much as walking, and a policy can learn to stand still and
    draw with a bot that never comes (issue 14: argmax play stuck against standing bots). This
    term measures the learner's step against the opponent's position before the frame. Same
    units and the same zeros (either player KO, a knockout's frame) as ``closing_distance``, and
    0 for a step that does not end on a ground or the platform: walking at an opponent across
    the gap between the grounds, or after one knocked off the stage, is how an agent falls, not
    how it fights (a first version paid airborne steps, and its agents fell about once a match).
    """
    s = ctx.state
    opp_x, opp_y = ctx.theirs(ctx.prev_x), ctx.theirs(ctx.prev_y)
    before = _distance(ctx.mine(ctx.prev_x), ctx.mine(ctx.prev_y), opp_x, opp_y)
    after = _distance(ctx.mine(s.x), ctx.mine(s.y), opp_x, opp_y)
    return np.where(_knockout_frame(ctx) | ~ctx.mine(s.grounded), 0.0, before - after)


def distance_cost(ctx: RewardContext, near: float = 3.0) -> np.ndarray:
    """−dt per frame for each unit of distance between the players beyond ``near`` (a penalty).

    The approach terms pay movement, so standing still earns 0 from them: an argmax policy that
    prefers waiting at the edge of its ground for the opponent to come draws every match against
    a bot that never comes (issue 14: the judge's `constant`, `hold:dodge`, `hold:pickup_drop`).
    This term prices the waiting itself, and only the way out of it, getting close, ends the
    cost; it cannot be dodged by walking back and forth or jumping in place. 0 while either
    player is KO and on a knockout's frame (a respawn is not distance the learner chose).
    """
    s = ctx.state
    distance = _distance(s.x[:, 0], s.y[:, 0], s.x[:, 1], s.y[:, 1])
    beyond = np.maximum(distance - near, 0.0)
    return np.where(_knockout_frame(ctx), 0.0, -beyond * ctx.dt)


def edge_pressure(ctx: RewardContext, edge_x: float = 7.0, low_y: float = 4.2) -> np.ndarray:
    """+dt per frame scaled by how close the opponent is to a blast zone, 0 while it is KO.

    closeness = max(clip((|x_opp| − edge_x) / (14 − edge_x), 0, 1),
                    clip((y_opp − low_y) / (8 − low_y), 0, 1))
    With the defaults: 0 while the opponent is over the stage's width and above
    y = 4.2, 1 at the blast lines. Sign: +.
    """
    p = ctx.params
    x = np.abs(ctx.theirs(ctx.state.x))
    y = ctx.theirs(ctx.state.y)
    side = np.clip((x - edge_x) / (p.blast_x - edge_x), 0.0, 1.0)
    below = np.clip((y - low_y) / (p.blast_y - low_y), 0.0, 1.0)
    alive = ctx.theirs(ctx.state.state) != P.KO
    return np.maximum(side, below) * alive * ctx.dt


def _nearest_weapon(px: np.ndarray, py: np.ndarray, s: MatchState, present: np.ndarray) -> np.ndarray:
    """Distance from (px, py) to the nearest lying weapon's body (inf where none)."""
    dx = s.weapon_x - px[:, None]
    dy = s.weapon_y - py[:, None]
    d2 = dx * dx + dy * dy
    np.copyto(d2, np.inf, where=~present)
    return np.sqrt(d2.min(axis=1))


def toward_weapon(ctx: RewardContext) -> np.ndarray:
    """While the learner is unarmed (weapon 0) and a weapon lies about: the decrease
    of the distance to the nearest lying weapon this frame (+ approaching, − leaving).

    Both distances use the weapons' current positions, so only the learner's own
    movement counts (not a dropped weapon falling, nor one spawning). 0 while the
    learner is KO or was knocked out this frame.
    """
    s = ctx.state
    present = s.weapon_kind > 0
    active = (ctx.mine(s.weapon) == P.PUNCH) & (ctx.mine(s.state) != P.KO) & ~ctx.mine(ctx.events.knocked_out)
    active &= present.any(axis=1)
    out = np.zeros(s.n, np.float32)
    if not active.any():
        return out
    before = _nearest_weapon(ctx.mine(ctx.prev_x), ctx.mine(ctx.prev_y), s, present)
    after = _nearest_weapon(ctx.mine(s.x), ctx.mine(s.y), s, present)
    np.subtract(before, after, out=out, where=active)
    return out


# ==================================================================================
# Signal terms (return 0 wherever the signal did not fire)
# ==================================================================================
def on_win(ctx: RewardContext) -> np.ndarray:
    """+1 if the learner won the match this frame, −1 if it lost, 0 on a draw or while playing."""
    ev = ctx.events
    won = P.RESULT_P0_WINS if ctx.player == 0 else P.RESULT_P1_WINS
    lost = P.RESULT_P1_WINS if ctx.player == 0 else P.RESULT_P0_WINS
    return ev.done * ((ev.result == won).astype(np.float32) - (ev.result == lost))


def on_knockout(ctx: RewardContext) -> np.ndarray:
    """+1 when the opponent lost a stock this frame, −1 when the learner did (0 if both)."""
    ko = ctx.events.knocked_out
    return ctx.theirs(ko).astype(np.float32) - ctx.mine(ko)


def on_knockout_dealt(ctx: RewardContext) -> np.ndarray:
    """+1 when the opponent lost a stock this frame."""
    return ctx.theirs(ctx.events.knocked_out).astype(np.float32)


def on_knockout_taken(ctx: RewardContext) -> np.ndarray:
    """+1 when the learner lost a stock this frame; give it a negative weight to penalise."""
    return ctx.mine(ctx.events.knocked_out).astype(np.float32)


def on_combo(ctx: RewardContext) -> np.ndarray:
    """+1 per combo hit by the learner (a hit on an opponent who was already stunned)."""
    return ctx.mine(ctx.events.combo).astype(np.float32)


def on_equip(ctx: RewardContext, hammer: float = 1.0, spear: float = 0.5) -> np.ndarray:
    """``hammer`` / ``spear`` when the learner picks up a Hammer (weapon_equip 2) / Spear (1); else 0."""
    value = np.array([0.0, spear, hammer], np.float32)
    return value[ctx.mine(ctx.events.weapon_equip)]


def on_drop(ctx: RewardContext) -> np.ndarray:
    """+1 when the learner dropped its weapon this frame; give it a negative weight to penalise."""
    return ctx.mine(ctx.events.weapon_drop).astype(np.float32)


# ==================================================================================
# Terms and manager
# ==================================================================================
RewardFunc = Callable[..., np.ndarray]


@dataclass
class RewTerm:
    """One reward term: ``weight * func(ctx, **params)``, an (n,) array."""

    func: RewardFunc
    weight: float = 1.0
    params: dict[str, Any] | None = field(default=None)

    def __post_init__(self) -> None:
        if not callable(self.func):
            raise TypeError(f"RewTerm func must be callable, got {self.func!r}")
        if isinstance(self.weight, bool) or not isinstance(self.weight, Real) or not math.isfinite(self.weight):
            raise ValueError(f"RewTerm weight must be a finite number, got {self.weight!r} for {_func_name(self.func)}")
        if self.params is None:
            self.params = {}
        elif not isinstance(self.params, Mapping):
            raise ValueError(f"RewTerm params must be a dict or None, got {type(self.params).__name__}")
        else:
            self.params = dict(self.params)


def _func_name(func: Callable) -> str:
    return getattr(func, "__name__", repr(func))


def _check_params(name: str, term: RewTerm) -> None:
    """Reject a misspelt parameter when the manager is built, not on the first frame."""
    try:
        sig = inspect.signature(term.func)
    except (TypeError, ValueError):  # builtins and some callables have none
        return
    try:
        sig.bind(None, **term.params)
    except TypeError as err:
        func = _func_name(term.func)
        raise ValueError(f"reward term {name!r}: params {term.params} do not fit {func}: {err}") from err


def signal_fired(signal: str, events: StepEvents) -> np.ndarray | None:
    """(n,) bool: matches where ``signal`` fired this frame; None when it fired nowhere (the common case)."""
    if signal == "knockout":
        arr = events.knocked_out
    elif signal == "win":
        return events.done if any_nonzero(events.done) else None
    elif signal == "hit_during_stun":
        arr = events.combo
    elif signal == "weapon_equip":
        arr = events.weapon_equip  # 0 none, 1 Spear, 2 Hammer: nonzero is "> 0"
    elif signal == "weapon_drop":
        arr = events.weapon_drop
    else:
        raise ValueError(f"unknown reward signal {signal!r}; valid signals: {', '.join(SIGNALS)}")
    # A flat test is cheap and, for a single match, usually False.
    if not any_nonzero(arr):
        return None
    return _either(arr)


class RewardManager:
    """Weighted sum of dense terms and signal terms for all N matches of a frame.

    :param reward_functions: ``{name: RewTerm}``, called every frame
    :param signal_subscriptions: ``{name: (signal, RewTerm)}``, called only on frames
        where ``signal`` fired in at least one match; the term's value is zeroed in
        matches where it did not fire

    ``compute(ctx)`` returns the (n,) float32 total (a new array); ``last_terms``
    holds this frame's weighted values per term (reused buffers, overwritten on the
    next call); ``episode_sums`` the per-match running sums (float64) since the
    last ``pop_episode_sums`` of that match. Buffers are sized by ``reset(n)``, or
    on the first ``compute`` with a new n.
    """

    def __init__(
        self,
        reward_functions: dict[str, RewTerm] | None = None,
        signal_subscriptions: dict[str, tuple[str, RewTerm]] | None = None,
    ):
        self.dense: dict[str, RewTerm] = {}
        self.signals: dict[str, tuple[str, RewTerm]] = {}
        for name, term in (reward_functions or {}).items():
            self._check_term(name, term)
            self.dense[name] = term
        for name, sub in (signal_subscriptions or {}).items():
            if name in self.dense:
                raise ValueError(f"reward term name {name!r} is used twice (dense and signal)")
            if not isinstance(sub, (tuple, list)) or len(sub) != 2:
                raise ValueError(f"signal subscription {name!r} must be a (signal, RewTerm) pair, got {sub!r}")
            signal, term = sub
            if signal not in SIGNALS:
                valid = ", ".join(SIGNALS)
                raise ValueError(f"signal subscription {name!r}: unknown signal {signal!r}; valid: {valid}")
            self._check_term(name, term)
            self.signals[name] = (signal, term)
        # Signals with at least one subscriber, so compute() tests each only once.
        self._used_signals = tuple(dict.fromkeys(sig for sig, _ in self.signals.values()))
        self.n = 0
        self.last_terms: dict[str, np.ndarray] = {}
        self.episode_sums: dict[str, np.ndarray] = {}
        self._checked: set[str] = set()

    @staticmethod
    def _check_term(name: str, term: RewTerm) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"reward term names must be non-empty strings, got {name!r}")
        if not isinstance(term, RewTerm):
            raise TypeError(f"reward term {name!r} must be a RewTerm, got {type(term).__name__}")
        _check_params(name, term)

    @property
    def term_names(self) -> list[str]:
        """Dense terms, then signal terms, in the order given."""
        return [*self.dense, *self.signals]

    def reset(self, n: int) -> None:
        """Size (and zero) the buffers for n matches."""
        if not isinstance(n, (int, np.integer)) or n <= 0:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        self.n = int(n)
        self.last_terms = {name: np.zeros(self.n, np.float32) for name in self.term_names}
        self.episode_sums = {name: np.zeros(self.n, np.float64) for name in self.term_names}
        self._total = np.zeros(self.n, np.float32)
        self._checked.clear()

    def compute(self, ctx: RewardContext) -> np.ndarray:
        """This frame's reward of ``ctx.player`` in every match: (n,) float32."""
        if ctx.n != self.n:
            self.reset(ctx.n)
        total = self._total
        total.fill(0.0)
        for name, term in self.dense.items():
            self._add(name, term, ctx, None)
        fired = {sig: signal_fired(sig, ctx.events) for sig in self._used_signals}
        for name, (signal, term) in self.signals.items():
            if fired[signal] is None:
                self.last_terms[name].fill(0.0)
            else:
                self._add(name, term, ctx, fired[signal])
        if np.count_nonzero(np.isfinite(total)) != total.size:
            self._raise_non_finite()
        return total.copy()

    def _add(self, name: str, term: RewTerm, ctx: RewardContext, mask: np.ndarray | None) -> None:
        value = term.func(ctx, **term.params)
        if name not in self._checked:
            shape = np.shape(value)
            if shape != (self.n,):
                raise ValueError(
                    f"reward term {name!r} ({_func_name(term.func)}) returned shape {shape}, expected ({self.n},)"
                )
            self._checked.add(name)
        out = self.last_terms[name]
        np.multiply(value, term.weight, out=out, casting="unsafe")
        if mask is not None:
            out *= mask
        self._total += out
        self.episode_sums[name] += out

    def _raise_non_finite(self) -> None:
        for name, values in self.last_terms.items():
            if not np.isfinite(values).all():
                rows = np.flatnonzero(~np.isfinite(values))[:5].tolist()
                raise ValueError(f"reward term {name!r} returned non-finite values (matches {rows})")
        raise ValueError("reward total is non-finite")  # unreachable: the total is a sum of the terms

    def get_state(self) -> dict[str, Any]:
        """Running per-match episode sums (for exact resume)."""
        return {"episode_sums": {k: v.copy() for k, v in self.episode_sums.items()}}

    def set_state(self, state: dict[str, Any]) -> None:
        sums = state["episode_sums"]
        self.reset(len(next(iter(sums.values()))) if sums else self.n)
        for name, values in sums.items():
            self.episode_sums[name][:] = values

    def pop_episode_sums(self, rows) -> dict[str, np.ndarray]:
        """Per-term sums of the given (finished) matches, then zero those matches' sums."""
        rows = np.atleast_1d(np.asarray(rows))
        out = {}
        for name, sums in self.episode_sums.items():
            out[name] = sums[rows].copy()
            sums[rows] = 0.0
        return out


# ==================================================================================
# Ready-made managers
# ==================================================================================
def sparse_reward_manager() -> RewardManager:
    """Outcome-centred: damage (dealt − taken)/140 (weight 1), win ±100, knockout ±50.

    The trainer's ``reward.type: sparse`` (and the sparse half of its curriculum) is this manager;
    its damage term is named as in the trainer's dense reward, so the CSV columns line up.
    """
    return RewardManager(
        reward_functions={"damage_interaction": RewTerm(damage_interaction, 1.0)},
        signal_subscriptions={
            "win": ("win", RewTerm(on_win, 100.0)),
            "knockout": ("knockout", RewTerm(on_knockout, 50.0)),
        },
    )


def default_reward_manager() -> RewardManager:
    """The environments' reward when none is given, and the evaluations' fixed yardstick: the
    outcome reward of :func:`sparse_reward_manager`. Shaped rewards are the trainer's to define
    (``user/train_agent.py``, config ``reward``), so no second set of shaping weights lives here."""
    return sparse_reward_manager()
