"""The three env APIs against their ecosystems' own checkers, and the VecEnv contract."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from pettingzoo.test import parallel_api_test, parallel_seed_test, seed_test
from pettingzoo.utils.conversions import parallel_to_aec
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.logger import Logger

from environment import params as P
from environment.agents import Agent, BasedAgent, ConstantAgent, RandomAgent, ScriptedAgent, make_agent
from environment.envs import BrawlVecEnv, SelfPlayWarehouseBrawl, WarehouseBrawl
from environment.observation import observation_bounds
from environment.self_play import OpponentsCfg, SelfPlayRandom, snapshot_steps


def test_gymnasium_check_env():
    gym_check_env(SelfPlayWarehouseBrawl(max_timesteps=300), skip_render_check=True)


def test_sb3_check_env():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SB3 warns about anything non-standard
        sb3_check_env(SelfPlayWarehouseBrawl(opponent=RandomAgent(), max_timesteps=300), warn=True)


def test_pettingzoo_parallel_api_test():
    parallel_api_test(WarehouseBrawl(max_timesteps=400), num_cycles=500)


def test_pettingzoo_seed_tests():
    parallel_seed_test(lambda: WarehouseBrawl(max_timesteps=300), num_cycles=300)
    seed_test(lambda: parallel_to_aec(WarehouseBrawl(max_timesteps=300)), num_cycles=300)


def test_parallel_env_removes_agents_at_the_end_and_refuses_more_steps():
    env = WarehouseBrawl(max_timesteps=5)
    env.reset(seed=1)
    for _ in range(5):
        _, _, term, trunc, infos = env.step({a: np.zeros(10, np.int8) for a in env.agents})
    assert env.agents == [] and all(trunc.values()) and not any(term.values())
    assert {infos[a]["result"] for a in infos} == {"draw"}
    with pytest.raises(RuntimeError, match="reset"):
        env.step({})


def test_gym_env_bad_input_and_step_after_end():
    env = SelfPlayWarehouseBrawl(opponent=ConstantAgent(), max_timesteps=3)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(9))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.full(10, np.nan))
    for _ in range(3):
        _, _, terminated, truncated, info = env.step(np.zeros(10))
    assert truncated and not terminated and info["episode"]["l"] == 3
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(10))


def _run_vec(env: BrawlVecEnv, steps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    obs = env.reset()
    history = [obs]
    finished = []
    for _ in range(steps):
        obs, rew, done, infos = env.step(rng.random((env.num_envs, 10)) < 0.3)
        history.append(obs)
        finished += [info for info in infos if "episode" in info]
        assert rew.shape == (env.num_envs,) and rew.dtype == np.float32 and np.isfinite(rew).all()
        assert done.shape == (env.num_envs,)
    return np.stack(history), finished


def test_vecenv_same_step_autoreset_contract():
    env = BrawlVecEnv(6, max_timesteps=50, seed=3)
    low, high = observation_bounds()
    rng = np.random.default_rng(0)
    obs = env.reset()
    assert obs.shape == (6, 64) and obs.dtype == np.float32
    for step in range(1, 101):
        previous = obs
        obs, _, done, infos = env.step(rng.random((6, 10)))
        assert (obs >= low).all() and (obs <= high).all()
        if step % 50 == 0:
            assert done.all()
            for i, info in enumerate(infos):
                term = info["terminal_observation"]
                assert term.shape == (64,) and not np.array_equal(term, obs[i])
                assert info["TimeLimit.truncated"] is True
                ep = info["episode"]
                assert ep["l"] == 50 and {"r", "t", "result", "opponent", "damage_dealt", "knockouts"} <= set(ep)
                assert isinstance(info["reward_terms"], dict)
            # The returned observation is the first of the new match (players back in the air).
            assert (obs[:, 6] == 1).all()
        else:
            assert not done.any() and all(info == {} for info in infos)
        assert previous is not obs


def test_vecenv_action_repeat_holds_the_action_and_sums_the_frames_rewards():
    # One step of a repeat-3 env equals three steps of a repeat-1 twin with the same action.
    twin, held = BrawlVecEnv(4, seed=7), BrawlVecEnv(4, seed=7, action_repeat=3)
    twin.reset(), held.reset()
    rng = np.random.default_rng(2)
    for _ in range(20):
        action = rng.random((4, 10)) < 0.3
        total = np.zeros(4, np.float32)
        for _ in range(3):
            twin_obs, rew, _, _ = twin.step(action)
            total += rew
        obs, reward, done, _ = held.step(action)
        np.testing.assert_array_equal(obs, twin_obs)
        np.testing.assert_allclose(reward, total, rtol=1e-5, atol=1e-6)
        assert not done.any()
    assert (held.core.engine.state.frame == 60).all()


def test_vecenv_action_repeat_ends_a_match_inside_a_step_and_pays_every_frames_reward():
    # max_timesteps 10 with repeat 4: every match ends on the 2nd frame of the 3rd step; the
    # next match then plays that step's last 2 frames with the learner's keys released.
    env = BrawlVecEnv(3, max_timesteps=10, seed=1, action_repeat=4)
    env.reset()
    rng = np.random.default_rng(0)
    paid, finished = np.zeros(3), np.zeros(3)
    for step in range(1, 15):
        obs, reward, done, infos = env.step(rng.random((3, 10)) < 0.4)
        paid += reward
        ended_now = step in (3, 5, 8, 10, 13)  # frames 10, 20, 30, 40, 50 fall in these steps
        assert done.all() == ended_now and done.any() == ended_now
        for i, info in enumerate(infos):
            if ended_now:
                assert info["episode"]["l"] == 10 and not np.array_equal(info["terminal_observation"], obs[i])
                finished[i] += info["episode"]["r"]
    assert (env.core.engine.state.frame == 56 - 50).all()  # 56 frames played, 5 matches of 10 done
    # Every frame's reward was paid once: to PPO now, or carried into the next step.
    np.testing.assert_allclose(paid + env._carried_reward, finished + env.core.returns, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="action_repeat must be an integer from 1 to 15"):
        BrawlVecEnv(2, action_repeat=0)


def test_vecenv_episode_return_matches_summed_rewards():
    env = BrawlVecEnv(4, max_timesteps=120, seed=1)
    env.reset()
    rng = np.random.default_rng(1)
    total = np.zeros(4)
    for _ in range(120):
        _, rew, done, infos = env.step(rng.random((4, 10)) < 0.3)
        total += rew
    assert done.all()
    for i, info in enumerate(infos):
        assert info["episode"]["r"] == pytest.approx(total[i], rel=1e-4, abs=1e-4)
        assert sum(info["reward_terms"].values()) == pytest.approx(total[i], rel=1e-4, abs=1e-4)


def test_vecenv_seeding_is_deterministic():
    def run(seed):
        env = BrawlVecEnv(
            4,
            opponents=OpponentsCfg({"based": (1, "based"), "random": (1, RandomAgent(seed=0))}),
            max_timesteps=200,
            seed=seed,
        )
        return _run_vec(env, 250)

    (a, ea), (b, eb), (c, _) = run(5), run(5), run(6)
    np.testing.assert_array_equal(a, b)
    assert [e["episode"]["opponent"] for e in ea] == [e["episode"]["opponent"] for e in eb]
    assert len({e["episode"]["opponent"] for e in ea}) == 2
    assert not np.array_equal(a, c)


def test_vecenv_scattered_starts_start_the_next_matches_anywhere_too():
    env = BrawlVecEnv(32, max_timesteps=40, seed=1, scattered_starts=0.5)
    env.reset()
    starts = [env.core.engine.state.x.copy()]
    for _ in range(41):  # every match ends at frame 40 and its next one starts
        env.step_async(np.zeros((32, 10), bool))
        env.step_wait()
        if env.core.engine.state.frame.max() == 0:
            starts.append(env.core.engine.state.x.copy())
    assert len(starts) == 2
    for x in starts:
        scattered = np.abs(np.abs(x[:, 0]) - 5.0) > 1e-9
        assert 0 < scattered.sum() < 32


def test_vecenv_seed_method_reseeds_matches_like_sb3():
    env = BrawlVecEnv(3, max_timesteps=100)
    env.seed(42)
    first = env.reset()
    env.seed(42)
    np.testing.assert_array_equal(env.reset(), first)


def test_opponents_are_batched_and_mixed_by_weight():
    calls = []

    class CountingAgent(ConstantAgent):
        def predict_batch(self, obs, episode_start, env_ids=None):
            calls.append(obs.shape[0])
            return super().predict_batch(obs, episode_start, env_ids)

    counting = CountingAgent()
    cfg = OpponentsCfg({"counting": (3.0, counting), "based": (1.0, "based")})
    env = BrawlVecEnv(64, opponents=cfg, max_timesteps=30, seed=0)
    env.reset()
    names = env.core.opponent_names(np.arange(64))
    assert 30 < names.count("counting") < 64
    env.step(np.zeros((64, 10)))
    assert calls == [names.count("counting")], "one batched call per opponent agent per step"


class RowByRowAgent(Agent):
    """A plain tournament-style Agent: only predict(), no vectorisation."""

    def predict(self, obs):
        action = np.zeros(10, np.int8)
        action[3] = obs[32] > obs[0]  # walk right towards an opponent on the right
        action[1] = obs[32] < obs[0]
        return action


def test_any_agent_works_through_the_per_row_fallback():
    env = BrawlVecEnv(3, opponents=OpponentsCfg({"plain": (1.0, RowByRowAgent())}), max_timesteps=40, seed=0)
    env.reset()
    for _ in range(40):
        _, _, done, infos = env.step(np.zeros((3, 10)))
    assert done.all() and all(info["episode"]["opponent"] == "plain" for info in infos)


def test_vecenv_bad_input():
    with pytest.raises(ValueError, match="n_envs"):
        BrawlVecEnv(0)
    with pytest.raises(ValueError, match="max_timesteps"):
        BrawlVecEnv(2, max_timesteps=-1)
    env = BrawlVecEnv(2)
    env.reset()
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros((3, 10)))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.full((2, 10), np.nan))
    with pytest.raises(KeyError, match="unknown agent"):
        BrawlVecEnv(2, opponents=OpponentsCfg({"x": (1.0, "no_such_bot")}))
    with pytest.raises(ValueError, match="weight"):
        OpponentsCfg({"based": (-1.0, "based")})


def test_unknown_agent_name_lists_known_ones():
    with pytest.raises(KeyError, match="based"):
        make_agent("nobody")


def test_sb3_ppo_learns_on_the_vecenv_for_a_few_steps():
    env = BrawlVecEnv(8, opponents=OpponentsCfg({"based": (1.0, BasedAgent)}), max_timesteps=64, seed=0)
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=64, n_epochs=1, policy_kwargs={"net_arch": [16]}, seed=0)
    model.set_logger(Logger(folder=None, output_formats=[]))  # SB3's default leaves a folder in the temp dir
    model.learn(512)
    assert len(model.ep_info_buffer) > 0 and "r" in model.ep_info_buffer[0]


def test_every_env_takes_the_same_seeds_and_names_a_bad_one():
    """Issue 18: 2**63 raised OverflowError, and the three classes disagreed on -1, 1.5 or True."""
    big = 2**63 - 1
    BrawlVecEnv(1, max_timesteps=5, seed=big).reset()
    SelfPlayWarehouseBrawl(max_timesteps=5).reset(seed=big)
    WarehouseBrawl(max_timesteps=5).reset(seed=np.uint64(big))
    for seed in (2**63, 2**64, -1, 1.5, True, "3"):
        with pytest.raises(ValueError, match=f"seed must be an integer .*got {seed!r}"):
            BrawlVecEnv(2, max_timesteps=5, seed=seed)
        with pytest.raises(ValueError, match=f"seed must be an integer .*got {seed!r}"):
            BrawlVecEnv(2, max_timesteps=5).seed(seed)
        with pytest.raises(ValueError, match=f"seed must be an integer .*got {seed!r}"):
            SelfPlayWarehouseBrawl(max_timesteps=5).reset(seed=seed)
        with pytest.raises(ValueError, match=f"seed must be an integer .*got {seed!r}"):
            WarehouseBrawl(max_timesteps=5).reset(seed=seed)
    # Match i of a VecEnv is seeded seed + i: the last seed that fits 64 bits depends on n.
    with pytest.raises(ValueError, match=f"from 0 to {big - 2} \\(match i of 3 is seeded seed \\+ i\\), got {big}"):
        BrawlVecEnv(3, max_timesteps=5, seed=big)


def test_vecenv_step_before_reset_says_so():
    env = BrawlVecEnv(2, max_timesteps=5)
    with pytest.raises(RuntimeError, match=r"BrawlVecEnv.step\(\) before reset\(\): call reset\(\) first"):
        env.step(np.zeros((2, 10)))
    env.reset()
    env.step(np.zeros((2, 10)))


class _Remembering(ScriptedAgent):
    """A snapshot stand-in whose moves depend on its per-match memory (frames since its match began)."""

    memory = {"t": np.int64}

    def __init__(self, shift: int):
        super().__init__()
        self.shift = shift

    def act(self, obs, keys, ids):
        t = self.mem["t"][ids]
        self.mem["t"][ids] += 1
        phase = (t // 9 + self.shift) % 3
        keys[:, P.K_D] = phase == 0
        keys[:, P.K_A] = phase == 1
        keys[:, P.K_JUMP] = phase == 2


def _snapshot_pool_env(tmp_path, cache_size: int) -> tuple[BrawlVecEnv, SelfPlayRandom]:
    paths = [tmp_path / f"rl_model_{step}_steps.zip" for step in (100, 200, 300, 400)]
    for path in paths:
        path.touch()
    pool = SelfPlayRandom(lambda p: _Remembering(snapshot_steps(p) // 100), cache_size=cache_size, seed=3)
    pool.extra_snapshots = paths
    env = BrawlVecEnv(n_envs=6, opponents=OpponentsCfg({"self_play": (1.0, pool)}), max_timesteps=40, seed=5)
    return env, pool


@pytest.mark.parametrize("cache_size", [1, 8])
def test_saved_matches_continue_exactly_whatever_the_snapshot_cache_holds(tmp_path, cache_size):
    """A snapshot the pool's cache has let go of still plays on from its own memory: the saved state
    holds the memory of the agent the match plays (not a fresh copy read for the capture), a resumed
    env (another cache) groups the same matches into the same calls, and capturing changes nothing."""
    actions = np.random.default_rng(0).integers(0, 2, (200, 6, 10))

    def play(env, steps):
        return np.stack([env.step(a)[0] for a in steps])

    straight, pool = _snapshot_pool_env(tmp_path, cache_size)
    straight.reset()
    play(straight, actions[:63])  # mid-match: matches last 40 frames
    saved_env, saved_pool = straight.get_state(), pool.get_state()
    expected = play(straight, actions[63:])

    resumed, other_pool = _snapshot_pool_env(tmp_path, cache_size)
    resumed.reset()
    resumed.set_state(saved_env)
    other_pool.set_state(saved_pool)
    other_pool.extra_snapshots = pool.extra_snapshots  # stored by name; this pool has no run folder to find them in
    np.testing.assert_array_equal(play(resumed, actions[63:]), expected)


def test_the_default_snapshot_cache_holds_the_whole_pool_and_lets_go_of_pruned_snapshots(tmp_path):
    """Issue 15: no snapshot is read from disk twice during play; one deleted from the pool (max_saved)
    leaves the cache."""
    env, pool = _snapshot_pool_env(tmp_path, cache_size=None)
    env.reset()
    for _ in range(400):  # 40-frame matches: many picks among the 4 snapshots
        env.step(np.zeros((6, 10)))
    assert pool.served > 20 and pool.loads == 4 and len(pool.cache) == 4
    gone = pool.extra_snapshots.pop(0)
    gone.unlink()
    pool.agent_for_path(pool.extra_snapshots[0])  # any access trims
    assert gone not in pool.cache and len(pool.cache) == 3
