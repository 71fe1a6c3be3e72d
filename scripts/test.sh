#!/usr/bin/env bash
# The README's test command: make/refresh .venv with the dev extra, then run the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev]"
.venv/bin/ruff check assistant_kit tests benchmarks
exec .venv/bin/python -m pytest -q "$@"
