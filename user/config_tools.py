"""How the trainer's nested config dicts are combined, overridden, read and checked for keys.

The configs themselves (their values) live in ``user/train_agent.py``; this module only
knows their shape: sections of dicts, a few values that are replaced whole (the opponent
mix and ``net_arch``), and dotted key paths such as ``agent.learning_rate``.

- :func:`merge_config` builds a config as a deep copy of a base with overrides applied, so
  no two configs share a nested dict and an override key the base lacks is an error.
- :func:`require_keys` names the first key a config lacks, instead of a ``KeyError`` later.
- :func:`apply_overrides` applies ``--set a.b=value`` (YAML values). A key path that reaches
  inside a whole value (``agent.net_arch.pi``, ``self_play.opponents.based``) changes that one
  entry and keeps the others; a mapping given for the whole value replaces it.
- :func:`load_yaml` reads YAML as the configs mean it: ``1e-3`` is a number (YAML 1.1 makes it
  a string), in ``--set`` values and in config files alike.
"""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path
from typing import Any

import torch
import yaml

from environment.agents import agent_names, is_agent_name
from environment.checkpoints import (
    MAX_JSON_BYTES,
    CheckpointError,
    CheckpointNotFoundError,
    PortableError,
    read_regular_file,
)
from environment.envs import BrawlVecEnv
from environment.matchmaking import check_schedule_config
from user.strategy_encoder import check_streaming_sizes

# Values that are dicts but are replaced whole, never merged key by key: an opponent mix or
# a network shape given in an override is the whole new value.
WHOLE_VALUES = ("opponents", "net_arch")


class _ConfigYamlLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads exponent numbers without a dot or without an exponent
    sign (``1e-3``, ``5E-4``, ``1.0e3``) as floats, as YAML 1.2 and JSON do; YAML 1.1 reads them as
    strings, so ``learning_rate: 1e-3`` would be refused as text in a number field."""


_ConfigYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    """Plain YAML data (no Python objects) with ``1e-3`` read as a float."""
    return yaml.load(text, Loader=_ConfigYamlLoader)  # a SafeLoader: builds no Python objects


class ConfigError(PortableError, ValueError):
    """A config that cannot train; the message names the key."""


def merge_config(base: dict, override: dict, path: str = "") -> dict:
    """A deep copy of ``base`` with ``override`` applied; an override key that base lacks is an error."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        where = f"{path}{key}"
        if key not in base:
            raise ConfigError(f"unknown config key {where!r}; known keys here: {', '.join(sorted(base))}")
        if isinstance(base[key], dict) and isinstance(value, dict) and key not in WHOLE_VALUES:
            out[key] = merge_config(base[key], value, f"{where}.")
        else:
            out[key] = copy.deepcopy(value)
    return out


def require_keys(config: dict, base: dict, path: str = "") -> None:
    """Raise :class:`ConfigError` naming the first key of ``base`` that ``config`` lacks."""
    for key, value in base.items():
        where = f"{path}{key}"
        if not isinstance(config, dict) or key not in config:
            raise ConfigError(f"config key {where!r} is missing")
        if isinstance(value, dict) and key not in WHOLE_VALUES:
            require_keys(config[key], value, f"{where}.")


def check_value_types(config: dict, base: dict, path: str = "") -> None:
    """Raise :class:`ConfigError` naming the first value whose type differs from the base config's:
    a number where the base has a number (finite: no NaN or inf), true/false where it has a bool."""
    for key, default in base.items():
        where, value = f"{path}{key}", config.get(key) if isinstance(config, dict) else None
        if isinstance(default, dict) and key not in WHOLE_VALUES:
            check_value_types(value, default, f"{where}.")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{where} must be true or false, got {value!r}")
        elif isinstance(default, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{where} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ConfigError(f"{where} must be a finite number, got {value!r}")


def lookup(config: dict, dotted: str) -> Any:
    """``config['a']['b']`` for ``'a.b'``; a missing key is a :class:`ConfigError` naming it."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"config key {dotted!r} is missing")
        node = node[part]
    return node


def apply_overrides(config: dict, overrides: list[str]) -> dict:
    """Apply ``--set a.b=value`` overrides; values are YAML literals (numbers, lists, ...).

    A mapping value merges into a section key by key, except for the whole values
    (``self_play.opponents``, ``agent.net_arch``), which it replaces. A key path that reaches inside
    a whole value (``agent.net_arch.pi=[32]``, ``self_play.opponents.based=[0.5, based]``) changes
    or adds that one entry and keeps the others.
    """
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key.path=value, got {item!r}")
        dotted, raw = item.split("=", 1)
        try:
            value = load_yaml(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {dotted}: {raw!r} is not a YAML value ({exc.__class__.__name__})") from None
        parts = dotted.split(".")
        inside = next((i for i, part in enumerate(parts[:-1]) if part in WHOLE_VALUES), None)
        if inside is not None:  # one entry of a whole value: the others stay
            whole_key = ".".join(parts[: inside + 1])
            whole = copy.deepcopy(lookup(config, whole_key))
            node = whole
            for part in parts[inside + 1 : -1]:
                if not isinstance(node, dict) or part not in node:
                    raise ConfigError(f"--set {dotted}: {whole_key} has no entry {part!r}")
                node = node[part]
            if not isinstance(node, dict):
                raise ConfigError(f"--set {dotted}: {whole_key} is not a mapping, got {whole!r}")
            node[parts[-1]] = value
            parts, value = parts[: inside + 1], whole
        nested: Any = value
        for part in reversed(parts):
            nested = {part: nested}
        config = merge_config(config, nested)
    return config


def read_config_text(path: Path) -> str:
    """A config file's text: a regular file of at most ``MAX_JSON_BYTES`` (issue 18, item 7), UTF-8."""
    try:
        data = read_regular_file(path, "config file", MAX_JSON_BYTES)
    except CheckpointNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except CheckpointError as exc:  # /dev/zero, a FIFO, a folder, too big
        raise ConfigError(str(exc)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def load_config_json(path: Path) -> dict:
    """A saved config; a missing or corrupt file gets a clear message naming it."""
    try:
        data = json.loads(read_config_text(Path(path)))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); it may be corrupt") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of config sections, got a {type(data).__name__}")
    return data


def load_config_file(path: Path, base: dict) -> dict:
    """A config from YAML or JSON, merged over ``base`` and named after the file (unknown keys are errors)."""
    text = read_config_text(path)
    try:
        data = load_yaml(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} could not be parsed: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of config sections")
    return merge_config({**base, "name": path.stem}, data)


# ==================================================================================
# === Validation ===
# ==================================================================================
AGENT_TYPES = ("transformer_strategy", "recurrent_ppo", "ppo")
ENCODERS = ("streaming", "full_window")  # user/strategy_encoder.py; the seed's encoder


def with_encoder_of_its_time(agent_config: dict) -> dict:
    """A saved agent config, with ``encoder: full_window`` when it predates the key: checkpoints
    and runs from before the streaming encoder (issue 15) were made by the full-window one."""
    return {"encoder": "full_window", **agent_config}


MAX_SEED = 2**32 - 1  # np.random.seed and SB3's set_random_seed take seeds below 2**32
REWARD_TYPES = ("dense", "sparse", "curriculum")
SELF_PLAY_HANDLERS = ("random", "recent", "latest")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _positive_int(config: dict, dotted: str) -> None:
    value = lookup(config, dotted)
    _check(
        isinstance(value, int) and not isinstance(value, bool) and value > 0,
        f"{dotted} must be a positive integer, got {value!r}",
    )


def _validate_warm_start(config: dict) -> None:
    ws = config["warm_start"]
    _check(ws["seconds"] >= 0, f"warm_start.seconds must be >= 0 (0 = off), got {ws['seconds']!r}")
    if ws["seconds"] == 0:
        return
    _check(
        config["agent"]["action_head"] == "macro",
        "warm_start.seconds > 0 needs agent.action_head: macro (the bots' moves are cloned as macros)",
    )
    for key in ("bots", "opponents"):
        names = ws[key]
        _check(isinstance(names, list) and names, f"warm_start.{key} must be a non-empty list of bot names")
        unknown = [n for n in names if n not in agent_names()]
        _check(not unknown, f"warm_start.{key}: unknown agent {unknown[:1]}; known: {', '.join(agent_names())}")
    for key in ("n_envs", "decisions"):
        _check(isinstance(ws[key], int) and ws[key] > 0, f"warm_start.{key} must be a positive integer")
    _check(ws["learning_rate"] > 0, f"warm_start.learning_rate must be > 0, got {ws['learning_rate']!r}")


def validate_config(config: dict, base: dict) -> dict:
    """Check a config before anything trains; raises ConfigError naming the key.

    :param base: the trainer's base config: every key it has is required, no other is allowed
    """
    require_keys(config, base)  # a missing key anywhere
    merge_config(base, config)  # an unknown key anywhere
    check_value_types(config, base)  # text where a number belongs, NaN or inf
    a, env, tr = config["agent"], config["env"], config["training"]
    _check(a["type"] in AGENT_TYPES, f"agent.type must be one of {AGENT_TYPES}, got {a['type']!r}")
    for key in (
        "agent.latent_dim",
        "agent.num_heads",
        "agent.num_layers",
        "agent.sequence_length",
        "agent.lstm_hidden_size",
        "agent.n_steps",
        "agent.batch_size",
        "agent.n_epochs",
        "env.n_envs",
        "env.max_timesteps",
        "training.total_timesteps",
        "training.save_freq",
        "training.max_saved",
        "eval.eval_freq",
        "eval.matches_per_opponent",
        "eval.max_timesteps",
        "eval.snapshot_matches",
        "eval.snapshot_opponents",
        "self_play.recent_k",
    ):
        _positive_int(config, key)
    if config["self_play"]["cache_size"] is not None:
        _positive_int(config, "self_play.cache_size")
    seed = tr["seed"]
    _check(
        isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed <= MAX_SEED,
        f"training.seed must be an integer from 0 to {MAX_SEED} (NumPy's seed range), got {seed!r}",
    )
    _validate_net_arch(a["net_arch"])
    _validate_run_names(config)
    _check(
        a["latent_dim"] % a["num_heads"] == 0,
        f"agent.latent_dim ({a['latent_dim']}) must be divisible by agent.num_heads ({a['num_heads']})",
    )
    rollout = a["n_steps"] * env["n_envs"]
    if rollout % a["batch_size"] != 0:
        divisors = [b for b in (32, 64, 128, 256, 512, 1024, 2048) if rollout % b == 0]
        raise ConfigError(
            f"agent.batch_size ({a['batch_size']}) must divide agent.n_steps × env.n_envs = {a['n_steps']} × "
            f"{env['n_envs']} = {rollout}; batch sizes that fit: {divisors}, or change agent.n_steps / env.n_envs"
        )
    _check(a["batch_size"] > 1, "agent.batch_size must be > 1 (advantages are normalised per minibatch)")
    for key in ("learning_rate", "clip_range", "vf_coef", "max_grad_norm"):
        _check(isinstance(a[key], (int, float)) and a[key] > 0, f"agent.{key} must be > 0, got {a[key]!r}")
    for key in ("gamma", "gae_lambda"):
        _check(0 < a[key] <= 1, f"agent.{key} must be in (0, 1], got {a[key]!r}")
    _check(a["ent_coef"] >= 0, f"agent.ent_coef must be >= 0, got {a['ent_coef']!r}")
    _check(
        isinstance(a["initial_key_bias"], (int, float)) and math.isfinite(a["initial_key_bias"]),
        f"agent.initial_key_bias must be a finite number, got {a['initial_key_bias']!r}",
    )
    _check(a["encoder"] in ENCODERS, f"agent.encoder must be one of {ENCODERS}, got {a['encoder']!r}")
    _positive_int(config, "agent.attention_window")
    _check(
        not (tr["compile"] and a["type"] == "transformer_strategy" and a["encoder"] == "streaming"),
        "training.compile compiles the full-window encoder only: the streaming encoder runs many small "
        "ops of changing shapes (cached steps, streams), which torch.compile would recompile for; "
        "set training.compile=false (or agent.encoder=full_window)",
    )
    if a["type"] == "transformer_strategy" and a["encoder"] == "streaming":
        problem = check_streaming_sizes(a["sequence_length"], a["num_layers"], a["attention_window"])
        _check(problem is None, problem or "")
    _check(
        a["action_head"] in ("keys", "macro"),
        f"agent.action_head must be 'keys' or 'macro', got {a['action_head']!r}",
    )
    share = a["greedy_rollout_share"]
    _check(
        isinstance(share, (int, float)) and 0 <= share < 1,
        f"agent.greedy_rollout_share must be a number in [0, 1), got {share!r}",
    )
    _check(
        share == 0 or a["type"] != "ppo",
        "agent.greedy_rollout_share needs a recurrent agent type (transformer_strategy or recurrent_ppo), not ppo",
    )
    _check(
        share == 0 or round(share * env["n_envs"]) >= 1,
        f"agent.greedy_rollout_share {share} of env.n_envs {env['n_envs']} rounds to no env; raise it or set 0",
    )
    max_repeat = BrawlVecEnv.MAX_ACTION_REPEAT
    _check(
        isinstance(a["action_repeat"], int) and 1 <= a["action_repeat"] <= max_repeat,
        f"agent.action_repeat must be an integer from 1 to {max_repeat}, got {a['action_repeat']!r}",
    )
    _check(
        not (a["shared_lstm"] and a["enable_critic_lstm"]),
        "agent.shared_lstm and agent.enable_critic_lstm cannot both be true (sb3-contrib)",
    )
    _validate_warm_start(config)
    _validate_reward(config["reward"], base["reward"])
    _validate_opponents(config["self_play"])
    _validate_workers(config)
    _validate_scattered_starts(config)
    _validate_controls(config)
    _check(
        tr["on_divergence"] in ("stop", "rollback"),
        f"training.on_divergence must be 'stop' or 'rollback', got {tr['on_divergence']!r}",
    )
    _check(0 < tr["rollback_lr_factor"] < 1, "training.rollback_lr_factor must be in (0, 1)")
    _check(tr["min_free_gb"] >= 0, "training.min_free_gb must be >= 0")
    _check(
        tr["device"] in ("auto", "cuda", "mps", "cpu") or str(tr["device"]).startswith("cuda:"),
        f"training.device must be auto, cuda, cuda:N, mps or cpu, got {tr['device']!r}",
    )
    ev = config["eval"]["opponents"]
    if ev != "roster":
        _check(isinstance(ev, list) and ev, "eval.opponents must be 'roster' or a list of agent names")
        for name in ev:
            _check(name in agent_names(), f"eval.opponents: unknown agent {name!r}; known: {agent_names()}")
    return config


def _validate_run_names(config: dict) -> None:
    """The run folder is ``training.save_path/<run_name or name__seed__time>``: a name must stay one
    folder inside save_path (``--set name=../../x`` wrote the run outside checkpoints/)."""
    for key, name in (("name", config["name"]), ("training.run_name", config["training"]["run_name"])):
        if name is None and key == "training.run_name":
            continue  # the default, <name>__<seed>__<time>
        _check(isinstance(name, str) and name.strip() != "", f"{key} must be a non-empty folder name, got {name!r}")
        _check(
            not any(c in name for c in "/\\\0") and name not in (".", ".."),
            f"{key} must be one folder name inside training.save_path (no '/' or '\\', not '..'), got {name!r}",
        )


def _validate_net_arch(net_arch: Any) -> None:
    """SB3's dict form, as every shipped config has it: hidden layer widths of the actor and the critic."""
    _check(
        isinstance(net_arch, dict) and set(net_arch) == {"pi", "vf"},
        f"agent.net_arch must be a mapping {{pi: [widths], vf: [widths]}}, got {net_arch!r}",
    )
    for key, widths in net_arch.items():
        _check(
            isinstance(widths, list) and all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths),
            f"agent.net_arch.{key} must be a list of positive integers (layer widths), got {widths!r}",
        )


def _validate_reward(reward: dict, base: dict) -> None:
    _check(reward["type"] in REWARD_TYPES, f"reward.type must be one of {REWARD_TYPES}, got {reward['type']!r}")
    _check(
        isinstance(reward["scale"], (int, float)) and reward["scale"] > 0,
        f"reward.scale must be > 0, got {reward['scale']!r}",
    )
    for group in ("terms", "signals"):
        known = base[group]
        for name, weight in reward[group].items():
            _check(name in known, f"unknown reward.{group} key {name!r}; known: {', '.join(known)}")
            _check(
                isinstance(weight, (int, float)) and math.isfinite(weight),
                f"reward.{group}.{name} must be a finite number, got {weight!r}",
            )
    drop = reward["signals"]["drop"]
    _check(drop <= 0, f"reward.signals.drop must be <= 0 (a penalty: on_drop pays +1 per drop), got {drop!r}")
    c = reward["curriculum"]
    _check(
        0 <= c["start_win_rate"] < c["end_win_rate"] <= 1,
        "reward.curriculum needs 0 <= start_win_rate < end_win_rate <= 1",
    )


def _validate_scattered_starts(config: dict) -> None:
    scattered = config["env"]["scattered_starts"]
    _check(
        not isinstance(scattered, bool) and isinstance(scattered, (int, float)) and 0 <= scattered < 1,
        f"env.scattered_starts must be a share of matches in [0, 1), got {scattered!r}",
    )


def _validate_workers(config: dict) -> None:
    workers, n_envs = config["env"]["workers"], config["env"]["n_envs"]
    _check(
        isinstance(workers, int) and 1 <= workers <= n_envs,
        f"env.workers must be an integer from 1 to env.n_envs ({n_envs}), got {workers!r}",
    )
    if workers == 1:
        return
    # Worker processes build their opponents and rewards themselves: what lives only in the
    # training process (self-play snapshots, the curriculum's reward weights) cannot reach them.
    self_play = [
        name
        for name, (w, entry) in config["self_play"]["opponents"].items()
        if (entry is None or external_opponent_path(entry) is not None) and w > 0
    ]
    if self_play:
        raise ConfigError(
            f"env.workers={workers} runs scripted opponents only, but self_play.opponents has "
            f"{self_play[0]!r} (snapshots and checkpoint opponents live in the training process): set env.workers=1 "
            "or give the self-play entry weight 0"
        )
    _check(
        config["reward"]["type"] != "curriculum",
        f"env.workers={workers} cannot follow reward.type=curriculum (its weights change in the training "
        "process): set env.workers=1 or reward.type=dense / sparse",
    )
    _check(
        config["controls"]["exploiter"]["every_updates"] == 0,
        f"env.workers={workers} cannot run exploiter phases (they join the self-play pool): set "
        "env.workers=1 or controls.exploiter.every_updates=0",
    )


SCHEDULE_KINDS = ("constant", "linear", "cosine")
WEIGHTING_MODES = ("off", "inverse_win_rate", "pfsp_hard", "pfsp_variance")


def scripted_share(opponents: dict[str, Any]) -> float:
    """The share of matches that a ``self_play.opponents`` mix gives everything but self-play (the
    opponent schedule's ``bot_share``); the weights are checked first (they sum to more than 0)."""
    weights = {name: float(weight) for name, (weight, _) in opponents.items()}
    return 1.0 - weights.get("self_play", 0.0) / sum(weights.values())


def _validate_opponent_schedule(config: dict) -> None:
    controls = config["controls"]
    spec = controls["opponent_schedule"]
    if not spec["enabled"]:
        return
    _check(
        scripted_share(config["self_play"]["opponents"]) > 0,
        "controls.opponent_schedule weights the scripted bots, but self_play.opponents gives them no share: "
        "add a bot entry (e.g. based: [0.8, based]) or set controls.opponent_schedule.enabled=false",
    )
    _check(
        controls["opponent_weighting"]["mode"] == "off",
        "controls.opponent_schedule and controls.opponent_weighting both set the bots' weights: turn one off",
    )
    try:
        check_schedule_config({k: v for k, v in spec.items() if k != "enabled"})
    except ValueError as exc:
        raise ConfigError(f"controls.{exc}") from None
    for name in [n for g in spec["groups"] for n in g] + list(spec["permanent"]):
        _check(
            is_agent_name(name),
            f"controls.opponent_schedule: unknown agent {name!r}; known: {', '.join(agent_names())} or hold:<macro>",
        )


def _validate_controls(config: dict) -> None:
    c, tr = config["controls"], config["training"]
    for name, spec in c["schedules"].items():
        if spec is None:
            continue
        _check(
            isinstance(spec, dict) and set(spec) == {"kind", "start", "end"},
            f"controls.schedules.{name} must be null or {{kind, start, end}}, got {spec!r}",
        )
        _check(spec["kind"] in SCHEDULE_KINDS, f"controls.schedules.{name}.kind must be one of {SCHEDULE_KINDS}")
        for end in ("start", "end"):
            value = spec[end]
            _check(
                isinstance(value, (int, float)) and math.isfinite(value) and value >= 0,
                f"controls.schedules.{name}.{end} must be a finite number >= 0, got {value!r}",
            )
            if name in ("learning_rate", "clip_range"):
                _check(value > 0, f"controls.schedules.{name}.{end} must be > 0")
            if name == "greedy_rollout_share":
                _check(value < 1, f"controls.schedules.greedy_rollout_share.{end} must be below 1, got {value!r}")
    _check(
        c["schedules"]["greedy_rollout_share"] is None or config["agent"]["type"] != "ppo",
        "controls.schedules.greedy_rollout_share needs a recurrent agent type "
        "(transformer_strategy or recurrent_ppo), not ppo",
    )
    _validate_opponent_schedule(config)
    w = c["opponent_weighting"]
    _check(w["mode"] in WEIGHTING_MODES, f"controls.opponent_weighting.mode must be one of {WEIGHTING_MODES}")
    _check(0 <= w["floor"] < 1, "controls.opponent_weighting.floor must be in [0, 1)")
    _check(w["pool"] in ("mix", "roster"), "controls.opponent_weighting.pool must be 'mix' or 'roster'")
    ex = c["exploiter"]
    _check(
        isinstance(ex["every_updates"], int) and ex["every_updates"] >= 0,
        "controls.exploiter.every_updates must be an integer >= 0 (0 = off)",
    )
    _check(ex["init"] in ("fork", "fresh"), "controls.exploiter.init must be 'fork' or 'fresh'")
    _check(0 < ex["win_threshold"] <= 1, "controls.exploiter.win_threshold must be in (0, 1]")
    for key in ("steps", "eval_matches"):
        _check(isinstance(ex[key], int) and ex[key] > 0, f"controls.exploiter.{key} must be a positive integer")
    _check(
        tr["precision"] in ("fp32", "bf16", "fp16"),
        f"training.precision must be fp32, bf16 or fp16, got {tr['precision']!r}",
    )
    _check(isinstance(tr["compile"], bool), "training.compile must be true or false")
    if tr["precision"] != "fp32" and not _will_use_cuda(tr["device"]):
        raise ConfigError(
            f"training.precision={tr['precision']} needs a CUDA GPU, but training runs on "
            f"{_describe_device(tr['device'])}; use training.precision=fp32"
        )
    if tr["compile"] and tr["device"] == "mps":
        raise ConfigError("training.compile=true is not supported on MPS; set training.compile=false")


def _will_use_cuda(device: str) -> bool:
    return str(device).startswith("cuda") or (device == "auto" and torch.cuda.is_available())


def _describe_device(device: str) -> str:
    return "the CPU (no CUDA GPU found)" if device in ("auto", "cpu") else device


# An opponent entry "checkpoint:<.zip or run folder>": another trained agent, e.g. a rival run's or a
# league's, played with argmax actions; its path is stored absolute, so a resumed run finds it again.
CHECKPOINT_OPPONENT = "checkpoint:"


def external_opponent_path(entry: Any) -> Path | None:
    """The checkpoint a ``self_play.opponents`` entry names, or None for a bot or self-play."""
    if isinstance(entry, str) and entry.startswith(CHECKPOINT_OPPONENT):
        return Path(entry[len(CHECKPOINT_OPPONENT) :]).expanduser().resolve()
    return None


def with_absolute_opponent_paths(config: dict) -> dict:
    """``config`` with each external opponent's checkpoint path made absolute (before config.json is written)."""
    out = copy.deepcopy(config)
    for name, (weight, entry) in config["self_play"]["opponents"].items():
        path = external_opponent_path(entry)
        if path is not None:
            out["self_play"]["opponents"][name] = [weight, f"{CHECKPOINT_OPPONENT}{path}"]
    return out


def _validate_opponents(sp: dict) -> None:
    _check(sp["handler"] in SELF_PLAY_HANDLERS, f"self_play.handler must be one of {SELF_PLAY_HANDLERS}")
    opponents = sp["opponents"]
    _check(isinstance(opponents, dict) and opponents, "self_play.opponents must be a non-empty mapping")
    for name, value in opponents.items():
        _check(
            isinstance(value, (list, tuple)) and len(value) == 2,
            f"self_play.opponents.{name} must be (weight, entry), got {value!r}",
        )
        weight, entry = value
        _check(
            isinstance(weight, (int, float)) and not isinstance(weight, bool) and math.isfinite(weight) and weight >= 0,
            f"self_play.opponents.{name}: weight must be a finite number >= 0, got {weight!r}",
        )
        if entry is None:
            _check(name == "self_play", f"self_play.opponents.{name}: only 'self_play' may have entry None")
        elif (path := external_opponent_path(entry)) is not None:
            _check(path.exists(), f"self_play.opponents.{name}: checkpoint not found: {path}")
        else:
            _check(
                is_agent_name(entry),
                f"self_play.opponents.{name}: unknown agent {entry!r}; known: {', '.join(agent_names())} "
                "or hold:<macro>",
            )
    _check(sum(w for w, _ in opponents.values()) > 0, "self_play.opponents weights sum to zero")
