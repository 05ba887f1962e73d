"""user/export.py + user/submission_agent.py: the inference-only bundle plays exactly like its checkpoint."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from environment.agents import Agent, make_agent
from environment.macros import MACRO_KEYS
from environment.match import run_match
from environment.observation import observation_bounds
from tests.test_train_agent import tiny_config
from user import agent_io
from user import train_agent as T
from user.export import BUNDLE_FILES, ExportError, export_bundle

AGENT_TYPES = ["transformer_strategy", "recurrent_ppo", "ppo"]
# Every agent type with the seed's ten-key head, and each with the macro head ("<type>+macro").
EXPORTED_VARIANTS = AGENT_TYPES + [f"{kind}+macro" for kind in AGENT_TYPES]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny networks run fastest on one thread, and far faster than on several when the CPU is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", params=EXPORTED_VARIANTS)
def exported(request, tmp_path_factory, one_torch_thread):
    """(agent type, checkpoint zip, bundle folder, export info) for a briefly trained tiny model."""
    agent_type, _, head = request.param.partition("+")
    tmp_path = tmp_path_factory.mktemp(request.param.replace("+", "_"))
    config = tiny_config(agent__type=agent_type, agent__action_head=head or "keys")
    run = T.TrainingRun(config, tmp_path / "run", torch.device("cpu"))
    run.model.learn(128)  # move the weights away from their initial values; creates the Adam state
    zip_path = tmp_path / "rl_model_128_steps.zip"
    agent_io.save_checkpoint_pair(run.model, zip_path, config["agent"])
    info = export_bundle(zip_path, tmp_path / "bundle", load_agent=T.load_agent)
    return agent_type, zip_path, tmp_path / "bundle", info


def load_bundle_module(bundle: Path):
    """The bundle's own my_agent.py (not user/submission_agent.py), imported under a unique name."""
    name = f"my_agent_{abs(hash(str(bundle)))}"
    spec = importlib.util.spec_from_file_location(name, bundle / "my_agent.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class Recording(Agent):
    """Passes everything to ``inner`` and records each frame's observations and actions."""

    def __init__(self, inner: Agent):
        super().__init__()
        self.inner = inner
        self.observations: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []

    def reset(self) -> None:
        self.inner.reset()

    def predict_batch(self, obs, episode_start, env_ids=None):
        actions = self.inner.predict_batch(obs, episode_start, env_ids)
        self.observations.append(np.array(obs, copy=True))
        self.actions.append(np.array(actions, copy=True))
        return actions


# --- the bundle acts exactly like the checkpoint ----------------------------------------------
def test_bundle_plays_a_match_exactly_like_the_checkpoint(exported):
    _, zip_path, bundle, _ = exported
    full = Recording(T.load_agent(zip_path))
    submitted = Recording(load_bundle_module(bundle).SubmittedAgent())
    stats = [run_match(agent, make_agent("based"), max_timesteps=300, seed=3) for agent in (full, submitted)]
    assert len(full.actions) == len(submitted.actions) == 300
    for frame, (a, b) in enumerate(zip(full.actions, submitted.actions, strict=True)):
        assert a.dtype == b.dtype == np.int8 and a.shape == b.shape == (1, 10)
        np.testing.assert_array_equal(a, b, err_msg=f"actions differ at frame {frame}")
    np.testing.assert_array_equal(np.stack(full.observations), np.stack(submitted.observations))
    assert stats[0].to_dict() == stats[1].to_dict()


def test_an_action_repeat_bundle_holds_its_keys_like_the_checkpoint(tmp_path):
    config = tiny_config(agent__action_repeat=4)
    run = T.TrainingRun(config, tmp_path / "run", torch.device("cpu"))
    run.model.learn(128)
    zip_path = tmp_path / "rl_model_128_steps.zip"
    agent_io.save_checkpoint_pair(run.model, zip_path, config["agent"])
    export_bundle(zip_path, tmp_path / "bundle", load_agent=T.load_agent)
    full = Recording(T.load_agent(zip_path))
    submitted = Recording(load_bundle_module(tmp_path / "bundle").SubmittedAgent())
    for agent in (full, submitted):
        run_match(agent, make_agent("based"), max_timesteps=200, seed=5)
    np.testing.assert_array_equal(np.concatenate(full.actions), np.concatenate(submitted.actions))
    actions = np.concatenate(submitted.actions)
    assert all((actions[i : i + 4] == actions[i]).all() for i in range(0, 200, 4)), "keys change only every 4th frame"


def test_bundle_predict_batch_keeps_per_env_memory_like_the_checkpoint(exported):
    agent_type, zip_path, bundle, _ = exported
    full = T.load_agent(zip_path)
    submitted = load_bundle_module(bundle).SubmittedAgent(bundle)
    rng = np.random.default_rng(0)
    low, high = observation_bounds()
    all_ids = np.array([0, 3, 5, 7, 9, 11, 40])
    for frame in range(25):
        # a changing subset of matches, in a changing order, each starting over now and then
        ids = rng.permutation(all_ids)[: rng.integers(1, len(all_ids) + 1)]
        obs = rng.uniform(low, high, size=(len(ids), 64)).astype(np.float32)
        start = (rng.random(len(ids)) < 0.15) | (frame == 0)
        np.testing.assert_array_equal(
            full.predict_batch(obs, start, ids), submitted.predict_batch(obs, start, ids), err_msg=f"frame {frame}"
        )
    memories = {"transformer_strategy": ("h", "c", "history"), "recurrent_ppo": ("h", "c"), "ppo": ()}[agent_type]
    for memory in memories:
        # The trainer's streaming encoder encodes each new frame once (cached), the bundle whole windows:
        # the same function, summed in another order, so the LSTM memory agrees to float tolerance.
        np.testing.assert_allclose(full.get_state()[memory], submitted.get_state()[memory], atol=1e-5, err_msg=memory)
    # predict() plays one match; reset() starts the next
    full.reset()
    submitted.reset()
    for _ in range(2):
        for row in rng.uniform(low, high, size=(12, 64)).astype(np.float32):
            np.testing.assert_array_equal(full.predict(row), submitted.predict(row))
        full.reset()
        submitted.reset()
    assert submitted.predict_batch(np.zeros((0, 64), np.float32), np.zeros(0, bool)).shape == (0, 10)
    with pytest.raises(ValueError, match="shape"):
        submitted.predict_batch(np.zeros((2, 63)), np.zeros(2, bool))


def test_bundle_logits_equal_the_sb3_distribution_bit_for_bit(exported):
    """Stronger than equal actions: the Bernoulli (or macro) logits themselves, with LSTM states and episode starts."""
    agent_type, zip_path, bundle, _ = exported
    module = load_bundle_module(bundle)
    actor = module.SubmittedAgent(bundle).actor
    policy = T.build_policy(agent_io.read_agent_config(zip_path, T._SHARED_AGENT_CONFIG))
    agent_io.load_policy_weights(policy, zip_path)
    policy.set_training_mode(False)
    rng = np.random.default_rng(1)
    space = T.policy_observation_space(agent_io.read_agent_config(zip_path, T._SHARED_AGENT_CONFIG))
    obs = torch.as_tensor(rng.uniform(space.low, space.high, size=(9, space.shape[0])).astype(np.float32))
    macro = agent_io.read_agent_config(zip_path, T._SHARED_AGENT_CONFIG)["action_head"] == "macro"

    def keys_of(mode: torch.Tensor) -> torch.Tensor:  # the macro head's mode is a move id
        return torch.tensor(MACRO_KEYS.astype(np.float32))[mode.long()] if macro else mode

    def as_sb3_logits(raw: torch.Tensor) -> torch.Tensor:  # torch's Categorical keeps normalised logits
        return raw - raw.logsumexp(dim=-1, keepdim=True) if macro else raw

    with torch.no_grad():
        if agent_type == "ppo":
            dist = policy.get_distribution(obs)
            got, _ = actor.action_logits(obs)
            assert torch.equal(dist.distribution.logits, as_sb3_logits(got))
            assert torch.equal(keys_of(dist.mode()), actor(obs)[0])
            return
        size = (1, 9, policy.lstm_actor.hidden_size)
        states = (
            torch.as_tensor(rng.normal(size=size).astype(np.float32)),
            torch.as_tensor(rng.normal(size=size).astype(np.float32)),
        )
        for starts in (torch.zeros(9), torch.tensor([1.0, 0, 0, 1, 0, 0, 0, 1, 0])):
            dist, (h1, c1) = policy.get_distribution(obs, states, starts)
            got, (h2, c2) = actor.action_logits(obs, states, starts)
            assert torch.equal(dist.distribution.logits, as_sb3_logits(got))
            assert torch.equal(h1, h2) and torch.equal(c1, c2)
            assert torch.equal(keys_of(dist.mode()), actor(obs, states, starts)[0])


# --- the bundle stands alone ---------------------------------------------------------------------
LOAD_ALONE = """
import importlib.abc, json, sys
import numpy as np

class Absent(importlib.abc.MetaPathFinder):
    # The project is installed in this venv: hide it (and the training stack) as a submission machine would.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("stable_baselines3", "sb3_contrib", "gymnasium", "environment", "user"):
            raise ModuleNotFoundError(name)

sys.meta_path.insert(0, Absent())
sys.path.insert(0, ".")  # -I left the bundle folder off sys.path
from my_agent import SubmittedAgent
agent = SubmittedAgent()
actions = [agent.predict(row).tolist() for row in np.load(sys.argv[1])]
agent.reset()
batch = agent.predict_batch(np.load(sys.argv[1])[:4], np.ones(4, bool), np.array([2, 0, 7, 1]))
banned = [m for m in sys.modules if m.split(".")[0] in ("stable_baselines3", "sb3_contrib", "gymnasium",
                                                        "environment", "user")]
print(json.dumps({"actions": actions, "batch": batch.tolist(), "banned": banned,
                  "base": type(agent).__mro__[1].__module__}))
"""


def test_bundle_loads_in_a_clean_python_with_only_numpy_and_torch(exported, tmp_path):
    _, zip_path, bundle, _ = exported
    assert sorted(p.name for p in bundle.iterdir()) == sorted(BUNDLE_FILES)
    rng = np.random.default_rng(2)
    low, high = observation_bounds()
    obs = rng.uniform(low, high, size=(15, 64)).astype(np.float32)
    np.save(tmp_path / "obs.npy", obs)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # -I: ignore PYTHON* variables and user site-packages, and do not put the current folder on sys.path
    # by itself; -B: write no __pycache__ into the bundle
    result = subprocess.run(
        [sys.executable, "-I", "-B", "-c", LOAD_ALONE, str(tmp_path / "obs.npy")],
        cwd=bundle,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["banned"] == [], f"the bundle imported training or game packages: {out['banned']}"
    assert out["base"] == "my_agent", "without the game package, the local Agent base class is used"
    full = T.load_agent(zip_path)
    np.testing.assert_array_equal(np.array(out["actions"]), np.stack([full.predict(row) for row in obs]))
    full.reset()
    np.testing.assert_array_equal(np.array(out["batch"]), full.predict_batch(obs[:4], np.ones(4, bool), [2, 0, 7, 1]))


def test_bundle_keeps_only_the_actor_and_is_much_smaller(exported):
    agent_type, zip_path, bundle, info = exported
    state = torch.load(bundle / "policy_weights.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    prefixes = {k.split(".")[0] for k in state}
    expected = {
        "transformer_strategy": {"extractor", "lstm", "policy_net", "action_net"},
        "recurrent_ppo": {"lstm", "policy_net", "action_net"},
        "ppo": {"policy_net", "action_net"},
    }
    assert prefixes == expected[agent_type]
    assert not [k for k in state if any(w in k for w in ("value", "critic", "vf_", "optimizer", "exp_avg"))]
    assert all(v.dtype == torch.float32 for v in state.values())
    config = json.loads((bundle / "agent_config.json").read_text())
    assert config["policy"]["type"] == agent_type and len(config["observation_scale"]) == 64
    np.testing.assert_array_equal(np.array(config["observation_scale"], np.float32), T.observation_scale())
    # the checkpoint counts the zip and the encoder .pth beside it
    beside = agent_io.encoder_path_for(zip_path)
    assert info["checkpoint_bytes"] == zip_path.stat().st_size + (beside.stat().st_size if beside.exists() else 0)
    assert info["bundle_bytes"] == sum(info["files"].values()) == sum((bundle / n).stat().st_size for n in BUNDLE_FILES)
    # At these tiny sizes my_agent.py (~20 kB of source) dominates; the weights alone are well under half.
    assert info["files"]["policy_weights.pt"] < 0.5 * info["checkpoint_bytes"]
    if agent_type == "transformer_strategy":
        assert info["bundle_bytes"] < 0.5 * info["checkpoint_bytes"]


def test_bundle_is_under_half_the_checkpoint_at_cpu_config_sizes(tmp_path):
    sizes = {
        k: T.TRAIN_CONFIG_CPU["agent"][k]
        for k in ("latent_dim", "num_heads", "num_layers", "sequence_length", "lstm_hidden_size")
    }
    config = tiny_config(**{f"agent__{k}": v for k, v in sizes.items()}, agent__net_arch="{pi: [64, 64], vf: [64, 64]}")
    run = T.TrainingRun(config, tmp_path / "run", torch.device("cpu"))
    run.model.learn(32)  # one update: the checkpoint then holds the Adam state it always has in training
    zip_path = tmp_path / "rl_model_32_steps.zip"
    agent_io.save_checkpoint_pair(run.model, zip_path, config["agent"])
    info = export_bundle(zip_path, tmp_path / "bundle", load_agent=T.load_agent)
    assert info["bundle_bytes"] < 0.5 * info["checkpoint_bytes"], info


# --- refusing what is not ours ---------------------------------------------------------------------
def test_export_refuses_a_folder_that_is_not_a_bundle_and_overwrites_a_previous_bundle(exported, tmp_path):
    _, zip_path, bundle, _ = exported
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("keep me")
    with pytest.raises(ExportError, match="not empty and does not hold a previous bundle"):
        export_bundle(zip_path, foreign, load_agent=T.load_agent)
    assert sorted(p.name for p in foreign.iterdir()) == ["thesis.txt"]
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ExportError, match="not a folder"):
        export_bundle(zip_path, tmp_path / "a_file", load_agent=T.load_agent)
    again = tmp_path / "again"
    first = export_bundle(zip_path, again, load_agent=T.load_agent)
    second = export_bundle(zip_path, again, load_agent=T.load_agent)  # a previous bundle is replaced
    assert first["files"] == second["files"]
    assert (again / "policy_weights.pt").read_bytes() == (bundle / "policy_weights.pt").read_bytes()
    assert not [p for p in again.iterdir() if p.name.startswith(".")], "no temporary files left behind"


class Poison:
    """Unpickling this creates the folder ``marker`` (os.mkdir): code a weights-only load must never run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def copy_bundle(bundle: Path, dest: Path) -> Path:
    dest.mkdir()
    for name in BUNDLE_FILES:
        (dest / name).write_bytes((bundle / name).read_bytes())
    return dest


def test_poisoned_weights_are_refused_without_running_them(exported, tmp_path):
    _, _, bundle, _ = exported
    poisoned = copy_bundle(bundle, tmp_path / "bundle")
    marker = tmp_path / "marker"
    torch.save({"action_net.weight": Poison(marker)}, poisoned / "policy_weights.pt")
    config = json.loads((poisoned / "agent_config.json").read_text())
    config["weights_sha256"] = hashlib.sha256((poisoned / "policy_weights.pt").read_bytes()).hexdigest()
    (poisoned / "agent_config.json").write_text(json.dumps(config))
    module = load_bundle_module(poisoned)
    with pytest.raises(module.BundleError, match="not a weights-only tensor file"):
        module.SubmittedAgent(poisoned)
    assert not marker.exists(), "the poisoned pickle ran"
    torch.load(poisoned / "policy_weights.pt", weights_only=False)  # the poison is real: an unsafe load runs it
    assert marker.exists()


def test_a_torn_bundle_is_detected(exported, tmp_path):
    _, _, bundle, _ = exported
    torn = copy_bundle(bundle, tmp_path / "bundle")
    state = torch.load(torn / "policy_weights.pt", weights_only=True)
    state["action_net.bias"] = state["action_net.bias"] + 1.0
    torch.save(state, torn / "policy_weights.pt")
    module = load_bundle_module(torn)
    with pytest.raises(module.BundleError, match=r"does not match agent_config\.json"):
        module.SubmittedAgent(torn)
    (torn / "agent_config.json").write_text("{}")
    with pytest.raises(module.BundleError, match="not a warehouse-brawl-submission bundle"):
        module.SubmittedAgent(torn)
