"""``timeline_svg``: the runs of a thread over time, as a hand-written SVG string.

One row per run, its steps as bars inside it (one lane per step), x = time since the first
run started. Times are the engine's milliseconds where it kept them (``resolution == "ms"``
in the frames of :mod:`.tables`), else the wire's whole seconds — the SVG then says
"s resolution" for those runs, and their sub-second steps are told apart by lane, not x.

Within a run: a tick where the first token arrived (``first_token_at``) and, inside a step,
a hatched part for the time spent in built-in tools (``tool_s``). A run in a terminal state
always has an end: its ``ended_at``, else — unknown (an imported thread) — its bar ends at its
last known time with a dashed edge and "end unknown"; only runs still active reach the right edge.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ._markup import STATUS_COLORS, escape, truncate
from ._searches import timeline_mark

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MIN_BAR_PX", "timeline_svg"]

ACTIVE = frozenset({"queued", "in_progress", "requires_action", "cancelling"})


def _missing(value: Any) -> bool:
    try:
        return bool(value != value)  # NaN, NaT, pd.NA
    except TypeError:
        return True


def _num(value: Any) -> float | None:
    return None if value is None or _missing(value) else float(value)


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


def _fine(row: dict[str, Any]) -> bool:
    return row.get("resolution") == "ms"


def _tick_label(value: float, step: float) -> str:
    if step < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:g} s"


def timeline_svg(runs_df: pd.DataFrame, steps_df: pd.DataFrame) -> str:
    """The runs of a thread as an SVG string: one row per run (label: run id and status), its
    steps as bars inside it, one lane per step, x = time since the first run started.

    Bars are colored by status (:data:`STATUS_COLORS`); a ``tool_calls`` step gets a diamond
    marker and a label with its tool names; every bar has a ``<title>`` tooltip. Runs still
    active extend to the latest time in the data; a run that ended at an unknown time ends at
    its last known time, with a dashed edge ("end unknown").

    Times: milliseconds where the frames have them (``resolution`` ``"ms"``), else whole
    seconds, so a step that took less than a second has zero width: every bar is drawn at least
    ``MIN_BAR_PX`` (3 px) wide so it stays visible. A first-token tick (``first_token_at``) and
    the time in built-in tools (``tool_s``, hatched) are drawn where known.

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
    coarse = [r["id"] for r in run_rows if not _fine(r)]
    t0 = min(known)
    ends = [_seconds(r["ended_at"]) for r in run_rows] + [_seconds(s.get("ended_at")) for s in step_rows]
    ends += [_seconds(r.get("first_token_at")) for r in run_rows]
    t_end = max([t for t in ends + starts if t is not None])
    span = max(t_end - t0, 1.0 if coarse else 0.01)
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
        end = _seconds(run["ended_at"])
        unknown_end = end is None and run["status"] not in ACTIVE
        if unknown_end:  # ended, but when is not known: up to its last known time, not the edge
            own = [_seconds(s.get("ended_at")) or _seconds(s["created_at"]) for s in lanes]
            end = max([t for t in own if t is not None] + [start])
        left, width = bar(start, end)
        color = STATUS_COLORS.get(run["status"], "#999")
        took = "end unknown" if unknown_end else _took(run.get("duration_s"))
        first = _seconds(run.get("first_token_at"))
        tip = f"{run['id']} · {run['status']} · {took}"
        if first is not None:
            tip += f" · first token after {(first - start) * 1000:.0f} ms"
        if not _fine(run):
            tip += " · s resolution"
        dash = ' stroke-dasharray="4 3"' if unknown_end else ""
        out.append(
            f'<g class="run-row"><rect class="run" x="{left:.1f}" y="{y + 2}" width="{width:.1f}" '
            f'height="{height - 4}" fill="{color}" fill-opacity="0.12" stroke="{color}" '
            f'stroke-opacity="0.5"{dash}><title>{escape(tip)}</title></rect>'
            f'<text x="6" y="{y + 14}" fill="#333" font-size="10">{escape(truncate(run["id"], 30))}</text>'
            f'<text x="6" y="{y + 26}" fill="{color}" font-size="10">{escape(run["status"])}'
            f"{' · end unknown' if unknown_end else ''}</text>"
        )
        if first is not None:
            fx = x(first)
            out.append(
                f'<line class="first-token" x1="{fx:.1f}" y1="{y + 2}" x2="{fx:.1f}" y2="{y + height - 2}" '
                f'stroke="#0969da" stroke-width="1.5"><title>first token: {(first - start) * 1000:.0f} ms'
                "</title></line>"
            )
        for lane, step in enumerate(lanes):
            out.append(_step_svg(step, lane, y, bar, x))
        out.append("</g>")
        y += height
    axis_y = y + 4
    out.append(f'<line x1="{_LABEL_W}" y1="{axis_y}" x2="{_LABEL_W + plot_w}" y2="{axis_y}" stroke="#999"/>')
    step = _nice_step(span)
    if coarse:
        step = max(step, 1.0)  # whole seconds: some of the data has no finer resolution
    for i in range(int(span / step + 1e-9) + 1):
        tx = x(t0 + i * step)
        out.append(
            f'<line class="tick" x1="{tx:.1f}" y1="{axis_y}" x2="{tx:.1f}" y2="{axis_y + 4}" stroke="#999"/>'
            f'<text x="{tx:.1f}" y="{axis_y + 16}" text-anchor="middle" fill="#666">'
            f"{_tick_label(i * step, step)}</text>"
        )
    height = axis_y + _AXIS_H
    note = ""
    if coarse:
        what = "all runs" if len(coarse) == len(run_rows) else f"{len(coarse)} of {len(run_rows)} runs"
        note = (
            f'<text class="resolution-note" x="{_LABEL_W}" y="{height}" fill="#9a6700" '
            f'font-size="10">s resolution ({what}: the wire\'s whole seconds; ms timings unknown)</text>'
        )
        height += 8
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="ak-timeline" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" font-family="sans-serif" font-size="11">'
        + _legend(
            {r["status"] for r in run_rows} | {s["status"] for s in step_rows},
            first_token=any(_seconds(r.get("first_token_at")) is not None for r in run_rows),
            tools=any(_num(s.get("tool_s")) for s in step_rows),
        )
        + note
        + "".join(out)
        + "</svg>"
    )


def _took(duration: Any) -> str:
    value = _num(duration)
    if value is None:
        return "not ended"
    return f"{value * 1000:.0f} ms" if value < 1 and value != 0 else f"{value:g} s"


def _step_svg(step: dict[str, Any], lane: int, row_y: int, bar: Any, x: Any) -> str:
    top = row_y + _ROW_PAD // 2 + lane * _LANE + 2
    begin = _seconds(step["created_at"]) or 0.0
    end = _seconds(step.get("ended_at"))
    if end is None and step["status"] not in ACTIVE:
        end = begin  # ended at an unknown time: a minimal bar, not one to the right edge
    left, width = bar(begin, end)
    color = STATUS_COLORS.get(step["status"], "#999")
    names = [call.split("(", 1)[0] for call in step["tool_calls"]]
    tool_s = _num(step.get("tool_s"))
    tip = f"{step['id']} · {step['type']} · {step['status']} · {_took(step.get('duration_s'))}"
    if tool_s is not None:
        tip += f" · tools {tool_s * 1000:.0f} ms"
    if step["tool_calls"]:
        tip += "\n" + "\n".join(truncate(call, 200) for call in step["tool_calls"])
        tip += timeline_mark(names, step.get("tool_outputs") or [])[3]
    parts = [
        f'<rect class="step" data-type="{escape(step["type"])}" x="{left:.1f}" y="{top}" '
        f'width="{width:.1f}" height="{_LANE - 4}" rx="2" fill="{color}"><title>{escape(tip)}</title></rect>'
    ]
    if tool_s:  # the time in built-in tools, from the step's start
        tool_w = min(max(x(begin + tool_s) - left, 1.0), width)
        parts.append(
            f'<rect class="tool-time" x="{left:.1f}" y="{top + 2}" width="{tool_w:.1f}" height="{_LANE - 8}" '
            f'fill="#f9a825" fill-opacity="0.8"><title>tools: {tool_s * 1000:.0f} ms</title></rect>'
        )
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


def _legend(statuses: set[str], *, first_token: bool = False, tools: bool = False) -> str:
    items, lx = [], _LABEL_W
    for status, color in STATUS_COLORS.items():
        if status in statuses:
            items.append(
                f'<rect x="{lx}" y="6" width="10" height="10" fill="{color}"/>'
                f'<text x="{lx + 14}" y="15" fill="#444">{escape(status)}</text>'
            )
            lx += 24 + 7 * len(status)
    if first_token:
        items.append(
            f'<line x1="{lx + 5}" y1="5" x2="{lx + 5}" y2="17" stroke="#0969da" stroke-width="1.5"/>'
            f'<text x="{lx + 14}" y="15" fill="#444">first token</text>'
        )
        lx += 24 + 7 * len("first token")
    if tools:
        items.append(
            f'<rect x="{lx}" y="8" width="10" height="6" fill="#f9a825"/>'
            f'<text x="{lx + 14}" y="15" fill="#444">in tools</text>'
        )
    return '<g class="legend">' + "".join(items) + "</g>"
