"""Tables and migrations (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Each object is stored as its wire JSON in ``data`` plus the few columns queries filter on.
Primary keys are the time-ordered ids (see :mod:`assistant_kit._ids`), so ``ORDER BY id``
is creation order and a page is an index range scan: its cost does not grow with the
thread. Migrations are named, ordered and append-only; each runs once per database.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Column, Index, Integer, MetaData, String, Table, Text
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


MIGRATIONS: list[tuple[str, Callable[[Connection], None]]] = [
    ("0001_initial", _initial),
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
