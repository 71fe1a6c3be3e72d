"""The SSE event stream, as the official SDK's helpers consume it.

Golden event orders for a plain run, a function-calling run and the resumed stream after
``submit_tool_outputs``; ``AssistantEventHandler`` callbacks; ``create_and_run`` streaming;
the raw ``stream=True`` form; the async client. Every test runs in-process and over HTTP.
"""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
from openai import AssistantEventHandler
from typing_extensions import override

from assistant_kit import local_async_client

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}

PLAIN = [
    "thread.run.created",
    "thread.run.queued",
    "thread.run.in_progress",
    "thread.run.step.created",
    "thread.run.step.in_progress",
    "thread.message.created",
    "thread.message.in_progress",
    "thread.message.delta",
    "thread.message.completed",
    "thread.run.step.completed",
    "thread.run.completed",
]


def collapse(events: list[str]) -> list[str]:
    """Consecutive text deltas count as one: the server may merge deltas a slow reader
    has not taken yet, so their number is not part of the contract; their text is."""
    out: list[str] = []
    for event in events:
        if not (event == "thread.message.delta" and out and out[-1] == event):
            out.append(event)
    return out


def test_plain_stream_golden_order(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="test/echo")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "one two three"}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        events = [event.event for event in stream]
        run = stream.get_final_run()
        messages = stream.get_final_messages()
    assert collapse(events) == PLAIN
    assert run.status == "completed"
    assert run.usage is not None and run.usage.completion_tokens == 3
    assert [m.content[0].text.value for m in messages] == ["one two three"]


def test_raw_stream_true_parses_every_event(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="test/echo")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "a b"}])
    stream = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id, stream=True)
    events = list(stream)
    names = [e.event for e in events]
    assert names[0] == "thread.run.created" and names[-1] == "thread.run.completed"
    run_events = [e for e in events if e.event.startswith("thread.run.") and ".step." not in e.event]
    # Every thread.run.* event carries the full run; the terminal one carries usage.
    assert all(e.data.id == events[0].data.id and e.data.object == "thread.run" for e in run_events)
    assert run_events[-1].data.usage is not None
    deltas = [e.data.delta.content[0] for e in events if e.event == "thread.message.delta"]
    assert all(d.index == 0 for d in deltas)
    assert "".join(d.text.value for d in deltas) == "a b"


class Recorder(AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.text = ""
        self.tool_calls: list[tuple[str, str]] = []

    @override
    def on_text_created(self, text) -> None:  # type: ignore[no-untyped-def]
        self.calls.append("text_created")

    @override
    def on_text_delta(self, delta, snapshot) -> None:  # type: ignore[no-untyped-def]
        self.text += delta.value

    @override
    def on_text_done(self, text) -> None:  # type: ignore[no-untyped-def]
        self.calls.append(f"text_done:{text.value}")

    @override
    def on_message_done(self, message) -> None:  # type: ignore[no-untyped-def]
        self.calls.append(f"message_done:{message.status}")

    @override
    def on_tool_call_created(self, tool_call) -> None:  # type: ignore[no-untyped-def]
        self.calls.append(f"tool_call_created:{tool_call.function.name}")

    @override
    def on_tool_call_done(self, tool_call) -> None:  # type: ignore[no-untyped-def]
        self.calls.append(f"tool_call_done:{tool_call.function.name}")
        self.tool_calls.append((tool_call.id, tool_call.function.arguments))

    @override
    def on_run_step_created(self, run_step) -> None:  # type: ignore[no-untyped-def]
        self.calls.append(f"step_created:{run_step.type}")

    @override
    def on_run_step_done(self, run_step) -> None:  # type: ignore[no-untyped-def]
        self.calls.append(f"step_done:{run_step.type}:{run_step.status}")


def test_event_handler_callbacks_plain(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="test/echo")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hello world"}])
    handler = Recorder()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=handler
    ) as stream:
        stream.until_done()
    assert handler.text == "hello world"
    assert handler.calls == [
        "step_created:message_creation",
        "text_created",
        "text_done:hello world",
        "message_done:completed",
        "step_done:message_creation:completed",
    ]
    assert handler.get_final_run().status == "completed"


def test_function_calling_stream_then_resumed_stream(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="test/tools", tools=[WEATHER, TIME])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "weather and time?"}])
    handler = Recorder()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=handler
    ) as stream:
        events = [e.event for e in stream]
    assert events[:5] == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.step.created",
        "thread.run.step.in_progress",
    ]
    assert set(events[5:-1]) == {"thread.run.step.delta"}
    assert events[-1] == "thread.run.requires_action"
    # Tool-call callbacks fire for both calls before requires_action ends the stream.
    assert handler.calls == [
        "step_created:tool_calls",
        "tool_call_created:get_weather",
        "tool_call_done:get_weather",
        "tool_call_created:get_time",
        "tool_call_done:get_time",
    ]
    run = handler.get_final_run()
    assert run.status == "requires_action"
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0].function.arguments) == {"city": "text", "days": 1}
    assert [c[0] for c in handler.tool_calls] == [c.id for c in calls]
    assert all(c.id.startswith("call_") for c in calls)

    resumed = Recorder()
    with client.beta.threads.runs.submit_tool_outputs_stream(
        thread_id=thread.id,
        run_id=run.id,
        tool_outputs=[
            {"tool_call_id": calls[0].id, "output": "sunny"},
            {"tool_call_id": calls[1].id, "output": "noon"},
        ],
        event_handler=resumed,
    ) as stream:
        events = [e.event for e in stream]
    assert events[:3] == ["thread.run.step.completed", "thread.run.queued", "thread.run.in_progress"]
    assert events[3:7] == [
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.message.created",
        "thread.message.in_progress",
    ]
    assert collapse(events[7:]) == PLAIN[-4:]
    final = resumed.get_final_run()
    assert final.id == run.id and final.status == "completed"
    assert "sunny" in resumed.text and "noon" in resumed.text
    steps = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id, order="asc").data
    assert [(s.type, s.status) for s in steps] == [
        ("tool_calls", "completed"),
        ("message_creation", "completed"),
    ]
    outputs = [c.function.output for c in steps[0].step_details.tool_calls]
    assert outputs == ["sunny", "noon"]


def test_create_and_run_stream_starts_with_thread_created(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="test/echo")
    with client.beta.threads.create_and_run_stream(
        assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "hi there"}]}
    ) as stream:
        events = [e.event for e in stream]
        run = stream.get_final_run()
    assert events == [
        "thread.created",
        *PLAIN[:7],
        "thread.message.delta",
        "thread.message.delta",
        *PLAIN[-3:],
    ]
    assert run.status == "completed"
    messages = client.beta.threads.messages.list(run.thread_id, order="asc").data
    assert [m.role for m in messages] == ["user", "assistant"]


def test_stream_of_failed_run_raises_error_event(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(api_key="sk-test", api_base="http://127.0.0.1:9/v1", max_retries=0)
    assistant = client.beta.assistants.create(model="openai/unreachable")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    events: list[str] = []
    with (
        pytest.raises(openai.APIError),
        client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream,
    ):
        for event in stream:
            events.append(event.event)
    assert events[-1] == "thread.run.failed"
    run = client.beta.threads.runs.list(thread.id).data[0]
    assert run.status == "failed" and run.last_error.code == "server_error"
    assert "sk-test" not in run.last_error.message


def test_async_client_streams(tmp_path) -> None:  # type: ignore[no-untyped-def]
    async def main() -> tuple[list[str], str]:
        client = local_async_client(tmp_path / "kit.db")
        assistant = await client.beta.assistants.create(model="test/echo")
        thread = await client.beta.threads.create(messages=[{"role": "user", "content": "async works"}])
        async with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
            names = [event.event async for event in stream]
        run = await client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
        await client.close()
        return names, run.status

    names, status = asyncio.run(main())
    assert collapse(names) == PLAIN
    assert status == "completed"
