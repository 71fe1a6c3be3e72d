"""The inspector's reads and the prompt records: millisecond timings of runs and steps, the
requests a run sent its model, and runs and steps listed across the whole store.

Kept beside :mod:`.sql` (one :class:`InspectionTables` over a :class:`~.sql.Store`, like
:mod:`.vectors`) so the object store stays about objects. The timings themselves are written
by the store's object writes (``marks``, see :data:`~.sql.Mark`), in the transaction that
changes the object's state; this module only reads them. NULL is unknown (a row written
before the columns existed, a thread imported rather than run here) and is returned as None,
never as 0.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update

from . import schema
from .sql import RUN_TIMINGS, STEP_TIMINGS, OnStoreWorker, OnWorker, Page, cursor_page

if TYPE_CHECKING:
    from .sql import Store


@dataclass(frozen=True)
class Filters:
    """What ``GET /runs`` and ``GET /runs/steps`` select (None: any). ``status`` is a set of
    statuses; ``created_after`` is inclusive and ``created_before`` exclusive (Unix seconds);
    ``model`` is the run's (for steps: the run they belong to)."""

    assistant_id: str | None = None
    thread_id: str | None = None
    run_id: str | None = None
    status: tuple[str, ...] | None = None
    model: str | None = None
    type: str | None = None
    created_after: int | None = None
    created_before: int | None = None


def _timings(row: Any, names: Sequence[str]) -> dict[str, int | None]:
    return {name: (None if row[name] is None else int(row[name])) for name in names}


class InspectionTables:
    """Prompt records and the inspector's reads, each one transaction, on ``store``'s
    connections. Synchronous like :class:`~.sql.Store`; the engine runs them on the store's
    executor."""

    def __init__(self, store: Store):
        self.store = store

    def __repr__(self) -> str:
        return f"<InspectionTables {self.store!r}>"

    # -- prompts ---------------------------------------------------------------------------

    def record_prompt(
        self,
        run_id: str,
        thread_id: str,
        created_at_ms: int,
        model: str | None,
        request: str,
        size: int,
        truncated: bool,
    ) -> int:
        """Store one model request of a run (``request``: its JSON, ``size`` bytes); returns its
        turn, 0-based within the run (one executor per run, so turns never race)."""
        table = schema.run_prompts
        with self.store._write() as conn:
            turn = conn.execute(
                select(func.coalesce(func.max(table.c.turn) + 1, 0)).where(table.c.run_id == run_id)
            ).scalar_one()
            conn.execute(
                table.insert().values(
                    run_id=run_id,
                    turn=turn,
                    thread_id=thread_id,
                    step_ids="[]",
                    created_at_ms=created_at_ms,
                    model=model,
                    request=request,
                    bytes=size,
                    truncated=truncated,
                )
            )
        return int(turn)

    def prompt_steps(self, run_id: str, turn: int, step_ids: Sequence[str]) -> None:
        """The steps a recorded turn produced."""
        table = schema.run_prompts
        with self.store._write() as conn:
            conn.execute(
                update(table)
                .where(table.c.run_id == run_id, table.c.turn == turn)
                .values(step_ids=json.dumps(list(step_ids)))
            )

    # -- one run ---------------------------------------------------------------------------

    def inspection(self, run_id: str) -> dict[str, Any] | None:
        """A run's timings, its steps' timings (creation order) and its recorded prompts (turn
        order), read in one transaction; None if there is no such run."""
        runs, steps, prompts = schema.runs, schema.run_steps, schema.run_prompts
        with self.store._read() as conn:
            row = conn.execute(select(*(runs.c[n] for n in RUN_TIMINGS)).where(runs.c.id == run_id))
            timings = row.mappings().first()
            if timings is None:
                return None
            step_rows = conn.execute(
                select(steps.c.id, steps.c.type, *(steps.c[n] for n in STEP_TIMINGS))
                .where(steps.c.run_id == run_id)
                .order_by(steps.c.id)
            ).mappings()
            step_list = [
                {"step_id": r["id"], "type": r["type"], **_timings(r, STEP_TIMINGS)} for r in step_rows
            ]
            prompt_rows = conn.execute(
                select(prompts).where(prompts.c.run_id == run_id).order_by(prompts.c.turn)
            ).mappings()
            prompt_list = [
                {
                    "turn": int(r["turn"]),
                    "step_ids": json.loads(r["step_ids"]),
                    "created_at_ms": int(r["created_at_ms"]),
                    "model": r["model"],
                    "request": json.loads(r["request"]),
                    "truncated": bool(r["truncated"]),
                    "bytes": int(r["bytes"]),
                }
                for r in prompt_rows
            ]
        return {"timings": _timings(timings, RUN_TIMINGS), "steps": step_list, "prompts": prompt_list}

    # -- across the store --------------------------------------------------------------------

    def list_runs(
        self,
        filters: Filters,
        *,
        limit: int = 20,
        order: str = "desc",
        after: str | None = None,
        before: str | None = None,
        owner: str | None = None,
    ) -> Page:
        """Runs of every thread ``owner`` may see, paged by id as every list is; each item is
        the wire Run plus ``"timings"``."""
        runs = schema.runs
        conds = self._common(runs, filters)
        if filters.model is not None:
            conds.append(runs.c.model == filters.model)
        if (mine := self.store._owner_condition(runs, owner)) is not None:
            conds.append(mine)
        query = select(runs.c.data, *(runs.c[n] for n in RUN_TIMINGS))
        return self._page(query, runs.c.id, conds, RUN_TIMINGS, limit, order, after, before)

    def list_steps(
        self,
        filters: Filters,
        *,
        limit: int = 20,
        order: str = "desc",
        after: str | None = None,
        before: str | None = None,
        owner: str | None = None,
    ) -> Page:
        """Run steps of every run ``owner`` may see (ownership and ``model`` are the run's: a
        step is stored without an owner), paged by step id; items are wire RunSteps plus
        ``"timings"``."""
        steps, runs = schema.run_steps, schema.runs
        conds = self._common(steps, filters)
        if filters.type is not None:
            conds.append(steps.c.type == filters.type)
        if filters.run_id is not None:
            conds.append(steps.c.run_id == filters.run_id)
        if filters.model is not None:
            conds.append(runs.c.model == filters.model)
        if (mine := self.store._owner_condition(runs, owner)) is not None:
            conds.append(mine)
        query = select(steps.c.data, *(steps.c[n] for n in STEP_TIMINGS)).select_from(
            steps.join(runs, runs.c.id == steps.c.run_id)
        )
        return self._page(query, steps.c.id, conds, STEP_TIMINGS, limit, order, after, before)

    @staticmethod
    def _common(table: Any, filters: Filters) -> list[Any]:
        conds = []
        for name in ("assistant_id", "thread_id"):
            value = getattr(filters, name)
            if value is not None:
                conds.append(table.c[name] == value)
        if filters.status is not None:
            conds.append(table.c.status.in_(filters.status))
        if filters.created_after is not None:
            conds.append(table.c.created_at >= filters.created_after)
        if filters.created_before is not None:
            conds.append(table.c.created_at < filters.created_before)
        return conds

    def _page(
        self,
        query: Any,
        key: Any,
        conds: list[Any],
        names: Sequence[str],
        limit: int,
        order: str,
        after: str | None,
        before: str | None,
    ) -> Page:
        """One page by id cursor, as every list pages (:func:`~.sql.cursor_page`)."""
        with self.store._read() as conn:
            found, has_more = cursor_page(conn, query, key, conds, limit, order, after, before)
        rows = [
            {**json.loads(row._mapping["data"]), "timings": _timings(row._mapping, names)} for row in found
        ]
        return Page(rows, has_more)


class AsyncInspectionTables(OnStoreWorker[InspectionTables]):
    """Awaitable facade, built like :class:`~.sql.AsyncStore`: ``await tables.inspection(...)``
    runs ``InspectionTables.inspection`` on the store's worker thread(s). One line per
    operation; ``sync`` is the :class:`InspectionTables` itself."""

    def __init__(self, tables: InspectionTables):
        super().__init__(tables, tables.store.executor)

    record_prompt = OnWorker(InspectionTables.record_prompt)
    prompt_steps = OnWorker(InspectionTables.prompt_steps)
    inspection = OnWorker(InspectionTables.inspection)
    list_runs = OnWorker(InspectionTables.list_runs)
    list_steps = OnWorker(InspectionTables.list_steps)
