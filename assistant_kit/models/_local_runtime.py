"""The loaded model: one ``llama_cpp.Llama`` per model file per process, and what runs on it.

This is the only module that touches ``llama_cpp``, and only inside functions, so importing
``assistant_kit`` never loads it. :func:`runtime` loads a file on first use (~0.3 s, under a
lock, once) and caches it in ``_runtimes``; a load that fails is not cached, and its error
names the file and how to replace it. A llama.cpp context is not thread-safe, so every
generation holds :attr:`_Runtime.lock` (a second run waits its turn). At exit the models are
closed before interpreter teardown, stopping any generation still running.

Why its own token loop
    A prompt is rendered with the model's own chat template (the ``Jinja2ChatFormatter``
    ``Llama.create_chat_completion`` builds from the GGUF metadata, ChatML if there is
    none), tokenized exactly as ``create_chat_completion`` tokenizes it, and fed to
    ``Llama.generate`` — the token loop ``create_chat_completion`` itself ends in, with its
    default sampler settings. Driving that loop here gives exact usage (prompt tokens = the
    rendered prompt's tokens; completion tokens = tokens sampled, the end-of-turn token not
    counted, as llama.cpp counts them), a cancellation check after every token, and no
    quadratic re-detokenizing.

Context window
    ``n_ctx`` is 2048 tokens although SmolLM2 was trained to 8192: the KV cache for 8192
    would add ~140 MB to the ~270 MB the process peaks at, a long prompt takes seconds to
    evaluate on a laptop-class CPU (here ~110 tokens/s on one busy core: 2000 tokens ≈ 18 s),
    and a 135M model's answers degrade long before.

Which CPU code (the AMX crash)
    The model loads with llama.cpp's "extra buffer types" off (``use_extra_bufts = False``
    in the model params): those repack the weights for CPU-specific kernels — AMX on Intel
    Xeons since Sapphire Rapids, AVX2/NEON for Q4_0 files — and the AMX one segfaults in
    ``decode`` on some Sapphire Rapids hosts (ggml-org/llama.cpp#20824). Turned off, every
    CPU runs the ordinary ggml kernels, whatever wheel is installed (a ``-march=native``
    wheel built on an AMX machine included). ``Llama(...)`` does not expose the field, but
    fills its params from ``llama_cpp.llama_model_default_params()``, so :func:`_load`
    wraps that function while the constructor runs (under a lock). SmolLM2's Q4_1 file has
    no repacked kernels anyway, so it loses no speed; a user's Q4_0 file on an ARM laptop
    would lose the repacked speed-up, a trade made for never crashing.

Grammars
    llama.cpp's grammar parser prints to fd 2 and an invalid grammar would crash the sampler,
    so :meth:`_Runtime.grammar` test-parses a GBNF grammar with stderr silenced and returns
    None for one it rejects; :meth:`_Runtime.schema_grammar` does the same for a JSON schema
    the converter cannot handle, so callers can fall back to a looser constraint.
"""

from __future__ import annotations

import atexit
import codecs
import contextlib
import json
import os
import random
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import ModelError
from ._local_files import ENV_MODEL_PATH, INSTALL_MODEL, _missing_extra

#: Environment variable: llama.cpp thread count (default: see :func:`n_threads`).
ENV_THREADS = "ASSISTANT_KIT_LOCAL_THREADS"
#: Context window in tokens (prompt + reply); see the module docstring for why 2048.
N_CTX = 2048


def _import_llama() -> Any:
    try:
        import llama_cpp
    except ImportError:
        raise _missing_extra() from None
    return llama_cpp


_load_lock = threading.Lock()
_params_lock = threading.Lock()
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


def _load(llama_cpp: Any, **kwargs: Any) -> Any:
    """``llama_cpp.Llama(**kwargs)`` with llama.cpp's extra buffer types turned off (why: the
    module docstring). Bindings without the field load as they are."""
    bindings = llama_cpp.llama_cpp
    defaults = bindings.llama_model_default_params

    def params() -> Any:
        found = defaults()
        if any(name == "use_extra_bufts" for name, *_ in type(found)._fields_):
            found.use_extra_bufts = False
        return found

    with _params_lock:
        bindings.llama_model_default_params = params
        try:
            return llama_cpp.Llama(**kwargs)
        finally:
            bindings.llama_model_default_params = defaults


class _Runtime:
    """A loaded ``Llama`` with its chat formatter; ``lock`` serializes generations."""

    def __init__(self, path: str):
        llama_cpp = _import_llama()
        from llama_cpp import llama_chat_format

        self.path = path
        self.lock = threading.Lock()
        threads = n_threads()
        try:
            self.llama = _load(
                llama_cpp,
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

    def forget(self) -> None:
        """Drop what the context holds from earlier turns: the next :meth:`generate`
        evaluates its whole prompt instead of reusing a cached prefix. The caller holds
        ``self.lock``."""
        self.llama.reset()

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
