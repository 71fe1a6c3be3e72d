"""Vector stores in a notebook: make one from files with a progress display, search it into a
DataFrame, and list stores and their files as DataFrames.

Everything goes through an ``openai.OpenAI`` client (the local engine or any server speaking
the API), so what a notebook does is what the SDK does. Files are given as paths, ``(name,
bytes)`` pairs or ids of uploaded files; new ones are uploaded with ``purpose="assistants"``,
then attached as the store is created (one request: a bad id stores nothing), and the store
is polled until every file has been ingested.

Progress: in a Jupyter kernel an HTML line updated in place (a display id, no widget needed);
anywhere else a text line on stderr (redrawn with ``\\r`` on a terminal, one line per change
otherwise). ``progress=False`` shows nothing.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import openai

from ..errors import SessionError
from .html import escape

if TYPE_CHECKING:
    import pandas as pd

FileSource = str | os.PathLike[str] | tuple[str, bytes]
POLL_SECONDS = 0.2


def upload(client: openai.OpenAI, source: FileSource) -> str:
    """The id of ``source``: a file id as given (``file-…``), else the path or ``(name, bytes)``
    uploaded with ``purpose="assistants"``."""
    if isinstance(source, tuple):
        name, data = source
        return client.files.create(file=(name, data), purpose="assistants").id
    text = os.fspath(source)
    path = Path(text).expanduser()
    if not path.exists() and text.startswith(("file-", "file_")):
        return text  # an uploaded file's id: the server checks that it exists and is ours
    if not path.is_file():
        raise SessionError(
            f"files: no file at '{text}' (give a path, (name, bytes) or a file id).", param="files"
        )
    with path.open("rb") as handle:
        return client.files.create(file=(path.name, handle), purpose="assistants").id


class Progress:
    """One line saying how ingestion goes: updated in place in a notebook, on stderr elsewhere."""

    def __init__(self, label: str, enabled: bool = True):
        self.label = label
        self.enabled = enabled
        self.handle: Any = None
        self.last = ""
        self.tty = sys.stderr.isatty()
        self.kernel = False
        if enabled and "IPython" in sys.modules:
            from IPython import get_ipython

            self.kernel = getattr(get_ipython(), "kernel", None) is not None

    def __repr__(self) -> str:
        return f"<Progress {self.label!r} {self.last!r}>"

    def show(self, counts: Any, done: bool = False) -> None:
        if not self.enabled:
            return
        total = counts.total or 0
        finished = counts.completed + counts.failed + counts.cancelled
        width = 24
        filled = int(width * finished / total) if total else width
        bar = "#" * filled + "." * (width - filled)
        text = f"{self.label}: [{bar}] {finished}/{total} files"
        text += f" ({counts.completed} completed, {counts.failed} failed"
        text += f", {counts.cancelled} cancelled)" if counts.cancelled else ")"
        if text == self.last and not done:
            return
        self.last = text
        if self.kernel:
            from IPython.display import HTML, display

            html = HTML(f"<code>{escape(text)}</code>")
            if self.handle is None:
                self.handle = display(html, display_id=True)
            else:
                self.handle.update(html)
        elif self.tty:
            sys.stderr.write("\r" + text + ("\n" if done else ""))
            sys.stderr.flush()
        else:
            sys.stderr.write(text + "\n")


def create_vector_store(
    client: openai.OpenAI,
    name: str,
    files: Iterable[FileSource] = (),
    *,
    progress: bool = True,
    timeout: float | None = None,
    **params: Any,
) -> Any:
    """Create a vector store named ``name`` from ``files`` and wait until they are ingested
    (``timeout`` seconds at most; None: no limit). ``params``: the rest of
    ``vector_stores.create`` (``chunking_strategy``, ``expires_after``, ``metadata`` …), the
    chunking applied to every file. Returns the ``VectorStore`` as it is then."""
    ids = [upload(client, source) for source in files]
    # One request: a bad file id (or option) is refused before anything is stored.
    store = client.vector_stores.create(name=name, file_ids=ids, **params)
    bar = Progress(f"{name or store.id}", progress and bool(ids))
    deadline = None if timeout is None else time.monotonic() + timeout
    while store.file_counts.in_progress:
        bar.show(store.file_counts)
        if deadline is not None and time.monotonic() > deadline:
            raise SessionError(
                f"Vector store {store.id}: files still ingesting after {timeout:g} s "
                f"({store.file_counts.completed} of {store.file_counts.total} done); "
                "it goes on in the background."
            )
        time.sleep(POLL_SECONDS)
        store = client.vector_stores.retrieve(store.id)
    bar.show(store.file_counts, done=True)
    return store


def _pandas() -> Any:
    from ._extra import require

    return require("pandas", "DataFrames of vector stores and search results")


def search(
    client: openai.OpenAI,
    vector_store_id: str,
    query: str | list[str],
    *,
    snippet_chars: int = 300,
    **options: Any,
) -> pd.DataFrame:
    """Search a vector store: one row per result, best first — ``file`` (its name), ``score``
    (0 to 1), ``snippet`` (the chunk's text, cut at ``snippet_chars``), ``file_id``,
    ``attributes`` and ``text`` (the whole chunk). ``options``: ``max_num_results``,
    ``filters``, ``ranking_options``, ``rewrite_query``."""
    pd = _pandas()
    page = client.vector_stores.search(vector_store_id, query=query, **options)
    rows = []
    for item in page.data:
        text = "\n".join(part.text for part in item.content)
        flat = " ".join(text.split())
        snippet = flat if len(flat) <= snippet_chars else flat[: snippet_chars - 1] + "…"
        rows.append(
            {
                "file": item.filename,
                "score": round(float(item.score), 4),
                "snippet": snippet,
                "file_id": item.file_id,
                "attributes": dict(item.attributes or {}),
                "text": text,
            }
        )
    columns = ["file", "score", "snippet", "file_id", "attributes", "text"]
    return pd.DataFrame(rows, columns=columns)


def attached_store_ids(*objects: Any) -> list[str]:
    """The vector store ids of ``tool_resources.file_search`` of assistants and threads, in order."""
    ids: list[str] = []
    for obj in objects:
        resources = getattr(obj, "tool_resources", None)
        search_resources = getattr(resources, "file_search", None) if resources is not None else None
        for store_id in getattr(search_resources, "vector_store_ids", None) or []:
            if store_id not in ids:
                ids.append(store_id)
    return ids
