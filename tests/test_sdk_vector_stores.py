"""``assistant_kit.vector_stores``: LiteLLM's ``litellm.vector_stores`` function names over the
kit's engine (the default store, a fresh file per test), sync and async."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from assistant_kit import local_client, vector_stores

TEXT = b"The math module's gcd function returns the greatest common divisor of two integers.\n"


@pytest.fixture(autouse=True)
def kit_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db = tmp_path / "kit.db"
    monkeypatch.setenv("ASSISTANT_KIT_DB", str(db))
    return db


def test_create_search_retrieve_list_update_delete(kit_db: Path) -> None:
    file = local_client(kit_db).files.create(file=("gcd.txt", TEXT), purpose="assistants")
    store = vector_stores.create(name="stdlib", file_ids=[file.id], metadata={"k": "v"}, litellm_call_id="x")
    assert store.object == "vector_store" and store.metadata == {"k": "v"}
    deadline = time.monotonic() + 30
    while vector_stores.retrieve(vector_store_id=store.id).status != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    page = vector_stores.search(vector_store_id=store.id, query="greatest common divisor", max_num_results=1)
    assert [r.filename for r in page.data] == ["gcd.txt"]
    assert [s.id for s in vector_stores.list(limit=5)] == [store.id]
    assert vector_stores.update(vector_store_id=store.id, name="renamed").name == "renamed"

    async def twins() -> None:
        found = await vector_stores.asearch(vector_store_id=store.id, query="gcd")
        assert found.data[0].file_id == file.id
        assert (await vector_stores.aretrieve(vector_store_id=store.id)).name == "renamed"

    asyncio.run(twins())
    assert vector_stores.delete(vector_store_id=store.id).deleted
    assert list(vector_stores.list()) == []
