"""Play one match between two registered agents and film it.

    python -m environment.play based aggressive --out match.mp4 [--seed N] [--max-timesteps 2700] [--hitboxes]

Prints the result (winner, and per player: damage dealt, knockouts, falls,
weapon pickups) and where the video went. The first agent plays as P1
(player_1, blue), the second as P2 (player_2, orange).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from environment.agents import agent_names, make_agent
from environment.match import MatchStats, run_match
from environment.params import FPS, MATCH_FRAMES


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


# Its argparse calls look like the benchmarks' (the `duplicates` tool pairs them by shape); the flags differ.
def build_parser(names: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m environment.play",
        description="Play one Warehouse Brawl match between two registered agents and write a video of it.",
        epilog=f"known agents: {', '.join(names)}",
    )
    parser.add_argument("agent_1", metavar="AGENT_1", help="registry name of player 1 (P1, blue)")
    parser.add_argument("agent_2", metavar="AGENT_2", help="registry name of player 2 (P2, orange)")
    parser.add_argument(
        "--out",
        default="match.mp4",
        metavar="PATH",
        help="video file (default match.mp4). .mp4: H.264; .gif: animated GIF. Without a working ffmpeg an "
        "MP4 request is written as a GIF of the same name, with a warning",
    )
    parser.add_argument("--seed", type=int, default=0, help="match seed: start sides and weapon spawns (default 0)")
    parser.add_argument(
        "--max-timesteps",
        type=_positive_int,
        default=MATCH_FRAMES,
        metavar="N",
        help=f"frames before the match ends on stocks (default {MATCH_FRAMES} = 90 s at {FPS} fps; "
        "tournament battles use 9000)",
    )
    parser.add_argument(
        "--hitboxes", action="store_true", help="overlay the active attack hitboxes (red) and hurtboxes (green)"
    )
    return parser


def format_result(stats: MatchStats, names: tuple[str, str]) -> str:
    """The result as a small text table."""
    labels = (f"P1 {names[0]}", f"P2 {names[1]}")
    players = (stats.player_1, stats.player_2)
    winner = {"player_1": labels[0], "player_2": labels[1]}.get(stats.winner, "draw")
    width = max(14, *(len(label) for label in labels)) + 2
    lines = [
        f"Result after {stats.frames} frames ({stats.frames / FPS:.1f} s): "
        + (f"{winner} wins" if winner != "draw" else "draw"),
        f"{'':<16}" + "".join(f"{label:>{width}}" for label in labels),
    ]
    rows = (
        ("damage dealt", lambda p: f"{p.damage_dealt:.0f} ({p.damage_dealt * 5 / 7:.0f}%)"),
        ("knockouts", lambda p: str(p.knockouts)),
        ("falls", lambda p: str(p.falls)),
        ("weapon pickups", lambda p: str(p.weapon_pickups)),
        ("stocks left", lambda p: str(p.stocks_left)),
    )
    for name, cell in rows:
        lines.append(f"{name:<16}" + "".join(f"{cell(p):>{width}}" for p in players))
    return "\n".join(lines)


def play(agent_1: str, agent_2: str, out: str, seed: int, max_timesteps: int, hitboxes: bool) -> tuple[MatchStats, str]:
    """Play and film the match; returns its stats and the path the video was actually written to."""
    from environment.render import VideoFallbackWarning  # lazy: the video stack is only needed here

    Path(out).parent.mkdir(parents=True, exist_ok=True)
    video = out
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stats = run_match(
            make_agent(agent_1), make_agent(agent_2), max_timesteps, video_path=out, seed=seed, show_hitboxes=hitboxes
        )
    for warning in caught:  # re-shown, after noting where a fallback GIF went
        if isinstance(warning.message, VideoFallbackWarning):
            video = warning.message.path
        print(f"warning: {warning.message}", file=sys.stderr)
    return stats, video


def main(argv: list[str] | None = None) -> int:
    names = agent_names()
    parser = build_parser(names)
    args = parser.parse_args(argv)
    for name in (args.agent_1, args.agent_2):
        if name not in names:
            parser.error(f"unknown agent {name!r}; known agents: {', '.join(names)}")
    stats, video = play(args.agent_1, args.agent_2, args.out, args.seed, args.max_timesteps, args.hitboxes)
    print(f"{args.agent_1} (P1) vs {args.agent_2} (P2), seed {args.seed}")
    print(format_result(stats, (args.agent_1, args.agent_2)))
    size = Path(video).stat().st_size / 1e6 if Path(video).exists() else 0.0
    print(f"Video: {video} ({size:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
