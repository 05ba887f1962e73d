"""Which scripted opponents the learner meets, and how often (issue 14, item 6).

An agent trained mostly against one bot learns that bot's exploit. :class:`OpponentSchedule`
spreads training over the roster and keeps it there, from the outcomes of the training
matches themselves (the learner samples its actions while training, so these are sampled-play
win rates, at no extra cost):

1. **Gated curriculum.** Bots come in groups, admitted in order. The next group joins when the
   learner's win rate against *each* opponent of the newest admitted group, over its last
   ``window`` matches (at least ``min_matches`` of them), reaches ``gate``. Admission is for good.
2. **Prioritized sampling.** An admitted opponent's weight is ∝ (1 − win rate) ** ``power``
   (an opponent with fewer than ``min_matches`` recent matches counts as 0.5), with a floor and
   a cap per opponent as a share of *all* training matches: nobody is forgotten, nobody dominates.
3. **Verification slice.** An opponent the learner once beat at ``verify_below`` or better and
   now beats less often is "forgotten": the forgotten share an extra ``verify_share`` of the
   bots' matches (taken proportionally from the others) until the rate is back.
4. **Permanent opponents.** Named bots (typically ``hold:<macro>`` constant-action bots that
   beat some roster bot: the free version of AlphaStar's exploiters) are admitted from the start.

The schedule owns the bots' share of matches, ``bot_share``; self-play keeps the rest. Weights
are shares of all matches, so they sum to ``bot_share``. Floor and cap yield only when they
cannot both hold: with n admitted opponents, n · floor > bot_share or n · cap < bot_share gives
every opponent bot_share / n. No random numbers: the same results give the same weights.
"""

from __future__ import annotations

from collections import deque
from typing import Any

# The keys of a schedule config, with defaults sized for the 30-minute CPU recipe.
SCHEDULE_DEFAULTS: dict[str, Any] = {
    "groups": [],  # lists of bot names, admitted in this order (the first from the start)
    "permanent": [],  # bots admitted from the start, outside the groups
    "gate": 0.6,  # win rate against each bot of the newest group that admits the next group
    "window": 64,  # matches per opponent that its win rate is measured over
    "min_matches": 16,  # fewer recent matches: the rate is not yet trusted (gate, priority, verification)
    "floor": 0.03,  # least share of all training matches per admitted opponent
    "cap": 0.25,  # largest share of all training matches per admitted opponent
    "power": 1.0,  # priority = (1 - win rate) ** power
    "verify_below": 0.7,  # a once-beaten opponent whose rate falls below this is "forgotten"
    "verify_share": 0.1,  # extra share of the bots' matches for the forgotten opponents
}
_UNTRUSTED_WIN_RATE = 0.5  # what an opponent with too few recent matches counts as


def check_schedule_config(config: dict[str, Any]) -> None:
    """Raise ValueError naming the key when a schedule config cannot work."""
    unknown = sorted(set(config) - set(SCHEDULE_DEFAULTS))
    if unknown:
        raise ValueError(f"opponent_schedule: unknown key {unknown[0]!r}; keys: {', '.join(SCHEDULE_DEFAULTS)}")
    c = {**SCHEDULE_DEFAULTS, **config}
    groups, permanent = c["groups"], c["permanent"]
    if not isinstance(groups, list) or not all(isinstance(g, list) and g for g in groups):
        raise ValueError("opponent_schedule.groups must be a list of non-empty lists of bot names")
    names = [n for g in groups for n in g] + list(permanent)
    if not names:
        raise ValueError("opponent_schedule.groups and .permanent name no opponent")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"opponent_schedule: {repeated[0]!r} is named twice (groups and permanent are disjoint)")
    if not 0 < c["gate"] <= 1:
        raise ValueError(f"opponent_schedule.gate must be in (0, 1], got {c['gate']!r}")
    for key in ("window", "min_matches"):
        if not isinstance(c[key], int) or c[key] < 1:
            raise ValueError(f"opponent_schedule.{key} must be a positive integer, got {c[key]!r}")
    if c["min_matches"] > c["window"]:
        raise ValueError("opponent_schedule.min_matches must be <= opponent_schedule.window")
    if not 0 <= c["floor"] < c["cap"] <= 1:
        raise ValueError(f"opponent_schedule: need 0 <= floor < cap <= 1, got floor {c['floor']}, cap {c['cap']}")
    if c["power"] <= 0:
        raise ValueError(f"opponent_schedule.power must be > 0, got {c['power']!r}")
    if not 0 < c["verify_below"] <= 1:
        raise ValueError(f"opponent_schedule.verify_below must be in (0, 1], got {c['verify_below']!r}")
    if not 0 <= c["verify_share"] < 1:
        raise ValueError(f"opponent_schedule.verify_share must be in [0, 1), got {c['verify_share']!r}")


def bounded_shares(priorities: dict[str, float], total: float, floor: float, cap: float) -> dict[str, float]:
    """Split ``total`` ∝ ``priorities``, each share clipped to [floor, cap], still summing to ``total``.

    The shares are clip(λ · priority, floor, cap) with λ found by bisection (their sum grows with
    λ from n · floor to n · cap). When the bounds cannot both hold, or every priority is 0, every
    share is total / n.
    """
    n = len(priorities)
    if n == 0:
        return {}
    if n * floor > total or n * cap < total or not any(p > 0 for p in priorities.values()):
        return {name: total / n for name in priorities}

    def shares(scale: float) -> dict[str, float]:
        # A priority of 0 still counts a little, so that the sum can reach n · cap.
        return {k: min(max(scale * max(p, 1e-9), floor), cap) for k, p in priorities.items()}

    low, high = 0.0, 1.0
    while sum(shares(high).values()) < total:
        high *= 2.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if sum(shares(middle).values()) < total else (low, middle)
    return shares(high)


class OpponentSchedule:
    """The bots' weights in the training mix, from the training matches' outcomes (module docstring).

    :param config: the keys of :data:`SCHEDULE_DEFAULTS` (missing ones take the default)
    :param bot_share: the bots' share of all training matches (self-play has the rest)
    """

    def __init__(self, config: dict[str, Any], bot_share: float = 1.0):
        check_schedule_config(config)
        if not 0 < bot_share <= 1:
            raise ValueError(f"bot_share must be in (0, 1], got {bot_share!r}")
        self.config = {**SCHEDULE_DEFAULTS, **config}
        self.bot_share = float(bot_share)
        self.groups: list[list[str]] = [list(g) for g in self.config["groups"]]
        self.permanent: list[str] = list(self.config["permanent"])
        self.groups_admitted = 1 if self.groups else 0
        self.results: dict[str, deque[int]] = {n: deque(maxlen=self.config["window"]) for n in self.names}
        self.best_rate: dict[str, float] = {}  # highest trusted win rate seen, for the verification slice

    # --- what it knows -------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Every opponent the schedule may give weight to, in a fixed order."""
        return [n for g in self.groups for n in g] + self.permanent

    @property
    def admitted(self) -> list[str]:
        return [n for g in self.groups[: self.groups_admitted] for n in g] + self.permanent

    def win_rate(self, name: str) -> float | None:
        """The win rate over the recent window, or None with fewer than min_matches matches."""
        played = self.results[name]
        return sum(played) / len(played) if len(played) >= self.config["min_matches"] else None

    def forgotten(self) -> list[str]:
        below = self.config["verify_below"]
        return [
            n
            for n in self.admitted
            if self.best_rate.get(n, 0.0) >= below and (rate := self.win_rate(n)) is not None and rate < below
        ]

    # --- learning from matches ---------------------------------------------------------------
    def record(self, opponent: str, result: str) -> bool:
        """One finished training match ('win', 'draw' or 'loss'); other opponents are ignored.

        Returns True when this match admitted the next group.
        """
        if opponent not in self.results:
            return False
        if result not in ("win", "draw", "loss"):
            raise ValueError(f"result must be 'win', 'draw' or 'loss', got {result!r}")
        self.results[opponent].append(1 if result == "win" else 0)
        rate = self.win_rate(opponent)
        if rate is not None:
            self.best_rate[opponent] = max(self.best_rate.get(opponent, 0.0), rate)
        return self._admit_next_group()

    def _admit_next_group(self) -> bool:
        if self.groups_admitted == 0 or self.groups_admitted >= len(self.groups):
            return False
        rates = [self.win_rate(n) for n in self.groups[self.groups_admitted - 1]]
        if any(r is None or r < self.config["gate"] for r in rates):
            return False
        self.groups_admitted += 1
        return True

    # --- the weights ---------------------------------------------------------------------------
    def weights(self) -> dict[str, float]:
        """Share of all training matches per opponent (0 for those not admitted yet)."""
        c = self.config
        admitted = self.admitted
        rates = {n: self.win_rate(n) for n in admitted}
        priority = {n: (1.0 - (_UNTRUSTED_WIN_RATE if r is None else r)) ** c["power"] for n, r in rates.items()}
        forgotten = self.forgotten()
        if forgotten and len(forgotten) < len(admitted) and c["verify_share"] > 0:
            # Rescale so the forgotten hold verify_share of the bots' matches on top of their priority.
            extra = c["verify_share"] * sum(priority.values()) / (1.0 - c["verify_share"])
            for n in forgotten:
                priority[n] += extra / len(forgotten)
        shares = bounded_shares(priority, self.bot_share, c["floor"], c["cap"])
        return {n: shares.get(n, 0.0) for n in self.names}

    def summary_rows(self, step: int) -> list[dict[str, Any]]:
        """One row per opponent for opponent_weights.csv."""
        weights, forgotten, admitted = self.weights(), set(self.forgotten()), set(self.admitted)
        rows = []
        for n in self.names:
            rate = self.win_rate(n)
            rows.append(
                {
                    "step": step,
                    "opponent": n,
                    "weight": round(weights[n], 5),
                    "win_rate": float("nan") if rate is None else round(rate, 4),
                    "matches": len(self.results[n]),
                    "admitted": n in admitted,
                    "forgotten": n in forgotten,
                }
            )
        return rows

    # --- resume --------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """Plain JSON values: a resumed run continues with the same windows and admissions."""
        return {
            "groups_admitted": self.groups_admitted,
            "results": {n: list(r) for n, r in self.results.items()},
            "best_rate": dict(self.best_rate),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.groups_admitted = int(state["groups_admitted"])
        for n, played in state["results"].items():
            if n in self.results:
                self.results[n].clear()
                self.results[n].extend(int(x) for x in played)
        self.best_rate = {n: float(v) for n, v in state["best_rate"].items() if n in self.results}


__all__ = ["SCHEDULE_DEFAULTS", "OpponentSchedule", "bounded_shares", "check_schedule_config"]
