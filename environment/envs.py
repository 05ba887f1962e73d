"""Warehouse Brawl environments: PettingZoo, gymnasium and SB3 VecEnv.

Spec card
---------
| env                      | API                          | agents / batch                 |
|--------------------------|------------------------------|--------------------------------|
| ``WarehouseBrawl``       | PettingZoo ``ParallelEnv``   | ``player_0``, ``player_1``     |
| ``SelfPlayWarehouseBrawl``| ``gymnasium.Env``           | learner (slot 0) vs an Agent   |
| ``BrawlVecEnv``          | SB3 ``VecEnv``               | N learners vs an opponent mix  |

- Observation: ``Box(64,)`` float32, 32 values for the observer then 32 for the
  opponent (table in ``observation.py``); the declared bounds hold.
- Action: ``MultiBinary(10)``, keys ``w a s d space h l j k g``; float arrays are
  accepted (> 0.5 is pressed); NaN or a wrong shape raises.
- Reward: a :class:`~environment.rewards.RewardManager` for the learner
  (default :func:`~environment.rewards.default_reward_manager`).
- Episode: a match: 3 stocks each, ends on stocks (terminated) or after
  ``max_timesteps`` frames at 30 FPS (truncated; more stocks wins, else draw).
- ``BrawlVecEnv`` follows SB3's same-step autoreset: a finished match's last
  observation is in ``info["terminal_observation"]``, ``info["TimeLimit.truncated"]``
  tells a time-out, and ``info["episode"]`` holds ``r``, ``l`` and the match stats.
- Seeds: ``None`` or an integer from 0 to 2**63 - 1, in all three classes (a VecEnv of n
  matches seeds match i with ``seed + i``, so its seed is at most 2**63 - n); anything else is a
  ``ValueError`` naming the seed (:func:`check_seed`).
- Version: v1 (engine rules of DESIGN.md §3; move table in ``params.py``).
"""

from __future__ import annotations

import functools
import time
from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from environment import params as P
from environment.agents import Agent, BasedAgent, act_together, action_space, observation_space
from environment.engine import BrawlEngine, StepEvents
from environment.match import StatsAccumulator, result_for_player
from environment.observation import ObservationBuilder
from environment.render import MatchRenderer
from environment.rewards import RewardContext, default_reward_manager
from environment.self_play import OpponentsCfg, SelfPlayHandler, snapshot_name, snapshot_names

# Agents with more distinct instances than this are compacted out of the grouping list.
_MAX_OPPONENT_GROUPS = 64
# Match seeds are int64 in the engine (and gymnasium refuses negative ones).
MAX_SEED = 2**63 - 1


def check_seed(seed: Any, n: int = 1) -> int | None:
    """``seed`` as a Python int (or None): an integer from 0 to ``MAX_SEED - (n - 1)``, since match
    i of ``n`` is seeded ``seed + i`` in 64 bits. Raises ``ValueError`` naming the seed otherwise."""
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer or None, got {seed!r}")
    top = MAX_SEED - (n - 1)
    if not 0 <= int(seed) <= top:
        per_match = f" (match i of {n} is seeded seed + i)" if n > 1 else ""
        raise ValueError(f"seed must be an integer from 0 to {top}{per_match}, got {int(seed)}")
    return int(seed)


def validate_actions(actions: Any, n: int) -> np.ndarray:
    """Learner actions as a bool (n, 10) array; raises on a wrong shape/dtype or NaN."""
    arr = np.asarray(actions)
    if arr.shape != (n, P.N_KEYS):
        raise ValueError(f"actions must have shape ({n}, {P.N_KEYS}), got {arr.shape}")
    if arr.dtype == bool:
        return arr
    if arr.dtype.kind not in "iu":  # integers (the usual MultiBinary sample) need no further checks
        if not np.issubdtype(arr.dtype, np.number):
            raise TypeError(f"actions must be numeric or bool, got dtype {arr.dtype}")
        if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
            raise ValueError("actions contain NaN or infinite values")
    return _pressed(arr)


def _pressed(arr: np.ndarray) -> np.ndarray:
    """``arr > 0.5`` as bool. For integers that is ``arr > 0``, which NumPy does ~3x faster
    against a zero of the same dtype than against the Python float 0.5."""
    if arr.dtype.kind in "iu":
        return arr > np.zeros((), arr.dtype)
    return arr > 0.5


class LearnerMatches:
    """N matches of a learner (slot 0) against opponents drawn per episode from an OpponentsCfg.

    The shared core of SelfPlayWarehouseBrawl (N=1) and BrawlVecEnv. Opponents are
    stepped in batches: one ``predict_batch`` call per distinct opponent agent.
    """

    def __init__(
        self,
        n: int,
        opponents: OpponentsCfg,
        reward_manager,
        max_timesteps: int,
        seed: int | None,
        scattered_starts: float = 0.0,
    ):
        self.n = n
        self.engine = BrawlEngine(
            n, max_timesteps=max_timesteps, seed=seed, params=P.TOURNAMENT_PARAMS, scattered_starts=scattered_starts
        )
        self.builder = ObservationBuilder(n)
        self.stats = StatsAccumulator(n)
        self.opponents = opponents
        if opponents.seed is None:
            opponents.seed = seed
        self.reward_manager = reward_manager
        self.reward_manager.reset(n)
        self.rng = np.random.default_rng(seed)
        self.opponent_name = np.zeros(n, np.intp)  # index into opponents.names
        self.opponent_group = np.zeros(n, np.intp)  # index into self.groups
        self.groups: list[Agent] = []
        self.group_keys: list[str] = []
        self.episode_start = np.ones(n, bool)
        self.all_rows = np.arange(n)
        self.returns = np.zeros(n, np.float64)
        self.keys = np.zeros((n, 2, P.N_KEYS), bool)
        self.obs = np.zeros((n, 2, 64), np.float32)
        self.ctx = RewardContext(
            state=self.engine.state,
            prev_x=np.zeros((n, 2), np.float32),
            prev_y=np.zeros((n, 2), np.float32),
            events=self.engine.events,
            keys=self.keys,
            params=self.engine.params,
            player=0,
        )
        self.episode_t0 = time.perf_counter()

    # --- opponents --------------------------------------------------------------------
    def _assign_opponents(self, rows: np.ndarray) -> None:
        picks = self.opponents.sample(self.rng, rows.size)
        self.opponent_name[rows] = picks
        names = self.opponents.names
        for row, pick in zip(rows.tolist(), picks.tolist(), strict=True):
            agent = self.opponents.agent_for(names[pick])
            self.opponent_group[row] = self._group_of(self._agent_key(names[pick]), agent)

    def _agent_key(self, name: str) -> str:
        """How a resumed run finds this agent again: a registry entry, a fallback or a snapshot file."""
        entry = self.opponents.opponents[name][1]
        if isinstance(entry, SelfPlayHandler):
            # By file name: the run folder may be moved or resumed from another directory.
            return entry.choice_key() or f"fallback:{name}"
        return f"name:{name}"

    def _group_of(self, key: str, agent: Agent | None = None) -> int:
        """The group that plays ``key`` (a new one holds ``agent``, or the agent the key names).

        By key, not by object: the self-play pool may hand out a fresh copy of a snapshot its cache
        let go of, and the matches already playing it keep their memory in the group's copy. A
        resumed env, whose cache differs, so batches the same matches together."""
        if key in self.group_keys:
            return self.group_keys.index(key)
        if len(self.groups) >= _MAX_OPPONENT_GROUPS:
            self._compact_groups()
        self.groups.append(agent if agent is not None else self._resolve_key(key))
        self.group_keys.append(key)
        return len(self.groups) - 1

    def _compact_groups(self) -> None:
        used = np.unique(self.opponent_group)
        remap = np.zeros(len(self.groups), np.intp)
        remap[used] = np.arange(used.size)
        self.groups = [self.groups[k] for k in used]
        self.group_keys = [self.group_keys[k] for k in used]
        self.opponent_group = remap[self.opponent_group]

    def _resolve_key(self, key: str) -> Agent:
        if snapshot_name(key) is not None:
            return self.opponents.self_play_handlers()[0].agent_for_key(key)
        kind, _, value = key.partition(":")
        if kind == "name":
            return self.opponents.agent_for(value)
        return self.opponents.opponents[value][1].fallback  # "fallback:<mix name>"

    def snapshots_in_use(self) -> set[str]:
        """File names of the snapshots that running matches play against."""
        return snapshot_names(self.group_keys[k] for k in np.unique(self.opponent_group))

    def opponent_names(self, rows) -> list[str]:
        names = self.opponents.names
        return [names[k] for k in self.opponent_name[rows]]

    # --- lifecycle --------------------------------------------------------------------
    def reset(self, rows: np.ndarray | None = None, seeds=None, p0_side: int | None = None) -> np.ndarray:
        rows = np.arange(self.n) if rows is None else rows
        self.engine.reset(rows, seeds=seeds, p0_side=p0_side)
        self.stats.clear(rows)
        self.reward_manager.pop_episode_sums(rows)
        self.returns[rows] = 0.0
        self.episode_start[rows] = True
        self._assign_opponents(rows)
        return self.builder.build(self.engine.state)

    def _step_groups(self, obs: np.ndarray) -> None:
        """Each opponent's actions for its matches: one call per agent, or one for agents that can
        share it (snapshots of one network: ``act_together``)."""
        groups = [(int(k), np.flatnonzero(self.opponent_group == k)) for k in np.unique(self.opponent_group)]
        calls = [(self.groups[k], obs[rows, 1], self.episode_start[rows], rows) for k, rows in groups]
        for (_, rows), actions in zip(groups, act_together(calls), strict=True):
            self.keys[rows, 1] = _pressed(np.asarray(actions))

    def step(self, learner_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, StepEvents]:
        """Advance all matches a frame; returns (obs (n,2,64) before autoreset, reward, events)."""
        obs = self.builder.out  # the observation every player acted on
        self.keys[:, 0] = learner_keys
        if len(self.groups) == 1:  # one opponent for every match: no grouping needed
            actions = self.groups[0].predict_batch(obs[:, 1], self.episode_start, self.all_rows)
            self.keys[:, 1] = _pressed(np.asarray(actions))
        else:
            self._step_groups(obs)
        self.episode_start[...] = False
        s = self.engine.state
        self.ctx.prev_x[...] = s.x
        self.ctx.prev_y[...] = s.y
        ev = self.engine.step(self.keys)
        self.stats.add(ev)
        reward = self.reward_manager.compute(self.ctx)
        self.returns += reward
        return self.builder.build(s), reward, ev

    def episode_info(self, row: int, elapsed: float) -> dict[str, Any]:
        """info["episode"] for a finished match: SB3's r / l / t plus the match stats."""
        s = self.engine.state
        stats = self.stats.match_stats(row, s.stocks[row], int(s.result[row]))
        me, opp = stats.player_1, stats.player_2
        return {
            "r": float(self.returns[row]),
            "l": int(self.stats.frames[row]),
            "t": round(elapsed, 6),
            "result": result_for_player(int(s.result[row]), 0),
            "opponent": self.opponent_names([row])[0],
            "damage_dealt": me.damage_dealt,
            "damage_taken": me.damage_taken,
            "knockouts": me.knockouts,
            "falls": me.falls,
            "weapon_pickups": me.weapon_pickups,
            "weapon_drops": me.weapon_drops,
            "hits": me.hits,
            "combos": me.combos,
            "stocks_left": me.stocks_left,
            "opponent_stocks_left": opp.stocks_left,
        }

    def get_state(self) -> dict:
        """Everything needed to continue these matches exactly (arrays and JSON values only)."""
        if not self.groups:
            raise RuntimeError("get_state() before the first reset(): there are no matches to save yet")
        return {
            "engine": self.engine.get_state(),
            "opponent_name": self.opponent_name.copy(),
            "opponent_keys": [self.group_keys[k] for k in self.opponent_group],
            "agents": self._agent_states(),
            "episode_start": self.episode_start.copy(),
            "returns": self.returns.copy(),
            "stats": {k: v.copy() for k, v in self.stats.totals.items()},
            "frames": self.stats.frames.copy(),
            "reward": self.reward_manager.get_state(),
            "rng": self.rng.bit_generator.state,
        }

    def _agent_states(self) -> list[dict]:
        """Memory and random streams of every opponent agent that exists, used now or not."""
        agents: dict[str, Agent] = {f"name:{name}": agent for name, agent in self.opponents.built_agents().items()}
        for name, (_, entry) in self.opponents.opponents.items():
            if isinstance(entry, SelfPlayHandler):
                agents[f"fallback:{name}"] = entry.fallback
        # Snapshot agents matter only while a match plays them: a new match resets their memory. The
        # group's own copy holds it (asking the pool could read a fresh copy that the cache let go of).
        for k in np.unique(self.opponent_group):
            if snapshot_name(self.group_keys[k]) is not None:
                agents[self.group_keys[k]] = self.groups[k]
        stateful = {key: agent for key, agent in agents.items() if hasattr(agent, "get_state")}
        return [{"key": key, "state": agent.get_state()} for key, agent in stateful.items()]

    def set_state(self, state: dict) -> None:
        self.engine.set_state(state["engine"])
        self.opponent_name[:] = state["opponent_name"]
        self.groups, self.group_keys = [], []
        for row, key in enumerate(state["opponent_keys"]):
            self.opponent_group[row] = self._group_of(key)
        for saved in state["agents"]:
            key = saved["key"]
            agent = self.groups[self.group_keys.index(key)] if key in self.group_keys else self._resolve_key(key)
            agent.set_state(saved["state"])
        self.episode_start[:] = state["episode_start"]
        self.returns[:] = state["returns"]
        for name, values in state["stats"].items():
            self.stats.totals[name][:] = values
        self.stats.frames[:] = state["frames"]
        self.reward_manager.set_state(state["reward"])
        self.rng.bit_generator.state = state["rng"]
        self.builder.build(self.engine.state)


# ==================================================================================
# SB3 VecEnv
# ==================================================================================
class BrawlVecEnv(VecEnv):
    """N matches as one SB3 VecEnv: a learner in slot 0 of each, opponents from ``opponents``.

    :param n_envs: number of matches stepped together
    :param opponents: the opponent mix (default: BasedAgent only)
    :param reward_manager: the learner's rewards (default: ``default_reward_manager()``)
    :param max_timesteps: frames per match before a time-out
    :param seed: match i is seeded ``seed + i``; also seeds opponent sampling
    :param action_repeat: frames each learner action is held for (1 = a decision every
        frame). One ``step`` then advances every match ``action_repeat`` frames and returns
        the summed reward; opponents still act every frame. A match that ends inside a
        step is reset at once and its next match plays the step's remaining frames with
        the learner's keys released; their rewards are paid with the next step, so every
        frame's reward reaches PPO and ``info["episode"]["r"]``, and ``l`` counts frames.
    :param scattered_starts: the share of matches that start with both players at random points
        over the grounds (``BrawlEngine``'s; training only, 0 = the tournament's start points)
    """

    # Cap on action_repeat: half a second. A match lasts far longer (each knockout alone is
    # followed by a 90-frame respawn delay), so a match can never end twice within one step.
    MAX_ACTION_REPEAT = 15

    def __init__(
        self,
        n_envs: int,
        opponents: OpponentsCfg | None = None,
        reward_manager=None,
        max_timesteps: int = P.MATCH_FRAMES,
        seed: int | None = None,
        action_repeat: int = 1,
        scattered_starts: float = 0.0,
    ):
        if not isinstance(n_envs, (int, np.integer)) or n_envs <= 0:
            raise ValueError(f"n_envs must be a positive integer, got {n_envs!r}")
        if not isinstance(action_repeat, (int, np.integer)) or not 1 <= action_repeat <= self.MAX_ACTION_REPEAT:
            raise ValueError(
                f"action_repeat must be an integer from 1 to {self.MAX_ACTION_REPEAT}, got {action_repeat!r}"
            )
        self.action_repeat = int(action_repeat)
        seed = check_seed(seed, int(n_envs))
        self.render_mode = "rgb_array"  # read back by VecEnv.__init__ through get_attr
        super().__init__(int(n_envs), observation_space(), action_space())
        self.core = LearnerMatches(
            int(n_envs),
            opponents or OpponentsCfg({"based": (1.0, BasedAgent)}),
            reward_manager or default_reward_manager(),
            max_timesteps,
            seed,
            scattered_starts,
        )
        self._actions: np.ndarray | None = None
        self._started = np.zeros(self.num_envs, np.float64)
        # Rewards of frames played after a match ended inside a step: paid with the next step.
        self._carried_reward = np.zeros(self.num_envs, np.float64)
        self._renderer = None

    @property
    def reward_manager(self):
        return self.core.reward_manager

    def get_state(self) -> dict:
        return {**self.core.get_state(), "carried_reward": self._carried_reward.copy()}

    def set_state(self, state: dict) -> None:
        self.core.set_state(state)
        self._carried_reward[:] = state["carried_reward"]
        self._started[:] = time.perf_counter()

    @property
    def opponents(self) -> OpponentsCfg:
        return self.core.opponents

    def set_opponent_weights(self, weights: dict[str, float]) -> None:
        """New sampling weights for some opponents (by name); new matches draw with them."""
        self.core.opponents.set_weights(weights)

    def snapshots_in_use(self) -> set[str]:
        """File names of the snapshots that running matches play against."""
        return self.core.snapshots_in_use()

    def seed(self, seed: int | None = None) -> list[int | None]:
        """SB3's: match i is reseeded with ``seed + i`` at the next ``reset()``."""
        return super().seed(check_seed(seed, self.num_envs))

    def reset(self) -> np.ndarray:
        seeds = None if self._seeds[0] is None else np.asarray(self._seeds, np.int64)
        self._reset_seeds()
        self._reset_options()
        obs = self.core.reset(seeds=seeds)
        self._started[:] = time.perf_counter()
        self._carried_reward[:] = 0.0
        return obs[:, 0].copy()

    def step_async(self, actions: np.ndarray) -> None:
        if not self.core.groups:  # no opponents drawn yet: there are no matches to step
            raise RuntimeError("BrawlVecEnv.step() before reset(): call reset() first")
        self._actions = validate_actions(actions, self.num_envs)

    def step_wait(self):
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async()")
        actions, self._actions = self._actions, None
        reward, self._carried_reward = self._carried_reward, np.zeros(self.num_envs, np.float64)
        done = np.zeros(self.num_envs, bool)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for _ in range(self.action_repeat):
            obs_all, frame_reward, ev = self.core.step(actions)
            if done.any():  # rows already in their next match: those frames pay with the next step
                self._carried_reward += np.where(done, frame_reward, 0.0)
                frame_reward = np.where(done, 0.0, frame_reward)
            reward += frame_reward
            ended = np.flatnonzero(ev.done)
            if ended.size:
                self._finish(ended, obs_all[:, 0], ev, infos)  # resets the ended rows
                done[ended] = True
                actions = np.where(done[:, None], False, actions)  # the next match starts with keys released
        obs = self.core.builder.out[:, 0].copy()
        return obs, reward.astype(np.float32), done, infos

    def _finish(self, rows: np.ndarray, obs: np.ndarray, ev: StepEvents, infos: list[dict]) -> None:
        now = time.perf_counter()
        terms = self.core.reward_manager.pop_episode_sums(rows)
        for i, row in enumerate(rows.tolist()):
            info = infos[row]
            info["terminal_observation"] = obs[row].copy()
            info["TimeLimit.truncated"] = bool(ev.truncated[row])
            info["episode"] = self.core.episode_info(row, now - self._started[row])
            info["reward_terms"] = {name: float(values[i]) for name, values in terms.items()}
        self._started[rows] = now
        self.core.reset(rows)

    def close(self) -> None:
        self._renderer = None

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        method = getattr(self, method_name)
        return [method(*method_args, **method_kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> list[np.ndarray]:
        """Frames of every match (slow for large N: meant for a few envs)."""
        self._renderer = self._renderer or MatchRenderer()
        e = self.core.engine
        return [self._renderer.render(e.state, row, e.max_timesteps) for row in range(self.num_envs)]


# ==================================================================================
# gymnasium Env
# ==================================================================================
class SelfPlayWarehouseBrawl(gym.Env):
    """One learner (slot 0) against an opponent Agent, as a gymnasium Env.

    :param opponent: the opponent Agent (default BasedAgent); its ``seed`` is reset
        with the env's when it has one, so seeded episodes repeat exactly
    :param reward_manager: the learner's rewards (default ``default_reward_manager()``)
    :param max_timesteps: frames before a time-out
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": P.FPS}

    def __init__(
        self,
        opponent: Agent | None = None,
        reward_manager=None,
        max_timesteps: int = P.MATCH_FRAMES,
        render_mode: str | None = None,
    ):
        super().__init__()
        self.observation_space = observation_space()
        self.action_space = action_space()
        self.render_mode = render_mode
        self.opponent = opponent or BasedAgent()
        self.core = LearnerMatches(
            1,
            OpponentsCfg({"opponent": (1.0, self.opponent)}),
            reward_manager or default_reward_manager(),
            max_timesteps,
            seed=None,
        )
        self._done = True
        self._renderer = None
        self._t0 = time.perf_counter()

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        seed = check_seed(seed)
        super().reset(seed=seed)
        if seed is not None and hasattr(self.opponent, "rng"):
            self.opponent.rng = np.random.default_rng(seed)
        self.opponent.reset()
        side = (options or {}).get("p0_side")
        obs = self.core.reset(np.array([0]), seeds=seed, p0_side=side)
        self._done = False
        self._t0 = time.perf_counter()
        return obs[0, 0].copy(), {}

    def step(self, action):
        if self._done:
            raise RuntimeError("step() called after the match ended; call reset() first")
        action = np.asarray(action)
        keys = validate_actions(action.reshape(1, -1) if action.ndim == 1 else action, 1)
        obs, reward, ev = self.core.step(keys)
        terminated = bool(ev.done[0] and not ev.truncated[0])
        truncated = bool(ev.truncated[0])
        info: dict[str, Any] = {}
        if ev.done[0]:
            self._done = True
            info["episode"] = self.core.episode_info(0, time.perf_counter() - self._t0)
        return obs[0, 0].copy(), float(reward[0]), terminated, truncated, info

    def render(self):
        self._renderer = self._renderer or MatchRenderer()
        e = self.core.engine
        return self._renderer.render(e.state, 0, e.max_timesteps)


# ==================================================================================
# PettingZoo ParallelEnv
# ==================================================================================
class WarehouseBrawl(ParallelEnv):
    """Two players, both controlled from outside: the PettingZoo parallel API.

    Each player's reward comes from its own RewardManager (default
    ``default_reward_manager()``, zero-sum in damage, knockouts and the win).
    """

    metadata = {"name": "warehouse_brawl_v1", "render_modes": ["rgb_array"], "render_fps": P.FPS}

    def __init__(self, max_timesteps: int = P.MATCH_FRAMES, reward_managers=None, render_mode: str | None = None):
        self.possible_agents = ["player_0", "player_1"]
        self.agents: list[str] = []
        self.render_mode = render_mode
        self.engine = BrawlEngine(1, max_timesteps=max_timesteps, seed=None, params=P.TOURNAMENT_PARAMS)
        self.builder = ObservationBuilder(1)
        self.managers = reward_managers or [default_reward_manager(), default_reward_manager()]
        self._keys = np.zeros((1, 2, P.N_KEYS), bool)
        self._prev = np.zeros((2, 1, 2), np.float32)
        self._contexts = [self._context(k) for k in range(2)]
        for manager in self.managers:
            manager.reset(1)
        self._renderer = None

    def _context(self, player: int):
        return RewardContext(
            state=self.engine.state,
            prev_x=self._prev[0],
            prev_y=self._prev[1],
            events=self.engine.events,
            keys=self._keys,
            params=self.engine.params,
            player=player,
        )

    @functools.cache  # noqa: B019 - PettingZoo wants the same space object each call
    def observation_space(self, agent: str):
        return observation_space()

    @functools.cache  # noqa: B019
    def action_space(self, agent: str):
        return action_space()

    def reset(self, seed: int | None = None, options: dict | None = None):
        seed = check_seed(seed)
        side = (options or {}).get("p0_side")
        self.engine.reset(seeds=seed, p0_side=side)
        for manager in self.managers:
            manager.pop_episode_sums(np.array([0]))
        self.agents = list(self.possible_agents)
        obs = self.builder.build(self.engine.state)
        return {a: obs[0, k].copy() for k, a in enumerate(self.possible_agents)}, {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]):
        if not self.agents:
            raise RuntimeError("step() called after the match ended; call reset() first")
        missing = set(self.agents) - set(actions)
        if missing:
            raise ValueError(f"missing actions for {sorted(missing)}")
        for k, agent in enumerate(self.possible_agents):
            self._keys[0, k] = validate_actions(np.asarray(actions[agent]).reshape(1, -1), 1)[0]
        s = self.engine.state
        self._prev[0], self._prev[1] = s.x, s.y
        ev = self.engine.step(self._keys)
        rewards = [float(m.compute(ctx)[0]) for m, ctx in zip(self.managers, self._contexts, strict=True)]
        obs = self.builder.build(s)
        done, truncated = bool(ev.done[0]), bool(ev.truncated[0])
        agents = self.possible_agents
        observations = {a: obs[0, k].copy() for k, a in enumerate(agents)}
        infos: dict[str, dict] = {a: {} for a in agents}
        if done:
            for k, a in enumerate(agents):
                infos[a]["result"] = result_for_player(int(s.result[0]), k)
            self.agents = []
        return (
            observations,
            dict(zip(agents, rewards, strict=True)),
            {a: done and not truncated for a in agents},
            {a: truncated for a in agents},
            infos,
        )

    def render(self):
        self._renderer = self._renderer or MatchRenderer()
        return self._renderer.render(self.engine.state, 0, self.engine.max_timesteps)

    def close(self) -> None:
        self._renderer = None
