"""The ``code_interpreter`` tool and the files it makes, as HTML and text.

One call shows its ``input`` as highlighted Python, then its logs (escaped, long ones
collapsed) and its images inline; a failed step adds its ``last_error``. The same pieces
serve the live :class:`~.render.RunView`, the object cards of :mod:`.html` and the
transcript of :mod:`.inspect`.

Why the choices:

* **Highlighting** is pygments (an IPython dependency), imported on first use, with inline
  styles (``noclasses``): no ``<style>`` block, so it looks the same in JupyterLab, Notebook,
  VS Code and Colab, and on a light background of its own so dark themes stay readable.
  Pygments escapes every token; without pygments the code is escaped plain text.
* **Images** come from the client the caller already has (:class:`FileImages`:
  ``client.files.content(file_id)``), fetched once per file id, and are inlined as
  ``data:`` URIs — only when the bytes *are* a PNG, JPEG, GIF or WebP (sniffed, never
  trusted from a name), and only up to ``max_bytes`` (Jupyter drops output above ~1 MB/s).
  Without a client an image is a labelled placeholder with its file id; a failed fetch is a
  short escaped note. Nothing here raises into a render.
* **Files by reference.** ``file_path`` annotations show the file id (and, with a client,
  the file's name and size) next to the text; bytes are never fetched for them.
* **Whose client.** Each :class:`~.session.Session` has its own ``FileImages`` and enrolls it
  (:func:`enroll`, weakly: a session that is gone drops out). The IPython formatters are shared
  by every session of a process, so for an object shown on its own they ask :func:`owner` for
  the enrolled client whose store has the object's files: a message from a session on one
  database shows its images through that session's client even after a session on another
  database was created. A file no live session has is shown by reference.
"""

from __future__ import annotations

import base64
import functools
import threading
import weakref
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from ._markup import LABEL_STYLE, MUTED, badge, code, collapsible, escape, one_line, text_block, truncate

__all__ = [
    "FileImages",
    "code_block",
    "code_body_html",
    "code_call_html",
    "code_call_text",
    "code_outputs",
    "enroll",
    "file_ref_html",
    "highlight",
    "image_html",
    "image_line",
    "image_mime",
    "owner",
]

# Largest image inlined (raw bytes; base64 adds a third): one plot is ~20-100 kB.
MAX_INLINE_BYTES = 1_000_000
CODE_STYLE = (
    "white-space:pre;overflow-x:auto;margin:2px 0;padding:6px 8px;background:#f6f8fa;color:#1f2328;"
    "border:1px solid rgba(128,128,128,.25);border-radius:4px;font-size:12px;line-height:1.45;"
    "font-family:var(--jp-code-font-family,SFMono-Regular,Menlo,Consolas,monospace)"
)
PLACEHOLDER_STYLE = (
    "display:inline-block;border:1px dashed rgba(128,128,128,.6);border-radius:4px;"
    "padding:6px 10px;margin:2px 0;font-size:12px"
)
NOTE_STYLE = "color:#9a6700;font-size:12px"
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def image_mime(data: bytes) -> str | None:
    """The MIME type of a PNG, JPEG, GIF or WebP image from its first bytes; None otherwise
    (SVG included: it can carry script)."""
    for magic, mime in _SIGNATURES:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class FileInfo(NamedTuple):
    filename: str
    bytes: int


class FileImages:
    """The files of one ``openai.OpenAI`` client, fetched at most once per file id: image
    bytes (``files.content``) for ``<img>``, metadata (``files.retrieve``) for references.

    A failure is remembered as a short note (shown instead of the image) rather than retried
    on every live update. Safe to share between threads: a race fetches twice, nothing worse.
    """

    def __init__(self, client: Any, *, max_bytes: int = MAX_INLINE_BYTES):
        self.client = client
        self.max_bytes = max_bytes
        self._content: dict[str, bytes | str] = {}
        self._info: dict[str, FileInfo | None] = {}
        self._lock = threading.Lock()

    def content(self, file_id: str) -> bytes | str:
        """The file's bytes, or a one-line note saying why there are none."""
        with self._lock:
            cached = self._content.get(file_id)
        if cached is not None:
            return cached
        try:
            value = self._download(file_id)
        except Exception as exc:  # any failure becomes a note: never raise into a render
            value = _failure(exc)
        with self._lock:
            self._content[file_id] = value
        return value

    def _download(self, file_id: str) -> bytes | str:
        """The bytes, read as they stream in and abandoned past ``max_bytes`` (a note then):
        a 50 MB file written by the code is not fetched to be refused."""
        with self.client.files.with_streaming_response.content(file_id) as response:
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > self.max_bytes:
                    length = response.headers.get("content-length", "")
                    size = f"{int(length):,} bytes" if length.isdigit() else f"over {self.max_bytes:,} bytes"
                    return f"{size} is too large to inline"
        return bytes(data)

    def info(self, file_id: str) -> FileInfo | None:
        """The file's name and size (None when it cannot be retrieved)."""
        with self._lock:
            if file_id in self._info:
                return self._info[file_id]
        try:
            obj = self.client.files.retrieve(file_id)
            info: FileInfo | None = FileInfo(str(obj.filename), int(obj.bytes))
        except Exception:  # a reference without a name is still a reference
            info = None
        with self._lock:
            self._info[file_id] = info
        return info

    def has(self, file_id: str) -> bool:
        """Whether this client's store has the file (fetched bytes, or metadata it retrieves)."""
        with self._lock:
            if isinstance(self._content.get(file_id), bytes):
                return True
        return self.info(file_id) is not None

    def size(self, file_id: str) -> int | None:
        """The file's size in bytes, from the fetched content when there is some."""
        with self._lock:
            cached = self._content.get(file_id)
        if isinstance(cached, bytes):
            return len(cached)
        info = self.info(file_id)
        return info.bytes if info is not None else None

    def __repr__(self) -> str:
        return f"<FileImages {len(self._content)} fetched>"


# The FileImages of the live sessions, oldest first: enrolled, never replaced, dropped when
# their session is collected.
_enrolled: list[weakref.ref[FileImages]] = []
_enrolled_lock = threading.Lock()


def enroll(files: FileImages) -> None:
    """Make ``files`` one of the clients :func:`owner` asks (a session does, once)."""
    with _enrolled_lock:
        _enrolled[:] = [ref for ref in _enrolled if ref() is not None]
        _enrolled.append(weakref.ref(files))


def owner(file_ids: Iterable[str]) -> FileImages | None:
    """The enrolled FileImages whose client has the first of ``file_ids`` that any of them has
    (newest session first), else None. One object's files come from one store, so its first
    known file names the client for all of them."""
    with _enrolled_lock:
        live = [files for files in (ref() for ref in reversed(_enrolled)) if files is not None]
    for file_id in file_ids:
        for files in live:
            if files.has(file_id):
                return files
    return None


def _failure(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return truncate(f"{type(exc).__name__}: {one_line(str(message))}", 160)


# ---- pieces ------------------------------------------------------------------------------


@functools.cache
def _pygments() -> tuple[Any, Any, Any] | None:
    try:
        import pygments
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
        from pygments.styles.default import DefaultStyle
        from pygments.token import Error
    except ImportError:
        return None

    class Style(DefaultStyle):  # no red boxes around half-written code while it streams
        styles = {**DefaultStyle.styles, Error: ""}

    formatter = HtmlFormatter(noclasses=True, nowrap=True, style=Style)
    return pygments.highlight, PythonLexer(stripnl=False), formatter


def highlight(source: str) -> str:
    """``source`` as Python, highlighted: escaped text in ``<span style=…>`` (no wrapper)."""
    source = source or ""
    tools = _pygments()
    if tools is None:
        return escape(source)
    run, lexer, formatter = tools
    html = run(source, lexer, formatter)
    return html if source.endswith("\n") else html.removesuffix("\n")


def code_block(source: str, *, collapse_over: int = 20_000) -> str:
    """``source`` highlighted in a ``<pre>``; longer than ``collapse_over`` → collapsible."""
    source = source or ""
    pre = f'<pre style="{CODE_STYLE}">{highlight(source)}</pre>'
    return collapsible(pre, source, collapse_over=collapse_over)


def image_html(
    file_id: str, files: FileImages | None, *, label: str = "image", width: int | None = None
) -> str:
    """An ``<img>`` with the file's bytes inline, a placeholder naming the file when there is
    no client (``files`` None), or a short note when the bytes cannot be shown."""
    ref = f"[{escape(label)}: {code(file_id)}]"
    if files is None:
        return f'<div style="{PLACEHOLDER_STYLE}">{ref}</div>'
    data = files.content(file_id)
    if isinstance(data, str):
        return f'<div style="{NOTE_STYLE}">{ref} not shown: {escape(data)}</div>'
    mime = image_mime(data)
    if mime is None:
        return f'<div style="{NOTE_STYLE}">{ref} not shown: not a PNG, JPEG, GIF or WebP image</div>'
    if len(data) > files.max_bytes:
        return f'<div style="{NOTE_STYLE}">{ref} not shown: {len(data):,} bytes is too large to inline</div>'
    size = f"max-width:min(100%,{width}px)" if width else "max-width:100%"
    return (
        f'<img src="data:{mime};base64,{base64.b64encode(data).decode("ascii")}" '
        f'alt="{escape(label)} {escape(file_id)}" title="{escape(file_id)}" '
        f'style="{size};height:auto;display:block;margin:4px 0">'
    )


def file_ref_html(kind: str, text: str, file_id: str, files: FileImages | None) -> str:
    """One annotation (``file_path``, ``file_citation``) as a reference: the text it
    annotates, the file id and — with a client — the file's name and size."""
    about = ""
    info = files.info(file_id) if files is not None and file_id else None
    if info is not None:
        about = f' <span style="{MUTED}">{escape(info.filename)} · {info.bytes:,} bytes</span>'
    what = f"{code(text)} → " if text else ""
    return f'<div style="{LABEL_STYLE}">📎 {escape(kind)} {what}{code(file_id)}{about}</div>'


def code_outputs(outputs: Iterable[Any] | None) -> tuple[str | None, list[str]]:
    """``(logs, image_file_ids)`` of a call's outputs (SDK models or wire dicts): the logs
    joined (None when there are none), the image file ids in order."""
    logs: list[str] = []
    images: list[str] = []
    for out in outputs or ():
        kind = _get(out, "type")
        if kind == "logs":
            logs.append(_get(out, "logs") or "")
        elif kind == "image":
            file_id = _get(_get(out, "image"), "file_id")
            if file_id:
                images.append(file_id)
    return ("".join(logs) if logs else None), images


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


# ---- a whole call ------------------------------------------------------------------------


def code_body_html(
    source: str,
    logs: str | None,
    image_ids: Sequence[str],
    *,
    error: str | None = None,
    files: FileImages | None = None,
    image_width: int | None = None,
) -> str:
    """The code, its logs, its images and its error, one under the other."""
    parts = [code_block(source)]
    if logs:
        parts.append(f'<div style="{LABEL_STYLE}">output</div>{text_block(logs)}')
    parts.extend(image_html(file_id, files, width=image_width) for file_id in image_ids)
    if error:
        parts.append(f'<div style="color:#cf222e">✗ {escape(error)}</div>')
    return "".join(parts)


def code_call_html(
    source: str,
    logs: str | None,
    image_ids: Sequence[str],
    *,
    status: str | None = None,
    error: str | None = None,
    call_id: str | None = None,
    files: FileImages | None = None,
    expanded: bool = True,
) -> str:
    """One ``code_interpreter`` call, open by default: a summary (first line of code, state)
    over :func:`code_body_html`. ``status``: its step's status."""
    if error or status in ("failed", "expired"):
        state = '<span style="color:#cf222e;font-weight:600">✗ failed</span>'
    elif status == "completed":
        state = '<span style="color:#1a7f37">✓</span>'
    elif status in ("cancelled", "incomplete"):
        state = badge(status)
    else:
        state = f'<span style="{MUTED}">…</span>'
    first = next((line for line in (source or "").splitlines() if line.strip()), "")
    summary = (
        f"→ <code>code_interpreter</code> <span style='{MUTED}'>{escape(truncate(first.strip(), 80))}</span> "
        f"{state}"
    )
    head = f'<div style="{LABEL_STYLE}">code_interpreter call {code(call_id)}</div>' if call_id else ""
    body = code_body_html(source, logs, image_ids, error=error, files=files)
    return (
        f"<details{' open' if expanded else ''} style='margin:2px 0'>"
        f"<summary style='cursor:pointer'>{summary}</summary>"
        f"<div style='margin-left:14px'>{head}{body}</div></details>"
    )


def code_call_text(
    source: str,
    logs: str | None,
    image_ids: Sequence[str],
    *,
    error: str | None = None,
    ids: bool = True,
    files: FileImages | None = None,
    log_limit: int = 1000,
) -> str:
    """The call as plain text: ``→ code_interpreter``, the code indented, ``← logs``, one
    ``[image file-… (N bytes)]`` line per image (``[image]`` when ``ids`` is False, for
    output that must not change between runs), ``✗ error``."""
    lines = ["→ code_interpreter"]
    lines.extend("    " + line for line in (source or "").splitlines())
    if logs:
        lines.append("← " + truncate(logs.rstrip("\n"), log_limit))
    lines.extend(image_line(file_id, files) if ids else "[image]" for file_id in image_ids)
    if error:
        lines.append(f"✗ {error}")
    return "\n".join(lines)


def image_line(file_id: str, files: FileImages | None) -> str:
    """``[image file-… (N bytes)]`` (the size when the client can tell it)."""
    size = files.size(file_id) if files is not None else None
    return f"[image {file_id}" + (f" ({size:,} bytes)]" if size is not None else "]")
