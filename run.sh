#!/usr/bin/env bash
# One entry point that sets itself up on a fresh machine (Python >= 3.10, no GPU needed):
#   bash run.sh train [train_agent.py options]   train an agent (checkpoints/<run>/)
#   bash run.sh test  [pytest options]           run the test suite (what CI runs)
# The first call creates .venv and installs the pinned requirements and the project (editable);
# later calls reuse it.
set -euo pipefail
cd "$(dirname "$0")"
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
# The project itself, editable: `environment`, `user` and `benchmarks` import from anywhere.
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
mode=${1:-}
shift || true
case "$mode" in
    train) exec .venv/bin/python user/train_agent.py "$@" ;;
    test) exec .venv/bin/python -m pytest "$@" ;;
    *) echo "usage: bash run.sh train|test [options]" >&2; exit 2 ;;
esac
