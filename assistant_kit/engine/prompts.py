"""The exact prompt of every model turn: what the engine sent, recorded for the inspector.

"What did the model see?" is the first question when an answer is wrong, and the one a
teacher asks. The answer is not in the thread: the run's instructions are merged with
``additional_instructions``, ``truncation_strategy`` and ``max_prompt_tokens`` drop old
messages, built-in tools are offered as functions, earlier tool rounds come back as tool
messages. So the executor (:mod:`.runs`) hands every request to :meth:`PromptRecorder.record`
right before it calls the model, and the request is stored as sent (``run_prompts``, see
:mod:`assistant_kit.store.schema`), in the chat format of :class:`~assistant_kit.models.base.ModelRequest`:
``messages``, ``tools``, ``tool_choice``, ``parallel_tool_calls``, ``response_format``,
``temperature``, ``top_p``, ``max_tokens``. Credentials are not part of a request (they live in
the model backend's settings, in memory), so none is ever recorded.

Each record is capped at ``max_bytes`` (default 262144): in a larger request the history gives
way from the oldest message on (left out whole and counted, or shortened with a note of how
much was cut; the instructions and the newest message last), and the record is marked
``truncated`` (:func:`capped`). Recording is on by default; the Engine setting
``record_prompts`` (env ``ASSISTANT_KIT_RECORD_PROMPTS=0``, proxy config
``general_settings.record_prompts: false``) turns it off. It is a diagnostic: a failure to
record is logged, never the run's failure.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..store.inspection import AsyncInspectionTables, InspectionTables
from .timings import now_ms

if TYPE_CHECKING:
    from ..models.base import ModelRequest
    from ..store import AsyncStore

log = logging.getLogger("assistant_kit.runs")

RECORD_ENV = "ASSISTANT_KIT_RECORD_PROMPTS"
MAX_BYTES_ENV = "ASSISTANT_KIT_PROMPT_RECORD_MAX_BYTES"
DEFAULT_MAX_BYTES = 262144
MIN_MAX_BYTES = 1024
REQUEST_FIELDS = (
    "messages",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "temperature",
    "top_p",
    "max_tokens",
)



def record_setting(value: bool | None) -> bool:
    """``record_prompts``: the argument, else ``$ASSISTANT_KIT_RECORD_PROMPTS`` (``0``, ``false``,
    ``no``, ``off`` turn it off), else on."""
    if value is not None:
        return bool(value)
    text = os.environ.get(RECORD_ENV, "").strip().lower()
    return text not in ("0", "false", "no", "off")


def max_bytes_setting(value: int | None) -> int:
    """``prompt_record_max_bytes``: the argument, else ``$ASSISTANT_KIT_PROMPT_RECORD_MAX_BYTES``,
    else 262144; at least 1024 (a cap below that could not hold a request's frame)."""
    if value is None:
        text = os.environ.get(MAX_BYTES_ENV)
        value = int(text) if text else DEFAULT_MAX_BYTES
    return max(int(value), MIN_MAX_BYTES)


def request_body(request: ModelRequest) -> dict[str, Any]:
    """The recorded fields of a model request (everything the model is sent), by reference:
    the record is their JSON."""
    return {name: getattr(request, name) for name in REQUEST_FIELDS}


def _dump(body: Any) -> str:
    return json.dumps(body, ensure_ascii=False, default=str)


def _size(body: Any) -> int:
    return len(_dump(body).encode())


def _cut(text: str, remove: int) -> str:
    """``text`` less about ``remove`` bytes of its JSON form from its end, with a note saying
    how many bytes of the text went. (A text's JSON is longer than its bytes by its escapes:
    the cut is scaled to that, so a text of quotes and newlines is not cut twice as deep.)"""
    data = text.encode()
    if remove <= 0 or not data:
        return text
    remove = -(-remove * len(data) // len(_dump(text).encode()))
    note = " … [{} bytes not recorded]"
    keep = max(0, len(data) - remove - len(note.format(len(data)).encode()))
    kept = data[:keep].decode(errors="ignore")
    cut = kept + note.format(len(data) - len(kept.encode()))
    return cut if len(cut.encode()) < len(data) else text  # a short text stays whole


def _shorten(message: dict[str, Any], remove: int) -> None:
    """Take about ``remove`` bytes out of a chat message: its text, then its tool calls'
    arguments."""
    content = message.get("content")
    if isinstance(content, str) and content:
        before = len(content.encode())
        message["content"] = _cut(content, remove)
        remove -= before - len(message["content"].encode())
    elif isinstance(content, list):
        for part in content:
            if remove <= 0:
                break
            if isinstance(part, dict) and isinstance(part.get("text"), str) and part["text"]:
                before = len(part["text"].encode())
                part["text"] = _cut(part["text"], remove)
                remove -= before - len(part["text"].encode())
    for call in message.get("tool_calls") or []:
        if remove <= 0:
            break
        function = call.get("function") or {}
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            before = len(arguments.encode())
            function["arguments"] = _cut(arguments, remove)
            remove -= before - len(function["arguments"].encode())


def _names_only(tools: Any) -> list[dict[str, Any]]:
    return [
        {"type": "function", "function": {"name": (t.get("function") or {}).get("name")}}
        for t in tools or []
        if isinstance(t, dict)
    ]


def capped(body: dict[str, Any], max_bytes: int) -> tuple[str, int, bool]:
    """``body`` as JSON of at most ``max_bytes``: ``(json, bytes, truncated)``.

    Over the cap, the history gives way from the oldest message on: a message that is smaller
    than what is still over is left out whole (counted in ``messages_not_recorded``), the one
    where the excess ends is shortened to fit, and the newest — what the model answered — stay
    as sent. System messages (the instructions) are shortened only if that is not enough, and
    the newest message after them (it is never left out). Tool definitions are reduced to
    their names when they alone take more than half the cap (the messages are what a reader
    looks for), or when nothing else is left to cut."""
    text = _dump(body)
    size = len(text.encode())
    if size <= max_bytes:
        return text, size, False
    body = json.loads(text)  # a copy to cut (and much faster than copy.deepcopy)
    if _size({**body, "messages": []}) > max_bytes // 2:
        body["tools"] = _names_only(body.get("tools"))
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    body.update(messages=messages, messages_not_recorded=len(messages))  # sized at its widest
    history = [m for m in messages if m.get("role") != "system"]
    system = [m for m in messages if m.get("role") == "system"]
    left_out: set[int] = set()  # ids of the messages left out
    for _ in range(3):  # a cut text's JSON can differ from the estimate: measure again
        over = _size(body) - max_bytes
        for message in history[:-1]:
            if over <= 0:
                break
            if id(message) in left_out:
                continue
            whole = _size(message) + 2  # and its ", " separator
            if whole <= over:
                left_out.add(id(message))
                over -= whole
            else:
                _shorten(message, over + 64)
                over -= whole - 2 - _size(message)
        body["messages"] = [m for m in messages if id(m) not in left_out]
        if over <= 0:
            break
    for message in system + history[-1:]:  # the newest message is cut last, never left out
        over = _size(body) - max_bytes
        if over > 0:
            _shorten(message, over + 64)
    body["messages_not_recorded"] = len(left_out)
    if not left_out:
        del body["messages_not_recorded"]
    if _size(body) > max_bytes:
        body["tools"] = _names_only(body.get("tools"))
    if _size(body) > max_bytes:  # the frame alone is too large: keep what can be said
        body.update(messages=[], tools=[], messages_not_recorded=len(messages))
    text = _dump(body)
    return text, len(text.encode()), True


class PromptRecorder:
    """Records the requests of the runs this engine executes (see the module docstring).
    ``enabled``: whether to record at all; ``max_bytes``: the cap per request."""

    def __init__(self, store: AsyncStore, enabled: bool = True, max_bytes: int = DEFAULT_MAX_BYTES):
        self.store = store
        self.tables = AsyncInspectionTables(InspectionTables(store.sync))
        self.enabled = enabled
        self.max_bytes = max(max_bytes, MIN_MAX_BYTES)

    def __repr__(self) -> str:
        return f"<PromptRecorder enabled={self.enabled} max_bytes={self.max_bytes}>"

    async def record(self, run: dict[str, Any], request: ModelRequest) -> int | None:
        """Store ``request``, about to be sent for ``run``; returns its turn (None: not
        recorded)."""
        if not self.enabled:
            return None
        try:
            text, size, truncated = capped(request_body(request), self.max_bytes)
            return await self.tables.record_prompt(
                run["id"],
                run["thread_id"],
                now_ms(),
                run.get("model"),
                text,
                size,
                truncated,
            )
        except Exception:
            log.warning("run %s: its prompt was not recorded", run["id"], exc_info=True)
            return None

    async def produced(self, run: dict[str, Any], turn: int | None, steps: Sequence[Any]) -> None:
        """The steps (objects, None ignored) that recorded ``turn`` of ``run`` produced."""
        ids = sorted(step["id"] for step in steps if step is not None)
        if turn is None or not ids:
            return
        try:
            await self.tables.prompt_steps(run["id"], turn, ids)
        except Exception:
            log.warning(
                "run %s: the steps of its prompt %d were not recorded", run["id"], turn, exc_info=True
            )
