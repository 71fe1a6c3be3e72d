"""Vector stores through ``assistant-kit serve`` (a real subprocess) with API keys: each key
sees only its own stores, and cannot attach or search another key's files; ingestion killed
mid-file (SIGKILL) is resumed by the next process on that database."""

from __future__ import annotations

import io
import signal
import sqlite3
import time
from pathlib import Path

import openai
import pytest

from tests.conftest import wait_for

from .conftest import Launcher, Proxy, StartProxy, master_config

ALICE, BOB = "sk-alice-vector-key", "sk-bob-vector-key"
TEXT = b"The math module's gcd function returns the greatest common divisor of two integers.\n"


@pytest.fixture(scope="module")
def proxy(module_launcher: Launcher) -> Proxy:
    keys = [{"key": ALICE, "user_id": "alice"}, {"key": BOB, "user_id": "bob"}]
    return module_launcher.start(master_config(api_keys=keys))


def _error(call: object, status: type[openai.APIStatusError]) -> dict:
    with pytest.raises(status) as err:
        call()  # type: ignore[operator]
    return err.value.body


def test_stores_and_files_are_per_key(proxy: Proxy) -> None:
    a, b = proxy.client(ALICE), proxy.client(BOB)
    file = a.files.create(file=("gcd.txt", io.BytesIO(TEXT)), purpose="assistants")
    store = a.vector_stores.create(name="alice's", file_ids=[file.id])
    wait_for(lambda: a.vector_stores.retrieve(store.id).status == "completed", timeout=30)
    assert a.vector_stores.search(store.id, query="greatest common divisor").data
    for call in (
        lambda: b.vector_stores.retrieve(store.id),
        lambda: b.vector_stores.update(store.id, name="mine"),
        lambda: b.vector_stores.delete(store.id),
        lambda: b.vector_stores.search(store.id, query="gcd"),
        lambda: b.vector_stores.files.list(store.id),
        lambda: b.vector_stores.files.retrieve(file.id, vector_store_id=store.id),
        lambda: b.vector_stores.files.content(file.id, vector_store_id=store.id),
        lambda: b.vector_stores.files.delete(file.id, vector_store_id=store.id),
        lambda: b.vector_stores.files.create(store.id, file_id=file.id),
    ):
        assert _error(call, openai.NotFoundError)["param"] == "vector_store_id"
    assert list(b.vector_stores.list()) == []
    own = b.vector_stores.create(name="bob's")
    assert (
        _error(lambda: b.vector_stores.files.create(own.id, file_id=file.id), openai.BadRequestError)["param"]
        == "file_id"
    )
    bad = openai.BadRequestError
    body = _error(lambda: b.vector_stores.file_batches.create(own.id, file_ids=[file.id]), bad)
    assert body["param"] == "file_ids[0]"
    body = _error(lambda: b.vector_stores.create(name="x", file_ids=[file.id]), openai.BadRequestError)
    assert body["param"] == "file_ids[0]"
    assert [s.id for s in b.vector_stores.list()] == [own.id]
    assert list(b.vector_stores.files.list(own.id)) == []
    assert [s.id for s in a.vector_stores.list()] == [store.id]


def _claimed_rows(db: Path) -> list[tuple[str, str | None, int]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT status, worker, attempts FROM vector_store_files").fetchall()


def test_ingestion_killed_mid_file_is_resumed_by_the_next_process(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    """SIGKILL while a large file is being ingested (its row claimed, still in progress); the
    next server on that database finds the lease stale, claims the file again and completes it."""
    db = tmp_path / "kill.db"
    # Keyword-only: what is tested is the lease, and the re-ingestion must not take minutes.
    lease = {"ASSISTANT_KIT_RUN_LEASE_SECONDS": "2", "ASSISTANT_KIT_EMBEDDINGS": "none"}
    config = master_config(database_url=str(db))
    first = start_proxy(config, env=lease)
    client = first.client()
    words = b" ".join(b"word%d" % (i % 5000) for i in range(400_000)) + b"\n" + TEXT
    file = client.files.create(file=("big.txt", io.BytesIO(words)), purpose="assistants")
    store = client.vector_stores.create(name="killed", file_ids=[file.id])
    status, worker, attempts = wait_for(
        lambda: (rows := _claimed_rows(db)) and rows[0][1] and rows[0], timeout=30
    )
    assert (status, attempts) == ("in_progress", 1) and worker, "ingestion finished before the kill"
    first.stop(signal.SIGKILL)
    assert _claimed_rows(db)[0][0] == "in_progress"
    time.sleep(2.5)  # the dead process's lease goes stale

    second = start_proxy(config, env=lease)
    again = second.client()
    done = wait_for(
        lambda: (
            (f := again.vector_stores.files.retrieve(file.id, vector_store_id=store.id)).status
            != "in_progress"
            and f
        ),
        timeout=120,
    )
    assert done.status == "completed" and done.last_error is None
    assert _claimed_rows(db)[0][2] == 2  # claimed twice: by the killed process and the new one
    assert again.vector_stores.search(store.id, query="greatest common divisor").data


def test_another_keys_store_or_file_cannot_be_attached(proxy: Proxy) -> None:
    """Over HTTP with real keys (the in-process twin, with owner scopes, is in
    tests/engine/test_attachments.py): Bob cannot name Alice's vector store in tool_resources
    nor her file in a message's attachments; nothing is stored."""
    from tests.engine.test_attachments import check_owners

    check_owners(proxy.client(ALICE), proxy.client(BOB))
