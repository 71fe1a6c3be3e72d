"""Pass-through: the proxy in front of a remote server that speaks the Assistants API itself.

Chosen by the SDK's rule (provider ``openai`` with an explicit ``api_base``): Astra's
Assistants API, another assistant-kit proxy, anything OpenAI-compatible that still serves
``/assistants`` and ``/threads``. Each request is forwarded as it came (method, path below
``/v1``, query, body) with the *remote's* key from the config in place of the caller's, and
the answer is streamed back chunk by chunk, so SSE runs arrive live.

Decisions:

- Only a few request headers travel (``content-type``, ``accept``, ``openai-beta``,
  ``idempotency-key``): the caller's key and client identity stay here.
- The remote decides everything about the objects. Per-key isolation is the engine's, so in
  this mode every key of the proxy shares the remote account's objects; the CLI says so.
- A remote that cannot be reached is a 502 in OpenAI's error shape. A remote that fails in
  the middle of an SSE body gets the stream closed as the engine closes a failed one:
  ``event: error`` (``{"error": …}``) then ``event: done``, so SDK helpers raise instead of
  hanging.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import httpx2
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..engine.events import DONE, sse
from ..errors import error_body
from .auth import error_response

log = logging.getLogger("assistant_kit.server")

_FORWARD_REQUEST = ("content-type", "accept", "openai-beta", "idempotency-key")
_FORWARD_RESPONSE = (
    "content-type",
    "cache-control",
    "openai-poll-after-ms",
    "retry-after",
    "retry-after-ms",
    "x-request-id",
)
DEFAULT_TIMEOUT = 600.0


class PassThrough:
    """ASGI app forwarding every request to ``base_url`` (the remote's ``…/v1``)."""

    def __init__(self, base_url: str, api_key: str | None, timeout: float | None = None):
        self.base_url = base_url.rstrip("/")
        self._auth = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = httpx2.Timeout(timeout or DEFAULT_TIMEOUT, connect=10.0)
        self._client: httpx2.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"<PassThrough to {self.base_url}>"

    @property
    def client(self) -> httpx2.AsyncClient:
        if self._client is None:  # created on the serving loop, on first use
            self._client = httpx2.AsyncClient(timeout=self._timeout)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        path = scope["path"]
        if path == "/v1" or path.startswith("/v1/"):
            path = path[3:]
        headers = {k: v for k, v in request.headers.items() if k in _FORWARD_REQUEST}
        headers |= {**self._auth, "accept-encoding": "identity"}  # relay bytes as they come
        outgoing = self.client.build_request(
            request.method,
            self.base_url + path,
            params=request.query_params.multi_items(),
            headers=headers,
            content=await request.body(),
        )
        try:
            upstream = await self.client.send(outgoing, stream=True)
        except httpx2.HTTPError as exc:
            log.warning("pass-through to %s failed: %s", self.base_url, type(exc).__name__)
            response: Response = error_response(
                502,
                f"The upstream Assistants server could not be reached ({type(exc).__name__}).",
                code="upstream_unavailable",
                type="server_error",
            )
            await response(scope, receive, send)
            return
        kept = {k: v for k, v in upstream.headers.items() if k.lower() in _FORWARD_RESPONSE}
        is_sse = upstream.headers.get("content-type", "").startswith("text/event-stream")
        response = StreamingResponse(_relay(upstream, is_sse), status_code=upstream.status_code, headers=kept)
        await response(scope, receive, send)


async def _relay(upstream: httpx2.Response, is_sse: bool) -> AsyncIterator[bytes]:
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    except httpx2.HTTPError as exc:
        log.warning("upstream stream broke: %s", type(exc).__name__)
        if is_sse:
            message = f"The upstream Assistants server broke off the stream ({type(exc).__name__})."
            yield b"\n\n" + sse("error", error_body(message, "server_error")) + DONE
    finally:
        await upstream.aclose()
