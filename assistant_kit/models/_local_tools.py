"""Tool calling for a model never trained for it: the prompt, the constraint, the parse.

SmolLM2-135M was not trained for tool use; unconstrained it answers in prose. So:

Prompt (:func:`chat_messages`)
    The tool list (``- name(arg: type, …): description``) and a calling convention are
    appended to the system message. SmolLM2's template knows only system/user/assistant, so
    the history is rewritten too: a tool result becomes a user message ``<name> returned:
    <output>``, and the assistant message that made the call keeps only its text (shown its
    own call JSON, the model repeats it).

Constraint (:func:`tool_call_schema`, :func:`decision_grammar`)
    Calls are valid *by construction*: a call is generated under a grammar from the JSON
    schema ``anyOf`` over the callable tools of ``{"name": {"const": <tool>}, "arguments":
    <its parameters schema>}``, so it always names a real tool and its arguments always
    validate. Free strings in argument schemas get ``maxLength`` 500 and arrays ``maxItems``
    16 (see :func:`bounded`): a small model stuck repeating itself inside a string would
    otherwise never close the call. A parameters schema llama.cpp's converter rejects (remote
    ``$ref``, a lookbehind ``pattern`` …) is loosened to "any object" for that tool rather
    than failing the run (:func:`_tools_grammar`). One call per turn, even with
    ``parallel_tool_calls``: asked for an array of calls, the model picked the wrong tool 8/8
    times where the single-call form picked the right one 8/8. For ``tool_choice`` ``"auto"``
    a shorter grammar first has the model *decide*: its reply must start ``{"name": "<one of
    the tools, or none>"`` (how reliable that is: the module docs of
    :mod:`assistant_kit.models.local`).

Parse (:func:`parse_calls`, :func:`decided`)
    The constrained output back into tool-call deltas, and the decision back into a
    tool name.

Which kind of turn a request is (text, decide, must call) is :func:`.local.plan`'s; the
grammars are compiled and run by :mod:`._local_runtime`.
"""

from __future__ import annotations

import copy
import json
import logging
from typing import TYPE_CHECKING, Any

from .._ids import new_id
from .base import ToolCallDelta, content_text

if TYPE_CHECKING:
    from ._local_runtime import _Runtime

log = logging.getLogger("assistant_kit.models.local")  # the backend's one logger, as before the split

#: Bounds added to tool-argument schemas that have none (see :func:`bounded`).
MAX_STRING_CHARS = 500
MAX_ARRAY_ITEMS = 16


# --- prompt building ------------------------------------------------------------------------


def _signature(tool: dict[str, Any]) -> str:
    fn = tool["function"]
    params = fn.get("parameters") or {}
    required = set(params.get("required") or ())
    parts = []
    for pname, pschema in (params.get("properties") or {}).items():
        kind = pschema.get("type", "any") if isinstance(pschema, dict) else "any"
        if isinstance(kind, list):
            kind = "|".join(map(str, kind))
        parts.append(f"{pname}{'' if pname in required else '?'}: {kind}")
    line = f"- {fn['name']}({', '.join(parts)})"
    if fn.get("description"):
        line += f": {fn['description']}"
    return line


def _toolscontent_text(tools: list[dict[str, Any]]) -> str:
    example = tools[0]["function"]["name"]
    return (
        "You can call these functions:\n"
        + "\n".join(_signature(t) for t in tools)
        + f'\nTo call a function, reply with only a JSON object like {{"name": "{example}", '
        + '"arguments": {...}}. Otherwise answer in plain text.'
    )


def chat_messages(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Chat-format messages as SmolLM2's template can render them: string contents only;
    a tool result becomes a user message ``<name> returned: <output>`` and the assistant
    message that made the call keeps only its text (SmolLM2 knows no ``tool`` role; shown
    its own earlier calls, it repeats them instead of answering). With ``tools``, the tool
    list and calling convention are appended to the system message."""
    names: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role") or "user"
        content = content_text(message.get("content"))
        if role == "developer":
            role = "system"
        for call in message.get("tool_calls") or ():
            names[call.get("id", "")] = (call.get("function") or {}).get("name", "")
        if role == "tool":
            name = names.get(message.get("tool_call_id") or "", "") or "The function"
            role, content = "user", f"{name} returned: {content}"
        elif message.get("tool_calls") and not content:
            continue
        out.append({"role": role, "content": content})
    if tools:
        block = _toolscontent_text(tools)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{block}".lstrip()}
        else:
            out.insert(0, {"role": "system", "content": f"You are a helpful AI assistant.\n\n{block}"})
    return out


# --- tool-call schemas ----------------------------------------------------------------------

_LOOSE_ARGS: dict[str, Any] = {"type": "object"}


def _hoist_defs(schema: Any, prefix: str) -> tuple[Any, dict[str, Any]]:
    """Move a parameters schema's ``$defs``/``definitions`` to the root (renamed with
    ``prefix``) and rewrite its local ``$ref``s, since refs resolve against the root of the
    combined schema."""
    if not isinstance(schema, dict):
        return schema, {}
    schema = copy.deepcopy(schema)
    defs: dict[str, Any] = {}
    for key in ("$defs", "definitions"):
        for name, sub in (schema.pop(key, None) or {}).items():
            defs[f"{prefix}{name}"] = sub

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                for local in ("#/$defs/", "#/definitions/"):
                    if ref.startswith(local):
                        node = {**node, "$ref": f"#/$defs/{prefix}{ref[len(local) :]}"}
            return {k: rewrite(v) for k, v in node.items()}
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    return rewrite(schema), {k: rewrite(v) for k, v in defs.items()}


def _call_schema(name: str, arguments: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"name": {"const": name}, "arguments": arguments},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def bounded(schema: Any) -> Any:
    """``schema`` with a ``maxLength`` on free strings and a ``maxItems`` on arrays that have
    none, so a 135M model stuck repeating itself inside a string still closes the call."""
    if isinstance(schema, list):
        return [bounded(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        k: bounded(v) if k not in ("const", "enum", "default", "examples") else v for k, v in schema.items()
    }
    for key in ("properties", "$defs", "definitions", "patternProperties"):
        if isinstance(schema.get(key), dict):
            out[key] = {name: bounded(sub) for name, sub in schema[key].items()}
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    free = not any(k in schema for k in ("maxLength", "enum", "const", "pattern", "format"))
    if "string" in kinds and free:
        out["maxLength"] = MAX_STRING_CHARS
    if "array" in kinds and "maxItems" not in schema:
        out["maxItems"] = MAX_ARRAY_ITEMS
    return out


#: String constraints llama.cpp's schema converter may reject (a regex with a lookbehind, say).
_STRING_RULES = ("pattern", "format", "patternProperties")


def _relaxed(schema: Any) -> Any:
    """``schema`` without the string rules the converter may refuse: the call then still has
    the right keys and types, only a string's shape is not enforced."""
    if isinstance(schema, list):
        return [_relaxed(item) for item in schema]
    if isinstance(schema, dict):
        return {k: _relaxed(v) for k, v in schema.items() if k not in _STRING_RULES}
    return schema


def tool_call_schema(
    tools: list[dict[str, Any]],
    *,
    loose: frozenset[str] = frozenset(),
    relaxed: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The JSON schema one call must satisfy: ``anyOf`` over the tools of
    ``{"name": {"const": <tool>}, "arguments": <its parameters schema, bounded>}``.
    ``relaxed`` names tools whose string rules (patterns, formats) are dropped; ``loose``
    those whose arguments need only be an object."""
    options: list[dict[str, Any]] = []
    defs: dict[str, Any] = {}
    for i, tool in enumerate(tools):
        fn = tool["function"]
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        if fn["name"] in loose:
            params, tool_defs = _LOOSE_ARGS, {}
        else:
            if fn["name"] in relaxed:
                params = _relaxed(params)
            params, tool_defs = _hoist_defs(bounded(params), f"t{i}_")
        defs.update(tool_defs)
        options.append(_call_schema(fn["name"], params))
    root: dict[str, Any] = options[0] if len(options) == 1 else {"anyOf": options}
    if defs:
        root = {**root, "$defs": defs}
    return root


# --- the constraints --------------------------------------------------------------------------


def decision_sentinel(names: list[str]) -> str:
    """What the ``auto`` decision answers for "no tool": ``none``, unless a tool is called that."""
    return next(s for s in ("none", "no_function", "no_function_call_") if s not in names)


def decision_grammar(names: list[str], sentinel: str) -> str:
    """GBNF for the ``auto`` decision: ``{"name": "`` then one tool name or ``sentinel``."""
    alternatives = " | ".join(json.dumps(n) for n in [*names, sentinel])
    return f'root ::= "{{\\"name\\": \\"" ({alternatives}) "\\""'


def _tools_grammar(rt: _Runtime, tools: list[dict[str, Any]]) -> Any:
    """The call grammar, loosening the arguments of any tool whose parameters schema
    llama.cpp's converter cannot handle (then of all tools; then any JSON)."""
    grammar = rt.schema_grammar(tool_call_schema(tools))
    if grammar is not None:
        return grammar
    failing = frozenset(
        t["function"]["name"] for t in tools if rt.schema_grammar(tool_call_schema([t])) is None
    )
    log.info("local model: relaxing the argument schemas of %s", sorted(failing))
    grammar = rt.schema_grammar(tool_call_schema(tools, relaxed=failing))
    if grammar is not None:  # keys and types kept, string patterns dropped
        return grammar
    for attempt in (failing, _names(tools)):
        grammar = rt.schema_grammar(tool_call_schema(tools, loose=attempt))
        if grammar is not None:
            return grammar
    return rt.json_grammar()


def _names(tools: list[dict[str, Any]]) -> frozenset[str]:
    return frozenset(t["function"]["name"] for t in tools)


# --- the parse --------------------------------------------------------------------------------


def decided(text: str, names: list[str], sentinel: str) -> str | None:
    """The tool the ``auto`` decision (``text``, generated under :func:`decision_grammar`)
    named; None for ``sentinel`` (answer in text instead)."""
    chosen = text.rstrip('"').rpartition('"')[2]
    if chosen == sentinel or chosen not in names:
        return None
    return chosen


def parse_calls(text: str, tools: list[dict[str, Any]]) -> list[ToolCallDelta]:
    """The calls of ``tools`` in ``text``, generated under the call grammar (or, when even
    that was loosened away, under "any JSON": then a list of calls is accepted too, and
    anything not naming one of ``tools`` is dropped). Empty when there is no valid call."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    items = value if isinstance(value, list) else [value]  # the any-JSON fallback
    names = _names(tools)
    calls = [i for i in items if isinstance(i, dict) and i.get("name") in names]
    return [
        ToolCallDelta(
            index, id=new_id("call"), name=call["name"], arguments=json.dumps(call.get("arguments", {}))
        )
        for index, call in enumerate(calls)
    ]
