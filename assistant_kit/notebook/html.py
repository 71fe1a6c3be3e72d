"""HTML and text reprs for the SDK's Assistants objects (and, re-exported from :mod:`._markup`,
the escaping and truncation helpers every notebook module uses).

Everything a model, a tool or a server produced is *untrusted*: JupyterLab renders HTML from
a cell the user ran as trusted, so a ``<script>`` in a reply would run. Every string that
came from an object therefore goes through :func:`escape` and lands inside a ``<pre>`` or a
text node; model text is never interpreted as markdown, so links and images in it stay
text. The only markup here is ours: inline styles (no ``<style>`` block that could leak into
the page), ``<details>`` for long texts, a status badge — and the ``<img>`` of an image file
(a code_interpreter plot, an ``image_file`` part), whose bytes :mod:`.code` fetched and
checked to be a raster image before inlining them as a ``data:`` URI.

Objects: ``openai.types.beta`` ``Assistant`` and ``Thread``, ``threads.Message`` and ``Run``,
``threads.runs.RunStep`` — :func:`object_html` draws a small card, :func:`object_text` a
one-to-few-line summary, :func:`register_formatters` makes IPython use both. A
``code_interpreter`` call shows its code, logs and images (:mod:`.code`); a message its
``image_file`` parts and ``file_path`` annotations.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import sys
from collections.abc import Iterable
from typing import Any

from openai.types.beta import Assistant, Thread
from openai.types.beta.threads import Message, Run
from openai.types.beta.threads.runs import RunStep

from ._markup import (
    CARD_STYLE,
    MUTED,
    PRE_STYLE,
    STATUS_COLORS,
    badge,
    collapsible,
    escape,
    one_line,
    pretty_json,
    text_block,
    truncate,
)
from ._markup import code as _code
from .citations import (
    call_queries,
    call_sources,
    citation_annotations,
    cited_html,
    cited_text,
    footnotes_text,
    resolve,
    search_call_html,
    search_call_text,
)
from .code import (
    FileImages,
    code_call_html,
    code_call_text,
    code_outputs,
    file_ref_html,
    image_html,
    owner,
)

__all__ = [
    "CARD_STYLE",
    "MUTED",
    "PRE_STYLE",
    "STATUS_COLORS",
    "badge",
    "collapsible",
    "ensure_formatters",
    "escape",
    "object_files",
    "object_html",
    "object_text",
    "pretty_json",
    "register_formatters",
    "text_block",
    "tool_call_html",
    "truncate",
]

SDK_TYPES: tuple[type, ...] = (Assistant, Thread, Message, Run, RunStep)
_SECRET_WORDS = ("api_key", "apikey", "secret", "password", "authorization", "bearer")


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
        f"{escape(truncate(one_line(arguments or ''), 80))}</span>) {state}"
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


def file_annotations(block: Any) -> list[tuple[str, str, str]]:
    """``(kind, text, file_id)`` for each ``file_path`` / ``file_citation`` annotation of a
    text content part (``sandbox:/mnt/data/out.csv`` → ``file-…``)."""
    refs = []
    for note in getattr(getattr(block, "text", None), "annotations", None) or ():
        kind = getattr(note, "type", "")
        target = getattr(note, kind, None) if kind in ("file_path", "file_citation") else None
        file_id = getattr(target, "file_id", None)
        if file_id:
            refs.append((kind, getattr(note, "text", "") or "", file_id))
    return refs


def _content_html(content: Iterable[Any] | None, files: FileImages | None) -> str:
    out = []
    for block, (kind, text) in zip(content or (), content_parts(content), strict=True):
        if kind == "text":
            cites = citation_annotations(block.text.annotations)
            # A card has no run around it: citations show the file id (the run's steps have the rest).
            out.append(cited_html(text, resolve(text, cites)) if cites else text_block(text))
            out.extend(file_ref_html(*ref, files) for ref in file_annotations(block) if ref[0] == "file_path")
        elif kind == "refusal":
            out.append(f'<div style="color:#9a6700">refusal</div>{text_block(text)}')
        elif kind == "image_file":
            out.append(image_html(text, files, label="image_file"))
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
            calls.append((kind, "code_interpreter", ci.input, code_outputs(ci.outputs)[0], call.id))
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


def _message_html(m: Message, files: FileImages | None) -> str:
    rows = [
        ("role", f"<b>{escape(m.role)}</b>"),
        ("run", _code(m.run_id) if m.run_id else ""),
        ("created", escape(_when(m.created_at))),
        ("attachments", escape(str(len(m.attachments))) if m.attachments else ""),
        ("incomplete", escape(m.incomplete_details.reason) if m.incomplete_details else ""),
    ]
    return _card("message", m.id, m.status, rows, _content_html(m.content, files))


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


def step_error(step: RunStep) -> str | None:
    """``code: message`` of a step that failed (a timed-out execution, …), else None."""
    error = step.last_error
    return f"{error.code}: {error.message}" if error is not None else None


def _step_html(s: RunStep, files: FileImages | None) -> str:
    rows = [
        ("type", escape(s.type)),
        ("run", _code(s.run_id)),
        ("usage", escape(_usage_text(s.usage))),
    ]
    body = []
    message_creation = getattr(s.step_details, "message_creation", None)
    if message_creation is not None:
        rows.append(("message", _code(message_creation.message_id)))
    shown_error = False
    for call, (kind, name, arguments, output, call_id) in zip(_tool_calls(s), step_calls(s), strict=True):
        if kind == "code_interpreter":
            logs, images = code_outputs(call.code_interpreter.outputs)
            error = step_error(s)
            shown_error = shown_error or error is not None
            body.append(
                code_call_html(
                    arguments or "", logs, images, status=s.status, error=error, call_id=call_id, files=files
                )
            )
        elif kind == "file_search":
            fs = call.file_search
            sources = call_sources(0, fs) if fs.results is not None else None
            body.append(
                search_call_html(
                    sources, ranking_options=fs.ranking_options, call_id=call_id, queries=call_queries(fs)
                )
            )
        else:
            body.append(tool_call_html(name, arguments or "", output, kind=kind, call_id=call_id))
    if s.last_error is not None and not shown_error:
        body.append(
            f'<div style="color:#cf222e">{escape(s.last_error.code)}: {escape(s.last_error.message)}</div>'
        )
    return _card("run step", s.id, s.status, rows, "".join(body))


def _tool_calls(step: RunStep) -> list[Any]:
    return list(getattr(step.step_details, "tool_calls", None) or ())


def object_html(obj: Any, *, files: FileImages | None = None) -> str:
    """A small HTML card for an Assistant, Thread, Message, Run or RunStep; anything else
    is its escaped ``repr``. ``files``: where images (code_interpreter outputs, ``image_file``
    parts) are fetched to show inline; None shows them by reference (their file ids)."""
    if isinstance(obj, Message):
        return _message_html(obj, files)
    if isinstance(obj, Run):
        return _run_html(obj)
    if isinstance(obj, RunStep):
        return _step_html(obj, files)
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
    for block, (kind, text) in zip(m.content, content_parts(m.content), strict=True):
        if kind == "text":
            cites = resolve(text, citation_annotations(block.text.annotations))
            lines.append(_indent(truncate(cited_text(text, cites) if cites else text, 500)))
            lines.extend(_indent(line) for line in footnotes_text(cites))
            lines.extend(
                f"  [{k} {t} → {file_id}]" for k, t, file_id in file_annotations(block) if k == "file_path"
            )
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
    shown_error = False
    for call, (kind, name, arguments, output, _call_id) in zip(_tool_calls(s), step_calls(s), strict=True):
        if kind == "code_interpreter":
            logs, images = code_outputs(call.code_interpreter.outputs)
            error = step_error(s)
            shown_error = shown_error or error is not None
            text = code_call_text(truncate(arguments or "", 600), logs, images, error=error, log_limit=200)
            lines.append(_indent(text))
            continue
        if kind == "file_search":
            results = call.file_search.results
            sources = None if results is None else call_sources(0, call.file_search)
            lines.append(_indent(search_call_text(sources, queries=call_queries(call.file_search))))
            continue
        lines.append(f"  → {name}({truncate(arguments or '', 200)})")
        if output is not None:
            lines.append(f"  ← {truncate(output, 200)}")
    if s.last_error is not None and not shown_error:
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
            lines.append(f"  instructions: {truncate(one_line(obj.instructions), 120)}")
        return "\n".join(lines)
    if isinstance(obj, Thread):
        text = f"Thread {obj.id} · created {_when(obj.created_at)}"
        if obj.metadata:
            text += f"\n  metadata: {truncate(json.dumps(_redacted(obj.metadata), ensure_ascii=False), 200)}"
        return text
    return repr(obj)


def object_files(obj: Any) -> list[str]:
    """The ids of the files an object shows: a message's ``image_file`` parts and annotated
    files, a step's code_interpreter images."""
    if isinstance(obj, Message):
        ids = []
        for block, (kind, text) in zip(obj.content, content_parts(obj.content), strict=True):
            if kind == "image_file":
                ids.append(text)
            elif kind == "text":
                ids.extend(file_id for _, _, file_id in file_annotations(block))
        return ids
    if isinstance(obj, RunStep):
        calls = [c for c in _tool_calls(obj) if getattr(c, "type", None) == "code_interpreter"]
        return [file_id for c in calls for file_id in code_outputs(c.code_interpreter.outputs)[1]]
    return []


def register_formatters(ip: Any = None, *, files: FileImages | None = None) -> None:
    """Make IPython show the SDK objects with :func:`object_html` (``text/html``) and
    :func:`object_text` (``text/plain``). ``ip`` defaults to the running shell; outside
    IPython this does nothing (and imports nothing).

    ``files``: show images inline, always fetched through that client. Without it (what
    ``%load_ext`` registers, and a :class:`Session` where nothing is registered yet), each
    object's images come through the client of the live session whose store has them
    (:func:`.code.owner`), or are shown by reference when none has."""
    shell = _shell(ip)
    if shell is None:
        return
    formatters = shell.display_formatter.formatters
    html = _owned_html if files is None else functools.partial(object_html, files=files)
    for cls in SDK_TYPES:
        formatters["text/html"].for_type(cls, html)
        formatters["text/plain"].for_type(cls, _pretty_text)


def ensure_formatters() -> None:
    """:func:`register_formatters` in the running shell unless it has formatters for the SDK
    objects already — ours, from an earlier session, or someone's own: a new session
    replaces nothing."""
    shell = _shell(None)
    if shell is not None and Message not in shell.display_formatter.formatters["text/html"].type_printers:
        register_formatters(shell)


def _shell(ip: Any) -> Any:
    if ip is not None:
        return ip
    if "IPython" not in sys.modules:
        return None
    from IPython import get_ipython

    return get_ipython()


def _owned_html(obj: Any) -> str:
    return object_html(obj, files=owner(object_files(obj)))


def _pretty_text(obj: Any, printer: Any, cycle: bool) -> None:
    printer.text(object_text(obj))
