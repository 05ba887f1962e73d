"""Evaluation helpers for the trainer: batched matches, summaries, Elo, latent analysis, plots.

- :func:`play_vs_opponents` plays ``m`` matches against each of several opponents in ONE
  batched engine and returns per-match stats dicts; :func:`summarize` turns them into an
  :class:`EvalRow`; :class:`PerformanceBenchmark` does both against the scripted roster.
- :data:`SUCCESS_CRITERIA` / :func:`success_table` / :func:`format_table` judge and print them;
  the headline is :func:`worst_public_win_rate` (the worst win rate over the public bots),
  with :func:`wilson_interval` for its uncertainty and :class:`SelfDestructCounter` for
  falls not caused by a hit.
- :class:`EloRatings` and :func:`round_robin` rate agents on the tournament's Elo scale
  (:func:`round_robin_row` plays one row, :func:`rate_round_robin` applies rows in order).
- :func:`latent_distances`, :func:`separation_verdict`, :func:`project_2d` check whether a
  strategy encoder separates opponents.

The plots of a training run (its CSVs, the strategy latents) live with the trainer, in
``user/plots.py``: the game package needs neither matplotlib nor pandas.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any, Protocol

import numpy as np

from environment import params as P
from environment.agents import Agent, ScriptedAgent, act_together, agent_names, make_agent
from environment.checkpoints import PortableError
from environment.engine import BrawlEngine, StepEvents
from environment.match import MatchStats, StatsAccumulator
from environment.observation import ObservationBuilder
from environment.rewards import RewardContext, RewardManager, default_reward_manager

STATE_INDEX = 8  # observation index of the player's state (DESIGN §4)


# ==================================================================================
# Batched matches
# ==================================================================================
class EvaluationStopped(PortableError):
    """``should_stop`` asked an evaluation to end early (a stop signal): no result is returned."""


def play_vs_opponents(
    agent: Agent,
    opponents: dict[str, Agent],
    matches_per_opponent: int | dict[str, int],
    max_timesteps: int = P.MATCH_FRAMES,
    seed: int = 0,
    reward_manager: RewardManager | None = None,
    alternate_sides: bool = False,
    trackers: Sequence[MatchTracker] = (),
    alternate_slots: bool = False,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Play ``matches_per_opponent`` matches against every opponent, all in one engine.

    ``matches_per_opponent`` is one count for all, or a count per opponent (every one named).
    ``agent`` is player 0 everywhere (unless ``alternate_slots``). Rows are grouped by
    opponent in dict order, so opponent j's k-th match is engine row ``s_j + k``, where ``s_j``
    counts the matches of the opponents before it (``j*m`` with one count), seeded ``seed + s_j +
    k``: for deterministic agents it equals ``play_matches(agent, opp_j, m_j, max_timesteps,
    seed + s_j)[k]``. Each frame ``agent.predict_batch`` is called once on
    all live rows and each opponent's once on its live rows, with ``env_ids`` = engine rows
    (offset by N when an opponent is the agent object itself, so memories do not collide);
    opponents that can share a call (equal ``batch_key()``: snapshots of one network) share one.
    A finished match is recorded, restarted and ignored (fed no keys, no agent calls); the
    loop ends when every match has finished once.

    :param reward_manager: if given, the learner's return per match is accumulated
        (the manager is ``reset`` to N rows first); the learner is player 0, so not with
        ``alternate_slots``
    :param alternate_sides: start the agent on the right in each opponent's even-numbered
        matches and on the left in its odd ones (both spawn sides, balanced); by default
        each match draws its side from its own random stream
    :param trackers: extra per-match counters fed every frame's events (see
        :class:`MatchTracker`); their ``row_stats`` are merged into each match's dict
    :param alternate_slots: the agent plays player 1 in matches k = 2, 3 (mod 4) of each
        opponent: the original engine updates player 0 first, which changes outcomes
        (``shared/fidelity/README.md`` §3), so an honest judge plays both slots
    :param should_stop: asked before every frame; True raises :class:`EvaluationStopped` (the
        trainer's stop flag: a stop signal ends an evaluation within a frame, not a whole roster)
    :return: ``{opponent: [stats dict, ...]}``; each dict is ``MatchStats.to_dict()``
        (``frames``, ``player_1`` = the agent, ``player_2`` = the opponent, whatever
        their slots) plus ``reward`` (nan without a manager), ``attack_frames`` (frames
        the agent acted in the Attack state, read from its observation), ``seed``,
        ``start_side`` (+1 right, -1 left: where the agent started) and ``agent_slot``
    """
    names = list(opponents)
    counts = match_counts(names, matches_per_opponent)
    if reward_manager is not None and alternate_slots:
        raise ValueError("a reward_manager pays player 0, so it cannot follow an agent that changes slots")
    starts = np.concatenate([[0], np.cumsum(counts)])  # opponent j's rows: starts[j] .. starts[j + 1] - 1
    n = int(starts[-1])
    engine = BrawlEngine(n, max_timesteps=max_timesteps, seed=seed, params=P.TOURNAMENT_PARAMS)
    every = np.arange(n)
    kth = every - np.repeat(starts[:-1], counts)  # each row's match number against its opponent
    agent_slot = (kth // 2 % 2) if alternate_slots else np.zeros(n, np.intp)
    opp_slot = 1 - agent_slot
    if alternate_sides:
        agent_side = np.where(kth % 2 == 0, 1, -1)
        reset_with_sides(engine, np.where(agent_slot == 0, agent_side, -agent_side))
    else:
        engine.reset()
    start_side = np.sign(engine.state.x[every, agent_slot]).astype(int)
    builder, stats = ObservationBuilder(n), StatsAccumulator(n)
    for a in (agent, *opponents.values()):
        a.reset()
    live, start = np.ones(n, bool), np.ones(n, bool)
    keys = np.zeros((n, 2, P.N_KEYS), bool)
    attack_frames, returns = np.zeros(n, np.int64), np.zeros(n, np.float64)
    ctx = None
    if reward_manager is not None:
        reward_manager.reset(n)
        ctx = RewardContext(
            engine.state,
            np.zeros((n, 2), np.float32),
            np.zeros((n, 2), np.float32),
            engine.events,
            keys,
            engine.params,
            player=0,
        )
    results: list[dict[str, Any] | None] = [None] * n
    while live.any():
        if should_stop is not None and should_stop():
            raise EvaluationStopped("the evaluation was stopped")
        obs = builder.build(engine.state)
        rows = np.flatnonzero(live)
        mine = obs[rows, agent_slot[rows]]
        keys[:] = False
        keys[rows, agent_slot[rows]] = agent.predict_batch(mine, start[rows], rows) > 0.5
        calls, call_rows = [], []
        for j, name in enumerate(names):
            r = rows[(rows >= starts[j]) & (rows < starts[j + 1])]
            if r.size:
                opp = opponents[name]
                if opp is agent:  # its own opponent: memories under offset ids, never shared
                    keys[r, opp_slot[r]] = opp.predict_batch(obs[r, opp_slot[r]], start[r], r + n) > 0.5
                else:
                    calls.append((opp, obs[r, opp_slot[r]], start[r], r))
                    call_rows.append(r)
        for r, acts in zip(call_rows, act_together(calls), strict=True):
            keys[r, opp_slot[r]] = acts > 0.5
        attack_frames[rows] += mine[:, STATE_INDEX] == P.ATTACK
        start[:] = False
        if ctx is not None:
            ctx.prev_x[:] = engine.state.x
            ctx.prev_y[:] = engine.state.y
        ev = engine.step(keys)
        stats.add(ev)
        for tracker in trackers:
            tracker.add(ev)
        if ctx is not None:
            returns += reward_manager.compute(ctx)
        done = np.flatnonzero(ev.done)
        for row in done[live[done]]:
            d = stats.match_stats(row, engine.state.stocks[row], int(engine.state.result[row])).to_dict()
            if agent_slot[row] == 1:
                d["player_1"], d["player_2"] = d["player_2"], d["player_1"]
            rew = float(returns[row]) if ctx is not None else math.nan
            results[row] = {
                **d,
                "reward": rew,
                "attack_frames": int(attack_frames[row]),
                "seed": seed + int(row),
                "start_side": int(start_side[row]),
                "agent_slot": int(agent_slot[row]),
            }
            for tracker in trackers:
                results[row].update(tracker.row_stats(row, int(agent_slot[row])))
        if done.size:
            live[done] = False
            engine.reset(done)
            stats.clear(done)
            for tracker in trackers:
                tracker.clear(done)
    return {name: results[starts[j] : starts[j + 1]] for j, name in enumerate(names)}  # type: ignore[misc]


def match_counts(names: list[str], matches_per_opponent: int | dict[str, int]) -> list[int]:
    """Each named opponent's match count, from one count for all or a dict naming every one."""
    if not names:
        raise ValueError("need at least one opponent")
    if isinstance(matches_per_opponent, dict):
        if set(matches_per_opponent) != set(names):
            got = sorted(matches_per_opponent)
            raise ValueError(f"match counts must name exactly the opponents {names} (got {got})")
        counts = [int(matches_per_opponent[name]) for name in names]
    else:
        counts = [int(matches_per_opponent)] * len(names)
    if min(counts) <= 0:
        raise ValueError(f"need matches_per_opponent > 0 for every opponent (got {min(counts)})")
    return counts


def reset_with_sides(engine: BrawlEngine, p0_sides: np.ndarray) -> None:
    """Reset every match with player 0 on the right where ``p0_sides`` is +1, on the left where it is -1."""
    for side in (1, -1):
        engine.reset(np.flatnonzero(p0_sides == side), p0_side=side)


class MatchTracker(Protocol):
    """A per-match counter that :func:`play_vs_opponents` feeds with every frame's events."""

    def add(self, ev: StepEvents) -> None: ...

    def clear(self, rows: np.ndarray) -> None: ...

    def row_stats(self, row: int, player: int) -> dict[str, Any]:
        """The match's figures from ``player``'s side (the agent's slot)."""
        ...


# A knockout counts as a self-destruct when the player took no hit in this many frames
# before it (3 s): walking or jumping off the stage, or failing to recover from a place it
# chose. A launched player reaches the blast zone fast: in 400 roster-vs-roster matches
# (engine of issue 14's time) 289 of 547 knockouts came within 1.5 s of a hit and 17 more
# by 3 s; 180 came over 10 s after any hit. Knockouts 3-10 s after a hit (61: knocked off
# the stage, then a failed recovery) count as the player's own.
SELF_DESTRUCT_WINDOW = 90


class SelfDestructCounter:
    """Self-destructs per match and player: knockouts with no hit taken in the preceding
    :data:`SELF_DESTRUCT_WINDOW` frames (a hit in the knockout's own frame counts as taken).

    A hit taken is either player's ``hit`` event for the other one or damage dealt to it.
    ``row_stats(row, player)`` reports ``self_destructs`` (that player's) and ``opponent_self_destructs``.
    """

    def __init__(self, n: int, window: int = SELF_DESTRUCT_WINDOW):
        if window < 0:
            raise ValueError(f"window must be >= 0 frames, got {window}")
        self.window = int(window)
        self.frames_since_hit = np.full((n, 2), self.window + 1, np.int64)
        self.counts = np.zeros((n, 2), np.int64)

    def add(self, ev: StepEvents) -> None:
        self.frames_since_hit += 1
        hit_taken = ev.hit[:, ::-1] | (ev.damage_dealt[:, ::-1] > 0)  # column k: player k was hit
        self.frames_since_hit[hit_taken] = 0
        self.counts += ev.knocked_out & (self.frames_since_hit > self.window)

    def clear(self, rows: np.ndarray) -> None:
        self.frames_since_hit[rows] = self.window + 1
        self.counts[rows] = 0

    def row_stats(self, row: int, player: int = 0) -> dict[str, Any]:
        return {
            "self_destructs": int(self.counts[row, player]),
            "opponent_self_destructs": int(self.counts[row, 1 - player]),
        }


# ==================================================================================
# Summaries
# ==================================================================================
@dataclass
class EvalRow:
    """One opponent's summary over ``matches`` matches, from the agent's side.

    Damage fields are per-match means; ``damage_ratio`` = total dealt / max(total taken, 1.0):
    one point of damage as the floor, so a passive opponent gives a large but finite ratio.
    ``mean_survival_s`` = match seconds / max(falls, 1), averaged over matches:
    the mean time per stock lost (the whole match length when it lost none).
    ``attack_rate`` = frames in the Attack state / frames played. ``avg_reward`` is nan
    when no reward manager was used.
    """

    opponent: str
    matches: int
    win_rate: float
    draw_rate: float
    loss_rate: float
    damage_dealt_per_match: float
    damage_taken_per_match: float
    damage_ratio: float
    knockouts_per_match: float
    falls_per_match: float
    weapon_pickups_per_match: float
    mean_survival_s: float
    avg_reward: float
    attack_rate: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for CSV rows and JSON)."""
        return asdict(self)


def _as_dict(stats: MatchStats | dict[str, Any]) -> dict[str, Any]:
    return stats.to_dict() if isinstance(stats, MatchStats) else stats


def summarize(opponent: str, stats_list: list[dict[str, Any]] | list[MatchStats]) -> EvalRow:
    """Summarize matches (dicts from :func:`play_vs_opponents` or ``MatchStats``) as an :class:`EvalRow`.

    ``mean_survival_s`` is match seconds / max(falls, 1) averaged over matches, i.e. the
    mean time per stock lost (the match length when the agent lost none).
    """
    ds = [_as_dict(s) for s in stats_list]
    if not ds:
        raise ValueError(f"no matches to summarize for {opponent!r}")
    me = [d["player_1"] for d in ds]
    results = [p["result"] for p in me]
    n = len(ds)
    dealt = sum(p["damage_dealt"] for p in me)
    taken = sum(p["damage_taken"] for p in me)
    frames = sum(d["frames"] for d in ds)
    rewards = [d.get("reward", math.nan) for d in ds]
    return EvalRow(
        opponent=opponent,
        matches=n,
        win_rate=results.count("win") / n,
        draw_rate=results.count("draw") / n,
        loss_rate=results.count("loss") / n,
        damage_dealt_per_match=dealt / n,
        damage_taken_per_match=taken / n,
        damage_ratio=dealt / max(taken, 1.0),
        knockouts_per_match=sum(p["knockouts"] for p in me) / n,
        falls_per_match=sum(p["falls"] for p in me) / n,
        weapon_pickups_per_match=sum(p["weapon_pickups"] for p in me) / n,
        mean_survival_s=float(np.mean([d["frames"] / P.FPS / max(p["falls"], 1) for d, p in zip(ds, me, strict=True)])),
        avg_reward=math.nan if any(math.isnan(r) for r in rewards) else float(np.mean(rewards)),
        attack_rate=sum(d.get("attack_frames", 0) for d in ds) / max(frames, 1),
    )


# z for a two-sided 95% interval: the 0.975 quantile of the standard normal.
Z_95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% by default): ``(low, high)``.

    Unlike the normal approximation it stays inside [0, 1] and is not empty at 0 or n
    successes: 0 wins of 10 gives (0, 0.278), not (0, 0).
    """
    if trials <= 0 or not 0 <= successes <= trials or int(successes) != successes:
        raise ValueError(f"need 0 <= successes <= trials and trials > 0 (whole numbers), got {successes}/{trials}")
    p, z2 = successes / trials, z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z / (1 + z2 / trials) * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def public_bot_names() -> list[str]:
    """The public roster: every scripted bot in the agent registry (what ``--mode eval`` and the
    trainer's ``eval.opponents: roster`` play)."""
    return list(scripted_opponents())


def worst_public_win_rate(win_rates: dict[str, float]) -> tuple[str, float] | None:
    """The headline: the lowest win rate over the public bots in ``win_rates`` (opponent → rate),
    as ``(opponent, rate)``; None when no public bot was played. Never a rate against one bot alone
    when more were played: an agent that beats BasedAgent by one trick loses to the others."""
    public = [name for name in public_bot_names() if name in win_rates]
    if not public:
        return None
    worst = min(public, key=lambda name: win_rates[name])
    return worst, float(win_rates[worst])


def best_steps_by_headline(eval_history: list[dict[str, Any]], keep: int) -> list[int]:
    """The ``keep`` evaluated steps with the best headline (worst public win rate), best first.

    ``eval_history``: the trainer's ``[{"step": s, opponent: win_rate, ...}, ...]``; a later
    step wins a tie (it trained longer for the same result).
    """
    scored = []
    for entry in eval_history:
        headline = worst_public_win_rate({k: v for k, v in entry.items() if k != "step"})
        if headline is not None:
            scored.append((headline[1], int(entry["step"])))
    return [step for _, step in sorted(scored, reverse=True)[:keep]]


def headline_line(eval_history: list[dict[str, Any]]) -> str:
    """The trainer's log line: the latest evaluation's headline and the best checkpoint by it so far.

    ``eval_history`` as in :func:`best_steps_by_headline`; the trainer saves a checkpoint at
    every evaluated step, so ``rl_model_<step>_steps.zip`` names it.
    """

    def worst(entry: dict[str, Any]) -> tuple[str, float] | None:
        return worst_public_win_rate({k: v for k, v in entry.items() if k != "step"})

    latest = worst(eval_history[-1]) if eval_history else None
    if latest is None:
        return "Headline: no public bot was evaluated"
    best_step = best_steps_by_headline(eval_history, 1)[0]
    best = worst(next(e for e in eval_history if e["step"] == best_step))
    best_name, best_rate = best  # type: ignore[misc]
    return (
        f"Headline (worst win rate over the public bots): {100 * latest[1]:.0f}% vs {latest[0]}; best checkpoint "
        f"by it so far: rl_model_{best_step}_steps.zip ({100 * best_rate:.0f}% vs {best_name})"
    )


def result_list(matches: list[dict[str, Any]]) -> list[str]:
    """The agent's results ("win" / "draw" / "loss") of matches from :func:`play_vs_opponents`."""
    return [m["player_1"]["result"] for m in matches]


def scripted_opponents() -> dict[str, Agent]:
    """A fresh instance of every registered scripted agent, by name."""
    agents = {name: make_agent(name) for name in agent_names()}
    return {name: a for name, a in agents.items() if isinstance(a, ScriptedAgent)}


class PerformanceBenchmark:
    """The agent against a set of opponents, all matches batched in one engine.

    :param opponents: registry names, ready agents by name, or None for every registered
        scripted agent
    :param num_episodes: matches per opponent
    """

    def __init__(
        self,
        agent: Agent,
        opponents: list[str] | dict[str, Agent] | None = None,
        num_episodes: int = 50,
        max_timesteps: int = P.MATCH_FRAMES,
        seed: int = 0,
    ):
        self.agent = agent
        if opponents is None:
            self.opponents = scripted_opponents()
        elif isinstance(opponents, dict):
            self.opponents = dict(opponents)
        else:
            self.opponents = {name: make_agent(name) for name in opponents}
        self.num_episodes, self.max_timesteps, self.seed = num_episodes, max_timesteps, seed
        self.rows: list[EvalRow] = []
        self.matches: dict[str, list[dict[str, Any]]] = {}

    def run(self) -> dict[str, dict[str, Any]]:
        """Play and summarize; per opponent: the :class:`EvalRow` fields plus ``knockouts``
        (mean per episode, = ``knockouts_per_match``), ``draws`` (count) and ``wins`` /
        ``losses`` (counts). The rows are kept in ``self.rows`` for :func:`success_table`."""
        self.matches = play_vs_opponents(
            self.agent, self.opponents, self.num_episodes, self.max_timesteps, self.seed, default_reward_manager()
        )
        self.rows = [summarize(name, stats) for name, stats in self.matches.items()]
        out = {}
        for row in self.rows:
            d = row.to_dict()
            d["knockouts"] = row.knockouts_per_match
            for key, rate in (("wins", row.win_rate), ("draws", row.draw_rate), ("losses", row.loss_rate)):
                d[key] = round(rate * row.matches)
            out[row.opponent] = d
        return out


# ==================================================================================
# Success criteria
# ==================================================================================
# (name, how the value is computed, comparison, target). The first row is the headline
# (issue 14): the WORST win rate over the public bots, so that beating BasedAgent by one
# held key is not a pass. The win-rate targets are issue 14's argmax targets (the trainer
# evaluates argmax play); the rest describe how the agent fights.
SUCCESS_CRITERIA: list[tuple[str, str, str, float]] = [
    ("worst win rate over the public bots", "lowest win_rate over every public bot (n/a unless all played)",
     ">=", 0.50),
    ("mean win rate over the public bots", "mean win_rate over every public bot (n/a unless all played)", ">=", 0.70),
    ("win rate vs based", "win_rate against the opponent 'based'", ">=", 0.85),
    ("win rate vs aggressive", "win_rate against the opponent 'aggressive', the strongest scripted bot", ">=", 0.50),
    ("damage ratio", "total damage dealt / total taken, all opponents", ">", 2.0),
    ("knockouts per episode", "mean over all matches", ">", 2.0),
    ("weapon pickups per episode", "mean over all matches", ">", 1.0),
    ("survival (s)", "match-weighted mean of mean_survival_s (seconds per stock lost)", ">", 60.0),
]  # fmt: skip


def _meets(value: float, comparison: str, target: float) -> bool:
    return bool(value >= target) if comparison == ">=" else bool(value > target)


def success_table(rows: list[EvalRow]) -> list[dict[str, Any]]:
    """Evaluate :data:`SUCCESS_CRITERIA` on summary rows.

    Returns one dict per criterion: ``criterion``, ``value``, ``target`` (with its
    comparison, e.g. ">= 0.5"), ``passed`` (bool) and ``status`` ("PASS", "FAIL", or "n/a"
    when there is no data: no 'based' row, or not every public bot played).
    """
    n = sum(r.matches for r in rows)

    def per_match(field: str) -> float:
        return sum(getattr(r, field) * r.matches for r in rows) / n if n else math.nan

    dealt, taken = per_match("damage_dealt_per_match") * n, per_match("damage_taken_per_match") * n
    win_rates = {r.opponent: r.win_rate for r in rows}
    public = public_bot_names()
    everyone = all(name in win_rates for name in public)
    worst = worst_public_win_rate(win_rates) if everyone else None
    values = [
        worst[1] if worst else math.nan,
        float(np.mean([win_rates[name] for name in public])) if everyone else math.nan,
        win_rates.get("based", math.nan),
        win_rates.get("aggressive", math.nan),
        dealt / max(taken, 1.0) if n else math.nan,
        per_match("knockouts_per_match"),
        per_match("weapon_pickups_per_match"),
        per_match("mean_survival_s"),
    ]
    table = []
    for (name, _how, comparison, target), value in zip(SUCCESS_CRITERIA, values, strict=True):
        ok = _meets(value, comparison, target)
        status = "n/a" if math.isnan(value) else ("PASS" if ok else "FAIL")
        if worst is not None and name.startswith("worst"):
            name = f"{name} (vs {worst[0]})"
        table.append(
            {"criterion": name, "value": value, "target": f"{comparison} {target:g}", "passed": ok, "status": status}
        )
    return table


def format_table(rows: list[dict[str, Any]], float_fmt: str = "{:.3f}") -> str:
    """A plain, column-aligned text table of dicts (columns from the first row).

    Floats use ``float_fmt`` (huge ones, e.g. a damage ratio with nothing taken, ``.3g``);
    numbers are right-aligned, text left-aligned."""
    if not rows:
        return "(empty)"
    cols = list(rows[0])

    def cell(v: Any) -> str:
        if not isinstance(v, float):
            return str(v)
        return f"{v:.3g}" if math.isfinite(v) and abs(v) >= 1e6 else float_fmt.format(v)

    cells = [[cell(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)), "  ".join("-" * w for w in widths)]
    lines += [
        "  ".join(v.rjust(w) if _numeric(v) else v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells
    ]
    return "\n".join(lines)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ==================================================================================
# Elo
# ==================================================================================
RESULT_SCORES = {"win": 1.0, "draw": 0.5, "loss": 0.0}


class EloRatings:
    """Standard Elo: E_a = 1 / (1 + 10^((R_b − R_a)/400)); R_a += K·(S_a − E_a), R_b symmetric.

    Unknown names start at ``initial``. ``games`` counts rated games per name.
    """

    def __init__(self, initial: float = 1000.0, k: float = 32.0):
        self.initial, self.k = float(initial), float(k)
        self.ratings: dict[str, float] = {}
        self.games: dict[str, int] = {}

    def rating(self, name: str) -> float:
        """Current rating (``initial`` for a name never rated)."""
        return self.ratings.get(name, self.initial)

    def expected(self, a: str, b: str) -> float:
        """a's expected score against b."""
        return 1.0 / (1.0 + 10.0 ** ((self.rating(b) - self.rating(a)) / 400.0))

    def update(self, a: str, b: str, score_a: float) -> tuple[float, float]:
        """Rate one game (score_a: 1 win, 0.5 draw, 0 loss for a); returns the new (R_a, R_b)."""
        if a == b:
            raise ValueError(f"a player cannot be rated against itself ({a!r})")
        ea = self.expected(a, b)
        ra, rb = self.rating(a), self.rating(b)
        self.ratings[a] = ra + self.k * (score_a - ea)
        self.ratings[b] = rb + self.k * ((1.0 - score_a) - (1.0 - ea))
        for name in (a, b):
            self.games[name] = self.games.get(name, 0) + 1
        return self.ratings[a], self.ratings[b]

    def update_from_results(self, a: str, b: str, results: list[str]) -> tuple[float, float]:
        """Apply results from a's side ("win"/"draw"/"loss") one game at a time, in order."""
        for res in results:
            if res not in RESULT_SCORES:
                raise ValueError(f"result must be one of {list(RESULT_SCORES)}, got {res!r}")
            self.update(a, b, RESULT_SCORES[res])
        return self.rating(a), self.rating(b)

    def table(self) -> list[tuple[str, float, int]]:
        """(name, rating, games), best first."""
        return sorted(((n, r, self.games.get(n, 0)) for n, r in self.ratings.items()), key=lambda t: -t[1])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state (for resuming)."""
        return {"initial": self.initial, "k": self.k, "ratings": dict(self.ratings), "games": dict(self.games)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EloRatings:
        """Inverse of :meth:`to_dict`."""
        elo = cls(d.get("initial", 1000.0), d.get("k", 32.0))
        elo.ratings = {str(k): float(v) for k, v in d.get("ratings", {}).items()}
        elo.games = {str(k): int(v) for k, v in d.get("games", {}).items()}
        return elo


def round_robin(
    agents: dict[str, Agent],
    matches_per_pair: int,
    max_timesteps: int = P.MATCH_FRAMES,
    seed: int = 0,
    ratings: EloRatings | None = None,
) -> tuple[EloRatings, list[dict[str, Any]]]:
    """Every pair plays ``matches_per_pair`` matches; Elo is updated match by match.

    Agent i (dict order) is player 0 against all later agents in one batched
    :func:`play_vs_opponents` call (:func:`round_robin_row`). Returns the ratings
    (``ratings`` updated in place if given) and one dict per pair: ``a``, ``b``,
    ``matches``, ``wins``/``draws``/``losses`` (a's side), ``win_rate`` and the ratings after.
    The agents are the same objects in every row; the trainer's league builds each row's agents
    afresh instead (``user/modes.py``), so that its rows can be played anywhere, in any order.
    """
    names = list(agents)
    rows = [
        round_robin_row(agents[a], {b: agents[b] for b in names[i + 1 :]}, matches_per_pair, max_timesteps, seed, i)
        for i, a in enumerate(names[:-1])
    ]
    return rate_round_robin(names, rows, ratings)


def round_robin_row(
    agent: Agent, later: dict[str, Agent], matches_per_pair: int, max_timesteps: int, seed: int, row: int
) -> dict[str, list[str]]:
    """Row ``row`` of a round robin: ``agent`` as player 0 against every later agent, in one batched
    call seeded ``seed + 10_000·row``; the results (``"win"``/``"draw"``/``"loss"``, agent's side) per
    opponent, match by match."""
    played = play_vs_opponents(agent, later, matches_per_pair, max_timesteps, seed + 10_000 * row)
    return {b: [d["player_1"]["result"] for d in matches] for b, matches in played.items()}


def rate_round_robin(
    names: list[str], rows: Sequence[dict[str, list[str]]], ratings: EloRatings | None = None
) -> tuple[EloRatings, list[dict[str, Any]]]:
    """Apply a round robin's results to Elo in its canonical order: row i (``names[i]`` against every
    later name, in ``names`` order), match by match. The order changes the ratings, so rows played
    in parallel (``user/scale.py rate``) are applied here exactly as played one after another."""
    elo = ratings if ratings is not None else EloRatings()
    if len(rows) != len(names) - 1:
        raise ValueError(f"a round robin of {len(names)} agents has {len(names) - 1} rows, got {len(rows)}")
    pairs = []
    for i, a in enumerate(names[:-1]):
        results_of = rows[i]
        if list(results_of) != names[i + 1 :]:
            raise ValueError(f"row {i} ({a}) must hold {names[i + 1 :]} in that order, got {list(results_of)}")
        for b in names[i + 1 :]:
            results = results_of[b]
            ra, rb = elo.update_from_results(a, b, results)
            counts = {f"{r}s" if r != "loss" else "losses": results.count(r) for r in ("win", "draw", "loss")}
            pairs.append(
                {
                    "a": a,
                    "b": b,
                    "matches": len(results),
                    **counts,
                    "win_rate": counts["wins"] / len(results),
                    "rating_a": ra,
                    "rating_b": rb,
                }
            )
    return elo, pairs


# ==================================================================================
# Strategy-latent analysis
# ==================================================================================
def latent_distances(latents: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """How far apart the opponents' latent clusters are, relative to their spread.

    ``between``: mean pairwise Euclidean distance between class centroids (nan with one
    class); ``within``: mean distance of samples to their own class centroid, averaged over
    classes; ``ratio`` = between / within (inf when within is 0 and between > 0).
    Also ``centroids`` and ``within_per_class`` ({label: ...}) and ``counts``.
    """
    x = np.asarray(latents, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != len(labels):
        raise ValueError(f"latents must be (M, d) with M = len(labels) = {len(labels)}, got {x.shape}")
    lab = np.asarray(labels)
    classes = list(dict.fromkeys(labels))
    centroids = {c: x[lab == c].mean(axis=0) for c in classes}
    spread = {c: float(np.linalg.norm(x[lab == c] - centroids[c], axis=1).mean()) for c in classes}
    pair_d = [float(np.linalg.norm(centroids[a] - centroids[b])) for a, b in combinations(classes, 2)]
    between = float(np.mean(pair_d)) if pair_d else math.nan
    within = float(np.mean(list(spread.values()))) if classes else math.nan
    if within > 0:
        ratio = between / within
    else:
        ratio = math.inf if between > 0 else math.nan
    return {
        "between": between,
        "within": within,
        "ratio": ratio,
        "centroids": centroids,
        "within_per_class": spread,
        "counts": {c: int((lab == c).sum()) for c in classes},
    }


def separation_verdict(d: dict[str, Any], threshold: float = 1.5) -> str:
    """One line: does the encoder separate opponents (between/within ratio above ``threshold``)?"""
    ratio = d["ratio"]
    if math.isnan(ratio):
        return "cannot judge separation (need at least two opponents with samples)"
    if ratio > threshold:
        return f"separates opponents (ratio {ratio:.2f} > {threshold:g})"
    return f"does NOT separate opponents (ratio {ratio:.2f} <= {threshold:g})"


def project_2d(latents: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """(M, d) latents → (M, 2) points: PCA via SVD, or t-SNE if scikit-learn is installed.

    Without scikit-learn "tsne" warns and falls back to PCA. Missing dimensions (d < 2 or
    fewer than 2 samples) come back as zeros.
    """
    x = np.asarray(latents, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"latents must be 2-D (M, d), got shape {x.shape}")
    if method == "tsne":
        try:
            from sklearn.manifold import TSNE
        except ImportError:
            warnings.warn("scikit-learn is not installed: project_2d falls back to PCA", stacklevel=2)
        else:
            perplexity = float(min(30.0, max(1.0, (x.shape[0] - 1) / 3)))
            return TSNE(2, perplexity=perplexity, random_state=seed).fit_transform(x)
    elif method != "pca":
        raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")
    out = np.zeros((x.shape[0], 2))
    if x.shape[0] < 2:
        return out
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    k = min(2, vt.shape[0])
    out[:, :k] = centred @ vt[:k].T
    return out


__all__ = [
    "SELF_DESTRUCT_WINDOW",
    "SUCCESS_CRITERIA",
    "EloRatings",
    "EvalRow",
    "MatchTracker",
    "PerformanceBenchmark",
    "SelfDestructCounter",
    "best_steps_by_headline",
    "format_table",
    "headline_line",
    "latent_distances",
    "play_vs_opponents",
    "project_2d",
    "public_bot_names",
    "rate_round_robin",
    "reset_with_sides",
    "round_robin",
    "round_robin_row",
    "scripted_opponents",
    "separation_verdict",
    "success_table",
    "summarize",
    "wilson_interval",
    "worst_public_win_rate",
]
