"""Where the ``code_interpreter``'s Python runs: a Jupyter kernel per key (the engine uses the thread
id), started on first use, kept between executions so variables persist, stopped when idle.

A separate process, so that a crash, an endless loop or a memory bomb costs one thread its
variables, never the engine; a Jupyter kernel, because it already speaks "run this, stream the
output, show the plots" (ipykernel's inline matplotlib backend sends figures as PNG
``display_data``). Only jupyter_client's async API is used, so the engine's loop never blocks on a
kernel; jupyter_client is imported lazily, so ``import assistant_kit`` does not pay for it, and
without it (or ipykernel, psutil) :meth:`KernelPool.execute` answers ``"unavailable"`` with the
``pip install`` line to run.

Decisions:

- **Directories.** The code's cwd is ``root/<key>/``; everything else the kernel writes (HOME,
  IPYTHONDIR, MPLCONFIGDIR, TMPDIR, the connection file, the kernel's own log) goes to
  ``root/.<key>.private/``, so a before/after snapshot of the working dir reports exactly the files
  the code wrote. Hidden names, ``__pycache__`` and symlinks are never reported. What an
  execution produced — logs, images, written files — is captured within limits by
  :mod:`._capture`.
- **Environment.** Built from an allowlist (``PATH``, ``LANG``, ``LANGUAGE``, ``LC_*``, ``TZ``,
  ``PYTHONPATH``, ``LD_LIBRARY_PATH``, and the few variables Windows needs to start a process), plus
  the private dirs and one-thread caps for BLAS/OpenMP, then anything secret-looking is dropped
  again. API keys, ``ASSISTANT_KIT_*`` (database path, master key), ``DATABASE_URL`` and proxy
  settings (which may embed credentials) never reach model-written code. ``MPLBACKEND`` is left unset
  so ipykernel installs its inline backend.
- **Limits** (:class:`SandboxLimits`). Wall clock: past ``timeout`` the kernel is killed (the next
  call starts a fresh one); cancelling an ``execute`` kills it too. Memory: a watchdog reads the
  kernel's RSS every 50 ms while code runs and kills it past ``memory_mb``; on Linux ``RLIMIT_DATA``
  backs it up against allocations faster than the watchdog (1.25 x the limit, plus 128 MB because
  it also counts the ~8 MB stack reserved per kernel thread, which RSS does not; ``RLIMIT_AS`` would
  count every thread's malloc arena and fail numpy long before the RSS limit). Child processes the
  code starts are not watched, but each inherits the rlimits. A ``MemoryError`` the code got is
  reported as ``"memory"`` too, and the kernel restarted, as its state may be half-built. CPU:
  ``RLIMIT_CPU`` per kernel lifetime, start-up included (SIGXCPU ends it: ``"crashed"``, with a
  reason naming the budget), and niceness 10, on Linux for its autogroup as well, so the engine
  stays responsive. ``RLIMIT_FSIZE`` caps a file the code writes; ``RLIMIT_CORE`` 0 keeps core
  dumps out of the working dir. The rlimits are set by ``_launch.py``, a tiny launcher the kernel
  argv is wrapped in, not by a ``preexec_fn`` (jupyter_client 8 would pass one through to Popen,
  but it is unsafe in a threaded parent and forces a full fork; see ``_launch.py``).
- **Death.** While code runs, the kernel process is polled with the watchdog, so a kernel that dies
  (``os._exit``, a segfault, SIGKILL) is reported as ``"crashed"`` within ~50 ms, not at the timeout.
  Kernels lead their own process group (jupyter_client starts them in a new session): killing one
  kills what its code spawned. An ``atexit`` hook kills every kernel this process started, and
  ipykernel itself exits when its parent process disappears.
- **Output.** stdout, stderr, plain-mode tracebacks (ANSI stripped) and the text of results go to
  ``logs``, capped at ``max_output_chars`` (the rest is counted, not kept, and a marker says how
  much was dropped); PNGs go to ``images`` (at most ``max_images``).

Not a security boundary: the kernel runs as the same OS user with the same filesystem and network.
A pool belongs to the event loop that first uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidRequestError
from ._capture import Logs, base_name, png_bytes, snapshot
from .kernel import LIVE, descendants, kernel_argv, kernel_env, kill
from .kernel import manager as make_manager

__all__ = ["ExecutionResult", "KernelPool", "SandboxLimits", "kernel_env", "unavailable_reason"]

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'assistant-kit[code-interpreter]'"
_POLL = 0.05  # seconds between watchdog checks (memory, death) while code runs
_GONE = "variables and imports are gone"


@dataclass(frozen=True)
class SandboxLimits:
    """What one execution, and one kernel, may use."""

    timeout: float = 30.0  # wall-clock seconds per execution
    memory_mb: int = 1024  # RSS of the kernel process, enforced by a watchdog (+ RLIMIT_DATA on Linux)
    cpu_seconds: int = 600  # CPU seconds per kernel lifetime (RLIMIT_CPU)
    idle_seconds: float = 600.0  # a kernel unused this long is shut down
    max_output_chars: int = 20_000  # logs per execution; the rest dropped with a marker
    max_images: int = 20  # images per execution; more are dropped with a note in the logs
    max_image_bytes: int = 20 * 1024 * 1024  # a bigger image is dropped with a note in the logs
    max_files: int = 100  # written files reported per execution; the rest named in a note
    max_listed_files: int = 20_000  # files listed to find what the code wrote (a huge tree stays cheap)
    max_file_mb: int = 1024  # largest file the code may write (RLIMIT_FSIZE)
    start_timeout: float = 60.0  # seconds a kernel may take to start (a cold start on a busy machine)


@dataclass
class ExecutionResult:
    """What one execution did. ``reason`` is one sentence for people and the model alike."""

    status: str  # "ok" | "error" | "timeout" | "memory" | "crashed" | "unavailable"
    logs: str
    images: list[bytes] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    reason: str | None = None
    cold: bool = False
    seconds: float = 0.0

    def __repr__(self) -> str:
        note = f" reason={self.reason!r}" if self.reason else ""
        return (
            f"<ExecutionResult {self.status} logs={len(self.logs)} chars images={len(self.images)} "
            f"files={len(self.files)} {'cold' if self.cold else 'warm'} {self.seconds:.3f} s{note}>"
        )


def unavailable_reason() -> str | None:
    """None when kernels can run here; else why not, with the command that fixes it."""
    needed = ("jupyter_client", "ipykernel", "psutil")
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        return (
            f"The code interpreter needs {' and '.join(missing)}, not installed in this Python; "
            f"install them with: {INSTALL_HINT}"
        )
    if not sys.executable:
        return "The code interpreter cannot find this Python's executable to start a kernel with."
    return None


class _Kernel:
    """One running kernel: manager, client, process; ``last_used`` for the idle reaper."""

    def __init__(self, manager: Any, client: Any, process: subprocess.Popen[Any]) -> None:
        import psutil

        self.manager = manager
        self.client = client
        self.process = process
        self.psutil = psutil.Process(process.pid)
        self.last_used = time.monotonic()
        self.stopped: str | None = None  # why it was stopped under a running execution

    def rss(self) -> int:
        try:
            return int(self.psutil.memory_info().rss)
        except Exception:  # gone: the death check reports it
            return 0

    async def stop(self, *, graceful: bool) -> None:
        """Stop the kernel (with ``graceful``, ask first and allow it 1 s to exit, so the code's
        open files are flushed), then SIGKILL its process group and reap it."""
        with contextlib.suppress(Exception):
            self.client.stop_channels()
        family = descendants(self.process)  # before a graceful exit orphans them
        if graceful and self.process.poll() is None:
            try:  # not manager.shutdown_kernel(): it polls at 0.1 s steps and takes ~0.6 s, not ~0.1
                await self.manager.request_shutdown()
                await self.wait(1.0)
            except Exception as exc:  # the kill below is what matters
                log.debug("graceful kernel shutdown failed: %r", exc)
            finally:  # even when this stop is cancelled while it waits
                kill(self.process, family)
        kill(self.process, family)
        await self.wait(5.0)  # a dying process with a big heap takes a moment to unmap it
        if self.process.poll() is not None:
            LIVE.discard(self.process)
        with contextlib.suppress(Exception):
            await self.manager.cleanup_resources()

    async def wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self.process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)


@dataclass
class _Slot:
    """Per key: the lock that serialises executions, the kernel, how many callers hold the slot
    (it is dropped at 0 without a kernel), and a count of shutdowns (one may come mid-start)."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    kernel: _Kernel | None = None
    users: int = 0
    generation: int = 0


def _death_reason(code: int, limits: SandboxLimits) -> str:
    if code < 0 and -code == getattr(signal, "SIGXCPU", None):
        return (
            f"The kernel used up its CPU-time budget ({limits.cpu_seconds} s) and was stopped; "
            f"it will be restarted, so {_GONE}."
        )
    if code < 0:
        try:
            how = f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
    else:
        how = f"exit code {code}"
    return f"The kernel died while running this code ({how}); it will be restarted, so {_GONE}."


class KernelPool:
    """Jupyter kernels by key under ``root``: ``execute`` code, ``put_file`` inputs, ``shutdown``."""

    def __init__(self, root: Path, limits: SandboxLimits = SandboxLimits()) -> None:
        self.root = Path(root)
        self.limits = limits
        self._slots: dict[str, _Slot] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False

    def __repr__(self) -> str:
        live = sum(1 for slot in self._slots.values() if slot.kernel is not None)
        state = " closed" if self._closed else ""
        return f"<KernelPool root={str(self.root)!r} kernels={live}{state}>"

    def _check_key(self, key: str) -> str:
        if not key or key.startswith(".") or any(c in key for c in "/\\\0") or key != key.strip():
            raise ValueError(
                f"Invalid sandbox key {key!r}: it names a directory (no '/', '\\', leading '.')."
            )
        return key

    def workdir(self, key: str) -> Path:
        """The directory the key's code runs in (created on demand)."""
        path = self.root / self._check_key(key)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path

    def _private(self, key: str) -> Path:
        return self.root / f".{self._check_key(key)}.private"

    async def put_file(self, key: str, name: str, data: bytes) -> Path:
        """Write an input file (tool_resources) into the key's working dir; ``name`` is reduced to
        its last component, and one that is empty, '.', '..' or has NUL is refused."""
        base = base_name(name)
        if base is None:
            raise InvalidRequestError(f"Invalid file name for the code interpreter: {name!r}.", param="name")
        self._check_key(key)
        slot = self._slots.setdefault(key, _Slot())
        slot.users += 1
        try:
            async with slot.lock:
                path = self.workdir(key) / base
                await asyncio.to_thread(path.write_bytes, data)
                return path
        finally:
            self._release(key, slot)

    def _release(self, key: str, slot: _Slot) -> None:
        slot.users -= 1
        if slot.users == 0 and slot.kernel is None and self._slots.get(key) is slot:
            del self._slots[key]

    async def execute(
        self, key: str, code: str, on_output: Callable[[str, str | bytes], None] | None = None
    ) -> ExecutionResult:
        """Run ``code`` in the key's kernel (starting one if needed). ``on_output(kind, value)`` is
        called on the loop as output arrives: ``("logs", text)``, consistent with the result's
        logs, marker included, or ``("image", png_bytes)``."""
        reason = unavailable_reason()
        if reason:
            return ExecutionResult("unavailable", "", reason=reason)
        if self._closed:
            raise RuntimeError("This KernelPool is closed.")
        self._check_key(key)
        slot = self._slots.setdefault(key, _Slot())
        slot.users += 1
        try:
            async with slot.lock:
                return await self._execute(key, slot, code, on_output)
        finally:
            self._release(key, slot)

    async def _execute(
        self, key: str, slot: _Slot, code: str, on_output: Callable[[str, str | bytes], None] | None
    ) -> ExecutionResult:
        started = time.monotonic()
        kernel = slot.kernel
        if kernel is not None and kernel.process.poll() is not None:  # died between executions
            slot.kernel = None
            await kernel.stop(graceful=False)
            kernel = None
        cold = kernel is None
        if kernel is None:
            generation = slot.generation
            try:
                kernel = await self._start(key)
            except Exception as exc:
                log.warning("could not start a kernel for %s: %r", key, exc)
                where = self._private(key) / "kernel.log"
                reason = f"The Python kernel could not start ({exc}); its log is {where}."
                return ExecutionResult("unavailable", "", reason=reason, seconds=time.monotonic() - started)
            if self._closed or slot.generation != generation:  # shut down while it was starting
                await kernel.stop(graceful=False)
                reason = "The code interpreter was shut down while its kernel started; the code did not run."
                return ExecutionResult(
                    "unavailable", "", reason=reason, cold=True, seconds=time.monotonic() - started
                )
            slot.kernel = kernel
        workdir = self.workdir(key)
        kernel.last_used = time.monotonic()
        before, listed = await asyncio.to_thread(snapshot, workdir, self.limits.max_listed_files)
        try:
            status, reason, logs, images = await self._run(kernel, code, on_output)
        except BaseException:  # cancelled (a run cancelled) or broken: the code must not run on
            if slot.kernel is kernel:
                slot.kernel = None
            kill(kernel.process)
            await asyncio.shield(kernel.stop(graceful=False))
            raise
        if status in ("timeout", "memory", "crashed"):
            if slot.kernel is kernel:
                slot.kernel = None
            await kernel.stop(graceful=False)
        after, _ = await asyncio.to_thread(snapshot, workdir, self.limits.max_listed_files)
        kernel.last_used = time.monotonic()
        self._ensure_reaper()
        changed = [path for path, mark in after.items() if before.get(path) != mark]
        if listed is not None:  # the listing before stopped short: only what it covered is known
            changed = [path for path in changed if os.path.dirname(path) in listed]
        files = sorted(Path(path) for path in changed)
        if len(files) > self.limits.max_files:
            more = len(files) - self.limits.max_files
            files = files[: self.limits.max_files]
            logs += f"\n… [{more:,} more files written; only the first {len(files)} are kept as files]"
        seconds = time.monotonic() - started
        return ExecutionResult(status, logs, images, files, reason, cold, seconds)

    async def _start(self, key: str) -> _Kernel:
        workdir, private = self.workdir(key), self._private(key)
        private.mkdir(mode=0o700, parents=True, exist_ok=True)
        (private / "tmp").mkdir(mode=0o700, exist_ok=True)
        manager = make_manager(
            kernel_argv(self.limits.cpu_seconds, self.limits.max_file_mb, self.limits.memory_mb), private
        )
        # The kernel's own stdout/stderr (its log, C-level crash messages) go to a file of its own,
        # not into the engine's terminal or the notebook's.
        with open(private / "kernel.log", "ab") as kernel_log:
            try:
                await manager.start_kernel(
                    env=kernel_env(private), cwd=str(workdir), stdout=kernel_log, stderr=kernel_log
                )
            except BaseException:  # cancelled (or failed) after Popen: no kernel is left behind
                started = getattr(manager.provisioner, "process", None)
                if started is not None:
                    kill(started)
                    with contextlib.suppress(Exception):
                        started.wait(timeout=5)
                with contextlib.suppress(Exception):  # its sockets and zmq context
                    await asyncio.shield(manager.cleanup_resources())
                raise
        process = manager.provisioner.process
        LIVE.add(process)
        client = manager.client()
        client.start_channels(stdin=False, hb=False, control=False)
        kernel = _Kernel(manager, client, process)
        try:
            await client.wait_for_ready(timeout=self.limits.start_timeout)
        except BaseException:
            await kernel.stop(graceful=False)
            raise
        return kernel

    async def _run(
        self, kernel: _Kernel, code: str, on_output: Callable[[str, str | bytes], None] | None
    ) -> tuple[str, str | None, str, list[bytes]]:
        """Send ``code``, collect its output until the kernel is idle, a limit is hit or it dies."""
        limits = self.limits
        logs = Logs(limits.max_output_chars)
        images: list[bytes] = []
        images_dropped = 0

        def emit(kind: str, value: str | bytes) -> None:
            if on_output is None or not value:
                return
            try:
                on_output(kind, value)
            except Exception:  # the execution goes on: the kernel is mid-run, the lock must hold
                log.exception("on_output callback failed")

        def add_logs(text: str) -> None:
            emit("logs", logs.add(text))

        status, reason = "ok", None
        msg_id = kernel.client.execute(code, allow_stdin=False)
        deadline = time.monotonic() + limits.timeout
        next_check = 0.0
        while True:
            now = time.monotonic()
            if now >= next_check:
                exit_code = kernel.process.poll()
                if exit_code is not None:
                    status, reason = "crashed", kernel.stopped or _death_reason(exit_code, limits)
                    break
                if kernel.rss() > limits.memory_mb * 1024 * 1024:
                    kill(kernel.process)
                    status = "memory"
                    reason = (
                        f"Execution used more than {limits.memory_mb} MB of memory and was stopped; "
                        f"the kernel was restarted, so {_GONE}."
                    )
                    break
                next_check = now + _POLL
            if now >= deadline:
                status = "timeout"
                reason = (
                    f"Execution timed out after {limits.timeout:g} s; the kernel was restarted, so {_GONE}."
                )
                break
            try:
                msg = await kernel.client.get_iopub_msg(timeout=max(min(next_check, deadline) - now, 0.001))
            except queue.Empty:
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content.get("execution_state") == "idle":
                break
            if kind == "stream":
                add_logs(content.get("text", ""))
            elif kind == "error":
                traceback = "\n".join(line.rstrip("\n") for line in content.get("traceback", ()))
                add_logs(traceback + "\n")
                if content.get("ename", "").endswith("MemoryError"):
                    status = "memory"
                    reason = (
                        f"The code ran out of memory (limit {limits.memory_mb} MB); "
                        f"the kernel was restarted, so {_GONE}."
                    )
                elif status == "ok":
                    status = "error"
            elif kind in ("execute_result", "display_data"):
                # The code controls this data (display(..., raw=True)): anything malformed is a
                # note in the logs, never an exception out of the sandbox.
                data = content.get("data", {})
                if not isinstance(data, dict):
                    continue
                if "image/png" in data:
                    png = png_bytes(data["image/png"], limits.max_image_bytes)
                    if isinstance(png, str):
                        add_logs(f"[image not kept: {png}]\n")
                    elif len(images) < limits.max_images:
                        images.append(png)
                        emit("image", png)
                    else:
                        images_dropped += 1
                elif "text/plain" in data:
                    add_logs(f"{data['text/plain']}\n")
        if status in ("ok", "error"):
            await self._drain_reply(kernel, msg_id)
        emit("logs", logs.finish(images_dropped))
        return status, reason, logs.text, images

    @staticmethod
    async def _drain_reply(kernel: _Kernel, msg_id: str) -> None:
        """Read the shell reply of ``msg_id`` so replies do not pile up in the client's socket."""
        with contextlib.suppress(queue.Empty):
            while True:
                reply = await kernel.client.get_shell_msg(timeout=1)
                if reply.get("parent_header", {}).get("msg_id") == msg_id:
                    return

    def _ensure_reaper(self) -> None:
        if (self._reaper is None or self._reaper.done()) and not self._closed:
            self._reaper = asyncio.get_running_loop().create_task(self._reap_idle())

    async def _reap_idle(self) -> None:
        """Stop kernels unused for ``idle_seconds``; ends when none are left."""
        idle = self.limits.idle_seconds
        while any(slot.kernel is not None for slot in self._slots.values()):
            now = time.monotonic()
            quiet = {
                key: slot
                for key, slot in self._slots.items()
                if slot.kernel is not None and not slot.lock.locked()
            }
            due = [key for key, slot in quiet.items() if slot.kernel and now - slot.kernel.last_used >= idle]
            for key in due:
                slot = quiet[key]
                async with slot.lock:
                    kernel = slot.kernel
                    if kernel is not None and time.monotonic() - kernel.last_used >= idle:
                        slot.kernel = None
                        log.debug("stopping idle kernel %s", key)
                        await kernel.stop(graceful=True)
                if slot.users == 0 and slot.kernel is None and self._slots.get(key) is slot:
                    del self._slots[key]
            waits = [slot.kernel.last_used + idle - now for slot in quiet.values() if slot.kernel is not None]
            await asyncio.sleep(max(min(waits, default=idle), _POLL))

    @staticmethod
    async def _stop(kernel: _Kernel, *, running: bool) -> None:
        """Stop a kernel taken out of its slot. One running code is only killed: the execution
        notices within a poll, reports ``kernel.stopped`` and closes the channels it is reading."""
        if not running:
            await kernel.stop(graceful=True)
            return
        kernel.stopped = f"The kernel was shut down while this code was running, so {_GONE}."
        kill(kernel.process)
        await kernel.wait(5.0)

    async def shutdown(self, key: str, *, remove_files: bool = False) -> None:
        """Stop the key's kernel (an execution in progress ends as ``"crashed"``); with
        ``remove_files`` (the thread was deleted) also delete its working and private dirs."""
        slot = self._slots.get(key)
        if slot is not None:
            slot.generation += 1
        if slot is not None and slot.kernel is not None:
            kernel, slot.kernel = slot.kernel, None
            await self._stop(kernel, running=slot.lock.locked())
            if slot.users == 0 and self._slots.get(key) is slot:
                del self._slots[key]
        if remove_files:
            for path in (self.root / self._check_key(key), self._private(key)):
                await asyncio.to_thread(shutil.rmtree, path, True)

    async def aclose(self) -> None:
        """Stop every kernel (engine shutdown). The pool cannot execute afterwards."""
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        stopping = []
        for slot in self._slots.values():
            if slot.kernel is not None:
                kernel, slot.kernel = slot.kernel, None
                stopping.append(self._stop(kernel, running=slot.lock.locked()))
        await asyncio.gather(*stopping)
