"""Request validation against the SDK's own parameter types.

Bodies are checked with pydantic ``TypeAdapter``s built over the ``*_params`` TypedDicts
that ship in ``openai.types.beta`` — the same definitions the client was generated from —
so there is no hand-written schema to drift. Errors name the offending parameter
(``tools[0].function.name``), unknown parameters are rejected like OpenAI does (nested ones
too, by path: :mod:`.unknown`), and the few rules a type cannot express (metadata limits,
list query ranges) live here too.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidRequestError
from . import unknown as unknown_keys

# body kind -> (module under openai.types.beta, TypedDict name, required keys)
_PARAMS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "assistant.create": ("assistant_create_params", "AssistantCreateParams", ("model",)),
    "assistant.update": ("assistant_update_params", "AssistantUpdateParams", ()),
    "thread.create": ("thread_create_params", "ThreadCreateParams", ()),
    "thread.update": ("thread_update_params", "ThreadUpdateParams", ()),
    "thread.create_and_run": (
        "thread_create_and_run_params",
        "ThreadCreateAndRunParamsBase",
        ("assistant_id",),
    ),
    "message.create": ("threads.message_create_params", "MessageCreateParams", ("role", "content")),
    "message.update": ("threads.message_update_params", "MessageUpdateParams", ()),
    "run.create": ("threads.run_create_params", "RunCreateParamsBase", ("assistant_id",)),
    "run.update": ("threads.run_update_params", "RunUpdateParams", ()),
    "run.submit_tool_outputs": (
        "threads.run_submit_tool_outputs_params",
        "RunSubmitToolOutputsParamsBase",
        ("tool_outputs",),
    ),
    # Vector stores: their params live in openai.types, not openai.types.beta.
    "vector_store.create": ("openai.types.vector_store_create_params", "VectorStoreCreateParams", ()),
    "vector_store.update": ("openai.types.vector_store_update_params", "VectorStoreUpdateParams", ()),
    "vector_store.search": ("openai.types.vector_store_search_params", "VectorStoreSearchParams", ("query",)),
    "vector_store.file.create": (
        "openai.types.vector_stores.file_create_params",
        "FileCreateParams",
        ("file_id",),
    ),
    "vector_store.file.update": ("openai.types.vector_stores.file_update_params", "FileUpdateParams", ()),
    "vector_store.file_batch.create": (
        "openai.types.vector_stores.file_batch_create_params",
        "FileBatchCreateParams",
        (),
    ),
}
_PATH_PARAMS = {"thread_id", "run_id", "vector_store_id"}
_STREAMABLE = {"thread.create_and_run", "run.create", "run.submit_tool_outputs"}


def _typed_dict(kind: str) -> Any:
    module, name, _ = _PARAMS[kind]
    path = module if module.startswith("openai.") else f"openai.types.beta.{module}"
    return getattr(importlib.import_module(path), name)


@functools.cache
def _adapter(kind: str) -> tuple[Any, frozenset[str], dict[str, str]]:
    from pydantic import TypeAdapter

    typed_dict = _typed_dict(kind)
    allowed = frozenset(typed_dict.__annotations__) - _PATH_PARAMS
    if kind in _STREAMABLE:
        allowed |= {"stream"}
    path = {key: "-" for key in _PATH_PARAMS & set(typed_dict.__annotations__)}
    return TypeAdapter(typed_dict), allowed, path


_SCALAR_LABELS = frozenset({"str", "int", "float", "bool", "bytes", "none"})


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for index, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and (part != part.lower() or "[" in part):
            continue  # pydantic's union-branch labels (class names, literal[...]), not a path
        elif index == len(loc) - 1 and part in _SCALAR_LABELS:
            continue  # a scalar union branch (``model: str | ChatModel`` → ``model.str``)
        else:
            out += f".{part}" if out else str(part)
    return out


def _materialize(value: Any, raw: Any, path: tuple[Any, ...] = ()) -> None:
    """Walk a validated value so lazily validated iterables (the SDK types use ``Iterable``)
    report their errors now, with the full path to the bad item. ``raw`` is the JSON it came
    from: an ``Iterable`` accepts any iterable, but on the wire only an array is one."""
    from pydantic import ValidationError

    if isinstance(value, Mapping):
        for key, item in value.items():
            _materialize(item, raw.get(key) if isinstance(raw, Mapping) else None, (*path, key))
    elif not isinstance(value, (str, bytes)) and hasattr(value, "__iter__"):
        if not isinstance(raw, list):
            param = _loc(path)
            raise InvalidRequestError(f"Invalid value for '{param}': expected an array.", param=param)
        iterator = iter(value)
        index = 0
        while True:
            try:
                item = next(iterator)
            except StopIteration:
                return
            except ValidationError as exc:
                err = _best_error(exc)
                raise _invalid(err, (*path, index, *err["loc"][1:])) from None
            _materialize(item, raw[index], (*path, index))
            index += 1


def _best_error(exc: Any) -> Any:
    """Of a union's errors, prefer a branch whose ``type`` discriminator matched."""
    errors = exc.errors()
    wrong_branch = {e["loc"][:-1] for e in errors if e["type"] == "literal_error" and e["loc"][-1] == "type"}
    for err in errors:
        if not any(err["loc"][: len(b)] == b for b in wrong_branch):
            return err
    return errors[0]


#: Deepest nesting a request body may have (a tool's JSON schema is the deepest legitimate part).
MAX_DEPTH = 64
#: Integers in requests are 32-bit on OpenAI's side; larger ones overflow somewhere downstream.
MAX_INT = 2**31 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(raw: bytes) -> dict[str, Any]:
    """The JSON object in ``raw``, checked before anything can be stored: valid UTF-8 and
    valid Unicode (a ``\\ud800`` escape decodes to a lone surrogate, which no database
    encoding can hold — stored, it would make every later read of the object fail), no
    ``NaN``/``Infinity``, nesting at most :data:`MAX_DEPTH` deep. Errors name the parameter."""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise InvalidRequestError(
            f"The request body is nested too deeply (more than {MAX_DEPTH} levels)."
        ) from None
    except ValueError as exc:
        raise InvalidRequestError(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    check_tree(body)
    return body


def check_tree(body: Any) -> None:
    """Every string (keys too) valid Unicode, nesting at most :data:`MAX_DEPTH`; iterative,
    so no body can exhaust the stack."""
    stack: list[tuple[Any, str, int]] = [(body, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidRequestError(
                f"Invalid value for '{path}': nested more than {MAX_DEPTH} levels deep.", param=path or None
            )
        if isinstance(value, str):
            if _SURROGATE.search(value):
                raise InvalidRequestError(
                    f"Invalid value for '{path}': the string contains a lone UTF-16 surrogate "
                    "(it is not valid Unicode).",
                    param=path or None,
                )
        elif isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}" if path else str(key)
                if _SURROGATE.search(key):
                    raise InvalidRequestError(
                        f"Invalid key in '{path or 'body'}': it contains a lone UTF-16 surrogate.",
                        param=path or None,
                    )
                stack.append((item, where, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))


def validate_body(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """Check ``body`` for ``kind``; return it unchanged (plain JSON values) when valid."""
    from pydantic import ValidationError

    adapter, allowed, path_params = _adapter(kind)
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidRequestError(f"Unrecognized request argument supplied: {unknown[0]}", param=unknown[0])
    check_nested_keys(kind, body)
    for key in _PARAMS[kind][2]:
        if body.get(key) is None:
            raise InvalidRequestError(f"Missing required parameter: '{key}'.", param=key)
    try:
        validated = adapter.validate_python({**body, **path_params})
    except ValidationError as exc:
        err = _best_error(exc)
        raise _invalid(err, err["loc"]) from None
    _materialize(validated, body)
    check_metadata(body.get("metadata"))
    for key in ("messages", "additional_messages"):
        for index, message in enumerate(body.get(key) or []):
            check_metadata(message.get("metadata"), f"{key}[{index}].metadata")
    if kind == "thread.create_and_run":
        check_metadata((body.get("thread") or {}).get("metadata"), "thread.metadata")
        for index, message in enumerate((body.get("thread") or {}).get("messages") or []):
            check_metadata(message.get("metadata"), f"thread.messages[{index}].metadata")
    check_ranges(body)
    check_lengths(body)
    check_names(body)
    if body.get("stream") is not None and not isinstance(body["stream"], bool):
        raise InvalidRequestError("Invalid 'stream': expected a boolean.", param="stream")
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "function":
        if not (choice.get("function") or {}).get("name"):
            raise InvalidRequestError(
                "Invalid 'tool_choice': a function tool choice needs 'function.name'.",
                param="tool_choice.function.name",
            )
    return body


def check_nested_keys(kind: str, body: Mapping[str, Any]) -> None:
    """A key that a nested object's type does not declare is a 400 naming its path, in
    OpenAI's words (see :mod:`.unknown`)."""
    declared = unknown_keys.fields(_typed_dict(kind))
    for key, value in body.items():
        if key in declared:
            path = unknown_keys.first_unknown(declared[key], value, key)
            if path is not None:
                raise InvalidRequestError(f"Unknown parameter: '{path}'.", param=path)


def _invalid(err: Mapping[str, Any], loc: tuple[Any, ...]) -> InvalidRequestError:
    param = _loc(tuple(loc))
    value = err.get("input")
    shown = json.dumps(value)[:80] if isinstance(value, (str, int, float, bool)) else None
    detail = f" (got {shown})" if shown is not None else ""
    hint = ""
    if isinstance(value, str) and re.fullmatch(r"(.*\.)?tools\[\d+\]", param):
        # tools=["code_interpreter"] is the natural first try; say what a tool looks like.
        if value in ("code_interpreter", "file_search", "function"):
            hint = f' A tool is an object: use {{"type": "{value}"'
            hint += ', "function": {"name": ...}}.' if value == "function" else "}."
        else:
            hint = ' A tool is an object, such as {"type": "code_interpreter"}.'
    return InvalidRequestError(f"Invalid value for '{param}': {err['msg']}{detail}.{hint}", param=param)


def check_metadata(metadata: Any, param: str = "metadata") -> None:
    """At most 16 pairs; keys ≤ 64 characters; values strings ≤ 512 characters."""
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise InvalidRequestError(f"'{param}' must be an object of string pairs.", param=param)
    if len(metadata) > 16:
        raise InvalidRequestError(
            f"Invalid '{param}': too many keys ({len(metadata)}); at most 16 are allowed.",
            param=param,
        )
    for key, value in metadata.items():
        if len(key) > 64:
            raise InvalidRequestError(
                f"Invalid '{param}': key '{key[:20]}…' is longer than 64 characters.", param=param
            )
        if not isinstance(value, str) or len(value) > 512:
            raise InvalidRequestError(
                f"Invalid '{param}.{key}': values must be strings of at most 512 characters.",
                param=f"{param}.{key}",
            )


_MAX_LENGTHS = {"name": 256, "description": 512, "instructions": 256_000}


def check_lengths(body: Mapping[str, Any]) -> None:
    """The spec's size limits that the SDK's types cannot express."""
    for key, limit in _MAX_LENGTHS.items():
        value = body.get(key)
        if isinstance(value, str) and len(value) > limit:
            raise InvalidRequestError(
                f"Invalid '{key}': {len(value)} characters; the maximum is {limit}.", param=key
            )
    tools = body.get("tools")
    if isinstance(tools, list) and len(tools) > 128:
        raise InvalidRequestError(f"Invalid 'tools': {len(tools)} tools; the maximum is 128.", param="tools")
    if isinstance(body.get("content"), list) and not body["content"]:
        raise InvalidRequestError("Invalid 'content': at least one content part is needed.", param="content")


def _number(body: Mapping[str, Any], key: str, param: str | None = None) -> Any:
    """``body[key]`` if it is a number; a boolean is a 400 (JSON ``true`` is not ``1``)."""
    value = body.get(key)
    if isinstance(value, bool):
        param = param or key
        raise InvalidRequestError(f"Invalid '{param}': expected a number, got a boolean.", param=param)
    return value


def check_ranges(body: Mapping[str, Any]) -> None:
    for key, low, high in (("temperature", 0, 2), ("top_p", 0, 1)):
        value = _number(body, key)
        if value is not None and not low <= value <= high:
            raise InvalidRequestError(f"Invalid '{key}': {value} is outside [{low}, {high}].", param=key)
    for key in ("max_prompt_tokens", "max_completion_tokens"):
        value = _number(body, key)
        if value is not None and not 256 <= value <= MAX_INT:  # the spec's minimum for both limits
            raise InvalidRequestError(
                f"Invalid '{key}': {value} is outside [256, {MAX_INT}] (256 is the spec's minimum).",
                param=key,
            )
    strategy = body.get("truncation_strategy")
    if strategy and strategy.get("type") == "last_messages":
        param = "truncation_strategy.last_messages"
        value = _number(strategy, "last_messages", param)
        if not isinstance(value, int) or not 1 <= value <= MAX_INT:
            raise InvalidRequestError(
                f"Invalid '{param}': must be an integer in [1, {MAX_INT}] when type is 'last_messages'.",
                param=param,
            )


_FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_MODEL_CHARS = 256


def check_names(body: Mapping[str, Any]) -> None:
    """Model and function names as OpenAI accepts them: a model name of 1-256 printable
    characters; function names ``^[a-zA-Z0-9_-]{1,64}$`` (in ``tools`` and ``tool_choice``)."""
    model = body.get("model")
    if isinstance(model, str) and (
        not model.strip() or len(model) > MAX_MODEL_CHARS or not model.isprintable()
    ):
        raise InvalidRequestError(
            f"Invalid 'model': expected a model name of 1-{MAX_MODEL_CHARS} printable characters.",
            param="model",
        )
    for index, tool in enumerate(body.get("tools") or ()):
        function = tool.get("function") if isinstance(tool, Mapping) else None
        name = function.get("name") if isinstance(function, Mapping) else None
        if isinstance(name, str) and not _FUNCTION_NAME.match(name):
            param = f"tools[{index}].function.name"
            raise InvalidRequestError(
                f"Invalid '{param}': '{name[:70]}' must be 1-64 characters of a-z, A-Z, 0-9, "
                "underscore or dash.",
                param=param,
            )
    choice = body.get("tool_choice")
    if isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        name = choice["function"].get("name")
        if isinstance(name, str) and not _FUNCTION_NAME.match(name):
            raise InvalidRequestError(
                f"Invalid 'tool_choice.function.name': '{name[:70]}' is not a valid function name.",
                param="tool_choice.function.name",
            )


def list_params(
    query: Mapping[str, str],
    *,
    filters: tuple[str, ...] = (),
    default_limit: int = 20,
    max_limit: int = 100,
    before: bool = True,
    ignored: tuple[str, ...] = ("include[]", "include"),
) -> dict[str, Any]:
    """A list route's query: ``limit`` 1..``max_limit`` (default ``default_limit``), ``order``
    asc|desc (default desc), ``after`` and (when the route has it) ``before`` cursors, and the
    route's ``filters`` (``run_id``, ``purpose``), present in the result only when given.
    ``ignored`` parameters are accepted and dropped; any other is a 400 naming it."""
    allowed = {"limit", "order", "after", *(("before",) if before else ()), *filters, *ignored}
    for key in query:
        if key not in allowed:
            raise InvalidRequestError(f"Unrecognized query parameter: {key}", param=key)
    out: dict[str, Any] = {"limit": default_limit, "order": "desc", "after": None, "before": None}
    if "limit" in query:
        try:
            out["limit"] = int(query["limit"])
        except ValueError:
            raise InvalidRequestError(
                f"Invalid 'limit': expected an integer, got '{query['limit']}'.", param="limit"
            ) from None
        if not 1 <= out["limit"] <= max_limit:
            raise InvalidRequestError(
                f"Invalid 'limit': {out['limit']} is outside [1, {max_limit}].", param="limit"
            )
    if "order" in query:
        if query["order"] not in ("asc", "desc"):
            raise InvalidRequestError(
                f"Invalid 'order': expected 'asc' or 'desc', got '{query['order']}'.", param="order"
            )
        out["order"] = query["order"]
    for key in ("after", "before", *filters):
        if query.get(key):
            out[key] = query[key]
    return out
