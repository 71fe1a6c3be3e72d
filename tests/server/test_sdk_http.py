"""The official ``openai`` SDK against ``assistant-kit serve`` running as a subprocess.

Every helper a user reaches for: ``create_and_poll``, ``runs.stream`` with an
``AssistantEventHandler``, ``submit_tool_outputs_stream``, ``create_and_run_stream``,
auto-pagination, the async client, base URLs with and without ``/v1``, an Azure-style
client (``api-key`` header, ``/openai`` prefix, ``api-version``), and a model routed by
``model_list`` to an OpenAI-compatible server (the fake upstream).
"""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest
from openai import AssistantEventHandler
from typing_extensions import override

from tests.fake_upstream import FakeUpstream, get_fake_upstream

from .conftest import MASTER_KEY, Launcher, Proxy, fake_route, master_config

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture(scope="module")
def proxy(module_launcher: Launcher) -> Proxy:
    config = master_config()
    config["model_list"] = [fake_route(get_fake_upstream())]
    return module_launcher.start(config)


@pytest.fixture
def client(proxy: Proxy) -> openai.OpenAI:
    return proxy.client()


class Recorder(AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.text: list[str] = []
        self.tool_calls_done: list[Any] = []

    @override
    def on_event(self, event: Any) -> None:
        self.names.append(event.event)

    @override
    def on_text_delta(self, delta: Any, snapshot: Any) -> None:
        self.text.append(delta.value or "")

    @override
    def on_tool_call_done(self, tool_call: Any) -> None:
        self.tool_calls_done.append(tool_call)


def test_create_and_poll_and_messages(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="test/echo", name="Echo")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hello over http"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    assert run.usage is not None
    messages = client.beta.threads.messages.list(thread_id=thread.id, order="asc")
    assert [m.role for m in messages.data] == ["user", "assistant"]
    assert messages.data[1].content[0].text.value == "hello over http"
    steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id)
    assert [s.type for s in steps.data] == ["message_creation"]


def test_routes_without_v1_prefix(proxy: Proxy) -> None:
    bare = proxy.client(v1=False)
    assistant = bare.beta.assistants.create(model="test/echo")
    assert proxy.client().beta.assistants.retrieve(assistant.id).id == assistant.id
    assert bare.beta.assistants.delete(assistant.id).deleted


def test_stream_with_event_handler(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="test/echo")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "one two three four"}])
    handler = Recorder()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=handler
    ) as stream:
        stream.until_done()
        run = stream.get_final_run()
    assert "".join(handler.text) == "one two three four"
    assert handler.names[0] == "thread.run.created"
    assert handler.names[-1] == "thread.run.completed"
    assert run.status == "completed"


def test_tool_round_with_submit_tool_outputs_stream(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="test/tools", tools=[WEATHER])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "weather?"}])
    first = Recorder()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=first
    ) as stream:
        stream.until_done()
        run = stream.get_final_run()
    assert run.status == "requires_action"
    assert first.names[-1] == "thread.run.requires_action"
    assert [c.function.name for c in first.tool_calls_done] == ["get_weather"]
    call = run.required_action.submit_tool_outputs.tool_calls[0]
    second = Recorder()
    with client.beta.threads.runs.submit_tool_outputs_stream(
        thread_id=thread.id,
        run_id=run.id,
        tool_outputs=[{"tool_call_id": call.id, "output": "sunny, 21C"}],
        event_handler=second,
    ) as stream:
        stream.until_done()
    assert second.names[0] == "thread.run.step.completed"
    assert second.names[-1] == "thread.run.completed"
    assert "sunny, 21C" in "".join(second.text)
    final = client.beta.threads.runs.retrieve(thread_id=thread.id, run_id=run.id)
    assert final.status == "completed"


def test_create_and_run_stream(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="test/echo")
    handler = Recorder()
    with client.beta.threads.create_and_run_stream(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "fresh thread"}]},
        event_handler=handler,
    ) as stream:
        stream.until_done()
    assert handler.names[0] == "thread.created"
    assert "".join(handler.text) == "fresh thread"


def test_auto_pagination(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()
    sent = [f"message {i}" for i in range(25)]
    for text in sent:
        client.beta.threads.messages.create(thread_id=thread.id, role="user", content=text)
    page = client.beta.threads.messages.list(thread_id=thread.id, limit=10, order="asc")
    assert page.has_more
    got = [m.content[0].text.value for m in page]  # iterating a page walks every page
    assert got == sent
    newest_first = [m.content[0].text.value for m in client.beta.threads.messages.list(thread.id, limit=7)]
    assert newest_first == sent[::-1]


def test_model_list_route_to_openai_compatible_server(
    client: openai.OpenAI, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.reply_text("routed through model_list")
    assistant = client.beta.assistants.create(model="fake", instructions="Be brief.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        text = "".join(stream.text_deltas)
    assert text == "routed through model_list"
    request = fake_upstream.last_request
    assert request.body["model"] == "fake-model"
    assert request.headers["authorization"] == "Bearer sk-upstream"
    assert request.body["messages"][0] == {"role": "system", "content": "Be brief."}


def test_azure_style_client(proxy: Proxy) -> None:
    azure = openai.AzureOpenAI(
        azure_endpoint=proxy.url, api_key=MASTER_KEY, api_version="2024-05-01-preview", max_retries=0
    )
    proxy.clients.append(azure)
    assistant = azure.beta.assistants.create(model="test/echo")
    thread = azure.beta.threads.create(messages=[{"role": "user", "content": "azure style"}])
    run = azure.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    listed = azure.beta.threads.messages.list(thread_id=thread.id)
    assert listed.data[0].content[0].text.value == "azure style"


def test_async_client_stream(proxy: Proxy) -> None:
    async def main() -> str:
        async with openai.AsyncOpenAI(base_url=proxy.v1, api_key=MASTER_KEY, max_retries=0) as client:
            assistant = await client.beta.assistants.create(model="test/echo")
            thread = await client.beta.threads.create(messages=[{"role": "user", "content": "async path"}])
            async with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as s:
                return "".join([t async for t in s.text_deltas])

    assert asyncio.run(main()) == "async path"


def test_errors_keep_openai_shape(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.beta.threads.retrieve("thread_missing")
    assert missing.value.body["message"] == "No thread found with id 'thread_missing'."
    with pytest.raises(openai.BadRequestError) as bad:
        client.beta.assistants.create(model="test/echo", temperature=5)
    assert bad.value.body["param"] == "temperature"
