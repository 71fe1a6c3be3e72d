"""The rules of vector store requests that the SDK's parameter types cannot express.

Bodies are first checked against the SDK's own ``*_params`` types (:mod:`.validation`); these
add the spec's bounds: ``chunking_strategy`` (``static``: 100 to 4096 tokens, overlap at most
half; :mod:`assistant_kit.retrieval.chunking`), ``expires_after.days`` 1 to 365,
``attributes`` (16 keys of ≤ 64 characters, strings ≤ 512), the filter grammar
(:mod:`assistant_kit.retrieval.filters`; a search's other options are checked by
:mod:`assistant_kit.retrieval.search`). Each failure is a 400 naming the parameter, before
anything is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InvalidRequestError


def _bad(param: str, message: str) -> InvalidRequestError:
    return InvalidRequestError(f"Invalid '{param}': {message}", param=param)


def chunking(strategy: Any, param: str = "chunking_strategy") -> dict[str, Any]:
    """The response form (``{"type": "static", "static": {...}}``) of a request's
    ``chunking_strategy``: ``auto`` (or none) is static 800/400 (the retrieval core's rule)."""
    from ..retrieval.chunking import validate_chunking_strategy

    return validate_chunking_strategy(strategy, param)


def attributes(value: Any, param: str = "attributes") -> None:
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise _bad(param, "expected an object of string, number or boolean values.")
    if len(value) > 16:
        raise _bad(param, f"too many keys ({len(value)}); at most 16 are allowed.")
    for key, item in value.items():
        if len(key) > 64:
            raise _bad(param, f"key '{key[:70]}' is longer than 64 characters.")
        if isinstance(item, str) and len(item) > 512:
            raise _bad(f"{param}.{key}", "string values are at most 512 characters.")
        if not isinstance(item, (str, int, float, bool)):
            raise _bad(f"{param}.{key}", "expected a string, a number or a boolean.")


def expires_after(value: Any, param: str = "expires_after") -> None:
    if value is None:
        return
    days = value.get("days")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 365:
        raise _bad(f"{param}.days", f"{days!r} is outside [1, 365].")


def file_ids(ids: Any, param: str, most: int) -> list[str]:
    ids = list(ids or [])
    if len(ids) > most:
        raise _bad(param, f"at most {most} files, got {len(ids)}.")
    seen = set()
    for index, file_id in enumerate(ids):
        if not isinstance(file_id, str) or not file_id:
            raise _bad(f"{param}[{index}]", "expected a file id.")
        if file_id in seen:
            raise _bad(f"{param}[{index}]", f"file '{file_id}' is listed twice.")
        seen.add(file_id)
    return ids


def check_filter(node: Any, param: str = "filters") -> None:
    """A comparison or ``and``/``or`` compound filter, typed as its operator needs."""
    from ..retrieval.filters import validate_filter

    validate_filter(node, param)


def matches(node: Mapping[str, Any], attrs: Mapping[str, Any] | None) -> bool:
    """Whether a file's ``attributes`` pass a (checked) filter (the retrieval core's rules)."""
    from ..retrieval.filters import matches as passes

    return passes(dict(node), dict(attrs) if attrs is not None else None)
