"""What every benchmark script does with its figures: ``--json PATH`` writes them, ``--check`` fails on a miss.

Each script collects its results in a dict and the names of the targets it missed, then ends with
``return finish(cfg, "env_speed", results, missed)``: the JSON (when asked for) carries the
benchmark's name, its ``missed`` targets and ``all_targets_met``, and the exit status is 1 with
``--check`` when a target was missed (0 otherwise, so a plain run always prints its table).
``benchmarks/readme_table.py --update PATH`` reads those JSON files into the README's table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from environment.play import _positive_int


def add_report_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--check", action="store_true", help="exit with status 1 when a target is missed")


def add_match_length_flag(parser: argparse.ArgumentParser) -> None:
    """--max-timesteps for the benchmarks that judge an agent: the tournament's battles by default."""
    parser.add_argument(
        "--max-timesteps",
        type=_positive_int,
        default=9000,
        help="frames per evaluation match: 9000 = the tournament's battles (default); 2700 = training's 90 s",
    )


def finish(cfg: argparse.Namespace, benchmark: str, results: dict[str, Any], missed: list[str]) -> int:
    """Write the JSON if asked for; the exit status (1: ``--check`` and a missed target)."""
    results = {"benchmark": benchmark, **results, "missed": list(missed), "all_targets_met": not missed}
    if cfg.json is not None:
        cfg.json.parent.mkdir(parents=True, exist_ok=True)
        cfg.json.write_text(json.dumps(results, indent=2, default=_plain))
        print(f"JSON written to {cfg.json}")
    if missed and cfg.check:
        print(f"--check: {len(missed)} target(s) missed: {'; '.join(missed)}")
        return 1
    return 0


def _plain(value: Any) -> Any:
    """numpy scalars, paths and other values JSON does not know, as plain values."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)
