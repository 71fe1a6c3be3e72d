"""What a model backend is given: :class:`ProviderSettings` (where calls go, with which
credentials) and the :data:`ModelFactory` signature.

Below both the registry and the backends, so a backend never imports the registry that
imports it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .base import BaseChatModel


@dataclass(frozen=True)
class ProviderSettings:
    """Where model calls go, with which credentials. ``repr`` never shows ``api_key``.

    Credentials live here only, in memory, for the duration of the request/run that carries
    them; they are never written to the store and never printed.
    """

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


#: A backend for a name: ``factory(rest_of_name, settings)`` (the rest after the prefix).
ModelFactory = Callable[[str, ProviderSettings], BaseChatModel]
