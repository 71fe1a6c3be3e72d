"""Millisecond timings of a run and its steps, for the inspector: stamped where the executor
changes their state, written with the next store write of that run.

The wire's timestamps are integer seconds (``created_at``, ``started_at``, ``completed_at`` …),
too coarse for a timeline: most runs of a notebook start and end within one second. The
store keeps Unix milliseconds beside them (``*_at_ms`` columns, :mod:`assistant_kit.store.schema`);
this module is how the executor (:mod:`.runs`, :mod:`.steps`) produces them without a write
of their own. A :class:`Timings` (one per run this process executes, held by its
:class:`~.steps.RunSteps`) collects marks as things happen; every store write of that run
takes them (:meth:`Timings.take`) and writes them in its own transaction, so a timing lands
together with the state change it times, and costs no extra round trip.

The first token of a model turn is such a change too: it is what opens the turn's message or
tool-calls step (:meth:`.steps.RunSteps.open_step`), so its time — the step's, and the run's
if it is the run's first — is marked right before that step's insert and written with it.
A reader of the store (the inspector in another replica, say) sees a run's first-token time
while it is still streaming, as soon as the step exists, and the token path has no write of
its own.

Where the wire has a second for the same event, :meth:`Timings.stamp` reads the clock once
and returns that second, so the millisecond always lies within the wire's second.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from ..store.sql import Mark

RUN = "thread.run"
STEP = "thread.run.step"


def now_ms() -> int:
    """Unix milliseconds (the wall clock, like the wire's seconds)."""
    return time.time_ns() // 1_000_000


def within(second: int | None, ms: int | None = None) -> int:
    """``ms`` (default: now) moved into the wire's ``second`` when they disagree: an event the
    wire dated to that second happened in it, even if the clock was read a moment later."""
    ms = now_ms() if ms is None else ms
    if second is None:
        return ms
    return min(max(ms, second * 1000), second * 1000 + 999)


class Timings:
    """Marks of one run's objects not yet written. A timestamp marked twice keeps its first
    value (the store keeps the first written, too); tool time adds up."""

    def __init__(self) -> None:
        self.pending: dict[tuple[str, str], dict[str, int]] = {}

    def __repr__(self) -> str:
        return f"<Timings pending={len(self.pending)}>"

    def mark(self, kind: str, object_id: str, column: str, ms: int | None = None) -> int:
        """Mark ``column`` of an object (default: now); returns the millisecond it holds."""
        values = self.pending.setdefault((kind, object_id), {})
        return values.setdefault(column, now_ms() if ms is None else ms)

    def stamp(self, kind: str, object_id: str, column: str) -> int:
        """Mark ``column`` now and return the wire's second of the same instant."""
        return self.mark(kind, object_id, column) // 1000

    def first_token(self, run_id: str, step_id: str) -> None:
        """A token of the model arrived for ``step_id``: the step's and the run's first, unless
        they had one (marked before the write that opens the step, so it goes with it)."""
        ms = now_ms()
        self.mark(STEP, step_id, "first_token_at_ms", ms)
        self.mark(RUN, run_id, "first_token_at_ms", ms)

    def add_tool_ms(self, step_id: str, ms: int) -> None:
        values = self.pending.setdefault((STEP, step_id), {})
        values["tool_ms"] = values.get("tool_ms", 0) + ms

    @contextmanager
    def tool_time(self, step_id: str) -> Iterator[None]:
        """Time spent executing built-in tools (code_interpreter, file_search …) for ``step_id``:
        wrap the execution in this; the total is written with the step's next write."""
        start = time.perf_counter_ns()
        try:
            yield
        finally:
            self.add_tool_ms(step_id, (time.perf_counter_ns() - start) // 1_000_000)

    def take(self) -> list[Mark]:
        """Every pending mark, for the write about to happen (then no longer pending)."""
        marks = [(kind, object_id, values) for (kind, object_id), values in self.pending.items() if values]
        self.pending = {}
        return marks

    def peek(self, kind: str, object_id: str) -> dict[str, int]:
        """The marks of an object not yet written (the inspector overlays them on a live run)."""
        return dict(self.pending.get((kind, object_id), {}))
