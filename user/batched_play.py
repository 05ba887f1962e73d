"""Several snapshot opponents of one architecture in one policy call (issue 15).

A self-play run has many of its snapshots in play at once, each with a few matches. Calling each
snapshot's policy on its own rows costs one call (tens of kernels) per snapshot per frame: on a GPU
that fixed cost, not the arithmetic, is the bill. Here the snapshots' weights are stacked
(``torch.func.stack_module_state``) and one ``torch.vmap``-ed actor step runs all of them, each
on its own rows (padded to the largest), so a frame costs one call per architecture.

Covered: recurrent policies with the streaming encoder, argmax play (how snapshots play). Each
snapshot's stream cache (user/strategy_encoder.py) is read and refilled as its own call would:
rows whose window moved on by one frame step the encoder; the others are encoded whole by the
snapshot's own extractor first (a match's first frame), then join the stacked call. Anything else
(the feed-forward type, the full-window encoder, sampled play) is stepped one agent at a time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn
from gymnasium import spaces
from torch.func import functional_call, stack_module_state

from environment.observation import OBS_HALF, OBS_SIZE
from user.strategy_encoder import (
    ROW_BATCH_DIMS,
    RowTokens,
    StreamingConditionedExtractor,
    _fields,
    placed,
    relative_features,
)


def batch_key(agent) -> tuple | None:
    """Agents with equal keys share a stacked call; None: this agent is stepped alone."""
    policy = agent.policy
    extractor = getattr(policy, "features_extractor", None)
    lstm = getattr(policy, "lstm_actor", None)
    if not (agent.deterministic and isinstance(extractor, StreamingConditionedExtractor) and lstm is not None):
        return None
    if extractor.autocast_dtype is not None or lstm.num_layers != 1:
        return None
    shapes = tuple((name, tuple(p.shape)) for name, p in policy.named_parameters())
    config = json.dumps(agent.agent_config, sort_keys=True, default=str)
    return (type(policy).__name__, str(next(policy.parameters()).device), shapes, config)


class ActorStep(nn.Module):
    """One deciding step of a streaming-encoder LSTM policy, as a pure function of its inputs
    (what ``torch.vmap`` needs): the encoder's cached step, pooling, cross-attention, one LSTM
    step, the actor MLP and logits. Same operations as the policy's own call.

    It holds the actor's modules themselves, not the SB3 policy, whose extractor sits under three
    names (features / pi / vf): ``functional_call`` would swap its weights under one and restore
    them under another."""

    def __init__(self, policy):
        super().__init__()
        self.extractor = policy.features_extractor
        self.lstm = policy.lstm_actor
        self.policy_net = policy.mlp_extractor.policy_net
        self.action_net = policy.action_net

    def forward(self, obs, past: dict, whole: dict, hit, h, c, start):
        ex = self.extractor
        scaled = obs[:, :OBS_SIZE] / ex.scale
        current = ex.obs_embed(torch.cat([scaled, relative_features(scaled)], dim=-1))
        stepped = ex._stepped_rows(obs[:, -OBS_HALF:], RowTokens(**past))
        rows = {}
        for name, dim, value in _fields(stepped):
            keep = hit.reshape((1,) * dim + (-1,) + (1,) * (value.dim() - dim - 1))
            rows[name] = torch.where(keep, value, whole[name])
        latent, _ = ex.encoder.pool(rows["tokens"], rows["pool_logits"])
        context = ex._cross_attend(current, latent, rows["memory_keys"], rows["memory_values"])
        features = ex.fuse(torch.cat([current, context, latent], dim=-1))
        h, c = _lstm_step(self.lstm, features, h * (1 - start)[:, None], c * (1 - start)[:, None])
        return self.action_net(self.policy_net(h)), rows, h, c


def _lstm_step(lstm: nn.LSTM, x, h, c):
    gates = x @ lstm.weight_ih_l0.T + lstm.bias_ih_l0 + h @ lstm.weight_hh_l0.T + lstm.bias_hh_l0
    i, f, g, o = gates.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


class _Stack:
    """The stacked weights of a set of policies, rebuilt when the set or any weight changes."""

    def __init__(self):
        self.key: tuple | None = None
        self.params: dict | None = None
        self.base: ActorStep | None = None

    def get(self, policies: Sequence[nn.Module]) -> tuple[ActorStep, dict]:
        key = tuple((id(p), tuple(t._version for t in p.parameters())) for p in policies)
        if key != self.key:
            steps = [ActorStep(p) for p in policies]
            self.params, _ = stack_module_state(steps)
            self.base, self.key = steps[0], key
        return self.base, self.params


_STACKS: dict[tuple, _Stack] = {}


def stacked_policy_step(policies: list, requests: list) -> list[tuple[np.ndarray, tuple]]:
    """(actions, (h, c)) for each policy's request (``TransformerStrategyAgent`` PolicyRequest),
    as ``policy.predict(..., deterministic=True)`` would give them, in one call."""
    with torch.no_grad():
        inputs = [_inputs(p, r) for p, r in zip(policies, requests, strict=True)]
        width = max(len(r.ids) for r in requests)
        padded = {
            name: torch.stack([_pad(x[name], width) for x in inputs]) for name in ("obs", "hit", "h", "c", "start")
        }
        past, whole = (
            {n: torch.stack([_pad(getattr(x[part], n), width, d) for x in inputs]) for n, d in ROW_BATCH_DIMS.items()}
            for part in ("past", "whole")
        )
        base, params = _STACKS.setdefault(_stack_key(policies[0]), _Stack()).get(policies)

        def one(params, obs, past, whole, hit, h, c, start):
            # Weights only: the buffers (the observation scale) are the same constants in every snapshot.
            return functional_call(base, params, (obs, past, whole, hit, h, c, start))

        logits, rows, h, c = torch.vmap(one)(
            params, padded["obs"], past, whole, padded["hit"], padded["h"], padded["c"], padded["start"]
        )
    results = []
    for k, (policy, request, x) in enumerate(zip(policies, requests, inputs, strict=True)):
        n = len(request.ids)
        own = RowTokens(**{name: rows[name][k].narrow(d, 0, n) for name, d in ROW_BATCH_DIMS.items()})
        policy.features_extractor.remember(x["windows"], x["ids"], own)
        results.append((_mode(policy, logits[k, :n]), (h[k, :n][None].cpu().numpy(), c[k, :n][None].cpu().numpy())))
    return results


def _stack_key(policy) -> tuple:
    return (type(policy).__name__, tuple((n, tuple(p.shape)) for n, p in policy.named_parameters()))


def _inputs(policy, request) -> dict:
    """One policy's rows: its cached past per row, the hits, and the misses encoded whole."""
    device = next(policy.parameters()).device
    ex = policy.features_extractor
    obs = torch.as_tensor(request.obs, device=device)
    windows = obs[:, OBS_SIZE:].reshape(len(obs), ex.sequence_length, OBS_HALF)
    ids = torch.as_tensor(request.ids, device=device)
    past, hit = ex.lookup(windows, ids)
    misses = torch.nonzero(~hit).squeeze(1)
    whole = placed(past, (misses, ex.rows_by_stream(windows[misses]))) if len(misses) else placed(past)
    h, c = (torch.as_tensor(s[0], device=device) for s in request.state)
    start = torch.as_tensor(request.starts, dtype=torch.float32, device=device)
    return {
        "obs": obs,
        "windows": windows,
        "ids": ids,
        "past": past,
        "whole": whole,
        "hit": hit,
        "h": h,
        "c": c,
        "start": start,
    }


def _pad(x: torch.Tensor, width: int, dim: int = 0) -> torch.Tensor:
    missing = width - x.shape[dim]
    if missing == 0:
        return x
    shape = list(x.shape)
    shape[dim] = missing
    return torch.cat([x, x.new_zeros(shape)], dim=dim)


def _mode(policy, logits: torch.Tensor) -> np.ndarray:
    """The distribution's mode, as SB3 takes it: argmax of the softmax, or round(sigmoid)."""
    if isinstance(policy.action_space, spaces.Discrete):
        return torch.argmax(torch.softmax(logits, dim=-1), dim=-1).cpu().numpy()
    return torch.round(torch.sigmoid(logits)).cpu().numpy()
