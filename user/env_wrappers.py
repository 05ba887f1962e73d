"""The VecEnv wrappers between the matches and the policy, and the spaces the policy sees.

- :class:`OpponentHistory`: appends a rolling window of the opponent's observation values (the
  transformer strategy encoder's input).
- :class:`ScaleReward`: multiplies what PPO sees; the CSVs keep the raw rewards.
- :class:`MacroActions`: the policy picks one of ``environment/macros.py``'s named moves; the
  matches still get ten keys (``agent.action_head: macro``).
- :func:`float_multibinary`: the action space with float-stored samples (sb3-contrib needs it).
- :func:`policy_action_space`: what the policy outputs for an ``agent.action_head``.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnvWrapper

from environment import params as P
from environment.macros import N_MACROS, macro_keys
from environment.observation import OBS_HALF, observation_bounds

ACTION_HEADS = ("keys", "macro")


def observation_scale() -> np.ndarray:
    """Per-value divisor bringing every observation into about [-1, 1]."""
    low, high = observation_bounds()
    return np.maximum(np.maximum(np.abs(low), np.abs(high)), 1.0).astype(np.float32)


class OpponentHistory(VecEnvWrapper):
    """Appends a rolling window of the opponent's 32 observation values to each observation.

    Kept batched for all envs in one (n_envs, sequence_length, 32) array, newest
    frame last, zero-filled when a match starts. The policy sees
    ``[obs (64), history (sequence_length × 32)]``.
    """

    def __init__(self, venv, sequence_length: int):
        self.sequence_length = sequence_length
        super().__init__(venv, observation_space=history_observation_space(sequence_length))
        self.history = np.zeros((venv.num_envs, sequence_length, OBS_HALF), np.float32)

    def _augment(self, obs: np.ndarray) -> np.ndarray:
        self.history[:, :-1] = self.history[:, 1:]
        self.history[:, -1] = obs[:, OBS_HALF:]
        return np.concatenate([obs, self.history.reshape(len(obs), -1)], axis=1)

    def reset(self) -> np.ndarray:
        self.history[:] = 0.0
        return self._augment(self.venv.reset())

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        for i in np.flatnonzero(dones):
            # The terminal observation continues the old history; the new match starts empty.
            terminal = infos[i]["terminal_observation"]
            window = np.concatenate([self.history[i, 1:], terminal[None, OBS_HALF:]])
            infos[i]["terminal_observation"] = np.concatenate([terminal, window.reshape(-1)])
        self.history[dones] = 0.0
        return self._augment(obs), rewards, dones, infos

    def get_state(self) -> dict[str, np.ndarray]:
        return {"history": self.history.copy()}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        self.history[:] = state["history"]


class ScaleReward(VecEnvWrapper):
    """Multiplies the rewards PPO sees; episode returns in infos (and the CSVs) stay raw."""

    def __init__(self, venv, scale: float):
        super().__init__(venv)
        self.scale = scale

    def reset(self) -> np.ndarray:
        return self.venv.reset()

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        return obs, rewards * np.float32(self.scale), dones, infos


class MacroActions(VecEnvWrapper):
    """The policy's action is a macro id (``Discrete(N_MACROS)``); the matches get its keys.

    The mapping sits at this boundary so that the environment, the Agent API and the
    exported bundle keep speaking ``MultiBinary(10)``; ``action_repeat`` still holds the
    macro's keys for that many frames inside the match VecEnv.
    """

    def __init__(self, venv):
        super().__init__(venv, action_space=spaces.Discrete(N_MACROS))

    def step_async(self, actions: np.ndarray) -> None:
        ids = np.asarray(actions).reshape(self.num_envs)
        self.venv.step_async(macro_keys(ids).astype(np.float32))

    def reset(self) -> np.ndarray:
        return self.venv.reset()

    def step_wait(self):
        return self.venv.step_wait()


def policy_action_space(action_head: str) -> spaces.Space:
    """``keys``: ten independent Bernoulli keys; ``macro``: one of the macro menu's moves."""
    if action_head == "macro":
        return spaces.Discrete(N_MACROS)
    if action_head == "keys":
        return float_multibinary()
    raise ValueError(f"unknown action head {action_head!r}; choose one of {', '.join(ACTION_HEADS)}")


def float_multibinary(n: int = P.N_KEYS) -> spaces.MultiBinary:
    """MultiBinary whose samples are stored as float32.

    sb3-contrib's RecurrentRolloutBuffer keeps actions in the space's dtype and,
    unlike SB3's RolloutBuffer, does not cast them to float before the Bernoulli
    log-probability, which fails on MultiBinary's int8. The env accepts floats.
    """
    space = spaces.MultiBinary(n)
    space.dtype = np.dtype(np.float32)
    return space


def history_observation_space(sequence_length: int) -> spaces.Box:
    """64 observation values then sequence_length × 32 opponent values (0 before the match starts)."""
    low, high = observation_bounds()
    return spaces.Box(
        low=np.concatenate([low, np.tile(np.minimum(low[OBS_HALF:], 0), sequence_length)]),
        high=np.concatenate([high, np.tile(np.maximum(high[OBS_HALF:], 0), sequence_length)]),
        dtype=np.float32,
    )
