"""``inspect(thread)``: one thread at a glance — transcript, runs, steps and a run timeline.

:func:`inspect` fetches the thread, its latest messages, its runs and every run's steps (as the
DataFrames of :mod:`.tables`) into a :class:`ThreadInspection`, which renders as HTML in a
notebook (``_repr_html_``) and as a text summary anywhere else (``repr``). :func:`timeline_svg`
draws the runs and their steps over time as a hand-written SVG string (no plotting library).

The transcript shows each ``code_interpreter`` call where it happened — before the message its
run wrote next — with its code highlighted, its logs, and its images as thumbnails (fetched
through the client, once each; by file id when they cannot be). A ``file_search`` call shows
there too, with its results (file, score, chunk), and an answer's citations are numbered,
with footnotes quoting what they cite (:mod:`.citations`).

Everything that came from the API — message text, ids, tool names and arguments, metadata,
error messages — is escaped before it goes into HTML or SVG: model output is untrusted, and a
notebook renders the HTML of a cell the user ran as trusted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import openai
from openai.types.beta import Thread

from . import tables
from ._extra import require
from ._searches import (
    SearchCall,
    message_body_html,
    message_text,
    search_calls,
    search_html,
    search_line,
    timeline_mark,
)
from .code import FileImages, code_body_html, file_ref_html, image_html
from .html import STATUS_COLORS, escape, object_html, object_text, truncate

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ThreadInspection", "inspect", "timeline_svg"]


def inspect(
    thread: Any,
    client: openai.OpenAI | None = None,
    *,
    max_messages: int = 200,
    files: FileImages | None = None,
    assistant: Any = None,
) -> ThreadInspection:
    """Inspect ``thread`` (a ``Thread`` object or a thread id) through ``client``
    (default: :func:`assistant_kit.local_client` on the default store).

    The transcript holds the latest ``max_messages`` messages (older ones are not fetched;
    the HTML says they were left out); runs and steps are complete. ``files``: the image
    cache to use (default: a new one on ``client``). ``assistant``: its vector stores are listed
    with the thread's (``tool_resources.file_search``).
    """
    require("pandas", "inspect()")  # before anything is fetched
    if client is None:
        from ..client import local_client

        client = local_client()
    thread_id = thread if isinstance(thread, str) else thread.id
    info = client.beta.threads.retrieve(thread_id)
    latest = tables.messages(client, thread_id, limit=max_messages + 1, order="desc")
    omitted = len(latest) > max_messages
    transcript = latest.iloc[:max_messages].iloc[::-1].reset_index(drop=True)
    steps = list(tables._step_items(client, thread_id))  # listed once, for two frames
    return ThreadInspection(
        thread=info,
        messages=transcript,
        runs=tables.runs(client, thread_id),
        steps=tables._steps_frame(steps),
        more_messages=omitted,
        code_calls=tables._code_calls_frame(steps),
        search_calls=search_calls(steps),
        files=files if files is not None else FileImages(client),
        vector_stores=_vector_stores(client, assistant, info),
    )


def _vector_stores(client: openai.OpenAI, *objects: Any) -> list[Any]:
    """The vector stores the assistant and the thread search (gone ones left out)."""
    from .vector_stores import attached_store_ids

    found = []
    for store_id in attached_store_ids(*(o for o in objects if o is not None)):
        try:
            found.append(client.vector_stores.retrieve(store_id))
        except openai.NotFoundError:
            continue
    return found


def _fmt_time(value: Any) -> str:
    return "" if value is None or _missing(value) else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _missing(value: Any) -> bool:
    try:
        return bool(value != value)  # NaN, NaT, pd.NA
    except TypeError:
        return True  # pd.NA compares to NA, whose truth value is ambiguous


def _num(value: Any) -> float | None:
    return None if value is None or _missing(value) else float(value)


@dataclass(repr=False)
class ThreadInspection:
    """A thread, its transcript (latest messages, oldest first), runs and steps as DataFrames."""

    thread: Thread
    messages: pd.DataFrame
    runs: pd.DataFrame
    steps: pd.DataFrame
    more_messages: bool = False  # older messages exist beyond the transcript
    code_calls: pd.DataFrame | None = None  # tables.code_calls of the thread
    files: FileImages | None = field(default=None, compare=False)  # None: images by file id
    vector_stores: list[Any] = field(default_factory=list)  # those the assistant and thread search
    search_calls: list[SearchCall] = field(default_factory=list)  # the file_search calls, run order

    def timeline_svg(self) -> str:
        return timeline_svg(self.runs, self.steps)

    # -- text -------------------------------------------------------------------------

    def _counts(self) -> str:
        statuses = self.runs["status"].value_counts()
        runs = ", ".join(f"{n} {status}" for status, n in statuses.items())
        tokens = self.runs["total_tokens"].sum()
        more = "+" if self.more_messages else ""
        return (
            f"{len(self.messages)}{more} messages · {len(self.runs)} runs"
            + (f" ({runs})" if runs else "")
            + f" · {len(self.steps)} steps · {int(tokens)} tokens"
        )

    def _tool_summary(self) -> str:
        counts: dict[str, int] = {}
        for calls in self.steps["tool_calls"]:
            for call in calls:
                name = call.split("(", 1)[0]
                counts[name] = counts.get(name, 0) + 1
        return ", ".join(f"{name} x{n}" for name, n in counts.items())

    def __repr__(self) -> str:
        t = self.thread
        lines = [object_text(t), self._counts()]
        tools = self._tool_summary()
        if tools:
            lines.append(f"tool calls: {tools}")
        for store in self.vector_stores:
            lines.append(f"vector store: {_store_line(store)}")
        if len(self.messages):
            lines.append("")
            lines.append("Transcript" + (" (latest messages)" if self.more_messages else "") + ":")
            for kind, row in self._entries():
                if kind == "code":
                    lines.append(_code_line(row))
                    continue
                if kind == "search":
                    lines.append(search_line(row))
                    continue
                text = truncate(" ".join(message_text(row, self.search_calls).split()), 100)
                lines.append(f"  {row.role:>9}: {text}")
        if len(self.runs):
            lines.append("")
            lines.append("Runs:")
            for r in self.runs.itertuples():
                duration = _num(r.duration_s)
                took = f"{duration:g} s" if duration is not None else "—"
                tokens = _num(r.total_tokens)
                line = f"  {r.id}  {r.status:<15} {r.model}  {took}"
                line += f"  {int(tokens)} tokens" if tokens is not None else ""
                if r.tools:
                    line += f"  tools: {', '.join(r.tools)}"
                if r.last_error:
                    line += f"  error: {truncate(r.last_error, 100)}"
                lines.append(line)
        return "\n".join(lines)

    # -- HTML -------------------------------------------------------------------------

    def _entries(self) -> list[tuple[str, Any]]:
        """The transcript in order: ``("message", row)`` and ``("code", row)``. A code call
        goes before the next message its run wrote; one whose run wrote nothing after it goes
        after the last message created by then."""
        messages = list(self.messages.itertuples())
        calls = self.code_calls
        if (calls is None or not len(calls)) and not self.search_calls:
            return [("message", m) for m in messages]
        position = {m.id: i for i, m in enumerate(messages)}
        by_step: dict[str, list[Any]] = {}
        for call in calls.itertuples() if calls is not None else ():
            by_step.setdefault(call.step_id, []).append(call)
        for search in self.search_calls:
            by_step.setdefault(search.step_id, []).append(search)
        before: dict[int, list[Any]] = {}
        loose: list[Any] = []
        pending: list[Any] = []
        run_id = None
        for step in self.steps.itertuples():
            if step.run_id != run_id:
                loose.extend(pending)
                pending, run_id = [], step.run_id
            if step.type == "message_creation" and step.message_id in position:
                before.setdefault(position[step.message_id], []).extend(pending)
                pending = []
            pending.extend(by_step.get(step.id, ()))
        loose.extend(pending)
        after: dict[int, list[Any]] = {}
        for call in loose:
            if self.more_messages and messages and call.created_at < messages[0].created_at:
                continue  # older than the transcript
            index = max((i for i, m in enumerate(messages) if m.created_at <= call.created_at), default=-1)
            after.setdefault(index, []).append(call)

        def kind(call: Any) -> str:
            return "search" if isinstance(call, SearchCall) else "code"

        entries: list[tuple[str, Any]] = [(kind(c), c) for c in after.get(-1, ())]
        for i, m in enumerate(messages):
            entries.extend((kind(c), c) for c in before.get(i, ()))
            entries.append(("message", m))
            entries.extend((kind(c), c) for c in after.get(i, ()))
        return entries

    def _code_html(self, call: Any) -> str:
        meta = ["<b>code_interpreter</b>", escape(_fmt_time(call.created_at))]
        if call.status != "completed":
            meta.append(escape(call.status))
        if call.run_id:
            meta.append(f"<code>{escape(call.run_id)}</code>")
        body = code_body_html(
            call.code,
            call.logs,
            call.image_file_ids,
            error=call.last_error,
            files=self.files,
            image_width=360,
        )
        return (
            f'<div class="ak-code-call" style="border-left:3px solid {_CODE_COLOR};'
            f'padding:2px 8px;margin:6px 0">'
            f'<div style="font-size:smaller;opacity:.75">{" · ".join(meta)}</div>{body}</div>'
        )

    def _transcript_html(self) -> str:
        if not len(self.messages):
            return "<p><i>No messages.</i></p>"
        parts = []
        if self.more_messages:
            parts.append(
                f"<p><i>Showing the latest {len(self.messages)} messages; older ones are omitted.</i></p>"
            )
        for kind, m in self._entries():
            if kind == "code":
                parts.append(self._code_html(m))
                continue
            if kind == "search":
                parts.append(search_html(m, _fmt_time(m.created_at)))
                continue
            border = _ROLE_COLORS.get(m.role, "#999")
            meta = [f"<b>{escape(m.role)}</b>", escape(_fmt_time(m.created_at))]
            if m.status != "completed":
                meta.append(escape(m.status))
            if m.run_id:
                meta.append(f"<code>{escape(m.run_id)}</code>")
            if m.attachments:
                meta.append(f"{m.attachments} attachment(s)")
            files = [
                file_ref_html("file_path", "", file_id, self.files) for file_id in _ids(m, "file_path_ids")
            ]
            images = [
                image_html(file_id, self.files, label="image_file", width=360)
                for file_id in _ids(m, "image_file_ids")
            ]
            parts.append(
                f'<div style="border-left:3px solid {border};padding:2px 8px;margin:6px 0">'
                f'<div style="font-size:smaller;opacity:.75">{" · ".join(meta)}</div>'
                f"{message_body_html(m, self.search_calls)}{''.join(files)}{''.join(images)}</div>"
            )
        return "".join(parts)

    def _repr_html_(self) -> str:
        head = object_html(self.thread) + f"<div><small>{escape(self._counts())}</small></div>"
        runs_html = _table(self.runs[list(RUN_SUMMARY)], "No runs.")
        steps_html = _table(self.steps[list(STEP_SUMMARY)], "No steps.")
        return (
            '<div class="ak-inspect">'
            + head
            + _section("Transcript", self._transcript_html(), open_=True)
            + _section(f"Runs ({len(self.runs)})", runs_html, open_=True)
            + _section(f"Steps ({len(self.steps)})", steps_html, open_=len(self.steps) <= 20)
            + _section("Timeline", self.timeline_svg(), open_=True)
            + self._stores_html()
            + "</div>"
        )

    def _stores_html(self) -> str:
        if not self.vector_stores:
            return ""
        items = "".join(f"<li><code>{escape(_store_line(s))}</code></li>" for s in self.vector_stores)
        return _section(f"Vector stores ({len(self.vector_stores)})", f"<ul>{items}</ul>", open_=True)


def _store_line(store: Any) -> str:
    counts = store.file_counts
    line = f"{store.id} {store.name!r} {store.status}: {counts.completed}/{counts.total} files ingested"
    if counts.failed:
        line += f", {counts.failed} failed"
    return line + f", {store.usage_bytes:,} bytes"


_ROLE_COLORS = {"user": "#0969da", "assistant": "#1a7f37"}
_CODE_COLOR = "#8250df"


def _ids(row: Any, column: str) -> list[str]:
    """A list column of a row (absent from frames built before the column existed)."""
    value = getattr(row, column, None)
    return list(value) if isinstance(value, (list, tuple)) else []


def _code_line(call: Any) -> str:
    """A code call in the text transcript: its first line, its logs, its images by file id."""
    first = next((line.strip() for line in call.code.splitlines() if line.strip()), "")
    line = f"  {'code':>9}: {truncate(first, 60)}"
    if call.logs:
        line += f"  ← {truncate(' '.join(call.logs.split()), 60)}"
    line += "".join(f"  [image {file_id}]" for file_id in call.image_file_ids)
    if call.last_error:
        line += f"  ✗ {truncate(call.last_error, 80)}"
    return line


# The columns shown in the HTML (the attributes hold the full frames).
RUN_SUMMARY = ("id", "status", "model", "started_at", "duration_s", "total_tokens", "tools", "last_error")
STEP_SUMMARY = (
    "id",
    "run_id",
    "type",
    "status",
    "created_at",
    "duration_s",
    "tool_calls",
    "tool_outputs",
    "tokens",
    "image_file_ids",
    "last_error",
)


def _table(frame: pd.DataFrame, empty: str) -> str:
    if not len(frame):
        return f"<p><i>{escape(empty)}</i></p>"
    return tables.display_frame(frame).to_html()


def _section(title: str, body: str, *, open_: bool) -> str:
    return (
        f'<details{" open" if open_ else ""} style="margin:6px 0">'
        f"<summary><b>{escape(title)}</b></summary>{body}</details>"
    )


# -- timeline -------------------------------------------------------------------------------

_WIDTH = 760
_LABEL_W = 200  # run labels, left of the plot
_RIGHT_PAD = 150  # room for the tool-name label after the last bar
_LANE = 14  # one lane per step
_ROW_PAD = 8
_MIN_ROW = 32
_AXIS_H = 28
_LEGEND_H = 22
MIN_BAR_PX = 3.0


def _seconds(value: Any) -> float | None:
    return None if value is None or _missing(value) else value.timestamp()


def _nice_step(span: float) -> float:
    raw = span / 6
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def timeline_svg(runs_df: pd.DataFrame, steps_df: pd.DataFrame) -> str:
    """The runs of a thread as an SVG string: one row per run (label: run id and status), its
    steps as bars inside it, one lane per step, x = seconds since the first run started.

    Bars are colored by status (:data:`STATUS_COLORS`); a ``tool_calls`` step gets a diamond
    marker and a label with its tool names — a ``file_search`` step an amber diamond, a 🔎 and
    its number of results, its tooltip the files found and their scores; every bar has a
    ``<title>`` tooltip. Runs and steps
    that have not ended extend to the latest time in the data.

    Timestamps on the wire are whole Unix seconds, so a step that took less than a second has
    zero width on the time axis: every bar is drawn at least ``MIN_BAR_PX`` (3 px) wide so it stays
    visible, and steps within the same second are told apart by their lanes, not their x.

    All text (ids, statuses, tool names) is escaped. ``runs_df`` and ``steps_df`` are the frames
    of :func:`.tables.runs` and :func:`.tables.steps`.
    """
    run_rows = runs_df.sort_values("created_at", kind="stable").to_dict("records")
    step_rows = steps_df.to_dict("records")
    by_run: dict[str, list[dict[str, Any]]] = {r["id"]: [] for r in run_rows}
    for s in sorted(step_rows, key=lambda s: _seconds(s["created_at"]) or 0.0):
        by_run.setdefault(s["run_id"], []).append(s)

    starts = [_seconds(r["started_at"]) or _seconds(r["created_at"]) for r in run_rows]
    starts += [_seconds(s["created_at"]) for s in step_rows]
    known = [t for t in starts if t is not None]
    if not run_rows or not known:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="30" class="ak-timeline">'
            '<text x="8" y="19" font-family="sans-serif" font-size="12" fill="#666">No runs.</text></svg>'
        )
    t0 = min(known)
    ends = [_seconds(r["ended_at"]) for r in run_rows] + [_seconds(s.get("ended_at")) for s in step_rows]
    t_end = max([t for t in ends + starts if t is not None])
    span = max(t_end - t0, 1.0)
    plot_w = _WIDTH - _LABEL_W - _RIGHT_PAD

    def x(t: float) -> float:
        return _LABEL_W + (t - t0) / span * plot_w

    def bar(start: float, end: float | None) -> tuple[float, float]:
        left = x(start)
        return left, max(x(end if end is not None else t_end) - left, MIN_BAR_PX)

    out: list[str] = []
    y = _LEGEND_H
    for run in run_rows:
        lanes = by_run.get(run["id"], [])
        height = max(len(lanes) * _LANE + _ROW_PAD, _MIN_ROW)  # two label lines at least
        start = _seconds(run["started_at"]) or _seconds(run["created_at"]) or t0
        left, width = bar(start, _seconds(run["ended_at"]))
        color = STATUS_COLORS.get(run["status"], "#999")
        tip = escape(f"{run['id']} · {run['status']} · {_took(run.get('duration_s'))}")
        out.append(
            f'<g class="run-row"><rect class="run" x="{left:.1f}" y="{y + 2}" width="{width:.1f}" '
            f'height="{height - 4}" fill="{color}" fill-opacity="0.12" stroke="{color}" '
            f'stroke-opacity="0.5"><title>{tip}</title></rect>'
            f'<text x="6" y="{y + 14}" fill="#333" font-size="10">{escape(truncate(run["id"], 30))}</text>'
            f'<text x="6" y="{y + 26}" fill="{color}" font-size="10">{escape(run["status"])}</text>'
        )
        for lane, step in enumerate(lanes):
            out.append(_step_svg(step, lane, y, bar))
        out.append("</g>")
        y += height
    axis_y = y + 4
    out.append(f'<line x1="{_LABEL_W}" y1="{axis_y}" x2="{_LABEL_W + plot_w}" y2="{axis_y}" stroke="#999"/>')
    step = max(_nice_step(span), 1.0)  # whole seconds: the data has no finer resolution
    for i in range(int(span / step + 1e-9) + 1):
        tx = x(t0 + i * step)
        out.append(
            f'<line class="tick" x1="{tx:.1f}" y1="{axis_y}" x2="{tx:.1f}" y2="{axis_y + 4}" stroke="#999"/>'
            f'<text x="{tx:.1f}" y="{axis_y + 16}" text-anchor="middle" fill="#666">{i * step:g} s</text>'
        )
    height = axis_y + _AXIS_H
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="ak-timeline" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" font-family="sans-serif" font-size="11">'
        + _legend({r["status"] for r in run_rows} | {s["status"] for s in step_rows})
        + "".join(out)
        + "</svg>"
    )


def _took(duration: Any) -> str:
    value = _num(duration)
    return f"{value:g} s" if value is not None else "not ended"


def _step_svg(step: dict[str, Any], lane: int, row_y: int, bar: Any) -> str:
    top = row_y + _ROW_PAD // 2 + lane * _LANE + 2
    left, width = bar(_seconds(step["created_at"]) or 0.0, _seconds(step.get("ended_at")))
    color = STATUS_COLORS.get(step["status"], "#999")
    names = [call.split("(", 1)[0] for call in step["tool_calls"]]
    tip = f"{step['id']} · {step['type']} · {step['status']} · {_took(step.get('duration_s'))}"
    if step["tool_calls"]:
        tip += "\n" + "\n".join(truncate(call, 200) for call in step["tool_calls"])
        tip += timeline_mark(names, step.get("tool_outputs") or [])[3]
    parts = [
        f'<rect class="step" data-type="{escape(step["type"])}" x="{left:.1f}" y="{top}" '
        f'width="{width:.1f}" height="{_LANE - 4}" rx="2" fill="{color}"><title>{escape(tip)}</title></rect>'
    ]
    label_x = left + width + 4
    if names:
        cx, cy = left, top + (_LANE - 4) / 2
        diamond = (
            f"M{cx:.1f} {cy - 5:.1f} L{cx + 5:.1f} {cy:.1f} L{cx:.1f} {cy + 5:.1f} L{cx - 5:.1f} {cy:.1f} Z"
        )
        mark, fill, label, _ = timeline_mark(names, step.get("tool_outputs") or [])
        parts.append(f'<path class="{mark}" d="{diamond}" fill="{fill}" stroke="#333" stroke-width="0.5"/>')
    else:
        label = "message" if step["type"] == "message_creation" else step["type"]
    parts.append(
        f'<text class="step-label" x="{label_x:.1f}" y="{top + _LANE - 5}" font-size="10" fill="#444">'
        f"{escape(truncate(label, 40))}</text>"
    )
    return "".join(parts)


def _legend(statuses: set[str]) -> str:
    items, lx = [], _LABEL_W
    for status, color in STATUS_COLORS.items():
        if status in statuses:
            items.append(
                f'<rect x="{lx}" y="6" width="10" height="10" fill="{color}"/>'
                f'<text x="{lx + 14}" y="15" fill="#444">{escape(status)}</text>'
            )
            lx += 24 + 7 * len(status)
    return '<g class="legend">' + "".join(items) + "</g>"
