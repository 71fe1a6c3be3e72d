"""LiteLLM's own SDK pointed at the proxy as an OpenAI-compatible Assistants server.

``litellm.create_assistants(custom_llm_provider="openai", api_base=<proxy>/v1, api_key=<key>)``
and its siblings, as the seed's docs use them. LiteLLM is not a dependency of the kit: the
test is skipped when it is not installed. It runs LiteLLM in a child process, with
``LITELLM_LOCAL_MODEL_COST_MAP=True`` so importing it fetches nothing from the network, and
with warnings silenced there (LiteLLM's own deprecation warnings are not ours to fix).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap

import pytest

from .conftest import MASTER_KEY, Launcher, Proxy, clean_env, master_config

pytestmark = pytest.mark.skipif(importlib.util.find_spec("litellm") is None, reason="litellm not installed")

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    import litellm

    base, key = sys.argv[1], sys.argv[2]
    conn = {"custom_llm_provider": "openai", "api_base": base, "api_key": key}
    out = {}
    assistant = litellm.create_assistants(model="test/echo", name="Echo", instructions="x", **conn)
    out["assistant"] = assistant.id
    out["listed"] = [a.id for a in litellm.get_assistants(**conn).data]
    thread = litellm.create_thread(messages=[{"role": "user", "content": "Hey, how's it going?"}], **conn)
    out["thread"] = litellm.get_thread(thread_id=thread.id, **conn).id
    litellm.add_message(thread_id=thread.id, role="user", content="second message", **conn)
    run = litellm.run_thread(thread_id=thread.id, assistant_id=assistant.id, **conn)
    out["run_status"] = run.status
    messages = litellm.get_messages(thread_id=thread.id, **conn)
    out["reply"] = messages.data[0].content[0].text.value
    with litellm.run_thread_stream(thread_id=thread.id, assistant_id=assistant.id, **conn) as stream:
        out["events"] = [event.event for event in stream]

    async def main():
        thread = await litellm.acreate_thread(messages=[{"role": "user", "content": "async hello"}], **conn)
        run = await litellm.arun_thread(thread_id=thread.id, assistant_id=assistant.id, **conn)
        return run.status

    out["async_status"] = asyncio.run(main())
    out["deleted"] = litellm.delete_assistant(assistant_id=assistant.id, **conn).deleted
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def proxy(module_launcher: Launcher) -> Proxy:
    return module_launcher.start(master_config())


def test_litellm_sdk_against_the_proxy(proxy: Proxy) -> None:
    env = clean_env(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_TELEMETRY="False")
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", SCRIPT, proxy.v1, MASTER_KEY],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["assistant"] in out["listed"]
    assert out["thread"].startswith("thread_")
    assert out["run_status"] == "completed"
    assert out["reply"] == "second message"
    assert out["events"][0] == "thread.run.created" and out["events"][-1] == "thread.run.completed"
    assert out["async_status"] == "completed"
    assert out["deleted"] is True
