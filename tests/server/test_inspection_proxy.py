"""The inspector's routes over ``assistant-kit serve``: owner-scoped like every object (another
key's runs are invisible, not inspectable, and a 404 when named in a filter), no credential in
what they return, and the config key ``record_prompts: false``."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.fake_upstream import get_fake_upstream

from .conftest import MASTER_KEY, Launcher, Proxy, StartProxy, fake_route, master_config

ALICE_KEY = "sk-alice-inspect-0001"
BOB_KEY = "sk-bob-inspect-0002"


@pytest.fixture(scope="module")
def proxy(module_launcher: Launcher) -> Proxy:
    config = master_config(api_keys=[ALICE_KEY, {"key": BOB_KEY, "user_id": "bob"}])
    config["model_list"] = [fake_route(get_fake_upstream())]
    return module_launcher.start(config)


def _get(client: openai.OpenAI, path: str, **params: Any) -> dict[str, Any]:
    body = client.get(path, cast_to=object, options={"params": params})
    assert isinstance(body, dict)
    return body


def _run(client: openai.OpenAI, model: str = "test/echo", text: str = "hi") -> Any:
    assistant = client.beta.assistants.create(model=model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": text}])
    return client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)


def test_another_keys_runs_are_invisible(proxy: Proxy) -> None:
    alice, bob = proxy.client(ALICE_KEY), proxy.client(BOB_KEY)
    mine, theirs = _run(alice, text="alice asks"), _run(bob, text="bob asks")
    assert [r["id"] for r in _get(alice, "/runs")["data"]] == [mine.id]
    assert [r["id"] for r in _get(bob, "/runs")["data"]] == [theirs.id]
    assert {s["run_id"] for s in _get(alice, "/runs/steps")["data"]} == {mine.id}
    for path, params, param in (
        ("/runs/steps", {"run_id": mine.id}, "run_id"),
        ("/runs", {"thread_id": mine.thread_id}, "thread_id"),
        ("/runs/steps", {"thread_id": mine.thread_id}, "thread_id"),
    ):
        with pytest.raises(openai.NotFoundError) as err:  # as an unknown id: nothing says it exists
            _get(bob, path, **params)
        assert err.value.body["param"] == param  # type: ignore[index]
    path = f"/threads/{mine.thread_id}/runs/{mine.id}/inspection"
    assert _get(alice, path)["run_id"] == mine.id
    with pytest.raises(openai.NotFoundError):
        _get(bob, path)
    with pytest.raises(openai.NotFoundError):  # Bob's thread does not make Alice's run his
        _get(bob, f"/threads/{theirs.thread_id}/runs/{mine.id}/inspection")
    master = proxy.client(MASTER_KEY, v1=False)  # the master key sees its own and unowned runs
    assert {mine.id, theirs.id}.isdisjoint(r["id"] for r in _get(master, "/runs")["data"])


def test_no_key_is_in_what_the_routes_return(proxy: Proxy) -> None:
    alice = proxy.client(ALICE_KEY)
    get_fake_upstream().reply_text("an answer")
    run = _run(alice, model="fake")
    assert run.status == "completed", run.last_error
    inspection = _get(alice, f"/threads/{run.thread_id}/runs/{run.id}/inspection")
    assert inspection["prompts"][0]["model"] == "fake"
    returned = json.dumps([inspection, _get(alice, "/runs"), _get(alice, "/runs/steps")])
    for secret in ("sk-upstream", ALICE_KEY, BOB_KEY, MASTER_KEY):  # the route's key, the callers'
        assert secret not in returned and secret not in proxy.output()


def test_record_prompts_false_in_the_config(start_proxy: StartProxy) -> None:
    proxy = start_proxy(master_config(record_prompts=False))
    client = proxy.client()
    run = _run(client)
    inspection = _get(client, f"/threads/{run.thread_id}/runs/{run.id}/inspection")
    assert inspection["record_prompts"] is False and inspection["prompts"] == []
    assert inspection["timings"]["ended_at_ms"] is not None
