"""Files attached for ``file_search`` and the stores a run searches (``engine/attachments.py``),
through the official SDK, in-process and over HTTP: a message's attachments land in the
thread's own store (created, then extended), bad input stores nothing, a run waits for
ingestion (up to a cap) and fails on an expired store, and another key's store cannot be attached."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openai
import pytest

from assistant_kit._ids import now
from tests.conftest import wait_for

TEXT = b"The math module's gcd function returns the greatest common divisor of two integers.\n"
MORE = b"The sorted builtin returns a new sorted list from the items of any iterable.\n"
SEARCH = [{"type": "file_search"}]


def _upload(client: openai.OpenAI, name: str = "gcd.txt", data: bytes = TEXT) -> Any:
    return client.files.create(file=(name, io.BytesIO(data)), purpose="assistants")


def _error(call: Any) -> dict[str, Any]:
    with pytest.raises(openai.BadRequestError) as err:
        call()
    return err.value.body  # type: ignore[return-value]


def _thread_ids(client: openai.OpenAI) -> list[str]:
    """``GET /threads`` (an assistant_kit extension: the SDK has no method for it)."""
    body = client.get("/threads", cast_to=object, options={"params": {"limit": 100}})
    return [t["id"] for t in body["data"]]  # type: ignore[index]


def _store_of(client: openai.OpenAI, thread_id: str) -> str:
    thread = client.beta.threads.retrieve(thread_id)
    ids = thread.tool_resources.file_search.vector_store_ids  # type: ignore[union-attr]
    assert ids is not None and len(ids) == 1
    return ids[0]


def test_message_attachments_create_then_extend_the_threads_store(client: openai.OpenAI) -> None:
    first, second = _upload(client), _upload(client, "sort.md", MORE)
    thread = client.beta.threads.create()
    message = client.beta.threads.messages.create(
        thread.id, role="user", content="read this", attachments=[{"file_id": first.id, "tools": SEARCH}]
    )
    assert [a.file_id for a in message.attachments] == [first.id]
    store_id = _store_of(client, thread.id)
    store = client.vector_stores.retrieve(store_id)
    assert store.name == f"{thread.id} attachments"
    assert store.expires_after is not None
    assert (store.expires_after.anchor, store.expires_after.days) == ("last_active_at", 7)
    assert store.expires_at == store.last_active_at + 7 * 86400
    client.beta.threads.messages.create(
        thread.id,
        role="user",
        content="and this",
        attachments=[
            {"file_id": second.id, "tools": SEARCH},
            {"file_id": first.id, "tools": SEARCH},  # already there: not ingested again
        ],
    )
    assert _store_of(client, thread.id) == store_id  # extended, not replaced
    wait_for(lambda: client.vector_stores.retrieve(store_id).status == "completed", timeout=60)
    files = client.vector_stores.files.list(store_id)
    assert {f.id for f in files} == {first.id, second.id}
    assert client.vector_stores.search(store_id, query="sorted list").data[0].file_id == second.id
    # an attachment for code_interpreter only does not touch the store
    third = _upload(client, "other.txt", b"other\n")
    client.beta.threads.messages.create(
        thread.id,
        role="user",
        content="x",
        attachments=[{"file_id": third.id, "tools": [{"type": "code_interpreter"}]}],
    )
    assert {f.id for f in client.vector_stores.files.list(store_id)} == {first.id, second.id}


def test_a_bad_attachment_stores_nothing(client: openai.OpenAI) -> None:
    good = _upload(client)
    thread = client.beta.threads.create()
    body = _error(
        lambda: client.beta.threads.messages.create(
            thread.id,
            role="user",
            content="x",
            attachments=[{"file_id": good.id, "tools": SEARCH}, {"file_id": "file-nope", "tools": SEARCH}],
        )
    )
    assert body["param"] == "attachments[1].file_id"
    assert list(client.beta.threads.messages.list(thread.id)) == []
    assert list(client.vector_stores.list()) == []
    assert client.beta.threads.retrieve(thread.id).tool_resources.file_search is None  # type: ignore[union-attr]
    body = _error(
        lambda: client.beta.threads.create(
            messages=[
                {"role": "user", "content": "a"},
                {"role": "user", "content": "b", "attachments": [{"file_id": "file-nope", "tools": SEARCH}]},
            ]
        )
    )
    assert body["param"] == "messages[1].attachments[0].file_id"
    assert _thread_ids(client) == [thread.id]
    assert list(client.vector_stores.list()) == []


def test_threads_runs_and_additional_messages_attach_too(client: openai.OpenAI) -> None:
    """``threads.create(messages=…)``, ``create_and_run`` and ``additional_messages``; the run
    starts once the thread's store has ingested what was attached (it waits)."""
    file = _upload(client)
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "hi", "attachments": [{"file_id": file.id, "tools": SEARCH}]}]
    )
    assert thread.tool_resources.file_search.vector_store_ids == [_store_of(client, thread.id)]  # type: ignore[union-attr]

    assistant = client.beta.assistants.create(model="test/echo", tools=SEARCH)
    bad = [{"role": "user", "content": "x", "attachments": [{"file_id": "file-nope", "tools": SEARCH}]}]
    body = _error(
        lambda: client.beta.threads.create_and_run(assistant_id=assistant.id, thread={"messages": bad})
    )
    assert body["param"] == "thread.messages[0].attachments[0].file_id"
    before = len(_thread_ids(client))
    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id,
        thread={
            "messages": [
                {"role": "user", "content": "hello", "attachments": [{"file_id": file.id, "tools": SEARCH}]}
            ]
        },
    )
    assert run.status == "completed", run.last_error
    store_id = _store_of(client, run.thread_id)
    # the run waited for ingestion: when it ended, the file was searchable
    assert [f.status for f in client.vector_stores.files.list(store_id)] == ["completed"]
    assert len(_thread_ids(client)) == before + 1

    plain = client.beta.threads.create()
    body = _error(
        lambda: client.beta.threads.runs.create(plain.id, assistant_id=assistant.id, additional_messages=bad)
    )
    assert body["param"] == "additional_messages[0].attachments[0].file_id"
    assert list(client.beta.threads.runs.list(plain.id)) == []
    assert list(client.beta.threads.messages.list(plain.id)) == []
    good = [{"role": "user", "content": "yo", "attachments": [{"file_id": file.id, "tools": SEARCH}]}]
    run = client.beta.threads.runs.create_and_poll(
        thread_id=plain.id,
        assistant_id=assistant.id,
        additional_messages=good,  # type: ignore[arg-type]
    )
    assert run.status == "completed", run.last_error
    store_id = _store_of(client, plain.id)
    assert [f.status for f in client.vector_stores.files.list(store_id)] == ["completed"]


class _SlowEmbeddings:
    """A real OpenAI-compatible ``/v1/embeddings`` server on 127.0.0.1 that holds every request
    embedding :data:`SLOW_WORD` (a file being ingested) for up to :data:`SLOW_SECONDS`, or
    until :meth:`release`; other requests (the run's search queries) are answered at once."""

    def __init__(self) -> None:
        from tests.fake_upstream import fake_embedding

        self.held = threading.Event()  # an ingestion request has arrived and is being held
        self.released = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
                inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                if any(SLOW_WORD in str(text).lower() for text in inputs):
                    outer.held.set()
                    outer.released.wait(SLOW_SECONDS)
                data = [
                    {"object": "embedding", "index": i, "embedding": fake_embedding(text)}
                    for i, text in enumerate(inputs)
                ]
                payload = json.dumps(
                    {
                        "object": "list",
                        "data": data,
                        "model": body.get("model"),
                        "usage": {"prompt_tokens": 1, "total_tokens": 1},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def release(self) -> None:
        self.released.set()

    def stop(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


SLOW_WORD = "zanzibar"
SLOW_SECONDS = 8.0
CAP_SECONDS = 1


@pytest.fixture
def slow_embeddings(monkeypatch: pytest.MonkeyPatch) -> Iterator[_SlowEmbeddings]:
    """The engine embeds through the ``openai`` backend, which the official SDK points at
    ``$OPENAI_BASE_URL``: the slow server above. The process-wide embedder made for it is
    dropped afterwards (it stays bound to this server's port)."""
    from assistant_kit.engine.vector_index import shared_embedder

    upstream = _SlowEmbeddings()
    monkeypatch.setenv("ASSISTANT_KIT_EMBEDDINGS", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-embeddings")
    monkeypatch.setenv("OPENAI_BASE_URL", upstream.url)
    monkeypatch.setenv("ASSISTANT_KIT_STORE_WAIT_SECONDS", str(CAP_SECONDS))  # read at run time
    try:
        yield upstream
    finally:
        upstream.stop()
        shared_embedder.cache_clear()


def test_a_run_stops_waiting_for_stuck_ingestion_after_the_cap(
    slow_embeddings: _SlowEmbeddings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Ingestion stuck on a slow embeddings server (8 s) does not hold a run past
    ``ASSISTANT_KIT_STORE_WAIT_SECONDS`` (1 s here): the run searches what is ready (nothing
    yet), completes, and a warning names the store. Were the cap ignored the run would end
    only after the embeddings answer (elapsed >= 8 s) with the file ingested. In-process."""
    from assistant_kit.client import local_client

    client = local_client(tmp_path / "slow.db")
    file = _upload(client, "island.txt", b"Zanzibar is an island off the coast of Tanzania.\n")
    store = client.vector_stores.create(name="stuck", file_ids=[file.id])
    try:
        assert slow_embeddings.held.wait(30), "ingestion never reached the embeddings server"
        assert client.vector_stores.files.retrieve(file.id, vector_store_id=store.id).status == "in_progress"
        assistant = client.beta.assistants.create(
            model="test/search",
            tools=SEARCH,
            tool_resources={"file_search": {"vector_store_ids": [store.id]}},
        )
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "which island is it"}])
        caplog.set_level(logging.WARNING, logger="assistant_kit.attachments")
        started = time.monotonic()
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=100
        )
        elapsed = time.monotonic() - started
        assert run.status == "completed", run.last_error
        assert CAP_SECONDS <= elapsed < SLOW_SECONDS - 1, elapsed
        # it did not wait for the ingestion: the file is still being embedded
        assert not slow_embeddings.released.is_set()
        assert client.vector_stores.files.retrieve(file.id, vector_store_id=store.id).status == "in_progress"
        steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc")
        assert [s.step_details.type for s in steps] == ["tool_calls", "message_creation"]
        assert any(store.id in r.getMessage() and "still ingesting" in r.getMessage() for r in caplog.records)
    finally:
        slow_embeddings.release()  # the held request answers: no ingestion outlives the test
        wait_for(lambda: client.vector_stores.retrieve(store.id).file_counts.in_progress == 0, timeout=30)
    assert client.vector_stores.files.retrieve(file.id, vector_store_id=store.id).status == "completed"


def _age(tmp_path: Path, store_id: str) -> None:
    """Make ``store_id`` expired, behind the engine's back (its database is the fixture's)."""
    from assistant_kit.store import Store
    from assistant_kit.store.vectors import VectorTables

    db = Store(tmp_path / "kit0.db")
    try:
        VectorTables(db).touch_store(store_id, now() - 9 * 86400, now() - 2 * 86400)
    finally:
        db.close()


def test_a_run_on_an_expired_store_fails(client: openai.OpenAI, tmp_path: Path) -> None:
    """The spec's error shape: the run ``failed`` with ``last_error`` (code ``server_error``)
    naming the store; a message attached to a thread whose store expired gets a new store."""
    store = client.vector_stores.create(name="short", expires_after={"anchor": "last_active_at", "days": 1})
    assistant = client.beta.assistants.create(
        model="test/echo", tools=SEARCH, tool_resources={"file_search": {"vector_store_ids": [store.id]}}
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    _age(tmp_path, store.id)
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "failed"
    assert run.last_error is not None and run.last_error.code == "server_error"
    assert store.id in run.last_error.message and "expired" in run.last_error.message
    assert run.failed_at is not None and run.expires_at is None
    # without file_search among the run's tools the store is not searched: the run completes
    ok = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, tools=[])
    assert ok.status == "completed"

    file = _upload(client)
    client.beta.threads.messages.create(
        thread.id, role="user", content="x", attachments=[{"file_id": file.id, "tools": SEARCH}]
    )
    first = _store_of(client, thread.id)
    _age(tmp_path, first)
    client.beta.threads.messages.create(
        thread.id, role="user", content="y", attachments=[{"file_id": file.id, "tools": SEARCH}]
    )
    assert _store_of(client, thread.id) != first  # the expired one is replaced


def test_another_keys_store_or_file_cannot_be_attached(tmp_path: Path) -> None:
    """In-process, two owners on one engine (the scope an authenticating server sets): Bob can
    name neither Alice's store in tool_resources nor her file in attachments (400 naming the
    parameter), and nothing is stored. Over HTTP with real keys: tests/server."""
    from assistant_kit.client import provider_settings
    from assistant_kit.runtime import app_for, engine_loop
    from assistant_kit.transport import InProcessTransport

    db = tmp_path / "owners.db"

    def as_owner(owner: str) -> openai.OpenAI:
        scope = {"assistant_kit.owner": owner, "assistant_kit.settings": provider_settings()}
        http = openai.DefaultHttpxClient(transport=InProcessTransport(app_for(db), engine_loop(), scope))
        return openai.OpenAI(
            api_key="sk-x", base_url="http://assistant-kit.local/v1", max_retries=0, http_client=http
        )

    alice, bob = as_owner("alice"), as_owner("bob")
    check_owners(alice, bob)


def check_owners(alice: openai.OpenAI, bob: openai.OpenAI) -> None:
    """Bob's refused requests store nothing (his objects before, plus what he made)."""
    stores_before = [s.id for s in bob.vector_stores.list()]
    threads_before = _thread_ids(bob)
    assistants_before = [a.id for a in bob.beta.assistants.list()]
    file = _upload(alice)
    store = alice.vector_stores.create(name="alice's", file_ids=[file.id])
    resources = {"file_search": {"vector_store_ids": [store.id]}}
    body = _error(
        lambda: bob.beta.assistants.create(model="test/echo", tools=SEARCH, tool_resources=resources)
    )
    assert body["param"] == "tool_resources.file_search.vector_store_ids[0]"
    body = _error(lambda: bob.beta.threads.create(tool_resources=resources))
    assert body["param"] == "tool_resources.file_search.vector_store_ids[0]"
    assistant = bob.beta.assistants.create(model="test/echo", tools=SEARCH)
    body = _error(
        lambda: bob.beta.threads.create_and_run(assistant_id=assistant.id, tool_resources=resources)
    )
    assert body["param"] == "tool_resources.file_search.vector_store_ids[0]"
    thread = bob.beta.threads.create()
    body = _error(lambda: bob.beta.threads.update(thread.id, tool_resources=resources))
    assert body["param"] == "tool_resources.file_search.vector_store_ids[0]"
    body = _error(
        lambda: bob.beta.threads.messages.create(
            thread.id, role="user", content="x", attachments=[{"file_id": file.id, "tools": SEARCH}]
        )
    )
    assert body["param"] == "attachments[0].file_id"
    assert [s.id for s in bob.vector_stores.list()] == stores_before
    assert _thread_ids(bob) == [thread.id, *threads_before]
    assert [a.id for a in bob.beta.assistants.list()] == [assistant.id, *assistants_before]


def test_files_attached_at_once_to_a_thread_without_a_store_share_one_store(client: openai.OpenAI) -> None:
    """Each request reads the thread (no store yet) and creates one; one locked read-modify-
    write names the first in the thread, and the others' files go into it and their own
    stores are deleted — none is left naming nothing, no file is lost."""
    files = [_upload(client, f"f{i}.txt", TEXT + f"file {i}\n".encode()) for i in range(4)]
    for _ in range(5):
        thread = client.beta.threads.create()
        barrier = threading.Barrier(len(files))

        def attach(file: Any, thread_id: str = thread.id, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            client.beta.threads.messages.create(
                thread_id, role="user", content="x", attachments=[{"file_id": file.id, "tools": SEARCH}]
            )

        workers = [threading.Thread(target=attach, args=(f,)) for f in files]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        store_id = _store_of(client, thread.id)
        assert {f.id for f in client.vector_stores.files.list(store_id)} == {f.id for f in files}
        named = [s.id for s in client.vector_stores.list(limit=100) if s.name == f"{thread.id} attachments"]
        assert named == [store_id]


def test_a_refused_create_and_run_leaves_no_store(client: openai.OpenAI) -> None:
    file = _upload(client)
    mine = client.vector_stores.create(name="mine")
    assistant = client.beta.assistants.create(model="test/echo", tools=SEARCH)
    message = {"role": "user", "content": "hi", "attachments": [{"file_id": file.id, "tools": SEARCH}]}
    for thread in (
        {"messages": [message]},  # the store its attachments make
        {"tool_resources": {"file_search": {"vector_stores": [{"file_ids": [file.id]}]}}},  # the helper's
    ):
        with pytest.raises(openai.BadRequestError) as err:
            client.beta.threads.create_and_run(assistant_id=assistant.id, model="nope/model", thread=thread)  # type: ignore[arg-type]
        assert err.value.body["param"] == "model"  # type: ignore[index]
        assert [s.id for s in client.vector_stores.list()] == [mine.id]
    # a store the caller named is the caller's: a refused request does not delete it
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.create_and_run(
            assistant_id=assistant.id,
            model="nope/model",
            thread={
                "messages": [message],
                "tool_resources": {"file_search": {"vector_store_ids": [mine.id]}},
            },
        )
    assert [s.id for s in client.vector_stores.list()] == [mine.id]
    assert client.files.retrieve(file.id).id == file.id  # the file is untouched
