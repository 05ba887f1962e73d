"""The README's "Measured results" tables, generated from ``benchmarks/measured.json``.

Usage::

    .venv/bin/python benchmarks/readme_table.py                      # rewrite the README's tables from the JSON
    .venv/bin/python benchmarks/readme_table.py --update run.json    # first take new figures from a benchmark
    .venv/bin/python benchmarks/readme_table.py --check              # exit 1 if the README and the JSON disagree

``measured.json`` holds every row of the tables. A row's ``measured`` cell is either text copied
from the run the README describes, or a template filled from its ``figures``: each figure names
the benchmark and the measure it comes from (a row of that benchmark's ``--json`` output) and
holds the value. ``--update RESULT.json`` (written by ``benchmarks/<name>.py --json RESULT.json``)
replaces the values of the figures that RESULT.json measured, then the README is rewritten.
In the README each table stands between ``<!-- measured:<table> -->`` and
``<!-- /measured:<table> -->``; tests/test_docs.py checks that it equals what this script renders.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MEASURED = ROOT / "benchmarks" / "measured.json"
README = ROOT / "README.md"


def measured_cell(row: dict[str, Any]) -> str:
    figures = row.get("figures")
    if not figures:
        return row["measured"]
    return row["measured"].format(**{name: figure["value"] for name, figure in figures.items()})


def render_table(table: dict[str, Any]) -> str:
    columns = table["columns"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in table["rows"]:
        cells = [measured_cell(row) if column == "measured" else row[column] for column in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- measured:{name} -->", f"<!-- /measured:{name} -->"


def render_readme(readme: str, data: dict[str, Any]) -> str:
    """``readme`` with each marked table replaced by its rendering from ``data``."""
    for name, table in data["tables"].items():
        start, end = _markers(name)
        pattern = re.compile(re.escape(start) + r"\n.*?\n" + re.escape(end), re.S)
        if not pattern.search(readme):
            raise ValueError(f"README.md has no {start} ... {end} block")
        readme = pattern.sub(lambda _, t=table, s=start, e=end: f"{s}\n{render_table(t)}\n{e}", readme)
    return readme


def update_figures(data: dict[str, Any], result: dict[str, Any]) -> list[str]:
    """Take the values a benchmark's ``--json`` output measured; returns the figures updated."""
    benchmark = result.get("benchmark")
    values = {row["measure"]: row["value"] for row in result.get("rows", []) if "measure" in row}
    updated = []
    for table in data["tables"].values():
        for row in table["rows"]:
            for name, figure in row.get("figures", {}).items():
                if figure["benchmark"] == benchmark and values.get(figure["measure"]) is not None:
                    figure["value"] = values[figure["measure"]]
                    updated.append(f"{row['what']}: {name} = {figure['value']}")
    return updated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--update",
        type=Path,
        action="append",
        default=[],
        metavar="RESULT.json",
        help="take new figures from a benchmark's --json output (repeatable)",
    )
    parser.add_argument("--check", action="store_true", help="only check that the README matches the JSON")
    cfg = parser.parse_args(argv)
    data = json.loads(MEASURED.read_text())
    readme = README.read_text()
    if cfg.check:
        if render_readme(readme, data) != readme:
            print("README.md's measured tables differ from benchmarks/measured.json: run benchmarks/readme_table.py")
            return 1
        print("README.md's measured tables match benchmarks/measured.json")
        return 0
    for path in cfg.update:
        updated = update_figures(data, json.loads(path.read_text()))
        print(f"{path}: " + ("; ".join(updated) if updated else "no figure of the tables measured there"))
    if cfg.update:
        MEASURED.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    README.write_text(render_readme(readme, data))
    print(f"wrote {README.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
