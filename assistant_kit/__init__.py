"""assistant_kit: the Assistants API object model, alive after the hosted API's sunset.

Public names load lazily (PEP 562), so ``import assistant_kit`` costs little more than
``import openai`` and a notebook pays for the engine, pandas or widgets only when used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "local_client": "client",
    "local_async_client": "client",
    "register_model": "models.registry",
    "register_prefix": "models.registry",
    "ProviderSettings": "models.settings",
    "BaseChatModel": "models.base",
    "ModelRequest": "models.base",
    "AssistantKitError": "errors",
    "SessionError": "errors",
    "create_assistants": "sdk",
    "get_assistants": "sdk",
    "delete_assistant": "sdk",
    "create_thread": "sdk",
    "get_thread": "sdk",
    "add_message": "sdk",
    "get_messages": "sdk",
    "run_thread": "sdk",
    "run_thread_stream": "sdk",
    "acreate_assistants": "sdk",
    "aget_assistants": "sdk",
    "adelete_assistant": "sdk",
    "acreate_thread": "sdk",
    "aget_thread": "sdk",
    "a_add_message": "sdk",
    "aget_messages": "sdk",
    "arun_thread": "sdk",
    "arun_thread_stream": "sdk",
    "Session": "notebook.session",
    "inspect": "notebook.inspect",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'assistant_kit' has no attribute '{name}'")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext assistant_kit``: the ``%%assistant`` cell magic and HTML reprs for SDK objects."""
    from .notebook import magics

    magics.load_ipython_extension(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext assistant_kit``: remove the ``%%assistant`` magic."""
    from .notebook import magics

    magics.unload_ipython_extension(ipython)
