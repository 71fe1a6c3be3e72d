"""``RunView``'s text mode: what a terminal, a script's stdout or terminal IPython shows.

Message text is written as it arrives (a role prefix for non-assistant messages); a function
call is one ``→ name(args)`` line once its arguments are complete, its output one ``← …``
line; a ``code_interpreter`` call is ``→ code_interpreter`` and its code indented once the
model has finished writing it, then its logs as they arrive (``← …``), one
``[image file-… (N bytes)]`` line per image and ``✗ …`` if its step failed. A ``file_search``
call is ``→ file_search`` and, once its step has them, one line per result (rank, file, score,
the chunk's start). A citation marker ``【T:R†…】`` in streamed text is written as ``[n]``
(held back until its closing bracket arrives), and the message ends with one footnote line per
cited source. Errors are ``! error: …`` lines; the view ends with its status line.

Control characters from the model are neutralised (an ESC sequence could rewrite the
terminal): C0/C1 controls become U+FFFD, CR is dropped, tab and newline are kept. Output is
buffered and written by :meth:`TextWriter.flush`, which the view calls at its throttled rate.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TextIO

from ._items import CallItem, Item, MessageItem
from ._markup import truncate
from .citations import MARKER, footnotes_text, search_call_text
from .code import FileImages, image_line

CONTROLS: dict[int, str | None] = {c: "\ufffd" for c in (*range(0, 9), 11, 12, *range(14, 32), 127)}
CONTROLS.update({c: "\ufffd" for c in range(0x80, 0xA0)})
CONTROLS[13] = None
# Logs written per code call (the snapshot keeps them all); past it, one line says so.
LOG_LIMIT = 10_000
# Longest text held back waiting for a citation marker's closing bracket.
MARKER_HOLD = 80


class TextWriter:
    """Buffers the text of one view and writes it to ``file`` (default ``sys.stdout`` at
    write time), ``title`` first. Items keep their own progress (``printed``, ``announced`` …)."""

    def __init__(self, file: TextIO | None = None, title: str = "", files: FileImages | None = None):
        self.file = file
        self.title = title
        self.files = files
        self._buf: list[str] = []
        self._owner: Any = None  # the item whose text the current line continues
        self._at_line_start = True
        self._title_written = False

    def _out(self) -> TextIO:
        return self.file if self.file is not None else sys.stdout

    def pending(self) -> bool:
        """Whether text is buffered, not yet written."""
        return bool(self._buf)

    def flush(self) -> int:
        """Write what is buffered; the number of writes (0 or 1)."""
        if not self._buf:
            return 0
        out = self._out()
        if self.title and not self._title_written:
            self._title_written = True
            out.write(f"{self.title}\n".translate(CONTROLS))
        out.write("".join(self._buf))
        out.flush()
        self._buf.clear()
        return 1

    def stream(self, owner: Any, text: str, prefix: str = "") -> None:
        """Continue ``owner``'s line with ``text``; a new owner starts a new line with ``prefix``."""
        if self._owner is not owner:
            self.end_line()
            if prefix:
                self._buf.append(prefix)
            self._owner = owner
        self._buf.append(text.translate(CONTROLS))
        self._at_line_start = text.endswith("\n")

    def end_line(self) -> None:
        if not self._at_line_start:
            self._buf.append("\n")
            self._at_line_start = True
        self._owner = None

    def line(self, line: str) -> None:
        self.end_line()
        self._buf.append(line.translate(CONTROLS) + "\n")

    # ---- messages ----------------------------------------------------------------------

    def message_text(self, msg: MessageItem, text: str) -> None:
        msg.printed += len(text)
        out = self._numbered(msg, text)
        if out:
            self.stream(msg, out, "" if msg.role == "assistant" else f"[{msg.role}] ")

    def _numbered(self, msg: MessageItem, text: str, *, final: bool = False) -> str:
        """``text`` with the citation markers in it as ``[n]`` (n by first appearance in the
        message, as the footnotes number them); an unclosed ``【`` is held back (``msg.held``)
        until its ``】`` arrives, the message ends (``final``) or it is too long to be a marker."""
        text = msg.held + text
        msg.held = ""
        if not final:
            opening = text.rfind("【")
            if opening >= 0 and "】" not in text[opening:] and len(text) - opening <= MARKER_HOLD:
                text, msg.held = text[:opening], text[opening:]
        if "【" not in text:
            return text

        def number(match: Any) -> str:
            key = (int(match.group(1)), int(match.group(2)))
            return f"[{msg.numbers.setdefault(key, len(msg.numbers) + 1)}]"

        return MARKER.sub(number, text)

    def message(self, msg: MessageItem) -> None:
        """A whole message event: the text not written yet; once it is no longer in progress,
        its images and other parts (once) and the end of its line."""
        text = msg.text
        if len(text) > msg.printed:
            self.message_text(msg, text[msg.printed :])
        if msg.status == "in_progress" or msg.extras_printed:
            return
        msg.extras_printed = True
        if msg.held:
            self.stream(msg, self._numbered(msg, "", final=True))
        if msg.cites:
            for line in footnotes_text(msg.citations()):
                self.line(line)
        for kind, value, file_id in msg.refs:
            self.line(f"[{kind} {value} → {file_id}]")
        for file_id in msg.images:
            self.line(image_line(file_id, self.files))
        for extra in msg.extras:
            self.line(extra)
        if self._owner is msg:
            self.end_line()

    # ---- tool calls --------------------------------------------------------------------

    def calls(self, items: Iterable[Item], *, but: Item | None = None, final: bool = False) -> None:
        """Announce the tool calls not announced yet (except ``but``, the one just starting)
        and their outputs; a code call's code as its lines complete (all of it once a later call
        starts, or ``final``)."""
        for item in items:
            if item is but or not isinstance(item, CallItem):
                continue
            if item.kind == "code_interpreter":
                self.code(item, force=final or but is not None)
                continue
            if item.kind == "file_search":
                # Announced with its results (the queries come with them), or at the end.
                if item.results is None and not final:
                    continue
                if not item.announced:
                    item.announced = True
                    self.line(search_call_text(None, queries=item.queries))
                if item.results is not None and not item.output_announced:
                    item.output_announced = True
                    lines = search_call_text(item.results, queries=item.queries).splitlines()[1:]
                    for line in lines:
                        self.line(line)
                continue
            if not item.announced:
                item.announced = True
                self.line(f"→ {item.name or item.kind}({truncate(item.arguments, 500)})")
            if item.output is not None and not item.output_announced:
                item.output_announced = True
                prefix = "← error: " if item.error else "← "
                self.line(prefix + truncate(item.output, 1000))

    def code(self, call: CallItem, *, force: bool = False) -> None:
        """A code call's progress: its code line by line as the lines complete (a terminal cannot
        rewrite a half-written line; the last one is written when the input is done), new logs,
        new images, its error."""
        code = call.arguments
        done = call.input_done or force
        end = len(code) if done else code.rfind("\n") + 1
        if not call.announced and (end or done):
            call.announced = True
            self.line("→ code_interpreter")
        if end > call.code_printed:
            for code_line in code[call.code_printed : end].splitlines():
                self.line("    " + code_line)
            call.code_printed = end
        if not done:
            return
        logs = call.output or ""
        if len(logs) > call.logs_printed and call.logs_printed < LOG_LIMIT:
            chunk = logs[call.logs_printed : LOG_LIMIT]
            self.stream(call, chunk, "← ")
            call.logs_printed += len(chunk)
        if len(logs) > LOG_LIMIT and call.logs_printed == LOG_LIMIT:
            call.logs_printed += 1  # say it once
            self.line(f"… (logs past {LOG_LIMIT:,} chars are not printed here)")
        for file_id in call.images[call.images_printed :]:
            self.line(image_line(file_id, self.files))
        call.images_printed = len(call.images)
        if call.failure and not call.output_announced:
            call.output_announced = True
            self.line(f"✗ {call.failure}")
