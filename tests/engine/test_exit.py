"""Runs in flight when the process exits, or when the engine's store closes
(:mod:`assistant_kit.engine.exits`).

The engine's loop is a daemon thread that keeps running while the interpreter exits, while the
store's thread pool stops taking work; a run still executing then wrote into a closed pool
("cannot schedule new futures after shutdown" tracebacks, "background run task failed") and
stayed ``in_progress``, its thread refusing new runs until another process's orphan sweep.
What must hold instead, seen from outside — a real script in a subprocess, its stderr, and the
database afterwards through the SDK: an executing run is settled ``failed`` saying why, a run
waiting for tool outputs stays resumable, nothing is logged for a normal end, and a genuine
failure of a run task still is.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from assistant_kit import local_client
from assistant_kit.engine.exits import PROCESS_EXITED, STORE_CLOSED
from assistant_kit.runtime import app_for
from tests.conftest import wait_for
from tests.fake_upstream import FakeUpstream

ROOT = Path(__file__).resolve().parents[2]

# Starts a run that waits for tool outputs and one that is still streaming, prints their ids,
# then does what argv[3] says: "exit" (the script ends mid-run) or "close" (closes the
# engine's store under both runs, waits past the parked run's expiry, then ends).
SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from assistant_kit import local_client, register_model
    from assistant_kit.runtime import app_for

    async def slow(messages):
        for i in range(600):
            await asyncio.sleep(0.05)
            yield f"w{i} "

    register_model("exit/slow", slow)
    db, upstream, action = sys.argv[1:4]
    if upstream == "-":
        client, model = local_client(db), "exit/slow"
    else:
        client, model = local_client(db, api_key="sk-test", api_base=upstream), "openai/slow"
    engine = app_for(db).state.engine
    if action == "close":
        engine.run_expiry_seconds = 2
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    tools = client.beta.assistants.create(model="test/tools", tools=[tool])
    asked = client.beta.threads.create(messages=[{"role": "user", "content": "call f"}])
    parked = client.beta.threads.runs.create_and_poll(
        thread_id=asked.id, assistant_id=tools.id, poll_interval_ms=50
    )
    assert parked.status == "requires_action", parked.status
    slow_assistant = client.beta.assistants.create(model=model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=slow_assistant.id)
    deadline = time.monotonic() + 30
    while not client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data:
        assert time.monotonic() < deadline, "the run never started streaming"
        time.sleep(0.05)
    print(json.dumps({"running": run.id, "thread": thread.id, "parked": parked.id, "asked": asked.id}))
    if action == "close":
        engine.sync_store.close()
        time.sleep(2.5)  # the parked run's expiry timer fires after the close
    """
)


def _script(tmp_path: Path, db: Path, upstream: str, action: str) -> tuple[dict[str, str], str]:
    path = tmp_path / "script.py"
    path.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(path), str(db), upstream, action],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def _assert_quiet(stderr: str) -> None:
    for noise in ("Traceback", "ERROR", "background run task failed", "cannot schedule", "never retrieved"):
        assert noise not in stderr, stderr


def _assert_settled(db: Path, ids: dict[str, str], message: str) -> Any:
    """The executing run is failed with ``message``, nothing of it is left open, and its
    thread takes a new run at once."""
    client = local_client(db)
    run = client.beta.threads.runs.retrieve(ids["running"], thread_id=ids["thread"])
    assert run.status == "failed", run.status
    assert run.last_error is not None and run.last_error.code == "server_error"
    assert run.last_error.message == message
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=ids["thread"]).data
    assert steps and all(s.status != "in_progress" for s in steps)
    (reply,) = [m for m in client.beta.threads.messages.list(ids["thread"]).data if m.role == "assistant"]
    assert reply.status != "in_progress"
    echo = client.beta.assistants.create(model="test/echo")
    again = client.beta.threads.runs.create_and_poll(thread_id=ids["thread"], assistant_id=echo.id)
    assert again.status == "completed", again.last_error
    return client


@pytest.mark.parametrize("model", ["function", "upstream"])
def test_a_script_ending_mid_run_settles_the_run_and_logs_nothing(
    tmp_path: Path, fake_upstream: FakeUpstream, model: str
) -> None:
    """The script ends while a run streams (from a Python function model, or from a slow real
    model server): the run is failed with the reason, at once; the run waiting for tool
    outputs stays resumable (outputs submitted by the next process complete it)."""
    db = tmp_path / "kit.db"
    upstream = "-"
    if model == "upstream":
        fake_upstream.reply_text(" ".join(f"w{i}" for i in range(200)), delay=0.1)
        upstream = fake_upstream.url
    ids, stderr = _script(tmp_path, db, upstream, "exit")
    _assert_quiet(stderr)
    client = _assert_settled(db, ids, PROCESS_EXITED)
    parked = client.beta.threads.runs.retrieve(ids["parked"], thread_id=ids["asked"])
    assert parked.status == "requires_action"
    (call,) = parked.required_action.submit_tool_outputs.tool_calls
    resumed = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=parked.id, thread_id=ids["asked"], tool_outputs=[{"tool_call_id": call.id, "output": "42"}]
    )
    assert resumed.status == "completed", resumed.last_error


def test_closing_the_store_under_runs_settles_them_and_logs_nothing(tmp_path: Path) -> None:
    """``Store.close()`` while a run executes and another waits for tool outputs (its expiry
    timer firing after the close): the executing run is failed with the reason before the store
    goes; the parked one is left as it was, and expires when next read."""
    db = tmp_path / "kit.db"
    ids, stderr = _script(tmp_path, db, "-", "close")
    _assert_quiet(stderr)
    client = _assert_settled(db, ids, STORE_CLOSED)
    parked = client.beta.threads.runs.retrieve(ids["parked"], thread_id=ids["asked"])
    assert parked.status == "expired"


def test_a_genuine_failure_of_a_background_settle_is_still_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Not every error of a run task is the store closing: a parked run's expiry settle that
    fails on a broken database (its steps table dropped behind the engine's back) is logged
    with its traceback."""
    db = tmp_path / "kit.db"
    client = local_client(db)
    app_for(db).state.engine.run_expiry_seconds = 1
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    assistant = client.beta.assistants.create(model="test/tools", tools=[tool])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "call f"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    with sqlite3.connect(db) as raw:
        raw.execute("DROP TABLE run_steps")
    caplog.set_level(logging.ERROR, logger="assistant_kit.runs")
    time.sleep(1.0)

    def failure() -> Any:
        return [r for r in caplog.records if r.getMessage() == "background run task failed"]

    (record,) = wait_for(failure, timeout=10)
    assert record.exc_info is not None and "run_steps" in str(record.exc_info[1])


KERNEL_CELL = textwrap.dedent(
    """
    import asyncio, time
    from assistant_kit import local_client, register_model

    async def slow(messages):
        for i in range(600):
            await asyncio.sleep(0.05)
            yield f"w{i} "

    register_model("exit/slow", slow)
    client = local_client(DB)
    slow_assistant = client.beta.assistants.create(model="exit/slow")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=slow_assistant.id)
    while not client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data:
        time.sleep(0.05)
    print(run.id, thread.id)
    """
)


def test_a_jupyter_kernel_shut_down_mid_run_settles_the_run(tmp_path: Path) -> None:
    """A notebook's kernel shut down (or restarted) while a cell's run streams: the kernel's
    process exits as a script does, so the run is failed with the reason and the kernel's
    stderr holds no traceback."""
    manager_module = pytest.importorskip("jupyter_client.manager")
    db = tmp_path / "kit.db"
    errors = tmp_path / "kernel.err"
    manager = manager_module.KernelManager(kernel_name="python3")
    with errors.open("w") as sink:
        manager.start_kernel(stderr=sink, cwd=str(ROOT))
    try:
        kernel = manager.client()
        kernel.start_channels()
        kernel.wait_for_ready(timeout=60)
        printed: list[str] = []

        def output(message: dict[str, Any]) -> None:
            if message["msg_type"] == "stream" and message["content"]["name"] == "stdout":
                printed.append(message["content"]["text"])

        reply = kernel.execute_interactive(f"DB = {str(db)!r}\n{KERNEL_CELL}", timeout=60, output_hook=output)
        assert reply["content"]["status"] == "ok", reply["content"]
        kernel.stop_channels()
    finally:
        manager.shutdown_kernel(now=False)  # the shutdown_request a notebook's "Shut Down" sends
    run_id, thread_id = "".join(printed).split()
    _assert_quiet(errors.read_text())
    client = local_client(db)
    run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
    assert run.status == "failed" and run.last_error is not None
    assert run.last_error.message == PROCESS_EXITED
