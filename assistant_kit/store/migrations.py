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

from sqlalchemy import Column, Float, Index, Integer, LargeBinary, MetaData, String, Table, Text, select
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


MIGRATIONS: list[tuple[str, Callable[[Connection], None]]] = [
    ("0001_initial", _0001_initial),
    ("0002_api_keys", _0002_api_keys),
    ("0003_run_leases", _0003_run_leases),
    ("0004_files", _0004_files),
    ("0005_file_chunks", _0005_file_chunks),
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
