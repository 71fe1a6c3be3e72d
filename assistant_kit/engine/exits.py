"""Orderly ends for the engines of this process: at interpreter exit, and when a store closes.

Why this exists: engines run on event loops in daemon threads (the kit's own, see
:mod:`assistant_kit.runtime`; a served app's), which keep running while the interpreter
exits, while every store's worker thread pool is shut down at exit (``concurrent.futures``
does that before ``atexit`` handlers run) or by :meth:`Store.close`. A run still executing
then wrote into a closed pool: "cannot schedule new futures after shutdown" tracebacks, and
the run left ``in_progress`` until another process's orphan sweep, its thread refusing new
runs meanwhile.

So two moments stop the runs first, while the store still works:

- **Interpreter exit** (a script's end, a pytest session's, a Jupyter kernel's shutdown or
  restart: all end in ``threading._shutdown``): a hook registered with
  ``threading._register_atexit`` *after* ``concurrent.futures`` registered its own, so it runs
  *before* the pools refuse work (those hooks run last-registered first).
- **Store close**: :meth:`Store.close` calls :meth:`~assistant_kit.engine.core.Engine.store_closing`
  first (:meth:`Store.before_close`).

Either way each engine's :meth:`~assistant_kit.engine.core.Engine.shutdown` runs on the engine's
own loop, awaited from the closing thread for at most :data:`EXIT_SECONDS`: its executing runs
are settled ``failed`` with :data:`PROCESS_EXITED` or :data:`STORE_CLOSED` (the rule is in
:mod:`.runs`), then its background work stops. An engine whose loop is not running any more, or
whose own loop is the closing thread's (nothing there can be awaited), is only marked closed:
its runs keep their last state and lease for the orphan sweep, and the writes they still try end
quietly. A process killed outright (``kill -9``, a crash) gets no hook: the lease rule of
:mod:`.runs` settles its runs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import concurrent.futures.thread  # registers its exit hook before ours: see above
import contextlib
import logging
import threading
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .runs import RunExecutor


class Engine(Protocol):
    """What of an :class:`~assistant_kit.engine.core.Engine` this module uses (it is imported
    by that module)."""

    loop: asyncio.AbstractEventLoop | None
    executor: RunExecutor

    async def shutdown(self, message: str, timeout: float | None = None) -> None: ...


log = logging.getLogger("assistant_kit.engine")

PROCESS_EXITED = "The process executing this run exited before the run ended."
STORE_CLOSED = "The store of the engine executing this run was closed before the run ended."
EXIT_SECONDS = 5.0
"""How long an exit or a store close waits for the runs to settle (a store that another
process holds locked may take longer: those runs are left to the orphan sweep)."""

_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def track(engine: Engine) -> None:
    """Stop ``engine`` in order at interpreter exit."""
    _engines.add(engine)


def stop(engines: Iterable[Engine], message: str, timeout: float = EXIT_SECONDS) -> None:
    """Shut ``engines`` down from any thread (see the module docstring), waiting up to
    ``timeout`` seconds."""
    try:
        current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        current = None
    groups: dict[asyncio.AbstractEventLoop, list[Engine]] = {}
    for engine in engines:
        loop = _loop_of(engine)
        if loop is None or loop.is_closed() or not loop.is_running() or loop is current:
            engine.executor.abandon(message)
        else:
            groups.setdefault(loop, []).append(engine)
    waits = [
        asyncio.run_coroutine_threadsafe(_shutdown(group, message, timeout), loop)
        for loop, group in groups.items()
    ]
    if waits:
        concurrent.futures.wait(waits, timeout=timeout + 1)


def _loop_of(engine: Engine) -> asyncio.AbstractEventLoop | None:
    """The loop ``engine`` lives on: where it started, else where its runs execute."""
    if engine.loop is not None:
        return engine.loop
    for handle in engine.executor.handles.values():
        if handle.task is not None:
            return handle.task.get_loop()
    return None


async def _shutdown(engines: list[Engine], message: str, timeout: float) -> None:
    tasks = [asyncio.ensure_future(engine.shutdown(message, timeout)) for engine in engines]
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            log.error("engine shutdown failed", exc_info=task.exception())


def _at_exit() -> None:
    stop(list(_engines), PROCESS_EXITED)


def _register(hook: Any) -> None:
    register = getattr(threading, "_register_atexit", None)
    if register is None:  # not CPython's threading: the pools may be closed first (quietly)
        import atexit

        atexit.register(hook)
        return
    with contextlib.suppress(RuntimeError):  # imported while the interpreter is exiting
        register(hook)


_register(_at_exit)
