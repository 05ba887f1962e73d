"""Runs inside the ORIGINAL tournament engine's Python: an exported bundle against the original's bots.

Started by ``benchmarks/original_engine.py``, which checks the arguments and reads what this prints:
one JSON line per match on stdout. It imports nothing from this project, because the original's
game package is also called ``environment``, and it needs only the original checkout, its
dependencies and the bundle (numpy and torch)::

    <original's python> original_engine_worker.py ORIGINAL_DIR BUNDLE_DIR BOTS MATCHES FRAMES SEED

BOTS is a comma-separated list of names in ``BOT_CLASSES``; each bot plays MATCHES matches with the
bundle as player 1 (slot 0), then MATCHES as player 2 (slot 1), through the original's own
``run_match`` (the tournament's match loop), FRAMES frames at most. The original draws the start
sides with Python's ``random``, so match ``i`` of slot ``s`` seeds ``random`` and numpy with
``SEED + 1000 * s + i``, and the start sides repeat. The original's ``RandomAgent`` samples from its
action space's own generator, which no seed here reaches, so its matches do not repeat.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import random
import sys

import numpy as np

# Our names for the original's scripted bots (its environment/agent.py).
BOT_CLASSES = {
    "based": "BasedAgent",
    "constant": "ConstantAgent",
    "random": "RandomAgent",
    "clockwork": "ClockworkAgent",
}


def load_original(original_dir: str):
    """The original's agent module, headless and without its sprite download."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame without a display
    os.chdir(original_dir)  # the original opens its images by paths relative to its checkout
    sys.path.insert(0, original_dir)
    with contextlib.redirect_stdout(io.StringIO()):
        import environment.agent as original_agents
        import environment.environment as original_game
    # Creating a player downloads the sprites (assets.zip, from Google Drive) unless an `assets`
    # folder exists; these matches are never drawn, and nothing may download at run time.
    original_game.Player.load_assets = lambda self: None
    return original_agents


def load_bundle(bundle_dir: str):
    """The bundle's SubmittedAgent class (it loads the weights next to its own file)."""
    spec = importlib.util.spec_from_file_location("exported_bundle_agent", os.path.join(bundle_dir, "my_agent.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SubmittedAgent


def play_match(original_agents, submitted_agent, bot: str, slot: int, frames: int, seed: int) -> dict:
    """One match through the original's run_match; the result from the bundle's side."""
    random.seed(seed)
    np.random.seed(seed)
    ours, theirs = submitted_agent(), getattr(original_agents, BOT_CLASSES[bot])()
    first, second = (ours, theirs) if slot == 0 else (theirs, ours)
    # run_match prints a banner and a progress bar for every match.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        stats = original_agents.run_match(first, second, max_timesteps=frames)
    me, them = (stats.player1, stats.player2) if slot == 0 else (stats.player2, stats.player1)
    lives = (int(me.lives_left), int(them.lives_left))
    result = "win" if lives[0] > lives[1] else "loss" if lives[0] < lives[1] else "draw"
    return {"bot": bot, "slot": slot, "seed": seed, "result": result, "lives": lives, "seconds": stats.match_time}


def main(argv: list[str]) -> int:
    original_dir, bundle_dir, bots, matches, frames, seed = argv
    bundle_dir = os.path.abspath(bundle_dir)  # before load_original changes the working directory
    original_agents = load_original(os.path.abspath(original_dir))
    submitted_agent = load_bundle(bundle_dir)
    for bot in bots.split(","):
        for slot in (0, 1):
            for match in range(int(matches)):
                row = play_match(
                    original_agents, submitted_agent, bot, slot, int(frames), int(seed) + 1000 * slot + match
                )
                print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
