"""The seed's proxy examples (LiteLLM docs, "/assistants" page, PROXY tabs), as HTTP requests.

The config is the seed's Azure one, verbatim (``os.environ/AZURE_*``); the environment
points it at the fake upstream, which plays Azure OpenAI chat deployments. Each request is
the seed's curl command: same URL (``http://0.0.0.0:4000`` becomes the proxy's loopback
address), headers and body. Then the seed's "OpenAI-Compatible APIs" example: pass-through
to another Assistants server, here a second assistant-kit proxy.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx2
import pytest

from tests.fake_upstream import FakeUpstream

from .conftest import Proxy, StartProxy

SEED_KEY = "sk-1234"
HEADERS = {"Content-Type": "application/json", "Authorization": f"Bearer {SEED_KEY}"}
AZURE_CONFIG = {
    "assistant_settings": {
        "custom_llm_provider": "azure",
        "litellm_params": {
            "api_key": "os.environ/AZURE_API_KEY",
            "api_base": "os.environ/AZURE_API_BASE",
            "api_version": "os.environ/AZURE_API_VERSION",
        },
    },
    "general_settings": {"master_key": SEED_KEY},
}
MATH_TUTOR = {
    "instructions": "You are a personal math tutor. When asked a question, write and run Python code to "
    "answer the question.",
    "name": "Math Tutor",
    "tools": [{"type": "code_interpreter"}],
    "model": "gpt-4-turbo",
}


def sse_events(body: str) -> list[tuple[str, str]]:
    events = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        events.append((fields.get("event", ""), fields.get("data", "")))
    return events


def wait_run(http: httpx2.Client, thread_id: str, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        run = http.get(f"/v1/threads/{thread_id}/runs/{run_id}").json()
        if run["status"] not in ("queued", "in_progress"):
            return run
        time.sleep(0.05)
    raise AssertionError("run did not finish")


@pytest.fixture
def azure_proxy(start_proxy: StartProxy, fake_upstream: FakeUpstream) -> Proxy:
    env = {
        "AZURE_API_KEY": "azure-test-key",
        "AZURE_API_BASE": fake_upstream.endpoint,
        "AZURE_API_VERSION": "2024-05-01-preview",
    }
    return start_proxy(AZURE_CONFIG, env=env)


def test_seed_proxy_walkthrough(azure_proxy: Proxy, fake_upstream: FakeUpstream) -> None:
    base = azure_proxy.url
    with httpx2.Client(timeout=30) as http:
        # Create the Assistant
        response = http.post(f"{base}/v1/assistants", headers=HEADERS, json=MATH_TUTOR)
        assert response.status_code == 200, response.text
        assistant = response.json()
        assert assistant["object"] == "assistant" and assistant["tools"] == [{"type": "code_interpreter"}]
        # Get the Assistant
        listed = http.get(f"{base}/v1/assistants?order=desc&limit=20", headers=HEADERS).json()
        assert listed["object"] == "list" and listed["data"][0]["id"] == assistant["id"]
        # Create a Thread: curl ... -d ''  (an empty body with a JSON content type)
        response = http.post(f"{base}/v1/threads", headers=HEADERS, content=b"")
        assert response.status_code == 200, response.text
        thread = response.json()
        # Get a Thread
        assert http.get(f"{base}/v1/threads/{thread['id']}", headers=HEADERS).json()["id"] == thread["id"]
        # Add Messages to the Thread
        response = http.post(
            f"{base}/v1/threads/{thread['id']}/messages",
            headers=HEADERS,
            json={"role": "user", "content": "How does AI work? Explain it in simple terms."},
        )
        assert response.status_code == 200 and response.json()["role"] == "user"
        # Run the Assistant on the Thread
        fake_upstream.reply_text("Pattern matching on lots of examples.")
        response = http.post(
            f"{base}/v1/threads/{thread['id']}/runs", headers=HEADERS, json={"assistant_id": assistant["id"]}
        )
        assert response.status_code == 200, response.text
        run = response.json()
        assert run["status"] == "queued" and run["model"] == "gpt-4-turbo"
        http.headers.update(HEADERS)
        http.base_url = httpx2.URL(base)
        assert wait_run(http, thread["id"], run["id"])["status"] == "completed"
    request = fake_upstream.last_request
    assert request.deployment == "gpt-4-turbo"  # plain model names are Azure deployments
    assert request.query["api-version"] == "2024-05-01-preview"
    assert request.headers["api-key"] == "azure-test-key"


def test_seed_streaming_run(azure_proxy: Proxy, fake_upstream: FakeUpstream) -> None:
    base = azure_proxy.url
    with httpx2.Client(timeout=30) as http:
        assistant = http.post(f"{base}/v1/assistants", headers=HEADERS, json=MATH_TUTOR).json()
        thread = http.post(
            f"{base}/v1/threads", headers=HEADERS, json={"messages": [{"role": "user", "content": "hi"}]}
        ).json()
        fake_upstream.reply_text("streamed answer")
        # The seed: curl -X POST 'http://0.0.0.0:4000/threads/{thread_id}/runs' (no /v1) with
        # {"assistant_id": ..., "stream": true}. (The docs write -D, curl's --dump-header,
        # where -d is meant; as printed it would send no body: see the next test.)
        response = http.post(
            f"{base}/threads/{thread['id']}/runs",
            headers=HEADERS,
            json={"assistant_id": assistant["id"], "stream": True},
        )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names[0] == "thread.run.created"
    assert names[-2:] == ["thread.run.completed", "done"]
    assert events[-1][1] == "[DONE]"
    text = "".join(
        part["text"]["value"]
        for name, data in events
        if name == "thread.message.delta"
        for part in json.loads(data)["delta"]["content"]
    )
    assert text == "streamed answer"


def test_seed_streaming_command_as_printed(azure_proxy: Proxy) -> None:
    """``curl -X POST … -D '{…}'`` sends no body: a clear 400 naming the missing parameter."""
    with httpx2.Client(timeout=30) as http:
        thread = http.post(f"{azure_proxy.url}/v1/threads", headers=HEADERS, content=b"").json()
        response = http.post(f"{azure_proxy.url}/threads/{thread['id']}/runs", headers=HEADERS)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "assistant_id"


def test_seed_openai_compatible_assistants_api(start_proxy: StartProxy, fake_upstream: FakeUpstream) -> None:
    """The seed's Astra example: provider openai + api_base = a remote Assistants server."""
    remote = start_proxy(
        {
            "assistant_settings": {"litellm_params": {"api_base": fake_upstream.url, "api_key": "sk-up"}},
            "general_settings": {"master_key": "sk-astra"},
        }
    )
    proxy = start_proxy(
        {
            "assistant_settings": {
                "custom_llm_provider": "openai",
                "litellm_params": {
                    "api_key": "os.environ/ASTRA_API_KEY",
                    "api_base": "os.environ/ASTRA_API_BASE",
                },
            },
            "general_settings": {"master_key": SEED_KEY},
        },
        env={"ASTRA_API_KEY": "sk-astra", "ASTRA_API_BASE": remote.v1},
    )
    assert "mode: pass-through" in proxy.output()
    with httpx2.Client(timeout=30) as http:
        response = http.post(
            f"{proxy.url}/v1/assistants",
            headers=HEADERS,
            json={**MATH_TUTOR, "model": "openai/my-astra-model"},
        )
        assert response.status_code == 200, response.text
        assistant = response.json()
        # It lives on the remote server, under the remote key's owner.
        with remote.http("sk-astra") as direct:
            assert direct.get(f"/v1/assistants/{assistant['id']}").json()["model"] == "openai/my-astra-model"
        thread = http.post(
            f"{proxy.url}/v1/threads", headers=HEADERS, json={"messages": [{"role": "user", "content": "q"}]}
        ).json()
        fake_upstream.reply_text("answer from the remote")
        response = http.post(
            f"{proxy.url}/threads/{thread['id']}/runs",
            headers=HEADERS,
            json={"assistant_id": assistant["id"], "stream": True},
        )
    names = [name for name, _ in sse_events(response.text)]
    assert names[-2:] == ["thread.run.completed", "done"]
    assert fake_upstream.last_request.body["model"] == "my-astra-model"
