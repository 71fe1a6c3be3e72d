"""``inspect(thread)``: one thread at a glance — transcript, runs, steps and a run timeline.

:func:`inspect` fetches the thread, its latest messages, its runs and every run's steps (as the
DataFrames of :mod:`.tables`) into a :class:`ThreadInspection`, which renders as HTML in a
notebook (``_repr_html_``) and as a text summary anywhere else (``repr``). :func:`timeline_svg`
draws the runs and their steps over time as a hand-written SVG string (no plotting library).

The transcript shows each ``code_interpreter`` call where it happened — before the message its
run wrote next — with its code highlighted, its logs, and its images as thumbnails (fetched
through the client, once each; by file id when they cannot be).

Everything that came from the API — message text, ids, tool names and arguments, metadata,
error messages — is escaped before it goes into HTML or SVG: model output is untrusted, and a
notebook renders the HTML of a cell the user ran as trusted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import openai
from openai.types.beta import Thread

from . import _timings, tables
from ._extra import require
from ._searches import SearchCall, message_body_html, message_text, search_calls
from ._timeline import MIN_BAR_PX, timeline_svg
from ._transcript import call_timing, run_facts, run_html, run_text
from .code import FileImages, code_body_html, file_ref_html, image_html
from .html import STATUS_COLORS, escape, object_html, object_text, truncate

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MIN_BAR_PX", "STATUS_COLORS", "ThreadInspection", "inspect", "timeline_svg"]


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
    runs = list(tables._list(client, f"/threads/{thread_id}/runs"))
    run_ids = [r["id"] for r in runs]
    found = _timings.inspections(client, thread_id, run_ids)  # ms timings and prompts, per run
    _timings.with_timings(runs, found)
    steps = list(tables._step_items(client, thread_id, run_ids=run_ids))  # listed once, for two frames
    _timings.with_step_timings(steps, _timings.step_timings(found))
    return ThreadInspection(
        thread=info,
        messages=transcript,
        runs=tables._runs_frame(runs),
        steps=tables._steps_frame(steps),
        more_messages=omitted,
        code_calls=tables._code_calls_frame(steps),
        search_calls=search_calls(steps),
        files=files if files is not None else FileImages(client),
        vector_stores=_vector_stores(client, assistant, info),
        prompts={rid: list(i.get("prompts") or ()) for rid, i in found.items()},
        record_prompts=None if not found else any(i.get("record_prompts", True) for i in found.values()),
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


def _order_key(created_at: Any, object_id: Any) -> tuple[int, str]:
    """Where an object sits in time: its creation second, then its id's time-ordered suffix
    (ids made elsewhere, of another shape, tie at "")."""
    second = 0 if created_at is None or _missing(created_at) else int(created_at.timestamp())
    suffix = object_id.split("_", 1)[-1] if isinstance(object_id, str) else ""
    return second, suffix if len(suffix) == 26 else ""


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
    prompts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # run id → recorded turns
    record_prompts: bool | None = None  # None: the server has no inspection route

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

    def _note(self) -> str:
        """What the inspection could not know: no inspection route (times in whole seconds,
        no prompts), or prompt recording turned off."""
        if not len(self.runs):
            return ""
        if self.record_prompts is None:
            return (
                "This server has no inspection route: times are the wire's whole seconds "
                "(s resolution) and the prompts the model saw are unknown."
            )
        if not self.record_prompts:
            return "Prompt recording is off on this engine (record_prompts): no prompt folds."
        return ""

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
        if self._note():
            lines.append(self._note())
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
                if kind == "run":
                    steps, _, turns = self._run_parts(row)
                    lines.extend(run_text(row, steps, turns, self._searches()))
                    continue
                text = truncate(" ".join(message_text(row, self.search_calls).split()), 100)
                lines.append(f"  {row.role:>9}: {text}")
        if len(self.runs):
            lines.append("")
            lines.append("Runs:")
            for r in self.runs.itertuples():
                took = run_facts(r)[2]
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
        """The transcript in order: ``("message", row)``, ``("run", row)`` and ``("code", row)``.

        A run goes right before the first message it wrote; one that wrote none (failed,
        cancelled …) after the last message created before it — by creation second, then by
        id, whose time-ordered suffix (:mod:`assistant_kit._ids`) breaks ties within a second —
        and never before an earlier run. A code call of a listed run is drawn inside that run's
        block; one whose run is not listed goes before the next message its run wrote, or, if
        that run wrote nothing after it, after the last message created by then.
        """
        messages = list(self.messages.itertuples())
        slots: list[tuple[tuple[int, int, int], str, Any]] = [
            ((i, 2, 0), "message", m) for i, m in enumerate(messages)
        ]
        run_ids = set(self.runs["id"]) if len(self.runs) else set()
        slots += self._run_slots(messages)
        calls = self.code_calls
        if calls is not None and len(calls):
            slots += self._code_slots(messages, calls[~calls["run_id"].isin(run_ids)])
        slots.sort(key=lambda slot: slot[0])
        return [(kind, row) for _, kind, row in slots]

    def _run_slots(self, messages: list[Any]) -> list[tuple[tuple[int, int, int], str, Any]]:
        import bisect

        first: dict[str, int] = {}
        for i, m in enumerate(messages):
            if m.run_id and m.run_id not in first:
                first[m.run_id] = i
        keys = [_order_key(m.created_at, m.id) for m in messages]
        slots: list[tuple[tuple[int, int, int], str, Any]] = []
        floor = (-1, 4)
        for n, run in enumerate(self.runs.itertuples()):
            if run.id in first:
                place = (first[run.id], 0)
            else:
                after = bisect.bisect_right(keys, _order_key(run.created_at, run.id)) - 1
                if after < 0 and self.more_messages:
                    continue  # older than the transcript
                place = (after, 4)
            place = max(place, floor)
            floor = place
            slots.append(((*place, n), "run", run))
        return slots

    def _code_slots(
        self, messages: list[Any], calls: pd.DataFrame
    ) -> list[tuple[tuple[int, int, int], str, Any]]:
        if not len(calls):
            return []
        position = {m.id: i for i, m in enumerate(messages)}
        by_step: dict[str, list[Any]] = {}
        for call in calls.itertuples():
            by_step.setdefault(call.step_id, []).append(call)
        slots: list[tuple[tuple[int, int, int], str, Any]] = []
        loose: list[Any] = []
        pending: list[Any] = []
        run_id = None
        for step in self.steps.itertuples():
            if step.run_id != run_id:
                loose.extend(pending)
                pending, run_id = [], step.run_id
            if step.type == "message_creation" and step.message_id in position:
                slots += [((position[step.message_id], 1, len(slots)), "code", c) for c in pending]
                pending = []
            pending.extend(by_step.get(step.id, ()))
        loose.extend(pending)
        for call in loose:
            if self.more_messages and messages and call.created_at < messages[0].created_at:
                continue  # older than the transcript
            index = max((i for i, m in enumerate(messages) if m.created_at <= call.created_at), default=-1)
            slots.append(((index, 3, len(slots)), "code", call))
        return slots

    def _searches(self) -> dict[str, SearchCall]:
        return {call.id: call for call in self.search_calls}

    def _run_parts(self, run: Any) -> tuple[list[Any], dict[str, list[Any]], list[dict[str, Any]]]:
        """A run's steps (frame rows), its code calls by step id, its recorded prompts."""
        steps = self._steps_by_run().get(run.id, [])
        code: dict[str, list[Any]] = {}
        if self.code_calls is not None and len(self.code_calls):
            for call in self.code_calls.itertuples():
                if call.run_id == run.id:
                    code.setdefault(call.step_id, []).append(call)
        return steps, code, self.prompts.get(run.id, [])

    def _steps_by_run(self) -> dict[str, list[Any]]:
        cached = self.__dict__.get("_by_run")
        if cached is None:
            cached = {}
            for step in self.steps.itertuples():
                cached.setdefault(step.run_id, []).append(step)
            self.__dict__["_by_run"] = cached
        return cached

    def _code_html(self, call: Any) -> str:
        meta = ["<b>code_interpreter</b>", escape(_fmt_time(call.created_at))]
        if call.status != "completed":
            meta.append(escape(call.status))
        if call_timing(call):
            meta.append(escape(call_timing(call)))
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
            if kind == "run":
                parts.append(run_html(m, *self._run_parts(m), self.files, self._searches()))
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
        if self._note():
            head += f'<div class="ak-note"><small><i>{escape(self._note())}</i></small></div>'
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
    """A code call in the text transcript: its first line, its logs, its images by file id,
    its error, how long it took."""
    first = next((line.strip() for line in call.code.splitlines() if line.strip()), "")
    line = f"  {'code':>9}: {truncate(first, 60)}"
    if call.logs:
        line += f"  ← {truncate(' '.join(call.logs.split()), 60)}"
    line += "".join(f"  [image {file_id}]" for file_id in call.image_file_ids)
    if call.last_error:
        line += f"  ✗ {truncate(call.last_error, 80)}"
    if call_timing(call):
        line += f"  · {call_timing(call)}"
    return line


# The columns shown in the HTML (the attributes hold the full frames).
RUN_SUMMARY = (
    "id",
    "status",
    "model",
    "started_at",
    "duration_s",
    "first_token_s",
    "resolution",
    "total_tokens",
    "tools",
    "last_error",
)
STEP_SUMMARY = (
    "id",
    "run_id",
    "type",
    "status",
    "created_at",
    "duration_s",
    "tool_s",
    "resolution",
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
