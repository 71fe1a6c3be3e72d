"""Vector stores through the official SDK, in-process and over real HTTP (the ``client``
fixture runs each test over both): objects as the SDK's types have them, the SDK's polling
helpers unchanged, background ingestion, search, filters, and bad input that stores nothing."""

from __future__ import annotations

import io
from typing import Any

import openai
import pytest

from tests.conftest import wait_for

GCD = b"The math module's gcd function returns the greatest common divisor of two integers.\n"
SORT = b"The sorted builtin returns a new sorted list from the items of any iterable.\n"
PATHS = b"pathlib offers classes representing filesystem paths with semantics for different systems.\n"


def _upload(client: openai.OpenAI, name: str, data: bytes) -> Any:
    return client.files.create(file=(name, io.BytesIO(data)), purpose="assistants")


def _settled(client: openai.OpenAI, store_id: str) -> Any:
    return wait_for(
        lambda: (s := client.vector_stores.retrieve(store_id)).status == "completed" and s, timeout=30
    )


def test_create_ingest_search_modify_delete(client: openai.OpenAI) -> None:
    files = [_upload(client, n, d) for n, d in (("gcd.txt", GCD), ("sort.md", SORT), ("paths.txt", PATHS))]
    store = client.vector_stores.create(
        name="stdlib", file_ids=[f.id for f in files], metadata={"topic": "python"}
    )
    assert store.object == "vector_store" and store.id.startswith("vs_")
    assert (store.name, store.metadata, store.expires_after, store.expires_at) == (
        "stdlib",
        {"topic": "python"},
        None,
        None,
    )
    assert store.file_counts.total == 3 and store.last_active_at == store.created_at
    done = _settled(client, store.id)
    assert done.file_counts.model_dump() == {
        "in_progress": 0,
        "completed": 3,
        "failed": 0,
        "cancelled": 0,
        "total": 3,
    }
    assert done.usage_bytes > 0
    listed = client.vector_stores.files.list(store.id)
    assert {f.id for f in listed} == {f.id for f in files}
    for item in listed:
        assert item.object == "vector_store.file" and item.vector_store_id == store.id
        assert item.status == "completed" and item.last_error is None and item.usage_bytes > 0
        assert item.chunking_strategy.type == "static"
        assert item.chunking_strategy.static.model_dump() == {
            "max_chunk_size_tokens": 800,
            "chunk_overlap_tokens": 400,
        }

    page = client.vector_stores.search(store.id, query="greatest common divisor")
    assert page.data, "search found nothing"
    best = page.data[0]
    assert (best.file_id, best.filename) == (files[0].id, "gcd.txt")
    assert 0 < best.score <= 1 and "greatest common divisor" in best.content[0].text
    assert best.content[0].type == "text" and best.attributes == {}
    raw = client.vector_stores.with_raw_response.search(store.id, query="sorted list", max_num_results=1)
    body = raw.http_response.json()
    assert body["object"] == "vector_store.search_results.page"
    assert body["search_query"] == ["sorted list"] and body["has_more"] is False
    assert len(body["data"]) == 1

    assert [s.id for s in client.vector_stores.list()] == [store.id]
    renamed = client.vector_stores.update(
        store.id, name="renamed", metadata={"k": "v"}, expires_after={"anchor": "last_active_at", "days": 2}
    )
    assert (renamed.name, renamed.metadata) == ("renamed", {"k": "v"})
    assert renamed.expires_after.days == 2
    assert renamed.expires_at == renamed.last_active_at + 2 * 86400
    assert client.vector_stores.retrieve(store.id).name == "renamed"
    deleted = client.vector_stores.delete(store.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (store.id, "vector_store.deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(store.id)
    assert client.files.retrieve(files[0].id).id == files[0].id  # the files themselves stay


def test_sdk_polling_helpers(client: openai.OpenAI) -> None:
    store = client.vector_stores.create(name="helpers")
    uploaded = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("gcd.txt", io.BytesIO(GCD))
    )
    assert uploaded.status == "completed"
    attached = client.vector_stores.files.create_and_poll(
        file_id=_upload(client, "sort.txt", SORT).id,
        vector_store_id=store.id,
        chunking_strategy={
            "type": "static",
            "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 50},
        },
        attributes={"kind": "builtin", "year": 2024},
    )
    assert attached.status == "completed" and attached.attributes == {"kind": "builtin", "year": 2024}
    assert attached.chunking_strategy.static.max_chunk_size_tokens == 100
    batch = client.vector_stores.file_batches.upload_and_poll(
        store.id, files=[("a.txt", io.BytesIO(PATHS)), ("b.txt", io.BytesIO(b"another text file\n"))]
    )
    assert batch.object == "vector_store.files_batch" and batch.status == "completed"
    assert batch.file_counts.completed == 2 and batch.file_counts.total == 2
    ids = [_upload(client, f"{i}.txt", b"more words %d\n" % i).id for i in range(3)]
    batch2 = client.vector_stores.file_batches.create_and_poll(vector_store_id=store.id, file_ids=ids)
    assert batch2.status == "completed" and batch2.file_counts.total == 3
    in_batch = client.vector_stores.file_batches.list_files(batch2.id, vector_store_id=store.id)
    assert sorted(f.id for f in in_batch) == sorted(ids)
    assert client.vector_stores.file_batches.retrieve(batch2.id, vector_store_id=store.id).id == batch2.id
    assert client.vector_stores.retrieve(store.id).file_counts.completed == 7


def test_file_operations_attributes_filters_and_content(client: openai.OpenAI) -> None:
    store = client.vector_stores.create(name="files")
    gcd = client.vector_stores.files.create_and_poll(
        file_id=_upload(client, "gcd.txt", GCD).id, vector_store_id=store.id, attributes={"year": 2020}
    )
    sort = client.vector_stores.files.create_and_poll(
        file_id=_upload(client, "sort.txt", SORT).id, vector_store_id=store.id, attributes={"year": 2024}
    )
    got = client.vector_stores.files.retrieve(gcd.id, vector_store_id=store.id)
    assert got.id == gcd.id and got.attributes == {"year": 2020}
    content = list(client.vector_stores.files.content(gcd.id, vector_store_id=store.id))
    assert content[0].type == "text" and "greatest common divisor" in content[0].text

    def found(**options: Any) -> list[str]:
        return [r.file_id for r in client.vector_stores.search(store.id, query="returns", **options)]

    assert set(found()) == {gcd.id, sort.id}
    assert found(filters={"type": "gte", "key": "year", "value": 2021}) == [sort.id]
    assert found(filters={"type": "in", "key": "year", "value": [2020, 1999]}) == [gcd.id]
    both = {
        "type": "or",
        "filters": [
            {"type": "eq", "key": "year", "value": 2020},
            {"type": "lt", "key": "year", "value": 2000},
        ],
    }
    assert found(filters=both) == [gcd.id]
    updated = client.vector_stores.files.update(gcd.id, vector_store_id=store.id, attributes={"year": 2030})
    assert updated.attributes == {"year": 2030}
    assert set(found(filters={"type": "gt", "key": "year", "value": 2021})) == {gcd.id, sort.id}
    assert [f.id for f in client.vector_stores.files.list(store.id, filter="completed", order="asc")] == [
        gcd.id,
        sort.id,
    ]
    assert list(client.vector_stores.files.list(store.id, filter="failed")) == []
    page = client.vector_stores.files.list(store.id, limit=1, order="asc")
    assert [f.id for f in page.data] == [gcd.id] and page.has_more
    assert [f.id for f in client.vector_stores.files.list(store.id, after=gcd.id, order="asc")] == [sort.id]

    deleted = client.vector_stores.files.delete(gcd.id, vector_store_id=store.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (gcd.id, "vector_store.file.deleted", True)
    assert found() == [sort.id]
    client.files.delete(sort.id)  # deleting the File takes it out of every store
    assert list(client.vector_stores.files.list(store.id)) == []
    assert client.vector_stores.search(store.id, query="returns").data == []


def test_unreadable_files_fail_with_their_code(client: openai.OpenAI) -> None:
    store = client.vector_stores.create(name="bad files")
    binary = client.vector_stores.files.create_and_poll(
        file_id=_upload(client, "blob.bin", bytes(range(256)) * 8).id, vector_store_id=store.id
    )
    assert binary.status == "failed" and binary.last_error.code == "unsupported_file"
    blank = client.vector_stores.files.create_and_poll(
        file_id=_upload(client, "blank.txt", b"   \n\n  ").id, vector_store_id=store.id
    )
    assert blank.status == "failed" and blank.last_error.code == "invalid_file"
    counts = client.vector_stores.retrieve(store.id).file_counts
    assert (counts.failed, counts.total) == (2, 2)
    assert [f.id for f in client.vector_stores.files.list(store.id, filter="failed", order="asc")] == [
        binary.id,
        blank.id,
    ]


def test_batch_cancel(client: openai.OpenAI) -> None:
    store = client.vector_stores.create(name="cancel")
    ids = [_upload(client, f"{i}.txt", (b"word%d " % i) * 60).id for i in range(30)]
    batch = client.vector_stores.file_batches.create(store.id, file_ids=ids)
    assert batch.status == "in_progress" and batch.file_counts.total == 30
    cancelled = client.vector_stores.file_batches.cancel(batch.id, vector_store_id=store.id)
    assert cancelled.status == "cancelled"
    counts = cancelled.file_counts
    assert counts.in_progress == 0 and counts.cancelled + counts.completed == 30
    assert counts.cancelled > 0
    wait_for(lambda: client.vector_stores.retrieve(store.id).file_counts.in_progress == 0, timeout=30)
    final = client.vector_stores.file_batches.retrieve(batch.id, vector_store_id=store.id)
    assert final.status == "cancelled" and final.file_counts.cancelled == counts.cancelled
    listed = client.vector_stores.file_batches.list_files(
        batch.id, vector_store_id=store.id, filter="cancelled"
    )
    assert len(list(listed)) == counts.cancelled


def _error(call: Any, status: type[openai.APIStatusError] = openai.BadRequestError) -> dict[str, Any]:
    with pytest.raises(status) as err:
        call()
    return err.value.body


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"file_ids": ["file-nope"]}, "file_ids[0]"),
        (
            {
                "chunking_strategy": {
                    "type": "static",
                    "static": {"max_chunk_size_tokens": 99, "chunk_overlap_tokens": 0},
                }
            },
            "chunking_strategy.static.max_chunk_size_tokens",
        ),
        (
            {
                "chunking_strategy": {
                    "type": "static",
                    "static": {"max_chunk_size_tokens": 4097, "chunk_overlap_tokens": 0},
                }
            },
            "chunking_strategy.static.max_chunk_size_tokens",
        ),
        (
            {
                "chunking_strategy": {
                    "type": "static",
                    "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 401},
                }
            },
            "chunking_strategy.static.chunk_overlap_tokens",
        ),
        ({"expires_after": {"anchor": "last_active_at", "days": 0}}, "expires_after.days"),
        ({"expires_after": {"anchor": "created_at", "days": 3}}, "expires_after.anchor"),
        ({"extra_body": {"colour": "red"}}, "colour"),
        ({"metadata": {"k": 1}}, "metadata.k"),
    ],
)
def test_bad_create_stores_nothing(client: openai.OpenAI, options: dict[str, Any], param: str) -> None:
    good = _upload(client, "ok.txt", GCD)
    if "file_ids" in options:
        options = {"file_ids": [good.id, *options["file_ids"]]}
        param = "file_ids[1]"
    body = _error(lambda: client.vector_stores.create(name="x", **options))
    assert body["param"] == param, body
    assert body["type"] == "invalid_request_error"
    assert list(client.vector_stores.list()) == []


def test_bad_file_and_search_requests(client: openai.OpenAI) -> None:
    store = client.vector_stores.create(name="strict")
    good = _upload(client, "ok.txt", GCD)
    assert (
        _error(lambda: client.vector_stores.files.create(store.id, file_id="file-missing"))["param"]
        == "file_id"
    )
    static = {"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 150}}
    body = _error(
        lambda: client.vector_stores.files.create(store.id, file_id=good.id, chunking_strategy=static)
    )
    assert body["param"] == "chunking_strategy.static.chunk_overlap_tokens"
    body = _error(
        lambda: client.vector_stores.files.create(store.id, file_id=good.id, attributes={"k": ["list"]})
    )
    assert body["param"].startswith("attributes")
    body = _error(lambda: client.vector_stores.file_batches.create(store.id, file_ids=[good.id, "file-x"]))
    assert body["param"] == "file_ids[1]"
    body = _error(
        lambda: client.vector_stores.file_batches.create(
            store.id, files=[{"file_id": good.id}, {"file_id": "file-y"}]
        )
    )
    assert body["param"] == "files[1].file_id"
    body = _error(
        lambda: client.vector_stores.file_batches.create(
            store.id, file_ids=[good.id], files=[{"file_id": good.id}]
        )
    )
    assert body["param"] == "files"
    assert list(client.vector_stores.files.list(store.id)) == []  # nothing was attached
    body = _error(
        lambda: client.vector_stores.files.create("vs_missing", file_id=good.id), openai.NotFoundError
    )
    assert body["param"] == "vector_store_id"
    _error(
        lambda: client.vector_stores.files.retrieve("file-zzz", vector_store_id=store.id),
        openai.NotFoundError,
    )
    _error(
        lambda: client.vector_stores.file_batches.retrieve("vsfb_zzz", vector_store_id=store.id),
        openai.NotFoundError,
    )

    for options, param in (
        ({"max_num_results": 0}, "max_num_results"),
        ({"max_num_results": 51}, "max_num_results"),
        ({"ranking_options": {"score_threshold": 1.5}}, "ranking_options.score_threshold"),
        ({"filters": {"type": "eq", "key": "year", "value": [1]}}, "filters.value"),
        ({"filters": {"type": "in", "key": "year", "value": 3}}, "filters.value"),
        (
            {"filters": {"type": "and", "filters": [{"type": "like", "key": "a", "value": "b"}]}},
            "filters.filters[0].type",
        ),
        ({"filters": {"type": "eq", "key": "a"}}, "filters"),
    ):
        body = _error(lambda o=options: client.vector_stores.search(store.id, query="gcd", **o))  # type: ignore[misc]
        assert body["param"] is not None and body["param"].startswith(param.split(".")[0]), (options, body)
        if param != "filters":
            assert body["param"] == param, (options, body)
    _error(lambda: client.vector_stores.files.list(store.id, filter="done"))  # type: ignore[arg-type]


def test_routes_answer_with_and_without_v1(client: openai.OpenAI) -> None:
    store = client.vector_stores.create(name="roots")
    root = str(client.base_url).rstrip("/").removesuffix("/v1")
    response = client.get(f"{root}/vector_stores/{store.id}", cast_to=openai.types.VectorStore)
    assert response.id == store.id


def test_expiry_is_enforced(client: openai.OpenAI, tmp_path: Any) -> None:
    """A store past ``expires_at`` reads as ``expired`` and refuses searches and new files; a
    search of a live store moves ``last_active_at`` and ``expires_at`` with it."""
    from assistant_kit._ids import now
    from assistant_kit.store import Store
    from assistant_kit.store.vectors import VectorTables

    store = client.vector_stores.create(name="short", expires_after={"anchor": "last_active_at", "days": 1})
    assert store.expires_at == store.last_active_at + 86400 and store.status == "completed"
    db = Store(tmp_path / "kit0.db")  # the fixture's database, aged behind the engine's back
    try:
        tables = VectorTables(db)
        tables.touch_store(store.id, now() - 5 * 86400, now() - 4 * 86400)
        aged = client.vector_stores.retrieve(store.id)
        assert aged.status == "expired" and aged.expires_at < now()
        assert [s.status for s in client.vector_stores.list()] == ["expired"]
        body = _error(lambda: client.vector_stores.search(store.id, query="anything"))
        assert body["param"] == "vector_store_id" and "expired" in body["message"]
        file = _upload(client, "late.txt", GCD)
        assert _error(lambda: client.vector_stores.files.create(store.id, file_id=file.id))["param"] == (
            "vector_store_id"
        )
        assert list(client.vector_stores.files.list(store.id)) == []
        tables.touch_store(store.id, now() - 3600, now() - 3600 + 86400)  # active an hour ago
        before = client.vector_stores.retrieve(store.id)
        assert before.status == "completed"
        client.vector_stores.search(store.id, query="anything")
        after = client.vector_stores.retrieve(store.id)
        assert after.last_active_at >= before.last_active_at + 3600 - 5
        assert after.expires_at == after.last_active_at + 86400
        assert client.vector_stores.delete(store.id).deleted
    finally:
        db.close()


def test_tool_resources_name_the_callers_stores_and_the_helper_makes_one(client: openai.OpenAI) -> None:
    """``tool_resources.file_search``: an unknown store id is a 400 naming it; the
    ``vector_stores`` helper creates the store from file ids and is replaced by its id."""
    body = _error(
        lambda: client.beta.assistants.create(
            model="test/echo", tool_resources={"file_search": {"vector_store_ids": ["vs_nope"]}}
        )
    )
    assert body["param"] == "tool_resources.file_search.vector_store_ids[0]"
    body = _error(
        lambda: client.beta.threads.create(
            tool_resources={"file_search": {"vector_stores": [{"file_ids": ["file-missing"]}]}}
        )
    )
    assert body["param"] == "tool_resources.file_search.vector_stores[0].file_ids[0]"
    assert list(client.vector_stores.list()) == []
    file = _upload(client, "gcd.txt", GCD)
    thread = client.beta.threads.create(
        tool_resources={"file_search": {"vector_stores": [{"file_ids": [file.id], "metadata": {"k": "v"}}]}}
    )
    (store_id,) = thread.tool_resources.file_search.vector_store_ids
    store = _settled(client, store_id)
    assert store.metadata == {"k": "v"} and store.file_counts.completed == 1
    assistant = client.beta.assistants.create(
        model="test/echo",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store_id]}},
    )
    assert assistant.tool_resources.file_search.vector_store_ids == [store_id]
