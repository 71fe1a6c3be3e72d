"""One model turn of ``local/<name>``, as the worker process runs it.

Everything here runs inside the worker (:mod:`._local_worker`), next to the loaded model:
:func:`plan` decides which kind of turn a request is (plain text, decide-then-call, or a
forced call) and :func:`run_turn` tokenizes the prompt, checks it fits the context window,
drives llama.cpp's token loop and reports text, tool calls, usage and the finish reason
through ``emit`` — the same :mod:`.base` events every backend yields. The rules (sampling
defaults, tool-call grammars, the ``invalid_prompt`` message) are documented on
:mod:`.local`, the backend users meet.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ModelError
from ._local_runtime import _Runtime, runtime
from ._local_tools import (
    _tools_grammar,
    chat_messages,
    decided,
    decision_grammar,
    decision_sentinel,
    parse_calls,
)
from .base import Finish, ModelRequest, TextDelta, Usage

log = logging.getLogger("assistant_kit.models.local")

DEFAULT_TEMPERATURE = 0.2
DEFAULT_TOP_P = 0.95

Emit = Callable[[Any], None]


def _response_schema(fmt: dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON schema a ``response_format`` asks for; None for plain text."""
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_object":
        return {"type": "object"}
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        schema = None
        if isinstance(spec, dict):  # "schema_": how a pydantic model of the object may dump it
            schema = spec.get("schema") if spec.get("schema") is not None else spec.get("schema_")
        return schema if isinstance(schema, dict) else {"type": "object"}
    return None


@dataclass
class _Plan:
    mode: str  # "text" | "auto" (decide, then call or answer) | "tools" (must call)
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    response_schema: dict[str, Any] | None = None


def plan(request: ModelRequest) -> _Plan:
    """Which kind of turn ``request`` is, with the messages the model will see."""
    callable_tools = [
        t
        for t in request.tools
        if t.get("type", "function") == "function" and t["function"]["name"] not in request.builtin_tools
    ]
    choice = request.tool_choice
    response_schema = _response_schema(request.response_format)
    if choice == "none" or not callable_tools:
        if choice == "required":
            raise ModelError(
                "tool_choice is 'required' but the run has no function tools a local model can call.",
                code="invalid_prompt",
            )
        if isinstance(choice, dict):
            raise ModelError(
                f"tool_choice names '{(choice.get('function') or {}).get('name')}', which local "
                "models cannot call (only function tools are callable here).",
                code="invalid_prompt",
            )
        return _Plan("text", chat_messages(request.messages), [], response_schema)
    if request.messages and request.messages[-1].get("role") == "tool":
        # Tool results just came in: answer from them, whatever tool_choice says (as
        # test/tools does), without the tool list — left to decide, or shown the list, a
        # 135M model calls the same tool again.
        return _Plan("text", chat_messages(request.messages), [], response_schema)
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        tools = [t for t in callable_tools if t["function"]["name"] == wanted]
        if not tools:
            raise ModelError(
                f"tool_choice names '{wanted}', which local models cannot call (only function "
                "tools are callable here).",
                code="invalid_prompt",
            )
        return _Plan("tools", chat_messages(request.messages, tools), tools)
    messages = chat_messages(request.messages, callable_tools)
    return _Plan("tools" if choice == "required" else "auto", messages, callable_tools, response_schema)


def run_turn(name: str, path: str, request: ModelRequest, stop: threading.Event, emit: Emit) -> None:
    """Run one turn of the model at ``path`` (``name`` is ``local/<name>``, for messages):
    events go to ``emit`` in order, ending with :class:`Usage` and :class:`Finish`; nothing
    after ``stop`` is set. Raises :class:`ModelError` for what fails the run."""
    rt = runtime(path)
    turn = plan(request)
    tokens = rt.tokenize_chat(turn.messages)
    if len(tokens) >= rt.n_ctx:
        raise ModelError(
            f"The prompt of {len(tokens)} tokens exceeds the model's context window of "
            f"{rt.n_ctx} tokens ({name}). Shorten the thread, or set max_prompt_tokens "
            "or a truncation_strategy.",
            code="invalid_prompt",
            model=name,
        )
    budget = request.max_tokens
    if budget is not None and budget <= 0:
        emit(Usage(len(tokens), 0))
        emit(Finish("length"))
        return
    gen = _Generation(
        rt,
        tokens,
        stop,
        emit,
        temperature=DEFAULT_TEMPERATURE if request.temperature is None else max(0.0, request.temperature),
        top_p=DEFAULT_TOP_P if request.top_p is None else request.top_p,
        budget=budget,
    )
    with rt.lock:
        finish = _run_plan(name, gen, turn)
    if stop.is_set():
        return
    emit(Usage(len(tokens), gen.used))
    emit(Finish(finish))


def _run_plan(name: str, gen: _Generation, turn: _Plan) -> str:
    tools = turn.tools
    if turn.mode == "auto":
        names = [t["function"]["name"] for t in tools]
        sentinel = decision_sentinel(names)
        parts: list[str] = []
        finish = gen.run(gen.rt.grammar(decision_grammar(names, sentinel)), parts.append)
        if finish != "stop":
            return finish
        chosen = decided("".join(parts), names, sentinel)
        if chosen is None:
            return gen.text(turn.response_schema)
        tools = [t for t in tools if t["function"]["name"] == chosen]
    if turn.mode in ("auto", "tools"):
        return _call(name, gen, tools)
    return gen.text(turn.response_schema)


#: How many times a tool call is generated before the run fails (see :func:`_call`).
CALL_ATTEMPTS = 2


def _call(name: str, gen: _Generation, tools: list[dict[str, Any]]) -> str:
    """One call of one of ``tools``, generated under the call grammar.

    Under the grammar the output is one valid call by construction, yet a CI run once saw a
    finished output that did not parse as one (a string repeating itself; not reproduced in
    800 sampled turns). Rather than fail the run on that, the call is generated once more,
    with the prompt evaluated afresh (the context's cache of earlier turns dropped) and, when
    sampling, a fresh seed; the tokens of both attempts count as the turn's. Only a second
    such output fails the run, with the start and the end of what the model wrote."""
    grammar = _tools_grammar(gen.rt, tools)
    text = ""
    for attempt in range(CALL_ATTEMPTS):
        if attempt:
            log.warning("%s: the tool call did not parse (%s); generating it again", name, _excerpt(text))
            gen.rt.forget()
        parts: list[str] = []
        finish = gen.run(grammar, parts.append)
        if finish != "stop":
            return finish  # the budget ran out mid-call: there is no valid call to report
        text = "".join(parts)
        calls = parse_calls(text, tools)
        if calls:
            for call in calls:
                gen.emit(call)
            return "tool_calls"
    raise ModelError(
        f"Local model '{name}' produced no valid tool call in {CALL_ATTEMPTS} attempts "
        f"(output: {_excerpt(text)}).",
        model=name,
    )


def _excerpt(text: str, head: int = 120, tail: int = 80) -> str:
    """``text`` as a repr short enough for an error message: its start and its end."""
    if len(text) <= head + tail + 20:
        return repr(text)
    return f"{text[:head]!r} … {text[-tail:]!r} ({len(text)} characters)"


class _Generation:
    """One turn's sampling settings and token budget, shared by its generation steps."""

    def __init__(
        self,
        rt: _Runtime,
        tokens: list[int],
        stop: threading.Event,
        emit: Callable[[Any], None],
        *,
        temperature: float,
        top_p: float,
        budget: int | None,
    ):
        self.rt, self.tokens, self.stop, self.emit = rt, tokens, stop, emit
        self.temperature, self.top_p, self.budget = temperature, top_p, budget
        self.used = 0

    def run(self, grammar: Any | None, on_text: Callable[[str], Any]) -> str:
        remaining = None if self.budget is None else self.budget - self.used
        if remaining is not None and remaining <= 0:
            return "length"
        finish, count = self.rt.generate(
            self.tokens,
            grammar=grammar,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=remaining,
            stop=self.stop,
            on_text=on_text,
        )
        self.used += count
        return finish

    def text(self, response_schema: dict[str, Any] | None) -> str:
        """The answer, streamed as text deltas (constrained when JSON was asked for)."""
        grammar = None
        if response_schema is not None:
            grammar = self.rt.schema_grammar(response_schema) or self.rt.json_grammar()
        return self.run(grammar, lambda text: self.emit(TextDelta(text)))
