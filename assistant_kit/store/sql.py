"""The store: one class, SQLAlchemy Core, SQLite by default and PostgreSQL by URL.

Objects go in and come out as wire-format dicts; the engine turns them into
``openai.types.beta`` models. Every public method is one operation in one transaction.
Methods are synchronous and are called from the engine through :class:`AsyncStore`,
which runs them on the store's own worker thread(s): a SQLite busy-wait (another process
writing the same file) then never blocks the engine's event loop.

SQLite specifics: WAL journal (a notebook and a server process can share the file:
readers never block the writer), ``busy_timeout`` so a second writer waits instead of
failing, and ``BEGIN IMMEDIATE`` for write transactions so two processes cannot both
read-then-write and deadlock on lock upgrade. ``:memory:`` uses one shared connection.
"""

from __future__ import annotations

import asyncio
import builtins  # ``Store.list`` shadows the builtin in its class body's annotations
import concurrent.futures.thread
import functools
import io
import json
import os
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Concatenate, Generic, ParamSpec, TypeVar, overload

from sqlalchemy import and_, create_engine, delete, event, func, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from .._ids import FILE_PREFIX, LEGACY_FILE_PREFIX, sort_key
from ..errors import InvalidRequestError
from . import migrations, schema

ACTIVE_RUN_STATUSES = ("queued", "in_progress", "requires_action", "cancelling")
# Statuses in which a process is executing the run and renews its lease.
LEASED_RUN_STATUSES = ("queued", "in_progress", "cancelling")
DB_ENV = "ASSISTANT_KIT_DB"
MASTER_OWNER = "master"
"""The owner of the proxy's master key (``server/auth.py``); see :func:`owner_condition`."""

Mark = tuple[str, str, Mapping[str, int]]
"""``(kind, object id, {column: value})``: millisecond timings to write beside an object (the
``*_at_ms`` columns and a step's ``tool_ms``; see :mod:`.schema`). A timestamp is written only
where the column is still NULL — the first mark of an event wins, so a repeated or late mark
never moves it — and ``tool_ms`` is added to what the column holds."""
_COPIED = ("thread_id", "run_id", "status", "expires_at", "purpose", "assistant_id", "model", "type")
"""Wire fields a table keeps a column of (for queries), when it has one by that name."""
RUN_TIMINGS = ("created_at_ms", "started_at_ms", "first_token_at_ms", "ended_at_ms")
STEP_TIMINGS = ("created_at_ms", "first_token_at_ms", "ended_at_ms", "tool_ms")


def default_db_path() -> Path:
    """``$ASSISTANT_KIT_DB``, else ``$XDG_DATA_HOME/assistant_kit/assistant_kit.db``
    (``~/.local/share/assistant_kit/assistant_kit.db``)."""
    if os.environ.get(DB_ENV):
        return Path(os.environ[DB_ENV]).expanduser()
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "assistant_kit" / "assistant_kit.db"


def database_url(db: str | os.PathLike[str] | None) -> str:
    """Turn the ``db`` argument (None, a path, ``":memory:"`` or a SQLAlchemy URL) into a URL."""
    if db is None:
        db = default_db_path()
    text = os.fspath(db)
    if text == ":memory:":
        return "sqlite://"
    if "://" in text:
        if text.startswith("postgres://"):
            text = "postgresql://" + text[len("postgres://") :]
        if text.startswith("postgresql://"):
            text = "postgresql+psycopg://" + text[len("postgresql://") :]
        return text
    path = Path(text).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def cursor_page(
    conn: Connection,
    query: Any,
    key: Any,
    conds: list[Any],
    limit: int,
    order: str,
    after: Any = None,
    before: Any = None,
) -> tuple[list[Any], bool]:
    """One page of ``query`` by a cursor on ``key``, as the wire protocol pages: ``limit`` + 1
    rows read to learn ``has_more``; ``before`` without ``after`` walks backwards from the
    cursor, then restores the requested order. Every list of the store pages through here
    (objects, vector store files, the inspector's runs and steps). ``conds`` is extended."""
    ascending, reverse = order == "asc", False
    if after is not None:
        conds.append(key > after if ascending else key < after)
    if before is not None:
        conds.append(key < before if ascending else key > before)
        if after is None:
            ascending, reverse = not ascending, True
    # where(*conds): and_() of nothing is deprecated in SQLAlchemy 2
    query = query.where(*conds).order_by(key.asc() if ascending else key.desc()).limit(limit + 1)
    rows = list(conn.execute(query))
    has_more = len(rows) > limit
    rows = rows[:limit]
    if reverse:
        rows.reverse()
    return rows, has_more


@dataclass
class Page:
    data: list[dict[str, Any]]
    has_more: bool

    @property
    def first_id(self) -> str | None:
        return self.data[0]["id"] if self.data else None

    @property
    def last_id(self) -> str | None:
        return self.data[-1]["id"] if self.data else None


class Store:
    """Persistent objects. ``kind`` is the wire ``object`` name (``"thread.message"`` …)."""

    def __init__(self, db: str | os.PathLike[str] | None = None):
        self.url = database_url(db)
        self.is_sqlite = self.url.startswith("sqlite")
        if self.url == "sqlite://":
            self.engine: Engine = create_engine(
                self.url, poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
            workers = 1
        elif self.is_sqlite:
            self.engine = create_engine(self.url, connect_args={"check_same_thread": False, "timeout": 30})
            workers = 1
        else:
            self.engine = create_engine(self.url, pool_pre_ping=True)
            workers = 8
        if self.is_sqlite:
            self._sqlite_setup(self.engine)
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix="assistant_kit-store")
        self._before_close: builtins.list[Callable[[], None]] = []
        with self._write() as conn:
            if not self.is_sqlite:  # replicas starting together migrate one at a time
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7240917)")
            migrations.migrate(conn)

    def __repr__(self) -> str:
        return f"<Store {self.engine.url.render_as_string(hide_password=True)}>"

    @staticmethod
    def _sqlite_setup(engine: Engine) -> None:
        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get("sqlite_immediate")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            if self.is_sqlite:
                conn = conn.execution_options(sqlite_immediate=True)
            with conn.begin():
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[Connection]:
        """One transaction on this store's database, for the layers that keep tables of their
        own in it (the retrieval index's chunks: :mod:`assistant_kit.retrieval.search`).
        ``write`` takes the write lock at once on SQLite (``BEGIN IMMEDIATE``), as every
        writing operation of the store does. Synchronous: call it on the store's worker."""
        with self._write() if write else self._read() as conn:
            yield conn

    def before_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (in the closing thread) when :meth:`close` begins, while the store
        still works: an engine on this store settles the runs it executes then
        (:meth:`assistant_kit.engine.core.Engine.store_closing`), instead of finding the store
        gone in the middle of a write."""
        self._before_close.append(callback)

    def close(self) -> None:
        """Let whoever asked (:meth:`before_close`) finish with the store, then stop its worker
        (after the operations already queued) and its connections. Closing twice is harmless."""
        callbacks, self._before_close = self._before_close, []
        try:
            for callback in callbacks:
                callback()
        finally:
            self.executor.shutdown(wait=True)
            self.engine.dispose()

    @property
    def closed(self) -> bool:
        """The store's worker takes no more work: the store was closed, or the interpreter is
        exiting (``concurrent.futures`` then refuses new work in every thread pool)."""
        return worker_closed(self.executor)

    # -- generic object operations -------------------------------------------------

    @staticmethod
    def _owner_condition(table: Any, owner: str | None) -> Any:
        """The rows ``owner`` may see — the one place object ownership is decided.

        None (the in-process client, a proxy without keys): every row. The master key
        (:data:`MASTER_OWNER`): its own rows *and* the unowned ones, which local sessions
        (``local_client(db)``, ``Session(db)``) store: whoever holds the master key of a proxy
        on a store is the machine's owner, so a notebook and that proxy see one store
        (``server/auth.py`` says why). Any other owner: its own rows only, never the unowned.
        Returns None when nothing is to be filtered."""
        if owner is None:
            return None
        if owner == MASTER_OWNER:
            return or_(table.c.owner == owner, table.c.owner.is_(None))
        return table.c.owner == owner

    @staticmethod
    def _columns(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        table = schema.TABLES[kind]
        values = {"id": obj["id"], "created_at": obj["created_at"], "data": json.dumps(obj)}
        for name in _COPIED:
            if name in table.c:
                values[name] = obj.get(name)
        return values

    @staticmethod
    def _mark(conn: Connection, marks: Sequence[Mark]) -> None:
        """Write ``marks`` (see :data:`Mark`) in the caller's transaction."""
        for kind, object_id, values in marks:
            table = schema.TABLES[kind]
            changes = {
                name: func.coalesce(table.c[name], 0) + value
                if name == "tool_ms"
                else func.coalesce(table.c[name], value)
                for name, value in values.items()
            }
            if changes:
                conn.execute(update(table).where(table.c.id == object_id).values(**changes))

    def insert(
        self, kind: str, obj: dict[str, Any], owner: str | None = None, marks: Sequence[Mark] = ()
    ) -> dict[str, Any]:
        with self._write() as conn:
            conn.execute(schema.TABLES[kind].insert().values(owner=owner, **self._columns(kind, obj)))
            self._mark(conn, marks)
        return obj

    def insert_many(
        self,
        items: Sequence[tuple[str, dict[str, Any]]],
        owner: str | None = None,
        marks: Sequence[Mark] = (),
    ) -> None:
        with self._write() as conn:
            for kind, obj in items:
                conn.execute(schema.TABLES[kind].insert().values(owner=owner, **self._columns(kind, obj)))
            self._mark(conn, marks)

    def get(self, kind: str, object_id: str, owner: str | None = None, **where: Any) -> dict[str, Any] | None:
        table = schema.TABLES[kind]
        conds = [table.c.id == object_id, *(table.c[k] == v for k, v in where.items())]
        if (mine := self._owner_condition(table, owner)) is not None:
            conds.append(mine)
        with self._read() as conn:
            row = conn.execute(select(table.c.data).where(and_(*conds))).first()
        return json.loads(row[0]) if row else None

    def put(self, kind: str, obj: dict[str, Any], marks: Sequence[Mark] = ()) -> dict[str, Any]:
        """Replace a stored object by id (columns follow the new data)."""
        table = schema.TABLES[kind]
        values = self._columns(kind, obj)
        with self._write() as conn:
            conn.execute(update(table).where(table.c.id == obj["id"]).values(**values))
            self._mark(conn, marks)
        return obj

    def modify(
        self, kind: str, object_id: str, change: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any] | None:
        """Read-modify-write of one stored object as one transaction with the row locked
        (``FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serialises
        writers): ``change`` edits the object in place and says whether to write it back.
        For a decision that must see the latest object — two requests that each read it,
        decided and wrote the whole object with :meth:`put` would lose one's change.
        Returns the object as stored afterwards; None when there is none (``change`` is not
        called). ``change`` runs on the store's worker: it must not block or await."""
        table = schema.TABLES[kind]
        with self._write() as conn:
            query = select(table.c.data).where(table.c.id == object_id)
            row = conn.execute(query if self.is_sqlite else query.with_for_update()).first()
            if row is None:
                return None
            obj = json.loads(row[0])
            if change(obj):
                conn.execute(update(table).where(table.c.id == object_id).values(**self._columns(kind, obj)))
        return obj

    def put_many(self, items: Sequence[tuple[str, dict[str, Any]]], marks: Sequence[Mark] = ()) -> None:
        with self._write() as conn:
            for kind, obj in items:
                table = schema.TABLES[kind]
                conn.execute(update(table).where(table.c.id == obj["id"]).values(**self._columns(kind, obj)))
            self._mark(conn, marks)

    def delete(self, kind: str, object_id: str) -> bool:
        table = schema.TABLES[kind]
        with self._write() as conn:
            return conn.execute(delete(table).where(table.c.id == object_id)).rowcount > 0

    def list(
        self,
        kind: str,
        *,
        limit: int = 20,
        order: str = "desc",
        after: str | None = None,
        before: str | None = None,
        owner: str | None = None,
        **where: Any,
    ) -> Page:
        """One page by id cursor, exactly as the wire protocol pages (``limit`` + 1 rows read).

        Files order by :func:`~assistant_kit._ids.sort_key` (legacy ``file_`` ids among the
        ``file-`` ones by time), an expression instead of the bare key: files are few per
        owner, and their list is not a hot path."""
        table = schema.TABLES[kind]
        conds = [table.c[k] == v for k, v in where.items()]
        if (mine := self._owner_condition(table, owner)) is not None:
            conds.append(mine)
        key: Any = table.c.id
        if kind == "file":
            key = func.replace(table.c.id, LEGACY_FILE_PREFIX, FILE_PREFIX)
            after, before = (sort_key(c) if c is not None else None for c in (after, before))
        with self._read() as conn:
            rows, has_more = cursor_page(conn, select(table.c.data), key, conds, limit, order, after, before)
        return Page([json.loads(r[0]) for r in rows], has_more)

    def count(self, kind: str, **where: Any) -> int:
        table = schema.TABLES[kind]
        conds = [table.c[k] == v for k, v in where.items()]
        with self._read() as conn:
            return conn.execute(select(func.count()).select_from(table).where(*conds)).scalar_one()

    # -- operations with rules -----------------------------------------------------

    def active_run_id(self, thread_id: str) -> str | None:
        with self._read() as conn:
            return self._active_run(conn, thread_id)

    @staticmethod
    def _active_run(conn: Connection, thread_id: str) -> str | None:
        runs = schema.runs
        return conn.execute(
            select(runs.c.id)
            .where(runs.c.thread_id == thread_id, runs.c.status.in_(ACTIVE_RUN_STATUSES))
            .limit(1)
        ).scalar()

    def _lock_thread(self, conn: Connection, thread_id: str) -> None:
        if not self.is_sqlite:  # SQLite's BEGIN IMMEDIATE already serialises writers
            conn.execute(
                select(schema.threads.c.id).where(schema.threads.c.id == thread_id).with_for_update()
            )

    def insert_if_idle(
        self,
        thread_id: str,
        items: Sequence[tuple[str, dict[str, Any]]],
        owner: str | None = None,
        param: str | None = None,
        lease: str | None = None,
        marks: Sequence[Mark] = (),
    ) -> None:
        """Insert objects into a thread only if it has no active run (checked atomically).
        ``lease``: the worker id that will execute the runs among ``items`` (lease starts now)."""
        with self._write() as conn:
            self._lock_thread(conn, thread_id)
            active = self._active_run(conn, thread_id)
            if active:
                raise InvalidRequestError(
                    f"Thread {thread_id} already has an active run {active}.", param=param
                )
            for kind, obj in items:
                values = self._columns(kind, obj)
                if lease is not None and kind == "thread.run":
                    values.update(worker=lease, heartbeat_at=time.time())
                conn.execute(schema.TABLES[kind].insert().values(owner=owner, **values))
            self._mark(conn, marks)

    def thread_messages(self, thread_id: str, last: int | None = None) -> builtins.list[dict[str, Any]]:
        """Messages of a thread in creation order (the model's context); ``last`` keeps the tail."""
        table = schema.messages
        query = select(table.c.data).where(table.c.thread_id == thread_id)
        if last is not None:
            query = query.order_by(table.c.id.desc()).limit(last)
        else:
            query = query.order_by(table.c.id.asc())
        with self._read() as conn:
            rows = [json.loads(r[0]) for r in conn.execute(query)]
        return rows[::-1] if last is not None else rows

    def owner_of(self, kind: str, object_id: str) -> str | None:
        """The owner an object was stored with (None: not found, or stored without one)."""
        table = schema.TABLES[kind]
        with self._read() as conn:
            return conn.execute(select(table.c.owner).where(table.c.id == object_id)).scalar()

    # -- files (metadata and bytes in two tables: lists never read the bytes) -------------

    def insert_file(
        self,
        obj: dict[str, Any],
        content: bytes | BinaryIO,
        owner: str | None = None,
        *,
        thread_id: str | None = None,
        call_id: str | None = None,
    ) -> dict[str, Any]:
        """Store a File object and its bytes, in one transaction. ``content``: the bytes, or a
        binary file read from its current position to its end a chunk at a time (an upload's
        spooled temp file), so a large file never needs to be in memory whole."""
        source = io.BytesIO(content) if isinstance(content, (bytes, bytearray, memoryview)) else content
        chunks = schema.file_chunks
        with self._write() as conn:
            values = {**self._columns("file", obj), "thread_id": thread_id, "call_id": call_id}
            conn.execute(schema.files.insert().values(owner=owner, **values))
            seq = 0
            while chunk := source.read(schema.CHUNK_BYTES):
                conn.execute(chunks.insert().values(id=obj["id"], seq=seq, data=chunk))
                seq += 1
        return obj

    def file_chunk(self, file_id: str, seq: int) -> bytes | None:
        """Chunk ``seq`` (from 0) of a file's bytes; None past the last one (or no such file).
        Downloads stream a file this way, one chunk in memory at a time."""
        table = schema.file_chunks
        with self._read() as conn:
            value = conn.execute(
                select(table.c.data).where(table.c.id == file_id, table.c.seq == seq)
            ).scalar()
        return bytes(value) if value is not None else None

    def file_content(self, file_id: str) -> bytes | None:
        """A file's bytes whole (code_interpreter places input files with them); None: no file."""
        table = schema.file_chunks
        with self._read() as conn:
            if conn.execute(select(schema.files.c.id).where(schema.files.c.id == file_id)).scalar() is None:
                return None
            rows = conn.execute(select(table.c.data).where(table.c.id == file_id).order_by(table.c.seq))
            return b"".join(bytes(row[0]) for row in rows)

    def delete_file(self, file_id: str) -> bool:
        with self._write() as conn:
            conn.execute(delete(schema.file_chunks).where(schema.file_chunks.c.id == file_id))
            return conn.execute(delete(schema.files).where(schema.files.c.id == file_id)).rowcount > 0

    def files_made_in(self, thread_id: str) -> builtins.list[tuple[str, dict[str, Any]]]:
        """``(call_id, file)`` for the files code_interpreter calls made in a thread, oldest first."""
        table = schema.files
        query = (
            select(table.c.call_id, table.c.data)
            .where(table.c.thread_id == thread_id, table.c.call_id.is_not(None))
            .order_by(table.c.id.asc())
        )
        with self._read() as conn:
            return [(row.call_id, json.loads(row.data)) for row in conn.execute(query)]

    def delete_thread(self, thread_id: str) -> bool:
        with self._write() as conn:
            for table in (schema.run_prompts, schema.run_steps, schema.messages, schema.runs):
                conn.execute(delete(table).where(table.c.thread_id == thread_id))
            return conn.execute(delete(schema.threads).where(schema.threads.c.id == thread_id)).rowcount > 0

    # -- run leases (replicas sharing the database; see assistant_kit.engine.runs) -------

    def save_run(
        self,
        run: dict[str, Any],
        *,
        expect: Sequence[str],
        worker: str | None = None,
        claim: str | None = None,
        stale_before: float | None = None,
        also: Sequence[tuple[str, dict[str, Any]]] = (),
        marks: Sequence[Mark] = (),
    ) -> bool:
        """Write ``run`` (and ``also``, in the same transaction) only if the stored row still
        has a status in ``expect``, and, when given, is executed by ``worker`` / has a lease
        older than ``stale_before``. ``claim`` makes that worker the run's executor (lease
        renewed now). Returns whether it was written: a compare-and-set, so two processes
        changing one run concurrently cannot both win, and a process that lost a run (taken
        over, settled by another replica) cannot overwrite it. ``marks``: timings written
        with it (only if it is written)."""
        table = schema.runs
        conds = [table.c.id == run["id"], table.c.status.in_(expect)]
        if worker is not None:
            conds.append(table.c.worker == worker)
        if stale_before is not None:
            conds.append(func.coalesce(table.c.heartbeat_at, table.c.created_at) < stale_before)
        values = self._columns("thread.run", run)
        if claim is not None:
            values.update(worker=claim, heartbeat_at=time.time())
        with self._write() as conn:
            if conn.execute(update(table).where(*conds).values(**values)).rowcount == 0:
                return False
            for kind, obj in also:
                other = schema.TABLES[kind]
                conn.execute(update(other).where(other.c.id == obj["id"]).values(**self._columns(kind, obj)))
            self._mark(conn, marks)
        return True

    def run_lease(self, run_id: str) -> dict[str, Any] | None:
        """``{"status", "worker", "heartbeat_at"}`` of a run (``heartbeat_at`` falls back to
        ``created_at`` for runs written before leases existed), or None."""
        table = schema.runs
        query = select(
            table.c.status,
            table.c.worker,
            func.coalesce(table.c.heartbeat_at, table.c.created_at).label("heartbeat_at"),
        ).where(table.c.id == run_id)
        with self._read() as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    def renew_leases(self, worker: str, run_ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
        """Renew ``worker``'s lease on those of ``run_ids`` it still executes (one UPDATE), and
        return ``{run_id: (status, worker)}`` for all of them as stored (absent: deleted), so the
        caller learns of runs cancelled or taken from it by another process."""
        table = schema.runs
        with self._write() as conn:
            conn.execute(
                update(table)
                .where(
                    table.c.id.in_(run_ids),
                    table.c.worker == worker,
                    table.c.status.in_(LEASED_RUN_STATUSES),
                )
                .values(heartbeat_at=time.time())
            )
            rows = conn.execute(
                select(table.c.id, table.c.status, table.c.worker).where(table.c.id.in_(run_ids))
            )
            return {row.id: (row.status, row.worker) for row in rows}

    def runs_to_settle(self, stale_before: float, now: float) -> builtins.list[tuple[dict[str, Any], float]]:
        """Runs nobody can be executing: executing statuses whose lease is older than
        ``stale_before``, and ``requires_action`` runs past ``expires_at``. Returns
        ``(run, heartbeat_at)`` pairs (``heartbeat_at`` as :meth:`run_lease` gives it)."""
        table = schema.runs
        beat = func.coalesce(table.c.heartbeat_at, table.c.created_at)
        query = select(table.c.data, beat.label("beat")).where(
            or_(
                and_(table.c.status.in_(LEASED_RUN_STATUSES), beat < stale_before),
                and_(table.c.status == "requires_action", table.c.expires_at <= now),
            )
        )
        with self._read() as conn:
            return [(json.loads(row.data), row.beat) for row in conn.execute(query)]

    # -- API keys (the proxy's generated keys; rows hold hashes, never keys) -----------

    def insert_api_key(self, row: dict[str, Any]) -> None:
        """``row``: ``key_hash``, ``owner``, ``key_alias``, ``created_at``, ``expires_at``, ``data``."""
        with self._write() as conn:
            conn.execute(schema.api_keys.insert().values(**row))

    def get_api_key(self, key_hash: str) -> dict[str, Any] | None:
        table = schema.api_keys
        with self._read() as conn:
            row = conn.execute(select(table).where(table.c.key_hash == key_hash)).mappings().first()
        return dict(row) if row else None

    def list_api_keys(self) -> builtins.list[dict[str, Any]]:
        """Every generated key's row (hashes only): the proxy reads them in one query."""
        table = schema.api_keys
        with self._read() as conn:
            return [dict(row) for row in conn.execute(select(table)).mappings()]

    def delete_api_keys(self, key_hashes: builtins.list[str]) -> builtins.list[str]:
        """Delete these keys; returns the hashes that existed (and are gone now)."""
        table = schema.api_keys
        with self._write() as conn:
            found = [
                row.key_hash
                for row in conn.execute(select(table.c.key_hash).where(table.c.key_hash.in_(key_hashes)))
            ]
            if found:
                conn.execute(table.delete().where(table.c.key_hash.in_(found)))
        return found

    def ping(self) -> None:
        """One round trip to the database (health checks)."""
        with self._read() as conn:
            conn.exec_driver_sql("SELECT 1")


P = ParamSpec("P")
T = TypeVar("T")


S = TypeVar("S")


class OnWorker(Generic[S, P, T]):
    """A synchronous method of ``S`` (a :class:`Store`, a :class:`~.vectors.VectorTables`) as
    a method of its awaitable facade (:class:`AsyncStore`, :class:`~.vectors.AsyncVectorTables`):
    the same parameters, the result awaited, the call run on the store's worker thread(s). Its
    type comes from the method itself (``ParamSpec``), so callers see every signature and
    return type and no signature is copied by hand. The method is looked up on the facade's
    ``sync`` object at call time."""

    def __init__(self, method: Callable[Concatenate[S, P], T]) -> None:
        self.name = method.__name__

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> OnWorker[S, P, T]: ...

    @overload
    def __get__(
        self, instance: OnStoreWorker[S], owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...

    def __get__(
        self, instance: OnStoreWorker[S] | None, owner: type[Any]
    ) -> OnWorker[S, P, T] | Callable[P, Coroutine[Any, Any, T]]:
        if instance is None:
            return self
        method: Callable[P, T] = getattr(instance.sync, self.name)
        executor = instance.executor

        async def call(*args: P.args, **kwargs: P.kwargs) -> T:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(executor, functools.partial(method, *args, **kwargs))

        call.__name__ = self.name
        return call


def worker_closed(executor: Executor) -> bool:
    """``executor`` (a store's worker) refuses new work: it was shut down (:meth:`Store.close`),
    or the interpreter is exiting. Work it refuses then raises ``RuntimeError`` ("cannot
    schedule new futures after [interpreter] shutdown"): a normal end, not a failure."""
    return bool(
        getattr(executor, "_shutdown", False) or getattr(concurrent.futures.thread, "_shutdown", False)
    )


class OnStoreWorker(Generic[S]):
    """The base of an awaitable facade: ``sync`` is the synchronous object whose methods its
    :class:`OnWorker` lines await, ``executor`` the store's worker thread(s) they run on."""

    def __init__(self, sync: S, executor: Executor):
        self.sync = sync
        self.executor = executor

    @property
    def closed(self) -> bool:
        """The worker refuses new work (:func:`worker_closed`)."""
        return worker_closed(self.executor)


class AsyncStore(OnStoreWorker[Store]):
    """Awaitable facade: ``await astore.get(...)`` runs ``store.get`` on the store's worker.

    One line per :class:`Store` operation the engine and the proxy await (``sync`` is the
    store itself, for what is not an operation: its engine, URL, executor)."""

    def __init__(self, store: Store):
        super().__init__(store, store.executor)

    insert = OnWorker(Store.insert)
    insert_many = OnWorker(Store.insert_many)
    get = OnWorker(Store.get)
    put = OnWorker(Store.put)
    put_many = OnWorker(Store.put_many)
    modify = OnWorker(Store.modify)
    delete = OnWorker(Store.delete)
    list = OnWorker(Store.list)
    count = OnWorker(Store.count)
    active_run_id = OnWorker(Store.active_run_id)
    insert_if_idle = OnWorker(Store.insert_if_idle)
    thread_messages = OnWorker(Store.thread_messages)
    owner_of = OnWorker(Store.owner_of)
    insert_file = OnWorker(Store.insert_file)
    file_chunk = OnWorker(Store.file_chunk)
    file_content = OnWorker(Store.file_content)
    delete_file = OnWorker(Store.delete_file)
    files_made_in = OnWorker(Store.files_made_in)
    delete_thread = OnWorker(Store.delete_thread)
    save_run = OnWorker(Store.save_run)
    run_lease = OnWorker(Store.run_lease)
    renew_leases = OnWorker(Store.renew_leases)
    runs_to_settle = OnWorker(Store.runs_to_settle)
    insert_api_key = OnWorker(Store.insert_api_key)
    get_api_key = OnWorker(Store.get_api_key)
    list_api_keys = OnWorker(Store.list_api_keys)
    delete_api_keys = OnWorker(Store.delete_api_keys)
    ping = OnWorker(Store.ping)

    def __repr__(self) -> str:
        return f"<AsyncStore {self.sync!r}>"
