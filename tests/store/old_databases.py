"""Databases as an older version left them, for the upgrade tests.

:func:`build` applies the migrations up to a named step (exactly what that version did) and
:func:`add_rows` writes rows into the tables the database has *then*, found by reflection —
never through the current :mod:`assistant_kit.store.schema`, whose shape an old database
does not have. :func:`shape` is what the comparisons compare: every table's columns (name,
type, nullability, in order), primary key and indexes, as SQLAlchemy reflects them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import MetaData, create_engine, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.types import NullType

from assistant_kit.store.migrations import migrate
from assistant_kit.store.sql import database_url


@contextmanager
def connected(db: Any) -> Iterator[Engine]:
    """A plain SQLAlchemy engine on ``db`` (a SQLite path or a PostgreSQL URL), disposed after."""
    engine = create_engine(database_url(db))
    try:
        yield engine
    finally:
        engine.dispose()


def build(db: Any, upto: str) -> None:
    """Make ``db`` what a version whose last migration was ``upto`` left behind."""
    with connected(db) as engine, engine.begin() as conn:
        migrate(conn, upto=upto)


def object_row(obj: dict[str, Any], owner: str | None = None) -> dict[str, Any]:
    """The column values a version stored for a wire object: its JSON in ``data`` and its
    top-level fields under their own names (:func:`add_rows` keeps those the table has)."""
    return {**obj, "owner": owner, "data": json.dumps(obj)}


def add_rows(db: Any, rows: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Insert ``(table name, values)`` rows, keeping the values the table has columns for."""
    with connected(db) as engine:
        metadata = MetaData()
        metadata.reflect(engine)
        with engine.begin() as conn:
            for name, values in rows:
                table = metadata.tables[name]
                conn.execute(table.insert().values({k: v for k, v in values.items() if k in table.c}))


def _type_name(type_: Any, dialect: Any) -> str:
    """A column type as the dialect writes it; an untyped column (an FTS5 virtual table's)
    by its class name."""
    if isinstance(type_, NullType):
        return "NullType"
    return str(type_.compile(dialect=dialect))


def shape(db: Any, *, skip: Sequence[str] = ("schema_migrations",)) -> dict[str, Any]:
    """Every table's reflected columns, primary key and indexes (``skip``: tables left out)."""
    with connected(db) as engine:
        found = inspect(engine)
        return {
            table: {
                "columns": [
                    (c["name"], _type_name(c["type"], engine.dialect), c["nullable"])
                    for c in found.get_columns(table)
                ],
                "primary_key": found.get_pk_constraint(table)["constrained_columns"],
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in found.get_indexes(table)
                ),
                "foreign_keys": found.get_foreign_keys(table),
                "unique": found.get_unique_constraints(table),
            }
            for table in sorted(found.get_table_names())
            if table not in skip
        }
