"""pandas DataFrames of messages, runs, run steps, threads and assistants.

Every function takes an ``openai.OpenAI`` client — local (:func:`assistant_kit.local_client`)
or any server speaking Assistants v2 — and walks the whole listing with the SDK's cursor
pagination (``client.get_api_list`` + ``SyncCursorPage``, ``limit=100`` per page, ``after=``
the last id), so threads of any length work.

Pages hold plain JSON dicts, not typed models: :class:`_JSONPage` is a ``SyncCursorPage`` whose
items stay as parsed and whose cursor reads ``item["id"]``. Building 100 ``Message`` models per
page costs about twice the request itself (10,000 messages through ``local_client``: ~1.1 s
typed, ~0.4 s as dicts — ``benchmarks/dataframe.py``); a DataFrame needs only a few fields, so
columns are filled straight from the dicts (~25 ms for 10,000 rows).

Each frame is declared once, as a tuple of :class:`Column` (``MESSAGES``, ``RUNS``, ``STEPS``,
``CODE_CALLS``, ``FILE_SEARCH_RESULTS``, ``THREADS``, ``ASSISTANTS``): a column's name, how one
row gives its value, and its kind (which fixes its dtype). Adding a column is one line there;
:func:`_frame` does the rest.

Conventions of every frame:

* timestamps are tz-aware UTC ``datetime64`` (``DatetimeTZDtype``, tz UTC), ``NaT`` when unset.
  The wire carries whole Unix seconds, so that is their resolution;
* durations (``duration_s``) are float seconds, ``NaN`` until the object has ended;
* token counts are nullable ``Int64`` (``<NA>`` while a run is in flight);
* text columns hold the full text — only :func:`display_frame` truncates, and it escapes;
* images and files are references (``image_file_ids``, ``file_path_ids``): file ids, never bytes;
* rows come in the API's order: ``order="asc"`` (oldest first) for messages, runs and steps,
  ``"desc"`` (newest first) for threads and assistants; ``limit`` keeps the first ``limit`` rows.

pandas is imported inside the functions, so importing this module does not load it; without
pandas every function raises a ``SessionError`` naming the notebook extra (:mod:`._extra`),
before any request.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import openai
from openai.pagination import PageInfo, SyncCursorPage

from . import _timings
from ._extra import require
from ._prompts import prompt_rows
from ._timings import ms, seconds_ms
from .citations import SEARCH_CONTENT, call_queries, numbered_calls, queries_text
from .code import code_outputs
from .html import escape, truncate

if TYPE_CHECKING:
    import pandas as pd
    from pandas.io.formats.style import Styler

__all__ = [
    "assistants",
    "code_calls",
    "display_frame",
    "file_search_results",
    "messages",
    "prompts",
    "runs",
    "steps",
    "threads",
    "tool_calls",
    "vector_store_files",
    "vector_stores",
]

PAGE_SIZE = 100  # the API's maximum page size
_BETA = {"OpenAI-Beta": "assistants=v2"}


class _JSONPage(SyncCursorPage[object]):
    """A cursor page whose items are the JSON objects as received (dicts).

    ``data`` is typed ``Any`` so the SDK hands the list over as it is (``List[object]`` would
    still walk every item: ~5 µs each, 10 % of a 10,000-message frame).
    """

    data: Any

    def next_page_info(self) -> PageInfo | None:
        if not self.data:
            return None
        last: Any = self.data[-1]
        return PageInfo(params={"after": last["id"]})


def _pandas() -> Any:
    """pandas, or a ``SessionError`` naming the notebook extra."""
    return require("pandas", "DataFrames of messages, runs, steps, threads and assistants")


def _list(
    client: openai.OpenAI, path: str, *, limit: int | None = None, order: str = "asc", **params: Any
) -> Iterator[dict[str, Any]]:
    """Every object of a list endpoint, page by page, stopping after ``limit`` objects (pandas
    checked first: every listing here ends in a frame, so without it nothing is requested)."""
    _pandas()
    if limit is not None and limit <= 0:
        return
    query = {"limit": PAGE_SIZE if limit is None else min(limit, PAGE_SIZE), "order": order}
    query.update({k: v for k, v in params.items() if v is not None})
    page = client.get_api_list(
        path, page=_JSONPage, model=object, options={"params": query, "headers": _BETA}
    )
    count = 0
    for each in page.iter_pages():
        for item in each.data:
            yield item  # type: ignore[misc]
            count += 1
            if limit is not None and count >= limit:
                return


# -- columns -------------------------------------------------------------------------------


class Column(NamedTuple):
    """One column of a frame: its name, how it is read from one row (a JSON object as
    listed, or what the frame's rows are), and its kind — ``"object"`` (as read), ``"time"``
    (Unix seconds → tz-aware UTC ``datetime64``), ``"ms"`` (the same from Unix milliseconds),
    ``"tokens"`` (nullable ``Int64``), ``"count"`` (``int64``), ``"seconds"`` and ``"float"``
    (``float64``, ``NaN`` when unknown)."""

    name: str
    read: Callable[[Any], Any]
    kind: str = "object"


def _field(key: str, kind: str = "object") -> Column:
    """A column that is the row's own field ``key`` (None when absent)."""
    return Column(key, operator.methodcaller("get", key), kind)


def _series(kind: str, values: list[Any]) -> pd.Series:
    pd = _pandas()

    if kind == "time":
        return pd.Series(pd.to_datetime(pd.array(values, dtype="Int64"), unit="s", utc=True))
    if kind == "ms":
        return pd.Series(pd.to_datetime(pd.array(values, dtype="Int64"), unit="ms", utc=True))
    if kind == "tokens":
        return pd.Series(pd.array(values, dtype="Int64"))
    if kind == "count":
        return pd.Series(values, dtype="int64")
    if kind in ("seconds", "float"):
        return pd.Series(values, dtype="float64")
    return pd.Series(values, dtype="object")


def _frame(columns: Sequence[Column], rows: Iterable[Any]) -> pd.DataFrame:
    """The frame of ``rows`` with ``columns``, in order, each read and typed as it says."""
    pd = _pandas()

    rows = list(rows)
    return pd.DataFrame({c.name: _series(c.kind, [c.read(row) for row in rows]) for c in columns})


def _duration(start: int | None, end: int | None) -> float:
    return float(end - start) if start is not None and end is not None else math.nan


def _content_text(content: list[dict[str, Any]] | None) -> str:
    """A message's content as text; non-text parts as ``[image_file file-…]``-style placeholders."""
    parts = []
    for part in content or ():
        kind = part.get("type")
        if kind == "text":
            parts.append(part["text"]["value"])
        elif kind == "refusal":
            parts.append(part.get("refusal") or "")
        elif kind == "image_file":
            parts.append(f"[image_file {part['image_file'].get('file_id')}]")
        elif kind == "image_url":
            parts.append(f"[image_url {part['image_url'].get('url')}]")
        else:
            parts.append(f"[{kind}]")
    return "\n".join(parts)


def _image_file_ids(content: list[dict[str, Any]] | None) -> list[str]:
    return [p["image_file"].get("file_id") for p in content or () if p.get("type") == "image_file"]


def _citations(content: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """A message's ``file_citation`` annotations: ``{"text", "start_index", "end_index",
    "file_id"}`` each, the indices moved into the ``text`` column (parts joined by newlines)."""
    out: list[dict[str, Any]] = []
    offset = 0
    for i, part in enumerate(content or ()):
        if i:
            offset += 1  # the newline joining the parts
        if part.get("type") != "text":
            offset += len(_content_text([part]))
            continue
        for note in part["text"].get("annotations") or ():
            if note.get("type") != "file_citation":
                continue
            start, end = note.get("start_index"), note.get("end_index")
            moved = isinstance(start, int) and isinstance(end, int)
            out.append(
                {
                    "text": note.get("text") or "",
                    "start_index": start + offset if moved else None,
                    "end_index": end + offset if moved else None,
                    "file_id": (note.get("file_citation") or {}).get("file_id"),
                }
            )
        offset += len(part["text"]["value"])
    return out


def _file_path_ids(content: list[dict[str, Any]] | None) -> list[str]:
    """The file ids of a message's ``file_path`` annotations (files the code_interpreter made)."""
    return [
        (note.get("file_path") or {}).get("file_id")
        for part in content or ()
        if part.get("type") == "text"
        for note in part["text"].get("annotations") or ()
        if note.get("type") == "file_path"
    ]


def _tool_names(tools: list[dict[str, Any]] | None) -> list[str]:
    """Function tools by function name, built-in tools by type."""
    return [t["function"]["name"] if t.get("type") == "function" else t.get("type", "?") for t in tools or ()]


def _first(obj: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if obj.get(key) is not None:
            return obj[key]
    return None


def _error(obj: dict[str, Any]) -> str | None:
    """The message of an object's ``last_error``."""
    return (obj.get("last_error") or {}).get("message")


def _usage(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda obj: (obj.get("usage") or {}).get(key)


# -- the frames -----------------------------------------------------------------------------

MESSAGES = (
    Column("id", operator.itemgetter("id")),
    _field("created_at", "time"),
    _field("role"),
    _field("status"),
    Column("text", lambda m: _content_text(m.get("content"))),
    _field("run_id"),
    _field("assistant_id"),
    Column("attachments", lambda m: len(m.get("attachments") or ()), "count"),
    Column("metadata", lambda m: m.get("metadata") or {}),
    Column("image_file_ids", lambda m: _image_file_ids(m.get("content"))),
    Column("file_path_ids", lambda m: _file_path_ids(m.get("content"))),
    Column("citations", lambda m: _citations(m.get("content"))),
)
MESSAGE_COLUMNS = tuple(c.name for c in MESSAGES)


def messages(
    client: openai.OpenAI,
    thread_id: str,
    *,
    run_id: str | None = None,
    limit: int | None = None,
    order: str = "asc",
) -> pd.DataFrame:
    """A thread's messages, one row each: id, created_at, role, status, text (the full text of
    every content part, an image as ``[image_file file-…]``), run_id, assistant_id, attachments
    (count), metadata (dict), image_file_ids (the ``image_file`` parts: references, not bytes),
    file_path_ids (the files its ``file_path`` annotations point to), citations (its
    ``file_citation`` annotations: ``text`` — the marker —, ``start_index``/``end_index`` in
    ``text``, ``file_id``; :func:`file_search_results` has what they cite).

    ``run_id`` keeps the messages that run created; ``limit`` the first ``limit`` in ``order``.
    """
    items = _list(client, f"/threads/{thread_id}/messages", limit=limit, order=order, run_id=run_id)
    return _messages_frame(items)


def _messages_frame(items: Iterable[dict[str, Any]]) -> pd.DataFrame:
    return _frame(MESSAGES, items)


def _run_end(run: dict[str, Any]) -> int | None:
    end = _first(run, "completed_at", "failed_at", "cancelled_at", "incomplete_at")
    if end is None and run.get("status") == "expired":
        end = run.get("expires_at")
    return end


def _either(*values: int | None) -> int | None:
    return next((v for v in values if v is not None), None)


def _run_end_ms(run: dict[str, Any]) -> int | None:
    """When the run ended, in Unix ms: the engine's milliseconds, else the wire's seconds."""
    end = _run_end(run)
    return _either(ms(run, "ended_at_ms"), None if end is None else end * 1000)


def _run_start_ms(run: dict[str, Any]) -> int | None:
    return _either(ms(run, "started_at_ms"), seconds_ms(run, "started_at"))


def _ms_span(start: int | None, end: int | None) -> float:
    """Seconds from ``start`` to ``end`` (both ms), ``NaN`` when either is unknown."""
    return (end - start) / 1000 if start is not None and end is not None else math.nan


def _resolution(obj: dict[str, Any]) -> str:
    """``"ms"`` when the engine's millisecond timings are known, ``"s"`` for the wire's seconds."""
    return "ms" if ms(obj, "created_at_ms") is not None else "s"


def _truncation(strategy: dict[str, Any] | None) -> str | None:
    """A run's truncation_strategy in a word: ``"auto"`` or ``"last_messages=N"``."""
    if not strategy:
        return None
    if strategy.get("type") == "last_messages":
        return f"last_messages={strategy.get('last_messages')}"
    return strategy.get("type")


def _run_duration(run: dict[str, Any]) -> float:
    start = _either(_run_start_ms(run), ms(run, "created_at_ms"), seconds_ms(run, "created_at"))
    return _ms_span(start, _run_end_ms(run))


RUNS = (
    Column("id", operator.itemgetter("id")),
    Column("created_at", lambda r: _either(ms(r, "created_at_ms"), seconds_ms(r, "created_at")), "ms"),
    Column("started_at", _run_start_ms, "ms"),
    Column("ended_at", _run_end_ms, "ms"),
    _field("status"),
    _field("model"),
    _field("assistant_id"),
    Column("prompt_tokens", _usage("prompt_tokens"), "tokens"),
    Column("completion_tokens", _usage("completion_tokens"), "tokens"),
    Column("total_tokens", _usage("total_tokens"), "tokens"),
    Column("duration_s", _run_duration, "seconds"),
    Column("last_error", _error),
    Column("tools", lambda r: _tool_names(r.get("tools"))),
    _field("thread_id"),
    Column("first_token_at", lambda r: ms(r, "first_token_at_ms"), "ms"),
    Column("first_token_s", lambda r: _ms_span(_run_start_ms(r), ms(r, "first_token_at_ms")), "seconds"),
    Column("incomplete_reason", lambda r: (r.get("incomplete_details") or {}).get("reason")),
    Column("error_code", lambda r: (r.get("last_error") or {}).get("code")),
    Column("resolution", _resolution),
    _field("max_prompt_tokens", "tokens"),
    Column("truncation", lambda r: _truncation(r.get("truncation_strategy"))),
)
RUN_COLUMNS = tuple(c.name for c in RUNS)


def runs(
    client: openai.OpenAI,
    thread_id: str | None = None,
    *,
    assistant_id: str | None = None,
    status: str | Sequence[str] | None = None,
    model: str | None = None,
    since: Any = None,
    until: Any = None,
    limit: int | None = None,
    order: str = "asc",
) -> pd.DataFrame:
    """Runs, one row each: id, created_at, started_at, ended_at (completed/failed/cancelled/
    incomplete, or the expiry time of an expired run), status, model, assistant_id, prompt/
    completion/total tokens, duration_s (ended_at - started_at), last_error (its message), tools
    (names), thread_id, first_token_at and first_token_s (after the start), incomplete_reason,
    error_code, max_prompt_tokens and truncation (what shaped its context), resolution
    (``"ms"``: the engine's millisecond timings; ``"s"``: the wire's whole seconds — older
    runs, imported threads, other servers).

    ``runs(client, thread_id)``: one thread's runs. Without ``thread_id``: every run of the
    store (``GET /runs``, an assistant_kit extension), filtered by ``assistant_id``, ``status``
    (one or several), ``model``, and creation time ``since``/``until`` (a datetime or
    Timestamp, Unix seconds, an ISO string, or a ``timedelta`` meaning "that long ago"). Which
    runs failed this week, and why::

        tables.runs(client, status="failed", since=timedelta(days=7))[["thread_id", "model", "last_error"]]
    """
    filters = _filters(assistant_id=assistant_id, status=status, model=model, since=since, until=until)
    try:
        items = list(_list(client, "/runs", limit=limit, order=order, thread_id=thread_id, **filters))
    except openai.NotFoundError as exc:
        if _names_a_filter(exc):
            raise
        if thread_id is None:
            raise _timings.not_found("GET /runs (runs across threads)", exc) from None
        items = _thread_runs(client, thread_id, limit=limit, order=order)
        items = [r for r in items if _keep(r, assistant_id, status, model, since, until)]
    return _runs_frame(items)


def _names_a_filter(exc: openai.NotFoundError) -> bool:
    """Whether a 404 of ``GET /runs``/``GET /runs/steps`` says its ``thread_id``/``run_id``
    names nothing (raised as is, as the per-thread listings raise it) rather than that the
    server lacks the route (then the per-thread listings are the fallback)."""
    body = exc.body if isinstance(exc.body, dict) else {}
    return body.get("param") in ("thread_id", "run_id")


def _thread_runs(
    client: openai.OpenAI, thread_id: str, *, limit: int | None = None, order: str = "asc"
) -> list[dict[str, Any]]:
    """A thread's runs as listed, each with the ``timings`` of its inspection when the server
    has that route (one request per run)."""
    items = list(_list(client, f"/threads/{thread_id}/runs", limit=limit, order=order))
    _timings.with_timings(items, _timings.inspections(client, thread_id, [r["id"] for r in items]))
    return items


def _unix(value: Any) -> int | None:
    """``since``/``until`` as Unix seconds (a timedelta counts back from now)."""
    import datetime as dt

    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        return int((dt.datetime.now(dt.timezone.utc) - value).timestamp())
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return int(value.timestamp())
    raise TypeError(f"since/until: a datetime, Unix seconds, an ISO string or a timedelta, not {value!r}")


def _filters(*, status: Any = None, since: Any = None, until: Any = None, **exact: Any) -> dict[str, Any]:
    statuses = [status] if isinstance(status, str) else list(status or ())
    return {
        **{k: v for k, v in exact.items() if v is not None},
        "status": ",".join(statuses) or None,
        "created_after": _unix(since),
        "created_before": _unix(until),
    }


def _keep(obj: dict[str, Any], assistant_id: Any, status: Any, model: Any, since: Any, until: Any) -> bool:
    """The filters of ``GET /runs`` applied here (a server without that route)."""
    statuses = [status] if isinstance(status, str) else list(status or ())
    created = obj.get("created_at") or 0
    return (
        (assistant_id is None or obj.get("assistant_id") == assistant_id)
        and (not statuses or obj.get("status") in statuses)
        and (model is None or obj.get("model") == model)
        and (since is None or created >= (_unix(since) or 0))
        and (until is None or created < (_unix(until) or 0))
    )


def _runs_frame(items: list[dict[str, Any]]) -> pd.DataFrame:
    return _frame(RUNS, items)


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


CODE_CALLS = (
    Column("id", lambda r: r.call.get("id")),
    Column("step_id", lambda r: r.step["id"]),
    Column("run_id", lambda r: r.step.get("run_id")),
    Column("status", lambda r: r.step.get("status")),
    # The times of its step, as in TOOL_CALLS (ms where the engine kept them, else seconds).
    Column("created_at", lambda r: _step_start_ms(r.step), "ms"),
    Column("ended_at", lambda r: _step_end_ms(r.step), "ms"),
    Column("duration_s", lambda r: _ms_span(_step_start_ms(r.step), _step_end_ms(r.step)), "seconds"),
    Column("tool_s", lambda r: _tool_s(r.step), "seconds"),
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
    Column("created_at", lambda r: _step_start_ms(r.step), "ms"),
    Column("ended_at", lambda r: _step_end_ms(r.step), "ms"),
    Column("duration_s", lambda r: _ms_span(_step_start_ms(r.step), _step_end_ms(r.step)), "seconds"),
    Column("tool_s", lambda r: _tool_s(r.step), "seconds"),
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


PROMPTS = (
    _field("turn", "tokens"),
    _field("index", "tokens"),
    _field("role"),
    _field("content"),
    _field("tool_call_id"),
    _field("tokens", "tokens"),
    _field("tokens_source"),
    _field("step_ids"),
    _field("model"),
    Column("created_at", lambda r: r.get("created_at_ms"), "ms"),
    _field("truncated"),
)


def prompts(client: openai.OpenAI, thread_id: str, run_id: str) -> pd.DataFrame:
    """What each model turn of a run was sent (the engine's record: ``GET …/inspection``,
    an assistant_kit extension), one row per message of each request: turn (0-based), index
    (in the request), role, content (text; a tool round's calls as ``→ name(arguments)`` lines),
    tool_call_id, tokens, tokens_source, step_ids (the steps that turn produced), model,
    created_at, truncated (the record was cut to its size cap). Empty when the engine records
    no prompts (``frame.attrs["note"]`` says why).

    ``tokens`` is an estimate — the request records text, not token counts — made the way the
    engine fits ``max_prompt_tokens``: ~4 characters per token plus 4 per message
    (``tokens_source`` says so); the turn's real prompt total is its step's usage.
    """
    _pandas()
    found = _timings.run_inspection(client, thread_id, run_id)
    if found is None:
        raise _timings.not_found(f"GET /threads/{thread_id}/runs/{run_id}/inspection")
    frame = _frame(PROMPTS, prompt_rows(found))
    if not found.get("record_prompts", True):
        frame.attrs["note"] = "prompt recording is off on this engine (record_prompts)"
    return frame


class _SearchResult(NamedTuple):
    """A row of :func:`file_search_results`: one result of one file_search call."""

    step: dict[str, Any]
    call: dict[str, Any]
    call_index: int  # the run's call count (the T of a citation marker ``【T:R†…】``)
    rank: int  # the result's index in its call (the R)
    result: dict[str, Any]


def _ranking(key: str) -> Callable[[_SearchResult], Any]:
    return lambda r: ((r.call.get("file_search") or {}).get("ranking_options") or {}).get(key)


def _chunk(result: dict[str, Any]) -> str | None:
    content = result.get("content")
    return None if content is None else "".join(part.get("text") or "" for part in content)


FILE_SEARCH_RESULTS = (
    Column("run_id", lambda r: r.step.get("run_id")),
    Column("step_id", lambda r: r.step["id"]),
    Column("call_id", lambda r: r.call.get("id")),
    Column("queries", lambda r: (r.call.get("file_search") or {}).get("queries") or []),
    Column("call_index", operator.attrgetter("call_index"), "count"),
    Column("rank", operator.attrgetter("rank"), "count"),
    Column("marker", lambda r: f"【{r.call_index}:{r.rank}】"),
    Column("file_id", lambda r: r.result.get("file_id")),
    Column("file_name", lambda r: r.result.get("file_name")),
    Column("score", lambda r: r.result.get("score"), "float"),
    Column("content", lambda r: _chunk(r.result)),
    Column("ranker", _ranking("ranker")),
    Column("score_threshold", _ranking("score_threshold"), "float"),
    Column("created_at", lambda r: r.step.get("created_at"), "time"),
)
FILE_SEARCH_RESULT_COLUMNS = tuple(c.name for c in FILE_SEARCH_RESULTS)


def file_search_results(client: openai.OpenAI, thread_id: str, run_id: str | None = None) -> pd.DataFrame:
    """Every result of the ``file_search`` calls of one run, or of every run of the thread,
    one row each, in run order: run_id, step_id, call_id, queries (what the call searched for:
    an assistant_kit extension of the wire's call, ``[]`` from a server that does not send it),
    call_index (the run's T-th
    file_search call), rank (the result's index R in that call, best first), marker
    (``【T:R】``, what a citation of it starts with), file_id, file_name, score (0-1), content
    (the chunk's text, the steps being listed with ``include[]=…file_search.results[*].content``;
    None where the server left it out), ranker and score_threshold (the call's
    ``ranking_options``), created_at (its step's). A call that found nothing has no row
    (:func:`steps` lists it, ``"0 results"``)."""
    return _search_frame(_step_items(client, thread_id, run_id))


def _search_rows(items: Iterable[dict[str, Any]]) -> Iterator[_SearchResult]:
    for count, step, call in numbered_calls(items):
        for rank, result in enumerate((call.get("file_search") or {}).get("results") or ()):
            yield _SearchResult(step, call, count, rank, result)


def _search_frame(items: Iterable[dict[str, Any]]) -> pd.DataFrame:
    return _frame(FILE_SEARCH_RESULTS, _search_rows(items))


THREADS = (
    Column("id", operator.itemgetter("id")),
    _field("created_at", "time"),
    Column("metadata", lambda t: t.get("metadata") or {}),
)


def threads(client: openai.OpenAI, *, limit: int | None = None, order: str = "desc") -> pd.DataFrame:
    """Threads, newest first: id, created_at, metadata. Uses ``GET /threads``, an assistant_kit
    extension (the hosted API had no thread listing)."""
    return _frame(THREADS, _list(client, "/threads", limit=limit, order=order))


ASSISTANTS = (
    Column("id", operator.itemgetter("id")),
    _field("created_at", "time"),
    _field("name"),
    _field("model"),
    Column("tools", lambda a: _tool_names(a.get("tools"))),
    _field("instructions"),
    Column("metadata", lambda a: a.get("metadata") or {}),
)


def assistants(client: openai.OpenAI, *, limit: int | None = None, order: str = "desc") -> pd.DataFrame:
    """Assistants, newest first: id, created_at, name, model, tools (names), instructions (full
    text), metadata."""
    return _frame(ASSISTANTS, _list(client, "/assistants", limit=limit, order=order))


def _counts(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda s: (s.get("file_counts") or {}).get(key)


def _static(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda f: ((f.get("chunking_strategy") or {}).get("static") or {}).get(key)


def _file_error(f: dict[str, Any]) -> str | None:
    error = f.get("last_error") or {}
    return f"{error['code']}: {error['message']}" if error else None


VECTOR_STORES = (
    Column("id", operator.itemgetter("id")),
    _field("created_at", "time"),
    _field("name"),
    _field("status"),
    Column("files_completed", _counts("completed"), "tokens"),
    Column("files_in_progress", _counts("in_progress"), "tokens"),
    Column("files_failed", _counts("failed"), "tokens"),
    Column("files_total", _counts("total"), "tokens"),
    _field("usage_bytes", "tokens"),
    _field("last_active_at", "time"),
    _field("expires_at", "time"),
    Column("metadata", lambda s: s.get("metadata") or {}),
)

VECTOR_STORE_FILES = (
    Column("id", operator.itemgetter("id")),
    Column("filename", operator.itemgetter("filename")),  # from the Files API, None if deleted
    _field("status"),
    _field("created_at", "time"),
    _field("usage_bytes", "tokens"),
    Column("chunk_tokens", _static("max_chunk_size_tokens"), "tokens"),
    Column("overlap_tokens", _static("chunk_overlap_tokens"), "tokens"),
    Column("attributes", lambda f: f.get("attributes") or {}),
    Column("last_error", _file_error),
)


def vector_stores(client: openai.OpenAI, *, limit: int | None = None, order: str = "desc") -> pd.DataFrame:
    """Vector stores, newest first: id, created_at, name, status, file counts (``files_completed``
    …), usage_bytes, last_active_at, expires_at, metadata."""
    return _frame(VECTOR_STORES, _list(client, "/vector_stores", limit=limit, order=order))


def vector_store_files(
    client: openai.OpenAI, vector_store_id: str, *, status: str | None = None, order: str = "asc"
) -> pd.DataFrame:
    """A vector store's files in the order they were attached: id, filename, status,
    created_at, usage_bytes, chunk_tokens / overlap_tokens, attributes, last_error
    (``code: message``). ``status``: only files in that status."""

    def named(f: dict[str, Any]) -> dict[str, Any]:
        try:
            return {**f, "filename": client.files.retrieve(f["id"]).filename}
        except openai.NotFoundError:
            return {**f, "filename": None}

    files = _list(client, f"/vector_stores/{vector_store_id}/files", order=order, filter=status)
    return _frame(VECTOR_STORE_FILES, map(named, files))


# -- display --------------------------------------------------------------------------------


def cell_text(value: Any) -> str:
    """A cell as plain text: "" for missing values, lists comma-joined, dicts as JSON, UTC
    timestamps as ``2025-01-31 12:00:00Z``."""
    pd = _pandas()

    if isinstance(value, (list, tuple)):
        return ", ".join("" if v is None else str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False) if value else ""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    if isinstance(value, pd.Timestamp) and value.tz is not None and value.utcoffset().total_seconds() == 0:
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    return str(value)


class HTMLTable:
    """The fallback of :func:`display_frame` where jinja2 (needed by ``Styler``) is missing."""

    def __init__(self, html: str):
        self.html = html

    def to_html(self) -> str:
        return self.html

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return f"<HTMLTable {len(self.html)} chars>"


def display_frame(df: pd.DataFrame, *, limit: int = 200, max_rows: int | None = 200) -> Styler | HTMLTable:
    """``df`` for notebook display: every cell turned to text (:func:`cell_text`), cut to
    ``limit`` characters with a ``… (+N chars)`` marker, then HTML-escaped — index and column
    labels too — so model output in a table can never inject markup. Returns a pandas
    ``Styler`` (or, without jinja2, an :class:`HTMLTable`); at most ``max_rows`` rows are shown,
    with a caption saying how many were left out. The frame itself is not changed.
    """
    total = len(df)
    shown = df if max_rows is None or total <= max_rows else df.head(max_rows)
    caption = f"first {len(shown):,} of {total:,} rows" if len(shown) < total else None

    def fmt(value: Any) -> str:
        return escape(truncate(cell_text(value), limit))

    try:
        styler = shown.style
    except (ImportError, AttributeError):  # Styler needs jinja2 (pandas raises either)
        text = shown.map(lambda v: truncate(cell_text(v), limit))
        text.index = [truncate(cell_text(v), limit) for v in shown.index]
        text.columns = [truncate(cell_text(v), limit) for v in shown.columns]
        html = text.to_html(escape=True, na_rep="")
        if caption:
            html = f"<div><small>{escape(caption)}</small>{html}</div>"
        return HTMLTable(html)
    styler = styler.format(fmt).format_index(fmt, axis=0).format_index(fmt, axis=1)
    # Table styles, not set_properties: those work with a non-unique index or columns too.
    styler = styler.set_table_styles(
        [{"selector": "td", "props": "text-align: left; white-space: pre-wrap; vertical-align: top"}]
    )
    if caption:
        styler = styler.set_caption(escape(caption))
    return styler
