"""Faults through the proxy, over real HTTP: a client hanging up mid-stream, oversized
bodies, an upstream model server that fails, times out or drops mid-stream, a pass-through
remote that dies mid-stream, and a shutdown with a run still executing."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.fake_upstream import FakeUpstream, get_fake_upstream

from .conftest import MASTER_KEY, Launcher, Proxy, StartProxy, fake_route, master_config
from .test_seed_curl import sse_events


@pytest.fixture(scope="module")
def proxy(module_launcher: Launcher) -> Proxy:
    config = master_config(max_request_size_mb=0.01)  # 10 KiB
    config["assistant_settings"] = {"litellm_params": {"timeout": 1.5, "max_retries": 0}}
    config["model_list"] = [fake_route(get_fake_upstream())]
    return module_launcher.start(config)


@pytest.fixture
def client(proxy: Proxy) -> openai.OpenAI:
    return proxy.client()


def setup_thread(client: openai.OpenAI, model: str = "fake") -> tuple[str, str]:
    assistant = client.beta.assistants.create(model=model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
    return assistant.id, thread.id


def stream_run(proxy: Proxy, thread_id: str, assistant_id: str) -> list[tuple[str, Any]]:
    with proxy.http() as http:
        response = http.post(
            f"/v1/threads/{thread_id}/runs", json={"assistant_id": assistant_id, "stream": True}
        )
    assert response.status_code == 200
    return [
        (name, data if data == "[DONE]" else json.loads(data)) for name, data in sse_events(response.text)
    ]


def wait_terminal(client: openai.OpenAI, thread_id: str, run_id: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        if run.status not in ("queued", "in_progress", "cancelling"):
            return run
        time.sleep(0.05)
    raise AssertionError("run did not finish")


def test_client_disconnect_mid_stream_does_not_kill_the_run(
    proxy: Proxy, client: openai.OpenAI, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.reply_text("one two three four five six", delay=0.15)
    assistant_id, thread_id = setup_thread(client)
    run_id = None
    with (
        proxy.http() as http,
        http.stream(
            "POST", f"/v1/threads/{thread_id}/runs", json={"assistant_id": assistant_id, "stream": True}
        ) as response,
    ):
        for line in response.iter_lines():
            if line.startswith("data: {") and run_id is None:
                run_id = json.loads(line[6:])["id"]
            if line == "event: thread.message.delta":
                break  # hang up after the first text delta
    assert run_id is not None
    run = wait_terminal(client, thread_id, run_id)
    assert run.status == "completed"
    message = client.beta.threads.messages.list(thread_id, run_id=run_id).data[0]
    assert message.content[0].text.value == "one two three four five six"


def test_oversized_body_is_413(proxy: Proxy, client: openai.OpenAI) -> None:
    big = {"model": "test/echo", "instructions": "x" * 20_000}
    with proxy.http() as http:
        declared = http.post("/v1/assistants", json=big)

        def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
            body = json.dumps(big).encode()
            for i in range(0, len(body), 1000):
                yield body[i : i + 1000]

        chunked = http.post("/v1/assistants", content=chunks(), headers={"content-type": "application/json"})
        small = http.post("/v1/assistants", json={"model": "test/echo"})
    for response in (declared, chunked):
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "request_too_large"
        assert response.json()["error"]["type"] == "invalid_request_error"
    assert small.status_code == 200
    with pytest.raises(openai.APIStatusError) as raised:
        client.beta.threads.create(messages=[{"role": "user", "content": "y" * 20_000}])
    assert raised.value.status_code == 413


def assert_failed_stream(events: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [name for name, _ in events]
    assert names[-3:] == ["thread.run.failed", "error", "done"]
    run = events[-3][1]
    assert run["status"] == "failed" and run["last_error"]["message"]
    assert events[-2][1]["error"]["message"] == run["last_error"]["message"]
    return run


def test_upstream_error_fails_the_run(
    proxy: Proxy, client: openai.OpenAI, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.reply_error(500, message="upstream is down")
    assistant_id, thread_id = setup_thread(client)
    run = assert_failed_stream(stream_run(proxy, thread_id, assistant_id))
    assert run["last_error"]["code"] == "server_error"
    stored = client.beta.threads.runs.retrieve(run["id"], thread_id=thread_id)
    assert stored.status == "failed" and stored.last_error is not None


def test_upstream_timeout_fails_the_run(
    proxy: Proxy, client: openai.OpenAI, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.reply_text("too slow", delay=4)
    assistant_id, thread_id = setup_thread(client)
    run = assert_failed_stream(stream_run(proxy, thread_id, assistant_id))
    assert "tim" in run["last_error"]["message"].lower()


def test_upstream_drop_mid_stream_fails_the_run(
    proxy: Proxy, client: openai.OpenAI, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.reply_drop(after=2)
    assistant_id, thread_id = setup_thread(client)
    events = stream_run(proxy, thread_id, assistant_id)
    assert "thread.message.delta" in [name for name, _ in events]
    assert_failed_stream(events)
    # The SDK's stream helper surfaces it as an exception, not a hang.
    fake_upstream.reply_drop(after=1)
    assistant_id, thread_id = setup_thread(client)
    with (
        pytest.raises(openai.APIError),
        client.beta.threads.runs.stream(thread_id=thread_id, assistant_id=assistant_id) as stream,
    ):
        stream.until_done()


def test_passthrough_remote_unreachable_and_dying_mid_stream(
    start_proxy: StartProxy, fake_upstream: FakeUpstream
) -> None:
    remote = start_proxy(
        {
            "assistant_settings": {"litellm_params": {"api_base": fake_upstream.url, "api_key": "sk-up"}},
            "general_settings": {"master_key": "sk-remote"},
        }
    )
    passthrough = {
        "assistant_settings": {
            "custom_llm_provider": "openai",
            "litellm_params": {"api_base": remote.v1, "api_key": "sk-remote"},
        },
        "general_settings": {"master_key": MASTER_KEY},
    }
    proxy = start_proxy(passthrough)
    client = proxy.client()
    assistant = client.beta.assistants.create(model="openai/slow")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "x"}])
    fake_upstream.reply_text("a b c d e f g h i j", delay=0.3)
    events: list[str] = []
    with (
        pytest.raises(openai.APIError, match="broke off"),
        client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream,
    ):
        for event in stream:
            events.append(event.event)
            if event.event == "thread.message.delta" and remote.process.poll() is None:
                remote.process.kill()  # the remote dies mid-stream
    assert "thread.message.delta" in events
    remote.process.wait(5)
    with pytest.raises(openai.InternalServerError) as raised:
        client.beta.assistants.list()
    assert raised.value.status_code == 502
    assert raised.value.body["code"] == "upstream_unavailable"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_clean_shutdown_with_a_run_in_flight(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, sig: int
) -> None:
    config = master_config()
    config["model_list"] = [fake_route(fake_upstream)]
    proxy = start_proxy(config, "--graceful-timeout", "1")
    client = proxy.client()
    assistant_id, thread_id = setup_thread(client)
    fake_upstream.reply_text("a b c d e f g h i j k l m n o p", delay=1.0)
    run = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id)
    deadline = time.monotonic() + 10
    while client.beta.threads.runs.retrieve(run.id, thread_id=thread_id).status != "in_progress":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    started = time.monotonic()
    assert proxy.stop(sig) == 0
    assert time.monotonic() - started < 8  # --graceful-timeout 1: run grace, then cancel
    output = proxy.output()
    assert "Traceback" not in output
    assert output.rstrip().endswith("assistant-kit stopped")
    # Restarted on the same store: the run was settled, not left in_progress.
    again = start_proxy(
        config | {"general_settings": {**config["general_settings"], "database_url": _db(proxy)}}
    )
    settled = again.client().beta.threads.runs.retrieve(run.id, thread_id=thread_id)
    assert settled.status == "cancelled"


def _db(proxy: Proxy) -> str:
    import yaml

    return yaml.safe_load(proxy.config_path.read_text())["general_settings"]["database_url"]
