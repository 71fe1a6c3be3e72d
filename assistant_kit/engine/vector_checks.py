"""The rules of vector store requests that the SDK's parameter types cannot express, and
attribute filters (checked here, evaluated in :func:`matches`).

Bodies are first checked against the SDK's own ``*_params`` types (:mod:`.validation`); these
add the spec's bounds — ``chunking_strategy`` (``static``: 100 to 4096 tokens, overlap at most
half), ``expires_after.days`` 1 to 365, ``attributes`` (16 keys of ≤ 64 characters, strings
≤ 512), ``max_num_results`` 1 to 50, ``score_threshold`` 0 to 1, the filter grammar — each failure a
400 naming the parameter, before anything is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InvalidRequestError

AUTO_CHUNKING = {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}
MIN_CHUNK_TOKENS, MAX_CHUNK_TOKENS = 100, 4096
COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin")
COMPOUNDS = ("and", "or")
MAX_FILTER_DEPTH = 16


def _bad(param: str, message: str) -> InvalidRequestError:
    return InvalidRequestError(f"Invalid '{param}': {message}", param=param)


def chunking(strategy: Any, param: str = "chunking_strategy") -> dict[str, Any]:
    """The response form (``{"type": "static", "static": {...}}``) of a request's
    ``chunking_strategy``: ``auto`` (or none) is static 800/400."""
    if strategy is None or strategy.get("type") == "auto":
        return {"type": "static", "static": dict(AUTO_CHUNKING)}
    static = strategy.get("static") or {}
    size = static.get("max_chunk_size_tokens")
    overlap = static.get("chunk_overlap_tokens")
    where = f"{param}.static"
    if not isinstance(size, int) or isinstance(size, bool):
        raise _bad(f"{where}.max_chunk_size_tokens", "expected an integer.")
    if not isinstance(overlap, int) or isinstance(overlap, bool):
        raise _bad(f"{where}.chunk_overlap_tokens", "expected an integer.")
    if not MIN_CHUNK_TOKENS <= size <= MAX_CHUNK_TOKENS:
        raise _bad(
            f"{where}.max_chunk_size_tokens", f"{size} is outside [{MIN_CHUNK_TOKENS}, {MAX_CHUNK_TOKENS}]."
        )
    if overlap < 0 or overlap > size // 2:
        raise _bad(
            f"{where}.chunk_overlap_tokens",
            f"{overlap} must be between 0 and half of max_chunk_size_tokens ({size // 2}).",
        )
    return {"type": "static", "static": {"max_chunk_size_tokens": size, "chunk_overlap_tokens": overlap}}


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


def search_options(body: Mapping[str, Any]) -> None:
    limit = body.get("max_num_results")
    if limit is not None and (isinstance(limit, bool) or not 1 <= limit <= 50):
        raise _bad("max_num_results", f"{limit!r} is outside [1, 50].")
    threshold = (body.get("ranking_options") or {}).get("score_threshold")
    if threshold is not None and (isinstance(threshold, bool) or not 0 <= threshold <= 1):
        raise _bad("ranking_options.score_threshold", f"{threshold!r} is outside [0, 1].")
    query = body["query"]
    queries = [query] if isinstance(query, str) else list(query)
    if not queries or not any(q.strip() for q in queries):
        raise _bad("query", "expected a non-empty query.")
    if body.get("filters") is not None:
        check_filter(body["filters"])


def check_filter(node: Any, param: str = "filters", depth: int = 0) -> None:
    """A comparison (``{type, key, value}``) or compound (``{type: and|or, filters}``) filter;
    values typed as their operator needs (numbers for ``gt``…, arrays for ``in``/``nin``)."""
    if depth > MAX_FILTER_DEPTH:
        raise _bad(param, f"filters nest at most {MAX_FILTER_DEPTH} deep.")
    if not isinstance(node, Mapping):
        raise _bad(param, "expected a filter object.")
    kind = node.get("type")
    if kind in COMPOUNDS:
        children = node.get("filters")
        if not isinstance(children, list) or not children:
            raise _bad(f"{param}.filters", "expected a non-empty array of filters.")
        extra = set(node) - {"type", "filters"}
        if extra:
            raise InvalidRequestError(f"Unknown parameter: '{param}.{sorted(extra)[0]}'.", param=param)
        for index, child in enumerate(children):
            check_filter(child, f"{param}.filters[{index}]", depth + 1)
        return
    if kind not in COMPARISONS:
        raise _bad(f"{param}.type", f"expected one of {', '.join(COMPARISONS + COMPOUNDS)}, got {kind!r}.")
    extra = set(node) - {"type", "key", "value"}
    if extra:
        raise InvalidRequestError(f"Unknown parameter: '{param}.{sorted(extra)[0]}'.", param=param)
    if not isinstance(node.get("key"), str) or not node["key"]:
        raise _bad(f"{param}.key", "expected an attribute name.")
    value = node.get("value")
    if kind in ("in", "nin"):
        if not isinstance(value, list) or not value:
            raise _bad(f"{param}.value", f"'{kind}' compares with a non-empty array of strings or numbers.")
        for item in value:
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                raise _bad(f"{param}.value", "array items must be strings or numbers.")
    elif kind in ("gt", "gte", "lt", "lte"):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise _bad(f"{param}.value", f"'{kind}' compares with a number (or a string).")
    elif not isinstance(value, (str, int, float, bool)):
        raise _bad(f"{param}.value", f"'{kind}' compares with a string, a number or a boolean.")


def _same_kind(a: Any, b: Any) -> bool:
    number = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    return (isinstance(a, number) and isinstance(b, number)) or (isinstance(a, str) and isinstance(b, str))


def matches(node: Mapping[str, Any], attrs: Mapping[str, Any] | None) -> bool:
    """Whether a file's ``attributes`` pass a (checked) filter. A missing attribute, or one of
    another type than the value, fails every comparison but ``ne`` and ``nin``."""
    kind = node["type"]
    if kind == "and":
        return all(matches(child, attrs) for child in node["filters"])
    if kind == "or":
        return any(matches(child, attrs) for child in node["filters"])
    attrs = attrs or {}
    value = node["value"]
    if node["key"] not in attrs:
        return kind in ("ne", "nin")
    have = attrs[node["key"]]
    if kind in ("in", "nin"):
        found = any(_same_kind(have, item) and have == item for item in value)
        return found if kind == "in" else not found
    if not _same_kind(have, value):
        return kind == "ne"
    if kind == "eq":
        return bool(have == value)
    if kind == "ne":
        return bool(have != value)
    if kind == "gt":
        return bool(have > value)
    if kind == "gte":
        return bool(have >= value)
    if kind == "lt":
        return bool(have < value)
    return bool(have <= value)
