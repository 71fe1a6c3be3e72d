"""AsyncStore: every Store operation awaitable, run on the store's own worker thread(s)."""

from __future__ import annotations

import asyncio
import inspect
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from assistant_kit._ids import new_id, now
from assistant_kit.errors import InvalidRequestError
from assistant_kit.store import AsyncStore, Store
from assistant_kit.store.inspection import AsyncInspectionTables, InspectionTables
from assistant_kit.store.vectors import AsyncVectorTables, VectorTables

pytestmark = pytest.mark.timeout(60)

# The owner of a Store closes it, synchronously (an engine on it asks, with before_close, to
# settle its runs first); a transaction is a synchronous context for the layers with tables of
# their own, entered on the store's worker.
NOT_OPERATIONS = {"close", "before_close", "transaction"}


def test_every_store_operation_has_an_awaitable_counterpart() -> None:
    """A Store method added without its AsyncStore line fails here, not as an AttributeError
    in the engine."""
    operations = {
        name
        for name, member in vars(Store).items()
        if inspect.isfunction(member) and not name.startswith("_") and name not in NOT_OPERATIONS
    }
    assert operations <= set(vars(AsyncStore))
    store = Store(":memory:")
    try:
        assert not hasattr(AsyncStore(store), "close")
    finally:
        store.close()


@pytest.mark.parametrize(
    ("tables", "facade"), [(VectorTables, AsyncVectorTables), (InspectionTables, AsyncInspectionTables)]
)
def test_every_tables_operation_has_an_awaitable_counterpart(tables: type, facade: type) -> None:
    """The same for the vector store tables and the inspector's: the engine awaits every one
    of them."""
    operations = {
        name
        for name, member in vars(tables).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }
    assert operations and operations <= set(vars(facade))


def test_vector_tables_calls_run_on_the_store_worker(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    threads: list[str] = []
    event.listen(
        store.engine, "before_cursor_execute", lambda *_: threads.append(threading.current_thread().name)
    )
    tables = AsyncVectorTables(VectorTables(store))
    obj = {"id": new_id("vs"), "object": "vector_store", "created_at": now(), "name": "n"}

    async def main() -> None:
        await tables.insert_store(obj, "alice")
        assert await tables.get_store(obj["id"], "alice") == obj
        assert await tables.get_store(obj["id"], "bob") is None
        counts, usage = (await tables.store_counts([obj["id"]]))[obj["id"]]
        assert counts["total"] == 0 and usage == 0
        assert await tables.delete_store(obj["id"])

    try:
        threads.clear()
        asyncio.run(main())
        assert threads and all(name.startswith("assistant_kit-store") for name in threads)
    finally:
        store.close()


def test_calls_run_on_the_store_worker_and_return_its_results(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    threads: list[str] = []
    event.listen(
        store.engine, "before_cursor_execute", lambda *_: threads.append(threading.current_thread().name)
    )
    astore = AsyncStore(store)
    thread = {"id": new_id("thread"), "object": "thread", "created_at": now(), "metadata": {}}
    run = {"id": new_id("run"), "object": "thread.run", "created_at": now(), "thread_id": thread["id"]}
    run["status"] = "queued"

    async def main() -> None:
        assert await astore.insert("thread", thread, owner="alice") == thread
        assert await astore.get("thread", thread["id"], owner="alice") == thread
        assert await astore.get("thread", thread["id"], owner="bob") is None
        await astore.insert_if_idle(thread["id"], [("thread.run", run)], lease="w1")
        with pytest.raises(InvalidRequestError, match="already has an active run"):
            await astore.insert_if_idle(
                thread["id"], [("thread.run", {**run, "id": new_id("run")})], param="p"
            )
        page = await astore.list("thread.run", thread_id=thread["id"], limit=1)
        assert page.data == [run] and not page.has_more
        assert await astore.save_run({**run, "status": "cancelled"}, expect=["queued"], worker="w1")
        assert (await astore.run_lease(run["id"]) or {})["status"] == "cancelled"

    try:
        threads.clear()
        asyncio.run(main())
        assert threads and all(name.startswith("assistant_kit-store") for name in threads)
    finally:
        store.close()


def test_a_method_replaced_on_the_store_is_the_one_awaited() -> None:
    """The method is looked up on the store at call time, as ``store.get`` would be."""
    store = Store(":memory:")
    seen: list[Any] = []
    store.ping = lambda: seen.append(threading.current_thread().name)  # type: ignore[method-assign]
    try:
        asyncio.run(AsyncStore(store).ping())
        assert len(seen) == 1 and seen[0].startswith("assistant_kit-store")
    finally:
        store.close()
