"""The tables of retrieval: the results of a run's file_search calls (numbered as citation
markers count them, :func:`.citations.numbered_calls`), the vector stores and their files."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import openai

from ._tables_base import Column, _field, _frame, _list
from ._tables_steps import _step_items
from .citations import numbered_calls

if TYPE_CHECKING:
    import pandas as pd


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
