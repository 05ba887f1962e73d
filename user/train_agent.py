"""Train a Warehouse Brawl agent: transformer opponent-strategy encoder + RecurrentPPO (LSTM) self-play.

Run
    python user/train_agent.py                       # TRAIN_CONFIG ("auto": the CPU config when no GPU is found)
    python user/train_agent.py --config 10m          # pick another config by name
    python user/train_agent.py --set training.total_timesteps=200000 --set agent.ent_coef=0.02
    python user/train_agent.py --resume checkpoints/<run>      # continue an interrupted run
    python user/train_agent.py --mode eval --agent_path checkpoints/<run>   # eval/demo/league/... (user/modes.py)
    python user/train_agent.py --help                # every mode and flag

Switch configs by editing the one line ``TRAIN_CONFIG = ...`` below, or with ``--config``.

Outputs go to ``checkpoints/<config>__<seed>__<timestamp>/``: the checkpoint pairs
``rl_model_<N>_steps.zip`` + ``rl_model_<N>_steps_transformer_encoder.pth``,
``monitor.csv`` (SB3 Monitor format), ``reward_breakdown.csv``, ``behavior_metrics.csv``,
``evaluation_results.csv``, ``metrics.csv``, ``strategy_analysis.csv``, ``ratings.csv``,
``training_curves.png``, ``config.json``, ``training.log`` and a match video.

This file is the recipe, top to bottom: configs → config validation → device → models →
rewards → self-play wiring → callbacks → the training run → the training loop → CLI.
What it leans on lives beside it: ``config_tools.py`` (configs), ``agent_io.py`` (checkpoint files,
the trained agent in play), ``controls.py`` (schedules, opponent weighting), ``optim.py``, ``monitoring.py``
(logs, CSVs, evaluations), ``resume.py``, ``behavior_cloning.py``, ``plots.py`` and ``modes.py``.
"""

from __future__ import annotations

import argparse
import copy
import errno
import functools
import json
import logging
import math
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from gymnasium import spaces
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from environment.agents import agent_names, make_agent
from environment.checkpoints import (
    CheckpointError,
    CheckpointManifest,
    RunFolderLock,
    atomic_write_text,
    remove_stale_temp_files,
)
from environment.envs import BrawlVecEnv
from environment.evaluation import EloRatings, play_vs_opponents, result_list
from environment.matchmaking import SCHEDULE_DEFAULTS, OpponentSchedule
from environment.observation import OBS_HALF, OBS_SIZE, observation_bounds
from environment.rewards import (
    RewardManager,
    RewTerm,
    attack_spam,
    closing_distance,
    damage_interaction,
    danger_zone,
    distance_cost,
    edge_pressure,
    on_combo,
    on_drop,
    on_equip,
    on_knockout_dealt,
    on_knockout_taken,
    on_win,
    own_approach,
    sparse_reward_manager,
    too_many_keys,
    toward_weapon,
)
from environment.self_play import (
    OpponentsCfg,
    SaveHandler,
    SelfPlayHandler,
    SelfPlayLatest,
    SelfPlayRandom,
    SelfPlayRecent,
)
from environment.worker_vec_env import WorkerVecEnv
from user import agent_io, config_tools
from user.agent_io import (
    TransformerStrategyAgent,
    load_policy_weights,
    resolve_checkpoint,
    save_checkpoint_pair,
)
from user.behavior_cloning import warm_start
from user.config_tools import (
    ConfigError,
    apply_overrides,
    external_opponent_path,
    load_config_file,
    load_config_json,
    merge_config,
    with_absolute_opponent_paths,
    with_encoder_of_its_time,
)
from user.controls import admit_exploiter, log_opponent_schedule, sb3_schedule, schedule_value
from user.env_wrappers import (
    MacroActions,
    OpponentHistory,
    ScaleReward,
    history_observation_space,
    observation_scale,
    policy_action_space,
)
from user.modes import build_arg_parser, run_mode
from user.monitoring import (
    MATCH_FRAMES,
    DivergenceError,
    EpisodeLogCallback,
    MetricsRecorder,
    ProgressLineCallback,
    SanityAlerts,
    StopFlag,
    StrategyStats,
    clock,
    configure_sb3_logger,
    evaluate_run,
    finish_run,
    log_config,
    monitor_start_time,
    open_run_logs,
    setup_logging,
    tensorboard_dir,
)
from user.optim import GuardedAdam, LossScale, ScaleGradient, record_grad_norms
from user.resume import (
    capture_state,
    check_against_checkpoint,
    check_resumable_changes,
    is_disk_full,
    keep_snapshot,
    restore_latest,
    rng_state,
    save_checkpoint,
    set_rng_state,
    stop_for_full_disk,
)
from user.strategy_encoder import N_RELATIVE, StreamingConditionedExtractor, relative_features

log = logging.getLogger("train_agent")

# ==================================================================================
# === Configs ===
# ==================================================================================
# Keys that are SB3 / sb3-contrib arguments are spelled exactly as SB3 spells them.
_SHARED_AGENT_CONFIG: dict[str, Any] = {
    "type": "transformer_strategy",  # or "recurrent_ppo" (LSTM only) / "ppo" (MLP), for comparison
    # Transformer opponent-strategy encoder
    "latent_dim": 256,
    "num_heads": 8,
    "num_layers": 6,
    "sequence_length": 90,  # frames of opponent history (3 s at 30 FPS)
    # "streaming" (user/strategy_encoder.py): each frame's token is computed once, its attention
    # looking back `attention_window` frames per layer; the latent pools the newest
    # sequence_length - num_layers x (attention_window - 1) tokens, so it still sees exactly the
    # last sequence_length frames. ~40x fewer FLOPs per step than "full_window", the seed's
    # encoder (full attention over the whole window, re-encoded at every step; issue 15).
    "encoder": "streaming",
    "attention_window": 8,  # frames each layer's attention looks back over, itself included
    # LSTM policy (sb3-contrib RecurrentPPO): one LSTM shared by actor and critic
    "lstm_hidden_size": 512,
    "shared_lstm": True,
    "enable_critic_lstm": False,
    "net_arch": {"pi": [96, 96], "vf": [96, 96]},
    # What the policy outputs (user/env_wrappers.py): "keys", ten independent Bernoulli keys
    # (the seed's head), or "macro", one of environment/macros.py's 24 named moves. The matches,
    # the Agent API and exported bundles get ten keys either way. Published fighting-game agents
    # pick from a menu: argmax over independent keys holds any key whose probability passes 0.5
    # in every state (issue 14).
    "action_head": "keys",
    # Initial bias of the 10 key logits (the "keys" head): negative starts with keys mostly released
    # (sigmoid(-2) ≈ 12% pressed) instead of mashing all of them half the time, which
    # mostly walks a fresh agent off the stage.
    "initial_key_bias": 0.0,
    # Frames each chosen action is held (frame skip): the policy decides every
    # `action_repeat` frames, in training and in play. 1 = every frame. Larger values
    # see more game per PPO step and stretch gamma's horizon in game time
    # (0.99 per decision at repeat 4 ≈ 13 s instead of 3 s). One training step is then
    # `action_repeat` frames: total_timesteps, n_steps and save_freq count decisions.
    "action_repeat": 1,
    # Share of the training envs whose rollouts play the policy's most likely action instead of a
    # sampled one (recurrent types; 0 = all sampled, plain PPO). Argmax play can settle into a loop
    # that sampled play leaves at once (waiting at the edge of its ground in front of a bot that
    # stands still); rows that act greedily put those states in the rollouts, where the loop's
    # lack of reward lowers the looping action. Off-policy for those rows: PPO's clipping bounds it.
    # Measured at 0.125 on 3 seeds (technical guide §9, stop 29): fewer argmax draws, more falls,
    # a worse worst result; not in the recipe.
    "greedy_rollout_share": 0.0,
    # PPO. Sized for a GPU (issue 15): the seed's minibatch of 128 (640 minibatch passes per 8,192
    # samples) has a fixed cost per pass that alone is ~0.5 ms per step, 1.4 h per 10M steps on any
    # GPU (benchmarks/gpu_speed.py); 2,048 of 64 x 256 gives 80 passes per 16,384 samples
    # (4.9 gradient steps per 1,000 samples, inside the 4-8 of published fighting-game PPO agents,
    # issue 14) and a floor of ~0.05 ms. Learning at these sizes was not measured on a GPU.
    "n_steps": 256,
    "batch_size": 2048,
    "n_epochs": 10,
    "learning_rate": 2.5e-4,
    "clip_range": 0.2,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "ent_coef": 0.01,
    "vf_coef": 0.5,
    "max_grad_norm": 0.5,
}

# Weights of every reward term and signal (see `gen_reward_manager`).
_SHARED_REWARD_CONFIG: dict[str, Any] = {
    "type": "dense",  # "dense" (shaped), "sparse" (outcomes only) or "curriculum" (dense → sparse)
    # What PPO sees is reward × scale (the CSVs keep the raw values). Returns of ±50 make the
    # value loss dominate the clipped gradient and starve the policy; 0.1 keeps them near ±5.
    "scale": 1.0,
    "terms": {
        "damage_interaction": 1.0,  # (dealt − taken) / 140 per frame
        "damage_taken": 0.0,  # −taken / 140 per frame, on top of damage_interaction: makes getting hit cost more
        "danger_zone": 0.5,  # −1/s while low near the bottom blast zone
        "attack_spam": 0.1,  # −1/s while in the attack state
        "too_many_keys": 0.2,  # −1/s while holding more than 3 keys
        "closing_distance": 0.05,  # distance to the opponent closed this frame (by either player)
        "own_approach": 0.0,  # distance the learner's own movement closed this frame
        "distance_cost": 0.0,  # −1/s per unit of distance to the opponent beyond 3
        "edge_pressure": 0.2,  # +1/s scaled by how close the opponent is to a blast zone
        "toward_weapon": 0.05,  # distance to the nearest weapon closed while unarmed
    },
    "signals": {
        "win": 50.0,  # ±50 at the end of the match
        "knockout": 8.0,  # +8 per stock taken
        "knocked_out": -8.0,  # −8 per stock lost
        "combo": 5.0,  # +5 per hit on a stunned opponent
        "equip_hammer": 10.0,
        "equip_spear": 5.0,
        "drop": -15.0,  # a penalty: on_drop is +1 per drop, so this weight must be <= 0
    },
    # CurriculumRewardScheduler: weight moves from dense to sparse as the
    # evaluation win rate against BasedAgent rises from `start` to `end`.
    "curriculum": {"start_win_rate": 0.3, "end_win_rate": 0.8},
}

_SHARED_SELF_PLAY_CONFIG: dict[str, Any] = {
    "handler": "random",  # which snapshot to play: "random", "recent" or "latest"
    "recent_k": 5,
    # Snapshots kept loaded in memory: None = the whole pool (each read from disk once; issue 15),
    # or a number to bound memory (each 10m-size snapshot holds ~5M parameters, ~20 MB in fp32).
    "cache_size": None,
    # name: (weight, entry). A "self_play" entry of None is filled with the self-play
    # handler; other entries are registry names of scripted agents.
    "opponents": {"self_play": (0.8, None), "based": (0.15, "based"), "constant": (0.05, "constant")},
}

_SHARED_ENV_CONFIG: dict[str, Any] = {
    "n_envs": 64,  # matches stepped together (64: the rollout's policy call is shared by more steps)
    # Worker processes stepping the matches (environment/worker_vec_env.py, shared memory):
    # 1 = in the training process. More pays only with spare cores (benchmarks/train_speed.py
    # --sweep --workers 1,2,4 measures it); scripted opponents and dense/sparse rewards only.
    "workers": 1,
    "max_timesteps": MATCH_FRAMES,  # frames per match: the game's default, 2700 (90 s)
    # Share of training matches that start with both players at random points over the two grounds
    # instead of the tournament's two start points (evaluation always uses those): the learner then
    # meets standing opponents at places and distances that the fixed starts rarely make.
    "scattered_starts": 0.0,
}

_SHARED_TRAINING_CONFIG: dict[str, Any] = {
    "total_timesteps": 10_000_000,
    "seed": 0,
    "device": "auto",  # "auto" (CUDA → MPS → CPU), "cuda", "mps" or "cpu"
    "save_freq": 100_000,  # snapshot every this many steps (at the next rollout boundary)
    "max_saved": 100,  # snapshots kept on disk (the newest, plus the best by the evaluation's headline)
    "save_path": "checkpoints",
    "run_name": None,  # default: <config>__<seed>__<timestamp>
    "debug_csvs": True,  # reward_breakdown.csv and behavior_metrics.csv
    "progress_interval_s": 10,  # plain progress line when stdout is not a terminal
    "final_video": True,  # MP4 of the trained agent against BasedAgent at the end
    "min_free_gb": 1.0,  # a save that leaves less free disk than this stops the run (exit 2; --resume)
    # Start from another run's policy weights (a checkpoint .zip or run folder), e.g. curriculum
    # stage 2 from stage 1: --set training.init_from=checkpoints/<stage-1 run>. Weights only.
    "init_from": None,
    # A non-finite loss, gradient or parameter: "stop" with a clear error, or "rollback"
    # to the last good checkpoint with the learning rate × rollback_lr_factor.
    "on_divergence": "stop",
    "rollback_lr_factor": 0.5,
    "max_rollbacks": 3,
    # Mixed precision for the transformer and the LSTM on CUDA: "fp32", "bf16" or "fp16".
    # bf16 needs an Ampere or newer GPU (a T4 has no bf16 tensor cores: use fp16 there);
    # fp16 runs with dynamic loss scaling (user/optim.py LossScale). CPU and MPS run fp32 only.
    "precision": "fp32",
    "compile": False,  # torch.compile the full-window strategy encoder (CUDA or CPU); not the streaming one
}

_SHARED_EVAL_CONFIG: dict[str, Any] = {
    "eval_freq": 100_000,  # steps between evaluations (at the next rollout boundary)
    "matches_per_opponent": 10,
    "max_timesteps": MATCH_FRAMES,
    "opponents": "roster",  # "roster" (every scripted agent) or a list of registry names
    "snapshot_matches": 4,  # matches against each of the newest snapshots, for their Elo ratings
    "snapshot_opponents": 3,
    "alert_window": 100,  # episodes over which a reward term that never fires raises an alert
    "entropy_floor": 0.5,  # policy entropy (nats, summed over the 10 keys) below this is a collapse
}

# Controls that strong self-play trainers add. All off or neutral by default, so the
# seed configs train exactly as without them.
_SHARED_CONTROLS_CONFIG: dict[str, Any] = {
    # Schedules over training progress p = steps / total_timesteps (0 → 1). None keeps the
    # agent's constant value; else {"kind": "constant" | "linear" | "cosine", "start": x, "end": y}.
    "schedules": {
        "learning_rate": None,
        "ent_coef": None,
        "clip_range": None,
        # Self-play sampling temperature (random handler): 0 = uniform over snapshots,
        # larger = favour recent ones, e.g. {"kind": "linear", "start": 0, "end": 3}.
        "self_play_temperature": None,
        # agent.greedy_rollout_share over training, e.g. {"kind": "linear", "start": 0, "end": 0.25}:
        # greedy rows late, once the policy has loops of its own, and none while it still explores.
        # Measured at exactly that on one seed (technical guide §9, stop 30): argmax play drew and
        # fell more than with no greedy rows; not in the recipe.
        "greedy_rollout_share": None,
    },
    # Opponent weighting, updated after every evaluation (the self-play share stays fixed):
    #   "off"               the weights in self_play.opponents
    #   "inverse_win_rate"  bot weight ∝ max(1 − win rate, floor) within the bots' share
    #   "pfsp_hard"         prioritized fictitious self-play, f(x) = (1 − x)^pfsp_power for bots
    #                       and, within the self-play share, for snapshots (x = P[win] against it)
    #   "pfsp_variance"     f(x) = x(1 − x): opponents the agent beats about half the time
    # pool "roster" adds every scripted bot to the mix (sharing the bots' weight).
    "opponent_weighting": {"mode": "off", "floor": 0.05, "pfsp_power": 2.0, "pool": "mix"},
    # Main-exploiter phases (AlphaStar): every `every_updates` PPO updates (0 = never), train a
    # fresh ("fresh") or forked ("fork") agent only against the current main agent for `steps`;
    # its snapshot joins the opponent pool when it beats main in > win_threshold of eval_matches.
    "exploiter": {"every_updates": 0, "steps": 50_000, "init": "fork", "win_threshold": 0.55, "eval_matches": 8},
    # The opponent schedule (environment/matchmaking.py, issue 14): when enabled, the scripted
    # opponents are its groups and permanent bots, weighted from the training matches' outcomes
    # (gated curriculum, priority with a floor and cap per bot, a verification slice); the
    # bots of self_play.opponents are replaced, its self_play entry keeps its share.
    # Its groups are the public roster from easy to hard, plus the constant-action bots the cpu
    # recipe's warm-started agent drew with; `--set controls.opponent_schedule.enabled=true` is enough.
    "opponent_schedule": {
        **SCHEDULE_DEFAULTS,
        "enabled": False,
        "groups": [
            ["constant", "random", "based"],
            ["aerial", "heavy", "weapon_seeker", "human"],
            ["aggressive", "counter", "edge_guard", "zoner"],
        ],
        "permanent": ["hold:light_neutral", "hold:heavy_down", "hold:heavy_neutral"],
    },
}


# Behaviour cloning before PPO (user/behavior_cloning.py): the style bots play in the learner's
# seat through the macro menu, and the fresh policy learns their moves for `seconds` (0 = off).
# Needs agent.action_head "macro". A new run only: --resume and init_from skip it.
_SHARED_WARM_START_CONFIG: dict[str, Any] = {
    "seconds": 0.0,
    "bots": ["aggressive", "edge_guard", "zoner", "counter"],  # the demonstrators
    "opponents": ["aggressive", "counter", "zoner", "edge_guard", "heavy", "weapon_seeker", "based", "human"],
    "n_envs": 64,
    "decisions": 2000,  # per env: 64 x 2000 = 128k decisions, ~40 s to record on one core
    "learning_rate": 1e-3,
}


_BASE_CONFIG: dict[str, Any] = {
    "name": "base",
    "agent": _SHARED_AGENT_CONFIG,
    "reward": _SHARED_REWARD_CONFIG,
    "self_play": _SHARED_SELF_PLAY_CONFIG,
    "env": _SHARED_ENV_CONFIG,
    "training": _SHARED_TRAINING_CONFIG,
    "eval": _SHARED_EVAL_CONFIG,
    "controls": _SHARED_CONTROLS_CONFIG,
    "warm_start": _SHARED_WARM_START_CONFIG,
}

# The fighter recipe (issue 14; the technical guide §9 has the measured path), measured on the
# `cpu` config and carried into every named config at its own sizes, so that a GPU run trains a
# fighter too (at the GPU sizes its learning was not measured: no GPU was lent):
# - the macro head: one of 24 named moves per decision instead of ten independent keys, whose
#   argmax held k in every state;
# - a decision every 4 frames and gamma 0.97: a 3-s half-life (0.99 at every frame was 9 s);
# - a warm start: 150 s of behaviour cloning of four style bots played through the macro menu
#   (held-out agreement ~70%); without it the same PPO run beat 2-3 of the 11 bots after 3.5M
#   steps, with it 11 of 11 after 1M (a new run only: --resume and init_from skip it);
# - a feed-forward critic on the shared features: sb3-contrib gives a shared-LSTM critic
#   `latent_pi.detach()`, so its value loss trains only a small MLP head (explained variance
#   0.02); on the features it reaches ~0.7 within 1M steps;
# - the opponent schedule over the whole roster in three groups, with the constant-action bots
#   the warm-started agent drew with kept as permanent opponents, and 20% self-play;
# - rewards: damage counts 10x, attacking untaxed, weapon pickups and drops pay nothing (random h
#   presses made them noise), scale 0.1; the approach is paid by `own_approach` (the learner's
#   own step toward the opponent, on a ground), not `closing_distance` (closed by either player,
#   which taught argmax play to wait for bots that walk in), and `distance_cost` 0.6 prices standing
#   far away, so waiting at its ground's edge for a bot that never comes costs (at 0.2 argmax play
#   waited there through half its matches against a standing bot on one seed; at 0.6 still up to
#   16% on some);
# - a quarter of the training matches start both players at random points over the grounds
#   (`env.scattered_starts` 0.25; evaluation and the tournament keep ±5), so the learner meets bots
#   that stand still on its own ground, behind it and at short range, not only across the gap (on
#   3 seeds the worst seed was better and falls fewer; the fresh clone met every target).
# Each was chosen by the worst result over every bot on 3 seeds (technical guide §9, "Seed to
# seed").
_FIGHTER_RECIPE: dict[str, Any] = {
    "agent": {
        "action_head": "macro",
        "action_repeat": 4,
        "gamma": 0.97,
        "ent_coef": 0.01,
        "shared_lstm": False,
        "enable_critic_lstm": False,
    },
    "reward": {
        "scale": 0.1,
        "terms": {
            "damage_interaction": 10.0,
            "closing_distance": 0.0,
            "own_approach": 1.0,
            "distance_cost": 0.6,
            "attack_spam": 0.0,
            "toward_weapon": 0.0,
        },
        "signals": {"equip_hammer": 0.0, "equip_spear": 0.0, "drop": 0.0},
    },
    # The bots come from controls.opponent_schedule; this mix gives self-play its 20%.
    "self_play": {"opponents": {"self_play": (0.2, None), "based": (0.8, "based")}},
    "controls": {"opponent_schedule": {"enabled": True}},
    "warm_start": {"seconds": 150.0},
    "env": {"scattered_starts": 0.25},
}
_RECIPE_BASE_CONFIG = merge_config(_BASE_CONFIG, _FIGHTER_RECIPE)

# Each named config is a deep copy of its base with only what differs (merge_config): no two
# configs share a nested dict, and a key the base lacks is an error.
# The 50k test run and the 10M run share every hyperparameter (a test asserts it).
TRAIN_CONFIG_TEST = merge_config(
    _RECIPE_BASE_CONFIG,
    {
        "name": "test",
        "training": {"total_timesteps": 50_000, "save_freq": 5_000, "max_saved": 10, "debug_csvs": True},
        "eval": {"eval_freq": 10_000},
    },
)
# Evaluations every 5M steps: one costs ~22 s however fast the GPU (a policy call per frame of 2,700-frame
# matches against the roster and the Elo snapshots in one pass, the scripted bots and the engine on the
# CPU; benchmarks/gpu_speed.py), against a projected ~0.30 h for the 10M steps on a T4, so the two of
# them take 4.1% of the run (every 100k: ~200%).
TRAIN_CONFIG_10M = merge_config(
    _RECIPE_BASE_CONFIG,
    {
        "name": "10m",
        "training": {"total_timesteps": 10_000_000, "save_freq": 100_000, "max_saved": 100},
        "eval": {"eval_freq": 5_000_000},
    },
)
# Curriculum: stage 1 learns to hit a standing target; stage 2 (from stage 1's weights, so with no
# warm start) faces the scripted roster through the opponent schedule, no self-play.
TRAIN_CONFIG_CURRICULUM = merge_config(
    TRAIN_CONFIG_10M,
    {
        "name": "curriculum",
        "self_play": {"opponents": {"constant": (1.0, "constant")}},
        "controls": {"opponent_schedule": {"enabled": False}},  # stage 1 is ConstantAgent alone
        "training": {"total_timesteps": 1_000_000},
        "eval": {"eval_freq": 500_000},  # short stages: every 500k (10m's 5M would never come)
    },
)
TRAIN_CONFIG_CURRICULUM_STAGE2 = merge_config(
    TRAIN_CONFIG_10M,
    {
        "name": "curriculum_stage2",
        "self_play": {"opponents": {"based": (1.0, "based")}},
        "training": {"total_timesteps": 3_000_000},
        "eval": {"eval_freq": 500_000},
    },
)
# The same agent type at small dimensions, for machines without a GPU: what `bash run.sh train`
# runs there, sized to finish within 30 minutes on 2 cores (install included). On top of the
# fighter recipe above, what its sizes need (issue 14):
# - an update that moves the policy: minibatches of 512 x 3 epochs = 48 gradient steps per
#   8,192 samples (5.9 per 1,000), approx-KL 0.01-0.02, clip fraction 0.07-0.15;
# - a cheap encoder (sequence_length 8, d 32) and an LSTM of 64;
# - "latest": one snapshot opponent at a time. Each distinct snapshot in play costs a policy
#   forward every frame; "random" over a growing pool slowed a run from 4,400 to 2,900 steps/s.
TRAIN_CONFIG_CPU = merge_config(
    _RECIPE_BASE_CONFIG,
    {
        "name": "cpu",
        "agent": {
            "latent_dim": 32,
            "num_heads": 2,
            "num_layers": 1,
            "sequence_length": 8,
            "attention_window": 4,  # 1 layer: tokens see 4 frames, the latent pools the newest 5
            "lstm_hidden_size": 64,
            "net_arch": {"pi": [64, 64], "vf": [64, 64]},
            "n_steps": 64,
            "batch_size": 512,
            "n_epochs": 3,
            "learning_rate": 3e-4,
        },
        "env": {"n_envs": 128},
        "self_play": {"handler": "latest"},
        "training": {"total_timesteps": 3_000_000, "save_freq": 500_000, "max_saved": 20},
        "eval": {"eval_freq": 1_000_000, "matches_per_opponent": 10},
    },
)

CONFIGS: dict[str, dict[str, Any]] = {
    c["name"]: c
    for c in (
        TRAIN_CONFIG_TEST,
        TRAIN_CONFIG_10M,
        TRAIN_CONFIG_CURRICULUM,
        TRAIN_CONFIG_CURRICULUM_STAGE2,
        TRAIN_CONFIG_CPU,
    )
}

# The config that `bash run.sh train` and a bare `python user/train_agent.py` run (--config NAME picks
# another). "auto": TRAIN_CONFIG_TEST when a GPU (CUDA or Apple MPS) is found, else TRAIN_CONFIG_CPU,
# which is sized to finish on a 2-core machine. Or name one yourself, e.g. TRAIN_CONFIG = TRAIN_CONFIG_10M.
TRAIN_CONFIG: dict[str, Any] | str = "auto"


# ==================================================================================
# === Config validation ===
# ==================================================================================
def validate_config(config: dict) -> dict:
    """Check a config before anything trains (user/config_tools.py); raises ConfigError naming the key."""
    return config_tools.validate_config(config, _BASE_CONFIG)


# ==================================================================================
# === Device ===
# ==================================================================================
T4_CLASS_NAMES = ("T4", "A10G", "L4", "P100", "V100")


def pick_device(preference: str = "auto", announce: bool = True) -> torch.device:
    """CUDA, then MPS, then CPU; prints what it found and tunes torch for it."""
    if preference == "auto":
        if torch.cuda.is_available():
            preference = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            preference = "mps"
        else:
            preference = "cpu"
    if preference.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("training.device is 'cuda' but torch sees no CUDA GPU (install the CUDA build of torch)")
    device = torch.device(preference)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick the fastest kernels
        props = torch.cuda.get_device_properties(device)
        if announce:
            log.info(
                "Device: CUDA %s, %.1f GiB VRAM, CUDA %s, cuDNN %s; cudnn.benchmark on",
                props.name,
                props.total_memory / 2**30,
                torch.version.cuda,
                torch.backends.cudnn.version(),
            )
            if any(name in props.name for name in T4_CLASS_NAMES):
                log.info("Recognised a T4-class GPU: the 10M config fits its 16 GB (see T4_TRAINING_GUIDE.md)")
    elif device.type == "cpu":
        # All cores by default; OMP_NUM_THREADS overrides (e.g. 1 when several runs share a machine,
        # where competing torch thread pools slow each other down many times over).
        threads = int(os.environ.get("OMP_NUM_THREADS") or 0) or max(1, os.cpu_count() or 1)
        torch.set_num_threads(threads)
        if announce:
            log.info("Device: CPU (%s, %d threads); no GPU found", platform.processor() or platform.machine(), threads)
    elif announce:
        log.info("Device: Apple MPS")
    return device


# ==================================================================================
# === Models ===
# ==================================================================================
def wrap_training_env(venv: BrawlVecEnv, config: dict) -> tuple[Any, OpponentHistory | None]:
    """What the policy trains on: macro ids mapped to keys (the macro head), opponent history
    (transformer) and reward scaling around the match VecEnv, with float-stored key actions
    (the keys head). Returns (env, the history wrapper or None)."""
    macro = config["agent"]["action_head"] == "macro"
    inner = MacroActions(venv) if macro else venv
    history = OpponentHistory(inner, config["agent"]["sequence_length"]) if uses_history(config["agent"]) else None
    env = history or inner
    if config["reward"]["scale"] != 1.0:
        env = ScaleReward(env, config["reward"]["scale"])
    env.action_space = policy_action_space(config["agent"]["action_head"])
    return env, history


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """Fixed sin/cos position codes (Vaswani et al. 2017), shape (length, dim)."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    codes = torch.zeros(length, dim)
    codes[:, 0::2] = torch.sin(position * freq)
    codes[:, 1::2] = torch.cos(position * freq[: dim // 2])
    return codes


class TransformerStrategyEncoder(nn.Module):
    """Encodes the opponent's recent frames into a strategy latent.

    per-frame Linear(32 → d) + LayerNorm + ReLU → + sinusoidal positions →
    N-layer TransformerEncoder → attention pooling (a learned score per frame,
    softmaxed, so it learns which frames matter) → 2-layer MLP → latent (d).
    """

    def __init__(
        self,
        frame_dim: int = OBS_HALF,
        latent_dim: int = 256,
        num_heads: int = 8,
        num_layers: int = 6,
        sequence_length: int = 90,
    ):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(frame_dim, latent_dim), nn.LayerNorm(latent_dim), nn.ReLU())
        self.register_buffer("positions", sinusoidal_positions(sequence_length, latent_dim), persistent=False)
        layer = nn.TransformerEncoderLayer(
            latent_dim, num_heads, dim_feedforward=2 * latent_dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.transformer = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.pool_score = nn.Linear(latent_dim, 1)
        self.head = nn.Sequential(nn.Linear(latent_dim, latent_dim), nn.ReLU(), nn.Linear(latent_dim, latent_dim))

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """frames (B, L, 32) → (latent (B, d), tokens (B, L, d), pooling weights (B, L))."""
        tokens = self.transformer(self.embed(frames) + self.positions)
        weights = torch.softmax(self.pool_score(tokens).squeeze(-1), dim=-1)
        pooled = (weights.unsqueeze(-1) * tokens).sum(dim=1)
        return self.head(pooled), tokens, weights


class ScaledObservation(BaseFeaturesExtractor):
    """The 64 observation values scaled to about [-1, 1] (for the ppo / recurrent_ppo types)."""

    def __init__(self, observation_space: spaces.Box):
        super().__init__(observation_space, features_dim=OBS_SIZE)
        self.register_buffer("scale", torch.as_tensor(observation_scale()), persistent=False)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return observations[:, :OBS_SIZE] / self.scale


class TransformerConditionedExtractor(BaseFeaturesExtractor):
    """Features = the current observation fused with the opponent's strategy (``agent.encoder:
    full_window``, the seed's; ``StreamingConditionedExtractor`` is the default).

    The current observation (embedded) cross-attends to the strategy latent and
    the encoder's per-frame tokens; the attended context, the observation
    embedding and the latent are fused by a linear layer. The encoder trains end
    to end with PPO through this extractor.
    """

    def __init__(
        self,
        observation_space: spaces.Box,
        latent_dim: int = 256,
        num_heads: int = 8,
        num_layers: int = 6,
        sequence_length: int = 90,
    ):
        super().__init__(observation_space, features_dim=latent_dim)
        self.sequence_length = sequence_length
        scale = torch.as_tensor(observation_scale())
        self.register_buffer("scale", scale, persistent=False)
        self.register_buffer("frame_scale", scale[OBS_HALF:], persistent=False)
        self.obs_embed = nn.Sequential(
            nn.Linear(OBS_SIZE + N_RELATIVE, latent_dim), nn.LayerNorm(latent_dim), nn.ReLU()
        )
        self.encoder = TransformerStrategyEncoder(OBS_HALF, latent_dim, num_heads, num_layers, sequence_length)
        self.cross_attention = nn.MultiheadAttention(latent_dim, num_heads, batch_first=True)
        self.fuse = nn.Sequential(nn.Linear(3 * latent_dim, latent_dim), nn.ReLU())
        self.last_latent: torch.Tensor | None = None  # for strategy analysis and logging
        self.last_pool_weights: torch.Tensor | None = None
        self.autocast_dtype: torch.dtype | None = None  # bf16 / fp16 on CUDA (training.precision)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        if self.autocast_dtype is None:
            return self._features(observations)
        with torch.autocast("cuda", dtype=self.autocast_dtype):
            return self._features(observations).float()

    def _features(self, observations: torch.Tensor) -> torch.Tensor:
        batch = observations.shape[0]
        scaled = observations[:, :OBS_SIZE] / self.scale
        current = self.obs_embed(torch.cat([scaled, relative_features(scaled)], dim=-1))
        frames = observations[:, OBS_SIZE:].reshape(batch, self.sequence_length, OBS_HALF) / self.frame_scale
        latent, tokens, pool_weights = self.encoder(frames)
        memory = torch.cat([latent.unsqueeze(1), tokens], dim=1)
        context, _ = self.cross_attention(current.unsqueeze(1), memory, memory, need_weights=False)
        self.last_latent = latent.detach()
        self.last_pool_weights = pool_weights.detach()
        return self.fuse(torch.cat([current, context.squeeze(1), latent], dim=-1))


STRATEGY_EXTRACTORS = (StreamingConditionedExtractor, TransformerConditionedExtractor)


def uses_history(agent_config: dict) -> bool:
    return agent_config["type"] == "transformer_strategy"


def policy_kwargs_for(agent_config: dict) -> dict[str, Any]:
    """policy_kwargs for the configured agent type (architecture only)."""
    a = agent_config
    kwargs: dict[str, Any] = {
        "net_arch": copy.deepcopy(a["net_arch"]),
        "optimizer_class": GuardedAdam,
        # fused: one kernel updates every parameter (3x faster than foreach on a small CPU net,
        # where the Adam step was a third of a PPO minibatch).
        "optimizer_kwargs": {"max_grad_norm": a["max_grad_norm"], "eps": 1e-5, "fused": True},
    }
    if a["type"] == "transformer_strategy":
        sizes = {k: a[k] for k in ("latent_dim", "num_heads", "num_layers", "sequence_length")}
        if a["encoder"] == "streaming":
            kwargs["features_extractor_class"] = StreamingConditionedExtractor
            kwargs["features_extractor_kwargs"] = {**sizes, "attention_window": a["attention_window"]}
        else:
            kwargs["features_extractor_class"] = TransformerConditionedExtractor
            kwargs["features_extractor_kwargs"] = sizes
    else:
        kwargs["features_extractor_class"] = ScaledObservation
    if a["type"] in ("transformer_strategy", "recurrent_ppo"):
        kwargs.update(
            lstm_hidden_size=a["lstm_hidden_size"],
            n_lstm_layers=1,
            shared_lstm=a["shared_lstm"],
            enable_critic_lstm=a["enable_critic_lstm"],
        )
    return kwargs


def policy_observation_space(agent_config: dict) -> spaces.Box:
    """What the policy sees: the 64 values, plus the opponent history for the transformer."""
    if uses_history(agent_config):
        return history_observation_space(agent_config["sequence_length"])
    low, high = observation_bounds()
    return spaces.Box(low=low, high=high, dtype=np.float32)


class GreedyRowsDistribution:
    """What forward() needs of an SB3 distribution, with the most likely action on the greedy rows.

    A wrapper, not a patch: SB3 policies reuse one distribution object for every call.
    """

    def __init__(self, distribution, rows: torch.Tensor):
        self.distribution, self.rows = distribution, rows

    def get_actions(self, deterministic: bool = False) -> torch.Tensor:
        sampled = self.distribution.get_actions(deterministic)
        rows = self.rows.reshape(-1, *[1] * (sampled.dim() - 1))  # the keys head's actions are (n, 10)
        return torch.where(rows, self.distribution.mode(), sampled)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return self.distribution.log_prob(actions)  # PPO stores the policy's probability of the greedy move


class BrawlLstmPolicy(RecurrentActorCriticPolicy):
    """sb3-contrib's LSTM policy, with the LSTM optionally under CUDA autocast (bf16/fp16).

    Only the recurrent core runs in low precision; its outputs are cast back to
    float32, so the action and value heads and the PPO losses stay in fp32.
    """

    autocast_dtype: torch.dtype | None = None
    loss_scale: LossScale | None = None  # fp16: gradients scaled from the outputs back (user/optim.py)
    # Rollout rows (vec-env indices) that play their most likely action instead of a sampled one
    # (agent.greedy_rollout_share); None: every row samples. Only forward() reads it, and SB3
    # calls forward() only to collect rollouts (predict() and evaluation use get_distribution()).
    greedy_rows: torch.Tensor | None = None
    _acting_greedily = False

    def forward(self, obs, lstm_states, episode_starts, deterministic=False):
        self._acting_greedily = self.greedy_rows is not None and not deterministic
        try:
            return super().forward(obs, lstm_states, episode_starts, deterministic)
        finally:
            self._acting_greedily = False

    def _get_action_dist_from_latent(self, latent_pi):
        distribution = super()._get_action_dist_from_latent(latent_pi)
        if not self._acting_greedily:
            return distribution
        rows = self.greedy_rows
        if rows.shape[0] != latent_pi.shape[0]:
            raise ValueError(f"greedy_rows names {rows.shape[0]} rows but the batch has {latent_pi.shape[0]}")
        return GreedyRowsDistribution(distribution, rows)

    def evaluate_actions(self, obs, actions, lstm_states, episode_starts):
        values, log_prob, entropy = super().evaluate_actions(obs, actions, lstm_states, episode_starts)
        if self.loss_scale is None or not torch.is_grad_enabled():
            return values, log_prob, entropy
        scale = self.loss_scale.scale
        scaled = [None if t is None else ScaleGradient.apply(t, scale) for t in (values, log_prob, entropy)]
        return tuple(scaled)

    def _process_sequence(self, features, lstm_states, episode_starts, lstm):  # shadows the staticmethod
        if self.autocast_dtype is None:
            return RecurrentActorCriticPolicy._process_sequence(features, lstm_states, episode_starts, lstm)
        with torch.autocast("cuda", dtype=self.autocast_dtype):
            out, (h, c) = RecurrentActorCriticPolicy._process_sequence(features, lstm_states, episode_starts, lstm)
        return out.float(), (h.float(), c.float())


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def set_greedy_rows(policy: BrawlLstmPolicy, share: float, n_envs: int) -> None:
    """The first ``round(share * n_envs)`` rollout rows play their most likely move (none at 0)."""
    greedy = round(share * n_envs)
    policy.greedy_rows = torch.arange(n_envs, device=policy.device) < greedy if greedy else None


def apply_precision_and_compile(policy, training_config: dict) -> None:
    """Turn on autocast for the encoder and LSTM, and torch.compile for the encoder, as configured."""
    dtype = PRECISIONS[training_config["precision"]]
    extractor = getattr(policy, "features_extractor", None)
    if dtype is not None:
        if isinstance(policy, BrawlLstmPolicy):
            policy.autocast_dtype = dtype
        if dtype == torch.float16 and isinstance(policy, BrawlLstmPolicy):
            # fp16's narrow exponent underflows small gradients: dynamic loss scaling, shared by the
            # policy (which scales) and GuardedAdam (which unscales, skips overflowed steps).
            policy.loss_scale = policy.optimizer.loss_scale = LossScale()
        if isinstance(extractor, STRATEGY_EXTRACTORS):
            extractor.autocast_dtype = dtype
    if training_config["compile"] and isinstance(extractor, TransformerConditionedExtractor):
        extractor.encoder.compile()  # in place: parameter names (and checkpoints) stay the same


# Agent keys passed straight to the SB3 algorithm.
_SB3_ALGO_KEYS = (
    "n_steps",
    "batch_size",
    "n_epochs",
    "learning_rate",
    "clip_range",
    "gamma",
    "gae_lambda",
    "ent_coef",
    "vf_coef",
)


def build_model(config: dict, env, device: torch.device, tensorboard_log: str | None = None):
    """The SB3 algorithm for ``config['agent']['type']`` on ``env``."""
    a, schedules = config["agent"], config["controls"]["schedules"]
    algo_kwargs = {k: a[k] for k in _SB3_ALGO_KEYS}
    algo_kwargs["learning_rate"] = sb3_schedule(schedules["learning_rate"], a["learning_rate"])
    algo_kwargs["clip_range"] = sb3_schedule(schedules["clip_range"], a["clip_range"])
    algo_kwargs["ent_coef"] = schedule_value(schedules["ent_coef"], 0.0, a["ent_coef"])
    common = dict(
        env=env,
        device=device,
        seed=config["training"]["seed"],
        verbose=0,
        max_grad_norm=float("inf"),
        policy_kwargs=policy_kwargs_for(a),
        tensorboard_log=tensorboard_log,
        **algo_kwargs,
    )
    model = PPO("MlpPolicy", **common) if a["type"] == "ppo" else RecurrentPPO(BrawlLstmPolicy, **common)
    if a["action_head"] == "keys":  # a softmax over macros is unchanged by one shared bias
        with torch.no_grad():
            model.policy.action_net.bias.fill_(a["initial_key_bias"])
    if a["type"] != "ppo":
        share = schedule_value(config["controls"]["schedules"]["greedy_rollout_share"], 0.0, a["greedy_rollout_share"])
        set_greedy_rows(model.policy, share, config["env"]["n_envs"])
    apply_precision_and_compile(model.policy, config["training"])
    # Without a logger of its own, every learn() call leaves an empty SB3-<time> folder in the
    # temp directory; the training loop replaces this silent one with the run's (configure_sb3_logger).
    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


def build_policy(agent_config: dict, device: torch.device | str = "cpu"):
    """A fresh policy of the configured architecture (no algorithm, no optimizer state)."""
    policy_class = ActorCriticPolicy if agent_config["type"] == "ppo" else BrawlLstmPolicy
    kwargs = policy_kwargs_for(agent_config)
    # Its initial weights are overwritten at once; forking keeps the training RNG
    # untouched, so saving a snapshot never changes what the run does next.
    with torch.random.fork_rng(devices=[]):
        space = policy_observation_space(agent_config)
        policy = policy_class(space, policy_action_space(agent_config["action_head"]), lambda _: 0.0, **kwargs)
    return policy.to(device)


def load_agent(
    path: Path | str, device: torch.device | str = "cpu", deterministic: bool = True, verify: bool = True
) -> TransformerStrategyAgent:
    """A trained agent from a checkpoint .zip or a run folder (its newest valid checkpoint), weights only;
    ``verify=False`` skips the manifest check (``--no-verify``)."""
    return agent_io.load_agent(path, build_policy, _SHARED_AGENT_CONFIG, device, deterministic, verify)


def snapshot_agent(model, agent_config: dict, device: torch.device | str) -> TransformerStrategyAgent:
    """An in-memory opponent copy of the model's current policy (no disk read)."""
    return agent_io.snapshot_agent(model, agent_config, build_policy, device)


# ==================================================================================
# === Rewards ===
# ==================================================================================
def gen_reward_manager(reward_config: dict = _SHARED_REWARD_CONFIG) -> RewardManager:
    """The dense (shaped) rewards, weighted by a full reward config (terms of weight 0 are left out)."""
    t, s = reward_config["terms"], reward_config["signals"]
    dense_funcs: dict[str, Callable] = {
        "damage_interaction": damage_interaction,
        "danger_zone": danger_zone,
        "attack_spam": attack_spam,
        "too_many_keys": too_many_keys,
        "closing_distance": closing_distance,
        "own_approach": own_approach,
        "distance_cost": distance_cost,
        "edge_pressure": edge_pressure,
        "toward_weapon": toward_weapon,
    }
    terms = {name: RewTerm(func, t[name]) for name, func in dense_funcs.items() if t[name] != 0}
    if t["damage_taken"] != 0:
        terms["damage_taken"] = RewTerm(damage_interaction, t["damage_taken"], {"mode": "taken_only"})
    signals = {
        "win": ("win", RewTerm(on_win, s["win"])),
        "knockout": ("knockout", RewTerm(on_knockout_dealt, s["knockout"])),
        "knocked_out": ("knockout", RewTerm(on_knockout_taken, s["knocked_out"])),
        "combo": ("hit_during_stun", RewTerm(on_combo, s["combo"])),
        "equip": ("weapon_equip", RewTerm(on_equip, 1.0, {"hammer": s["equip_hammer"], "spear": s["equip_spear"]})),
        "drop": ("weapon_drop", RewTerm(on_drop, s["drop"])),  # validate_config: drop <= 0
    }
    return RewardManager(terms, {k: v for k, v in signals.items() if v[1].weight != 0})


class CurriculumRewardScheduler:
    """Blends dense and sparse rewards: (1 − α)·dense + α·sparse.

    α moves from 0 to 1 as the evaluation win rate against BasedAgent rises from
    ``start_win_rate`` to ``end_win_rate`` (call :meth:`update` after each
    evaluation). Acts as a RewardManager for the env.
    """

    def __init__(
        self, dense: RewardManager, sparse: RewardManager, start_win_rate: float = 0.3, end_win_rate: float = 0.8
    ):
        self.dense, self.sparse = dense, sparse
        self.start, self.end = start_win_rate, end_win_rate
        self.alpha = 0.0

    def update(self, win_rate: float) -> float:
        self.alpha = float(np.clip((win_rate - self.start) / (self.end - self.start), 0.0, 1.0))
        return self.alpha

    def reset(self, n: int) -> None:
        self.dense.reset(n)
        self.sparse.reset(n)

    def compute(self, ctx) -> np.ndarray:
        return ((1 - self.alpha) * self.dense.compute(ctx) + self.alpha * self.sparse.compute(ctx)).astype(np.float32)

    @property
    def term_names(self) -> list[str]:
        return [f"dense/{n}" for n in self.dense.term_names] + [f"sparse/{n}" for n in self.sparse.term_names]

    def get_state(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "dense": self.dense.get_state(), "sparse": self.sparse.get_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.alpha = state["alpha"]
        self.dense.set_state(state["dense"])
        self.sparse.set_state(state["sparse"])

    def pop_episode_sums(self, rows) -> dict[str, np.ndarray]:
        # Per-term sums are unweighted by α: they show what each manager would have paid.
        out = {f"dense/{k}": v for k, v in self.dense.pop_episode_sums(rows).items()}
        out |= {f"sparse/{k}": v for k, v in self.sparse.pop_episode_sums(rows).items()}
        return out


def build_reward_manager(reward_config: dict):
    if reward_config["type"] == "dense":
        return gen_reward_manager(reward_config)
    if reward_config["type"] == "sparse":
        return sparse_reward_manager()
    c = reward_config["curriculum"]
    return CurriculumRewardScheduler(
        gen_reward_manager(reward_config), sparse_reward_manager(), c["start_win_rate"], c["end_win_rate"]
    )


# ==================================================================================
# === Self-play wiring ===
# ==================================================================================
_HANDLERS: dict[str, type[SelfPlayHandler]] = {
    "random": SelfPlayRandom,
    "recent": SelfPlayRecent,
    "latest": SelfPlayLatest,
}


def build_self_play_components(
    config: dict, run_dir: Path | None = None, device: torch.device | str = "cpu", mode: str = "force"
) -> tuple[SaveHandler, SelfPlayHandler, OpponentsCfg]:
    """The save handler, the self-play handler and the opponent mix for a config.

    A ``'self_play': (weight, None)`` entry is filled with the self-play handler.
    Snapshots play from memory: the trainer hands each new snapshot's in-memory
    copy to the handler, which only reads files it has not seen (after a resume).
    """
    tr, sp = config["training"], config["self_play"]
    run_dir = Path(run_dir) if run_dir else Path(tr["save_path"]) / (tr["run_name"] or config["name"])
    save_handler = SaveHandler(
        save_freq=tr["save_freq"], max_saved=tr["max_saved"], save_path=run_dir.parent, run_name=run_dir.name, mode=mode
    )
    handler_class = _HANDLERS[sp["handler"]]
    handler_kwargs: dict[str, Any] = {"k": sp["recent_k"]} if handler_class is SelfPlayRecent else {}
    handler = handler_class(
        lambda path: load_agent(path, device=device),
        save_handler=save_handler,
        fallback=make_agent("constant"),
        cache_size=sp["cache_size"],
        seed=tr["seed"],
        **handler_kwargs,
    )
    opponents = {
        name: (float(weight), handler if entry is None else entry) for name, (weight, entry) in sp["opponents"].items()
    }
    for name, (weight, entry) in opponents.items():  # "checkpoint:<path>": another trained agent, argmax play
        if (path := external_opponent_path(entry)) is not None:
            opponents[name] = (weight, load_agent(path, device=device))
    weighting = config["controls"]["opponent_weighting"]
    if weighting["mode"] != "off" and weighting["pool"] == "roster":
        _add_roster_to_mix(opponents)
    schedule = build_opponent_schedule(config)
    if schedule is not None:  # its bots replace the configured ones; self-play and checkpoint opponents stay
        opponents = {name: entry for name, entry in opponents.items() if not isinstance(entry[1], str)}
        opponents.update({name: (weight, name) for name, weight in schedule.weights().items()})
    return save_handler, handler, OpponentsCfg(opponents)


def build_opponent_schedule(config: dict) -> OpponentSchedule | None:
    """The configured opponent schedule (controls.opponent_schedule), or None when it is off."""
    spec = config["controls"]["opponent_schedule"]
    if not spec["enabled"]:
        return None
    bot_share = config_tools.scripted_share(config["self_play"]["opponents"])
    return OpponentSchedule({k: v for k, v in spec.items() if k != "enabled"}, bot_share)


def _add_roster_to_mix(opponents: dict[str, tuple[float, Any]]) -> None:
    """Every scripted bot joins the mix; the bots' total weight is shared equally to start."""
    bots = {name for name, (_, e) in opponents.items() if isinstance(e, str)}
    share = sum(opponents[name][0] for name in bots)
    present = {opponents[name][1] for name in bots}
    for name in agent_names():
        if name not in present and name not in opponents:
            opponents[name] = (0.0, name)
    bots = [name for name, (_, e) in opponents.items() if isinstance(e, str)]
    for name in bots:
        opponents[name] = (share / len(bots), opponents[name][1])


# ==================================================================================
# === Callbacks ===
# ==================================================================================
class RolloutBoundaryCallback(BaseCallback):
    """The trainer's safe point: the start of each rollout, right after a PPO update.

    In order: the update's metrics row, an evaluation when due, a capture of the
    full training state, then a snapshot when due. A stop signal during a rollout
    saves the state captured at its start (the partial rollout is collected
    again after a resume), so a stop takes effect within one env step and a
    resumed run continues exactly where the saved one was.
    """

    def __init__(self, run: TrainingRun):
        super().__init__()
        self.run = run
        self.stopping = False

    def _on_rollout_start(self) -> None:
        run = self.run
        record_grad_norms(self.model.policy.optimizer, self.logger)
        steps = self.model.num_timesteps
        run.apply_schedules(steps)
        self.logger.record("train/ent_coef", float(self.model.ent_coef))
        run.check_finite()
        run.metrics.record(steps, self.logger.name_to_value, self.model.ep_info_buffer or ())
        strategy_row = run.strategy.row(steps)
        if strategy_row is not None:
            run.logs["strategy"].append(strategy_row)
        evaluation_due = run.evaluation_due(steps)
        run.apply_opponent_schedule()
        if evaluation_due:
            run.evaluate(steps)
        evaluated = evaluation_due and not run.evaluation_due(steps)  # a stop signal can cut it short
        log_opponent_schedule(run, steps, evaluated)
        if run.exploiter_due():
            run_exploiter_phase(run, steps)
        run.captured = run.capture_state()
        # An evaluated policy is saved too, so the best checkpoint by the headline exists on disk.
        # A stop anywhere else, or one that cut an evaluation short (the resumed run plays it again,
        # and its snapshot must not be in the pool by then), saves a resume point.
        scheduled = ((run.save_handler.due(steps) and steps > 0) or evaluated) and evaluated == evaluation_due
        if scheduled or run.stop_flag:
            run.save_checkpoint(steps, run.captured, final=bool(run.stop_flag), resume_point=not scheduled)
        self.stopping = bool(run.stop_flag)

    def _on_step(self) -> bool:
        if self.run.stop_flag and not self.stopping:
            step = self.run.captured["model"]["num_timesteps"]
            self.run.save_checkpoint(step, self.run.captured, final=True, resume_point=True)
            self.stopping = True
        return not self.stopping


def run_exploiter_phase(run: TrainingRun, steps: int) -> bool:
    """Train an exploiter against the current main agent only; add it to the pool if it wins.

    The phase runs on its own env and model and restores every random stream
    afterwards, so the main run continues exactly as it would have.
    """
    config = run.config
    ex = config["controls"]["exploiter"]
    run.counters["exploiter_at"] = run.model._n_updates
    saved_rng = rng_state()
    t0 = time.monotonic()
    try:
        main = snapshot_agent(run.model, config["agent"], run.device)
        venv = BrawlVecEnv(
            config["env"]["n_envs"],
            opponents=OpponentsCfg({"main": (1.0, main)}),
            action_repeat=config["agent"]["action_repeat"],
            reward_manager=build_reward_manager(config["reward"]),
            max_timesteps=config["env"]["max_timesteps"],
            seed=config["training"]["seed"] + steps,
        )
        env, _ = wrap_training_env(venv, config)
        exploiter = build_model(config, env, run.device)
        if ex["init"] == "fork":
            exploiter.policy.load_state_dict(run.model.policy.state_dict())
        exploiter.learn(ex["steps"])
        candidate = snapshot_agent(exploiter, config["agent"], run.device)
        played = play_vs_opponents(
            candidate, {"main": main}, ex["eval_matches"], config["eval"]["max_timesteps"], seed=steps
        )
        results = result_list(played["main"])
        win_rate = results.count("win") / len(results)
        admitted = admit_exploiter(win_rate, ex["win_threshold"])
        path = run.run_dir / f"exploiter_{steps}_steps.zip"
        if admitted:
            save_checkpoint_pair(exploiter, path, config["agent"])
            run.self_play.extra_snapshots.append(path)
            run.self_play.add_loaded(path, candidate)
        run.logs["exploiters"].append(
            {"step": steps, "win_rate": round(win_rate, 4), "admitted": admitted, "path": path.name if admitted else ""}
        )
        log.info(
            "Exploiter at step %s: won %.0f%% against main in %.0f s -> %s",
            f"{steps:,}",
            100 * win_rate,
            time.monotonic() - t0,
            "joins the pool" if admitted else "not admitted",
        )
        return admitted
    finally:
        set_rng_state(saved_rng)


# ==================================================================================
# === The training run ===
# ==================================================================================
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def default_run_name(config: dict) -> str:
    return f"{config['name']}__{config['training']['seed']}__{time.strftime('%Y%m%d-%H%M%S')}"


def make_training_venv(config: dict, opponents: OpponentsCfg, reward_manager):
    """The matches the learner plays: a BrawlVecEnv, or a WorkerVecEnv when env.workers > 1."""
    env, a, seed = config["env"], config["agent"], config["training"]["seed"]
    if env["workers"] == 1:
        return BrawlVecEnv(
            env["n_envs"],
            opponents=opponents,
            reward_manager=reward_manager,
            action_repeat=a["action_repeat"],
            max_timesteps=env["max_timesteps"],
            seed=seed,
            scattered_starts=env["scattered_starts"],
        )
    bots = {name: (weight, entry) for name, (weight, entry) in opponents.opponents.items() if isinstance(entry, str)}
    log.info("Stepping %d matches in %d worker processes", env["n_envs"], env["workers"])
    return WorkerVecEnv.for_scripted_opponents(
        env["n_envs"],
        env["workers"],
        bots,
        functools.partial(build_reward_manager, config["reward"]),
        max_timesteps=env["max_timesteps"],
        seed=seed,
        action_repeat=a["action_repeat"],
        scattered_starts=env["scattered_starts"],
    )


class TrainingRun:
    """One training run: the env, model and self-play pool built from the config (the recipe), and
    what it keeps on the way: logs (user/monitoring.py), checkpoints and resume state (user/resume.py)."""

    def __init__(self, config: dict, run_dir: Path, device: torch.device):
        self.config, self.run_dir, self.device = config, run_dir, device
        self.stop_flag = StopFlag()
        self.on_checkpoint: Callable[[dict], None] | None = None  # called with resume.checkpoint_summary
        self.lock = RunFolderLock(run_dir)  # start_run hands over the one it acquired
        self.save_handler, self.self_play, self.opponents = build_self_play_components(
            config, run_dir, device, mode="resume"
        )
        self.reward_manager = build_reward_manager(config["reward"])
        self.venv = make_training_venv(config, self.opponents, self.reward_manager)
        # A snapshot that a running match plays is kept past max_saved until that match ends,
        # so the checkpoint's resume state never points at a deleted file.
        self.save_handler.protected = self._keep_snapshot
        self.env, self.history = wrap_training_env(self.venv, config)
        self.model = build_model(config, self.env, device, tensorboard_log=tensorboard_dir(run_dir))
        self.manifest = CheckpointManifest(run_dir)
        for stale in remove_stale_temp_files(run_dir):
            log.warning("Removed %s, left by an interrupted write", stale.name)
        self.monitor_t_start = monitor_start_time(run_dir)
        self.logs = open_run_logs(run_dir, config, self.reward_manager.term_names, self.monitor_t_start)
        self.metrics = MetricsRecorder(self.logs["metrics"])
        self.next_eval = config["eval"]["eval_freq"]
        self.last_saved_step = -1
        self.counters: dict[str, Any] = {"episodes": 0, "attack_frames": np.zeros(self.venv.num_envs, np.int64)}
        self.ratings = EloRatings()
        self.eval_history: list[dict[str, Any]] = []  # win rate per opponent per evaluation
        self.alerts = SanityAlerts(self)
        self.strategy = StrategyStats(self.venv.num_envs)
        self.snapshot_win_rates: dict[Path, float] = {}
        # The bots' configured weights: adaptive weighting redistributes their total.
        self.bot_share = {n: w for n, (w, e) in self.opponents.opponents.items() if isinstance(e, str)}
        self.opponent_schedule = build_opponent_schedule(config)
        self.captured: dict[str, Any] | None = None

    # --- checkpoints --------------------------------------------------------------------
    def save_checkpoint(
        self, steps: int, state: dict[str, Any] | None = None, final: bool = False, resume_point: bool = False
    ) -> Path | None:
        """Write the checkpoint of ``steps`` (with ``state``, captured at that step) unless already written;
        a ``final`` one (the run's end or a stop) is never skipped for the disk reserve, and a
        ``resume_point`` (a stop between scheduled saves) stays out of the pool (user/resume.py)."""
        return save_checkpoint(self, steps, state, final, resume_point)

    def _keep_snapshot(self, path: Path) -> bool:
        return keep_snapshot(self, path)

    def snapshot_agent(self, model=None) -> TransformerStrategyAgent:
        """An in-memory copy of the current policy (or ``model``'s) as an opponent or to evaluate."""
        return snapshot_agent(model or self.model, self.config["agent"], self.device)

    def check_finite(self, consequence: str = "stopping") -> None:
        bad = [name for name, p in self.model.policy.named_parameters() if not torch.isfinite(p).all()]
        if bad:
            raise DivergenceError(f"non-finite parameters ({', '.join(bad[:3])}); {consequence}")

    def capture_state(self) -> dict[str, Any]:
        """Everything beyond the weights that a resumed run needs to continue exactly (RESUME_SCHEMA)."""
        return capture_state(self)

    def restore(self) -> int:
        """Continue from the newest checkpoint that verifies; returns its step (user/resume.py)."""
        return restore_latest(self)

    def finish_update_metrics(self) -> None:
        """The last update's metrics row (no rollout follows it to trigger the usual one)."""
        logger = self.model.logger
        record_grad_norms(self.model.policy.optimizer, logger)
        logger.record("train/ent_coef", float(self.model.ent_coef))
        if isinstance(self.self_play, SelfPlayRandom):
            logger.record("selfplay/temperature", self.self_play.temperature)
        self.metrics.record(self.model.num_timesteps, logger.name_to_value, self.model.ep_info_buffer or ())
        logger.dump(self.model.num_timesteps)

    # --- evaluation ---------------------------------------------------------------------
    def evaluation_due(self, steps: int) -> bool:
        return steps >= self.next_eval

    def evaluate(self, steps: int) -> list[dict[str, Any]]:
        """Play the scripted roster (batched); log results, ratings and the plot (user/monitoring.py)."""
        return evaluate_run(self, steps)

    # --- controls -------------------------------------------------------------------------
    def apply_schedules(self, steps: int) -> None:
        """Entropy coefficient, greedy rows and self-play temperature for the coming rollout (lr and clip: SB3)."""
        schedules = self.config["controls"]["schedules"]
        progress = min(steps / self.config["training"]["total_timesteps"], 1.0)
        self.model.ent_coef = schedule_value(schedules["ent_coef"], progress, self.config["agent"]["ent_coef"])
        if schedules["greedy_rollout_share"] is not None:
            share = schedule_value(schedules["greedy_rollout_share"], progress, 0.0)
            set_greedy_rows(self.model.policy, share, self.config["env"]["n_envs"])
            self.model.logger.record("train/greedy_rollout_share", share)
        if isinstance(self.self_play, SelfPlayRandom):
            self.self_play.temperature = schedule_value(schedules["self_play_temperature"], progress, 0.0)
            self.model.logger.record("selfplay/temperature", self.self_play.temperature)

    def record_training_match(self, opponent: str, result: str) -> None:
        """A finished training match, for the opponent schedule (sampled play, no extra cost)."""
        if self.opponent_schedule is not None and self.opponent_schedule.record(opponent, result):
            admitted = self.opponent_schedule.groups[self.opponent_schedule.groups_admitted - 1]
            log.info("Opponent schedule: %s admitted", ", ".join(admitted))
            self.counters["schedule_admitted"] = True

    def apply_opponent_schedule(self) -> None:
        """The schedule's weights for the coming rollout."""
        if self.opponent_schedule is not None:
            self.set_opponent_weights(self.opponent_schedule.weights())

    def set_opponent_weights(self, weights: dict[str, float]) -> None:
        # The run's OpponentsCfg is the env's own in one process; worker processes hold copies.
        self.opponents.set_weights(weights)
        self.venv.set_opponent_weights(weights)

    def exploiter_due(self) -> bool:
        every = self.config["controls"]["exploiter"]["every_updates"]
        updates = self.model._n_updates
        return every > 0 and updates > 0 and updates % every == 0 and updates != self.counters.get("exploiter_at")

    def opponents_use_self_play(self) -> bool:
        return any(w > 0 and isinstance(e, SelfPlayHandler) for w, e in self.opponents.opponents.values())

    def close(self) -> None:
        for csv in self.logs.values():
            csv.close()
        self.venv.close()  # stops worker processes, if any


def run_training_loop(
    config: dict, run_dir: Path | None = None, progress: bool | None = None, on_checkpoint=None
) -> TrainingRun:
    """Train with ``config``; returns the finished run (``.run_dir`` holds its outputs). Importable, so
    tests and other tools call it; ``on_checkpoint(summary)`` follows each scheduled checkpoint."""
    run = start_run(config, run_dir)
    run.on_checkpoint = on_checkpoint
    try:
        _learn(run, progress)
        finish_run(run)
    finally:
        run.lock.release()
    return run


def start_run(config: dict, run_dir: Path | None = None) -> TrainingRun:
    """A new run, ready to learn: its folder, log, config.json, seeds, device, env and model
    (initialised from ``training.init_from`` when set)."""
    config = with_absolute_opponent_paths(validate_config(config))
    tr = config["training"]
    run_dir = Path(run_dir) if run_dir else Path(tr["save_path"]) / (tr["run_name"] or default_run_name(config))
    run_dir = run_dir.expanduser().resolve()  # absolute: a caller that changes directory (Ray Tune) keeps it
    if (run_dir / "manifest.json").exists() or any(run_dir.glob("rl_model_*_steps.zip")):
        raise ConfigError(
            f"{run_dir} already holds checkpoints; continue it with --resume {run_dir}, or choose another --run-dir"
        )
    if tr["init_from"]:
        resolve_checkpoint(tr["init_from"])  # a wrong path fails before the run folder exists
    if (run_dir / "monitor.csv").exists():
        raise ConfigError(
            f"{run_dir} holds the logs of a run that saved no checkpoint; move them away or choose "
            "another --run-dir (a new run would append to them)"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = RunFolderLock(run_dir).acquire()  # before anything is written: a second trainer is refused here
    try:
        setup_logging(run_dir)
        log_config(config)
        atomic_write_text(run_dir / "config.json", json.dumps(config, indent=2, default=list))
        seed_everything(tr["seed"])
        device = pick_device(tr["device"])
        run = TrainingRun(config, run_dir, device)
    except BaseException:
        lock.release()
        raise
    run.lock = lock
    configure_sb3_logger(run)
    if tr["init_from"]:
        source = resolve_checkpoint(tr["init_from"])
        load_policy_weights(run.model.policy, source, device)
        log.info("Initialised the policy from %s (weights only; optimizer starts fresh)", source)
    elif config["warm_start"]["seconds"] > 0:
        warm_start(run)
    log.info("Run folder: %s", run_dir)
    return run


def resume_training(
    run_dir: Path,
    overrides: list[str] | None = None,
    config_name: str | None = None,
    progress: bool | None = None,
    on_checkpoint=None,
) -> TrainingRun:
    """Continue the run in ``run_dir`` from its newest valid checkpoint.

    ``overrides`` (``--set``) may change e.g. the total steps or the learning
    rate; ``config_name`` must match the run's own config if given.
    """
    run_dir = Path(run_dir).expanduser().resolve()
    if not run_dir.is_dir():
        raise ConfigError(f"--resume: run folder not found: {run_dir}")
    config = load_config_json(run_dir / "config.json")
    if config_name is not None and config_name != config.get("name"):
        raise ConfigError(
            f"--config {config_name} conflicts with the run's config {config.get('name')!r} "
            f"({run_dir / 'config.json'}); drop --config to resume, or start a new run"
        )
    if isinstance(config.get("agent"), dict):
        config["agent"] = with_encoder_of_its_time(config["agent"])
    saved = merge_config(_BASE_CONFIG, config)
    config = validate_config(apply_overrides(saved, overrides or []))
    check_resumable_changes(saved, config)
    check_against_checkpoint(run_dir, config, _BASE_CONFIG)  # a hand-edited config.json
    # config.json is rewritten with the first checkpoint this resumed run saves (user/resume.py), so a
    # --set that fails (a diverging learning rate) leaves it as it was.
    with RunFolderLock(run_dir):  # a second --resume (or a trainer) on the folder is refused here
        setup_logging(run_dir)
        seed_everything(config["training"]["seed"])
        run = TrainingRun(config, run_dir, pick_device(config["training"]["device"]))
        run.on_checkpoint = on_checkpoint
        configure_sb3_logger(run)
        step = run.restore()
        log.info("Resuming %s from step %s", run_dir, f"{step:,}")
        _learn(run, progress)
        finish_run(run)
    return run


def _learn(run: TrainingRun, progress: bool | None) -> None:
    """model.learn with the trainer's callbacks, signal handling and divergence policy."""
    tr = run.config["training"]
    run.stop_flag.install()
    t0 = time.monotonic()
    rollbacks = 0
    try:
        while True:
            try:
                _learn_once(run, progress)
                break
            except OSError as exc:
                if not is_disk_full(exc):
                    raise
                raise stop_for_full_disk(run, exc) from None
            except DivergenceError as exc:
                if tr["on_divergence"] != "rollback" or rollbacks >= tr["max_rollbacks"]:
                    raise
                rollbacks += 1
                _roll_back(run, exc)
    finally:
        run.stop_flag.uninstall()
        run.close()
    log.info(
        "Stopped at step %s after %s (%s)",
        f"{run.model.num_timesteps:,}",
        clock(time.monotonic() - t0),
        run.stop_flag.reason or "finished",
    )


def _learn_once(run: TrainingRun, progress: bool | None) -> None:
    tr = run.config["training"]
    interactive = sys.stdout.isatty() if progress is None else progress
    callbacks: list[BaseCallback] = [RolloutBoundaryCallback(run), EpisodeLogCallback(run)]
    if not interactive:
        callbacks.append(
            ProgressLineCallback(tr["total_timesteps"], tr["progress_interval_s"], run.config["agent"]["action_repeat"])
        )
    remaining = tr["total_timesteps"] - run.model.num_timesteps
    if remaining > 0:
        try:
            run.model.learn(
                remaining,
                callback=CallbackList(callbacks),
                reset_num_timesteps=False,
                progress_bar=interactive,
                log_interval=1,
            )
        except ValueError as exc:
            # torch's distributions refuse NaN logits: the last update produced a non-finite policy.
            if "Expected parameter" not in str(exc):
                raise
            first_line = str(exc).splitlines()[0]
            raise DivergenceError(f"the policy produced non-finite action logits ({first_line})") from None
    if not run.stop_flag:
        run.finish_update_metrics()
        if run.evaluation_due(run.model.num_timesteps):
            run.evaluate(run.model.num_timesteps)
        run.save_checkpoint(run.model.num_timesteps, final=True)


def _roll_back(run: TrainingRun, exc: DivergenceError) -> None:
    """Return to the last good checkpoint with a lower learning rate.

    The run gets a new config (the caller's dict is left as it was); config.json records it.
    """
    factor = run.config["training"]["rollback_lr_factor"]
    learning_rate = run.config["agent"]["learning_rate"] * factor
    lr_schedule = run.config["controls"]["schedules"]["learning_rate"]
    if lr_schedule is not None:
        lr_schedule = {**lr_schedule, "start": lr_schedule["start"] * factor, "end": lr_schedule["end"] * factor}
    changes = {"agent": {"learning_rate": learning_rate}, "controls": {"schedules": {"learning_rate": lr_schedule}}}
    run.config = merge_config(run.config, changes)
    step = run.restore()
    run.model.learning_rate = sb3_schedule(lr_schedule, learning_rate)
    run.model._setup_lr_schedule()
    for group in run.model.policy.optimizer.param_groups:
        group["lr"] = learning_rate
    run.model.policy.optimizer.pop_norms()
    atomic_write_text(run.run_dir / "config.json", json.dumps(run.config, indent=2, default=list))
    log.warning("Diverged (%s): rolled back to step %s with learning rate %.3g", exc, f"{step:,}", learning_rate)


# ==================================================================================
# === CLI ===
# ==================================================================================
def has_accelerator() -> bool:
    return torch.cuda.is_available() or bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def resolve_cli_config(args: argparse.Namespace) -> dict:
    """The config named on the command line (or TRAIN_CONFIG), with --set overrides applied."""
    if args.config_file and args.config:
        raise ConfigError("give either --config or --config-file, not both")
    if args.config_file:
        config = load_config_file(Path(args.config_file), _BASE_CONFIG)
    elif args.config:
        if args.config not in CONFIGS:
            raise ConfigError(f"unknown --config {args.config!r}; choose from {', '.join(CONFIGS)}")
        config = copy.deepcopy(CONFIGS[args.config])
    else:
        config = default_config()
    return apply_overrides(config, args.set or [])


def default_config() -> dict:
    """TRAIN_CONFIG, with "auto" resolved for this machine."""
    if isinstance(TRAIN_CONFIG, dict):
        return copy.deepcopy(TRAIN_CONFIG)
    if TRAIN_CONFIG != "auto":
        raise ConfigError(f'TRAIN_CONFIG must be "auto" or one of the TRAIN_CONFIG_* dicts, got {TRAIN_CONFIG!r}')
    if has_accelerator():
        return copy.deepcopy(TRAIN_CONFIG_TEST)
    log.info("No GPU found: TRAIN_CONFIG is \"auto\", so the CPU-sized config 'cpu' runs (--config test forces test)")
    return copy.deepcopy(TRAIN_CONFIG_CPU)


_UNWRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT)


def main(argv: list[str] | None = None) -> int:
    args = build_arg_parser(list(CONFIGS)).parse_args(argv)
    setup_logging()
    try:
        return _dispatch(args)
    except (ConfigError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:
        if exc.errno not in _UNWRITABLE or not exc.filename:
            raise
        # A read-only or full folder: name the folder (the file may be an atomic write's temp name).
        log.error(
            "cannot write in %s: %s (choose a writable place with --run-dir or --out, or free space)",
            Path(exc.filename).parent,
            exc.strerror,
        )
        return 2
    except DivergenceError as exc:
        log.error(
            "Training diverged: %s. No non-finite checkpoint was written; if the run saved any, resume "
            "from the last one with a lower learning rate (--resume RUN --set agent.learning_rate=...), or "
            "set training.on_divergence=rollback.",
            exc,
        )
        return 3


def _dispatch(args: argparse.Namespace) -> int:
    try:
        if args.mode == "train":
            return _mode_train(args)
        return run_mode(args, load_agent)  # eval, demo, analyze_strategy, league, export: user/modes.py
    except CheckpointError as exc:
        raise ConfigError(str(exc)) from None


def _mode_train(args: argparse.Namespace) -> int:
    progress = {"auto": None, "bar": True, "lines": False}[args.progress]
    if args.resume:
        for flag, value in (
            ("--config-file", args.config_file),
            ("--run-dir", args.run_dir),
            ("--print-config", args.print_config),
        ):
            if value:
                raise ConfigError(f"--resume continues a run with its own config and folder; drop {flag}")
        resume_training(Path(args.resume), args.set, args.config, progress)
        return 0
    config = resolve_cli_config(args)
    validate_config(config)
    if args.print_config:
        print(json.dumps(config, indent=2, default=list))
        return 0
    run_training_loop(config, Path(args.run_dir) if args.run_dir else None, progress=progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
