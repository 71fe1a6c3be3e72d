"""Shared fixtures: clients of the engine in-process and over real HTTP, and the fake upstream.

``client`` is parametrized: every test that takes it runs twice, once through the
in-process transport (``local_client``) and once through uvicorn on 127.0.0.1 with the
official SDK pointed at it — one suite, both transports.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai
import pytest

from assistant_kit.client import local_client, provider_settings
from assistant_kit.engine.app import create_app
from assistant_kit.engine.core import Engine
from assistant_kit.store import Store
from tests.fake_upstream import fake_upstream  # noqa: F401  (fixture)
from tests.postgres import pg_url  # noqa: F401  (fixture)

TRANSPORTS = ["inprocess", "http"]


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn on an ephemeral loopback port; yield its ``/v1`` base URL."""
    import uvicorn

    # IPPROTO_TCP given explicitly: asyncio then sets TCP_NODELAY on accepted connections
    # (without it every small response waits ~40 ms for a delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()


ClientFactory = Callable[..., openai.OpenAI]


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_client(transport: str, tmp_path: Path) -> Iterator[ClientFactory]:
    """``make_client(**model_config)`` → an ``openai.OpenAI`` on a fresh store, over ``transport``.

    ``model_config`` takes the same keys as :func:`assistant_kit.local_client` (``api_key``,
    ``api_base``, ``model_list`` …); over HTTP they become the server's settings.
    Extra keyword ``run_expiry_seconds`` sets the engine's run expiry (HTTP only builds a new
    engine per call; in-process it applies to the shared engine of that db).
    """
    stack: list[Any] = []
    counter = iter(range(1000))

    def factory(**model_config: Any) -> openai.OpenAI:
        expiry = model_config.pop("run_expiry_seconds", None)
        code = model_config.pop("code_interpreter", None)  # over HTTP: off unless given
        db = tmp_path / f"kit{next(counter)}.db"
        if transport == "inprocess":
            client = local_client(db, **model_config)
            if expiry is not None:
                _engine_of(db).run_expiry_seconds = expiry
            return client
        store = Store(db)
        stores.append(store)
        engine = Engine(store, provider_settings(**model_config), code_interpreter=code)
        engines.append(engine)
        if expiry is not None:
            engine.run_expiry_seconds = expiry
        cm = serve(create_app(engine))
        base_url = cm.__enter__()
        stack.append(cm)
        client = openai.OpenAI(base_url=base_url, api_key="sk-test-not-checked", max_retries=0)
        clients.append(client)
        return client

    clients: list[openai.OpenAI] = []
    engines: list[Engine] = []
    stores: list[Store] = []
    yield factory
    for client in clients:  # its pooled connections, before the server goes (no stray sockets)
        client.close()
    for engine in engines:  # its kernels, on the server's loop, while it still runs
        if engine.loop is not None and engine.loop.is_running():
            asyncio.run_coroutine_threadsafe(engine.aclose(), engine.loop).result(30)
    for cm in reversed(stack):
        cm.__exit__(None, None, None)
    for store in stores:  # its SQLite connections (Python 3.13 warns about unclosed ones)
        store.close()


@pytest.fixture(autouse=True)
def _frozen_heap() -> None:
    """Each test starts with what the earlier tests left collected, then frozen
    (``gc.freeze``: the collector skips those objects from then on).

    Why: in-process engines live as long as the process (``runtime.py``), so over the suite
    ~1.4 million objects pile up, and a full collection then paused every thread for 1-2 s
    (measured with ``gc.callbacks``: 22 of 32 full collections over 0.1 s, the longest 1.2 s,
    in tests/engine + models + retrieval). A pause that long merged a whole streamed answer
    into one delta in a CI run and stalled the event loop in a timing test. What a test makes
    and drops is still collected. A ``ResourceWarning`` of what an earlier test left unclosed
    (a socket in a reference cycle) is not this test's: it is not raised here, as it was not
    when such cycles were collected at a random moment before."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True, scope="session")
def _code_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """code_interpreter's working directories go under pytest's temp dir, not the user's."""
    import os

    from assistant_kit.tools.code_interpreter import DIR_ENV

    old = os.environ.get(DIR_ENV)
    os.environ[DIR_ENV] = str(tmp_path_factory.mktemp("code_interpreter"))
    yield
    if old is None:
        os.environ.pop(DIR_ENV, None)
    else:
        os.environ[DIR_ENV] = old


def _engine_of(db: Path) -> Engine:
    from assistant_kit.runtime import app_for

    return app_for(db).state.engine


@pytest.fixture
def client(make_client: ClientFactory) -> openai.OpenAI:
    """An ``openai.OpenAI`` client on a fresh store (in-process and over HTTP)."""
    return make_client()


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy (for background state changes)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


_skipped: list[str] = []
# May skip even in CI: it compares the shipped OpenAPI document with ../shared/spec, which CI
# lays beside the clone but a bare clone elsewhere does not have.
_MAY_SKIP = {"tests/server/test_openapi.py::test_shipped_document_is_up_to_date"}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and report.nodeid not in _MAY_SKIP:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
        _skipped.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI (``ASSISTANT_KIT_REQUIRE_ALL=1``) a skipped test means a missing install step: fail."""
    import os

    if os.environ.get("ASSISTANT_KIT_REQUIRE_ALL") == "1" and _skipped and exitstatus == 0:
        print("\nASSISTANT_KIT_REQUIRE_ALL=1 but tests were skipped:\n  " + "\n  ".join(_skipped))
        session.exitstatus = 1
