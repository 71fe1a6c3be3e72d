"""The code_interpreter's security boundary: each kernel runs inside bubblewrap (``bwrap``).

Why bubblewrap: it is the sandbox Flatpak runs every desktop application in — small, audited,
packaged by every Linux distribution — and it does with kernel namespaces what home-made checks
cannot: a process tree that dies as one, a filesystem view that simply does not contain the
engine's files, no network interface. What each kernel gets:

- **Its own PID namespace** (``--unshare-pid``, plus ``--die-with-parent``): the kernel sees only
  its own processes in ``/proc``; when the namespace's first process dies (the pool kills it at a
  timeout, thread deletion, shutdown) or the engine dies (even ``kill -9``), the Linux kernel kills
  every process in it, double-forked daemons included.
- **A filesystem built from parts**, not the host's ``/`` with holes punched in it: read-only
  binds of the system directories (``/usr``, ``/etc``, ``/bin``, ``/lib*``…) and of this Python's
  prefixes and site-packages, a fresh ``/proc`` and ``/dev``, and three writable binds — the
  thread's working directory at ``/mnt/data`` (where models trained on the hosted tool read and
  write), its private home at ``/home/sandbox``, its ``/tmp`` — plus the directory of the kernel's
  IPC sockets at ``/run/kernel``. The kit's data directory, the config's directory and the
  database's directory are covered by an empty tmpfs wherever they fall inside a bound directory
  (a venv next to the database, a config under ``/etc``). Nothing else of the host is there:
  no other thread's directory, no ``kernel.json`` of another kernel, no home directory.
- **No network** (``--unshare-net``: only a loopback of its own) unless the config opts in.
  Engine ↔ kernel traffic uses ZeroMQ ``ipc://`` sockets in the bound directory, not TCP.
- **A uid of its own** when the engine runs as root: the launcher inside drops to
  ``uid_base + n`` (n = the kernel's slot), so files of the host owned by root or by users are
  only readable where world-readable, and ``RLIMIT_NPROC`` counts exactly this kernel's processes.
  Run by an ordinary user, bwrap needs a user namespace (``--unshare-user``) and the kernel keeps
  that user's uid (no process-count limit then: ``RLIMIT_NPROC`` would count all of the user's
  processes); the namespaces and the filesystem view are the same.

What it does not do: it is not a VM (a kernel exploit escapes any namespace sandbox), the system
directories stay readable (world-readable files of ``/etc`` included), CPU is shared (niceness and
``RLIMIT_CPU``, no cgroup quota), and ``network: true`` gives the host's network, loopback
services included.
"""

from __future__ import annotations

import functools
import os
import shutil
import site
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

WORK = "/mnt/data"  # the thread's working directory, as the hosted tool had it
HOME = "/home/sandbox"
RUN = "/run/kernel"  # IPC sockets and the kernel's connection file
LAUNCHER = "/run/launch.py"
INSTALL = (
    "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap; "
    "Arch: pacman -S bubblewrap)"
)
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")


@dataclass(frozen=True)
class Isolation:
    """How kernels are isolated. ``mode``: ``"bwrap"`` (required: kernels do not start without
    it), ``"auto"`` (bwrap when it works here, else unsandboxed, said once) or ``"none"``.
    ``hidden``: host directories to cover with an empty tmpfs if the view would contain them."""

    mode: str = "auto"
    network: bool = False
    uid_base: int = 200_000
    hidden: tuple[Path, ...] = ()


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


@functools.cache
def missing() -> str | None:
    """None when bwrap can run a sandbox here; else what is missing and how to get it. The probe
    runs the same kind of sandbox the kernels get, once per process."""
    if not sys.platform.startswith("linux"):
        return f"the code_interpreter sandbox needs Linux (bubblewrap); this is {sys.platform}"
    path = bwrap_path()
    if path is None:
        return f"the code_interpreter sandbox needs bubblewrap (bwrap), not found on PATH: {INSTALL}"
    argv = [path, *_namespaces(network=False), "--ro-bind", "/", "/", "--proc", "/proc", "--", "/bin/true"]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap ({path}) could not run a sandbox here: {exc}"
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        why = detail[-1] if detail else f"exit code {done.returncode}"
        hint = "" if os.geteuid() == 0 else " (as a non-root user it needs unprivileged user namespaces)"
        return f"bubblewrap ({path}) could not create a sandbox here{hint}: {why}"
    return None


def _namespaces(*, network: bool) -> list[str]:
    # As root no user namespace: the launcher inside then drops to a uid of the kernel's own
    # (inside a user namespace, root could only map itself and every file of root stays its own).
    flags = ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if os.geteuid() != 0:
        flags.append("--unshare-user")
    if not network:
        flags.append("--unshare-net")
    return [*flags, "--die-with-parent", "--new-session"]


def drops_uid() -> bool:
    """Whether kernels get a uid of their own (the engine runs as root)."""
    return os.geteuid() == 0


def _python_dirs() -> list[str]:
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    dirs.add(str(Path(os.path.realpath(sys.executable)).parent.parent))
    with_site: Iterable[str] = site.getsitepackages() if hasattr(site, "getsitepackages") else ()
    dirs.update(with_site)
    user_site = site.getusersitepackages() if site.ENABLE_USER_SITE else None
    if user_site and os.path.isdir(user_site):
        dirs.add(user_site)
    return sorted(d for d in dirs if d and os.path.isdir(d))


def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def command(
    isolation: Isolation, *, workdir: Path, home: Path, tmp: Path, run: Path, launcher: Path
) -> list[str]:
    """The bwrap argv (up to and including ``--``) that runs a kernel of ``workdir``."""
    path = bwrap_path()
    assert path is not None
    argv = [path, *_namespaces(network=isolation.network)]
    bound: list[str] = []
    for system in _SYSTEM:
        if os.path.islink(system):  # merged /usr: /bin -> usr/bin
            argv += ["--symlink", os.readlink(system), system]
        elif os.path.isdir(system):
            argv += ["--ro-bind", system, system]
            bound.append(system)
    made: set[str] = set()

    def parents(path: str) -> list[str]:
        # bwrap would create a destination's missing parents with mode 0700, closed to the kernel's uid
        out = []
        for parent in reversed(PurePosixPath(path).parents):
            name = str(parent)
            if name != "/" and name not in made and not any(_inside(name, b) for b in bound):
                made.add(name)
                out += ["--perms", "0755", "--dir", name]
        return out

    # The sandbox's own /tmp (and /dev/shm) first: a Python installed under /tmp (a venv in a
    # checkout there, as CI makes) is bound on top of it below, not hidden by it.
    argv += ["--proc", "/proc", "--dev", "/dev", "--bind", str(tmp), "/dev/shm", "--bind", str(tmp), "/tmp"]
    for directory in _python_dirs():
        if not any(_inside(directory, b) for b in bound):
            argv += [*parents(directory), "--ro-bind", directory, directory]
            bound.append(directory)
    for hidden in sorted({os.path.realpath(h) for h in isolation.hidden}):
        if os.path.isdir(hidden) and any(_inside(hidden, b) for b in bound):
            argv += ["--tmpfs", hidden, "--remount-ro", hidden]
    # /dev/shm is the sandbox's /tmp too (above): a tmpfs there would be memory no RSS counts.
    argv += [*parents(WORK), "--bind", str(workdir), WORK, *parents(HOME), "--bind", str(home), HOME]
    argv += [*parents(RUN), "--bind", str(run), RUN]
    argv += ["--ro-bind", str(launcher), LAUNCHER, "--chdir", WORK]
    # ipykernel exits when its parent is pid 1, as an orphan's is; here bwrap's init is pid 1 by
    # design, and the namespace (not a poller) ends the kernel when the engine goes.
    argv += ["--unsetenv", "JPY_PARENT_PID", "--"]
    return argv
