"""Files attached to messages for ``file_search``, and the stores a run searches being ready.

**Attachments.** A message's ``attachments`` entry whose ``tools`` include ``file_search``
puts its file in the thread's own vector store, as the hosted API did: the store named in
the thread's ``tool_resources.file_search.vector_store_ids`` is extended, or, when the thread
has none (or it was deleted, or has expired), a new store is created —
named ``"<thread id> attachments"``, expiring 7 days after its last activity
(``expires_after: {"anchor": "last_active_at", "days": 7}``) — and the thread's
``tool_resources`` name it from then on. This happens for messages created on their own,
with a thread (``threads.create``, ``threads.create_and_run``) and as a run's
``additional_messages``.

Bad input stores nothing: every attached file is checked (:meth:`Attach.prepare`: the
caller's, live, non-empty, within the size limit; a 400 naming
``…attachments[i].file_id``) before anything is written; the files go into the store only
once the messages themselves are stored (:meth:`Attach.apply`), so a refused message (a thread
with an active run) leaves no store behind either, and a refused ``create_and_run`` deletes
the stores it made (``engine/core.py``). Files attached at the same moment by several requests
(or replicas) to a thread without a store end up in one store (:meth:`Attach.apply`).

**Ready stores.** Before a run's first model turn, :func:`stores_ready` waits for the
ingestion of the files still ``in_progress`` in the assistant's and the thread's stores — up
to :data:`WAIT_SECONDS` (60 s, as the hosted API waited; env
``ASSISTANT_KIT_STORE_WAIT_SECONDS``). Past that, the run goes on and searches what is ready
(a warning is logged). A store that has expired fails the run (``last_error.code``
``server_error``, the spec's code for a failure that is neither a rate limit nor the prompt;
the message names the store and says how to recover).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._ids import now
from . import vector_checks as checks
from .shapes import named_stores

if TYPE_CHECKING:
    from ..store import AsyncStore
    from .vector_stores import VectorStores

log = logging.getLogger("assistant_kit.attachments")

THREAD_STORE_DAYS = 7
WAIT_SECONDS = 60.0
POLL_SECONDS = 0.2


def searched_files(messages: Sequence[Mapping[str, Any]], where: str) -> list[tuple[str, str]]:
    """The ``(file_id, param)`` of each attachment of ``messages`` (the request's list at
    ``where``; "" for one message) that asks for ``file_search``, each file once."""
    found: dict[str, str] = {}
    for m, message in enumerate(messages):
        prefix = f"{where}[{m}]." if where else ""
        for a, attachment in enumerate(message.get("attachments") or []):
            tools = attachment.get("tools") or []
            if any(isinstance(t, Mapping) and t.get("type") == "file_search" for t in tools):
                file_id = attachment.get("file_id")
                if isinstance(file_id, str) and file_id not in found:
                    found[file_id] = f"{prefix}attachments[{a}].file_id"
    return [(file_id, param) for file_id, param in found.items()]


def thread_store_id(thread: Mapping[str, Any]) -> str | None:
    """The vector store named in ``thread``'s ``tool_resources`` (at most one), if any."""
    ids = named_stores(thread)
    return ids[0] if ids else None


@dataclass
class Attach:
    """Files to put in one thread's store: checked by :meth:`prepare`, written by :meth:`apply`."""

    vector_stores: VectorStores
    owner: str | None
    files: list[dict[str, Any]] = field(default_factory=list)
    store_id: str | None = None  # the thread's live store, to extend (None: create one)
    seen: str | None = None  # the store the thread named when prepared (None, or a dead one)

    @classmethod
    async def prepare(
        cls,
        vector_stores: VectorStores,
        thread: Mapping[str, Any],
        items: Sequence[tuple[str, str]],
        owner: str | None,
    ) -> Attach | None:
        """Check the files of ``items`` (``(file_id, param)``) and find the thread's store;
        None when there is nothing to attach. Writes nothing."""
        if not items:
            return None
        files = await vector_stores.attachable(items, owner)
        current = thread_store_id(thread)
        plan = cls(vector_stores, owner, files, seen=current)
        if current is not None:
            obj = await vector_stores.tables.get_store(current, owner)
            if obj is not None and (obj.get("expires_at") is None or obj["expires_at"] > now()):
                plan.store_id = current
        return plan

    async def apply(self, store: AsyncStore, thread: dict[str, Any]) -> dict[str, Any]:
        """Put the files in the thread's store, created if need be; returns the thread as
        stored afterwards (``thread`` itself when it did not change).

        A new store is named in the thread by one locked read-modify-write
        (:meth:`Store.modify <assistant_kit.store.sql.Store.modify>`), and only if the thread
        still names what :meth:`prepare` saw: two requests attaching files at once to a
        thread without a store each create one, the first to name its store wins, and the
        other puts its files into the winner and deletes its own — one store, no file lost."""
        if self.store_id is not None:
            await self._extend(self.store_id)
            return thread
        made = await self.vector_stores.create(
            {
                "name": f"{thread['id']} attachments",
                "file_ids": [f["id"] for f in self.files],
                "expires_after": {"anchor": "last_active_at", "days": THREAD_STORE_DAYS},
            },
            self.owner,
        )

        def name_it(stored: dict[str, Any]) -> bool:
            if thread_store_id(stored) != self.seen:
                return False  # another request named a store first
            resources = dict(stored.get("tool_resources") or {})
            resources["file_search"] = {"vector_store_ids": [made["id"]]}
            stored["tool_resources"] = resources
            return True

        stored = await store.modify("thread", thread["id"], name_it)
        named = thread_store_id(stored) if stored is not None else None
        if named != made["id"]:
            if named is not None:
                await self._extend(named)
            await self.vector_stores.delete(made["id"], self.owner)
        return stored if stored is not None else thread

    async def _extend(self, store_id: str) -> None:
        """Add the files to the live store ``store_id`` (those not in it yet) and touch it."""
        vs = self.vector_stores
        strategy = checks.chunking(None)
        rows = [
            vs.file_row(store_id, f["id"], strategy, None)
            for f in self.files
            if await vs.tables.get_file(store_id, f["id"]) is None  # not ingested twice
        ]
        if rows:
            await vs.tables.insert_files(rows, self.owner)
        obj = await vs.tables.get_store(store_id, self.owner)
        if obj is not None:
            await vs.touch(obj)
        vs.ingestor.wake()


def _wait_seconds() -> float:
    text = os.environ.get("ASSISTANT_KIT_STORE_WAIT_SECONDS")
    return float(text) if text else WAIT_SECONDS


async def stores_ready(
    vector_stores: VectorStores | None, store: AsyncStore, run: Mapping[str, Any]
) -> str | None:
    """Before a run's first turn: wait for the files still being ingested into the stores
    its ``file_search`` searches (the assistant's and the thread's), up to
    :data:`WAIT_SECONDS`. Returns why the run must fail (a store has expired), else None."""
    if vector_stores is None or not any(t.get("type") == "file_search" for t in run.get("tools") or []):
        return None
    named: list[tuple[str, str]] = []
    for kind, object_id in (("assistant", run["assistant_id"]), ("thread", run["thread_id"])):
        obj = await store.get(kind, object_id)
        store_id = thread_store_id(obj) if obj else None
        if store_id is not None:
            named.append((kind, store_id))
    live: list[str] = []
    for kind, store_id in named:
        obj = await vector_stores.tables.get_store(store_id, None)
        if obj is None:
            continue  # deleted: file_search finds nothing in it
        if obj.get("expires_at") is not None and obj["expires_at"] <= now():
            return (
                f"The {kind}'s vector store {store_id} has expired (expires_at {obj['expires_at']}), "
                f"so file_search cannot search it. Create a new vector store and name it in the "
                f"{kind}'s tool_resources.file_search.vector_store_ids."
            )
        live.append(store_id)
    if not live:
        return None
    deadline = time.monotonic() + _wait_seconds()
    while True:
        counts = await vector_stores.tables.store_counts(live)
        waiting = [s for s in live if counts[s][0]["in_progress"]]
        if not waiting:
            return None
        if time.monotonic() >= deadline:
            log.warning(
                "run %s: vector store(s) %s still ingesting after %.0f s; searching what is ready",
                run["id"],
                ", ".join(waiting),
                _wait_seconds(),
            )
            return None
        await asyncio.sleep(POLL_SECONDS)


__all__ = ["THREAD_STORE_DAYS", "WAIT_SECONDS", "Attach", "searched_files", "stores_ready", "thread_store_id"]
