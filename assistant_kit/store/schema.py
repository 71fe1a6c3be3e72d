"""Tables and migrations (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Each object is stored as its wire JSON in ``data`` plus the few columns queries filter on.
Primary keys are the time-ordered ids (see :mod:`assistant_kit._ids`), so ``ORDER BY id``
is creation order and a page is an index range scan: its cost does not grow with the
thread. Migrations are named, ordered and append-only; each runs once per database.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Column, Float, Index, Integer, LargeBinary, MetaData, String, Table, Text, select
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateColumn

from ..retrieval import schema as retrieval_schema

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
runs = _object_table(
    "runs",
    Column("thread_id", String(64), nullable=False),
    Column("status", String(32), nullable=False),
)
run_steps = _object_table(
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

schema_migrations = Table(
    "schema_migrations",
    MetaData(),
    Column("name", String(128), primary_key=True),
)

TABLES = {
    "assistant": assistants,
    "thread": threads,
    "thread.message": messages,
    "thread.run": runs,
    "thread.run.step": run_steps,
}


def _initial(conn: Connection) -> None:
    metadata.create_all(conn)


# The proxy's generated API keys (see assistant_kit.server.auth). Only the SHA-256 of a key is
# stored. Own MetaData: ``metadata.create_all`` in 0001 must not grow tables of later migrations.
api_keys = Table(
    "api_keys",
    MetaData(),
    Column("key_hash", String(64), primary_key=True),
    Column("owner", String(64), nullable=False),
    Column("key_alias", String(256), nullable=True),
    Column("created_at", Integer, nullable=False),
    Column("expires_at", Integer, nullable=True),
    Column("data", Text, nullable=False),
)


def _api_keys(conn: Connection) -> None:
    api_keys.create(conn, checkfirst=True)


# 0003: the runs table with the lease of the process executing each run (``worker``, a
# random id per engine, and ``heartbeat_at``, renewed every few seconds while it executes)
# and ``expires_at`` as a column. Replicas sharing a database use the lease to tell a run
# another live process executes from one whose process died (see assistant_kit.engine.runs);
# the expiry column lets them find runs due to expire without reading every active run.
# Timestamps are the writers' wall clocks (Unix seconds), like every timestamp on the wire.
# The object is "thread.run" in TABLES from here on, so writes keep expires_at in sync;
# ``runs`` above stays as 0001 created it.
runs_v3 = Table(
    "runs",
    MetaData(),
    *(Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable) for c in runs.c),
    Column("worker", String(64), nullable=True),
    Column("heartbeat_at", Float, nullable=True),
    Column("expires_at", Integer, nullable=True),
)
ix_runs_lease = Index("ix_runs_lease", runs_v3.c.status, runs_v3.c.heartbeat_at)
TABLES["thread.run"] = runs_v3


def _run_leases(conn: Connection) -> None:
    for name in ("worker", "heartbeat_at", "expires_at"):  # SQLite: one column per ALTER
        column = CreateColumn(runs_v3.c[name]).compile(dialect=conn.dialect)
        conn.exec_driver_sql(f"ALTER TABLE runs ADD COLUMN {column}")
    ix_runs_lease.create(conn)


# 0004: the Files API. ``files`` holds the File object (listed and filtered by purpose without
# touching the bytes); ``file_contents`` the bytes, one row per file, read only for downloads
# and for code_interpreter. Files a run's code made (images, written files) carry the
# ``thread_id`` and ``call_id`` that made them, so the model's next turn can be told about them.
files = Table(
    "files",
    MetaData(),
    Column("id", String(64), primary_key=True),
    Column("owner", String(64), nullable=True),
    Column("created_at", Integer, nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("thread_id", String(64), nullable=True),
    Column("call_id", String(64), nullable=True),
    Column("data", Text, nullable=False),
)
file_contents = Table(
    "file_contents",
    files.metadata,
    Column("id", String(64), primary_key=True),
    Column("content", LargeBinary, nullable=False),
)
ix_files_owner = Index("ix_files_owner", files.c.owner, files.c.id)
ix_files_thread = Index("ix_files_thread", files.c.thread_id, files.c.call_id)
TABLES["file"] = files


def _files(conn: Connection) -> None:
    files.metadata.create_all(conn)


# 0005: a file's bytes in chunks of at most ``CHUNK_BYTES``, one row each, in ``file_chunks``
# (``file_contents`` goes). Why: one row per file meant the whole file as one bound parameter
# on the way in and one value on the way out — a 60 MB upload cost the server several 60 MB
# copies at once (8 concurrent ones took it from 92 MB to 1.7 GB). In chunks an upload is
# written from its spooled temp file and a download streamed, a chunk at a time, the same way
# on SQLite and PostgreSQL (neither's blob streaming API is reachable through SQLAlchemy Core
# on both). Existing files are moved over one at a time.
CHUNK_BYTES = 1024 * 1024
file_chunks = Table(
    "file_chunks",
    MetaData(),
    Column("id", String(64), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("data", LargeBinary, nullable=False),
)


def _file_chunks(conn: Connection) -> None:
    file_chunks.create(conn)
    ids = [row[0] for row in conn.execute(select(file_contents.c.id))]
    for file_id in ids:
        content = conn.execute(select(file_contents.c.content).where(file_contents.c.id == file_id)).scalar()
        content = bytes(content or b"")
        for seq, start in enumerate(range(0, len(content), CHUNK_BYTES)):
            chunk = content[start : start + CHUNK_BYTES]
            conn.execute(file_chunks.insert().values(id=file_id, seq=seq, data=chunk))
    file_contents.drop(conn)


def _vector_stores(conn: Connection) -> None:
    from .vectors import migrate_vector_stores  # the tables live with their operations

    migrate_vector_stores(conn)


MIGRATIONS: list[tuple[str, Callable[[Connection], None]]] = [
    ("0001_initial", _initial),
    ("0002_api_keys", _api_keys),
    ("0003_run_leases", _run_leases),
    ("0004_files", _files),
    ("0005_file_chunks", _file_chunks),
    # Vector stores' chunks and keyword index: DDL in assistant_kit/retrieval/schema.py.
    (retrieval_schema.MIGRATION_NAME, retrieval_schema.create_chunks),
    # Vector stores, their files (the ingestion jobs) and file batches: assistant_kit/store/vectors.py.
    ("0007_vector_stores", _vector_stores),
]


def migrate(conn: Connection) -> list[str]:
    """Apply pending migrations inside the caller's (locked) transaction; return their names."""
    schema_migrations.create(conn, checkfirst=True)
    done = {row[0] for row in conn.execute(schema_migrations.select())}
    applied = []
    for name, step in MIGRATIONS:
        if name not in done:
            step(conn)
            conn.execute(schema_migrations.insert().values(name=name))
            applied.append(name)
    return applied
