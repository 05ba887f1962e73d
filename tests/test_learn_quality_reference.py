"""The learning-quality benchmark's reference: one held key against BasedAgent.

In the original game a player holding k loses every match to BasedAgent (42 of 42,
``shared/fidelity/original_outcomes.md``); so does ours since the fidelity port.
"""

import numpy as np

from benchmarks.learn_quality import HoldHeavyAgent, RecordingAgent, distinct_actions_vs_based
from environment import params as P
from environment.agents import make_agent
from environment.match import play_matches


def test_holding_heavy_alone_loses_to_based_agent():
    results = play_matches(HoldHeavyAgent(), make_agent("based"), n_matches=4, seed=0)
    assert [r.player_1.result for r in results] == ["loss"] * 4


def test_distinct_actions_counts_what_the_agent_pressed():
    count, commonest = distinct_actions_vs_based(HoldHeavyAgent(), seed=0)
    assert count == 1
    assert commonest.startswith("k (100%")


def test_recording_agent_passes_actions_through():
    recorder = RecordingAgent(HoldHeavyAgent())
    keys = recorder.predict_batch(np.zeros((3, 64), np.float32), np.ones(3, bool))
    assert keys[:, P.K_HEAVY].all() and keys.sum() == 3
    assert len(recorder.actions) == 1
