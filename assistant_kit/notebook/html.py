"""Escaping, truncation and HTML/text reprs for the SDK's Assistants objects.

Everything a model, a tool or a server produced is *untrusted*: JupyterLab renders HTML from
a cell the user ran as trusted, so a ``<script>`` in a reply would run. Every string that
came from an object therefore goes through :func:`escape` and lands inside a ``<pre>`` or a
text node; model text is never interpreted as markdown, so links and images in it stay
text. The only markup here is ours: inline styles (no ``<style>`` block that could leak into
the page), ``<details>`` for long texts, a status badge.

Objects: ``openai.types.beta`` ``Assistant`` and ``Thread``, ``threads.Message`` and ``Run``,
``threads.runs.RunStep`` — :func:`object_html` draws a small card, :func:`object_text` a
one-to-few-line summary, :func:`register_formatters` makes IPython use both.
"""

from __future__ import annotations

import datetime as _dt
import html as _stdlib_html
import json
import sys
from collections.abc import Iterable
from typing import Any

from openai.types.beta import Assistant, Thread
from openai.types.beta.threads import Message, Run
from openai.types.beta.threads.runs import RunStep

__all__ = [
    "badge",
    "escape",
    "object_html",
    "object_text",
    "register_formatters",
    "text_block",
    "tool_call_html",
    "truncate",
]

SDK_TYPES: tuple[type, ...] = (Assistant, Thread, Message, Run, RunStep)

# Colours readable on light and dark themes (white text on a saturated badge).
STATUS_COLORS = {
    "completed": "#1a7f37",
    "in_progress": "#0969da",
    "queued": "#6e7781",
    "requires_action": "#bf8700",
    "cancelling": "#9a6700",
    "cancelled": "#6e7781",
    "incomplete": "#9a6700",
    "failed": "#cf222e",
    "expired": "#cf222e",
}
CARD_STYLE = (
    "font-family:var(--jp-ui-font-family,system-ui,sans-serif);font-size:13px;line-height:1.45;"
    "border:1px solid rgba(128,128,128,.35);border-radius:6px;padding:6px 10px;margin:2px 0;"
    "max-width:100%;overflow-wrap:anywhere"
)
PRE_STYLE = (
    "white-space:pre-wrap;overflow-wrap:anywhere;margin:2px 0;padding:4px 6px;"
    "background:rgba(127,127,127,.08);border-radius:4px;font-size:12px;line-height:1.4"
)
MUTED = "opacity:.65"
_SECRET_WORDS = ("api_key", "apikey", "secret", "password", "authorization", "bearer")


def escape(text: str) -> str:
    """HTML-escape ``text`` (quotes too, so it is safe in attributes)."""
    return _stdlib_html.escape("" if text is None else str(text), quote=True)


def truncate(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters, with a visible ``… (+N chars)`` marker."""
    text = "" if text is None else str(text)
    limit = max(int(limit), 0)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… (+{len(text) - limit} chars)"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def text_block(text: str, *, collapse_over: int = 2000) -> str:
    """``text`` escaped in a wrapping ``<pre>``; longer than ``collapse_over`` → inside a
    ``<details>`` whose summary is a one-line preview. Never renders markdown, links or images."""
    text = "" if text is None else str(text)
    pre = f'<pre style="{PRE_STYLE}">{escape(text)}</pre>'
    if len(text) <= collapse_over:
        return pre
    preview = escape(_one_line(text[:400])[:80])
    return (
        f'<details><summary style="cursor:pointer">{preview}… '
        f'<span style="{MUTED}">({len(text):,} chars)</span></summary>{pre}</details>'
    )


def badge(status: str | None) -> str:
    """A coloured status pill (``completed`` green, ``failed`` red, …)."""
    status = str(status or "unknown")
    colour = STATUS_COLORS.get(status, "#6e7781")
    return (
        f'<span style="background:{colour};color:#fff;border-radius:9px;padding:0 7px;'
        f'font-size:11px;font-weight:600;white-space:nowrap">{escape(status)}</span>'
    )


def _code(text: str | None) -> str:
    return f"<code>{escape(text or '')}</code>"


def _when(ts: int | None) -> str:
    if not ts:
        return ""
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _redacted(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """Metadata with secret-looking keys masked: reprs are shown and shared, keys are not."""
    return {
        k: ("***" if any(w in str(k).lower() for w in _SECRET_WORDS) else v)
        for k, v in (metadata or {}).items()
    }


def pretty_json(text: str) -> str:
    """Arguments as indented JSON when they parse, else unchanged."""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (TypeError, ValueError):
        return text


def tool_call_html(
    name: str,
    arguments: str,
    output: str | None = None,
    *,
    error: bool = False,
    kind: str = "function",
    call_id: str | None = None,
    expanded: bool = False,
) -> str:
    """One tool call, collapsible: the summary shows ``→ name(args…)`` and its state; the
    body holds the full arguments and output (each escaped, long ones collapsed again)."""
    if error:
        state = '<span style="color:#cf222e;font-weight:600">✗ error</span>'
    elif output is not None:
        state = '<span style="color:#1a7f37">✓</span>'
    else:
        state = f'<span style="{MUTED}">…</span>'
    label = name or kind or "tool"
    summary = (
        f"→ <code>{escape(label)}</code>(<span style='{MUTED}'>"
        f"{escape(truncate(_one_line(arguments or ''), 80))}</span>) {state}"
    )
    body = [f'<div style="{MUTED};font-size:11px">{escape(kind)} call {_code(call_id)}</div>']
    body.append(f'<div style="{MUTED};font-size:11px">arguments</div>')
    body.append(text_block(pretty_json(arguments or "")))
    if output is not None:
        body.append(f'<div style="{MUTED};font-size:11px">{"error" if error else "output"}</div>')
        body.append(text_block(output))
    return (
        f"<details{' open' if expanded else ''} style='margin:2px 0'>"
        f"<summary style='cursor:pointer'>{summary}</summary>"
        f"<div style='margin-left:14px'>{''.join(body)}</div></details>"
    )


# ---- cards -------------------------------------------------------------------------------


def _rows(rows: Iterable[tuple[str, str]]) -> str:
    cells = "".join(
        f'<div style="{MUTED}">{escape(k)}</div><div>{v}</div>' for k, v in rows if v not in ("", None)
    )
    return f'<div style="display:grid;grid-template-columns:max-content 1fr;gap:1px 12px">{cells}</div>'


def _card(kind: str, obj_id: str, status: str | None, rows: list[tuple[str, str]], body: str = "") -> str:
    head = f"<b>{escape(kind)}</b> {_code(obj_id)}"
    if status is not None:
        head += f" {badge(status)}"
    return f'<div style="{CARD_STYLE}"><div>{head}</div>{_rows(rows)}{body}</div>'


def _tool_names(tools: Iterable[Any] | None) -> list[str]:
    names = []
    for tool in tools or ():
        function = getattr(tool, "function", None)
        names.append(getattr(function, "name", None) or getattr(tool, "type", "?"))
    return names


def content_parts(content: Iterable[Any] | None) -> list[tuple[str, str]]:
    """A message's content as ``(kind, text)``: ``text``/``refusal`` with their text,
    ``image_file``/``image_url`` with the file id / URL as *text* (never an ``<img>``)."""
    parts: list[tuple[str, str]] = []
    for block in content or ():
        kind = getattr(block, "type", "?")
        if kind == "text":
            parts.append(("text", getattr(block.text, "value", "") or ""))
        elif kind == "refusal":
            parts.append(("refusal", getattr(block, "refusal", "") or ""))
        elif kind == "image_file":
            parts.append(("image_file", getattr(block.image_file, "file_id", "") or ""))
        elif kind == "image_url":
            parts.append(("image_url", getattr(block.image_url, "url", "") or ""))
        else:
            parts.append((str(kind), ""))
    return parts


def _content_html(content: Iterable[Any] | None) -> str:
    out = []
    for kind, text in content_parts(content):
        if kind == "text":
            out.append(text_block(text))
        elif kind == "refusal":
            out.append(f'<div style="color:#9a6700">refusal</div>{text_block(text)}')
        else:
            out.append(f'<div style="{MUTED}">[{escape(kind)}: {_code(truncate(text, 120))}]</div>')
    return "".join(out)


def step_calls(step: RunStep) -> list[tuple[str, str, str | None, str | None, str]]:
    """``(kind, name, arguments, output, call_id)`` for each tool call of a step."""
    details = step.step_details
    calls = []
    for call in getattr(details, "tool_calls", None) or ():
        kind = getattr(call, "type", "?")
        if kind == "function":
            fn = call.function
            calls.append((kind, fn.name, fn.arguments, fn.output, call.id))
        elif kind == "code_interpreter":
            ci = call.code_interpreter
            logs = "".join(getattr(o, "logs", "") or "" for o in ci.outputs or ())
            calls.append((kind, "code_interpreter", ci.input, logs or None, call.id))
        elif kind == "file_search":
            results = getattr(call.file_search, "results", None) or []
            calls.append((kind, "file_search", "", f"{len(results)} results", call.id))
        else:
            calls.append((kind, kind, "", None, getattr(call, "id", "")))
    return calls


def _usage_text(usage: Any) -> str:
    if usage is None:
        return ""
    return (
        f"prompt {usage.prompt_tokens} · completion {usage.completion_tokens} · "
        f"total {usage.total_tokens} tokens"
    )


def _assistant_html(a: Assistant) -> str:
    rows = [
        ("name", escape(a.name or "")),
        ("model", _code(a.model)),
        ("tools", escape(", ".join(_tool_names(a.tools)))),
        ("description", escape(truncate(a.description or "", 200))),
        ("created", escape(_when(a.created_at))),
    ]
    body = ""
    if a.instructions:
        body = f'<div style="{MUTED}">instructions</div>{text_block(a.instructions, collapse_over=400)}'
    return _card("assistant", a.id, None, rows, body)


def _thread_html(t: Thread) -> str:
    metadata = json.dumps(_redacted(t.metadata), ensure_ascii=False) if t.metadata else ""
    rows = [("created", escape(_when(t.created_at))), ("metadata", escape(truncate(metadata, 200)))]
    return _card("thread", t.id, None, rows)


def _message_html(m: Message) -> str:
    rows = [
        ("role", f"<b>{escape(m.role)}</b>"),
        ("run", _code(m.run_id) if m.run_id else ""),
        ("created", escape(_when(m.created_at))),
        ("attachments", escape(str(len(m.attachments))) if m.attachments else ""),
        ("incomplete", escape(m.incomplete_details.reason) if m.incomplete_details else ""),
    ]
    return _card("message", m.id, m.status, rows, _content_html(m.content))


def _run_html(r: Run) -> str:
    duration = ""
    end = r.completed_at or r.failed_at or r.cancelled_at
    if r.started_at and end:
        duration = f"{end - r.started_at} s"
    rows = [
        ("model", _code(r.model)),
        ("assistant", _code(r.assistant_id)),
        ("thread", _code(r.thread_id)),
        ("created", escape(_when(r.created_at))),
        ("duration", escape(duration)),
        ("usage", escape(_usage_text(r.usage))),
        ("incomplete", escape(str(r.incomplete_details.reason)) if r.incomplete_details else ""),
    ]
    body = []
    if r.last_error is not None:
        body.append(
            f'<div style="color:#cf222e">{escape(r.last_error.code)}: {escape(r.last_error.message)}</div>'
        )
    if r.required_action is not None:
        calls = r.required_action.submit_tool_outputs.tool_calls
        body.append(f'<div style="{MUTED}">waiting for {len(calls)} tool output(s)</div>')
        body.extend(
            tool_call_html(c.function.name, c.function.arguments, call_id=c.id, kind=c.type) for c in calls
        )
    return _card("run", r.id, r.status, rows, "".join(body))


def _step_html(s: RunStep) -> str:
    rows = [
        ("type", escape(s.type)),
        ("run", _code(s.run_id)),
        ("usage", escape(_usage_text(s.usage))),
    ]
    body = []
    message_creation = getattr(s.step_details, "message_creation", None)
    if message_creation is not None:
        rows.append(("message", _code(message_creation.message_id)))
    for kind, name, arguments, output, call_id in step_calls(s):
        body.append(tool_call_html(name, arguments or "", output, kind=kind, call_id=call_id))
    if s.last_error is not None:
        body.append(
            f'<div style="color:#cf222e">{escape(s.last_error.code)}: {escape(s.last_error.message)}</div>'
        )
    return _card("run step", s.id, s.status, rows, "".join(body))


def object_html(obj: Any) -> str:
    """A small HTML card for an Assistant, Thread, Message, Run or RunStep; anything else
    is its escaped ``repr``."""
    if isinstance(obj, Message):
        return _message_html(obj)
    if isinstance(obj, Run):
        return _run_html(obj)
    if isinstance(obj, RunStep):
        return _step_html(obj)
    if isinstance(obj, Assistant):
        return _assistant_html(obj)
    if isinstance(obj, Thread):
        return _thread_html(obj)
    return f'<pre style="{PRE_STYLE}">{escape(repr(obj))}</pre>'


# ---- text --------------------------------------------------------------------------------


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line for line in text.splitlines() or [""])


def _message_text(m: Message) -> str:
    head = f"Message {m.id} · {m.role} · {m.status}"
    lines = [head]
    for kind, text in content_parts(m.content):
        if kind == "text":
            lines.append(_indent(truncate(text, 500)))
        else:
            lines.append(_indent(f"[{kind}: {truncate(text, 120)}]"))
    return "\n".join(lines)


def _run_text(r: Run) -> str:
    lines = [f"Run {r.id} · {r.status} · model={r.model}"]
    if r.usage is not None:
        lines.append(f"  usage: {_usage_text(r.usage)}")
    if r.last_error is not None:
        lines.append(f"  error: {r.last_error.code}: {truncate(r.last_error.message, 300)}")
    if r.incomplete_details is not None:
        lines.append(f"  incomplete: {r.incomplete_details.reason}")
    if r.required_action is not None:
        for c in r.required_action.submit_tool_outputs.tool_calls:
            lines.append(f"  → {c.function.name}({truncate(c.function.arguments, 200)})  [{c.id}]")
    return "\n".join(lines)


def _step_text(s: RunStep) -> str:
    lines = [f"RunStep {s.id} · {s.type} · {s.status}"]
    message_creation = getattr(s.step_details, "message_creation", None)
    if message_creation is not None:
        lines.append(f"  message {message_creation.message_id}")
    for _kind, name, arguments, output, _call_id in step_calls(s):
        lines.append(f"  → {name}({truncate(arguments or '', 200)})")
        if output is not None:
            lines.append(f"  ← {truncate(output, 200)}")
    if s.last_error is not None:
        lines.append(f"  error: {s.last_error.code}: {truncate(s.last_error.message, 300)}")
    return "\n".join(lines)


def object_text(obj: Any) -> str:
    """A readable one-to-few-line text repr of the same objects (no credentials: these
    objects carry none, and secret-looking metadata keys are masked)."""
    if isinstance(obj, Message):
        return _message_text(obj)
    if isinstance(obj, Run):
        return _run_text(obj)
    if isinstance(obj, RunStep):
        return _step_text(obj)
    if isinstance(obj, Assistant):
        head = f"Assistant {obj.id}" + (f" {obj.name!r}" if obj.name else "") + f" · model={obj.model}"
        tools = _tool_names(obj.tools)
        lines = [head + (f" · tools: {', '.join(tools)}" if tools else "")]
        if obj.instructions:
            lines.append(f"  instructions: {truncate(_one_line(obj.instructions), 120)}")
        return "\n".join(lines)
    if isinstance(obj, Thread):
        text = f"Thread {obj.id} · created {_when(obj.created_at)}"
        if obj.metadata:
            text += f"\n  metadata: {truncate(json.dumps(_redacted(obj.metadata), ensure_ascii=False), 200)}"
        return text
    return repr(obj)


def register_formatters(ip: Any = None) -> None:
    """Make IPython show the SDK objects with :func:`object_html` (``text/html``) and
    :func:`object_text` (``text/plain``). ``ip`` defaults to the running shell; outside
    IPython this does nothing (and imports nothing)."""
    if ip is None:
        if "IPython" not in sys.modules:
            return
        from IPython import get_ipython

        ip = get_ipython()
        if ip is None:
            return
    formatters = ip.display_formatter.formatters
    for cls in SDK_TYPES:
        formatters["text/html"].for_type(cls, object_html)
        formatters["text/plain"].for_type(cls, _pretty_text)


def _pretty_text(obj: Any, printer: Any, cycle: bool) -> None:
    printer.text(object_text(obj))
