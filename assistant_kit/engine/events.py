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
from collections.abc import AsyncIterator
from typing import Any

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
    def __init__(self, hub: EventHub, run_id: str):
        self.hub = hub
        self.run_id = run_id
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def close(self) -> None:
        subs = self.hub._subs.get(self.run_id)
        if subs and self in subs:
            subs.remove(self)
            if not subs:
                del self.hub._subs[self.run_id]

    async def events(self) -> AsyncIterator[tuple[str, Any]]:
        """Yield ``(event, data)`` until the stream should end (``error`` ends it too)."""
        try:
            while True:
                name, data = await self.queue.get()
                yield name, data
                if name in STREAM_END:
                    if name == "thread.run.failed":
                        # The SDK surfaces only an ``error`` event as an exception.
                        error = (data.get("last_error") or {}) if isinstance(data, dict) else {}
                        yield (
                            "error",
                            {
                                "error": {
                                    "message": error.get("message", "run failed"),
                                    "type": "server_error",
                                    "param": None,
                                    "code": error.get("code"),
                                }
                            },
                        )
                    return
        finally:
            self.close()


class EventHub:
    """Fan-out of each run's events to its current subscribers (in this process)."""

    def __init__(self) -> None:
        self._subs: dict[str, list[Subscription]] = {}

    def subscribe(self, run_id: str) -> Subscription:
        sub = Subscription(self, run_id)
        self._subs.setdefault(run_id, []).append(sub)
        return sub

    def publish(self, run_id: str, event: str, data: Any) -> None:
        for sub in self._subs.get(run_id, ()):
            sub.queue.put_nowait((event, data))

    def has_subscribers(self, run_id: str) -> bool:
        return bool(self._subs.get(run_id))
