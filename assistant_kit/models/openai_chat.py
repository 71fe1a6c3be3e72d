"""Chat Completions backends over the official ``openai`` SDK: OpenAI, Azure OpenAI, and any
OpenAI-compatible server (Ollama, vLLM, llama.cpp server, LM Studio) reached via ``api_base``.

Why the SDK and not raw HTTP: it already knows the auth headers (``Authorization`` vs
Azure's ``api-key``), the Azure URL layout and ``api-version`` query, SSE parsing, and
retrying 408/409/429/5xx/connection errors with backoff that honours ``Retry-After``.
Its retries happen only while the request is being sent — before a stream object exists —
so they can never duplicate tokens the caller has already seen. We therefore lean on
them (``max_retries`` = ``ProviderSettings.max_retries``) and do no retrying of our own;
anything that fails after the stream has started is reported, not retried.

Clients are cached (connection reuse matters for multi-round tool runs) per event loop,
because an ``httpx`` connection pool belongs to the loop that opened it. The cache is keyed
on a hash of the settings so no plain key sits in a dict key, and pooled connections are
closed when the loop shuts down its async generators (``asyncio.run`` does) — otherwise the
dead loop's sockets would surface later as ``ResourceWarning``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx2
import openai

from .._ids import new_id
from ..errors import ModelConfigError, ModelError
from .base import BaseChatModel, Finish, ModelEvent, ModelRequest, TextDelta, ToolCallDelta, Usage
from .settings import ProviderSettings

#: Sent as the key to servers that need none (Ollama, vLLM, …): the SDK insists on one.
DUMMY_API_KEY = "not-needed"

_FINISH = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    # A filtered answer ends the turn; what was streamed so far is kept.
    "content_filter": "stop",
}


def _env(*names: str) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


@dataclass(frozen=True)
class _Target:
    """Where one model's calls go. The key is excluded from ``repr``."""

    kind: str  # "openai" | "azure"
    base: str | None
    api_key: str = field(repr=False)
    api_version: str | None
    timeout: float | None
    max_retries: int

    def cache_key(self) -> str:
        raw = repr((self.kind, self.base, self.api_key, self.api_version, self.timeout, self.max_retries))
        return hashlib.sha256(raw.encode()).hexdigest()

    def host(self) -> str:
        if not self.base:
            return "api.openai.com"
        parts = urlsplit(self.base)
        return parts.hostname or self.base  # never userinfo, which may hold credentials


def _check_base(base: str | None, what: str) -> None:
    """Catch the classic ``localhost:11434/v1`` (no scheme) now, not as a connect error."""
    if base and urlsplit(base).scheme not in ("http", "https"):
        raise ModelConfigError(
            f"{what} must be an http:// or https:// URL (got '{_strip_userinfo(base)}').",
            param="model",
        )


def _strip_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _is_openai(base: str) -> bool:
    return (urlsplit(base).hostname or "").lower() == "api.openai.com"


def create_openai(name: str, settings: ProviderSettings) -> OpenAIChatModel:
    """OpenAI, or any OpenAI-compatible server when ``api_base`` (or ``OPENAI_BASE_URL``)
    is set; a local server may need no key, so a dummy one is sent."""
    base = settings.api_base or _env("OPENAI_BASE_URL")
    key = settings.api_key
    if key is None and (settings.api_base is None or _is_openai(settings.api_base)):
        # OPENAI_API_KEY goes where the environment sends it (OpenAI, or OPENAI_BASE_URL),
        # never to a server named explicitly in code or a route (an Ollama host, say).
        key = _env("OPENAI_API_KEY")
    if not key and not base:
        raise ModelConfigError(
            f"No credentials for model '{name}': set the OPENAI_API_KEY environment variable, "
            "pass api_key, or pass api_base for an OpenAI-compatible server that needs no key.",
            param="model",
        )
    _check_base(base, "api_base (or OPENAI_BASE_URL)")
    target = _Target("openai", base, key or DUMMY_API_KEY, None, settings.timeout, settings.max_retries)
    return OpenAIChatModel(name, target)


def create_azure(deployment: str, settings: ProviderSettings) -> OpenAIChatModel:
    """An Azure OpenAI deployment: ``api_base`` is the resource endpoint
    (``https://<resource>.openai.azure.com``); the deployment name is the model."""
    endpoint = settings.api_base or _env("AZURE_OPENAI_ENDPOINT", "AZURE_API_BASE")
    key = settings.api_key or _env("AZURE_OPENAI_API_KEY", "AZURE_API_KEY")
    version = settings.api_version or _env(
        "OPENAI_API_VERSION", "AZURE_OPENAI_API_VERSION", "AZURE_API_VERSION"
    )
    missing = [
        label
        for label, value in (
            ("an endpoint (api_base or AZURE_OPENAI_ENDPOINT)", endpoint),
            ("an API key (api_key or AZURE_OPENAI_API_KEY / AZURE_API_KEY)", key),
            ("an API version (api_version or OPENAI_API_VERSION / AZURE_OPENAI_API_VERSION)", version),
        )
        if not value
    ]
    if missing:
        raise ModelConfigError(
            f"Azure deployment '{deployment}' is missing " + "; ".join(missing) + ".",
            param="model",
        )
    assert key is not None  # for type checkers; checked above
    _check_base(endpoint, "The Azure endpoint (api_base)")
    target = _Target("azure", endpoint, key, version, settings.timeout, settings.max_retries)
    return OpenAIChatModel(deployment, target)


# --- client cache -------------------------------------------------------------------------

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClients] = weakref.WeakKeyDictionary()


class _LoopClients:
    """The clients of one event loop, closed when that loop finalizes async generators."""

    def __init__(self) -> None:
        self.clients: dict[str, openai.AsyncOpenAI] = {}
        self._closer = self._close_at_shutdown()

    async def start(self) -> None:
        # Advancing the generator once registers it with the running loop, so
        # ``loop.shutdown_asyncgens()`` (called by ``asyncio.run``) will close it.
        await self._closer.asend(None)

    async def _close_at_shutdown(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await self.aclose()
            # This generator holds the loop (via its finalizer hook), so the entry must go
            # or the closed loop would never be collected.
            _clients.pop(asyncio.get_running_loop(), None)

    async def aclose(self) -> None:
        clients, self.clients = list(self.clients.values()), {}
        for client in clients:
            await client.close()


async def _client(target: _Target) -> openai.AsyncOpenAI:
    loop = asyncio.get_running_loop()
    per_loop = _clients.get(loop)
    if per_loop is None:
        per_loop = _clients[loop] = _LoopClients()
        await per_loop.start()
    key = target.cache_key()
    client = per_loop.clients.get(key)
    if client is None:
        options: dict[str, Any] = {"api_key": target.api_key, "max_retries": target.max_retries}
        if target.timeout is not None:
            options["timeout"] = target.timeout
        if target.kind == "azure":
            client = openai.AsyncAzureOpenAI(
                azure_endpoint=target.base, api_version=target.api_version, **options
            )
        else:
            client = openai.AsyncOpenAI(base_url=target.base, **options)
        per_loop.clients[key] = client
    return client


async def aclose_clients() -> None:
    """Close the cached clients of the running loop (e.g. at application shutdown)."""
    per_loop = _clients.get(asyncio.get_running_loop())
    if per_loop is not None:
        await per_loop.aclose()


# --- the backend --------------------------------------------------------------------------


def _set(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` without the unset (None) ones."""
    return {k: v for k, v in fields.items() if v is not None}


def _message(message: dict[str, Any]) -> dict[str, Any]:
    """A chat message as sent: unset fields left out, in its tool calls too. An assistant
    turn that only called tools said nothing: its ``content`` is sent as ``""``, not null (a
    chat template renders null as the text "None") nor left out (llama-cpp-python's
    templates then fail on the missing key; OpenAI takes all three)."""
    out = _set(message)
    if out.get("role") == "assistant" and "content" not in out:
        out["content"] = ""
    if out.get("tool_calls"):
        out["tool_calls"] = [
            {**_set(call), "function": _set(call.get("function") or {})} for call in out["tool_calls"]
        ]
    return out


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    """A function tool as sent: ``description``, ``parameters``, ``strict`` only when set. The
    stored Assistants tool has them all, null when the client gave none, and strict servers
    refuse a null where the spec says "string" (llama-cpp-python's answers 500). Only the
    tool's own fields: ``parameters`` is the client's JSON Schema, where null can mean null."""
    out = _set(tool)
    if isinstance(out.get("function"), dict):
        out["function"] = _set(out["function"])
    return out


def _create_kwargs(model: str, request: ModelRequest) -> dict[str, Any]:
    """The ``chat.completions.create`` arguments; unset (None) options and fields are not
    sent at all, so servers that reject unknown or null parameters are not bothered with them."""
    kwargs: dict[str, Any] = {
        "model": model,
        "messages": [_message(m) for m in request.messages],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.tools:
        kwargs["tools"] = [_tool(t) for t in request.tools]
        kwargs["parallel_tool_calls"] = request.parallel_tool_calls
        if request.tool_choice is not None:
            kwargs["tool_choice"] = request.tool_choice
    optional = {
        "response_format": request.response_format,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_completion_tokens": request.max_tokens,
    }
    kwargs.update({k: v for k, v in optional.items() if v is not None})
    return kwargs


class _ToolCallIndexer:
    """Maps upstream tool-call fragments to stable indices with an id on the first fragment.

    OpenAI sends ``index`` on every fragment and ``id``+``name`` on the first. Some
    compatible servers omit ``index``, reuse index 0 for every call, or send no ``id``;
    a new ``id`` therefore starts a new call, and a missing one is generated.
    """

    def __init__(self) -> None:
        self._by_upstream: dict[int | None, tuple[int, str]] = {}
        self._count = 0
        #: The stream carried ``tool_calls``: a ``function_call`` beside them is the same call
        #: in the legacy shape (llama-cpp-python's server sends both), not a second call.
        self.seen_tool_calls = False

    def fragment(
        self, index: int | None, call_id: str | None, name: str | None, arguments: str
    ) -> ToolCallDelta:
        known = self._by_upstream.get(index)
        if known is not None and (call_id is None or call_id == known[1]):
            return ToolCallDelta(known[0], arguments=arguments)
        ours = self._count
        self._count += 1
        call_id = call_id or new_id("call")
        self._by_upstream[index] = (ours, call_id)
        return ToolCallDelta(ours, id=call_id, name=name or "", arguments=arguments)


class OpenAIChatModel(BaseChatModel):
    """One model/deployment on one endpoint. ``repr`` shows the host, never the key."""

    def __init__(self, name: str, target: _Target):
        self.name = name
        self._target = target

    def __repr__(self) -> str:
        return f"<OpenAIChatModel {self.name!r} via {self._target.kind} at {self._target.host()}>"

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        client = await _client(self._target)
        try:
            # The SDK's own request path (auth, Azure URLs, retries, SSE decoding, in-stream
            # ``error`` events) but chunks left as plain dicts: building a pydantic
            # ChatCompletionChunk per token was ~70 % of the engine's streaming CPU.
            upstream = await client.post(
                "/chat/completions",
                body=_create_kwargs(self.name, request),
                cast_to=object,
                stream=True,
                stream_cls=openai.AsyncStream[object],
            )
        except openai.OpenAIError as exc:
            raise _model_error(exc, self.name, self._target, streaming=False, yielded=False) from None
        finish: str | None = None
        usage: Usage | None = None
        yielded = False
        tools = _ToolCallIndexer()
        text: list[str] = []  # what the turn generated, to count it when the upstream does not
        calls: dict[int, list[str]] = {}
        try:
            async for chunk in upstream:
                if not isinstance(chunk, dict):
                    raise ValueError("chunk is not a JSON object")
                if chunk.get("usage"):
                    counts = chunk["usage"]
                    usage = Usage(counts.get("prompt_tokens") or 0, counts.get("completion_tokens") or 0)
                for choice in chunk.get("choices") or ():
                    if choice.get("index") not in (0, None):
                        continue  # n > 1 is never requested
                    for event in _delta_events(choice.get("delta"), tools):
                        if isinstance(event, TextDelta):
                            text.append(event.text)
                        else:
                            call = calls.setdefault(event.index, [event.name or "", ""])
                            call[1] += event.arguments
                        yielded = True
                        yield event
                    if choice.get("finish_reason"):
                        finish = _FINISH.get(choice["finish_reason"], "stop")
        except openai.OpenAIError as exc:
            raise _model_error(exc, self.name, self._target, streaming=True, yielded=yielded) from None
        except httpx2.HTTPError as exc:  # the connection broke mid-body
            raise _error("broken", self.name, self._target, yielded=yielded, exc=type(exc).__name__) from None
        except (ValueError, TypeError, AttributeError) as exc:  # not JSON / not chunk-shaped
            raise _error(
                "malformed", self.name, self._target, yielded=yielded, exc=type(exc).__name__
            ) from None
        finally:
            await upstream.close()  # also runs on cancellation/aclose: drop the connection now
        if finish is None:
            raise _error("early_end", self.name, self._target, yielded=yielded)
        if usage is None or (usage.prompt_tokens == usage.completion_tokens == 0):
            # No usage in the stream (llama-cpp-python's server, older vLLM, some proxies send
            # none despite stream_options; an all-zero report is no count either): count it.
            usage = await asyncio.to_thread(
                self._counted_usage, request, "".join(text), [(n, a) for n, a in calls.values()]
            )
        yield usage
        yield Finish(finish)

    def _counted_usage(self, request: ModelRequest, text: str, calls: list[tuple[str, str]]) -> Usage:
        """Usage counted here: the prompt by :meth:`count_tokens` (a tokenizer's count where
        the backend has one, else ~4 characters per token) plus the tool definitions sent
        (their JSON, ~4 characters per token); the completion by
        :meth:`count_completion_tokens` over the streamed text and tool calls."""
        prompt = self.count_tokens(request.messages)
        if request.tools:
            prompt += -(-len(json.dumps(request.tools)) // 4)
        return Usage(prompt, self.count_completion_tokens(text, calls))


def _delta_events(delta: dict[str, Any] | None, tools: _ToolCallIndexer) -> list[ModelEvent]:
    if not delta:
        return []
    events: list[ModelEvent] = []
    # A refusal (structured outputs) is what the user should read, so it streams as text.
    for key in ("content", "refusal"):
        if delta.get(key):
            events.append(TextDelta(delta[key]))
    for call in delta.get("tool_calls") or ():
        tools.seen_tool_calls = True
        fn = call.get("function") or {}
        events.append(
            tools.fragment(call.get("index"), call.get("id"), fn.get("name"), fn.get("arguments") or "")
        )
    legacy = delta.get("function_call")  # pre-tools servers
    if legacy and not tools.seen_tool_calls:
        events.append(tools.fragment(-1, None, legacy.get("name"), legacy.get("arguments") or ""))
    return events


# --- errors -------------------------------------------------------------------------------

_KEYLIKE = re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_\-*.]{3,}")


def _redact(text: str, target: _Target, limit: int = 300) -> str:
    if target.api_key and target.api_key != DUMMY_API_KEY:
        text = text.replace(target.api_key, "***")
    text = _KEYLIKE.sub(r"\1-***", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _upstream_detail(exc: openai.APIError, target: _Target) -> str:
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message:
        message = body if isinstance(body, str) and body else ""
    return f": {_redact(message, target)}" if message else ""


#: Every failure this backend reports: kind → (code, message, retryable when no event was
#: yielded yet). Messages name the model and the host, never a key; their fields are
#: ``where`` ("model 'm' at host"), ``model``, ``host``, ``status``, ``retries`` (" after N
#: retries" when the SDK retried), ``detail`` (": <upstream message>", redacted) and ``exc``
#: (an exception's type name).
_ERRORS: dict[str, tuple[str, str, bool]] = {
    # HTTP status of the response (the SDK already retried 408/409/429/5xx).
    "429": (
        "rate_limit_exceeded",
        "Rate limited by the upstream for {where} (HTTP 429){retries}{detail}",
        True,
    ),
    "5xx": ("server_error", "Upstream server error for {where} (HTTP {status}){retries}{detail}", True),
    # Upstream 401 bodies echo a masked key; say nothing about it at all.
    "auth": ("invalid_api_key", "The upstream rejected the API key for {where} (HTTP {status}).", False),
    "404": ("model_not_found", "Model not found: {where} (HTTP 404){detail}", False),
    "4xx": (
        "invalid_request_error",
        "The upstream rejected the request for {where} (HTTP {status}){detail}",
        False,
    ),
    # No response, or a response that broke off.
    "timeout": ("server_error", "Request to {where} timed out{retries}.", True),
    "connect": (
        "server_error",
        "Model '{model}' at {host}: could not connect to the upstream{retries}.",
        True,
    ),
    "dropped": (
        "server_error",
        "Model '{model}' at {host}: upstream dropped the connection mid-stream.",
        True,
    ),
    "broken": (
        "server_error",
        "Model '{model}' at {host}: the upstream connection dropped mid-stream ({exc}).",
        True,
    ),
    "malformed": (
        "server_error",
        "Model '{model}' at {host}: the upstream sent a malformed stream event ({exc}).",
        True,
    ),
    "early_end": (
        "server_error",
        "Model '{model}': upstream stream ended early, before a finish_reason.",
        True,
    ),
    # An ``error`` event inside the stream.
    "stream_error": ("server_error", "Upstream error during the stream for {where}{detail}", True),
    "stream_rate_limit": (
        "rate_limit_exceeded",
        "Upstream error during the stream for {where}{detail}",
        True,
    ),
    "client": ("server_error", "Client error for {where}: {detail}", False),
}


def _error(
    kind: str, model: str, target: _Target, *, yielded: bool, status: int | None = None, **fields: str
) -> ModelError:
    """The :class:`ModelError` for a failure of ``kind`` (see :data:`_ERRORS`).

    ``yielded``: events already reached the caller, so a retry would repeat them.
    """
    code, text, retryable = _ERRORS[kind]
    fields.setdefault("detail", "")
    fields.setdefault("retries", f" after {target.max_retries} retries" if target.max_retries else "")
    host = target.host()
    message = text.format(where=f"model '{model}' at {host}", model=model, host=host, status=status, **fields)
    return ModelError(message, code=code, status=status, model=model, retryable=retryable and not yielded)


def _kind(exc: openai.OpenAIError, *, streaming: bool) -> tuple[str, int | None]:
    """Which :data:`_ERRORS` entry an SDK exception is, and its HTTP status if it has one.

    ``streaming``: the failure came after the response started (never retried by the SDK).
    """
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status == 429:
            return "429", status
        if status >= 500 or status in (408, 409):
            return "5xx", status
        if status in (401, 403):
            return "auth", status
        return ("404" if status == 404 else "4xx"), status
    if isinstance(exc, openai.APITimeoutError):
        return "timeout", None
    if isinstance(exc, openai.APIConnectionError):
        return ("dropped" if streaming else "connect"), None
    if isinstance(exc, openai.APIError):  # an error event inside the stream
        return ("stream_rate_limit" if exc.code == "rate_limit_exceeded" else "stream_error"), None
    return "client", None


def _model_error(
    exc: openai.OpenAIError, model: str, target: _Target, *, streaming: bool, yielded: bool
) -> ModelError:
    """Translate an SDK exception (see :func:`_kind` and :func:`_error`)."""
    kind, status = _kind(exc, streaming=streaming)
    if kind == "client":
        detail = _redact(str(exc), target)
    elif isinstance(exc, openai.APIError):
        detail = _upstream_detail(exc, target)
    else:
        detail = ""
    return _error(kind, model, target, yielded=yielded, status=status, detail=detail)
