"""SDK objects of a ``code_interpreter`` run, built with the SDK's own pydantic models (the
shapes ``openai.types.beta.threads.runs`` describe), for rendering tests that need exact
control: a failed step, hostile logs, an image the engine never made."""

from __future__ import annotations

import random
import struct
import zlib
from typing import Any

import pydantic
from openai.types.beta import AssistantStreamEvent
from openai.types.beta.threads import Message, Run
from openai.types.beta.threads.runs import RunStep

EVENTS = pydantic.TypeAdapter(AssistantStreamEvent)
T0 = 1_700_000_000


def tiny_png(width: int = 2, height: int = 1, *, noise: bool = False) -> bytes:
    """A valid greyscale PNG made by hand (no imaging library); ``noise``: random pixels, so
    it does not compress (a big image)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rng = random.Random(width * height)
    row = (lambda: bytes(rng.getrandbits(8) for _ in range(width))) if noise else (lambda: b"\x80" * width)
    rows = b"".join(b"\x00" + row() for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def code_call(
    call_id: str, code: str, logs: str | None = None, images: tuple[str, ...] = ()
) -> dict[str, Any]:
    outputs: list[dict[str, Any]] = []
    if logs is not None:
        outputs.append({"type": "logs", "logs": logs})
    outputs.extend({"type": "image", "image": {"file_id": file_id}} for file_id in images)
    return {
        "id": call_id,
        "type": "code_interpreter",
        "code_interpreter": {"input": code, "outputs": outputs},
    }


def step(
    step_id: str = "step_code",
    calls: list[dict[str, Any]] | None = None,
    *,
    status: str = "completed",
    error: str | None = None,
    run_id: str = "run_code",
    created_at: int = T0,
) -> RunStep:
    """A ``tool_calls`` step with ``calls``; ``error``: its ``last_error`` message."""
    details: dict[str, Any] = {"type": "tool_calls", "tool_calls": calls or []}
    return RunStep.model_validate(
        {
            "id": step_id,
            "object": "thread.run.step",
            "assistant_id": "asst_code",
            "thread_id": "thread_code",
            "run_id": run_id,
            "type": "tool_calls",
            "status": status,
            "created_at": created_at,
            "completed_at": created_at + 1 if status == "completed" else None,
            "failed_at": created_at + 1 if status == "failed" else None,
            "last_error": {"code": "server_error", "message": error} if error else None,
            "step_details": details,
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        }
    )


def message_step(message_id: str, *, run_id: str = "run_code", created_at: int = T0 + 2) -> RunStep:
    return RunStep.model_validate(
        {
            "id": f"step_{message_id}",
            "object": "thread.run.step",
            "assistant_id": "asst_code",
            "thread_id": "thread_code",
            "run_id": run_id,
            "type": "message_creation",
            "status": "completed",
            "created_at": created_at,
            "completed_at": created_at,
            "step_details": {"type": "message_creation", "message_creation": {"message_id": message_id}},
        }
    )


def message(
    message_id: str = "msg_code",
    text: str = "Here is the plot and sandbox:/mnt/data/out.csv",
    *,
    images: tuple[str, ...] = (),
    file_paths: tuple[tuple[str, str], ...] = (),
    role: str = "assistant",
    status: str = "completed",
    run_id: str | None = "run_code",
    created_at: int = T0 + 2,
) -> Message:
    """A message with a text part (``file_paths``: ``(annotated text, file_id)`` annotations
    of that text) and one ``image_file`` part per image."""
    annotations = []
    for annotated, file_id in file_paths:
        start = text.index(annotated)
        annotations.append(
            {
                "type": "file_path",
                "text": annotated,
                "start_index": start,
                "end_index": start + len(annotated),
                "file_path": {"file_id": file_id},
            }
        )
    content: list[dict[str, Any]] = [{"type": "text", "text": {"value": text, "annotations": annotations}}]
    content.extend(
        {"type": "image_file", "image_file": {"file_id": file_id, "detail": "auto"}} for file_id in images
    )
    return Message.model_validate(
        {
            "id": message_id,
            "object": "thread.message",
            "thread_id": "thread_code",
            "role": role,
            "status": status,
            "created_at": created_at,
            "run_id": run_id,
            "assistant_id": "asst_code" if role == "assistant" else None,
            "attachments": [],
            "metadata": {},
            "content": content,
        }
    )


def run(status: str = "completed") -> Run:
    return Run.model_validate(
        {
            "id": "run_code",
            "object": "thread.run",
            "assistant_id": "asst_code",
            "thread_id": "thread_code",
            "status": status,
            "created_at": T0,
            "started_at": T0,
            "completed_at": T0 + 3 if status == "completed" else None,
            "model": "test/tools",
            "instructions": "",
            "tools": [{"type": "code_interpreter"}],
            "parallel_tool_calls": True,
            "metadata": {},
        }
    )


def event(name: str, data: Any) -> Any:
    if hasattr(data, "model_dump"):
        data = data.model_dump(mode="json")
    return EVENTS.validate_python({"event": name, "data": data})


def code_delta(index: int, step_id: str = "step_code", **code_interpreter: Any) -> Any:
    """A ``thread.run.step.delta`` event for one code_interpreter call (``call_id=`` for the first)."""
    call_id = code_interpreter.pop("call_id", None)
    tool_call: dict[str, Any] = {
        "index": index,
        "type": "code_interpreter",
        "code_interpreter": code_interpreter,
    }
    if call_id:
        tool_call["id"] = call_id
    delta = {"step_details": {"type": "tool_calls", "tool_calls": [tool_call]}}
    return event("thread.run.step.delta", {"id": step_id, "object": "thread.run.step.delta", "delta": delta})


def code_run_events(
    code: str,
    log_chunks: list[str],
    images: tuple[str, ...] = (),
    *,
    error: str | None = None,
    chunk: int = 7,
    reply: str = "Done.",
) -> list[Any]:
    """The events of a run with one code_interpreter call, as the engine streams them: the
    code in ``chunk``-character fragments, the logs chunk by chunk (output index 0), each
    image (index 1, 2 …), the step completed — or failed with ``error`` — then a reply."""
    call_id = "call_code"
    logs = "".join(log_chunks) if log_chunks else None
    events = [
        event("thread.run.created", run("queued")),
        event("thread.run.in_progress", run("in_progress")),
        event("thread.run.step.created", step(status="in_progress")),
        code_delta(0, call_id=call_id, input="", outputs=[]),
    ]
    events += [code_delta(0, input=code[i : i + chunk]) for i in range(0, len(code), chunk)]
    events += [code_delta(0, outputs=[{"index": 0, "type": "logs", "logs": c}]) for c in log_chunks]
    events += [
        code_delta(0, outputs=[{"index": k, "type": "image", "image": {"file_id": file_id}}])
        for k, file_id in enumerate(images, start=1)
    ]
    final = step(
        calls=[code_call(call_id, code, logs, images)],
        status="failed" if error else "completed",
        error=error,
    )
    events.append(event(f"thread.run.step.{final.status}", final))
    answer = message(text=reply, images=images)
    events += [
        event("thread.message.created", message(text="", status="in_progress")),
        event(
            "thread.message.delta",
            {
                "id": answer.id,
                "object": "thread.message.delta",
                "delta": {"content": [{"index": 0, "type": "text", "text": {"value": reply}}]},
            },
        ),
        event("thread.message.completed", answer),
        event("thread.run.completed", run("completed")),
    ]
    return events


# ---- file_search and citations -------------------------------------------------------------


def search_call(
    call_id: str,
    results: list[tuple[str, str, float, str]],
    *,
    content: bool = True,
    threshold: float = 0.0,
    queries: list[str] | None = None,
) -> dict[str, Any]:
    """A ``file_search`` tool call with ``results`` — ``(file_id, file_name, score, chunk)`` —
    each with its chunk as ``content`` unless ``content`` is False (the step listed without
    ``include[]=…results[*].content``); ``queries``: the assistant_kit extension saying what
    was searched for (absent when None, as from the hosted API)."""
    found = []
    for file_id, file_name, score, chunk in results:
        result: dict[str, Any] = {"file_id": file_id, "file_name": file_name, "score": score}
        if content:
            result["content"] = [{"type": "text", "text": chunk}]
        found.append(result)
    file_search: dict[str, Any] = {
        "ranking_options": {"ranker": "default_2024_08_21", "score_threshold": threshold},
        "results": found,
    }
    if queries is not None:
        file_search["queries"] = queries
    return {"id": call_id, "type": "file_search", "file_search": file_search}


def cited_message(
    text: str,
    cites: list[tuple[str, str]],
    *,
    message_id: str = "msg_cited",
    run_id: str = "run_code",
    status: str = "completed",
    created_at: int = T0 + 2,
) -> Message:
    """An assistant message whose ``text`` carries ``file_citation`` annotations: one per
    ``(marker, file_id)``, at the marker's next occurrence in ``text``."""
    annotations = []
    at = 0
    for marker, file_id in cites:
        start = text.index(marker, at)
        at = start + len(marker)
        annotations.append(
            {
                "type": "file_citation",
                "text": marker,
                "start_index": start,
                "end_index": at,
                "file_citation": {"file_id": file_id},
            }
        )
    return Message.model_validate(
        {
            "id": message_id,
            "object": "thread.message",
            "thread_id": "thread_code",
            "role": "assistant",
            "status": status,
            "created_at": created_at,
            "run_id": run_id,
            "assistant_id": "asst_code",
            "attachments": [],
            "metadata": {},
            "content": [{"type": "text", "text": {"value": text, "annotations": annotations}}],
        }
    )


def search_run_events(calls: list[dict[str, Any]], answer: Message, *, chunk: int = 5) -> list[Any]:
    """The events of a run that searched (one ``tool_calls`` step per call, in order) and then
    answered ``answer``, its text streamed in ``chunk``-character deltas."""
    events = [event("thread.run.created", run("queued")), event("thread.run.in_progress", run("in_progress"))]
    for n, call in enumerate(calls):
        step_id = f"step_search{n}"
        events.append(
            event("thread.run.step.created", step(step_id, [], status="in_progress", created_at=T0 + n))
        )
        events.append(event("thread.run.step.completed", step(step_id, [call], created_at=T0 + n)))
    text = answer.content[0].text.value
    events.append(event("thread.message.created", message(answer.id, "", status="in_progress")))
    events += [
        event(
            "thread.message.delta",
            {
                "id": answer.id,
                "object": "thread.message.delta",
                "delta": {"content": [{"index": 0, "type": "text", "text": {"value": text[i : i + chunk]}}]},
            },
        )
        for i in range(0, len(text), chunk)
    ]
    events += [event("thread.message.completed", answer), event("thread.run.completed", run("completed"))]
    return events
