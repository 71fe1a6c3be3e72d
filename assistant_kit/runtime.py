"""The engine's own event loop (one background thread per process) and engines by database.

Everything asynchronous the kit does — serving in-process requests, executing runs —
happens on this loop, so the caller's loop (Jupyter's, Colab's, VS Code's, or none) is
never patched or blocked by engine work, and runs survive the cell that started them.
One :class:`Engine` per database per process: every client on the same file sees the
same in-flight runs (cancel, stream, submit tool outputs work across clients). So the shared
engine holds no model credentials of its own: each client's provider settings travel with its
requests (the in-process transport puts them in the request scope, as the proxy does for each
key), and the engine merges them per run — two clients on one database may reach two different
model servers.

Shutdown. The loop's thread is a daemon: it never keeps the process alive, and runs do not
outlive it. When the interpreter exits normally (a script ends, a pytest session ends, a Jupyter
kernel is shut down or restarted — they all end the same way), every engine is first shut down
in order, before the stores' worker threads stop taking work (:mod:`assistant_kit.engine.exits`,
up to :data:`~assistant_kit.engine.exits.EXIT_SECONDS`): runs still executing are settled
``failed`` with a ``last_error`` saying the process exited, so their threads take new runs at
once, and runs waiting for tool outputs stay ``requires_action`` for the next process to resume.
``Store.close()`` on an engine's store does the same first. Closing a client stops nothing: the
engine and its runs are the process's. A process killed outright leaves its runs to the lease
rule (:mod:`assistant_kit.engine.runs`): the next engine on the database marks them failed once
their lease runs out.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_apps: dict[str, Any] = {}


def engine_loop() -> asyncio.AbstractEventLoop:
    """Start (once) and return the background loop."""
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            thread = threading.Thread(target=run, name="assistant_kit-engine", daemon=True)
            loop._assistant_kit_thread = thread  # type: ignore[attr-defined]
            thread.start()
            ready.wait()
            _loop = loop
        return _loop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the engine loop and wait for it (safe inside a running loop)."""
    return asyncio.run_coroutine_threadsafe(coro, engine_loop()).result()


def app_for(db: str | os.PathLike[str] | None = None) -> Any:
    """The ASGI app for ``db`` (shared per database; ``":memory:"`` is always new). It takes no
    provider settings: those belong to each client and reach the engine with each request."""
    from .engine.app import create_app
    from .engine.core import Engine
    from .store import Store, database_url
    from .tools.code_interpreter import CodeInterpreterSettings

    url = database_url(db)
    with _lock:
        app = _apps.get(url) if url != "sqlite://" else None
        if app is None:
            # Local sessions run code_interpreter code on this machine (the user's own).
            app = create_app(Engine(Store(db), code_interpreter=CodeInterpreterSettings.local()))
            if url != "sqlite://":
                _apps[url] = app
    return app


def tie_to(owner: object, app: Any) -> None:
    """Let the engine of a ``:memory:`` database (``app``'s) live only as long as ``owner``
    (the transport of the client made for it; the SDK's ``with_options``/``copy`` share it).
    An app :func:`app_for` shares (any other database) is left alone: it lives as long as
    the process.

    No other client can open that database, so once ``owner`` is garbage-collected nothing
    can reach the engine again: its store is closed (:meth:`Store.close`: runs still
    executing there are settled, background work and code kernels stop, the store's worker
    thread ends; :mod:`.engine.exits`). Without this, each ``local_client(":memory:")`` kept
    an engine, its thread and ~5,000 objects for the life of the process — 100 such clients
    left 105 threads and ~600,000 objects. The close runs on a thread of its own: a
    finalizer runs in whichever thread the collector happens to run, the engine loop's
    included, and the close waits for that loop."""
    with _lock:
        if any(shared is app for shared in _apps.values()):
            return
    weakref.finalize(owner, _close_later, app.state.engine.store.sync)


def _close_later(store: Any) -> None:
    threading.Thread(target=store.close, name="assistant_kit-release", daemon=True).start()
