"""user/train_agent.py: configs and their validation, models, agent save/load, rewards, self-play, end to end."""

from __future__ import annotations

import ast
import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium import spaces
from sb3_contrib.common.recurrent.type_aliases import RNNStates

from environment import params as P
from environment.checkpoints import CheckpointError, CheckpointNotFoundError, load_state_tree
from environment.engine import StepEvents
from environment.envs import BrawlVecEnv
from environment.evaluation import public_bot_names
from environment.macros import MACRO_KEYS, N_MACROS, macro_id
from environment.observation import observation_bounds
from environment.rewards import RewardContext, sparse_reward_manager
from environment.self_play import snapshot_steps
from environment.state import allocate
from environment.worker_vec_env import WorkerVecEnv
from user import agent_io, behavior_cloning
from user import train_agent as T

REPO = Path(__file__).resolve().parents[1]

# Small enough to train a few hundred steps in seconds on a CPU. (Lists of --set overrides look alike to
# the `duplicates` tool: this one, RESUME_SETS in test_resume.py and the soak's TRAINER_SETS; each is its own size.)
TINY_SETS = [
    "agent.latent_dim=16",
    "agent.num_heads=2",
    "agent.num_layers=1",
    "agent.sequence_length=8",
    "agent.attention_window=4",
    "agent.lstm_hidden_size=16",
    "agent.net_arch={pi: [16], vf: [16]}",
    "agent.n_steps=32",
    "agent.batch_size=64",
    "agent.n_epochs=1",
    "env.n_envs=4",
    "env.max_timesteps=120",
    "training.total_timesteps=512",
    "training.save_freq=128",
    "training.max_saved=3",
    "eval.eval_freq=256",
    "eval.matches_per_opponent=2",
    "eval.max_timesteps=120",
    "training.final_video=false",
    "warm_start.seconds=0",  # the recipe's 150-s behaviour cloning has tests of its own
]
# Snapshots only: the opponent schedule (on in every named config) weights bots, so it goes off.
SELF_PLAY_ONLY = {"self_play__opponents": "{self_play: [1.0, null]}", "controls__opponent_schedule__enabled": "false"}


def tiny_config(**sections) -> dict:
    config = T.apply_overrides(copy.deepcopy(T.TRAIN_CONFIG_TEST), TINY_SETS)
    for dotted, value in sections.items():
        config = T.apply_overrides(config, [f"{dotted.replace('__', '.')}={value}"])
    return T.validate_config(config)


# --- configs -----------------------------------------------------------------------------
def test_test_and_10m_configs_share_every_hyperparameter():
    for section in ("agent", "reward", "self_play", "env"):
        assert T.TRAIN_CONFIG_TEST[section] == T.TRAIN_CONFIG_10M[section], section
    test_tr, big_tr = T.TRAIN_CONFIG_TEST["training"], T.TRAIN_CONFIG_10M["training"]
    differing = {k for k in test_tr if test_tr[k] != big_tr[k]}
    assert differing <= {"total_timesteps", "save_freq", "max_saved", "debug_csvs"}
    assert (test_tr["total_timesteps"], test_tr["save_freq"], test_tr["max_saved"]) == (50_000, 5_000, 10)
    assert (big_tr["total_timesteps"], big_tr["save_freq"], big_tr["max_saved"]) == (10_000_000, 100_000, 100)
    assert T.TRAIN_CONFIG_TEST["eval"]["eval_freq"] == 10_000 and test_tr["debug_csvs"]


def test_shared_agent_config_matches_the_spec():
    a = T._SHARED_AGENT_CONFIG
    assert (a["type"], a["latent_dim"], a["num_heads"], a["num_layers"], a["sequence_length"]) == (
        "transformer_strategy",
        256,
        8,
        6,
        90,
    )
    assert a["lstm_hidden_size"] == 512 and a["shared_lstm"] and a["net_arch"] == {"pi": [96, 96], "vf": [96, 96]}
    # batch 2048 of n_steps 256 x 64 envs (the seed: 128 of 512 x 16): sized for a GPU, issue 15
    assert (a["n_steps"], T._SHARED_ENV_CONFIG["n_envs"]) == (256, 64)
    assert (a["batch_size"], a["n_epochs"], a["learning_rate"], a["clip_range"], a["gamma"], a["gae_lambda"]) == (
        2048,
        10,
        2.5e-4,
        0.2,
        0.99,
        0.95,
    )
    weights = {name: w for name, (w, _) in T._SHARED_SELF_PLAY_CONFIG["opponents"].items()}
    assert weights == {"self_play": 0.8, "based": 0.15, "constant": 0.05}


def test_every_named_config_validates():
    for name, config in T.CONFIGS.items():
        assert T.validate_config(copy.deepcopy(config))["name"] == name
    assert T.TRAIN_CONFIG_CURRICULUM["self_play"]["opponents"] == {"constant": (1.0, "constant")}
    assert T.TRAIN_CONFIG_CURRICULUM_STAGE2["self_play"]["opponents"] == {"based": (1.0, "based")}
    assert T.TRAIN_CONFIG_CPU["agent"]["type"] == "transformer_strategy"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("agent.no_such_key=1", "unknown config key 'agent.no_such_key'"),
        ("agent.batch_size=100", "agent.batch_size \\(100\\) must divide"),
        ("env.n_envs=0", "env.n_envs must be a positive integer"),
        ("agent.n_steps=-5", "agent.n_steps must be a positive integer"),
        ("agent.num_heads=3", "divisible by agent.num_heads"),
        ("agent.type=transformer", "agent.type must be one of"),
        ("agent.gamma=1.5", "agent.gamma must be in"),
        ("reward.terms={damage: 1.0}", "unknown config key 'reward.terms.damage'"),
        ("self_play.opponents={based: [1.0, nobody]}", "unknown agent 'nobody'"),
        ("self_play.opponents={bot: [1.0, null]}", "only 'self_play' may have entry None"),
        ("training.device=tpu", "training.device must be"),
        ("agent.action_repeat=0", "agent.action_repeat must be an integer from 1 to 15"),
        ("agent.action_repeat=16", "agent.action_repeat must be an integer from 1 to 15"),
        ("env.workers=0", "env.workers must be an integer from 1 to env.n_envs"),
        ("env.scattered_starts=1.0", "env.scattered_starts must be a share of matches in \\[0, 1\\), got 1.0"),
        ("env.scattered_starts=0.25", None),
        ("env.workers=2", "env.workers=2 runs scripted opponents only, but self_play.opponents has 'self_play'"),
        ("agent.shared_lstm=true", None),  # valid on its own
        ("agent.action_head=buttons", "agent.action_head must be 'keys' or 'macro', got 'buttons'"),
        ("agent.action_head=macro", None),
        (
            "self_play.opponents={self_play: [1.0, null]}",  # the recipe's opponent schedule weights bots
            "controls.opponent_schedule weights the scripted bots, but self_play.opponents gives them no share",
        ),
        # Text in number fields, non-finite numbers, and non-booleans in switches (issue 18, item 9).
        ("agent.gamma=abc", "agent.gamma must be a number, got 'abc'"),
        ("training.min_free_gb=lots", "training.min_free_gb must be a number, got 'lots'"),
        ("agent.learning_rate=.inf", "agent.learning_rate must be a finite number, got inf"),
        ("agent.clip_range=.nan", "agent.clip_range must be a finite number, got nan"),
        ("training.final_video=3", "training.final_video must be true or false, got 3"),
    ],
)
def test_config_validation_names_the_key(override, message):
    config = copy.deepcopy(T.TRAIN_CONFIG_TEST)
    if message is None:
        T.validate_config(T.apply_overrides(config, [override]))
        return
    with pytest.raises(T.ConfigError, match=message):
        T.validate_config(T.apply_overrides(config, [override]))


def test_impossible_lstm_combination_is_rejected():
    config = T.apply_overrides(
        copy.deepcopy(T.TRAIN_CONFIG_TEST), ["agent.shared_lstm=true", "agent.enable_critic_lstm=true"]
    )
    with pytest.raises(T.ConfigError, match="shared_lstm and agent.enable_critic_lstm"):
        T.validate_config(config)


def test_set_overrides_parse_yaml_values():
    config = T.apply_overrides(
        copy.deepcopy(T.TRAIN_CONFIG_TEST), ["training.total_timesteps=1234", "agent.net_arch={pi: [8], vf: [8]}"]
    )
    assert config["training"]["total_timesteps"] == 1234
    assert config["agent"]["net_arch"] == {"pi": [8], "vf": [8]}
    with pytest.raises(T.ConfigError, match="key.path=value"):
        T.apply_overrides(config, ["training.total_timesteps"])


# --- models ------------------------------------------------------------------------------
def test_encoder_shapes_and_attention_pooling():
    encoder = T.TransformerStrategyEncoder(latent_dim=16, num_heads=2, num_layers=2, sequence_length=8)
    latent, tokens, weights = encoder(torch.randn(5, 8, 32))
    assert latent.shape == (5, 16) and tokens.shape == (5, 8, 16) and weights.shape == (5, 8)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(5))
    assert T.sinusoidal_positions(8, 16).shape == (8, 16)


def test_opponent_history_is_batched_and_zero_filled_at_reset():
    env = T.OpponentHistory(BrawlVecEnv(3, max_timesteps=5, seed=0), sequence_length=4)
    obs = env.reset()
    assert obs.shape == (3, 64 + 4 * 32)
    history = obs[:, 64:].reshape(3, 4, 32)
    assert (history[:, :3] == 0).all() and np.array_equal(history[:, 3], obs[:, 32:64])
    for _ in range(5):
        obs, _, dones, infos = env.step(np.zeros((3, 10)))
    assert dones.all()
    terminal = infos[0]["terminal_observation"]
    assert terminal.shape == (64 + 4 * 32,) and (terminal[64:] != 0).any()
    new_history = obs[:, 64:].reshape(3, 4, 32)
    assert (new_history[:, :3] == 0).all(), "a new match starts with an empty history"


def _tiny_run_objects(tmp_path, agent_type="transformer_strategy", action_head="keys"):
    config = tiny_config(agent__type=agent_type, agent__action_head=action_head)
    run = T.TrainingRun(config, tmp_path, torch.device("cpu"))
    return config, run


@pytest.mark.parametrize("action_head", ["keys", "macro"])
@pytest.mark.parametrize("agent_type", ["transformer_strategy", "recurrent_ppo", "ppo"])
def test_agent_gives_identical_actions_after_save_and_load(tmp_path, agent_type, action_head):
    config, run = _tiny_run_objects(tmp_path, agent_type, action_head)
    run.model.learn(128)  # move the weights away from their initial values
    zip_path = tmp_path / "rl_model_128_steps.zip"
    files = agent_io.save_checkpoint_pair(run.model, zip_path, config["agent"])
    assert files[0] == zip_path
    assert (agent_io.encoder_path_for(zip_path).exists()) == (agent_type == "transformer_strategy")
    live = T.snapshot_agent(run.model, config["agent"], "cpu")
    loaded = T.load_agent(zip_path)
    rng = np.random.default_rng(0)
    low, high = observation_bounds()
    for frame in range(20):
        obs = rng.uniform(low, high, size=(6, 64)).astype(np.float32)
        start = np.full(6, frame % 7 == 0)
        ids = np.array([0, 3, 5, 7, 9, 11])
        np.testing.assert_array_equal(live.predict_batch(obs, start, ids), loaded.predict_batch(obs, start, ids))
    single = loaded.predict(obs[0])
    assert single.shape == (10,) and set(np.unique(single)) <= {0, 1}


@pytest.mark.parametrize("agent_type", ["transformer_strategy", "recurrent_ppo", "ppo"])
def test_the_macro_head_trains_on_move_ids_and_plays_the_moves_keys(tmp_path, agent_type):
    config, run = _tiny_run_objects(tmp_path, agent_type, "macro")
    assert run.model.action_space == spaces.Discrete(N_MACROS)
    run.model.learn(128)
    stored = run.model.rollout_buffer.actions
    assert np.all(stored == np.round(stored)) and stored.min() >= 0 and stored.max() < N_MACROS
    # Teach it a state-dependent rule in a few supervised steps: walk toward x = 0.
    rng = np.random.default_rng(3)
    low, high = observation_bounds()
    obs = rng.uniform(low, high, size=(256, 64)).astype(np.float32)
    toward_centre = np.where(obs[:, 0] > 0, macro_id("walk_left"), macro_id("walk_right"))
    _fit_macro_labels(run.model.policy, T.snapshot_agent(run.model, config["agent"], "cpu"), obs, toward_centre)
    agent = T.snapshot_agent(run.model, config["agent"], "cpu")
    keys = agent.predict_batch(obs, np.ones(len(obs), bool))
    menu = {tuple(row) for row in MACRO_KEYS.astype(np.int8)}
    assert all(tuple(row) in menu for row in keys), "argmax play holds one macro's keys"
    if agent_type == "transformer_strategy":
        return  # its tiny encoder does not fit this rule in a few hundred steps (the LSTM-only type does)
    right = (keys == MACRO_KEYS[toward_centre]).all(axis=1).mean()
    assert right >= 0.9, f"argmax play follows the state in only {right:.0%} of rows"


@pytest.mark.parametrize(
    ("agent_type", "action_head"),
    [("transformer_strategy", "macro"), ("recurrent_ppo", "macro"), ("recurrent_ppo", "keys")],
)
def test_greedy_rollout_rows_play_the_most_likely_move_and_the_others_sample(tmp_path, agent_type, action_head):
    config = tiny_config(agent__type=agent_type, agent__action_head=action_head, agent__greedy_rollout_share=0.5)
    run = T.TrainingRun(config, tmp_path, torch.device("cpu"))
    run.model.learn(128)  # rollouts collect with greedy rows, and PPO trains on them
    policy, n = run.model.policy, config["env"]["n_envs"]
    greedy = policy.greedy_rows.numpy()
    assert greedy.sum() == round(0.5 * n) and greedy[0] and not greedy[-1]
    obs = torch.as_tensor(run.model._last_obs)
    states, starts = run.model._last_lstm_states, torch.zeros(n)
    with torch.no_grad():
        mode = policy.get_distribution(obs, states.pi, starts)[0].mode().numpy()
        draws = [policy.forward(obs, states, starts) for _ in range(12)]
    actions = np.stack([a.numpy() for a, *_ in draws])
    assert (actions[:, greedy] == mode[greedy]).all(), "greedy rows play the most likely move every time"
    assert (actions[:, ~greedy] != mode[~greedy]).any(), "the other rows sample"
    with torch.no_grad():
        dist = policy.get_distribution(obs, states.pi, starts)[0]
        np.testing.assert_allclose(draws[0][2].numpy(), dist.log_prob(torch.as_tensor(actions[0])).numpy(), rtol=1e-5)
        predicted = np.stack(
            [policy.get_distribution(obs, states.pi, starts)[0].get_actions().numpy() for _ in range(12)]
        )
    assert (predicted[:, greedy] != mode[greedy]).any(), "predict and evaluation sample on every row"


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["agent.greedy_rollout_share=1.0"], "agent.greedy_rollout_share must be a number in \\[0, 1\\)"),
        (["agent.type=ppo", "agent.greedy_rollout_share=0.5"], "needs a recurrent agent type"),
        (["agent.greedy_rollout_share=0.001"], "rounds to no env"),
    ],
)
def test_greedy_rollout_share_is_validated(sets, message):
    with pytest.raises(T.ConfigError, match=message):
        T.validate_config(T.apply_overrides(copy.deepcopy(T.TRAIN_CONFIG_TEST), sets))


def _fit_macro_labels(policy, agent, obs: np.ndarray, labels: np.ndarray, steps: int = 300) -> None:
    """Supervised steps on (first-frame observation, macro id) pairs through SB3's evaluate_actions."""
    agent._allocate(len(obs))
    policy_obs = torch.as_tensor(agent._policy_obs(obs, np.arange(len(obs)), np.ones(len(obs), bool)))
    actions = torch.as_tensor(labels)
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-2)
    policy.set_training_mode(True)
    for _ in range(steps):
        if agent.recurrent:
            zeros = torch.zeros(1, len(obs), policy.lstm_actor.hidden_size)
            states = RNNStates((zeros, zeros), (zeros, zeros))
            _, log_prob, _ = policy.evaluate_actions(policy_obs, actions, states, torch.ones(len(obs)))
        else:
            _, log_prob, _ = policy.evaluate_actions(policy_obs, actions)
        optimizer.zero_grad()
        (-log_prob.mean()).backward()
        optimizer.step()
    policy.set_training_mode(False)


def test_action_repeat_agent_decides_every_nth_frame_and_holds_its_keys(tmp_path):
    # The trainer's env steps k frames per decision; the agent in play must decide on the
    # match's first frame and every k-th after it, exactly as the same policy deciding
    # only on those frames would, and hold the keys in between.
    config = tiny_config(agent__action_repeat=3)
    run = T.TrainingRun(config, tmp_path, torch.device("cpu"))
    run.model.learn(64)
    holding = T.snapshot_agent(run.model, config["agent"], "cpu")
    every_frame = T.snapshot_agent(run.model, {**config["agent"], "action_repeat": 1}, "cpu")
    holding.deterministic = every_frame.deterministic = False  # sampled keys change between decisions
    rng = np.random.default_rng(0)
    low, high = observation_bounds()
    ids = np.array([2, 5])
    frames_since_start = 0
    for frame in range(14):
        start = np.full(2, frame in (0, 8))
        frames_since_start = 0 if start[0] else frames_since_start + 1
        obs = rng.uniform(low, high, size=(2, 64)).astype(np.float32)
        torch.manual_seed(frame)
        actions = holding.predict_batch(obs, start, ids)
        if frames_since_start % 3 == 0:  # a decision frame: the same as a fresh decision
            torch.manual_seed(frame)
            np.testing.assert_array_equal(actions, every_frame.predict_batch(obs, start, ids))
            decided = actions
        else:
            np.testing.assert_array_equal(actions, decided)
    saved = holding.get_state()
    restored = T.snapshot_agent(run.model, config["agent"], "cpu")
    restored.set_state(saved)
    np.testing.assert_array_equal(restored.get_state()["held"], saved["held"])


WORKER_SETS = {"env__workers": 2, "self_play__opponents": "{based: [0.7, based], constant: [0.3, constant]}"}


def test_training_with_worker_processes_saves_and_resumes_exactly(tmp_path):
    straight = T.run_training_loop(tiny_config(**WORKER_SETS, training__total_timesteps=256), tmp_path / "straight")
    assert isinstance(straight.venv, WorkerVecEnv) and not any(p.is_alive() for p in straight.venv.processes)
    T.run_training_loop(tiny_config(**WORKER_SETS, training__total_timesteps=128), tmp_path / "halves")
    state = load_state_tree(tmp_path / "halves" / "rl_model_128_steps_state")
    assert isinstance(state["env"], list) and len(state["env"]) == 2, "one saved env state per worker"
    resumed = T.resume_training(tmp_path / "halves", ["training.total_timesteps=256"], progress=False)
    a, b = straight.model.policy.state_dict(), resumed.model.policy.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), "the resumed run trains exactly as the uninterrupted one"
    rows = [(tmp_path / run / "monitor.csv").read_text().splitlines()[2:] for run in ("straight", "halves")]
    without_time = [[(c[0], c[1], *c[3:]) for c in (r.split(",") for r in run_rows)] for run_rows in rows]
    assert without_time[0] == without_time[1], "same returns, lengths, opponents and results"


def test_worker_processes_refuse_what_lives_in_the_training_process():
    with pytest.raises(T.ConfigError, match="reward.type=curriculum"):
        tiny_config(**WORKER_SETS, reward__type="curriculum")
    with pytest.raises(T.ConfigError, match="has 'self_play'"):
        tiny_config(env__workers=2)


def test_opponent_weights_reach_worker_processes(tmp_path):
    run = T.TrainingRun(tiny_config(**WORKER_SETS), tmp_path, torch.device("cpu"))
    try:
        run.set_opponent_weights({"based": 0.2, "constant": 0.8})
        weights = run.venv.call_workers("get_attr", "opponents")
        assert len(weights) == 2 and all(w[0].opponents["constant"][0] == pytest.approx(0.8) for w in weights)
    finally:
        run.close()


def test_loading_a_different_architecture_names_the_mismatch(tmp_path):
    config, run = _tiny_run_objects(tmp_path)
    zip_path = tmp_path / "rl_model_1_steps.zip"
    agent_io.save_checkpoint_pair(run.model, zip_path, config["agent"])
    bigger = {**config["agent"], "lstm_hidden_size": 32}
    policy = T.build_policy(bigger)
    with pytest.raises(CheckpointError, match="different architecture"):
        agent_io.load_policy_weights(policy, zip_path)


@pytest.mark.parametrize("shared_lstm", [True, False])
def test_value_loss_reaches_the_strategy_encoder_only_without_a_shared_lstm(tmp_path, shared_lstm):
    # sb3-contrib hands a shared-LSTM critic `latent_pi.detach()`: its value loss cannot train the
    # encoder or the LSTM. The cpu config uses a feed-forward critic on the features instead, so
    # that the value function can learn (technical guide §9).
    config = tiny_config(agent__shared_lstm=str(shared_lstm).lower())
    policy = T.TrainingRun(config, tmp_path, torch.device("cpu")).model.policy
    n_envs = config["env"]["n_envs"]
    obs = torch.as_tensor(np.stack([policy.observation_space.sample() for _ in range(n_envs)]))
    hidden = torch.zeros(policy.lstm_hidden_state_shape[0], n_envs, policy.lstm_hidden_state_shape[2])
    policy.predict_values(obs, (hidden, hidden), torch.zeros(n_envs)).sum().backward()
    encoder_grads = [p.grad for p in policy.features_extractor.encoder.parameters()]
    reached = any(g is not None and bool(g.abs().sum() > 0) for g in encoder_grads)
    assert reached == (not shared_lstm)
    cpu = T.TRAIN_CONFIG_CPU["agent"]
    assert not cpu["shared_lstm"] and not cpu["enable_critic_lstm"]


# --- rewards -----------------------------------------------------------------------------
def _context(n=2):
    state, events = allocate(n), StepEvents.allocate(n)
    state.weapon[:] = 0
    keys = np.zeros((n, 2, 10), bool)
    return RewardContext(
        state=state,
        prev_x=state.x.copy(),
        prev_y=state.y.copy(),
        events=events,
        keys=keys,
        params=P.DEFAULT_PARAMS,
        player=0,
    )


def test_dense_reward_signals_on_hand_built_events():
    manager = T.gen_reward_manager()
    manager.reset(2)
    ctx = _context()
    ev = ctx.events
    ev.damage_dealt[0] = (14.0, 7.0)  # match 0: dealt 14, took 7
    ev.knocked_out[1] = (False, True)  # match 1: the opponent lost a stock
    ev.combo[1, 0] = True
    ev.weapon_equip[0, 0] = P.HAMMER
    total = manager.compute(ctx)
    assert manager.last_terms["damage_interaction"][0] == pytest.approx(0.05)
    assert manager.last_terms["knockout"][1] == pytest.approx(8.0)
    assert manager.last_terms["combo"][1] == pytest.approx(5.0)
    assert manager.last_terms["equip"][0] == pytest.approx(10.0)
    assert total[1] == pytest.approx(13.0, abs=0.1)


def test_damage_taken_term_makes_getting_hit_cost_more():
    reward = T.merge_config(T._SHARED_REWARD_CONFIG, {"terms": {"damage_taken": 2.0}})
    manager = T.gen_reward_manager(reward)
    manager.reset(1)
    ctx = _context(1)
    ctx.events.damage_dealt[0] = (14.0, 7.0)  # dealt 14, took 7
    manager.compute(ctx)
    assert manager.last_terms["damage_interaction"][0] == pytest.approx((14 - 7) / 140)
    assert manager.last_terms["damage_taken"][0] == pytest.approx(-2.0 * 7 / 140)
    assert "damage_taken" not in T.gen_reward_manager().term_names  # off (weight 0) by default


def test_win_loss_knocked_out_and_drop_signals():
    manager = T.gen_reward_manager()
    manager.reset(2)
    ctx = _context()
    ev = ctx.events
    ev.done[:] = True
    ev.result[:] = (P.RESULT_P0_WINS, P.RESULT_P1_WINS)
    ev.knocked_out[1] = (True, False)
    ev.weapon_drop[0, 0] = True
    manager.compute(ctx)
    assert manager.last_terms["win"].tolist() == [50.0, -50.0]
    assert manager.last_terms["knocked_out"][1] == pytest.approx(-8.0)
    assert manager.last_terms["drop"][0] == pytest.approx(-15.0)


def test_sparse_rewards_and_the_curriculum_blend():
    sparse = sparse_reward_manager()
    sparse.reset(1)
    ctx = _context(1)
    ctx.events.done[:] = True
    ctx.events.result[:] = P.RESULT_P0_WINS
    ctx.events.knocked_out[0] = (False, True)
    assert sparse.compute(ctx)[0] == pytest.approx(150.0)
    curriculum = T.CurriculumRewardScheduler(T.gen_reward_manager(), sparse_reward_manager(), 0.3, 0.8)
    curriculum.reset(1)
    assert curriculum.update(0.2) == 0.0 and curriculum.update(0.55) == pytest.approx(0.5)
    assert curriculum.update(0.9) == 1.0
    assert curriculum.compute(ctx)[0] == pytest.approx(150.0)


# --- self-play ---------------------------------------------------------------------------
def test_self_play_entry_is_filled_with_the_handler(tmp_path):
    config = tiny_config()
    save_handler, handler, opponents = T.build_self_play_components(config, tmp_path / "run")
    assert opponents.opponents["self_play"][1] is handler
    weights = {name: weight for name, (weight, _) in opponents.opponents.items()}
    assert weights["self_play"] / sum(weights.values()) == pytest.approx(0.2)  # the schedule weights only the bots
    assert opponents.opponents["based"][1] == "based"
    assert isinstance(handler, T.SelfPlayRandom) and handler.save_handler is save_handler
    assert opponents.agent_for("self_play") is handler.fallback  # no snapshot yet


def test_snapshot_opponent_is_used_after_its_first_save(tmp_path):
    config = tiny_config(**SELF_PLAY_ONLY)
    run = T.run_training_loop(config, tmp_path / "run", progress=False)
    assert run.self_play.served > 0 and run.self_play.last_choice is not None
    assert run.self_play.loads == 0, "snapshots played from memory, not re-read from disk"
    kept = sorted((tmp_path / "run").glob("rl_model_*_steps.zip"), key=snapshot_steps)
    assert kept[-1].name == "rl_model_512_steps.zip"
    assert {p.name for p in kept} <= {f"rl_model_{n}_steps.zip" for n in (128, 256, 384, 512)}


def test_every_evaluation_saves_a_checkpoint_and_the_best_by_the_headline_is_kept(tmp_path):
    """Issue 14: evaluations judge by the worst win rate over the public bots, and the best checkpoint by it stays."""
    config = tiny_config(training__save_freq=512, training__max_saved=1)  # evaluations at 256 and 512
    run = T.run_training_loop(config, tmp_path / "run", progress=False)
    assert [e["step"] for e in run.eval_history] == [256, 512]
    log = (tmp_path / "run" / "training.log").read_text()
    assert "Saved checkpoint rl_model_256_steps.zip" in log, "an evaluated policy is saved (save_freq is 512)"
    assert log.count("worst win rate over the public bots (vs ") == 2  # first row of each success table
    best = log.rsplit("best checkpoint by it so far: ", 1)[1].split()[0]
    assert best in ("rl_model_256_steps.zip", "rl_model_512_steps.zip")
    assert (tmp_path / "run" / best).exists(), "the best checkpoint by the headline outlives max_saved"


# --- end to end --------------------------------------------------------------------------
@pytest.mark.slow  # the CLI's training path also runs in test_resume's SIGTERM test
def test_script_runs_end_to_end_as_a_subprocess(tmp_path):
    run_dir = tmp_path / "run"
    args = [sys.executable, "user/train_agent.py", "--config", "test", "--run-dir", str(run_dir), "--progress", "lines"]
    for item in TINY_SETS:
        args += ["--set", item]
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for name in (
        "rl_model_512_steps.zip",
        "rl_model_512_steps_transformer_encoder.pth",
        "monitor.csv",
        "reward_breakdown.csv",
        "behavior_metrics.csv",
        "metrics.csv",
        "config.json",
        "training.log",
        "manifest.json",
    ):
        assert (run_dir / name).exists(), name
    monitor = (run_dir / "monitor.csv").read_text().splitlines()
    assert monitor[0].startswith("#{") and monitor[1].startswith("r,l,t")
    assert len(monitor) > 2


def test_cli_reports_config_errors_without_a_traceback():
    done = subprocess.run(
        [sys.executable, "user/train_agent.py", "--set", "agent.batch_size=100", "--print-config"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "agent.batch_size (100) must divide" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_named_configs_share_no_nested_dict():
    configs = list(T.CONFIGS.values())
    for i, a in enumerate(configs):
        for b in configs[i + 1 :]:
            for section in a:
                if isinstance(a[section], dict):
                    assert a[section] is not b[section], (a["name"], b["name"], section)
    before = copy.deepcopy(T.TRAIN_CONFIG_10M)
    T.TRAIN_CONFIG_TEST["reward"]["terms"]["damage_interaction"] = 99.0  # editing one config ...
    try:
        assert before == T.TRAIN_CONFIG_10M  # ... edits no other
    finally:
        T.TRAIN_CONFIG_TEST["reward"]["terms"]["damage_interaction"] = before["reward"]["terms"]["damage_interaction"]


def test_a_variant_names_only_what_differs():
    variant = T.merge_config(T._BASE_CONFIG, {"name": "small", "agent": {"latent_dim": 16}})
    assert variant["agent"]["type"] == "transformer_strategy" and variant["agent"]["latent_dim"] == 16
    assert variant["agent"]["net_arch"] is not T._SHARED_AGENT_CONFIG["net_arch"]


def test_a_missing_key_is_named():
    config = copy.deepcopy(T.TRAIN_CONFIG_TEST)
    del config["agent"]["type"]
    with pytest.raises(T.ConfigError, match="config key 'agent.type' is missing"):
        T.validate_config(config)
    config = copy.deepcopy(T.TRAIN_CONFIG_TEST)
    del config["eval"]
    with pytest.raises(T.ConfigError, match="config key 'eval' is missing"):
        T.validate_config(config)


def test_train_config_auto_picks_by_accelerator(monkeypatch):
    assert T.TRAIN_CONFIG == "auto"
    monkeypatch.setattr(T, "has_accelerator", lambda: True)
    assert T.default_config() == T.TRAIN_CONFIG_TEST
    monkeypatch.setattr(T, "has_accelerator", lambda: False)
    assert T.default_config() == T.TRAIN_CONFIG_CPU
    monkeypatch.setattr(T, "TRAIN_CONFIG", T.TRAIN_CONFIG_10M)
    assert T.default_config() == T.TRAIN_CONFIG_10M and T.default_config() is not T.TRAIN_CONFIG_10M
    monkeypatch.setattr(T, "TRAIN_CONFIG", "gpu")
    with pytest.raises(T.ConfigError, match='TRAIN_CONFIG must be "auto"'):
        T.default_config()


def test_one_source_for_match_length_and_the_sparse_reward():
    for config in T.CONFIGS.values():
        assert config["env"]["max_timesteps"] == config["eval"]["max_timesteps"] == P.DEFAULT_PARAMS.max_timesteps
    sparse = T.build_reward_manager({**T._SHARED_REWARD_CONFIG, "type": "sparse"})
    assert sparse.term_names == sparse_reward_manager().term_names == ["damage_interaction", "win", "knockout"]


def test_drop_must_be_a_penalty():
    with pytest.raises(T.ConfigError, match="reward.signals.drop must be <= 0"):
        tiny_config(reward__signals__drop=15.0)
    manager = T.gen_reward_manager(tiny_config(reward__signals__drop=-3.0)["reward"])
    assert manager.signals["drop"][1].weight == -3.0


def test_set_reads_exponent_numbers_without_a_dot():
    config = T.apply_overrides(copy.deepcopy(T.TRAIN_CONFIG_TEST), ["agent.learning_rate=1e-4"])
    assert config["agent"]["learning_rate"] == pytest.approx(1e-4)


def test_config_and_config_file_together_are_refused(tmp_path):
    (tmp_path / "c.yaml").write_text("training: {total_timesteps: 1000}\n")
    args = T.build_arg_parser(list(T.CONFIGS)).parse_args(
        ["--config", "test", "--config-file", str(tmp_path / "c.yaml")]
    )
    with pytest.raises(T.ConfigError, match="not both"):
        T.resolve_cli_config(args)
    args = T.build_arg_parser(list(T.CONFIGS)).parse_args(["--config-file", str(tmp_path / "c.yaml")])
    assert T.resolve_cli_config(args)["training"]["total_timesteps"] == 1000


def test_init_from_starts_a_new_run_from_another_runs_weights(tmp_path):
    first = T.run_training_loop(tiny_config(), tmp_path / "stage1", progress=False)
    second = T.start_run(tiny_config(training__init_from=str(tmp_path / "stage1")), tmp_path / "stage2")
    try:
        a, b = first.model.policy.state_dict(), second.model.policy.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        assert second.model.num_timesteps == 0, "weights only: the new run starts at step 0"
    finally:
        second.close()
    with pytest.raises(CheckpointNotFoundError, match="checkpoint not found"):
        T.start_run(tiny_config(training__init_from=str(tmp_path / "stage1" / "nope.zip")), tmp_path / "stage3")
    assert not (tmp_path / "stage3").exists(), "a wrong init_from fails before the run folder exists"


def test_the_game_package_needs_neither_torch_nor_matplotlib():
    # Module-level imports of environment/: the trainer-side loaders and plots live in user/. (envs.py and
    # worker_vec_env.py subclass SB3's VecEnv, and SB3 itself imports torch.)
    for path in sorted((REPO / "environment").glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            assert not any(n.split(".")[0] in ("torch", "matplotlib", "pandas") for n in names), (path.name, names)
    code = (
        "import sys; import environment.checkpoints, environment.evaluation, environment.rewards, "
        "environment.self_play, environment.match; "
        "print(sorted(m for m in ('torch', 'matplotlib', 'pandas') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"


def _no_json_constants(name: str):
    raise AssertionError(f"{name} is not JSON")


def test_warm_start_json_writes_null_where_no_number_exists():
    assert behavior_cloning.rounded_or_none(float("nan"), 3) is None
    assert behavior_cloning.rounded_or_none(0.12345, 3) == 0.123


def test_a_warm_start_clones_the_bots_into_a_new_run_and_is_logged(tmp_path):
    sets = {
        "agent__action_head": "macro",
        "agent__type": "recurrent_ppo",
        "warm_start__seconds": 2.0,
        "warm_start__n_envs": 4,
        "warm_start__decisions": 150,
        "warm_start__bots": "[aggressive, zoner]",
    }
    run = T.start_run(tiny_config(**sets), tmp_path / "warm")
    cold = T.start_run(tiny_config(**{**sets, "warm_start__seconds": 0.0}), tmp_path / "cold")
    try:
        summary = json.loads((tmp_path / "warm" / "warm_start.json").read_text(), parse_constant=_no_json_constants)
        assert summary["recorded_decisions"] == 4 * 150 and summary["steps"] > 0
        assert set(summary["demonstrator_win_rates"]) == {"aggressive", "zoner"}
        assert not (tmp_path / "cold" / "warm_start.json").exists()
        warm_head = run.model.policy.action_net.weight
        assert not torch.equal(warm_head, cold.model.policy.action_net.weight), "the warm start moved the policy"
    finally:
        for r in (run, cold):
            r.close()
            r.lock.release()
    with pytest.raises(T.ConfigError, match="needs agent.action_head: macro"):
        tiny_config(warm_start__seconds=1.0, agent__action_head="keys")


def test_run_folders_are_absolute_whatever_directory_the_caller_moves_to(tmp_path, monkeypatch):
    """Ray Tune moves a trial's working directory: a relative --run-dir must not follow it (issue 17, item 1)."""
    monkeypatch.chdir(tmp_path)
    run = T.start_run(tiny_config(training__total_timesteps=128), Path("runs") / "one")
    try:
        assert run.run_dir == tmp_path / "runs" / "one" and run.run_dir.is_absolute()
    finally:
        run.close()
    T.run_training_loop(tiny_config(training__total_timesteps=128), Path("runs") / "two", progress=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(T.ConfigError, match=f"run folder not found: {elsewhere / 'runs' / 'two'}"):
        T.resume_training(Path("runs") / "two", ["training.total_timesteps=256"], progress=False)
    resumed = T.resume_training(tmp_path / "runs" / "two", ["training.total_timesteps=256"], progress=False)
    assert resumed.run_dir.is_absolute() and not (elsewhere / "runs").exists()
    assert (tmp_path / "runs" / "two" / "rl_model_256_steps.zip").exists()


def test_on_checkpoint_gets_each_scheduled_checkpoint_with_the_runs_standing(tmp_path):
    """The hook other tools report through (issue 17, item 1): steps 128..512, evaluated at 256 and 512."""
    seen: list[dict] = []

    def on_checkpoint(summary: dict) -> None:  # the files are there when the hook runs (rotation may follow)
        assert all(Path(f).is_file() for f in summary["files"]) and summary["checkpoint"] in summary["files"]
        seen.append(summary)

    run = T.run_training_loop(tiny_config(), tmp_path / "run", progress=False, on_checkpoint=on_checkpoint)
    assert [s["step"] for s in seen] == [128, 256, 384, 512]
    assert all(s["ep_rew_mean"] is None or isinstance(s["ep_rew_mean"], float) for s in seen)
    assert seen[0]["steps_per_s"] is None  # speed needs two updates
    assert all(s["steps_per_s"] > 0 for s in seen[1:])
    assert seen[0]["evaluated_at"] is None and seen[0]["worst_win_rate"] is None and seen[0]["elo"] is None
    final = seen[-1]
    latest = {k: v for k, v in run.eval_history[-1].items() if k != "step"}
    public = [latest[name] for name in public_bot_names() if name in latest]
    assert final["evaluated_at"] == 512 and final["worst_win_rate"] == min(public)
    assert final["mean_win_rate"] == pytest.approx(sum(public) / len(public))
    assert final["elo"] == run.ratings.rating("rl_model_512")
    resumed: list[dict] = []
    T.resume_training(tmp_path / "run", ["training.total_timesteps=640"], progress=False, on_checkpoint=resumed.append)
    assert [s["step"] for s in resumed] == [640]


def test_a_checkpoint_opponent_plays_in_the_mix_and_survives_a_resume(tmp_path, monkeypatch):
    """External opponents (issue 17, item 1): "checkpoint:<path>" entries, stored absolute in config.json."""
    T.run_training_loop(tiny_config(training__total_timesteps=128), tmp_path / "rival", progress=False)
    monkeypatch.chdir(tmp_path)  # a relative path, made absolute when the run starts
    mix = "{based: [0.5, based], rival: [0.5, 'checkpoint:rival/rl_model_128_steps.zip']}"
    sets = {"self_play__opponents": mix, "env__max_timesteps": 40, "eval__eval_freq": 100_000}
    straight = T.run_training_loop(tiny_config(**sets, training__total_timesteps=384), tmp_path / "straight")
    saved = json.loads((tmp_path / "straight" / "config.json").read_text())["self_play"]["opponents"]["rival"]
    assert saved == [0.5, f"checkpoint:{tmp_path / 'rival' / 'rl_model_128_steps.zip'}"]
    assert "rival" in {
        row.split(",")[5] for row in (tmp_path / "straight" / "monitor.csv").read_text().splitlines()[2:]
    }
    T.run_training_loop(tiny_config(**sets, training__total_timesteps=256), tmp_path / "halves")
    monkeypatch.chdir(tmp_path / "rival")  # resumed from elsewhere: the stored absolute path still finds it
    resumed = T.resume_training(tmp_path / "halves", ["training.total_timesteps=384"], progress=False)
    a, b = straight.model.policy.state_dict(), resumed.model.policy.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(T.ConfigError, match="self_play.opponents.gone: checkpoint not found"):
        tiny_config(self_play__opponents="{based: [1.0, based], gone: [0.5, 'checkpoint:nope/x.zip']}")
    with pytest.raises(T.ConfigError, match="checkpoint opponents live in the training process"):
        tiny_config(self_play__opponents=mix.replace("checkpoint:", f"checkpoint:{tmp_path}/"), env__workers=2)
