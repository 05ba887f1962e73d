"""Whole matches: ``run_match`` for one (optionally filmed), ``play_matches`` for many at once.

Both accumulate the same per-player statistics from the engine's events with
:class:`StatsAccumulator`, which ``BrawlVecEnv`` also uses for ``info["episode"]``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from environment import params as P
from environment.agents import Agent
from environment.engine import BrawlEngine, StepEvents, any_nonzero
from environment.observation import ObservationBuilder
from environment.render import MatchRenderer, open_video_writer

RESULT_NAMES = {P.RESULT_P0_WINS: "win", P.RESULT_P1_WINS: "loss", P.RESULT_DRAW: "draw"}
_ONE = np.array(1, np.int64)


@dataclass
class PlayerStats:
    damage_dealt: float
    damage_taken: float
    knockouts: int  # opponents knocked out
    falls: int  # own stocks lost
    weapon_pickups: int
    weapon_drops: int
    hits: int
    combos: int
    stocks_left: int
    result: str  # win / loss / draw, from this player's side


@dataclass
class MatchStats:
    frames: int
    player_1: PlayerStats
    player_2: PlayerStats

    @property
    def winner(self) -> str:
        """'player_1', 'player_2' or 'draw'."""
        if self.player_1.result == "win":
            return "player_1"
        return "player_2" if self.player_2.result == "win" else "draw"

    def to_dict(self) -> dict:
        return asdict(self)


class StatsAccumulator:
    """Per-match, per-player counters summed from StepEvents; reset per match."""

    FIELDS = ("damage_dealt", "damage_taken", "knockouts", "falls", "weapon_pickups", "weapon_drops", "hits", "combos")

    def __init__(self, n: int):
        self.totals = {name: np.zeros((n, 2), np.float64) for name in self.FIELDS}
        self.frames = np.zeros(n, np.int64)

    def add(self, ev: StepEvents) -> None:
        # Most frames have no event at all: adding zeros is skipped (cheap at N=1, free at large N).
        t = self.totals
        if any_nonzero(ev.damage_dealt):
            t["damage_dealt"] += ev.damage_dealt
            t["damage_taken"] += ev.damage_dealt[:, ::-1]
        if any_nonzero(ev.knocked_out):
            t["knockouts"] += ev.knocked_out[:, ::-1]
            t["falls"] += ev.knocked_out
        if any_nonzero(ev.weapon_equip):
            t["weapon_pickups"] += ev.weapon_equip > 0
        if any_nonzero(ev.weapon_drop):
            t["weapon_drops"] += ev.weapon_drop
        if any_nonzero(ev.hit):
            t["hits"] += ev.hit
        if any_nonzero(ev.combo):
            t["combos"] += ev.combo
        self.frames += _ONE  # a 0-d int64, cheaper for NumPy than the Python int 1

    def clear(self, rows) -> None:
        for arr in self.totals.values():
            arr[rows] = 0
        self.frames[rows] = 0

    def match_stats(self, row: int, stocks: np.ndarray, result: int) -> MatchStats:
        players = []
        for k in range(2):
            own = result_for_player(result, k)
            counts = {name: self.totals[name][row, k] for name in self.FIELDS}
            for name in self.FIELDS:
                if name not in ("damage_dealt", "damage_taken"):
                    counts[name] = int(counts[name])
                else:
                    counts[name] = float(counts[name])
            players.append(PlayerStats(**counts, stocks_left=int(stocks[k]), result=own))
        return MatchStats(int(self.frames[row]), players[0], players[1])


def result_for_player(result: int, player: int) -> str:
    if result == P.RESULT_DRAW:
        return "draw"
    won = (result == P.RESULT_P0_WINS) == (player == 0)
    return "win" if won else "loss"


def _both_actions(agent_1: Agent, agent_2: Agent, obs: np.ndarray, start: np.ndarray) -> np.ndarray:
    keys = np.empty((obs.shape[0], 2, P.N_KEYS), np.int8)
    keys[:, 0] = agent_1.predict_batch(obs[:, 0], start)
    keys[:, 1] = agent_2.predict_batch(obs[:, 1], start)
    return keys


def run_match(
    agent_1: Agent,
    agent_2: Agent,
    max_timesteps: int = P.MATCH_FRAMES,
    video_path: str | None = None,
    seed: int | None = None,
    show_hitboxes: bool = False,
) -> MatchStats:
    """Play one match, agent_1 as player 0; optionally stream it to an MP4 (or GIF)."""
    engine = BrawlEngine(1, max_timesteps=max_timesteps, seed=seed, params=P.TOURNAMENT_PARAMS)
    engine.reset(seeds=None if seed is None else seed)
    builder = ObservationBuilder(1)
    stats = StatsAccumulator(1)
    for agent in (agent_1, agent_2):
        agent.reset()
    writer = renderer = None
    if video_path is not None:
        renderer = MatchRenderer(show_hitboxes=show_hitboxes)
        writer = open_video_writer(video_path)
    try:
        start = np.ones(1, bool)
        if writer is not None:
            writer.append(renderer.render(engine.state, 0, engine.max_timesteps))
        while True:
            obs = builder.build(engine.state)
            ev = engine.step(_both_actions(agent_1, agent_2, obs, start))
            start[:] = False
            stats.add(ev)
            if writer is not None:
                writer.append(renderer.render(engine.state, 0, engine.max_timesteps))
            if ev.done[0]:
                break
    finally:
        if writer is not None:
            writer.close()
    return stats.match_stats(0, engine.state.stocks[0], int(engine.state.result[0]))


def play_matches(
    agent_1: Agent, agent_2: Agent, n_matches: int, max_timesteps: int = P.MATCH_FRAMES, seed: int = 0
) -> list[MatchStats]:
    """Play n matches at once (agent_1 as player 0 in all); returns their stats in order.

    Match i is seeded ``seed + i``, so it equals ``run_match(..., seed=seed + i)``
    for agents without randomness. A match that ends early restarts and is
    ignored until the slowest one ends (cheaper than masking every rule).
    """
    engine = BrawlEngine(n_matches, max_timesteps=max_timesteps, seed=seed, params=P.TOURNAMENT_PARAMS)
    engine.reset()
    builder = ObservationBuilder(n_matches)
    stats = StatsAccumulator(n_matches)
    for agent in (agent_1, agent_2):
        agent.reset()
    results: list[MatchStats | None] = [None] * n_matches
    start = np.ones(n_matches, bool)
    while any(r is None for r in results):
        obs = builder.build(engine.state)
        ev = engine.step(_both_actions(agent_1, agent_2, obs, start))
        stats.add(ev)
        start[:] = ev.done
        for row in np.flatnonzero(ev.done):
            if results[row] is None:
                results[row] = stats.match_stats(row, engine.state.stocks[row], int(engine.state.result[row]))
        if ev.done.any():
            finished = np.flatnonzero(ev.done)
            engine.reset(finished)
            stats.clear(finished)
    return results  # type: ignore[return-value]
