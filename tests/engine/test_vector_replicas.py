"""Vector stores on a database two engines share (PostgreSQL, and one SQLite file): a store
made through one replica is read, fed and searched through the other, and each file is
ingested exactly once although both replicas' ingestion loops look for work."""

from __future__ import annotations

import io
import threading
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.engine.test_replicas import replicas, shared_db  # noqa: F401  (fixture)

pytestmark = pytest.mark.timeout(180)

DOCS = {
    f"doc{i}.txt": f"Document {i} is about topic{i}. It mentions the word shared and number {i}.\n".encode()
    for i in range(12)
}


def _batch_done(client: Any, store_id: str, batch_id: str) -> bool:
    batch = client.vector_stores.file_batches.retrieve(batch_id, vector_store_id=store_id)
    return batch.status == "completed"


def test_one_service_through_either_replica(shared_db: Any) -> None:  # noqa: F811
    with replicas(shared_db, lease_seconds=5) as (a, b):
        ids = [a.client.files.create(file=(n, d), purpose="assistants").id for n, d in DOCS.items()]
        store = a.client.vector_stores.create(name="shared")
        batch = b.client.vector_stores.file_batches.create(store.id, file_ids=ids[:6])
        more = a.client.vector_stores.file_batches.create(store.id, file_ids=ids[6:])
        for client, made in ((a.client, batch), (b.client, more)):
            wait_for(lambda c=client, m=made: _batch_done(c, store.id, m.id), timeout=60)
        counts = b.client.vector_stores.retrieve(store.id).file_counts
        assert (counts.completed, counts.total) == (12, 12)
        with a.engine.vector_stores.sync_store.transaction() as conn:
            attempts = [row[0] for row in conn.exec_driver_sql("SELECT attempts FROM vector_store_files")]
        assert attempts == [1] * 12  # no file was claimed twice
        for client in (a.client, b.client):  # the chunks are in the shared database
            hits = client.vector_stores.search(store.id, query="topic7", max_num_results=3).data
            assert hits and hits[0].filename == "doc7.txt"
        b.client.vector_stores.update(store.id, name="renamed")
        assert a.client.vector_stores.retrieve(store.id).name == "renamed"
        assert b.client.vector_stores.delete(store.id).deleted
        assert list(a.client.vector_stores.list()) == []


def test_files_left_by_a_dead_process_are_resumed_or_failed(shared_db: Any) -> None:  # noqa: F811
    """Rows a dead ingester left claimed (here: written behind the engine's back) are claimed
    again once their lease is stale: ingested from the start, or — claimed three times
    already — failed with ``server_error``; a file whose lease is fresh is left to its owner."""
    import time

    from assistant_kit._ids import new_id, now
    from assistant_kit.store import Store
    from assistant_kit.store.vectors import VectorTables, vector_store_files

    store = Store(shared_db)
    tables = VectorTables(store)
    vs = {"id": new_id("vs"), "object": "vector_store", "created_at": now(), "name": "left", "metadata": {}}

    def file(name: str) -> dict[str, Any]:
        obj = {"id": new_id("file"), "object": "file", "bytes": 40, "created_at": now(), "filename": name}
        store.insert_file(
            {**obj, "purpose": "assistants", "status": "processed"}, b"resumed text about topic9 here\n"
        )
        return {
            "id": obj["id"],
            "object": "vector_store.file",
            "usage_bytes": 0,
            "created_at": now(),
            "vector_store_id": vs["id"],
            "status": "in_progress",
            "last_error": None,
            "chunking_strategy": {
                "type": "static",
                "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400},
            },
            "attributes": {},
        }

    resumed, exhausted, alive = file("a.txt"), file("b.txt"), file("c.txt")
    tables.insert_store(vs, None, [resumed, exhausted, alive])
    from sqlalchemy import update

    for obj, worker, age, attempts in (
        (resumed, "dead", 60, 1),
        (exhausted, "dead", 60, 3),
        (alive, "live", 0, 1),
    ):
        with store._write() as conn:
            conn.execute(
                update(vector_store_files)
                .where(vector_store_files.c.file_id == obj["id"])
                .values(worker=worker, heartbeat_at=time.time() - age, attempts=attempts)
            )
    store.close()

    with replicas(shared_db, count=1, lease_seconds=30) as (replica,):
        files = replica.client.vector_stores.files

        def status(file_id: str) -> Any:
            return files.retrieve(file_id, vector_store_id=vs["id"])

        wait_for(lambda: status(resumed["id"]).status == "completed", timeout=60)
        failed = wait_for(lambda: (f := status(exhausted["id"])).status == "failed" and f, timeout=30)
        assert failed.last_error.code == "server_error" and "interrupted 3 times" in failed.last_error.message
        assert status(alive["id"]).status == "in_progress"  # its owner's lease is fresh
        hits = replica.client.vector_stores.search(vs["id"], query="topic9").data
        assert [h.file_id for h in hits] == [resumed["id"]]


def test_files_attached_at_once_through_both_replicas_share_one_store(shared_db: Any) -> None:  # noqa: F811
    """Two replicas each create the thread's attachments store at the same moment; the
    locked read-modify-write (``Store.modify``) names one in the thread, and the other
    replica moves its file there and deletes its own store."""
    with replicas(shared_db) as (a, b):
        files = [
            c.files.create(file=(f"f{i}.txt", io.BytesIO(b"text %d\n" % i)), purpose="assistants")
            for i, c in enumerate((a.client, b.client, a.client, b.client))
        ]
        for _ in range(3):
            thread = a.client.beta.threads.create()
            barrier = threading.Barrier(len(files))

            def attach(i: int, thread_id: str = thread.id, barrier: threading.Barrier = barrier) -> None:
                client = (a.client, b.client)[i % 2]
                barrier.wait()
                client.beta.threads.messages.create(
                    thread_id,
                    role="user",
                    content="x",
                    attachments=[{"file_id": files[i].id, "tools": [{"type": "file_search"}]}],
                )

            workers = [threading.Thread(target=attach, args=(i,)) for i in range(len(files))]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            ids = b.client.beta.threads.retrieve(thread.id).tool_resources.file_search.vector_store_ids  # type: ignore[union-attr]
            assert ids is not None and len(ids) == 1
            in_store = {f.id for f in a.client.vector_stores.files.list(ids[0])}
            assert in_store == {f.id for f in files}
            stores = b.client.vector_stores.list(limit=100)
            assert [s.id for s in stores if s.name == f"{thread.id} attachments"] == ids
