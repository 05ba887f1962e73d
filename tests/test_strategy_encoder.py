"""The streaming strategy encoder (user/strategy_encoder.py, issue 15): its three ways of computing
the latent (one window at a time, rows streamed together, the rollout cache) give the same numbers,
and it sees exactly the observation's window."""

from __future__ import annotations

import copy
import json
import zipfile

import numpy as np
import pytest
import torch
from sb3_contrib.common.recurrent.type_aliases import RNNStates

from tests.test_train_agent import tiny_config
from user import agent_io
from user import submission_agent as S
from user import train_agent as T
from user.env_wrappers import history_observation_space, observation_scale
from user.optim import LossScale
from user.strategy_encoder import StreamingConditionedExtractor, continuation_rows, pooled_tokens

SEQUENCE, LAYERS, WINDOW = 20, 3, 4  # reach 9 frames, 11 pooled tokens


def extractor(seed: int = 0) -> StreamingConditionedExtractor:
    torch.manual_seed(seed)
    return StreamingConditionedExtractor(history_observation_space(SEQUENCE), 32, 4, LAYERS, SEQUENCE, WINDOW).eval()


def streams(n_streams: int, steps: int, seed: int = 1) -> torch.Tensor:
    """(n_streams, steps, 64 + SEQUENCE x 32) observations whose windows move on by one frame a step."""
    g = torch.Generator().manual_seed(seed)
    frames = torch.randn(n_streams, steps + SEQUENCE - 1, 32, generator=g)
    obs = torch.randn(n_streams, steps, 64, generator=g)
    windows = torch.stack([frames[:, t : t + SEQUENCE] for t in range(steps)], dim=1)
    return torch.cat([obs, windows.flatten(2)], dim=-1)


def one_window_at_a_time(ex: StreamingConditionedExtractor, rows: torch.Tensor) -> torch.Tensor:
    with torch.enable_grad():  # the grad path, no cache; single rows are never continuations
        return torch.cat([ex(row.unsqueeze(0)) for row in rows]).detach()


def test_streamed_cached_and_whole_window_latents_agree():
    ex, obs = extractor(), streams(3, 30)
    flat = obs.reshape(90, -1)  # env-major, as sb3-contrib's minibatches keep each sequence in order
    reference = one_window_at_a_time(ex, flat)
    assert continuation_rows(flat[:, 64:].reshape(90, SEQUENCE, 32)).sum() == 87, "3 streams of 30 rows"
    with torch.enable_grad():
        streamed = ex(flat).detach()
    with torch.no_grad():
        cached = torch.stack([ex(obs[:, t]) for t in range(30)], dim=1).reshape(90, -1)
    torch.testing.assert_close(streamed, reference, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cached, reference, atol=1e-5, rtol=1e-5)
    # the export bundle's standalone network, one whole window per row, from the same weights
    spec = {"latent_dim": 32, "num_heads": 4, "num_layers": LAYERS, "sequence_length": SEQUENCE}
    bundle = S.StreamingExtractor(torch.as_tensor(observation_scale()), {**spec, "attention_window": WINDOW})
    bundle.load_state_dict(ex.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(bundle(flat), reference, atol=1e-5, rtol=1e-5)


def test_rows_out_of_order_and_new_matches_are_encoded_whole():
    ex, obs = extractor(), streams(4, 12)
    shuffled = obs.reshape(48, -1)[torch.randperm(48, generator=torch.Generator().manual_seed(0))]
    reference = one_window_at_a_time(ex, shuffled)
    with torch.enable_grad():
        torch.testing.assert_close(ex(shuffled).detach(), reference, atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # the cache meets rows of other streams under its ids: recomputed, not reused
        ex(obs[:, 0])
        torch.testing.assert_close(ex(shuffled[:4]), reference[:4], atol=1e-5, rtol=1e-5)


def test_a_cache_filled_under_other_weights_is_never_reused():
    ex, obs = extractor(), streams(2, 6)
    with torch.no_grad():
        for t in range(5):
            ex(obs[:, t])
        for p in ex.parameters():  # an optimizer step changes the weights in place
            p.add_(0.05)
        after = ex(obs[:, 5])
    torch.testing.assert_close(after, one_window_at_a_time(ex, obs[:, 5]), atol=1e-5, rtol=1e-5)


def test_stream_ids_keep_each_matchs_cache_whatever_rows_a_call_holds():
    ex, obs = extractor(), streams(3, 8)
    reference = one_window_at_a_time(ex, obs.reshape(24, -1)).reshape(3, 8, -1)
    with torch.no_grad():
        ex(obs[:, 0])
        for t in range(1, 8):  # matches 2 and 0 only, in that order: rows 0 and 1 are streams 2 and 0
            ex.stream_ids = torch.tensor([2, 0])
            out = ex(obs[[2, 0], t])
            torch.testing.assert_close(out, reference[[2, 0], t], atol=1e-5, rtol=1e-5)
            assert ex._cache.filled[[0, 2]].all()


def test_the_latent_sees_exactly_the_windows_frames():
    ex = extractor()
    obs = streams(1, 1)
    base = one_window_at_a_time(ex, obs[0])
    oldest = obs.clone()
    oldest[0, 0, 64 : 64 + 32] += 1.0  # the window's oldest frame reaches the oldest pooled token
    assert not torch.allclose(one_window_at_a_time(ex, oldest[0]), base)
    assert pooled_tokens(SEQUENCE, LAYERS, WINDOW) == SEQUENCE - LAYERS * (WINDOW - 1) == 11


def test_gradients_reach_every_encoder_weight_through_the_streamed_path():
    ex = extractor().train()
    ex(streams(2, 5).reshape(10, -1)).square().sum().backward()
    shift = "encoder.pool_score.bias"  # a softmax ignores a shift shared by all its scores: ~0 by rounding
    missing = [n for n, p in ex.named_parameters() if n != shift and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert missing == []
    assert float(dict(ex.named_parameters())[shift].grad.abs().max()) < 1e-6


def test_sizes_that_leave_no_token_to_pool_are_a_config_error():
    with pytest.raises(T.ConfigError, match="agent.sequence_length 8 is too short for num_layers 2"):
        tiny_config(agent__num_layers=2, agent__attention_window=8)
    with pytest.raises(T.ConfigError, match="agent.encoder must be one of"):
        tiny_config(agent__encoder="sliding")


def test_checkpoints_of_the_full_window_encoder_still_load(tmp_path):
    config = tiny_config(agent__encoder="full_window")
    run = T.TrainingRun(config, tmp_path / "run", torch.device("cpu"))
    zip_path = tmp_path / "rl_model_0_steps.zip"
    agent_io.save_checkpoint_pair(run.model, zip_path, config["agent"])
    # as written before agent.encoder existed: the config member without the key
    old_agent = {k: v for k, v in config["agent"].items() if k not in ("encoder", "attention_window")}
    rewritten = tmp_path / "old.zip"
    with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(rewritten, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            dst.writestr(item, json.dumps(old_agent) if item.filename == agent_io.CONFIG_MEMBER else data)
    rewritten.replace(zip_path)
    agent = T.load_agent(zip_path, verify=False)
    assert type(agent.policy.features_extractor).__name__ == "TransformerConditionedExtractor"
    assert agent.agent_config["encoder"] == "full_window"
    streaming = copy.deepcopy(config)
    streaming["agent"]["encoder"] = "streaming"
    assert type(T.build_policy(streaming["agent"]).features_extractor) is StreamingConditionedExtractor


# --- fp16's dynamic loss scale (user/optim.py), which a T4 run needs --------------------------------
def _policy_with_scale(scale: float | None):
    policy = T.build_policy(tiny_config()["agent"])
    if scale is not None:
        policy.loss_scale = policy.optimizer.loss_scale = LossScale(scale, growth_interval=2)
    return policy


def _update(policy, seed: int = 3) -> None:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(6, policy.observation_space.shape[0], generator=g)
    h = torch.zeros(1, 1, policy.lstm_actor.hidden_size)
    space = policy.action_space  # the macro head's Discrete(24) or the key head's MultiBinary(10)
    high, shape = (space.n, (6,)) if hasattr(space, "n") else (2, (6, *space.shape))
    actions = torch.randint(0, high, shape, generator=g).float()
    values, log_prob, entropy = policy.evaluate_actions(obs, actions, RNNStates((h, h), (h, h)), torch.zeros(6))
    policy.optimizer.zero_grad()
    (values.square().mean() - log_prob.mean() - 0.01 * entropy.mean()).backward()
    policy.optimizer.step()


def test_a_loss_scaled_update_equals_the_unscaled_one():
    plain, scaled = _policy_with_scale(None), _policy_with_scale(2.0**12)
    scaled.load_state_dict(plain.state_dict())
    _update(plain)
    _update(scaled)
    for (name, a), b in zip(plain.state_dict().items(), scaled.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=name)


def test_an_overflowing_step_is_skipped_and_the_scale_backs_off_then_grows():
    policy = _policy_with_scale(2.0**12)
    before = copy.deepcopy(policy.state_dict())
    h = torch.zeros(1, 1, policy.lstm_actor.hidden_size)
    obs = torch.randn(2, policy.observation_space.shape[0])
    values, _, _ = policy.evaluate_actions(
        obs, torch.zeros(2, *policy.action_space.shape), RNNStates((h, h), (h, h)), torch.zeros(2)
    )
    policy.optimizer.zero_grad()
    (values.sum() * float("inf")).backward()
    policy.optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(before.values(), policy.state_dict().values(), strict=True))
    assert (policy.loss_scale.scale, policy.loss_scale.skipped) == (2.0**11, 1)
    _update(policy)
    _update(policy)
    assert policy.loss_scale.scale == 2.0**12, "doubles after growth_interval (2) good steps"
    state = policy.optimizer.state_dict()
    assert state["loss_scale"] == {"scale": 2.0**12, "good_steps": 0, "skipped": 1}
    fresh = _policy_with_scale(1.0)
    fresh.optimizer.load_state_dict(state)
    assert fresh.loss_scale.scale == 2.0**12, "a resumed run continues with the saved scale"


def test_fp16_precision_turns_the_loss_scale_on():
    policy = T.build_policy(tiny_config()["agent"])
    T.apply_precision_and_compile(policy, {"precision": "fp16", "compile": False})
    assert isinstance(policy.loss_scale, LossScale) and policy.optimizer.loss_scale is policy.loss_scale
    bf16 = T.build_policy(tiny_config()["agent"])
    T.apply_precision_and_compile(bf16, {"precision": "bf16", "compile": False})
    assert bf16.loss_scale is None, "bf16 has fp32's exponent range: no scaling"


def test_a_playing_agent_resumed_from_its_state_continues_bit_for_bit():
    """A capture is where a resumed run starts: the cache must not make the uninterrupted run's next
    step differ from the resumed one's (which starts with an empty cache) by a rounding."""
    config = tiny_config(agent__latent_dim=32, agent__num_heads=4)["agent"]
    policy = T.build_policy(config)
    g = torch.Generator().manual_seed(5)
    frames = (torch.rand(21, 5, 64, generator=g) * 2 - 1).numpy().astype("float32")
    agent = agent_io.TransformerStrategyAgent(policy, config)
    for obs in frames[:20]:
        agent.predict_batch(obs, np.zeros(5, bool), np.arange(5))
    state = agent.get_state()
    agent.predict_batch(frames[20], np.zeros(5, bool), np.arange(5))
    twin = T.build_policy(config)
    twin.load_state_dict(policy.state_dict())
    resumed = agent_io.TransformerStrategyAgent(twin, config)
    resumed.set_state(state)
    resumed.predict_batch(frames[20], np.zeros(5, bool), np.arange(5))
    assert np.array_equal(resumed.get_state()["h"], agent.get_state()["h"]), "the LSTM memory, bit for bit"
