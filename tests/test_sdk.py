# ruff: noqa: E501  (the seed's snippets below are kept verbatim, long lines included)
"""The 18 LiteLLM-compatible functions (``assistant_kit.sdk``), through the real functions:
the in-process engine on the default store, OpenAI and Azure as model providers (the fake
upstream), a remote Assistants server as pass-through (the kit's own engine over HTTP),
and the seed's documented snippets with only the import changed."""

from __future__ import annotations

import asyncio
import inspect
import re
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import AssistantEventHandler
from openai.lib.streaming import AssistantStreamManager, AsyncAssistantStreamManager

import assistant_kit
from assistant_kit import (
    a_add_message,
    acreate_assistants,
    acreate_thread,
    add_message,
    adelete_assistant,
    aget_assistants,
    aget_messages,
    aget_thread,
    arun_thread,
    arun_thread_stream,
    create_assistants,
    create_thread,
    delete_assistant,
    get_assistants,
    get_messages,
    get_thread,
    local_client,
    run_thread,
    run_thread_stream,
)
from assistant_kit.engine.app import create_app
from assistant_kit.engine.core import Engine
from assistant_kit.errors import AssistantKitError
from assistant_kit.store import Store
from tests.conftest import serve
from tests.fake_upstream import FakeUpstream

pytestmark = pytest.mark.timeout(60)

_ENV = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_API_BASE",
    "AZURE_OPENAI_API_KEY",
    "AZURE_API_KEY",
    "OPENAI_API_VERSION",
    "AZURE_OPENAI_API_VERSION",
    "AZURE_API_VERSION",
)


@pytest.fixture(autouse=True)
def kit_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh default store per test, and no provider credentials from the environment."""
    db = tmp_path / "kit.db"
    monkeypatch.setenv("ASSISTANT_KIT_DB", str(db))
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    return db


def _text(message: Any) -> str:
    return "".join(part.text.value for part in message.content if part.type == "text")


# --- names and signatures -------------------------------------------------------------------

# LiteLLM 1.110's positional parameters, in order (litellm/assistants/main.py).
LITELLM_POSITIONAL = {
    "create_assistants": "custom_llm_provider model name description instructions tools tool_resources "
    "metadata temperature top_p response_format client api_key api_base api_version",
    "get_assistants": "custom_llm_provider client api_key api_base api_version",
    "delete_assistant": "custom_llm_provider assistant_id client api_key api_base api_version",
    "create_thread": "custom_llm_provider messages metadata tool_resources client",
    "get_thread": "custom_llm_provider thread_id client",
    "add_message": "custom_llm_provider thread_id role content attachments metadata client",
    "get_messages": "custom_llm_provider thread_id client",
    "run_thread": "custom_llm_provider thread_id assistant_id additional_instructions instructions "
    "metadata model stream tools client event_handler",
    "aget_thread": "custom_llm_provider thread_id client",
    "a_add_message": "custom_llm_provider thread_id role content attachments metadata client",
    "aget_messages": "custom_llm_provider thread_id client",
    "aget_assistants": "custom_llm_provider client",
    "arun_thread": "custom_llm_provider thread_id assistant_id additional_instructions instructions "
    "metadata model stream tools client",
}
ASYNC_TWINS = {
    "acreate_assistants": "create_assistants",
    "aget_assistants": "get_assistants",
    "adelete_assistant": "delete_assistant",
    "acreate_thread": "create_thread",
    "aget_thread": "get_thread",
    "a_add_message": "add_message",
    "aget_messages": "get_messages",
    "arun_thread": "run_thread",
}
COMMON = {"custom_llm_provider", "api_key", "api_base", "api_version", "timeout", "client"}


def test_the_18_functions_have_litellms_names_and_parameters() -> None:
    names = {*ASYNC_TWINS, *ASYNC_TWINS.values(), "run_thread_stream", "arun_thread_stream"}
    assert len(names) == 18 and names <= set(assistant_kit.__all__)
    for name in names:
        fn = getattr(assistant_kit, name)
        parameters = inspect.signature(fn).parameters
        assert COMMON <= set(parameters), name
        assert any(p.kind is p.VAR_KEYWORD for p in parameters.values()), name
        assert inspect.iscoroutinefunction(fn) == (name in ASYNC_TWINS), name
        assert fn.__name__ == name and fn.__doc__
    for name, expected in LITELLM_POSITIONAL.items():
        parameters = list(inspect.signature(getattr(assistant_kit, name)).parameters.values())
        positional = [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD]
        assert positional[: len(expected.split())] == expected.split(), name
    for name in ("run_thread_stream", "arun_thread_stream"):
        assert "event_handler" in inspect.signature(getattr(assistant_kit, name)).parameters


# --- the in-process engine (no provider) ----------------------------------------------------


def test_assistants_create_page_and_delete_forward_every_parameter() -> None:
    created = [
        create_assistants(
            model="test/echo",
            name=f"a{i}",
            description="d",
            instructions="be brief",
            tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            metadata={"i": str(i)},
            temperature=0.5,
            top_p=0.9,
            response_format={"type": "json_object"},
        )
        for i in range(5)
    ]
    first = created[0]
    assert isinstance(first, openai.types.beta.Assistant)
    assert (first.description, first.instructions) == ("d", "be brief")
    assert (first.temperature, first.top_p) == (0.5, 0.9) and first.response_format.type == "json_object"
    assert first.metadata == {"i": "0"} and first.tools[0].function.name == "f"

    page = get_assistants(limit=2, order="asc")
    assert isinstance(page, openai.pagination.SyncCursorPage)
    assert [a.name for a in page.data] == ["a0", "a1"] and page.has_more
    page = get_assistants(limit=2, order="asc", after=page.data[-1].id)
    assert [a.name for a in page.data] == ["a2", "a3"] and page.has_more
    page = get_assistants(limit=2, order="asc", after=page.data[-1].id)
    assert [a.name for a in page.data] == ["a4"] and not page.has_more
    assert [a.name for a in get_assistants(limit=10, order="asc", before=created[2].id).data] == ["a0", "a1"]
    assert [a.name for a in get_assistants(limit=3).data] == ["a4", "a3", "a2"]  # default order: desc
    every = [a.name for a in get_assistants(limit=2, order="asc")]  # the SDK's auto-paging
    assert every == [f"a{i}" for i in range(5)]

    deleted = delete_assistant(assistant_id=first.id)
    assert isinstance(deleted, openai.types.beta.AssistantDeleted) and deleted.deleted
    assert first.id not in {a.id for a in get_assistants(limit=100).data}


def test_threads_and_messages_forward_every_parameter() -> None:
    thread = create_thread(
        messages=[{"role": "user", "content": "first", "metadata": {"n": "1"}}],
        metadata={"topic": "t"},
        tool_resources={"code_interpreter": {"file_ids": []}},
    )
    assert isinstance(thread, openai.types.beta.Thread)
    got = get_thread(thread_id=thread.id)
    assert got.id == thread.id and got.metadata == {"topic": "t"}
    assert got.tool_resources is not None and got.tool_resources.code_interpreter is not None

    added = [
        add_message(thread_id=thread.id, role="user", content=f"m{i}", metadata={"i": str(i)})
        for i in range(4)
    ]
    assert isinstance(added[0], openai.types.beta.threads.Message)
    assert added[0].metadata == {"i": "0"} and _text(added[0]) == "m0"

    page = get_messages(thread_id=thread.id, limit=2, order="asc")
    assert [_text(m) for m in page.data] == ["first", "m0"] and page.has_more
    page = get_messages(thread_id=thread.id, limit=2, order="asc", after=page.data[-1].id)
    assert [_text(m) for m in page.data] == ["m1", "m2"]
    assert [_text(m) for m in get_messages(thread_id=thread.id, limit=2).data] == ["m3", "m2"]
    before = get_messages(thread_id=thread.id, order="asc", before=added[1].id)
    assert [_text(m) for m in before.data] == ["first", "m0"]

    assistant = create_assistants(model="test/echo")
    run = run_thread(thread_id=thread.id, assistant_id=assistant.id)
    add_message(thread_id=thread.id, role="user", content="after the run")
    by_run = get_messages(thread_id=thread.id, run_id=run.id)
    assert [m.run_id for m in by_run.data] == [run.id] and _text(by_run.data[0]) == "m3"


def test_run_thread_polls_to_a_terminal_run_and_forwards_run_parameters() -> None:
    assistant = create_assistants(model="test/echo", instructions="base")
    thread = create_thread(messages=[{"role": "user", "content": "hello there"}])
    run = run_thread(
        thread_id=thread.id,
        assistant_id=assistant.id,
        additional_instructions="extra",
        metadata={"k": "v"},
        model="test/echo",
        tools=[{"type": "function", "function": {"name": "g", "parameters": {"type": "object"}}}],
        additional_messages=[{"role": "user", "content": "one more line"}],
        tool_choice="none",
        parallel_tool_calls=False,
        response_format={"type": "text"},
        temperature=0.25,
        top_p=0.5,
        max_prompt_tokens=500,
        max_completion_tokens=400,
        truncation_strategy={"type": "last_messages", "last_messages": 5},
    )
    assert isinstance(run, openai.types.beta.threads.Run)
    assert run.status == "completed"
    assert run.instructions.startswith("base") and "extra" in run.instructions
    assert run.metadata == {"k": "v"} and run.tools[0].function.name == "g"
    assert (run.temperature, run.top_p, run.max_prompt_tokens, run.max_completion_tokens) == (
        0.25,
        0.5,
        500,
        400,
    )
    assert run.parallel_tool_calls is False and run.tool_choice == "none"
    assert run.truncation_strategy.type == "last_messages" and run.truncation_strategy.last_messages == 5
    reply = get_messages(thread_id=thread.id, run_id=run.id).data[0]
    assert _text(reply) == "one more line"  # the additional message is the last user input


def test_run_thread_returns_at_requires_action() -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
        },
    }
    assistant = create_assistants(model="test/tools", tools=[tool])
    thread = create_thread(messages=[{"role": "user", "content": "look it up"}])
    run = run_thread(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert [c.function.name for c in calls] == ["lookup"]


def test_run_thread_with_stream_true_returns_the_stream_manager_as_litellm_does() -> None:
    assistant = create_assistants(model="test/echo")
    thread = create_thread(messages=[{"role": "user", "content": "streamed reply"}])
    manager = run_thread(thread_id=thread.id, assistant_id=assistant.id, stream=True)
    assert isinstance(manager, AssistantStreamManager)
    with manager as stream:
        stream.until_done()
        assert _text(stream.get_final_messages()[0]) == "streamed reply"


def test_run_thread_stream_as_the_seed_uses_it() -> None:
    assistant = create_assistants(model="test/echo")
    thread = create_thread(messages=[{"role": "user", "content": "Hey, how's it going?"}])
    message = {"role": "user", "content": "not a run parameter"}
    data = {"custom_llm_provider": None, "thread_id": thread.id, "assistant_id": assistant.id, **message}
    with run_thread_stream(**data) as stream:
        assert isinstance(stream, AssistantEventHandler)
        events = [event.event for event in stream]
        stream.until_done()
    assert events[0] == "thread.run.created" and events[-1] == "thread.run.completed"
    assert "thread.message.delta" in events
    messages = get_messages(thread_id=thread.id).data
    assert [_text(m) for m in messages] == ["Hey, how's it going?"] * 2  # role/content were not added

    class Collect(AssistantEventHandler):
        def __init__(self) -> None:
            super().__init__()
            self.text = ""

        def on_text_delta(self, delta: Any, snapshot: Any) -> None:
            self.text += delta.value or ""

    add_message(thread_id=thread.id, role="user", content="handled by you")
    handler = Collect()
    with run_thread_stream(thread_id=thread.id, assistant_id=assistant.id, event_handler=handler) as stream:
        assert stream is handler
        stream.until_done()
    assert handler.text == "handled by you"


def test_arguments_that_are_not_request_parameters_are_dropped() -> None:
    assistant = create_assistants(
        model="test/echo",
        name="kept",
        litellm_call_id="abc",
        litellm_logging_obj=object(),
        organization="org-x",
        request_timeout=30,
    )
    assert assistant.name == "kept"
    thread = create_thread(messages=[{"role": "user", "content": "x"}], litellm_params={"a": 1})
    run = run_thread(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=None, role="user", content="c"
    )
    assert run.status == "completed"
    with pytest.raises(TypeError, match="model"):
        create_assistants(name="no model")
    with pytest.raises(AssistantKitError, match="custom_llm_provider"):
        get_assistants(custom_llm_provider="anthropic")


def test_client_argument_is_used_instead(tmp_path: Path) -> None:
    mine = local_client(tmp_path / "mine.db")
    assistant = create_assistants(model="test/echo", name="mine", client=mine)
    assert [a.id for a in mine.beta.assistants.list().data] == [assistant.id]
    assert get_assistants().data == []  # the default store saw nothing
    thread = create_thread(messages=[{"role": "user", "content": "own client"}], client=mine)
    assert (
        run_thread(thread_id=thread.id, assistant_id=assistant.id, client=mine, timeout=20).status
        == "completed"
    )
    with pytest.raises(TypeError, match="AsyncOpenAI"):
        asyncio.run(aget_assistants(client=mine))


def test_async_twins() -> None:
    async def main(tag: str) -> None:
        assistants = [await acreate_assistants(model="test/echo", name=f"{tag}{i}") for i in range(3)]
        page = await aget_assistants(limit=2, order="desc")
        assert isinstance(page, openai.pagination.AsyncCursorPage)
        assert [a.name for a in page.data] == [f"{tag}2", f"{tag}1"] and page.has_more
        page = await aget_assistants(limit=2, order="desc", after=page.data[-1].id)
        assert page.data[0].name == f"{tag}0"

        thread = await acreate_thread(
            messages=[{"role": "user", "content": "async hello"}], metadata={"a": "1"}
        )
        assert (await aget_thread(thread_id=thread.id)).metadata == {"a": "1"}
        await a_add_message(thread_id=thread.id, role="user", content="async again")
        run = await arun_thread(thread_id=thread.id, assistant_id=assistants[0].id, temperature=0.1)
        assert isinstance(run, openai.types.beta.threads.Run)
        assert run.status == "completed" and run.temperature == 0.1
        messages = await aget_messages(thread_id=thread.id, run_id=run.id)
        assert [_text(m) for m in messages.data] == ["async again"]

        await a_add_message(thread_id=thread.id, role="user", content="streamed async")
        manager = arun_thread_stream(
            thread_id=thread.id, assistant_id=assistants[1].id, role="user", content="x"
        )
        assert isinstance(manager, AsyncAssistantStreamManager)
        async with manager as stream:
            names = [event.event async for event in stream]
        assert names[-1] == "thread.run.completed"
        assert _text((await aget_messages(thread_id=thread.id, limit=1)).data[0]) == "streamed async"

        await a_add_message(thread_id=thread.id, role="user", content="stream=True")
        manager = await arun_thread(thread_id=thread.id, assistant_id=assistants[1].id, stream=True)
        assert isinstance(manager, AsyncAssistantStreamManager)
        async with manager as stream:
            await stream.until_done()

        deleted = await adelete_assistant(assistant_id=assistants[2].id)
        assert deleted.deleted and deleted.id == assistants[2].id

    asyncio.run(main("a"))
    asyncio.run(main("b"))  # a second event loop: cached clients are not tied to the first


# --- providers -----------------------------------------------------------------------------


def test_openai_provider_sends_the_key_upstream_and_never_stores_it(
    fake_upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch, kit_db: Path
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake_upstream.url)
    keys = ["sk-kit-secret-0123456789abcdef", "sk-kit-other-fedcba9876543210"]
    assistant = create_assistants(custom_llm_provider="openai", model="gpt-4o-mini", api_key=keys[0])
    thread = create_thread(
        custom_llm_provider="openai", messages=[{"role": "user", "content": "to the upstream"}]
    )
    for key in keys:
        run = run_thread(
            custom_llm_provider="openai", thread_id=thread.id, assistant_id=assistant.id, api_key=key
        )
        assert run.status == "completed", run.last_error
        request = fake_upstream.last_request
        assert request.path == "/v1/chat/completions" and request.body["model"] == "gpt-4o-mini"
        assert request.headers["authorization"] == f"Bearer {key}"
    reply = get_messages(custom_llm_provider="openai", thread_id=thread.id, run_id=run.id).data[0]
    assert _text(reply) == "to the upstream"

    stored = b"".join(p.read_bytes() for p in kit_db.parent.iterdir() if p.name.startswith(kit_db.name))
    assert b"to the upstream" in stored  # the store is really these files
    for key in keys:
        assert key.encode() not in stored


def test_openai_provider_with_api_base_is_a_pass_through(tmp_path: Path) -> None:
    remote_db = tmp_path / "remote.db"
    with serve(create_app(Engine(Store(remote_db)))) as url:
        remote = {"custom_llm_provider": "openai", "api_base": url, "api_key": "sk-remote"}
        assistant = create_assistants(model="test/echo", name="remote", **remote)
        direct = openai.OpenAI(base_url=url, api_key="sk-remote")
        assert [a.id for a in direct.beta.assistants.list().data] == [assistant.id]
        assert get_assistants().data == []  # nothing in the local store

        thread = create_thread(messages=[{"role": "user", "content": "over http"}], **remote)
        assert get_thread(thread_id=thread.id, **remote).id == thread.id
        run = run_thread(thread_id=thread.id, assistant_id=assistant.id, **remote)
        assert run.status == "completed"
        add_message(thread_id=thread.id, role="user", content="streamed over http", **remote)
        with run_thread_stream(thread_id=thread.id, assistant_id=assistant.id, **remote) as stream:
            stream.until_done()
        texts = [_text(m) for m in get_messages(thread_id=thread.id, order="asc", **remote).data]
        assert texts == ["over http", "over http", "streamed over http", "streamed over http"]

        async def main() -> list[str]:
            page = await aget_assistants(**remote)
            async with arun_thread_stream(thread_id=thread.id, assistant_id=assistant.id, **remote) as stream:
                await stream.until_done()
            return [a.name for a in page.data]

        assert asyncio.run(main()) == ["remote"]
        assert asyncio.run(main()) == ["remote"]  # a new loop reuses the cached async client safely
        direct.close()


def test_azure_provider_calls_the_chat_deployment(fake_upstream: FakeUpstream) -> None:
    azure = {
        "custom_llm_provider": "azure",
        "api_key": "azure-key-123",
        "api_base": fake_upstream.endpoint,
        "api_version": "2024-10-21",
    }
    assistant = create_assistants(model="my-gpt4o-deployment", **azure)
    thread = create_thread(messages=[{"role": "user", "content": "via azure"}], **azure)
    run = run_thread(thread_id=thread.id, assistant_id=assistant.id, **azure)
    assert run.status == "completed", run.last_error
    request = fake_upstream.last_request
    assert request.path == "/openai/deployments/my-gpt4o-deployment/chat/completions"
    assert request.query["api-version"] == "2024-10-21"
    assert request.headers["api-key"] == "azure-key-123"
    assert _text(get_messages(thread_id=thread.id, **azure).data[0]) == "via azure"


# --- the seed's documented snippets (docs.litellm.ai/docs/assistants, SDK tab) ---------------

SEED_SNIPPETS = [
    """
import assistant_kit as litellm
import os

# setup env
os.environ["OPENAI_API_KEY"] = "sk-.."

assistant = litellm.create_assistants(
            custom_llm_provider="openai",
            model="gpt-4-turbo",
            instructions="You are a personal math tutor. When asked a question, write and run Python code to answer the question.",
            name="Math Tutor",
            tools=[{"type": "code_interpreter"}],
)

### ASYNC USAGE ###
# assistant = await litellm.acreate_assistants(
#             custom_llm_provider="openai",
#             model="gpt-4-turbo",
#             instructions="You are a personal math tutor. When asked a question, write and run Python code to answer the question.",
#             name="Math Tutor",
#             tools=[{"type": "code_interpreter"}],
# )
""",
    """
from assistant_kit import get_assistants, aget_assistants
import os

# setup env
os.environ["OPENAI_API_KEY"] = "sk-.."

assistants = get_assistants(custom_llm_provider="openai")

### ASYNC USAGE ###
# assistants = await aget_assistants(custom_llm_provider="openai")
""",
    """
from assistant_kit import create_thread, acreate_thread
import os

os.environ["OPENAI_API_KEY"] = "sk-.."

new_thread = create_thread(
            custom_llm_provider="openai",
            messages=[{"role": "user", "content": "Hey, how's it going?"}],  # type: ignore
        )

### ASYNC USAGE ###
# new_thread = await acreate_thread(custom_llm_provider="openai",messages=[{"role": "user", "content": "Hey, how's it going?"}])
""",
    """
from assistant_kit import create_thread, get_thread, aget_thread, add_message, a_add_message
import os

os.environ["OPENAI_API_KEY"] = "sk-.."

## CREATE A THREAD
_new_thread = create_thread(
            custom_llm_provider="openai",
            messages=[{"role": "user", "content": "Hey, how's it going?"}],  # type: ignore
        )

## OR retrieve existing thread
received_thread = get_thread(
            custom_llm_provider="openai",
            thread_id=_new_thread.id,
        )

### ASYNC USAGE ###
# received_thread = await aget_thread(custom_llm_provider="openai", thread_id=_new_thread.id,)

## ADD MESSAGE TO THREAD
message = {"role": "user", "content": "Hey, how's it going?"}
added_message = add_message(
            thread_id=_new_thread.id, custom_llm_provider="openai", **message
        )

### ASYNC USAGE ###
# added_message = await a_add_message(thread_id=_new_thread.id, custom_llm_provider="openai", **message)
""",
    """
from assistant_kit import get_assistants, create_thread, add_message, run_thread, arun_thread
import os

os.environ["OPENAI_API_KEY"] = "sk-.."
assistants = get_assistants(custom_llm_provider="openai")

## get the first assistant ###
assistant_id = assistants.data[0].id

## GET A THREAD
_new_thread = create_thread(
            custom_llm_provider="openai",
            messages=[{"role": "user", "content": "Hey, how's it going?"}],  # type: ignore
        )

## ADD MESSAGE
message = {"role": "user", "content": "Hey, how's it going?"}
added_message = add_message(
            thread_id=_new_thread.id, custom_llm_provider="openai", **message
        )

## 🚨 RUN THREAD
response = run_thread(
            custom_llm_provider="openai", thread_id=thread_id, assistant_id=assistant_id
        )

### ASYNC USAGE ###
# response = await arun_thread(custom_llm_provider="openai", thread_id=thread_id, assistant_id=assistant_id)

print(f"run_thread: {run_thread}")
""",
]

SEED_STREAMING = """
from assistant_kit import run_thread_stream
import os

os.environ["OPENAI_API_KEY"] = "sk-.."

message = {"role": "user", "content": "Hey, how's it going?"}

data = {"custom_llm_provider": "openai", "thread_id": _new_thread.id, "assistant_id": assistant_id, **message}

run = run_thread_stream(**data)
with run as run:
    assert isinstance(run, AssistantEventHandler)
    for chunk in run:
      print(f"chunk: {chunk}")
    run.until_done()
"""


def _run_seed(namespace: dict[str, Any]) -> None:
    """Run the sync snippets in one namespace, as consecutive notebook cells.

    Two names the seed's snippets use without defining are supplied, as an earlier cell
    would: ``thread_id`` (the "Run" snippet's thread; we use the "Add Messages" snippet's)
    and ``AssistantEventHandler`` (the streaming snippet's ``isinstance`` check)."""
    namespace.setdefault("AssistantEventHandler", AssistantEventHandler)
    for snippet in SEED_SNIPPETS:
        if "thread_id=thread_id" in snippet:
            namespace["thread_id"] = namespace["_new_thread"].id
        exec(compile(snippet, "<seed>", "exec"), namespace)


@pytest.fixture
def seed_env(fake_upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> FakeUpstream:
    # The snippets assign os.environ themselves; setting it here first makes monkeypatch
    # restore it afterwards. OPENAI_BASE_URL sends "gpt-4-turbo" to the fake upstream.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_upstream.url)
    return fake_upstream


def test_seed_snippets_run_with_only_the_import_changed(
    seed_env: FakeUpstream, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace: dict[str, Any] = {}
    _run_seed(namespace)
    assert namespace["assistant"].name == "Math Tutor"
    assert namespace["assistants"].data[0].id == namespace["assistant"].id
    assert namespace["received_thread"].id == namespace["thread_id"]
    assert _text(namespace["added_message"]) == "Hey, how's it going?"
    assert namespace["response"].status == "completed", namespace["response"].last_error

    exec(compile(SEED_STREAMING, "<seed>", "exec"), namespace)
    out = capsys.readouterr().out
    assert "run_thread: <function run_thread" in out
    assert "chunk: " in out and "thread.run.completed" in out
    replies = get_messages(thread_id=namespace["_new_thread"].id, run_id=None).data
    assert replies[0].role == "assistant" and _text(replies[0]) == "Hey, how's it going?"
    assert seed_env.requests and all(r.body["model"] == "gpt-4-turbo" for r in seed_env.requests)
    assert all(r.headers["authorization"] == "Bearer sk-.." for r in seed_env.requests)


def _async_usage(snippet: str) -> list[str]:
    """The commented-out ``### ASYNC USAGE ###`` statements of a snippet, uncommented."""
    lines: list[str] = []
    for block in re.findall(r"### ASYNC USAGE ###\n((?:#.*\n)+)", snippet):
        lines += [line[2:] for line in block.splitlines()]
    return lines


def test_seed_async_usage_runs_uncommented(seed_env: FakeUpstream) -> None:
    namespace: dict[str, Any] = {}
    _run_seed(namespace)
    body = [line for snippet in SEED_SNIPPETS for line in _async_usage(snippet)]
    assert sum("await" in line for line in body) == 6
    source = "async def seed_async():\n" + "".join(f"    {line}\n" for line in body) + "    return locals()\n"
    exec(compile(source, "<seed-async>", "exec"), namespace)
    result = asyncio.run(namespace["seed_async"]())
    assert result["assistant"].name == "Math Tutor"
    assert isinstance(result["assistants"], openai.pagination.AsyncCursorPage)
    assert len(result["assistants"].data) == 2
    assert result["new_thread"].id != namespace["new_thread"].id
    assert _text(result["added_message"]) == "Hey, how's it going?"
    assert result["received_thread"].id == namespace["_new_thread"].id
    assert result["response"].status == "completed", result["response"].last_error
