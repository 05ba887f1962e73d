"""How the trainer's nested config dicts are combined, overridden, read and checked for keys.

The configs themselves (their values) live in ``user/train_agent.py``; this module only
knows their shape: sections of dicts, a few values that are replaced whole (the opponent
mix and ``net_arch``), and dotted key paths such as ``agent.learning_rate``.

- :func:`merge_config` builds a config as a deep copy of a base with overrides applied, so
  no two configs share a nested dict and an override key the base lacks is an error.
- :func:`require_keys` names the first key a config lacks, instead of a ``KeyError`` later.
- :func:`apply_overrides` applies ``--set a.b=value`` (YAML values).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import yaml

# Values that are dicts but are replaced whole, never merged key by key: an opponent mix or
# a network shape given in an override is the whole new value.
WHOLE_VALUES = ("opponents", "net_arch")

_EXPONENT_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


class ConfigError(ValueError):
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


def lookup(config: dict, dotted: str) -> Any:
    """``config['a']['b']`` for ``'a.b'``; a missing key is a :class:`ConfigError` naming it."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"config key {dotted!r} is missing")
        node = node[part]
    return node


def apply_overrides(config: dict, overrides: list[str]) -> dict:
    """Apply ``--set a.b=value`` overrides; values are YAML literals (numbers, lists, ...)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key.path=value, got {item!r}")
        dotted, raw = item.split("=", 1)
        value = yaml.safe_load(raw)
        if isinstance(value, str) and _EXPONENT_NUMBER.fullmatch(value):  # YAML 1.1 reads "1e-4" as a string
            value = float(value)
        nested: Any = value
        for part in reversed(dotted.split(".")):
            nested = {part: nested}
        config = merge_config(config, nested)
    return config


def load_config_json(path: Path) -> dict:
    """A saved config; a missing or corrupt file gets a clear message naming it."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); it may be corrupt") from None


def load_config_file(path: Path, base: dict) -> dict:
    """A config from YAML or JSON, merged over ``base`` and named after the file (unknown keys are errors)."""
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) if path.suffix in (".yaml", ".yml") else json.loads(path.read_text())
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} could not be parsed: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of config sections")
    return merge_config({**base, "name": path.stem}, data)
