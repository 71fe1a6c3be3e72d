"""Vector stores on a database two engines share (PostgreSQL, and one SQLite file): a store
made through one replica is read, fed and searched through the other, and each file is
ingested exactly once although both replicas' ingestion loops look for work."""

from __future__ import annotations

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
        tables = a.engine.vector_stores.tables
        with tables.store._read() as conn:
            attempts = [row[0] for row in conn.exec_driver_sql("SELECT attempts FROM vector_store_files")]
        assert attempts == [1] * 12  # no file was claimed twice
        for client in (a.client, b.client):  # the chunks are in the shared database
            hits = client.vector_stores.search(store.id, query="topic7", max_num_results=3).data
            assert hits and hits[0].filename == "doc7.txt"
        b.client.vector_stores.update(store.id, name="renamed")
        assert a.client.vector_stores.retrieve(store.id).name == "renamed"
        assert b.client.vector_stores.delete(store.id).deleted
        assert list(a.client.vector_stores.list()) == []
