"""The tables of the conversation itself: a thread's messages, the threads, the assistants.

A message's content is flattened for a table here: its text parts joined (images and other
parts as ``[image_file file-…]``-style placeholders), its images and generated files as file
ids, its ``file_citation`` annotations with their indices moved into that joined text.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import openai

from ._tables_base import Column, _field, _frame, _list, _tool_names

if TYPE_CHECKING:
    import pandas as pd


def _content_text(content: list[dict[str, Any]] | None) -> str:
    """A message's content as text; non-text parts as ``[image_file file-…]``-style placeholders."""
    parts = []
    for part in content or ():
        kind = part.get("type")
        if kind == "text":
            parts.append(part["text"]["value"])
        elif kind == "refusal":
            parts.append(part.get("refusal") or "")
        elif kind == "image_file":
            parts.append(f"[image_file {part['image_file'].get('file_id')}]")
        elif kind == "image_url":
            parts.append(f"[image_url {part['image_url'].get('url')}]")
        else:
            parts.append(f"[{kind}]")
    return "\n".join(parts)


def _image_file_ids(content: list[dict[str, Any]] | None) -> list[str]:
    return [p["image_file"].get("file_id") for p in content or () if p.get("type") == "image_file"]


def _citations(content: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """A message's ``file_citation`` annotations: ``{"text", "start_index", "end_index",
    "file_id"}`` each, the indices moved into the ``text`` column (parts joined by newlines)."""
    out: list[dict[str, Any]] = []
    offset = 0
    for i, part in enumerate(content or ()):
        if i:
            offset += 1  # the newline joining the parts
        if part.get("type") != "text":
            offset += len(_content_text([part]))
            continue
        for note in part["text"].get("annotations") or ():
            if note.get("type") != "file_citation":
                continue
            start, end = note.get("start_index"), note.get("end_index")
            moved = isinstance(start, int) and isinstance(end, int)
            out.append(
                {
                    "text": note.get("text") or "",
                    "start_index": start + offset if moved else None,
                    "end_index": end + offset if moved else None,
                    "file_id": (note.get("file_citation") or {}).get("file_id"),
                }
            )
        offset += len(part["text"]["value"])
    return out


def _file_path_ids(content: list[dict[str, Any]] | None) -> list[str]:
    """The file ids of a message's ``file_path`` annotations (files the code_interpreter made)."""
    return [
        (note.get("file_path") or {}).get("file_id")
        for part in content or ()
        if part.get("type") == "text"
        for note in part["text"].get("annotations") or ()
        if note.get("type") == "file_path"
    ]


MESSAGES = (
    Column("id", operator.itemgetter("id")),
    _field("created_at", "time"),
    _field("role"),
    _field("status"),
    Column("text", lambda m: _content_text(m.get("content"))),
    _field("run_id"),
    _field("assistant_id"),
    Column("attachments", lambda m: len(m.get("attachments") or ()), "count"),
    Column("metadata", lambda m: m.get("metadata") or {}),
    Column("image_file_ids", lambda m: _image_file_ids(m.get("content"))),
    Column("file_path_ids", lambda m: _file_path_ids(m.get("content"))),
    Column("citations", lambda m: _citations(m.get("content"))),
)
MESSAGE_COLUMNS = tuple(c.name for c in MESSAGES)


def messages(
    client: openai.OpenAI,
    thread_id: str,
    *,
    run_id: str | None = None,
    limit: int | None = None,
    order: str = "asc",
) -> pd.DataFrame:
    """A thread's messages, one row each: id, created_at, role, status, text (the full text of
    every content part, an image as ``[image_file file-…]``), run_id, assistant_id, attachments
    (count), metadata (dict), image_file_ids (the ``image_file`` parts: references, not bytes),
    file_path_ids (the files its ``file_path`` annotations point to), citations (its
    ``file_citation`` annotations: ``text`` — the marker —, ``start_index``/``end_index`` in
    ``text``, ``file_id``; :func:`file_search_results` has what they cite).

    ``run_id`` keeps the messages that run created; ``limit`` the first ``limit`` in ``order``.
    """
    items = _list(client, f"/threads/{thread_id}/messages", limit=limit, order=order, run_id=run_id)
    return _messages_frame(items)


def _messages_frame(items: Iterable[dict[str, Any]]) -> pd.DataFrame:
    return _frame(MESSAGES, items)


THREADS = (
    Column("id", operator.itemgetter("id")),
    _field("created_at", "time"),
    Column("metadata", lambda t: t.get("metadata") or {}),
)


def threads(client: openai.OpenAI, *, limit: int | None = None, order: str = "desc") -> pd.DataFrame:
    """Threads, newest first: id, created_at, metadata. Uses ``GET /threads``, an assistant_kit
    extension (the hosted API had no thread listing)."""
    return _frame(THREADS, _list(client, "/threads", limit=limit, order=order))


ASSISTANTS = (
    Column("id", operator.itemgetter("id")),
    _field("created_at", "time"),
    _field("name"),
    _field("model"),
    Column("tools", lambda a: _tool_names(a.get("tools"))),
    _field("instructions"),
    Column("metadata", lambda a: a.get("metadata") or {}),
)


def assistants(client: openai.OpenAI, *, limit: int | None = None, order: str = "desc") -> pd.DataFrame:
    """Assistants, newest first: id, created_at, name, model, tools (names), instructions (full
    text), metadata."""
    return _frame(ASSISTANTS, _list(client, "/assistants", limit=limit, order=order))
