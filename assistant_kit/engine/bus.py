"""The bus: run events and control messages between processes that share one PostgreSQL database.

Several proxy replicas on one database behave as one service. Each replica executes the runs
it creates (or resumes), and publishes their events to its :class:`~.events.EventHub`; the
hub also hands every event to the bus, which carries it to the other replicas, whose hubs
deliver it to their own subscribers. Control messages ride the same ordered stream:

``cancel``
    A replica wrote ``cancelling`` for a run another replica executes; the executor cancels
    its task (then writes ``cancelled`` as usual).
``claimed``
    A replica took over a run that was waiting in ``requires_action`` (tool outputs were
    submitted to it); a replica still holding that run's parked handle drops it.
``settled``
    A replica ended a run it does not execute (cancelled or expired while waiting for tool
    outputs, or orphaned): a parked handle elsewhere is dropped, and an executor that was
    presumed dead (frozen past its lease) stops its task without writing.
``metadata``
    A replica updated the metadata of a run another replica executes; the executor adopts
    it, so its next write does not put the old metadata back.

Messages are best-effort: correctness never depends on delivery. The store is the truth
(every status change is a compare-and-set, see ``Store.save_run``), the lease renewal reads
back each executing run's status (a missed ``cancel`` is seen within seconds), and a
stale handle's writes are refused. What a lost message costs is latency, or — for events —
a remote subscriber that misses some (a reconnecting listener logs it).

:class:`PgBus` is PostgreSQL LISTEN/NOTIFY, on two dedicated psycopg async connections on the
engine's loop (one LISTENs, one NOTIFYs: a connection iterating notifications cannot also
send). Decisions:

- **Batching.** Deltas are many (one per token), so :meth:`PgBus.send` only appends to a
  buffer; a sender task flushes it ``batch_seconds`` (20 ms) after the first message, as few
  NOTIFYs as fit. Consecutive text deltas of one message are merged on the way (as a slow
  SSE consumer's queue is). A replica then sends at most ~50 NOTIFYs a second however many
  tokens its runs stream, at the price of ≤ 20 ms more latency for remote subscribers.
- **Payload limit.** A NOTIFY payload must be under 8000 bytes. Messages are packed into
  payloads of at most :data:`PAYLOAD_LIMIT` bytes; one message larger than that (a run with
  long instructions, a big delta) is split into fragments that the receiver reassembles
  (one sender's NOTIFYs arrive in the order sent). Fragments rather than "re-read it from
  the store": a re-read returns the object's state *now*, not the state the event describes
  (``thread.run.in_progress`` carrying ``status: completed``), and a delta cannot be re-read.
- **Envelope.** ``{"w": worker, "n": seq, "m": [message, ...]}`` or, for a fragment,
  ``{"w", "n", "f": [index, count], "s": text}``. ``w`` lets a replica skip its own
  notifications (PostgreSQL delivers them to the sender's listening session too); ``n``
  keeps payloads distinct (identical payloads in one transaction are folded into one).
- **One channel** (:data:`CHANNEL`) for all runs: receivers look up local subscribers by
  run id, which is cheap; per-run channels would need a LISTEN per subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

from .events import _merged_text_delta

log = logging.getLogger("assistant_kit.bus")

CHANNEL = "assistant_kit_runs"
PAYLOAD_LIMIT = 7800  # bytes (payloads are ASCII JSON); PostgreSQL's limit is 8000
FRAGMENT_CHARS = 3500  # a fragment's text may double when escaped inside the envelope

EventSink = Callable[[str, str, Any], None]
ControlSink = Callable[[dict[str, Any]], None]


def conninfo(sqlalchemy_url: Any) -> str:
    """A libpq URI for psycopg from the store's SQLAlchemy URL (``postgresql+psycopg://``)."""
    return sqlalchemy_url.set(drivername="postgresql").render_as_string(hide_password=False)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))  # ensure_ascii: one byte per character


class PgBus:
    """LISTEN/NOTIFY bus for one engine (see the module docstring)."""

    def __init__(
        self,
        conninfo: str,
        worker: str,
        on_event: EventSink,
        on_control: ControlSink,
        *,
        batch_seconds: float = 0.02,
    ):
        self.conninfo = conninfo
        self.worker = worker
        self.on_event = on_event
        self.on_control = on_control
        self.batch_seconds = batch_seconds
        self._pending: list[dict[str, Any]] = []
        self._seq = itertools.count()
        self._fragments: dict[str, list[str]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._send_conn: Any = None
        self._send_lock: asyncio.Lock | None = None
        self._wakeup: asyncio.Event | None = None
        self._listening: asyncio.Event | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<PgBus channel={CHANNEL} worker={self.worker}>"

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self, timeout: float = 15.0) -> None:
        """Start listening (returns once LISTEN is in effect) and the sender."""
        self._wakeup = asyncio.Event()
        self._listening = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._tasks = [
            asyncio.create_task(self._listen(), name="assistant_kit-bus-listen"),
            asyncio.create_task(self._send_loop(), name="assistant_kit-bus-send"),
        ]
        try:
            await asyncio.wait_for(self._listening.wait(), timeout)
        except asyncio.TimeoutError:
            await self.aclose()
            raise RuntimeError(f"could not LISTEN on {CHANNEL} within {timeout:g} s") from None

    async def aclose(self) -> None:
        """Send what is buffered, then stop listening and close both connections."""
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._pending:
            try:
                await self._flush()
            except Exception as exc:
                log.warning("bus: could not send the last notifications: %s: %s", type(exc).__name__, exc)
        await self._close_sender()

    # -- sending ------------------------------------------------------------------------

    def publish(self, run_id: str, event: str, data: Any) -> None:
        self.send({"t": "e", "r": run_id, "e": event, "d": data})

    def control(self, kind: str, run_id: str, **fields: Any) -> None:
        self.send({"t": kind, "r": run_id, **fields})

    def send(self, message: dict[str, Any]) -> None:
        """Queue ``message``; it goes out with the next flush (≤ ``batch_seconds`` away)."""
        if self._closed:
            return
        self._pending.append(message)
        if self._wakeup is not None and not self._wakeup.is_set():
            self._wakeup.set()

    async def _send_loop(self) -> None:
        assert self._wakeup is not None
        try:
            while True:
                await self._wakeup.wait()
                await asyncio.sleep(self.batch_seconds)
                self._wakeup.clear()
                try:
                    await self._flush()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # logged; the loop keeps serving later messages
                    log.warning("bus: could not send notifications: %s: %s", type(exc).__name__, exc)
        finally:  # also when the loop shuts down without aclose(): no connection left to the GC
            await self._close_sender()

    async def _close_sender(self) -> None:
        conn, self._send_conn = self._send_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _flush(self) -> None:
        import psycopg

        assert self._send_lock is not None
        async with self._send_lock:
            messages, self._pending = self._pending, []
            payloads = list(self.payloads(messages))
            sent = 0
            for attempt in range(2):  # one reconnect: the server may have closed an idle connection
                try:
                    if self._send_conn is None or self._send_conn.closed:
                        self._send_conn = await psycopg.AsyncConnection.connect(
                            self.conninfo, autocommit=True
                        )
                    while sent < len(payloads):
                        await self._send_conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payloads[sent]))
                        sent += 1
                    return
                except psycopg.OperationalError:
                    if self._send_conn is not None:
                        with contextlib.suppress(Exception):
                            await self._send_conn.close()
                    self._send_conn = None
                    if attempt:
                        raise

    def payloads(self, messages: list[dict[str, Any]]) -> Iterator[str]:
        """Pack ``messages`` into NOTIFY payloads (merging consecutive text deltas)."""
        merged: list[dict[str, Any]] = []
        for message in messages:
            last = merged[-1] if merged else None
            if (
                last is not None
                and message["t"] == last["t"] == "e"
                and message["e"] == last["e"] == "thread.message.delta"
                and message["r"] == last["r"]
            ):
                joined = _merged_text_delta(last["d"], message["d"])
                if joined is not None:
                    merged[-1] = {**last, "d": joined}
                    continue
            merged.append(message)
        batch: list[str] = []
        size = 0
        overhead = len(_dumps({"w": self.worker, "n": 10**12, "m": []}))
        for message in merged:
            text = _dumps(message)
            if overhead + size + len(text) + 1 <= PAYLOAD_LIMIT:
                batch.append(text)
                size += len(text) + 1
                continue
            if batch:
                yield self._envelope(batch)
                batch, size = [], 0
            if overhead + len(text) + 1 <= PAYLOAD_LIMIT:
                batch, size = [text], len(text) + 1
            else:
                yield from self._fragments_of("[" + text + "]")
        if batch:
            yield self._envelope(batch)

    def _envelope(self, texts: list[str]) -> str:
        return f'{{"w":{_dumps(self.worker)},"n":{next(self._seq)},"m":[{",".join(texts)}]}}'

    def _fragments_of(self, text: str) -> Iterator[str]:
        pieces = [text[i : i + FRAGMENT_CHARS] for i in range(0, len(text), FRAGMENT_CHARS)]
        for index, piece in enumerate(pieces):
            yield _dumps({"w": self.worker, "n": next(self._seq), "f": [index, len(pieces)], "s": piece})

    # -- receiving -----------------------------------------------------------------------

    async def _listen(self) -> None:
        import psycopg

        assert self._listening is not None
        delay = 0.1
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
                try:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    if delay > 0.1:
                        log.warning("bus: listening again (notifications sent meanwhile were missed)")
                    self._listening.set()
                    delay = 0.1
                    async for note in conn.notifies():
                        self.received(note.payload)
                finally:
                    with contextlib.suppress(Exception):
                        await conn.close()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("bus: listener connection lost: %s: %s", type(exc).__name__, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def received(self, payload: str) -> None:
        """Handle one notification's payload (public for tests)."""
        try:
            envelope = json.loads(payload)
            sender = envelope["w"]
            if sender == self.worker:
                return
            if "f" in envelope:
                index, count = envelope["f"]
                parts = self._fragments.setdefault(sender, [])
                if index == 0:
                    parts.clear()
                parts.append(envelope["s"])
                if index + 1 < count:
                    return
                del self._fragments[sender]
                if len(parts) != count:  # a fragment went missing (listener reconnected)
                    return
                messages = json.loads("".join(parts))
            else:
                messages = envelope["m"]
        except (ValueError, KeyError, TypeError):
            log.warning("bus: ignoring a malformed notification")
            return
        for message in messages:
            try:
                if message["t"] == "e":
                    self.on_event(message["r"], message["e"], message["d"])
                else:
                    self.on_control(message)
            except Exception:
                log.exception("bus: handling %s for %s failed", message.get("t"), message.get("r"))
