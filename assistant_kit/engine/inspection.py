"""The inspector's routes (assistant_kit extensions, documented in docs/inspection.md; the
official SDK reaches them with ``client.get(path, cast_to=object)`` and ignores them otherwise):

- ``GET /threads/{thread_id}/runs/{run_id}/inspection``: a run's millisecond timings, its
  steps' timings (with ``tool_ms``, the time its built-in tools took) and the exact prompt of
  each model turn (:mod:`.prompts`);
- ``GET /runs``: runs across the whole store — every thread the caller may see — paged like
  every list and filtered by ``assistant_id``, ``thread_id``, ``status`` (comma-separated),
  ``model``, ``created_after``/``created_before`` (Unix seconds, the first inclusive, the second
  exclusive); each item is the wire Run plus ``"timings"``;
- ``GET /runs/steps``: run steps across the store, with the same filters plus ``run_id`` and
  ``type``; items are wire RunSteps plus ``"timings"``.

A ``thread_id`` (or ``run_id``) filter naming no thread (run) the caller may see is a 404
naming that parameter, as the wire's per-thread listings answer, not an empty page: a typo
or another key's id is not mistaken for "no runs yet". A ``run_id`` with a ``thread_id``
must be a run of that thread.

Every value comes from the store (the millisecond columns: :mod:`.timings`), so the routes work
on whatever the store holds — runs made before the columns existed or imported threads show
their unknown timings as null. A run executing in this process also shows the marks it has not
written yet. Ownership is the store's rule, as for every object.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import InvalidRequestError, NotFoundError
from ..store.inspection import AsyncInspectionTables, Filters, InspectionTables
from .shapes import page_body
from .timings import RUN, STEP
from .validation import list_params

if TYPE_CHECKING:
    from ..store import AsyncStore
    from .prompts import PromptRecorder
    from .runs import RunExecutor


RUN_STATUSES = (
    "queued",
    "in_progress",
    "requires_action",
    "cancelling",
    "cancelled",
    "failed",
    "completed",
    "incomplete",
    "expired",
)
STEP_STATUSES = ("in_progress", "cancelled", "failed", "completed", "expired")
STEP_TYPES = ("message_creation", "tool_calls")
_RUN_FILTERS = ("assistant_id", "thread_id", "status", "model", "created_after", "created_before")
_STEP_FILTERS = (*_RUN_FILTERS, "run_id", "type")


def _seconds(query: Mapping[str, str], name: str) -> int | None:
    text = query.get(name)
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidRequestError(
            f"Invalid '{name}': expected Unix seconds (an integer), got '{text}'.", param=name
        ) from None


def filters(query: Mapping[str, str], *, steps: bool = False) -> tuple[dict[str, Any], Filters]:
    """The list parameters and the filters of ``GET /runs`` (``steps``: ``GET /runs/steps``),
    each bad value a 400 naming its parameter."""
    params = list_params(query, filters=_STEP_FILTERS if steps else _RUN_FILTERS)
    for name, value in params.items():
        if isinstance(value, str) and "\x00" in value:  # no database stores it: say so, not a 500
            raise InvalidRequestError(f"Invalid '{name}': it contains a NUL character.", param=name)
    statuses = STEP_STATUSES if steps else RUN_STATUSES
    status = None
    if params.get("status"):
        status = tuple(s.strip() for s in params["status"].split(",") if s.strip())
        wrong = [s for s in status if s not in statuses]
        if wrong or not status:
            raise InvalidRequestError(
                f"Invalid 'status': '{wrong[0] if wrong else params['status']}' is not one of "
                f"{', '.join(statuses)} (several: comma-separated).",
                param="status",
            )
    kind = params.get("type")
    if kind is not None and kind not in STEP_TYPES:
        raise InvalidRequestError(
            f"Invalid 'type': '{kind}' is not one of {', '.join(STEP_TYPES)}.", param="type"
        )
    selected = Filters(
        assistant_id=params.get("assistant_id"),
        thread_id=params.get("thread_id"),
        run_id=params.get("run_id"),
        status=status,
        model=params.get("model"),
        type=kind,
        created_after=_seconds(query, "created_after"),
        created_before=_seconds(query, "created_before"),
    )
    paging = {k: params[k] for k in ("limit", "order", "after", "before")}
    return paging, selected


class Inspection:
    """The inspector's reads over ``store``; ``executor`` for the runs executing here (their
    unwritten timings, and the expiry a read of a run past ``expires_at`` triggers), ``prompts``
    for whether prompts are being recorded."""

    def __init__(self, store: AsyncStore, executor: RunExecutor, prompts: PromptRecorder):
        self.store = store
        self.tables = AsyncInspectionTables(InspectionTables(store.sync))
        self.executor = executor
        self.prompts = prompts

    def __repr__(self) -> str:
        return f"<Inspection {self.tables!r}>"

    def _unwritten(self, kind: str, object_id: str, run_id: str) -> dict[str, int]:
        handle = self.executor.handles.get(run_id)
        return handle.steps.timings.peek(kind, object_id) if handle is not None else {}

    async def run(self, run: dict[str, Any]) -> dict[str, Any]:
        """The inspection of ``run`` (a run the caller may see, as just read)."""
        found = await self.tables.inspection(run["id"])
        if found is None:  # deleted since it was read
            raise NotFoundError("run", run["id"])
        timings = found["timings"]
        for name, value in self._unwritten(RUN, run["id"], run["id"]).items():
            if timings.get(name) is None:
                timings[name] = value
        for step in found["steps"]:
            for name, value in self._unwritten(STEP, step["step_id"], run["id"]).items():
                if name == "tool_ms":
                    step[name] = (step[name] or 0) + value
                elif step.get(name) is None:
                    step[name] = value
        return {
            "object": "assistant_kit.run_inspection",
            "run_id": run["id"],
            "thread_id": run["thread_id"],
            "timings": timings,
            "steps": found["steps"],
            "prompts": found["prompts"],
            "record_prompts": self.prompts.enabled,
        }

    async def _named_exist(self, selected: Filters, owner: str | None) -> None:
        """404 for a ``thread_id``/``run_id`` filter naming nothing ``owner`` sees (one read
        each, before the listing)."""
        if (
            selected.thread_id is not None
            and await self.store.get("thread", selected.thread_id, owner) is None
        ):
            raise NotFoundError("thread", selected.thread_id, param="thread_id")
        if selected.run_id is not None:
            where = {} if selected.thread_id is None else {"thread_id": selected.thread_id}
            if await self.store.get("thread.run", selected.run_id, owner, **where) is None:
                raise NotFoundError("run", selected.run_id, param="run_id")

    async def list_runs(self, query: Mapping[str, str], owner: str | None) -> dict[str, Any]:
        paging, selected = filters(query)
        await self._named_exist(selected, owner)
        page = await self.tables.list_runs(selected, owner=owner, **paging)
        data = []
        for item in page.data:
            timings = item.pop("timings")
            run = await self.executor.expire_if_due(item)  # a read expires what is due
            data.append({**copy.deepcopy(run), "timings": timings})
        page.data = data
        return page_body(page)

    async def list_steps(self, query: Mapping[str, str], owner: str | None) -> dict[str, Any]:
        paging, selected = filters(query, steps=True)
        await self._named_exist(selected, owner)
        return page_body(await self.tables.list_steps(selected, owner=owner, **paging))
