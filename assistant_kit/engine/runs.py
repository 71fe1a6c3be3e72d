"""The run executor: every state change of a run happens in this file.

::

    queued → in_progress → completed | incomplete | failed
                         → requires_action → (submit_tool_outputs) → queued → in_progress …
    any active state → cancelling → cancelled;   any active state past expires_at → expired

Once a run has ended (any terminal status) its ``expires_at`` is null, as the hosted API's was.

A run executes as an asyncio task on the engine's loop, independent of the HTTP request
that created it (a client that disconnects does not stop it). Each model turn becomes a
``message_creation`` step and/or a ``tool_calls`` step, persisted as it starts and as it
ends. Events are published to the :class:`EventHub` as they happen, after the store has
the state they describe, so a client that reacts to an event and re-reads sees it. The steps
and messages themselves (built, streamed into, closed) are :mod:`.steps`'s; this file decides
when.

Built-in tools are offered to the model as functions (the request for each turn is built in
:mod:`.context`). A ``code_interpreter`` call becomes a
``code_interpreter`` tool call in the step; the engine runs it (:mod:`.code_calls`) and the run
goes on with the model's next turn — function calls of the same turn still go to the client
(``requires_action``). A sandbox failure (timeout, memory, dead kernel) fails the step, with
the reason, not the run: the model reads the reason and carries on. A ``file_search`` call
becomes a ``file_search`` tool call whose search the engine runs (:mod:`.search_calls`) over
the assistant's and the thread's vector stores before the model's next turn. A model that
cannot call tools (``calls_tools`` false: the embedded one) gets that search made for it
before its first turn, with the latest user message as the query (:meth:`RunExecutor._search_first`).

Several processes on one database (proxy replicas on PostgreSQL; a notebook and a server on
one SQLite file) act on the same runs. The rules that keep that safe:

- **One executor per run, named in the store.** A run's row carries the ``worker`` id of the
  engine executing it and a ``heartbeat_at`` that engine renews every ``renew_seconds``
  (one UPDATE for all its executing runs). The engine that creates a run executes it; the one
  that accepts its tool outputs takes it over (``claim``) and executes the rest.
- **Every status change is a compare-and-set** (``Store.save_run``): the executor writes only
  while the row still names it and is still active; anyone else (cancel, expiry, the orphan
  sweep) writes only if the status is still the one they read. Two processes can therefore
  never both decide a run's fate, and a process that lost a run — taken over, settled by
  another replica while it was frozen, its thread deleted — stops it without writing.
- **Cancel across processes** and **orphans** (a run whose executor died): how an engine
  finds out — the bus, lease renewal, the orphan sweep — is :mod:`.leases`; the change it
  then asks for (stop the task, settle the run) is made here.
- **Shutdown** (the interpreter exits, or the engine's store is closed: :meth:`RunExecutor.shutdown`,
  called by :mod:`.core`): every run executing here is interrupted and settled ``failed``
  (``server_error``, saying why) — what the orphan sweep would write once the lease ran out,
  written at once so the thread takes new runs again; a run waiting for tool outputs stays
  ``requires_action`` in the store (any process can still submit them; reads or the sweep expire
  it). A write the closed store refuses after that ends the task quietly, leaving the run as last
  written for the sweep: a normal exit logs no error, while any other failure of a run task still
  is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from openai.types.beta.threads import Run

from .._ids import new_id, now
from ..errors import AssistantKitError, ModelError, NotFoundError
from ..models.base import BaseChatModel, Usage
from ..models.settings import ProviderSettings
from ..store.sql import ACTIVE_RUN_STATUSES, LEASED_RUN_STATUSES
from . import code_calls, search_calls, shapes
from .attachments import stores_ready
from .context import next_request
from .prompts import PromptRecorder
from .run_requests import not_waiting
from .steps import RunSteps, answer_tool_step
from .timings import RUN, STEP, within

if TYPE_CHECKING:
    from ..store import AsyncStore
    from ..tools.code_interpreter import CodeInterpreter
    from .events import EventHub
    from .files import Files
    from .vector_stores import VectorStores

log = logging.getLogger("assistant_kit.runs")

TERMINAL = frozenset({"completed", "incomplete", "failed", "cancelled", "expired"})


@dataclass
class RunHandle:
    """What this process holds for a run it is executing (never persisted: credentials)."""

    run: dict[str, Any]
    settings: ProviderSettings
    model: BaseChatModel
    steps: RunSteps  # its open step/message, and what its code made (every change there)
    task: asyncio.Task[None] | None = None
    # Why we interrupt the task: "cancelled" | "expired" | "lost" | "shutdown".
    stop_reason: str | None = None
    expiry: asyncio.TimerHandle | None = None
    # code_interpreter, this activation: names of the input files placed (None: not yet).
    input_names: list[str] | None = None

    @property
    def running(self) -> bool:
        """A task is executing the run (as opposed to a handle parked in requires_action)."""
        return self.task is not None and not self.task.done()


class _Stop(Exception):
    """A write of the executing task was refused: ``"cancelled"`` (another process asked) or
    ``"lost"`` (the run is no longer this process's to write)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class RunExecutor:
    """Executes the runs of this process and makes every change of their state (the engine
    and the routes ask it through its public methods). It is given what it uses: the store,
    the event hub, this engine's ``worker`` id and ``lease_seconds``, the code interpreter
    and the Files service (where the code's images and files are stored), and the vector
    stores (what ``file_search`` searches; None: it finds nothing)."""

    def __init__(
        self,
        store: AsyncStore,
        hub: EventHub,
        worker: str,
        lease_seconds: float,
        code: CodeInterpreter,
        files: Files,
        vector_stores: VectorStores | None = None,
        prompts: PromptRecorder | None = None,
    ):
        self.store = store
        self.vector_stores = vector_stores
        self.hub = hub
        self.worker = worker
        self.lease_seconds = lease_seconds
        self.code = code
        self.files = files
        self.prompts = prompts or PromptRecorder(store, enabled=False)  # what each turn sent
        self.handles: dict[str, RunHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()  # background settles (kept referenced)
        # Set by :meth:`shutdown`: why runs stop here (the message of the runs it settles).
        self.closed: str | None = None

    def __repr__(self) -> str:
        return f"<RunExecutor worker={self.worker} runs={len(self.handles)}>"

    # -- entry points ------------------------------------------------------------------

    async def create(
        self, run: dict[str, Any], messages: Sequence[dict[str, Any]], owner: str | None
    ) -> None:
        """Store a new ``queued`` run, leased to this process, with its ``additional_messages``
        (one transaction, refused with a 400 while the thread has an active run). It executes
        once started (:meth:`start`)."""
        items = [("thread.message", message) for message in messages]
        items.append(("thread.run", run))
        created = [(RUN, run["id"], {"created_at_ms": within(run["created_at"])})]
        await self.store.insert_if_idle(
            run["thread_id"], items, owner, param="thread_id", lease=self.worker, marks=created
        )

    def start(
        self, run: dict[str, Any], settings: ProviderSettings, model: BaseChatModel, *, resumed: bool = False
    ) -> None:
        """Execute (or resume, after tool outputs) ``run`` in the background."""
        handle = self.handles.get(run["id"])
        if handle is None:
            handle = RunHandle(run, settings, model, RunSteps(run, self.store, self.hub.publish))
            self.handles[run["id"]] = handle
            delay = max(0.0, run["expires_at"] - now()) if run.get("expires_at") else None
            if delay is not None:
                loop = asyncio.get_running_loop()
                handle.expiry = loop.call_later(delay, self._expire, run["id"])
        else:
            handle.run, handle.settings, handle.model = run, settings, model
        handle.task = asyncio.create_task(self._activate(handle, resumed), name=run["id"])
        handle.task.add_done_callback(self._log_failure)

    async def cancel(self, run: dict[str, Any]) -> dict[str, Any]:
        """``runs.cancel``: interrupt a run executing here, ask its executor to, or settle
        one nobody is executing."""
        handle = self.handles.get(run["id"])
        if handle and handle.running:
            if handle.stop_reason is None:
                handle.run["status"] = "cancelling"
                if await self.store.save_run(
                    handle.run, expect=("queued", "in_progress"), worker=self.worker
                ):
                    self._publish_run(handle.run)
                handle.stop_reason = "cancelled"
                handle.task.cancel()  # type: ignore[union-attr]
            return copy.deepcopy(handle.run)
        if run["status"] in ("queued", "in_progress"):
            lease = await self.store.run_lease(run["id"])
            if lease is not None and self._alive(lease):
                # Another live process executes it: mark it, and tell that process.
                cancelling = {**copy.deepcopy(run), "status": "cancelling"}
                if not await self.store.save_run(cancelling, expect=(run["status"],)):
                    return await self._current(run)
                self._publish_run(cancelling)
                self.hub.tell("cancel", run["id"])
                return cancelling
        # requires_action, or an executor that is gone.
        return await self.settle(run, "cancelled", handle=handle)

    def live(self, run_id: str, thread_id: str) -> dict[str, Any] | None:
        """A copy of ``run_id``'s state if a task of this process executes it (ahead of its
        last write), else None: the store is the truth."""
        handle = self.handles.get(run_id)
        if handle is not None and handle.running and handle.run["thread_id"] == thread_id:
            return copy.deepcopy(handle.run)
        return None

    async def stored(self, run: dict[str, Any]) -> dict[str, Any]:
        """``run`` as just read from the store, reconciled with this process: a handle parked
        here for a run no longer waiting for tool outputs (another replica resumed, cancelled
        or ended it) is dropped, and a run past ``expires_at`` is expired."""
        handle = self.handles.get(run["id"])
        if handle is not None and not handle.running and run["status"] != "requires_action":
            self.forget(run["id"], handle)
        return await self.expire_if_due(run)

    async def update_metadata(self, run: dict[str, Any], metadata: dict[str, str]) -> dict[str, Any]:
        """``runs.update``: only the metadata changes. A compare-and-set on the status, re-read
        on a race, so this never writes back a status another process has moved on from; the
        run's executor, if it is another process, is told (its next write keeps it)."""
        handle = self.handles.get(run["id"])
        live = handle.run if handle is not None and handle.running else None
        target = live or run
        for _ in range(20):
            target["metadata"] = metadata
            if await self.store.save_run(target, expect=(target["status"],)):
                break
            current = await self.store.get("thread.run", run["id"])
            if current is None:
                raise NotFoundError("run", run["id"])
            target = current
        if target is not live and target["status"] not in TERMINAL:
            self.hub.tell("metadata", run["id"], metadata=metadata)
        return copy.deepcopy(target)

    async def expire_if_due(self, run: dict[str, Any]) -> dict[str, Any]:
        """Reads call this: a run past ``expires_at`` that nobody executes is expired."""
        if run["status"] in TERMINAL or not run.get("expires_at") or run["expires_at"] > now():
            return run
        if run["id"] in self.handles:
            return run  # executing or parked here: our watchdog will do it
        if run["status"] in LEASED_RUN_STATUSES:
            lease = await self.store.run_lease(run["id"])
            if lease is not None and self._alive(lease):
                return run  # its executor's watchdog will do it
        return await self.settle(run, "expired")

    def _alive(self, lease: dict[str, Any]) -> bool:
        """The lease names another process that renewed it recently."""
        fresh = (lease["heartbeat_at"] or 0) >= time.time() - self.lease_seconds
        return fresh and lease["worker"] not in (None, self.worker)

    async def _current(self, run: dict[str, Any]) -> dict[str, Any]:
        return await self.store.get("thread.run", run["id"]) or run

    def _expire(self, run_id: str) -> None:
        handle = self.handles.get(run_id)
        if handle is None:
            return
        if handle.running:
            handle.stop_reason = "expired"
            handle.task.cancel()  # type: ignore[union-attr]
        elif handle.run["status"] not in TERMINAL:
            self._background(self.settle(handle.run, "expired", handle=handle))

    def _background(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(self._log_failure)

    def _log_failure(self, task: asyncio.Task[Any]) -> None:
        """A run task or background settle raised: logged with its traceback, unless it is the
        store refusing work at shutdown (:meth:`_refused`)."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        if self._refused(exc):
            log.debug("run task %s ended by the store's closing: %r", task.get_name(), exc)
        else:
            log.error("background run task failed", exc_info=exc)

    def _refused(self, exc: BaseException | None) -> bool:
        """``exc`` is the closed store (or the exiting interpreter's thread pools) refusing a
        write: how a task still going after :meth:`shutdown`, or whose store was closed under
        it, ends — not a failure of the run, so not logged as one."""
        return isinstance(exc, RuntimeError) and self.store.closed

    # -- shutdown ----------------------------------------------------------------------

    def abandon(self, message: str) -> list[asyncio.Task[Any]]:
        """Stop executing runs here (call on the engine's loop, or while it is not running):
        each executing task is cancelled to settle ``failed`` with ``message``, handles parked
        for tool outputs are dropped (their runs stay ``requires_action`` in the store). Returns
        the tasks still to finish (the settles included)."""
        self.closed = message
        tasks: list[asyncio.Task[Any]] = []
        for handle in list(self.handles.values()):
            if handle.running:
                assert handle.task is not None
                if handle.stop_reason is None:  # else already being cancelled, expired or lost
                    handle.stop_reason = "shutdown"
                    handle.task.cancel()
                tasks.append(handle.task)
            else:
                self.forget(handle.run["id"], handle)
        return tasks + list(self._tasks)

    async def shutdown(self, message: str, timeout: float | None = None) -> None:
        """Stop executing runs here (:meth:`abandon`) and wait up to ``timeout`` seconds for
        them to settle. A run not settled by then (its store busy) keeps its last state and lease,
        and the orphan sweep of whichever engine opens the database next settles it."""
        tasks = self.abandon(message)
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    # -- what other processes did (:mod:`.leases` finds out, these act) ---------------

    def stop(self, handle: RunHandle, reason: str) -> None:
        """Stop the task executing ``handle``'s run: ``"lost"`` (the run is no longer this
        process's: it ends without writing) or ``"cancelled"`` (another process wrote
        ``cancelling``: local subscribers hear so, and the task writes ``cancelled``)."""
        if handle.stop_reason is not None or handle.task is None:
            return
        if reason == "cancelled":
            handle.run["status"] = "cancelling"
            self.hub.deliver(handle.run["id"], "thread.run.cancelling", copy.deepcopy(handle.run))
        handle.stop_reason = reason
        handle.task.cancel()

    def apply_metadata(self, handle: RunHandle, metadata: dict[str, str]) -> None:
        """Another process updated the metadata of a run executing here: the next write keeps it."""
        handle.run["metadata"] = metadata

    # -- one activation: queued → in_progress → … ----------------------------------------

    async def _activate(self, handle: RunHandle, resumed: bool) -> None:
        run = handle.run
        try:
            try:
                if not resumed:
                    self._publish_run(run, "thread.run.created")
                self._publish_run(run)  # queued
                run["status"] = "in_progress"
                run["started_at"] = run.get("started_at") or handle.steps.timings.stamp(
                    RUN, run["id"], "started_at_ms"
                )
                await self._save_run(run)
                self._publish_run(run)
                if not resumed and await self._stores_failed(handle):
                    return
                await self._turns(handle)
            except _Stop as stop:
                if stop.reason != "cancelled":
                    raise
                handle.stop_reason = "cancelled"
                await asyncio.shield(self._interrupted(handle))
            except asyncio.CancelledError:
                if handle.stop_reason != "lost":
                    await asyncio.shield(self._interrupted(handle))
            except ModelError as exc:
                await asyncio.shield(self._fail(handle, exc.code or "server_error", exc.message))
            except AssistantKitError as exc:
                await asyncio.shield(self._fail(handle, exc.code or "server_error", exc.message))
            except Exception as exc:  # a bug of ours must still not leave the run in_progress
                if self._refused(exc):
                    raise  # the store is gone: nothing can be written (the handler below)
                log.exception("run %s crashed", run["id"])
                await asyncio.shield(
                    self._fail(handle, "server_error", f"Internal error: {type(exc).__name__}: {exc}")
                )
        except _Stop:
            handle.stop_reason = "lost"
        except Exception as exc:  # settling failed too: the store refused it at shutdown?
            if not self._refused(exc):
                raise
            log.debug("run %s left as last written: the store closed (%r)", run["id"], exc)
            self.forget(run["id"], handle)
        finally:
            if handle.stop_reason == "lost":
                await asyncio.shield(self._lost(handle))
            elif run["status"] in TERMINAL:
                self.forget(run["id"], handle)

    async def _lost(self, handle: RunHandle) -> None:
        """This process may no longer write the run. If it is over (settled elsewhere, or our
        own last write landed while the task was being cancelled), make sure local subscribers
        see how it ended."""
        self.forget(handle.run["id"], handle)
        with contextlib.suppress(Exception):
            stored = await self.store.get("thread.run", handle.run["id"])
            if stored is not None and stored["status"] in TERMINAL:
                self.hub.deliver(stored["id"], f"thread.run.{stored['status']}", stored)

    def forget(self, run_id: str, handle: RunHandle | None = None) -> None:
        """Drop the handle of ``run_id`` (only if it is still ``handle``, when given): ended,
        or resumed or ended by another process while parked here."""
        current = self.handles.get(run_id)
        if current is None or (handle is not None and current is not handle):
            return
        del self.handles[run_id]
        if current.expiry:
            current.expiry.cancel()

    async def _stores_failed(self, handle: RunHandle) -> bool:
        """Before the first turn: the vector stores file_search searches are ready (waited
        for) and not expired — else the run fails (:func:`.attachments.stores_ready`)."""
        failure = await stores_ready(self.vector_stores, self.store, handle.run)
        if failure is not None:
            await self._fail(handle, "server_error", failure)
        return failure is not None

    async def _turns(self, handle: RunHandle) -> None:
        run = handle.run
        if not handle.model.calls_tools:
            await self._search_first(handle)
        while True:
            usage = run.get("usage") or {}
            limit = run.get("max_completion_tokens")
            used = usage.get("completion_tokens", 0)
            if limit is not None and used >= limit:
                return await self._incomplete(handle, "max_completion_tokens")
            if handle.input_names is None:  # once per activation: files can't change mid-run
                handle.input_names = await code_calls.offered_files(self.store, self.code, run)
            budget = None if limit is None else limit - used
            request = await next_request(self.store, run, handle.model, budget, handle.input_names)
            if request is None:
                return await self._incomplete(handle, "max_prompt_tokens")
            recorded = await self.prompts.record(run, request)
            try:
                turn = await handle.steps.stream_turn(handle.model, request)
            finally:
                # The steps the turn opened, also when it was cut short (cancelled, failed
                # mid-stream): the prompt links to the partial message it produced.
                opened = handle.steps.turn
                if opened is not None and recorded is not None:
                    steps = [opened.step, opened.tool_step]
                    await asyncio.shield(self.prompts.produced(run, recorded, steps))
            _add_usage(run, turn.usage)
            await handle.steps.end_turn(turn)
            finish, calls, tool_step = turn.finish, turn.calls, turn.tool_step
            if finish == "length":
                # Cut off by the token budget: the turn's tool calls may be cut too (code or
                # JSON arguments ending mid-way), so nothing is run or handed to the client;
                # the open tool step ends cancelled with the run.
                return await self._incomplete(handle, "max_completion_tokens")
            if calls:
                functions = [c for c in calls if c["type"] == "function"]
                code = [c for c in calls if c["type"] == "code_interpreter"]
                assert tool_step is not None  # calls are made in a tool-calls step
                failure = await self._run_code(handle, tool_step, code) if code else None
                for call in calls:
                    if call["type"] == search_calls.NAME:
                        queries = search_calls.parse_queries(turn.arguments.get(call["id"], ""))
                        await self._search(handle, tool_step, call, queries)
                if functions:
                    if failure:  # the step fails once the outputs are in
                        handle.steps.hold_failure(tool_step, failure)
                    return await self._requires_action(handle, functions)
                await handle.steps.end_tool_step(tool_step, failure)
                continue
            run["status"] = "completed"
            run["completed_at"] = handle.steps.timings.stamp(RUN, run["id"], "ended_at_ms")
            await self._save_run(run)
            self._publish_run(run)
            return

    async def _run_code(
        self, handle: RunHandle, step: dict[str, Any], calls: list[dict[str, Any]]
    ) -> str | None:
        """Execute the turn's code_interpreter calls in order (their outputs recorded in
        ``step``); return the first failure reason."""
        with handle.steps.tool_time(step):
            failure = await code_calls.execute_all(
                self.code,
                self.files,
                self.store,
                handle.run["thread_id"],
                calls,
                lambda call: handle.steps.code_outputs(step, call),
            )
        await handle.steps.save(step)
        return failure

    async def _search(
        self,
        handle: RunHandle,
        step: dict[str, Any],
        call: dict[str, Any],
        queries: list[str],
        max_results: int | None = None,
    ) -> None:
        """Run a file_search call's search; its results are recorded in ``step``."""
        with handle.steps.tool_time(step):
            await search_calls.execute(
                self.vector_stores, self.store, handle.run, call, queries, max_results=max_results
            )
        await handle.steps.searched(step, call)

    async def _search_first(self, handle: RunHandle) -> None:
        """For a model that cannot call tools: before its first turn in a run that offers
        ``file_search`` (and does not forbid tools), search with the latest user message and
        record it as a real file_search step, which the model's first turn reads as that tool
        round. At most :data:`search_calls.SEARCHED_FOR_RESULTS` results (a small context)."""
        run = handle.run
        if run.get("tool_choice") == "none" or not any(
            t.get("type") == search_calls.NAME for t in run.get("tools") or []
        ):
            return
        made = await self.store.list("thread.run.step", run_id=run["id"], order="asc", limit=1)
        if made.data:  # not the run's first activation: it searched then
            return
        query = await search_calls.latest_user_text(self.store, run["thread_id"])
        step, call = await handle.steps.open_search(new_id("call"))
        await self._search(handle, step, call, [query] if query else [], search_calls.SEARCHED_FOR_RESULTS)
        await handle.steps.end_tool_step(step, None)

    # -- hand-offs and endings ---------------------------------------------------------

    async def _requires_action(self, handle: RunHandle, calls: list[dict[str, Any]]) -> None:
        run = handle.run
        run["status"] = "requires_action"
        run["required_action"] = {
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {
                "tool_calls": [
                    {
                        "id": c["id"],
                        "type": "function",
                        "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]},
                    }
                    for c in calls
                ]
            },
        }
        await self._save_run(run)
        self._publish_run(run)

    async def submit_tool_outputs(
        self, run: dict[str, Any], step: dict[str, Any], outputs: dict[str, str]
    ) -> None:
        """Fill the pending step's outputs; the run goes back to ``queued``, executed by this
        process from now on (whichever process parked it): one compare-and-set, so of two
        concurrent submissions (to two replicas) exactly one is accepted."""
        answer_tool_step(step, outputs)
        run.update(status="queued", required_action=None)
        second = step.get("completed_at") or step.get("failed_at")
        ended = [(STEP, step["id"], {"ended_at_ms": within(second)})]
        claimed = await self.store.save_run(
            run, expect=("requires_action",), claim=self.worker, also=[("thread.run.step", step)], marks=ended
        )
        if not claimed:
            current = await self._current(run)
            raise not_waiting(run["id"], current["status"])
        handle = self.handles.get(run["id"])
        if handle:
            handle.steps.answered(step["id"])
        self.hub.publish(run["id"], f"thread.run.step.{step['status']}", copy.deepcopy(step))
        self.hub.tell("claimed", run["id"], by=self.worker)

    async def _incomplete(self, handle: RunHandle, reason: str) -> None:
        run = handle.run
        run.update(status="incomplete", incomplete_details={"reason": reason}, completed_at=None)
        await self._finish(handle, "incomplete")

    async def _fail(self, handle: RunHandle, code: str, message: str) -> None:
        # The wire allows three codes; the message keeps the precise reason.
        code = code if code in ("rate_limit_exceeded", "invalid_prompt") else "server_error"
        run = handle.run
        run.update(
            status="failed",
            failed_at=handle.steps.timings.stamp(RUN, run["id"], "ended_at_ms"),
            required_action=None,
            last_error={"code": code, "message": message},
        )
        await self._finish(handle, "failed", {"code": code, "message": message})

    async def _interrupted(self, handle: RunHandle) -> None:
        reason = handle.stop_reason or "cancelled"
        if reason == "shutdown":
            return await self._fail(handle, "server_error", self.closed or "The engine shut down.")
        run = handle.run
        run["status"] = reason
        run["required_action"] = None
        if reason == "cancelled":
            run["cancelled_at"] = handle.steps.timings.stamp(RUN, run["id"], "ended_at_ms")
        await self._finish(handle, reason)

    async def _finish(self, handle: RunHandle, status: str, error: dict[str, str] | None = None) -> None:
        """Write the run's final state with its open step/message closed (one transaction,
        refused if the run is no longer ours), then publish the closings and the run."""
        handle.steps.timings.mark(RUN, handle.run["id"], "ended_at_ms")  # unless stamped already
        items, events = handle.steps.close_open(status, error)
        await self._save_run(handle.run, also=items)
        for name, data in events:
            self.hub.publish(handle.run["id"], name, data)
        self._publish_run(handle.run)

    async def settle(
        self,
        run: dict[str, Any],
        status: str,
        *,
        handle: RunHandle | None = None,
        stale_before: float | None = None,
        error: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """End a run that no task of this process executes (waiting for tool outputs, expired,
        or orphaned; ``handle``: its handle if parked here): a compare-and-set on the status
        read (and, for the orphan sweep, on the lease still being stale), so if another process
        changed the run meanwhile, it wins and its state is returned."""
        run = copy.deepcopy(run)
        seen = run["status"]
        rid = run["id"]
        closing = await RunSteps.left_open(run, self.store, self.hub.publish)
        run.update(status=status, required_action=None, expires_at=None)  # ended: no expiry
        ended = closing.timings.stamp(RUN, rid, "ended_at_ms")
        if status == "cancelled":
            run["cancelled_at"] = ended
        elif status == "failed":
            run.update(failed_at=ended, last_error=error)
        items, events = closing.close_open(status, error)
        written = await self.store.save_run(
            run, expect=(seen,), stale_before=stale_before, also=items, marks=closing.timings.take()
        )
        if handle is not None and not handle.running:
            self.forget(rid, handle)  # parked here: settled now, or changed by another process
        if not written:
            return await self._current(run)
        for name, data in events:
            self.hub.publish(rid, name, data)
        self._publish_run(run)
        self.hub.tell("settled", rid)
        return copy.deepcopy(run)

    # -- helpers -----------------------------------------------------------------------

    async def _save_run(self, run: dict[str, Any], also: Sequence[tuple[str, dict[str, Any]]] = ()) -> None:
        """The executing task's write: only while the run is still this process's and active.
        Raises :class:`_Stop` when refused (``cancelling`` was written by another process, or
        the run was deleted, taken over or settled elsewhere)."""
        terminal = run["status"] in TERMINAL
        if terminal:
            run["expires_at"] = None  # as the hosted API: an ended run no longer expires
        expect = ACTIVE_RUN_STATUSES if terminal else ("queued", "in_progress")
        handle = self.handles.get(run["id"])
        marks = handle.steps.timings.take() if handle is not None else []  # timings since the last write
        if await self.store.save_run(run, expect=expect, worker=self.worker, also=also, marks=marks):
            return
        lease = await self.store.run_lease(run["id"])
        if not terminal and lease and lease["worker"] == self.worker and lease["status"] == "cancelling":
            raise _Stop("cancelled")
        raise _Stop("lost")

    def _publish_run(self, run: dict[str, Any], event: str | None = None) -> None:
        self.hub.publish(run["id"], event or f"thread.run.{run['status']}", copy.deepcopy(run))


def _add_usage(run: dict[str, Any], usage: Usage) -> None:
    """A turn's tokens count toward the run's ``usage`` (and its budgets)."""
    total = run.get("usage") or shapes.usage(0, 0)
    run["usage"] = shapes.usage(
        total["prompt_tokens"] + usage.prompt_tokens, total["completion_tokens"] + usage.completion_tokens
    )


__all__ = ["TERMINAL", "Run", "RunExecutor"]
