"""WorkerVecEnv: the multi-process BrawlVecEnv matches the in-process one and keeps SB3's contract."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from contextlib import closing

import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.logger import Logger

from environment.envs import BrawlVecEnv
from environment.rewards import RewardManager, RewTerm, closing_distance, default_reward_manager, too_many_keys
from environment.self_play import OpponentsCfg
from environment.worker_vec_env import WorkerVecEnv, split_rows

BASED = {"based": (1.0, "based")}
MAX_T = 40
EPISODE_KEYS = {
    "r",
    "l",
    "t",
    "result",
    "opponent",
    "damage_dealt",
    "damage_taken",
    "knockouts",
    "falls",
    "weapon_pickups",
    "weapon_drops",
    "hits",
    "combos",
    "stocks_left",
    "opponent_stocks_left",
}


def _dense_rewards() -> RewardManager:
    """The default terms plus two dense ones, so that short matches pay non-zero rewards."""
    manager = default_reward_manager()
    return RewardManager(
        {**manager.dense, "closing": RewTerm(closing_distance, 1.0), "keys": RewTerm(too_many_keys, 0.1)},
        manager.signals,
    )


def _workers(n: int = 5, workers: int = 2, seed: int | None = 3) -> WorkerVecEnv:
    return WorkerVecEnv.for_scripted_opponents(n, workers, BASED, _dense_rewards, max_timesteps=MAX_T, seed=seed)


def _actions(steps: int, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((steps, n, 10)) < 0.5


def _run(env, actions: np.ndarray) -> list[tuple]:
    return [env.step(a) for a in actions]


def _same_info(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    if not a:
        return True
    untimed = [{k: v for k, v in info["episode"].items() if k != "t"} for info in (a, b)]
    return (
        untimed[0] == untimed[1]
        and np.array_equal(a["terminal_observation"], b["terminal_observation"])
        and a["TimeLimit.truncated"] == b["TimeLimit.truncated"]
        and a["reward_terms"] == b["reward_terms"]
    )


def _assert_same(run_a: list[tuple], run_b: list[tuple]) -> None:
    for k, ((oa, ra, da, ia), (ob, rb, db, ib)) in enumerate(zip(run_a, run_b, strict=True)):
        assert np.array_equal(oa, ob) and np.array_equal(ra, rb) and np.array_equal(da, db), f"step {k} differs"
        assert all(_same_info(x, y) for x, y in zip(ia, ib, strict=True)), f"step {k}: infos differ"


def _exploding_slice(first: int, n_rows: int):
    raise ValueError(f"boom in the slice at row {first}")


def test_split_rows_is_even_and_contiguous():
    assert split_rows(5, 2) == [(0, 3), (3, 2)]
    assert split_rows(8, 3) == [(0, 3), (3, 3), (6, 2)]
    assert split_rows(4, 4) == [(0, 1), (1, 1), (2, 1), (3, 1)]


@pytest.mark.parametrize(
    "n, workers, match",
    [(4, 0, "workers"), (2, 3, "exceed"), (0, 1, "n_envs"), (2.5, 1, "n_envs"), (4, 1.5, "workers")],
)
def test_invalid_sizes_raise_before_starting_workers(n, workers, match):
    with pytest.raises(ValueError, match=match):
        WorkerVecEnv.for_scripted_opponents(n, workers, BASED)


def test_matches_a_single_brawl_vec_env_across_episode_ends():
    n, steps = 5, 2 * MAX_T + 10
    single = BrawlVecEnv(n, OpponentsCfg(dict(BASED)), _dense_rewards(), max_timesteps=MAX_T, seed=3)
    with closing(_workers(n)) as env:
        assert np.array_equal(env.reset(), single.reset())
        actions = _actions(steps, n)
        run_w, run_s = _run(env, actions), _run(single, actions)
        _assert_same(run_w, run_s)
        assert sum(d.sum() for _, _, d, _ in run_w) >= 2 * n  # two episode ends per row were crossed
        assert any(r.any() for _, r, _, _ in run_w)  # some non-zero rewards were compared
        env.seed(11), single.seed(11)  # seeds given through seed() reach the right rows
        assert np.array_equal(env.reset(), single.reset())
        _assert_same(_run(env, actions[:5]), _run(single, actions[:5]))


def test_scattered_starts_reach_the_workers_matches():
    n = 16
    single = BrawlVecEnv(
        n, OpponentsCfg(dict(BASED)), _dense_rewards(), max_timesteps=MAX_T, seed=3, scattered_starts=0.5
    )
    env = WorkerVecEnv.for_scripted_opponents(
        n, 2, BASED, _dense_rewards, max_timesteps=MAX_T, seed=3, scattered_starts=0.5
    )
    with closing(env):
        first = env.reset()
        assert np.array_equal(first, single.reset())
        start_x = single.core.engine.state.x
        assert (np.abs(np.abs(start_x) - 5.0) > 1e-9).any()  # some matches did not start at ±5


@pytest.mark.parametrize("start_method", ["spawn", "forkserver"])
def test_unseeded_and_start_methods_keep_the_single_env_streams(start_method):
    if start_method not in mp.get_all_start_methods():
        pytest.skip(f"no {start_method} start method here")
    single = BrawlVecEnv(4, OpponentsCfg(dict(BASED)), _dense_rewards(), max_timesteps=MAX_T, seed=None)
    env = WorkerVecEnv.for_scripted_opponents(
        4, 2, BASED, _dense_rewards, max_timesteps=MAX_T, seed=None, start_method=start_method
    )
    try:
        assert np.array_equal(env.reset(), single.reset())
        actions = _actions(10, 4, seed=5)
        _assert_same(_run(env, actions), _run(single, actions))
    finally:
        env.close()


def test_autoreset_contract_and_types():
    with closing(_workers(4)) as env:
        obs = env.reset()
        assert obs.shape == (4, 64) and obs.dtype == np.float32
        for a in _actions(MAX_T, 4):
            obs, reward, done, infos = env.step(a)
        assert reward.dtype == np.float32 and reward.shape == (4,) and done.dtype == bool and done.all()
        for row, info in enumerate(infos):
            assert not np.array_equal(info["terminal_observation"], obs[row])
            assert info["TimeLimit.truncated"] is True
            assert info["episode"].keys() >= EPISODE_KEYS and info["episode"]["l"] == MAX_T
            assert isinstance(info["reward_terms"], dict) and info["reward_terms"]
        _, _, done, infos = env.step(_actions(1, 4)[0])
        assert not done.any() and infos == [{}] * 4


def test_attributes_and_methods_are_forwarded_by_row():
    env = _workers(5)  # rows 0..2 in worker 0, 3..4 in worker 1
    try:
        env.reset()
        assert env.get_attr("num_envs") == [3, 3, 3, 2, 2]
        assert env.get_attr("num_envs", indices=[4, 0]) == [2, 3]
        env.set_attr("marker", "w1", indices=[3])
        assert env.get_attr("marker", indices=[4]) == ["w1"]
        assert not env.has_attr("marker")  # worker 0 has no marker
        env.set_attr("marker", "all")
        assert env.has_attr("marker") and env.get_attr("marker") == ["all"] * 5
        states = env.env_method("get_state", indices=[0, 1, 4])
        assert [s["returns"].shape for s in states] == [(3,), (3,), (2,)]
        assert env.env_is_wrapped(object) == [False] * 5
        assert [len(s["returns"]) for s in env.call_workers("get_state")] == [3, 2]
    finally:
        env.close()


def test_get_state_set_state_round_trip():
    with closing(_workers(5)) as env:
        env.reset()
        _run(env, _actions(10, 5, seed=1))
        saved = env.get_state()
        actions = _actions(MAX_T + 5, 5, seed=2)  # crosses an episode end
        first = _run(env, actions)
        env.set_state(saved)
        _assert_same(_run(env, actions), first)
        with pytest.raises(ValueError, match="one state per worker"):
            env.set_state(saved[:1])


def test_ppo_trains_on_it():
    with closing(_workers(4)) as env:
        model = PPO("MlpPolicy", env, n_steps=16, batch_size=32, n_epochs=1, device="cpu", seed=0)
        model.set_logger(Logger(folder=None, output_formats=[]))  # SB3's default leaves a folder in the temp dir
        model.learn(64)
        assert model.num_timesteps >= 64


def test_bad_actions_raise_in_the_main_process_and_the_env_goes_on():
    # The same bad-input contract as BrawlVecEnv's (tests/test_envs.py), checked across the process boundary.
    with closing(_workers(4)) as env:
        env.reset()
        with pytest.raises(ValueError, match="shape"):
            env.step(np.zeros((3, 10)))
        with pytest.raises(ValueError, match="NaN"):
            env.step(np.full((4, 10), np.nan))
        with pytest.raises(RuntimeError, match="without step_async"):
            env.step_wait()
        obs, *_ = env.step(np.zeros((4, 10), np.float32))
        assert obs.shape == (4, 64)


def test_worker_exceptions_surface_with_the_worker_traceback():
    with pytest.raises(RuntimeError, match=r"(?s)worker 0 .*ValueError: boom in the slice at row 0"):
        WorkerVecEnv(4, 2, _exploding_slice)
    with closing(_workers(4)) as env:
        env.reset()
        with pytest.raises(RuntimeError, match=r"(?s)worker 1 .*Traceback.*called without step_async"):
            env.env_method("step_wait", indices=[3])
        with pytest.raises(RuntimeError, match=r"(?s)worker 0 .*AttributeError.*no_such_attribute"):
            env.get_attr("no_such_attribute", indices=[0])
        env.step(np.zeros((4, 10)))  # the pipes are still in step


def test_a_dead_worker_raises_instead_of_hanging():
    with closing(_workers(4)) as env:
        env.reset()
        os.kill(env.processes[1].pid, signal.SIGKILL)
        env.processes[1].join(5)
        with pytest.raises(RuntimeError, match=r"worker 1 .*died"):
            env.step(np.zeros((4, 10)))
    assert not any(p.is_alive() for p in env.processes)


def test_close_is_idempotent_and_leaves_no_children():
    env = _workers(4)
    pids = {p.pid for p in env.processes}
    env.reset()
    env.close()
    env.close()
    assert all(p.exitcode is not None for p in env.processes)
    assert not pids & {p.pid for p in mp.active_children()}
    with pytest.raises(RuntimeError, match="closed"):
        env.reset()
