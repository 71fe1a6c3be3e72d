"""Keys over real HTTP: 401s in OpenAI's shape, ``/key/generate``, per-key isolation, and
that keys are stored hashed and never printed."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path

import httpx2
import openai
import pytest

from assistant_kit.notebook.session import Session
from assistant_kit.server.auth import hash_key, owner_for, presented_key

from .conftest import MASTER_KEY, Launcher, Proxy, StartProxy, master_config

TEAM_KEY = "sk-team-config-key-42"


@pytest.fixture(scope="module")
def proxy(module_launcher: Launcher) -> Proxy:
    config = master_config(api_keys=[TEAM_KEY, {"key": "sk-bob-config-key", "user_id": "bob"}])
    return module_launcher.start(config)


def generate(proxy: Proxy, **body: object) -> dict:
    with proxy.http() as http:
        response = http.post("/key/generate", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def assert_openai_error(response: httpx2.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    if code is not None:
        assert error["code"] == code


@pytest.mark.parametrize("path", ["/v1/assistants", "/assistants", "/v1/threads/thread_x/runs"])
def test_missing_or_wrong_key_is_401(proxy: Proxy, path: str) -> None:
    with httpx2.Client(base_url=proxy.url) as http:
        assert_openai_error(http.get(path), 401, "missing_api_key")
        wrong = http.get(path, headers={"authorization": "Bearer sk-wrong"})
        assert_openai_error(wrong, 401, "invalid_api_key")
        assert "sk-wrong" not in wrong.text
        assert_openai_error(http.get(path, headers={"authorization": "Basic abc"}), 401)


def test_sdk_raises_authentication_error(proxy: Proxy) -> None:
    with pytest.raises(openai.AuthenticationError):
        proxy.client("sk-not-a-key").beta.assistants.list()


def test_api_key_header_and_public_paths(proxy: Proxy) -> None:
    with httpx2.Client(base_url=proxy.url) as http:
        assert http.get("/v1/assistants", headers={"api-key": MASTER_KEY}).status_code == 200
        assert http.get("/health").json()["status"] == "healthy"
        assert http.get("/v1/health").status_code == 200
        assert http.get("/openapi.json").json()["openapi"].startswith("3.")


def test_generate_key_shape_and_use(proxy: Proxy) -> None:
    body = generate(proxy, key_alias="ci", metadata={"team": "qa"})
    assert body["key"].startswith("sk-") and len(body["key"]) > 20
    assert body["token"] == hashlib.sha256(body["key"].encode()).hexdigest()
    assert body["key_alias"] == "ci" and body["expires"] is None and body["metadata"] == {"team": "qa"}
    created = proxy.client(body["key"]).beta.threads.create()
    assert proxy.client(body["key"], v1=False).beta.threads.retrieve(created.id).id == created.id


def test_generate_key_is_master_only(proxy: Proxy) -> None:
    other = generate(proxy)["key"]
    for key, status in ((other, 403), (TEAM_KEY, 403), (None, 401), ("sk-nope", 401)):
        with proxy.http(key) as http:
            assert_openai_error(http.post("/key/generate", json={}), status)


@pytest.mark.parametrize(
    "body,param",
    [
        ({"models": ["gpt-4o"]}, "models"),
        ({"key": "not-sk-prefixed"}, "key"),
        ({"duration": "soon"}, "duration"),
        ({"user_id": "x" * 100}, "user_id"),
        ({"metadata": {"k": 1}}, "metadata.k"),
    ],
)
def test_generate_key_rejects_bad_bodies(proxy: Proxy, body: dict, param: str) -> None:
    with proxy.http() as http:
        response = http.post("/key/generate", json=body)
    assert_openai_error(response, 400)
    assert response.json()["error"]["param"] == param


def test_custom_key_and_duplicate(proxy: Proxy) -> None:
    body = generate(proxy, key="sk-custom-key-0001")
    assert body["key"] == "sk-custom-key-0001"
    with proxy.http() as http:
        assert_openai_error(http.post("/key/generate", json={"key": "sk-custom-key-0001"}), 400)
        assert_openai_error(http.post("/key/generate", json={"key": MASTER_KEY}), 400)


def test_isolation_between_keys(proxy: Proxy) -> None:
    alice, carol = generate(proxy)["key"], generate(proxy)["key"]
    a, c = proxy.client(alice), proxy.client(carol)
    assistant = a.beta.assistants.create(model="test/echo", name="alice's")
    thread = a.beta.threads.create(messages=[{"role": "user", "content": "private"}])
    run = a.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    message = a.beta.threads.messages.list(thread.id).data[0]
    for call in (
        lambda: c.beta.assistants.retrieve(assistant.id),
        lambda: c.beta.assistants.update(assistant.id, name="mine now"),
        lambda: c.beta.assistants.delete(assistant.id),
        lambda: c.beta.threads.retrieve(thread.id),
        lambda: c.beta.threads.delete(thread.id),
        lambda: c.beta.threads.messages.list(thread.id),
        lambda: c.beta.threads.messages.retrieve(message.id, thread_id=thread.id),
        lambda: c.beta.threads.messages.create(thread.id, role="user", content="intrude"),
        lambda: c.beta.threads.runs.retrieve(run.id, thread_id=thread.id),
        lambda: c.beta.threads.runs.list(thread.id),
        lambda: c.beta.threads.runs.steps.list(run.id, thread_id=thread.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    # Carol's own thread cannot be run with Alice's assistant either.
    carol_thread = c.beta.threads.create()
    with pytest.raises(openai.NotFoundError):
        c.beta.threads.runs.create(thread_id=carol_thread.id, assistant_id=assistant.id)
    assert assistant.id not in [x.id for x in c.beta.assistants.list()]
    with proxy.http(carol) as http:
        assert thread.id not in [t["id"] for t in http.get("/v1/threads").json()["data"]]
    # Files: invisible, unreadable, undeletable, and not placed for Carol's code either.
    upload = a.files.create(file=("alice.txt", b"alice's secret"), purpose="assistants")
    for call in (
        lambda: c.files.retrieve(upload.id),
        lambda: c.files.content(upload.id),
        lambda: c.files.delete(upload.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert upload.id not in [f.id for f in c.files.list()]
    assert a.files.content(upload.id).content == b"alice's secret"
    # The master key is an owner like any other: it does not see Alice's objects.
    with pytest.raises(openai.NotFoundError):
        proxy.client().beta.assistants.retrieve(assistant.id)
    assert a.beta.assistants.retrieve(assistant.id).name == "alice's"


def test_config_keys_and_shared_user(proxy: Proxy) -> None:
    team = proxy.client(TEAM_KEY).beta.assistants.create(model="test/echo")
    with pytest.raises(openai.NotFoundError):
        proxy.client().beta.assistants.retrieve(team.id)
    # Keys of one user_id share that user's objects (config key and generated key).
    bobs = proxy.client("sk-bob-config-key").beta.assistants.create(model="test/echo")
    rotated = generate(proxy, user_id="bob")["key"]
    assert proxy.client(rotated).beta.assistants.retrieve(bobs.id).id == bobs.id
    with pytest.raises(openai.NotFoundError):
        proxy.client(TEAM_KEY).beta.assistants.retrieve(bobs.id)


def test_expired_key_is_rejected(proxy: Proxy) -> None:
    # Expiry is kept in whole seconds: 3 s leaves at least 2 s for the first use.
    key = generate(proxy, duration="3s")["key"]
    assert proxy.client(key).beta.assistants.list() is not None
    time.sleep(4.1)
    with pytest.raises(openai.AuthenticationError):
        proxy.client(key).beta.assistants.list()


def test_keys_stored_hashed_and_never_printed(start_proxy: StartProxy, tmp_path: Path) -> None:
    db = tmp_path / "keys.db"
    proxy = start_proxy(master_config(database_url=str(db), api_keys=[TEAM_KEY]))
    key = generate(proxy, user_id="dora")["key"]
    proxy.client(key).beta.threads.create()
    with httpx2.Client(base_url=proxy.url) as http:
        http.get("/v1/assistants", headers={"authorization": f"Bearer {key}x"})
    rows = sqlite3.connect(db).execute("SELECT key_hash, owner FROM api_keys").fetchall()
    assert rows == [(hash_key(key), "user:dora")]
    assert key.encode() not in db.read_bytes()
    assert proxy.stop() == 0
    output = proxy.output()
    for secret in (key, MASTER_KEY, TEAM_KEY):
        assert secret not in output
    assert "auth: master key, 1 config key(s), generated keys" in output


def test_master_key_sees_and_uses_local_sessions_objects(start_proxy: StartProxy, tmp_path: Path) -> None:
    """One store, one view: what a notebook made on a database file (``Session(db)``,
    ``local_client(db)``: owner NULL) is listed, read, continued and run through a proxy on
    that file with the master key; another key sees none of it; the notebook sees what the
    master key added."""
    db = tmp_path / "shared.db"
    session = Session(db, live="text").create_assistant("test/echo", name="from the notebook")
    session.create_thread().add_message("written in the notebook")
    assistant, thread = session.assistant, session.thread
    assert assistant is not None and thread is not None
    proxy = start_proxy(master_config(database_url=str(db), api_keys=[TEAM_KEY]))
    master = proxy.client()
    assert [a.id for a in master.beta.assistants.list()] == [assistant.id]
    assert master.beta.assistants.retrieve(assistant.id).name == "from the notebook"
    assert master.beta.threads.retrieve(thread.id).id == thread.id
    with proxy.http() as http:
        assert [t["id"] for t in http.get("/v1/threads").json()["data"]] == [thread.id]
    master.beta.threads.messages.create(thread.id, role="user", content="written through the proxy")
    run = master.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    texts = [m.content[0].text.value for m in master.beta.threads.messages.list(thread.id, order="asc")]
    assert texts[:2] == ["written in the notebook", "written through the proxy"]
    assert len(texts) == 3
    # Another key: nothing of it exists.
    team = proxy.client(TEAM_KEY)
    assert list(team.beta.assistants.list()) == []
    for call in (
        lambda: team.beta.assistants.retrieve(assistant.id),
        lambda: team.beta.threads.retrieve(thread.id),
        lambda: team.beta.threads.messages.list(thread.id),
        lambda: team.beta.threads.messages.create(thread.id, role="user", content="intrude"),
        lambda: team.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    with proxy.http(TEAM_KEY) as http:
        assert http.get("/v1/threads").json()["data"] == []
    # The master key's own objects stay owned by it, and the notebook still sees everything.
    made = master.beta.assistants.create(model="test/echo", name="from the proxy")
    owners = dict(sqlite3.connect(db).execute("SELECT id, owner FROM assistants").fetchall())
    assert owners == {assistant.id: None, made.id: "master"}
    assert session.runs()["id"].tolist() == [run.id]
    assert set(session.assistants()["id"]) == {assistant.id, made.id}


def test_open_mode_without_keys(start_proxy: StartProxy) -> None:
    proxy = start_proxy({})
    assert "auth: OFF" in proxy.output()
    client = proxy.client("anything")
    assert client.beta.assistants.create(model="test/echo").id
    with proxy.http("anything") as http:
        assert_openai_error(http.post("/key/generate", json={}), 400, "master_key_not_set")


def test_presented_key_and_owner_helpers() -> None:
    assert presented_key([(b"authorization", b"Bearer  sk-a ")]) == "sk-a"
    assert presented_key([(b"authorization", b"bearer sk-a")]) == "sk-a"
    assert presented_key([(b"api-key", b"sk-b")]) == "sk-b"
    assert presented_key([(b"authorization", b"Bearer sk-a"), (b"api-key", b"sk-b")]) == "sk-a"
    assert presented_key([(b"authorization", b"Bearer ")]) is None
    assert presented_key([]) is None
    assert owner_for("sk-a") == "key:" + hash_key("sk-a")[:32]
    assert owner_for("sk-a", "bob") == owner_for("sk-b", "bob") == "user:bob"
    with pytest.raises(ValueError):
        owner_for("sk-a", "")
