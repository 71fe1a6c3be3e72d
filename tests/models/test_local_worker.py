"""The embedded model's worker process (``assistant_kit/models/_local_worker.py``).

The model runs in a child process so that a crash in native code ends one run, not the
user's notebook kernel or the proxy. These tests crash it for real — a signal the worker
sends itself at token k (``ASSISTANT_KIT_TEST_LOCAL_FAULT``, read by the parent when a turn
starts), ``kill -9`` from outside mid-stream — and kill the *parent* to check that no worker
is left behind. They need the real model (skipped, with the install commands, without it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import openai
import psutil
import pytest

from assistant_kit.models import local
from assistant_kit.models._local_worker import ENV_FAULT
from tests.conftest import wait_for
from tests.models.test_local import _assert_nothing_open, _model_file, _thread, needs_model
from tests.server.conftest import MASTER_KEY, Launcher, master_config

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.local_model, needs_model]

STORY = "Write a very long story about a dragon and a knight."


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _started_worker() -> int:
    """Start (or reuse) this process's worker, model loaded; its pid."""
    local.LocalChatModel("smollm2", _model_file() or "").count_tokens([{"role": "user", "content": "hi"}])
    pid = local.worker().pid
    assert pid is not None and pid != os.getpid()
    return pid


def _assert_died_run(kit: openai.OpenAI, thread_id: str, run: Any, signal_name: str) -> None:
    assert run.status == "failed", run.status
    assert run.last_error.code == "server_error"
    message = run.last_error.message
    assert "local model process died" in message and signal_name in message, message
    assert "next run starts a new model process" in message
    reply = kit.beta.threads.messages.list(thread_id=thread_id).data[0]
    assert reply.role == "assistant" and reply.status == "incomplete"
    assert reply.content and reply.content[0].text.value  # what streamed before the crash is kept
    _assert_nothing_open(kit, thread_id, run.id)


def _stream(
    kit: openai.OpenAI, thread_id: str, assistant_id: str, on_delta: Any = None, max_tokens: int = 256
) -> tuple[int, Any]:
    """Stream a run to its end: (text deltas seen, the run). A run that fails mid-stream ends
    the SDK's stream with an ``APIError`` (the ``error`` event), as the hosted API's did."""
    deltas, run_id = 0, None
    with pytest.raises(openai.APIError, match="local model process died"):
        with kit.beta.threads.runs.stream(
            thread_id=thread_id, assistant_id=assistant_id, max_completion_tokens=max_tokens
        ) as stream:
            for event in stream:
                if event.event == "thread.run.created":
                    run_id = event.data.id
                if event.event == "thread.message.delta":
                    deltas += 1
                    if on_delta is not None:
                        on_delta(deltas)
    assert run_id is not None
    return deltas, kit.beta.threads.runs.retrieve(thread_id=thread_id, run_id=run_id)


def _next_run_completes(kit: openai.OpenAI, assistant: Any) -> Any:
    thread = _thread(kit, "Say hi.")
    run = kit.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=256
    )
    assert run.status in ("completed", "incomplete"), run.last_error
    return run


@pytest.mark.parametrize("sig", ["SIGSEGV", "SIGABRT"])
def test_a_crash_at_token_k_fails_the_run_and_the_next_run_gets_a_new_worker(
    kit: openai.OpenAI, assistant: Any, monkeypatch: pytest.MonkeyPatch, sig: str
) -> None:
    before = _started_worker()
    monkeypatch.setenv(ENV_FAULT, f"{sig}@5")
    thread = _thread(kit, STORY)
    deltas, run = _stream(kit, thread.id, assistant.id)
    assert 0 < deltas <= 4  # tokens 1-4 were sent (maybe coalesced); it died at the 5th
    _assert_died_run(kit, thread.id, run, sig)
    assert wait_for(lambda: _gone(before))
    monkeypatch.delenv(ENV_FAULT)
    _next_run_completes(kit, assistant)
    after = local.worker().pid
    assert after is not None and after != before


def test_a_crash_during_a_tool_call_fails_the_run(
    kit: openai.OpenAI, assistant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.models.test_local import WEATHER

    monkeypatch.setenv(ENV_FAULT, "SIGSEGV@1")  # at the first tool-call event
    thread = _thread(kit, "What's the weather in Paris for the next 3 days?")
    run = kit.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, tools=[WEATHER], tool_choice="required"
    )
    assert run.status == "failed" and "SIGSEGV" in run.last_error.message
    _assert_nothing_open(kit, thread.id, run.id)


def test_kill_9_of_the_worker_mid_stream(kit: openai.OpenAI, assistant: Any) -> None:
    pid = _started_worker()
    thread = _thread(kit, STORY)

    def kill_at_3(deltas: int) -> None:
        if deltas == 3:
            os.kill(pid, signal.SIGKILL)

    _, run = _stream(kit, thread.id, assistant.id, kill_at_3, max_tokens=1024)
    _assert_died_run(kit, thread.id, run, "SIGKILL")
    assert "out of memory" in run.last_error.message  # SIGKILL's advice
    _next_run_completes(kit, assistant)


def test_other_runs_go_on_while_the_worker_crashes(
    kit: openai.OpenAI, assistant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scripted run streaming at the same time is not disturbed by the crash."""
    _started_worker()
    echo = kit.beta.assistants.create(model="test/echo")
    other = _thread(kit, "x " * 200)
    result: dict[str, Any] = {}

    def run_other() -> None:
        result["run"] = kit.beta.threads.runs.create_and_poll(
            thread_id=other.id, assistant_id=echo.id, poll_interval_ms=20
        )

    monkeypatch.setenv(ENV_FAULT, "SIGSEGV@3")
    thread = _thread(kit, STORY)
    runner = threading.Thread(target=run_other)
    runner.start()
    crashed = kit.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    runner.join(30)
    assert crashed.status == "failed" and "SIGSEGV" in crashed.last_error.message
    assert result["run"].status == "completed"


def test_the_worker_dies_with_its_parent(tmp_path: Path) -> None:
    """kill -9 of the process that started the worker, mid-generation: no worker is left."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import warnings; warnings.simplefilter('ignore')\n"
        "from assistant_kit import local_client\n"
        "from assistant_kit.models import local\n"
        "c = local_client(':memory:')\n"
        "a = c.beta.assistants.create(model='local/smollm2')\n"
        f"t = c.beta.threads.create(messages=[{{'role': 'user', 'content': {STORY!r}}}])\n"
        "with c.beta.threads.runs.stream(thread_id=t.id, assistant_id=a.id,\n"
        "                                max_completion_tokens=4096) as s:\n"
        "    for e in s:\n"
        "        if e.event == 'thread.message.delta':\n"
        "            print(local.worker().pid, flush=True)\n"
        "            break\n"
        "    import time; time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line.strip().isdigit(), line
        worker_pid = int(line)
        assert psutil.Process(worker_pid).ppid() == parent.pid
        assert not _gone(worker_pid)
        parent.kill()
        parent.wait(10)
        assert wait_for(lambda: _gone(worker_pid), timeout=10), "the worker outlived its parent"
    finally:
        parent.kill()
        parent.wait(10)
        if parent.stdout is not None:
            parent.stdout.close()


def test_the_proxy_survives_a_worker_crash(tmp_path: Path) -> None:
    launcher = Launcher(tmp_path)
    try:
        proxy = launcher.start(master_config())
        client = proxy.client(MASTER_KEY)
        assistant = client.beta.assistants.create(model="local/smollm2")
        thread = _thread(client, STORY)

        def kill_the_worker(deltas: int) -> None:
            if deltas == 1:
                workers = psutil.Process(proxy.process.pid).children()
                assert len(workers) == 1, workers
                workers[0].kill()

        _, run = _stream(client, thread.id, assistant.id, kill_the_worker, max_tokens=1024)
        _assert_died_run(client, thread.id, run, "SIGKILL")
        assert proxy.process.poll() is None
        with proxy.http() as http:
            assert http.get("/health").status_code == 200
        _next_run_completes(client, assistant)
    finally:
        launcher.stop_all()


def test_the_model_loads_without_llama_cpps_extra_buffer_types() -> None:
    """The AMX repacking path (and every other weight repacking) is off, whatever the build.
    Checked in a child process, so a crash could not take pytest down."""
    code = (
        "import sys\n"
        "from assistant_kit.models._local_runtime import runtime\n"
        "rt = runtime(sys.argv[1])\n"
        "print(rt.llama.model_params.use_extra_bufts)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code, _model_file() or ""],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
