"""Vector stores: the Files → vector store → search half of the Assistants API.

The wire objects (``vector_store``, ``vector_store.file``, ``vector_store.files_batch``, the
search results page) are built here from the rows of :mod:`assistant_kit.store.vectors`;
ingestion runs in the background (:mod:`.vector_ingest`) and text extraction, chunking,
embeddings and the keyword + semantic index are :mod:`assistant_kit.retrieval`'s.

Decisions:

- **Counts are read, not kept**: ``file_counts``, ``usage_bytes`` and a store's ``status``
  (``in_progress`` while any file is, else ``completed``; ``expired`` past ``expires_at``) are
  counted from the file rows on every read, so replicas never disagree about them.
- **Expiry**: ``expires_after`` (anchor ``last_active_at``, 1 to 365 days) sets ``expires_at``;
  ``last_active_at`` moves when files are attached and when the store is searched. An expired
  store reads with ``status: "expired"`` and refuses new files and searches (400 naming
  ``vector_store_id``); it can still be listed, modified and deleted.
- **Attaching a file twice** replaces the earlier attachment (new attributes and chunking; it
  is ingested again). Deleting a File (``DELETE /files/{id}``) detaches it from every store.
- **Bad input stores nothing**: every file id is checked (exists, the caller's, not expired,
  not empty, within the Files API's size limit) before any row is written, and a batch's files
  and the batch are written in one transaction.
- **Filters** are evaluated against the files' current ``attributes`` (so an update applies to
  the next search at once); the index is searched within the files that pass and are
  ``completed``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from openai.types import VectorStore
from openai.types.vector_stores import VectorStoreFile, VectorStoreFileBatch

from .._ids import new_id, now
from ..errors import InvalidRequestError, NotFoundError
from ..store.vectors import AsyncVectorTables, VectorTables
from . import vector_checks as checks
from .shapes import build, expired, page_body
from .validation import list_params, validate_body

if TYPE_CHECKING:
    from ..store import AsyncStore, Store
    from .vector_ingest import Ingestor

DAY = 86_400
MAX_CREATE_FILES = 500
TOUCH_SECONDS = 60
MAX_BATCH_FILES = 2000
FILE_STATUS_FILTER = ("in_progress", "completed", "failed", "cancelled")


def _expires_at(expires_after: Mapping[str, Any] | None, active_at: int) -> int | None:
    return active_at + int(expires_after["days"]) * DAY if expires_after else None


class VectorStores:
    """The service behind the ``/vector_stores`` routes; one per engine, given what it uses:
    the store (async for objects and files; its vector store tables through
    :class:`AsyncVectorTables`; sync for the retrieval index), the Files API's size limit,
    and the engine's lease settings, which ingestion jobs share with runs."""

    def __init__(
        self,
        store: AsyncStore,
        sync_store: Store,
        max_file_bytes: int,
        worker_id: str,
        lease_seconds: float,
        renew_seconds: float,
    ):
        from .vector_ingest import Ingestor

        self.store = store
        self.sync_store = sync_store
        self.max_file_bytes = max_file_bytes
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self.tables = AsyncVectorTables(VectorTables(sync_store))
        self.ingestor: Ingestor = Ingestor(self)

    def __repr__(self) -> str:
        return f"<VectorStores {self.tables!r}>"

    # -- vector stores ------------------------------------------------------------------------

    async def _views(self, objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        counts = await self.tables.store_counts([o["id"] for o in objs]) if objs else {}
        moment = now()
        out = []
        for obj in objs:
            file_counts, usage = counts[obj["id"]]
            status = "in_progress" if file_counts["in_progress"] else "completed"
            if obj.get("expires_at") is not None and obj["expires_at"] <= moment:
                status = "expired"
            out.append({**obj, "file_counts": file_counts, "usage_bytes": usage, "status": status})
        return out

    async def _view(self, obj: dict[str, Any]) -> dict[str, Any]:
        return (await self._views([obj]))[0]

    async def _store(self, store_id: str, owner: str | None, *, usable: bool = False) -> dict[str, Any]:
        obj = await self.tables.get_store(store_id, owner)
        if obj is None:
            raise NotFoundError("vector store", store_id, param="vector_store_id")
        if usable and obj.get("expires_at") is not None and obj["expires_at"] <= now():
            raise InvalidRequestError(
                f"Vector store {store_id} has expired (expires_at {obj['expires_at']}); "
                "create a new one or delete it.",
                param="vector_store_id",
            )
        return obj

    async def touch(self, obj: dict[str, Any]) -> None:
        """The store was used: ``last_active_at`` (and the expiry it anchors) move to now —
        written at most once a minute, so searches are not each a write."""
        moment = now()
        if moment - (obj.get("last_active_at") or 0) < TOUCH_SECONDS:
            return
        await self.tables.touch_store(obj["id"], moment, _expires_at(obj.get("expires_after"), moment)
        )

    async def create(self, raw: dict[str, Any], owner: str | None) -> dict[str, Any]:
        body = validate_body("vector_store.create", raw)
        checks.expires_after(body.get("expires_after"))
        ids = checks.file_ids(body.get("file_ids"), "file_ids", MAX_CREATE_FILES)
        strategy = checks.chunking(body.get("chunking_strategy"))
        files = await self.attachable([(f, f"file_ids[{n}]") for n, f in enumerate(ids)], owner)
        created = now()
        obj = build(
            VectorStore,
            id=new_id("vs"),
            object="vector_store",
            created_at=created,
            name=body.get("name") or "",
            usage_bytes=0,
            file_counts={"in_progress": 0, "completed": 0, "failed": 0, "cancelled": 0, "total": 0},
            status="completed",
            last_active_at=created,
            metadata=body.get("metadata") or {},
            expires_after=body.get("expires_after"),
            expires_at=_expires_at(body.get("expires_after"), created),
        )
        rows = [self.file_row(obj["id"], f["id"], strategy, None) for f in files]
        await self.tables.insert_store(obj, owner, rows)
        if rows:
            self.ingestor.wake()
        return await self._view(obj)

    async def get(self, store_id: str, owner: str | None) -> dict[str, Any]:
        return await self._view(await self._store(store_id, owner))

    async def list(self, query: Mapping[str, str], owner: str | None) -> dict[str, Any]:

        page = await self.tables.list_stores(owner, **list_params(query))
        page.data = await self._views(page.data)
        return page_body(page)

    async def update(self, store_id: str, raw: dict[str, Any], owner: str | None) -> dict[str, Any]:
        body = validate_body("vector_store.update", raw)
        checks.expires_after(body.get("expires_after"))
        obj = await self._store(store_id, owner)
        if "name" in body:
            obj["name"] = body["name"] or ""
        if "metadata" in body:
            obj["metadata"] = body["metadata"] or {}
        if "expires_after" in body:
            obj["expires_after"] = body["expires_after"]
            obj["expires_at"] = _expires_at(body["expires_after"], obj.get("last_active_at") or now())
        await self.tables.put_store(obj)
        return await self._view(obj)

    async def delete(self, store_id: str, owner: str | None) -> dict[str, Any]:
        await self._store(store_id, owner)
        await self.tables.delete_store(store_id)
        await self.ingestor.forget_store(store_id)
        return {"id": store_id, "object": "vector_store.deleted", "deleted": True}

    async def resolve_tool_resources(
        self, resources: dict[str, Any], owner: str | None, where: str = ""
    ) -> None:
        """``tool_resources.file_search`` of an assistant or thread being written: each of its
        ``vector_store_ids`` must be a store of the caller (400 naming it), and the
        ``vector_stores`` helper (``[{file_ids, chunking_strategy, metadata}]``) creates that
        store, as the hosted API did, and is replaced by its id."""
        search = resources.get("file_search")
        if not isinstance(search, dict):
            return
        param = f"{where}tool_resources.file_search"
        ids = list(search.get("vector_store_ids") or [])
        helpers = search.get("vector_stores")
        if helpers is not None and ids:
            raise InvalidRequestError(
                f"Invalid '{param}': give 'vector_store_ids' or 'vector_stores', not both.",
                param=f"{param}.vector_stores",
            )
        for index, store_id in enumerate(ids):
            if await self.tables.get_store(store_id, owner) is None:
                name = f"{param}.vector_store_ids[{index}]"
                raise InvalidRequestError(
                    f"Invalid '{name}': no vector store found with id '{store_id}'.", param=name
                )
        if helpers is None:
            return
        if len(helpers) > 1:
            name = f"{param}.vector_stores"
            raise InvalidRequestError(
                f"Invalid '{name}': at most 1 vector store, got {len(helpers)}.", param=name
            )
        for index, helper in enumerate(helpers):
            body = {k: helper[k] for k in ("file_ids", "chunking_strategy", "metadata") if k in helper}
            try:
                made = await self.create(body, owner)
            except InvalidRequestError as exc:
                prefix = f"{param}.vector_stores[{index}]"
                exc.param = f"{prefix}.{exc.param}" if exc.param else prefix
                raise
            ids.append(made["id"])
        resources["file_search"] = {"vector_store_ids": ids}

    # -- files ------------------------------------------------------------------------------

    async def attachable(self, items: Sequence[tuple[str, str]], owner: str | None) -> list[dict[str, Any]]:
        """The File objects of ``items`` (``(file_id, param)``), each the caller's, present,
        non-empty and within the Files API's size limit — or a 400 naming the first bad one."""
        files = []
        limit = self.max_file_bytes
        for file_id, where in items:
            file = await self.store.get("file", file_id, owner)
            if file is None or expired(file):
                raise InvalidRequestError(
                    f"Invalid '{where}': no file found with id '{file_id}'.", param=where
                )
            if not file.get("bytes"):
                raise InvalidRequestError(f"Invalid '{where}': file '{file_id}' is empty.", param=where)
            if file["bytes"] > limit:
                raise InvalidRequestError(
                    f"Invalid '{where}': file '{file_id}' has {file['bytes']:,} bytes; the limit is "
                    f"{limit:,} bytes per file.",
                    param=where,
                )
            files.append(file)
        return files

    @staticmethod
    def file_row(
        store_id: str, file_id: str, strategy: dict[str, Any], attributes: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        return build(
            VectorStoreFile,
            id=file_id,
            object="vector_store.file",
            usage_bytes=0,
            created_at=now(),
            vector_store_id=store_id,
            status="in_progress",
            last_error=None,
            chunking_strategy=strategy,
            attributes=dict(attributes) if attributes is not None else {},
        )

    async def create_file(self, store_id: str, raw: dict[str, Any], owner: str | None) -> dict[str, Any]:
        body = validate_body("vector_store.file.create", raw)
        checks.attributes(body.get("attributes"))
        strategy = checks.chunking(body.get("chunking_strategy"))
        store = await self._store(store_id, owner, usable=True)
        (file,) = await self.attachable([(body["file_id"], "file_id")], owner)
        row = self.file_row(store_id, file["id"], strategy, body.get("attributes"))
        await self.tables.insert_files([row], owner)
        await self.touch(store)
        self.ingestor.wake()
        return row

    async def _file(self, store_id: str, file_id: str, owner: str | None) -> dict[str, Any]:
        await self._store(store_id, owner)
        obj = await self.tables.get_file(store_id, file_id)
        if obj is None:
            raise NotFoundError("vector store file", file_id, param="file_id")
        return obj

    async def get_file(self, store_id: str, file_id: str, owner: str | None) -> dict[str, Any]:
        return await self._file(store_id, file_id, owner)

    async def update_file(
        self, store_id: str, file_id: str, raw: dict[str, Any], owner: str | None
    ) -> dict[str, Any]:
        body = validate_body("vector_store.file.update", raw)
        if "attributes" not in body:
            raise InvalidRequestError("Missing required parameter: 'attributes'.", param="attributes")
        checks.attributes(body["attributes"])
        await self._file(store_id, file_id, owner)
        obj = await self.tables.put_file_attributes(store_id, file_id, body["attributes"] or {})
        if obj is None:
            raise NotFoundError("vector store file", file_id, param="file_id")
        return obj

    async def delete_file(self, store_id: str, file_id: str, owner: str | None) -> dict[str, Any]:
        await self._file(store_id, file_id, owner)
        await self.tables.delete_file(store_id, file_id)
        await self.ingestor.forget_file(store_id, file_id)
        return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}

    async def list_files(
        self, store_id: str, query: Mapping[str, str], owner: str | None, batch_id: str | None = None
    ) -> dict[str, Any]:

        params = list_params(query, filters=("filter",))
        status = params.pop("filter", None)
        if status is not None and status not in FILE_STATUS_FILTER:
            raise InvalidRequestError(
                f"Invalid 'filter': expected one of {', '.join(FILE_STATUS_FILTER)}, got '{status}'.",
                param="filter",
            )
        await self._store(store_id, owner)
        if batch_id is not None:
            await self._batch(store_id, batch_id, owner)
        page = await self.tables.list_files(store_id, status=status, batch_id=batch_id, **params)
        return page_body(page)

    async def file_content(self, store_id: str, file_id: str, owner: str | None) -> dict[str, Any]:
        """The file's text as extracted for indexing (one page)."""
        await self._file(store_id, file_id, owner)
        text = await self.ingestor.text_of(file_id, owner)
        return {
            "object": "vector_store.file_content.page",
            "data": [{"type": "text", "text": text}] if text else [],
            "has_more": False,
            "next_page": None,
        }

    async def file_deleted(self, file_id: str) -> None:
        """The Files API deleted ``file_id``: it leaves every vector store."""
        for store_id in await self.tables.detach_everywhere(file_id):
            await self.ingestor.forget_file(store_id, file_id)

    # -- file batches -----------------------------------------------------------------------

    async def _batch(self, store_id: str, batch_id: str, owner: str | None) -> dict[str, Any]:
        await self._store(store_id, owner)
        obj = await self.tables.get_batch(store_id, batch_id)
        if obj is None:
            raise NotFoundError("vector store file batch", batch_id, param="batch_id")
        return obj

    async def _batch_view(self, obj: dict[str, Any]) -> dict[str, Any]:
        counts = await self.tables.batch_counts(obj["id"])
        if obj["status"] == "in_progress" and not counts["in_progress"]:
            await self.tables.settle_batch(obj["id"])
            obj = await self.tables.get_batch(obj["vector_store_id"], obj["id"]) or obj
        return {**obj, "file_counts": counts}

    async def create_batch(self, store_id: str, raw: dict[str, Any], owner: str | None) -> dict[str, Any]:
        body = validate_body("vector_store.file_batch.create", raw)
        if body.get("file_ids") is not None and body.get("files") is not None:
            raise InvalidRequestError(
                "'file_ids' and 'files' are mutually exclusive: give one of them.", param="files"
            )
        specs: list[tuple[str, Any, Any, str]] = []
        if body.get("files") is not None:
            items = list(body["files"])
            if not items or len(items) > MAX_BATCH_FILES:
                raise InvalidRequestError(
                    f"Invalid 'files': expected 1 to {MAX_BATCH_FILES} files, got {len(items)}.",
                    param="files",
                )
            checks.file_ids([i["file_id"] for i in items], "files", MAX_BATCH_FILES)
            for index, item in enumerate(items):
                checks.attributes(item.get("attributes"), f"files[{index}].attributes")
                strategy = checks.chunking(item.get("chunking_strategy"), f"files[{index}].chunking_strategy")
                specs.append((item["file_id"], strategy, item.get("attributes"), f"files[{index}].file_id"))
        elif body.get("file_ids") is not None:
            ids = checks.file_ids(body["file_ids"], "file_ids", MAX_BATCH_FILES)
            if not ids:
                raise InvalidRequestError(
                    "Invalid 'file_ids': expected at least one file id.", param="file_ids"
                )
            checks.attributes(body.get("attributes"))
            strategy = checks.chunking(body.get("chunking_strategy"))
            specs = [(i, strategy, body.get("attributes"), f"file_ids[{n}]") for n, i in enumerate(ids)]
        else:
            raise InvalidRequestError(
                "Missing required parameter: 'file_ids' (or 'files').", param="file_ids"
            )
        store = await self._store(store_id, owner, usable=True)
        await self.attachable([(file_id, param) for file_id, _, _, param in specs], owner)
        batch = build(
            VectorStoreFileBatch,
            id=new_id("vsfb"),
            object="vector_store.files_batch",
            created_at=now(),
            vector_store_id=store_id,
            status="in_progress",
            file_counts={"in_progress": 0, "completed": 0, "failed": 0, "cancelled": 0, "total": 0},
        )
        rows = [self.file_row(store_id, f, s, a) for f, s, a, _ in specs]
        await self.tables.insert_files(rows, owner, batch)
        await self.touch(store)
        self.ingestor.wake()
        return await self._batch_view(batch)

    async def get_batch(self, store_id: str, batch_id: str, owner: str | None) -> dict[str, Any]:
        return await self._batch_view(await self._batch(store_id, batch_id, owner))

    async def cancel_batch(self, store_id: str, batch_id: str, owner: str | None) -> dict[str, Any]:
        obj = await self._batch(store_id, batch_id, owner)
        if obj["status"] == "in_progress":
            await self.tables.cancel_batch(store_id, batch_id)
        obj = await self.tables.get_batch(store_id, batch_id) or obj
        return await self._batch_view(obj)

    # -- search ---------------------------------------------------------------------------------

    async def search(self, store_id: str, raw: dict[str, Any], owner: str | None) -> dict[str, Any]:
        from ..retrieval.search import to_page, validate_query, validate_search_options

        body = validate_body("vector_store.search", raw)
        queries = validate_query(body["query"])
        limit, threshold, rewrite = validate_search_options(
            body.get("max_num_results", 10),
            (body.get("ranking_options") or {}).get("score_threshold", 0.0),
            body.get("rewrite_query", False),
        )
        wanted = body.get("filters")
        if wanted is not None:
            checks.check_filter(wanted)
        store = await self._store(store_id, owner, usable=True)
        scope: list[str] | None = None  # None: every chunk of the store
        if wanted is not None:
            completed = await self.tables.completed_files(store_id)
            scope = [f for f, obj in completed.items() if checks.matches(wanted, obj.get("attributes"))]
        else:
            counts, _ = (await self.tables.store_counts([store_id]))[store_id]
            if counts["completed"] != counts["total"]:  # only completed files' chunks count
                completed = await self.tables.completed_files(store_id)
                scope = list(completed)
        results = await self.ingestor.search(store_id, queries, scope, limit, threshold, rewrite)
        hit_ids = [h.file_id for h in results.hits]
        found = await self.tables.files_by_ids(store_id, hit_ids)
        names = await self._filenames(hit_ids)
        files = {
            f: (names.get(f, ""), obj.get("attributes"))
            for f, obj in found.items()
            if obj["status"] == "completed"
        }
        await self.touch(store)
        return to_page(results, files)

    async def _filenames(self, file_ids: Sequence[str]) -> dict[str, str]:
        names: dict[str, str] = {}
        for file_id in dict.fromkeys(file_ids):
            file = await self.store.get("file", file_id)
            names[file_id] = file["filename"] if file else ""
        return names
