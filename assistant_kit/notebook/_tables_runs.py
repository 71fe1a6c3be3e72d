"""The runs table: one thread's runs, or every run of the store with its filters.

A run's times are the engine's milliseconds where the server has them (its inspection
extension, :mod:`._timings`), else the wire's whole seconds (``resolution`` says which).
Across threads, ``GET /runs`` (an assistant_kit extension) takes the filters of
:func:`_filters`; ``GET /runs/steps`` (:mod:`._tables_steps`) takes the same, and where a
server lacks those routes one thread's listing is filtered here (:func:`_keep`).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

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
    _tool_names,
    _usage,
)
from ._timings import ms, seconds_ms

if TYPE_CHECKING:
    import pandas as pd


def _run_end(run: dict[str, Any]) -> int | None:
    end = _first(run, "completed_at", "failed_at", "cancelled_at", "incomplete_at")
    if end is None and run.get("status") == "expired":
        end = run.get("expires_at")
    return end


def _run_end_ms(run: dict[str, Any]) -> int | None:
    """When the run ended, in Unix ms: the engine's milliseconds, else the wire's seconds."""
    end = _run_end(run)
    return _either(ms(run, "ended_at_ms"), None if end is None else end * 1000)


def _run_start_ms(run: dict[str, Any]) -> int | None:
    return _either(ms(run, "started_at_ms"), seconds_ms(run, "started_at"))


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
