"""Where an Assistants call goes, decided once: :func:`decide`.

The SDK functions (:mod:`assistant_kit.sdk`), ``Session`` (:mod:`assistant_kit.notebook.session`),
``local_client`` (:mod:`assistant_kit.client`) and the proxy's config all take LiteLLM's
vocabulary — ``custom_llm_provider``, ``api_key``, ``api_base``, ``api_version`` — and all of
them ask :func:`decide` what it means, so the rule is written here and nowhere else.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidRequestError
from .models.settings import ProviderSettings

#: The accepted ``custom_llm_provider`` values (any case), besides None (= ``"local"``).
PROVIDERS = ("local", "openai", "azure")


@dataclass(frozen=True)
class Destination:
    """What :func:`decide` decided. ``repr`` never shows ``api_key``.

    ``remote``: the base URL of a server that speaks the Assistants API itself, which gets the
    call as it is (``api_key`` is its key); None: the in-process engine, whose model calls go
    to ``provider`` at ``api_base`` with ``api_key`` / ``api_version``.
    """

    remote: str | None
    provider: str | None  # None (the default: local/, test/ …, plain names to OpenAI) | "openai" | "azure"
    api_key: str | None = field(default=None, repr=False)
    api_base: str | None = None
    api_version: str | None = None

    def settings(
        self,
        *,
        model_list: Iterable[dict[str, Any]] | None = None,
        timeout: float | None = None,
        max_retries: int = 2,
    ) -> ProviderSettings:
        """The engine's :class:`ProviderSettings` for this destination (credentials in memory only)."""
        return ProviderSettings(
            provider=self.provider,
            api_key=self.api_key,
            api_base=self.api_base,
            api_version=self.api_version,
            timeout=timeout,
            model_list=tuple(model_list or ()),
            max_retries=max_retries,
        )


def decide(
    custom_llm_provider: str | None = None,
    *,
    api_key: str | None = None,
    api_base: str | None = None,
    api_version: str | None = None,
    base_url: str | None = None,
    engine: bool = False,
) -> Destination:
    """Where a call goes, and with which credentials. The rule:

    * ``custom_llm_provider`` is None, ``"local"``, ``"openai"`` or ``"azure"``, in any case;
      anything else is an :class:`InvalidRequestError` naming the parameter.
    * ``base_url`` (``Session``'s) names a remote Assistants server outright.
    * ``"openai"`` with an explicit ``api_base`` also means a remote server that speaks the
      Assistants API itself (the kit's proxy, Astra …): LiteLLM's
      ``create_assistants(custom_llm_provider="openai", api_base=..., api_key=...)`` calls are
      passed through to it, unchanged. Its key is ``api_key``, else ``$OPENAI_API_KEY`` (read
      now, so a changed environment is a different destination). ``engine=True``
      (``local_client``, which is the engine by definition) turns this reading off.
    * Everything else runs in the in-process engine, and ``api_key`` / ``api_base`` /
      ``api_version`` are the credentials of its *model* calls. Model names resolve as in
      :mod:`assistant_kit.models.registry`; the provider only says where a plain name
      (``gpt-4o-mini``) goes: for ``"azure"``, to the Azure deployment of that name
      (``api_base`` = the resource endpoint, ``api_version``; or the ``AZURE_*`` environment
      variables); otherwise to OpenAI Chat Completions (``api_key`` or ``$OPENAI_API_KEY``,
      read at call time; ``$OPENAI_BASE_URL`` redirects the model calls only) or, with
      ``api_base``, to any OpenAI-compatible server (Ollama, vLLM …).
    """
    provider = _provider(custom_llm_provider)
    if base_url is None and provider == "openai" and api_base is not None and not engine:
        base_url = api_base
    if base_url is not None:
        return Destination(
            remote=base_url, provider=None, api_key=api_key or os.environ.get("OPENAI_API_KEY")
        )
    return Destination(
        remote=None,
        provider=None if provider == "local" else provider,
        api_key=api_key,
        api_base=api_base,
        api_version=api_version,
    )


def _provider(value: str | None) -> str:
    if value is None:
        return "local"
    if not isinstance(value, str) or value.lower() not in PROVIDERS:
        raise InvalidRequestError(
            f"Unknown custom_llm_provider '{value}'. Choices: {', '.join(PROVIDERS)} (or None).",
            param="custom_llm_provider",
        )
    return value.lower()
