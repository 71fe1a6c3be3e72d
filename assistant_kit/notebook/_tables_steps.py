"""The tables of run steps and the tool calls in them: steps, code_interpreter calls, and
tool calls of one thread or of the whole store.

Steps are listed two ways: as the wire lists them, per run (:func:`_step_items`: what the code
calls and file_search results need), or with the engine's ms ``timings``
(:func:`_timed_step_items`: ``GET /runs/steps``, an assistant_kit extension, else the wire's
listing plus each run's inspection). A tool call is read three ways here: a label
(``name(arguments)``: the steps' ``tool_calls``), an output (their ``tool_outputs``), and its
fields (:func:`_call_fields`: the steps' ``calls`` and the rows of :func:`tool_calls`).
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import openai

from . import _timings
from ._tables_base import (
    Column,
    _either,
    _error,
    _field,
    _first,
    _frame,
    _list,
    _ms_span,
    _names_a_filter,
    _resolution,
    _usage,
)
from ._tables_runs import _filters, _keep
from ._timings import ms, seconds_ms
from .citations import SEARCH_CONTENT, call_queries, queries_text
from .code import code_outputs

if TYPE_CHECKING:
    import pandas as pd


def _call_label(call: dict[str, Any]) -> str:
    kind = call.get("type")
    if kind == "function":
        fn = call.get("function") or {}
        return f"{fn.get('name')}({fn.get('arguments') or ''})"
    if kind == "code_interpreter":
        return f"code_interpreter({(call.get('code_interpreter') or {}).get('input') or ''})"
    if kind == "file_search":
        return f"file_search{queries_text(call_queries(call.get('file_search')))}"
    return str(kind)


def _call_output(call: dict[str, Any]) -> str | None:
    kind = call.get("type")
    if kind == "function":
        return (call.get("function") or {}).get("output")
    if kind == "code_interpreter":
        return code_outputs((call.get("code_interpreter") or {}).get("outputs"))[0]
    if kind == "file_search":
        results = (call.get("file_search") or {}).get("results")
        if results is None:
            return None
        found = [f"{r.get('file_name') or r.get('file_id')} ({_score_text(r.get('score'))})" for r in results]
        return f"{len(results)} result{'s' if len(results) != 1 else ''}" + (
            ": " + ", ".join(found) if found else ""
        )
    return None


def _score_text(score: Any) -> str:
    return f"{score:.3f}" if isinstance(score, (int, float)) else "?"


def _call_images(calls: list[dict[str, Any]]) -> list[str]:
    ci = [c.get("code_interpreter") or {} for c in calls if c.get("type") == "code_interpreter"]
    return [file_id for c in ci for file_id in code_outputs(c.get("outputs"))[1]]


def _step_items(
    client: openai.OpenAI, thread_id: str, run_id: str | None = None, *, run_ids: list[str] | None = None
) -> Iterator[dict[str, Any]]:
    """The steps of one run, or of every run of the thread in run order (``run_ids``: those
    runs, already listed), as the wire lists them (no timings)."""
    if run_ids is None:
        run_ids = [run_id] if run_id else [r["id"] for r in _list(client, f"/threads/{thread_id}/runs")]
    for rid in run_ids:
        yield from _list(client, f"/threads/{thread_id}/runs/{rid}/steps", include=[SEARCH_CONTENT])


def _timed_step_items(
    client: openai.OpenAI, thread_id: str, run_id: str | None = None, **filters: Any
) -> list[dict[str, Any]]:
    """Steps with their ``timings``: ``GET /runs/steps`` (one paged listing), or — where the
    server lacks it — the wire's listing plus each run's inspection (one request per run)."""
    try:
        return list(
            _list(
                client,
                "/runs/steps",
                thread_id=thread_id,
                run_id=run_id,
                include=[SEARCH_CONTENT],
                **filters,
            )
        )
    except openai.NotFoundError as exc:
        if _names_a_filter(exc):
            raise
    run_ids = [run_id] if run_id else [r["id"] for r in _list(client, f"/threads/{thread_id}/runs")]
    items = list(_step_items(client, thread_id, run_ids=run_ids))
    found = _timings.inspections(client, thread_id, run_ids)
    _timings.with_step_timings(items, _timings.step_timings(found))
    if filters.get("type"):
        items = [s for s in items if s.get("type") == filters["type"]]
    return items


def _step_end(step: dict[str, Any]) -> int | None:
    return _first(step, "completed_at", "failed_at", "cancelled_at", "expired_at")


def _step_end_ms(step: dict[str, Any]) -> int | None:
    end = _step_end(step)
    return _either(ms(step, "ended_at_ms"), None if end is None else end * 1000)


def _step_start_ms(step: dict[str, Any]) -> int | None:
    return _either(ms(step, "created_at_ms"), seconds_ms(step, "created_at"))


def _tool_s(step: dict[str, Any]) -> float:
    value = ms(step, "tool_ms")
    return value / 1000 if value is not None else math.nan


def _details(step: dict[str, Any]) -> dict[str, Any]:
    return step.get("step_details") or {}


def _calls(step: dict[str, Any]) -> list[dict[str, Any]]:
    return _details(step).get("tool_calls") or []


STEPS = (
    Column("id", operator.itemgetter("id")),
    _field("run_id"),
    _field("type"),
    _field("status"),
    Column("created_at", _step_start_ms, "ms"),
    _field("completed_at", "time"),
    Column("ended_at", _step_end_ms, "ms"),
    Column("duration_s", lambda s: _ms_span(_step_start_ms(s), _step_end_ms(s)), "seconds"),
    Column("tool_calls", lambda s: [_call_label(c) for c in _calls(s)]),
    Column("tool_outputs", lambda s: [_call_output(c) for c in _calls(s)]),
    Column("message_id", lambda s: (_details(s).get("message_creation") or {}).get("message_id")),
    Column("tokens", _usage("total_tokens"), "tokens"),
    Column("image_file_ids", lambda s: _call_images(_calls(s))),
    Column("last_error", _error),
    _field("thread_id"),
    Column("first_token_at", lambda s: ms(s, "first_token_at_ms"), "ms"),
    Column("tool_s", _tool_s, "seconds"),
    Column("resolution", _resolution),
    Column("calls", lambda s: [_call_fields(c) for c in _calls(s)]),
)
STEP_COLUMNS = tuple(c.name for c in STEPS)


def _call_fields(call: dict[str, Any]) -> dict[str, Any]:
    """One tool call as ``{id, type, name, arguments, output}`` (a code call's code as its
    arguments and its logs as its output)."""
    kind = call.get("type")
    if kind == "function":
        fn = call.get("function") or {}
        return {
            "id": call.get("id"),
            "type": kind,
            "name": fn.get("name"),
            "arguments": fn.get("arguments") or "",
            "output": fn.get("output"),
        }
    if kind == "code_interpreter":
        ci = call.get("code_interpreter") or {}
        return {
            "id": call.get("id"),
            "type": kind,
            "name": kind,
            "arguments": ci.get("input") or "",
            "output": code_outputs(ci.get("outputs"))[0],
        }
    body = call.get(kind or "") or {}
    return {
        "id": call.get("id"),
        "type": kind,
        "name": kind,
        "arguments": "",
        "output": json.dumps(body, ensure_ascii=False) if body else None,
    }


def steps(client: openai.OpenAI, thread_id: str, run_id: str | None = None) -> pd.DataFrame:
    """Run steps of one run, or of every run of the thread (in run order) when ``run_id`` is None:
    id, run_id, type, status, created_at, completed_at, ended_at (completed/failed/cancelled/
    expired), duration_s (ended_at - created_at), tool_calls (``"name(arguments)"`` for function
    calls, ``"code_interpreter(<code>)"``, ``'file_search("query", …)'`` (the queries when the
    server records them), the tool type for other built-in tools), tool_outputs
    (one per call: a function's output, None until submitted; a code call's logs; a file_search
    call's ``"N results: file (score), …"``), message_id
    (message_creation steps), tokens (the step's total tokens), image_file_ids (the images its
    code calls made: references, not bytes), last_error (its message, when the step failed),
    thread_id, first_token_at, tool_s (seconds spent in built-in tools), resolution (``"ms"`` or
    ``"s"``, as in :func:`runs`), calls (each call as a dict: id, type, name, arguments, output)."""
    return _steps_frame(_timed_step_items(client, thread_id, run_id))


def _steps_frame(items: Iterable[dict[str, Any]]) -> pd.DataFrame:
    return _frame(STEPS, items)


class _CodeCall(NamedTuple):
    """A row of :func:`code_calls`: one code_interpreter call and the step it is in."""

    step: dict[str, Any]
    call: dict[str, Any]
    logs: str | None
    images: list[str]


# The times of a call's step (ms where the engine kept them, else the wire's seconds), in
# CODE_CALLS and TOOL_CALLS alike.
CALL_TIMES = (
    Column("created_at", lambda r: _step_start_ms(r.step), "ms"),
    Column("ended_at", lambda r: _step_end_ms(r.step), "ms"),
    Column("duration_s", lambda r: _ms_span(_step_start_ms(r.step), _step_end_ms(r.step)), "seconds"),
    Column("tool_s", lambda r: _tool_s(r.step), "seconds"),
)

CODE_CALLS = (
    Column("id", lambda r: r.call.get("id")),
    Column("step_id", lambda r: r.step["id"]),
    Column("run_id", lambda r: r.step.get("run_id")),
    Column("status", lambda r: r.step.get("status")),
    *CALL_TIMES,
    Column("code", lambda r: (r.call.get("code_interpreter") or {}).get("input") or ""),
    Column("logs", operator.attrgetter("logs")),
    Column("image_file_ids", operator.attrgetter("images")),
    Column("last_error", lambda r: _error(r.step)),
    Column("resolution", lambda r: _resolution(r.step)),
)
CODE_CALL_COLUMNS = tuple(c.name for c in CODE_CALLS)


def code_calls(client: openai.OpenAI, thread_id: str, run_id: str | None = None) -> pd.DataFrame:
    """The ``code_interpreter`` calls of one run or of every run of the thread, one row each:
    id (the call's), step_id, run_id, status (its step's), created_at, ended_at, duration_s,
    tool_s (its step's, as in :func:`tool_calls`: milliseconds where the engine kept them; a
    step with several code calls counts their time together in ``tool_s``), code, logs (None
    when it printed nothing), image_file_ids (references, not bytes), last_error (when its step
    failed: a timeout, the memory limit …), resolution (``"ms"``/``"s"``, as in :func:`runs`;
    unknown times — an imported thread — are ``NaT``/``NaN``, never 0)."""
    return _code_calls_frame(_timed_step_items(client, thread_id, run_id, type="tool_calls"))


def _code_call_rows(items: Iterable[dict[str, Any]]) -> Iterator[_CodeCall]:
    for s in items:
        for call in _calls(s):
            if call.get("type") == "code_interpreter":
                logs, images = code_outputs((call.get("code_interpreter") or {}).get("outputs"))
                yield _CodeCall(s, call, logs, images)


def _code_calls_frame(items: Iterable[dict[str, Any]]) -> pd.DataFrame:
    return _frame(CODE_CALLS, _code_call_rows(items))


class _ToolCall(NamedTuple):
    """A row of :func:`tool_calls`: one call and the step it is in."""

    step: dict[str, Any]
    call: dict[str, Any]


TOOL_CALLS = (
    Column("id", lambda r: r.call["id"]),
    Column("type", lambda r: r.call["type"]),
    Column("name", lambda r: r.call["name"]),
    Column("arguments", lambda r: r.call["arguments"]),
    Column("output", lambda r: r.call["output"]),
    Column("step_id", lambda r: r.step["id"]),
    Column("run_id", lambda r: r.step.get("run_id")),
    Column("thread_id", lambda r: r.step.get("thread_id")),
    Column("assistant_id", lambda r: r.step.get("assistant_id")),
    Column("status", lambda r: r.step.get("status")),
    *CALL_TIMES,
    Column("last_error", lambda r: _error(r.step)),
    Column("resolution", lambda r: _resolution(r.step)),
)
TOOL_CALL_COLUMNS = tuple(c.name for c in TOOL_CALLS)


def tool_calls(
    client: openai.OpenAI,
    thread_id: str | None = None,
    *,
    run_id: str | None = None,
    assistant_id: str | None = None,
    status: str | Sequence[str] | None = None,
    model: str | None = None,
    since: Any = None,
    until: Any = None,
    limit: int | None = None,
    order: str = "asc",
) -> pd.DataFrame:
    """Tool calls, one row each: id, type, name (the function's, or the built-in tool's type),
    arguments (a code call's code), output (None until submitted; a code call's logs), step_id,
    run_id, thread_id, assistant_id, status (its step's: a cancelled round's calls were never
    answered), created_at, ended_at, duration_s, tool_s (time in built-in tools), last_error,
    resolution (``"ms"``/``"s"``, as in :func:`runs`).

    Without ``thread_id``: every tool call of the store (``GET /runs/steps?type=tool_calls``,
    an assistant_kit extension) with the filters of :func:`runs` (``status`` is the step's);
    ``limit`` counts steps, not calls.
    """
    filters = _filters(assistant_id=assistant_id, status=status, model=model, since=since, until=until)
    try:
        items = list(
            _list(
                client,
                "/runs/steps",
                limit=limit,
                order=order,
                thread_id=thread_id,
                run_id=run_id,
                type="tool_calls",
                **filters,
            )
        )
    except openai.NotFoundError as exc:
        if _names_a_filter(exc):
            raise
        if thread_id is None:
            raise _timings.not_found("GET /runs/steps (steps across threads)", exc) from None
        items = _timed_step_items(client, thread_id, run_id, type="tool_calls")
        items = [s for s in items if _keep(s, assistant_id, status, None, since, until)][:limit]
    rows = (_ToolCall(s, _call_fields(c)) for s in items for c in _calls(s))
    return _frame(TOOL_CALLS, rows)
