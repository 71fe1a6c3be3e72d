"""In-process HTTP transports: the official ``openai`` client talking to the engine app
without sockets, streaming included.

Why not ``httpx2.ASGITransport``? It collects the whole response body before returning
(encode/httpx#2186), which turns a live SSE stream into one late blob. These transports
hand each body chunk to the client as the app sends it.

The app always runs on the engine's own event loop, in a background thread (see
:mod:`assistant_kit.runtime`). The sync transport blocks the calling thread on a
thread-safe queue; the async transport awaits an ``asyncio.Queue`` on the caller's loop.
Neither touches or patches the caller's loop, so both work inside Jupyter's running
loop, and runs outlive the request (and the caller's loop) that started them.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator, MutableMapping
from concurrent.futures import Future
from typing import Any

import httpx2

log = logging.getLogger("assistant_kit.transport")

ASGIApp = Callable[..., Any]
_END = object()


class _Exchange:
    """One request/response between a client thread and the app on the engine loop."""

    def __init__(
        self,
        app: ASGIApp,
        loop: asyncio.AbstractEventLoop,
        request: httpx2.Request,
        body: bytes,
        scope_extra: dict[str, Any],
        deliver: Callable[[Any], None],
    ):
        self.loop = loop
        self._deliver = deliver
        self._body_sent = False
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
        self.body = body
        self.future: Future[None] = asyncio.run_coroutine_threadsafe(
            app(scope, self._receive, self._send), loop
        )
        self.future.add_done_callback(self._done)

    async def _receive(self) -> dict[str, Any]:
        if not self._body_sent:
            self._body_sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        if self._disconnected is None:
            self._disconnected = asyncio.Event()
        await self._disconnected.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: MutableMapping[str, Any]) -> None:
        self._deliver(message)

    def _done(self, future: Future[None]) -> None:
        if not future.cancelled() and future.exception() is not None:
            log.debug("app raised after responding: %r", future.exception())
        self._deliver(_END)

    def disconnect(self) -> None:
        """The client closed the response: tell the app (a streaming run keeps going)."""

        def _set() -> None:
            if self._disconnected is None:
                self._disconnected = asyncio.Event()
            self._disconnected.set()

        if not self.future.done():
            self.loop.call_soon_threadsafe(_set)

    def start(self, message: Any) -> tuple[int, list[tuple[bytes, bytes]]]:
        if message is _END:
            exc = self.future.exception()
            raise httpx2.TransportError(f"assistant_kit engine failed: {exc!r}") from exc
        assert message["type"] == "http.response.start"
        return message["status"], message.get("headers", [])


class _SyncBody(httpx2.SyncByteStream):
    def __init__(self, exchange: _Exchange, messages: queue.Queue[Any]):
        self.exchange = exchange
        self.messages = messages

    def __iter__(self) -> Iterator[bytes]:
        while True:
            message = self.messages.get()
            if message is _END:
                return
            if message.get("body"):
                yield message["body"]
            if not message.get("more_body", False):
                return

    def close(self) -> None:
        self.exchange.disconnect()


class _AsyncBody(httpx2.AsyncByteStream):
    def __init__(self, exchange: _Exchange, messages: asyncio.Queue[Any]):
        self.exchange = exchange
        self.messages = messages

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            message = await self.messages.get()
            if message is _END:
                return
            if message.get("body"):
                yield message["body"]
            if not message.get("more_body", False):
                return

    async def aclose(self) -> None:
        self.exchange.disconnect()


class InProcessTransport(httpx2.BaseTransport):
    """``httpx2`` transport for the sync ``openai.OpenAI`` client."""

    def __init__(
        self, app: ASGIApp, loop: asyncio.AbstractEventLoop, scope_extra: dict[str, Any] | None = None
    ):
        self.app = app
        self.loop = loop
        self.scope_extra = scope_extra or {}

    def __repr__(self) -> str:
        return f"<InProcessTransport app={self.app!r}>"

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        if threading.current_thread() is getattr(self.loop, "_assistant_kit_thread", None):
            raise RuntimeError("The sync client cannot be called from the engine's own loop.")
        messages: queue.Queue[Any] = queue.Queue()
        exchange = _Exchange(self.app, self.loop, request, request.read(), self.scope_extra, messages.put)
        status, headers = exchange.start(messages.get())
        return httpx2.Response(status, headers=headers, stream=_SyncBody(exchange, messages))


class AsyncInProcessTransport(httpx2.AsyncBaseTransport):
    """``httpx2`` transport for ``openai.AsyncOpenAI``; awaits on the caller's loop."""

    def __init__(
        self, app: ASGIApp, loop: asyncio.AbstractEventLoop, scope_extra: dict[str, Any] | None = None
    ):
        self.app = app
        self.loop = loop
        self.scope_extra = scope_extra or {}

    def __repr__(self) -> str:
        return f"<AsyncInProcessTransport app={self.app!r}>"

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        caller = asyncio.get_running_loop()
        messages: asyncio.Queue[Any] = asyncio.Queue()

        def deliver(message: Any) -> None:
            try:
                caller.call_soon_threadsafe(messages.put_nowait, message)
            except RuntimeError:  # the caller's loop is gone; nobody is listening
                pass

        body = await request.aread()
        if caller is self.loop:
            raise RuntimeError("The async client must run on a loop other than the engine's.")
        exchange = _Exchange(self.app, self.loop, request, body, self.scope_extra, deliver)
        status, headers = exchange.start(await messages.get())
        return httpx2.Response(status, headers=headers, stream=_AsyncBody(exchange, messages))
