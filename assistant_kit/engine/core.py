"""The engine: every Assistants operation, transport-free.

Routes (``app.py``) parse HTTP and call these methods; the in-process client and the
proxy reach the same routes, so there is one code path. Methods take validated wire
dicts and return wire dicts built from ``openai.types.beta`` models. ``owner`` scopes
objects to an API key (None = single-user local mode, sees everything; the master key also
sees the unowned objects local sessions made — the store decides, in
``Store._owner_condition``). ``settings`` carries per-request model credentials that live
only in memory, never in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import secrets
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from openai.types.beta import Assistant, Thread

from .._ids import new_id, now
from ..errors import AssistantKitError, InvalidRequestError, NotFoundError
from ..models.registry import resolve_model
from ..models.settings import ProviderSettings
from ..store import AsyncStore, Store
from ..tools.code_interpreter import CodeInterpreter, CodeInterpreterSettings
from . import defaults, exits, run_requests
from .attachments import Attach, searched_files
from .events import EventHub, Subscription
from .files import Files
from .inspection import Inspection
from .leases import Leases
from .prompts import PromptRecorder, max_bytes_setting, record_setting
from .references import check_messages, check_references
from .runs import TERMINAL, RunExecutor
from .shapes import build, deleted, named_stores, new_message, page_body
from .vector_stores import VectorStores

if TYPE_CHECKING:
    from .bus import PgBus

log = logging.getLogger("assistant_kit.engine")

_KIND_NAMES = {
    "assistant": "assistant",
    "thread": "thread",
    "thread.message": "message",
    "thread.run": "run",
    "thread.run.step": "run step",
    "file": "file",
}


def _seconds(value: float | None, env: str, default: float) -> float:
    if value is not None:
        return float(value)
    text = os.environ.get(env)
    return float(text) if text else default


class Engine:
    """Owns the store, the event hub and the run executor; lives on one event loop.

    Several engines (processes) may share one database; see :mod:`assistant_kit.engine.runs`
    for how they divide the runs. ``worker_id`` names this engine in the runs it executes.
    ``lease_seconds`` (default 30, env ``ASSISTANT_KIT_RUN_LEASE_SECONDS``): a run whose
    executor has not renewed its lease for that long is orphaned. ``renew_seconds`` (default
    a sixth of the lease, env ``ASSISTANT_KIT_RUN_RENEW_SECONDS``) and ``sweep_seconds``
    (default a third, env ``ASSISTANT_KIT_RUN_SWEEP_SECONDS``): how often this engine renews
    its leases and looks for orphans. Environment variables, so a proxy's config
    (``environment_variables``) or a test can shorten them without new config keys.

    ``code_interpreter``: whether and how model-written code runs (off unless given; local
    sessions pass :meth:`CodeInterpreterSettings.local`, the proxy its config's section).
    ``max_file_bytes``: the Files API's per-file limit (see :mod:`assistant_kit.engine.files`).
    ``record_prompts`` (default on, env ``ASSISTANT_KIT_RECORD_PROMPTS=0`` turns it off) and
    ``prompt_record_max_bytes`` (default 262144): whether and how much of each model request
    is kept for the inspector (:mod:`assistant_kit.engine.prompts`).

    Background work (lease renewal, the orphan sweep, on PostgreSQL the bus) starts with
    :meth:`start` — called by the ASGI app on its first request and by the proxy at startup —
    on the loop that serves the engine, and stops with :meth:`aclose`.

    At interpreter exit, and when its store is closed, the engine stops in order
    (:meth:`shutdown`, see :mod:`.exits`): the runs it executes are settled ``failed`` saying
    why, before the store stops taking writes.
    """

    def __init__(
        self,
        store: Store,
        settings: ProviderSettings | None = None,
        *,
        run_expiry_seconds: int = 600,
        lease_seconds: float | None = None,
        renew_seconds: float | None = None,
        sweep_seconds: float | None = None,
        code_interpreter: CodeInterpreterSettings | None = None,
        max_file_bytes: int | None = None,
        record_prompts: bool | None = None,
        prompt_record_max_bytes: int | None = None,
    ):
        self.sync_store = store
        self.store = AsyncStore(store)
        self.settings = settings or ProviderSettings()
        self.run_expiry_seconds = run_expiry_seconds
        self.lease_seconds = _seconds(lease_seconds, "ASSISTANT_KIT_RUN_LEASE_SECONDS", 30.0)
        self.renew_seconds = _seconds(
            renew_seconds, "ASSISTANT_KIT_RUN_RENEW_SECONDS", self.lease_seconds / 6
        )
        self.sweep_seconds = _seconds(
            sweep_seconds, "ASSISTANT_KIT_RUN_SWEEP_SECONDS", self.lease_seconds / 3
        )
        host = socket.gethostname()[:32]
        self.worker_id = f"{host}:{os.getpid()}:{secrets.token_hex(4)}"
        self.hub = EventHub()
        self.files = Files(self.store, max_file_bytes)
        self.vector_stores = VectorStores(
            self.store,
            self.sync_store,
            self.files.max_bytes,
            self.worker_id,
            self.lease_seconds,
            self.renew_seconds,
        )
        self.code = CodeInterpreter(code_interpreter or CodeInterpreterSettings())
        self.prompts = PromptRecorder(
            self.store, record_setting(record_prompts), max_bytes_setting(prompt_record_max_bytes)
        )
        self.executor = RunExecutor(
            self.store,
            self.hub,
            self.worker_id,
            self.lease_seconds,
            self.code,
            self.files,
            vector_stores=self.vector_stores,
            prompts=self.prompts,
        )
        self.inspection = Inspection(self.store, self.executor, self.prompts)
        self.leases = Leases(self.executor, self.store, self.lease_seconds)
        self._starting: asyncio.Future[None] | None = None  # the start, once begun
        self._services: list[asyncio.Task[None]] = []
        self.bus: PgBus | None = None
        self.loop: asyncio.AbstractEventLoop | None = None  # the loop it was started on
        store.before_close(self.store_closing)
        exits.track(self)

    def __repr__(self) -> str:
        return f"<Engine store={self.sync_store!r} runs_in_flight={len(self.executor.handles)}>"

    # -- background work ------------------------------------------------------------------

    @property
    def started(self) -> bool:
        task = self._starting
        return task is not None and task.done() and not task.cancelled() and task.exception() is None

    async def start(self) -> None:
        """Start lease renewal, the orphan sweep (its first pass right away) and, on
        PostgreSQL, the bus. Idempotent; concurrent callers wait for the same start, and a
        failed start is retried by the next call."""
        task = self._starting
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = self._starting = asyncio.ensure_future(self._start())
        await asyncio.shield(task)

    async def _start(self) -> None:
        self.loop = asyncio.get_running_loop()
        if not self.sync_store.is_sqlite:
            from .bus import PgBus, conninfo

            bus = PgBus(
                conninfo(self.sync_store.engine.url),
                self.worker_id,
                self.hub.deliver_remote,
                self.leases.remote,
            )
            await bus.start()
            self.bus = self.hub.bus = bus
        self._services = [
            asyncio.create_task(self._every(self.sweep_seconds, self.leases.sweep), name="sweep"),
            asyncio.create_task(self._every(self.renew_seconds, self.leases.renew), name="renew"),
            asyncio.create_task(self.vector_stores.ingestor.work(), name="vector-ingest"),
        ]

    async def _every(self, interval: float, work: Any) -> None:
        while True:
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception:
                # The store was closed, or the interpreter is exiting (its thread pools then
                # refuse work while this daemon loop still runs): stop quietly.
                if self.store.closed:
                    return
                # The database may be briefly unreachable: try again next time.
                log.exception("background %s failed", getattr(work, "__name__", work))
            await asyncio.sleep(interval)

    async def shutdown(self, message: str, timeout: float | None = None) -> None:
        """Settle the runs executing here ``failed`` with ``message`` (waiting up to
        ``timeout`` seconds: :meth:`RunExecutor.shutdown`), then stop the background work.
        Called at interpreter exit and when the store closes (:mod:`.exits`)."""
        await self.executor.shutdown(message, timeout)
        await self.aclose()

    def store_closing(self) -> None:
        """The store is about to close (:meth:`Store.close`, any thread): shut down first."""
        exits.stop([self], exits.STORE_CLOSED)

    async def aclose(self) -> None:
        """Stop the background work (runs still executing are the caller's business)."""
        for task in self._services:
            task.cancel()
        for task in self._services:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._services = []
        await self.code.aclose()
        if self.bus is not None:
            await self.bus.aclose()
            self.bus = self.hub.bus = None
        self._starting = None

    # -- shared helpers ----------------------------------------------------------------

    async def _get(
        self, kind: str, object_id: str, owner: str | None, param: str | None = None, **where: Any
    ) -> dict[str, Any]:
        obj = await self.store.get(kind, object_id, owner, **where)
        if obj is None:
            raise NotFoundError(_KIND_NAMES[kind], object_id, param=param)
        return obj

    async def _list(
        self, kind: str, params: dict[str, Any], owner: str | None = None, **where: Any
    ) -> dict[str, Any]:
        return page_body(await self.store.list(kind, owner=owner, **params, **where))

    async def _references(self, body: dict[str, Any], owner: str | None, where: str = "") -> None:
        """The files ``body`` points at are checked (:mod:`.references`, read-only); then its
        ``tool_resources.file_search`` is resolved: the caller's vector stores, and the
        ``vector_stores`` helper's store created (as the hosted API did)."""
        await check_references(self.store, body, owner, where)
        if body.get("tool_resources"):
            await self.vector_stores.resolve_tool_resources(body["tool_resources"], owner, where)

    async def delete_file(self, file_id: str, owner: str | None = None) -> dict[str, Any]:
        """A File deleted leaves every vector store it was in (as the hosted API did)."""
        deleted = await self.files.delete(file_id, owner)
        await self.vector_stores.file_deleted(file_id)
        return deleted

    # -- assistants ----------------------------------------------------------------------

    async def create_assistant(self, body: dict[str, Any], owner: str | None = None) -> dict[str, Any]:
        await self._references(body, owner)
        obj = defaults.assistant(
            build(
                Assistant,
                **{
                    "id": new_id("asst"),
                    "object": "assistant",
                    "created_at": now(),
                    "name": None,
                    "description": None,
                    "instructions": None,
                    "tools": [],
                    "metadata": {},
                    "tool_resources": None,
                    "temperature": None,
                    "top_p": None,
                    "response_format": "auto",
                    **body,
                },
            )
        )
        return await self.store.insert("assistant", obj, owner)

    async def get_assistant(self, assistant_id: str, owner: str | None = None) -> dict[str, Any]:
        return await self._get("assistant", assistant_id, owner)

    async def update_assistant(
        self, assistant_id: str, body: dict[str, Any], owner: str | None = None
    ) -> dict[str, Any]:
        obj = await self._get("assistant", assistant_id, owner)
        await self._references(body, owner)
        changes = {k: v for k, v in body.items() if v is not None or k not in ("metadata", "tools")}
        obj = defaults.assistant(build(Assistant, **{**obj, **changes}))
        return await self.store.put("assistant", obj)

    async def delete_assistant(self, assistant_id: str, owner: str | None = None) -> dict[str, Any]:
        await self._get("assistant", assistant_id, owner)
        await self.store.delete("assistant", assistant_id)
        return deleted("assistant", assistant_id)

    async def list_assistants(self, params: dict[str, Any], owner: str | None = None) -> dict[str, Any]:
        return await self._list("assistant", params, owner)

    # -- threads ---------------------------------------------------------------------------

    async def create_thread(
        self, body: dict[str, Any], owner: str | None = None, *, where: str = ""
    ) -> dict[str, Any]:
        """``where``: the body's place in the request (``thread.`` for create-and-run)."""
        await self._references(body, owner)
        messages = body.get("messages") or []
        await check_messages(self.store, messages, owner, f"{where}messages")
        thread = defaults.thread(
            build(
                Thread,
                id=new_id("thread"),
                object="thread",
                created_at=now(),
                metadata=body.get("metadata") or {},
                tool_resources=body.get("tool_resources"),
            )
        )
        attach = await Attach.prepare(
            self.vector_stores, thread, searched_files(messages, f"{where}messages"), owner
        )
        items = [("thread", thread)]
        items += [("thread.message", new_message(thread["id"], m)) for m in messages]
        await self.store.insert_many(items, owner)
        if attach is not None:
            thread = await attach.apply(self.store, thread)
        return thread

    async def get_thread(self, thread_id: str, owner: str | None = None) -> dict[str, Any]:
        return await self._get("thread", thread_id, owner)

    async def update_thread(
        self, thread_id: str, body: dict[str, Any], owner: str | None = None
    ) -> dict[str, Any]:
        thread = await self._get("thread", thread_id, owner)
        await self._references(body, owner)
        thread.update({k: v for k, v in body.items() if v is not None})
        return await self.store.put("thread", defaults.thread(build(Thread, **thread)))

    async def delete_thread(self, thread_id: str, owner: str | None = None) -> dict[str, Any]:
        await self._get("thread", thread_id, owner)
        active = await self.store.active_run_id(thread_id)
        if active:
            run = await self.store.get("thread.run", active)
            if run:
                await self.executor.cancel(run)
        await self.store.delete_thread(thread_id)
        await self.code.forget(thread_id)  # its kernel and working directory
        return deleted("thread", thread_id)

    async def list_threads(self, params: dict[str, Any], owner: str | None = None) -> dict[str, Any]:
        return await self._list("thread", params, owner)

    # -- messages ----------------------------------------------------------------------------

    async def create_message(
        self, thread_id: str, body: dict[str, Any], owner: str | None = None
    ) -> dict[str, Any]:
        thread = await self._get("thread", thread_id, owner)
        await self._references(body, owner)
        attach = await Attach.prepare(self.vector_stores, thread, searched_files([body], ""), owner)
        message = new_message(thread_id, body)
        await self.store.insert_if_idle(thread_id, [("thread.message", message)], owner)
        if attach is not None:
            await attach.apply(self.store, thread)
        return message

    async def get_message(self, thread_id: str, message_id: str, owner: str | None = None) -> dict[str, Any]:
        await self._get("thread", thread_id, owner)
        return await self._get("thread.message", message_id, None, thread_id=thread_id)

    async def update_message(
        self, thread_id: str, message_id: str, body: dict[str, Any], owner: str | None = None
    ) -> dict[str, Any]:
        message = await self.get_message(thread_id, message_id, owner)
        if body.get("metadata") is None:  # nothing to change: `{}` keeps the metadata it had
            return message
        message["metadata"] = body["metadata"]
        return await self.store.put("thread.message", message)

    async def delete_message(
        self, thread_id: str, message_id: str, owner: str | None = None
    ) -> dict[str, Any]:
        await self.get_message(thread_id, message_id, owner)
        await self.store.delete("thread.message", message_id)
        return deleted("thread.message", message_id)

    async def list_messages(
        self, thread_id: str, params: dict[str, Any], owner: str | None = None
    ) -> dict[str, Any]:
        await self._get("thread", thread_id, owner)
        return await self._list("thread.message", params, thread_id=thread_id)

    # -- runs --------------------------------------------------------------------------------

    async def create_run(
        self,
        thread_id: str,
        body: dict[str, Any],
        owner: str | None = None,
        settings: ProviderSettings | None = None,
        *,
        stream: bool = False,
        thread_created: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], Subscription | None]:
        """Create a run (and its ``additional_messages``) and start executing it.

        With ``stream``, the returned subscription is registered before the run starts,
        so it sees every event from ``thread.run.created`` on.
        """
        thread = await self._get("thread", thread_id, owner)
        assistant = await self._get("assistant", body["assistant_id"], owner, "assistant_id")
        settings = self.settings.merged(settings)
        model_name = body.get("model") or assistant["model"]
        model = resolve_model(model_name, settings)  # unknown model / missing key → 400 now
        additional = body.get("additional_messages") or []
        await check_messages(self.store, additional, owner, "additional_messages")
        attach = await Attach.prepare(
            self.vector_stores, thread, searched_files(additional, "additional_messages"), owner
        )
        run = run_requests.new_run(thread_id, body, assistant, model_name, self.run_expiry_seconds)
        await self.executor.create(run, [new_message(thread_id, m) for m in additional], owner)
        if attach is not None:  # before the run reads the thread
            await attach.apply(self.store, thread)
        sub = self.hub.subscribe(run["id"]) if stream else None
        if sub is not None and thread_created is not None:
            sub.queue.put_nowait(("thread.created", thread_created))
        self.executor.start(copy.deepcopy(run), settings, model)
        return run, sub

    async def create_thread_and_run(
        self,
        body: dict[str, Any],
        owner: str | None = None,
        settings: ProviderSettings | None = None,
        *,
        stream: bool = False,
    ) -> tuple[dict[str, Any], Subscription | None]:
        await self._get("assistant", body["assistant_id"], owner, "assistant_id")
        thread_body = dict(body.get("thread") or {})
        given = {*named_stores(body), *named_stores(thread_body)}  # the caller's own stores
        thread: dict[str, Any] | None = None
        try:
            await self._references(body, owner)
            await self._references(thread_body, owner, "thread.")
            await check_messages(self.store, thread_body.get("messages") or [], owner, "thread.messages")
            if body.get("tool_resources") is not None:
                thread_body["tool_resources"] = body["tool_resources"]
            thread = await self.create_thread(thread_body, owner, where="thread.")
            run_body = {k: v for k, v in body.items() if k not in ("thread", "tool_resources")}
            return await self.create_run(
                thread["id"], run_body, owner, settings, stream=stream, thread_created=thread
            )
        except AssistantKitError:  # refused (a model without credentials, say): then the
            # request created nothing — no thread, and none of the vector stores it made (the
            # ``vector_stores`` helpers', the attachments') — while the caller's stay
            if thread is not None:
                await self.store.delete_thread(thread["id"])
            made = {*named_stores(body), *named_stores(thread_body), *named_stores(thread or {})}
            for store_id in made - given:
                with contextlib.suppress(AssistantKitError):
                    await self.vector_stores.delete(store_id, owner)
            raise

    async def get_run(self, thread_id: str, run_id: str, owner: str | None = None) -> dict[str, Any]:
        await self._get("thread", thread_id, owner)
        live = self.executor.live(run_id, thread_id)
        if live is not None:
            return live
        # Not executing here: the store is the truth (another replica may have resumed,
        # cancelled or ended a run parked here).
        run = await self._get("thread.run", run_id, None, thread_id=thread_id)
        return await self.executor.stored(run)

    async def update_run(
        self, thread_id: str, run_id: str, body: dict[str, Any], owner: str | None = None
    ) -> dict[str, Any]:
        run = await self.get_run(thread_id, run_id, owner)
        if body.get("metadata") is None:  # nothing to change: `{}` keeps the metadata it had
            return run
        return await self.executor.update_metadata(run, body["metadata"])

    async def list_runs(
        self, thread_id: str, params: dict[str, Any], owner: str | None = None
    ) -> dict[str, Any]:
        await self._get("thread", thread_id, owner)
        body = await self._list("thread.run", params, thread_id=thread_id)
        body["data"] = [await self.executor.expire_if_due(r) for r in body["data"]]
        return body

    async def cancel_run(self, thread_id: str, run_id: str, owner: str | None = None) -> dict[str, Any]:
        run = await self.get_run(thread_id, run_id, owner)
        if run["status"] in TERMINAL or run["status"] == "cancelling":
            raise InvalidRequestError(
                f"Cannot cancel run {run_id} with status '{run['status']}'.", param="run_id"
            )
        return await self.executor.cancel(run)

    async def submit_tool_outputs(
        self,
        thread_id: str,
        run_id: str,
        body: dict[str, Any],
        owner: str | None = None,
        settings: ProviderSettings | None = None,
        *,
        stream: bool = False,
    ) -> tuple[dict[str, Any], Subscription | None]:
        run = await self.get_run(thread_id, run_id, owner)
        outputs = run_requests.tool_outputs(run, body)
        recent = (await self.store.list("thread.run.step", run_id=run_id, order="desc", limit=5)).data
        step = next((s for s in recent if s["type"] == "tool_calls" and s["status"] == "in_progress"), None)
        if step is None:  # another replica accepted outputs for it since it was read
            current = await self._get("thread.run", run_id, None, thread_id=thread_id)
            raise run_requests.not_waiting(run_id, current["status"])
        merged = self.settings.merged(settings)
        model = resolve_model(run["model"], merged)  # before the run is claimed and queued
        sub = self.hub.subscribe(run_id) if stream else None
        try:
            await self.executor.submit_tool_outputs(run, step, outputs)
        except BaseException:
            if sub is not None:
                sub.close()
            raise
        self.executor.start(run, merged, model, resumed=True)
        return copy.deepcopy(run), sub

    # -- run steps -----------------------------------------------------------------------------

    async def list_steps(
        self, thread_id: str, run_id: str, params: dict[str, Any], owner: str | None = None
    ) -> dict[str, Any]:
        await self.get_run(thread_id, run_id, owner)
        return await self._list("thread.run.step", params, run_id=run_id)

    async def get_step(
        self, thread_id: str, run_id: str, step_id: str, owner: str | None = None
    ) -> dict[str, Any]:
        await self.get_run(thread_id, run_id, owner)
        return await self._get("thread.run.step", step_id, None, run_id=run_id)

    # -- inspection (assistant_kit extensions: :mod:`.inspection`) --------------------------

    async def inspect_run(self, thread_id: str, run_id: str, owner: str | None = None) -> dict[str, Any]:
        """A run's millisecond timings, its steps' and the prompt of each model turn."""
        return await self.inspection.run(await self.get_run(thread_id, run_id, owner))

    async def list_all_runs(self, query: Mapping[str, str], owner: str | None = None) -> dict[str, Any]:
        """Runs of every thread ``owner`` sees, filtered, each with its timings."""
        return await self.inspection.list_runs(query, owner)

    async def list_all_steps(self, query: Mapping[str, str], owner: str | None = None) -> dict[str, Any]:
        """Run steps of every run ``owner`` sees, filtered, each with its timings."""
        return await self.inspection.list_steps(query, owner)
