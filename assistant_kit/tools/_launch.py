"""Set resource limits on this process, then become the kernel: ``_launch.py NAME=VALUE… -- argv…``.

The sandbox starts kernels through this file instead of handing jupyter_client a ``preexec_fn``:
``preexec_fn`` runs between fork and exec, where a lock held by another thread of the parent (the
engine's loop thread in a notebook, logging, malloc) can deadlock the child, and it forces a plain
fork of a possibly large parent. A separate interpreter that calls ``setrlimit`` and ``os.execv``
costs one short Python start and keeps the kernel's pid, so jupyter_client still manages the
process it launched. It is run by path with ``python -I -S`` (stdlib only, nothing from the parent's
environment or ``sys.path``), so it must stay importable without the package.

Arguments before ``--``: ``nice=N`` (added niceness), ``RLIMIT=SOFT:HARD`` for any
``resource.RLIMIT_*`` name (``CPU=600:605``, ``DATA=…``, ``FSIZE=…``, ``CORE=0:0``, ``NPROC=…``; a
limit is never raised above the hard limit the parent already had) and ``uid=N``: inside the
bubblewrap sandbox of a root engine (:mod:`.isolation`), drop to uid and gid N with no
supplementary groups, last, after the limits and the niceness that need root's privileges; the
kernel then has no capabilities left (they go with uid 0) and ``RLIMIT_NPROC`` counts uid N only.
"""

from __future__ import annotations

import os
import sys


def _apply(option: str) -> None:
    import resource

    name, _, value = option.partition("=")
    if name == "nice":
        os.nice(int(value))
        # With Linux's autogroup scheduling, CPU is shared between sessions first, and the kernel
        # leads a session of its own (jupyter_client starts it with setsid): a niceness only ranks
        # it among its own processes unless its autogroup gets the same niceness.
        try:
            with open("/proc/self/autogroup", "w") as autogroup:
                autogroup.write(value)
        except OSError:
            pass
        return
    kind = getattr(resource, f"RLIMIT_{name}", None)
    if kind is None:  # e.g. RLIMIT_DATA where the platform has none: skip, do not fail the kernel
        return
    soft_text, _, hard_text = value.partition(":")
    soft, hard = int(soft_text), int(hard_text or soft_text)
    _, old_hard = resource.getrlimit(kind)
    if old_hard != resource.RLIM_INFINITY:
        soft, hard = min(soft, old_hard), min(hard, old_hard)
    resource.setrlimit(kind, (soft, hard))


def _drop_to(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid:  # setuid semantics say this cannot be; never run on
        sys.exit(f"_launch.py: could not drop to uid {uid}")


def main(argv: list[str]) -> None:
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        sys.exit("usage: _launch.py [nice=N] [RLIMIT=SOFT:HARD ...] [uid=N] -- program [args ...]")
    split = argv.index("--")
    uid = None
    for option in argv[:split]:
        if option.startswith("uid="):
            uid = int(option[4:])
        else:
            _apply(option)
    if uid is not None:
        _drop_to(uid)
    command = argv[split + 1 :]
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
