"""A behaviour-cloning warm start from the scripted roster (issue 14, item 4).

A fresh policy presses moves at random and spends its first minutes walking off the stage.
The scripted bots already approach, space, attack and recover; cloning them first gives PPO a
policy that fights from its first rollout (slippi-ai and AlphaStar start from human play the
same way). Three steps:

1. :func:`record_demonstrations`: the style bots play matches in the learner's seat of a
   :class:`~environment.envs.BrawlVecEnv`; at each decision a bot's keys are mapped to the
   nearest macro (``environment/macros.py``) and that macro, not the bot's own keys, is played.
2. :func:`policy_observations`: what the policy sees at those decisions, built as in training
   (the bare 64 values, or with the opponent-history window of ``user/env_wrappers.py``).
3. :func:`pretrain`: cross-entropy of the recorded macros under the policy, on contiguous
   chunks of decisions for the recurrent policies so the LSTM learns too;
   :func:`agreement` scores the result on envs held out of training.

Why the recorded matches are played with the macros and at the agent's decision rate:
the bots decide every frame in their own matches, but the macro policy decides every
``action_repeat`` frames and can only pick from the menu. Playing the mapped macro, held for
``action_repeat`` frames, keeps every recorded state one that the macro policy itself could
reach, so the labels never describe a situation that only the bot's finer control produces
(the covariate shift of behaviour cloning starts there). The price: a bot's state-dependent
logic is sampled every ``action_repeat`` frames, its per-match counters (BasedAgent's jump on
even frames, ``human``'s reaction delay) count decisions instead of frames, and key
combinations outside the menu are rounded to their nearest move, so the bots play somewhat
worse than in their own matches. ``Demonstrations.win_rates`` tells how much.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy

from environment import params as P
from environment.agents import Agent, make_agent
from environment.checkpoints import atomic_write_text
from environment.envs import BrawlVecEnv
from environment.macros import MACRO_NAMES, N_MACROS, macro_keys, nearest_macro
from environment.observation import OBS_HALF, OBS_SIZE
from environment.rewards import RewardManager
from environment.self_play import OpponentsCfg

log = logging.getLogger("train_agent")

# The style bots: each plays a distinct way (environment/roster.py); "random" and "constant" teach nothing.
STYLE_BOTS = ("aggressive", "counter", "zoner", "edge_guard", "heavy", "weapon_seeker", "based", "human")


# ==================================================================================
# === Recording ===
# ==================================================================================
@dataclass
class Demonstrations:
    """Decisions of scripted bots in the learner's seat, one column per env.

    :param obs: (T, n_envs, 64) float32, the learner's observation at each decision
    :param labels: (T, n_envs) int64, the macro played: ``nearest_macro`` of the bot's keys
    :param keys: (T, n_envs, 10) bool, the bot's own keys before the mapping
    :param episode_starts: (T, n_envs) bool, True at a match's first decision (SB3's meaning)
    :param env_bots: the bot that played each env
    :param opponents: (T, n_envs) int16, index into ``opponent_names`` of the match's opponent
    :param opponent_names: the opponent mix's names
    :param results: (env, opponent name, result) of every finished match, result as in
        ``info["episode"]["result"]`` (the learner's seat, i.e. the bot's)
    """

    obs: np.ndarray
    labels: np.ndarray
    keys: np.ndarray
    episode_starts: np.ndarray
    env_bots: tuple[str, ...]
    opponents: np.ndarray
    opponent_names: tuple[str, ...]
    action_repeat: int
    seed: int
    results: list[tuple[int, str, str]] = field(default_factory=list)

    @property  # shape accessors, as MatchState.n has (a pair the `duplicates` tool lists by shape)
    def n_decisions(self) -> int:
        return self.labels.shape[0]

    @property
    def n_envs(self) -> int:
        return self.labels.shape[1]

    def envs_of(self, bot: str) -> np.ndarray:
        return np.flatnonzero(np.array(self.env_bots) == bot)

    def label_distribution(self, envs: np.ndarray | None = None) -> dict[str, float]:
        """Share of each macro among the decisions (of ``envs``), commonest first."""
        labels = self.labels if envs is None else self.labels[:, envs]
        counts = np.bincount(labels.ravel(), minlength=N_MACROS)
        order = np.argsort(-counts, kind="stable")
        return {MACRO_NAMES[k]: float(counts[k] / labels.size) for k in order if counts[k]}

    @cached_property
    def since_start(self) -> np.ndarray:
        """(T, n_envs) decisions since the match began (0 at its first decision)."""
        since = np.zeros(self.labels.shape, np.int64)
        for t in range(1, self.n_decisions):
            since[t] = np.where(self.episode_starts[t], 0, since[t - 1] + 1)
        return since

    def save(self, path: str | Path) -> None:
        """One ``.npz`` file (arrays and names only, no pickle): record once, pretrain many policies."""
        results = np.array([(env, opponent, result) for env, opponent, result in self.results], str).reshape(-1, 3)
        np.savez_compressed(
            path,
            **{name: getattr(self, name) for name in ("obs", "labels", "keys", "episode_starts", "opponents")},
            env_bots=np.array(self.env_bots, str),
            opponent_names=np.array(self.opponent_names, str),
            meta=np.array([self.action_repeat, self.seed], np.int64),
            results=results,
        )

    @classmethod
    def load(cls, path: str | Path) -> Demonstrations:
        with np.load(path, allow_pickle=False) as f:
            return cls(
                **{name: f[name] for name in ("obs", "labels", "keys", "episode_starts", "opponents")},
                env_bots=tuple(f["env_bots"].tolist()),
                opponent_names=tuple(f["opponent_names"].tolist()),
                action_repeat=int(f["meta"][0]),
                seed=int(f["meta"][1]),
                results=[(int(env), opponent, result) for env, opponent, result in f["results"].tolist()],
            )

    def win_rates(self) -> dict[str, float]:
        """Each bot's share of its finished matches won, while playing through the macro menu."""
        rates = {}
        for bot in dict.fromkeys(self.env_bots):
            played = [result for env, _, result in self.results if self.env_bots[env] == bot]
            rates[bot] = sum(r == "win" for r in played) / len(played) if played else float("nan")
        return rates


def demonstrators(bots: list[str] | tuple[str, ...], seed: int) -> dict[str, Agent]:
    """One seeded agent per distinct bot name (an agent keeps its memory per env id)."""
    return {name: make_agent(name, seed=seed + 1009 * (k + 1)) for k, name in enumerate(dict.fromkeys(bots))}


def bot_keys(agents: dict[str, Agent], env_bots: tuple[str, ...], obs: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(n_envs, 10) bool: every env's bot's keys for ``obs``; env i is the bot's env id i (its memory slot)."""
    keys = np.zeros((len(obs), P.N_KEYS), bool)
    for name, agent in agents.items():
        rows = np.flatnonzero(np.asarray(env_bots) == name)
        if rows.size:
            keys[rows] = np.asarray(agent.predict_batch(obs[rows], starts[rows], rows)) > 0.5
    return keys


def demonstration_env(opponents, n_envs: int, action_repeat: int, max_timesteps: int, seed: int) -> BrawlVecEnv:
    """The matches the bots play: opponents drawn per match with equal weights, no rewards.

    Rewards are not needed for cloning, so the env gets a RewardManager without terms.
    """
    mix = OpponentsCfg({name: (1.0, name) for name in dict.fromkeys(opponents)})
    return BrawlVecEnv(n_envs, mix, RewardManager(), max_timesteps, seed, action_repeat)


def record_demonstrations(
    bots: list[str] | tuple[str, ...] = STYLE_BOTS,
    opponents: list[str] | tuple[str, ...] = STYLE_BOTS,
    n_envs: int = 64,
    decisions: int = 2000,
    action_repeat: int = 4,
    max_timesteps: int = P.MATCH_FRAMES,
    seed: int = 0,
) -> Demonstrations:
    """Scripted bots play ``decisions`` decisions in each of ``n_envs`` matches; their moves as macros.

    Env i is played by ``bots[i % len(bots)]`` for the whole recording (match after match);
    each match's opponent is drawn from ``opponents`` with equal weights. See the module
    docstring for why the env is stepped with the nearest macro rather than the bot's keys.

    :param max_timesteps: frames per match (the tournament's 2700 by default)
    :param seed: seeds the matches (match i with ``seed + i``), the opponents and the bots
    """
    env_bots = tuple(bots[i % len(bots)] for i in range(n_envs))
    agents = demonstrators(bots, seed)
    venv = demonstration_env(opponents, n_envs, action_repeat, max_timesteps, seed)
    shape = (decisions, n_envs)
    demos = Demonstrations(
        obs=np.zeros((*shape, OBS_SIZE), np.float32),
        labels=np.zeros(shape, np.int64),
        keys=np.zeros((*shape, P.N_KEYS), bool),
        episode_starts=np.zeros(shape, bool),
        env_bots=env_bots,
        opponents=np.zeros(shape, np.int16),
        opponent_names=tuple(venv.opponents.names),
        action_repeat=action_repeat,
        seed=seed,
    )
    obs, starts = venv.reset(), np.ones(n_envs, bool)
    for t in range(decisions):
        keys = bot_keys(agents, env_bots, obs, starts)
        labels = nearest_macro(keys)
        demos.obs[t], demos.keys[t], demos.labels[t], demos.episode_starts[t] = obs, keys, labels, starts
        demos.opponents[t] = venv.core.opponent_name  # the opponent of the match behind obs
        obs, _, starts, infos = venv.step(macro_keys(labels))
        demos.results += [
            (i, info["episode"]["opponent"], info["episode"]["result"])
            for i, info in enumerate(infos)
            if "episode" in info
        ]
    venv.close()
    return demos


# ==================================================================================
# === What the policy sees ===
# ==================================================================================
def policy_observations(
    demos: Demonstrations,
    sequence_length: int | None = None,
    times: np.ndarray | None = None,
    envs: np.ndarray | None = None,
) -> np.ndarray:
    """The policy's observations at the decisions ``(times, envs)``: shape ``broadcast + (D,)``.

    ``sequence_length`` None: the bare 64 values (the ``ppo`` and ``recurrent_ppo`` types).
    Otherwise the ``transformer_strategy`` input, as ``OpponentHistory`` builds it in training:
    the 64 values, then the opponent halves (values 32..63) of the last ``sequence_length``
    decisions, newest last, zeros before the match's first decision. ``times`` and ``envs``
    are broadcast index arrays (default: every decision, shape (T, n_envs)); windows are built
    only for the decisions asked for, since a whole recording's windows can fill gigabytes.
    """
    if times is None or envs is None:
        times, envs = np.meshgrid(np.arange(demos.n_decisions), np.arange(demos.n_envs), indexing="ij")
    times, envs = np.broadcast_arrays(np.asarray(times), np.asarray(envs))
    obs = demos.obs[times, envs]
    if sequence_length is None:
        return obs
    since = demos.since_start[times, envs]
    window = np.zeros((*times.shape, sequence_length, OBS_HALF), np.float32)
    for lag in range(min(sequence_length, demos.n_decisions)):
        valid = (lag <= since)[..., None]
        window[..., sequence_length - 1 - lag, :] = np.where(
            valid, demos.obs[np.maximum(times - lag, 0), envs, OBS_HALF:], 0.0
        )
    return np.concatenate([obs, window.reshape(*times.shape, -1)], axis=-1)


def history_length_of(policy: ActorCriticPolicy) -> int | None:
    """The opponent-history window a policy's observation space implies (None: bare observations)."""
    extra = int(np.prod(policy.observation_space.shape)) - OBS_SIZE
    if extra % OBS_HALF or extra < 0:
        raise ValueError(f"policy observations of {extra + OBS_SIZE} values are neither 64 nor 64 + k × 32")
    return extra // OBS_HALF or None


# ==================================================================================
# === Pretraining ===
# ==================================================================================
def split_envs(demos: Demonstrations, held_out: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train envs, held-out envs): a share of each bot's envs is held out, at least one when it has two.

    Split by env, not by decision: neighbouring decisions of one match are near copies, so a
    split by decision would score memory of the match, not play.
    """
    rng = np.random.default_rng(seed)
    held: list[int] = []
    for bot in dict.fromkeys(demos.env_bots):
        envs = demos.envs_of(bot)
        n = max(1, round(held_out * len(envs))) if len(envs) > 1 and held_out > 0 else 0
        held += rng.permutation(envs)[:n].tolist()
    held_arr = np.sort(np.array(held, np.int64))
    return np.setdiff1d(np.arange(demos.n_envs), held_arr), held_arr


def is_recurrent(policy: ActorCriticPolicy) -> bool:
    return hasattr(policy, "lstm_actor")


def _zero_lstm_state(policy: ActorCriticPolicy, n_seq: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The actor LSTM's (h, c) at zero for ``n_seq`` sequences: shape (n_layers, n_seq, hidden)."""
    n_layers, _, hidden = policy.lstm_hidden_state_shape
    zeros = torch.zeros(n_layers, n_seq, hidden, device=policy.device)
    return zeros, zeros.clone()


def _batch(
    policy: ActorCriticPolicy, demos: Demonstrations, envs: np.ndarray, n_seq: int, length: int, rng
) -> tuple[np.ndarray, np.ndarray]:
    """(times (n_seq, length), envs (n_seq, 1)) of a training batch, drawn from ``envs``.

    For a recurrent policy ``n_seq`` chunks of ``length`` contiguous decisions; for a
    feed-forward one as many decisions drawn one by one (chunks as rows of one), which
    decorrelates the batch.
    """
    length = min(length, demos.n_decisions)
    if not is_recurrent(policy):
        n_seq, length = n_seq * length, 1
    starts = rng.integers(0, demos.n_decisions - length + 1, n_seq)
    return starts[:, None] + np.arange(length), rng.choice(envs, n_seq)[:, None]


def _distribution(policy: ActorCriticPolicy, obs: torch.Tensor, starts: torch.Tensor, state):
    """The action distribution (and the LSTM state after it) along the actor's path only.

    A recurrent policy (``state`` is its actor LSTM's (h, c), one column per sequence) reads
    ``obs`` as sequence after sequence of equal length: sb3-contrib's ``_process_sequence``
    reshapes them to (n_seq, length, ...). A feed-forward one (``state`` None) reads rows.
    """
    if state is None:
        return policy.get_distribution(obs), None
    return policy.get_distribution(obs, state, starts)


def _log_probs(policy, demos, times, envs, history, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-probabilities of the labels, argmax == label) at the chunks ``(times, envs)``, flattened."""
    n_seq = times.shape[0]
    obs = policy_observations(demos, history, times, envs).reshape(-1, policy.observation_space.shape[0])
    obs_t = torch.as_tensor(obs, device=device)
    starts_t = torch.as_tensor(demos.episode_starts[times, envs].reshape(-1), dtype=torch.float32, device=device)
    state = _zero_lstm_state(policy, n_seq) if is_recurrent(policy) else None
    dist, _ = _distribution(policy, obs_t, starts_t, state)
    labels = torch.as_tensor(demos.labels[times, envs].reshape(-1), device=device)
    return dist.log_prob(labels), dist.distribution.probs.argmax(-1) == labels


def pretrain(
    policy: ActorCriticPolicy,
    demos: Demonstrations,
    *,
    seconds: float | None = None,
    epochs: float | None = None,
    batch_sequences: int = 64,
    chunk_length: int = 32,
    learning_rate: float = 1e-3,
    max_grad_norm: float = 1.0,
    held_out: float = 0.2,
    split_seed: int = 0,
    seed: int = 0,
    optimizer: torch.optim.Optimizer | None = None,
) -> dict[str, Any]:
    """Fit the policy's action head to the recorded macros (cross-entropy); returns the stats.

    Each step takes ``batch_sequences`` chunks of ``chunk_length`` contiguous decisions from the
    training envs. A recurrent policy (sb3-contrib's ``RecurrentActorCriticPolicy``, the
    ``recurrent_ppo`` and ``transformer_strategy`` types) runs its LSTM along each chunk from
    a zero state, resetting at match starts inside it, as PPO's own sequences do; a chunk of 32
    decisions (≈ 4 s of play at action repeat 4) is long enough for the LSTM to learn what to
    carry, and the zero start is what every match begins with. A feed-forward policy sees the
    same decisions as independent samples.

    Only the actor's path is evaluated (``get_distribution``, the path ``evaluate_actions``
    takes for log-probabilities), so the critic's own layers get no gradient and stay as they
    were; a shared features extractor (the transformer's) is trained with the actor. A fresh
    Adam is used unless ``optimizer`` is given (to continue a pretraining): the policy's own
    optimizer is left alone so PPO starts with clean moment estimates.

    :param seconds: train for this long; or ``epochs``: passes over the training decisions
    :param held_out: share of each bot's envs kept out of training and scored at the end
    :param split_seed: picks the held-out envs (:func:`split_envs`); keep it when continuing a
        pretraining so they stay unseen. ``seed`` draws the batches.
    :return: ``steps``, ``seconds``, ``train_loss`` and ``train_accuracy`` (mean of the last 20
        steps), ``held_out_accuracy`` (:func:`agreement`), ``held_out_commonest_share`` (the
        accuracy of always answering the commonest label), ``held_out_accuracy_per_bot``,
        ``label_distribution``, ``train_envs`` and ``held_out_envs``
    """
    if (seconds is None) == (epochs is None):
        raise ValueError("give exactly one of seconds or epochs")
    if not isinstance(policy.action_space, spaces.Discrete):
        raise TypeError(
            f"pretrain clones macro ids: the policy needs a Discrete action space, not {policy.action_space}"
        )
    rng = np.random.default_rng(seed)
    train_envs, test_envs = split_envs(demos, held_out, split_seed)
    history = history_length_of(policy)
    optimizer = optimizer or torch.optim.Adam([p for p in policy.parameters() if p.requires_grad], lr=learning_rate)
    per_step = batch_sequences * min(chunk_length, demos.n_decisions)
    max_steps = None if epochs is None else max(1, round(epochs * demos.n_decisions * len(train_envs) / per_step))
    losses, accuracies, t0, step = [], [], time.perf_counter(), 0
    policy.set_training_mode(True)
    while (max_steps is None or step < max_steps) and (seconds is None or time.perf_counter() - t0 < seconds):
        times, envs = _batch(policy, demos, train_envs, batch_sequences, chunk_length, rng)
        log_prob, correct = _log_probs(policy, demos, times, envs, history, policy.device)
        loss = -log_prob.mean()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], max_grad_norm)
        optimizer.step()
        losses.append(loss.item())
        accuracies.append(float(correct.float().mean()))
        step += 1
    elapsed = time.perf_counter() - t0
    policy.set_training_mode(False)
    return {
        "steps": step,
        "seconds": elapsed,
        "train_loss": float(np.mean(losses[-20:])),
        "train_accuracy": float(np.mean(accuracies[-20:])),
        **held_out_stats(policy, demos, test_envs),
        "label_distribution": demos.label_distribution(),
        "train_envs": train_envs.tolist(),
        "held_out_envs": test_envs.tolist(),
    }


def rounded_or_none(value: float, digits: int) -> float | None:
    """A number for warm_start.json: None (JSON null) where there is none, e.g. the win rate of a bot
    none of whose recorded matches finished; JSON has no NaN."""
    return None if math.isnan(value) else round(value, digits)


def held_out_stats(policy: ActorCriticPolicy, demos: Demonstrations, envs: np.ndarray) -> dict[str, Any]:
    """Agreement on ``envs`` overall and per bot, and the commonest label's share there (the bar to beat)."""
    if len(envs) == 0:
        return {
            "held_out_accuracy": float("nan"),
            "held_out_commonest_share": float("nan"),
            "held_out_accuracy_per_bot": {},
        }
    correct = predicted_labels(policy, demos, envs) == demos.labels[:, envs]
    bots = np.array(demos.env_bots)[envs]
    return {
        "held_out_accuracy": float(correct.mean()),
        "held_out_commonest_share": float(np.bincount(demos.labels[:, envs].ravel()).max() / correct.size),
        "held_out_accuracy_per_bot": {str(bot): float(correct[:, bots == bot].mean()) for bot in dict.fromkeys(bots)},
    }


@torch.no_grad()
def predicted_labels(
    policy: ActorCriticPolicy, demos: Demonstrations, envs: np.ndarray, block: int = 256
) -> np.ndarray:
    """(T, len(envs)) the policy's argmax macro at every decision of ``envs``, played as in a match.

    A recurrent policy runs through each env's whole recording with its state carried from
    decision to decision (zero at the first, reset at match starts), as it does in play.
    """
    envs = np.asarray(envs)
    policy.set_training_mode(False)
    state = _zero_lstm_state(policy, len(envs)) if is_recurrent(policy) else None
    history, out = history_length_of(policy), []
    for first in range(0, demos.n_decisions, block):
        times = np.arange(first, min(first + block, demos.n_decisions))
        # Sequence-major (env, time) order: what _process_sequence expects for n_seq = len(envs).
        grid_t, grid_e = times[None, :], envs[:, None]
        obs = policy_observations(demos, history, grid_t, grid_e).reshape(-1, policy.observation_space.shape[0])
        starts = demos.episode_starts[grid_t, grid_e].reshape(-1)
        dist, state = _distribution(
            policy,
            torch.as_tensor(obs, device=policy.device),
            torch.as_tensor(starts, dtype=torch.float32, device=policy.device),
            state,
        )
        out.append(dist.distribution.probs.argmax(-1).cpu().numpy().reshape(len(envs), len(times)).T)
    return np.concatenate(out, axis=0)


def agreement(policy: ActorCriticPolicy, demos: Demonstrations, envs: np.ndarray | None = None) -> float:
    """Share of decisions (of ``envs``, default all) where the policy's argmax macro is the recorded one.

    Pass ``pretrain``'s ``held_out_envs`` to score play the policy was not trained on.
    """
    envs = np.arange(demos.n_envs) if envs is None else np.asarray(envs)
    return float((predicted_labels(policy, demos, envs) == demos.labels[:, envs]).mean())


__all__ = [
    "STYLE_BOTS",
    "Demonstrations",
    "agreement",
    "bot_keys",
    "demonstration_env",
    "demonstrators",
    "history_length_of",
    "policy_observations",
    "predicted_labels",
    "pretrain",
    "record_demonstrations",
    "split_envs",
]


def warm_start(run) -> dict[str, Any]:
    """Behaviour-clone the style bots into the fresh policy (config ``warm_start``); logs and returns the stats.

    Its own Adam: PPO's optimizer state starts fresh. Seeded from training.seed, so a run repeats.
    """
    ws, seed = run.config["warm_start"], run.config["training"]["seed"]
    t0 = time.monotonic()
    demos = record_demonstrations(
        ws["bots"],
        ws["opponents"],
        ws["n_envs"],
        ws["decisions"],
        run.config["agent"]["action_repeat"],
        run.config["env"]["max_timesteps"],
        seed=seed,
    )
    recorded_s = time.monotonic() - t0
    stats = pretrain(run.model.policy, demos, seconds=ws["seconds"], learning_rate=ws["learning_rate"], seed=seed)
    summary = {
        "recorded_decisions": int(demos.labels.size),
        "record_seconds": round(recorded_s, 1),
        "pretrain_seconds": round(stats["seconds"], 1),
        "steps": stats["steps"],
        "held_out_accuracy": rounded_or_none(stats["held_out_accuracy"], 4),
        "held_out_commonest_share": rounded_or_none(stats["held_out_commonest_share"], 4),
        "demonstrator_win_rates": {k: rounded_or_none(v, 3) for k, v in demos.win_rates().items()},
    }
    atomic_write_text(run.run_dir / "warm_start.json", json.dumps(summary, indent=2))
    log.info(
        "Warm start: %s decisions of %s recorded in %.0f s; pretrained %.0f s (%s steps): held-out agreement "
        "%.0f%% (commonest move alone %.0f%%)",
        f"{summary['recorded_decisions']:,}",
        ", ".join(ws["bots"]),
        recorded_s,
        stats["seconds"],
        stats["steps"],
        100 * stats["held_out_accuracy"],
        100 * stats["held_out_commonest_share"],
    )
    return summary
