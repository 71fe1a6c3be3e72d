"""The chunks table of vector stores and its keyword index, as one store migration.

``vector_store_chunks`` holds one row per chunk: where it came from (store, file, index),
its text and token count, and its embedding (float32 bytes) with the name of the model that
made it (so a store keeps working, keyword-only, when the embedder changes; queries only
compare vectors of the same model). Ids only grow (SQLite ``AUTOINCREMENT``, a PostgreSQL
sequence), so ``(count, max id)`` of a store fingerprints its chunks for the in-process
vector cache of :mod:`.search`.

Keyword index: SQLite FTS5 (an external-content table kept in step by triggers, Porter
stemming over unicode61 tokens, ranked by ``bm25()``); PostgreSQL a stored generated
``tsvector`` (``english`` configuration) with a GIN index, ranked by IDF-weighted
``ts_rank`` (see :mod:`.search`).
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, LargeBinary, MetaData, String, Table, Text
from sqlalchemy.engine import Connection

MIGRATION_NAME = "0006_vector_store_chunks"

chunks = Table(
    "vector_store_chunks",
    MetaData(),
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("vector_store_id", String(64), nullable=False),
    Column("file_id", String(64), nullable=False),
    Column("chunk_index", Integer, nullable=False),
    Column("tokens", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("embedding_model", String(200), nullable=True),
    Column("embedding", LargeBinary, nullable=True),
    sqlite_autoincrement=True,
)
ix_chunks_file = Index(
    "ix_vector_store_chunks_file", chunks.c.vector_store_id, chunks.c.file_id, chunks.c.chunk_index
)
ix_chunks_model = Index(
    "ix_vector_store_chunks_model", chunks.c.vector_store_id, chunks.c.embedding_model, chunks.c.id
)

_FTS_DELETE = (
    "INSERT INTO vector_store_chunks_fts(vector_store_chunks_fts, rowid, text) "
    "VALUES ('delete', old.id, old.text);"
)
_SQLITE_FTS = [
    "CREATE VIRTUAL TABLE vector_store_chunks_fts USING fts5("
    "text, content='vector_store_chunks', content_rowid='id', tokenize='porter unicode61')",
    "CREATE TRIGGER vector_store_chunks_ai AFTER INSERT ON vector_store_chunks BEGIN "
    "INSERT INTO vector_store_chunks_fts(rowid, text) VALUES (new.id, new.text); END",
    f"CREATE TRIGGER vector_store_chunks_ad AFTER DELETE ON vector_store_chunks BEGIN {_FTS_DELETE} END",
    "CREATE TRIGGER vector_store_chunks_au AFTER UPDATE OF text ON vector_store_chunks BEGIN "
    f"{_FTS_DELETE} "
    "INSERT INTO vector_store_chunks_fts(rowid, text) VALUES (new.id, new.text); END",
]
_PG_FTS = [
    "ALTER TABLE vector_store_chunks ADD COLUMN tsv tsvector "
    "GENERATED ALWAYS AS (to_tsvector('english', text)) STORED",
    "CREATE INDEX ix_vector_store_chunks_tsv ON vector_store_chunks USING GIN (tsv)",
]


def create_chunks(conn: Connection) -> None:
    """Migration step: the chunks table, its indexes and the dialect's full-text index."""
    chunks.metadata.create_all(conn)
    for statement in _SQLITE_FTS if conn.dialect.name == "sqlite" else _PG_FTS:
        conn.exec_driver_sql(statement)
