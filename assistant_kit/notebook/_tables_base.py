"""What every table of :mod:`.tables` is made of: the paged listing, the column declarations
and the readers several tables share.

Every table takes an ``openai.OpenAI`` client — local (:func:`assistant_kit.local_client`)
or any server speaking Assistants v2 — and walks the whole listing with the SDK's cursor
pagination (``client.get_api_list`` + ``SyncCursorPage``, ``limit=100`` per page, ``after=``
the last id), so threads of any length work (:func:`_list`).

Pages hold plain JSON dicts, not typed models: :class:`_JSONPage` is a ``SyncCursorPage`` whose
items stay as parsed and whose cursor reads ``item["id"]``. Building 100 ``Message`` models per
page costs about twice the request itself (10,000 messages through ``local_client``: ~1.1 s
typed, ~0.4 s as dicts — ``benchmarks/dataframe.py``); a DataFrame needs only a few fields, so
columns are filled straight from the dicts (~25 ms for 10,000 rows).

Each frame is declared once, as a tuple of :class:`Column` (``MESSAGES``, ``RUNS``, ``STEPS``
… in the modules of their subjects): a column's name, how one row gives its value, and its
kind (which fixes its dtype). Adding a column is one line there; :func:`_frame` does the rest.

pandas is imported inside the functions (:func:`_pandas`), so importing this module does not
load it.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import openai
from openai.pagination import PageInfo, SyncCursorPage

from ._extra import require
from ._timings import ms

if TYPE_CHECKING:
    import pandas as pd

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


def _names_a_filter(exc: openai.NotFoundError) -> bool:
    """Whether a 404 of ``GET /runs``/``GET /runs/steps`` says its ``thread_id``/``run_id``
    names nothing (raised as is, as the per-thread listings raise it) rather than that the
    server lacks the route (then the per-thread listings are the fallback)."""
    body = exc.body if isinstance(exc.body, dict) else {}
    return body.get("param") in ("thread_id", "run_id")


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


# -- readers several tables share ----------------------------------------------------------


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


def _either(*values: int | None) -> int | None:
    return next((v for v in values if v is not None), None)


def _ms_span(start: int | None, end: int | None) -> float:
    """Seconds from ``start`` to ``end`` (both ms), ``NaN`` when either is unknown."""
    return (end - start) / 1000 if start is not None and end is not None else math.nan


def _resolution(obj: dict[str, Any]) -> str:
    """``"ms"`` when the engine's millisecond timings are known, ``"s"`` for the wire's seconds."""
    return "ms" if ms(obj, "created_at_ms") is not None else "s"
