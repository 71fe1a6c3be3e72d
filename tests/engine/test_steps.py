"""Run steps and the messages they create (``engine/steps.py``), as the SDK sees them: a step
per turn and kind, its ``usage``, its deltas, and how an interrupted run closes what it left
open. Through the official SDK, in-process and over HTTP; the closing rules also directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import AssistantEventHandler
from typing_extensions import override

from assistant_kit import register_model
from assistant_kit.engine.steps import RunSteps, answer_tool_step
from assistant_kit.models.base import (
    BaseChatModel,
    Finish,
    ModelEvent,
    ModelRequest,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from assistant_kit.store import AsyncStore, Store
from tests.conftest import wait_for

TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}


class TalkThenCall(BaseChatModel):
    """Turn 1: says a sentence and calls ``get_time`` (one turn, two steps); turn 2, after the
    output: answers with it. Usage is scripted so the sums are checkable."""

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        outputs = [m["content"] for m in request.messages if m["role"] == "tool"]
        if outputs:
            yield TextDelta(f"It is {outputs[0]}.")
            yield Usage(20, 4)
            yield Finish("stop")
            return
        yield TextDelta("Let me check.")
        yield ToolCallDelta(0, id="call_1", name="get_time", arguments='{"zone":')
        yield ToolCallDelta(0, arguments=' "UTC"}')
        yield Usage(7, 3)
        yield Finish("tool_calls")


class Slow(BaseChatModel):
    """Streams words for a long while (a run to cancel mid-answer)."""

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        for i in range(2000):
            yield TextDelta(f"w{i} ")
            await asyncio.sleep(0.01)
        yield Finish("stop")


class CutOff(BaseChatModel):
    """Stops at its token limit mid-sentence."""

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        yield TextDelta("The answer is")
        yield Usage(5, 300)
        yield Finish("length")


register_model("steps/talk-then-call", TalkThenCall())
register_model("steps/slow", Slow())
register_model("steps/cut-off", CutOff())


def _usage(step_or_run: Any) -> tuple[int, int, int] | None:
    u = step_or_run.usage
    return None if u is None else (u.prompt_tokens, u.completion_tokens, u.total_tokens)


def test_an_answer_is_a_message_creation_step_with_the_turns_usage(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="test/echo")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "one two three"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    (step,) = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    (answer, _question) = client.beta.threads.messages.list(thread.id).data
    assert step.type == "message_creation" and step.status == "completed" and step.completed_at
    assert step.step_details.message_creation.message_id == answer.id
    assert (step.run_id, step.thread_id, step.assistant_id) == (run.id, thread.id, assistant.id)
    assert (answer.run_id, answer.assistant_id, answer.status) == (run.id, assistant.id, "completed")
    assert _usage(step) == _usage(run) == (3, 3, 6)
    assert client.beta.threads.runs.steps.retrieve(step.id, thread_id=thread.id, run_id=run.id) == step


def test_text_and_a_call_in_one_turn_then_the_answer(client: openai.OpenAI) -> None:
    """A turn that talks and calls makes two steps: the message's (completed, no usage: the
    turn's usage is on its tool step) and the tool-calls step, open until the output comes.
    The run's usage is the sum of its turns'."""
    assistant = client.beta.assistants.create(model="steps/talk-then-call", tools=[TIME])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "time?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    talk, call = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert (talk.type, talk.status, _usage(talk)) == ("message_creation", "completed", None)
    assert (call.type, call.status, _usage(call)) == ("tool_calls", "in_progress", (7, 3, 10))
    (tool_call,) = call.step_details.tool_calls
    assert (tool_call.id, tool_call.function.name) == ("call_1", "get_time")
    assert (tool_call.function.arguments, tool_call.function.output) == ('{"zone": "UTC"}', None)
    assert _usage(run) == (7, 3, 10)

    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": "call_1", "output": "noon"}]
    )
    assert run.status == "completed"
    talk, call, answer = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert call.status == "completed" and call.completed_at
    assert call.step_details.tool_calls[0].function.output == "noon"
    assert (answer.type, _usage(answer)) == ("message_creation", (20, 4, 24))
    assert _usage(run) == (27, 7, 34)  # both turns
    texts = [m.content[0].text.value for m in client.beta.threads.messages.list(thread.id, order="asc").data]
    assert texts == ["time?", "Let me check.", "It is noon."]


class Recorder(AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.arguments: list[str] = []

    @override
    def on_event(self, event: Any) -> None:
        self.names.append(event.event)

    @override
    def on_tool_call_delta(self, delta: Any, snapshot: Any) -> None:
        if delta.type == "function" and delta.function.arguments:
            self.arguments.append(delta.function.arguments)


def test_a_tool_calls_step_streams_its_call_as_deltas(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="steps/talk-then-call", tools=[TIME])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "time?"}])
    recorder = Recorder()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=recorder
    ) as stream:
        stream.until_done()
        run = stream.get_final_run()
    assert run.status == "requires_action"
    assert recorder.arguments == ['{"zone":', ' "UTC"}']  # as the model sent them
    steps = [n for n in recorder.names if n.startswith("thread.run.step.")]
    assert steps == [
        "thread.run.step.created",  # the message's step
        "thread.run.step.in_progress",
        "thread.run.step.created",  # the tool-calls step
        "thread.run.step.in_progress",
        "thread.run.step.delta",  # the call opens
        "thread.run.step.delta",
        "thread.run.step.delta",
        "thread.run.step.completed",  # the message's step; the call waits for its output
    ]


def test_a_cancelled_run_closes_its_step_and_keeps_the_streamed_text(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="steps/slow")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "talk"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)

    def answer_started() -> Any:
        data = client.beta.threads.messages.list(thread.id, run_id=run.id).data
        return data and data[0]

    wait_for(answer_started, timeout=10)
    client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    run = wait_for(
        lambda: (
            (r := client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)).status == "cancelled" and r
        ),
        timeout=10,
    )
    (step,) = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    assert step.status == "cancelled" and step.cancelled_at
    (message,) = client.beta.threads.messages.list(thread.id, run_id=run.id).data
    assert message.status == "incomplete" and message.incomplete_details.reason == "run_cancelled"
    text = message.content[0].text.value
    everything = "".join(f"w{i} " for i in range(2000))
    assert text.startswith("w0 ") and everything.startswith(text) and text != everything  # what streamed


def test_a_turn_cut_off_by_the_token_limit_leaves_an_incomplete_message(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="steps/cut-off")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "why?"}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=300
    )
    assert run.status == "incomplete" and run.incomplete_details.reason == "max_completion_tokens"
    (step,) = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    assert step.status == "completed" and _usage(step) == (5, 300, 305)
    (message, _question) = client.beta.threads.messages.list(thread.id).data
    assert message.status == "incomplete" and message.incomplete_details.reason == "max_tokens"
    assert message.content[0].text.value == "The answer is"


# -- the closing rules, directly -------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AsyncStore]:
    sync = Store(tmp_path / "steps.db")
    yield AsyncStore(sync)
    sync.close()


def _open(store: AsyncStore) -> tuple[RunSteps, list[tuple[str, str, Any]]]:
    published: list[tuple[str, str, Any]] = []
    run = {"id": "run_1", "thread_id": "thread_1", "assistant_id": "asst_1"}
    steps = RunSteps(
        run,
        store,
        lambda *event: published.append(event),
        open_steps=[{"id": "step_1", "status": "in_progress"}],
        open_message={"id": "msg_1", "status": "in_progress", "content": []},
    )
    return steps, published


def test_close_open_after_a_failure(store: AsyncStore) -> None:
    steps, published = _open(store)
    steps.open_text = ["half ", "an answer"]
    error = {"code": "server_error", "message": "boom"}
    items, events = steps.close_open("failed", error)
    step, message = items[0][1], items[1][1]
    assert [kind for kind, _ in items] == ["thread.run.step", "thread.message"]
    assert step["status"] == "failed" and step["failed_at"] and step["last_error"] == error
    assert message["status"] == "incomplete" and message["incomplete_details"] == {"reason": "run_failed"}
    assert message["content"] == [{"type": "text", "text": {"value": "half an answer", "annotations": []}}]
    assert [name for name, _ in events] == ["thread.message.incomplete", "thread.run.step.failed"]
    assert steps.open_steps == [] and steps.open_message is None
    assert published == []  # the executor publishes them once it has written them


def test_close_open_when_the_budget_ran_out(store: AsyncStore) -> None:
    steps, _ = _open(store)
    items, events = steps.close_open("incomplete")
    step, message = items[0][1], items[1][1]
    assert step["status"] == "cancelled" and step["cancelled_at"] and "last_error" not in step
    assert message["incomplete_details"] == {"reason": "max_tokens"}
    assert message["content"] == []  # nothing streamed: nothing kept
    assert [name for name, _ in events] == ["thread.message.incomplete", "thread.run.step.cancelled"]


def test_answer_tool_step_fills_function_outputs_only() -> None:
    code = {"id": "call_c", "type": "code_interpreter", "code_interpreter": {"input": "1", "outputs": []}}
    function = {
        "id": "call_f",
        "type": "function",
        "function": {"name": "f", "arguments": "{}", "output": None},
    }
    step = {"status": "in_progress", "step_details": {"tool_calls": [code, function]}}
    answer_tool_step(step, {"call_f": "42"})
    assert step["status"] == "completed" and step["completed_at"]
    assert function["function"]["output"] == "42" and code["code_interpreter"]["outputs"] == []
    failed = {"status": "in_progress", "last_error": {"code": "server_error", "message": "timeout"}}
    failed["step_details"] = {"tool_calls": []}
    answer_tool_step(failed, {})
    assert failed["status"] == "failed" and failed["failed_at"]
