"""``assistant_kit.tools._capture``: what of an execution's output is kept (no kernel)."""

from __future__ import annotations

import base64
from pathlib import Path

from assistant_kit.tools._capture import Logs, base_name, png_bytes, snapshot


def test_logs_keep_what_fits_without_colour_codes_and_count_the_rest() -> None:
    logs = Logs(10)
    assert logs.add("\x1b[31mred\x1b[0m ") == "red "
    assert logs.add("x" * 1_000_000) == "x" * 6  # a huge chunk: only what fits is cleaned and kept
    assert logs.add("more") == ""
    assert logs.finish(images_dropped=2).splitlines()[1:] == [
        "… [output truncated: 999,998 more characters]",
        "… [2 more images not kept]",
    ]
    assert logs.text.startswith("red xxxxxx\n…")


def test_png_bytes_says_why_it_keeps_nothing() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 10
    assert png_bytes(base64.b64encode(png).decode(), 100) == png
    assert png_bytes("abcde", 100) == "invalid base64"
    assert png_bytes(b"bytes", 100) == "not base64 text"
    assert png_bytes("A" * 400, 100) == "over 100 bytes"


def test_snapshot_lists_regular_files_and_says_when_it_stopped_short(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / ".hidden").write_text("h")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "m.pyc").write_text("c")
    (tmp_path / "link").symlink_to(tmp_path / "a.txt")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("bb")
    files, listed = snapshot(tmp_path, 100)
    assert {Path(p).relative_to(tmp_path).as_posix(): size for p, (_, size) in files.items()} == {
        "a.txt": 1,
        "sub/b.txt": 2,
    }
    assert listed is None  # everything was listed
    files, listed = snapshot(tmp_path, 1)
    assert listed == {str(tmp_path)} and list(files) == [str(tmp_path / "a.txt")]


def test_base_name_keeps_the_last_component_or_refuses() -> None:
    assert [base_name(n) for n in ["a.csv", "../x", "/etc/passwd", "C:\\dir\\b.csv"]] == [
        "a.csv",
        "x",
        "passwd",
        "b.csv",
    ]
    assert [base_name(n) for n in ["", ".", "..", "dir/..", "a\0b"]] == [None] * 5
