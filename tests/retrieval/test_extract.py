"""Text extraction: each supported format gives its words, anything else is a typed failure
with the spec's ``last_error`` code."""

from __future__ import annotations

import io
import json
import zlib

import pytest

from assistant_kit.retrieval import InvalidFileError, UnsupportedFileError
from assistant_kit.retrieval.extract import extract_text


def make_pdf(lines: list[str], compress: bool = True) -> bytes:
    """A minimal valid one-page PDF (Helvetica text), written by hand: no PDF writer needed."""
    content = "BT /F1 12 Tf 72 720 Td " + " ".join(f"({line}) Tj 0 -16 Td" for line in lines) + " ET"
    stream = zlib.compress(content.encode()) if compress else content.encode()
    extra = b"/Filter /FlateDecode " if compress else b""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< " + extra + b"/Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def make_docx(paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    docx = pytest.importorskip("docx")
    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, cell in enumerate(row):
                grid.cell(r, c).text = cell
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("notes.txt", b"The quick brown fox\r\njumps over the lazy dog"),
        ("README.md", b"# Title\n\nSome *Markdown* text about the fox."),
        ("main.py", b"def fox():\n    return 'quick brown fox'\n"),
        ("Makefile", b"fox:\n\techo quick brown fox\n"),
        ("legacy.txt", "caf\u00e9 fox".encode("cp1252")),
        ("bom16.txt", "fox \u00e9t\u00e9".encode("utf-16")),
    ],
)
def test_text_formats_keep_their_words(name: str, data: bytes) -> None:
    text = extract_text(data, name)
    assert "fox" in text
    assert "\r" not in text


def test_json_is_validated_and_kept_and_jsonl_accepted() -> None:
    payload = json.dumps({"animal": "fox", "speed": "quick"}).encode()
    assert '"animal": "fox"' in extract_text(payload, "data.json")
    assert "owl" in extract_text(b'{"a": "fox"}\n{"b": "owl"}\n', "rows.jsonl")
    with pytest.raises(InvalidFileError) as err:
        extract_text(b'{"animal": "fox",', "broken.json")
    assert err.value.code == "invalid_file"


def test_html_keeps_visible_text_only() -> None:
    html = b"""<html><head><title>Foxes</title><style>p{color:red}</style>
    <script>var secret = "tracking";</script></head>
    <body><h1>Quick&nbsp;fox</h1><p>Jumps&amp;runs</p><noscript>enable js</noscript></body></html>"""
    text = extract_text(html, "page.html")
    assert "Foxes" in text and "Quick\xa0fox" in text and "Jumps&runs" in text
    assert "tracking" not in text and "color" not in text and "enable js" not in text


def test_csv_rows_become_lines() -> None:
    text = extract_text(b'name,notes\nfox,"quick, brown"\nowl,wise\n', "animals.csv")
    assert text.splitlines() == ["name, notes", "fox, quick, brown", "owl, wise"]


def test_pdf_text_is_extracted() -> None:
    pytest.importorskip("pypdf")
    text = extract_text(make_pdf(["Greatest common divisor", "of two integers"]), "paper.pdf")
    assert "Greatest common divisor" in text and "integers" in text
    assert "divisor" in extract_text(make_pdf(["divisor"], compress=False), "x.bin", "application/pdf")


def test_docx_paragraphs_and_tables_are_extracted() -> None:
    data = make_docx(["Quarterly report", "Revenue grew."], table=[["region", "sales"], ["north", "42"]])
    text = extract_text(data, "report.docx")
    assert "Quarterly report" in text and "Revenue grew." in text and "north | 42" in text


@pytest.mark.parametrize(
    ("name", "data", "content_type"),
    [
        ("photo.png", b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"),
        ("archive.zip", b"PK\x03\x04", None),
        ("binary", b"\x7fELF\x00\x00\x00", None),
        ("slides.pptx", b"PK\x03\x04", None),
    ],
)
def test_other_formats_are_unsupported(name: str, data: bytes, content_type: str | None) -> None:
    with pytest.raises(UnsupportedFileError) as err:
        extract_text(data, name, content_type)
    assert err.value.code == "unsupported_file"
    assert err.value.last_error()["code"] == "unsupported_file"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("empty.txt", b""),
        ("blank.md", b"  \n\n\t\n"),
        ("nul.txt", b"text\x00with nul"),
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf"),
        ("broken.docx", b"PK\x03\x04 not a zip"),
        ("notext.pdf", None),
        ("bad16.txt", b"\xff\xfe\x00\xd8"),
    ],
)
def test_broken_or_empty_content_is_invalid(name: str, data: bytes | None) -> None:
    if name.endswith(".pdf"):
        pytest.importorskip("pypdf")
    if name.endswith(".docx"):
        pytest.importorskip("docx")
    if data is None:
        data = make_pdf([])  # a valid PDF with no text layer
    with pytest.raises(InvalidFileError) as err:
        extract_text(data, name)
    assert err.value.code == "invalid_file"
