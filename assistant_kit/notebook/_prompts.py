"""What a model turn was sent: the engine's prompt records as rows, HTML folds and text.

Each model request an assistant_kit engine makes is recorded (``prompts`` of a run's
inspection, docs/inspection.md): the messages left after ``truncation_strategy`` and
``max_prompt_tokens``, the instructions as merged (the system message), the tools as offered
and the sampling parameters. :func:`prompt_rows` flattens them for ``tables.prompts``;
:func:`prompt_html` / :func:`prompt_text` draw one turn; :class:`PromptView` is what
``Session.prompt(step_id | run_id)`` returns.

Token counts are estimates — the record holds text — made as the engine estimates them when
it fits ``max_prompt_tokens`` (``Model.count_tokens``: ~4 characters per token plus 4 per
message), and labelled so. Everything recorded came from users, models and tools: escaped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import openai

from ..errors import SessionError
from ._markup import LABEL_STYLE, MUTED, code, escape, text_block, truncate
from ._timings import not_found, run_inspection

TOKENS_SOURCE = "estimate: ~4 chars/token + 4 per message (as the engine fits max_prompt_tokens)"
_PARAMS = ("tool_choice", "parallel_tool_calls", "response_format", "temperature", "top_p", "max_tokens")


def message_text(message: dict[str, Any]) -> str:
    """A chat-format message's content as text; its tool calls as ``→ name(arguments)`` lines."""
    content = message.get("content")
    if isinstance(content, list):
        content = "\n".join(
            str(p.get("text", "")) if isinstance(p, dict) and "text" in p else f"[{p.get('type', '?')}]"
            for p in content
            if isinstance(p, dict)
        )
    lines = [content] if content else []
    for call in message.get("tool_calls") or ():
        fn = call.get("function") or {}
        lines.append(f"→ {fn.get('name')}({fn.get('arguments') or ''})")
    return "\n".join(lines)


def estimate_tokens(message: dict[str, Any]) -> int:
    """The engine's default estimate for one message (``Model.count_tokens``)."""
    content = message.get("content") or ""
    if not isinstance(content, str):
        content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    total = len(content) // 4 + 4
    for call in message.get("tool_calls") or ():
        total += len((call.get("function") or {}).get("arguments") or "") // 4 + 4
    return total


def prompt_rows(inspection: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict per message of each recorded request of a run's inspection."""
    rows = []
    for turn in inspection.get("prompts") or ():
        request = turn.get("request") or {}
        for index, message in enumerate(request.get("messages") or ()):
            rows.append(
                {
                    "turn": turn.get("turn"),
                    "index": index,
                    "role": message.get("role"),
                    "content": message_text(message),
                    "tool_call_id": message.get("tool_call_id"),
                    "tokens": message.get("tokens", estimate_tokens(message)),
                    "tokens_source": "recorded" if "tokens" in message else TOKENS_SOURCE,
                    "step_ids": list(turn.get("step_ids") or ()),
                    "model": turn.get("model"),
                    "created_at_ms": turn.get("created_at_ms"),
                    "truncated": bool(turn.get("truncated")),
                }
            )
    return rows


def _summary(turn: dict[str, Any]) -> str:
    request = turn.get("request") or {}
    messages = request.get("messages") or []
    tokens = sum(estimate_tokens(m) for m in messages)
    parts = [f"turn {turn.get('turn')}", f"{len(messages)} messages", f"~{tokens} tokens (estimate)"]
    tools = [t.get("function", {}).get("name") or t.get("type") for t in request.get("tools") or ()]
    if tools:
        parts.append(f"tools: {', '.join(str(t) for t in tools)}")
    if turn.get("model"):
        parts.append(str(turn["model"]))
    if turn.get("truncated"):
        parts.append("record shortened to its size cap")
    return " · ".join(parts)


def _params(request: dict[str, Any]) -> dict[str, Any]:
    return {k: request[k] for k in _PARAMS if request.get(k) is not None}


def prompt_html(turn: dict[str, Any], *, open_: bool = False) -> str:
    """One model turn's request as a ``<details class="ak-prompt">`` fold."""
    request = turn.get("request") or {}
    body = []
    for message in request.get("messages") or ():
        extra = f" · {code(message['tool_call_id'])}" if message.get("tool_call_id") else ""
        body.append(
            f'<div class="ak-prompt-message" style="margin:3px 0">'
            f'<div style="{LABEL_STYLE}"><b>{escape(message.get("role"))}</b>{extra} · '
            f"~{estimate_tokens(message)} tokens</div>{text_block(message_text(message))}</div>"
        )
    if not body:
        body.append(f'<div style="{MUTED}"><i>No messages were recorded.</i></div>')
    tools = request.get("tools") or []
    if tools:
        body.append(
            f"<details><summary style='{LABEL_STYLE}'>tools offered ({len(tools)})</summary>"
            f"{text_block(json.dumps(tools, indent=2, ensure_ascii=False))}</details>"
        )
    params = _params(request)
    if params:
        body.append(f'<div style="{LABEL_STYLE}">{escape(json.dumps(params, ensure_ascii=False))}</div>')
    return (
        f"<details class='ak-prompt'{' open' if open_ else ''} style='margin:3px 0'>"
        f"<summary style='cursor:pointer'>prompt · {escape(_summary(turn))}</summary>"
        f"<div style='margin-left:14px'>{''.join(body)}</div></details>"
    )


def prompt_text(turn: dict[str, Any], *, indent: str = "", width: int = 100) -> list[str]:
    """One model turn's request as text lines (each message on one shortened line)."""
    lines = [f"{indent}prompt · {_summary(turn)}"]
    for message in (turn.get("request") or {}).get("messages") or ():
        text = truncate(" ".join(message_text(message).split()), width)
        lines.append(f"{indent}  {message.get('role')!s:>9}: {text}")
    return lines


@dataclass(repr=False)
class PromptView:
    """The recorded prompts of a run, or of the model turn that produced one step."""

    run_id: str
    turns: list[dict[str, Any]]
    step_id: str | None = None
    record_prompts: bool = True
    notes: list[str] = field(default_factory=list)

    def _title(self) -> str:
        what = f"step {self.step_id} of run {self.run_id}" if self.step_id else f"run {self.run_id}"
        return f"Prompt of {what}"

    def _empty(self) -> str:
        if not self.record_prompts:
            return "Prompt recording is off on this engine (record_prompts)."
        return "No model request was recorded for it."

    def __repr__(self) -> str:
        lines = [self._title()]
        if not self.turns:
            lines.append(self._empty())
        for turn in self.turns:
            lines.extend(prompt_text(turn, indent="  "))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        body = (
            "".join(prompt_html(t, open_=True) for t in self.turns)
            or f"<p><i>{escape(self._empty())}</i></p>"
        )
        return f'<div class="ak-prompts"><div><b>{escape(self._title())}</b></div>{body}</div>'


def find_prompt(client: openai.OpenAI, thread_id: str, object_id: str) -> PromptView:
    """The prompts of run ``object_id``, or of the model turn that produced step ``object_id``
    (the thread's runs are searched newest first, one inspection request each)."""
    is_step = object_id.startswith("step_")
    run_ids = (
        [r.id for r in client.beta.threads.runs.list(thread_id, order="desc")] if is_step else [object_id]
    )
    for run_id in run_ids:
        found = run_inspection(client, thread_id, run_id)
        if found is None:
            raise not_found(f"GET /threads/{thread_id}/runs/{run_id}/inspection")
        turns = list(found.get("prompts") or ())
        recording = bool(found.get("record_prompts", True))
        if not is_step:
            return PromptView(run_id, turns, record_prompts=recording)
        own = [t for t in turns if object_id in (t.get("step_ids") or ())]
        if own or any(s.get("step_id") == object_id for s in found.get("steps") or ()):
            return PromptView(run_id, own, step_id=object_id, record_prompts=recording)
    raise SessionError(f"No step {object_id!r} in thread {thread_id}.")
