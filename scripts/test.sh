#!/usr/bin/env bash
# The README's test command: make/refresh .venv with every extra the suite exercises (the
# first install compiles llama.cpp for the embedded model: minutes), then ruff and pytest.
# PostgreSQL tests run when ASSISTANT_KIT_TEST_PG_URL names a server (.ci/run starts one);
# the browser test needs Debian's chromium (.ci/run installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
bash scripts/install_local_model.sh  # llama-cpp-python for any CPU + the model file
.venv/bin/python -m pip install -q -e ".[dev,local,notebook,proxy,postgres,code-interpreter,retrieval]"
.venv/bin/ruff check assistant_kit tests benchmarks
.venv/bin/lint-imports  # the layer contracts in pyproject.toml ([tool.importlinter])
exec .venv/bin/python -m pytest -q "$@"
