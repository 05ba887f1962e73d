"""The docs stay true to the code: the README's commands and every CLI flag they name."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import readme_table, report

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", REPO / "T4_TRAINING_GUIDE.md", REPO / "guides" / "technical_guide.md"]


def readme_commands() -> list[str]:
    """The commands of the README's first code block (the two setup-and-run commands)."""
    block = re.search(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_starts_with_a_train_and_a_test_command_and_ci_runs_the_test_one():
    commands = readme_commands()
    assert len(commands) == 2
    train, test = commands
    assert "train" in train and "test" in test
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert test in ci_lines, f"{test!r} is not what .ci/run runs: {ci_lines}"


def _help(*module_args: str) -> str:
    done = subprocess.run(
        [sys.executable, *module_args, "--help"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


SCALE_SECTION = re.compile(r"^## More than one machine\n.*?(?=^## )", re.S | re.M)


def without_scale_section(text: str) -> str:
    """The README's "More than one machine" section names user/scale.py's flags: test_scale checks those."""
    return SCALE_SECTION.sub("", text)


def test_every_cli_mode_and_flag_named_in_the_docs_exists():
    trainer = _help("user/train_agent.py")
    play = _help("-m", "environment.play")
    text = "\n".join(without_scale_section(path.read_text()) for path in DOCS if path.exists())
    modes = set(re.findall(r"--mode[ =]([a-z_]+)", text))
    assert {"eval", "demo", "analyze_strategy", "league", "export"} <= modes
    for mode in modes:
        assert mode in trainer, f"--mode {mode} is documented but not in --help"
    # Flags on lines that run our own CLIs (other tools' flags, e.g. nvidia-smi's, are not ours).
    ours = [
        line
        for line in text.splitlines()
        if "train_agent.py" in line or "environment.play" in line or "--mode" in line or "--resume" in line
    ]
    flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z_-]+)", "\n".join(ours)))
    assert {"--config", "--set", "--resume", "--agent_path"} <= flags
    for flag in sorted(flags):
        assert flag in trainer or flag in play, f"{flag} is named in the docs but no --help lists it"


# --- the README's measured figures and the benchmarks that produce them -----------------------
BENCHMARKS = [
    "encoder_speed",
    "env_speed",
    "eval_speed",
    "exploitability",
    "fidelity",
    "gpu_speed",
    "learn_quality",
    "original_engine",
    "soak",
    "train_speed",
    "video_speed",
]


def test_readme_measured_tables_are_generated_from_the_json():
    data = json.loads(readme_table.MEASURED.read_text())
    readme = (REPO / "README.md").read_text()
    assert readme_table.render_readme(readme, data) == readme, "run benchmarks/readme_table.py"


def test_readme_table_update_takes_a_benchmarks_figures():
    data = json.loads(readme_table.MEASURED.read_text())
    result = {
        "benchmark": "env_speed",
        "rows": [{"measure": "batched core BrawlEngine.step, N=4096", "value": 1234567.0}],
    }
    assert len(readme_table.update_figures(data, result)) == 1
    row = data["tables"]["speed"]["rows"][0]
    assert readme_table.measured_cell(row).startswith("1,234,567 ")
    assert readme_table.update_figures(data, {"benchmark": "video_speed", "rows": []}) == []


def test_benchmarks_fail_on_a_missed_target_only_with_check(tmp_path, capsys):
    args = argparse.Namespace(json=tmp_path / "out.json", check=False)
    assert report.finish(args, "demo", {"value": 1.0}, ["too slow"]) == 0
    written = json.loads((tmp_path / "out.json").read_text())
    assert written["benchmark"] == "demo" and written["missed"] == ["too slow"] and not written["all_targets_met"]
    args.check = True
    assert report.finish(args, "demo", {"value": 1.0}, ["too slow"]) == 1
    assert report.finish(args, "demo", {"value": 1.0}, []) == 0
    assert "too slow" in capsys.readouterr().out


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_benchmark_has_check_and_json(name):
    text = _help(f"benchmarks/{name}.py")
    assert "--check" in text and "--json" in text
