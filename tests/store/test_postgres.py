"""The store on PostgreSQL specifically: migrations from several processes at once, the schema
they leave, URL forms. (The behaviour tests in test_sql.py run on PostgreSQL too.)
Skipped without ``ASSISTANT_KIT_TEST_PG_URL``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from assistant_kit.store import Store, migrations
from tests.postgres import query

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]
MIGRATION_NAMES = [name for name, _ in migrations.MIGRATIONS]

STARTER = textwrap.dedent(
    """
    import sys, time
    from assistant_kit.store import Store

    url, start_at = sys.argv[1], float(sys.argv[2])
    while time.time() < start_at:  # all processes open the store at the same moment
        time.sleep(0.001)
    store = Store(url)
    store.ping()
    store.close()
    print("ok")
    """
)


def _schema(url: str) -> dict[str, Any]:
    tables = query(
        url, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
    )
    columns = query(
        url,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'runs'"
        " ORDER BY ordinal_position",
    )
    indexes = query(url, "SELECT indexname FROM pg_indexes WHERE tablename = 'runs' ORDER BY 1")
    return {
        "tables": [t for (t,) in tables],
        "runs": [c for (c,) in columns],
        "indexes": [i for (i,) in indexes],
        "migrations": [m for (m,) in query(url, "SELECT name FROM schema_migrations ORDER BY name")],
    }


def test_migrations_from_several_processes_at_once(pg_url: str) -> None:
    """Replicas starting together on a fresh database: no errors, one schema (the advisory lock
    makes them migrate one at a time; the others then find nothing to do)."""
    import time

    start_at = time.time() + 2.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", STARTER, pg_url, str(start_at)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=90) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == "ok"
    found = _schema(pg_url)
    assert found["migrations"] == MIGRATION_NAMES
    assert found["tables"] == [
        "api_keys",
        "assistants",
        "file_chunks",
        "files",
        "messages",
        "run_prompts",
        "run_steps",
        "runs",
        "schema_migrations",
        "threads",
        "vector_store_chunks",
        "vector_store_file_batches",
        "vector_store_files",
        "vector_store_index_stats",
        "vector_store_terms",
        "vector_stores",
    ]
    assert found["runs"] == [
        "id",
        "owner",
        "created_at",
        "thread_id",
        "status",
        "data",
        "worker",
        "heartbeat_at",
        "expires_at",
        "assistant_id",
        "model",
        "created_at_ms",
        "started_at_ms",
        "first_token_at_ms",
        "ended_at_ms",
    ]
    assert "ix_runs_lease" in found["indexes"]


def test_migrations_from_several_threads_at_once(pg_url: str) -> None:
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []
    stores: list[Store] = []

    def open_store() -> None:
        barrier.wait()
        try:
            stores.append(Store(pg_url))
        except BaseException as exc:  # asserted below
            errors.append(exc)

    workers = [threading.Thread(target=open_store) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    try:
        assert errors == []
        assert _schema(pg_url)["migrations"] == MIGRATION_NAMES
    finally:
        for s in stores:
            s.close()


def test_store_url_forms(pg_url: str) -> None:
    """``postgres://`` and ``postgresql://`` both mean psycopg 3; the password is not shown."""
    url = pg_url.replace("postgresql://", "postgres://", 1)
    store = Store(url)
    try:
        assert store.url.startswith("postgresql+psycopg://")
        assert not store.is_sqlite
        store.ping()
        assert "postgresql+psycopg://" in repr(store)
    finally:
        store.close()
