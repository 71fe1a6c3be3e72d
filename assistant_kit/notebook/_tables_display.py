"""Any frame shown in a notebook: every cell as text, cut and HTML-escaped (model output in a
table can never inject markup)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ._tables_base import _pandas
from .html import escape, truncate

if TYPE_CHECKING:
    import pandas as pd
    from pandas.io.formats.style import Styler


def cell_text(value: Any) -> str:
    """A cell as plain text: "" for missing values, lists comma-joined, dicts as JSON, UTC
    timestamps as ``2025-01-31 12:00:00Z``."""
    pd = _pandas()

    if isinstance(value, (list, tuple)):
        return ", ".join("" if v is None else str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False) if value else ""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    if isinstance(value, pd.Timestamp) and value.tz is not None and value.utcoffset().total_seconds() == 0:
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    return str(value)


class HTMLTable:
    """The fallback of :func:`display_frame` where jinja2 (needed by ``Styler``) is missing."""

    def __init__(self, html: str):
        self.html = html

    def to_html(self) -> str:
        return self.html

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return f"<HTMLTable {len(self.html)} chars>"


def display_frame(df: pd.DataFrame, *, limit: int = 200, max_rows: int | None = 200) -> Styler | HTMLTable:
    """``df`` for notebook display: every cell turned to text (:func:`cell_text`), cut to
    ``limit`` characters with a ``… (+N chars)`` marker, then HTML-escaped — index and column
    labels too — so model output in a table can never inject markup. Returns a pandas
    ``Styler`` (or, without jinja2, an :class:`HTMLTable`); at most ``max_rows`` rows are shown,
    with a caption saying how many were left out. The frame itself is not changed.
    """
    total = len(df)
    shown = df if max_rows is None or total <= max_rows else df.head(max_rows)
    caption = f"first {len(shown):,} of {total:,} rows" if len(shown) < total else None

    def fmt(value: Any) -> str:
        return escape(truncate(cell_text(value), limit))

    try:
        styler = shown.style
    except (ImportError, AttributeError):  # Styler needs jinja2 (pandas raises either)
        text = shown.map(lambda v: truncate(cell_text(v), limit))
        text.index = [truncate(cell_text(v), limit) for v in shown.index]
        text.columns = [truncate(cell_text(v), limit) for v in shown.columns]
        html = text.to_html(escape=True, na_rep="")
        if caption:
            html = f"<div><small>{escape(caption)}</small>{html}</div>"
        return HTMLTable(html)
    styler = styler.format(fmt).format_index(fmt, axis=0).format_index(fmt, axis=1)
    # Table styles, not set_properties: those work with a non-unique index or columns too.
    styler = styler.set_table_styles(
        [{"selector": "td", "props": "text-align: left; white-space: pre-wrap; vertical-align: top"}]
    )
    if caption:
        styler = styler.set_caption(escape(caption))
    return styler
