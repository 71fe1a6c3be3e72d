"""The one place the vector store service meets :mod:`assistant_kit.retrieval`: text
extraction, chunking, embedding and the keyword + semantic index. Every method is synchronous
and CPU- or database-bound; the service calls them on worker threads.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from .vector_ingest import Hit, IngestError

if TYPE_CHECKING:
    from ..store import Store


class RetrievalIndex:
    """Chunks of the files of every vector store of one database."""

    def __init__(self, store: Store):
        self.store = store
        self._lock = threading.Lock()
        # Interim, until assistant_kit.retrieval lands: chunks in memory, keyword overlap.
        self._chunks: dict[tuple[str, str], list[str]] = {}

    def __repr__(self) -> str:
        return f"<RetrievalIndex {self.store!r}>"

    def text(self, data: bytes, filename: str) -> str:
        """The text of a file as it is indexed; :class:`IngestError` when it has none."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise IngestError("unsupported_file", f"'{filename}' is not a supported file type.") from None
        if not text.strip():
            raise IngestError("invalid_file", f"'{filename}' contains no text.")
        return text

    def add(
        self, store_id: str, file_id: str, data: bytes, filename: str, max_tokens: int, overlap: int
    ) -> int:
        """Extract, chunk, embed and index a file; returns the bytes it uses in the store."""
        text = self.text(data, filename)
        words = text.split()
        step = max(1, max_tokens - overlap)
        chunks = [" ".join(words[i : i + max_tokens]) for i in range(0, len(words), step)]
        with self._lock:
            self._chunks[(store_id, file_id)] = chunks
        return sum(len(c.encode()) for c in chunks)

    def remove(self, store_id: str, file_id: str) -> None:
        with self._lock:
            self._chunks.pop((store_id, file_id), None)

    def remove_store(self, store_id: str) -> None:
        with self._lock:
            for key in [k for k in self._chunks if k[0] == store_id]:
                del self._chunks[key]

    def search(
        self,
        store_id: str,
        queries: list[str],
        file_ids: list[str],
        limit: int,
        threshold: float,
        rewrite: bool,
    ) -> tuple[list[Hit], list[str]]:
        terms = {t.lower() for q in queries for t in q.split()}
        hits: list[Any] = []
        with self._lock:
            for file_id in file_ids:
                for chunk in self._chunks.get((store_id, file_id), []):
                    words = {w.lower().strip(".,;:!?") for w in chunk.split()}
                    score = len(terms & words) / max(1, len(terms))
                    if score > 0 and score >= threshold:
                        hits.append(Hit(file_id, score, chunk))
        hits.sort(key=lambda h: -h.score)
        return hits[:limit], queries
