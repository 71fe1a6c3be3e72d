"""Numbered citations: a message's ``file_citation`` annotations resolved to the file_search
results they cite, drawn as superscripts ``[1]`` with footnotes (HTML) or ``[1]`` and footnote
lines (text).

An annotation carries only the file id and the marker as it stands in the text,
``【T:R†…】``: T counts the run's ``file_search`` calls in order (0-based), R is the result's
index in that call. So the file name, the score and the quoted chunk come from the run's steps
(:func:`search_results`), and the chunk only when the steps were fetched with
``include=["step_details.tool_calls[*].file_search.results[*].content"]``. Whatever is missing
— the steps, the content, a marker that does not parse — the citation still shows what it has
(at least the file id): rendering a message never fails on its citations.

Everything shown is escaped (:func:`.html.escape`, quotes too: the hover text sits in a
``title`` attribute); the model wrote the text and the files are whoever uploaded them.
Numbers follow the first appearance of each cited source in the message, the same source
cited twice keeps its number.

Works on the SDK's models and on the wire's dicts alike (the DataFrames keep dicts).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

from ._markup import LABEL_STYLE, MUTED, PRE_STYLE, collapsible, escape, one_line, truncate

__all__ = [
    "MARKER",
    "SEARCH_CONTENT",
    "Citation",
    "Source",
    "call_queries",
    "citation_annotations",
    "cited_html",
    "cited_text",
    "footnotes_text",
    "resolve",
    "search_call_html",
    "search_call_text",
    "search_results",
]

SEARCH_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"
"""The ``include`` that makes steps carry their file_search results' chunks."""

MARKER = re.compile(r"【(\d+):(\d+)(?:†[^】]*)?】")
"""A marker as the engine writes it: ``【T:R†source】`` (the text after † is free)."""

HOVER_CHARS = 300  # of the chunk, in the superscript's hover
QUOTE_CHARS = 200  # of the chunk, per footnote line in text


class Source(NamedTuple):
    """One result of a ``file_search`` call: the T-th call of its run, its R-th result."""

    call: int
    rank: int
    file_id: str
    file_name: str | None
    score: float | None
    text: str | None  # the chunk; None when the step came without its content


class Citation(NamedTuple):
    """One ``file_citation`` annotation, numbered; ``source`` None when it cannot be resolved."""

    number: int
    marker: str
    start: int | None  # where the marker is in the text (None: not found there)
    end: int | None
    file_id: str
    source: Source | None


def _get(obj: Any, key: str) -> Any:
    if obj is None:
        return None
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


def _result_text(result: Any) -> str | None:
    content = _get(result, "content")
    if content is None:
        return None
    return "".join(_get(part, "text") or "" for part in content)


def call_sources(call_index: int, file_search: Any) -> list[Source]:
    """The results of one ``file_search`` call (its ``file_search`` object) as sources."""
    sources = []
    for rank, result in enumerate(_get(file_search, "results") or ()):
        score = _get(result, "score")
        sources.append(
            Source(
                call_index,
                rank,
                _get(result, "file_id") or "",
                _get(result, "file_name"),
                float(score) if isinstance(score, (int, float)) else None,
                _result_text(result),
            )
        )
    return sources


def numbered_calls(steps: Iterable[Any]) -> Iterator[tuple[int, Any, Any]]:
    """``(T, step, call)`` for every ``file_search`` call of the listed steps (RunStep models or
    dicts, of one run or several), T counted per run as citation markers number them: the
    run's steps in the order they were created, each step's calls in order."""
    by_run: dict[Any, list[tuple[int, Any]]] = {}
    for n, step in enumerate(steps):
        by_run.setdefault(_get(step, "run_id"), []).append((n, step))
    for run_steps in by_run.values():
        run_steps.sort(key=lambda pair: (_get(pair[1], "created_at") or 0, pair[0]))
        count = 0
        for _, step in run_steps:
            for call in _get(_get(step, "step_details"), "tool_calls") or ():
                if _get(call, "type") == "file_search":
                    yield count, step, call
                    count += 1


def search_results(steps: Iterable[Any]) -> list[list[Source]]:
    """The sources of one run's ``file_search`` calls, one list per call (the T of the
    markers), from its steps (RunStep models or dicts)."""
    return [call_sources(t, _get(call, "file_search")) for t, _, call in numbered_calls(steps)]


def citation_annotations(annotations: Iterable[Any] | None) -> list[tuple[str, int | None, int | None, str]]:
    """``(text, start_index, end_index, file_id)`` of each ``file_citation`` annotation."""
    out = []
    for note in annotations or ():
        if _get(note, "type") != "file_citation":
            continue
        file_id = _get(_get(note, "file_citation"), "file_id") or ""
        out.append((_get(note, "text") or "", _get(note, "start_index"), _get(note, "end_index"), file_id))
    return out


def resolve(
    text: str,
    annotations: Iterable[tuple[str, int | None, int | None, str]],
    results: Sequence[Sequence[Source]] | None = None,
) -> list[Citation]:
    """Number the citations of ``text``: one number per ``T:R`` (per marker text and file when
    it does not parse), in order of first appearance. A marker is looked up as
    ``results[T][R]``; one that does not parse, points past the results or at another file than
    the annotation says keeps its file id and no source. Positions are checked against the
    text: an index past it, or a span that is not the marker, falls back to the marker's first
    unclaimed occurrence (none: the citation is listed but not placed)."""
    numbers: dict[Any, int] = {}
    out: list[Citation] = []
    claimed: set[int] = set()
    for marker, start, end, file_id in annotations:
        start, end = _locate(text, marker, start, end, claimed)
        source = None
        key: Any = (file_id, marker)
        match = MARKER.fullmatch(marker.strip())
        if match:
            t, r = int(match.group(1)), int(match.group(2))
            key = (t, r)
            if results is not None and t < len(results) and r < len(results[t]):
                candidate = results[t][r]
                if not file_id or candidate.file_id == file_id:
                    source = candidate
        number = numbers.setdefault(key, len(numbers) + 1)
        out.append(
            Citation(number, marker, start, end, file_id or (source.file_id if source else ""), source)
        )
    return out


def _locate(
    text: str, marker: str, start: int | None, end: int | None, claimed: set[int]
) -> tuple[int | None, int | None]:
    if (
        isinstance(start, int)
        and isinstance(end, int)
        and 0 <= start < end <= len(text)
        and text[start:end] == marker
        and start not in claimed
    ):
        claimed.add(start)
        return start, end
    if marker:
        at = text.find(marker)
        while at >= 0 and at in claimed:
            at = text.find(marker, at + 1)
        if at >= 0:
            claimed.add(at)
            return at, at + len(marker)
    return None, None


def _pieces(text: str, citations: Sequence[Citation]) -> list[str | Citation]:
    """``text`` cut at the citations' markers: plain strings and the citations in between."""
    placed = sorted((c for c in citations if c.start is not None), key=lambda c: c.start or 0)
    pieces: list[str | Citation] = []
    at = 0
    for c in placed:
        assert c.start is not None and c.end is not None
        if c.start < at:
            continue  # overlapping spans: the first wins
        pieces.append(text[at : c.start])
        pieces.append(c)
        at = c.end
    pieces.append(text[at:])
    return pieces


def _name(c: Citation) -> str:
    if c.source is not None and c.source.file_name:
        return c.source.file_name
    return c.file_id or "unknown file"


def _score(c: Citation) -> str:
    return f"score {c.source.score:.3f}" if c.source is not None and c.source.score is not None else ""


def hover(c: Citation) -> str:
    """The plain text of a citation's hover: file, score and the start of the chunk."""
    head = " · ".join(x for x in (_name(c), _score(c)) if x)
    chunk = c.source.text if c.source is not None else None
    return head + (f"\n{truncate(one_line(chunk), HOVER_CHARS)}" if chunk else "")


def _unique(citations: Sequence[Citation]) -> list[Citation]:
    seen: dict[int, Citation] = {}
    for c in citations:
        seen.setdefault(c.number, c)
    return [seen[n] for n in sorted(seen)]


def cited_html(text: str, citations: Sequence[Citation], *, collapse_over: int = 2000) -> str:
    """``text`` escaped in a ``<pre>`` with each marker replaced by a superscript ``[n]``
    (hover: file, score, chunk), then the footnotes: one per cited source, with its file
    name, id, score and the quoted chunk (collapsible when long)."""
    if not citations:
        return collapsible(
            f'<pre style="{PRE_STYLE}">{escape(text)}</pre>', text, collapse_over=collapse_over
        )
    body = []
    for piece in _pieces(text, citations):
        if isinstance(piece, str):
            body.append(escape(piece))
        else:
            body.append(
                f'<sup class="ak-cite" title="{escape(hover(piece))}" '
                f'style="cursor:help;color:#0969da">[{piece.number}]</sup>'
            )
    shown = "".join(body)
    pre = f'<pre style="{PRE_STYLE}">{shown}</pre>'
    return collapsible(pre, text, collapse_over=collapse_over) + footnotes_html(citations)


def footnotes_html(citations: Sequence[Citation]) -> str:
    items = []
    for c in _unique(citations):
        bits = [f"<b>{escape(_name(c))}</b>"]
        score = _score(c)
        if score:
            bits.append(escape(score))
        bits.append(f"<code>{escape(c.file_id)}</code>")
        quote = ""
        if c.source is not None and c.source.text:
            inner = f'<pre style="{PRE_STYLE};margin-left:0">{escape(c.source.text)}</pre>'
            quote = collapsible(inner, c.source.text, collapse_over=600)
        elif c.source is None:
            bits.append(f'<span style="{MUTED}">(its search result is not available)</span>')
        items.append(f'<li value="{c.number}" style="margin:2px 0">{" · ".join(bits)}{quote}</li>')
    return (
        f'<ol class="ak-citations" style="{LABEL_STYLE};font-size:12px;margin:2px 0 4px 0;'
        f'padding-left:22px">{"".join(items)}</ol>'
    )


def cited_text(text: str, citations: Sequence[Citation]) -> str:
    """``text`` with each marker replaced by ``[n]``."""
    return "".join(p if isinstance(p, str) else f"[{p.number}]" for p in _pieces(text, citations))


def footnotes_text(citations: Sequence[Citation], *, quote_chars: int = QUOTE_CHARS) -> list[str]:
    """One line per cited source: ``[n] file (score 0.873, file-…): "chunk…"``."""
    lines = []
    for c in _unique(citations):
        about = ", ".join(x for x in (_score(c), c.file_id if _name(c) != c.file_id else "") if x)
        line = f"[{c.number}] {_name(c)}" + (f" ({about})" if about else "")
        if c.source is not None and c.source.text:
            line += f': "{truncate(one_line(c.source.text), quote_chars)}"'
        lines.append(line)
    return lines


def _ranking(ranking_options: Any) -> str:
    ranker, threshold = _get(ranking_options, "ranker"), _get(ranking_options, "score_threshold")
    bits = [
        f"ranker {ranker}" if ranker else "",
        f"score_threshold {threshold:g}" if threshold is not None else "",
    ]
    return ", ".join(b for b in bits if b)


def search_call_html(
    sources: Sequence[Source] | None,
    *,
    ranking_options: Any = None,
    call_id: str | None = None,
    queries: Sequence[str] | None = None,
    done: bool = True,
    expanded: bool = False,
) -> str:
    """One ``file_search`` call, collapsible: the summary says what was searched for (when the
    server says: ``queries`` is an assistant_kit extension), how many results and the best
    score; the body lists each result — rank, file name, score, the chunk when the step came
    with it — and the ranking options."""
    if sources is None or (not sources and not done):
        state = f'<span style="{MUTED}">…</span>'
    else:
        best = max((s.score for s in sources if s.score is not None), default=None)
        n = len(sources)
        state = f"{n} result{'s' if n != 1 else ''}" + (
            f", best score {best:.3f}" if best is not None else ""
        )
        state = f'<span style="color:#1a7f37">✓</span> <span style="{MUTED}">{escape(state)}</span>'
    head = f'<div style="{LABEL_STYLE}">file_search call <code>{escape(call_id or "")}</code>'
    ranking = _ranking(ranking_options)
    head += f" · {escape(ranking)}</div>" if ranking else "</div>"
    rows = []
    for s in sources or ():
        score = f"{s.score:.3f}" if s.score is not None else "—"
        chunk = ""
        if s.text:
            inner = f'<pre style="{PRE_STYLE}">{escape(s.text)}</pre>'
            chunk = collapsible(inner, s.text, collapse_over=600)
        rows.append(
            f'<li value="{s.rank}" style="margin:2px 0"><b>{escape(s.file_name or s.file_id)}</b> · '
            f"score {escape(score)} · <code>{escape(s.file_id)}</code>{chunk}</li>"
        )
    listing = f'<ol start="0" style="margin:2px 0;padding-left:26px">{"".join(rows)}</ol>' if rows else ""
    asked = _queries_html(queries)
    return (
        f"<details{' open' if expanded else ''} class='ak-file-search' style='margin:2px 0'>"
        f"<summary style='cursor:pointer'>→ <code>file_search</code>{asked} {state}</summary>"
        f"<div style='margin-left:14px'>{head}{listing}</div></details>"
    )


def _queries_html(queries: Sequence[str] | None) -> str:
    if not queries:
        return ""
    shown = ", ".join(json.dumps(q, ensure_ascii=False) for q in queries)
    return f"(<span style='{MUTED}'>{escape(truncate(shown, 160))}</span>)"


def queries_text(queries: Sequence[str] | None) -> str:
    """``("q1", "q2")``, or "" when the call does not say what it searched for."""
    return "(" + ", ".join(json.dumps(q, ensure_ascii=False) for q in queries) + ")" if queries else ""


def call_queries(file_search: Any) -> list[str] | None:
    """What a file_search call searched for — ``queries``, an assistant_kit extension of the
    wire object (the hosted API kept them to itself) — or None when the server does not say."""
    queries = _get(file_search, "queries")
    return [str(q) for q in queries] if isinstance(queries, list) else None


def search_call_text(
    sources: Sequence[Source] | None, *, queries: Sequence[str] | None = None, quote_chars: int = 80
) -> str:
    """``→ file_search("query")`` and one ``← #R name (score 0.873): "chunk…"`` line per result."""
    lines = [f"→ file_search{truncate(queries_text(queries), 300)}"]
    if sources is not None:
        lines.append(f"← {len(sources)} result{'s' if len(sources) != 1 else ''}")
    for s in sources or ():
        score = f" (score {s.score:.3f})" if s.score is not None else ""
        quote = f': "{truncate(one_line(s.text), quote_chars)}"' if s.text else ""
        lines.append(f"   #{s.rank} {s.file_name or s.file_id}{score}{quote}")
    return "\n".join(lines)
