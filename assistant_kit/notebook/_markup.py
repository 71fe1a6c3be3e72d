"""The markup primitives every notebook module shares: escaping, truncation, styles, text
blocks, status badges.

They sit below everything else (``_markup`` → ``code`` → ``html`` → ``render`` …) so that
:mod:`.code` and :mod:`.html` can both use them without importing each other in a circle.
:mod:`.html` re-exports them; import them from there.
"""

from __future__ import annotations

import html as _stdlib_html
import json

# Colours readable on light and dark themes (white text on a saturated badge).
STATUS_COLORS = {
    "completed": "#1a7f37",
    "in_progress": "#0969da",
    "queued": "#6e7781",
    "requires_action": "#bf8700",
    "cancelling": "#9a6700",
    "cancelled": "#6e7781",
    "incomplete": "#9a6700",
    "failed": "#cf222e",
    "expired": "#cf222e",
}
CARD_STYLE = (
    "font-family:var(--jp-ui-font-family,system-ui,sans-serif);font-size:13px;line-height:1.45;"
    "border:1px solid rgba(128,128,128,.35);border-radius:6px;padding:6px 10px;margin:2px 0;"
    "max-width:100%;overflow-wrap:anywhere"
)
PRE_STYLE = (
    "white-space:pre-wrap;overflow-wrap:anywhere;margin:2px 0;padding:4px 6px;"
    "background:rgba(127,127,127,.08);border-radius:4px;font-size:12px;line-height:1.4"
)
MUTED = "opacity:.65"
LABEL_STYLE = f"{MUTED};font-size:11px"


def escape(text: str) -> str:
    """HTML-escape ``text`` (quotes too, so it is safe in attributes)."""
    return _stdlib_html.escape("" if text is None else str(text), quote=True)


def truncate(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters, with a visible ``… (+N chars)`` marker."""
    text = "" if text is None else str(text)
    limit = max(int(limit), 0)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… (+{len(text) - limit} chars)"


def one_line(text: str) -> str:
    return " ".join(text.split())


def code(text: str | None) -> str:
    """``text`` escaped in a ``<code>`` (ids, names)."""
    return f"<code>{escape(text or '')}</code>"


def collapsible(inner: str, text: str, *, collapse_over: int = 2000) -> str:
    """``inner`` (the HTML of ``text``) as is, or — when ``text`` is longer than
    ``collapse_over`` — inside a ``<details>`` whose summary is a one-line preview."""
    if len(text) <= collapse_over:
        return inner
    preview = escape(one_line(text[:400])[:80])
    return (
        f'<details><summary style="cursor:pointer">{preview}… '
        f'<span style="{MUTED}">({len(text):,} chars)</span></summary>{inner}</details>'
    )


def text_block(text: str, *, collapse_over: int = 2000) -> str:
    """``text`` escaped in a wrapping ``<pre>``; longer than ``collapse_over`` → inside a
    ``<details>`` whose summary is a one-line preview. Never renders markdown, links or images."""
    text = "" if text is None else str(text)
    return collapsible(f'<pre style="{PRE_STYLE}">{escape(text)}</pre>', text, collapse_over=collapse_over)


def badge(status: str | None) -> str:
    """A coloured status pill (``completed`` green, ``failed`` red, …)."""
    status = str(status or "unknown")
    colour = STATUS_COLORS.get(status, "#6e7781")
    return (
        f'<span style="background:{colour};color:#fff;border-radius:9px;padding:0 7px;'
        f'font-size:11px;font-weight:600;white-space:nowrap">{escape(status)}</span>'
    )


def pretty_json(text: str) -> str:
    """Arguments as indented JSON when they parse, else unchanged."""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (TypeError, ValueError):
        return text
