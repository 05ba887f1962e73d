"""The docs stay true to the code: the README's commands and every CLI flag they name."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
    done = subprocess.run([sys.executable, *module_args, "--help"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_cli_mode_and_flag_named_in_the_docs_exists():
    trainer = _help("user/train_agent.py")
    play = _help("-m", "environment.play")
    text = "\n".join(path.read_text() for path in DOCS if path.exists())
    modes = set(re.findall(r"--mode[ =]([a-z_]+)", text))
    assert {"eval", "demo", "analyze_strategy", "league", "export"} <= modes
    for mode in modes:
        assert mode in trainer, f"--mode {mode} is documented but not in --help"
    # Flags on lines that run our own CLIs (other tools' flags, e.g. nvidia-smi's, are not ours).
    ours = [line for line in text.splitlines()
            if "train_agent.py" in line or "environment.play" in line or "--mode" in line or "--resume" in line]
    flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z_-]+)", "\n".join(ours)))
    assert {"--config", "--set", "--resume", "--agent_path"} <= flags
    for flag in sorted(flags):
        assert flag in trainer or flag in play, f"{flag} is named in the docs but no --help lists it"
