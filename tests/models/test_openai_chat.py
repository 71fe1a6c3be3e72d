"""The OpenAI/Azure Chat Completions backend against a real local HTTP server."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import openai
import pytest

from assistant_kit.errors import ModelConfigError, ModelError
from assistant_kit.models import openai_chat
from assistant_kit.models.base import (
    BaseChatModel,
    Finish,
    ModelRequest,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from assistant_kit.models.registry import ProviderSettings, resolve_model
from tests.fake_upstream import FakeUpstream, get_fake_upstream

pytestmark = pytest.mark.timeout(30)

SECRET = "sk-secret-do-not-leak-0123456789"
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
def fake() -> FakeUpstream:
    # Not the shared ``fake_upstream`` fixture, so this module runs without a conftest.
    server = get_fake_upstream()
    server.reset()
    return server


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_API_VERSION",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "OPENAI_CUSTOM_HEADERS",
        "AZURE_OPENAI_API_KEY",
        "AZURE_API_KEY",
        "AZURE_OPENAI_ENDPOINT",
        "AZURE_API_BASE",
        "AZURE_OPENAI_API_VERSION",
        "AZURE_API_VERSION",
        "AZURE_OPENAI_AD_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)


def model_for(fake: FakeUpstream, name: str = "openai/x", **settings: Any) -> BaseChatModel:
    settings = {"api_base": fake.url, "api_key": "sk-test", **settings}
    return resolve_model(name, ProviderSettings(**settings))


def drain(model: BaseChatModel, request: ModelRequest | None = None) -> list[Any]:
    async def run() -> list[Any]:
        return [event async for event in model.stream(request or ModelRequest(HELLO))]

    return asyncio.run(run())


def drain_until_error(
    model: BaseChatModel,
    request: ModelRequest | None = None,
) -> tuple[list[Any], ModelError]:
    events: list[Any] = []

    async def run() -> None:
        async for event in model.stream(request or ModelRequest(HELLO)):
            events.append(event)

    with pytest.raises(ModelError) as info:
        asyncio.run(run())
    return events, info.value


def text_of(events: list[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def assert_one_final_finish(events: list[Any], reason: str) -> None:
    assert [e for e in events if isinstance(e, Finish)] == [Finish(reason)]
    assert events[-1] == Finish(reason)


# --- streaming --------------------------------------------------------------------------


def test_text_streams_as_deltas(fake: FakeUpstream) -> None:
    fake.reply_text(["Hel", "lo", ", world"])
    events = drain(model_for(fake))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel", "lo", ", world"]
    assert_one_final_finish(events, "stop")
    assert isinstance(events[-2], Usage)


def test_default_reply_echoes_last_user_message(fake: FakeUpstream) -> None:
    messages = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "say  this back\nplease"},
    ]
    events = drain(model_for(fake), ModelRequest(messages))
    assert text_of(events) == "say  this back\nplease"
    assert sum(isinstance(e, TextDelta) for e in events) == 4


def test_tool_call_fragments_assemble(fake: FakeUpstream) -> None:
    fake.reply_tool_calls(
        [("get_weather", {"city": "Paris"}), ("add", {"a": 1, "b": 2})], text="Let me check. "
    )
    events = drain(model_for(fake))
    calls: dict[int, dict[str, Any]] = {}
    for e in events:
        if isinstance(e, ToolCallDelta):
            if e.index not in calls:
                assert e.id and e.id.startswith("call_") and e.name  # first fragment
                calls[e.index] = {"id": e.id, "name": e.name, "arguments": ""}
            else:
                assert e.id is None
            calls[e.index]["arguments"] += e.arguments
    assert text_of(events) == "Let me check. "
    assert [(c["name"], json.loads(c["arguments"])) for c in calls.values()] == [
        ("get_weather", {"city": "Paris"}),
        ("add", {"a": 1, "b": 2}),
    ]
    assert len({c["id"] for c in calls.values()}) == 2
    assert_one_final_finish(events, "tool_calls")


def test_usage_is_reported_once_before_finish(fake: FakeUpstream) -> None:
    fake.reply_text("a b c", usage=(11, 3))
    events = drain(model_for(fake))
    assert [e for e in events if isinstance(e, Usage)] == [Usage(11, 3)]
    assert events[-2:] == [Usage(11, 3), Finish("stop")]


@pytest.mark.parametrize(
    ("upstream", "ours"), [("length", "length"), ("content_filter", "stop"), ("function_call", "tool_calls")]
)
def test_finish_reasons_are_mapped(fake: FakeUpstream, upstream: str, ours: str) -> None:
    fake.reply_text("x", finish=upstream)
    assert_one_final_finish(drain(model_for(fake)), ours)


# --- what is sent ------------------------------------------------------------------------


def test_parameters_are_forwarded(fake: FakeUpstream) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    request = ModelRequest(
        messages=[{"role": "system", "content": "be brief"}, *HELLO],
        tools=tools,
        tool_choice="required",
        parallel_tool_calls=False,
        response_format={"type": "json_object"},
        temperature=0.2,
        top_p=0.9,
        max_tokens=50,
    )
    drain(model_for(fake, "openai/gpt-test"), request)
    body = fake.last_request.body
    assert body["model"] == "gpt-test"
    assert body["messages"] == request.messages
    assert body["tools"] == tools
    assert body["tool_choice"] == "required"
    assert body["parallel_tool_calls"] is False
    assert body["response_format"] == {"type": "json_object"}
    assert (body["temperature"], body["top_p"], body["max_completion_tokens"]) == (0.2, 0.9, 50)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert fake.last_request.path == "/v1/chat/completions"
    assert fake.last_request.headers["authorization"] == "Bearer sk-test"


def test_unset_parameters_are_not_sent(fake: FakeUpstream) -> None:
    drain(model_for(fake), ModelRequest(HELLO, tool_choice="auto"))  # tool_choice but no tools
    body = fake.last_request.body
    for absent in (
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "temperature",
        "top_p",
        "max_completion_tokens",
        "max_tokens",
    ):
        assert absent not in body


def test_unset_fields_of_tools_and_messages_are_not_sent(fake: FakeUpstream) -> None:
    """A function tool created without a description is stored with ``description: null``;
    sent like that, llama-cpp-python's server answers 500 (it wants a string or nothing). Unset
    fields are left out, but a null inside the client's JSON Schema is the client's: kept."""
    parameters = {"type": "object", "properties": {"x": {"type": ["string", "null"], "default": None}}}
    tool = {
        "type": "function",
        "function": {"name": "lookup", "description": None, "parameters": parameters, "strict": None},
    }
    messages = [
        *HELLO,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
    ]
    drain(model_for(fake), ModelRequest(messages, tools=[tool]))
    body = fake.last_request.body
    assert body["tools"] == [{"type": "function", "function": {"name": "lookup", "parameters": parameters}}]
    assert body["messages"][1]["content"] == ""  # said nothing; null would read "None" in a template
    assert body["messages"][1]["tool_calls"][0]["function"] == {"name": "lookup", "arguments": "{}"}
    assert body["messages"][2] == messages[2]


def test_usage_is_counted_when_the_upstream_sends_none(fake: FakeUpstream) -> None:
    """No usage chunk in the stream (llama-cpp-python's server sends none): the turn's usage is
    counted — the prompt by the backend's ``count_tokens``, the completion from what streamed
    — not reported as 0/0."""
    model = model_for(fake)
    fake.reply_text("The answer is forty-two.", send_usage=False)
    events = drain(model)
    assert events[-2:] == [Usage(model.count_tokens(HELLO), 6), Finish("stop")]  # 24 characters

    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    fake.reply_tool_calls([("lookup", {"query": "weather in Paris"})], send_usage=False)
    events = drain(model, ModelRequest(HELLO, tools=[tool]))
    usage = events[-2]
    assert isinstance(usage, Usage) and events[-1] == Finish("tool_calls")
    assert usage.prompt_tokens > model.count_tokens(HELLO)  # the tool definitions count too
    assert usage.completion_tokens == -(-len('lookup{"query": "weather in Paris"}') // 4)


# --- retries and errors ---------------------------------------------------------------


def test_429_then_success_is_retried(fake: FakeUpstream) -> None:
    fake.reply_error(429, times=2)
    fake.reply_text("finally")
    events = drain(model_for(fake))
    assert text_of(events) == "finally"
    assert len(fake.requests) == 3


def test_429_until_retries_run_out(fake: FakeUpstream) -> None:
    fake.reply_error(429, times=5)
    _, error = drain_until_error(model_for(fake, "openai/busy-model", max_retries=2))
    assert (error.code, error.status, error.model) == ("rate_limit_exceeded", 429, "busy-model")
    assert "busy-model" in str(error) and "429" in str(error)
    assert len(fake.requests) == 3
    assert fake.pending == 2


def test_500_is_server_error(fake: FakeUpstream) -> None:
    fake.reply_error(500)
    _, error = drain_until_error(model_for(fake, max_retries=0))
    assert (error.code, error.status) == ("server_error", 500)
    assert len(fake.requests) == 1


def test_drop_mid_stream_is_server_error_and_not_retried(fake: FakeUpstream) -> None:
    fake.reply_drop(after=2)
    fake.reply_text("a retry would see this")
    events, error = drain_until_error(model_for(fake))
    assert text_of(events) == "one two "
    assert error.code == "server_error" and error.retryable is False
    assert "mid-stream" in str(error)
    assert len(fake.requests) == 1


def test_stream_ending_without_finish_is_server_error(fake: FakeUpstream) -> None:
    fake.reply_early_end("cut short")
    events, error = drain_until_error(model_for(fake))
    assert text_of(events) == "cut short"
    assert error.code == "server_error" and "ended early" in str(error)
    assert not any(isinstance(e, Finish) for e in events)


def test_error_event_inside_stream(fake: FakeUpstream) -> None:
    fake.reply_stream_error("The engine overheated.", after=1)
    events, error = drain_until_error(model_for(fake))
    assert text_of(events) == "one "
    assert error.code == "server_error" and "overheated" in str(error)


def test_malformed_stream_event_is_server_error(fake: FakeUpstream) -> None:
    fake.reply_malformed(after=1)
    events, error = drain_until_error(model_for(fake))
    assert text_of(events) == "one "
    assert error.code == "server_error" and "malformed" in str(error)


@pytest.mark.parametrize(
    ("status", "code"), [(400, "invalid_request_error"), (401, "invalid_api_key"), (404, "model_not_found")]
)
def test_client_errors_are_mapped_and_not_retried(fake: FakeUpstream, status: int, code: str) -> None:
    fake.reply_error(status, times=3)
    _, error = drain_until_error(model_for(fake))
    assert (error.code, error.status, error.retryable) == (code, status, False)
    assert len(fake.requests) == 1


def test_connection_refused_is_server_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    model = resolve_model(
        "openai/x", ProviderSettings(api_base=f"http://127.0.0.1:{port}/v1", api_key="sk-test", max_retries=0)
    )
    _, error = drain_until_error(model)
    assert error.code == "server_error" and "could not connect" in str(error)
    assert error.retryable is True


def test_read_timeout_is_server_error(fake: FakeUpstream) -> None:
    fake.reply_text(["slow"], delay=1.0)
    _, error = drain_until_error(model_for(fake, timeout=0.2, max_retries=0))
    assert error.code == "server_error" and "timed out" in str(error)


# --- cancellation --------------------------------------------------------------------


def test_cancelling_the_consumer_closes_the_upstream_stream(fake: FakeUpstream) -> None:
    fake.reply_text(["tick "] * 200, delay=0.02)  # a 4-second stream
    model = model_for(fake)

    async def run() -> None:
        first = asyncio.Event()

        async def consume() -> None:
            async for event in model.stream(ModelRequest(HELLO)):
                if isinstance(event, TextDelta):
                    first.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    started = time.monotonic()
    asyncio.run(run())
    assert fake.wait_for_disconnect(timeout=2.0)
    assert time.monotonic() - started < 3.0


# --- configuration -------------------------------------------------------------------


def test_azure_deployment_path_version_and_key_header(fake: FakeUpstream) -> None:
    model = resolve_model(
        "azure/my-deploy", ProviderSettings(api_base=fake.endpoint, api_key=SECRET, api_version="2024-10-21")
    )
    assert text_of(drain(model)) == "hello"
    request = fake.last_request
    assert request.path == "/openai/deployments/my-deploy/chat/completions"
    assert request.deployment == "my-deploy"
    assert request.query["api-version"] == "2024-10-21"
    assert request.headers["api-key"] == SECRET
    assert "authorization" not in request.headers


def test_azure_provider_and_env_fallbacks(fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_API_KEY", "azure-env-key")
    monkeypatch.setenv("AZURE_OPENAI_API_VERSION", "2025-01-01")
    model = resolve_model("dep2", ProviderSettings(provider="azure", api_base=fake.endpoint))
    drain(model)
    assert fake.last_request.deployment == "dep2"
    assert fake.last_request.query["api-version"] == "2025-01-01"
    assert fake.last_request.headers["api-key"] == "azure-env-key"


def test_azure_missing_settings_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelConfigError) as info:
        resolve_model("azure/dep", ProviderSettings(api_key=SECRET))
    message = str(info.value)
    assert "endpoint" in message and "api_base" in message and "API version" in message
    assert "API key" not in message and SECRET not in message


def test_openai_base_url_env_redirects_calls(fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    assert text_of(drain(resolve_model("gpt-4o-mini"))) == "hello"
    assert fake.last_request.body["model"] == "gpt-4o-mini"
    assert fake.last_request.headers["authorization"] == "Bearer sk-from-env"


def test_api_base_without_key_sends_a_dummy(fake: FakeUpstream) -> None:
    model = resolve_model("openai/llama3", ProviderSettings(api_base=fake.url))
    assert text_of(drain(model)) == "hello"
    assert fake.last_request.headers["authorization"] == f"Bearer {openai_chat.DUMMY_API_KEY}"


def test_missing_key_and_base_is_a_config_error() -> None:
    with pytest.raises(ModelConfigError) as info:
        resolve_model("gpt-4o-mini", ProviderSettings())
    message = str(info.value)
    for hint in ("OPENAI_API_KEY", "api_key", "api_base", "gpt-4o-mini"):
        assert hint in message


def test_api_base_without_scheme_is_a_config_error() -> None:
    with pytest.raises(ModelConfigError, match="http://"):
        resolve_model("openai/llama3", ProviderSettings(api_base="localhost:11434/v1"))
    with pytest.raises(ModelConfigError) as info:
        resolve_model(
            "azure/d", ProviderSettings(api_base="ftp://user:pw@host", api_key="k", api_version="v")
        )
    assert "pw" not in str(info.value)


def test_secret_key_never_shown(fake: FakeUpstream) -> None:
    model = model_for(fake, api_key=SECRET)
    assert SECRET not in repr(model)
    assert SECRET not in repr(ProviderSettings(api_key=SECRET))
    echoed = f"Incorrect API key provided: {SECRET}."
    for status in (401, 400, 404, 429, 500):
        fake.reply_error(status, times=3, message=echoed)
        _, error = drain_until_error(model_for(fake, api_key=SECRET))
        assert SECRET not in str(error) and SECRET not in repr(error)
        assert SECRET[:12] not in str(error)
    fake.reply_stream_error(echoed)
    _, error = drain_until_error(model)
    assert SECRET not in str(error)


def test_clients_are_cached_per_settings_within_a_loop(fake: FakeUpstream) -> None:
    a, b = model_for(fake), model_for(fake)
    other_key = model_for(fake, api_key="sk-other")

    async def run() -> int:
        for model in (a, b, other_key):
            [_ async for _ in model.stream(ModelRequest(HELLO))]
        per_loop = openai_chat._clients[asyncio.get_running_loop()]
        assert all(SECRET not in k and "sk-" not in k for k in per_loop.clients)
        return len(per_loop.clients)

    assert asyncio.run(run()) == 2
    assert len(fake.requests) == 3


def test_fake_upstream_serves_non_streaming_json(fake: FakeUpstream) -> None:
    fake.reply_tool_calls([("f", {"x": 1})])

    async def run() -> Any:
        async with openai.AsyncOpenAI(base_url=fake.url, api_key="sk-test") as client:
            return await client.chat.completions.create(model="m", messages=HELLO)

    completion = asyncio.run(run())
    call = completion.choices[0].message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == ("f", {"x": 1})
    assert completion.choices[0].finish_reason == "tool_calls"
