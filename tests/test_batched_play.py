"""Snapshot opponents of one architecture stepped in one stacked call (user/batched_play.py, issue 15)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from environment.envs import BrawlVecEnv
from environment.evaluation import play_vs_opponents
from environment.self_play import OpponentsCfg
from tests.test_train_agent import tiny_config
from user import agent_io
from user import train_agent as T


def agents(config: dict, seeds: list[int]) -> tuple[list, list]:
    """Agents with different weights, and twins of them (same weights) to step one at a time."""
    together, alone = [], []
    for seed in seeds:
        torch.manual_seed(seed)
        policy = T.build_policy(config)
        twin = T.build_policy(config)
        twin.load_state_dict(policy.state_dict())
        together.append(agent_io.TransformerStrategyAgent(policy, config))
        alone.append(agent_io.TransformerStrategyAgent(twin, config))
    return together, alone


@pytest.mark.parametrize("head, repeat", [("keys", 1), ("macro", 4)])
def test_stacked_snapshots_act_as_each_one_alone(head, repeat):
    config = tiny_config(agent__action_head=head, agent__action_repeat=repeat)["agent"]
    together, alone = agents(config, [1, 2, 3])
    assert len({a.batch_key() for a in together}) == 1 and together[0].batch_key() is not None
    rng = np.random.default_rng(0)
    rows = [np.array([0, 4]), np.array([1, 2, 5]), np.array([3])]  # each agent's matches
    for frame in range(40):
        obs = [rng.uniform(-1, 1, (len(r), 64)).astype(np.float32) for r in rows]
        starts = [(rng.random(len(r)) < 0.05) | (frame == 0) for r in rows]
        got = agent_io.TransformerStrategyAgent.predict_together(together, obs, starts, rows)
        for agent, o, s, r, g in zip(alone, obs, starts, rows, got, strict=True):
            np.testing.assert_array_equal(g, agent.predict_batch(o, s, r), err_msg=f"frame {frame}")
    for a, b in zip(together, alone, strict=True):
        np.testing.assert_allclose(a.get_state()["h"], b.get_state()["h"], atol=1e-5)


@pytest.fixture
def stacked_calls(monkeypatch) -> list[int]:
    """The number of agents in each predict_together call made while the test runs."""
    calls: list[int] = []
    original = agent_io.TransformerStrategyAgent.predict_together

    def counting(agents, *args):
        calls.append(len(agents))
        return original(agents, *args)

    monkeypatch.setattr(agent_io.TransformerStrategyAgent, "predict_together", staticmethod(counting))
    return calls


def test_the_env_makes_one_call_for_all_its_snapshots(stacked_calls):
    calls = stacked_calls
    config = tiny_config()["agent"]
    together, _ = agents(config, [1, 2, 3])
    mix = {f"snapshot{i}": (1.0, agent) for i, agent in enumerate(together)}
    env = BrawlVecEnv(n_envs=9, opponents=OpponentsCfg(mix), max_timesteps=30, seed=2)
    env.reset()
    for _ in range(20):
        env.step(np.zeros((9, 10)))
    in_play = len(set(env.core.opponent_group.tolist()))
    assert in_play > 1 and calls and max(calls) == in_play, "one call for every snapshot in play"
    assert all(n >= 2 for n in calls)


def test_an_evaluation_against_snapshots_steps_them_together_with_the_same_results(monkeypatch, stacked_calls):
    calls = stacked_calls
    config = tiny_config()["agent"]
    together, alone = agents(config, [4, 5, 6])
    learner, learner_twin = agents(config, [7])
    for agent in alone:  # stepped one at a time
        monkeypatch.setattr(agent, "batch_key", lambda: None)
    stacked = play_vs_opponents(learner[0], {f"s{i}": a for i, a in enumerate(together)}, 2, max_timesteps=60)
    assert calls and set(calls) <= {2, 3} and calls[0] == 3
    single = play_vs_opponents(learner_twin[0], {f"s{i}": a for i, a in enumerate(alone)}, 2, max_timesteps=60)
    assert stacked == single
