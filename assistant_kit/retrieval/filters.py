"""Attribute filters of search (and of file_search): comparisons and ``and``/``or`` compounds.

``validate_filter`` checks a request's filter before anything runs (400 naming the exact
parameter, e.g. ``filters.filters[1].value``); ``matches`` evaluates a validated filter on a
file's ``attributes``. Semantics (OpenAI documents only the operators, so these are ours):
a missing key matches only ``ne`` and ``nin``; ``gt``/``gte``/``lt``/``lte`` compare numbers
with numbers and strings with strings (anything else is false); ``eq`` between a number and a
boolean is false (``True`` is not ``1``); ``in``/``nin`` take an array of strings/numbers.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidRequestError

COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin")
COMPOUNDS = ("and", "or")
MAX_DEPTH = 10


def _bad(message: str, param: str) -> InvalidRequestError:
    return InvalidRequestError(message, param=param)


def validate_filter(filter: Any, param: str = "filters", _depth: int = 0) -> dict[str, Any]:
    """The filter unchanged if well-formed; else ``InvalidRequestError`` naming the parameter."""
    if not isinstance(filter, dict):
        raise _bad(f"Invalid type for '{param}': expected an object.", param)
    if _depth > MAX_DEPTH:
        raise _bad(f"Invalid '{param}': filters nest at most {MAX_DEPTH} levels deep.", param)
    kind = filter.get("type", "eq")
    if kind in COMPOUNDS:
        extra = set(filter) - {"type", "filters"}
        if extra:
            name = f"{param}.{sorted(extra)[0]}"
            raise _bad(f"Unknown parameter: '{name}'.", name)
        items = filter.get("filters")
        if not isinstance(items, list) or not items:
            raise _bad(
                f"Invalid '{param}.filters': expected a non-empty array of filters.", f"{param}.filters"
            )
        for i, item in enumerate(items):
            validate_filter(item, f"{param}.filters[{i}]", _depth + 1)
        return filter
    if kind not in COMPARISONS:
        raise _bad(
            f"Invalid value for '{param}.type': expected one of {', '.join(COMPARISONS + COMPOUNDS)}.",
            f"{param}.type",
        )
    extra = set(filter) - {"type", "key", "value"}
    if extra:
        name = f"{param}.{sorted(extra)[0]}"
        raise _bad(f"Unknown parameter: '{name}'.", name)
    if not isinstance(filter.get("key"), str):
        raise _bad(f"Invalid type for '{param}.key': expected a string.", f"{param}.key")
    if "value" not in filter:
        raise _bad(f"Missing required parameter: '{param}.value'.", f"{param}.value")
    value = filter["value"]
    if kind in ("in", "nin"):
        if not isinstance(value, list) or not all(_scalar(v) and not isinstance(v, bool) for v in value):
            raise _bad(
                f"Invalid type for '{param}.value': '{kind}' expects an array of strings or numbers.",
                f"{param}.value",
            )
    elif not _scalar(value):
        raise _bad(
            f"Invalid type for '{param}.value': expected a string, number or boolean.", f"{param}.value"
        )
    return filter


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def _same_kind(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return True
    return isinstance(a, str) and isinstance(b, str)


def matches(filter: dict[str, Any], attributes: dict[str, Any] | None) -> bool:
    """Does a file with these ``attributes`` pass the (validated) filter?"""
    kind = filter.get("type", "eq")
    if kind == "and":
        return all(matches(f, attributes) for f in filter["filters"])
    if kind == "or":
        return any(matches(f, attributes) for f in filter["filters"])
    attributes = attributes or {}
    key, value = filter["key"], filter["value"]
    present = key in attributes
    actual = attributes.get(key)
    if kind == "in":
        return present and any(_same_kind(actual, v) and actual == v for v in value)
    if kind == "nin":
        return not present or not any(_same_kind(actual, v) and actual == v for v in value)
    if kind == "ne":
        return not present or not (_same_kind(actual, value) and actual == value)
    if not present or not _same_kind(actual, value):
        return False
    if kind == "eq":
        return bool(actual == value)
    if isinstance(actual, bool):
        return False  # booleans are not ordered
    if kind == "gt":
        return bool(actual > value)
    if kind == "gte":
        return bool(actual >= value)
    if kind == "lt":
        return bool(actual < value)
    return bool(actual <= value)
