"""PostgreSQL for tests: a fresh database per test on the server named by an environment variable.

``ASSISTANT_KIT_TEST_PG_URL`` (``scripts/start_postgres.sh`` starts a local server and prints
it; CI always sets it) names a server and a database the tests may connect to as a user
allowed to create databases. Each test that takes ``pg_url`` gets a database of its own,
created empty and dropped afterwards, so migrations run from scratch and tests cannot see
each other's rows or notifications' effects. Without the variable those tests are skipped,
with the reason.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PG_ENV = "ASSISTANT_KIT_TEST_PG_URL"
SKIP_REASON = f"{PG_ENV} is not set (scripts/start_postgres.sh starts a server and prints its URL)"


def server_url() -> str | None:
    return os.environ.get(PG_ENV) or None


def _conninfo(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def fresh_database() -> Iterator[str]:
    """Create an empty database on the test server; yield its ``postgresql://`` URL; drop it."""
    base = server_url()
    if base is None:
        pytest.skip(SKIP_REASON)
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"ak_test_{secrets.token_hex(6)}"
    admin = _conninfo(base)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database (skips without ``ASSISTANT_KIT_TEST_PG_URL``)."""
    with fresh_database() as url:
        yield url


def query(url: str, sql: str, *params: object) -> list[tuple[object, ...]]:
    """Rows of one statement, on a connection of its own (to look behind the store's back)."""
    import psycopg

    with psycopg.connect(_conninfo(url), autocommit=True) as conn:
        cur = conn.execute(sql, params or None)
        return cur.fetchall() if cur.description else []
