"""Run events (``engine/events.py``): SSE framing, who gets which event, when a stream ends,
the ``error`` event of a failed run, ``[DONE]``, and the merging of text deltas a slow
reader let queue up. The framing is also read byte for byte off a real stream through the
official SDK (in-process and over HTTP).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from assistant_kit import register_model
from assistant_kit.engine.events import DONE, STREAM_END, EventHub, sse
from assistant_kit.errors import ModelError
from assistant_kit.models.base import BaseChatModel, ModelEvent, ModelRequest, TextDelta


def test_sse_framing() -> None:
    assert sse("thread.run.created", {"id": "run_1", "n": [1, 2]}) == (
        b'event: thread.run.created\ndata: {"id":"run_1","n":[1,2]}\n\n'
    )
    assert sse("x", "already text") == b"event: x\ndata: already text\n\n"
    assert sse("x", {"text": "é"}) == b'event: x\ndata: {"text":"\\u00e9"}\n\n'
    # The literal [DONE], not a JSON string: the SDK's stream helper stops on exactly this.
    assert DONE == b"event: done\ndata: [DONE]\n\n"


def _delta(message_id: str, text: str, index: int = 0) -> dict[str, Any]:
    return {
        "id": message_id,
        "object": "thread.message.delta",
        "delta": {"content": [{"index": index, "type": "text", "text": {"value": text, "annotations": []}}]},
    }


async def _drain(hub: EventHub, run_id: str, publish: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    sub = hub.subscribe(run_id)
    for event, data in publish:
        hub.publish(run_id, event, data)
    return [item async for item in sub.events()]


def test_a_subscription_gets_events_from_when_it_subscribed() -> None:
    """No replay: what was published before is gone; a stream that must see everything
    (``runs.create(stream=True)``) subscribes before the run starts."""

    async def main() -> tuple[list[str], list[str]]:
        hub = EventHub()
        hub.publish("run_1", "thread.run.created", {"n": 0})  # nobody listens: dropped
        late = hub.subscribe("run_1")
        other = hub.subscribe("run_2")
        hub.publish("run_1", "thread.run.in_progress", {"n": 1})
        hub.publish("run_2", "thread.run.in_progress", {"n": 2})
        hub.publish("run_1", "thread.run.completed", {"n": 3})
        hub.publish("run_2", "thread.run.requires_action", {"n": 4})
        return [e async for e, _ in late.events()], [e async for e, _ in other.events()]

    late, other = asyncio.run(main())
    assert late == ["thread.run.in_progress", "thread.run.completed"]
    assert other == ["thread.run.in_progress", "thread.run.requires_action"]


@pytest.mark.parametrize("end", sorted(STREAM_END - {"thread.run.failed", "error"}))
def test_a_stream_ends_after_the_event_that_hands_control_back(end: str) -> None:
    async def main() -> list[str]:
        hub = EventHub()
        events = await _drain(hub, "run_1", [("thread.run.in_progress", {}), (end, {}), ("after", {})])
        assert not hub.has_subscribers("run_1")  # the ended stream unsubscribed itself
        return [e for e, _ in events]

    assert asyncio.run(main()) == ["thread.run.in_progress", end]


def test_a_failed_run_is_followed_by_an_error_event_shaped_like_an_api_error() -> None:
    run = {
        "id": "run_1",
        "status": "failed",
        "last_error": {"code": "rate_limit_exceeded", "message": "slow down"},
    }
    events = asyncio.run(_drain(EventHub(), "run_1", [("thread.run.failed", run)]))
    assert events == [
        ("thread.run.failed", run),
        (
            "error",
            {
                "error": {
                    "message": "slow down",
                    "type": "server_error",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            },
        ),
    ]


def test_queued_text_deltas_of_one_part_merge() -> None:
    """A reader that fell behind gets the queued deltas of one text part as one delta;
    deltas of another message, or of another part, stay separate."""
    published = [
        ("thread.message.delta", _delta("msg_1", "a")),
        ("thread.message.delta", _delta("msg_1", "b")),
        ("thread.message.delta", _delta("msg_1", "c")),
        ("thread.message.delta", _delta("msg_2", "d")),
        ("thread.message.delta", _delta("msg_2", "e", index=1)),
        ("thread.run.completed", {}),
    ]
    events = asyncio.run(_drain(EventHub(), "run_1", published))
    assert events == [
        ("thread.message.delta", _delta("msg_1", "abc")),
        ("thread.message.delta", _delta("msg_2", "d")),
        ("thread.message.delta", _delta("msg_2", "e", index=1)),
        ("thread.run.completed", {}),
    ]


def test_events_from_other_processes_reach_remote_subscriptions_only() -> None:
    async def main() -> tuple[list[str], list[str]]:
        hub = EventHub()
        local, remote = hub.subscribe("run_1"), hub.subscribe("run_1", remote=True)
        hub.deliver_remote("run_1", "thread.run.in_progress", {})  # from another replica
        hub.publish("run_1", "thread.run.completed", {})  # from this process
        return [e async for e, _ in local.events()], [e async for e, _ in remote.events()]

    local, remote = asyncio.run(main())
    assert local == ["thread.run.completed"]
    assert remote == ["thread.run.in_progress", "thread.run.completed"]


def test_close_unsubscribes() -> None:
    hub = EventHub()
    sub = hub.subscribe("run_1")
    assert hub.has_subscribers("run_1")
    sub.close()
    sub.close()  # twice is harmless
    assert not hub.has_subscribers("run_1")
    hub.publish("run_1", "thread.run.completed", {})
    assert sub.queue.empty()


# -- on the wire -------------------------------------------------------------------------------------


class Failing(BaseChatModel):
    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        yield TextDelta("partial")
        raise ModelError("the upstream went away", code="server_error")


register_model("events/failing", Failing())


def _frames(body: bytes) -> list[tuple[str, str]]:
    """The body as (event, data) frames; asserts each is exactly ``event: …\\ndata: …\\n\\n``."""
    assert body.endswith(b"\n\n")
    frames = []
    for block in body.decode().split("\n\n")[:-1]:
        event_line, data_line = block.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        frames.append((event_line[len("event: ") :], data_line[len("data: ") :]))
    return frames


def _raw_run_stream(client: openai.OpenAI, model: str, **params: Any) -> list[tuple[str, str]]:
    assistant = client.beta.assistants.create(model=model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "one two"}])
    with client.beta.threads.runs.with_streaming_response.create(
        thread_id=thread.id, assistant_id=assistant.id, stream=True, **params
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        return _frames(b"".join(response.iter_bytes()))


def test_a_run_stream_on_the_wire(client: openai.OpenAI) -> None:
    frames = _raw_run_stream(client, "test/echo")
    names = [name for name, _ in frames]
    assert names[0] == "thread.run.created" and names[-2:] == ["thread.run.completed", "done"]
    assert frames[-1] == ("done", "[DONE]")
    for name, data in frames[:-1]:
        assert json.loads(data)["object"] in (
            name.rsplit(".", 1)[0],
            name,
        )  # e.g. thread.run / thread.message.delta
    text = "".join(
        part["text"]["value"]
        for name, data in frames
        if name == "thread.message.delta"
        for part in json.loads(data)["delta"]["content"]
    )
    assert text == "one two"


def test_a_failed_run_stream_on_the_wire(client: openai.OpenAI) -> None:
    frames = _raw_run_stream(client, "events/failing")
    names = [name for name, _ in frames]
    assert names[-3:] == ["thread.run.failed", "error", "done"]
    error = json.loads(frames[-2][1])["error"]
    assert error["message"] == "the upstream went away" and error["code"] == "server_error"
    assert frames[-1] == ("done", "[DONE]")


def test_the_sdk_raises_the_error_event(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="events/failing")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.APIError, match="the upstream went away"):
        for _ in client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id, stream=True):
            pass
