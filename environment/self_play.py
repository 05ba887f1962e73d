"""Self-play plumbing: snapshots on disk, snapshot opponents in memory, the opponent mix.

- :class:`SaveHandler` saves the learning agent every ``save_freq`` steps as
  ``<save_path>/<run_name>/<name_prefix>_<steps>_steps.*`` and keeps at most
  ``max_saved`` snapshots. Its modes never wait for input:

  | mode      | run folder already holds snapshots                                |
  |-----------|-------------------------------------------------------------------|
  | FORCE     | they are moved aside to ``<run_name>.old-<time>`` (never deleted)  |
  | RESUME    | they are kept and become the opponent pool; numbering continues   |
  | SELECTIVE | a fresh ``<run_name>_2`` (``_3``, ...) folder is used instead       |

- :class:`SelfPlayLatest`, :class:`SelfPlayRandom` and :class:`SelfPlayRecent`
  pick a snapshot per episode. Loaded snapshots stay in memory (a small LRU
  cache), so an episode never re-reads a file.
- :class:`OpponentsCfg` is the weighted mix ``{name: (weight, entry)}`` where an
  entry is a registry name, an Agent, an Agent factory, or a self-play handler.
"""

from __future__ import annotations

import re
import shutil
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from environment.agents import Agent, ConstantAgent, agent_names, is_agent_name, make_agent


class SaveHandlerMode(Enum):
    FORCE = "force"
    RESUME = "resume"
    SELECTIVE = "selective"


_STEPS_RE = re.compile(r"_(\d+)_steps")


def snapshot_steps(path: Path | str) -> int:
    """The step count in a snapshot name like ``rl_model_5000_steps.zip``."""
    match = _STEPS_RE.search(Path(path).name)
    if match is None:
        raise ValueError(f"{path} is not a snapshot name (<prefix>_<steps>_steps.zip)")
    return int(match.group(1))


class SaveHandler:
    """Saves snapshots of ``agent`` during training and keeps the newest ``max_saved``.

    :param agent: anything with ``save(path)`` (an Agent, or an SB3 model); may be set later
    :param save_freq: save every this many environment steps
    :param max_saved: snapshots kept on disk (oldest deleted first); None keeps all
    :param mode: a SaveHandlerMode or its name
    :param protected: called with a snapshot path; True keeps it past ``max_saved``
        (the trainer uses it to keep the best snapshots by its evaluation headline)
    """

    def __init__(
        self,
        agent: Any = None,
        save_freq: int = 100_000,
        max_saved: int | None = 20,
        save_path: str | Path = "checkpoints",
        run_name: str = "experiment",
        name_prefix: str = "rl_model",
        mode: SaveHandlerMode | str = SaveHandlerMode.FORCE,
        protected: Callable[[Path], bool] | None = None,
    ):
        if save_freq <= 0:
            raise ValueError(f"save_freq must be positive, got {save_freq}")
        if max_saved is not None and max_saved <= 0:
            raise ValueError(f"max_saved must be positive or None, got {max_saved}")
        self.agent = agent
        self.save_freq = int(save_freq)
        self.max_saved = max_saved
        self.name_prefix = name_prefix
        self.mode = SaveHandlerMode(mode.lower()) if isinstance(mode, str) else mode
        self.protected = protected
        self.run_dir = self._prepare_run_dir(Path(save_path), run_name)
        self.history: list[Path] = self._existing_snapshots() if self.mode is SaveHandlerMode.RESUME else []
        self.last_save_step = snapshot_steps(self.history[-1]) if self.history else 0

    # --- run folder ------------------------------------------------------------------
    def _prepare_run_dir(self, save_path: Path, run_name: str) -> Path:
        run_dir = save_path / run_name
        if self.mode is SaveHandlerMode.FORCE and self._has_snapshots(run_dir):
            aside = save_path / f"{run_name}.old-{time.strftime('%Y%m%d-%H%M%S')}"
            shutil.move(str(run_dir), str(aside))
            print(f"[SaveHandler] FORCE: moved the existing snapshots of {run_dir} to {aside}")
        elif self.mode is SaveHandlerMode.SELECTIVE and self._has_snapshots(run_dir):
            k = 2
            while self._has_snapshots(save_path / f"{run_name}_{k}"):
                k += 1
            run_dir = save_path / f"{run_name}_{k}"
            print(f"[SaveHandler] SELECTIVE: {save_path / run_name} has snapshots; using {run_dir}")
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir

    def _has_snapshots(self, run_dir: Path) -> bool:
        return run_dir.is_dir() and any(run_dir.glob(f"{self.name_prefix}_*_steps.zip"))

    def _existing_snapshots(self) -> list[Path]:
        return sorted(self.run_dir.glob(f"{self.name_prefix}_*_steps.zip"), key=snapshot_steps)

    # --- saving ----------------------------------------------------------------------
    def snapshot_path(self, steps: int) -> Path:
        return self.run_dir / f"{self.name_prefix}_{steps}_steps.zip"

    def due(self, num_timesteps: int) -> bool:
        return num_timesteps - self.last_save_step >= self.save_freq

    def step(self, num_timesteps: int) -> Path | None:
        """Save if ``save_freq`` steps passed since the last save; returns the new path."""
        return self.save_agent(num_timesteps) if self.due(num_timesteps) else None

    def save_agent(self, num_timesteps: int) -> Path:
        if self.agent is None:
            raise RuntimeError("SaveHandler has no agent to save; set save_handler.agent first")
        path = self.snapshot_path(num_timesteps)
        self.agent.save(str(path))
        self.record(path)
        return path

    def record(self, path: Path) -> list[Path]:
        """Register a snapshot written by someone else (e.g. the trainer's atomic saver).

        Returns the snapshots deleted to stay within ``max_saved``.
        """
        path = Path(path)
        self.history = [p for p in self.history if p != path] + [path]
        self.last_save_step = snapshot_steps(path)
        return self.enforce_max_saved()

    def enforce_max_saved(self) -> list[Path]:
        """Delete the oldest unprotected snapshots beyond ``max_saved``; returns them."""
        if self.max_saved is None:
            return []
        removable = [p for p in self.history[:-1] if not (self.protected and self.protected(p))]
        excess = len(self.history) - self.max_saved
        doomed = removable[: max(excess, 0)]
        for path in doomed:
            for file in snapshot_files(path):
                file.unlink(missing_ok=True)
        self.history = [p for p in self.history if p not in doomed]
        return doomed

    def latest(self) -> Path | None:
        return self.history[-1] if self.history else None


# How an env's saved state names a snapshot opponent: by file name, so a run folder that was
# moved or is resumed from another directory still finds it. Only this module writes or reads it.
_SNAPSHOT_KEY = "snapshot:"


def snapshot_key(path: Path | str) -> str:
    """The opponent key of the snapshot at ``path`` (what resume state stores)."""
    return _SNAPSHOT_KEY + Path(path).name


def snapshot_name(key: str) -> str | None:
    """The snapshot file name in an opponent key, or None when the key is not a snapshot's."""
    return key.removeprefix(_SNAPSHOT_KEY) if key.startswith(_SNAPSHOT_KEY) else None


def snapshot_names(keys) -> set[str]:
    """The snapshot file names among opponent keys."""
    return {name for name in map(snapshot_name, keys) if name is not None}


def snapshot_files(zip_path: Path) -> list[Path]:
    """The snapshot's zip and its companion files (e.g. ``..._transformer_encoder.pth``)."""
    stem = zip_path.name[: -len(".zip")] if zip_path.name.endswith(".zip") else zip_path.name
    return [zip_path, *sorted(zip_path.parent.glob(f"{stem}_*"))]


# ==================================================================================
# Snapshot opponents
# ==================================================================================
class SelfPlayHandler:
    """Serves snapshot opponents to the environment, one choice per episode.

    :param agent_loader: path → Agent, reading weights only (supplied by the trainer)
    :param save_handler: where the snapshot list comes from
    :param fallback: the opponent before the first snapshot exists
    :param cache_size: snapshots kept loaded in memory; None (the default): every snapshot in the pool,
        so none is read from disk twice (a snapshot that leaves the pool leaves the cache)
    :param seed: seeds the choice among snapshots
    """

    def __init__(
        self,
        agent_loader: Callable[[Path], Agent],
        save_handler: SaveHandler | None = None,
        fallback: Agent | None = None,
        cache_size: int | None = None,
        seed: int | None = None,
    ):
        self.agent_loader = agent_loader
        self.save_handler = save_handler
        self.fallback = fallback or ConstantAgent()
        self.cache: OrderedDict[Path, Agent] = OrderedDict()
        self.cache_size = cache_size
        self.rng = np.random.default_rng(seed)
        self.extra_snapshots: list[Path] = []  # e.g. admitted exploiters; never pruned by max_saved
        self.snapshot_weights: dict[Path, float] = {}  # PFSP priorities (missing: 1)
        self.loads = 0  # times a snapshot was read from disk
        self.served = 0  # episodes given a snapshot opponent
        self.last_choice: Path | None = None

    def snapshots(self) -> list[Path]:
        own = list(self.save_handler.history) if self.save_handler else []
        return sorted(own + self.extra_snapshots, key=snapshot_steps)

    def choose(self, snapshots: list[Path]) -> Path:
        raise NotImplementedError

    def get_opponent(self) -> Agent:
        snapshots = [p for p in self.snapshots() if p.exists()]
        if not snapshots:
            self.last_choice = None
            return self.fallback
        path = self.choose(snapshots)
        self.last_choice = path
        self.served += 1
        return self.agent_for_path(path)

    def add_loaded(self, path: Path, agent: Agent) -> None:
        """Put an already-built snapshot agent in the cache (saves a disk read)."""
        self.cache[Path(path)] = agent
        self._trim()

    def path_for_name(self, name: str) -> Path:
        """A snapshot's path from its file name (names are what resume state stores)."""
        for path in [*self.snapshots(), *self.cache]:
            if path.name == name:
                return path
        if self.save_handler is None:
            raise FileNotFoundError(f"snapshot {name} is unknown and there is no run folder to look in")
        return self.save_handler.run_dir / name

    def agent_for_key(self, key: str) -> Agent:
        """The snapshot an opponent key (:func:`snapshot_key`) names."""
        name = snapshot_name(key)
        if name is None:
            raise ValueError(f"{key!r} is not a snapshot key")
        return self.agent_for_path(self.path_for_name(name))

    def choice_key(self) -> str | None:
        """The opponent key of the last snapshot chosen (None while the fallback plays)."""
        return snapshot_key(self.last_choice) if self.last_choice else None

    def agent_for_path(self, path: Path) -> Agent:
        """The snapshot at ``path``, from memory when cached, else read (weights only)."""
        path = Path(path)
        if path in self.cache:
            self.cache.move_to_end(path)
            self._trim()
            return self.cache[path]
        agent = self.agent_loader(path)
        self.loads += 1
        self.cache[path] = agent
        self._trim()
        return agent

    def _trim(self) -> None:
        if self.cache_size is None:  # the whole pool: drop only what has left it (pruned by max_saved)
            pool = set(self.snapshots())
            for path in [p for p in self.cache if p not in pool and not p.exists()]:
                del self.cache[path]
            return
        while len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)

    def get_state(self) -> dict:
        # Snapshots by file name, so a moved run folder still resumes.
        return {
            "rng": self.rng.bit_generator.state,
            "loads": self.loads,
            "served": self.served,
            "last_choice": self.last_choice.name if self.last_choice else None,
            "extra_snapshots": [p.name for p in self.extra_snapshots],
            "snapshot_weights": [[p.name, w] for p, w in self.snapshot_weights.items()],
        }

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.loads, self.served = state["loads"], state["served"]
        run_dir = self.save_handler.run_dir if self.save_handler else Path(".")
        self.extra_snapshots = [run_dir / name for name in state["extra_snapshots"]]
        self.last_choice = self.path_for_name(state["last_choice"]) if state["last_choice"] else None
        self.snapshot_weights = {self.path_for_name(name): w for name, w in state["snapshot_weights"]}


class SelfPlayLatest(SelfPlayHandler):
    """Always the newest snapshot."""

    def choose(self, snapshots: list[Path]) -> Path:
        return snapshots[-1]


class SelfPlayRandom(SelfPlayHandler):
    """Any snapshot, uniformly; with ``temperature`` > 0, newer ones more likely.

    Snapshot i of n (0 oldest) gets weight exp(temperature · i / n): temperature 0
    is uniform, larger values shift play toward recent snapshots.
    """

    temperature: float = 0.0

    def choose(self, snapshots: list[Path]) -> Path:
        n = len(snapshots)
        logits = self.temperature * np.arange(n) / max(n, 1)
        probs = np.exp(logits - logits.max())
        probs *= np.array([self.snapshot_weights.get(p, 1.0) for p in snapshots])  # PFSP priorities
        return snapshots[int(self.rng.choice(n, p=probs / probs.sum()))]


class SelfPlayRecent(SelfPlayHandler):
    """One of the ``k`` newest snapshots, uniformly."""

    def __init__(self, *args, k: int = 5, **kwargs):
        super().__init__(*args, **kwargs)
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        self.k = k

    def choose(self, snapshots: list[Path]) -> Path:
        recent = snapshots[-self.k :]
        return recent[int(self.rng.integers(len(recent)))]


# ==================================================================================
# The opponent mix
# ==================================================================================
@dataclass
class OpponentsCfg:
    """Weighted opponents: ``{name: (weight, entry)}``.

    An entry is a registry name (``"based"``), an Agent instance, an Agent class or
    zero-argument factory (built once and shared by all matches, batched), or a
    :class:`SelfPlayHandler`. Weights need not sum to 1.
    """

    opponents: dict[str, tuple[float, Any]] = field(default_factory=lambda: {"based": (1.0, "based")})

    def __post_init__(self) -> None:
        if not self.opponents:
            raise ValueError("OpponentsCfg needs at least one opponent")
        for name, value in self.opponents.items():
            if not (isinstance(value, tuple) and len(value) == 2):
                raise ValueError(f"opponent {name!r}: expected (weight, entry), got {value!r}")
            weight, entry = value
            if not np.isfinite(weight) or weight < 0:
                raise ValueError(f"opponent {name!r}: weight must be finite and >= 0, got {weight}")
            if entry is None:
                raise ValueError(f"opponent {name!r} has no entry (None); the trainer fills 'self_play' entries")
            if isinstance(entry, str) and not is_agent_name(entry):
                known = ", ".join(agent_names())
                raise KeyError(f"opponent {name!r}: unknown agent {entry!r}; known agents: {known} or hold:<macro>")
        if sum(w for w, _ in self.opponents.values()) <= 0:
            raise ValueError("opponent weights sum to zero")
        self._built: dict[str, Agent] = {}
        self.seed: int | None = None  # set by the env that uses the mix

    @property
    def names(self) -> list[str]:
        return list(self.opponents)

    def probabilities(self) -> np.ndarray:
        w = np.array([w for w, _ in self.opponents.values()], np.float64)
        return w / w.sum()

    def set_weights(self, weights: dict[str, float]) -> None:
        """Change weights (adaptive weighting); unknown names are an error."""
        for name, weight in weights.items():
            if name not in self.opponents:
                raise KeyError(f"unknown opponent {name!r}; known: {self.names}")
            self.opponents[name] = (float(weight), self.opponents[name][1])

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Indices into ``names`` for ``size`` new episodes."""
        return rng.choice(len(self.opponents), size=size, p=self.probabilities())

    def agent_for(self, name: str) -> Agent:
        """The Agent to play this episode for opponent ``name``."""
        entry = self.opponents[name][1]
        if isinstance(entry, SelfPlayHandler):
            return entry.get_opponent()
        if name not in self._built:
            # Seeded from the mix's seed and the entry's position, so runs repeat exactly.
            seed = None if self.seed is None else self.seed + 7919 * (self.names.index(name) + 1)
            self._built[name] = _build_agent(name, entry, seed)
        return self._built[name]

    def built_agents(self) -> dict[str, Agent]:
        """Agents built so far from registry names or factories (their memory persists)."""
        return dict(self._built)

    def self_play_handlers(self) -> list[SelfPlayHandler]:
        return [e for _, e in self.opponents.values() if isinstance(e, SelfPlayHandler)]


def _build_agent(name: str, entry: Any, seed: int | None = None) -> Agent:
    if isinstance(entry, Agent):
        return entry
    if isinstance(entry, str):
        return make_agent(entry, seed=seed)
    if callable(entry):
        agent = entry()
        if not isinstance(agent, Agent):
            raise TypeError(f"opponent {name!r}: factory returned {type(agent).__name__}, not an Agent")
        return agent
    raise TypeError(f"opponent {name!r}: unsupported entry {entry!r}")
