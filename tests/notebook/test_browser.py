"""The quickstart and thread-inspection notebooks in a real browser: JupyterLab, headless
Chromium, Run All Cells.

What a kernel-level test cannot show: that a run's text *grows on screen* while it streams
(display handles updated in place, throttled, rendered by JupyterLab), that the live view is
replaced by the static snapshot when the run ends, and that model output containing
``<script>`` is shown as text and never executed.

Setup: ``jupyter lab`` (this interpreter's) serves a temporary directory holding a copy of
``notebooks/01_quickstart.ipynb``, with isolated settings (every cell attached to the DOM,
no news or update checks) and workspaces. The notebook picks its model from
``$ASSISTANT_KIT_DEMO_MODEL`` (documented in the notebook); here that names
``browser/slow-hostile``, which an IPython startup file (``$IPYTHONDIR``) registers in the
kernel: it streams a fixed text one word per 0.1 s, and the text carries
``<script>window.__xss=1</script>``. The notebook's cells are the committed ones.

Chromium is the system's (``/usr/bin/chromium`` from Debian's ``chromium`` package, or
``$ASSISTANT_KIT_CHROMIUM``), driven by playwright with no browser download. Skipped, with
the reason, when chromium, playwright or jupyterlab is missing. The screenshot of the
finished notebook is saved as ``assistant_kit_browser.png`` in the system's temp directory
(``$ASSISTANT_KIT_SCREENSHOT`` overrides) and its path printed.

``04_thread_inspection.ipynb`` (its own scripted models, offline) is checked as a reader sees
it: the runs inline in ``inspect()``'s transcript — the failed run's error, the cancelled tool
round, the tool call with its output — and the prompt fold of its ``max_prompt_tokens`` run,
opened by a click, showing the truncated context. Its screenshot:
``assistant_kit_inspection.png`` beside the other.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "01_quickstart.ipynb"
INSPECTION_NOTEBOOK = ROOT / "notebooks" / "04_thread_inspection.ipynb"
MODEL = "browser/slow-hostile"
MARKER = "Streaming"  # the model's first word
PAYLOAD = "<script>window.__xss=1</script>"
ACCEPT = ".jp-Dialog .jp-mod-accept"
IDLE = '.jp-Notebook-ExecutionIndicator[data-status="idle"]'
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# Runs in the kernel before the notebook (IPython startup file): a slow, hostile model.
STARTUP = f'''"""Written by tests/notebook/test_browser.py: the model the quickstart runs on."""
import asyncio

from assistant_kit import register_model

WORDS = ["{MARKER}", "word", "by", "word:", "{PAYLOAD}", *(f"w{{i}}" for i in range(1, 26)), "done."]


async def slow_hostile(messages):
    for i, word in enumerate(WORDS):
        await asyncio.sleep(0.1)
        yield word if i == len(WORDS) - 1 else word + " "


register_model("{MODEL}", slow_hostile)
'''

FULL_TEXT = " ".join([MARKER, "word", "by", "word:", PAYLOAD, *(f"w{i}" for i in range(1, 26)), "done."])

# JupyterLab user settings: attach every cell to the DOM (so selectors see all outputs), and
# make no requests for news or updates.
SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}

# Browser-side probe, polled every 0.1 s: the live text of the first run (the <pre> of its
# message while it streams) and the finished runs' static snapshots.
PROBE = """([marker, payload]) => {
  const outputs = [...document.querySelectorAll(".jp-OutputArea-output")];
  const live = [];
  const final = [];
  for (const out of outputs) {
    if (out.dataset.mimeType !== "text/html") continue;  // not print() output
    for (const pre of out.querySelectorAll("pre")) {
      if (!pre.closest(".assistant-kit-run") && pre.textContent.includes(marker)) live.push(pre.textContent);
    }
    for (const snap of out.querySelectorAll(".assistant-kit-run")) {
      if (snap.textContent.includes(marker)) final.push(snap.textContent);
    }
  }
  return {live: live.length ? live[0].length : null, finals: final.length,
          payloadAsText: final.some(t => t.includes(payload)), xss: window.__xss ?? null};
}"""

CELLS = """() => [...document.querySelectorAll(".jp-Notebook .jp-CodeCell")].map(cell => {
  const prompt = cell.querySelector(".jp-InputPrompt");
  const bad = ["application/vnd.jupyter.stderr", "application/vnd.jupyter.error"];
  const errors = [...cell.querySelectorAll(".jp-OutputArea-output")].filter(
    out => bad.includes(out.dataset.mimeType));
  return {prompt: prompt ? prompt.textContent.trim() : "", errors: errors.map(e => e.textContent)};
})"""


def _missing() -> str | None:
    for module in ("playwright", "jupyterlab"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install {module}; no browser download is needed)"
    if _chromium() is None:
        return "no Chromium found (apt-get install chromium, or set ASSISTANT_KIT_CHROMIUM)"
    return None


def _chromium() -> str | None:
    explicit = os.environ.get("ASSISTANT_KIT_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for candidate in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        found = shutil.which(candidate)
        if found:
            return found
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Lab:
    url: str
    token: str
    log: Path


def _request(url: str, token: str, method: str = "GET") -> int:
    request = urllib.request.Request(url, method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status


@contextlib.contextmanager
def _serve(
    tmp_path: Path, notebook: Path, startup: dict[str, str], env_extra: dict[str, str]
) -> Iterator[Lab]:
    """JupyterLab on a free port serving a copy of ``notebook`` (IPython ``startup`` files run
    in its kernel first), torn down afterwards."""
    reason = _missing()
    if reason:
        pytest.skip(reason)
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(notebook, root / notebook.name)
    folder = tmp_path / "ipython" / "profile_default" / "startup"
    folder.mkdir(parents=True)
    for name, text in startup.items():
        (folder / name).write_text(text)
    settings = tmp_path / "settings"
    for name, values in SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))

    env = dict(os.environ)
    for name in ("ASSISTANT_KIT_LIVE", "ASSISTANT_KIT_WIDGETS", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        env.pop(name, None)  # live display handles, the kit's default in a notebook
    env.update(
        ASSISTANT_KIT_DB=str(tmp_path / "kit.db"),
        IPYTHONDIR=str(tmp_path / "ipython"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        **env_extra,
    )
    port, token = _free_port(), secrets.token_hex(16)
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
        "--allow-root",
    ]
    log = tmp_path / "jupyter.log"
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        server = subprocess.Popen(
            command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                pytest.fail(f"jupyter lab exited with {server.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if _request(f"{url}/api/status", token) == 200:
                    break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not start in 60 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)
        yield Lab(url, token, log)
    finally:
        try:  # a clean stop also shuts the kernel down
            _request(f"{url}/api/shutdown", token, method="POST")
            server.wait(20)
        except (urllib.error.URLError, OSError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)  # the session started above: server + kernel
            server.wait(10)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """The quickstart, on the slow hostile model."""
    with _serve(
        tmp_path, NOTEBOOK, {"00-slow-hostile-model.py": STARTUP}, {"ASSISTANT_KIT_DEMO_MODEL": MODEL}
    ) as served:
        yield served


@pytest.fixture
def lab04(tmp_path: Path) -> Iterator[Lab]:
    """The thread inspection notebook (scripted models of its own, offline)."""
    env = {"ASSISTANT_KIT_DEMO_MODEL": "test/echo"}
    with _serve(tmp_path, INSPECTION_NOTEBOOK, {}, env) as served:
        yield served


def _screenshot_path(name: str = "assistant_kit_browser.png") -> Path:
    explicit = os.environ.get("ASSISTANT_KIT_SCREENSHOT")
    if explicit and name != "assistant_kit_browser.png":
        return Path(explicit).with_name(f"{Path(explicit).stem}_{name}")
    return Path(explicit) if explicit else Path(tempfile.gettempdir()) / name


def _start_kernel(page: Any) -> None:
    """Wait for the notebook's kernel, accepting the "Select Kernel" dialog (Python 3 is
    preselected) if JupyterLab asks — some versions do on first open, 4.6 does not."""
    accept = page.locator(ACCEPT)
    page.wait_for_selector(f"{ACCEPT}, {IDLE}", timeout=60_000)
    for _ in range(2):  # the dialog may also come up just after the kernel reports idle
        if accept.count():
            accept.first.click()
            page.wait_for_selector(IDLE, timeout=60_000)
        time.sleep(0.5)


def _run_all(page: Any) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()


def test_quickstart_streams_and_escapes_in_jupyterlab(lab: Lab) -> None:
    from playwright.sync_api import sync_playwright

    samples: list[int] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"{lab.url}/lab/tree/{NOTEBOOK.name}?token={lab.token}")
            _start_kernel(page)
            _run_all_until_started(page)

            # While the first run streams: its text, sampled every 0.1 s.
            deadline = time.monotonic() + 60
            state = page.evaluate(PROBE, [MARKER, PAYLOAD])
            while state["finals"] == 0:
                assert time.monotonic() < deadline, f"no run finished in 60 s (samples: {samples})"
                if state["live"] is not None:
                    samples.append(state["live"])
                time.sleep(0.1)
                state = page.evaluate(PROBE, [MARKER, PAYLOAD])

            # Then the rest of the notebook (two more runs on the same model, tables).
            deadline = time.monotonic() + 90
            while True:
                cells = page.evaluate(CELLS)
                if cells and all(re.fullmatch(r"\[\d+\]:", c["prompt"]) for c in cells):
                    break
                assert time.monotonic() < deadline, f"cells did not finish: {[c['prompt'] for c in cells]}"
                time.sleep(0.25)
            state = page.evaluate(PROBE, [MARKER, PAYLOAD])
            snapshot = page.locator(".assistant-kit-run").first
            snapshot.scroll_into_view_if_needed()
            shot = _screenshot_path()
            page.screenshot(path=str(shot))
            print(f"screenshot: {shot}")
            snapshot_text = snapshot.inner_text()
        finally:
            browser.close()

    distinct = [n for i, n in enumerate(samples) if i == 0 or n != samples[i - 1]]
    assert len(distinct) >= 3, f"the text did not grow while streaming: {samples}"
    assert distinct == sorted(distinct), f"the streamed text shrank: {distinct}"
    assert distinct[0] < len(FULL_TEXT) and distinct[-1] <= len(FULL_TEXT), distinct
    assert state["finals"] == 3, state  # the five-line run, the follow-up, the %%assistant cell
    assert state["live"] is None, "a live view was left behind after its run ended"
    assert FULL_TEXT in snapshot_text
    assert state["payloadAsText"], "the <script> from the model is not shown as text"
    assert state["xss"] is None, "the model's <script> executed"
    errors = [e for c in cells for e in c["errors"]]
    assert not errors, errors


# The runs inline in the first inspection (session.inspect()), in transcript order.
RUN_BLOCKS = """() => {
  const view = document.querySelector(".ak-inspect");
  if (!view) return null;
  return [...view.querySelectorAll(".ak-run")].map(run => ({status: run.dataset.status}));
}"""


def _run_all_until_started(page: Any) -> None:
    """Run All Cells, again if no cell has started 30 s later (on a loaded machine the first
    click can land while JupyterLab is still wiring the notebook up; no cell has run then)."""
    for _ in range(3):
        _run_all(page)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if any(c["prompt"] != "[ ]:" for c in page.evaluate(CELLS)):
                return
            time.sleep(0.25)
    raise AssertionError("Run All Cells started no cell (3 tries)")


def _wait_all_cells(page: Any, seconds: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while True:
        cells = page.evaluate(CELLS)
        if cells and all(re.fullmatch(r"\[\d+\]:", c["prompt"]) for c in cells):
            return cells
        assert time.monotonic() < deadline, f"cells did not finish: {[c['prompt'] for c in cells]}"
        time.sleep(0.25)


def test_thread_inspection_shows_runs_inline_and_the_prompt_in_jupyterlab(lab04: Lab) -> None:
    """Notebook 04 as a reader sees it: under the user turns, the failed run's error, the
    cancelled tool round (its call never answered), the tool call with its output; opening the
    prompt fold of the max_prompt_tokens run shows the truncated context it was sent."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"{lab04.url}/lab/tree/{INSPECTION_NOTEBOOK.name}?token={lab04.token}")
            _start_kernel(page)
            _run_all_until_started(page)
            cells = _wait_all_cells(page, 150)
            blocks = page.evaluate(RUN_BLOCKS)
            view = page.locator(".ak-inspect").first
            short = view.locator(".ak-run", has_text="max_prompt_tokens=256").first
            fold = short.locator(".ak-prompt").first
            closed = fold.inner_text()
            fold.locator("summary").first.click()
            fold.scroll_into_view_if_needed()
            opened = fold.inner_text()
            shot = _screenshot_path("assistant_kit_inspection.png")
            page.screenshot(path=str(shot))
            print(f"screenshot: {shot}")
            failed = view.locator('.ak-run[data-status="failed"]').first.inner_text()
            cancelled = view.locator('.ak-run[data-status="cancelled"]').first.inner_text()
            answered = view.locator(".ak-run", has_text="not in the glossary").first.inner_text()
        finally:
            browser.close()

    errors = [e for c in cells for e in c["errors"]]
    assert not errors, errors
    assert blocks and [b["status"] for b in blocks] == [
        "completed",
        "completed",
        "incomplete",
        "failed",
        "cancelled",
        "completed",
        "completed",
    ], blocks
    assert "server_error: the model server is not answering" in failed
    assert "lookup" in cancelled and "never answered: the step is cancelled" in cancelled
    assert "lookup" in answered and "not in the glossary" in answered  # the call and its output
    assert "Only the latest turns fit" not in closed  # folded: the summary line only
    assert "Only the latest turns fit: what did I just say?" in opened
    assert "Hello! What is a thread?" not in opened  # dropped to fit max_prompt_tokens
