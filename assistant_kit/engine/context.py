"""What the model sees on its next turn: the thread's messages and this run's tool rounds in
the chat format, the tools (built-ins as functions), the budget-trimmed history.

The run executor (:mod:`assistant_kit.engine.runs`) calls :func:`next_request` before every
turn; nothing here changes a run or writes anything. It reads the thread's messages and the
run's steps from the store it is given, and counts tokens with the run's model.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..models.base import ModelRequest
from ..tools import code_interpreter as ci
from . import search_calls

if TYPE_CHECKING:
    from ..models.base import BaseChatModel
    from ..store import AsyncStore

BUILTIN_TOOLS: dict[str, dict[str, Any]] = {
    "code_interpreter": ci.tool_function(),
    search_calls.NAME: search_calls.TOOL_FUNCTION,
}
# What a model that cannot call tools (``BaseChatModel.calls_tools`` false: the engine searched
# for it before its turn) reads of each result: small models have small context windows.
SEARCHED_FOR_CHARS = 1000


async def next_request(
    store: AsyncStore,
    run: dict[str, Any],
    model: BaseChatModel,
    max_tokens: int | None,
    code_files: list[str] | None = None,
) -> ModelRequest | None:
    """The chat-format request for ``run``'s next turn, or None if it cannot fit the budget.

    ``code_files``: the names of the files placed in the thread's working directory when the
    run's ``code_interpreter`` tool can run (the tool's description lists them); None when it
    cannot (the tool is then not offered to the model)."""
    strategy = run.get("truncation_strategy") or {}
    last = strategy.get("last_messages") if strategy.get("type") == "last_messages" else None
    messages = await store.thread_messages(run["thread_id"], last)
    steps = [
        s
        for s in (await store.list("thread.run.step", run_id=run["id"], order="asc", limit=1000)).data
        if s["type"] == "tool_calls"
    ]
    made: dict[str, list[dict[str, Any]]] = {}
    ran_code = _engine_ran_code(steps)
    ran_builtin = ran_code or _engine_searched(steps)
    if ran_code:
        for call_id, file in await store.files_made_in(run["thread_id"]):
            made.setdefault(call_id, []).append(file)
    history: list[dict[str, Any]] = []
    searches = 0  # the run's file_search calls so far: their markers' first number
    cut = None if model.calls_tools else SEARCHED_FOR_CHARS
    for obj in sorted(messages + steps, key=_sort_key):
        if obj["object"] == "thread.message":
            history.append({"role": obj["role"], "content": _message_text(obj)})
        else:
            calls = obj["step_details"]["tool_calls"]
            history.append(
                {"role": "assistant", "content": None, "tool_calls": [_as_function(c) for c in calls]}
            )
            for c in calls:
                if c["type"] == search_calls.NAME:
                    content = search_calls.model_text(c, searches, cut)
                    searches += 1
                else:
                    content = _tool_result(c, made.get(c["id"], []))
                history.append({"role": "tool", "tool_call_id": c["id"], "content": content})
    system = [{"role": "system", "content": run["instructions"]}] if run.get("instructions") else []
    budget = run.get("max_prompt_tokens")
    if budget is not None:
        budget -= (run.get("usage") or {}).get("prompt_tokens", 0)
        # Off the event loop: a model's count may be slow (the local model asks its worker
        # process, starting it on first use), and every other run streams on this loop.
        fitted = await asyncio.to_thread(fit_history, model, system, history, budget)
        if fitted is None:
            return None
        history = fitted
    tools, builtin = [], set()
    for tool in run.get("tools") or []:
        if tool["type"] == "function":
            tools.append({"type": "function", "function": tool["function"]})
        elif tool["type"] == ci.NAME and code_files is not None:
            tools.append({"type": "function", "function": ci.tool_function(code_files)})
            builtin.add(tool["type"])
        elif tool["type"] in BUILTIN_TOOLS:
            tools.append({"type": "function", "function": BUILTIN_TOOLS[tool["type"]]})
            builtin.add(tool["type"])
    choice = run.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in BUILTIN_TOOLS:
        choice = {"type": "function", "function": {"name": choice["type"]}}
    if (choice == "required" or isinstance(choice, dict)) and ran_builtin:
        # A forced choice has been honoured; forcing it again would make the engine loop on its
        # own tool until the run expires (no client in the loop to stop it). Function calls are
        # unaffected: each of them returns the run to the client.
        choice = "auto"
    fmt = run.get("response_format")
    return ModelRequest(
        messages=system + history,
        tools=tools,
        tool_choice=None if choice in (None, "auto") and not tools else choice,
        parallel_tool_calls=run.get("parallel_tool_calls", True),
        response_format=None if fmt in (None, "auto") else fmt,
        temperature=run.get("temperature"),
        top_p=run.get("top_p"),
        max_tokens=max_tokens,
        builtin_tools=builtin,
    )


def fit_history(
    model: BaseChatModel, system: list[dict[str, Any]], history: list[dict[str, Any]], budget: int
) -> list[dict[str, Any]] | None:
    """The longest tail of ``history`` whose prompt (after ``system``) ``model`` counts within
    ``budget`` tokens, cut only before a message that is not a tool result (a tool round
    stays whole, as the hosted API kept it); None when not even the last message fits.

    A binary search over the cut points: ``count_tokens`` runs about log2(n) times. Dropping
    the oldest message and counting again until it fitted re-counted the whole history once
    per message dropped — quadratic, ~0.9 s for 2,000 short messages with the scripted model
    and far more with a real tokenizer. It finds the same cut, since a shorter history never
    counts more tokens."""
    cuts = [i for i, message in enumerate(history) if i == 0 or message["role"] != "tool"]
    low, high = 0, len(cuts)  # the answer is cuts[low] once low == high (none when len(cuts))
    while low < high:
        middle = (low + high) // 2
        if model.count_tokens(system + history[cuts[middle] :]) <= budget:
            high = middle
        else:
            low = middle + 1
    return history[cuts[low] :] if low < len(cuts) else None


def _sort_key(obj: dict[str, Any]) -> str:
    return obj["id"].split("_", 1)[1]


def _as_function(call: dict[str, Any]) -> dict[str, Any]:
    """A step's tool call as the chat-format call the model made."""
    if call["type"] == "code_interpreter":
        function = {"name": ci.NAME, "arguments": ci.arguments_json(call["code_interpreter"]["input"])}
    elif call["type"] == search_calls.NAME:
        function = {"name": search_calls.NAME, "arguments": search_calls.arguments_json(call)}
    else:
        function = {"name": call["function"]["name"], "arguments": call["function"]["arguments"]}
    return {"id": call["id"], "type": "function", "function": function}


def _tool_result(call: dict[str, Any], made: list[dict[str, Any]]) -> str:
    if call["type"] == "code_interpreter":
        return ci.model_result(call, made)
    return call["function"]["output"] or ""


def _message_text(message: dict[str, Any]) -> str:
    parts = []
    for part in message.get("content") or []:
        if part["type"] == "text":
            parts.append(part["text"]["value"])
        elif part["type"] == "image_url":
            parts.append(f"[image: {part['image_url']['url']}]")
        elif part["type"] == "image_file":
            parts.append(f"[image file: {part['image_file']['file_id']}]")
    return "\n".join(parts)


def _engine_ran_code(steps: list[dict[str, Any]]) -> bool:
    return any(c["type"] == "code_interpreter" for s in steps for c in s["step_details"]["tool_calls"])


def _engine_searched(steps: list[dict[str, Any]]) -> bool:
    return any(c["type"] == search_calls.NAME for s in steps for c in s["step_details"]["tool_calls"])
