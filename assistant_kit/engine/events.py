"""Run events: pushed by the executor to whoever is streaming that run, encoded as SSE.

The executor calls :meth:`EventHub.publish` as things happen; a streaming HTTP response
holds a :class:`Subscription` and writes each event as it arrives — no polling. A stream
ends after the event that hands control back to the client (a terminal run status or
``requires_action``), always followed by ``event: done`` / ``data: [DONE]`` (the literal:
the SDK's stream helper crashes on a JSON string there).
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, Protocol

from ..errors import error_body

# Events after which the server closes the stream (the client acts next, or it is over).
STREAM_END = frozenset(
    {
        "thread.run.completed",
        "thread.run.incomplete",
        "thread.run.failed",
        "thread.run.cancelled",
        "thread.run.expired",
        "thread.run.requires_action",
        "error",
    }
)


def sse(event: str, data: Any) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"event: {event}\ndata: {payload}\n\n".encode()


DONE = b"event: done\ndata: [DONE]\n\n"


class Subscription:
    """One consumer of one run's events. ``remote``: also take events published by other
    processes (a run executing on another replica); see :meth:`EventHub.subscribe`."""

    def __init__(self, hub: EventHub, run_id: str, remote: bool = False):
        self.hub = hub
        self.run_id = run_id
        self.remote = remote
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def close(self) -> None:
        subs = self.hub._subs.get(self.run_id)
        if subs and self in subs:
            subs.remove(self)
            if not subs:
                del self.hub._subs[self.run_id]

    async def events(self) -> AsyncIterator[tuple[str, Any]]:
        """Yield ``(event, data)`` until the stream should end (``error`` ends it too).

        Text deltas of one message that queued up while the consumer was busy are sent
        as one delta: a slow client gets fewer, larger events instead of falling behind,
        and a fast one still sees every delta as it is produced.
        """
        buffer: deque[tuple[str, Any]] = deque()
        try:
            while True:
                if not buffer:
                    buffer.append(await self.queue.get())
                    while not self.queue.empty():
                        buffer.append(self.queue.get_nowait())
                name, data = buffer.popleft()
                while buffer and name == buffer[0][0] == "thread.message.delta":
                    merged = _merged_text_delta(data, buffer[0][1])
                    if merged is None:
                        break
                    data = merged
                    buffer.popleft()
                yield name, data
                if name in STREAM_END:
                    if name == "thread.run.failed":
                        yield "error", _error_body(data)
                    return
        finally:
            self.close()


def _text_of(delta: dict[str, Any]) -> str | None:
    parts = delta["delta"].get("content") or []
    if len(parts) == 1 and parts[0].get("type") == "text" and parts[0].get("index") == 0:
        return parts[0]["text"]["value"]
    return None


def _merged_text_delta(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any] | None:
    """One delta carrying both texts, or None when they cannot merge (other message/part)."""
    a, b = _text_of(first), _text_of(second)
    if a is None or b is None or first["id"] != second["id"]:
        return None
    return {
        "id": first["id"],
        "object": "thread.message.delta",
        "delta": {"content": [{"index": 0, "type": "text", "text": {"value": a + b, "annotations": []}}]},
    }


def _error_body(run: Any) -> dict[str, Any]:
    """The SDK surfaces only an ``error`` event as an exception; shape it like an API error."""
    error = (run.get("last_error") or {}) if isinstance(run, dict) else {}
    return error_body(error.get("message", "run failed"), "server_error", code=error.get("code"))


class Bus(Protocol):
    """Carries events and control messages to the other processes on the same database
    (:class:`assistant_kit.engine.bus.PgBus`); absent on SQLite, where the hub is all there is."""

    def publish(self, run_id: str, event: str, data: Any) -> None: ...

    def control(self, kind: str, run_id: str, **fields: Any) -> None: ...


class EventHub:
    """Fan-out of each run's events to its current subscribers (in this process), and through
    ``bus``, when there is one, to the subscribers of the other replicas."""

    def __init__(self) -> None:
        self._subs: dict[str, list[Subscription]] = {}
        self.bus: Bus | None = None

    def subscribe(self, run_id: str, *, remote: bool = False) -> Subscription:
        """Events of ``run_id`` from now on. The streams of the API (create, submit tool
        outputs) are of runs this process executes: they take local events only, because
        events from another process can only be stale there — the previous executor's
        last events, still in flight when this process took the run over, would end the
        stream early. ``remote=True`` is for following a run another replica executes."""
        sub = Subscription(self, run_id, remote)
        self._subs.setdefault(run_id, []).append(sub)
        return sub

    def publish(self, run_id: str, event: str, data: Any) -> None:
        self.deliver(run_id, event, data)
        if self.bus is not None:
            self.bus.publish(run_id, event, data)

    def deliver(self, run_id: str, event: str, data: Any, *, remote: bool = False) -> None:
        """Hand an event to this process's subscribers only (no bus)."""
        for sub in self._subs.get(run_id, ()):
            if sub.remote or not remote:
                sub.queue.put_nowait((event, data))

    def deliver_remote(self, run_id: str, event: str, data: Any) -> None:
        """An event another process published (the bus calls this)."""
        self.deliver(run_id, event, data, remote=True)

    def tell(self, kind: str, run_id: str, **fields: Any) -> None:
        """Send a control message to the other replicas (a no-op without a bus)."""
        if self.bus is not None:
            self.bus.control(kind, run_id, **fields)

    def has_subscribers(self, run_id: str) -> bool:
        return bool(self._subs.get(run_id))
