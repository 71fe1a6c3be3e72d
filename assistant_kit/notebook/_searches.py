"""The file_search calls of a thread as :func:`.inspect.inspect` shows them: each call with its
results (:class:`SearchCall`, built from the listed steps), its place in the transcript (HTML
and text), the numbered citations of the messages that cite it, and its mark on the timeline.

Kept apart from :mod:`.inspect` so that the inspector's layout (transcript, timeline) only
calls in here: what a search *is* for the notebook lives in one place (:mod:`.citations` draws
the pieces). Everything shown is escaped there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._markup import escape, text_block, truncate
from .citations import (
    Citation,
    Source,
    call_queries,
    call_sources,
    cited_html,
    cited_text,
    numbered_calls,
    queries_text,
    resolve,
    search_call_html,
)

SEARCH_COLOR = "#bf8700"


@dataclass(frozen=True)
class SearchCall:
    """One ``file_search`` call of a run, with its results (``call_index``: the run's T-th)."""

    id: str
    step_id: str
    run_id: str
    status: str
    created_at: Any  # a tz-aware pandas Timestamp, like the frames' (NaT when unset)
    call_index: int
    results: list[Source]
    ranking_options: dict[str, Any] | None = None
    queries: list[str] | None = None  # an assistant_kit extension: None when not recorded


def search_calls(steps: list[dict[str, Any]]) -> list[SearchCall]:
    """The file_search calls of the listed steps (wire dicts), run by run, each with its place
    among its run's calls — the T its citations' markers name."""
    import pandas as pd

    out: list[SearchCall] = []
    for index, step, call in numbered_calls(steps):
        created = step.get("created_at")
        out.append(
            SearchCall(
                id=call.get("id") or "",
                step_id=step["id"],
                run_id=step.get("run_id") or "",
                status=step.get("status") or "",
                created_at=pd.Timestamp(created, unit="s", tz="UTC") if created else pd.NaT,
                call_index=index,
                results=call_sources(index, call.get("file_search")),
                ranking_options=(call.get("file_search") or {}).get("ranking_options"),
                queries=call_queries(call.get("file_search")),
            )
        )
    return out


def row_citations(row: Any, calls: list[SearchCall]) -> list[Citation]:
    """The numbered citations of a :func:`.tables.messages` row, resolved against its run's
    file_search results (``[]`` when it cites nothing)."""
    notes = getattr(row, "citations", None)
    if not isinstance(notes, list) or not notes:
        return []
    sources = [c.results for c in calls if c.run_id == row.run_id]
    cites = [(n["text"], n["start_index"], n["end_index"], n["file_id"] or "") for n in notes]
    return resolve(row.text, cites, sources)


def message_body_html(row: Any, calls: list[SearchCall]) -> str:
    """A message's text: with numbered citations and footnotes when it cites, else as is."""
    cites = row_citations(row, calls)
    return cited_html(row.text, cites) if cites else text_block(row.text)


def message_text(row: Any, calls: list[SearchCall]) -> str:
    """A message's text for the text transcript, its markers as ``[n]``."""
    cites = row_citations(row, calls)
    return cited_text(row.text, cites) if cites else row.text


def search_html(call: SearchCall, when: str) -> str:
    """A search in the transcript: when, its run, then the call (collapsed: its queries, how
    many results and the best score; open: each result with its passage)."""
    meta = ["<b>file_search</b>", escape(when)]
    if call.status != "completed":
        meta.append(escape(call.status))
    if call.run_id:
        meta.append(f"<code>{escape(call.run_id)}</code>")
    body = search_call_html(
        call.results, ranking_options=call.ranking_options, call_id=call.id, queries=call.queries
    )
    return (
        f'<div class="ak-search-call" style="border-left:3px solid {SEARCH_COLOR};'
        f'padding:2px 8px;margin:6px 0">'
        f'<div style="font-size:smaller;opacity:.75">{" · ".join(meta)}</div>{body}</div>'
    )


def search_line(call: SearchCall) -> str:
    """A search in the text transcript: its queries, then its results as ``file (score)``."""
    found = ", ".join(
        f"{s.file_name or s.file_id} ({s.score:.3f})" if s.score is not None else (s.file_name or s.file_id)
        for s in call.results
    )
    n = len(call.results)
    asked = f"{truncate(queries_text(call.queries), 80)} → " if call.queries else ""
    return f"  {'search':>9}: {asked}{n} result{'s' if n != 1 else ''}" + (
        f": {truncate(found, 120)}" if found else ""
    )


def timeline_mark(names: list[str], outputs: list[Any]) -> tuple[str, str, str, str]:
    """How the timeline marks a ``tool_calls`` step (its calls' ``names`` and ``tool_outputs``
    as :func:`.tables.steps` has them): ``(mark class, fill, label, extra tooltip)`` — a step
    that searched gets an amber diamond, 🔎 and its number of results, and its tooltip the
    files found with their scores."""
    searches = [out for name, out in zip(names, outputs or (), strict=False) if name == "file_search"]
    if not searches:
        return "tool-mark", "#f9a825", "⚙ " + ", ".join(names), ""
    label = "🔎 " + ", ".join(names)
    if len(searches) == 1 and searches[0]:
        label += f" · {str(searches[0]).split(':', 1)[0]}"  # "· 3 results"
    tip = "".join(f"\nfile_search → {truncate(out or 'no results yet', 300)}" for out in searches)
    return "search-mark", SEARCH_COLOR, label, tip
