"""A trained Warehouse Brawl policy as a standalone, inference-only tournament agent.

This file is copied into every export bundle as ``my_agent.py`` (see ``user/export.py``);
the bundle folder holds it, ``agent_config.json`` and ``policy_weights.pt``::

    from my_agent import SubmittedAgent
    agent = SubmittedAgent()              # loads the bundle in this file's folder
    action = agent.predict(obs)           # obs: 64 values → 10 keys (0/1)

It needs only numpy and torch: no stable-baselines3, sb3-contrib or gymnasium. The
networks below rebuild the ACTOR path of the trainer's policies (``user/train_agent.py``)
operation for operation, so the actions equal the full checkpoint's deterministic actions:

- ``transformer_strategy``: StreamingConditionedExtractor (``encoder: streaming``; observation
  embedding that cross-attends to a local-attention transformer encoding of the opponent's recent
  frames; here each call encodes whole windows) or the seed's TransformerConditionedExtractor
  (``encoder: full_window``) → LSTM → MLP → logits
- ``recurrent_ppo``: scaled observation → LSTM → MLP → logits
- ``ppo``: scaled observation → MLP → logits

and the action is ``round(sigmoid(logits))``, as SB3's BernoulliDistribution.mode() takes it.

Weights are read with ``torch.load(..., weights_only=True)`` only: a weights file that
would run code when unpickled is refused.

Repeated on purpose (``duplicates`` lists these pairs): the networks mirror train_agent.py's,
the per-match memory and ``predict_batch`` mirror ``user/agent_io.TransformerStrategyAgent``, and
the Agent base class below mirrors ``environment/agents.Agent``, because a bundle must load with
numpy and torch alone. tests/test_export.py checks that the bundle acts exactly as the checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

try:  # the tournament's Agent base class, when the game package is importable
    from environment.agents import Agent as _AgentBase
except ImportError:  # copied alone into a submission folder

    class _AgentBase:  # type: ignore[no-redef]
        """The tournament Agent API, without its gymnasium spaces."""

        name = "agent"

        def __init__(self, file_path: str | None = None):
            self.file_path = file_path
            self.observation_space = None
            self.action_space = None
            self.initialized = False
            if file_path is not None:
                self._initialize()

        def _initialize(self) -> None:
            self.initialized = True

        def get_env_info(self, env) -> None:
            obs_space = getattr(env, "observation_space", None)
            self.observation_space = obs_space("player_0") if callable(obs_space) else obs_space
            act_space = getattr(env, "action_space", None)
            self.action_space = act_space("player_0") if callable(act_space) else act_space
            if not self.initialized:
                self._initialize()

        def reset(self) -> None:
            pass

        def save(self, file_path: str) -> None:
            raise TypeError(f"{type(self).__name__} has no weights to save")

        def learn(self, env, total_timesteps: int, log_interval: int = 1, verbose: int = 0):
            raise TypeError(f"{type(self).__name__} does not learn")


BUNDLE_FORMAT = "warehouse-brawl-submission"
BUNDLE_VERSION = 2
CONFIG_FILE = "agent_config.json"
WEIGHTS_FILE = "policy_weights.pt"
OBS_SIZE = 64  # observation values per player
OBS_HALF = 32  # the opponent's values are obs[32:64]
N_KEYS = 10  # action keys
AGENT_TYPES = ("transformer_strategy", "recurrent_ppo", "ppo")
ACTIVATIONS = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}


LSTMStates = tuple[torch.Tensor, torch.Tensor]  # (hidden, cell), each (layers, N, hidden size)


class BundleError(ValueError):
    """The bundle folder is missing a file, is incomplete, or holds something other than weights."""


# --- networks (the actor path of user/train_agent.py's policies) ----------------------------
def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """Fixed sin/cos position codes (Vaswani et al. 2017), shape (length, dim)."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    codes = torch.zeros(length, dim)
    codes[:, 0::2] = torch.sin(position * freq)
    codes[:, 1::2] = torch.cos(position * freq[: dim // 2])
    return codes


class StrategyEncoder(nn.Module):
    """Opponent frames (B, L, 32) → strategy latent (B, d), tokens (B, L, d), pooling weights (B, L)."""

    def __init__(self, latent_dim: int, num_heads: int, num_layers: int, sequence_length: int):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(OBS_HALF, latent_dim), nn.LayerNorm(latent_dim), nn.ReLU())
        # Persistent here (unlike in training): the bundle carries the exact codes the policy used.
        self.register_buffer("positions", sinusoidal_positions(sequence_length, latent_dim))
        layer = nn.TransformerEncoderLayer(
            latent_dim, num_heads, dim_feedforward=2 * latent_dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.transformer = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.pool_score = nn.Linear(latent_dim, 1)
        self.head = nn.Sequential(nn.Linear(latent_dim, latent_dim), nn.ReLU(), nn.Linear(latent_dim, latent_dim))

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        tokens = self.transformer(self.embed(frames) + self.positions)
        weights = torch.softmax(self.pool_score(tokens).squeeze(-1), dim=-1)
        pooled = (weights.unsqueeze(-1) * tokens).sum(dim=1)
        return self.head(pooled), tokens, weights


N_RELATIVE = 5


def relative_features(scaled: torch.Tensor) -> torch.Tensor:
    """The opponent's position and velocity relative to the observer's, and their distance."""
    delta = scaled[:, OBS_HALF : OBS_HALF + 4] - scaled[:, 0:4]
    distance = torch.linalg.vector_norm(delta[:, 0:2], dim=-1, keepdim=True)
    return torch.cat([delta, distance], dim=-1)


class ConditionedExtractor(nn.Module):
    """[obs (64), opponent history (L × 32)] → features (d): the observation cross-attends to the strategy."""

    def __init__(self, scale: torch.Tensor, latent_dim: int, num_heads: int, num_layers: int, sequence_length: int):
        super().__init__()
        self.sequence_length = sequence_length
        self.register_buffer("scale", scale, persistent=False)
        self.register_buffer("frame_scale", scale[OBS_HALF:], persistent=False)
        self.obs_embed = nn.Sequential(
            nn.Linear(OBS_SIZE + N_RELATIVE, latent_dim), nn.LayerNorm(latent_dim), nn.ReLU()
        )
        self.encoder = StrategyEncoder(latent_dim, num_heads, num_layers, sequence_length)
        self.cross_attention = nn.MultiheadAttention(latent_dim, num_heads, batch_first=True)
        self.fuse = nn.Sequential(nn.Linear(3 * latent_dim, latent_dim), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        batch = observations.shape[0]
        scaled = observations[:, :OBS_SIZE] / self.scale
        current = self.obs_embed(torch.cat([scaled, relative_features(scaled)], dim=-1))
        frames = observations[:, OBS_SIZE:].reshape(batch, self.sequence_length, OBS_HALF) / self.frame_scale
        latent, tokens, _ = self.encoder(frames)
        memory = torch.cat([latent.unsqueeze(1), tokens], dim=1)
        context, _ = self.cross_attention(current.unsqueeze(1), memory, memory, need_weights=False)
        return self.fuse(torch.cat([current, context.squeeze(1), latent], dim=-1))


class LocalAttentionBlock(nn.Module):
    """A pre-norm block whose attention looks back ``window`` frames, itself included (repeats
    user/strategy_encoder.py's on purpose, like the rest of this file: a bundle loads without it)."""

    def __init__(self, dim: int, num_heads: int, window: int):
        super().__init__()
        self.num_heads, self.window = num_heads, window
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.age_bias = nn.Parameter(torch.zeros(num_heads, window))
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (n, d), frames in order → (n, d); the first ``window - 1`` see zeros before the stream."""
        q, k, v = (_heads(t, self.num_heads) for t in self.qkv(self.norm1(x)).chunk(3, dim=-1))
        pad = (0, 0, 0, 0, self.window - 1, 0)
        keys = torch.nn.functional.pad(k, pad).unfold(0, self.window, 1).permute(0, 3, 1, 2)
        values = torch.nn.functional.pad(v, pad).unfold(0, self.window, 1).permute(0, 3, 1, 2)
        scores = torch.einsum("...he,...whe->...hw", q, keys) / math.sqrt(q.shape[-1]) + self.age_bias
        mixed = torch.einsum("...hw,...whe->...he", torch.softmax(scores, dim=-1), values)
        x = x + self.out(mixed.flatten(-2))
        return x + self.ff(self.norm2(x))


def _heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    return x.unflatten(-1, (num_heads, x.shape[-1] // num_heads))


class StreamingEncoder(nn.Module):
    """Opponent frames, streams concatenated (n, 32) → final tokens (n, d)."""

    def __init__(self, latent_dim: int, num_heads: int, num_layers: int, sequence_length: int, window: int):
        super().__init__()
        self.pooled = sequence_length - num_layers * (window - 1)
        self.embed = nn.Sequential(nn.Linear(OBS_HALF, latent_dim), nn.LayerNorm(latent_dim), nn.ReLU())
        self.blocks = nn.ModuleList(LocalAttentionBlock(latent_dim, num_heads, window) for _ in range(num_layers))
        self.norm = nn.LayerNorm(latent_dim)
        self.pool_score = nn.Linear(latent_dim, 1)
        self.pool_age_bias = nn.Parameter(torch.zeros(self.pooled))
        self.head = nn.Sequential(nn.Linear(latent_dim, latent_dim), nn.ReLU(), nn.Linear(latent_dim, latent_dim))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = self.embed(frames)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


class StreamingExtractor(nn.Module):
    """``agent.encoder: streaming`` (user/strategy_encoder.py), without the trainer's rollout cache:
    rows whose window continues the row before are encoded as one stream, the others whole."""

    def __init__(self, scale: torch.Tensor, spec: dict):
        super().__init__()
        d, heads = spec["latent_dim"], spec["num_heads"]
        self.sequence_length, self.num_heads = spec["sequence_length"], heads
        self.register_buffer("scale", scale, persistent=False)
        self.register_buffer("frame_scale", scale[OBS_HALF:], persistent=False)
        self.obs_embed = nn.Sequential(nn.Linear(OBS_SIZE + N_RELATIVE, d), nn.LayerNorm(d), nn.ReLU())
        self.encoder = StreamingEncoder(d, heads, spec["num_layers"], spec["sequence_length"], spec["attention_window"])
        self.memory_kv = nn.Linear(d, 2 * d)
        self.query = nn.Linear(d, d)
        self.memory_age_bias = nn.Parameter(torch.zeros(heads, self.encoder.pooled + 1))
        self.attended = nn.Linear(d, d)
        self.fuse = nn.Sequential(nn.Linear(3 * d, d), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        enc = self.encoder
        scaled = observations[:, :OBS_SIZE] / self.scale
        current = self.obs_embed(torch.cat([scaled, relative_features(scaled)], dim=-1))
        windows = observations[:, OBS_SIZE:].reshape(len(observations), self.sequence_length, OBS_HALF)
        follows = torch.zeros(windows.shape[0], dtype=torch.bool)
        if windows.shape[0] > 1 and windows.shape[1] > 1:
            follows[1:] = (windows[1:, :-1] == windows[:-1, 1:]).flatten(1).all(dim=1)
        take = torch.ones(windows.shape[:2], dtype=torch.bool)
        take[follows, :-1] = False
        tokens = enc(windows[take] / self.frame_scale)
        ends = torch.cumsum(take.sum(dim=1), dim=0) - 1
        newest = ends.unsqueeze(1) - torch.arange(enc.pooled - 1, -1, -1)
        weights = torch.softmax(enc.pool_score(tokens).squeeze(-1)[newest] + enc.pool_age_bias, dim=-1)
        latent = enc.head((weights.unsqueeze(-1) * tokens[newest]).sum(dim=1))
        # The observation attends to the latent and the pooled tokens: the latent's score and value
        # apart from the tokens' (keys/values (rows, heads, pooled, e)), as the trainer computes them.
        latent_key, latent_value = (_heads(m, self.num_heads) for m in self.memory_kv(latent).chunk(2, dim=-1))
        keys, values = (  # (rows, heads, pooled, e)
            _heads(m, self.num_heads)[newest].transpose(1, 2).contiguous()
            for m in self.memory_kv(tokens).chunk(2, dim=-1)
        )
        q = _heads(self.query(current), self.num_heads)
        token_scores = torch.matmul(keys, q.unsqueeze(-1)).squeeze(-1)
        latent_score = (latent_key * q).sum(dim=-1, keepdim=True)
        scores = torch.cat([latent_score, token_scores], dim=-1) / math.sqrt(q.shape[-1]) + self.memory_age_bias
        weights = torch.softmax(scores, dim=-1)
        mixed = weights[..., :1] * latent_value + torch.matmul(weights[..., 1:].unsqueeze(-2), values).squeeze(-2)
        context = self.attended(mixed.flatten(-2))
        return self.fuse(torch.cat([current, context, latent], dim=-1))


class ScaledObservation(nn.Module):
    """The 64 observation values divided by their scale (ppo / recurrent_ppo)."""

    def __init__(self, scale: torch.Tensor):
        super().__init__()
        self.register_buffer("scale", scale, persistent=False)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return observations[:, :OBS_SIZE] / self.scale


class ActorPolicy(nn.Module):
    """features extractor → (LSTM) → policy MLP → action logits → deterministic keys."""

    def __init__(self, spec: dict, scale: torch.Tensor):
        super().__init__()
        kind = spec["type"]
        if kind == "transformer_strategy" and spec.get("encoder", "full_window") == "streaming":
            self.extractor: nn.Module = StreamingExtractor(scale, spec)
            features_dim = spec["latent_dim"]
        elif kind == "transformer_strategy":
            self.extractor = ConditionedExtractor(
                scale, spec["latent_dim"], spec["num_heads"], spec["num_layers"], spec["sequence_length"]
            )
            features_dim = spec["latent_dim"]
        else:
            self.extractor = ScaledObservation(scale)
            features_dim = OBS_SIZE
        self.lstm: nn.LSTM | None = None
        last = features_dim
        if kind != "ppo":
            self.lstm = nn.LSTM(features_dim, spec["lstm_hidden_size"], num_layers=spec["lstm_layers"])
            last = spec["lstm_hidden_size"]
        activation = ACTIVATIONS[spec["activation"]]
        layers: list[nn.Module] = []
        for width in spec["policy_net"]:
            layers += [nn.Linear(last, width), activation()]
            last = width
        self.policy_net = nn.Sequential(*layers)
        # The macro head: one logit per named move, and each move's keys (a buffer, not a weight).
        macros = spec.get("macro_keys")
        self.macro_keys: torch.Tensor | None = None
        if macros is not None:
            self.macro_keys = torch.tensor(macros, dtype=torch.float32)
        self.action_net = nn.Linear(last, N_KEYS if macros is None else len(macros))

    def _process_sequence(
        self, features: torch.Tensor, states: LSTMStates, episode_starts: torch.Tensor
    ) -> tuple[torch.Tensor, LSTMStates]:
        """sb3-contrib's RecurrentActorCriticPolicy._process_sequence, step for step."""
        lstm = self.lstm
        n_seq = states[0].shape[1]
        features_sequence = features.reshape((n_seq, -1, lstm.input_size)).swapaxes(0, 1)
        episode_starts = episode_starts.reshape((n_seq, -1)).swapaxes(0, 1)
        if torch.all(episode_starts == 0.0):
            output, states = lstm(features_sequence, states)
            return torch.flatten(output.transpose(0, 1), start_dim=0, end_dim=1), states
        outputs = []
        for step_features, episode_start in zip(features_sequence, episode_starts, strict=True):
            keep = (1.0 - episode_start).view(1, n_seq, 1)
            hidden, states = lstm(step_features.unsqueeze(dim=0), (keep * states[0], keep * states[1]))
            outputs += [hidden]
        return torch.flatten(torch.cat(outputs).transpose(0, 1), start_dim=0, end_dim=1), states

    def action_logits(
        self, obs: torch.Tensor, states: LSTMStates | None = None, episode_starts: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, LSTMStates | None]:
        """obs (N, D) float32 → (the Bernoulli logits (N, 10), new LSTM states or None)."""
        latent = self.extractor(obs)
        if self.lstm is not None:
            latent, states = self._process_sequence(latent, states, episode_starts)
        return self.action_net(self.policy_net(latent)), states

    def forward(
        self, obs: torch.Tensor, states: LSTMStates | None = None, episode_starts: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, LSTMStates | None]:
        """obs (N, D) float32 → (keys (N, 10) as 0./1. floats, new LSTM states or None)."""
        logits, states = self.action_logits(obs, states, episode_starts)
        if self.macro_keys is not None:  # CategoricalDistribution.mode(): the likeliest move's keys
            return self.macro_keys[torch.argmax(logits, dim=1)], states
        # BernoulliDistribution.mode(): round(probs), with probs = sigmoid(logits) (0.5 rounds to 0)
        return torch.round(torch.sigmoid(logits)), states


# --- loading -------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_bundle_config(bundle_dir: Path) -> dict:
    """The bundle's agent_config.json, checked (plain JSON; nothing is unpickled)."""
    path = bundle_dir / CONFIG_FILE
    if not path.is_file():
        raise BundleError(f"{path} not found: is {bundle_dir} an exported bundle?")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(config, dict) or config.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{path} is not a {BUNDLE_FORMAT} bundle config")
    if config.get("format_version") != BUNDLE_VERSION:
        raise BundleError(
            f"{path} has bundle format version {config.get('format_version')!r}; this my_agent.py "
            f"reads version {BUNDLE_VERSION} (re-export the checkpoint)"
        )
    spec = config.get("policy")
    if not isinstance(spec, dict) or spec.get("type") not in AGENT_TYPES:
        raise BundleError(f"{path}: 'policy.type' must be one of {AGENT_TYPES}")
    if spec.get("encoder", "full_window") not in ("streaming", "full_window"):
        raise BundleError(f"{path}: unknown encoder {spec.get('encoder')!r} (streaming or full_window)")
    if spec.get("encoder") == "streaming" and not (
        isinstance(spec.get("attention_window"), int)
        and spec["attention_window"] >= 1
        and spec["sequence_length"] > spec["num_layers"] * (spec["attention_window"] - 1)
    ):
        raise BundleError(f"{path}: 'policy.attention_window' does not fit the encoder's sequence_length and layers")
    if spec.get("activation") not in ACTIVATIONS:
        raise BundleError(f"{path}: unknown activation {spec.get('activation')!r}")
    macros = spec.get("macro_keys")
    if macros is not None and not (
        isinstance(macros, list)
        and macros
        and all(isinstance(row, list) and len(row) == N_KEYS and set(row) <= {0, 1} for row in macros)
    ):
        raise BundleError(f"{path}: 'policy.macro_keys' must list rows of {N_KEYS} zeros and ones")
    scale = config.get("observation_scale")
    if not isinstance(scale, list) or len(scale) != OBS_SIZE:
        raise BundleError(f"{path}: 'observation_scale' must list {OBS_SIZE} numbers")
    return config


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """A plain dict of tensors, read with ``weights_only=True``: pickled code is refused, never run."""
    if not path.is_file():
        raise BundleError(f"{path} not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BundleError(
            f"{path} is not a weights-only tensor file (refused to load it): {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise BundleError(f"{path} must hold a dict of name → tensor")
    return state


def build_actor(config: dict, state: dict[str, torch.Tensor], source: Path) -> ActorPolicy:
    """The actor network of a bundle config with its weights (names and shapes must match exactly)."""
    scale = torch.tensor(config["observation_scale"], dtype=torch.float32)
    with torch.random.fork_rng(devices=[]):  # initial weights are overwritten; keep the caller's RNG as it was
        actor = ActorPolicy(config["policy"], scale)
    own = actor.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = [
        f"{k}: file {tuple(state[k].shape)} vs network {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or wrong:
        details = "; ".join(
            wrong[:3] + [f"missing {missing[:3]}"] * bool(missing) + [f"unexpected {unexpected[:3]}"] * bool(unexpected)
        )
        raise BundleError(f"{source} does not fit agent_config.json ({details})")
    actor.load_state_dict(state)
    return actor.eval()


# --- the agent -----------------------------------------------------------------------------
class SubmittedAgent(_AgentBase):
    """An exported policy playing deterministically, with its own per-match memory.

    ``predict`` plays one match (LSTM state and opponent history kept inside;
    ``reset()`` starts a new match); ``predict_batch`` plays many, each row's
    memory kept under its ``env_ids`` entry and cleared where ``episode_start``.

    :param file_path: the bundle folder (or a file in it); default: this file's folder
    """

    name = "submitted_agent"

    def __init__(self, file_path: str | Path | None = None):
        path = Path(file_path) if file_path is not None else Path(__file__).resolve().parent
        self.bundle_dir = path.parent if path.is_file() else path
        self._capacity = 0
        super().__init__(str(self.bundle_dir))  # loads through _initialize

    def _initialize(self) -> None:
        config = read_bundle_config(self.bundle_dir)
        weights_path = self.bundle_dir / WEIGHTS_FILE
        state = load_weights(weights_path)
        expected = config.get("weights_sha256")
        if expected is not None and _sha256(weights_path) != expected:
            raise BundleError(
                f"{weights_path} does not match agent_config.json (an interrupted export?); export the checkpoint again"
            )
        self.config = config
        self.spec = config["policy"]
        self.actor = build_actor(config, state, weights_path)
        self.recurrent = self.actor.lstm is not None
        self.uses_history = self.spec["type"] == "transformer_strategy"
        self._capacity = 0
        self._allocate(1)
        self.reset()
        self.initialized = True

    # --- per-match memory --------------------------------------------------------------
    def _allocate(self, capacity: int) -> None:
        hidden = self.spec.get("lstm_hidden_size", 0) if self.recurrent else 0
        layers = self.spec.get("lstm_layers", 1) if self.recurrent else 1
        length = self.spec.get("sequence_length", 0) if self.uses_history else 0
        old = [getattr(self, name, None) for name in ("_h", "_c", "_history", "_frames_held", "_held")]
        self._h = np.zeros((layers, capacity, hidden), np.float32)
        self._c = np.zeros_like(self._h)
        self._history = np.zeros((capacity, length, OBS_HALF), np.float32)
        # action_repeat: frames since the last decision, and the keys being held.
        self._frames_held = np.zeros(capacity, np.int64)
        self._held = np.zeros((capacity, N_KEYS), np.int8)
        if old[0] is not None:
            k = self._capacity
            self._h[:, :k], self._c[:, :k] = old[0], old[1]
            self._history[:k], self._frames_held[:k], self._held[:k] = old[2:]
        self._capacity = capacity

    def reset(self) -> None:
        self._h[:] = 0.0
        self._c[:] = 0.0
        self._history[:] = 0.0
        self._frames_held[:] = 0
        self._held[:] = 0
        self._single_started = False

    def predict(self, obs: np.ndarray) -> np.ndarray:
        """One action (10 keys, 0/1 int8) for one observation of 64 values."""
        obs = np.asarray(obs, np.float32).reshape(1, OBS_SIZE)
        first = not self._single_started
        self._single_started = True
        return self.predict_batch(obs, np.array([first]), np.array([0]))[0]

    def predict_batch(
        self, obs: np.ndarray, episode_start: np.ndarray, env_ids: np.ndarray | None = None
    ) -> np.ndarray:
        """Actions (N, 10) int8 for observations (N, 64); row i's memory lives under ``env_ids[i]``."""
        obs = np.asarray(obs, dtype=np.float32)
        if obs.ndim != 2 or obs.shape[1] != OBS_SIZE:
            raise ValueError(f"observations must have shape (N, {OBS_SIZE}), got {obs.shape}")
        n = obs.shape[0]
        if n == 0:
            return np.zeros((0, N_KEYS), np.int8)
        ids = np.arange(n) if env_ids is None else np.asarray(env_ids, np.intp).reshape(-1)
        starts = np.asarray(episode_start, bool).reshape(-1)
        if ids.shape != (n,) or starts.shape != (n,):
            raise ValueError(f"episode_start and env_ids must have {n} entries, got {starts.shape} and {ids.shape}")
        if ids.min() < 0:
            raise ValueError("env_ids must be non-negative")
        if ids.max() >= self._capacity:
            self._allocate(max(int(ids.max()) + 1, 2 * self._capacity))
        repeat = int(self.spec.get("action_repeat", 1))
        if repeat == 1:
            return self._decide(obs, starts, ids)
        # The policy was trained deciding every `repeat` frames (from a match's first frame)
        # and holding its keys in between: play the same way.
        self._frames_held[ids[starts]] = 0
        deciding = self._frames_held[ids] % repeat == 0
        if deciding.any():
            self._held[ids[deciding]] = self._decide(obs[deciding], starts[deciding], ids[deciding])
        self._frames_held[ids] += 1
        return self._held[ids].copy()

    def _decide(self, obs: np.ndarray, starts: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """New actions for rows ``ids``: one policy step (history, LSTM state)."""
        policy_obs = self._policy_obs(obs, ids, starts)
        with torch.no_grad():
            observations = torch.as_tensor(policy_obs).float()
            if self.recurrent:
                self._h[:, ids[starts]] = 0.0
                self._c[:, ids[starts]] = 0.0
                states = (
                    torch.tensor(self._h[:, ids], dtype=torch.float32),
                    torch.tensor(self._c[:, ids], dtype=torch.float32),
                )
                episode_starts = torch.tensor(starts, dtype=torch.float32)
                actions, (h, c) = self.actor(observations, states, episode_starts)
                self._h[:, ids], self._c[:, ids] = h.numpy(), c.numpy()
            else:
                actions, _ = self.actor(observations)
        return (actions.numpy() > 0.5).astype(np.int8)

    def _policy_obs(self, obs: np.ndarray, ids: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """[obs, opponent window] with the window newest frame last, zero-filled at episode start."""
        if not self.uses_history:
            return obs
        window = self._history[ids]
        window[starts] = 0.0
        window[:, :-1] = window[:, 1:]
        window[:, -1] = obs[:, OBS_HALF:]
        self._history[ids] = window
        return np.concatenate([obs, window.reshape(len(obs), -1)], axis=1)

    def get_state(self) -> dict[str, np.ndarray]:
        return {"h": self._h.copy(), "c": self._c.copy(), "history": self._history.copy()}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        self._capacity = state["history"].shape[0]
        self._h, self._c, self._history = state["h"].copy(), state["c"].copy(), state["history"].copy()

    def save(self, file_path: str) -> None:
        raise TypeError("a SubmittedAgent is inference-only; export a new bundle from a checkpoint instead")

    def learn(self, env, total_timesteps: int, log_interval: int = 1, verbose: int = 0):
        raise TypeError("a SubmittedAgent is inference-only")
