"""A run inside the transcript of ``inspect()``: what happened after a user turn, and why.

Under the user message that started it, each run is a block: its status badge, model, tokens,
duration and time to first token; its error in place (``last_error`` of a failed, cancelled or
expired run; the reason of an ``incomplete`` one); each step as a ``<details>`` fold — the
tool calls with their arguments and outputs (a cancelled round's calls say they were never
answered), ``code_interpreter`` code, logs and images (:mod:`.code`); and one "prompt" fold per
model turn with what the model was sent (:mod:`._prompts`). The same in text, for ``repr``.

Rows are those of the frames of :mod:`.tables` (``itertuples``); columns a hand-built or older
frame lacks are read as unknown. Everything from the API is escaped.
"""

from __future__ import annotations

from typing import Any

from ._markup import LABEL_STYLE, MUTED, badge, code, escape, truncate
from ._prompts import prompt_html, prompt_text
from ._searches import SearchCall, search_line
from .citations import search_call_html
from .code import FileImages, code_body_html
from .html import tool_call_html

RUN_COLOR = "#6e7781"
_ERROR_STYLE = "color:#cf222e;font-weight:600"


def _get(row: Any, name: str) -> Any:
    """``row.name``; None when the column is missing or the value unknown (NaN, NaT, ``<NA>``)."""
    value = getattr(row, name, None)
    if value is None or isinstance(value, (list, dict, str)):
        return value
    try:
        return None if bool(value != value) else value
    except TypeError:  # pd.NA: its truth value is ambiguous
        return None


def _tokens(row: Any) -> str | None:
    total = _get(row, "total_tokens")
    if total is None:
        return None
    prompt, completion = _get(row, "prompt_tokens"), _get(row, "completion_tokens")
    if prompt is not None and completion is not None:
        return f"{int(total)} tokens ({int(prompt)} in, {int(completion)} out)"
    return f"{int(total)} tokens"


def duration(seconds: Any, resolution: Any) -> str:
    """A duration for people: ms below a second, "unknown" when unknown, "(s resolution)" when
    it comes from the wire's whole seconds."""
    if seconds is None:
        return "duration unknown"
    if resolution == "ms":
        return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.3g} s"
    return f"{seconds:g} s (s resolution)"


def call_timing(call: Any) -> str:
    """How long a code call's step took and how much of it went to running the code
    (``duration_s``, ``tool_s`` of :func:`.tables.code_calls`), e.g. ``"1.2 s · tools 380 ms"``;
    "" when neither is known (an imported thread, a call still running, an older frame)."""
    parts = []
    took = _get(call, "duration_s")
    if took is not None:
        parts.append(duration(took, _get(call, "resolution")))
    tool_s = _get(call, "tool_s")
    if tool_s is not None:
        parts.append(f"tools {tool_s * 1000:.0f} ms")
    return " · ".join(parts)


def run_facts(run: Any) -> list[str]:
    """Model, tokens, duration and time to first token, as short texts."""
    facts = [str(_get(run, "model") or "model unknown")]
    tokens = _tokens(run)
    facts.append(tokens or "tokens unknown")
    status = _get(run, "status")
    resolution = _get(run, "resolution")
    if status in ("queued", "in_progress", "requires_action", "cancelling"):
        facts.append("not ended")
    else:
        facts.append(duration(_get(run, "duration_s"), resolution))
    first = _get(run, "first_token_s")
    if first is not None:
        facts.append(f"first token {first * 1000:.0f} ms")
    budget = _get(run, "max_prompt_tokens")
    if budget is not None:
        facts.append(f"max_prompt_tokens={int(budget)}")
    truncation = _get(run, "truncation")
    if truncation and truncation != "auto":
        facts.append(f"truncation {truncation}")
    return facts


def run_problem(run: Any) -> str | None:
    """What went wrong, in a line: the error of a failed/cancelled/expired run, the reason of
    an incomplete one."""
    error, code_ = _get(run, "last_error"), _get(run, "error_code")
    status = _get(run, "status")
    if error:
        return f"{code_}: {error}" if code_ else str(error)
    if status == "incomplete":
        reason = _get(run, "incomplete_reason")
        return f"incomplete: {reason}" if reason else "incomplete (reason unknown)"
    if status == "cancelled":
        return "cancelled before it finished"
    if status == "expired":
        return "expired before it finished"
    return None


def _calls(step: Any) -> list[dict[str, Any]]:
    calls = _get(step, "calls")
    if isinstance(calls, list):
        return calls
    labels = _get(step, "tool_calls") or []
    outputs = _get(step, "tool_outputs") or [None] * len(labels)
    found = []
    for label, output in zip(labels, outputs, strict=False):
        name, _, rest = str(label).partition("(")
        found.append({"id": None, "type": "function", "name": name, "arguments": rest[:-1], "output": output})
    return found


def _step_summary(step: Any) -> str:
    kind = _get(step, "type")
    parts = [str(kind), str(_get(step, "status"))]
    names = [c.get("name") or c.get("type") for c in _calls(step)]
    if names:
        parts.append("⚙ " + ", ".join(str(n) for n in names))
    elif kind == "message_creation" and _get(step, "message_id"):
        parts.append(f"wrote {_get(step, 'message_id')}")
    parts.append(duration(_get(step, "duration_s"), _get(step, "resolution")))
    tool_s = _get(step, "tool_s")
    if tool_s is not None:
        parts.append(f"tools {tool_s * 1000:.0f} ms")
    return " · ".join(parts)


def _never_answered(step: Any, call: dict[str, Any]) -> bool:
    return (
        call.get("output") is None
        and call.get("type") == "function"
        and _get(step, "status") != "in_progress"
    )


def _step_html(
    step: Any, code_calls: list[Any], files: FileImages | None, searches: dict[str, SearchCall]
) -> str:
    body = [f'<div style="{LABEL_STYLE}">{code(_get(step, "id"))}</div>']
    codes = {c.id: c for c in code_calls}
    for call in _calls(step):
        found = searches.get(call.get("id") or "") if call.get("type") == "file_search" else None
        if found is not None:  # its queries, then each result with its passage
            body.append(
                '<div class="ak-search-call">'
                + search_call_html(
                    found.results,
                    ranking_options=found.ranking_options,
                    call_id=found.id,
                    queries=found.queries,
                )
                + "</div>"
            )
            continue
        if call.get("type") == "code_interpreter" and call.get("id") in codes:
            c = codes[call["id"]]
            body.append(
                '<div class="ak-code-call">'
                + code_body_html(
                    c.code, c.logs, c.image_file_ids, error=c.last_error, files=files, image_width=360
                )
                + "</div>"
            )
            continue
        body.append(
            tool_call_html(
                call.get("name") or "",
                call.get("arguments") or "",
                call.get("output"),
                kind=call.get("type") or "function",
                call_id=call.get("id"),
                expanded=True,
            )
        )
        if _never_answered(step, call):
            body.append(
                f'<div class="ak-unanswered" style="{MUTED};margin-left:14px">'
                f"never answered: the step is {escape(_get(step, 'status'))}</div>"
            )
    error = _get(step, "last_error")
    if error:
        body.append(f'<div style="{_ERROR_STYLE}">✗ {escape(error)}</div>')
    status = _get(step, "status")
    open_ = _get(step, "type") == "tool_calls" or status != "completed"
    return (
        f"<details class='ak-step' data-status='{escape(status)}'{' open' if open_ else ''} "
        f"style='margin:2px 0'><summary style='cursor:pointer'>{escape(_step_summary(step))}</summary>"
        f"<div style='margin-left:14px'>{''.join(body)}</div></details>"
    )


def run_html(
    run: Any,
    steps: list[Any],
    code_calls: dict[str, list[Any]],
    turns: list[dict[str, Any]],
    files: FileImages | None,
    searches: dict[str, SearchCall] | None = None,
) -> str:
    """One run's block in the transcript (see the module docstring); ``searches``: its
    file_search calls by call id, drawn with their results."""
    status = _get(run, "status")
    head = [badge(status), code(_get(run, "id")), *(escape(f) for f in run_facts(run))]
    parts = [f'<div style="font-size:smaller">{" · ".join(head)}</div>']
    problem = run_problem(run)
    if problem:
        parts.append(f'<div class="ak-run-error" style="{_ERROR_STYLE}">✗ {escape(problem)}</div>')
    for step in steps:
        parts.append(_step_html(step, code_calls.get(_get(step, "id"), []), files, searches or {}))
    for turn in turns:
        parts.append(prompt_html(turn))
    return (
        f'<div class="ak-run" data-status="{escape(status)}" style="border-left:3px dashed {RUN_COLOR};'
        f'padding:2px 8px;margin:4px 0 4px 18px">{"".join(parts)}</div>'
    )


def run_text(
    run: Any, steps: list[Any], turns: list[dict[str, Any]], searches: dict[str, SearchCall] | None = None
) -> list[str]:
    """One run's lines in the text transcript (``searches`` as in :func:`run_html`)."""
    lines = [f"  {'run':>9}: {_get(run, 'id')}  {_get(run, 'status')}  " + "  ".join(run_facts(run))]
    pad = " " * 13
    problem = run_problem(run)
    if problem:
        lines.append(f"{pad}✗ {truncate(problem, 120)}")
    for step in steps:
        calls = _calls(step)
        if not calls:
            continue
        lines.append(f"{pad}step {_step_summary(step)}")
        for call in calls:
            found = (searches or {}).get(call.get("id") or "") if call.get("type") == "file_search" else None
            if found is not None:
                lines.append(f"{pad}  → {search_line(found).strip()}")
                continue
            args = truncate(" ".join(str(call.get("arguments") or "").split()), 80)
            line = f"{pad}  → {call.get('name')}({args})"
            if call.get("output") is not None:
                line += f"  ← {truncate(' '.join(str(call['output']).split()), 80)}"
            elif _never_answered(step, call):
                line += "  ← (never answered)"
            lines.append(line)
        if _get(step, "last_error"):
            lines.append(f"{pad}  ✗ {truncate(str(_get(step, 'last_error')), 100)}")
    for turn in turns:
        lines.extend(prompt_text(turn, indent=pad, width=80)[:1])  # the summary line
    return lines
