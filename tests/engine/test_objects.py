"""CRUD of assistants, threads, messages, runs and run steps through the official SDK.

Every test takes ``client`` and so runs twice: in-process and over real HTTP.
"""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest
from openai.types.beta import (
    Assistant,
    AssistantDeleted,
    CodeInterpreterTool,
    FileSearchTool,
    FunctionTool,
    Thread,
    ThreadDeleted,
)
from openai.types.beta.threads import Message, MessageDeleted, Run, TextContentBlock
from openai.types.beta.threads.runs import MessageCreationStepDetails, RunStep

pytestmark = pytest.mark.timeout(60)

FUNCTION_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def assert_id(value: str, prefix: str) -> None:
    assert value.startswith(prefix + "_"), value
    assert len(value) > len(prefix) + 1


def assert_recent(timestamp: int) -> None:
    assert isinstance(timestamp, int) and not isinstance(timestamp, bool)
    assert abs(timestamp - time.time()) < 10, timestamp


def texts(message: Message) -> list[str]:
    return [part.text.value for part in message.content if isinstance(part, TextContentBlock)]


def not_found(call: Any, object_id: str) -> openai.NotFoundError:
    with pytest.raises(openai.NotFoundError) as info:
        call()
    assert info.value.status_code == 404
    assert object_id in info.value.message
    return info.value


def list_threads(client: openai.OpenAI, **params: Any) -> dict[str, Any]:
    """The ``GET /threads`` extension, through the SDK's generic request method."""
    return client.get("/threads", cast_to=object, options={"params": params})  # type: ignore[return-value]


def completed_run(client: openai.OpenAI, text: str = "hello there") -> tuple[Assistant, Thread, Run]:
    assistant = client.beta.assistants.create(model="test/echo")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": text}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error
    return assistant, thread, run


# -- assistants -----------------------------------------------------------------------------


def test_assistant_create_with_all_fields(client: openai.OpenAI) -> None:
    data = client.files.create(file=("data.csv", b"a,b\n"), purpose="assistants")
    store = client.vector_stores.create(name="docs")
    assistant = client.beta.assistants.create(
        model="test/echo",
        name="Weather bot",
        description="Answers weather questions.",
        instructions="Be brief.",
        tools=[FUNCTION_TOOL, {"type": "code_interpreter"}, {"type": "file_search"}],
        tool_resources={
            "code_interpreter": {"file_ids": [data.id]},
            "file_search": {"vector_store_ids": [store.id]},
        },
        metadata={"team": "weather", "tier": "gold"},
        temperature=0.4,
        top_p=0.9,
        response_format={"type": "json_object"},
    )
    assert isinstance(assistant, Assistant)
    assert_id(assistant.id, "asst")
    assert assistant.object == "assistant"
    assert_recent(assistant.created_at)
    assert assistant.model == "test/echo"
    assert assistant.name == "Weather bot"
    assert assistant.description == "Answers weather questions."
    assert assistant.instructions == "Be brief."
    assert [type(t) for t in assistant.tools] == [FunctionTool, CodeInterpreterTool, FileSearchTool]
    function = assistant.tools[0]
    assert isinstance(function, FunctionTool)
    assert function.function.name == "get_weather"
    assert function.function.parameters == FUNCTION_TOOL["function"]["parameters"]
    assert assistant.tool_resources is not None
    assert assistant.tool_resources.code_interpreter is not None
    assert assistant.tool_resources.code_interpreter.file_ids == [data.id]
    assert assistant.tool_resources.file_search is not None
    assert assistant.tool_resources.file_search.vector_store_ids == [store.id]
    assert assistant.metadata == {"team": "weather", "tier": "gold"}
    assert assistant.temperature == 0.4
    assert assistant.top_p == 0.9
    assert assistant.response_format is not None and assistant.response_format.type == "json_object"  # type: ignore[union-attr]

    fetched = client.beta.assistants.retrieve(assistant.id)
    assert fetched == assistant


def test_assistant_defaults(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="test/echo")
    assert assistant.name is None
    assert assistant.description is None
    assert assistant.instructions is None
    assert assistant.tools == []
    assert assistant.metadata == {}


def test_assistant_update(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(
        model="test/echo", name="before", instructions="keep me", metadata={"a": "1"}
    )
    updated = client.beta.assistants.update(
        assistant.id,
        name="after",
        model="test/tools",
        tools=[FUNCTION_TOOL],
        metadata={"b": "2"},
        temperature=1.5,
    )
    assert isinstance(updated, Assistant)
    assert updated.id == assistant.id
    assert updated.created_at == assistant.created_at
    assert updated.name == "after"
    assert updated.model == "test/tools"
    assert updated.instructions == "keep me"  # untouched fields stay
    assert updated.metadata == {"b": "2"}
    assert updated.temperature == 1.5
    assert [t.type for t in updated.tools] == ["function"]
    assert client.beta.assistants.retrieve(assistant.id) == updated


def test_assistant_delete(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="test/echo")
    deleted = client.beta.assistants.delete(assistant.id)
    assert isinstance(deleted, AssistantDeleted)
    assert deleted.id == assistant.id
    assert deleted.deleted is True
    assert deleted.object == "assistant.deleted"
    exc = not_found(lambda: client.beta.assistants.retrieve(assistant.id), assistant.id)
    assert exc.body["type"] == "invalid_request_error"  # type: ignore[index]
    not_found(lambda: client.beta.assistants.delete(assistant.id), assistant.id)
    not_found(lambda: client.beta.assistants.update(assistant.id, name="x"), assistant.id)
    assert assistant.id not in [a.id for a in client.beta.assistants.list()]


def test_assistant_list(client: openai.OpenAI) -> None:
    ids = [client.beta.assistants.create(model="test/echo", name=f"a{i}").id for i in range(3)]
    page = client.beta.assistants.list()
    assert all(isinstance(a, Assistant) for a in page.data)
    assert [a.id for a in page.data] == ids[::-1]  # newest first by default
    assert page.has_more is False


# -- threads --------------------------------------------------------------------------------


def test_thread_create_with_messages_and_metadata(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create(
        messages=[
            {"role": "user", "content": "first", "metadata": {"n": "1"}},
            {"role": "assistant", "content": [{"type": "text", "text": "second"}]},
        ],
        metadata={"project": "demo"},
    )
    assert isinstance(thread, Thread)
    assert_id(thread.id, "thread")
    assert thread.object == "thread"
    assert_recent(thread.created_at)
    assert thread.metadata == {"project": "demo"}

    messages = client.beta.threads.messages.list(thread.id, order="asc").data
    assert [m.role for m in messages] == ["user", "assistant"]
    assert [texts(m) for m in messages] == [["first"], ["second"]]
    assert messages[0].metadata == {"n": "1"}
    assert all(m.thread_id == thread.id for m in messages)

    assert client.beta.threads.retrieve(thread.id) == thread


def test_thread_update_metadata(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create(metadata={"a": "1"})
    updated = client.beta.threads.update(thread.id, metadata={"a": "2", "b": "3"})
    assert isinstance(updated, Thread)
    assert updated.id == thread.id
    assert updated.created_at == thread.created_at
    assert updated.metadata == {"a": "2", "b": "3"}
    assert client.beta.threads.retrieve(thread.id).metadata == {"a": "2", "b": "3"}


def test_thread_delete_cascades(client: openai.OpenAI) -> None:
    _, thread, run = completed_run(client)
    message = client.beta.threads.messages.list(thread.id).data[0]
    step = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data[0]

    deleted = client.beta.threads.delete(thread.id)
    assert isinstance(deleted, ThreadDeleted)
    assert (deleted.id, deleted.object, deleted.deleted) == (thread.id, "thread.deleted", True)

    not_found(lambda: client.beta.threads.retrieve(thread.id), thread.id)
    not_found(lambda: client.beta.threads.messages.retrieve(message.id, thread_id=thread.id), thread.id)
    not_found(lambda: client.beta.threads.messages.list(thread.id), thread.id)
    not_found(lambda: client.beta.threads.runs.retrieve(run.id, thread_id=thread.id), thread.id)
    not_found(
        lambda: client.beta.threads.runs.steps.retrieve(step.id, thread_id=thread.id, run_id=run.id),
        thread.id,
    )
    assert thread.id not in [t["id"] for t in list_threads(client)["data"]]


def test_list_threads_extension(client: openai.OpenAI) -> None:
    ids = [client.beta.threads.create(metadata={"i": str(i)}).id for i in range(5)]
    body = list_threads(client)
    assert body["object"] == "list"
    assert [t["id"] for t in body["data"]] == ids[::-1]
    assert body["first_id"] == ids[-1] and body["last_id"] == ids[0]
    assert body["has_more"] is False
    threads = [Thread.model_validate(t) for t in body["data"]]
    assert [t.metadata for t in threads] == [{"i": str(i)} for i in reversed(range(5))]

    first = list_threads(client, limit=2, order="asc")
    assert [t["id"] for t in first["data"]] == ids[:2] and first["has_more"] is True
    rest = list_threads(client, limit=10, order="asc", after=first["last_id"])
    assert [t["id"] for t in rest["data"]] == ids[2:] and rest["has_more"] is False


# -- messages -------------------------------------------------------------------------------


def test_message_create_retrieve_update_delete(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()
    message = client.beta.threads.messages.create(
        thread.id, role="user", content="Hello, world!", metadata={"source": "test"}
    )
    assert isinstance(message, Message)
    assert_id(message.id, "msg")
    assert message.object == "thread.message"
    assert_recent(message.created_at)
    assert message.thread_id == thread.id
    assert message.role == "user"
    assert message.status == "completed"
    assert texts(message) == ["Hello, world!"]
    assert message.content[0].text.annotations == []  # type: ignore[union-attr]
    assert message.metadata == {"source": "test"}
    assert message.assistant_id is None and message.run_id is None

    assert client.beta.threads.messages.retrieve(message.id, thread_id=thread.id) == message

    updated = client.beta.threads.messages.update(message.id, thread_id=thread.id, metadata={"k": "v"})
    assert isinstance(updated, Message)
    assert updated.metadata == {"k": "v"}
    assert texts(updated) == ["Hello, world!"]
    assert client.beta.threads.messages.retrieve(message.id, thread_id=thread.id).metadata == {"k": "v"}

    deleted = client.beta.threads.messages.delete(message.id, thread_id=thread.id)
    assert isinstance(deleted, MessageDeleted)
    assert (deleted.id, deleted.object, deleted.deleted) == (message.id, "thread.message.deleted", True)
    not_found(lambda: client.beta.threads.messages.retrieve(message.id, thread_id=thread.id), message.id)
    assert client.beta.threads.messages.list(thread.id).data == []
    assert client.beta.threads.retrieve(thread.id) == thread  # the thread itself stays


def test_message_with_list_of_text_parts(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()
    message = client.beta.threads.messages.create(
        thread.id,
        role="user",
        content=[{"type": "text", "text": "part one"}, {"type": "text", "text": "part two"}],
    )
    assert [part.type for part in message.content] == ["text", "text"]
    assert texts(message) == ["part one", "part two"]
    assert client.beta.threads.messages.retrieve(message.id, thread_id=thread.id) == message


def test_message_list_filters_by_run(client: openai.OpenAI) -> None:
    assistant, thread, run = completed_run(client, "echo me")
    everything = client.beta.threads.messages.list(thread.id, order="asc").data
    assert [m.role for m in everything] == ["user", "assistant"]

    of_run = client.beta.threads.messages.list(thread.id, run_id=run.id).data
    assert len(of_run) == 1
    reply = of_run[0]
    assert reply.role == "assistant"
    assert reply.run_id == run.id
    assert reply.assistant_id == assistant.id
    assert texts(reply) == ["echo me"]
    assert client.beta.threads.messages.list(thread.id, run_id="run_unknown").data == []


# -- runs and run steps ---------------------------------------------------------------------


def test_run_retrieve_update_list(client: openai.OpenAI) -> None:
    assistant, thread, run = completed_run(client)
    assert isinstance(run, Run)
    assert_id(run.id, "run")
    assert run.object == "thread.run"
    assert_recent(run.created_at)
    assert run.thread_id == thread.id
    assert run.assistant_id == assistant.id
    assert run.model == "test/echo"
    assert run.completed_at is not None
    assert_recent(run.completed_at)
    assert run.usage is not None and run.usage.total_tokens > 0

    fetched = client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    assert isinstance(fetched, Run)
    assert fetched.id == run.id and fetched.status == "completed"

    updated = client.beta.threads.runs.update(run.id, thread_id=thread.id, metadata={"label": "x"})
    assert isinstance(updated, Run)
    assert updated.metadata == {"label": "x"}
    assert updated.status == "completed"
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).metadata == {"label": "x"}

    second = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    runs = client.beta.threads.runs.list(thread.id)
    assert all(isinstance(r, Run) for r in runs.data)
    assert [r.id for r in runs.data] == [second.id, run.id]
    assert runs.data[1].metadata == {"label": "x"}


def test_run_steps_list_and_retrieve(client: openai.OpenAI) -> None:
    assistant, thread, run = completed_run(client)
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id)
    assert len(steps.data) == 1
    step = steps.data[0]
    assert isinstance(step, RunStep)
    assert_id(step.id, "step")
    assert step.object == "thread.run.step"
    assert_recent(step.created_at)
    assert (step.run_id, step.thread_id, step.assistant_id) == (run.id, thread.id, assistant.id)
    assert step.type == "message_creation"
    assert step.status == "completed"
    assert isinstance(step.step_details, MessageCreationStepDetails)
    reply = client.beta.threads.messages.retrieve(
        step.step_details.message_creation.message_id, thread_id=thread.id
    )
    assert reply.run_id == run.id and reply.role == "assistant"

    fetched = client.beta.threads.runs.steps.retrieve(step.id, thread_id=thread.id, run_id=run.id)
    assert fetched == step


def test_tool_run_has_tool_calls_step(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="test/tools", tools=[FUNCTION_TOOL])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "weather?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    assert run.required_action is not None
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    assert_id(call.id, "call")
    assert call.function.name == "get_weather"

    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "sunny"}]
    )
    assert run.status == "completed"
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    tool_step = client.beta.threads.runs.steps.retrieve(steps[0].id, thread_id=thread.id, run_id=run.id)
    assert tool_step.step_details.type == "tool_calls"
    (done,) = tool_step.step_details.tool_calls  # type: ignore[union-attr]
    assert done.id == call.id
    assert done.function.output == "sunny"  # type: ignore[union-attr]


def test_active_run_metadata_update_and_thread_delete(client: openai.OpenAI) -> None:
    """A run parked in requires_action can be relabelled; deleting its thread stops it."""
    assistant = client.beta.assistants.create(model="test/tools", tools=[FUNCTION_TOOL])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "weather?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    updated = client.beta.threads.runs.update(run.id, thread_id=thread.id, metadata={"why": "waiting"})
    assert updated.status == "requires_action" and updated.metadata == {"why": "waiting"}
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).metadata == {"why": "waiting"}

    assert client.beta.threads.delete(thread.id).deleted is True
    not_found(lambda: client.beta.threads.runs.retrieve(run.id, thread_id=thread.id), thread.id)
    # The assistant is untouched and can run again on a new thread.
    other = client.beta.threads.create(messages=[{"role": "user", "content": "again"}])
    again = client.beta.threads.runs.create_and_poll(thread_id=other.id, assistant_id=assistant.id)
    assert again.status == "requires_action"
    client.beta.threads.runs.cancel(again.id, thread_id=other.id)


def test_deleted_assistant_keeps_its_runs(client: openai.OpenAI) -> None:
    assistant, thread, run = completed_run(client)
    client.beta.assistants.delete(assistant.id)
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).assistant_id == assistant.id
    not_found(
        lambda: client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id), assistant.id
    )
