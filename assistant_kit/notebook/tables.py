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

from ._extra import require
from .citations import SEARCH_CONTENT, call_queries, queries_text
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
    "runs",
    "steps",
    "threads",
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
    (Unix seconds → tz-aware UTC ``datetime64``), ``"tokens"`` (nullable ``Int64``),
    ``"count"`` (``int64``), ``"seconds"`` and ``"float"`` (``float64``, ``NaN`` when unknown)."""

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
    end = _first(run, "completed_at", "failed_at", "cancelled_at")
    if end is None and run.get("status") == "expired":
        end = run.get("expires_at")
    return end


RUNS = (
    Column("id", operator.itemgetter("id")),
    _field("created_at", "time"),
    _field("started_at", "time"),
    Column("ended_at", _run_end, "time"),
    _field("status"),
    _field("model"),
    _field("assistant_id"),
    Column("prompt_tokens", _usage("prompt_tokens"), "tokens"),
    Column("completion_tokens", _usage("completion_tokens"), "tokens"),
    Column("total_tokens", _usage("total_tokens"), "tokens"),
    Column("duration_s", lambda r: _duration(_first(r, "started_at", "created_at"), _run_end(r)), "seconds"),
    Column("last_error", _error),
    Column("tools", lambda r: _tool_names(r.get("tools"))),
)
RUN_COLUMNS = tuple(c.name for c in RUNS)


def runs(
    client: openai.OpenAI, thread_id: str, *, limit: int | None = None, order: str = "asc"
) -> pd.DataFrame:
    """A thread's runs: id, created_at, started_at, ended_at (completed/failed/cancelled, or the
    expiry time of an expired run), status, model, assistant_id, prompt/completion/total tokens,
    duration_s (ended_at - started_at), last_error (its message), tools (names)."""
    return _runs_frame(list(_list(client, f"/threads/{thread_id}/runs", limit=limit, order=order)))


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


def _step_items(client: openai.OpenAI, thread_id: str, run_id: str | None = None) -> Iterator[dict[str, Any]]:
    run_ids = [run_id] if run_id else [r["id"] for r in _list(client, f"/threads/{thread_id}/runs")]
    for rid in run_ids:
        yield from _list(client, f"/threads/{thread_id}/runs/{rid}/steps", include=[SEARCH_CONTENT])


def _step_end(step: dict[str, Any]) -> int | None:
    return _first(step, "completed_at", "failed_at", "cancelled_at", "expired_at")


def _details(step: dict[str, Any]) -> dict[str, Any]:
    return step.get("step_details") or {}


def _calls(step: dict[str, Any]) -> list[dict[str, Any]]:
    return _details(step).get("tool_calls") or []


STEPS = (
    Column("id", operator.itemgetter("id")),
    _field("run_id"),
    _field("type"),
    _field("status"),
    _field("created_at", "time"),
    _field("completed_at", "time"),
    Column("ended_at", _step_end, "time"),
    Column("duration_s", lambda s: _duration(s.get("created_at"), _step_end(s)), "seconds"),
    Column("tool_calls", lambda s: [_call_label(c) for c in _calls(s)]),
    Column("tool_outputs", lambda s: [_call_output(c) for c in _calls(s)]),
    Column("message_id", lambda s: (_details(s).get("message_creation") or {}).get("message_id")),
    Column("tokens", _usage("total_tokens"), "tokens"),
    Column("image_file_ids", lambda s: _call_images(_calls(s))),
    Column("last_error", _error),
)
STEP_COLUMNS = tuple(c.name for c in STEPS)


def steps(client: openai.OpenAI, thread_id: str, run_id: str | None = None) -> pd.DataFrame:
    """Run steps of one run, or of every run of the thread (in run order) when ``run_id`` is None:
    id, run_id, type, status, created_at, completed_at, ended_at (completed/failed/cancelled/
    expired), duration_s (ended_at - created_at), tool_calls (``"name(arguments)"`` for function
    calls, ``"code_interpreter(<code>)"``, ``'file_search("query", …)'`` (the queries when the
    server records them), the tool type for other built-in tools), tool_outputs
    (one per call: a function's output, None until submitted; a code call's logs; a file_search
    call's ``"N results: file (score), …"``), message_id
    (message_creation steps), tokens (the step's total tokens), image_file_ids (the images its
    code calls made: references, not bytes), last_error (its message, when the step failed)."""
    return _steps_frame(_step_items(client, thread_id, run_id))


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
    Column("created_at", lambda r: r.step.get("created_at"), "time"),
    Column("ended_at", lambda r: _step_end(r.step), "time"),
    Column("code", lambda r: (r.call.get("code_interpreter") or {}).get("input") or ""),
    Column("logs", operator.attrgetter("logs")),
    Column("image_file_ids", operator.attrgetter("images")),
    Column("last_error", lambda r: _error(r.step)),
)
CODE_CALL_COLUMNS = tuple(c.name for c in CODE_CALLS)


def code_calls(client: openai.OpenAI, thread_id: str, run_id: str | None = None) -> pd.DataFrame:
    """The ``code_interpreter`` calls of one run or of every run of the thread, one row each:
    id (the call's), step_id, run_id, status (its step's), created_at, ended_at (its step's),
    code, logs (None when it printed nothing), image_file_ids (references, not bytes),
    last_error (when its step failed: a timeout, the memory limit …)."""
    return _code_calls_frame(_step_items(client, thread_id, run_id))


def _code_call_rows(items: Iterable[dict[str, Any]]) -> Iterator[_CodeCall]:
    for s in items:
        for call in _calls(s):
            if call.get("type") == "code_interpreter":
                logs, images = code_outputs((call.get("code_interpreter") or {}).get("outputs"))
                yield _CodeCall(s, call, logs, images)


def _code_calls_frame(items: Iterable[dict[str, Any]]) -> pd.DataFrame:
    return _frame(CODE_CALLS, _code_call_rows(items))


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
    by_run: dict[Any, list[tuple[int, dict[str, Any]]]] = {}
    for n, s in enumerate(items):
        by_run.setdefault(s.get("run_id"), []).append((n, s))
    for run_steps in by_run.values():
        run_steps.sort(key=lambda pair: (pair[1].get("created_at") or 0, pair[0]))
        count = 0
        for _, s in run_steps:
            for call in _calls(s):
                if call.get("type") != "file_search":
                    continue
                for rank, result in enumerate((call.get("file_search") or {}).get("results") or ()):
                    yield _SearchResult(s, call, count, rank, result)
                count += 1


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
