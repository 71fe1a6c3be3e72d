"""Unknown keys inside nested request objects, found by walking the SDK's parameter types.

pydantic validates the ``*_params`` TypedDicts of ``openai.types.beta`` but ignores keys a
TypedDict does not declare (and a TypedDict cannot be told otherwise from outside), so
``threads.create(messages=[{..., "file_ids": [...]}])`` — a v1 field — would pass and the
files be silently dropped. The hosted API refused such a body with a 400 naming the path
(``Unknown parameter: 'messages[0].file_ids'.``); :func:`first_unknown` finds that path by
walking the JSON body alongside the declared types.

Only TypedDicts are closed: ``Dict[str, …]`` values (``metadata``, a function's
``parameters``, a JSON schema) take any key. For a union (tools, content parts, attachment
tools) a value is fine if some branch accepts it; branches whose ``type`` literal differs from
the value's ``type`` are not tried, so the error names the key the matching branch lacks.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Mapping
from typing import Any, Union

from typing_extensions import is_typeddict

_WRAPPERS = {"Required", "NotRequired", "ReadOnly"}


def _unwrap(tp: Any) -> Any:
    """``Annotated[X, …]``, ``Required[X]``, ``NotRequired[X]`` → ``X``."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated or getattr(origin, "_name", None) in _WRAPPERS:
            tp = typing.get_args(tp)[0]
        elif getattr(origin, "__name__", None) == "Annotated":  # typing_extensions' own
            tp = typing.get_args(tp)[0]
        else:
            return tp


@functools.cache
def fields(typed_dict: Any) -> dict[str, Any]:
    """A TypedDict's keys as they are on the wire (an SDK ``PropertyInfo`` alias wins)."""
    hints = typing.get_type_hints(typed_dict, include_extras=True)
    out = {}
    for name, tp in hints.items():
        alias = next(
            (m.alias for m in getattr(tp, "__metadata__", ()) if getattr(m, "alias", None)),
            name,
        )
        out[alias] = tp
    return out


def _branches(tp: Any) -> list[Any]:
    """The members of a (nested) union, unwrapped; a non-union is its own only branch."""
    tp = _unwrap(tp)
    if typing.get_origin(tp) is Union or type(tp).__name__ == "UnionType":
        return [b for arg in typing.get_args(tp) for b in _branches(arg)]
    return [tp]


def _type_literals(typed_dict: Any) -> tuple[Any, ...] | None:
    tp = fields(typed_dict).get("type")
    if tp is None:
        return None
    tp = _unwrap(tp)
    return typing.get_args(tp) if typing.get_origin(tp) is typing.Literal else None


def first_unknown(tp: Any, value: Any, path: str = "") -> str | None:
    """The path of the first key in ``value`` that type ``tp`` does not declare, or None."""
    branches = _branches(tp)
    if isinstance(value, Mapping):
        candidates = [b for b in branches if is_typeddict(b)]
        if not candidates:
            return None  # a Dict[str, …], or a type error pydantic reports
        wanted = value.get("type")
        matching = [c for c in candidates if wanted in (_type_literals(c) or (wanted,))]
        found = None
        for candidate in matching or candidates:
            where = _in_typeddict(candidate, value, path)
            if where is None:
                return None
            found = found or where
        return found
    if isinstance(value, list):
        for branch in branches:
            origin, args = typing.get_origin(branch), typing.get_args(branch)
            if origin is None or len(args) != 1 or (isinstance(origin, type) and issubclass(origin, Mapping)):
                continue
            for index, item in enumerate(value):
                where = first_unknown(args[0], item, f"{path}[{index}]")
                if where is not None:
                    return where
            return None
    return None


def _in_typeddict(typed_dict: Any, value: Mapping[str, Any], path: str) -> str | None:
    declared = fields(typed_dict)
    for key, item in value.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in declared:
            return where
        found = first_unknown(declared[key], item, where)
        if found is not None:
            return found
    return None
