"""How a database gets to the shape of :mod:`.schema`: named, ordered, append-only steps.

Each step runs once per database, inside the caller's (locked) transaction, and carries a
frozen copy of what it creates or changes — its own ``Table``/``Column`` definitions on a
``MetaData`` of its own, built when it runs — never the live tables of :mod:`.schema`. So
changing the current shape cannot change what an old step does: a database made by any
older version replays exactly the steps it is missing, as they were written. Changing a
table means editing :mod:`.schema` *and* appending a step here; ``tests/store/
test_migrations.py`` checks that a database built by the steps and one built from
:mod:`.schema` reflect the same, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable

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
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateColumn

schema_migrations = Table(
    "schema_migrations",
    MetaData(),
    Column("name", String(128), primary_key=True),
)
"""The names of the steps a database has had (the bookkeeping itself never changes shape)."""


def _0001_initial(conn: Connection) -> None:
    """The five object tables: each object's wire JSON in ``data`` plus the columns queries
    filter on, keyed by its time-ordered id."""
    md = MetaData()

    def table(name: str, *extra: Column) -> Table:
        return Table(
            name,
            md,
            Column("id", String(64), primary_key=True),
            Column("owner", String(64), nullable=True),
            Column("created_at", Integer, nullable=False),
            *extra,
            Column("data", Text, nullable=False),
        )

    assistants = table("assistants")
    threads = table("threads")
    messages = table(
        "messages",
        Column("thread_id", String(64), nullable=False),
        Column("run_id", String(64), nullable=True),
    )
    runs = table(
        "runs", Column("thread_id", String(64), nullable=False), Column("status", String(32), nullable=False)
    )
    run_steps = table(
        "run_steps",
        Column("thread_id", String(64), nullable=False),
        Column("run_id", String(64), nullable=False),
    )
    Index("ix_messages_thread", messages.c.thread_id, messages.c.id)
    Index("ix_messages_run", messages.c.thread_id, messages.c.run_id, messages.c.id)
    Index("ix_runs_thread", runs.c.thread_id, runs.c.id)
    Index("ix_runs_status", runs.c.thread_id, runs.c.status)
    Index("ix_steps_run", run_steps.c.run_id, run_steps.c.id)
    Index("ix_assistants_owner", assistants.c.owner, assistants.c.id)
    Index("ix_threads_owner", threads.c.owner, threads.c.id)
    md.create_all(conn)


def _0002_api_keys(conn: Connection) -> None:
    """The proxy's generated API keys (hashes only)."""
    Table(
        "api_keys",
        MetaData(),
        Column("key_hash", String(64), primary_key=True),
        Column("owner", String(64), nullable=False),
        Column("key_alias", String(256), nullable=True),
        Column("created_at", Integer, nullable=False),
        Column("expires_at", Integer, nullable=True),
        Column("data", Text, nullable=False),
    ).create(conn, checkfirst=True)


def _0003_run_leases(conn: Connection) -> None:
    """The lease of the process executing each run (``worker``, ``heartbeat_at``) and
    ``expires_at`` as a column, added to the existing ``runs`` rows (all NULL: a run written
    before leases counts from its ``created_at``)."""
    runs = Table(
        "runs",
        MetaData(),
        Column("status", String(32), nullable=False),
        Column("worker", String(64), nullable=True),
        Column("heartbeat_at", Float, nullable=True),
        Column("expires_at", Integer, nullable=True),
    )
    for name in ("worker", "heartbeat_at", "expires_at"):  # SQLite: one column per ALTER
        column = CreateColumn(runs.c[name]).compile(dialect=conn.dialect)
        conn.exec_driver_sql(f"ALTER TABLE runs ADD COLUMN {column}")
    Index("ix_runs_lease", runs.c.status, runs.c.heartbeat_at).create(conn)


def _0004_files(conn: Connection) -> None:
    """The Files API: ``files`` (the File objects) and ``file_contents`` (one row of bytes each)."""
    md = MetaData()
    files = Table(
        "files",
        md,
        Column("id", String(64), primary_key=True),
        Column("owner", String(64), nullable=True),
        Column("created_at", Integer, nullable=False),
        Column("purpose", String(32), nullable=False),
        Column("thread_id", String(64), nullable=True),
        Column("call_id", String(64), nullable=True),
        Column("data", Text, nullable=False),
    )
    Table(
        "file_contents",
        md,
        Column("id", String(64), primary_key=True),
        Column("content", LargeBinary, nullable=False),
    )
    Index("ix_files_owner", files.c.owner, files.c.id)
    Index("ix_files_thread", files.c.thread_id, files.c.call_id)
    md.create_all(conn)


_0005_CHUNK_BYTES = 1024 * 1024


def _0005_file_chunks(conn: Connection) -> None:
    """A file's bytes in chunks of at most 1 MB, one row each, in ``file_chunks``
    (``file_contents`` goes): one row per file meant the whole file as one bound parameter on
    the way in and one value on the way out. Existing files are moved over one at a time."""
    md = MetaData()
    file_contents = Table(
        "file_contents",
        md,
        Column("id", String(64), primary_key=True),
        Column("content", LargeBinary, nullable=False),
    )
    file_chunks = Table(
        "file_chunks",
        md,
        Column("id", String(64), primary_key=True),
        Column("seq", Integer, primary_key=True, autoincrement=False),
        Column("data", LargeBinary, nullable=False),
    )
    file_chunks.create(conn)
    ids = [row[0] for row in conn.execute(select(file_contents.c.id))]
    for file_id in ids:
        content = conn.execute(select(file_contents.c.content).where(file_contents.c.id == file_id)).scalar()
        content = bytes(content or b"")
        for seq, start in enumerate(range(0, len(content), _0005_CHUNK_BYTES)):
            chunk = content[start : start + _0005_CHUNK_BYTES]
            conn.execute(file_chunks.insert().values(id=file_id, seq=seq, data=chunk))
    file_contents.drop(conn)


def _0006_vector_store_chunks(conn: Connection) -> None:
    """Vector stores' chunks (text, token count, embedding bytes and the model that made
    them) and the dialect's keyword index: SQLite FTS5 kept in step by triggers, PostgreSQL a
    generated ``tsvector`` with a GIN index."""
    md = MetaData()
    chunks = Table(
        "vector_store_chunks",
        md,
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
    Index("ix_vector_store_chunks_file", chunks.c.vector_store_id, chunks.c.file_id, chunks.c.chunk_index)
    Index("ix_vector_store_chunks_model", chunks.c.vector_store_id, chunks.c.embedding_model, chunks.c.id)
    md.create_all(conn)
    delete = (
        "INSERT INTO vector_store_chunks_fts(vector_store_chunks_fts, rowid, text) "
        "VALUES ('delete', old.id, old.text);"
    )
    keyword_index = {
        "sqlite": (
            "CREATE VIRTUAL TABLE vector_store_chunks_fts USING fts5("
            "text, content='vector_store_chunks', content_rowid='id', tokenize='porter unicode61')",
            "CREATE TRIGGER vector_store_chunks_ai AFTER INSERT ON vector_store_chunks BEGIN "
            "INSERT INTO vector_store_chunks_fts(rowid, text) VALUES (new.id, new.text); END",
            f"CREATE TRIGGER vector_store_chunks_ad AFTER DELETE ON vector_store_chunks BEGIN {delete} END",
            "CREATE TRIGGER vector_store_chunks_au AFTER UPDATE OF text ON vector_store_chunks BEGIN "
            f"{delete} "
            "INSERT INTO vector_store_chunks_fts(rowid, text) VALUES (new.id, new.text); END",
        ),
        "postgresql": (
            "ALTER TABLE vector_store_chunks ADD COLUMN tsv tsvector "
            "GENERATED ALWAYS AS (to_tsvector('english', text)) STORED",
            "CREATE INDEX ix_vector_store_chunks_tsv ON vector_store_chunks USING GIN (tsv)",
        ),
    }
    for statement in keyword_index[conn.dialect.name]:
        conn.exec_driver_sql(statement)


def _0007_vector_stores(conn: Connection) -> None:
    """Vector stores, their files (each row the ingestion job of that file, with a lease:
    ``worker``/``heartbeat_at``/``attempts``) and file batches."""
    md = MetaData()
    stores = Table(
        "vector_stores",
        md,
        Column("id", String(64), primary_key=True),
        Column("owner", String(64), nullable=True),
        Column("created_at", Integer, nullable=False),
        Column("expires_at", Integer, nullable=True),
        Column("data", Text, nullable=False),
    )
    files = Table(
        "vector_store_files",
        md,
        Column("vector_store_id", String(64), primary_key=True),
        Column("file_id", String(64), primary_key=True),
        Column("owner", String(64), nullable=True),
        Column("created_at", Integer, nullable=False),
        Column("ord", String(64), nullable=False),
        Column("batch_id", String(64), nullable=True),
        Column("status", String(32), nullable=False),
        Column("usage_bytes", Integer, nullable=False, default=0),
        Column("worker", String(64), nullable=True),
        Column("heartbeat_at", Float, nullable=True),
        Column("attempts", Integer, nullable=False, default=0),
        Column("data", Text, nullable=False),
    )
    Table(
        "vector_store_file_batches",
        md,
        Column("id", String(64), primary_key=True),
        Column("vector_store_id", String(64), nullable=False),
        Column("owner", String(64), nullable=True),
        Column("created_at", Integer, nullable=False),
        Column("status", String(32), nullable=False),
        Column("data", Text, nullable=False),
    )
    Index("ix_vector_stores_owner", stores.c.owner, stores.c.id)
    Index("ix_vsf_store", files.c.vector_store_id, files.c.ord)
    Index("ix_vsf_jobs", files.c.status, files.c.heartbeat_at)
    Index("ix_vsf_batch", files.c.batch_id)
    Index("ix_vsf_file", files.c.file_id)
    md.create_all(conn)


def _0008_inspection(conn: Connection) -> None:
    """The inspector's data. Runs and steps get millisecond timestamps beside the wire's
    seconds (runs: created, started, first token, ended; steps: created, first token, ended,
    and ``tool_ms``), NULL — unknown — for the rows already there; and copies of the wire
    fields the across-the-store lists filter on (runs: ``assistant_id``, ``model``; steps:
    ``assistant_id``, ``status``, ``type``), filled in from each row's JSON. ``run_prompts``
    holds what each model request of a run sent."""
    md = MetaData()
    runs = Table(
        "runs",
        md,
        Column("owner", String(64), nullable=True),
        Column("id", String(64), primary_key=True),
        Column("assistant_id", String(64), nullable=True),
        Column("model", String(256), nullable=True),
        Column("created_at_ms", BigInteger, nullable=True),
        Column("started_at_ms", BigInteger, nullable=True),
        Column("first_token_at_ms", BigInteger, nullable=True),
        Column("ended_at_ms", BigInteger, nullable=True),
    )
    steps = Table(
        "run_steps",
        md,
        Column("assistant_id", String(64), nullable=True),
        Column("status", String(32), nullable=True),
        Column("type", String(32), nullable=True),
        Column("created_at_ms", BigInteger, nullable=True),
        Column("first_token_at_ms", BigInteger, nullable=True),
        Column("ended_at_ms", BigInteger, nullable=True),
        Column("tool_ms", BigInteger, nullable=True),
    )
    added = {
        runs: ("assistant_id", "model", "created_at_ms", "started_at_ms", "first_token_at_ms", "ended_at_ms"),
        steps: (
            "assistant_id",
            "status",
            "type",
            "created_at_ms",
            "first_token_at_ms",
            "ended_at_ms",
            "tool_ms",
        ),
    }
    for table, names in added.items():
        for name in names:  # SQLite: one column per ALTER
            column = CreateColumn(table.c[name]).compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {column}")
    field = {
        "sqlite": "json_extract(data, '$.{}')",
        "postgresql": "(CAST(data AS json) ->> '{}')",
    }[conn.dialect.name]
    copies = {runs: ("assistant_id", "model"), steps: ("assistant_id", "status", "type")}
    for table, names in copies.items():
        assignments = ", ".join(f"{name} = {field.format(name)}" for name in names)
        conn.exec_driver_sql(f"UPDATE {table.name} SET {assignments}")
    Index("ix_runs_owner", runs.c.owner, runs.c.id).create(conn)
    prompts = Table(
        "run_prompts",
        md,
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
    Index("ix_run_prompts_thread", prompts.c.thread_id)
    prompts.create(conn)


# A lexeme as a tsquery of that lexeme alone: quoted, its backslashes and quotes escaped.
_0009_LEXEME = "('''' || replace(replace(lexeme, E'\\\\', E'\\\\\\\\'), '''', '''''') || '''')::tsquery"


def _0009_vector_store_index_stats(conn: Connection) -> None:
    """Per-store chunk statistics kept at ingestion (chunk count, change and removal counters)
    and, filled on PostgreSQL only, each store's document frequency of every lexeme and the
    largest ``ts_rank`` of the lexeme alone; both computed from the chunks already there."""
    md = MetaData()
    Table(
        "vector_store_index_stats",
        md,
        Column("vector_store_id", String(64), primary_key=True),
        Column("chunks", Integer, nullable=False),
        Column("version", Integer, nullable=False),
        Column("removals", Integer, nullable=False),
    )
    Table(
        "vector_store_terms",
        md,
        Column("vector_store_id", String(64), primary_key=True),
        Column("lexeme", Text, primary_key=True),
        Column("df", Integer, nullable=False),
        Column("rank_bound", Float, nullable=False),
    )
    md.create_all(conn)
    conn.exec_driver_sql(
        "INSERT INTO vector_store_index_stats (vector_store_id, chunks, version, removals) "
        "SELECT vector_store_id, count(*), 1, 0 FROM vector_store_chunks GROUP BY vector_store_id"
    )
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "INSERT INTO vector_store_terms (vector_store_id, lexeme, df, rank_bound) "
            "SELECT vector_store_id, lexeme, count(*), max(ts_rank(tsv, " + _0009_LEXEME + ", 1)) "
            "FROM vector_store_chunks, unnest(tsvector_to_array(tsv)) AS lexeme "
            "GROUP BY vector_store_id, lexeme"
        )


MIGRATIONS: list[tuple[str, Callable[[Connection], None]]] = [
    ("0001_initial", _0001_initial),
    ("0002_api_keys", _0002_api_keys),
    ("0003_run_leases", _0003_run_leases),
    ("0004_files", _0004_files),
    ("0005_file_chunks", _0005_file_chunks),
    ("0006_vector_store_chunks", _0006_vector_store_chunks),
    ("0007_vector_stores", _0007_vector_stores),
    ("0008_inspection", _0008_inspection),
    ("0009_vector_store_index_stats", _0009_vector_store_index_stats),
]


def migrate(conn: Connection, *, upto: str | None = None) -> list[str]:
    """Apply pending steps inside the caller's (locked) transaction; return their names.

    ``upto``: stop after the step of that name (a database as that version left it — the
    upgrade tests build old databases this way)."""
    names = [name for name, _ in MIGRATIONS]
    if upto is not None and upto not in names:
        raise ValueError(f"no migration named {upto!r}")
    schema_migrations.create(conn, checkfirst=True)
    done = {row[0] for row in conn.execute(schema_migrations.select())}
    applied = []
    for name, step in MIGRATIONS:
        if name not in done:
            step(conn)
            conn.execute(schema_migrations.insert().values(name=name))
            applied.append(name)
        if name == upto:
            break
    return applied
