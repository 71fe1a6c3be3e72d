"""The tables as they are now (SQLAlchemy Core), shared by SQLite and PostgreSQL.

One :class:`~sqlalchemy.Table` per table, in its current shape: the store reads and writes
through these. How a database gets to this shape is :mod:`.migrations`' business; its steps
carry their own frozen copies of what they create, never these objects, so changing a table
here means adding a migration, and ``tests/store/test_migrations.py`` fails until the two agree.

Each object is stored as its wire JSON in ``data`` plus the few columns queries filter on.
Primary keys are the time-ordered ids (see :mod:`assistant_kit._ids`), so ``ORDER BY id``
is creation order and a page is an index range scan: its cost does not grow with the thread.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    event,
)
from sqlalchemy.engine import Connection

metadata = MetaData()


def _object_table(name: str, *extra: Column) -> Table:
    return Table(
        name,
        metadata,
        Column("id", String(64), primary_key=True),
        Column("owner", String(64), nullable=True),
        Column("created_at", Integer, nullable=False),
        *extra,
        Column("data", Text, nullable=False),
    )


assistants = _object_table("assistants")
threads = _object_table("threads")
messages = _object_table(
    "messages",
    Column("thread_id", String(64), nullable=False),
    Column("run_id", String(64), nullable=True),
)
# ``worker`` (a random id per engine) and ``heartbeat_at`` (renewed every few seconds while
# it executes) are the lease of the process executing the run: replicas sharing a database
# tell a run another live process executes from one whose process died (see
# assistant_kit.engine.runs). ``expires_at`` as a column lets them find runs due to expire
# without reading every active run. Timestamps are the writers' wall clocks (Unix seconds).
#
# The ``*_at_ms`` columns (and a step's ``tool_ms``) are the inspector's timeline: Unix
# milliseconds the executor stamped as the object changed state, beside the wire's integer
# seconds (which stay in ``data``). NULL means unknown — rows written before they existed,
# threads imported rather than run here — never zero. ``assistant_id``/``model`` (runs) and
# ``assistant_id``/``status``/``type`` (steps) are copies of wire fields that the
# across-the-store lists (``GET /runs``, ``GET /runs/steps``) filter on.
runs = Table(
    "runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("owner", String(64), nullable=True),
    Column("created_at", Integer, nullable=False),
    Column("thread_id", String(64), nullable=False),
    Column("status", String(32), nullable=False),
    Column("data", Text, nullable=False),
    Column("worker", String(64), nullable=True),
    Column("heartbeat_at", Float, nullable=True),
    Column("expires_at", Integer, nullable=True),
    Column("assistant_id", String(64), nullable=True),
    Column("model", String(256), nullable=True),
    Column("created_at_ms", BigInteger, nullable=True),
    Column("started_at_ms", BigInteger, nullable=True),
    Column("first_token_at_ms", BigInteger, nullable=True),
    Column("ended_at_ms", BigInteger, nullable=True),
)
run_steps = Table(
    "run_steps",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("owner", String(64), nullable=True),
    Column("created_at", Integer, nullable=False),
    Column("thread_id", String(64), nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("data", Text, nullable=False),
    Column("assistant_id", String(64), nullable=True),
    Column("status", String(32), nullable=True),
    Column("type", String(32), nullable=True),
    Column("created_at_ms", BigInteger, nullable=True),
    Column("first_token_at_ms", BigInteger, nullable=True),
    Column("ended_at_ms", BigInteger, nullable=True),
    Column("tool_ms", BigInteger, nullable=True),
)
Index("ix_messages_thread", messages.c.thread_id, messages.c.id)
Index("ix_messages_run", messages.c.thread_id, messages.c.run_id, messages.c.id)
Index("ix_runs_thread", runs.c.thread_id, runs.c.id)
Index("ix_runs_status", runs.c.thread_id, runs.c.status)
Index("ix_runs_lease", runs.c.status, runs.c.heartbeat_at)
Index("ix_steps_run", run_steps.c.run_id, run_steps.c.id)
Index("ix_assistants_owner", assistants.c.owner, assistants.c.id)
Index("ix_threads_owner", threads.c.owner, threads.c.id)
Index("ix_runs_owner", runs.c.owner, runs.c.id)

# What the model was sent, one row per model request a run made (``turn``: 0-based within the
# run): the chat-format request as JSON (messages after truncation, instructions as merged,
# tools as offered, sampling parameters — never credentials), capped at the engine's
# ``prompt_record_max_bytes`` (``truncated``: message contents were shortened to fit), and the
# ids of the steps that turn produced. Written by assistant_kit.engine.prompts; gone with the
# thread.
run_prompts = Table(
    "run_prompts",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("turn", Integer, primary_key=True, autoincrement=False),
    Column("thread_id", String(64), nullable=False),
    Column("step_ids", Text, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("model", String(256), nullable=True),
    Column("request", Text, nullable=False),
    Column("bytes", Integer, nullable=False),
    Column("truncated", Boolean, nullable=False),
)
Index("ix_run_prompts_thread", run_prompts.c.thread_id)

# The proxy's generated API keys (see assistant_kit.server.auth). Only the SHA-256 of a key is stored.
api_keys = Table(
    "api_keys",
    metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("owner", String(64), nullable=False),
    Column("key_alias", String(256), nullable=True),
    Column("created_at", Integer, nullable=False),
    Column("expires_at", Integer, nullable=True),
    Column("data", Text, nullable=False),
)

# The Files API. ``files`` holds the File object (listed and filtered by purpose without
# touching the bytes); ``file_chunks`` the bytes, in chunks of at most ``CHUNK_BYTES``, one row
# each, read only for downloads and for code_interpreter: an upload is written from its
# spooled temp file and a download streamed a chunk at a time, so a file is never in memory
# whole (one row per file cost a 60 MB upload several 60 MB copies at once). Files a run's
# code made (images, written files) carry the ``thread_id`` and ``call_id`` that made them, so
# the model's next turn can be told about them.
CHUNK_BYTES = 1024 * 1024
files = Table(
    "files",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("owner", String(64), nullable=True),
    Column("created_at", Integer, nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("thread_id", String(64), nullable=True),
    Column("call_id", String(64), nullable=True),
    Column("data", Text, nullable=False),
)
Index("ix_files_owner", files.c.owner, files.c.id)
Index("ix_files_thread", files.c.thread_id, files.c.call_id)
file_chunks = Table(
    "file_chunks",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("data", LargeBinary, nullable=False),
)


# -- vector stores ---------------------------------------------------------------------------
# The wire objects and the ingestion jobs (operations: :mod:`.vectors`), and the chunks a file
# is split into with their keyword index (operations: :mod:`assistant_kit.retrieval.search`).
vector_stores = Table(
    "vector_stores",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("owner", String(64), nullable=True),
    Column("created_at", Integer, nullable=False),
    Column("expires_at", Integer, nullable=True),
    Column("data", Text, nullable=False),
)
vector_store_files = Table(
    "vector_store_files",
    metadata,
    Column("vector_store_id", String(64), primary_key=True),
    Column("file_id", String(64), primary_key=True),
    Column("owner", String(64), nullable=True),
    Column("created_at", Integer, nullable=False),
    Column("ord", String(64), nullable=False),  # a time-ordered id: list order and cursors
    Column("batch_id", String(64), nullable=True),
    Column("status", String(32), nullable=False),
    Column("usage_bytes", Integer, nullable=False, default=0),
    Column("worker", String(64), nullable=True),
    Column("heartbeat_at", Float, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("data", Text, nullable=False),
)
"""A row *is* the ingestion job of that file (``worker``/``heartbeat_at``: its lease)."""
vector_store_file_batches = Table(
    "vector_store_file_batches",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("vector_store_id", String(64), nullable=False),
    Column("owner", String(64), nullable=True),
    Column("created_at", Integer, nullable=False),
    Column("status", String(32), nullable=False),
    Column("data", Text, nullable=False),
)
Index("ix_vector_stores_owner", vector_stores.c.owner, vector_stores.c.id)
Index("ix_vsf_store", vector_store_files.c.vector_store_id, vector_store_files.c.ord)
Index("ix_vsf_jobs", vector_store_files.c.status, vector_store_files.c.heartbeat_at)
Index("ix_vsf_batch", vector_store_files.c.batch_id)
Index("ix_vsf_file", vector_store_files.c.file_id)

vector_store_chunks = Table(
    "vector_store_chunks",
    metadata,
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
"""One row per chunk: its text and token count, and its embedding (float32 bytes) with the
name of the model that made it (queries compare only vectors of one model, so a store keeps
working, keyword-only, when the embedder changes). Ids only grow, so the in-process vector
cache of the retrieval layer appends the chunks past the largest id it read (checked against
``vector_store_index_stats``, below)."""
Index(
    "ix_vector_store_chunks_file",
    vector_store_chunks.c.vector_store_id,
    vector_store_chunks.c.file_id,
    vector_store_chunks.c.chunk_index,
)
Index(
    "ix_vector_store_chunks_model",
    vector_store_chunks.c.vector_store_id,
    vector_store_chunks.c.embedding_model,
    vector_store_chunks.c.id,
)

# The keyword index, per dialect — SQLite: an FTS5 external-content table kept in step by
# triggers (Porter stemming over unicode61 tokens, ranked by ``bm25()``); PostgreSQL: a stored
# generated ``tsvector`` (``english``) with a GIN index. Not expressible as Core columns, so
# they follow the table's creation as DDL (migration 0006 carries its own frozen copy).
_FTS_DELETE = (
    "INSERT INTO vector_store_chunks_fts(vector_store_chunks_fts, rowid, text) "
    "VALUES ('delete', old.id, old.text);"
)
KEYWORD_INDEX_DDL: dict[str, tuple[str, ...]] = {
    "sqlite": (
        "CREATE VIRTUAL TABLE vector_store_chunks_fts USING fts5("
        "text, content='vector_store_chunks', content_rowid='id', tokenize='porter unicode61')",
        "CREATE TRIGGER vector_store_chunks_ai AFTER INSERT ON vector_store_chunks BEGIN "
        "INSERT INTO vector_store_chunks_fts(rowid, text) VALUES (new.id, new.text); END",
        f"CREATE TRIGGER vector_store_chunks_ad AFTER DELETE ON vector_store_chunks BEGIN {_FTS_DELETE} END",
        "CREATE TRIGGER vector_store_chunks_au AFTER UPDATE OF text ON vector_store_chunks BEGIN "
        f"{_FTS_DELETE} "
        "INSERT INTO vector_store_chunks_fts(rowid, text) VALUES (new.id, new.text); END",
    ),
    "postgresql": (
        "ALTER TABLE vector_store_chunks ADD COLUMN tsv tsvector "
        "GENERATED ALWAYS AS (to_tsvector('english', text)) STORED",
        "CREATE INDEX ix_vector_store_chunks_tsv ON vector_store_chunks USING GIN (tsv)",
    ),
}


@event.listens_for(vector_store_chunks, "after_create")
def _keyword_index(target: Table, conn: Connection, **kw: object) -> None:
    for statement in KEYWORD_INDEX_DDL[conn.dialect.name]:
        conn.exec_driver_sql(statement)


vector_store_index_stats = Table(
    "vector_store_index_stats",
    metadata,
    Column("vector_store_id", String(64), primary_key=True),
    Column("chunks", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("removals", Integer, nullable=False),
)
"""One row per vector store with chunks, written in the same transaction as its chunks: how
many it has, ``version`` (+1 on every change) and ``removals`` (+1 on every deletion). A
search reads it by key instead of counting the store: the document count of the keyword IDF,
and the fingerprint of the retrieval layer's in-process vector cache (same ``removals``: new
chunks are appended; else the store's vectors are read again). Writers update it first, so
the writers of one store queue on this row (and cannot deadlock on the terms below)."""

vector_store_terms = Table(
    "vector_store_terms",
    metadata,
    Column("vector_store_id", String(64), primary_key=True),
    Column("lexeme", Text, primary_key=True),
    Column("df", Integer, nullable=False),
    Column("rank_bound", Float, nullable=False),
)
"""PostgreSQL's keyword statistics (empty on SQLite, whose FTS5 keeps its own): how many of a
store's chunks have each ``tsvector`` lexeme (``df``), kept with the chunks, so a search reads
its words' document frequencies by key instead of counting matches in the GIN index; and an
upper bound of the lexeme's ``ts_rank(tsv, lexeme, 1)`` over those chunks (the largest ever
added: removals leave it, still a bound), so a search can skip the chunks that have only
common words when enough others already outscore them (``retrieval.search.keyword_search``)."""

TABLES: dict[str, Table] = {
    "assistant": assistants,
    "thread": threads,
    "thread.message": messages,
    "thread.run": runs,
    "thread.run.step": run_steps,
    "file": files,
}
"""The table of each wire ``object`` kind the generic store operations take."""
