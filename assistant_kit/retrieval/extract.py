"""Text out of uploaded files: plain text, Markdown, code, JSON, HTML, CSV, PDF and DOCX.

The format is chosen by the file name's extension (what OpenAI's file_search does too), then
by the ``content_type``; a name without an extension is accepted when its bytes are text.
Anything else raises :class:`UnsupportedFileError` (``last_error.code = "unsupported_file"``),
and bytes the chosen parser cannot read raise :class:`InvalidFileError` (``invalid_file``).

A file that yields no text at all (an empty file, a scanned PDF without a text layer) is
``invalid_file`` too: it would otherwise be a ``completed`` file that no search can ever
find, which hides the problem from the user; the message says there was no text.

PDF (pypdf) and DOCX (python-docx) parsers are in the ``retrieval`` extra and imported only
when such a file arrives; HTML uses the standard library's parser (text only: ``<script>``,
``<style>``, ``<template>`` and ``<noscript>`` are dropped).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from html.parser import HTMLParser
from pathlib import PurePosixPath

from .errors import InvalidFileError, UnsupportedFileError

#: Extensions read as text as they are (prose, markup, code, config).
TEXT_EXTENSIONS = frozenset(
    """txt text md markdown mdx rst adoc org tex log
    py pyi ipynb js mjs cjs jsx ts tsx java kt kts scala c h cc cpp cxx hpp hh cs go rs rb php pl pm
    swift m mm r jl lua sh bash zsh fish ps1 bat sql css scss less vue svelte dart hs ml ex exs
    erl clj el vim toml yaml yml ini cfg conf properties env xml svg tsv""".split()
)
JSON_EXTENSIONS = frozenset({"json", "jsonl", "ndjson", "geojson"})
HTML_EXTENSIONS = frozenset({"html", "htm", "xhtml"})
CSV_EXTENSIONS = frozenset({"csv"})
PDF_EXTENSIONS = frozenset({"pdf"})
DOCX_EXTENSIONS = frozenset({"docx"})

_BY_TYPE = {
    "application/json": "json",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/csv": "csv",
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
}
SUPPORTED_EXTENSIONS = (
    TEXT_EXTENSIONS | JSON_EXTENSIONS | HTML_EXTENSIONS | CSV_EXTENSIONS | PDF_EXTENSIONS | DOCX_EXTENSIONS
)


def file_kind(filename: str, content_type: str | None = None) -> str | None:
    """``text``, ``json``, ``html``, ``csv``, ``pdf``, ``docx``; ``""`` for a name without an
    extension (text if its bytes are); None when unsupported."""
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower().lstrip(".")
    for kind, extensions in (
        ("json", JSON_EXTENSIONS),
        ("html", HTML_EXTENSIONS),
        ("csv", CSV_EXTENSIONS),
        ("pdf", PDF_EXTENSIONS),
        ("docx", DOCX_EXTENSIONS),
        ("text", TEXT_EXTENSIONS),
    ):
        if suffix in extensions:
            return kind
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime in _BY_TYPE:
        return _BY_TYPE[mime]
    if mime.startswith("text/"):
        return "text"
    return "" if not suffix else None


def extract_text(data: bytes, filename: str, content_type: str | None = None) -> str:
    """The searchable text of one file; raises ``UnsupportedFileError`` / ``InvalidFileError``."""
    kind = file_kind(filename, content_type)
    if kind is None:
        suffix = PurePosixPath(filename).suffix or filename
        raise UnsupportedFileError(
            f"Files of type {suffix!r} are not supported for vector stores (text, Markdown, code, "
            "JSON, HTML, CSV, PDF and DOCX are)."
        )
    if kind == "":
        if b"\x00" in data[:8192]:
            raise UnsupportedFileError(f"File {filename!r} has no extension and its content is not text.")
        kind = "text"
    if kind == "pdf":
        text = _pdf_text(data)
    elif kind == "docx":
        text = _docx_text(data)
    else:
        raw = decode_text(data, filename)
        if kind == "json":
            text = _json_text(raw, filename)
        elif kind == "html":
            text = html_text(raw)
        elif kind == "csv":
            text = _csv_text(raw, filename)
        else:
            text = raw
    text = _tidy(text)
    if not text.strip():
        raise InvalidFileError(f"File {filename!r} contains no extractable text.")
    return text


def decode_text(data: bytes, filename: str = "file") -> str:
    """UTF-8 (with or without BOM), UTF-16/32 with a BOM, else Windows-1252 when that decodes;
    NUL bytes or undecodable content are ``invalid_file``."""
    for bom, encoding in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise InvalidFileError(f"File {filename!r} is not valid {encoding}: {exc.reason}.") from None
    if b"\x00" in data:
        raise InvalidFileError(f"File {filename!r} is binary, not text (it contains NUL bytes).")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        raise InvalidFileError(f"File {filename!r} is neither UTF-8 nor Windows-1252 text.") from None


def _json_text(raw: str, filename: str) -> str:
    """JSON (or JSON Lines) is validated and kept as written: keys are words people search for."""
    try:
        json.loads(raw)
    except ValueError as first:
        lines = [line for line in raw.splitlines() if line.strip()]
        try:
            for line in lines:
                json.loads(line)
        except ValueError:
            raise InvalidFileError(f"File {filename!r} is not valid JSON: {first}.") from None
        if not lines:
            raise InvalidFileError(f"File {filename!r} is not valid JSON: {first}.") from None
    return raw


def _csv_text(raw: str, filename: str) -> str:
    """Rows as comma-separated lines (quoted fields unquoted), so a cell's words are tokens."""
    try:
        rows = list(csv.reader(io.StringIO(raw)))
    except csv.Error as exc:
        raise InvalidFileError(f"File {filename!r} is not valid CSV: {exc}.") from None
    return "\n".join(", ".join(cell.strip() for cell in row) for row in rows)


class _HTMLText(HTMLParser):
    _SKIP = frozenset({"script", "style", "template", "noscript", "head"})
    _BLOCK = frozenset(
        "p div br li ul ol tr table section article header footer h1 h2 h3 h4 h5 h6 pre blockquote "
        "dt dd title hr main nav aside figure figcaption".split()
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
        elif tag in self._SKIP:
            self.skipping += 1
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        elif tag in self._SKIP and self.skipping:
            self.skipping -= 1
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping or self.in_title:
            self.parts.append(data)


def html_text(raw: str) -> str:
    """Visible text of an HTML document (and its ``<title>``), one line per block element."""
    parser = _HTMLText()
    parser.feed(raw)
    parser.close()
    return "".join(parser.parts)


def _pdf_text(data: bytes) -> str:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise UnsupportedFileError(
            "PDF files need the 'retrieval' extra: pip install 'assistant-kit[retrieval]'."
        ) from None
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            reader.decrypt("")
        return "\n\n".join((page.extract_text() or "") for page in reader.pages)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as exc:
        raise InvalidFileError(f"The PDF could not be read: {exc}.") from None


def _docx_text(data: bytes) -> str:
    try:
        import docx
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise UnsupportedFileError(
            "DOCX files need the 'retrieval' extra: pip install 'assistant-kit[retrieval]'."
        ) from None
    import zipfile

    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise InvalidFileError(f"The DOCX file could not be read: {exc}.") from None
    except Exception as exc:  # python-docx raises its own PackageNotFoundError and lxml errors
        raise InvalidFileError(f"The DOCX file could not be read: {exc}.") from None
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.append(" | ".join(cell.text.strip() for cell in row.cells))
    return "\n".join(parts)


_SPACES = re.compile(r"[ \t\f\v]+\n")
_BLANKS = re.compile(r"\n{3,}")


def _tidy(text: str) -> str:
    """Line endings to ``\\n``, trailing blanks and runs of empty lines dropped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _BLANKS.sub("\n\n", _SPACES.sub("\n", text)).strip("\n")
