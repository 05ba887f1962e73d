"""The trainer's inspection modes: eval, demo, analyze_strategy, league and export.

Reached from the training script's CLI (``python user/train_agent.py --mode eval ...``), which
hands :func:`run_mode` its parsed arguments and its ``load_agent`` (the network architecture
lives in the training script, so this module never imports it).
"""

from __future__ import annotations

import argparse
import functools
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from environment import evaluation
from environment import params as P
from environment.agents import Agent, agent_names, make_agent
from environment.checkpoints import CheckpointError, CheckpointManifest, atomic_write_text
from environment.render import VideoFallbackWarning
from user.agent_io import TransformerStrategyAgent, resolve_checkpoint
from user.config_tools import ConfigError
from user.export import export_bundle
from user.monitoring import EVAL_COLUMNS, MATCH_FRAMES, eval_csv_row, evaluate_agent, run_eval_match
from user.plots import plot_latent_scatter

log = logging.getLogger("train_agent")

# path, deterministic=True -> the trained agent (the training script's load_agent)
AgentLoader = Callable[..., TransformerStrategyAgent]


def build_arg_parser(config_names: list[str]) -> argparse.ArgumentParser:
    """The training script's command line: train (the default) and every mode here."""
    parser = argparse.ArgumentParser(
        description="Train and inspect Warehouse Brawl agents (transformer strategy encoder + RecurrentPPO).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Modes: train (default), eval, demo, analyze_strategy, league, export.",
    )
    parser.add_argument(
        "--mode",
        default="train",
        choices=["train", "eval", "demo", "analyze_strategy", "league", "export"],
        help="what to do (default: train)",
    )
    parser.add_argument("--config", help=f"config name: {', '.join(config_names)} (default: TRAIN_CONFIG)")
    parser.add_argument("--config-file", help="load the config from a YAML or JSON file")
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config value (YAML: 1e-3, [32, 32], {pi: [8], vf: [8]}), e.g. --set "
        "training.total_timesteps=100000. A key inside self_play.opponents or agent.net_arch "
        "(--set agent.net_arch.pi=[32], --set self_play.opponents.based=[0.5, based]) changes that entry and "
        "keeps the others; a mapping given for either (--set 'self_play.opponents={based: [1.0, based]}') "
        "replaces it whole",
    )
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in this folder")
    parser.add_argument("--run-dir", help="write the run here instead of checkpoints/<config>__<seed>__<time>")
    parser.add_argument("--agent_path", help="checkpoint .zip or run folder (its newest checkpoint)")
    parser.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="load the checkpoint even when it does not match its run's manifest.json (damaged or edited)",
    )
    parser.add_argument("--opponent", default="based", help="opponent for --mode demo (registry name)")
    parser.add_argument("--run", help="run folder for --mode league")
    parser.add_argument("--out", help="output file or folder for demo / eval / export")
    parser.add_argument(
        "--episodes",
        type=int,
        default=None,
        help="matches per opponent: eval (default 50), league and analyze_strategy (default 4)",
    )
    parser.add_argument(
        "--max-timesteps",
        type=int,
        default=MATCH_FRAMES,
        help=f"frames per match for eval / demo / league / analyze_strategy (default {MATCH_FRAMES})",
    )
    parser.add_argument(
        "--progress",
        choices=["auto", "bar", "lines"],
        default="auto",
        help="progress bar on a terminal, plain lines under nohup (default: auto)",
    )
    return parser


def run_mode(args: argparse.Namespace, load_agent: AgentLoader) -> int:
    """Run ``args.mode`` (anything but train); returns the exit status."""
    modes = {
        "eval": _mode_eval,
        "demo": _mode_demo,
        "analyze_strategy": _mode_analyze_strategy,
        "league": _mode_league,
        "export": _mode_export,
    }
    for flag, value in (("--episodes", args.episodes), ("--max-timesteps", args.max_timesteps)):
        if value is not None and value < 1:  # 0 used to mean the default, a negative count a traceback
            raise ConfigError(f"{flag} must be a positive integer, got {value}")
    return modes[args.mode](args, load_agent)


def _matches(args: argparse.Namespace, default: int) -> int:
    return default if args.episodes is None else args.episodes


def _require(value: str | None, flag: str, mode: str) -> str:
    if not value:
        raise ConfigError(f"--mode {mode} needs {flag}")
    return value


def _load(load_agent: AgentLoader, path: Path, verify: bool = True) -> TransformerStrategyAgent:
    log.info("Loading %s", path)
    return load_agent(path, verify=verify)


def _default_out(zip_path: Path, name: str) -> Path:
    return zip_path.parent / f"{zip_path.name.removesuffix('.zip')}_{name}"


def _mode_eval(args: argparse.Namespace, load_agent: AgentLoader) -> int:
    zip_path = resolve_checkpoint(_require(args.agent_path, "--agent_path", "eval"), args.verify)
    agent = _load(load_agent, zip_path, args.verify)
    episodes = _matches(args, 50)
    t0 = time.monotonic()
    rows = evaluate_agent(agent, agent_names(), episodes, args.max_timesteps, seed=0)
    table = [eval_csv_row(r) for r in rows]
    print(f"{zip_path.name} against the roster, {episodes} matches each ({time.monotonic() - t0:.1f} s):")
    print(evaluation.format_table(table))
    print(evaluation.format_table(evaluation.success_table(rows)))
    out = Path(args.out) if args.out else _default_out(zip_path, "eval.csv")
    header = [c for c in EVAL_COLUMNS if c != "step"]
    lines = [",".join(header)] + [",".join(str(r[c]) for c in header) for r in table]
    atomic_write_text(out, "\n".join(lines) + "\n")
    print(f"wrote {out}")
    return 0


VIDEO_SUFFIXES = (".mp4", ".gif")


def _mode_demo(args: argparse.Namespace, load_agent: AgentLoader) -> int:
    zip_path = resolve_checkpoint(_require(args.agent_path, "--agent_path", "demo"), args.verify)
    if args.opponent not in agent_names():
        raise ConfigError(f"unknown --opponent {args.opponent!r}; known agents: {', '.join(agent_names())}")
    out = _video_out(Path(args.out) if args.out else _default_out(zip_path, f"vs_{args.opponent}.mp4"))
    agent = _load(load_agent, zip_path, args.verify)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", VideoFallbackWarning)
        try:
            stats = run_eval_match(agent, args.opponent, args.max_timesteps, video_path=out)
        except (OSError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"could not write the video {out}: {_video_error(exc)}") from exc
    written = out
    for w in caught:  # pass every warning on; an MP4 that fell back to a GIF changes what was written
        if isinstance(w.message, VideoFallbackWarning):
            written = Path(w.message.path)
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    me, them = stats.player_1, stats.player_2
    print(
        f"{zip_path.name} vs {args.opponent}: {me.result} | damage {me.damage_dealt:.0f}-{them.damage_dealt:.0f} | "
        f"knockouts {me.knockouts}-{them.knockouts} | {stats.frames / P.FPS:.1f} s"
    )
    print(f"wrote {written}")
    return 0


def _video_out(out: Path) -> Path:
    """``--out`` for a demo video, checked before the match: a .mp4 or .gif file name in a folder that
    exists (it is created) and can be written."""
    if out.suffix.lower() not in VIDEO_SUFFIXES:
        raise ConfigError(f"--out {out}: a demo video is written as .mp4 or .gif; give a name ending in one of them")
    if out.exists() and not out.is_file():
        raise ConfigError(f"--out {out} exists and is not a file (a folder?); give a .mp4 or .gif file name")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        existed = out.exists()
        with open(out, "ab"):  # can it be written? The encoder would tell only at the end
            pass
        if not existed:
            out.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot write --out {out}: {exc.strerror or exc}") from None
    return out


def _video_error(exc: BaseException) -> str:
    """The cause of a failed video, on one line."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500]


class LatentRecorder(Agent):
    """Plays as ``agent`` and records its strategy latent every ``every`` frames per match."""

    def __init__(self, agent: TransformerStrategyAgent, every: int = 15):
        super().__init__()
        self.agent, self.every = agent, every
        self.frames: dict[int, int] = {}
        self.records: list[tuple[int, np.ndarray]] = []

    def reset(self) -> None:
        self.agent.reset()

    def predict_batch(self, obs, episode_start, env_ids=None):
        actions = self.agent.predict_batch(obs, episode_start, env_ids)
        latent = self.agent.policy.features_extractor.last_latent.cpu().numpy()
        ids = np.arange(len(obs)) if env_ids is None else env_ids
        warm = self.agent.agent_config["sequence_length"]
        for row, env_id in enumerate(ids.tolist()):
            frame = 0 if episode_start[row] else self.frames.get(env_id, 0) + 1
            self.frames[env_id] = frame
            if frame >= warm and frame % self.every == 0:
                self.records.append((env_id, latent[row].copy()))
        return actions


def _mode_analyze_strategy(args: argparse.Namespace, load_agent: AgentLoader) -> int:
    zip_path = resolve_checkpoint(_require(args.agent_path, "--agent_path", "analyze_strategy"), args.verify)
    agent = _load(load_agent, zip_path, args.verify)
    if not hasattr(agent.policy.features_extractor, "last_latent"):
        raise ConfigError(f"{zip_path} is a {agent.agent_config['type']} agent: it has no strategy encoder")
    names = agent_names()
    matches = _matches(args, 4)
    recorder = LatentRecorder(agent)
    evaluation.play_vs_opponents(
        recorder, {n: make_agent(n, seed=i) for i, n in enumerate(names)}, matches, min(args.max_timesteps, 900), seed=0
    )
    labels = [names[env_id // matches] for env_id, _ in recorder.records]
    latents = np.stack([latent for _, latent in recorder.records])
    d = evaluation.latent_distances(latents, labels)
    verdict = evaluation.separation_verdict(d)
    out_dir = Path(args.out) if args.out else _default_out(zip_path, "strategy_analysis")
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_latent_scatter(
        evaluation.project_2d(latents),
        labels,
        out_dir / "strategy_latents_pca.png",
        f"Strategy latents of {zip_path.name} by opponent (PCA)",
    )
    _write_analysis_csv(out_dir / "strategy_analysis.csv", d, labels)
    print(
        f"{len(latents)} latents from {len(names)} opponents: between-opponent distance {d['between']:.4f}, "
        f"within-opponent distance {d['within']:.4f}, ratio {d['ratio']:.2f}"
    )
    print(f"Verdict: the encoder {verdict}")
    print(f"wrote {out_dir / 'strategy_latents_pca.png'} and {out_dir / 'strategy_analysis.csv'}")
    return 0


def _write_analysis_csv(path: Path, d: dict, labels: list[str]) -> None:
    lines = ["opponent,samples,within_distance,between_distance,ratio"]
    for name, within in d["within_per_class"].items():
        lines.append(f"{name},{labels.count(name)},{within:.6f},{d['between']:.6f},{d['ratio']:.6f}")
    lines.append(f"ALL,{len(labels)},{d['within']:.6f},{d['between']:.6f},{d['ratio']:.6f}")
    atomic_write_text(path, "\n".join(lines) + "\n")


# The league's canonical round robin (``--mode league`` here, ``user/scale.py rate`` on Ray): who plays,
# in which order, and each row's agents built afresh, so a row played in another process equals it here.
LEAGUE_SNAPSHOTS = 6  # the newest valid snapshots of each run
LEAGUE_SEED = 0


@dataclass(frozen=True)
class Participant:
    """One player of a league: a roster bot (``make_agent(name, seed)``) or a checkpoint .zip."""

    name: str
    checkpoint: str | None = None
    seed: int = 0


def league_participants(run_dirs: list[Path], keep: int = LEAGUE_SNAPSHOTS) -> list[Participant]:
    """The newest ``keep`` valid snapshots of each run (named ``rl_model_<N>``, or ``<run>/rl_model_<N>``
    when there are several runs), then the scripted roster, in that order."""
    players: list[Participant] = []
    for run_dir in run_dirs:
        if not run_dir.is_dir():
            raise ConfigError(f"--run: run folder not found: {run_dir}")
        manifest = CheckpointManifest(run_dir)
        valid = []
        for step in manifest.steps():
            try:
                manifest.verify(step)
                valid.append(step)
            except CheckpointError as exc:
                log.warning("Leaving a damaged snapshot out of the league: %s", exc)
        snapshots = [next(f for f in manifest.files(s) if f.name.endswith(".zip")) for s in valid][-keep:]
        if not snapshots:
            raise ConfigError(f"{run_dir} has no checkpoints in its manifest.json")
        prefix = f"{run_dir.name}/" if len(run_dirs) > 1 else ""
        players += [Participant(prefix + p.name.removesuffix("_steps.zip"), str(p.resolve())) for p in snapshots]
    players += [Participant(name, seed=i) for i, name in enumerate(agent_names())]
    names = [p.name for p in players]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(f"two league players share the name {twice[0]}: give run folders with different names")
    return players


def league_row(
    players: list[Participant], row: int, matches: int, max_timesteps: int, load_agent: AgentLoader
) -> dict[str, list[str]]:
    """Row ``row`` of the league's round robin, with its agents loaded afresh (a bot's random stream then
    starts where it would in any other process): player ``row`` against every later player."""
    agents: dict[str, Agent] = {}
    for p in players[row:]:
        agents[p.name] = load_agent(Path(p.checkpoint)) if p.checkpoint else make_agent(p.name, seed=p.seed)
    first, *later = agents
    return evaluation.round_robin_row(
        agents[first], {n: agents[n] for n in later}, matches, max_timesteps, LEAGUE_SEED, row
    )


def league_table(players: list[Participant], rows: list[dict[str, list[str]]]) -> list[dict]:
    """The Elo table (rank, name, rating, games) of a round robin's rows, applied in canonical order."""
    ratings, _ = evaluation.rate_round_robin([p.name for p in players], rows)
    ranked = enumerate(ratings.table())
    return [{"rank": i + 1, "name": n, "rating": round(r, 1), "games": g} for i, (n, r, g) in ranked]


def write_league_table(table: list[dict], out: Path) -> None:
    atomic_write_text(
        out,
        "rank,name,rating,games\n" + "".join(f"{r['rank']},{r['name']},{r['rating']},{r['games']}\n" for r in table),
    )


def _mode_league(args: argparse.Namespace, load_agent: AgentLoader) -> int:
    run_dir = Path(_require(args.run, "--run", "league"))
    players = league_participants([run_dir])
    for p in players:
        if p.checkpoint:
            log.info("Loading %s", p.checkpoint)
    t0 = time.monotonic()
    matches = _matches(args, 4)
    rows = [league_row(players, i, matches, args.max_timesteps, load_agent) for i in range(len(players) - 1)]
    table = league_table(players, rows)
    print(f"Round robin of {len(players)} agents ({time.monotonic() - t0:.1f} s):")
    print(evaluation.format_table(table))
    out = Path(args.out) if args.out else run_dir / "league.csv"
    write_league_table(table, out)
    print(f"wrote {out}")
    return 0


def _mode_export(args: argparse.Namespace, load_agent: AgentLoader) -> int:
    """An inference-only bundle for submission: weights, config and a standalone my_agent.py."""
    zip_path = resolve_checkpoint(_require(args.agent_path, "--agent_path", "export"), args.verify)
    out = Path(_require(args.out, "--out", "export"))
    loader = functools.partial(load_agent, verify=args.verify)
    sizes = export_bundle(zip_path, out, load_agent=loader, verify=args.verify)
    print(
        f"Exported {zip_path.name} to {out}: {sizes['bundle_bytes'] / 2**20:.2f} MiB "
        f"(the training checkpoint is {sizes['checkpoint_bytes'] / 2**20:.2f} MiB)"
    )
    print(f"Load it with:  cd {out} && python -c 'from my_agent import SubmittedAgent; agent = SubmittedAgent()'")
    return 0
