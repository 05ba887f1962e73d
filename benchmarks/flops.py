"""FLOPs per agent step of the trainer's policies, counted from their shapes (issue 15).

What is counted: the matrix products (2 x m x n x k each), which is what
``torch.utils.flop_counter.FlopCounterMode`` counts and what the GPU's tensor cores run; norms,
softmaxes and elementwise ops are a few percent and left out. ``tests/test_flops.py`` checks the
counts against ``FlopCounterMode`` on real forward and backward passes (and the LSTM, which the
counter does not see, against a matmul re-implementation of it).

Per agent step (one learner decision):

- **rollout**: one forward of the learner (actor and critic) on one row, plus, for the share of
  matches played against snapshots of itself, one actor forward of the snapshot;
- **update**: ``n_epochs`` x (forward + backward = 3 x forward) of the rows each sample costs in
  sb3-contrib's minibatches: a minibatch takes ``batch_size`` consecutive steps of the
  env-major buffer, splits them into one sequence per env and pads every sequence to the longest
  (zero rows that the network still runs). The expectation over where a minibatch starts is
  exact; episode ends inside a rollout (every ``max_timesteps / action_repeat`` steps) split a few
  more sequences and are left out.

Encoders:

- ``full_window`` (the seed's): every row re-encodes its whole window, in every layer;
- ``streaming``: a row costs one new frame's token when it continues the row before (the rollout
  cache; a minibatch's sequence), a whole window when it starts a sequence (the first row of a
  sequence, the first row of its zero padding).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn

from environment.observation import OBS_HALF, OBS_SIZE
from user.strategy_encoder import N_RELATIVE, pooled_tokens

FRAME = OBS_HALF  # values per opponent frame


def linear(n_in: int, n_out: int) -> float:
    return 2.0 * n_in * n_out


@dataclass
class StepFlops:
    """FLOP per agent step."""

    rollout: float
    update: float

    @property
    def total(self) -> float:
        return self.rollout + self.update


# --- the strategy extractors ----------------------------------------------------------------
def streaming_token_flops(a: dict) -> float:
    """One new frame through the streaming encoder: embedding, every layer, its memory keys/values
    and pooling score."""
    d, w = a["latent_dim"], a["attention_window"]
    per_layer = linear(d, 3 * d) + 2 * 2.0 * w * d + linear(d, d) + linear(d, 2 * d) + linear(2 * d, d)
    return linear(FRAME, d) + a["num_layers"] * per_layer + linear(d, 2 * d) + linear(d, 1)


def streaming_row_flops(a: dict) -> float:
    """One row of the streaming extractor besides its new tokens: the observation embedding, the
    pooled latent's head, the cross-attention over latent + pooled tokens, the fusion."""
    d = a["latent_dim"]
    memory = pooled_tokens(a["sequence_length"], a["num_layers"], a["attention_window"]) + 1
    cross = linear(d, d) + linear(d, 2 * d) + 2 * 2.0 * memory * d + linear(d, d)  # query, latent k/v, attend, out
    return linear(OBS_SIZE + N_RELATIVE, d) + 2 * linear(d, d) + cross + linear(3 * d, d)


def full_window_row_flops(a: dict) -> float:
    """One row of the seed's extractor: the whole window through every layer, then the rest."""
    d, length = a["latent_dim"], a["sequence_length"]
    per_token_layer = linear(d, 3 * d) + 2 * 2.0 * length * d + linear(d, d) + linear(d, 2 * d) + linear(2 * d, d)
    encoder = length * (linear(FRAME, d) + a["num_layers"] * per_token_layer + linear(d, 1)) + 2 * linear(d, d)
    memory = length + 1
    cross = linear(d, d) + memory * linear(d, 2 * d) + 2 * 2.0 * memory * d + linear(d, d)
    return linear(OBS_SIZE + N_RELATIVE, d) + encoder + cross + linear(3 * d, d)


def extractor_flops(a: dict, rows: float, tokens: float) -> float:
    """The extractor over ``rows`` rows that need ``tokens`` new frame tokens (streaming)."""
    if a["type"] != "transformer_strategy":
        return 0.0  # the scaled observation: a division
    if a["encoder"] == "full_window":
        return rows * full_window_row_flops(a)
    return rows * streaming_row_flops(a) + tokens * streaming_token_flops(a)


# --- the rest of the policy, from its modules ---------------------------------------------------
def lstm_flops(lstm: nn.LSTM) -> float:
    """One step of one row: each layer's four gates from its input and hidden state."""
    total, n_in = 0.0, lstm.input_size
    for _ in range(lstm.num_layers):
        total += linear(n_in, 4 * lstm.hidden_size) + linear(lstm.hidden_size, 4 * lstm.hidden_size)
        n_in = lstm.hidden_size
    return total


def _linears(module: nn.Module | None) -> float:
    if module is None:
        return 0.0
    return sum(linear(m.in_features, m.out_features) for m in module.modules() if isinstance(m, nn.Linear))


def head_flops(policy, actor_only: bool = False) -> float:
    """One row of everything after the features extractor: LSTMs, critic projection, MLPs, heads."""
    actor = lstm_flops(policy.lstm_actor) if getattr(policy, "lstm_actor", None) is not None else 0.0
    actor += _linears(policy.mlp_extractor.policy_net) + _linears(policy.action_net)
    if actor_only:
        return actor
    critic_lstm = getattr(policy, "lstm_critic", None)
    critic = lstm_flops(critic_lstm) if critic_lstm is not None else _linears(getattr(policy, "critic", None))
    return actor + critic + _linears(policy.mlp_extractor.value_net) + _linears(policy.value_net)


# --- the layout of the work ------------------------------------------------------------------------
def minibatch_sequences(n_steps: int, batch_size: int, offset: int) -> list[int]:
    """The sequence lengths of a minibatch of ``batch_size`` consecutive steps of the env-major
    buffer starting ``offset`` steps into an env's block of ``n_steps`` (one sequence per env)."""
    lengths, left, start = [], batch_size, offset
    while left > 0:
        lengths.append(min(n_steps - start, left))
        left, start = left - lengths[-1], 0
    return lengths


def minibatch_layout(n_steps: int, batch_size: int, sequence_length: int) -> tuple[float, float]:
    """(rows, new frame tokens) per sample of an update, averaged over where a minibatch starts.

    sb3-contrib: a minibatch is ``batch_size`` consecutive steps of the env-major buffer (each env's
    ``n_steps`` in order), one sequence per env it touches, each padded with zero rows to the
    longest; a sequence's first row needs its whole window, as does the first of its zero rows.
    """
    rows = tokens = 0.0
    for offset in range(n_steps):
        lengths = minibatch_sequences(n_steps, batch_size, offset)
        longest = max(lengths)
        rows += len(lengths) * longest
        padding = [longest - n for n in lengths]
        tokens += sum(sequence_length + n - 1 for n in lengths) + sum(sequence_length + p - 1 for p in padding if p)
    return rows / (n_steps * batch_size), tokens / (n_steps * batch_size)


def snapshot_share(config: dict) -> float:
    """The share of matches played against the learner's own snapshots (the mix's self-play weight)."""
    weights = {name: float(entry[0]) for name, entry in config["self_play"]["opponents"].items()}
    total = sum(weights.values())
    return sum(w for name, w in weights.items() if name == "self_play") / total if total else 0.0


def step_flops(config: dict, policy) -> StepFlops:
    """FLOP per agent step of ``config`` whose policy is ``policy`` (the trainer's ``build_policy``)."""
    a = config["agent"]
    forward_row = extractor_flops(a, 1.0, 1.0) + head_flops(policy)
    actor_row = extractor_flops(a, 1.0, 1.0) + head_flops(policy, actor_only=True)
    rollout = forward_row + snapshot_share(config) * actor_row
    rows, tokens = minibatch_layout(a["n_steps"], a["batch_size"], a["sequence_length"])
    if a["encoder"] == "full_window" or a["type"] != "transformer_strategy":
        tokens = 0.0
    update_forward = extractor_flops(a, rows, tokens) + rows * head_flops(policy)
    return StepFlops(rollout=rollout, update=3.0 * a["n_epochs"] * update_forward)
