"""The in-process transports (``assistant_kit.transport``), through the official SDK.

What they promise beyond "requests work" (which the whole suite shows): a streamed response
reaches the client event by event while the run is still going (httpx's ``ASGITransport``
would hand it over in one piece at the end); bodies go through byte for byte both ways; an
app that fails before answering is a connection error, not a hang; closing a stream early
tells the app and leaves the run running; and both clients work from inside a running event
loop (Jupyter's) without patching it, while the one misuse that would deadlock — the sync
client on the engine's own loop — is refused.

The model is a Python function gated by a ``threading.Event``: until the test opens the gate,
the run cannot end, so whatever the client holds by then has been streamed, not buffered.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from assistant_kit import local_async_client, local_client, register_model
from assistant_kit.runtime import engine_loop, run_sync
from assistant_kit.transport import AsyncInProcessTransport, InProcessTransport

pytestmark = pytest.mark.timeout(60)

GATED = "transport-test/gated"


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """The gate of the ``transport-test/gated`` model: it says "first", waits for the gate,
    then says "second"."""
    event = threading.Event()

    async def gated(messages: list[dict[str, Any]]) -> AsyncIterator[str]:
        yield "first "
        await asyncio.to_thread(event.wait, 30)
        yield "second"

    register_model(GATED, gated)
    yield event
    event.set()  # a run a failed test left waiting ends


def _start(client: openai.OpenAI) -> tuple[str, str]:
    assistant = client.beta.assistants.create(model=GATED)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
    return assistant.id, thread.id


def _delta_text(event: Any) -> str:
    return "".join(part.text.value or "" for part in event.data.delta.content or () if part.type == "text")


def test_sync_stream_arrives_event_by_event_before_the_run_ends(
    tmp_path: Path, gate: threading.Event
) -> None:
    client = local_client(tmp_path / "kit.db")
    assistant_id, thread_id = _start(client)
    seen: list[str] = []
    with client.beta.threads.runs.create(
        thread_id=thread_id, assistant_id=assistant_id, stream=True
    ) as stream:
        events = iter(stream)
        for event in events:
            seen.append(event.event)
            if event.event == "thread.message.delta":
                assert _delta_text(event) == "first "
                break
        # The stream is open and the run waits for the gate; another request goes through.
        run = client.beta.threads.runs.list(thread_id).data[0]
        assert run.status == "in_progress" and not gate.is_set()
        gate.set()
        rest = [
            (event.event, _delta_text(event) if event.event == "thread.message.delta" else "")
            for event in events
        ]
    assert ("thread.message.delta", "second") in rest
    assert rest[-1][0] == "thread.run.completed"
    assert seen[:2] == ["thread.run.created", "thread.run.queued"]


def test_async_stream_arrives_event_by_event_before_the_run_ends(
    tmp_path: Path, gate: threading.Event
) -> None:
    client = local_async_client(tmp_path / "kit.db")

    async def scenario() -> list[str]:
        assistant = await client.beta.assistants.create(model=GATED)
        thread = await client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
        texts = []
        stream = await client.beta.threads.runs.create(
            thread_id=thread.id, assistant_id=assistant.id, stream=True
        )
        async with stream:
            async for event in stream:
                if event.event == "thread.message.delta":
                    texts.append(_delta_text(event))
                    if len(texts) == 1:
                        assert not gate.is_set()
                        run = (await client.beta.threads.runs.list(thread.id)).data[0]
                        assert run.status == "in_progress"
                        gate.set()
                last = event.event
        assert last == "thread.run.completed"
        return texts

    assert asyncio.run(scenario()) == ["first ", "second"]


def test_request_and_response_bodies_arrive_byte_for_byte(tmp_path: Path) -> None:
    """Binary uploads and downloads, a large JSON body with every kind of character, a query
    string — over both clients."""
    client = local_client(tmp_path / "kit.db")
    data = bytes(range(256)) * 4096  # 1 MiB, every byte value, no line structure
    uploaded = client.files.create(file=("blob.bin", data), purpose="assistants")
    assert uploaded.bytes == len(data)
    assert client.files.content(uploaded.id).content == data
    text = 'ünïcødé ✓ \u2028 "quoted" \\ {json} ' * 2000
    thread = client.beta.threads.create()
    for n in range(3):
        client.beta.threads.messages.create(thread.id, role="user", content=f"{n}: {text}")
    newest = client.beta.threads.messages.list(thread.id, limit=1, order="desc").data
    assert [m.content[0].text.value for m in newest] == [f"2: {text}"]

    async def read_back() -> bytes:
        aclient = local_async_client(tmp_path / "kit.db")
        return (await aclient.files.content(uploaded.id)).content

    assert asyncio.run(read_back()) == data


def test_errors_reach_the_client_as_the_sdk_knows_them(tmp_path: Path) -> None:
    """An API error is the app's own OpenAI-shaped response; an app that fails before it
    answers is a connection error the SDK raises at once, not a wait for a response that will
    never come."""
    client = local_client(tmp_path / "kit.db")
    with pytest.raises(openai.NotFoundError) as info:
        client.beta.threads.retrieve("thread_nope")
    assert info.value.status_code == 404 and "thread_nope" in info.value.message
    with pytest.raises(openai.BadRequestError) as bad:
        client.beta.assistants.create(model="test/echo", temperature=7)
    assert bad.value.param == "temperature"

    async def broken(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        raise RuntimeError("the app broke")

    http = openai.DefaultHttpxClient(transport=InProcessTransport(broken, engine_loop()))
    sdk = openai.OpenAI(api_key="x", base_url="http://kit.test/v1", max_retries=0, http_client=http)
    with pytest.raises(openai.APIConnectionError) as failed:
        sdk.models.list()
    assert "the app broke" in repr(failed.value.__cause__)

    async def broken_async() -> None:
        http = openai.DefaultAsyncHttpxClient(transport=AsyncInProcessTransport(broken, engine_loop()))
        sdk = openai.AsyncOpenAI(api_key="x", base_url="http://kit.test/v1", max_retries=0, http_client=http)
        await sdk.models.list()

    with pytest.raises(openai.APIConnectionError):
        asyncio.run(broken_async())


def test_closing_a_stream_early_leaves_the_run_running(tmp_path: Path, gate: threading.Event) -> None:
    """The client hangs up after the first delta: the app hears the disconnect (its stream
    ends), the run finishes on its own once the model goes on, and the client keeps working."""
    client = local_client(tmp_path / "kit.db")
    assistant_id, thread_id = _start(client)
    stream = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id, stream=True)
    run_id = None
    for event in stream:
        if event.event == "thread.run.created":
            run_id = event.data.id
        if event.event == "thread.message.delta":
            break
    stream.close()
    assert run_id is not None
    assert client.beta.threads.runs.retrieve(run_id, thread_id=thread_id).status == "in_progress"
    gate.set()
    run = client.beta.threads.runs.poll(run_id, thread_id=thread_id, poll_interval_ms=20)
    assert run.status == "completed"
    reply = client.beta.threads.messages.list(thread_id, order="desc").data[0]
    assert reply.content[0].text.value == "first second"


def test_async_stream_closed_early_then_the_client_goes_on(tmp_path: Path, gate: threading.Event) -> None:
    client = local_async_client(tmp_path / "kit.db")

    async def scenario() -> str:
        assistant = await client.beta.assistants.create(model=GATED)
        thread = await client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
        stream = await client.beta.threads.runs.create(
            thread_id=thread.id, assistant_id=assistant.id, stream=True
        )
        async for event in stream:
            if event.event == "thread.message.delta":
                break
        await stream.close()
        gate.set()
        run = (await client.beta.threads.runs.list(thread.id)).data[0]
        run = await client.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=20)
        return run.status

    assert asyncio.run(scenario()) == "completed"


def test_both_clients_work_inside_a_running_loop(tmp_path: Path, gate: threading.Event) -> None:
    """As in a notebook cell: the sync client called (blocking) from a coroutine, and the async
    client awaited, on a loop that is running — nothing patched, nothing nested. Only the sync
    client on the engine's own loop is refused: it would wait for the loop it blocks."""
    gate.set()
    db = tmp_path / "kit.db"

    async def cell() -> tuple[str, str]:
        sync = local_client(db)
        assistant_id, thread_id = _start(sync)
        polled = sync.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
        aclient = local_async_client(db)
        awaited = await aclient.beta.threads.runs.create_and_poll(
            thread_id=thread_id, assistant_id=assistant_id
        )
        return polled.status, awaited.status

    assert asyncio.run(cell()) == ("completed", "completed")

    async def on_the_engine_loop() -> None:
        local_client(db).beta.assistants.list()

    with pytest.raises(RuntimeError, match="cannot be called from the engine's own loop"):
        run_sync(on_the_engine_loop())

    async def async_on_the_engine_loop() -> None:
        await local_async_client(db).beta.assistants.list()

    with pytest.raises(RuntimeError, match="must run on a loop other than the engine's"):
        run_sync(async_on_the_engine_loop())
