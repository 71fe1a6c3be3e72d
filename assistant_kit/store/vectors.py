"""Vector stores, their files and file batches: tables, migration and the operations on them.

Kept beside :mod:`.sql` (one :class:`VectorTables` over a :class:`~.sql.Store`) so the vector
store data plane has its own module. The chunks a file is split into, with their full-text and
vector indexes, are the retrieval index's (:mod:`assistant_kit.retrieval`); these tables hold
the objects of the wire and the ingestion jobs (all tables: :mod:`.schema`).

A ``vector_store_files`` row *is* the ingestion job of that file: ``status`` ``in_progress``
until a worker finishes it, ``worker`` / ``heartbeat_at`` the lease of the engine ingesting it
(the same scheme as runs, see :mod:`assistant_kit.engine.runs`), ``attempts`` how many times a
worker claimed it. Claims and results are compare-and-set UPDATEs, so replicas sharing a
PostgreSQL database never ingest one file twice at once, and a worker that lost its lease (it
froze, the file was detached or its batch cancelled meanwhile) cannot overwrite the row.

``file_counts``, ``usage_bytes`` and a store's ``status`` are not stored: they are counted from
the file rows when an object is read (one grouped query), so they cannot drift between replicas.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    and_,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection

from .schema import vector_store_file_batches, vector_store_files, vector_stores
from .sql import OnStoreWorker, OnWorker, cursor_page

if TYPE_CHECKING:
    from .sql import Page, Store

FILE_STATUSES = ("in_progress", "completed", "cancelled", "failed")


def _counts(rows: Sequence[Any]) -> tuple[dict[str, int], int]:
    counts = dict.fromkeys(FILE_STATUSES, 0)
    usage = 0
    for status, number, used in rows:
        counts[status] = counts.get(status, 0) + int(number)
        usage += int(used or 0)
    counts["total"] = sum(counts[s] for s in FILE_STATUSES)
    return counts, usage


class VectorTables:
    """The vector store operations, each one transaction, on ``store``'s connections.
    Synchronous like :class:`~.sql.Store`; the engine awaits them through
    :class:`AsyncVectorTables`, which runs them on the store's worker thread(s)."""

    def __init__(self, store: Store):
        self.store = store

    def __repr__(self) -> str:
        return f"<VectorTables {self.store!r}>"

    # -- vector stores ------------------------------------------------------------------

    def insert_store(
        self, obj: dict[str, Any], owner: str | None, files: Sequence[dict[str, Any]] = ()
    ) -> None:
        """A new vector store and the file rows attached at creation, in one transaction."""
        with self.store._write() as conn:
            conn.execute(
                vector_stores.insert().values(
                    id=obj["id"],
                    owner=owner,
                    created_at=obj["created_at"],
                    expires_at=obj.get("expires_at"),
                    data=json.dumps(obj),
                )
            )
            self._insert_files(conn, files, owner, None)

    def get_store(self, store_id: str, owner: str | None) -> dict[str, Any] | None:
        conds = [vector_stores.c.id == store_id]
        if (mine := self.store._owner_condition(vector_stores, owner)) is not None:
            conds.append(mine)
        with self.store._read() as conn:
            row = conn.execute(select(vector_stores.c.data).where(*conds)).first()
        return json.loads(row[0]) if row else None

    def put_store(self, obj: dict[str, Any]) -> None:
        with self.store._write() as conn:
            conn.execute(
                update(vector_stores)
                .where(vector_stores.c.id == obj["id"])
                .values(expires_at=obj.get("expires_at"), data=json.dumps(obj))
            )

    def touch_store(self, store_id: str, active_at: int, expires_at: int | None) -> None:
        """``last_active_at`` (and the ``expires_at`` it moves) in the stored JSON."""
        with self.store._write() as conn:
            row = conn.execute(select(vector_stores.c.data).where(vector_stores.c.id == store_id)).first()
            if row is None:
                return
            obj = json.loads(row[0])
            obj["last_active_at"] = active_at
            obj["expires_at"] = expires_at
            conn.execute(
                update(vector_stores)
                .where(vector_stores.c.id == store_id)
                .values(expires_at=expires_at, data=json.dumps(obj))
            )

    def list_stores(self, owner: str | None, **params: Any) -> Page:
        from .sql import Page

        table = vector_stores
        conds: list[Any] = []
        if (mine := self.store._owner_condition(table, owner)) is not None:
            conds.append(mine)
        rows, has_more = self._page(table.c.id, table.c.data, conds, **params)
        return Page([json.loads(r) for r in rows], has_more)

    def delete_store(self, store_id: str) -> bool:
        with self.store._write() as conn:
            conn.execute(delete(vector_store_files).where(vector_store_files.c.vector_store_id == store_id))
            conn.execute(
                delete(vector_store_file_batches).where(
                    vector_store_file_batches.c.vector_store_id == store_id
                )
            )
            return conn.execute(delete(vector_stores).where(vector_stores.c.id == store_id)).rowcount > 0

    def store_counts(self, store_ids: Sequence[str]) -> dict[str, tuple[dict[str, int], int]]:
        """``{store_id: (file_counts, usage_bytes)}`` counted from the file rows."""
        t = vector_store_files
        query = (
            select(t.c.vector_store_id, t.c.status, func.count(), func.sum(t.c.usage_bytes))
            .where(t.c.vector_store_id.in_(list(store_ids)))
            .group_by(t.c.vector_store_id, t.c.status)
        )
        grouped: dict[str, list[Any]] = {sid: [] for sid in store_ids}
        with self.store._read() as conn:
            for sid, status, number, used in conn.execute(query):
                grouped[sid].append((status, number, used))
        return {sid: _counts(rows) for sid, rows in grouped.items()}

    def expired_store_ids(self, now: int) -> list[str]:
        t = vector_stores
        with self.store._read() as conn:
            return [r[0] for r in conn.execute(select(t.c.id).where(t.c.expires_at <= now))]

    # -- files ----------------------------------------------------------------------------

    @staticmethod
    def _insert_files(
        conn: Connection, files: Sequence[dict[str, Any]], owner: str | None, batch_id: str | None
    ) -> None:
        """Attach files (replacing an earlier attachment of the same file: it is ingested again)."""
        from .._ids import new_id

        t = vector_store_files
        for obj in files:
            conn.execute(
                delete(t).where(t.c.vector_store_id == obj["vector_store_id"], t.c.file_id == obj["id"])
            )
            conn.execute(
                t.insert().values(
                    vector_store_id=obj["vector_store_id"],
                    file_id=obj["id"],
                    owner=owner,
                    created_at=obj["created_at"],
                    ord=new_id("vsf"),
                    batch_id=batch_id,
                    status=obj["status"],
                    usage_bytes=obj.get("usage_bytes") or 0,
                    attempts=0,
                    data=json.dumps(obj),
                )
            )

    def insert_files(
        self,
        files: Sequence[dict[str, Any]],
        owner: str | None,
        batch: dict[str, Any] | None = None,
    ) -> None:
        """Attach ``files`` (and create ``batch``, when given, as their batch) in one transaction."""
        with self.store._write() as conn:
            if batch is not None:
                conn.execute(
                    vector_store_file_batches.insert().values(
                        id=batch["id"],
                        vector_store_id=batch["vector_store_id"],
                        owner=owner,
                        created_at=batch["created_at"],
                        status=batch["status"],
                        data=json.dumps(batch),
                    )
                )
            self._insert_files(conn, files, owner, batch["id"] if batch else None)

    def get_file(self, store_id: str, file_id: str) -> dict[str, Any] | None:
        t = vector_store_files
        with self.store._read() as conn:
            row = conn.execute(
                select(t.c.data).where(t.c.vector_store_id == store_id, t.c.file_id == file_id)
            ).first()
        return json.loads(row[0]) if row else None

    def files_by_ids(self, store_id: str, file_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The file objects of ``file_ids`` attached to a store (absent: not attached)."""
        t = vector_store_files
        if not file_ids:
            return {}
        query = select(t.c.file_id, t.c.data).where(
            t.c.vector_store_id == store_id, t.c.file_id.in_(list(dict.fromkeys(file_ids)))
        )
        with self.store._read() as conn:
            return {row.file_id: json.loads(row.data) for row in conn.execute(query)}

    def completed_files(self, store_id: str) -> dict[str, dict[str, Any]]:
        """Every completed file of a store (a filtered search evaluates its attributes)."""
        t = vector_store_files
        query = select(t.c.file_id, t.c.data).where(
            t.c.vector_store_id == store_id, t.c.status == "completed"
        )
        with self.store._read() as conn:
            return {row.file_id: json.loads(row.data) for row in conn.execute(query)}

    def put_file_attributes(self, store_id: str, file_id: str, attributes: Any) -> dict[str, Any] | None:
        t = vector_store_files
        key = and_(t.c.vector_store_id == store_id, t.c.file_id == file_id)
        with self.store._write() as conn:
            row = conn.execute(select(t.c.data).where(key)).first()
            if row is None:
                return None
            obj = json.loads(row[0])
            obj["attributes"] = attributes
            conn.execute(update(t).where(key).values(data=json.dumps(obj)))
        return obj

    def list_files(
        self,
        store_id: str,
        *,
        status: str | None = None,
        batch_id: str | None = None,
        limit: int = 20,
        order: str = "desc",
        after: str | None = None,
        before: str | None = None,
    ) -> Page:
        """A page of a store's files (of one batch, of one status) in attach order; the
        cursors are file ids, resolved to their attach order in this store."""
        from .sql import Page

        t = vector_store_files
        conds: list[Any] = [t.c.vector_store_id == store_id]
        if status is not None:
            conds.append(t.c.status == status)
        if batch_id is not None:
            conds.append(t.c.batch_id == batch_id)
        with self.store._read() as conn:

            def ord_of(file_id: str | None) -> str | None:
                if file_id is None:
                    return None
                value = conn.execute(
                    select(t.c.ord).where(t.c.vector_store_id == store_id, t.c.file_id == file_id)
                ).scalar()
                return value if value is not None else ("" if order == "asc" else "~")

            after_ord, before_ord = ord_of(after), ord_of(before)
        rows, has_more = self._page(t.c.ord, t.c.data, conds, limit, order, after_ord, before_ord)
        return Page([json.loads(r) for r in rows], has_more)

    def _page(
        self,
        key: Any,
        data: Any,
        conds: list[Any],
        limit: int = 20,
        order: str = "desc",
        after: str | None = None,
        before: str | None = None,
    ) -> tuple[list[str], bool]:
        with self.store._read() as conn:
            rows, has_more = cursor_page(conn, select(data), key, conds, limit, order, after, before)
        return [r[0] for r in rows], has_more

    def delete_file(self, store_id: str, file_id: str) -> bool:
        t = vector_store_files
        with self.store._write() as conn:
            return (
                conn.execute(
                    delete(t).where(t.c.vector_store_id == store_id, t.c.file_id == file_id)
                ).rowcount
                > 0
            )

    def detach_everywhere(self, file_id: str) -> list[str]:
        """Remove a (deleted) file from every vector store; returns those stores' ids."""
        t = vector_store_files
        with self.store._write() as conn:
            ids = [r[0] for r in conn.execute(select(t.c.vector_store_id).where(t.c.file_id == file_id))]
            conn.execute(delete(t).where(t.c.file_id == file_id))
        return ids

    # -- batches ----------------------------------------------------------------------------

    def get_batch(self, store_id: str, batch_id: str) -> dict[str, Any] | None:
        t = vector_store_file_batches
        with self.store._read() as conn:
            row = conn.execute(
                select(t.c.data).where(t.c.id == batch_id, t.c.vector_store_id == store_id)
            ).first()
        return json.loads(row[0]) if row else None

    def batch_counts(self, batch_id: str) -> dict[str, int]:
        t = vector_store_files
        query = select(t.c.status, func.count(), func.sum(t.c.usage_bytes)).where(t.c.batch_id == batch_id)
        with self.store._read() as conn:
            return _counts(list(conn.execute(query.group_by(t.c.status))))[0]

    def cancel_batch(self, store_id: str, batch_id: str, message: dict[str, Any] | None = None) -> bool:
        """Mark the batch ``cancelled`` and its files still in progress ``cancelled`` (a worker
        ingesting one of them then loses its compare-and-set). False: not in progress."""
        b, t = vector_store_file_batches, vector_store_files
        with self.store._write() as conn:
            row = conn.execute(
                select(b.c.data).where(b.c.id == batch_id, b.c.vector_store_id == store_id)
            ).first()
            if row is None:
                return False
            batch = json.loads(row[0])
            if batch["status"] != "in_progress":
                return False
            batch["status"] = "cancelled"
            conn.execute(
                update(b).where(b.c.id == batch_id).values(status="cancelled", data=json.dumps(batch))
            )
            pending = conn.execute(
                select(t.c.file_id, t.c.data).where(t.c.batch_id == batch_id, t.c.status == "in_progress")
            ).all()
            for file_id, data in pending:
                obj = json.loads(data)
                obj["status"] = "cancelled"
                conn.execute(
                    update(t)
                    .where(
                        t.c.vector_store_id == store_id, t.c.file_id == file_id, t.c.status == "in_progress"
                    )
                    .values(status="cancelled", worker=None, data=json.dumps(obj))
                )
        return True

    def settle_batch(self, batch_id: str) -> None:
        """An in-progress batch none of whose files is in progress any more: ``completed``
        (``failed`` when every file failed)."""
        b, t = vector_store_file_batches, vector_store_files
        with self.store._write() as conn:
            row = conn.execute(
                select(b.c.data).where(b.c.id == batch_id, b.c.status == "in_progress")
            ).first()
            if row is None:
                return
            rows = conn.execute(
                select(t.c.status, func.count()).where(t.c.batch_id == batch_id).group_by(t.c.status)
            ).all()
            counts = {status: n for status, n in rows}
            if counts.get("in_progress"):
                return
            status = "failed" if counts and set(counts) == {"failed"} else "completed"
            batch = json.loads(row[0])
            batch["status"] = status
            conn.execute(
                update(b)
                .where(b.c.id == batch_id, b.c.status == "in_progress")
                .values(status=status, data=json.dumps(batch))
            )

    # -- ingestion jobs (leases; see the module docstring) ----------------------------------

    def claim_job(self, worker: str, stale_before: float, look: int = 8) -> tuple[dict[str, Any], int] | None:
        """Claim the oldest file to ingest: in progress and unclaimed, or claimed by a worker
        whose lease is older than ``stale_before`` (its process died). Returns ``(file object,
        attempts including this one)``, or None when there is nothing to claim. One at a time,
        so every file a worker holds is one it is ingesting (and renewing); of ``look``
        candidates the first whose conditional UPDATE wins is taken (another replica may win
        the others)."""
        t = vector_store_files
        free = or_(t.c.worker.is_(None), func.coalesce(t.c.heartbeat_at, 0.0) < stale_before)
        with self.store._read() as conn:
            candidates = conn.execute(
                select(t.c.vector_store_id, t.c.file_id)
                .where(t.c.status == "in_progress", free)
                .order_by(t.c.ord.asc())
                .limit(look)
            ).all()
        for store_id, file_id in candidates:
            key = and_(t.c.vector_store_id == store_id, t.c.file_id == file_id)
            with self.store._write() as conn:
                claimed = conn.execute(
                    update(t)
                    .where(key, t.c.status == "in_progress", free)
                    .values(worker=worker, heartbeat_at=time.time(), attempts=t.c.attempts + 1)
                ).rowcount
                if claimed:
                    row = conn.execute(select(t.c.data, t.c.attempts).where(key)).first()
                    return json.loads(row.data), int(row.attempts)
        return None

    def renew_jobs(self, worker: str, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Renew ``worker``'s leases on ``keys``; returns the keys it still holds."""
        t = vector_store_files
        held = set()
        with self.store._write() as conn:
            for store_id, file_id in keys:
                key = and_(t.c.vector_store_id == store_id, t.c.file_id == file_id)
                done = conn.execute(
                    update(t)
                    .where(key, t.c.worker == worker, t.c.status == "in_progress")
                    .values(heartbeat_at=time.time())
                ).rowcount
                if done:
                    held.add((store_id, file_id))
        return held

    def finish_job(
        self, obj: dict[str, Any], worker: str, also: Callable[[Connection], None] | None = None
    ) -> bool:
        """Write the ingested (or failed) file if ``worker`` still holds it in progress, and
        then ``also(conn)`` (the file's chunks) in the same transaction — so chunks exist only
        for an ingestion that won, and a lost or killed one leaves none."""
        t = vector_store_files
        with self.store._write() as conn:
            won = (
                conn.execute(
                    update(t)
                    .where(
                        t.c.vector_store_id == obj["vector_store_id"],
                        t.c.file_id == obj["id"],
                        t.c.worker == worker,
                        t.c.status == "in_progress",
                    )
                    .values(
                        status=obj["status"],
                        usage_bytes=obj.get("usage_bytes") or 0,
                        worker=None,
                        data=json.dumps(obj),
                    )
                ).rowcount
                > 0
            )
            if won and also is not None:
                also(conn)
        return won

    def batch_of(self, store_id: str, file_id: str) -> str | None:
        t = vector_store_files
        with self.store._read() as conn:
            return conn.execute(
                select(t.c.batch_id).where(t.c.vector_store_id == store_id, t.c.file_id == file_id)
            ).scalar()

    def has_jobs(self) -> bool:
        t = vector_store_files
        with self.store._read() as conn:
            return (
                conn.execute(select(t.c.file_id).where(t.c.status == "in_progress").limit(1)).first()
                is not None
            )


class AsyncVectorTables(OnStoreWorker[VectorTables]):
    """Awaitable facade, built like :class:`~.sql.AsyncStore`: ``await tables.get_store(...)``
    runs ``VectorTables.get_store`` on the store's worker thread(s) (on SQLite the one thread
    that writes, so a busy-wait never blocks the event loop). One line per operation;
    ``sync`` is the :class:`VectorTables` itself."""

    def __init__(self, tables: VectorTables):
        super().__init__(tables, tables.store.executor)

    insert_store = OnWorker(VectorTables.insert_store)
    get_store = OnWorker(VectorTables.get_store)
    put_store = OnWorker(VectorTables.put_store)
    touch_store = OnWorker(VectorTables.touch_store)
    list_stores = OnWorker(VectorTables.list_stores)
    delete_store = OnWorker(VectorTables.delete_store)
    store_counts = OnWorker(VectorTables.store_counts)
    expired_store_ids = OnWorker(VectorTables.expired_store_ids)
    insert_files = OnWorker(VectorTables.insert_files)
    get_file = OnWorker(VectorTables.get_file)
    files_by_ids = OnWorker(VectorTables.files_by_ids)
    completed_files = OnWorker(VectorTables.completed_files)
    put_file_attributes = OnWorker(VectorTables.put_file_attributes)
    list_files = OnWorker(VectorTables.list_files)
    delete_file = OnWorker(VectorTables.delete_file)
    detach_everywhere = OnWorker(VectorTables.detach_everywhere)
    get_batch = OnWorker(VectorTables.get_batch)
    batch_counts = OnWorker(VectorTables.batch_counts)
    cancel_batch = OnWorker(VectorTables.cancel_batch)
    settle_batch = OnWorker(VectorTables.settle_batch)
    claim_job = OnWorker(VectorTables.claim_job)
    renew_jobs = OnWorker(VectorTables.renew_jobs)
    finish_job = OnWorker(VectorTables.finish_job)
    batch_of = OnWorker(VectorTables.batch_of)
    has_jobs = OnWorker(VectorTables.has_jobs)

    def __repr__(self) -> str:
        return f"<AsyncVectorTables {self.sync!r}>"
