"""Tests of the notebook layer, one module per module of ``assistant_kit.notebook``."""

from __future__ import annotations

from html.parser import HTMLParser

DANGEROUS_TAGS = {"script", "img", "iframe", "object", "embed", "a", "link", "style", "svg", "math", "form"}


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def assert_inert(html: str) -> None:
    """``html`` as a browser would parse it has no active content: no script/img/link-ish
    tags, no ``on*`` handlers, no ``src``/``href`` — whatever the escaped text says."""
    lowered = html.lower()
    assert "<script" not in lowered
    assert "<img" not in lowered
    parser = _Collector()
    parser.feed(html)
    parser.close()
    for tag, attrs in parser.tags:
        assert tag not in DANGEROUS_TAGS, tag
        for name, _value in attrs:
            assert not name.startswith("on"), (tag, name)
            assert name not in ("src", "href", "srcset", "action", "formaction"), (tag, name)
