"""``RunView``: one run rendered as it streams — in a notebook, a terminal or a docs build.

Feed it the SDK's stream events (``for event in stream: view.on_event(event)``), the
outputs of tools you ran yourself (:meth:`RunView.on_tool_result`), then :meth:`close`.

Modes (``mode=None`` chooses):

``handles`` (default in a Jupyter kernel)
    Plain IPython display handles: one for the header/status, one per message and one per
    tool call, so an update re-sends only the live tail, never the whole transcript. Display
    handles work in JupyterLab 4, Notebook 7, VS Code and Colab, and what a notebook saves
    is their final content. That is why they are the default rather than widgets: a saved
    widget shows nothing without widget state, and we cannot tell from the kernel whether
    the frontend renders widgets at all.
``widgets`` (``mode="widgets"`` or ``ASSISTANT_KIT_WIDGETS=1``)
    An ipywidgets panel (``VBox``/``HBox``, ``HTML``, ``Button`` only — the API shared by
    ipywidgets 7.7, which Colab pins, and 8) with a *Cancel* button calling ``on_cancel``.
    A click reaches the kernel only while the kernel is idle, i.e. when the run is consumed
    in a background thread; a cell that blocks on the stream is stopped with *interrupt*.
``text`` (outside a Jupyter kernel: scripts, the terminal, terminal IPython)
    Text deltas to stdout as they arrive, tool calls as ``→ name(args)`` / ``← output``
    lines, code_interpreter calls as their code (line by line as each line completes), logs
    and ``[image file-…]`` lines, a status line at the end (:mod:`.terminal`). Control
    characters are neutralised.
``static`` (``ASSISTANT_KIT_LIVE=0``: nbval, docs builds)
    Nothing while streaming; one display of the snapshot at :meth:`close`.

A ``code_interpreter`` call is one item like any tool call: its code highlighted as it
grows, then its logs and its images inline (:mod:`.code`; images fetched once each through
``files``, a :class:`~.code.FileImages` — without one they are shown by file id).

Updates are throttled to ``max_rate`` display messages per second per view (Jupyter drops
IOPub output above ~1000 msgs/s or 1 MB/s): changes are coalesced, and after a flush that
sent *k* messages the next throttled flush waits *k*/``max_rate`` s — a message counts once
more per ``WEIGHT_BYTES`` of HTML, so images re-sent with a call's live updates stay under
the byte limit too. Transitions flush at once — a run or step or message reaching a final
state or ``requires_action``, a tool result, an error, :meth:`close` — their number is
bounded by the objects, not the tokens.
Changes held back by the throttle are not left waiting for the next event: a one-shot timer
flushes them when the interval has passed. Without it the last fragments of a
code_interpreter call's code would show only with the call's first output — after the code
had run, however long that took. The timer runs in the consumer's context (ipykernel routes
its output to the cell that started the run); a lock keeps it and the consumer's thread from
rendering at the same time.

At :meth:`close` the live view is *replaced* by the static snapshot (:meth:`to_html`): the
header's handle (or the widget panel's output) gets the snapshot and every other handle is
emptied, so saved and exported notebooks show the transcript. The snapshot's timing sits in
``<span class="ak-timing">`` for test sanitizers; its ``text/plain`` carries no ids or times.
"""

from __future__ import annotations

import contextvars
import importlib.util
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from ._items import LIVE_TEXT_LIMIT, CallItem, Item, MessageItem
from .citations import Source, call_queries, call_sources, citation_annotations
from .code import FileImages
from .html import CARD_STYLE, MUTED, badge, content_parts, escape, file_annotations, step_calls, truncate
from .terminal import TextWriter

__all__ = ["LIVE_TEXT_LIMIT", "MODES", "RunView", "resolve_mode"]

MODES = ("widgets", "handles", "text", "static")
WEIGHT_BYTES = 100_000
_FORCING = frozenset({"completed", "incomplete", "failed", "cancelled", "expired", "requires_action"})
_TERMINAL = frozenset({"completed", "incomplete", "failed", "cancelled", "expired"})
_EMPTY = {"text/plain": ""}


def _env_flag(name: str) -> bool | None:
    value = os.environ.get(name, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return None


def _shell() -> Any:
    if "IPython" not in sys.modules:  # nothing imported IPython: certainly not inside it
        return None
    from IPython import get_ipython

    return get_ipython()


def current_cell() -> tuple[int, int] | None:
    """The IPython cell running now — (the shell's id, its execution count) — or None outside
    IPython. A ``Session`` keeps the cell its last run was rendered in, so that the cell's
    result (the session itself, when a chain ends in ``.run()``) does not repeat it."""
    shell = _shell()
    count = getattr(shell, "execution_count", None)
    return None if shell is None or not isinstance(count, int) else (id(shell), count)


def _widgets_available() -> bool:
    return importlib.util.find_spec("ipywidgets") is not None


def widget_bundle(widget: Any) -> dict[str, Any]:
    """The display data of an ipywidget, to publish with a ``display_id`` of our own.

    ``display(widget, display_id=...)`` keeps the id only on ipywidgets 8, whose widgets have
    ``_repr_mimebundle_``. ipywidgets 7 (Colab's 7.7.1) displays itself through
    ``_ipython_display_``, which IPython calls *instead* of publishing, and the id is lost: the
    panel could then never be replaced by the run's final snapshot. The widget-view mimetype
    (protocol 2.0) is the same in both versions, so the bundle is built here when the widget
    cannot give it."""
    method = getattr(widget, "_repr_mimebundle_", None)
    if method is not None:
        return dict(method())
    return {
        "text/plain": repr(widget)[:110],
        "application/vnd.jupyter.widget-view+json": {
            "version_major": 2,
            "version_minor": 0,
            "model_id": widget.model_id,
        },
    }


def resolve_mode(mode: str | None = None, *, sink: bool = False) -> str:
    """The mode a :class:`RunView` will use (see the module docstring). ``sink``: a display
    callable was given, so there is somewhere to display even outside IPython."""
    if mode is not None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)} or None, not {mode!r}")
        if mode != "text" and not sink and _shell() is None:
            return "text"  # nowhere to display: a plain script asked for a notebook mode
        if mode == "widgets" and not _widgets_available():
            return "handles"
        return mode
    if not sink and getattr(_shell(), "kernel", None) is None:
        return "text"
    if _env_flag("ASSISTANT_KIT_LIVE") is False:
        return "static"
    if _env_flag("ASSISTANT_KIT_WIDGETS") and _widgets_available():
        return "widgets"
    return "handles"


def _message_citations(
    content: Any, parts: list[tuple[str, str]]
) -> list[tuple[str, int | None, int | None, str]]:
    """The ``file_citation`` annotations of a message's text parts, their indices moved to the
    message's whole text (the parts joined, as the view shows them)."""
    cites = []
    offset = 0
    for block, (kind, text) in zip(content, parts, strict=True):
        if kind == "text":
            for marker, start, end, file_id in citation_annotations(block.text.annotations):
                moved = (
                    (start + offset, end + offset)
                    if isinstance(start, int) and isinstance(end, int)
                    else (None, None)
                )
                cites.append((marker, *moved, file_id))
        if kind in ("text", "refusal"):
            offset += len(text)
    return cites


class RunView:
    """Renders one run as it streams; see the module docstring for modes and throttling.

    ``display``: the display callable (default ``IPython.display.display``), called as
    ``display(obj, raw=..., display_id=..., update=...)``. ``file``: where text mode writes
    (default ``sys.stdout`` at write time). ``files``: fetches the images of code_interpreter
    calls and ``image_file`` parts (``FileImages(client)``); None shows them by file id.
    """

    def __init__(
        self,
        mode: str | None = None,
        *,
        title: str = "",
        on_cancel: Callable[[], None] | None = None,
        max_rate: float = 10.0,
        display: Callable[..., Any] | None = None,
        file: TextIO | None = None,
        files: FileImages | None = None,
    ) -> None:
        if not max_rate > 0:
            raise ValueError("max_rate must be > 0")
        self.mode = resolve_mode(mode, sink=display is not None)
        self.title = title
        self.on_cancel = on_cancel
        self.max_rate = float(max_rate)
        self.updates = 0
        self.run: Any = None
        self.status: str | None = None
        self.usage: Any = None
        self.errors: list[str] = []
        self.items: list[Item] = []
        self.steps: dict[str, dict[str, Any]] = {}
        self.started = time.perf_counter()
        self.first_token_at: float | None = None
        self.ended_at: float | None = None
        self.files = files
        self._display = display
        self._interval = 1.0 / self.max_rate
        self._next_allowed = 0.0
        self._messages: dict[str, MessageItem] = {}
        self._calls: dict[str, CallItem] = {}
        self._call_slots: dict[tuple[str, int], CallItem] = {}
        self._step_calls: dict[str, list[CallItem]] = {}
        # file_search: the calls in run order (the T of a citation marker) and their results,
        # the list every message of the view resolves its citations against.
        self._search_calls: list[CallItem] = []
        self._search: list[list[Source]] = []
        self._dirty: dict[Item, None] = {}
        self._header_dirty = True
        self._header = Item()
        self._closed = False
        self._term = TextWriter(file, title, files)
        self._widgets: dict[str, Any] = {}
        self._ipywidgets: Any = None
        self._lock = threading.RLock()
        self._timer: threading.Timer | None = None

    # ---- events ------------------------------------------------------------------------

    def on_event(self, event: Any) -> None:
        """One ``AssistantStreamEvent`` (``event.event`` + ``event.data``)."""
        with self._lock:
            self._on_event(event)

    def _on_event(self, event: Any) -> None:
        name = getattr(event, "event", None) or ""
        data = getattr(event, "data", None)
        if name == "thread.message.delta":
            self._on_message_delta(data)
            forced = False
        elif name == "thread.run.step.delta":
            self._on_step_delta(data)
            forced = False
        else:
            if name.startswith("thread.run.step."):
                self._on_step(data)
            elif name.startswith("thread.run."):
                self._on_run(data)
            elif name.startswith("thread.message."):
                self._on_message(data)
            elif name == "error":
                self._add_error(getattr(data, "message", None) or str(data))
            else:
                return
            forced = name == "error" or name.rpartition(".")[2] in _FORCING
            if self.mode == "text":
                self._term.calls(self.items)
        self._tick(forced)

    def on_tool_result(self, call_id: str, output: str, *, error: bool = False) -> None:
        """The output of a tool the caller executed itself, shown under that tool call."""
        with self._lock:
            self._on_tool_result(call_id, output, error=error)

    def _on_tool_result(self, call_id: str, output: str, *, error: bool) -> None:
        call = self._calls.get(call_id) or self._new_call(call_id, "function")
        call.output = "" if output is None else str(output)
        call.error = error
        self._touch(call)
        if self.mode == "text":
            self._term.calls(self.items)
        self._tick(True)

    def on_error(self, message: str) -> None:
        """One clear error line in the render (no traceback)."""
        with self._lock:
            self._add_error(message)
            self._tick(True)

    def _add_error(self, message: str) -> None:
        message = " ".join(str(message).split()) or "error"
        self.errors.append(message)
        self._header_dirty = True
        if self.mode == "text":
            self._term.line(f"! error: {message}")

    def _on_run(self, run: Any) -> None:
        self.run = run
        if run.usage is not None and run.usage != self.usage:
            self.usage = run.usage
            self._header_dirty = True
        if run.status != self.status:
            self.status = run.status
            self._header_dirty = True
            if run.status in _TERMINAL and self.ended_at is None:
                self.ended_at = time.perf_counter()
        action = getattr(run, "required_action", None)
        if action is not None:
            for tc in action.submit_tool_outputs.tool_calls:
                call = self._calls.get(tc.id) or self._new_call(tc.id, tc.type)
                if tc.function.name and call.name != tc.function.name:
                    call.name = tc.function.name
                    self._touch(call)
                if tc.function.arguments and call.arguments != tc.function.arguments:
                    call.args[:] = [tc.function.arguments]
                    self._touch(call)

    def _on_step(self, step: Any) -> None:
        info = self.steps.get(step.id)
        if info is None:
            info = self.steps[step.id] = {"id": step.id, "type": step.type}
        new = {"status": step.status, "usage": step.usage, "error": step.last_error}
        if any(info.get(k) != v for k, v in new.items()):
            info.update(new)
            self._header_dirty = True
            for call in self._step_calls.get(step.id, ()):
                self._touch(call)  # a code call shows its step's state
        tool_calls = getattr(step.step_details, "tool_calls", None) or ()
        for tc, (kind, name, arguments, output, call_id) in zip(tool_calls, step_calls(step), strict=True):
            call = self._calls.get(call_id) or self._new_call(call_id, kind, step.id)
            if kind == "code_interpreter":
                if call.code_snapshot(step, tc.code_interpreter):
                    self._touch(call)
                continue
            if kind == "file_search":
                self._search_snapshot(call, tc.file_search)
                continue
            changed = False
            if name and call.name != name:
                call.name, changed = name, True
            if arguments and call.arguments != arguments:
                call.args[:] = [arguments]
                changed = True
            if output is not None and call.output is None:
                call.output, changed = output, True
            if changed:
                self._touch(call)

    def _on_step_delta(self, data: Any) -> None:
        details = data.delta.step_details
        if getattr(details, "type", None) != "tool_calls":
            return
        for tc in details.tool_calls or ():
            key = (data.id, tc.index)
            call = self._call_slots.get(key)
            if call is None:
                call = (self._calls.get(tc.id) if tc.id else None) or self._new_call(tc.id, tc.type, data.id)
                self._call_slots[key] = call
                if self.mode == "text":
                    self._term.calls(self.items, but=call)
            if tc.id and call.id is None:
                call.id = tc.id
                self._calls[tc.id] = call
            if tc.type == "function" and tc.function is not None:
                fn = tc.function
                if fn.name:
                    call.name = fn.name
                if fn.arguments:
                    call.args.append(fn.arguments)
                if fn.output is not None:
                    call.output = fn.output
            elif tc.type == "code_interpreter" and tc.code_interpreter is not None:
                call.code_delta(tc.code_interpreter)
                if self.mode == "text":
                    self._term.code(call)
            elif tc.type == "file_search":
                self._search_snapshot(call, getattr(tc, "file_search", None))
            if self.first_token_at is None:
                self.first_token_at = time.perf_counter()
            self._touch(call)

    def _search_snapshot(self, call: CallItem, file_search: Any) -> None:
        """A file_search call's ranking options and results (a step's, or a delta's) — given
        its place among the run's file_search calls, which the citation markers count."""
        if call not in self._search_calls:
            self._search_calls.append(call)
            self._search.append([])
        index = self._search_calls.index(call)
        if file_search is None:
            return
        ranking = file_search.get("ranking_options") if isinstance(file_search, dict) else None
        ranking = ranking or getattr(file_search, "ranking_options", None)
        results = file_search.get("results") if isinstance(file_search, dict) else None
        if results is None:
            results = getattr(file_search, "results", None)
        if ranking is not None and ranking != call.ranking:
            call.ranking = ranking
            self._touch(call)
        queries = call_queries(file_search)
        if queries is not None and queries != call.queries:
            call.queries = queries
            self._touch(call)
        if results is not None:
            sources = call_sources(index, file_search)
            if sources != call.results:
                call.results = sources
                self._search[index] = sources
                self._touch(call)
                for msg in self._messages.values():
                    if msg.cites:
                        self._touch(msg)

    def _on_message(self, message: Any) -> None:
        msg = self._messages.get(message.id) or self._new_message(message.id, message.role)
        msg.role, msg.status = message.role, message.status
        parts = content_parts(message.content)
        if parts:
            text = "".join(t for kind, t in parts if kind in ("text", "refusal"))
            msg.images = [t for kind, t in parts if kind == "image_file"]
            msg.refs = [
                ref for block in message.content for ref in file_annotations(block) if ref[0] == "file_path"
            ]
            msg.cites = _message_citations(message.content, parts)
            other = [(kind, t) for kind, t in parts if kind not in ("text", "refusal", "image_file")]
            msg.extras = [f"[{kind}: {t}]" for kind, t in other]
            if text != msg.text:
                msg.parts[:] = [text]
        if self.mode == "text":
            self._term.message(msg)
        self._touch(msg)

    def _on_message_delta(self, data: Any) -> None:
        msg = self._messages.get(data.id) or self._new_message(data.id, data.delta.role or "assistant")
        for block in data.delta.content or ():
            kind = block.type
            if kind == "text":
                value = block.text.value if block.text is not None else None
            elif kind == "refusal":
                value = block.refusal
            else:
                continue  # images arrive whole with thread.message.completed
            if value:
                msg.parts.append(value)
                if self.mode == "text":
                    self._term.message_text(msg, value)
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        self._dirty[msg] = None

    def _new_message(self, message_id: str, role: str) -> MessageItem:
        msg = self._messages[message_id] = MessageItem(message_id, role, self._search)
        self.items.append(msg)
        self._dirty[msg] = None
        return msg

    def _new_call(self, call_id: str | None, kind: str, step_id: str | None = None) -> CallItem:
        call = CallItem(call_id, kind, step_id)
        if call_id:
            self._calls[call_id] = call
        if step_id:
            self._step_calls.setdefault(step_id, []).append(call)
        self.items.append(call)
        self._dirty[call] = None
        return call

    def _touch(self, item: Item) -> None:
        self._dirty[item] = None

    # ---- flushing ----------------------------------------------------------------------

    def _tick(self, forced: bool) -> None:
        if self.mode == "static" or self._closed:
            return
        now = time.perf_counter()
        if forced or now >= self._next_allowed:
            sent = self._flush_text() if self.mode == "text" else self._flush_live()
            if sent:
                self._next_allowed = now + sent * self._interval
        elif self._timer is None and self._pending():
            self._defer(self._next_allowed - now)

    def _pending(self) -> bool:
        if self.mode == "text":
            return self._term.pending()
        return bool(self._dirty) or self._header_dirty

    def _defer(self, delay: float) -> None:
        """Flush what the throttle held back once ``delay`` has passed, unless an event does first."""
        context = contextvars.copy_context()
        timer = threading.Timer(delay, context.run, args=(self._deferred_flush,))
        timer.daemon = True
        self._timer = timer
        timer.start()

    def _deferred_flush(self) -> None:
        with self._lock:
            self._timer = None
            self._tick(False)

    def _flush_live(self) -> int:
        sent = 0
        if self._header_dirty or not self._header.shown:
            self._show_header()
            self._header_dirty = False
            sent += 1
        for item in self._dirty:
            sent += self._show_item(item)
        self._dirty.clear()
        return sent

    def _sink(self) -> Callable[..., Any]:
        if self._display is None:
            from IPython.display import display

            self._display = display
        return self._display

    def _publish(self, obj: Any, slot: str, *, update: bool, raw: bool = True) -> None:
        self._sink()(obj, raw=raw, display_id=slot, update=update)
        self.updates += 1

    def _show_header(self) -> None:
        html = self._header_html()
        if self.mode == "widgets":
            w = self._widgets
            if not w:
                self._build_widgets()
                self._publish(widget_bundle(w["box"]), self._header.slot, update=False)
                self._header.shown = True
            w["header"].value = html
            return
        bundle = {"text/html": html, "text/plain": self._status_line(timing=False)}
        self._publish(bundle, self._header.slot, update=self._header.shown)
        self._header.shown = True

    def _show_item(self, item: Item) -> int:
        """Show ``item``'s live state; its weight for the throttle (1 per ``WEIGHT_BYTES``)."""
        html = self._item_html(item, live=True)
        weight = 1 + len(html) // WEIGHT_BYTES
        if self.mode == "widgets":
            if item.widget is None:
                item.widget = self._ipywidgets.HTML(value=html)
                box = self._widgets["box"]
                box.children = (*box.children, item.widget)
            else:
                item.widget.value = html
            self.updates += 1
            return weight
        bundle = {"text/html": html, "text/plain": truncate(item.as_text(), 200)}
        self._publish(bundle, item.slot, update=item.shown)
        item.shown = True
        return weight

    def _build_widgets(self) -> None:
        import ipywidgets

        self._ipywidgets = ipywidgets
        header = ipywidgets.HTML(value="")
        row: Any = header
        self._widgets["header"] = header
        if self.on_cancel is not None:
            button = ipywidgets.Button(description="Cancel", button_style="warning", tooltip="Cancel the run")
            button.on_click(self._cancel_clicked)
            row = ipywidgets.HBox([header, button])
            self._widgets.update(button=button, row=row)
        self._widgets["box"] = ipywidgets.VBox([row])

    def _cancel_clicked(self, button: Any) -> None:
        button.disabled = True
        button.description = "Cancelling…"
        if self.on_cancel is not None:
            try:
                self.on_cancel()
            except Exception as exc:  # shown in the view; a widget callback has no caller
                self.on_error(f"cancel failed: {exc}")

    def close(self, run: Any = None) -> None:
        """Final flush. Live modes replace the live view by the snapshot; text mode ends
        with a newline and a status line; static mode displays the snapshot once."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._close(run)

    def _close(self, run: Any) -> None:
        if self._closed:
            return
        if run is not None:
            self._on_run(run)
        if self.ended_at is None:
            self.ended_at = time.perf_counter()
        self._closed = True
        if self.mode == "text":
            self._term.calls(self.items, final=True)
            self._term.line(self._status_line(timing=True))
            self._flush_text()
            return
        snapshot = {"text/html": self.to_html(), "text/plain": self.to_text()}
        if self.mode == "static" or not self._header.shown:
            self._publish(snapshot, self._header.slot, update=False)
        else:
            self._publish(snapshot, self._header.slot, update=True)
            for item in self.items:
                if item.shown:
                    self._publish(_EMPTY, item.slot, update=True)
        self._header.shown = True
        self._dirty.clear()
        for widget in (*(item.widget for item in self.items), *self._widgets.values()):
            if widget is not None:
                widget.close()  # free the comms; the panel's output now holds the snapshot

    def _flush_text(self) -> int:
        sent = self._term.flush()
        self.updates += sent
        return sent

    # ---- rendering ---------------------------------------------------------------------

    def _timing(self) -> tuple[float, float | None]:
        end = self.ended_at if self.ended_at is not None else time.perf_counter()
        first = None if self.first_token_at is None else self.first_token_at - self.started
        return end - self.started, first

    def _status_line(self, *, timing: bool) -> str:
        parts = [f"— {self.status or 'not started'}"]
        if self.usage is not None:
            u = self.usage
            parts.append(
                f"{u.total_tokens} tokens (prompt {u.prompt_tokens}, completion {u.completion_tokens})"
            )
        if timing:
            wall, first = self._timing()
            parts.append(f"{wall:.2f} s" + (f" (first token {first:.2f} s)" if first is not None else ""))
        error = self._run_error()
        if error:
            parts.append(error)
        return " · ".join(parts)

    def _run_error(self) -> str:
        """The run's own error, for the status line — just its code when :meth:`on_error`
        already showed the message (a failed stream reports it twice)."""
        run = self.run
        if run is not None and getattr(run, "last_error", None) is not None:
            error = run.last_error
            message = " ".join(error.message.split())
            if any(message in shown for shown in self.errors):
                return error.code
            return f"{error.code}: {message}"
        if run is not None and getattr(run, "incomplete_details", None) is not None:
            return f"incomplete: {run.incomplete_details.reason}"
        return ""

    def _header_html(self) -> str:
        run = self.run
        bits = []
        if self.title:
            bits.append(f"<b>{escape(self.title)}</b>")
        bits.append(badge(self.status or "queued"))
        if run is not None:
            bits.append(f'<code class="ak-id">{escape(run.id)}</code>')
            bits.append(f'<span style="{MUTED}">{escape(run.model)}</span>')
        extra = []
        if self.steps:
            extra.append(f"{len(self.steps)} step{'s' if len(self.steps) != 1 else ''}")
        if self.usage is not None:
            extra.append(f"{self.usage.total_tokens} tokens")
        if extra:
            bits.append(f'<span style="{MUTED}">{escape(" · ".join(extra))}</span>')
        lines = [" ".join(bits)]
        if self.status == "requires_action" and run is not None and run.required_action is not None:
            n = len(run.required_action.submit_tool_outputs.tool_calls)
            lines.append(f'<div style="color:#9a6700">waiting for {n} tool output(s)</div>')
        lines.extend(self._errors_html())
        return f'<div style="{CARD_STYLE}">{"".join(f"<div>{line}</div>" for line in lines)}</div>'

    def _errors_html(self) -> list[str]:
        out = [f'<div style="color:#cf222e">⚠ {escape(e)}</div>' for e in self.errors]
        error = self._run_error()
        if error:
            out.append(f'<div style="color:#cf222e">⚠ {escape(error)}</div>')
        return out

    def _item_html(self, item: Item, *, live: bool) -> str:
        if isinstance(item, CallItem):
            step_status = self.steps.get(item.step_id or "", {}).get("status")
            return item.html(live=live, files=self.files, step_status=step_status)
        return item.html(live=live, files=self.files)

    def _steps_html(self) -> str:
        if not self.steps:
            return ""
        rows = []
        for info in self.steps.values():
            usage = info.get("usage")
            tokens = f" · {usage.total_tokens} tokens" if usage is not None else ""
            error = info.get("error")
            err = f' <span style="color:#cf222e">{escape(error.message)}</span>' if error else ""
            rows.append(
                f'<li><code class="ak-id">{escape(info["id"])}</code> {escape(info["type"])} '
                f'{badge(info.get("status"))}<span style="{MUTED}">{escape(tokens)}</span>{err}</li>'
            )
        n = len(self.steps)
        return (
            f"<details><summary style='cursor:pointer'>{n} run step{'s' if n != 1 else ''}</summary>"
            f"<ol style='margin:2px 0'>{''.join(rows)}</ol></details>"
        )

    def to_html(self) -> str:
        """The static snapshot: transcript (texts escaped, long ones collapsible), each tool
        call collapsible, run steps, final status, usage and timing."""
        header = self._header_html().removeprefix(f'<div style="{CARD_STYLE}">').removesuffix("</div>")
        transcript = "".join(self._item_html(item, live=False) for item in self.items)
        footer = []
        if self.usage is not None:
            u = self.usage
            footer.append(
                f"usage: prompt {u.prompt_tokens} · completion {u.completion_tokens} · "
                f"total {u.total_tokens} tokens"
            )
        wall, first = self._timing()
        timing = f"wall {wall:.2f} s" + (f" · first token {first:.2f} s" if first is not None else "")
        footer.append(f'<span class="ak-timing">{timing}</span>')
        return (
            f'<div class="assistant-kit-run" style="{CARD_STYLE}">{header}'
            f'<div style="margin:4px 0">{transcript}</div>{self._steps_html()}'
            f'<div style="{MUTED};font-size:11px">{" · ".join(footer)}</div></div>'
        )

    def to_text(self) -> str:
        """The snapshot as plain text (no ids, no times: stable for output comparison)."""
        lines = [self.title] if self.title else []
        lines.extend(item.as_text() for item in self.items)
        lines.extend(f"! error: {e}" for e in self.errors)
        lines.append(self._status_line(timing=False))
        return "\n".join(lines)

    @property
    def widget(self) -> Any:
        """The ipywidgets panel in widgets mode (None before the first update and in other modes)."""
        return self._widgets.get("box")

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        return (
            f"<RunView mode={self.mode} status={self.status} items={len(self.items)} updates={self.updates}>"
        )
