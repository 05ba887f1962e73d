"""An exported bundle in the ORIGINAL tournament engine, against the original's own bots.

The tournament plays submissions in its own engine (UTMIST/UTMIST-AI2), not in ours. Ours is
checked against it frame by frame (the golden traces of ``../shared/fidelity``); this checks the
thing a user submits, end to end: the bundle of ``--mode export`` plays the original's
``BasedAgent``, ``ConstantAgent``, ``RandomAgent`` and ``ClockworkAgent`` through the original's
own match loop, as player 1 and as player 2, and the table gives win/draw/loss rates with Wilson
95% intervals. The bundle plays argmax moves, as submitted.

The original is not a dependency of this project. Set it up once, beside it (its sprites are not
needed: the matches are never drawn, and its sprite download is switched off)::

    git clone https://github.com/UTMIST/UTMIST-AI2 ../original
    python3 -m venv ../original/.venv
    ../original/.venv/bin/pip install torch==2.13.0 numpy gymnasium==1.0.0 pygame==2.6.1 pymunk==6.2.1 \\
        opencv-python-headless scikit-image scikit-video ipython gdown matplotlib pandas \\
        stable-baselines3 sb3-contrib tqdm pillow loguru

Then::

    python user/train_agent.py --mode export --agent_path checkpoints/<run> --out checkpoints/<run>/bundle
    python benchmarks/original_engine.py --bundle checkpoints/<run>/bundle --original ../original
        [--python ../original/.venv/bin/python] [--opponents based,constant,random,clockwork]
        [--matches 50] [--max-timesteps 9000] [--seed 0] [--json PATH] [--check]

The matches run in the original's Python (``benchmarks/original_engine_worker.py``), because the
original's game package is also named ``environment``. Targets (issue 14's, for argmax play):
at least 85% against ``BasedAgent`` and at least 50% against every other bot.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.original_engine_worker import BOT_CLASSES
from benchmarks.report import add_match_length_flag, add_report_flags, finish
from environment.evaluation import wilson_interval
from environment.play import _positive_int

WORKER = Path(__file__).with_name("original_engine_worker.py")
BUNDLE_FILES = ("my_agent.py", "agent_config.json", "policy_weights.pt")
TARGET_VS_BASED = 0.85
TARGET_VS_EVERY_BOT = 0.5


class OriginalEngineError(Exception):
    """Bad input or a failed original engine: one line for the user."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="An exported bundle against the original tournament engine's own bots (issue 14)."
    )
    parser.add_argument("--bundle", type=Path, required=True, help="folder written by --mode export")
    parser.add_argument("--original", type=Path, required=True, help="a checkout of UTMIST/UTMIST-AI2")
    parser.add_argument(
        "--python", type=Path, default=None, help="the Python with the original's dependencies (<original>/.venv)"
    )
    parser.add_argument("--opponents", default=",".join(BOT_CLASSES), help="the original's bots, comma-separated")
    parser.add_argument("--matches", type=_positive_int, default=50, help="matches per bot and player slot (50)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the original's start sides and bots (0)")
    add_match_length_flag(parser)
    add_report_flags(parser)
    return parser


def check_inputs(cfg: argparse.Namespace) -> tuple[Path, list[str]]:
    """The original's Python and the bots to play; an OriginalEngineError names the first bad input."""
    missing = [name for name in BUNDLE_FILES if not (cfg.bundle / name).is_file()]
    if missing:
        raise OriginalEngineError(
            f"--bundle {str(cfg.bundle)!r} is not an exported bundle (no {missing[0]}); "
            "make one with python user/train_agent.py --mode export --agent_path <checkpoint> --out <folder>"
        )
    if not (cfg.original / "environment" / "agent.py").is_file():
        raise OriginalEngineError(
            f"--original {str(cfg.original)!r} is not a checkout of UTMIST/UTMIST-AI2 (no environment/agent.py)"
        )
    python = cfg.python or cfg.original / ".venv" / "bin" / "python"
    if not (python.is_file() and os.access(python, os.X_OK)):
        raise OriginalEngineError(
            f"--python {str(python)!r} is not an executable: give the Python that has the original's dependencies"
        )
    bots = cfg.opponents.split(",")
    for bot in bots:
        if bot not in BOT_CLASSES:
            raise OriginalEngineError(f"unknown opponent {bot!r}; the original's bots: {', '.join(BOT_CLASSES)}")
    if len(set(bots)) != len(bots):
        raise OriginalEngineError(f"--opponents {cfg.opponents!r} names an opponent twice")
    return python, bots


def run_matches(python: Path, cfg: argparse.Namespace, bots: list[str]) -> list[dict]:
    """Every match's row, played by the worker in the original's Python."""
    command = [str(python), str(WORKER), str(cfg.original.resolve()), str(cfg.bundle.resolve()), ",".join(bots)]
    command += [str(cfg.matches), str(cfg.max_timesteps), str(cfg.seed)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise OriginalEngineError(f"the original engine failed (exit {done.returncode}): {last}")
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    expected = len(bots) * 2 * cfg.matches
    if len(rows) != expected:
        raise OriginalEngineError(f"the original engine reported {len(rows)} of {expected} matches")
    return rows


def summarize(rows: list[dict], bots: list[str]) -> dict[str, dict]:
    """Per bot: counts and rates over both slots, Wilson intervals, and wins per slot."""
    cells = {}
    for bot in bots:
        played = [row for row in rows if row["bot"] == bot]
        n = len(played)
        cell = {"opponent": bot, "matches": n}
        for outcome, counted in (("win", "wins"), ("draw", "draws"), ("loss", "losses")):
            count = sum(row["result"] == outcome for row in played)
            cell[counted] = count
            cell[f"{outcome}_rate"] = count / n
            cell[f"{outcome}_ci95"] = wilson_interval(count, n)
        for slot in (0, 1):
            cell[f"wins_as_player_{slot + 1}"] = sum(row["result"] == "win" for row in played if row["slot"] == slot)
        cells[bot] = cell
    return cells


def missed_targets(cells: dict[str, dict]) -> list[str]:
    missed = []
    for bot, cell in cells.items():
        target = TARGET_VS_BASED if bot == "based" else TARGET_VS_EVERY_BOT
        if cell["win_rate"] < target:
            missed.append(f"win rate vs the original's {bot} {cell['win_rate']:.2f} < {target}")
    return missed


def print_table(cells: dict[str, dict], cfg: argparse.Namespace) -> None:
    print(f"{cfg.bundle} in the original engine ({cfg.original}): argmax play, {cfg.max_timesteps}-frame matches")
    print(f"{'opponent':<10} {'n':>4}  {'win [95% CI]':<15} {'draw':>5} {'loss':>5}  as player 1 / 2")
    for bot, cell in cells.items():
        low, high = cell["win_ci95"]
        rate = f"{cell['win_rate']:.0%} [{low:.0%}-{high:.0%}]"
        per_slot = f"{cell['wins_as_player_1']} / {cell['wins_as_player_2']} of {cfg.matches}"
        print(f"{bot:<10} {cell['matches']:>4}  {rate:<15} {cell['draws']:>5} {cell['losses']:>5}  {per_slot}")


def main(argv: list[str] | None = None) -> int:
    cfg = build_parser().parse_args(argv)
    try:
        python, bots = check_inputs(cfg)
        cells = summarize(run_matches(python, cfg, bots), bots)
    except OriginalEngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_table(cells, cfg)
    missed = missed_targets(cells)
    print("every target met" if not missed else "missed: " + "; ".join(missed))
    return finish(cfg, "original_engine", {"cells": cells, "max_timesteps": cfg.max_timesteps}, missed)


if __name__ == "__main__":
    sys.exit(main())
