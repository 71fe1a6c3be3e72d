"""Wire shapes: the pure builders of the objects and events the engine sends.

The bottom of the engine: every other engine module may import this one and it imports none
of them, so a builder needed in two places never pulls one module into the other (the
reason the engine once had an import cycle). Nothing here reads the store, publishes or
keeps state; each function returns a new dict shaped as the spec
(``openai-assistants-v2.yaml``) and the ``openai`` SDK's models have it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from openai.types.beta.threads import Message

from .._ids import new_id, now

if TYPE_CHECKING:
    from ..store import Page


def build(cls: type[Any], /, **fields: Any) -> dict[str, Any]:
    """Validate ``fields`` as an ``openai.types.beta`` model and return its wire dict."""
    return cls.model_validate(fields).model_dump(mode="json", by_alias=True)


def text_content(value: str) -> dict[str, Any]:
    """A ``text`` content part without annotations."""
    return {"type": "text", "text": {"value": value, "annotations": []}}


def content_parts(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A message request's ``content`` (a string or parts) as the message's content parts."""
    if isinstance(content, str):
        return [text_content(content)]
    parts = []
    for part in content:
        if part["type"] == "text":
            parts.append(text_content(part["text"]))
        else:
            parts.append(part)
    return parts


def new_message(thread_id: str, body: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A completed message as a create request (or a thread's/run's ``messages``) asks for it."""
    return build(
        Message,
        id=new_id("msg"),
        object="thread.message",
        created_at=now(),
        thread_id=thread_id,
        role=body["role"],
        content=content_parts(body["content"]),
        attachments=body.get("attachments") or [],
        metadata=body.get("metadata") or {},
        status="completed",
        completed_at=now(),
        assistant_id=None,
        run_id=None,
        **extra,
    )


def page_body(page: Page) -> dict[str, Any]:
    """A store page as the API's list object."""
    return {
        "object": "list",
        "data": page.data,
        "first_id": page.first_id,
        "last_id": page.last_id,
        "has_more": page.has_more,
    }


def deleted(kind: str, object_id: str) -> dict[str, Any]:
    """The body of a successful delete."""
    return {"id": object_id, "object": f"{kind}.deleted", "deleted": True}


def named_stores(obj: Mapping[str, Any]) -> list[str]:
    """The vector store ids ``obj`` — an assistant, a thread, or a request body making one —
    names in ``tool_resources.file_search.vector_store_ids``."""
    search = (obj.get("tool_resources") or {}).get("file_search") or {}
    ids = search.get("vector_store_ids") if isinstance(search, Mapping) else None
    return [i for i in ids or [] if isinstance(i, str)]


def expired(obj: dict[str, Any]) -> bool:
    """A file past its ``expires_after``: as good as deleted."""
    return obj.get("expires_at") is not None and obj["expires_at"] <= now()


# -- deltas ------------------------------------------------------------------------------------


def text_delta(
    message_id: str, index: int, text: str, annotations: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A ``thread.message.delta`` adding ``text`` to the text part at ``index``, and the
    annotations that complete in it (each with its own ``index`` in the part's list)."""
    return {
        "id": message_id,
        "object": "thread.message.delta",
        "delta": {
            "content": [
                {"index": index, "type": "text", "text": {"value": text, "annotations": annotations or []}}
            ]
        },
    }


def parts_delta(message_id: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """A ``thread.message.delta`` announcing whole content parts at indexes 0…n-1."""
    return {
        "id": message_id,
        "object": "thread.message.delta",
        "delta": {"content": [{"index": i, **part} for i, part in enumerate(parts)]},
    }


def step_delta(step_id: str, call: dict[str, Any]) -> dict[str, Any]:
    """A ``thread.run.step.delta`` carrying one tool call's delta (``call`` has its ``index``)."""
    return {
        "id": step_id,
        "object": "thread.run.step.delta",
        "delta": {"step_details": {"type": "tool_calls", "tool_calls": [call]}},
    }


def code_call(call_id: str) -> dict[str, Any]:
    """A ``code_interpreter`` tool call as it opens: no input, no outputs yet."""
    return {"id": call_id, "type": "code_interpreter", "code_interpreter": {"input": "", "outputs": []}}


def function_call(call_id: str, name: str) -> dict[str, Any]:
    """A ``function`` tool call as it opens: its arguments stream in after."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "", "output": None}}


def code_input_delta(index: int, text: str) -> dict[str, Any]:
    """The tool-call delta adding ``text`` to a code call's ``input``."""
    return {"index": index, "type": "code_interpreter", "code_interpreter": {"input": text}}


def code_output_delta(index: int, output: dict[str, Any], at: int) -> dict[str, Any]:
    """The tool-call delta of a code call's output number ``at`` (a logs chunk or an image)."""
    return {
        "index": index,
        "type": "code_interpreter",
        "code_interpreter": {"outputs": [{"index": at, **output}]},
    }


def function_arguments_delta(index: int, arguments: str) -> dict[str, Any]:
    """The tool-call delta adding ``arguments`` to a function call."""
    return {"index": index, "type": "function", "function": {"arguments": arguments}}


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    """A run's or step's ``usage``."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
