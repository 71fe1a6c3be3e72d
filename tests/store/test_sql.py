"""The SQL store, directly: paths and URLs, SQLite concurrency, the active-run rule, paging, ids.

Tests taking ``store`` or ``db`` run on both backends: SQLite (a file in ``tmp_path``) and
PostgreSQL (a fresh database; skipped without ``ASSISTANT_KIT_TEST_PG_URL``).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import types
from pathlib import Path
from typing import Any

import pytest

from assistant_kit import _ids
from assistant_kit._ids import new_id, now
from assistant_kit.errors import InvalidRequestError
from assistant_kit.store import ACTIVE_RUN_STATUSES, MASTER_OWNER, Store, database_url, default_db_path
from tests.postgres import fresh_database

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]


def thread_obj() -> dict[str, Any]:
    return {"id": new_id("thread"), "object": "thread", "created_at": now(), "metadata": {}}


def message_obj(thread_id: str, text: str = "hi", run_id: str | None = None) -> dict[str, Any]:
    return {
        "id": new_id("msg"),
        "object": "thread.message",
        "created_at": now(),
        "thread_id": thread_id,
        "run_id": run_id,
        "role": "user",
        "content": [{"type": "text", "text": {"value": text, "annotations": []}}],
    }


def run_obj(thread_id: str, status: str) -> dict[str, Any]:
    return {
        "id": new_id("run"),
        "object": "thread.run",
        "created_at": now(),
        "thread_id": thread_id,
        "status": status,
    }


BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """What ``Store(db)`` takes: a SQLite file path, or a fresh PostgreSQL database's URL."""
    if request.param == "sqlite":
        yield tmp_path / "store.db"
    else:
        with fresh_database() as url:
            yield url


@pytest.fixture
def store(db: Any) -> Any:
    s = Store(db)
    yield s
    s.close()


# -- default path and URL rules ------------------------------------------------------------------


def test_default_db_path_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ASSISTANT_KIT_DB", str(tmp_path / "explicit.db"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_db_path() == tmp_path / "explicit.db"

    monkeypatch.setenv("ASSISTANT_KIT_DB", "~/somewhere/kit.db")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_db_path() == tmp_path / "home" / "somewhere" / "kit.db"

    monkeypatch.delenv("ASSISTANT_KIT_DB")
    assert default_db_path() == tmp_path / "xdg" / "assistant_kit" / "assistant_kit.db"

    monkeypatch.setenv("ASSISTANT_KIT_DB", "")  # empty means unset
    assert default_db_path() == tmp_path / "xdg" / "assistant_kit" / "assistant_kit.db"

    monkeypatch.delenv("XDG_DATA_HOME")
    expected = tmp_path / "home" / ".local" / "share" / "assistant_kit" / "assistant_kit.db"
    assert default_db_path() == expected


def test_database_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ASSISTANT_KIT_DB", str(tmp_path / "default" / "kit.db"))
    assert database_url(None) == f"sqlite:///{tmp_path / 'default' / 'kit.db'}"
    assert (tmp_path / "default").is_dir()  # the parent directory is created

    nested = tmp_path / "a" / "b" / "c.db"
    assert database_url(nested) == f"sqlite:///{nested}"
    assert database_url(str(nested)) == f"sqlite:///{nested}"
    assert nested.parent.is_dir()

    assert database_url(":memory:") == "sqlite://"
    assert database_url("postgres://u:p@db:5432/kit") == "postgresql+psycopg://u:p@db:5432/kit"
    assert database_url("postgresql://u:p@db/kit") == "postgresql+psycopg://u:p@db/kit"
    assert database_url("postgresql+psycopg2://u@db/kit") == "postgresql+psycopg2://u@db/kit"
    assert database_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_store_uses_default_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ASSISTANT_KIT_DB", str(tmp_path / "env" / "kit.db"))
    s = Store()
    try:
        s.insert("thread", thread_obj())
    finally:
        s.close()
    assert (tmp_path / "env" / "kit.db").is_file()


# -- SQLite specifics ---------------------------------------------------------------------------------


def test_wal_mode_for_file_db(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    finally:
        store.close()
    raw = sqlite3.connect(tmp_path / "store.db")  # WAL is persistent: any reader sees it
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()


def test_migrations_run_once(db: Any) -> None:
    first = Store(db)
    first.insert("thread", thread_obj())
    first.close()
    second = Store(db)  # reopening neither fails nor loses data
    try:
        assert second.count("thread") == 1
    finally:
        second.close()


def test_memory_stores_are_independent() -> None:
    a, b = Store(":memory:"), Store(":memory:")
    try:
        thread = thread_obj()
        a.insert("thread", thread)
        assert a.get("thread", thread["id"]) == thread
        assert b.get("thread", thread["id"]) is None
        assert b.count("thread") == 0
    finally:
        a.close()
        b.close()


def test_memory_store_shared_across_threads() -> None:
    s = Store(":memory:")
    try:
        thread = thread_obj()
        s.insert("thread", thread)
        seen: list[Any] = []
        worker = threading.Thread(target=lambda: seen.append(s.get("thread", thread["id"])))
        worker.start()
        worker.join()
        assert seen == [thread]
    finally:
        s.close()


def test_two_stores_write_one_file_concurrently(db: Any) -> None:
    stores = [Store(db), Store(db)]
    thread = thread_obj()
    stores[0].insert("thread", thread)
    errors: list[BaseException] = []
    per_writer = 100

    def write(s: Store, tag: str) -> None:
        try:
            for i in range(per_writer):
                s.insert("thread.message", message_obj(thread["id"], f"{tag}{i}"))
                s.insert_if_idle(thread["id"], [("thread.message", message_obj(thread["id"], f"{tag}i{i}"))])
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)

    workers = [threading.Thread(target=write, args=(s, f"w{n}-")) for n, s in enumerate(stores)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    try:
        assert errors == []
        assert stores[1].count("thread.message", thread_id=thread["id"]) == 2 * 2 * per_writer
        texts = {m["content"][0]["text"]["value"] for m in stores[0].thread_messages(thread["id"])}
        assert texts == {f"w{n}-{k}{i}" for n in range(2) for k in ("", "i") for i in range(per_writer)}
    finally:
        for s in stores:
            s.close()


WRITER = textwrap.dedent(
    """
    import sys
    from assistant_kit._ids import new_id, now
    from assistant_kit.store import Store

    path, thread_id, tag, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    store = Store(path)
    for i in range(count):
        obj = {"id": new_id("msg"), "object": "thread.message", "created_at": now(),
               "thread_id": thread_id, "run_id": None, "role": "user",
               "content": [{"type": "text", "text": {"value": f"{tag}{i}", "annotations": []}}]}
        store.insert_if_idle(thread_id, [("thread.message", obj)])
    store.close()
    print("ok")
    """
)


def test_two_processes_write_one_file_concurrently(db: Any) -> None:
    path = db
    parent = Store(path)
    thread = thread_obj()
    parent.insert("thread", thread)
    count = 150
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), thread["id"], f"p{n}-", str(count)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    # The parent writes at the same time.
    for i in range(count):
        parent.insert("thread.message", message_obj(thread["id"], f"parent-{i}"))
    results = [p.communicate(timeout=90) for p in procs]
    try:
        for proc, (out, err) in zip(procs, results, strict=True):
            assert proc.returncode == 0, err
            assert "database is locked" not in err
            assert out.strip() == "ok"
        assert parent.count("thread.message", thread_id=thread["id"]) == 4 * count
        texts = {m["content"][0]["text"]["value"] for m in parent.thread_messages(thread["id"])}
        assert texts == {f"{tag}{i}" for tag in ("p0-", "p1-", "p2-", "parent-") for i in range(count)}
    finally:
        parent.close()


# -- rules ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ACTIVE_RUN_STATUSES)
def test_insert_if_idle_refuses_during_active_run(store: Store, status: str) -> None:
    thread = thread_obj()
    store.insert("thread", thread)
    run = run_obj(thread["id"], status)
    store.insert("thread.run", run)
    assert store.active_run_id(thread["id"]) == run["id"]

    message = message_obj(thread["id"])
    with pytest.raises(InvalidRequestError) as info:
        store.insert_if_idle(thread["id"], [("thread.message", message)], param="thread_id")
    assert info.value.status_code == 400
    assert run["id"] in info.value.message and thread["id"] in info.value.message
    assert info.value.param == "thread_id"
    assert store.get("thread.message", message["id"]) is None  # nothing half-inserted

    second = run_obj(thread["id"], "queued")
    with pytest.raises(InvalidRequestError):
        store.insert_if_idle(thread["id"], [("thread.message", message), ("thread.run", second)])
    assert store.get("thread.message", message["id"]) is None
    assert store.get("thread.run", second["id"]) is None

    store.put("thread.run", {**run, "status": "completed"})  # the status column follows the data
    assert store.active_run_id(thread["id"]) is None
    store.insert_if_idle(thread["id"], [("thread.message", message)])
    assert store.get("thread.message", message["id"]) == message


def test_insert_if_idle_is_per_thread(store: Store) -> None:
    busy, idle = thread_obj(), thread_obj()
    store.insert_many([("thread", busy), ("thread", idle)])
    store.insert("thread.run", run_obj(busy["id"], "in_progress"))
    message = message_obj(idle["id"])
    store.insert_if_idle(idle["id"], [("thread.message", message)])
    assert store.get("thread.message", message["id"], thread_id=idle["id"]) == message


def test_concurrent_insert_if_idle_admits_one_run(db: Any) -> None:
    stores = [Store(db) for _ in range(4)]
    thread = thread_obj()
    stores[0].insert("thread", thread)
    outcomes: list[str] = []
    barrier = threading.Barrier(len(stores))

    def start(s: Store) -> None:
        barrier.wait()
        try:
            s.insert_if_idle(thread["id"], [("thread.run", run_obj(thread["id"], "queued"))])
            outcomes.append("ok")
        except InvalidRequestError:
            outcomes.append("refused")

    workers = [threading.Thread(target=start, args=(s,)) for s in stores]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    try:
        assert sorted(outcomes) == ["ok"] + ["refused"] * (len(stores) - 1)
        assert stores[0].count("thread.run", thread_id=thread["id"]) == 1
    finally:
        for s in stores:
            s.close()


def test_get_filters_and_delete_thread_cascade(store: Store) -> None:
    thread, other = thread_obj(), thread_obj()
    store.insert_many([("thread", thread), ("thread", other)])
    run = run_obj(thread["id"], "completed")
    message = message_obj(thread["id"], run_id=run["id"])
    step = {
        "id": new_id("step"),
        "object": "thread.run.step",
        "created_at": now(),
        "thread_id": thread["id"],
        "run_id": run["id"],
    }
    kept = message_obj(other["id"])
    store.insert_many([("thread.run", run), ("thread.message", message), ("thread.run.step", step)])
    store.insert("thread.message", kept)

    assert store.get("thread.message", message["id"], thread_id=thread["id"]) == message
    assert store.get("thread.message", message["id"], thread_id=other["id"]) is None
    assert store.get("thread.run.step", step["id"], run_id="run_other") is None

    assert store.delete_thread(thread["id"]) is True
    for kind, obj in (("thread", thread), ("thread.message", message), ("thread.run", run)):
        assert store.get(kind, obj["id"]) is None
    assert store.get("thread.run.step", step["id"]) is None
    assert store.get("thread.message", kept["id"]) == kept
    assert store.delete_thread(thread["id"]) is False


def test_owner_scoping(store: Store) -> None:
    mine, theirs = thread_obj(), thread_obj()
    store.insert("thread", mine, owner="alice")
    store.insert("thread", theirs, owner="bob")
    assert store.get("thread", mine["id"], owner="alice") == mine
    assert store.get("thread", mine["id"], owner="bob") is None
    assert store.get("thread", mine["id"]) == mine  # owner None sees everything
    assert [t["id"] for t in store.list("thread", owner="bob").data] == [theirs["id"]]
    assert len(store.list("thread").data) == 2


def test_master_owner_sees_the_unowned_rows(store: Store) -> None:
    """The master key's namespace holds the local sessions' objects (owner NULL) besides its
    own, so a notebook and a proxy on one store see one store; other owners never see them."""
    local, masters, bobs = thread_obj(), thread_obj(), thread_obj()
    store.insert("thread", local)  # as local_client / Session store it: no owner
    store.insert("thread", masters, owner=MASTER_OWNER)
    store.insert("thread", bobs, owner="bob")
    assert store.get("thread", local["id"], owner=MASTER_OWNER) == local
    assert store.get("thread", bobs["id"], owner=MASTER_OWNER) is None
    listed = [t["id"] for t in store.list("thread", owner=MASTER_OWNER, order="asc").data]
    assert listed == [local["id"], masters["id"]]
    assert store.get("thread", local["id"], owner="bob") is None
    assert [t["id"] for t in store.list("thread", owner="bob").data] == [bobs["id"]]
    assert len(store.list("thread").data) == 3  # the local view: everything
    assert store.owner_of("thread", masters["id"]) == MASTER_OWNER


def test_files_keep_bytes_apart_from_metadata(store: Store) -> None:
    def file_obj(name: str, purpose: str) -> dict[str, Any]:
        return {
            "id": new_id("file"),
            "object": "file",
            "created_at": now(),
            "filename": name,
            "purpose": purpose,
        }

    blob = bytes(range(256)) * 1000  # every byte value: bytea / BLOB round trip
    upload, made = file_obj("in.bin", "assistants"), file_obj("out.png", "assistants_output")
    store.insert_file(upload, blob, owner="alice")
    store.insert_file(made, b"\x89PNG", owner="alice", thread_id="thread_1", call_id="call_1")
    assert store.file_content(upload["id"]) == blob
    assert store.get("file", upload["id"], owner="bob") is None
    assert [f["id"] for f in store.list("file", owner="alice", purpose="assistants").data] == [upload["id"]]
    assert store.files_made_in("thread_1") == [("call_1", made)]
    assert store.owner_of("file", made["id"]) == "alice"
    assert store.delete_file(upload["id"]) and not store.delete_file(upload["id"])
    assert store.file_content(upload["id"]) is None and store.get("file", upload["id"]) is None


def test_legacy_file_ids_list_in_time_order(store: Store) -> None:
    """Files stored before ids were ``file-…`` keep their ``file_…`` ids; ``-`` sorts before
    ``_``, yet the list (and its cursors) orders both spellings by time."""
    ids = [new_id("file") for _ in range(4)]
    ids[0], ids[2] = ("file_" + i[len("file-") :] for i in (ids[0], ids[2]))  # made "before"
    for file_id in reversed(ids):
        store.insert_file(
            {"id": file_id, "object": "file", "created_at": now(), "purpose": "assistants"}, b"x"
        )
    assert [f["id"] for f in store.list("file", order="asc").data] == ids
    assert [f["id"] for f in store.list("file").data] == ids[::-1]
    page = store.list("file", order="asc", limit=2)
    assert [f["id"] for f in page.data] == ids[:2] and page.has_more
    assert [f["id"] for f in store.list("file", order="asc", after=ids[1]).data] == ids[2:]
    assert [f["id"] for f in store.list("file", before=ids[2]).data] == ids[3:][::-1]
    assert [f["id"] for f in store.list("file", after=ids[2]).data] == ids[:2][::-1]
    assert store.get("file", ids[0])["id"] == ids[0]


# -- pagination ------------------------------------------------------------------------------------


def test_list_pages_by_cursor(store: Store) -> None:
    thread = thread_obj()
    store.insert("thread", thread)
    ids = []
    for i in range(10):
        message = message_obj(thread["id"], str(i))
        store.insert("thread.message", message)
        ids.append(message["id"])

    def page(**params: Any) -> tuple[list[str], bool]:
        result = store.list("thread.message", thread_id=thread["id"], **params)
        assert result.first_id == (result.data[0]["id"] if result.data else None)
        assert result.last_id == (result.data[-1]["id"] if result.data else None)
        return [m["id"] for m in result.data], result.has_more

    assert page() == (ids[::-1], False)
    assert page(limit=3) == (ids[::-1][:3], True)
    assert page(limit=3, order="asc") == (ids[:3], True)
    assert page(limit=10) == (ids[::-1], False)
    assert page(limit=9) == (ids[::-1][:9], True)

    # after: the items following the cursor in the requested order.
    assert page(limit=3, order="asc", after=ids[2]) == (ids[3:6], True)
    assert page(limit=3, order="asc", after=ids[6]) == (ids[7:10], False)
    assert page(limit=3, order="desc", after=ids[7]) == ([ids[6], ids[5], ids[4]], True)
    assert page(limit=3, order="desc", after=ids[2]) == ([ids[1], ids[0]], False)

    # before: the items just preceding the cursor, still in the requested order.
    assert page(limit=3, order="asc", before=ids[7]) == (ids[4:7], True)
    assert page(limit=3, order="asc", before=ids[3]) == (ids[0:3], False)
    assert page(limit=3, order="desc", before=ids[2]) == ([ids[5], ids[4], ids[3]], True)
    assert page(limit=3, order="desc", before=ids[6]) == ([ids[9], ids[8], ids[7]], False)

    # Both: the open interval, from the `after` end.
    assert page(order="asc", after=ids[1], before=ids[6]) == (ids[2:6], False)
    assert page(order="asc", limit=2, after=ids[1], before=ids[6]) == (ids[2:4], True)
    assert page(order="desc", after=ids[6], before=ids[1]) == (ids[5:1:-1], False)
    assert page(order="desc", limit=2, after=ids[6], before=ids[1]) == ([ids[5], ids[4]], True)

    # Cursors past the ends give empty pages.
    assert page(order="asc", after=ids[-1]) == ([], False)
    assert page(order="desc", before=ids[-1]) == ([], False)

    # A cursor whose object was deleted meanwhile still marks its place.
    assert store.delete("thread.message", ids[4]) is True
    assert page(limit=2, order="asc", after=ids[4]) == (ids[5:7], True)
    assert page(limit=2, order="asc", before=ids[4]) == (ids[2:4], True)

    # Other filters apply together with the cursor.
    assert store.list("thread.message", thread_id="thread_none").data == []


def test_list_walks_cover_everything(store: Store) -> None:
    objs = [{"id": new_id("asst"), "object": "assistant", "created_at": now()} for _ in range(23)]
    store.insert_many([("assistant", o) for o in objs])
    ids = [o["id"] for o in objs]
    for order, expected in (("asc", ids), ("desc", ids[::-1])):
        for limit in (1, 4, 22, 23, 100):
            walked: list[str] = []
            cursor = None
            while True:
                result = store.list("assistant", order=order, limit=limit, after=cursor)
                walked += [o["id"] for o in result.data]
                if not result.has_more:
                    break
                cursor = result.last_id
            assert walked == expected, (order, limit)
            # Backwards from the last item, prepending each page.
            walked = [expected[-1]]
            cursor = expected[-1]
            while True:
                result = store.list("assistant", order=order, limit=limit, before=cursor)
                walked = [o["id"] for o in result.data] + walked
                if not result.has_more:
                    break
                cursor = result.first_id
            assert walked == expected, (order, limit, "before")


# -- ids -------------------------------------------------------------------------------------------------


def test_ids_sort_in_creation_order() -> None:
    ids = [new_id("msg") for _ in range(5000)]  # many share a millisecond
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(i.startswith("msg_") and len(i) == 4 + 26 for i in ids)


def test_ids_monotonic_within_one_millisecond_and_clock_steps_back(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = {"ns": 1_900_000_000_000 * 1_000_000}
    fake_time = types.SimpleNamespace(time_ns=lambda: clock["ns"])
    monkeypatch.setattr(_ids, "time", fake_time)
    # The generator's memory of the last millisecond is restored afterwards: left at the fake
    # 2030 clock, every later id of this process would sort after ids made elsewhere today.
    monkeypatch.setattr(_ids, "_last_ms", _ids._last_ms)
    monkeypatch.setattr(_ids, "_last_rand", _ids._last_rand)
    same_ms = [new_id("run") for _ in range(1000)]
    assert same_ms == sorted(same_ms) and len(set(same_ms)) == 1000
    assert len({i[4:14] for i in same_ms}) == 1  # one timestamp prefix
    clock["ns"] -= 5_000_000  # the wall clock steps back 5 ms
    stepped = [new_id("run") for _ in range(10)]
    assert stepped == sorted(stepped) and stepped[0] > same_ms[-1]
    clock["ns"] += 1_000_000_000  # and jumps forward
    later = new_id("run")
    assert later > stepped[-1]
    assert later[4:14] > same_ms[0][4:14]


def test_ids_order_matches_across_prefix_kinds() -> None:
    """Message and step ids made in sequence keep their order in their suffixes."""
    a, b = new_id("msg"), new_id("step")
    assert a.split("_", 1)[1] < b.split("_", 1)[1]


# -- run leases (replicas: assistant_kit.engine.runs) -------------------------------------------------


def leased_run(store: Store, status: str = "in_progress", worker: str = "w1") -> dict[str, Any]:
    thread = thread_obj()
    store.insert("thread", thread)
    run = {**run_obj(thread["id"], status), "expires_at": now() + 600}
    store.insert_if_idle(thread["id"], [("thread.run", run)], lease=worker)
    return run


def test_save_run_is_a_compare_and_set(store: Store) -> None:
    run = leased_run(store)
    assert store.run_lease(run["id"])["worker"] == "w1"

    # The executor writes while the row names it and the status is one it expects.
    assert store.save_run({**run, "status": "requires_action"}, expect=("in_progress",), worker="w1")
    assert not store.save_run({**run, "status": "completed"}, expect=("in_progress",), worker="w1")
    assert not store.save_run({**run, "status": "completed"}, expect=("requires_action",), worker="w2")
    assert store.get("thread.run", run["id"])["status"] == "requires_action"

    # Claiming moves the lease; the former executor's writes are refused from then on.
    step = {
        "id": new_id("step"),
        "object": "thread.run.step",
        "created_at": now(),
        "thread_id": run["thread_id"],
        "run_id": run["id"],
        "status": "in_progress",
    }
    store.insert("thread.run.step", step)
    queued = {**run, "status": "queued"}
    done_step = {**step, "status": "completed"}
    assert store.save_run(
        queued, expect=("requires_action",), claim="w2", also=[("thread.run.step", done_step)]
    )
    assert store.get("thread.run.step", step["id"])["status"] == "completed"  # same transaction
    assert not store.save_run(queued, expect=("requires_action",), claim="w3")  # one claim wins
    assert store.run_lease(run["id"])["worker"] == "w2"
    assert not store.save_run({**run, "status": "failed"}, expect=ACTIVE_RUN_STATUSES, worker="w1")
    assert store.save_run({**run, "status": "completed"}, expect=ACTIVE_RUN_STATUSES, worker="w2")
    # A refused write leaves the objects written along with it untouched.
    assert not store.save_run(
        {**run, "status": "cancelled"},
        expect=("queued",),
        also=[("thread.run.step", {**step, "status": "x"})],
    )
    assert store.get("thread.run.step", step["id"])["status"] == "completed"
    assert store.get("thread.run", run["id"])["status"] == "completed"
    assert store.active_run_id(run["thread_id"]) is None


def test_renew_leases_and_runs_to_settle(store: Store) -> None:
    mine = leased_run(store, "in_progress", "w1")
    cancelling = leased_run(store, "cancelling", "w1")
    other = leased_run(store, "queued", "w2")
    parked = leased_run(store, "requires_action", "w2")
    store.put("thread.run", {**parked, "expires_at": now() - 1})  # the column follows the data
    gone = new_id("run")

    rows = store.renew_leases("w1", [mine["id"], cancelling["id"], other["id"], gone])
    assert rows == {
        mine["id"]: ("in_progress", "w1"),
        cancelling["id"]: ("cancelling", "w1"),
        other["id"]: ("queued", "w2"),  # not ours: reported, not renewed
    }
    before = store.run_lease(other["id"])["heartbeat_at"]

    # Nothing is stale a moment after the leases were taken; the parked run is past due.
    settle = store.runs_to_settle(time.time() - 30, time.time())
    assert [r["id"] for r, _ in settle] == [parked["id"]]
    # Later, every lease is stale (the executing statuses only).
    later = time.time() + 60
    settle = store.runs_to_settle(later - 30, later)
    assert sorted(r["id"] for r, _ in settle) == sorted(r["id"] for r in (mine, cancelling, other, parked))
    beats = {r["id"]: beat for r, beat in settle}
    assert beats[other["id"]] == pytest.approx(before)

    # The sweep's write: only while the lease is still stale.
    assert not store.save_run(
        {**mine, "status": "failed"}, expect=("in_progress",), stale_before=time.time() - 30
    )
    assert store.save_run({**mine, "status": "failed"}, expect=("in_progress",), stale_before=later - 30)


def test_runs_without_a_lease_count_from_creation(store: Store) -> None:
    """Rows written before the 0003 migration (no worker, no heartbeat): their lease is their
    creation time, so a run left active by an old version is settled like any orphan."""
    thread = thread_obj()
    store.insert("thread", thread)
    run = {**run_obj(thread["id"], "in_progress"), "created_at": now() - 100}
    store.insert("thread.run", run)  # no lease
    assert store.run_lease(run["id"]) == {
        "status": "in_progress",
        "worker": None,
        "heartbeat_at": run["created_at"],
    }
    assert [r["id"] for r, _ in store.runs_to_settle(time.time() - 30, time.time())] == [run["id"]]


def test_upgrade_keeps_rows_and_adds_leases(db: Any) -> None:
    """A database made by a version before 0003, with a run still active: the upgrade keeps it,
    and it counts as orphaned from its creation time."""
    from sqlalchemy import inspect

    from tests.store.old_databases import add_rows, build, connected, object_row

    build(db, "0002_api_keys")
    thread = thread_obj()
    run = {**run_obj(thread["id"], "in_progress"), "created_at": now() - 100, "expires_at": now() + 500}
    add_rows(db, [("threads", object_row(thread)), ("runs", object_row(run))])
    with connected(db) as old:
        assert "worker" not in {c["name"] for c in inspect(old).get_columns("runs")}

    new = Store(db)
    try:
        assert {"worker", "heartbeat_at", "expires_at"} <= {
            c["name"] for c in inspect(new.engine).get_columns("runs")
        }
        assert new.get("thread.run", run["id"]) == run
        lease = new.run_lease(run["id"])
        assert lease == {"status": "in_progress", "worker": None, "heartbeat_at": run["created_at"]}
        assert [r["id"] for r, _ in new.runs_to_settle(time.time() - 30, time.time())] == [run["id"]]
    finally:
        new.close()


def _file_obj(name: str = "big.bin") -> dict[str, Any]:
    return {
        "id": new_id("file"),
        "object": "file",
        "created_at": now(),
        "filename": name,
        "purpose": "assistants",
    }


def test_file_bytes_are_stored_and_read_in_chunks(store: Store, tmp_path: Path) -> None:
    """An upload is copied from its (spooled) file a chunk at a time and read back the same
    way, so neither needs the file in memory whole; the chunks join to the original bytes."""
    from assistant_kit.store.schema import CHUNK_BYTES

    blob = bytes(range(256)) * (CHUNK_BYTES // 256) * 2 + b"tail"  # two full chunks and a bit
    path = tmp_path / "upload.bin"
    path.write_bytes(blob)
    obj = _file_obj()
    with path.open("rb") as source:
        store.insert_file(obj, source, owner="alice")
    chunks = []
    while (chunk := store.file_chunk(obj["id"], len(chunks))) is not None:
        chunks.append(chunk)
    assert [len(c) for c in chunks] == [CHUNK_BYTES, CHUNK_BYTES, 4]
    assert b"".join(chunks) == blob == store.file_content(obj["id"])
    assert store.delete_file(obj["id"])
    assert store.file_chunk(obj["id"], 0) is None and store.file_content(obj["id"]) is None


def test_upgrade_moves_file_bytes_into_chunks(db: Any) -> None:
    """A database made before 0005 keeps its files: each one's single-row bytes are moved into
    chunks, and the old table goes."""
    import json

    from sqlalchemy import inspect

    from assistant_kit.store import schema
    from tests.store.old_databases import add_rows, build

    build(db, "0004_files")
    blob = b"\x00\xff" * (schema.CHUNK_BYTES // 2 + 10)  # one chunk and 20 bytes
    files = {_file_obj("a.bin")["id"]: blob, _file_obj("b.bin")["id"]: b"small"}
    rows: list[tuple[str, dict[str, Any]]] = []
    for file_id, content in files.items():
        data = json.dumps({**_file_obj(), "id": file_id, "bytes": len(content)})
        row = {
            "id": file_id,
            "owner": "alice",
            "created_at": now(),
            "purpose": "assistants",
            "data": data,
        }
        rows += [("files", row), ("file_contents", {"id": file_id, "content": content})]
    add_rows(db, rows)

    new = Store(db)
    try:
        assert "file_contents" not in inspect(new.engine).get_table_names()
        for file_id, content in files.items():
            assert new.file_content(file_id) == content
        first = next(iter(files))
        assert len(new.file_chunk(first, 0) or b"") == schema.CHUNK_BYTES
        assert new.file_chunk(first, 1) == blob[schema.CHUNK_BYTES :]
    finally:
        new.close()
