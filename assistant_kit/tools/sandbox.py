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
import functools
import importlib.util
import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import InvalidRequestError
from . import isolation as iso
from ._capture import Logs, base_name, disk_usage, png_bytes, snapshot
from .isolation import Isolation
from .kernel import LAUNCHER, LIVE, descendants, kernel_argv, kernel_env, kill
from .kernel import manager as make_manager

__all__ = ["ExecutionResult", "Isolation", "KernelPool", "SandboxLimits", "kernel_env", "unavailable_reason"]

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'assistant-kit[code-interpreter]'"
_POLL = 0.05  # seconds between watchdog checks (memory, death) while code runs
_DISK_POLL = 0.25  # seconds between disk-quota checks while code runs (a walk of its directories)
_GONE = "variables and imports are gone"
_UIDS: set[int] = set()  # sandbox uid offsets taken by live kernels of this process, all pools


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
    # Sandboxed (bwrap) only:
    max_processes: int = 256  # RLIMIT_NPROC of the kernel's own uid (threads count too); root engines
    disk_mb: int = 1024  # working directory + home + /tmp of one thread, allocated blocks
    max_kernels: int = 16  # live kernels per pool; starting one more stops the least recently used


@dataclass
class ExecutionResult:
    """What one execution did. ``reason`` is one sentence for people and the model alike."""

    status: str  # "ok" | "error" | "timeout" | "memory" | "disk" | "crashed" | "unavailable"
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
    """One running kernel: manager, client, process; ``last_used`` for the idle reaper.

    Sandboxed, ``process`` is bwrap, whose child is the namespace's first process (``init``,
    bwrap's own), whose first child is the kernel (``inner``); anything else in the tree was
    started by the code. Memory is the RSS summed over the tree."""

    def __init__(
        self,
        manager: Any,
        client: Any,
        process: subprocess.Popen[Any],
        *,
        sockets: Path | None = None,
        release: Callable[[], None] | None = None,
    ) -> None:
        import psutil

        self.manager = manager
        self.client = client
        self.process = process
        self.psutil = psutil.Process(process.pid)
        self.last_used = time.monotonic()
        self.stopped: str | None = None  # why it was stopped under a running execution
        self.sockets = sockets  # sandboxed: the IPC sockets' directory, removed at stop
        self.release = release  # gives the kernel's uid back to the pool once it is dead
        self.keep: set[int] = {process.pid}  # the processes that are not the code's

    @property
    def sandboxed(self) -> bool:
        return self.sockets is not None

    def find_inner(self) -> None:
        """Note bwrap's init and the kernel (before any code ran, they are the whole tree)."""
        self.keep.update(child.pid for child in descendants(self.process))

    def family(self) -> list[Any]:
        return descendants(self.process)

    def kill(self, family: list[Any] | None = None) -> None:
        """SIGKILL the kernel and what it started (sandboxed: bwrap's init, so the namespace dies;
        bwrap itself then reaps it and exits)."""
        kill(self.process, family, leader=not self.sandboxed)

    def rss(self) -> int:
        try:
            if not self.sandboxed:
                return int(self.psutil.memory_info().rss)
            total = 0
            for member in self.family():
                with contextlib.suppress(Exception):
                    total += int(member.memory_info().rss)
            return total
        except Exception:  # gone: the death check reports it
            return 0

    def kill_strays(self) -> int:
        """SIGKILL every process of the sandbox that is not bwrap's or the kernel (what the code
        started: children, daemons). Returns how many."""
        count = 0
        for member in self.family():
            with contextlib.suppress(Exception):  # gone meanwhile
                # A zombie is dead already: the kernel reaps its children (subprocess does, at its
                # next Popen), bwrap's init the orphans.
                if member.pid not in self.keep and member.status() != "zombie":
                    member.kill()
                    count += 1
        return count

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
                self.kill(family)
        self.kill(family)
        await self.wait(5.0)  # a dying process with a big heap takes a moment to unmap it
        if self.process.poll() is None and self.sandboxed:  # bwrap did not exit after its child
            kill(self.process)
            await self.wait(5.0)
        if self.process.poll() is not None:
            LIVE.discard(self.process)
            if self.release is not None:
                self.release()
                self.release = None
        with contextlib.suppress(Exception):
            await self.manager.cleanup_resources()
        if self.sockets is not None:
            await asyncio.to_thread(shutil.rmtree, self.sockets, True)

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
    """Jupyter kernels by key under ``root``: ``execute`` code, ``put_file`` inputs, ``shutdown``.

    ``isolation`` (:mod:`.isolation`): by default ``"auto"``, bubblewrap when it works here."""

    def __init__(
        self, root: Path, limits: SandboxLimits = SandboxLimits(), isolation: Isolation | None = None
    ) -> None:
        self.root = Path(root)
        self.limits = limits
        self.isolation = isolation or Isolation()
        self._slots: dict[str, _Slot] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False
        self._uids: set[int] = set()  # this pool's sandbox uid offsets (live or dying kernels)

    def __repr__(self) -> str:
        live = sum(1 for slot in self._slots.values() if slot.kernel is not None)
        state = " closed" if self._closed else ""
        return f"<KernelPool root={str(self.root)!r} sandbox={self.sandbox} kernels={live}{state}>"

    @property
    def sandbox(self) -> str:
        """``"bwrap"`` or ``"none"``: what kernels started now run in (``"bwrap"`` also when it is
        required and missing: then they do not start, see :meth:`sandbox_missing`)."""
        if self.isolation.mode == "none":
            return "none"
        if self.isolation.mode == "auto" and iso.missing() is not None:
            return "none"
        return "bwrap"

    def sandbox_missing(self) -> str | None:
        """Why the required sandbox cannot be set up here (None when it can or is not required)."""
        return iso.missing() if self.isolation.mode == "bwrap" else None

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
        reason = unavailable_reason() or self.sandbox_missing()
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
                await self._make_room(key)
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
        since = await asyncio.to_thread(_filesystem_now, workdir.parent)
        before, listed = await asyncio.to_thread(snapshot, workdir, self.limits.max_listed_files)
        try:
            status, reason, logs, images = await self._run(kernel, code, on_output, self._disk_dirs(key))
        except BaseException:  # cancelled (a run cancelled) or broken: the code must not run on
            if slot.kernel is kernel:
                slot.kernel = None
            kernel.kill()
            await asyncio.shield(kernel.stop(graceful=False))
            raise
        if kernel.sandboxed and status not in ("timeout", "memory", "disk", "crashed"):
            # Nothing the code started outlives its execution (a kernel is stopped whole below).
            strays = await asyncio.to_thread(kernel.kill_strays)
            if strays:
                logs += f"\n[{strays} process(es) the code started were still running and were stopped]"
            used = await asyncio.to_thread(self._over_quota, key)
            if used is not None:
                status, reason = "disk", self._disk_reason(used)
        if status in ("timeout", "memory", "disk", "crashed"):
            if slot.kernel is kernel:
                slot.kernel = None
            await kernel.stop(graceful=False)
        if status == "disk":
            await asyncio.to_thread(_remove_written, self._disk_dirs(key), since)
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

    def _disk_dirs(self, key: str) -> list[Path]:
        """What the disk quota counts: the working directory, and the sandbox's home and /tmp."""
        private = self._private(key)
        return [self.workdir(key), private / "home", private / "tmp"]

    def _over_quota(self, key: str) -> int | None:
        """The bytes used when over the quota (or the entry cap), else None."""
        used, entries = disk_usage(self._disk_dirs(key), self.limits.max_listed_files * 5)
        over = used > self.limits.disk_mb * 1024 * 1024 or entries >= self.limits.max_listed_files * 5
        return used if over else None

    def _disk_reason(self, used: int) -> str:
        return (
            f"The code wrote more than the disk quota of {self.limits.disk_mb} MB (working directory, "
            f"home and /tmp together: {used / 1024 / 1024:,.0f} MB, or more than "
            f"{self.limits.max_listed_files * 5:,} files) and was stopped; the files written by this "
            f"execution were deleted and the kernel was restarted, so {_GONE}."
        )

    async def _make_room(self, key: str) -> None:
        """Keep at most ``max_kernels`` live: stop the least recently used idle kernel of another
        key; when every kernel is running code, wait for one to finish (up to ``start_timeout``)."""
        deadline = time.monotonic() + self.limits.start_timeout
        while True:
            live = [(k, slot) for k, slot in self._slots.items() if slot.kernel is not None and k != key]
            if len(live) < self.limits.max_kernels and len(self._uids) < self.limits.max_kernels:
                return
            idle = [
                (slot.kernel.last_used, k, slot) for k, slot in live if slot.kernel and not slot.lock.locked()
            ]
            if idle:
                _, victim, slot = min(idle, key=lambda item: item[0])
                kernel, slot.kernel = slot.kernel, None
                log.info("stopping the least recently used kernel (%s): %d kernels live", victim, len(live))
                if kernel is not None:
                    await kernel.stop(graceful=True)
                continue
            if time.monotonic() >= deadline:
                raise RuntimeError(f"all {self.limits.max_kernels} kernels are busy running code")
            await asyncio.sleep(_POLL)

    def _take_uid(self) -> int:
        """A uid offset no live kernel of this process has (pools of one process share the range:
        a notebook's engine and a test's, say), so each kernel's RLIMIT_NPROC is its own."""
        offset = next(n for n in range(len(_UIDS) + 1) if n not in _UIDS)
        _UIDS.add(offset)
        self._uids.add(offset)
        return offset

    def _give_back_uid(self, offset: int) -> None:
        _UIDS.discard(offset)
        self._uids.discard(offset)

    async def _start(self, key: str) -> _Kernel:
        workdir, private = self.workdir(key), self._private(key)
        private.mkdir(mode=0o700, parents=True, exist_ok=True)
        (private / "tmp").mkdir(mode=0o700, exist_ok=True)
        limits = self.limits
        sockets: Path | None = None
        release: Callable[[], None] | None = None
        if self.sandbox == "bwrap":
            home = private / "home"
            home.mkdir(mode=0o700, exist_ok=True)
            # A short path (ZeroMQ's ipc:// names a unix socket: at most 107 bytes), private to us.
            sockets = Path(tempfile.mkdtemp(prefix="ak-", dir="/tmp" if os.path.isdir("/tmp") else None))
            uid = None
            if iso.drops_uid():
                offset = self._take_uid()
                uid = self.isolation.uid_base + offset
                release = functools.partial(self._give_back_uid, offset)
                await asyncio.to_thread(_give, [workdir, home, private / "tmp", sockets], uid)
            hidden = (*self.isolation.hidden, self.root)
            sandbox = iso.command(
                replace(self.isolation, hidden=hidden),
                workdir=workdir,
                home=home,
                tmp=private / "tmp",
                run=sockets,
                launcher=LAUNCHER,
            )
            argv = kernel_argv(
                limits.cpu_seconds,
                min(limits.max_file_mb, limits.disk_mb + 1),  # one file past the quota fails itself
                limits.memory_mb,
                sandbox=sandbox,
                max_processes=limits.max_processes if uid is not None else None,
                uid=uid,
            )
            env = kernel_env(PurePosixPath(iso.HOME), tmp=PurePosixPath("/tmp"))
            env.update(USER="sandbox", LOGNAME="sandbox")  # getpass: the uid has no passwd entry
            manager = make_manager(argv, private, sockets, uid)
        else:
            env = kernel_env(private)
            argv = kernel_argv(limits.cpu_seconds, limits.max_file_mb, limits.memory_mb)
            manager = make_manager(argv, private)
        # The kernel's own stdout/stderr (its log, C-level crash messages) go to a file of its own,
        # not into the engine's terminal or the notebook's.
        with open(private / "kernel.log", "ab") as kernel_log:
            try:
                await manager.start_kernel(env=env, cwd=str(workdir), stdout=kernel_log, stderr=kernel_log)
            except BaseException:  # cancelled (or failed) after Popen: no kernel is left behind
                started = getattr(manager.provisioner, "process", None)
                if started is not None:
                    kill(started)
                    with contextlib.suppress(Exception):
                        started.wait(timeout=5)
                with contextlib.suppress(Exception):  # its sockets and zmq context
                    await asyncio.shield(manager.cleanup_resources())
                if sockets is not None:
                    shutil.rmtree(sockets, True)
                if release is not None:
                    release()
                raise
        process = manager.provisioner.process
        LIVE.add(process)
        client = manager.client()
        client.start_channels(stdin=False, hb=False, control=False)
        kernel = _Kernel(manager, client, process, sockets=sockets, release=release)
        try:
            await client.wait_for_ready(timeout=self.limits.start_timeout)
            if kernel.sandboxed:
                kernel.find_inner()
        except BaseException:
            await kernel.stop(graceful=False)
            raise
        return kernel

    async def _run(
        self,
        kernel: _Kernel,
        code: str,
        on_output: Callable[[str, str | bytes], None] | None,
        disk_dirs: list[Path],
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
        # Sandboxed, memory is summed over the process tree and the disk is watched too; the first
        # look waits one poll, so a quick execution pays for no process-table scan.
        next_tree = time.monotonic() + _POLL if kernel.sandboxed else 0.0
        next_disk = time.monotonic() + _DISK_POLL if kernel.sandboxed else float("inf")
        while True:
            now = time.monotonic()
            if now >= next_check:
                exit_code = kernel.process.poll()
                if exit_code is not None:
                    status, reason = "crashed", kernel.stopped or _death_reason(exit_code, limits)
                    break
                if now >= next_tree and kernel.rss() > limits.memory_mb * 1024 * 1024:
                    kernel.kill()
                    status = "memory"
                    whole = " (all its processes together)" if kernel.sandboxed else ""
                    reason = (
                        f"Execution used more than {limits.memory_mb} MB of memory{whole} and was stopped; "
                        f"the kernel was restarted, so {_GONE}."
                    )
                    break
                if now >= next_disk:
                    cap = limits.max_listed_files * 5
                    used, entries = await asyncio.to_thread(disk_usage, disk_dirs, cap)
                    if used > limits.disk_mb * 1024 * 1024 or entries >= cap:
                        kernel.kill()
                        status, reason = "disk", self._disk_reason(used)
                        break
                    next_disk = time.monotonic() + _DISK_POLL
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
        kernel.kill()
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


def _give(paths: list[Path], uid: int) -> None:
    """chown ``paths`` and everything under them (symlinks themselves) to the kernel's uid, so
    the sandboxed code can write where it may: its own directories only."""
    for top in paths:
        with contextlib.suppress(OSError):
            os.chown(top, uid, uid)
        for parent, dirs, files in os.walk(top):
            for name in dirs + files:
                with contextlib.suppress(OSError):
                    os.chown(os.path.join(parent, name), uid, uid, follow_symlinks=False)


def _filesystem_now(directory: Path) -> int:
    """Now, as the kernel stamps file times (ns): the mtime of a file made here this moment.
    ``time.time_ns()`` is not that clock — file times come from the kernel's coarse clock, up to
    a tick (4-10 ms) behind — so a file the code wrote in its first milliseconds could carry an
    mtime before a ``time.time_ns()`` taken earlier, and survive :func:`_remove_written`."""
    with tempfile.TemporaryFile(dir=directory) as marker:
        return os.fstat(marker.fileno()).st_mtime_ns


def _remove_written(roots: list[Path], since_ns: int) -> None:
    """Delete the files under ``roots`` modified since ``since_ns`` (an execution over the disk
    quota: what it wrote goes, what was there before stays)."""
    for root in roots:
        for parent, _dirs, files in os.walk(root):
            for name in files:
                path = os.path.join(parent, name)
                with contextlib.suppress(OSError):
                    if os.lstat(path).st_mtime_ns >= since_ns:
                        os.unlink(path)
