"""The streaming opponent-strategy encoder: each frame is encoded once (issue 15).

The seed's encoder re-read the opponent's whole 90-frame window at every step, with full
attention over it, in every one of its 6 layers: ~0.6 GFLOP per decision at the 10m sizes,
and 30x that in each PPO update. This one keeps the seed's meaning (a transformer over the
opponent's recent frames conditions the LSTM policy) but makes each frame's token a function
of that frame and a few frames before it only, so a token, once computed, never changes:

- every layer's attention is causal and *local*: a frame attends to itself and the
  ``attention_window - 1`` frames before it (with a learned bias per head and age);
- after ``num_layers`` layers a token has seen ``reach = num_layers x (attention_window - 1)``
  earlier frames; the strategy latent pools the newest ``pooled = sequence_length - reach``
  tokens, so the latent depends on exactly the last ``sequence_length`` frames, the
  observation's window, and nothing else (90 frames of context, as in the seed).

The latent is a pure function of the observation, so nothing about PPO changes (the rollout
buffer, minibatches and resume are SB3's); only the cost does:

- **rollout**: each stream (env) keeps a cache (per layer the keys/values of its last
  ``attention_window - 1`` frames, and its last ``pooled`` tokens). A step whose window is the
  previous window moved on by one frame encodes that one frame: 1 token x layers, not 90 x layers;
- **update**: rows of a minibatch that continue each other (sb3-contrib keeps each sequence's
  steps in order) are encoded as one stream, once per minibatch: one token per step plus one
  window per sequence start.

Whether a row continues another is decided by comparing the frames themselves (the row's window
minus its newest frame equals the other's window minus its oldest), never by trusting a
caller: a mismatch (a new match, a reordered batch, weights changed since the cache was
filled) only costs a full window, never a wrong latent. ``tests/test_strategy_encoder.py``
checks that the cached, streamed and one-window-at-a-time paths give the same latents.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from environment.observation import OBS_HALF, OBS_SIZE
from user.env_wrappers import observation_scale

N_RELATIVE = 5  # relative_features: dx, dy, dvx, dvy, distance


def relative_features(scaled: torch.Tensor) -> torch.Tensor:
    """The opponent's position and velocity relative to the observer's, and their distance.

    Derived from the scaled observation (no new inputs): "where is the opponent from me" is
    what most decisions hinge on (walk toward it, attack when close), and handing it to the
    network directly saves it learning to subtract two absolute positions first.
    """
    delta = scaled[:, OBS_HALF : OBS_HALF + 4] - scaled[:, 0:4]
    distance = torch.linalg.vector_norm(delta[:, 0:2], dim=-1, keepdim=True)
    return torch.cat([delta, distance], dim=-1)


def encoder_reach(num_layers: int, attention_window: int) -> int:
    """How many frames before its own a final token has seen."""
    return num_layers * (attention_window - 1)


def pooled_tokens(sequence_length: int, num_layers: int, attention_window: int) -> int:
    """How many of the newest tokens the latent pools (their reach fills the rest of the window)."""
    return sequence_length - encoder_reach(num_layers, attention_window)


def check_streaming_sizes(sequence_length: int, num_layers: int, attention_window: int) -> str | None:
    """A one-line problem with these sizes, or None."""
    if attention_window < 1:
        return f"agent.attention_window must be at least 1 (got {attention_window})"
    if pooled_tokens(sequence_length, num_layers, attention_window) < 1:
        return (
            f"agent.sequence_length {sequence_length} is too short for num_layers {num_layers} x "
            f"(attention_window {attention_window} - 1) = {encoder_reach(num_layers, attention_window)} "
            "frames of reach: it must be larger (or the window smaller)"
        )
    return None


def _heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(..., d) → (..., heads, d / heads)."""
    return x.unflatten(-1, (num_heads, x.shape[-1] // num_heads))


class LocalAttentionBlock(nn.Module):
    """A pre-norm transformer block whose attention looks back ``window`` frames (itself included).

    ``stream`` runs it over a whole sequence of frames; ``step`` over one new frame given the
    keys and values of the ``window - 1`` frames before it. Both compute the same numbers.
    """

    def __init__(self, dim: int, num_heads: int, window: int):
        super().__init__()
        self.num_heads, self.window = num_heads, window
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.age_bias = nn.Parameter(torch.zeros(num_heads, window))  # oldest → newest
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, dim))

    def _qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        return _heads(q, self.num_heads), _heads(k, self.num_heads), _heads(v, self.num_heads)

    def _attend(self, x, q, keys, values) -> torch.Tensor:
        """q (..., h, e), keys/values (..., window, h, e) → the block's output (..., d)."""
        scores = torch.einsum("...he,...whe->...hw", q, keys) / math.sqrt(q.shape[-1]) + self.age_bias
        mixed = torch.einsum("...hw,...whe->...he", torch.softmax(scores, dim=-1), values)
        x = x + self.out(mixed.flatten(-2))
        return x + self.ff(self.norm2(x))

    def stream(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (n, d), frames in order → (output (n, d), keys (n, h, e), values (n, h, e)).

        The first ``window - 1`` frames attend to zeros before the stream: their outputs are
        incomplete, and the callers never use them.
        """
        q, k, v = self._qkv(x)
        pad = (0, 0, 0, 0, self.window - 1, 0)
        # unfold: (n, h, e, window) views of each frame's window, oldest first
        keys = F.pad(k, pad).unfold(0, self.window, 1).permute(0, 3, 1, 2)
        values = F.pad(v, pad).unfold(0, self.window, 1).permute(0, 3, 1, 2)
        return self._attend(x, q, keys, values), k, v

    def step(self, x: torch.Tensor, past_keys: torch.Tensor, past_values: torch.Tensor):
        """x (b, d) one new frame per stream, past keys/values (b, h, window - 1, e) →
        (output (b, d), its keys (b, h, e), its values (b, h, e)).

        The same attention as ``_attend``, with the new frame's own score and value taken apart
        from the past's: a rollout step is a few rows, where the count of kernels and copies, not
        their arithmetic, is the cost, so nothing here concatenates or transposes a window."""
        q, k, v = self._qkv(x)
        scale = 1.0 / math.sqrt(q.shape[-1])
        past_scores = torch.matmul(past_keys, q.unsqueeze(-1)).squeeze(-1)  # (b, h, window - 1)
        own_score = (k * q).sum(dim=-1, keepdim=True)
        weights = torch.softmax(torch.cat([past_scores, own_score], dim=-1) * scale + self.age_bias, dim=-1)
        mixed = torch.matmul(weights[..., :-1].unsqueeze(-2), past_values).squeeze(-2) + weights[..., -1:] * v
        x = x + self.out(mixed.flatten(-2))
        return x + self.ff(self.norm2(x)), k, v


@dataclass
class RowTokens:
    """Per row: its window's pooled tokens, their memory keys/values and pooling logits, and
    (for the rollout cache) each layer's keys/values of its newest ``window - 1`` frames, laid out
    (layers, rows, heads, window - 1, head dim) so that a step reads them without a copy."""

    tokens: torch.Tensor
    memory_keys: torch.Tensor  # (rows, heads, pooled, head dim), as the cross-attention reads them
    memory_values: torch.Tensor
    pool_logits: torch.Tensor
    past_keys: torch.Tensor
    past_values: torch.Tensor


@dataclass
class StreamCache:
    """What each stream (env) keeps between rollout steps, rows indexed by stream id."""

    windows: torch.Tensor  # (cap, S, 32) the raw frames the rows were computed from
    rows: RowTokens
    filled: torch.Tensor  # (cap,) bool
    weights_version: tuple


class StreamingStrategyEncoder(nn.Module):
    """Opponent frames → per-frame tokens (computed once each) → a pooled strategy latent.

    Its sizes are the seed's encoder's (train_agent.TransformerStrategyEncoder, whose signature
    ``duplicates`` pairs with this one) plus ``attention_window``."""

    def __init__(
        self,
        frame_dim: int = OBS_HALF,
        latent_dim: int = 256,
        num_heads: int = 8,
        num_layers: int = 6,
        sequence_length: int = 90,
        attention_window: int = 8,
    ):
        super().__init__()
        problem = check_streaming_sizes(sequence_length, num_layers, attention_window)
        if problem:
            raise ValueError(problem)
        self.sequence_length, self.window = sequence_length, attention_window
        self.pooled = pooled_tokens(sequence_length, num_layers, attention_window)
        self.embed = nn.Sequential(nn.Linear(frame_dim, latent_dim), nn.LayerNorm(latent_dim), nn.ReLU())
        self.blocks = nn.ModuleList(
            LocalAttentionBlock(latent_dim, num_heads, attention_window) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(latent_dim)
        self.pool_score = nn.Linear(latent_dim, 1)
        self.pool_age_bias = nn.Parameter(torch.zeros(self.pooled))  # oldest → newest
        self.head = nn.Sequential(nn.Linear(latent_dim, latent_dim), nn.ReLU(), nn.Linear(latent_dim, latent_dim))

    def stream(self, frames: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """frames (n, 32) in order → (final tokens (n, d), each layer's keys and values (n, h, e))."""
        x = self.embed(frames)
        keys, values = [], []
        for block in self.blocks:
            x, k, v = block.stream(x)
            keys.append(k)
            values.append(v)
        return self.norm(x), keys, values

    def step(self, frames: torch.Tensor, past_keys: torch.Tensor, past_values: torch.Tensor):
        """frames (b, 32), one new frame per stream, past (layers, b, h, window - 1, e) →
        (final tokens (b, d), new keys (layers, b, h, e), new values (layers, b, h, e))."""
        x = self.embed(frames)
        keys, values = [], []
        for block, pk, pv in zip(self.blocks, past_keys, past_values, strict=True):
            x, k, v = block.step(x, pk, pv)
            keys.append(k)
            values.append(v)
        return self.norm(x), torch.stack(keys), torch.stack(values)

    def pool(self, tokens: torch.Tensor, pool_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, pooled, d), logits (B, pooled) → (latent (B, d), pooling weights (B, pooled))."""
        weights = torch.softmax(pool_logits + self.pool_age_bias, dim=-1)
        return self.head((weights.unsqueeze(-1) * tokens).sum(dim=1)), weights


def continuation_rows(windows: torch.Tensor) -> torch.Tensor:
    """(B, S, 32) raw windows → (B,) bool: row i's window is row i-1's moved on by one frame."""
    follows = torch.zeros(windows.shape[0], dtype=torch.bool, device=windows.device)
    if windows.shape[0] > 1 and windows.shape[1] > 1:
        follows[1:] = (windows[1:, :-1] == windows[:-1, 1:]).flatten(1).all(dim=1)
    return follows


class StreamingConditionedExtractor(BaseFeaturesExtractor):
    """Features = the current observation fused with the opponent's strategy (streaming encoder).

    As the seed's extractor: the embedded observation cross-attends to the strategy latent and
    the encoder's tokens, and the attended context, the observation embedding and the latent are
    fused by a linear layer; the encoder trains end to end with PPO through it. Here the memory
    is the latent plus the ``pooled`` newest tokens, whose cross-attention keys and values are
    computed once per token (a learned bias per head and age replaces position codes).
    """

    def __init__(
        self,
        observation_space: spaces.Box,
        latent_dim: int = 256,
        num_heads: int = 8,
        num_layers: int = 6,
        sequence_length: int = 90,
        attention_window: int = 8,
    ):
        super().__init__(observation_space, features_dim=latent_dim)
        self.sequence_length, self.num_heads = sequence_length, num_heads
        scale = torch.as_tensor(observation_scale())
        self.register_buffer("scale", scale, persistent=False)
        self.register_buffer("frame_scale", scale[OBS_HALF:], persistent=False)
        self.obs_embed = nn.Sequential(
            nn.Linear(OBS_SIZE + N_RELATIVE, latent_dim), nn.LayerNorm(latent_dim), nn.ReLU()
        )
        self.encoder = StreamingStrategyEncoder(
            OBS_HALF, latent_dim, num_heads, num_layers, sequence_length, attention_window
        )
        self.memory_kv = nn.Linear(latent_dim, 2 * latent_dim)  # keys and values of tokens and latent
        self.query = nn.Linear(latent_dim, latent_dim)
        self.memory_age_bias = nn.Parameter(torch.zeros(num_heads, self.encoder.pooled + 1))  # latent first
        self.attended = nn.Linear(latent_dim, latent_dim)
        self.fuse = nn.Sequential(nn.Linear(3 * latent_dim, latent_dim), nn.ReLU())
        self.last_latent: torch.Tensor | None = None  # for strategy analysis and logging
        self.last_pool_weights: torch.Tensor | None = None
        self.autocast_dtype: torch.dtype | None = None  # bf16 / fp16 on CUDA (training.precision)
        # The rollout cache (no-grad calls only). stream_ids: which stream each row of the next
        # call belongs to (a playing agent sets its match ids); None = row i is stream i.
        self.stream_ids: torch.Tensor | None = None
        self._cache: StreamCache | None = None

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        if self.autocast_dtype is None:
            return self._features(observations)
        with torch.autocast("cuda", dtype=self.autocast_dtype):
            return self._features(observations).float()

    def _features(self, observations: torch.Tensor) -> torch.Tensor:
        scaled = observations[:, :OBS_SIZE] / self.scale
        current = self.obs_embed(torch.cat([scaled, relative_features(scaled)], dim=-1))
        windows = observations[:, OBS_SIZE:].reshape(len(observations), self.sequence_length, OBS_HALF)
        rows = self._cached_rows(windows) if self._caching() else self.rows_by_stream(windows)
        latent, pool_weights = self.encoder.pool(rows.tokens, rows.pool_logits)
        context = self._cross_attend(current, latent, rows.memory_keys, rows.memory_values)
        self.last_latent = latent.detach()
        self.last_pool_weights = pool_weights.detach()
        return self.fuse(torch.cat([current, context, latent], dim=-1))

    def _cross_attend(self, current, latent, token_keys, token_values) -> torch.Tensor:
        """The observation attends to the latent and the pooled tokens (keys/values (B, h, pooled, e)).

        The latent's score and value are taken apart from the tokens' (as in a block's step), so
        the tokens' keys and values are read where they lie, never copied into one memory."""
        latent_key, latent_value = (_heads(m, self.num_heads) for m in self.memory_kv(latent).chunk(2, dim=-1))
        q = _heads(self.query(current), self.num_heads)
        token_scores = torch.matmul(token_keys, q.unsqueeze(-1)).squeeze(-1)
        latent_score = (latent_key * q).sum(dim=-1, keepdim=True)
        scores = torch.cat([latent_score, token_scores], dim=-1) / math.sqrt(q.shape[-1]) + self.memory_age_bias
        weights = torch.softmax(scores, dim=-1)  # latent first
        mixed = weights[..., :1] * latent_value + torch.matmul(weights[..., 1:].unsqueeze(-2), token_values).squeeze(-2)
        return self.attended(mixed.flatten(-2))

    def _memory(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (..., d) → their cross-attention keys and values (..., h, e)."""
        keys, values = (_heads(m, self.num_heads) for m in self.memory_kv(tokens).chunk(2, dim=-1))
        return keys, values

    # --- the latent's inputs, three ways (the same numbers) -------------------------------
    def rows_by_stream(self, windows: torch.Tensor) -> RowTokens:
        """Rows that continue the row before are encoded as one stream: one new token each."""
        follows = continuation_rows(windows)
        take = torch.ones(windows.shape[:2], dtype=torch.bool, device=windows.device)
        take[follows, :-1] = False  # a continuing row adds its newest frame only
        frames = windows[take] / self.frame_scale  # row-major: the streams, concatenated
        tokens, keys, values = self.encoder.stream(frames)
        ends = torch.cumsum(take.sum(dim=1), dim=0) - 1  # each row's newest frame in the stream
        return self._rows_at(ends, tokens, keys, values)

    def _rows_at(self, ends, tokens, keys, values) -> RowTokens:
        enc = self.encoder
        newest = ends.unsqueeze(1) - torch.arange(enc.pooled - 1, -1, -1, device=ends.device)
        past = ends.unsqueeze(1) - torch.arange(enc.window - 2, -1, -1, device=ends.device)
        memory_keys, memory_values = self._memory(tokens)  # each token's once, then each row's
        return RowTokens(
            tokens=tokens[newest],
            memory_keys=memory_keys[newest].transpose(1, 2).contiguous(),
            memory_values=memory_values[newest].transpose(1, 2).contiguous(),
            pool_logits=enc.pool_score(tokens).squeeze(-1)[newest],
            past_keys=torch.stack([k[past].transpose(1, 2) for k in keys]),
            past_values=torch.stack([v[past].transpose(1, 2) for v in values]),
        )

    def _caching(self) -> bool:
        return not torch.is_grad_enabled()  # the rollout and play; an update encodes its minibatch as streams

    def _weights_version(self) -> tuple[int, ...]:
        # In-place updates (optimizer steps, load_state_dict) bump a tensor's version counter,
        # so a cache filled under other weights is never reused. (The parameter objects stay the
        # same through .to() and load_state_dict, so their list is kept.)
        if getattr(self, "_parameter_list", None) is None:
            self._parameter_list = list(self.parameters())
        return tuple(p._version for p in self._parameter_list)

    def _cached_rows(self, windows: torch.Tensor) -> RowTokens:
        """The rollout path: a row whose window moved on by one frame since its stream's last
        call encodes that frame alone; the others are encoded whole. Refills the cache."""
        ids = self.stream_ids if self.stream_ids is not None else torch.arange(len(windows))
        ids = ids.to(windows.device)
        past, hit = self.lookup(windows, ids)
        if hit.all():
            rows = self._stepped_rows(windows[:, -1], past)
        elif not hit.any():
            rows = self.rows_by_stream(windows)
        else:
            hits, misses = torch.nonzero(hit).squeeze(1), torch.nonzero(~hit).squeeze(1)
            stepped = self._stepped_rows(windows[hits, -1], _select(past, hits))
            rows = placed(past, (hits, stepped), (misses, self.rows_by_stream(windows[misses])))
        self.remember(windows, ids, rows)
        return rows

    def _whole_cache(self, ids: torch.Tensor) -> bool:
        """The trainer's rollout: row i is stream i of a cache of exactly these streams (no gathers)."""
        cache = self._cache
        return len(ids) == len(cache.filled) and bool((ids == torch.arange(len(ids), device=ids.device)).all())

    def lookup(self, windows: torch.Tensor, ids: torch.Tensor) -> tuple[RowTokens, torch.Tensor]:
        """Each row's cached past (its stream's last call) and whether the row hits it: its window is
        that call's moved on by one frame, so only its newest frame needs encoding."""
        cache = self._cache_for(windows, int(ids.max()) + 1 if len(ids) else 0)
        if self._whole_cache(ids):
            past, filled, cached_windows = cache.rows, cache.filled, cache.windows
        else:
            past, filled, cached_windows = _select(cache.rows, ids), cache.filled[ids], cache.windows[ids]
        return past, filled & (windows[:, :-1] == cached_windows[:, 1:]).flatten(1).all(dim=1)

    def remember(self, windows: torch.Tensor, ids: torch.Tensor, rows: RowTokens) -> None:
        """Keep ``rows`` as the streams' cache (after a ``lookup`` of the same ids)."""
        cache = self._cache
        if self._whole_cache(ids):
            cache.rows, cache.windows, cache.filled = rows, windows.clone(), torch.ones_like(cache.filled)
            return
        cache.windows[ids], cache.filled[ids] = windows, True
        for name, dim, new in _fields(rows):
            getattr(cache.rows, name).index_copy_(dim, ids, new.to(getattr(cache.rows, name).dtype))

    def _stepped_rows(self, frames: torch.Tensor, past: RowTokens) -> RowTokens:
        token, keys, values = self.encoder.step(frames / self.frame_scale, past.past_keys, past.past_values)
        shift = lambda old, new: torch.cat([old[:, 1:], new.unsqueeze(1)], dim=1)  # noqa: E731
        shift_heads = lambda old, new: torch.cat([old[:, :, 1:], new.unsqueeze(2)], dim=2)  # noqa: E731
        memory_key, memory_value = self._memory(token)
        return RowTokens(
            tokens=shift(past.tokens, token),
            memory_keys=shift_heads(past.memory_keys, memory_key),  # (b, h, pooled, e)
            memory_values=shift_heads(past.memory_values, memory_value),
            pool_logits=shift(past.pool_logits, self.encoder.pool_score(token).squeeze(-1)),
            past_keys=torch.cat([past.past_keys[..., 1:, :], keys.unsqueeze(3)], dim=3),
            past_values=torch.cat([past.past_values[..., 1:, :], values.unsqueeze(3)], dim=3),
        )

    def _cache_for(self, windows: torch.Tensor, capacity: int) -> StreamCache:
        """The cache, emptied when the weights, device or precision changed, grown to ``capacity``."""
        version = (*self._weights_version(), str(self.autocast_dtype))
        old = self._cache
        if old is None or old.weights_version != version or old.windows.device != windows.device:
            old = None
        if old is not None and len(old.filled) >= capacity:
            return old
        size = max(capacity, 2 * len(old.filled)) if old is not None else capacity
        self._cache = self._empty_cache(size, windows.device, version)
        if old is not None:  # grown: the streams kept so far come along
            n = len(old.filled)
            self._cache.windows[:n], self._cache.filled[:n] = old.windows, old.filled
            for name, dim, kept in _fields(old.rows):
                getattr(self._cache.rows, name).narrow(dim, 0, n).copy_(kept)
        return self._cache

    def _empty_cache(self, capacity: int, device: torch.device, version: tuple) -> StreamCache:
        enc, d = self.encoder, self.features_dim
        past = (len(enc.blocks), capacity, self.num_heads, enc.window - 1, d // self.num_heads)
        memory = (capacity, self.num_heads, enc.pooled, d // self.num_heads)
        return StreamCache(
            windows=torch.zeros((capacity, self.sequence_length, OBS_HALF), device=device),
            rows=RowTokens(
                tokens=torch.zeros((capacity, enc.pooled, d), device=device),
                memory_keys=torch.zeros(memory, device=device),
                memory_values=torch.zeros(memory, device=device),
                pool_logits=torch.zeros((capacity, enc.pooled), device=device),
                past_keys=torch.zeros(past, device=device),
                past_values=torch.zeros(past, device=device),
            ),
            filled=torch.zeros(capacity, dtype=torch.bool, device=device),
            weights_version=version,
        )

    def reset_cache(self) -> None:
        self._cache = None


# The batch dimension of each RowTokens field: the past keys/values lead with the layer.
ROW_BATCH_DIMS = {
    "tokens": 0,
    "memory_keys": 0,
    "memory_values": 0,
    "pool_logits": 0,
    "past_keys": 1,
    "past_values": 1,
}


def _fields(rows: RowTokens) -> list[tuple[str, int, torch.Tensor]]:
    """(name, batch dimension, tensor) of each field."""
    return [(name, dim, getattr(rows, name)) for name, dim in ROW_BATCH_DIMS.items()]


def _select(rows: RowTokens, index: torch.Tensor) -> RowTokens:
    return RowTokens(**{name: t.index_select(dim, index) for name, dim, t in _fields(rows)})


def placed(like: RowTokens, *parts: tuple[torch.Tensor, RowTokens]) -> RowTokens:
    """Rows shaped as ``like`` (zeros), with each part's rows put at its index."""
    out = {name: torch.zeros_like(t) for name, _, t in _fields(like)}
    for index, rows in parts:
        for name, dim, t in _fields(rows):
            out[name].index_copy_(dim, index, t.to(out[name].dtype))
    return RowTokens(**out)
