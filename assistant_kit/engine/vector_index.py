"""The one place the vector store service meets :mod:`assistant_kit.retrieval`: text
extraction, chunking, embedding and the keyword + semantic index (the ``vector_store_chunks``
table). Every method is synchronous and CPU- or database-bound; the service calls them on
worker threads.

The embedder is made once per process and backend, on first use, by
:func:`assistant_kit.retrieval.embeddings.make_embedder` (``$ASSISTANT_KIT_EMBEDDINGS``: the
embedded model when its extra is installed, else keyword search only). Embedding a file's
chunks happens before its chunks are written, outside any transaction, so a slow embedder
never holds a database lock.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import TYPE_CHECKING, Any

from ..store.sql import OnStoreWorker, OnWorker

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from ..store import Store


class IngestError(Exception):
    """A file that cannot be ingested: ``code`` is its ``last_error.code``."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@functools.cache
def shared_embedder(backend: str | None) -> Any:
    """One embedder per backend per process: every engine of a process (a notebook's, a test
    suite's) shares the model instead of loading it again."""
    from ..retrieval.embeddings import make_embedder

    return make_embedder(backend)


class RetrievalIndex:
    """Chunks of the files of every vector store of one database."""

    def __init__(self, store: Store):
        self.store = store
        self._lock = threading.Lock()
        self._embedder: Any = None

    def __repr__(self) -> str:
        return f"<RetrievalIndex {self.store!r}>"

    @property
    def embedder(self) -> Any:
        with self._lock:
            if self._embedder is None:
                self._embedder = shared_embedder(os.environ.get("ASSISTANT_KIT_EMBEDDINGS"))
            return self._embedder

    def text(self, data: bytes, filename: str) -> str:
        """The text of a file as it is indexed; :class:`IngestError` when it has none."""
        from ..retrieval.errors import FileProcessingError
        from ..retrieval.extract import extract_text

        try:
            return extract_text(data, filename)
        except FileProcessingError as exc:
            raise IngestError(exc.code, exc.message) from None

    def prepare(self, data: bytes, filename: str, strategy: dict[str, Any]) -> Any:
        """Extract, chunk and embed a file (CPU-bound: called on a worker thread, outside any
        transaction): :func:`assistant_kit.retrieval.ingest.prepare_file`."""
        from ..retrieval.errors import FileProcessingError
        from ..retrieval.ingest import prepare_file

        try:
            return prepare_file(data, filename, chunking_strategy=strategy, embedder=self.embedder)
        except FileProcessingError as exc:
            raise IngestError(exc.code, exc.message) from None

    @staticmethod
    def usage(prepared: Any) -> int:
        """The bytes a prepared file's chunks use in the store (text plus vectors)."""
        return int(prepared.usage_bytes)

    @staticmethod
    def replace_in(conn: Connection, store_id: str, file_id: str, prepared: Any | None) -> None:
        """In the caller's transaction: a file's chunks become ``prepared``'s (None: removed)."""
        from ..retrieval.ingest import remove_file, store_file

        if prepared is None:
            remove_file(conn, store_id, file_id)
        else:
            store_file(conn, store_id, file_id, prepared)

    def remove(self, store_id: str, file_id: str) -> None:
        from ..retrieval.ingest import remove_file

        with self.store.transaction(write=True) as conn:
            remove_file(conn, store_id, file_id)

    def remove_store(self, store_id: str) -> None:
        from ..retrieval.ingest import remove_store

        with self.store.transaction(write=True) as conn:
            remove_store(conn, store_id)

    def embed(self, queries: list[str], rewrite: bool) -> Any:
        """The queries rewritten (``rewrite``) and embedded, no database touched (the model or
        server may be slow: called on a thread of its own, before the search's transaction)."""
        from ..retrieval.search import embed_query

        return embed_query(queries, embedder=self.embedder, rewrite=rewrite)

    def search_embedded(
        self, store_id: str, embedded: Any, file_ids: list[str] | None, limit: int, threshold: float
    ) -> Any:
        """Search one store for queries :meth:`embed` made, in one read transaction."""
        from ..retrieval.search import search_store

        return search_store(
            self.store,
            [store_id],
            embedded,
            max_num_results=limit,
            score_threshold=threshold,
            file_ids=file_ids,
        )

    def search(
        self,
        store_id: str,
        queries: list[str],
        file_ids: list[str] | None,
        limit: int,
        threshold: float,
        rewrite: bool,
    ) -> Any:
        """:meth:`embed` then :meth:`search_embedded`, on the calling thread."""
        return self.search_embedded(store_id, self.embed(queries, rewrite), file_ids, limit, threshold)


class AsyncRetrievalIndex(OnStoreWorker[RetrievalIndex]):
    """The index's database operations awaited on the store's worker thread(s), like
    :class:`~assistant_kit.store.AsyncStore` (``sync`` is the index, for the CPU-bound
    operations that run on threads of their own)."""

    def __init__(self, index: RetrievalIndex):
        super().__init__(index, index.store.executor)

    remove = OnWorker(RetrievalIndex.remove)
    remove_store = OnWorker(RetrievalIndex.remove_store)
    search_embedded = OnWorker(RetrievalIndex.search_embedded)

    def __repr__(self) -> str:
        return f"<AsyncRetrievalIndex {self.sync!r}>"
