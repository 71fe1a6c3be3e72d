"""Migrations against the current tables: they cannot drift, and every old database upgrades.

A database built by the migrations and one built from :mod:`assistant_kit.store.schema`
(``metadata.create_all``) must reflect the same — so a change to a current ``Table`` without
its migration (or the reverse) fails here. And a database as each older version left it (the
migrations up to that step, rows written in that version's shape) opens with today's
:class:`Store` in the current shape with every row readable. Both on SQLite and PostgreSQL
(skipped without ``ASSISTANT_KIT_TEST_PG_URL``).
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from assistant_kit._ids import new_id, now
from assistant_kit.store import Store, migrations, schema
from assistant_kit.store.inspection import Filters, InspectionTables
from assistant_kit.store.sql import RUN_TIMINGS, STEP_TIMINGS
from tests.postgres import fresh_database
from tests.store.old_databases import add_rows, build, connected, object_row, shape

pytestmark = pytest.mark.timeout(120)

STEPS = [name for name, _ in migrations.MIGRATIONS]


@pytest.fixture(params=["sqlite", "postgresql"])
def new_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """Makes empty databases of one backend: SQLite files, or fresh PostgreSQL databases."""
    numbers = itertools.count()
    with ExitStack() as stack:

        def make() -> Any:
            if request.param == "sqlite":
                return tmp_path / f"db{next(numbers)}.db"
            return stack.enter_context(fresh_database())

        yield make


def declared(db: Any) -> Any:
    """``db`` with the current tables created straight from :mod:`schema`."""
    with connected(db) as engine:
        schema.metadata.create_all(engine)
    return db


def test_current_tables_are_what_the_migrations_build(new_db: Callable[[], Any]) -> None:
    migrated = new_db()
    Store(migrated).close()
    expected = shape(declared(new_db()))
    assert shape(migrated) == expected
    # Besides the declared tables: SQLite's FTS5 keyword index (a virtual table and its
    # shadow tables), which schema.py creates as DDL after vector_store_chunks.
    keyword_index = {t for t in expected if t.startswith("vector_store_chunks_fts")}
    assert bool(keyword_index) == isinstance(migrated, Path)  # a SQLite file
    assert set(expected) - keyword_index == set(schema.metadata.tables)
    assert {table.name for table in schema.TABLES.values()} <= set(expected)


def test_migrations_never_use_the_current_tables() -> None:
    """Each step carries its own copy of what it creates: the module imports nothing of the
    kit (SQLAlchemy only), so editing a current table cannot change what an old step does."""
    KIT = "assistant_kit"
    tree = ast.parse(Path(migrations.__file__).read_text())
    kit_imports = [
        ast.unparse(node)
        for node in ast.walk(tree)
        if (isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith(KIT)))
        or (isinstance(node, ast.Import) and any(a.name.startswith(KIT) for a in node.names))
    ]
    assert kit_imports == []


def test_migrate_upto_stops_after_the_named_step(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    build(db, "0002_api_keys")
    assert set(shape(db)) == {"assistants", "threads", "messages", "runs", "run_steps", "api_keys"}
    with connected(db) as engine, engine.begin() as conn:
        assert migrations.migrate(conn, upto="0002_api_keys") == []
        with pytest.raises(ValueError, match="no migration named"):
            migrations.migrate(conn, upto="0099_future")
        assert migrations.migrate(conn) == STEPS[2:]


@pytest.mark.parametrize("upto", STEPS)
def test_each_older_database_upgrades_keeping_its_rows(new_db: Callable[[], Any], upto: str) -> None:
    db = new_db()
    build(db, upto)
    tables = set(shape(db))
    assistant = {"id": new_id("asst"), "object": "assistant", "created_at": now(), "model": "test/echo"}
    thread = {"id": new_id("thread"), "object": "thread", "created_at": now(), "metadata": {}}
    run = {
        "id": new_id("run"),
        "object": "thread.run",
        "created_at": now() - 100,
        "thread_id": thread["id"],
        "assistant_id": assistant["id"],
        "model": "test/echo",
        "status": "in_progress",
        "expires_at": now() + 500,
    }
    message = {
        "id": new_id("msg"),
        "object": "thread.message",
        "created_at": now(),
        "thread_id": thread["id"],
        "run_id": run["id"],
        "role": "assistant",
        "content": [{"type": "text", "text": {"value": "kept", "annotations": []}}],
    }
    step = {
        "id": new_id("step"),
        "object": "thread.run.step",
        "created_at": now(),
        "thread_id": thread["id"],
        "run_id": run["id"],
        "assistant_id": assistant["id"],
        "type": "message_creation",
        "status": "completed",
    }
    rows = [
        ("assistants", object_row(assistant, "alice")),
        ("threads", object_row(thread, "alice")),
        ("messages", object_row(message, "alice")),
        ("runs", object_row(run, "alice")),
        ("run_steps", object_row(step, "alice")),
    ]
    key_hash = hashlib.sha256(b"sk-old").hexdigest()
    key_row = {"key_hash": key_hash, "owner": "user:bob", "key_alias": "old", "created_at": now()}
    key_row.update(expires_at=None, data='{"key_alias": "old"}')
    if "api_keys" in tables:
        rows.append(("api_keys", key_row))
    file = {"id": new_id("file"), "object": "file", "created_at": now(), "purpose": "assistants"}
    blob = b"\x00\xff" * (schema.CHUNK_BYTES // 2 + 10)  # one full chunk and 20 bytes
    if "files" in tables:
        rows.append(("files", {**object_row(file, "alice"), "thread_id": None, "call_id": None}))
    if "file_contents" in tables:
        rows.append(("file_contents", {"id": file["id"], "content": blob}))
    if "file_chunks" in tables:
        for seq, start in enumerate(range(0, len(blob), schema.CHUNK_BYTES)):
            rows.append(
                (
                    "file_chunks",
                    {"id": file["id"], "seq": seq, "data": blob[start : start + schema.CHUNK_BYTES]},
                )
            )
    add_rows(db, rows)

    store = Store(db)
    try:
        assert shape(db) == shape(declared(new_db()))
        assert store.get("assistant", assistant["id"], owner="alice") == assistant
        assert store.get("thread", thread["id"], owner="bob") is None
        assert store.list("thread", owner="alice").data == [thread]
        assert store.thread_messages(thread["id"]) == [message]
        assert store.list("thread.run.step", run_id=run["id"]).data == [step]
        assert store.get("thread.run", run["id"]) == run
        assert store.active_run_id(thread["id"]) == run["id"]
        lease = {"status": "in_progress", "worker": None, "heartbeat_at": run["created_at"]}
        assert store.run_lease(run["id"]) == lease
        assert [r["id"] for r, _ in store.runs_to_settle(time.time() - 30, time.time())] == [run["id"]]
        if "api_keys" in tables:
            assert store.get_api_key(key_hash) == key_row
        if "files" in tables:
            assert store.get("file", file["id"], owner="alice") == file
            assert store.file_content(file["id"]) == blob
            assert store.file_chunk(file["id"], 1) == blob[schema.CHUNK_BYTES :]
        # The inspector reads old rows: their timings unknown (None, never 0), the columns
        # the lists filter on filled in from each row's JSON.
        inspection = InspectionTables(store)
        unknown_run, unknown_step = dict.fromkeys(RUN_TIMINGS), dict.fromkeys(STEP_TIMINGS)
        assert inspection.list_runs(Filters(), owner="alice").data == [{**run, "timings": unknown_run}]
        selected = Filters(assistant_id=assistant["id"], model="test/echo", status=("in_progress",))
        assert [r["id"] for r in inspection.list_runs(selected).data] == [run["id"]]
        steps = inspection.list_steps(Filters(type="message_creation", status=("completed",)), owner="alice")
        assert steps.data == [{**step, "timings": unknown_step}]
        assert inspection.list_runs(Filters(), owner="bob").data == []
        assert inspection.inspection(run["id"]) == {
            "timings": unknown_run,
            "steps": [{"step_id": step["id"], "type": "message_creation", **unknown_step}],
            "prompts": [],
        }
        # and the upgraded rows take writes in the current shape
        assert store.save_run({**run, "status": "cancelled"}, expect=["in_progress"], claim="w1")
        assert store.run_lease(run["id"])["worker"] == "w1"  # type: ignore[index]
        assert store.active_run_id(thread["id"]) is None
    finally:
        store.close()
    with connected(db) as engine, engine.connect() as conn:
        assert sorted(row[0] for row in conn.execute(migrations.schema_migrations.select())) == STEPS
