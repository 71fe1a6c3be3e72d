"""One error body everywhere: every place the kit answers with an error speaks
:func:`assistant_kit.errors.error_body`, as the official SDK sees it.

The places: an :class:`AssistantKitError` the engine raises (``to_body``), an exception
nothing expected (the engine's 500), a run that fails mid-stream (the SSE ``error`` event),
the proxy's key check, and the pass-through (a remote that cannot be reached, and one that
breaks off a stream). Each is reached over real HTTP on 127.0.0.1; for each, the SDK's
exception carries the same four fields (``.body``, ``.type``, ``.param``, ``.code``), and a
JSON answer's bytes are exactly ``error_body``'s serialization.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from assistant_kit.client import provider_settings
from assistant_kit.engine.app import create_app
from assistant_kit.engine.core import Engine
from assistant_kit.errors import error_body
from assistant_kit.server.app import build_app
from assistant_kit.server.config import Config, parse_config
from assistant_kit.store import Store
from tests.conftest import serve

pytestmark = pytest.mark.timeout(60)

MASTER = "sk-master-error-bodies"


def check(
    exc: openai.APIError,
    *,
    type: str,
    param: str | None = None,
    code: str | None = None,
    status: int | None = None,
    mentions: str = "",
) -> None:
    """``exc`` is what the SDK makes of ``error_body(<its message>, type, param, code)``."""
    assert isinstance(exc.body, dict)
    message = exc.body.get("message")
    assert isinstance(message, str) and mentions in message, message
    expected = error_body(message, type, param=param, code=code)
    assert exc.body == expected["error"]
    assert (exc.type, exc.param, exc.code) == (type, param, code)
    if status is None:  # an SSE error event: the SDK raises it as a plain APIError
        assert not isinstance(exc, openai.APIStatusError)
        assert exc.message == message
    else:
        assert isinstance(exc, openai.APIStatusError) and exc.status_code == status
        wire = json.dumps(expected, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
        assert exc.response.content == wire


@pytest.fixture
def engine_client(tmp_path: Path) -> Iterator[tuple[openai.OpenAI, Path]]:
    """An SDK client on an engine served over HTTP (its model backend unreachable), and its db."""
    db = tmp_path / "kit.db"
    store = Store(db)
    settings = provider_settings(api_key="sk-test", api_base="http://127.0.0.1:9/v1", max_retries=0)
    engine = Engine(store, settings)
    try:
        with serve(create_app(engine)) as base, openai.OpenAI(base_url=base, api_key="x", max_retries=0) as c:
            yield c, db
    finally:
        store.close()


def test_engine_errors(engine_client: tuple[openai.OpenAI, Path]) -> None:
    client, db = engine_client
    with pytest.raises(openai.BadRequestError) as raised:
        client.beta.assistants.list(limit=1000)
    check(raised.value, type="invalid_request_error", param="limit", status=400, mentions="limit")
    with pytest.raises(openai.NotFoundError) as raised:
        client.beta.threads.retrieve("thread_missing")
    check(raised.value, type="invalid_request_error", status=404, mentions="thread_missing")

    # a run that fails: its stream ends with an ``error`` event
    assistant = client.beta.assistants.create(model="openai/unreachable")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    with (
        pytest.raises(openai.APIError) as failed,
        client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream,
    ):
        stream.until_done()
    check(failed.value, type="server_error", code="server_error")

    # an exception nothing expected: the table went from under the engine
    with sqlite3.connect(db) as raw:
        raw.execute("DROP TABLE assistants")
    with pytest.raises(openai.InternalServerError) as raised:
        client.beta.assistants.list()
    check(
        raised.value, type="server_error", code="server_error", status=500, mentions="Internal server error"
    )


def test_proxy_key_errors(tmp_path: Path) -> None:
    store = Store(tmp_path / "keys.db")
    try:
        with serve(build_app(Config(master_key=MASTER), store=store)) as base:
            with openai.OpenAI(base_url=base, api_key="sk-wrong", max_retries=0) as wrong:
                with pytest.raises(openai.AuthenticationError) as raised:
                    wrong.beta.assistants.list()
                check(raised.value, type="invalid_request_error", code="invalid_api_key", status=401)
                with pytest.raises(openai.AuthenticationError) as raised:  # no key at all
                    wrong.with_options(default_headers={"Authorization": ""}).beta.assistants.list()
                check(raised.value, type="invalid_request_error", code="missing_api_key", status=401)
    finally:
        store.close()


@pytest.fixture
def breaking_remote() -> Iterator[str]:
    """An HTTP server that starts every answer as an SSE stream and hangs up mid-body."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def answer(conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            while len(body) < length:
                body += conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                b"7\r\n: hi\n\n\n\r\n"  # one comment chunk, then the body breaks off
            )

    def run() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def passthrough_proxy(tmp_path: Path, remote: str) -> Any:
    config = parse_config(
        {
            "assistant_settings": {
                "custom_llm_provider": "openai",
                "litellm_params": {"api_base": remote, "api_key": "sk-r"},
            },
            "general_settings": {"master_key": MASTER},
        },
        environ={},
    )
    return build_app(config, store=Store(tmp_path / "proxy.db"))


def test_passthrough_errors(tmp_path: Path, breaking_remote: str) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    unreachable = f"http://127.0.0.1:{closed.getsockname()[1]}/v1"
    closed.close()
    for remote in (unreachable, breaking_remote):
        app = passthrough_proxy(tmp_path, remote)
        try:
            with serve(app) as base, openai.OpenAI(base_url=base, api_key=MASTER, max_retries=0) as client:
                if remote == unreachable:
                    with pytest.raises(openai.InternalServerError) as raised:
                        client.beta.assistants.list()
                    check(raised.value, type="server_error", code="upstream_unavailable", status=502)
                else:
                    with (
                        pytest.raises(openai.APIError) as broke,
                        client.beta.threads.runs.stream(
                            thread_id="thread_x", assistant_id="asst_x"
                        ) as stream,
                    ):
                        stream.until_done()
                    check(broke.value, type="server_error", mentions="broke off")
        finally:
            app.store.close()
