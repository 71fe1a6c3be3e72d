"""Replicas as real processes: ``assistant-kit serve`` twice on one PostgreSQL database, one of
them killed mid-run; and a restart on SQLite. Lease intervals are shortened through the
environment (ASSISTANT_KIT_RUN_*_SECONDS). PostgreSQL tests skip without
``ASSISTANT_KIT_TEST_PG_URL``."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import wait_for
from tests.fake_upstream import FakeUpstream

from .conftest import StartProxy, fake_route, master_config

pytestmark = pytest.mark.timeout(120)

LEASE = 2.0
FAST_LEASES = {
    "ASSISTANT_KIT_RUN_LEASE_SECONDS": str(LEASE),
    "ASSISTANT_KIT_RUN_RENEW_SECONDS": "0.25",
    "ASSISTANT_KIT_RUN_SWEEP_SECONDS": "0.5",
}
LONG_ANSWER = " ".join(f"w{i}" for i in range(400))  # 400 chunks, 50 ms apart: 20 s


def _config(database_url: str, fake_upstream: FakeUpstream) -> dict[str, Any]:
    config = master_config(database_url=database_url)
    config["model_list"] = [fake_route(fake_upstream)]
    return config


def _start_run(client: openai.OpenAI, **assistant: Any) -> tuple[Any, Any]:
    asst = client.beta.assistants.create(model="fake", **assistant)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=asst.id)
    return thread, run


def _answering(client: openai.OpenAI, thread_id: str) -> bool:
    return client.beta.threads.messages.list(thread_id).data[0].role == "assistant"


def _status_becomes(client: openai.OpenAI, thread_id: str, run_id: str, status: str, timeout: float) -> Any:
    return wait_for(
        lambda: (r := client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)).status == status and r,
        timeout=timeout,
        interval=0.1,
    )


def _assert_orphaned(client: openai.OpenAI, thread_id: str, run: Any) -> None:
    assert run.last_error.code == "server_error"
    assert run.last_error.message.startswith("The server executing this run stopped")
    message = client.beta.threads.messages.list(thread_id).data[0]
    assert message.status == "incomplete" and message.incomplete_details.reason == "run_failed"
    (step,) = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread_id).data
    assert step.status == "failed"
    client.beta.threads.messages.create(thread_id, role="user", content="again")  # thread unlocked


def test_a_killed_replicas_run_is_failed_by_the_other(
    pg_url: str, start_proxy: StartProxy, fake_upstream: FakeUpstream
) -> None:
    config = _config(pg_url, fake_upstream)
    a = start_proxy(config, env=FAST_LEASES)
    b = start_proxy(config, env=FAST_LEASES)
    ca, cb = a.client(), b.client()
    fake_upstream.reply_text(LONG_ANSWER, delay=0.05)
    thread, run = _start_run(ca)
    wait_for(lambda: _answering(cb, thread.id), timeout=10)
    assert cb.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "in_progress"
    a.stop(signal.SIGKILL)
    killed = time.monotonic()
    failed = _status_becomes(cb, thread.id, run.id, "failed", timeout=LEASE + 10)
    # Within the lease plus one sweep interval (and slack for a loaded machine), not at
    # expires_at (10 minutes).
    assert time.monotonic() - killed < LEASE + 0.5 + 5
    _assert_orphaned(cb, thread.id, failed)


def test_replicas_serve_one_api(pg_url: str, start_proxy: StartProxy, fake_upstream: FakeUpstream) -> None:
    """Cancel and tool outputs through the replica that did not start the run."""
    config = _config(pg_url, fake_upstream)
    a = start_proxy(config, env=FAST_LEASES)
    b = start_proxy(config, env=FAST_LEASES)
    ca, cb = a.client(), b.client()

    fake_upstream.reply_text(LONG_ANSWER, delay=0.05)
    thread, run = _start_run(ca)
    wait_for(lambda: _answering(cb, thread.id), timeout=10)
    assert cb.beta.threads.runs.cancel(run.id, thread_id=thread.id).status == "cancelling"
    cancelled = _status_becomes(ca, thread.id, run.id, "cancelled", timeout=5)
    assert cancelled.cancelled_at

    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    fake_upstream.reply_tool_calls([("lookup", {})])
    fake_upstream.reply_text("the answer is 42")
    asst = ca.beta.assistants.create(model="fake", tools=[tool])
    run = ca.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=asst.id, poll_interval_ms=50)
    assert run.status == "requires_action"
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    with cb.beta.threads.runs.submit_tool_outputs_stream(
        thread_id=thread.id, run_id=run.id, tool_outputs=[{"tool_call_id": call.id, "output": "42"}]
    ) as stream:
        names = [event.event for event in stream]
    assert names[-1] == "thread.run.completed" and "thread.message.delta" in names
    done = ca.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    assert done.status == "completed"
    assert ca.beta.threads.messages.list(thread.id).data[0].content[0].text.value == "the answer is 42"


def test_restart_fails_the_runs_the_killed_process_left(
    tmp_path: Path, start_proxy: StartProxy, fake_upstream: FakeUpstream
) -> None:
    """SQLite, one process: killed mid-run and started again, it settles its old run at
    startup (the lease is stale by then) instead of leaving it in_progress for good."""
    config = _config(str(tmp_path / "kit.db"), fake_upstream)
    first = start_proxy(config, env=FAST_LEASES)
    client = first.client()
    fake_upstream.reply_text(LONG_ANSWER, delay=0.05)
    thread, run = _start_run(client)
    wait_for(lambda: _answering(client, thread.id), timeout=10)
    first.stop(signal.SIGKILL)
    time.sleep(LEASE + 0.5)  # the lease goes stale while nothing runs

    again = start_proxy(config, env=FAST_LEASES)
    client = again.client()
    failed = _status_becomes(client, thread.id, run.id, "failed", timeout=5)
    _assert_orphaned(client, thread.id, failed)
