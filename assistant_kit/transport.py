"""In-process HTTP transports: the official ``openai`` client talking to the engine app
without sockets, streaming included.

Why not ``httpx2.ASGITransport``? It collects the whole response body before returning
(encode/httpx#2186), which turns a live SSE stream into one late blob. These transports
hand each body chunk to the client as the app sends it.

One implementation, :class:`_Exchange`: the app always runs on the engine's own event loop,
in a background thread (see :mod:`assistant_kit.runtime`), and everything a client waits for —
the response's start, the next body bytes — is a ``concurrent.futures.Future`` the engine loop
completes. That is the one kind of waiting both worlds have: the sync transport blocks on
``future.result()``, the async one awaits ``asyncio.wrap_future(future)`` on the caller's loop.
The two transport classes differ in nothing else. Neither touches or patches the caller's loop,
so both work inside Jupyter's running loop, and runs outlive the request (and the caller's
loop) that started them.

Why futures and not a request per chunk to the engine loop: a read takes the bytes already
queued without crossing threads (or making a future), and otherwise costs one hand-over (the
engine loop completing the reader's future) — no more than a queue would. Bytes that arrive
while the client is busy are handed over together, so a slow reader crosses threads less,
never later (5,000 chunks through a bare app: ~7 ms of CPU where one queue message per chunk
took ~11 ms).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator, MutableMapping
from concurrent.futures import Future
from typing import Any

import httpx2

log = logging.getLogger("assistant_kit.transport")

ASGIApp = Callable[..., Any]
_Start = tuple[int, list[tuple[bytes, bytes]]]


class _Exchange:
    """One request/response between a client (any thread, any loop) and the app on the engine
    loop. The app's side (``_receive``, ``_send``, ``_done``) runs on the engine loop; the
    client's side (:meth:`read`, :meth:`disconnect`) from anywhere, under ``_lock``."""

    def __init__(
        self,
        app: ASGIApp,
        loop: asyncio.AbstractEventLoop,
        request: httpx2.Request,
        body: bytes,
        scope_extra: dict[str, Any],
    ):
        self.loop = loop
        self.started: Future[_Start] = Future()
        self._lock = threading.Lock()
        self._chunks: list[bytes] = []
        self._ended = False
        self._reader: Future[bytes] | None = None
        self._body: bytes | None = body
        self._disconnected: asyncio.Event | None = None
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port),
            "client": ("127.0.0.1", 0),
            "root_path": "",
            **scope_extra,
        }
        self.app_done: Future[None] = asyncio.run_coroutine_threadsafe(
            app(scope, self._receive, self._send), loop
        )
        self.app_done.add_done_callback(self._done)

    # -- the app's side (engine loop) -----------------------------------------------------

    async def _receive(self) -> dict[str, Any]:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        if self._disconnected is None:
            self._disconnected = asyncio.Event()
        await self._disconnected.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            if self.started.set_running_or_notify_cancel():
                self.started.set_result((message["status"], message.get("headers", [])))
            return
        self._push(message.get("body", b""), end=not message.get("more_body", False))

    def _done(self, future: Future[None]) -> None:
        exc = None if future.cancelled() else future.exception()
        if not self.started.done():  # failed (or was cancelled) before responding
            failure = httpx2.TransportError(f"assistant_kit engine failed: {exc!r}")
            failure.__cause__ = exc
            if self.started.set_running_or_notify_cancel():
                self.started.set_exception(failure)
        elif exc is not None:
            log.debug("app raised after responding: %r", exc)
        self._push(b"", end=True)

    def _push(self, data: bytes, *, end: bool) -> None:
        with self._lock:
            if data:
                self._chunks.append(data)
            self._ended = self._ended or end
            reader = self._reader
            if reader is None or not (self._chunks or self._ended):
                return
            self._reader = None
            # A reader whose caller gave up (a cancelled await) leaves the bytes queued.
            if not reader.set_running_or_notify_cancel():
                return
            taken = self._take()
        reader.set_result(taken)

    def _take(self) -> bytes:
        taken = b"".join(self._chunks)
        self._chunks.clear()
        return taken

    # -- the client's side (any thread) ---------------------------------------------------

    def read(self) -> bytes | Future[bytes]:
        """The body bytes sent since the last read (b"" once the body has ended) when there
        are some, else a future of them (no future is made when none is needed)."""
        with self._lock:
            if self._chunks or self._ended:
                return self._take()
            self._reader = Future()
            return self._reader

    def disconnect(self) -> None:
        """The client closed the response: tell the app (a streaming run keeps going)."""

        def _set() -> None:
            if self._disconnected is None:
                self._disconnected = asyncio.Event()
            self._disconnected.set()

        if not self.app_done.done():
            self.loop.call_soon_threadsafe(_set)


class _SyncBody(httpx2.SyncByteStream):
    def __init__(self, exchange: _Exchange):
        self.exchange = exchange

    def __iter__(self) -> Iterator[bytes]:
        while True:
            data = self.exchange.read()
            if isinstance(data, Future):
                data = data.result()
            if not data:
                return
            yield data

    def close(self) -> None:
        self.exchange.disconnect()


class _AsyncBody(httpx2.AsyncByteStream):
    def __init__(self, exchange: _Exchange):
        self.exchange = exchange

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            data = self.exchange.read()
            if isinstance(data, Future):
                data = await asyncio.wrap_future(data)
            if not data:
                return
            yield data

    async def aclose(self) -> None:
        self.exchange.disconnect()


class _Transport:
    """What both transports are: the app, the engine loop and the scope entries (the client's
    owner and provider settings) added to every request."""

    def __init__(
        self, app: ASGIApp, loop: asyncio.AbstractEventLoop, scope_extra: dict[str, Any] | None = None
    ):
        self.app = app
        self.loop = loop
        self.scope_extra = scope_extra or {}

    def __repr__(self) -> str:  # never the scope: it holds the client's credentials
        return f"<{type(self).__name__} app={self.app!r}>"

    def _exchange(self, request: httpx2.Request, body: bytes) -> _Exchange:
        return _Exchange(self.app, self.loop, request, body, self.scope_extra)


class InProcessTransport(_Transport, httpx2.BaseTransport):
    """``httpx2`` transport for the sync ``openai.OpenAI`` client: blocks the calling thread
    (never the engine loop's own, which would wait for itself)."""

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        if threading.current_thread() is getattr(self.loop, "_assistant_kit_thread", None):
            raise RuntimeError("The sync client cannot be called from the engine's own loop.")
        exchange = self._exchange(request, request.read())
        status, headers = exchange.started.result()
        return httpx2.Response(status, headers=headers, stream=_SyncBody(exchange))


class AsyncInProcessTransport(_Transport, httpx2.AsyncBaseTransport):
    """``httpx2`` transport for ``openai.AsyncOpenAI``; awaits on the caller's loop."""

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        if asyncio.get_running_loop() is self.loop:
            raise RuntimeError("The async client must run on a loop other than the engine's.")
        exchange = self._exchange(request, body)
        try:
            status, headers = await asyncio.wrap_future(exchange.started)
        except asyncio.CancelledError:  # the caller gave up before the response: so does the app
            exchange.disconnect()
            raise
        return httpx2.Response(status, headers=headers, stream=_AsyncBody(exchange))
