"""Python functions as Assistants function tools: schema from the signature, calls validated.

A callable becomes a function tool whose JSON schema pydantic derives from the signature
(``TypeAdapter(fn).json_schema()``); the docstring's first paragraph is the description,
and a Google ``Args:`` / NumPy ``Parameters`` / Sphinx ``:param:`` section gives the
per-parameter descriptions. :func:`call_tool` runs a call with its JSON arguments,
validated (and coerced) by the same adapter; an exception becomes the output
``"Error: <Type>: <message>"`` so the model sees what went wrong and the run goes on.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import re
import threading
from collections.abc import Callable
from typing import Any

import pydantic
import pydantic_core

from ..errors import SessionError

_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")

_GOOGLE = re.compile(r"(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments):")
_NUMPY = frozenset({"Parameters", "Other Parameters", "Keyword Arguments"})
_GOOGLE_ENTRY = re.compile(r"\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)")
_NUMPY_ENTRY = re.compile(r"(\w+)\s*(?::.*)?")
_SPHINX_ENTRY = re.compile(r":param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """``(description, {parameter: description})`` from a Google, NumPy or Sphinx docstring.

    The description is the first paragraph, on one line; a parameter's description joins
    its continuation lines.
    """
    lines = inspect.cleandoc(doc or "").splitlines()
    summary: list[str] = []
    for line in lines:
        if not line.strip() or _GOOGLE.fullmatch(line.strip()) or line.lstrip().startswith(":"):
            break
        summary.append(line.strip())
    params: dict[str, list[str]] = {}
    current: list[str] | None = None
    entry_indent = 0
    section: tuple[str, int] | None = None  # ("google" | "numpy" | "sphinx", header indent)
    for i, line in enumerate(lines):
        text, indent = line.strip(), _indent(line)
        underline = i + 1 < len(lines) and re.fullmatch(r"-{3,}", lines[i + 1].strip())
        sphinx = _SPHINX_ENTRY.fullmatch(text)
        # (cleandoc dedents from the second line, so a header on the first line sits "above" it)
        header_indent = -1 if i == 0 else indent
        if _GOOGLE.fullmatch(text):
            section, current = ("google", header_indent), None
        elif text in _NUMPY and underline:
            section, current = ("numpy", header_indent), None
        elif sphinx:
            section, current, entry_indent = ("sphinx", indent), params.setdefault(sphinx[1], []), indent
            current.append(sphinx[2])
        elif section is None or not text or re.fullmatch(r"-{3,}", text):
            continue
        elif section[0] == "google" and indent <= section[1]:
            section = current = None
        elif section[0] == "numpy" and indent <= section[1] and underline:
            section = current = None
        elif section[0] == "sphinx" and (indent <= section[1] or text.startswith(":")):
            section = current = None
        elif current is not None and indent > entry_indent:
            current.append(text)
        else:
            match = (_GOOGLE_ENTRY if section[0] == "google" else _NUMPY_ENTRY).fullmatch(text)
            if match:
                current, entry_indent = params.setdefault(match[1], []), indent
                if section[0] == "google":
                    current.append(match[2])
    described = {name: " ".join(p for p in parts if p) for name, parts in params.items()}
    return " ".join(summary), {name: text for name, text in described.items() if text}


def function_tool(fn: Callable[..., Any]) -> dict[str, Any]:
    """The Assistants function tool for a Python callable: name, description, JSON schema."""
    name = getattr(fn, "__name__", None)
    if not isinstance(name, str) or not _TOOL_NAME.fullmatch(name):
        raise SessionError(
            f"A function tool needs a name of 1-64 letters, digits, '_' or '-'; {fn!r} has "
            f"{name!r}. Use a def (not a lambda or partial), or pass a dict tool.",
            param="tools",
        )
    try:
        schema = pydantic.TypeAdapter(fn).json_schema()
    except (pydantic.PydanticUserError, TypeError) as exc:
        reason = str(exc).splitlines()[0]
        raise SessionError(
            f"Cannot derive a JSON schema for tool '{name}': {reason}", param="tools"
        ) from None
    description, described = parse_docstring(inspect.getdoc(fn))
    schema.pop("title", None)
    for parameter, prop in schema.get("properties", {}).items():
        prop.pop("title", None)
        if parameter in described:
            prop.setdefault("description", described[parameter])
    function: dict[str, Any] = {"name": name}
    if description:
        function["description"] = description
    function["parameters"] = schema
    return {"type": "function", "function": function}


def _await(awaitable: Any) -> Any:
    """The result of an ``async def`` tool, from sync code that may be inside a running loop."""

    async def wait() -> Any:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(wait())
    result: list[Any] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(wait()))
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    # A thread of its own (with this context, so a notebook's output stays in its cell).
    context = contextvars.copy_context()
    worker = threading.Thread(target=context.run, args=(target,), name="assistant_kit-tool")
    worker.start()
    worker.join()
    if errors:
        raise errors[0]
    return result[0]


def call_tool(fn: Callable[..., Any], arguments: str) -> tuple[str, bool]:
    """Run ``fn`` with a tool call's JSON ``arguments``: ``(output, failed)``.

    Arguments are validated (and coerced) by pydantic against the signature; a str result
    is the output as is, anything else is serialized as JSON. Any exception becomes the
    output ``"Error: <Type>: <message>"`` so the model can see what went wrong.
    """
    try:
        args = json.loads(arguments or "{}")
        if not isinstance(args, dict):
            raise TypeError(f"arguments must be a JSON object, got {type(args).__name__}")
        result = pydantic.TypeAdapter(fn).validate_python(args)
        if inspect.isawaitable(result):
            result = _await(result)
        if isinstance(result, str):
            return result, False
        return pydantic_core.to_json(result, fallback=str).decode(), False
    except Exception as exc:
        return f"Error: {type(exc).__name__}: {exc}", True
