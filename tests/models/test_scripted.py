"""The deterministic models shipped for tests, docs and teaching."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from assistant_kit.errors import ModelConfigError
from assistant_kit.models.base import (
    BaseChatModel,
    Finish,
    ModelRequest,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from assistant_kit.models.registry import register_model, resolve_model
from assistant_kit.models.scripted import DEFAULT_PROGRAM, FunctionModel

pytestmark = pytest.mark.timeout(30)


def drain(model: BaseChatModel, request: ModelRequest) -> list[Any]:
    async def run() -> list[Any]:
        return [event async for event in model.stream(request)]

    return asyncio.run(run())


def text_of(events: list[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def tool_calls_of(events: list[Any]) -> list[dict[str, Any]]:
    """Assemble streamed fragments the way a client does: by index, id+name first."""
    calls: dict[int, dict[str, Any]] = {}
    for e in events:
        if isinstance(e, ToolCallDelta):
            if e.index not in calls:
                assert e.id and e.name, "the first fragment must carry id and name"
                calls[e.index] = {"id": e.id, "name": e.name, "arguments": ""}
            calls[e.index]["arguments"] += e.arguments
    return list(calls.values())


def conforms(schema: dict[str, Any], value: Any) -> bool:
    """A tiny JSON-schema check: type, enum, required, properties, items, anyOf."""
    if "anyOf" in schema:
        return any(conforms(s, value) for s in schema["anyOf"])
    if "enum" in schema and value not in schema["enum"]:
        return False
    kinds = schema.get("type")
    if kinds is None:
        return True
    checks = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "boolean": lambda v: isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "null": lambda v: v is None,
    }
    if not any(checks[k](value) for k in (kinds if isinstance(kinds, list) else [kinds])):
        return False
    if isinstance(value, dict):
        props = schema.get("properties", {})
        return all(k in value for k in schema.get("required", [])) and all(
            conforms(props[k], v) for k, v in value.items() if k in props
        )
    if isinstance(value, list) and "items" in schema:
        return all(conforms(schema["items"], v) for v in value)
    return True


def fn_tool(name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": parameters}}


TOOLS = [
    fn_tool(
        "get_weather",
        {
            "type": "object",
            "required": ["city", "unit"],
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
        },
    ),
    fn_tool(
        "add",
        {
            "type": "object",
            "required": ["a", "b"],
            "properties": {"a": {"type": "integer"}, "b": {"type": "number"}, "note": {"type": "string"}},
        },
    ),
    fn_tool(
        "book",
        {
            "type": "object",
            "required": ["when", "guests", "vip", "tags"],
            "properties": {
                "when": {"type": "object", "required": ["day"], "properties": {"day": {"type": "string"}}},
                "guests": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                "vip": {"type": "boolean"},
                "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            },
        },
    ),
    fn_tool("ping", {}),
]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}


def answer(messages: list[dict[str, Any]], calls: list[dict[str, Any]]) -> None:
    """Append the assistant's tool calls and one tool output per call."""
    messages.append(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": c["arguments"]},
                }
                for c in calls
            ],
        }
    )
    for c in calls:
        messages.append({"role": "tool", "tool_call_id": c["id"], "content": f"<<{c['name']} output>>"})


# --- test/echo -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["hello world", "  leading and trailing  ", "multi\nline\ttext  here", "one", ""]
)
def test_echo_joined_deltas_equal_the_input(text: str) -> None:
    events = drain(
        resolve_model("test/echo"),
        ModelRequest(
            [
                {"role": "user", "content": "earlier"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": text},
            ]
        ),
    )
    assert text_of(events) == text
    assert isinstance(events[-2], Usage) and events[-1] == Finish("stop")


def test_echo_reads_content_parts_and_stops_at_the_token_budget() -> None:
    parts = [{"type": "text", "text": "one two "}, {"type": "text", "text": "three four"}]
    events = drain(resolve_model("test/echo"), ModelRequest([{"role": "user", "content": parts}]))
    assert text_of(events) == "one two three four"
    limited = drain(
        resolve_model("test/echo"), ModelRequest([{"role": "user", "content": "a b c d"}], max_tokens=2)
    )
    assert text_of(limited) == "a b "
    assert limited[-1] == Finish("length")


def test_unknown_scripted_model_names_the_choices() -> None:
    with pytest.raises(ModelConfigError, match="test/echo"):
        resolve_model("test/nope")


# --- test/tools ------------------------------------------------------------------------


def test_tools_calls_every_function_with_schema_valid_arguments() -> None:
    request = ModelRequest([{"role": "user", "content": "go"}], tools=TOOLS)
    events = drain(resolve_model("test/tools"), request)
    calls = tool_calls_of(events)
    assert sorted(c["name"] for c in calls) == sorted(SCHEMAS)
    for call in calls:
        assert conforms(SCHEMAS[call["name"]] or {"type": "object"}, json.loads(call["arguments"]))
    assert len({c["id"] for c in calls}) == len(calls)
    assert events[-1] == Finish("tool_calls")
    assert text_of(events) == ""


def test_tools_answers_with_every_output_verbatim() -> None:
    model = resolve_model("test/tools")
    messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
    answer(messages, tool_calls_of(drain(model, ModelRequest(messages, tools=TOOLS))))
    events = drain(model, ModelRequest(messages, tools=TOOLS))
    assert events[-1] == Finish("stop") and not tool_calls_of(events)
    for name in SCHEMAS:
        assert f"<<{name} output>>" in text_of(events)


def test_tools_one_call_per_round_without_parallel_calls() -> None:
    model = resolve_model("test/tools")
    messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
    called = []
    for _ in range(len(TOOLS)):
        events = drain(model, ModelRequest(messages, tools=TOOLS, parallel_tool_calls=False))
        calls = tool_calls_of(events)
        assert len(calls) == 1 and events[-1] == Finish("tool_calls")
        called.append(calls[0]["name"])
        answer(messages, calls)
    assert sorted(called) == sorted(SCHEMAS)
    final = drain(model, ModelRequest(messages, tools=TOOLS, parallel_tool_calls=False))
    assert final[-1] == Finish("stop")
    assert all(f"<<{name} output>>" in text_of(final) for name in SCHEMAS)


def test_tool_choice_none_and_named() -> None:
    model = resolve_model("test/tools")
    user = [{"role": "user", "content": "just talk"}]
    events = drain(model, ModelRequest(user, tools=TOOLS, tool_choice="none"))
    assert text_of(events) == "just talk" and not tool_calls_of(events)
    named = {"type": "function", "function": {"name": "add"}}
    calls = tool_calls_of(drain(model, ModelRequest(user, tools=TOOLS, tool_choice=named)))
    assert [c["name"] for c in calls] == ["add"]


def test_tools_without_tools_echoes() -> None:
    events = drain(resolve_model("test/tools"), ModelRequest([{"role": "user", "content": "hi"}]))
    assert text_of(events) == "hi" and events[-1] == Finish("stop")


CODE_TOOL = {"type": "function", "function": {"name": "code_interpreter", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(
    ("message", "programs"),
    [
        ("Install:\n```bash\npip x\n```\nThen run:\n```python\nprint(1)\n```\n", ["print(1)\n"]),
        ("```Python\r\nprint(2)\r\n```", ["print(2)\n"]),
        ("Solve: ```python\nx = 1\nprint(x)```", ["x = 1\nprint(x)"]),
        ("```\nprint(3)\n```\n```py title=x\nprint(4)\n```", ["print(3)\n", "print(4)\n"]),
        ("no code here, ```python print(5)``` inline", [DEFAULT_PROGRAM]),
    ],
)
def test_tools_runs_the_python_blocks_of_the_message(message: str, programs: list[str]) -> None:
    """code_interpreter offered: one call per python block (other languages are skipped),
    one round each; no block → the default program."""
    model = resolve_model("test/tools")
    messages: list[dict[str, Any]] = [{"role": "user", "content": message}]
    ran = []
    for _ in range(len(programs) + 1):
        request = ModelRequest(messages, tools=[CODE_TOOL], builtin_tools={"code_interpreter"})
        calls = tool_calls_of(drain(model, request))
        if not calls:
            break
        ran += [json.loads(c["arguments"])["code"] for c in calls]
        answer(messages, calls)
    assert ran == programs


# --- FunctionModel ---------------------------------------------------------------------

HI = [{"role": "user", "content": "hi there"}]


def test_function_model_sync_string() -> None:
    events = drain(FunctionModel(lambda messages: f"You said: {messages[-1]['content']}"), ModelRequest(HI))
    assert text_of(events) == "You said: hi there"
    assert sum(isinstance(e, TextDelta) for e in events) == 4
    assert events[-1] == Finish("stop")


def test_function_model_generator_streams_each_piece() -> None:
    def pieces(messages: list[dict[str, Any]]) -> Iterator[str]:
        yield "a"
        yield "bc"
        yield "d"

    events = drain(FunctionModel(pieces), ModelRequest(HI))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["a", "bc", "d"]
    assert Usage(2, 3) in events


def test_function_model_async_function_and_async_generator() -> None:
    async def reply(messages: list[dict[str, Any]]) -> str:
        await asyncio.sleep(0)
        return "async answer"

    async def pieces(messages: list[dict[str, Any]]) -> AsyncIterator[str]:
        for piece in ("x", "y"):
            await asyncio.sleep(0)
            yield piece

    assert text_of(drain(FunctionModel(reply), ModelRequest(HI))) == "async answer"
    assert [e.text for e in drain(FunctionModel(pieces), ModelRequest(HI)) if isinstance(e, TextDelta)] == [
        "x",
        "y",
    ]


def test_register_model_with_a_plain_callable() -> None:
    register_model("demo/upper", lambda messages: messages[-1]["content"].upper())
    model = resolve_model("demo/upper")
    assert model.name == "demo/upper"
    assert text_of(drain(model, ModelRequest(HI))) == "HI THERE"
