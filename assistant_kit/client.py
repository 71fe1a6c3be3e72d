"""``local_client()``: the official ``openai`` client wired to the in-process engine.

Every object, pager and streaming helper the caller gets (``create_and_poll``,
``runs.stream`` with ``AssistantEventHandler``, ``submit_tool_outputs_stream``, …) is
the SDK's own; only the transport differs from talking to a server. Model credentials
given here live in this client's transport, in memory, and reach the engine with each
request; they are never stored.

The SDK's deprecation warning on every ``client.beta.*`` call is quieted for the kit's own
clients (:func:`assistant_kit._quiet.quiet_sdk_deprecations` says how narrowly, and why).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, TypeVar

import openai

from ._quiet import quiet_sdk_deprecations
from .models.settings import ProviderSettings
from .providers import decide
from .runtime import app_for, engine_loop, tie_to
from .transport import AsyncInProcessTransport, InProcessTransport

LOCAL_BASE_URL = "http://assistant-kit.local/v1"
# Not a secret: the in-process engine does not check it; the SDK insists on having one.
LOCAL_API_KEY = "assistant-kit-local"

_Client = TypeVar("_Client", openai.OpenAI, openai.AsyncOpenAI)


def provider_settings(
    *,
    custom_llm_provider: str | None = None,
    api_key: str | None = None,
    api_base: str | None = None,
    api_version: str | None = None,
    model_list: Iterable[dict[str, Any]] | None = None,
    timeout: float | None = None,
    max_retries: int = 2,
) -> ProviderSettings:
    """The engine's model-provider settings, from the seed's (LiteLLM's) vocabulary; what each
    parameter means is :func:`assistant_kit.providers.decide`'s rule (for the engine)."""
    destination = decide(
        custom_llm_provider, api_key=api_key, api_base=api_base, api_version=api_version, engine=True
    )
    return destination.settings(model_list=model_list, timeout=timeout, max_retries=max_retries)


def local_client(db: str | os.PathLike[str] | None = None, **model_config: Any) -> openai.OpenAI:
    """An ``openai.OpenAI`` client served by the in-process engine.

    ``db``: a SQLite path, ``":memory:"``, a SQLAlchemy URL, or None for the default store
    (``$ASSISTANT_KIT_DB`` or ``~/.local/share/assistant_kit/assistant_kit.db``).
    ``model_config``: where model calls go — ``custom_llm_provider`` (``"openai"`` /
    ``"azure"``), ``api_key``, ``api_base``, ``api_version``, ``model_list`` (LiteLLM
    routes), ``timeout``, ``max_retries``.
    """
    return _engine_client(openai.OpenAI, db, model_config)


def local_async_client(db: str | os.PathLike[str] | None = None, **model_config: Any) -> openai.AsyncOpenAI:
    """``openai.AsyncOpenAI`` twin of :func:`local_client` (for top-level ``await``)."""
    return _engine_client(openai.AsyncOpenAI, db, model_config)


def _engine_client(
    kind: type[_Client], db: str | os.PathLike[str] | None, model_config: dict[str, Any]
) -> _Client:
    """A ``kind`` client whose transport hands each request to the engine on ``db``, with the
    model settings in its scope."""
    quiet_sdk_deprecations()
    scope = {"assistant_kit.settings": provider_settings(**model_config)}
    app = app_for(db)
    transport: AsyncInProcessTransport | InProcessTransport
    if kind is openai.AsyncOpenAI:
        transport = AsyncInProcessTransport(app, engine_loop(), scope)
        http: Any = openai.DefaultAsyncHttpxClient(transport=transport)
    else:
        transport = InProcessTransport(app, engine_loop(), scope)
        http = openai.DefaultHttpxClient(transport=transport)
    tie_to(transport, app)  # a :memory: engine lives as long as this client
    return kind(api_key=LOCAL_API_KEY, base_url=LOCAL_BASE_URL, max_retries=0, http_client=http)
