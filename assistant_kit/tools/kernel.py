"""One kernel process of the code_interpreter: its command line (wrapped in ``_launch.py``, which
sets the rlimits), its environment (an allowlist, then anything secret-looking dropped), its
jupyter_client manager, and the ``atexit`` net that kills every kernel this Python started.
:mod:`.sandbox` explains the choices; this module only makes processes.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from . import isolation

_KERNEL_FLAGS = (
    "--HistoryManager.enabled=False",  # no SQLite history file to open at start, nothing to leak
    "--InteractiveShell.xmode=Plain",  # short tracebacks: what the model needs, no source context
    "--InteractiveShell.colors=nocolor",
)
_PASS_ENV = ("PATH", "LANG", "LANGUAGE", "TZ", "PYTHONPATH", "LD_LIBRARY_PATH")
_PASS_ENV_WINDOWS = ("SYSTEMROOT", "WINDIR", "COMSPEC", "PATHEXT")
_SECRET_ENV = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|COOKIE|SESSION|_URL$|^ASSISTANT_KIT_", re.I)
_THREAD_CAPS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def kernel_env(
    private: Path | PurePosixPath,
    parent: Mapping[str, str] | None = None,
    *,
    tmp: Path | PurePosixPath | None = None,
) -> dict[str, str]:
    """The kernel's environment: the allowlist taken from ``parent`` (default ``os.environ``), the
    private dirs (as the kernel sees them: ``private`` is its HOME, ``tmp`` its TMPDIR, default
    ``private/tmp``), thread caps; never a variable whose name looks secret."""
    parent = os.environ if parent is None else parent
    names = _PASS_ENV + (_PASS_ENV_WINDOWS if os.name == "nt" else ())
    env = {name: parent[name] for name in names if name in parent}
    env.update({name: value for name, value in parent.items() if name.startswith("LC_")})
    tmp = private / "tmp" if tmp is None else tmp
    env.update(
        HOME=str(private),
        USERPROFILE=str(private),
        IPYTHONDIR=str(private / "ipython"),
        MPLCONFIGDIR=str(private / "matplotlib"),
        JUPYTER_CONFIG_DIR=str(private / "jupyter"),
        JUPYTER_DATA_DIR=str(private / "jupyter"),
        JUPYTER_RUNTIME_DIR=str(private / "jupyter" / "runtime"),
        XDG_CACHE_HOME=str(private / "cache"),
        XDG_CONFIG_HOME=str(private / "config"),
        TMPDIR=str(tmp),
        TEMP=str(tmp),
        TMP=str(tmp),
        PYTHONDONTWRITEBYTECODE="1",  # no __pycache__ beside modules the code writes
        **dict.fromkeys(_THREAD_CAPS, "1"),
    )
    return {name: value for name, value in env.items() if not _SECRET_ENV.search(name)}


LAUNCHER = Path(__file__).with_name("_launch.py")


def kernel_argv(
    cpu_seconds: int,
    max_file_mb: int,
    memory_mb: int,
    *,
    sandbox: list[str] | None = None,
    max_processes: int | None = None,
    uid: int | None = None,
) -> list[str]:
    """The kernel's command line. ``sandbox``: the bwrap argv (:func:`.isolation.command`) it runs
    in; then the connection file and the launcher are the paths inside it, ``uid`` the uid the
    launcher drops to and ``max_processes`` its ``RLIMIT_NPROC``."""
    connection = f"{isolation.RUN}/kernel.json" if sandbox else "{connection_file}"
    kernel = [sys.executable, "-m", "ipykernel_launcher", "-f", connection, *_KERNEL_FLAGS]
    if os.name != "posix":  # no rlimits, no nice: the watchdog and the timeout still apply
        return kernel
    mb = 1024 * 1024
    options = [
        "nice=10",
        f"CPU={cpu_seconds}:{cpu_seconds + 5}",  # SIGXCPU, then SIGKILL if caught
        f"FSIZE={max_file_mb * mb}",
        "CORE=0",
    ]
    if sys.platform.startswith("linux"):
        options.append(f"DATA={(memory_mb * 5 // 4 + 128) * mb}")
    if max_processes is not None:
        options.append(f"NPROC={max_processes}")
    if uid is not None:
        options.append(f"uid={uid}")
    launcher = isolation.LAUNCHER if sandbox else str(LAUNCHER)
    return [*(sandbox or []), sys.executable, "-I", "-S", launcher, *options, "--", *kernel]


def manager(argv: list[str], private: Path, sockets: Path | None = None, uid: int | None = None) -> Any:
    """An AsyncKernelManager for one kernel: our argv (not whatever "python3" kernelspec the user
    has installed), its connection file in ``private``, and CurveZMQ between engine and kernel when
    both ends support it (ipykernel's kernelspec metadata says whether it can encrypt, and "auto"
    only encrypts then).

    Unsandboxed, the kernel listens on localhost TCP. Sandboxed (``sockets``: the directory bound
    at ``/run/kernel``), it has no network shared with the engine: ZeroMQ ``ipc://`` sockets in
    ``sockets``, and a second connection file there naming them by their path inside (the same
    ports and key; the kernel's ``uid`` owns the directory and the file)."""
    import zmq
    from ipykernel.kernelspec import get_kernel_dict
    from jupyter_client.kernelspec import KernelSpec

    metadata = get_kernel_dict().get("metadata", {})
    spec = KernelSpec(argv=argv, display_name="sandbox", language="python", metadata=metadata)
    cls = _manager_class()
    options: dict[str, Any] = {}
    if zmq.has("curve") and "transport_encryption" in cls.class_trait_names():
        options["transport_encryption"] = "auto"
    if sockets is not None:
        # a short path: a unix socket's is at most 107 bytes
        options.update(transport="ipc", ip=str(sockets / "k"))
    manager = cls(kernel_spec_manager=_spec_manager_class()(spec), kernel_name="sandbox", **options)
    manager.connection_file = str(private / "kernel.json")
    manager.sandbox_sockets = (sockets, uid)
    return manager


@functools.cache
def _manager_class() -> type:
    """AsyncKernelManager that also writes the sandbox's view of the connection file (written in
    ``write_connection_file``, which every jupyter_client since 7 calls before each launch)."""
    from jupyter_client import AsyncKernelManager

    class _Manager(AsyncKernelManager):
        sandbox_sockets: tuple[Path | None, int | None] = (None, None)

        def write_connection_file(self, *args: Any, **kwargs: Any) -> None:
            super().write_connection_file(*args, **kwargs)
            sockets, uid = self.sandbox_sockets
            if sockets is None:
                return
            with open(self.connection_file) as outside:
                info = json.load(outside)
            info["ip"] = f"{isolation.RUN}/k"
            path = sockets / "kernel.json"
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as inside:
                json.dump(info, inside)
            if uid is not None:
                os.chown(path, uid, uid)

    return _Manager


@functools.cache
def _spec_manager_class() -> type:
    """A KernelSpecManager that knows one spec, the one it is given."""
    from jupyter_client.kernelspec import KernelSpecManager

    class _OneSpec(KernelSpecManager):
        def __init__(self, spec: Any, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.spec = spec

        def get_kernel_spec(self, kernel_name: str) -> Any:
            return self.spec

    return _OneSpec


# Every kernel process this Python started and has not reaped yet, for the atexit hook.
LIVE: set[subprocess.Popen[Any]] = set()


def descendants(process: subprocess.Popen[Any]) -> list[Any]:
    """The kernel's living descendants (``psutil.Process`` objects), to kill with it."""
    if process.poll() is not None:
        return []
    try:
        import psutil

        return list(psutil.Process(process.pid).children(recursive=True))
    except Exception:
        return []


def kill(process: subprocess.Popen[Any], family: list[Any] | None = None, *, leader: bool = True) -> None:
    """SIGKILL the kernel, its process group and its other descendants — code can start a
    process in a session of its own, outside the group; ``family`` is a list taken earlier
    (before a graceful exit orphaned them). Does not wait. A descendant orphaned before any
    list was taken is out of reach."""
    family = descendants(process) if family is None else family
    with contextlib.suppress(OSError):
        if not leader:  # bwrap: it exits once its child is gone, and reaps it first (no zombie)
            pass
        elif hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)
        elif process.poll() is None:
            process.kill()
    for child in family:
        with contextlib.suppress(Exception):
            child.kill()


@atexit.register
def kill_all() -> None:
    """The safety net: no kernel outlives the Python that started it (a notebook closed, pytest done)."""
    for process in list(LIVE):
        kill(process)
    for process in list(LIVE):
        with contextlib.suppress(Exception):
            process.wait(timeout=2)
    LIVE.clear()
