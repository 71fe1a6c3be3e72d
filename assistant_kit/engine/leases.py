"""Sharing runs with other processes on one database: what this engine learns about the runs
it holds from the store (lease renewal), from the other replicas (the bus) and about the runs
nobody holds (the orphan sweep).

The rules are in :mod:`.runs` (its docstring: one executor per run named in the store, every
status change a compare-and-set); the two below are how an engine keeps them. This module
finds out and decides; the :class:`~.runs.RunExecutor` it is given makes the change (``stop``, ``forget``,
``apply_metadata``, ``settle``), so a run's state still changes only in runs.py.

- **Cancel across processes**: the cancelling process writes ``cancelling`` and tells the
  executor over the bus (instantly, on PostgreSQL); the executor also finds ``cancelling``
  when it renews its leases (seconds, on SQLite or if the message was lost). Either way the
  executor's task is cancelled and it writes ``cancelled`` as usual.
- **Orphans.** Every engine sweeps at startup and every ``sweep_seconds``: a queued or
  in-progress run whose lease is older than ``lease_seconds`` belongs to a process that died
  (killed, crashed, machine gone) and is marked ``failed`` (``server_error``, "the server
  executing this run stopped"); a ``cancelling`` one is marked ``cancelled`` (what its client
  asked for); a ``requires_action`` run past ``expires_at`` is marked ``expired``, as it is
  when read. A process frozen longer than the lease is treated as dead: its later writes are
  refused.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from .runs import TERMINAL

if TYPE_CHECKING:
    from ..store import AsyncStore
    from .runs import RunExecutor

log = logging.getLogger("assistant_kit.runs")

ORPHANED = "The server executing this run stopped (its lease was not renewed for {seconds:g} s)."


class Leases:
    """This engine's side of the lease protocol, run by its background services (``renew``
    every ``renew_seconds``, ``sweep`` every ``sweep_seconds``) and its bus (``remote``)."""

    def __init__(self, executor: RunExecutor, store: AsyncStore, lease_seconds: float):
        self.executor = executor
        self.store = store
        self.lease_seconds = lease_seconds

    def __repr__(self) -> str:
        return f"<Leases worker={self.executor.worker} lease_seconds={self.lease_seconds:g}>"

    def remote(self, message: dict[str, Any]) -> None:
        """A control message from another replica (see :mod:`assistant_kit.engine.bus`)."""
        executor = self.executor
        handle = executor.handles.get(message["r"])
        if handle is None:
            return
        kind = message["t"]
        if kind == "cancel" and handle.running:
            executor.stop(handle, "cancelled")
        elif kind in ("claimed", "settled") and not handle.running:
            executor.forget(handle.run["id"], handle)  # resumed or ended elsewhere: not parked here
        elif kind == "settled" and handle.stop_reason is None:
            executor.stop(handle, "lost")  # ended by another process (we were presumed dead)
        elif kind == "metadata" and handle.running:
            executor.apply_metadata(handle, message.get("metadata") or {})

    async def renew(self) -> None:
        """Renew the lease of every run this process executes (one UPDATE), and act on what the
        store says about them: ``cancelling`` written by another process cancels the task (the
        fallback when the bus message was missed, and the only way on SQLite); a run deleted or
        taken by another worker is abandoned without writing."""
        executor = self.executor
        ids = [run_id for run_id, handle in executor.handles.items() if handle.running]
        if not ids:
            return
        rows = await self.store.renew_leases(executor.worker, ids)
        for run_id in ids:
            handle = executor.handles.get(run_id)
            if handle is None or not handle.running or handle.stop_reason is not None:
                continue
            status, worker = rows.get(run_id, (None, None))
            if status is None or worker != executor.worker:
                executor.stop(handle, "lost")
            elif status == "cancelling":
                executor.stop(handle, "cancelled")

    async def sweep(self) -> int:
        """Settle runs nobody can be executing (see :mod:`.runs`); returns how many."""
        clock = time.time()
        stale_before = clock - self.lease_seconds
        settled = 0
        for run, beat in await self.store.runs_to_settle(stale_before, clock):
            if run["id"] in self.executor.handles:
                continue  # executing or parked here: renewed, or expired by our watchdog
            if run["status"] == "requires_action":
                result = await self.executor.settle(run, "expired")
            elif run["status"] == "cancelling":
                result = await self.executor.settle(run, "cancelled", stale_before=stale_before)
            else:
                message = ORPHANED.format(seconds=self.lease_seconds)
                error = {"code": "server_error", "message": message}
                result = await self.executor.settle(run, "failed", stale_before=stale_before, error=error)
                if result["status"] == "failed":
                    log.warning("run %s: no lease renewal for %.0f s; marked failed", run["id"], clock - beat)
            settled += result["status"] in TERMINAL
        return settled
