"""A league of learners (issue 17, item 3): a main agent and its exploiters, each training its own policy
against frozen players, with one league keeping the pool, the payoff table, Elo and matchmaking.

The pieces, from the inside out:

- :class:`League`: the league's whole state and rules, plain Python. It answers two questions:
  :meth:`League.plan` ("what does this role train next, against whom, from which weights?") and
  :meth:`League.report` ("this role finished a segment: here are its checkpoint and its results").
  Every change is written to ``league.json`` atomically before the call returns, and a new
  ``League`` on the same file continues from it. On Ray it lives in one named actor that Ray restarts
  after a crash (``max_restarts=-1``); the restarted actor reloads ``league.json``.
- :func:`run_role`: one learner. It trains in **segments**: each segment is a trainer run
  (``runs/<role>/seg<k>``) of ``segment_steps`` steps against the opponents its plan names, started
  from the previous segment's final weights (``training.init_from``), or from the role's start
  weights after a reset. A learner that dies mid-segment is started again and continues that
  segment's run from its newest checkpoint, exactly as ``--resume`` does. After a segment it plays
  its final checkpoint against those opponents and reports the results.

Why segments: a run's opponents are frozen on ``--resume`` (the matches in play hold them), so a
learner takes new opponents at a segment boundary; the optimizer's moments restart there (weights
only), as they do for ``training.init_from``.

Rules (AlphaStar's, at our scale):

- **main**: trains against the pool by PFSP, weight ``(1 - p)^2`` with ``p`` its win rate against
  that player (0.5 before any game), over a ``pool_share`` of its matches; the rest are its config's
  own opponents (the scripted roster). Its snapshot joins the pool when it wins at least
  ``main_admit_win_rate`` of its matches against its segment's pool opponents (the first one always).
- **main_exploiter**: trains against the current main only (the newest main in the pool; it waits
  for the first). Admitted when it wins at least ``exploiter_admit_win_rate`` against it; then it
  **resets** to its start weights (a new run from its config and seed).
- **league_exploiter** (optional): PFSP over the whole pool; admitted and reset as the main exploiter.

Reports are idempotent by ``(role, segment)``: a learner whose call was cut by a crash asks again
and gets the recorded decision, so no admission is lost or recorded twice. Every admission and
reset goes to the event log (``events`` in ``league.json``) with the learner's step.

A league is not bit-reproducible as a whole: which snapshots a learner meets depends on when the
other learners report (timing). Each learner's segment run resumes exactly.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any, Protocol

from environment.checkpoints import atomic_write_text
from environment.evaluation import EloRatings
from user.config_tools import CHECKPOINT_OPPONENT, ConfigError

log = logging.getLogger("league")

LEAGUE_FILE = "league.json"
LEAGUE_VERSION = 1
ROLES = ("main", "main_exploiter", "league_exploiter")
EXPLOITERS = ("main_exploiter", "league_exploiter")
OUTCOMES = ("win", "draw", "loss")


@dataclasses.dataclass(frozen=True)
class LeagueRules:
    """How many segments each role trains, their length, and the admission and matchmaking rules."""

    segments: dict[str, int]  # role -> segments to train (roles not named do not play)
    segment_steps: int
    eval_matches: int = 8  # matches per opponent after each segment (argmax play, both sides)
    main_admit_win_rate: float = 0.5
    exploiter_admit_win_rate: float = 0.7
    pool_share: float = 0.5  # main's matches against the pool (the rest: its config's opponents)
    pfsp_power: float = 2.0

    def __post_init__(self) -> None:
        if not isinstance(self.segments, dict) or "main" not in self.segments:
            raise ConfigError("league: segments must name the main role, e.g. {'main': 4, 'main_exploiter': 4}")
        for role, count in self.segments.items():
            if role not in ROLES:
                raise ConfigError(f"league: unknown role {role!r}; roles are {', '.join(ROLES)}")
            if not isinstance(count, int) or count < 1:
                raise ConfigError(f"league: segments of {role} must be a positive integer, got {count!r}")
        for name in ("segment_steps", "eval_matches"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"league: {name} must be a positive integer, got {value!r}")
        for name in ("main_admit_win_rate", "exploiter_admit_win_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"league: {name} must be in [0, 1], got {getattr(self, name)!r}")
        if not 0.0 < self.pool_share < 1.0:
            raise ConfigError(f"league: pool_share must be in (0, 1), got {self.pool_share!r}")
        if not self.pfsp_power > 0:
            raise ConfigError(f"league: pfsp_power must be > 0, got {self.pfsp_power!r}")


def pfsp_weights(win_rates: dict[str, float | None], power: float = 2.0) -> dict[str, float]:
    """Prioritized fictitious self-play ("hard"): weight ``(1 - p)^power`` per opponent, normalised to
    sum to 1; ``p`` None (never played) counts as 0.5. All beaten (every weight 0): uniform."""
    raw = {name: (1.0 - (0.5 if p is None else p)) ** power for name, p in win_rates.items()}
    total = sum(raw.values())
    if total <= 0:
        return {name: 1.0 / len(raw) for name in raw} if raw else {}
    return {name: w / total for name, w in raw.items()}


def win_rate(counts: list[int]) -> float | None:
    """Wins over games from ``[wins, draws, losses]``; None with no games."""
    games = sum(counts)
    return counts[0] / games if games else None


class League:
    """The league's state, persisted to ``<folder>/league.json`` after every change (see the module doc)."""

    def __init__(self, folder: str | Path, rules: LeagueRules | None = None):
        self.path = Path(folder) / LEAGUE_FILE
        if self.path.exists():
            self.state = read_league(self.path)
            if rules is not None and dataclasses.asdict(rules) != self.state["rules"]:
                raise ConfigError(
                    f"{self.path} holds a league with other rules; --resume it, or choose another --storage"
                )
        elif rules is None:
            raise ConfigError(f"{self.path} not found: no league to continue")
        else:
            self.state = {
                "version": LEAGUE_VERSION,
                "rules": dataclasses.asdict(rules),
                "players": [],  # the pool: admitted snapshots, oldest first
                "reports": {role: [] for role in rules.segments},
                "generation": {role: 0 for role in rules.segments},
                "payoff": {},  # payoff[a][b] = [wins, draws, losses] of a against b
                "elo": EloRatings().to_dict(),
                "events": [],
            }
            self._save()
        self.rules = LeagueRules(**self.state["rules"])

    # --- questions the learners ask -----------------------------------------------------------
    def plan(self, role: str) -> dict[str, Any]:
        """The role's next segment: ``{segment, done, wait, init_from, generation, step, opponents}``.
        ``opponents`` maps a pool player's name to ``[share, checkpoint]`` (shares sum to 1 over the pool);
        ``wait`` is True while an exploiter's target does not exist yet."""
        self._check_role(role)
        reports = self.state["reports"][role]
        segment = len(reports)
        plan = {
            "role": role,
            "segment": segment,
            "done": segment >= self.rules.segments[role],
            "wait": False,
            "generation": self.state["generation"][role],
            "step": reports[-1]["step"] if reports else 0,
            "init_from": self._init_from(role),
            "opponents": {},
        }
        if plan["done"]:
            return plan
        targets = self._targets(role)
        plan["wait"] = role != "main" and not targets
        plan["opponents"] = {
            name: [share, self._player(name)["checkpoint"]]
            for name, share in pfsp_weights(targets, self.rules.pfsp_power).items()
        }
        return plan

    def report(
        self, role: str, segment: int, step: int, checkpoint: str, results: dict[str, list[int]]
    ) -> dict[str, Any]:
        """Record a finished segment: its results (``{opponent: [wins, draws, losses]}``) go to the payoff
        table and Elo (in sorted opponent order), and the admission rule decides whether its checkpoint
        joins the pool (an admitted exploiter resets). A segment reported before returns its recorded
        decision unchanged; a report out of order is refused."""
        self._check_role(role)
        reports = self.state["reports"][role]
        if segment < len(reports):
            return reports[segment]["decision"]
        if segment != len(reports):
            raise ConfigError(f"league: {role} reported segment {segment}, but its next segment is {len(reports)}")
        for name, counts in results.items():
            if name not in {p["name"] for p in self.state["players"]}:
                raise ConfigError(f"league: {role} reported results against {name!r}, which is not in the pool")
            if len(counts) != 3 or any(not isinstance(c, int) or c < 0 for c in counts):
                raise ConfigError(f"league: results against {name!r} must be [wins, draws, losses], got {counts!r}")
        name = f"{role}_g{self.state['generation'][role]}_s{segment}"
        self._record_results(name, results)
        played = [sum(c) for c in results.values()]
        rate = sum(c[0] for c in results.values()) / sum(played) if sum(played) else None
        admitted = self._admits(role, rate, results)
        decision = {"player": name, "admitted": admitted, "win_rate": rate, "reset": admitted and role in EXPLOITERS}
        event_base = {"role": role, "segment": segment, "step": int(step), "time": round(time.time(), 3)}
        if admitted:
            self.state["players"].append(
                {"name": name, "role": role, "checkpoint": str(checkpoint), "step": int(step), "segment": segment}
            )
            self.state["events"].append({"event": "admit", "player": name, "win_rate": rate, **event_base})
        if decision["reset"]:
            self.state["generation"][role] += 1
            self.state["events"].append({"event": "reset", "player": name, **event_base})
        reports.append(
            {
                "segment": segment,
                "step": int(step),
                "checkpoint": str(checkpoint),
                "results": results,
                "decision": decision,
            }
        )
        self._save()
        return decision

    # --- what the league shows ------------------------------------------------------------
    def table(self) -> list[dict[str, Any]]:
        """The pool by Elo: name, role, step, Elo, games."""
        elo = EloRatings.from_dict(self.state["elo"])
        rows = [
            {
                "name": p["name"],
                "role": p["role"],
                "step": p["step"],
                "elo": round(elo.rating(p["name"]), 1),
                "games": elo.games.get(p["name"], 0),
            }
            for p in self.state["players"]
        ]
        return sorted(rows, key=lambda r: (-r["elo"], r["name"]))

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy(self.state)

    # --- the rules ------------------------------------------------------------------------------
    def _targets(self, role: str) -> dict[str, float | None]:
        """The role's opponents with its win rate against each (None: never played)."""
        players = self.state["players"]
        if role == "main_exploiter":
            mains = [p["name"] for p in players if p["role"] == "main"]
            names = mains[-1:]
        else:
            names = [p["name"] for p in players]
        me = f"{role}_g{self.state['generation'][role]}"
        return {name: self._role_win_rate(me, name) for name in names}

    def _role_win_rate(self, prefix: str, opponent: str) -> float | None:
        """The win rate against ``opponent`` of the role's newest reported player of this generation."""
        mine = [a for a in self.state["payoff"] if a.startswith(prefix + "_s") and opponent in self.state["payoff"][a]]
        if not mine:
            return None
        newest = max(mine, key=lambda a: int(a.rsplit("_s", 1)[1]))
        return win_rate(self.state["payoff"][newest][opponent])

    def _admits(self, role: str, rate: float | None, results: dict[str, list[int]]) -> bool:
        if role == "main":
            has_main = any(p["role"] == "main" for p in self.state["players"])
            return not has_main or (rate is not None and rate >= self.rules.main_admit_win_rate)
        return rate is not None and rate >= self.rules.exploiter_admit_win_rate

    def _init_from(self, role: str) -> str | None:
        """The previous segment's checkpoint of this generation, or None (the role's start weights)."""
        reports = self.state["reports"][role]
        if not reports or reports[-1]["decision"]["reset"]:
            return None
        return reports[-1]["checkpoint"]

    def _record_results(self, name: str, results: dict[str, list[int]]) -> None:
        elo = EloRatings.from_dict(self.state["elo"])
        payoff = self.state["payoff"]
        for opponent in sorted(results):
            wins, draws, losses = results[opponent]
            payoff.setdefault(name, {})[opponent] = [wins, draws, losses]
            payoff.setdefault(opponent, {})[name] = [losses, draws, wins]
            elo.update_from_results(name, opponent, ["win"] * wins + ["draw"] * draws + ["loss"] * losses)
        self.state["elo"] = elo.to_dict()

    def _player(self, name: str) -> dict[str, Any]:
        return next(p for p in self.state["players"] if p["name"] == name)

    def _check_role(self, role: str) -> None:
        if role not in self.state["reports"]:
            raise ConfigError(f"league: role {role!r} is not in this league ({', '.join(self.state['reports'])})")

    def _save(self) -> None:
        atomic_write_text(self.path, json.dumps(self.state, indent=1) + "\n")


def read_league(path: Path) -> dict[str, Any]:
    """``league.json``, checked for the keys a :class:`League` needs; a clear error otherwise."""
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    missing = [
        k for k in ("version", "rules", "players", "reports", "generation", "payoff", "elo", "events") if k not in state
    ]
    if missing:
        raise ConfigError(f"{path} is not a league file (missing {', '.join(missing)})")
    if state["version"] != LEAGUE_VERSION:
        raise ConfigError(f"{path} is league version {state['version']}; this code reads {LEAGUE_VERSION}")
    return state


# ==================================================================================
# === A learner ===
# ==================================================================================
class LeagueClient(Protocol):
    """What a learner calls: a :class:`League` in this process, or the Ray actor's proxy."""

    def plan(self, role: str) -> dict[str, Any]: ...

    def report(
        self, role: str, segment: int, step: int, checkpoint: str, results: dict[str, list[int]]
    ) -> dict[str, Any]: ...


ROLE_SEED_OFFSET = {"main": 0, "main_exploiter": 1000, "league_exploiter": 2000}


def segment_name(role: str, generation: int, segment: int) -> str:
    """The segment's trial name, also its run folder under ``<storage>/runs``."""
    return f"{role}/g{generation}_seg{segment}"


def segment_config(base: dict, plan: dict[str, Any], steps: int, pool_share: float) -> dict:
    """The trainer config of one segment: ``steps`` steps from ``plan['init_from']`` (or the role's start
    weights) against the config's own opponents plus the plan's pool players (``pool_share`` of the
    weight for the main agent; an exploiter plays its pool opponents only). A segment that starts from
    the role's start weights takes the role's seed, so a reset exploiter starts from the same weights
    each time; a continuing segment adds its index (new matches, not a replay of the last segment's)."""
    config = copy.deepcopy(base)
    config["training"]["total_timesteps"] = steps
    role_seed = int(base["training"]["seed"]) + ROLE_SEED_OFFSET[plan["role"]]
    config["training"]["seed"] = role_seed + (plan["segment"] if plan["init_from"] else 0)
    if plan["init_from"]:
        config["training"]["init_from"] = plan["init_from"]
        config["warm_start"]["seconds"] = 0.0
    own = config["self_play"]["opponents"]
    league = {
        f"league:{name}": (share, f"{CHECKPOINT_OPPONENT}{path}") for name, (share, path) in plan["opponents"].items()
    }
    if plan["role"] != "main" and league:
        own = {name: (0.0, entry) for name, (_, entry) in own.items()}  # exploiters: the pool only
        config["controls"]["opponent_schedule"]["enabled"] = False
        config["self_play"]["opponents"] = {**own, **league}
        return config
    if league:
        own_total = sum(weight for weight, _ in own.values())
        scale = own_total * pool_share / (1.0 - pool_share)
        league = {name: (share * scale, entry) for name, (share, entry) in league.items()}
    config["self_play"]["opponents"] = {**own, **league}
    return config


def play_segment_results(checkpoint: Path, opponents: dict[str, list], matches: int, max_timesteps: int, seed: int):
    """The checkpoint's argmax results against each pool opponent: ``{name: [wins, draws, losses]}``."""
    from environment.evaluation import play_vs_opponents, result_list
    from user.train_agent import load_agent

    if not opponents:
        return {}
    me = load_agent(checkpoint)
    rivals = {name: load_agent(path) for name, (_, path) in sorted(opponents.items())}
    played = play_vs_opponents(me, rivals, matches, max_timesteps, seed=seed, alternate_sides=True)
    return {name: [result_list(played[name]).count(o) for o in OUTCOMES] for name in rivals}


def run_role(
    role: str,
    storage: Path,
    league: LeagueClient,
    base_config: dict,
    rules: LeagueRules,
    wait_s: float = 1.0,
    on_segment=None,
) -> int:
    """Train ``role`` segment after segment until its plan says done; returns the segments it reported.
    Safe to start again after a crash at any point (see the module doc)."""
    from user import scale

    reported = 0
    while True:
        plan = league.plan(role)
        if plan["done"]:
            return reported
        if plan["wait"]:
            time.sleep(wait_s)
            continue
        name = segment_name(role, plan["generation"], plan["segment"])
        config = segment_config(base_config, plan, rules.segment_steps, rules.pool_share)
        trial = {"name": name, "seed": config["training"]["seed"], "overrides": [], "config": config}
        scale.run_trial(trial, storage)
        run_dir = scale.run_dir_of(storage, name)
        step = scale.newest_checkpoint_step(run_dir)
        if step is None or step < rules.segment_steps:
            raise RuntimeError(f"league: segment {name} stopped at step {step} before its end; it continues from there")
        checkpoint = run_dir / f"rl_model_{step}_steps.zip"
        trained = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))["self_play"]["opponents"]
        opponents = {
            key.removeprefix("league:"): [w, entry.removeprefix(CHECKPOINT_OPPONENT)]
            for key, (w, entry) in trained.items()
            if key.startswith("league:")
        }
        results = play_segment_results(
            checkpoint, opponents, rules.eval_matches, base_config["eval"]["max_timesteps"], seed=plan["segment"]
        )
        decision = league.report(role, plan["segment"], plan["step"] + step, str(checkpoint), results)
        log.info(
            "League: %s segment %d (step %s) -> %s%s",
            role,
            plan["segment"],
            f"{plan['step'] + step:,}",
            "admitted" if decision["admitted"] else "not admitted",
            ", reset to its start weights" if decision["reset"] else "",
        )
        reported += 1
        if on_segment is not None:
            on_segment(role, plan["segment"], decision)


__all__ = [
    "EXPLOITERS",
    "LEAGUE_FILE",
    "ROLES",
    "League",
    "LeagueRules",
    "pfsp_weights",
    "read_league",
    "run_role",
    "segment_config",
    "win_rate",
]
