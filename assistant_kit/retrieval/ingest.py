"""One file's way into a vector store: extract, chunk, embed (outside any transaction), store.

Ingestion jobs call :func:`prepare_file` (slow: parsing and the embedding model; no database
connection held) and then :func:`store_file` in one short write transaction, which first
removes any chunks the file already has in that store: a job that died after storing and
before marking the file ``completed`` can simply run again (restart-safe, idempotent).
Every failure is a :class:`FileProcessingError` whose ``last_error()`` goes on the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .chunking import AUTO_MAX_TOKENS, AUTO_OVERLAP_TOKENS, Chunk, chunk_text
from .embeddings import BaseEmbedder, EmbeddingError
from .errors import FileProcessingError
from .extract import extract_text
from .search import add_chunks, delete_chunks, forget_vectors


@dataclass
class PreparedFile:
    chunks: list[Chunk]
    vectors: Any  # numpy (len(chunks), dimensions) float32, or None (keyword only)
    embedding_model: str | None

    @property
    def usage_bytes(self) -> int:
        """Bytes the file's chunks occupy: their UTF-8 text plus 4 bytes per vector dimension."""
        text = sum(len(chunk.text.encode()) for chunk in self.chunks)
        vectors = 0 if self.vectors is None else int(self.vectors.size) * 4
        return text + vectors


def static_sizes(strategy: dict[str, Any] | None) -> tuple[int, int]:
    """(max_chunk_size_tokens, chunk_overlap_tokens) of a validated, stored strategy."""
    static = (strategy or {}).get("static") or {}
    return (
        int(static.get("max_chunk_size_tokens", AUTO_MAX_TOKENS)),
        int(static.get("chunk_overlap_tokens", AUTO_OVERLAP_TOKENS)),
    )


def prepare_file(
    data: bytes,
    filename: str,
    content_type: str | None = None,
    *,
    chunking_strategy: dict[str, Any] | None = None,
    embedder: BaseEmbedder | None = None,
) -> PreparedFile:
    """Chunks and vectors of one file; raises ``FileProcessingError`` (``unsupported_file``,
    ``invalid_file``, or ``server_error`` when the embedding backend fails)."""
    text = extract_text(data, filename, content_type)
    size, overlap = static_sizes(chunking_strategy)
    chunks = chunk_text(text, size, overlap)
    if not chunks:
        from .errors import InvalidFileError

        raise InvalidFileError(f"File {filename!r} contains no extractable text.")
    if embedder is None or not embedder.enabled:
        return PreparedFile(chunks, None, None)
    try:
        vectors = embedder.embed([chunk.text for chunk in chunks])
    except EmbeddingError as exc:
        raise FileProcessingError(str(exc)) from None
    return PreparedFile(chunks, vectors, embedder.name)


def store_file(conn: Any, vector_store_id: str, file_id: str, prepared: PreparedFile) -> int:
    """Replace the file's chunks in the store with ``prepared``'s (in the caller's transaction)."""
    delete_chunks(conn, vector_store_id, file_id)
    return add_chunks(
        conn, vector_store_id, file_id, prepared.chunks, prepared.vectors, prepared.embedding_model
    )


def remove_file(conn: Any, vector_store_id: str, file_id: str) -> int:
    """The file leaves the store: its chunks go (the vector cache notices on the next search)."""
    return delete_chunks(conn, vector_store_id, file_id)


def remove_store(conn: Any, vector_store_id: str) -> int:
    """The store is deleted: all its chunks go, and this process's cached vectors at once."""
    removed = delete_chunks(conn, vector_store_id)
    forget_vectors(vector_store_id)
    return removed
