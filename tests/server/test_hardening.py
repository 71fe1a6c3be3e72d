"""What an outside probe of the proxy found, each case fixed at its cause (issue 13).

Run against a real proxy subprocess (``start_proxy``) where the proxy itself is the subject
(credentials in its config, its access log, its key routes), and over both transports
(``client``) where the engine's validation is: raw JSON through ``httpx2`` for what the SDK
would never send (lone surrogates, absurd nesting), the SDK for the rest.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from sqlalchemy import event

from assistant_kit.server.app import build_app
from assistant_kit.server.config import Config
from assistant_kit.store import Store
from tests.conftest import serve
from tests.fake_upstream import FakeUpstream

from .conftest import MASTER_KEY, Launcher, Proxy, StartProxy, master_config

SURROGATE = b'"x \\ud800"'  # a JSON escape that decodes to a lone UTF-16 surrogate


@pytest.fixture(scope="module")
def proxy(module_launcher: Launcher) -> Proxy:
    return module_launcher.start(master_config())


def _error(response: httpx2.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


# --- 1. credentials stay with the host they were written for --------------------------------


def test_a_route_to_another_host_never_gets_the_providers_key(
    start_proxy: StartProxy, fake_upstream: FakeUpstream
) -> None:
    """The README's own shape: an Azure provider with its key, plus a route to an
    OpenAI-compatible host (Ollama) without a key of its own."""
    config = master_config()
    config["assistant_settings"] = {
        "custom_llm_provider": "azure",
        "litellm_params": {
            "api_key": "sk-azure-secret-0123",
            "api_base": "https://example-resource.openai.azure.com",
            "api_version": "2024-10-21",
        },
    }
    config["model_list"] = [
        {"model_name": "ollama", "litellm_params": {"model": "openai/llama3", "api_base": fake_upstream.url}},
        {
            "model_name": "keyed",
            "litellm_params": {
                "model": "openai/llama3",
                "api_base": fake_upstream.url,
                "api_key": "sk-route",
            },
        },
    ]
    proxy = start_proxy(config, env={"OPENAI_API_KEY": "sk-openai-env-secret"})
    client = proxy.client()
    for model, expected in (("ollama", None), ("keyed", "Bearer sk-route")):
        assistant = client.beta.assistants.create(model=model)
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
        run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
        assert run.status == "completed", run.last_error
        sent = fake_upstream.last_request.headers.get("authorization", "")
        assert "azure-secret" not in sent and "openai-env-secret" not in sent, sent
        if expected is not None:
            assert sent == expected


# --- 2 and 3. bad input is a 400 that stores nothing ----------------------------------------


def _post(client: openai.OpenAI, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    try:
        response = client._client.post(  # the SDK's own HTTP client: same transport, raw bytes
            str(client.base_url).rstrip("/") + path,
            content=body,
            headers={"content-type": "application/json", "authorization": "Bearer sk-test"},
        )
    except Exception as exc:  # pragma: no cover - a transport error is a failure too
        raise AssertionError(exc) from exc
    return response.status_code, response.json()


def _counts(client: openai.OpenAI, thread_id: str) -> tuple[int, int, int]:
    return (
        len(client.beta.assistants.list(limit=100).data),
        len(client.get("/threads", cast_to=object)["data"]),  # type: ignore[index]
        len(client.beta.threads.messages.list(thread_id=thread_id, limit=100).data),
    )


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/threads/{t}/messages", b'{"role": "user", "content": ' + SURROGATE + b"}", "content"),
        ("/assistants", b'{"model": "test/echo", "instructions": ' + SURROGATE + b"}", "instructions"),
        ("/assistants", b'{"model": "test/echo", "name": ' + SURROGATE + b"}", "name"),
        ("/assistants", b'{"model": "test/echo", "metadata": {"k": ' + SURROGATE + b"}}", "metadata.k"),
        ("/threads", b'{"metadata": {"k": ' + SURROGATE + b"}}", "metadata.k"),
        (
            "/threads",
            b'{"messages": [{"role": "user", "content": ' + SURROGATE + b"}]}",
            "messages[0].content",
        ),
    ],
)
def test_a_lone_surrogate_is_a_400_naming_the_parameter_and_nothing_is_stored(
    client: openai.OpenAI, path: str, body: bytes, param: str
) -> None:
    thread = client.beta.threads.create()
    before = _counts(client, thread.id)
    status, answer = _post(client, path.format(t=thread.id), body)
    assert status == 400, answer
    assert answer["error"]["param"] == param and "surrogate" in answer["error"]["message"]
    assert _counts(client, thread.id) == before  # and every list still answers


POST_ROUTES = [
    "/assistants",
    "/assistants/{a}",
    "/threads",
    "/threads/{t}",
    "/threads/runs",
    "/threads/{t}/messages",
    "/threads/{t}/messages/{m}",
    "/threads/{t}/runs",
]


@pytest.mark.parametrize("path", POST_ROUTES)
def test_a_body_nested_100000_deep_is_a_400(client: openai.OpenAI, path: str) -> None:
    assistant = client.beta.assistants.create(model="test/echo")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    message = client.beta.threads.messages.list(thread_id=thread.id).data[0]
    deep = b'{"metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    status, answer = _post(client, path.format(a=assistant.id, t=thread.id, m=message.id), deep)
    assert status == 400, answer
    assert "nested" in answer["error"]["message"]
    status, answer = _post(
        client, path.format(a=assistant.id, t=thread.id, m=message.id), b'{"x": ' * 70 + b"1" + b"}" * 70
    )
    assert status == 400 and "nested" in answer["error"]["message"], answer


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"model": ""}, "model"),
        ({"model": "x" * 100_000}, "model"),
        ({"model": "gpt\u0000-4o"}, "model"),
        ({"model": "test/echo", "temperature": True}, "temperature"),
        ({"model": "test/echo", "top_p": False}, "top_p"),
        (
            {"model": "test/echo", "tools": [{"type": "function", "function": {"name": "f" * 10_000}}]},
            "tools[0].function.name",
        ),
        (
            {"model": "test/echo", "tools": [{"type": "function", "function": {"name": "has space"}}]},
            "tools[0].function.name",
        ),
    ],
)
def test_names_and_numbers_are_bounded_as_openai_bounds_them(
    client: openai.OpenAI, params: dict[str, Any], param: str
) -> None:
    before = len(client.beta.assistants.list(limit=100).data)
    with pytest.raises(openai.BadRequestError) as info:
        client.beta.assistants.create(**params)
    assert info.value.body["param"] == param  # type: ignore[index]
    assert len(client.beta.assistants.list(limit=100).data) == before


def test_huge_integers_are_refused_before_the_run_exists(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="test/echo")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    for kwargs, param in (
        ({"truncation_strategy": {"type": "last_messages", "last_messages": 10**30}}, "truncation_strategy"),
        ({"max_completion_tokens": 10**30}, "max_completion_tokens"),
        ({"max_prompt_tokens": True}, "max_prompt_tokens"),
    ):
        with pytest.raises(openai.BadRequestError) as info:
            client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id, **kwargs)
        assert str(info.value.body["param"]).startswith(param)  # type: ignore[index]
    assert client.beta.threads.runs.list(thread_id=thread.id).data == []
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        truncation_strategy={"type": "last_messages", "last_messages": 2**31 - 1},
    )
    assert run.status == "completed"


# --- 5. an update without metadata keeps it --------------------------------------------------


def test_updates_without_metadata_keep_it(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="test/echo")
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "hi", "metadata": {"m": "1"}}], metadata={"t": "1"}
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, metadata={"r": "1"}
    )
    message = client.beta.threads.messages.list(thread_id=thread.id, order="asc").data[0]
    assert client.beta.threads.messages.update(message.id, thread_id=thread.id).metadata == {"m": "1"}
    assert client.beta.threads.runs.update(run.id, thread_id=thread.id).metadata == {"r": "1"}
    assert client.beta.threads.update(thread.id).metadata == {"t": "1"}
    assert client.beta.threads.messages.retrieve(message.id, thread_id=thread.id).metadata == {"m": "1"}
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).metadata == {"r": "1"}
    # An explicit value still replaces it, {} included.
    assert client.beta.threads.messages.update(message.id, thread_id=thread.id, metadata={}).metadata == {}
    assert client.beta.threads.runs.update(run.id, thread_id=thread.id, metadata={"r": "2"}).metadata == {
        "r": "2"
    }


# --- the proxy's own routes: keys, durations, the access log ---------------------------------


def test_key_generate_with_an_absurd_duration_is_a_400_and_stores_no_key(proxy: Proxy) -> None:
    with proxy.http() as http:
        for duration in ("3650000d", "99999999999999999999d"):
            _error(http.post("/key/generate", json={"duration": duration, "key": "sk-never-made-1"}), 400)
        deep = b'{"metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        error = _error(http.post("/key/generate", content=deep), 400)
        assert "nested" in error["message"]
        # The key was not stored: generating it now works.
        assert http.post("/key/generate", json={"key": "sk-never-made-1"}).status_code == 200


def test_key_info_and_delete_in_litellms_shapes(proxy: Proxy) -> None:
    with proxy.http() as http:
        made = http.post("/key/generate", json={"key_alias": "class-7", "user_id": "ann"}).json()
    key = made["key"]
    with proxy.http(key) as own:
        info = own.get("/key/info").json()  # the caller's own key
        assert info["key"] == made["token"] and key not in json.dumps(info)
        assert info["info"]["key_alias"] == "class-7" and info["info"]["user_id"] == "ann"
        assert own.get("/v1/assistants").status_code == 200
        _error(own.post("/key/delete", json={"keys": [key]}), 403)  # master only
        _error(own.get("/key/info", params={"key": MASTER_KEY}), 404)  # not another key's facts
    with proxy.http() as http:
        assert http.get("/v1/key/info", params={"key": key}).json()["info"]["user_id"] == "ann"
        assert http.post("/key/delete", json={"keys": [key]}).json() == {"deleted_keys": [key]}
        _error(http.post("/key/delete", json={"keys": [key]}), 404)
        _error(http.post("/key/delete", json={"keys": [MASTER_KEY]}), 400)
        _error(http.post("/key/delete", json={"keys": "sk-x"}), 400)
        # Deleting by token (the digest) works too.
        other = http.post("/key/generate", json={}).json()
        assert http.post("/key/delete", json={"keys": [other["token"]]}).json()["deleted_keys"] == [
            other["token"]
        ]
    with proxy.http(key) as revoked:
        _error(revoked.get("/v1/assistants"), 401)  # at once on the replica that deleted it


def test_the_access_log_never_shows_a_key(start_proxy: StartProxy) -> None:
    proxy = start_proxy(master_config())
    with httpx2.Client(base_url=proxy.url) as http:
        for path in ("/v1/assistants", "/v1/threads/thread_x/messages", "/key/info"):
            assert http.get(path, params={"api_key": MASTER_KEY, "limit": "5"}).status_code == 401
    with proxy.http() as http:
        assert http.get("/key/info", params={"key": MASTER_KEY}).status_code == 200
    proxy.stop()
    log = proxy.output()
    assert "api_key=[redacted]" in log and "key=[redacted]" in log
    assert MASTER_KEY not in log


def test_unknown_keys_are_refused_without_a_store_read_each(tmp_path: Path) -> None:
    """A flood of wrong keys costs at most one read of the key table per second."""
    store = Store(tmp_path / "keys.db")
    reads: list[str] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "api_keys" in statement:
            reads.append(statement)

    app = build_app(Config(master_key=MASTER_KEY), store=store)
    try:
        with serve(app) as base, httpx2.Client(base_url=base.removesuffix("/v1")) as http:
            made = http.post("/key/generate", json={}, headers={"authorization": f"Bearer {MASTER_KEY}"})
            assert made.status_code == 200
            key = made.json()["key"]
            reads.clear()
            started = time.monotonic()
            for i in range(200):
                wrong = http.get("/v1/assistants", headers={"authorization": f"Bearer sk-wrong-{i}"})
                assert wrong.status_code == 401
            elapsed = time.monotonic() - started
            assert len(reads) <= elapsed / 1.0 + 2, (len(reads), elapsed)
            assert http.get("/v1/assistants", headers={"authorization": f"Bearer {key}"}).status_code == 200
    finally:
        store.close()
