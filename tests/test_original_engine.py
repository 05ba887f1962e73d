"""benchmarks/original_engine.py: a bundle in the original tournament engine, here a stand-in for it.

The real original (UTMIST/UTMIST-AI2) is not a dependency, so these tests give the worker a small
fake checkout with the same names (``environment/agent.py``: ``run_match``, the four bots, the
stats classes; ``environment/environment.py``: ``Player.load_assets``) and a fake bundle. The
fake match loop lets the stronger side keep its lives, so every count below is known.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from benchmarks import original_engine as OE

FAKE_GAME = """
class Player:
    def load_assets(self):
        raise RuntimeError("the original would download its sprites here")
"""

FAKE_AGENTS = """
from dataclasses import dataclass

from environment.environment import Player


@dataclass
class PlayerStats:
    lives_left: int


@dataclass
class MatchStats:
    match_time: float
    player1: PlayerStats
    player2: PlayerStats


class _Bot:
    strength = 0


class BasedAgent(_Bot):
    strength = 1


class ConstantAgent(_Bot):
    strength = 3


class RandomAgent(_Bot):
    strength = 0


class ClockworkAgent(_Bot):
    strength = 2


def run_match(agent_1, agent_2, max_timesteps=5400):
    Player().load_assets()  # the worker must have switched the download off
    print("RUN MATCH IS RUNNING")  # the original's banner: never one of the worker's lines
    first, second = agent_1.strength, agent_2.strength
    lives = (3, 0) if first > second else (0, 3) if first < second else (1, 1)
    return MatchStats(max_timesteps / 30, PlayerStats(lives[0]), PlayerStats(lives[1]))
"""

# Reads its strength from the config beside it, as a real bundle reads its weights.
FAKE_BUNDLE_AGENT = """
import json
from pathlib import Path


class SubmittedAgent:
    def __init__(self):
        self.strength = json.loads(Path(__file__).with_name("agent_config.json").read_text())["strength"]
"""


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


@pytest.fixture
def fake(tmp_path):
    original, bundle = tmp_path / "original", tmp_path / "bundle"
    _write(original / "environment" / "__init__.py", "")
    _write(original / "environment" / "environment.py", FAKE_GAME)
    _write(original / "environment" / "agent.py", FAKE_AGENTS)
    _write(bundle / "my_agent.py", FAKE_BUNDLE_AGENT)
    _write(bundle / "agent_config.json", json.dumps({"strength": 2}))
    (bundle / "policy_weights.pt").write_bytes(b"")
    return original, bundle


def _args(original: Path, bundle: Path, *more: str) -> list[str]:
    return ["--bundle", str(bundle), "--original", str(original), "--python", sys.executable, *more]


def test_results_are_counted_from_the_bundles_side_in_both_slots(fake, tmp_path, capsys):
    original, bundle = fake
    out = tmp_path / "out.json"
    assert OE.main(_args(original, bundle, "--matches", "3", "--json", str(out))) == 0  # a report only
    report = json.loads(out.read_text())
    cells = report["cells"]
    assert list(cells) == ["based", "constant", "random", "clockwork"]
    assert (cells["based"]["wins"], cells["based"]["wins_as_player_1"], cells["based"]["wins_as_player_2"]) == (6, 3, 3)
    assert (cells["constant"]["losses"], cells["random"]["wins"], cells["clockwork"]["draws"]) == (6, 6, 6)
    assert all(cell["matches"] == 6 for cell in cells.values())
    low, high = cells["based"]["win_ci95"]
    assert 0.5 < low < 1.0 and high == pytest.approx(1.0)
    assert report["missed"] == [
        "win rate vs the original's constant 0.00 < 0.5",
        "win rate vs the original's clockwork 0.00 < 0.5",
    ]
    printed = capsys.readouterr().out
    assert "based         6  100% [61%-100%]     0     0  3 / 3 of 3" in printed


def test_check_fails_on_a_missed_target_and_passes_when_every_target_is_met(fake):
    original, bundle = fake
    assert OE.main(_args(original, bundle, "--matches", "1", "--check")) == 1
    assert OE.main(_args(original, bundle, "--matches", "1", "--opponents", "based,random", "--check")) == 0


@pytest.mark.parametrize(("change", "message"), [
    ("no_weights", "is not an exported bundle (no policy_weights.pt)"),
    ("not_original", "is not a checkout of UTMIST/UTMIST-AI2 (no environment/agent.py)"),
    ("bad_python", "is not an executable"),
    ("unknown_bot", "unknown opponent 'zorro'; the original's bots: based, constant, random, clockwork"),
    ("twice", "names an opponent twice"),
    ("engine_fails", "the original engine failed (exit 1): SyntaxError"),
])  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(fake, change, message, capsys):
    original, bundle = fake
    args = _args(original, bundle)
    if change == "no_weights":
        (bundle / "policy_weights.pt").unlink()
    elif change == "not_original":
        (original / "environment" / "agent.py").unlink()
    elif change == "bad_python":
        args[args.index("--python") + 1] = str(original / "no-python")
    elif change == "unknown_bot":
        args += ["--opponents", "based,zorro"]
    elif change == "twice":
        args += ["--opponents", "based,based"]
    else:
        _write(original / "environment" / "agent.py", "def run_match(:\n")
    assert OE.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
