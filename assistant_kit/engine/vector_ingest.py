"""Background ingestion of vector store files, restart-safe and shared by replicas.

Each engine runs one ingestion loop on its event loop (started with the engine's other
background work). The loop claims files to ingest from the store
(:meth:`~assistant_kit.store.vectors.VectorTables.claim_job`, a conditional UPDATE), one at a
time, and ingests each — text extracted, chunked, embedded and indexed by
:mod:`assistant_kit.retrieval`, the CPU-bound parts on a worker thread so the loop keeps
serving — and writes the outcome with a compare-and-set that holds only while this engine
still has the file's lease. Leases are renewed every ``renew_seconds``; a file whose lease is
older than ``lease_seconds`` (the engine's run lease, ``ASSISTANT_KIT_RUN_LEASE_SECONDS``)
belongs to a process that died and is claimed again by whichever engine looks next — its
ingestion starts over. A file claimed :data:`MAX_ATTEMPTS` times without finishing (it kills
its ingester, say) is ``failed`` with ``server_error``.

The outcome and the file's chunks are written in one transaction, after the compare-and-set:
a file detached, its batch cancelled or its store deleted while it was being ingested makes
that fail and nothing is written; a process killed mid-file leaves no chunks behind. A file
attached again keeps its earlier chunks (unsearched: only ``completed`` files are searched)
until the new ingestion replaces them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .vector_index import IngestError

if TYPE_CHECKING:
    from ..store import AsyncStore, Store
    from ..store.vectors import AsyncVectorTables


log = logging.getLogger("assistant_kit.vector_stores")

MAX_ATTEMPTS = 3
IDLE_POLL_SECONDS = 2.0  # how often an idle engine looks for files other processes attached


class _Service(Protocol):
    """What the ingestion loop uses of :class:`~.vector_stores.VectorStores` (which owns it)."""

    store: AsyncStore
    sync_store: Store
    tables: AsyncVectorTables
    worker_id: str
    lease_seconds: float
    renew_seconds: float


class Ingestor:
    def __init__(self, service: _Service):
        from .vector_index import AsyncRetrievalIndex, RetrievalIndex

        self.service = service
        self.tables = service.tables
        self.index = RetrievalIndex(self.service.sync_store)
        self.on_store = AsyncRetrievalIndex(self.index)
        self.held: set[tuple[str, str]] = set()
        self._wake: asyncio.Event | None = None

    def __repr__(self) -> str:
        return f"<Ingestor held={len(self.held)}>"

    def wake(self) -> None:
        """Files were attached: look now instead of at the next idle poll."""
        if self._wake is not None:
            self._wake.set()

    # -- the loop ---------------------------------------------------------------------------

    async def work(self) -> None:
        """Claim and ingest files until cancelled (the engine's background service)."""
        self._wake = asyncio.Event()
        renewal = asyncio.create_task(self._renew_forever(), name="vector-renew")
        try:
            while True:
                self._wake.clear()
                try:
                    stale = time.time() - self.service.lease_seconds
                    job = await self.tables.claim_job(self.service.worker_id, stale)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    if self._stopping():
                        return
                    log.exception("claiming vector store files failed")
                    job = None
                if job is None:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), IDLE_POLL_SECONDS)
                    continue
                obj, attempts = job
                key = (obj["vector_store_id"], obj["id"])
                self.held.add(key)
                try:
                    await self._ingest(obj, attempts)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    if self._stopping():
                        return
                    log.exception("ingesting a vector store file failed")
                finally:
                    self.held.discard(key)
        finally:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal

    def _stopping(self) -> bool:
        return self.service.sync_store.closed

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.service.renew_seconds)
            if self.held:
                with contextlib.suppress(Exception):
                    await self.tables.renew_jobs(self.service.worker_id, sorted(self.held))

    async def _ingest(self, obj: dict[str, Any], attempts: int) -> None:
        store_id, file_id = obj["vector_store_id"], obj["id"]
        obj = {**obj}
        prepared = None
        try:
            if attempts > MAX_ATTEMPTS:
                raise IngestError(
                    "server_error",
                    f"Ingestion was interrupted {attempts - 1} times "
                    "(the process ingesting the file stopped).",
                )
            file = await self.service.store.get("file", file_id)
            data = await self.service.store.file_content(file_id)
            if file is None or data is None:
                raise IngestError("invalid_file", f"File {file_id} was deleted before it was ingested.")
            prepared = await asyncio.to_thread(
                self.index.prepare, data, file["filename"], obj["chunking_strategy"]
            )
            obj.update(status="completed", usage_bytes=self.index.usage(prepared), last_error=None)
        except IngestError as exc:
            obj.update(status="failed", last_error={"code": exc.code, "message": exc.message[:1000]})
        except Exception as exc:
            if self._stopping():
                return  # the engine is closing: the lease lapses and the file is ingested later
            log.exception("ingesting file %s into %s failed", file_id, store_id)
            obj.update(
                status="failed",
                last_error={"code": "server_error", "message": f"Ingestion failed: {type(exc).__name__}."},
            )
        chunks = prepared if obj["status"] == "completed" else None

        def write_chunks(conn: Any) -> None:
            self.index.replace_in(conn, store_id, file_id, chunks)

        await self.tables.finish_job(obj, self.service.worker_id, write_chunks)
        batch_id = await self.tables.batch_of(store_id, file_id)
        if batch_id is not None:
            await self.tables.settle_batch(batch_id)

    # -- what the service asks of the index -------------------------------------------------

    async def forget_file(self, store_id: str, file_id: str) -> None:
        await self.on_store.remove(store_id, file_id)

    async def forget_store(self, store_id: str) -> None:
        await self.on_store.remove_store(store_id)

    async def text_of(self, file_id: str, owner: str | None) -> str:
        file = await self.service.store.get("file", file_id)
        data = await self.service.store.file_content(file_id)
        if file is None or data is None:
            return ""
        try:
            return await asyncio.to_thread(self.index.text, data, file["filename"])
        except IngestError:
            return ""

    async def search(
        self,
        store_id: str,
        queries: Sequence[str],
        file_ids: Sequence[str] | None,
        limit: int,
        threshold: float,
        rewrite: bool,
    ) -> Any:
        """Search a store's chunks (of ``file_ids`` only, unless None): the retrieval core's
        ``SearchResults``."""
        scope = list(file_ids) if file_ids is not None else None
        # The queries are embedded on a thread of their own first (a model, or a server
        # round trip), then the store is read on its worker: on SQLite that is the one thread
        # every store operation queues on, so it must not wait for the embedder.
        embedded = await asyncio.to_thread(self.index.embed, list(queries), rewrite)
        return await self.on_store.search_embedded(store_id, embedded, scope, limit, threshold)
