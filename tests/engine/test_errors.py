"""Bad input: the right SDK exception, OpenAI's error body, a message naming the culprit.

The SDK retries 408/409/429/5xx even for POST, so every client mistake here must be a
400 or a 404 — :func:`expect` checks that on every case.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from openai.types.beta import Assistant, Thread
from openai.types.beta.threads import Run

pytestmark = pytest.mark.timeout(60)

FUNCTION_TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
    },
}


def expect(
    exc_type: type[openai.APIStatusError],
    call: Callable[[], Any],
    *,
    param: str | None = None,
    mentions: str | None = None,
) -> openai.APIStatusError:
    """``call`` raises ``exc_type`` (400/404, never retried) with OpenAI's error body."""
    with pytest.raises(openai.APIStatusError) as info:
        call()
    exc = info.value
    assert type(exc) is exc_type, (type(exc), exc.status_code, exc.message)
    assert exc.status_code in (400, 404), exc.status_code
    wire = exc.response.json()
    assert set(wire) == {"error"}
    assert set(wire["error"]) == {"message", "type", "param", "code"}
    assert wire["error"]["type"] == "invalid_request_error"
    assert isinstance(exc.body, dict) and exc.body == wire["error"]
    if param is not None:
        assert exc.body["param"] == param, exc.body
    if mentions is not None:
        assert mentions in exc.message, exc.message
    return exc


def bad_request(call: Callable[[], Any], param: str | None = None, mentions: str | None = None) -> Any:
    return expect(openai.BadRequestError, call, param=param, mentions=mentions)


def not_found(call: Callable[[], Any], object_id: str) -> Any:
    return expect(openai.NotFoundError, call, mentions=object_id)


@pytest.fixture
def assistant(client: openai.OpenAI) -> Assistant:
    return client.beta.assistants.create(model="test/echo")


@pytest.fixture
def thread(client: openai.OpenAI) -> Thread:
    return client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])


@pytest.fixture
def completed(client: openai.OpenAI, assistant: Assistant, thread: Thread) -> Run:
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    return run


@pytest.fixture
def parked(client: openai.OpenAI) -> Iterator[Run]:
    """A run held active in ``requires_action`` (test/tools with one function tool)."""
    tools_assistant = client.beta.assistants.create(model="test/tools", tools=[FUNCTION_TOOL])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "look it up"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=tools_assistant.id)
    assert run.status == "requires_action"
    yield run
    if client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "requires_action":
        client.beta.threads.runs.cancel(run.id, thread_id=thread.id)


# -- unknown ids -> 404 -------------------------------------------------------------------


def test_unknown_ids_are_404_naming_the_id(
    client: openai.OpenAI, assistant: Assistant, thread: Thread, completed: Run
) -> None:
    beta = client.beta
    not_found(lambda: beta.assistants.retrieve("asst_missing"), "asst_missing")
    not_found(lambda: beta.assistants.update("asst_missing", name="x"), "asst_missing")
    not_found(lambda: beta.assistants.delete("asst_missing"), "asst_missing")
    not_found(lambda: beta.threads.retrieve("thread_missing"), "thread_missing")
    not_found(lambda: beta.threads.update("thread_missing", metadata={}), "thread_missing")
    not_found(lambda: beta.threads.delete("thread_missing"), "thread_missing")
    not_found(
        lambda: beta.threads.messages.create("thread_missing", role="user", content="x"), "thread_missing"
    )
    not_found(lambda: beta.threads.messages.retrieve("msg_missing", thread_id=thread.id), "msg_missing")
    not_found(
        lambda: beta.threads.messages.update("msg_missing", thread_id=thread.id, metadata={}), "msg_missing"
    )
    not_found(lambda: beta.threads.messages.delete("msg_missing", thread_id=thread.id), "msg_missing")
    not_found(lambda: beta.threads.runs.retrieve("run_missing", thread_id=thread.id), "run_missing")
    not_found(lambda: beta.threads.runs.cancel("run_missing", thread_id=thread.id), "run_missing")
    not_found(lambda: beta.threads.runs.steps.list("run_missing", thread_id=thread.id), "run_missing")
    not_found(
        lambda: beta.threads.runs.steps.retrieve("step_missing", thread_id=thread.id, run_id=completed.id),
        "step_missing",
    )
    exc = not_found(
        lambda: beta.threads.runs.create(thread_id=thread.id, assistant_id="asst_missing"), "asst_missing"
    )
    assert exc.body["param"] == "assistant_id"
    not_found(
        lambda: beta.threads.runs.create(thread_id="thread_missing", assistant_id=assistant.id),
        "thread_missing",
    )


def test_objects_of_another_thread_are_404(
    client: openai.OpenAI, assistant: Assistant, thread: Thread, completed: Run
) -> None:
    other = client.beta.threads.create()
    message = client.beta.threads.messages.list(thread.id).data[0]
    step = client.beta.threads.runs.steps.list(completed.id, thread_id=thread.id).data[0]
    beta = client.beta
    not_found(lambda: beta.threads.messages.retrieve(message.id, thread_id=other.id), message.id)
    not_found(
        lambda: beta.threads.messages.update(message.id, thread_id=other.id, metadata={"a": "b"}), message.id
    )
    not_found(lambda: beta.threads.messages.delete(message.id, thread_id=other.id), message.id)
    not_found(lambda: beta.threads.runs.retrieve(completed.id, thread_id=other.id), completed.id)
    not_found(lambda: beta.threads.runs.steps.list(completed.id, thread_id=other.id), completed.id)

    # A step of another run of the same thread.
    second = beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    not_found(
        lambda: beta.threads.runs.steps.retrieve(step.id, thread_id=thread.id, run_id=second.id), step.id
    )
    # Nothing was touched by the failed calls.
    assert beta.threads.messages.retrieve(message.id, thread_id=thread.id) == message


def test_unknown_route_is_404(client: openai.OpenAI) -> None:
    exc = not_found(lambda: client.get("/nothing-here", cast_to=object), "/nothing-here")
    assert "Invalid URL" in exc.message


# -- wrong types and values -> 400 naming the parameter --------------------------------------


def test_wrong_types_name_the_parameter(client: openai.OpenAI, thread: Thread) -> None:
    beta = client.beta
    bad_request(lambda: beta.assistants.create(model="test/echo", temperature="hot"), "temperature")  # type: ignore[arg-type]
    bad_request(
        lambda: beta.assistants.create(
            model="test/echo",
            tools=[{"type": "function", "function": {"name": 1}}],  # type: ignore[list-item, typeddict-item]
        ),
        "tools[0].function.name",
    )
    bad_request(
        lambda: beta.assistants.create(model="test/echo", tools=[{"type": "hammer"}]),  # type: ignore[list-item]
        mentions="tools[0]",
    )
    # A tool given by name says what a tool looks like (assistants, runs, create_and_run).
    hint = 'A tool is an object: use {"type": "code_interpreter"}.'
    bad_request(
        lambda: beta.assistants.create(model="test/echo", tools=["code_interpreter"]),  # type: ignore[list-item]
        "tools[0]",
        mentions=hint,
    )
    bad_request(
        lambda: beta.threads.create_and_run(
            assistant_id="asst_x",
            tools=[{"type": "file_search"}, "file_search"],  # type: ignore[list-item]
        ),
        "tools[1]",
        mentions='use {"type": "file_search"}',
    )
    bad_request(
        lambda: beta.assistants.create(model="test/echo", tools=["browser"]),  # type: ignore[list-item]
        "tools[0]",
        mentions='A tool is an object, such as {"type": "code_interpreter"}.',
    )
    bad_request(lambda: beta.assistants.create(model=42), "model")  # type: ignore[arg-type]
    bad_request(lambda: beta.assistants.create(model="test/echo", name=["x"]), "name")  # type: ignore[arg-type]
    bad_request(lambda: beta.threads.create(metadata="nope"), "metadata")  # type: ignore[arg-type]
    bad_request(
        lambda: beta.threads.messages.create(thread.id, role="robot", content="x"),  # type: ignore[arg-type]
        "role",
    )
    bad_request(
        lambda: beta.threads.messages.create(thread.id, role="user", content=[{"type": "text", "text": 5}]),  # type: ignore[list-item, typeddict-item]
        "content[0].text",
    )


def test_out_of_range_values(client: openai.OpenAI, assistant: Assistant, thread: Thread) -> None:
    beta = client.beta
    bad_request(lambda: beta.assistants.create(model="test/echo", temperature=2.5), "temperature", "2.5")
    bad_request(lambda: beta.assistants.create(model="test/echo", temperature=-0.1), "temperature")
    bad_request(lambda: beta.assistants.create(model="test/echo", top_p=1.5), "top_p")
    bad_request(lambda: beta.assistants.update(assistant.id, temperature=3), "temperature")
    bad_request(
        lambda: beta.threads.runs.create(
            thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=100
        ),
        "max_completion_tokens",
        "256",
    )
    bad_request(
        lambda: beta.threads.runs.create(
            thread_id=thread.id, assistant_id=assistant.id, max_prompt_tokens=10
        ),
        "max_prompt_tokens",
    )
    bad_request(
        lambda: beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id, temperature=9),
        "temperature",
    )
    # The boundaries themselves are fine.
    ok = beta.assistants.create(model="test/echo", temperature=2, top_p=0)
    assert (ok.temperature, ok.top_p) == (2, 0)
    assert beta.threads.runs.list(thread.id).data == []  # no run was created by the bad calls


def test_metadata_limits(client: openai.OpenAI, thread: Thread) -> None:
    beta = client.beta
    seventeen = {f"k{i}": "v" for i in range(17)}
    bad_request(lambda: beta.assistants.create(model="test/echo", metadata=seventeen), "metadata", "16")
    bad_request(lambda: beta.threads.create(metadata=seventeen), "metadata")
    bad_request(lambda: beta.threads.update(thread.id, metadata=seventeen), "metadata")
    exc = bad_request(lambda: beta.threads.create(metadata={"n": 1}))  # type: ignore[dict-item]
    assert exc.body["param"].startswith("metadata")
    bad_request(lambda: beta.threads.create(metadata={"long": "x" * 513}), "metadata.long")
    bad_request(lambda: beta.threads.create(metadata={"k" * 65: "v"}), "metadata")
    bad_request(
        lambda: beta.threads.messages.create(thread.id, role="user", content="x", metadata=seventeen),
        "metadata",
    )
    bad_request(
        lambda: beta.threads.create(messages=[{"role": "user", "content": "x", "metadata": seventeen}]),
        "messages[0].metadata",
    )
    assistant = beta.assistants.create(model="test/echo")
    bad_request(
        lambda: beta.threads.create_and_run(assistant_id=assistant.id, thread={"metadata": seventeen}),
        "thread.metadata",
    )
    bad_request(
        lambda: beta.threads.create_and_run(
            assistant_id=assistant.id,
            thread={"messages": [{"role": "user", "content": "x", "metadata": {"n": "v" * 600}}]},
        ),
        "thread.messages[0].metadata.n",
    )
    bad_request(
        lambda: beta.threads.runs.create(
            thread_id=thread.id,
            assistant_id=assistant.id,
            additional_messages=[{"role": "user", "content": "x", "metadata": seventeen}],
        ),
        "additional_messages[0].metadata",
    )
    bad_request(
        lambda: beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id, metadata=seventeen),
        "metadata",
    )
    assert beta.threads.runs.list(thread.id).data == []
    sixteen = {f"k{i}": "v" * 512 for i in range(16)}
    assert beta.threads.create(metadata=sixteen).metadata == sixteen


def test_list_query_parameters(client: openai.OpenAI, thread: Thread) -> None:
    messages = client.beta.threads.messages
    for limit in (0, 101, -1):
        bad_request(lambda limit=limit: messages.list(thread.id, limit=limit), "limit", str(limit))
    bad_request(lambda: messages.list(thread.id, limit="abc"), "limit", "abc")  # type: ignore[arg-type]
    bad_request(lambda: messages.list(thread.id, order="sideways"), "order", "sideways")  # type: ignore[arg-type]
    bad_request(lambda: client.beta.assistants.list(limit=0), "limit")
    bad_request(lambda: client.beta.assistants.list(order="up"), "order")  # type: ignore[arg-type]
    bad_request(lambda: client.beta.threads.runs.list(thread.id, limit=1000), "limit")
    bad_request(lambda: client.get("/threads", cast_to=object, options={"params": {"limit": 0}}), "limit")
    bad_request(lambda: messages.list(thread.id, extra_query={"colour": "red"}), "colour")
    assert len(messages.list(thread.id, limit=1).data) == 1
    assert len(messages.list(thread.id, limit=100).data) == 1


def test_unknown_and_missing_parameters(client: openai.OpenAI, assistant: Assistant, thread: Thread) -> None:
    beta = client.beta
    bad_request(
        lambda: beta.assistants.create(model="test/echo", extra_body={"colour": "red"}), "colour", "colour"
    )
    bad_request(lambda: beta.threads.create(extra_body={"bogus": 1}), "bogus")
    bad_request(
        lambda: beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id, extra_body={"x": 1}),
        "x",
    )
    bad_request(
        lambda: client.post("/assistants", cast_to=object, body={"name": "no model"}), "model", "model"
    )
    bad_request(
        lambda: client.post(f"/threads/{thread.id}/messages", cast_to=object, body={"role": "user"}),
        "content",
        "content",
    )
    bad_request(
        lambda: client.post(f"/threads/{thread.id}/messages", cast_to=object, body={"content": "x"}), "role"
    )
    bad_request(lambda: client.post(f"/threads/{thread.id}/runs", cast_to=object, body={}), "assistant_id")
    assert beta.assistants.list().data == [assistant]  # nothing was created


def test_stream_must_be_boolean(client: openai.OpenAI, assistant: Assistant, thread: Thread) -> None:
    for value in ("false", 1):
        bad_request(
            lambda value=value: client.post(
                f"/threads/{thread.id}/runs",
                cast_to=object,
                body={"assistant_id": assistant.id, "stream": value},
            ),
            "stream",
        )
    assert client.beta.threads.runs.list(thread.id).data == []


def test_create_and_run_unknown_assistant(client: openai.OpenAI) -> None:
    exc = not_found(lambda: client.beta.threads.create_and_run(assistant_id="asst_gone"), "asst_gone")
    assert exc.body["param"] == "assistant_id"
    assert client.get("/threads", cast_to=object)["data"] == []  # type: ignore[index]  # no thread left behind


def test_malformed_json_body(client: openai.OpenAI, thread: Thread) -> None:
    headers = {"Content-Type": "application/json"}
    for path in ("/assistants", "/threads", f"/threads/{thread.id}/messages"):
        exc = bad_request(
            lambda path=path: client.post(
                path, cast_to=object, content=b'{"model": ', options={"headers": headers}
            )
        )
        assert "JSON" in exc.message
    exc = bad_request(
        lambda: client.post("/threads", cast_to=object, content=b"[1, 2]", options={"headers": headers})
    )
    assert "object" in exc.message


# -- tool_choice ------------------------------------------------------------------------------


def test_bad_tool_choice(client: openai.OpenAI, thread: Thread) -> None:
    assistant = client.beta.assistants.create(model="test/echo", tools=[FUNCTION_TOOL])
    runs = client.beta.threads.runs
    exc = bad_request(
        lambda: runs.create(thread_id=thread.id, assistant_id=assistant.id, tool_choice="bad"),  # type: ignore[arg-type]
    )
    assert exc.body["param"].startswith("tool_choice")
    bad_request(
        lambda: runs.create(
            thread_id=thread.id,
            assistant_id=assistant.id,
            tool_choice={"type": "function", "function": {"name": "not_a_tool"}},
        ),
        "tool_choice.function.name",
        "not_a_tool",
    )
    bad_request(
        lambda: runs.create(
            thread_id=thread.id, assistant_id=assistant.id, tool_choice={"type": "file_search"}
        ),
        "tool_choice.type",
    )
    plain = client.beta.assistants.create(model="test/echo")
    bad_request(
        lambda: runs.create(thread_id=thread.id, assistant_id=plain.id, tool_choice="required"), "tool_choice"
    )
    assert runs.list(thread.id).data == []
    # A valid named choice is accepted.
    run = runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        tool_choice={"type": "function", "function": {"name": "lookup"}},
    )
    assert run.status in ("completed", "requires_action")
    if run.status == "requires_action":
        runs.cancel(run.id, thread_id=thread.id)


# -- state conflicts -> 400 (never 409) ---------------------------------------------------------


def test_submit_tool_outputs_when_not_requires_action(
    client: openai.OpenAI, thread: Thread, completed: Run
) -> None:
    bad_request(
        lambda: client.beta.threads.runs.submit_tool_outputs(
            completed.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": "call_x", "output": "1"}]
        ),
        "run_id",
        "requires_action",
    )


def test_tool_outputs_for_unknown_call(client: openai.OpenAI, parked: Run) -> None:
    runs = client.beta.threads.runs
    assert parked.required_action is not None
    (call,) = parked.required_action.submit_tool_outputs.tool_calls
    bad_request(
        lambda: runs.submit_tool_outputs(
            parked.id,
            thread_id=parked.thread_id,
            tool_outputs=[{"tool_call_id": "call_bogus", "output": "x"}],
        ),
        "tool_outputs[0].tool_call_id",
        "call_bogus",
    )
    bad_request(
        lambda: runs.submit_tool_outputs(
            parked.id,
            thread_id=parked.thread_id,
            tool_outputs=[{"tool_call_id": call.id, "output": "a"}, {"tool_call_id": call.id, "output": "b"}],
        ),
        "tool_outputs[1].tool_call_id",
    )
    bad_request(
        lambda: runs.submit_tool_outputs(parked.id, thread_id=parked.thread_id, tool_outputs=[]),
        "tool_outputs",
        call.id,
    )
    # The run is still waiting for the right output.
    assert runs.retrieve(parked.id, thread_id=parked.thread_id).status == "requires_action"


def test_active_run_blocks_messages_and_runs(client: openai.OpenAI, parked: Run) -> None:
    beta = client.beta
    thread_id = parked.thread_id
    bad_request(
        lambda: beta.threads.messages.create(thread_id, role="user", content="more"), mentions=parked.id
    )
    bad_request(
        lambda: beta.threads.runs.create(thread_id=thread_id, assistant_id=parked.assistant_id),
        "thread_id",
        parked.id,
    )
    bad_request(
        lambda: beta.threads.runs.create(
            thread_id=thread_id,
            assistant_id=parked.assistant_id,
            additional_messages=[{"role": "user", "content": "sneaky"}],
        ),
        mentions=parked.id,
    )
    assert [r.id for r in beta.threads.runs.list(thread_id).data] == [parked.id]
    assert [m.role for m in beta.threads.messages.list(thread_id).data] == ["user"]


def test_cancel_finished_run(client: openai.OpenAI, thread: Thread, completed: Run, parked: Run) -> None:
    runs = client.beta.threads.runs
    bad_request(lambda: runs.cancel(completed.id, thread_id=thread.id), "run_id", "completed")
    cancelled = runs.cancel(parked.id, thread_id=parked.thread_id)
    assert cancelled.status in ("cancelling", "cancelled")
    final = runs.poll(parked.id, thread_id=parked.thread_id)
    assert final.status == "cancelled"
    bad_request(lambda: runs.cancel(parked.id, thread_id=parked.thread_id), "run_id", "cancelled")
