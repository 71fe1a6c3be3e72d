"""The proxy as one ASGI app: ``build_app(config)``.

Layers, outermost first, each a plain ASGI callable wrapping the next::

    ProxyApp            lifespan (clean shutdown), Azure-style paths, dispatch
    └ AuthMiddleware    key → owner in the scope, 401 (see auth.py)
      └ BodyLimit       413 past general_settings.max_request_size_mb
        └ own routes    /health, /key/{generate,delete,info}, /openapi.json (at / and /v1)
          or backend    the engine app (engine/app.py), or PassThrough (passthrough.py)

Decisions:

- ``/health`` and ``/openapi.json`` need no key (load balancers, API browsers); everything
  else does when any key is configured. ``/health`` does one store round trip: 200 when the
  database answers, 503 when not, so it serves as readiness too.
- Bodies are read whole by :class:`BodyLimit` before the route runs (they are JSON of at
  most a few MB), so an oversized one is refused with 413 in OpenAI's error shape whether or
  not it announced its ``Content-Length``; the route then reads the buffered copy. Uploads
  (``POST /files``, up to ``max_file_size_mb``) are not buffered but streamed to the route,
  still cut off with a 413 past their limit, and at most ``max_concurrent_uploads`` (4) run at
  once; the others wait for a slot (see :class:`BodyLimit`).
- Azure-style clients (``openai.AzureOpenAI``) put ``/openai`` before the path and an
  ``api-version`` query parameter on every request; both are removed here, so such a client
  pointed at the proxy (with ``api-key:``) reaches the same routes.
- Shutdown (SIGINT/SIGTERM via uvicorn, then the lifespan event): runs still executing get
  ``shutdown_grace`` seconds to finish, then are cancelled through the engine, so no run is
  left ``in_progress`` by a clean stop. Runs waiting in ``requires_action`` are untouched:
  tool outputs can still be submitted after a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..engine.app import create_app
from ..engine.core import Engine
from ..engine.files import max_file_bytes
from ..store import AsyncStore, Store
from .auth import (
    AuthMiddleware,
    KeyRing,
    delete_key_endpoint,
    error_response,
    generate_key_endpoint,
    key_info_endpoint,
)
from .config import Config
from .openapi import document_bytes
from .passthrough import PassThrough

log = logging.getLogger("assistant_kit.server")

PUBLIC_PATHS = ("/health", "/openapi.json")
DEFAULT_SHUTDOWN_GRACE = 10.0
# Uploads taken at once (general_settings.max_concurrent_uploads) and how long one waits for
# a slot before a 429. Each costs little memory now (spooled to disk, stored in chunks), but
# disk, the store's writer and the CPU are shared: more at once only makes each slower.
DEFAULT_MAX_CONCURRENT_UPLOADS = 4
UPLOAD_WAIT_SECONDS = 120.0

ASGIApp = Any


class BodyLimit:
    """Read the request body whole (at most ``max_bytes``), then hand it to ``app``; 413 past it.

    Uploads (``POST /files``) are the exception: they are not buffered but passed through as
    they arrive, counted, and cut off with a 413 past ``upload_bytes`` (the route's multipart
    parser spools the file to disk). At most ``max_uploads`` run at once; the others wait for
    a slot before a byte of their body is read (so a waiting upload costs a connection, not
    memory: the server stops reading its socket), for at most ``upload_wait`` seconds, then
    get a 429 they may retry (the SDK does, honouring ``Retry-After``).
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        upload_bytes: int | None = None,
        *,
        max_uploads: int = DEFAULT_MAX_CONCURRENT_UPLOADS,
        upload_wait: float = UPLOAD_WAIT_SECONDS,
    ):
        self.app = app
        self.max_bytes = max_bytes
        self.upload_bytes = upload_bytes or max_bytes  # POST /files
        self.max_uploads = max_uploads
        self.upload_wait = upload_wait
        self._upload_slots: asyncio.Semaphore | None = None  # made on the serving loop

    def _too_large(self, limit: int, setting: str) -> Response:
        return error_response(
            413,
            f"Request body too large: the limit is {limit} bytes (general_settings.{setting}).",
            code="request_too_large",
        )

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope["method"] == "POST" and scope["path"].rstrip("/") in ("/files", "/v1/files")
        limit = self.upload_bytes if upload else self.max_bytes
        setting = "max_file_size_mb" if upload else "max_request_size_mb"
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await error_response(400, "Invalid Content-Length header.", code=None)(scope, receive, send)
                return
            if length > limit:
                await self._too_large(limit, setting)(scope, receive, send)
                return
        if upload:
            await self._upload(scope, receive, send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(limit, setting)(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # http.disconnect, for streaming responses

        await self.app(scope, replay, send)

    async def _upload(self, scope: MutableMapping[str, Any], receive: Any, send: Any, limit: int) -> None:
        if self._upload_slots is None:
            self._upload_slots = asyncio.Semaphore(self.max_uploads)
        slots = self._upload_slots
        try:
            await asyncio.wait_for(slots.acquire(), self.upload_wait)
        except asyncio.TimeoutError:
            response = error_response(
                429,
                f"Too many uploads in progress: at most {self.max_uploads} at once "
                f"(general_settings.max_concurrent_uploads); this one waited {self.upload_wait:g} s. "
                "Retry shortly.",
                code="rate_limit_exceeded",
                type="requests",
            )
            response.headers["retry-after"] = "1"
            await response(scope, receive, send)
            return
        try:
            await self._stream_limited(scope, receive, send, limit)
        finally:
            slots.release()

    async def _stream_limited(
        self, scope: MutableMapping[str, Any], receive: Any, send: Any, limit: int
    ) -> None:
        """Pass the body through as it comes; past ``limit`` the app is told the client left
        (it stores nothing), its answer is dropped, and the client gets the 413."""
        size = 0
        over = False
        started = False

        async def counted() -> dict[str, Any]:
            nonlocal size, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            nonlocal started
            if over:
                return
            started = True
            await send(message)

        await self.app(scope, counted, guarded_send)
        if over and not started:
            await self._too_large(limit, "max_file_size_mb")(scope, receive, send)


def _azure_style(scope: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """``/openai/assistants?api-version=…`` → ``/assistants``."""
    path = scope["path"]
    if not path.startswith("/openai/"):
        return scope
    path = path[len("/openai") :]
    query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
    query_string = urlencode([(k, v) for k, v in query if k != "api-version"]).encode("latin-1")
    return {**scope, "path": path, "raw_path": path.encode(), "query_string": query_string}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, f"{exc.detail} ({request.method} {request.url.path})", code=None)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        500, f"Internal server error: {type(exc).__name__}", code="server_error", type="server_error"
    )


async def _last_resort(app: ASGIApp, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    """Run ``app``; an exception that escapes every layer becomes a 500 in OpenAI's error
    shape (when no response has started), logged with the path but not the query string (it
    may hold a key), and is not re-raised, so uvicorn keeps the connection alive."""
    started = False

    async def watched(message: MutableMapping[str, Any]) -> None:
        nonlocal started
        if message["type"] == "http.response.start":
            started = True
        await send(message)

    try:
        await app(scope, receive, watched)
    except Exception as exc:
        log.error("unhandled error on %s %s", scope.get("method"), scope.get("path"), exc_info=exc)
        if not started:
            response = error_response(
                500, f"Internal server error: {type(exc).__name__}", code="server_error", type="server_error"
            )
            await response(scope, receive, send)


class ProxyApp:
    """Auth, limits, health, keys and the OpenAPI document around the engine (or a
    pass-through). ``store``: an already open store (tests); otherwise the config's
    ``database_url`` is opened (and closed at shutdown)."""

    def __init__(self, config: Config, *, store: Store | None = None, shutdown_grace: float | None = None):
        self.config = config
        self.shutdown_grace = DEFAULT_SHUTDOWN_GRACE if shutdown_grace is None else shutdown_grace
        self._owns_store = store is None
        self.store = store if store is not None else Store(config.database_url)
        self.keyring = KeyRing(config, self.store)
        self.engine: Engine | None = None
        self.passthrough: PassThrough | None = None
        backend: ASGIApp
        where = config.destination
        if where.remote is not None:
            backend = self.passthrough = PassThrough(where.remote, where.api_key, config.timeout)
        else:
            self.engine = Engine(
                self.store,
                config.provider_settings(),
                code_interpreter=_code_settings(config),  # off unless the config enables it
                max_file_bytes=max_file_bytes(config.max_file_size_mb),
                record_prompts=config.record_prompts,
                prompt_record_max_bytes=config.prompt_record_max_bytes,
            )
            backend = create_app(self.engine)
        self.backend = backend
        own_routes = [
            Route("/health", self.health, methods=["GET"]),
            Route("/key/generate", generate_key_endpoint(self.keyring), methods=["POST"]),
            Route("/key/delete", delete_key_endpoint(self.keyring), methods=["POST"]),
            Route("/key/info", key_info_endpoint(self.keyring), methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
        ]
        self.own_paths = frozenset(r.path for r in own_routes) | {f"/v1{r.path}" for r in own_routes}
        self.own = Starlette(
            routes=[*own_routes, *(Route(f"/v1{r.path}", r.endpoint, methods=r.methods) for r in own_routes)],
            exception_handlers={HTTPException: _http_error, Exception: _server_error},
        )
        public = [*PUBLIC_PATHS, *(f"/v1{p}" for p in PUBLIC_PATHS)]
        # Uploads may be as large as a file may be (plus the multipart framing); a file over
        # its limit but within that gets the engine's 400, which names the limit.
        upload_bytes = max(config.max_request_bytes, max_file_bytes(config.max_file_size_mb) + 1024 * 1024)
        self._guarded = AuthMiddleware(
            BodyLimit(
                self._dispatch,
                config.max_request_bytes,
                upload_bytes,
                max_uploads=config.max_concurrent_uploads or DEFAULT_MAX_CONCURRENT_UPLOADS,
            ),
            self.keyring,
            public,
        )

    def __repr__(self) -> str:
        return f"<ProxyApp {self.passthrough or self.engine!r}>"

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await _last_resort(self._guarded, _azure_style(scope), receive, send)
        else:  # websockets are not part of the API
            await send({"type": "websocket.close", "code": 1003})

    async def _dispatch(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        app = self.own if scope["path"] in self.own_paths else self.backend
        await app(scope, receive, send)

    # -- own routes ----------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        mode = "pass-through" if self.passthrough else "engine"
        try:
            await AsyncStore(self.store).ping()
        except Exception as exc:
            log.warning("health: store unreachable: %s", type(exc).__name__)
            return JSONResponse(
                {"status": "unhealthy", "store": "unreachable", "mode": mode}, status_code=503
            )
        body: dict[str, Any] = {"status": "healthy", "store": "ok", "mode": mode}
        code = self.engine.code if self.engine is not None else None
        if code is not None and code.enabled:
            sandbox = code.sandbox
            body["code_interpreter"] = {"sandbox": sandbox, "network": code.settings.network}
            if sandbox == "none":
                body["warnings"] = [
                    "code_interpreter runs model-written code without a sandbox (sandbox: none)"
                ]
        return JSONResponse(body)

    async def openapi(self, request: Request) -> Response:
        return Response(document_bytes(), media_type="application/json")

    # -- lifecycle -------------------------------------------------------------------------

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.engine is not None:
                    try:  # lease renewal, the orphan sweep, the replicas' bus (engine/runs.py)
                        await self.engine.start()
                    except Exception as exc:
                        text = f"engine start failed: {type(exc).__name__}: {exc}"
                        await send({"type": "lifespan.startup.failed", "message": text})
                        return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def shutdown(self) -> None:
        """Let executing runs finish for ``shutdown_grace`` seconds, cancel the rest, close."""
        if self.engine is not None:
            await stop_runs(self.engine, self.shutdown_grace)
            await self.engine.aclose()
        if self.passthrough is not None:
            await self.passthrough.aclose()
        if self._owns_store:
            await asyncio.get_running_loop().run_in_executor(None, self.store.close)


async def stop_runs(engine: Engine, grace: float) -> None:
    handles = [h for h in engine.executor.handles.values() if h.task is not None and not h.task.done()]
    if not handles:
        return
    log.info("waiting up to %.0f s for %d executing run(s)", grace, len(handles))
    await asyncio.wait([h.task for h in handles if h.task], timeout=grace)
    for handle in handles:
        if handle.task is not None and not handle.task.done():
            log.warning("cancelling run %s at shutdown", handle.run["id"])
            await engine.executor.cancel(handle.run)
            await asyncio.wait([handle.task], timeout=5)


def build_app(config: Config, *, store: Store | None = None, shutdown_grace: float | None = None) -> ProxyApp:
    """The proxy's ASGI app for ``config`` (see :class:`ProxyApp`)."""
    return ProxyApp(config, store=store, shutdown_grace=shutdown_grace)


def _code_settings(config: Config) -> Any:
    """The config's code_interpreter settings, with the SQLite database's directory added to what
    the sandbox must not show (the config's own directory is there already)."""
    from dataclasses import replace

    from sqlalchemy.engine import make_url

    from ..store.sql import database_url

    settings = config.code_interpreter
    try:
        url = make_url(database_url(config.database_url))
    except Exception:  # the store reports a bad URL itself
        return settings
    if url.drivername.startswith("sqlite") and url.database:
        return replace(settings, hidden=(*settings.hidden, Path(url.database).resolve().parent))
    return settings
