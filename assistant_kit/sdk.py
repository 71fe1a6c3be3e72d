"""LiteLLM's 18 assistants functions, same names and parameters, over the kit's engine.

Code written for ``litellm.create_assistants`` & co. keeps working after the hosted
Assistants API's sunset by changing only the import (``from assistant_kit import ...``).
Every function returns the official SDK's objects (``Assistant``, ``SyncCursorPage``,
``Thread``, ``Message``, ``Run``, ``AssistantStreamManager`` …) because each one is a thin
call on an ``openai`` client; only where that client sends its requests is decided here.

Where a call goes is :func:`assistant_kit.providers.decide`'s rule, the one place it is
written: the in-process engine on the default store (``$ASSISTANT_KIT_DB``, else
``~/.local/share/assistant_kit/assistant_kit.db``), with ``api_key`` / ``api_base`` /
``api_version`` as the model provider's credentials; or, for ``custom_llm_provider="openai"``
with an explicit ``api_base``, a plain ``openai.OpenAI(api_key=..., base_url=api_base)``
pass-through to a remote server that speaks the Assistants API itself.

Credentials given to a call are used for that call's model requests and are never
written to the store: they travel in the client's transport scope, in memory. Clients
are cached per distinct configuration under a SHA-256 key, so no plain key sits in a
dict key or a ``repr``. ``client=`` uses your own ``openai`` client instead (``timeout``
then becomes the per-request timeout); otherwise ``timeout`` bounds the model calls
(or, for a pass-through, the HTTP requests).

Differences from LiteLLM, all additive: ``custom_llm_provider`` may be omitted; every
request parameter of the endpoint is forwarded (list pagination ``limit`` / ``order`` /
``after`` / ``before``, ``run_id``, thread ``tool_resources``, every run-create
parameter, ``extra_headers`` …), judged by the SDK method's own signature; keyword
arguments that are not request parameters (``litellm_*``, or ``role``/``content`` passed
to ``run_thread_stream`` as in LiteLLM's docs) are dropped instead of breaking the call.
As in LiteLLM, ``run_thread`` polls until the run is terminal or ``requires_action``
(``create_and_poll``), ``run_thread(stream=True)`` returns the stream manager like
``run_thread_stream``, and ``arun_thread_stream`` is a plain function returning an
``AsyncAssistantStreamManager`` for ``async with``.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import threading
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, ParamSpec, TypeVar

import httpx2
import openai
from openai.lib.streaming import (
    AssistantEventHandler,
    AssistantStreamManager,
    AsyncAssistantEventHandler,
    AsyncAssistantStreamManager,
)
from openai.pagination import AsyncCursorPage, SyncCursorPage
from openai.types.beta import Assistant, AssistantDeleted, Thread
from openai.types.beta.threads import Message, Run

from .providers import decide

_log = logging.getLogger("assistant_kit.sdk")

_P = ParamSpec("_P")
_T = TypeVar("_T")

# Consumed here to choose/build the client; never sent as request parameters.
_CLIENT_ARGS = ("custom_llm_provider", "client", "api_key", "api_base", "api_version", "timeout")

#: ``client=``: an ``openai.OpenAI`` for the sync functions, ``openai.AsyncOpenAI`` for the a* twins.
Client = openai.OpenAI | openai.AsyncOpenAI

_lock = threading.Lock()
_clients: dict[str, Any] = {}


# --- clients ------------------------------------------------------------------------------


def _key(*parts: Any) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _client(config: dict[str, Any], asynchronous: bool) -> Any:
    """The cached client for ``config`` (an engine client, or a pass-through)."""
    from ._quiet import quiet_sdk_deprecations
    from .client import local_async_client, local_client

    quiet_sdk_deprecations()
    from .store import database_url

    timeout = config["timeout"]
    where = decide(
        config["custom_llm_provider"],
        api_key=config["api_key"],
        api_base=config["api_base"],
        api_version=config["api_version"],
    )
    if where.remote is not None:
        # The key is resolved by decide() (env included), so a changed env is a new client.
        key = _key("remote", asynchronous, where.api_key, where.remote, timeout)
        options: dict[str, Any] = {"api_key": where.api_key, "base_url": where.remote}
        options["timeout"] = openai.NOT_GIVEN if timeout is None else timeout
        if asynchronous:
            # A pooled connection belongs to the event loop that opened it, and notebooks run
            # each cell's loop anew; without keep-alive one cached client serves every loop.
            limits = httpx2.Limits(max_keepalive_connections=0)
            options["http_client"] = openai.DefaultAsyncHttpxClient(limits=limits)
        factory: Callable[[], Any] = functools.partial(
            openai.AsyncOpenAI if asynchronous else openai.OpenAI, **options
        )
    else:
        model_config = {
            "custom_llm_provider": where.provider,
            "api_key": where.api_key,
            "api_base": where.api_base,
            "api_version": where.api_version,
            "timeout": timeout,
        }
        # The default store follows $ASSISTANT_KIT_DB at call time, so it is part of the key.
        key = _key("engine", asynchronous, database_url(None), *model_config.values())
        build = local_async_client if asynchronous else local_client
        factory = functools.partial(build, None, **model_config)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = factory()
    return client


# --- forwarding ---------------------------------------------------------------------------


@functools.cache
def _accepted(resource: type, name: str) -> frozenset[str]:
    """Request parameters of an SDK method, read from its signature (``timeout`` is ours)."""
    parameters = inspect.signature(getattr(resource, name)).parameters
    return frozenset(parameters) - {"self", "timeout"}


def _call(endpoint: str, arguments: dict[str, Any], asynchronous: bool = False) -> Any:
    """Call ``client.beta.<endpoint>`` with every argument that is one of its parameters.

    ``arguments`` is a public function's bound arguments (``locals()``), ``**kwargs``
    included. None means "not given", as in LiteLLM. Returns what the SDK returns: an
    object, a pager, a stream manager, or (async client) an awaitable of those.
    """
    given = {k: v for k, v in arguments.items() if k != "kwargs"}
    given.update(arguments.get("kwargs") or {})
    config = {name: given.pop(name, None) for name in _CLIENT_ARGS}
    client = config["client"]
    if client is None:
        client = _client(config, asynchronous)
    elif isinstance(client, openai.AsyncOpenAI) != asynchronous:
        kind = "openai.AsyncOpenAI for the a* functions" if asynchronous else "openai.OpenAI here"
        raise TypeError(f"client= must be an {kind}; sync and async clients do not mix.")
    if endpoint == "threads.runs.create_and_poll" and given.pop("stream", None):
        endpoint = "threads.runs.stream"  # LiteLLM: run_thread(stream=True) is run_thread_stream
    *path, name = endpoint.split(".")
    resource = client if path[:1] == ["vector_stores"] else client.beta  # vector stores are not beta
    for part in path:
        resource = getattr(resource, part)
    accepted = _accepted(type(resource), name)
    params = {k: v for k, v in given.items() if k in accepted and v is not None}
    dropped = sorted(k for k in given if k not in accepted)
    if dropped:
        _log.debug("%s: dropped arguments that are not request parameters: %s", endpoint, dropped)
    if config["client"] is not None and config["timeout"] is not None:
        params["timeout"] = config["timeout"]
    return getattr(resource, name)(**params)


def _twin(
    fn: Callable[_P, Any], endpoint: str, returns: type[_T], *, name: str | None = None
) -> Callable[_P, Coroutine[Any, Any, _T]]:
    """The ``async`` twin of ``fn``: same signature, an ``AsyncOpenAI`` client underneath."""
    signature = inspect.signature(fn)

    async def twin(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        result = _call(endpoint, dict(bound.arguments), asynchronous=True)
        return await result if inspect.isawaitable(result) else result

    twin.__name__ = twin.__qualname__ = name or f"a{fn.__name__}"
    twin.__doc__ = f"Async twin of :func:`{fn.__name__}`: same parameters, ``await`` it."
    twin.__signature__ = signature.replace(return_annotation=returns)  # type: ignore[attr-defined]
    return twin


# --- assistants ---------------------------------------------------------------------------


def create_assistants(
    custom_llm_provider: str | None = None,
    model: str | None = None,
    name: str | None = None,
    description: str | None = None,
    instructions: str | None = None,
    tools: Iterable[dict[str, Any]] | None = None,
    tool_resources: dict[str, Any] | None = None,
    metadata: dict[str, str] | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    response_format: str | dict[str, Any] | None = None,
    client: Client | None = None,
    api_key: str | None = None,
    api_base: str | None = None,
    api_version: str | None = None,
    *,
    timeout: float | None = None,
    **kwargs: Any,
) -> Assistant:
    """Create an assistant (``model`` is required). Other SDK parameters, such as
    ``reasoning_effort``, pass through ``kwargs``."""
    return _call("assistants.create", locals())


def get_assistants(
    custom_llm_provider: str | None = None,
    client: Client | None = None,
    api_key: str | None = None,
    api_base: str | None = None,
    api_version: str | None = None,
    *,
    limit: int | None = None,
    order: str | None = None,
    after: str | None = None,
    before: str | None = None,
    timeout: float | None = None,
    **kwargs: Any,
) -> SyncCursorPage[Assistant]:
    """List assistants, one page (``limit`` 1-100, ``order`` "asc"/"desc", cursors
    ``after``/``before``); iterate the pager to walk all pages."""
    return _call("assistants.list", locals())


def delete_assistant(
    custom_llm_provider: str | None = None,
    assistant_id: str | None = None,
    client: Client | None = None,
    api_key: str | None = None,
    api_base: str | None = None,
    api_version: str | None = None,
    *,
    timeout: float | None = None,
    **kwargs: Any,
) -> AssistantDeleted:
    """Delete an assistant. Threads are independent objects and are not touched."""
    return _call("assistants.delete", locals())


# --- threads and messages -----------------------------------------------------------------


def create_thread(
    custom_llm_provider: str | None = None,
    messages: Iterable[dict[str, Any]] | None = None,
    metadata: dict[str, str] | None = None,
    tool_resources: dict[str, Any] | None = None,
    client: Client | None = None,
    *,
    api_key: str | None = None,
    api_base: str | None = None,
    api_version: str | None = None,
    timeout: float | None = None,
    **kwargs: Any,
) -> Thread:
    """Create a thread, optionally with its first ``messages`` and ``tool_resources``."""
    return _call("threads.create", locals())


def get_thread(
    custom_llm_provider: str | None = None,
    thread_id: str | None = None,
    client: Client | None = None,
    *,
    api_key: str | None = None,
    api_base: str | None = None,
    api_version: str | None = None,
    timeout: float | None = None,
    **kwargs: Any,
) -> Thread:
    """Retrieve a thread by id."""
    return _call("threads.retrieve", locals())


def add_message(
    custom_llm_provider: str | None = None,
    thread_id: str | None = None,
    role: str | None = None,
    content: str | Iterable[dict[str, Any]] | None = None,
    attachments: Iterable[dict[str, Any]] | None = None,
    metadata: dict[str, str] | None = None,
    client: Client | None = None,
    *,
    api_key: str | None = None,
    api_base: str | None = None,
    api_version: str | None = None,
    timeout: float | None = None,
    **kwargs: Any,
) -> Message:
    """Add a message (``role`` "user" or "assistant") to a thread that has no active run."""
    return _call("threads.messages.create", locals())


def get_messages(
    custom_llm_provider: str | None = None,
    thread_id: str | None = None,
    client: Client | None = None,
    *,
    limit: int | None = None,
    order: str | None = None,
    after: str | None = None,
    before: str | None = None,
    run_id: str | None = None,
    api_key: str | None = None,
    api_base: str | None = None,
    api_version: str | None = None,
    timeout: float | None = None,
    **kwargs: Any,
) -> SyncCursorPage[Message]:
    """List a thread's messages, newest first unless ``order="asc"``; ``run_id`` keeps
    only the messages that run created."""
    return _call("threads.messages.list", locals())


# --- runs ---------------------------------------------------------------------------------


def run_thread(
    custom_llm_provider: str | None = None,
    thread_id: str | None = None,
    assistant_id: str | None = None,
    additional_instructions: str | None = None,
    instructions: str | None = None,
    metadata: dict[str, str] | None = None,
    model: str | None = None,
    stream: bool | None = None,
    tools: Iterable[dict[str, Any]] | None = None,
    client: Client | None = None,
    event_handler: AssistantEventHandler | AsyncAssistantEventHandler | None = None,
    *,
    api_key: str | None = None,
    api_base: str | None = None,
    api_version: str | None = None,
    timeout: float | None = None,
    **kwargs: Any,
) -> Run:
    """Run the assistant on the thread and return the run once it is terminal or
    ``requires_action`` (polled with the SDK's ``create_and_poll``).

    Every other run-create parameter passes through ``kwargs``: ``additional_messages``,
    ``tool_choice``, ``parallel_tool_calls``, ``response_format``, ``temperature``,
    ``top_p``, ``max_prompt_tokens``, ``max_completion_tokens``, ``truncation_strategy``,
    ``include``, ``reasoning_effort``, ``poll_interval_ms``. With ``stream=True`` this
    returns an ``AssistantStreamManager`` instead, as LiteLLM does.
    """
    return _call("threads.runs.create_and_poll", locals())


def run_thread_stream(
    *,
    custom_llm_provider: str | None = None,
    thread_id: str | None = None,
    assistant_id: str | None = None,
    additional_instructions: str | None = None,
    instructions: str | None = None,
    metadata: dict[str, str] | None = None,
    model: str | None = None,
    tools: Iterable[dict[str, Any]] | None = None,
    client: openai.OpenAI | None = None,
    event_handler: AssistantEventHandler | None = None,
    api_key: str | None = None,
    api_base: str | None = None,
    api_version: str | None = None,
    timeout: float | None = None,
    **kwargs: Any,
) -> AssistantStreamManager[AssistantEventHandler]:
    """Start a streamed run: ``with run_thread_stream(...) as stream:`` then iterate the
    events or call ``stream.until_done()``. ``event_handler`` is your
    ``AssistantEventHandler`` subclass instance; other run parameters as in :func:`run_thread`."""
    return _call("threads.runs.stream", locals())


def arun_thread_stream(
    *,
    custom_llm_provider: str | None = None,
    thread_id: str | None = None,
    assistant_id: str | None = None,
    additional_instructions: str | None = None,
    instructions: str | None = None,
    metadata: dict[str, str] | None = None,
    model: str | None = None,
    tools: Iterable[dict[str, Any]] | None = None,
    client: openai.AsyncOpenAI | None = None,
    event_handler: AsyncAssistantEventHandler | None = None,
    api_key: str | None = None,
    api_base: str | None = None,
    api_version: str | None = None,
    timeout: float | None = None,
    **kwargs: Any,
) -> AsyncAssistantStreamManager[AsyncAssistantEventHandler]:
    """Async twin of :func:`run_thread_stream`. A plain function, as in LiteLLM: the
    request starts at ``async with arun_thread_stream(...) as stream:``."""
    return _call("threads.runs.stream", locals(), asynchronous=True)


acreate_assistants = _twin(create_assistants, "assistants.create", Assistant)
aget_assistants = _twin(get_assistants, "assistants.list", AsyncCursorPage[Assistant])
adelete_assistant = _twin(delete_assistant, "assistants.delete", AssistantDeleted)
acreate_thread = _twin(create_thread, "threads.create", Thread)
aget_thread = _twin(get_thread, "threads.retrieve", Thread)
a_add_message = _twin(add_message, "threads.messages.create", Message, name="a_add_message")
aget_messages = _twin(get_messages, "threads.messages.list", AsyncCursorPage[Message])
arun_thread = _twin(run_thread, "threads.runs.create_and_poll", Run)
