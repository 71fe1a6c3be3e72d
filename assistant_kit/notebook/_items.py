"""The items of a :class:`~.render.RunView` transcript — one message or one tool call each,
each with its own display slot — and how one renders, as HTML and as text.

An item holds what the stream has said so far: text and arguments as lists of fragments
(joined when read, so a long stream costs no quadratic copying); for a ``code_interpreter``
call its code, its logs (``output``), its image file ids and its failed step's error, merged
from deltas (:meth:`CallItem.code_delta`) and whole steps (:meth:`CallItem.code_snapshot`,
the authority). The text-mode progress (what :mod:`.terminal` has written) lives here too.
"""

from __future__ import annotations

import uuid
from typing import Any

from ._markup import MUTED, PRE_STYLE, escape, text_block, truncate
from .citations import (
    Source,
    cited_html,
    cited_text,
    footnotes_text,
    resolve,
    search_call_html,
    search_call_text,
)
from .code import FileImages, code_call_html, code_call_text, code_outputs, file_ref_html, image_html
from .html import step_error, tool_call_html

# Longest text re-sent per live update (10 updates/s x 20 kB stays far below IOPub's 1 MB/s);
# the snapshot at close always holds the whole text.
LIVE_TEXT_LIMIT = 20_000
# Code is re-highlighted on every live update (~2.5 ms per kB): its live tail is shorter.
LIVE_CODE_LIMIT = 8_000


def slot_id() -> str:
    return f"assistant-kit-{uuid.uuid4().hex[:16]}"


def tail(text: str | None, limit: int = LIVE_TEXT_LIMIT) -> str:
    text = text or ""
    if len(text) <= limit:
        return text
    return f"… ({len(text) - limit:,} earlier chars; all of it when the run ends)\n{text[-limit:]}"


class Item:
    __slots__ = ("shown", "slot", "widget")

    def __init__(self) -> None:
        self.slot = slot_id()
        self.shown = False
        self.widget: Any = None


class MessageItem(Item):
    __slots__ = (
        "cites",
        "extras",
        "extras_printed",
        "held",
        "id",
        "images",
        "numbers",
        "parts",
        "printed",
        "refs",
        "role",
        "sources",
        "status",
    )

    def __init__(self, message_id: str, role: str, sources: list[list[Source]] | None = None) -> None:
        super().__init__()
        self.id = message_id
        self.role = role
        self.status = "in_progress"
        self.parts: list[str] = []
        self.images: list[str] = []  # image_file parts (file ids)
        self.refs: list[tuple[str, str, str]] = []  # file_path annotations: (kind, text, file_id)
        # file_citation annotations (text, start, end, file_id), resolved through ``sources``:
        # the run's file_search results, one list per call (the view's, shared and growing).
        self.cites: list[tuple[str, int | None, int | None, str]] = []
        self.sources = sources
        self.extras: list[str] = []  # other non-text content, as text ("[image_url: …]")
        self.printed = 0  # text mode: characters already written (or held back)
        self.held = ""  # text mode: the start of a citation marker, held until it closes
        self.numbers: dict[tuple[int, int], int] = {}  # text mode: marker (T, R) → its number
        self.extras_printed = False

    @property
    def text(self) -> str:
        if len(self.parts) > 1:
            self.parts[:] = ["".join(self.parts)]
        return self.parts[0] if self.parts else ""

    def html(self, *, live: bool, files: FileImages | None) -> str:
        label = f'<div style="{MUTED};font-size:11px;font-weight:600">{escape(self.role)}</div>'
        if self.cites and (not live or self.status != "in_progress"):
            # Numbered once the message is whole (its annotations come with it), live or not.
            body = cited_html(self.text, self.citations())
        elif live:
            body = f'<pre style="{PRE_STYLE}">{escape(tail(self.text))}</pre>'
        else:
            body = text_block(self.text)
        extras = [file_ref_html(*ref, files) for ref in self.refs]
        extras.extend(image_html(file_id, files, label="image_file") for file_id in self.images)
        extras.extend(f'<div style="{MUTED}">{escape(truncate(x, 200))}</div>' for x in self.extras)
        return f'<div style="margin:4px 0">{label}{body}{"".join(extras)}</div>'

    def citations(self) -> list[Any]:
        """The message's citations, numbered and resolved against the run's search results."""
        return resolve(self.text, self.cites, self.sources)

    def as_text(self) -> str:
        refs = [f"[{kind} {text} → {file_id}]" for kind, text, file_id in self.refs]
        images = [f"[image_file: {file_id}]" for file_id in self.images]
        if not self.cites:
            return "\n".join([f"{self.role}: {self.text}", *refs, *images, *self.extras])
        cites = self.citations()
        text = cited_text(self.text, cites)
        return "\n".join([f"{self.role}: {text}", *footnotes_text(cites), *refs, *images, *self.extras])


class CallItem(Item):
    __slots__ = (
        "announced",
        "args",
        "code_printed",
        "error",
        "failure",
        "id",
        "images",
        "images_printed",
        "input_done",
        "kind",
        "logs_printed",
        "name",
        "output",
        "output_announced",
        "queries",
        "ranking",
        "results",
        "step_id",
    )

    def __init__(self, call_id: str | None, kind: str, step_id: str | None = None) -> None:
        super().__init__()
        self.id = call_id
        self.kind = kind or "function"
        self.name = ""
        self.args: list[str] = []  # a code call's input
        self.output: str | None = None  # a code call's logs
        self.error = False
        self.step_id = step_id
        self.images: list[str] = []  # code_interpreter: image file ids
        self.results: list[Source] | None = None  # file_search: its results (None: not yet)
        self.ranking: Any = None  # file_search: its ranking_options
        self.queries: list[str] | None = None  # file_search: what it searched for, if known
        self.failure: str | None = None  # code_interpreter: its failed step's error
        self.input_done = False  # code_interpreter: outputs began or the step ended
        self.announced = False  # text mode progress ↓
        self.output_announced = False
        self.code_printed = 0  # chars of the code written, always at a line's end until input_done
        self.logs_printed = 0
        self.images_printed = 0

    @property
    def arguments(self) -> str:
        if len(self.args) > 1:
            self.args[:] = ["".join(self.args)]
        return self.args[0] if self.args else ""

    def code_delta(self, ci: Any) -> None:
        """A ``code_interpreter`` delta: code fragments append to the input, logs (at output
        index 0) accumulate, each image output adds its file id once."""
        self.name = "code_interpreter"
        if ci.input:
            self.args.append(ci.input)
        for out in ci.outputs or ():
            self.input_done = True
            if out.type == "logs" and out.logs:
                self.output = (self.output or "") + out.logs
            elif out.type == "image" and out.image is not None and out.image.file_id:
                if out.image.file_id not in self.images:
                    self.images.append(out.image.file_id)

    def code_snapshot(self, step: Any, ci: Any) -> bool:
        """The call as its ``step`` has it now (the authority over the deltas); True if changed."""
        logs, images = code_outputs(ci.outputs)
        failure = step_error(step) if step.status == "failed" else None
        changed = False
        self.name = "code_interpreter"
        if ci.input and self.arguments != ci.input:
            self.args[:] = [ci.input]
            changed = True
        if logs is not None and logs != self.output:
            self.output, changed = logs, True
        if images and images != self.images:
            self.images[:] = images
            changed = True
        if failure and failure != self.failure:
            self.failure, changed = failure, True
        if ci.outputs or step.status != "in_progress":
            self.input_done = True
        return changed

    def html(self, *, live: bool, files: FileImages | None, step_status: str | None = None) -> str:
        code = self.kind == "code_interpreter"
        arguments = (
            tail(self.arguments, LIVE_CODE_LIMIT if code else LIVE_TEXT_LIMIT) if live else self.arguments
        )
        output = tail(self.output) if live and self.output is not None else self.output
        if self.kind == "file_search":
            return search_call_html(
                self.results,
                ranking_options=self.ranking,
                call_id=self.id,
                queries=self.queries,
                done=step_status != "in_progress",
            )
        if code:
            return code_call_html(
                arguments,
                output,
                self.images,
                status=step_status,
                error=self.failure,
                call_id=self.id,
                files=files,
            )
        return tool_call_html(self.name, arguments, output, error=self.error, kind=self.kind, call_id=self.id)

    def as_text(self) -> str:
        if self.kind == "code_interpreter":  # no ids: the snapshot's text must not change between runs
            return code_call_text(self.arguments, self.output, self.images, error=self.failure, ids=False)
        if self.kind == "file_search":
            return search_call_text(self.results, queries=self.queries)
        line = f"→ {self.name or self.kind}({truncate(self.arguments, 500)})"
        if self.output is not None:
            line += ("\n← error: " if self.error else "\n← ") + truncate(self.output, 1000)
        return line
