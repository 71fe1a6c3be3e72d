"""What a run writes into its thread besides its own row: its steps, the assistant messages
they create, and the events that announce them, from opening to closing.

Each model turn becomes a ``message_creation`` step (with its message) and/or a ``tool_calls``
step. :func:`turn` streams the model's output into them — ``thread.message.delta`` for text,
``thread.run.step.delta`` for tool calls as their arguments arrive — persisting each object as
it opens and as it ends, and publishing each event after the store has the state it describes
(so a client that reacts to an event and re-reads sees it). The answer's content carries the
``file_path`` annotations and images of this run's ``code_interpreter`` calls
(:mod:`.code_calls`, which publishes its own step deltas through :func:`publish_step_delta`).
The images come first, then the text, as the hosted API ordered them — client code reads a
plot as ``content[0].image_file`` — and the streamed deltas use the same indexes: the images'
delta right after ``thread.message.in_progress``, then the text at the index after them.
When a run stops with a step or message still open, :func:`close_open` closes them.

The run's own status never changes here: :mod:`.runs` decides when a turn happens and how the
run ends, and writes what :func:`close_open` closed in the same transaction as the run's final
state. Kept apart so that runs.py reads as the run's state machine, and this module as the
wire shape of what a run produces. The one step closed over there is the ``tool_calls`` step
whose function calls the client answered: it completes in the compare-and-set that requeues the
run (``RunExecutor.submit_tool_outputs``), so that of two concurrent submissions only one lands.
"""

from __future__ import annotations

import contextlib
import copy
from typing import TYPE_CHECKING, Any

from openai.types.beta.threads import Message
from openai.types.beta.threads.runs import RunStep

from .._ids import new_id, now
from ..models.base import Finish, ModelRequest, TextDelta, ToolCallDelta, Usage
from ..tools import code_interpreter as ci
from . import code_calls

if TYPE_CHECKING:
    from .runs import RunExecutor, RunHandle


def build(cls: type[Any], /, **fields: Any) -> dict[str, Any]:
    """Validate ``fields`` as an ``openai.types.beta`` model and return its wire dict."""
    return cls.model_validate(fields).model_dump(mode="json", by_alias=True)


def text_content(value: str) -> dict[str, Any]:
    return {"type": "text", "text": {"value": value, "annotations": []}}


async def turn(
    executor: RunExecutor, handle: RunHandle, request: ModelRequest
) -> tuple[str, list[dict[str, Any]], dict[str, Any] | None]:
    """One model turn: stream it into a message and/or a tool-calls step."""
    run = handle.run
    rid = run["id"]
    text_parts: list[str] = []
    handle.open_text = text_parts
    message = step = tool_step = None
    calls: list[dict[str, Any]] = []
    positions: dict[int, int] = {}
    inputs: dict[int, code_calls.StreamedInput] = {}  # code_interpreter calls, by position
    finish = "stop"
    usage = Usage(0, 0)
    async with contextlib.aclosing(handle.model.stream(request)) as events:
        async for event in events:
            if isinstance(event, TextDelta):
                if not event.text:
                    continue
                if message is None:
                    step, message = await open_message(executor, handle)
                text_parts.append(event.text)
                text_index = len(handle.open_images)
                executor.hub.publish(
                    rid,
                    "thread.message.delta",
                    {
                        "id": message["id"],
                        "object": "thread.message.delta",
                        "delta": {
                            "content": [
                                {
                                    "index": text_index,
                                    "type": "text",
                                    "text": {"value": event.text, "annotations": []},
                                }
                            ]
                        },
                    },
                )
            elif isinstance(event, ToolCallDelta):
                if tool_step is None:
                    tool_step = await open_step(
                        executor, handle, "tool_calls", {"type": "tool_calls", "tool_calls": []}
                    )
                if event.index not in positions:
                    position = positions[event.index] = len(calls)
                    call_id = event.id or new_id("call")
                    if event.name == ci.NAME and ci.NAME in request.builtin_tools:
                        call = code_calls.new_call(call_id)
                        inputs[position] = code_calls.StreamedInput(call)
                    else:
                        call = {
                            "id": call_id,
                            "type": "function",
                            "function": {"name": event.name or "", "arguments": "", "output": None},
                        }
                    calls.append(call)
                    publish_step_delta(executor, rid, tool_step, {"index": position, **copy.deepcopy(call)})
                position = positions[event.index]
                if position in inputs:
                    text = inputs[position].feed(event.arguments)
                    if text:
                        publish_step_delta(executor, rid, tool_step, code_calls.input_delta(position, text))
                elif event.arguments:
                    calls[positions[event.index]]["function"]["arguments"] += event.arguments
                    publish_step_delta(
                        executor,
                        rid,
                        tool_step,
                        {
                            "index": positions[event.index],
                            "type": "function",
                            "function": {"arguments": event.arguments},
                        },
                    )
            elif isinstance(event, Usage):
                usage = event
            elif isinstance(event, Finish):
                finish = event.reason
    for position, streamed in inputs.items():
        text = streamed.finish()
        if text and tool_step is not None:
            publish_step_delta(executor, rid, tool_step, code_calls.input_delta(position, text))
    if message is None and tool_step is None:
        step, message = await open_message(executor, handle)  # an empty answer is still a turn
    add_usage(run, usage)
    step_usage = _usage_dict(usage)
    if message is not None and step is not None:
        message["content"] = answer_content(handle, "".join(text_parts))
        if finish == "length":
            message.update(
                status="incomplete", incomplete_at=now(), incomplete_details={"reason": "max_tokens"}
            )
        else:
            message.update(status="completed", completed_at=now())
        step.update(status="completed", completed_at=now(), usage=None if tool_step else step_usage)
        await executor.store.put_many([("thread.message", message), ("thread.run.step", step)])
        handle.open_message = None
        handle.open_images = []
        handle.open_steps.remove(step)
        executor.hub.publish(rid, f"thread.message.{message['status']}", copy.deepcopy(message))
        executor.hub.publish(rid, "thread.run.step.completed", copy.deepcopy(step))
    if tool_step is not None:
        tool_step["step_details"]["tool_calls"] = calls
        tool_step["usage"] = step_usage
        await executor.store.put("thread.run.step", tool_step)
    return finish, calls, tool_step


def answer_content(handle: RunHandle, text: str) -> list[dict[str, Any]]:
    """The answer's content: the images the code showed since the last answer (announced when
    the message opened), then its text, with ``file_path`` annotations for the files this
    run's code wrote and the text names."""
    content = text_content(text)
    if handle.made_files:
        content["text"]["annotations"] = ci.file_annotations(text, handle.made_files)
    return [*copy.deepcopy(handle.open_images), content]


def _take_images(executor: RunExecutor, handle: RunHandle, message: dict[str, Any]) -> None:
    """The images not yet shown become the opening message's first parts, announced in one
    delta (indexes 0…n-1) before any of its text."""
    handle.open_images = [
        {"type": "image_file", "image_file": {"file_id": file_id, "detail": "auto"}}
        for file_id in handle.made_images
    ]
    handle.made_images = []
    if handle.open_images:
        delta = [{"index": i, **part} for i, part in enumerate(handle.open_images)]
        executor.hub.publish(
            handle.run["id"],
            "thread.message.delta",
            {"id": message["id"], "object": "thread.message.delta", "delta": {"content": delta}},
        )


async def open_message(executor: RunExecutor, handle: RunHandle) -> tuple[dict[str, Any], dict[str, Any]]:
    run = handle.run
    message = build(
        Message,
        id=new_id("msg"),
        object="thread.message",
        created_at=now(),
        thread_id=run["thread_id"],
        run_id=run["id"],
        assistant_id=run["assistant_id"],
        role="assistant",
        status="in_progress",
        content=[],
        attachments=[],
        metadata={},
    )
    step = await open_step(
        executor,
        handle,
        "message_creation",
        {"type": "message_creation", "message_creation": {"message_id": message["id"]}},
        also=[("thread.message", message)],
    )
    handle.open_message = message
    executor.hub.publish(run["id"], "thread.message.created", copy.deepcopy(message))
    executor.hub.publish(run["id"], "thread.message.in_progress", copy.deepcopy(message))
    _take_images(executor, handle, message)
    return step, message


async def open_step(
    executor: RunExecutor,
    handle: RunHandle,
    kind: str,
    details: dict[str, Any],
    also: list[tuple[str, dict[str, Any]]] = (),
) -> dict[str, Any]:
    run = handle.run
    step = build(
        RunStep,
        id=new_id("step"),
        object="thread.run.step",
        created_at=now(),
        run_id=run["id"],
        assistant_id=run["assistant_id"],
        thread_id=run["thread_id"],
        type=kind,
        status="in_progress",
        step_details=details,
        metadata={},
        expired_at=None,
    )
    await executor.store.insert_many([("thread.run.step", step), *also])
    handle.open_steps.append(step)
    executor.hub.publish(run["id"], "thread.run.step.created", copy.deepcopy(step))
    executor.hub.publish(run["id"], "thread.run.step.in_progress", copy.deepcopy(step))
    return step


def publish_step_delta(
    executor: RunExecutor, run_id: str, step: dict[str, Any], call: dict[str, Any]
) -> None:
    executor.hub.publish(
        run_id,
        "thread.run.step.delta",
        {
            "id": step["id"],
            "object": "thread.run.step.delta",
            "delta": {"step_details": {"type": "tool_calls", "tool_calls": [call]}},
        },
    )


async def end_tool_step(
    executor: RunExecutor, handle: RunHandle, step: dict[str, Any] | None, failure: str | None
) -> None:
    """A tool-calls step the engine answered itself is over: ``completed``, or ``failed``
    with the sandbox's reason (the run goes on either way)."""
    assert step is not None
    if failure:
        step.update(status="failed", failed_at=now(), last_error={"code": "server_error", "message": failure})
    else:
        step.update(status="completed", completed_at=now())
    await executor.store.put("thread.run.step", step)
    if step in handle.open_steps:
        handle.open_steps.remove(step)
    executor.hub.publish(handle.run["id"], f"thread.run.step.{step['status']}", copy.deepcopy(step))


def close_open(
    handle: RunHandle, status: str, error: dict[str, str] | None = None
) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, dict[str, Any]]]]:
    """Close whatever step/message the run left open when it stopped: the objects to write
    and the events to publish once written."""
    items: list[tuple[str, dict[str, Any]]] = []
    stamp = now()
    step_status = {"incomplete": "cancelled"}.get(status, status)
    stamp_field = {"cancelled": "cancelled_at", "failed": "failed_at", "expired": "expired_at"}.get(
        step_status, "cancelled_at"
    )
    for step in handle.open_steps:
        step.update({"status": step_status, stamp_field: stamp})
        if error:
            step["last_error"] = error
        items.append(("thread.run.step", step))
    message = handle.open_message
    if message is not None:
        if handle.open_text or handle.open_images:  # stopped mid-answer: keep what was sent as deltas
            text = [text_content("".join(handle.open_text))] if handle.open_text else []
            message["content"] = [*handle.open_images, *text]
        reason = "max_tokens" if status == "incomplete" else f"run_{status}"
        message.update(status="incomplete", incomplete_at=stamp, incomplete_details={"reason": reason})
        items.append(("thread.message", message))
    events: list[tuple[str, dict[str, Any]]] = []
    if message is not None:
        events.append(("thread.message.incomplete", copy.deepcopy(message)))
    for step in handle.open_steps:
        events.append((f"thread.run.step.{step_status}", copy.deepcopy(step)))
    handle.open_steps = []
    handle.open_message = None
    handle.open_images = []
    return items, events


def add_usage(run: dict[str, Any], usage: Usage) -> None:
    total = run.get("usage") or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    total = {
        "prompt_tokens": total["prompt_tokens"] + usage.prompt_tokens,
        "completion_tokens": total["completion_tokens"] + usage.completion_tokens,
    }
    total["total_tokens"] = total["prompt_tokens"] + total["completion_tokens"]
    run["usage"] = total


def _usage_dict(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }
