"""Deterministic models that ship in the package, for tests, docs and teaching.

``test/echo``
    Streams the last user message back word by word (whitespace kept, so the joined
    deltas equal the input). Usage counts whitespace-separated words.
``test/tools``
    When the run offers function tools and the last input is a user message, it calls
    every function tool once, in parallel, with arguments generated from each tool's JSON
    schema (every required property filled with a value of its type). With
    ``parallel_tool_calls=false`` it calls them one per round instead — N tools, N rounds —
    which is the deterministic way to exercise multi-round tool use. ``tool_choice``
    ``"none"`` suppresses calls; a named function calls only that one; ``"required"`` or a
    named function makes it call even when the last input is not a user message. Once every tool has
    answered it replies with a text that contains each output verbatim.
    Without tools it behaves like ``test/echo``.

    When ``code_interpreter`` is offered it runs code first, one call per round: each fenced
    code block of the last user message (```` ```python ````), in order, or when there is
    none :data:`DEFAULT_PROGRAM` (which prints ``squares: [1, 4, 9, 16, 25]`` and
    ``sum: 55``). The arguments stream in small fragments, as a real model's do. Then it
    calls the function tools as above, and its reply contains every tool's output verbatim
    (``code_interpreter returned …``), in call order.
``test/search``
    Exercises ``file_search`` deterministically. When the run offers it and it has not been
    answered since the last user message, it calls it once with ``{"queries": [...]}``: each
    non-empty line of the last user message is a query (at most 5), except lines starting
    with ``answer:``. Once the results are in, it answers from the first one: the result's
    first sentence followed by the result's marker as the model read it with ``source``
    after the dagger (``【0:0†source】`` for the first result of the run's first search); when
    the search found nothing, ``No results.``. A line ``answer: <text>`` in the user message
    replaces that answer with ``<text>`` verbatim (markers and all: how tests feed the
    citation handling invented or mangled markers). Without ``file_search`` it echoes.
``test/cite``
    Tests of citations (:class:`CiteModel`): searches once when offered ``file_search``,
    then answers with the last user message verbatim, three characters a delta.
``register_model(name, callable)``
    :class:`FunctionModel` — your own Python function as a model.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from .._ids import new_id
from ..errors import ModelConfigError
from .base import (
    BaseChatModel,
    Finish,
    ModelEvent,
    ModelRequest,
    TextDelta,
    ToolCallDelta,
    Usage,
    content_text,
)
from .settings import ProviderSettings

DEFAULT_PROGRAM = """squares = [n * n for n in range(1, 6)]
print("squares:", squares)
print("sum:", sum(squares))
"""
# A fenced block: an opening fence with any info string, its body, the closing fence. Every
# block is matched, so one block's closing fence never opens the next; only blocks whose
# language is python (or none) are run.
_FENCE = re.compile(r"```[ \t]*([^\n`]*?)[ \t]*\r?\n(.*?)```", re.DOTALL)
_PYTHON = frozenset({"", "python", "py", "python3", "ipython"})


def _programs(text: str) -> list[str]:
    """The python code blocks of ``text`` (CRLF line ends made LF)."""
    programs = []
    for info, body in _FENCE.findall(text):
        language = (info.split() or [""])[0].lower()
        if language in _PYTHON:
            programs.append(body.replace("\r\n", "\n"))
    return programs


def _words(text: str) -> list[str]:
    return re.findall(r"\S+\s*|\s+", text)


CODE = "code_interpreter"


def _prompt_tokens(request: ModelRequest) -> int:
    return sum(len(content_text(m.get("content")).split()) for m in request.messages)


def _last_user_text(request: ModelRequest) -> str:
    for message in reversed(request.messages):
        if message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


async def _stream_text(text: str, request: ModelRequest) -> AsyncIterator[ModelEvent]:
    words = _words(text)
    budget = request.max_tokens
    emitted = 0
    for word in words:
        if budget is not None and emitted >= budget:
            yield Usage(_prompt_tokens(request), emitted)
            yield Finish("length")
            return
        yield TextDelta(word)
        emitted += 1
        await asyncio.sleep(0)  # a real scheduling point, so cancellation is prompt
    yield Usage(_prompt_tokens(request), emitted)
    yield Finish("stop")


def example_value(schema: dict[str, Any]) -> Any:
    """A value valid for a (simple) JSON schema: every required property filled."""
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return example_value(schema[key][0])
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: example_value(props.get(name, {})) for name in schema.get("required", [])}
    if kind == "array":
        return [example_value(schema["items"])] if schema.get("minItems") and "items" in schema else []
    return {"string": "text", "integer": 1, "number": 1.5, "boolean": True, "null": None}.get(kind, "text")


class _Scripted(BaseChatModel):
    def count_tokens(self, messages: list[dict[str, Any]]) -> int:
        """Words, the same unit these models report as usage."""
        return sum(len(content_text(m.get("content")).split()) for m in messages)


class EchoModel(_Scripted):
    name = "test/echo"

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        async for event in _stream_text(_last_user_text(request), request):
            yield event


class ToolsModel(_Scripted):
    name = "test/tools"

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        tools = [
            t
            for t in request.tools
            if t.get("type") == "function" and t["function"]["name"] not in request.builtin_tools
        ]
        choice = request.tool_choice
        code = CODE in request.builtin_tools and choice != "none"
        if choice == "none":
            tools = []
        elif isinstance(choice, dict):
            wanted = choice.get("function", {}).get("name")
            tools = [t for t in tools if t["function"]["name"] == wanted]
            code = code and wanted == CODE
        # Tool calls already answered since the last user message, by name (code_interpreter's
        # in order: it may run several times).
        answered: dict[str, str] = {}
        code_outputs: list[str] = []
        call_names: dict[str, str] = {}
        for message in request.messages:
            if message.get("role") == "user":
                answered.clear()
                code_outputs.clear()
            for call in message.get("tool_calls") or []:
                call_names[call["id"]] = call["function"]["name"]
            if message.get("role") == "tool":
                name = call_names.get(message.get("tool_call_id"), "?")
                output = content_text(message.get("content"))
                if name == CODE:
                    code_outputs.append(output)
                else:
                    answered[name] = output
        last_role = request.messages[-1].get("role") if request.messages else None
        if code and last_role in ("user", "tool"):
            programs = _programs(_last_user_text(request)) or [DEFAULT_PROGRAM]
            if len(code_outputs) < len(programs):
                arguments = json.dumps({"code": programs[len(code_outputs)]})
                yield ToolCallDelta(0, id=new_id("call"), name=CODE)
                for start in range(0, len(arguments), 12):
                    yield ToolCallDelta(0, arguments=arguments[start : start + 12])
                    await asyncio.sleep(0)
                yield Usage(_prompt_tokens(request), 1)
                yield Finish("tool_calls")
                return
        pending = [t for t in tools if t["function"]["name"] not in answered]
        forced = choice == "required" or isinstance(choice, dict)
        next_round = last_role == "tool" and not request.parallel_tool_calls
        after_code = last_role == "tool" and code_outputs and not answered  # code ran; functions next
        if pending and (last_role == "user" or next_round or after_code or (forced and last_role != "tool")):
            batch = pending if request.parallel_tool_calls else pending[:1]
            for index, tool in enumerate(batch):
                fn = tool["function"]
                args = json.dumps(example_value(fn.get("parameters") or {}))
                yield ToolCallDelta(index, id=new_id("call"), name=fn["name"])
                # Arguments in two fragments, as real servers stream them.
                half = len(args) // 2
                for fragment in (args[:half], args[half:]):
                    yield ToolCallDelta(index, arguments=fragment)
                    await asyncio.sleep(0)
            yield Usage(_prompt_tokens(request), len(batch))
            yield Finish("tool_calls")
            return
        results = [(CODE, o) for o in code_outputs] + list(answered.items())
        if results:
            text = "Tool results: " + "; ".join(f"{n} returned {o}" for n, o in results)
        else:
            text = _last_user_text(request)
        async for event in _stream_text(text, request):
            yield event


SEARCH = "file_search"
_MARKER = re.compile(r"【(\d+):(\d+)†[^】\n]*】\n")
_SENTENCE = re.compile(r"\s*(.+?[.!?])(?:\s|$)", re.DOTALL)


class SearchModel(_Scripted):
    name = "test/search"

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        lines = [line.strip() for line in _last_user_text(request).splitlines() if line.strip()]
        scripted = next((line[7:].strip() for line in lines if line.startswith("answer:")), None)
        queries = [line for line in lines if not line.startswith("answer:")][:5]
        results = None  # the file_search output read since the last user message
        searches: set[str] = set()
        for message in request.messages:
            if message.get("role") == "user":
                results = None
            for call in message.get("tool_calls") or []:
                if call["function"]["name"] == SEARCH:
                    searches.add(call["id"])
            if message.get("role") == "tool" and message.get("tool_call_id") in searches:
                results = content_text(message.get("content"))
        offered = SEARCH in request.builtin_tools and request.tool_choice != "none"
        if offered and results is None and queries:
            arguments = json.dumps({"queries": queries})
            yield ToolCallDelta(0, id=new_id("call"), name=SEARCH)
            for start in range(0, len(arguments), 16):
                yield ToolCallDelta(0, arguments=arguments[start : start + 16])
                await asyncio.sleep(0)
            yield Usage(_prompt_tokens(request), 1)
            yield Finish("tool_calls")
            return
        if results is None:
            text = scripted or _last_user_text(request)
        else:
            text = scripted or _cite_first(results)
        async for event in _stream_text(text, request):
            yield event


def _cite_first(results: str) -> str:
    """The first result's first sentence and its marker (``source`` after the dagger)."""
    found = _MARKER.search(results)
    if found is None:
        return "No results."
    chunk = results[found.end() :].split("\n\n【", 1)[0].strip()
    sentence = _SENTENCE.match(chunk)
    first = sentence.group(1) if sentence else chunk
    first = " ".join(first.split())
    return f"{first} 【{found.group(1)}:{found.group(2)}†source】"


class FunctionModel(BaseChatModel):
    """A Python callable as a model: ``fn(messages) -> str | Iterable[str]`` (sync or async,
    or an async generator). ``messages`` are chat-format dicts. Each yielded string is one
    streamed delta."""

    def __init__(self, fn: Callable[..., Any], name: str = "function"):
        self.fn = fn
        self.name = name

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        result = self.fn(request.messages)
        if inspect.isawaitable(result):
            result = await result
        count = 0
        if isinstance(result, str):
            chunks: Any = _words(result)
        else:
            chunks = result
        if hasattr(chunks, "__aiter__"):
            async for chunk in chunks:
                count += 1
                yield TextDelta(str(chunk))
        else:
            for chunk in chunks:
                count += 1
                yield TextDelta(str(chunk))
                await asyncio.sleep(0)
        yield Usage(_prompt_tokens(request), count)
        yield Finish("stop")


class CiteModel(_Scripted):
    """``test/cite``: the citation test model. Offered ``file_search`` (and ``tool_choice`` not
    ``"none"``), it first searches with the last user message as its one query; then, and
    whenever it is not offered the tool, it answers with the last user message verbatim —
    so a test writes the markers the model "cites", well-formed, mangled or invented —
    streamed three characters at a time, so markers arrive cut across deltas."""

    name = "test/cite"

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        text = _last_user_text(request)
        last_role = request.messages[-1].get("role") if request.messages else None
        search = "file_search" in request.builtin_tools and request.tool_choice != "none"
        if search and last_role == "user":
            arguments = json.dumps({"queries": [text]})
            yield ToolCallDelta(0, id=new_id("call"), name="file_search")
            yield ToolCallDelta(0, arguments=arguments)
            yield Usage(_prompt_tokens(request), 1)
            yield Finish("tool_calls")
            return
        pieces = [text[i : i + 3] for i in range(0, len(text), 3)]
        for piece in pieces:
            yield TextDelta(piece)
            await asyncio.sleep(0)
        yield Usage(_prompt_tokens(request), len(pieces))
        yield Finish("stop")


_SCRIPTED: dict[str, type[_Scripted]] = {"echo": EchoModel, "tools": ToolsModel, "search": SearchModel}
_SCRIPTED["cite"] = CiteModel  # its own line: other scripted models are added beside it


def create(rest: str, settings: ProviderSettings) -> BaseChatModel:
    try:
        return _SCRIPTED[rest]()
    except KeyError:
        raise ModelConfigError(
            f"Unknown scripted model 'test/{rest}'. Choices: " + ", ".join(f"test/{k}" for k in _SCRIPTED),
            param="model",
        ) from None
