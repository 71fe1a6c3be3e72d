"""The embedded model's worker process: both ends of the pipe between the kit and llama.cpp.

Why a process
    llama.cpp is native code. When it crashes — a segfault in a CPU-specific kernel (its AMX
    weight repacking on some Sapphire Rapids hosts), SIGILL from a wheel compiled for
    another CPU, an abort on a bad file, the kernel's OOM killer — it takes down the process
    it runs in: in a notebook that is the Jupyter kernel with every variable of the user's
    session, in the proxy every tenant's runs. So the model runs in a child process, one per
    kit process, started on first use; the model is loaded there once and stays loaded. If
    the child dies, the turn that was using it raises :class:`ModelError` naming the signal
    and what to try (the run ends ``failed``, the text streamed so far stays on its message),
    everything else goes on, and the next turn starts a fresh child.

How the child is started
    ``python -c <import this module; main()>`` with this package's root first on
    ``sys.path`` — not :mod:`multiprocessing`: its spawn mode re-runs the user's
    ``__main__`` script in the child (a notebook-style script without a ``__main__`` guard
    would start a second run), and fork is unsafe in a process with threads.

The protocol
    Frames are pickles behind a 4-byte length: requests on the child's stdin, replies on a
    duplicate of its stdout (fd 1 itself is pointed at stderr, so a stray print in native
    code cannot corrupt the stream). Pickle is fine: both ends are this package and the pipes
    belong to the two processes. Requests: ``("turn", id, name, path, ModelRequest, fault)``,
    ``("cancel", id)``, ``("count", id, path, messages)``. Replies: ``("event", id,
    ModelEvent)``, then one final ``("end", id)`` or ``("error", id, fields)``;
    ``("count", id, n)`` or ``("error", id, fields)`` for a count.

    The child runs turns one at a time, in order, in its main thread (a llama.cpp context
    is not thread-safe; a second run waits its turn). Its reader thread takes cancels (a
    flag the token loop checks after every token; a turn still waiting is dropped) and
    token counts (tokenizing reads only the vocabulary, safe beside a generation), so
    neither waits behind a generation.

Dying with the parent
    The child's reader thread blocks on stdin. When the parent exits or is killed, even with
    SIGKILL, the OS closes the pipe, the read sees EOF and the child calls ``os._exit`` —
    also while its main thread is inside a C call. (Not ``PR_SET_PDEATHSIG``: that fires
    when the *thread* that started the child ends, and the first turn may start it from any
    thread.)

Fault injection, for tests only
    ``ASSISTANT_KIT_TEST_LOCAL_FAULT=SIGSEGV@3`` (any signal name, any k ≥ 1), read by the
    parent when a turn starts: the child sends itself that signal when it emits the turn's
    k-th text or tool-call event. A real signal, so the tests see what a real crash does.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ..errors import ModelConfigError, ModelError
from .base import ModelRequest, TextDelta, ToolCallDelta

log = logging.getLogger("assistant_kit.models.local")

ENV_FAULT = "ASSISTANT_KIT_TEST_LOCAL_FAULT"
#: How long a token count waits for the worker (its first use includes loading the model).
COUNT_TIMEOUT = 120.0

_HEADER = struct.Struct("!I")


def _send(out: IO[bytes], frame: tuple[Any, ...]) -> None:
    data = pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_HEADER.pack(len(data)) + data)
    out.flush()


def _receive(source: IO[bytes]) -> tuple[Any, ...] | None:
    """The next frame, or None at the end of the stream (the other side is gone)."""
    header = source.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    size = _HEADER.unpack(header)[0]
    data = source.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


def _fault_from_env() -> tuple[int, int] | None:
    """``(signal number, k)`` from ``$ASSISTANT_KIT_TEST_LOCAL_FAULT`` (``NAME@k``), or None."""
    spec = os.environ.get(ENV_FAULT, "").strip()
    if not spec:
        return None
    name, _, at = spec.partition("@")
    try:
        return int(getattr(signal, name.upper())), max(1, int(at or "1"))
    except (AttributeError, ValueError):
        raise ModelConfigError(f"{ENV_FAULT}={spec!r}: expected SIGNAL@k, e.g. SIGSEGV@3.") from None


# --- the parent's side ------------------------------------------------------------------------


def _signal_name(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"signal {-returncode} ({signal.Signals(-returncode).name})"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


def _advice(returncode: int) -> str:
    sig = -returncode
    if sig == getattr(signal, "SIGILL", 4):
        return (
            "SIGILL means llama-cpp-python was compiled for a different CPU (a wheel built with "
            "-march=native on another machine and reused from pip's cache or an image). Rebuild "
            'it for any CPU: CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --force-reinstall '
            "--no-cache-dir llama-cpp-python (or run scripts/install_local_model.sh)."
        )
    if sig == getattr(signal, "SIGKILL", 9):
        return (
            "SIGKILL usually means the system ran out of memory (the OOM killer) or the process "
            "was killed by hand; close other programs or use a smaller model."
        )
    return (
        "A crash inside llama.cpp: try ASSISTANT_KIT_LOCAL_THREADS=1, rebuild llama-cpp-python "
        'for any CPU (CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --force-reinstall --no-cache-dir '
        "llama-cpp-python), or check the file named by ASSISTANT_KIT_LOCAL_MODEL."
    )


def died_error(returncode: int, name: str) -> ModelError:
    """The error a turn gets when the worker process died under it."""
    return ModelError(
        f"The local model process died ({_signal_name(returncode)}) while running '{name}'; "
        f"the text streamed so far is kept, and the next run starts a new model process. "
        f"{_advice(returncode)}",
        code="server_error",
        model=name,
    )


def _error_from(fields: dict[str, Any]) -> Exception:
    if fields.get("kind") == "config":
        return ModelConfigError(fields["message"], param=fields.get("param"), code=fields.get("code"))
    return ModelError(fields["message"], code=fields.get("code") or "server_error", model=fields.get("model"))


Deliver = Callable[[str, Any], None]


class _Child:
    """One live worker process: its pipes, the requests it owes replies to, its reader."""

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parents[2])
        code = (
            "import sys; sys.path.insert(0, sys.argv[1]); "
            "from assistant_kit.models._local_worker import main; main()"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, root],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            close_fds=True,
        )
        self.pending: dict[int, tuple[str, Deliver]] = {}  # id → (model name, deliver)
        self.lock = threading.Lock()
        self.write_lock = threading.Lock()
        self.dead = False
        self.stderr_tail: deque[str] = deque(maxlen=20)
        for target, what in ((self._read, "replies"), (self._read_stderr, "stderr")):
            threading.Thread(target=target, name=f"assistant_kit-local-worker-{what}", daemon=True).start()

    def send(self, frame: tuple[Any, ...], name: str | None = None, deliver: Deliver | None = None) -> bool:
        """Send ``frame``; with ``deliver``, its replies go there. False if the child is dead
        (``deliver`` then was not registered)."""
        with self.lock:
            if self.dead:
                return False
            if deliver is not None:
                self.pending[frame[1]] = (name or "", deliver)
        try:
            with self.write_lock:
                assert self.proc.stdin is not None
                _send(self.proc.stdin, frame)
        except (OSError, ValueError):  # the pipe broke: the reader will report the death
            pass
        return True

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            try:
                frame = _receive(self.proc.stdout)
            except Exception:  # a torn frame: the child died mid-write
                frame = None
            if frame is None:
                break
            kind, rid = frame[0], frame[1]
            with self.lock:
                entry = self.pending.get(rid)
                if entry is not None and kind != "event":
                    del self.pending[rid]
            if entry is None:
                continue
            if kind == "error":
                entry[1]("error", _error_from(frame[2]))
            else:
                entry[1](kind, frame[2] if len(frame) > 2 else None)
        returncode = self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError, ValueError):
                pipe.close()  # type: ignore[union-attr]
        with self.lock:
            self.dead = True
            orphans, self.pending = list(self.pending.values()), {}
        if orphans or returncode != 0:
            log.warning(
                "local model worker %s ended with %s; its last stderr lines:\n%s",
                self.proc.pid,
                _signal_name(returncode),
                "\n".join(self.stderr_tail) or "(none)",
            )
        for name, deliver in orphans:
            deliver("error", died_error(returncode, name))

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            self.stderr_tail.append(line)
            log.debug("worker: %s", line)
        self.proc.stderr.close()

    def close(self, timeout: float = 2.0) -> None:
        """End the child: closing its stdin makes it exit; kill it if it does not."""
        with contextlib.suppress(OSError, ValueError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Turn:
    """A turn sent to the worker: :meth:`cancel` stops it at its next token."""

    def __init__(self, child: _Child, rid: int):
        self._child, self.id = child, rid

    def cancel(self) -> None:
        self._child.send(("cancel", self.id))


class LocalWorker:
    """The worker process of this kit process, started on first use and again after a death."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._next_id = 0

    @property
    def pid(self) -> int | None:
        """The live worker's process id (None before the first turn or after a death)."""
        child = self._child
        if child is None or child.dead or child.proc.poll() is not None:
            return None
        return child.proc.pid

    def _live(self) -> tuple[_Child, int]:
        with self._lock:
            if self._child is None or self._child.dead:
                try:
                    self._child = _Child()
                except OSError as exc:
                    raise ModelError(f"Could not start the local model process: {exc}.") from None
            self._next_id += 1
            return self._child, self._next_id

    def _submit(
        self, make: Callable[[int], tuple[Any, ...]], name: str, deliver: Deliver
    ) -> tuple[_Child, int]:
        for _ in range(2):  # a child found dead between start and send: once more with a new one
            child, rid = self._live()
            if child.send(make(rid), name, deliver):
                return child, rid
        raise ModelError(f"The local model process for '{name}' could not be started.", model=name)

    def start_turn(self, name: str, path: str, request: ModelRequest, deliver: Deliver) -> Turn:
        """Send a turn; its events, then ``("end", None)`` or ``("error", exc)``, go to
        ``deliver`` from the reader thread."""
        fault = _fault_from_env()
        child, rid = self._submit(lambda rid: ("turn", rid, name, path, request, fault), name, deliver)
        return Turn(child, rid)

    def count_tokens(self, name: str, path: str, messages: list[dict[str, Any]]) -> int:
        done = threading.Event()
        result: list[Any] = []

        def deliver(kind: str, value: Any) -> None:
            result.append((kind, value))
            done.set()

        self._submit(lambda rid: ("count", rid, path, messages), name, deliver)
        if not done.wait(COUNT_TIMEOUT):
            raise ModelError(f"The local model process did not count tokens within {COUNT_TIMEOUT:.0f} s.")
        kind, value = result[0]
        if kind == "error":
            raise value
        return int(value)

    def close(self) -> None:
        with self._lock:
            child, self._child = self._child, None
        if child is not None:
            child.close()


_worker = LocalWorker()
atexit.register(_worker.close)


def worker() -> LocalWorker:
    """This process's worker (one per kit process)."""
    return _worker


# --- the child's side -------------------------------------------------------------------------


class _Server:
    """The worker's two threads: the reader (control) and the main thread (turns)."""

    def __init__(self, source: IO[bytes], out: IO[bytes]):
        self.source, self.out = source, out
        self.write_lock = threading.Lock()
        self.turns: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self.stops: dict[int, threading.Event] = {}

    def reply(self, frame: tuple[Any, ...]) -> None:
        with self.write_lock:
            _send(self.out, frame)

    def read(self) -> None:
        """Reader thread: control frames now, turns to the main thread; EOF ends the process."""
        while True:
            try:
                frame = _receive(self.source)
            except Exception:
                frame = None
            if frame is None:  # the parent is gone (or closed us): no one to reply to
                os._exit(0)
            kind, rid = frame[0], frame[1]
            if kind == "turn":
                self.stops[rid] = threading.Event()
                self.turns.put(frame)
            elif kind == "cancel":
                stop = self.stops.get(rid)
                if stop is not None:
                    stop.set()
            elif kind == "count":
                self._count(rid, frame[2], frame[3])

    def _count(self, rid: int, path: str, messages: list[dict[str, Any]]) -> None:
        from ._local_runtime import runtime
        from ._local_tools import chat_messages

        try:
            n = len(runtime(path).tokenize_chat(chat_messages(messages)))
        except Exception as exc:
            self.reply(("error", rid, _fields(exc, "local")))
        else:
            self.reply(("count", rid, n))

    def serve(self) -> None:
        """Main thread: turns one at a time, in the order they came."""
        from ._local_turn import run_turn

        while True:
            _, rid, name, path, request, fault = self.turns.get()
            stop = self.stops[rid]
            try:
                if not stop.is_set():
                    run_turn(name, path, request, stop, self._emitter(rid, stop, fault))
            except Exception as exc:
                self.reply(("error", rid, _fields(exc, name)))
            else:
                self.reply(("end", rid))
            finally:
                self.stops.pop(rid, None)

    def _emitter(
        self, rid: int, stop: threading.Event, fault: tuple[int, int] | None
    ) -> Callable[[Any], None]:
        seen = 0

        def emit(event: Any) -> None:
            nonlocal seen
            if stop.is_set():
                return
            if fault is not None and isinstance(event, TextDelta | ToolCallDelta):
                seen += 1
                if seen >= fault[1]:
                    os.kill(os.getpid(), fault[0])
            self.reply(("event", rid, event))

        return emit


def _fields(exc: Exception, name: str) -> dict[str, Any]:
    if isinstance(exc, ModelConfigError):
        return {"kind": "config", "message": exc.message, "param": exc.param, "code": exc.code}
    if isinstance(exc, ModelError):
        return {"kind": "model", "message": exc.message, "code": exc.code, "model": exc.model}
    log.exception("local model %s failed", name)
    return {
        "kind": "model",
        "message": f"Local model '{name}' failed: {type(exc).__name__}: {exc}",
        "model": name,
    }


def main() -> None:
    """The worker process: serve turns on stdin/stdout until stdin closes."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # fd 1 now goes to stderr: nothing but frames reach the parent's pipe
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    server = _Server(sys.stdin.buffer, out)
    threading.Thread(target=server.read, name="assistant_kit-local-worker-reader", daemon=True).start()
    server.serve()


__all__ = ["COUNT_TIMEOUT", "ENV_FAULT", "LocalWorker", "Turn", "died_error", "main", "worker"]
