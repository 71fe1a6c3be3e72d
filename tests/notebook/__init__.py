"""Tests of the notebook layer, one module per module of ``assistant_kit.notebook``."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from typing import Any

DATA_IMAGE = re.compile(r"data:image/(png|jpeg|gif|webp);base64,([A-Za-z0-9+/]+={0,2})")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DANGEROUS_TAGS = {"script", "img", "iframe", "object", "embed", "a", "link", "style", "svg", "math", "form"}


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def assert_inert(html: str, *, data_images: bool = False) -> None:
    """``html`` as a browser would parse it has no active content: no script/img/link-ish
    tags, no ``on*`` handlers, no ``src``/``href`` — whatever the escaped text says.

    ``data_images``: ``<img>`` tags are allowed if they are ours — a ``src`` that is a base64
    ``data:`` URI of a raster image, and only ``alt``/``title``/``style`` besides."""
    lowered = html.lower()
    assert "<script" not in lowered
    if not data_images:
        assert "<img" not in lowered
    parser = _Collector()
    parser.feed(html)
    parser.close()
    for tag, attrs in parser.tags:
        if data_images and tag == "img":
            assert_our_image(attrs)
            continue
        assert tag not in DANGEROUS_TAGS, tag
        for name, _value in attrs:
            assert not name.startswith("on"), (tag, name)
            assert name not in ("src", "href", "srcset", "action", "formaction"), (tag, name)


def assert_our_image(attrs: list[tuple[str, str | None]]) -> None:
    names = [name for name, _ in attrs]
    assert sorted(names) == ["alt", "src", "style", "title"], names
    src = dict(attrs)["src"] or ""
    assert DATA_IMAGE.fullmatch(src), src[:80]


def data_images(html: str) -> list[tuple[str, bytes]]:
    """``(alt, bytes)`` of every ``<img>`` in ``html``, decoded from its ``data:`` URI."""
    parser = _Collector()
    parser.feed(html)
    parser.close()
    found = []
    for tag, attrs in parser.tags:
        if tag == "img":
            values = dict(attrs)
            match = DATA_IMAGE.fullmatch(values["src"] or "")
            assert match, values["src"]
            found.append((values["alt"] or "", base64.b64decode(match.group(2), validate=True)))
    return found


def ipython_shell() -> Any:
    """A real ``InteractiveShell`` without a history database.

    The tests need the shell's display and magic machinery, not its history. IPython 7.34
    (Google Colab's) stores history through sqlite3's default datetime adapter, deprecated
    since Python 3.12: every cell would warn (an error under this suite's settings), and the
    shell would write to the user's own ``~/.ipython`` besides."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    return InteractiveShell.instance(config=config)
