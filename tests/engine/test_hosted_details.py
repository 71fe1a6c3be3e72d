"""Objects read as the hosted API's did, where code written for it looks (issue 14): nested
unknown keys refused by path, the defaults it filled in, ``expires_at`` of ended runs, the
spelling of file ids. Through the official SDK, both transports."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import openai
import pytest

FUNCTION = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}


def _refused(call: Any, path: str) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        call()
    assert err.value.status_code == 400
    assert err.value.body["message"] == f"Unknown parameter: '{path}'."
    assert err.value.body["param"] == path and err.value.body["type"] == "invalid_request_error"


def _thread_ids(client: openai.OpenAI) -> list[str]:
    """Every thread, by the kit's extension route ``GET /threads`` (the hosted API had none)."""
    body = client.get("/threads", cast_to=object, options={"params": {"limit": 100}})
    return [t["id"] for t in body["data"]]  # type: ignore[index]


def test_nested_unknown_keys_are_refused_by_path_and_nothing_is_stored(client: openai.OpenAI) -> None:
    data = client.files.create(file=("data.csv", b"a,b\n1,2\n"), purpose="assistants")
    assistant = client.beta.assistants.create(model="test/echo")
    thread = client.beta.threads.create()
    v1_message = {"role": "user", "content": "with files, v1 style", "file_ids": [data.id]}
    _refused(lambda: client.beta.threads.create(messages=[v1_message]), "messages[0].file_ids")
    _refused(
        lambda: client.beta.threads.create(
            messages=[{"role": "user", "content": "ok"}, {"role": "user", "content": "x", "bogus": 1}]
        ),
        "messages[1].bogus",
    )
    _refused(
        lambda: client.beta.threads.runs.create(
            thread_id=thread.id, assistant_id=assistant.id, additional_messages=[v1_message]
        ),
        "additional_messages[0].file_ids",
    )
    _refused(
        lambda: client.beta.threads.create_and_run(
            assistant_id=assistant.id, thread={"messages": [v1_message]}
        ),
        "thread.messages[0].file_ids",
    )
    _refused(
        lambda: client.beta.threads.create_and_run(assistant_id=assistant.id, thread={"bogus": True}),
        "thread.bogus",
    )
    # Any other nested object: tools, tool resources, attachments and their tools, content parts.
    _refused(
        lambda: client.beta.assistants.create(
            model="test/echo", tools=[{"type": "function", "function": {"name": "f", "bogus": 1}}]
        ),
        "tools[0].function.bogus",
    )
    _refused(
        lambda: client.beta.assistants.create(
            model="test/echo", tools=[{"type": "code_interpreter"}, {"type": "file_search", "x": 1}]
        ),
        "tools[1].x",
    )
    _refused(
        lambda: client.beta.assistants.update(
            assistant.id, tool_resources={"code_interpreter": {"file_ids": [data.id], "files": []}}
        ),
        "tool_resources.code_interpreter.files",
    )
    _refused(
        lambda: client.beta.threads.messages.create(
            thread.id,
            role="user",
            content="x",
            attachments=[{"file_id": data.id, "tools": [{"type": "code_interpreter", "y": 2}]}],
        ),
        "attachments[0].tools[0].y",
    )
    _refused(
        lambda: client.beta.threads.messages.create(
            thread.id, role="user", content=[{"type": "text", "text": "hi", "annotations": []}]
        ),
        "content[0].annotations",
    )
    _refused(
        lambda: client.beta.threads.runs.create(
            thread_id=thread.id,
            assistant_id=assistant.id,
            truncation_strategy={"type": "auto", "max_messages": 3},
        ),
        "truncation_strategy.max_messages",
    )
    # Nothing of any refused request was stored.
    assert _thread_ids(client) == [thread.id]
    assert client.beta.threads.messages.list(thread.id).data == []
    assert client.beta.threads.runs.list(thread.id).data == []
    got = client.beta.assistants.retrieve(assistant.id)
    assert got.tools == [] and got.tool_resources is not None
    assert got.tool_resources.code_interpreter is None
    assert [a.id for a in client.beta.assistants.list()] == [assistant.id]


def test_free_form_objects_keep_taking_any_key(client: openai.OpenAI) -> None:
    """Only declared objects are closed: metadata, a function's JSON schema and a response
    format's schema are the caller's own."""
    tool = {
        "type": "function",
        "function": {
            "name": "f",
            "parameters": {"type": "object", "properties": {"x": {"type": "string"}}, "x-note": 1},
        },
    }
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "out", "schema": {"type": "object", "additionalProperties": False}},
    }
    assistant = client.beta.assistants.create(
        model="test/echo", tools=[tool], metadata={"any key": "v"}, response_format=response_format
    )
    assert assistant.tools[0].function.parameters["x-note"] == 1  # type: ignore[union-attr,index]
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "hi", "metadata": {"free": "yes"}}]
    )
    assert client.beta.threads.messages.list(thread.id).data[0].metadata == {"free": "yes"}


def _raw(response: Any) -> dict[str, Any]:
    return response.http_response.json()  # type: ignore[no-any-return]


def test_defaults_filled_in_on_create_and_retrieve(client: openai.OpenAI) -> None:
    raw = _raw(
        client.beta.assistants.with_raw_response.create(
            model="test/echo", tools=[{"type": "file_search"}, FUNCTION, {"type": "code_interpreter"}]
        )
    )
    ranking = {"ranker": "default_2024_08_21", "score_threshold": 0.0}
    assert raw["tools"] == [
        {"type": "file_search", "file_search": {"ranking_options": ranking}},
        {
            "type": "function",
            "function": {**FUNCTION["function"], "description": None, "strict": False},
        },
        {"type": "code_interpreter"},
    ]
    assert (raw["temperature"], raw["top_p"], raw["tool_resources"]) == (1.0, 1.0, {})
    for assistant in (
        client.beta.assistants.retrieve(raw["id"]),
        client.beta.assistants.list().data[0],
    ):
        file_search, function, _ = assistant.tools
        assert file_search.type == "file_search" and file_search.file_search is not None
        options = file_search.file_search.ranking_options
        assert options is not None and (options.ranker, options.score_threshold) == (
            "default_2024_08_21",
            0.0,
        )
        assert function.type == "function" and function.function.strict is False
        assert (assistant.temperature, assistant.top_p) == (1.0, 1.0)
        assert (
            assistant.tool_resources is not None
            and assistant.tool_resources.model_dump(exclude_unset=True) == {}
        )
    # Given values are kept; a partial file_search object gets the rest of the defaults.
    custom = client.beta.assistants.update(
        raw["id"],
        temperature=0.2,
        tools=[{"type": "file_search", "file_search": {"max_num_results": 5}}],
    )
    assert custom.temperature == 0.2 and custom.top_p == 1.0
    options = custom.tools[0].file_search  # type: ignore[union-attr]
    assert options is not None and options.max_num_results == 5
    assert options.ranking_options is not None and options.ranking_options.score_threshold == 0.0

    thread = _raw(client.beta.threads.with_raw_response.create())
    assert thread["tool_resources"] == {}
    assert client.beta.threads.retrieve(thread["id"]).tool_resources is not None

    plain = client.beta.assistants.create(model="test/echo", tools=[FUNCTION])
    run = client.beta.threads.runs.create(thread_id=thread["id"], assistant_id=plain.id)
    assert (run.temperature, run.top_p) == (1.0, 1.0)
    assert run.tools[0].function.strict is False  # type: ignore[union-attr]
    tuned = client.beta.assistants.create(model="test/echo", temperature=0.5)
    client.beta.threads.runs.poll(run.id, thread_id=thread["id"], poll_interval_ms=20)
    run = client.beta.threads.runs.create(thread_id=thread["id"], assistant_id=tuned.id, top_p=0.9)
    assert (run.temperature, run.top_p) == (0.5, 0.9)  # the assistant's, the run's own
    client.beta.threads.runs.poll(run.id, thread_id=thread["id"], poll_interval_ms=20)


def test_expires_at_is_null_once_a_run_has_ended(client: openai.OpenAI) -> None:
    echo = client.beta.assistants.create(model="test/echo")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=echo.id)
    assert run.status == "queued" and run.expires_at is not None and run.expires_at > time.time()
    done = client.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=20)
    assert done.status == "completed" and done.expires_at is None
    assert client.beta.threads.runs.list(thread.id).data[0].expires_at is None

    tools = client.beta.assistants.create(model="test/tools", tools=[FUNCTION])
    client.beta.threads.messages.create(thread.id, role="user", content="Weather?")
    waiting = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=tools.id, poll_interval_ms=20
    )
    assert waiting.status == "requires_action" and waiting.expires_at is not None  # still may expire
    client.beta.threads.runs.cancel(waiting.id, thread_id=thread.id)
    cancelled = client.beta.threads.runs.retrieve(waiting.id, thread_id=thread.id)
    assert cancelled.status == "cancelled" and cancelled.expires_at is None


def test_file_ids_are_spelled_as_the_hosted_api_did(client: openai.OpenAI) -> None:
    made = client.files.create(file=("a.txt", b"a"), purpose="assistants")
    assert made.id.startswith("file-") and "_" not in made.id
    assistant = client.beta.assistants.create(model="test/echo")
    assert assistant.id.startswith("asst_")  # the other objects keep their underscore


def test_files_of_an_older_store_stay_readable(tmp_path: Path) -> None:
    """A database written before file ids were ``file-…`` keeps its ``file_…`` ids: retrieve,
    download and reference them as before; they list in time order among the new ones."""
    from openai.types import FileObject

    from assistant_kit import local_client
    from assistant_kit._ids import new_id, now
    from assistant_kit.engine.shapes import build
    from assistant_kit.store import Store

    db = tmp_path / "old.db"
    store = Store(db)
    legacy = "file_" + new_id("file")[len("file-") :]
    obj = build(
        FileObject,
        id=legacy,
        object="file",
        bytes=3,
        created_at=now(),
        filename="old.csv",
        purpose="assistants",
        status="processed",
    )
    store.insert_file(obj, b"1,2")
    store.close()

    client = local_client(db)
    new = client.files.create(file=("new.csv", b"3,4"), purpose="assistants")
    assert client.files.retrieve(legacy).filename == "old.csv"
    assert client.files.content(legacy).content == b"1,2"
    assert [f.id for f in client.files.list()] == [new.id, legacy]  # newest first
    assert [f.id for f in client.files.list(order="asc")] == [legacy, new.id]
    assert [f.id for f in client.files.list(after=new.id)] == [legacy]
    assert [f.id for f in client.files.list(order="asc", after=legacy)] == [new.id]
    assistant = client.beta.assistants.create(
        model="test/echo", tool_resources={"code_interpreter": {"file_ids": [legacy, new.id]}}
    )
    assert assistant.tool_resources.code_interpreter.file_ids == [legacy, new.id]  # type: ignore[union-attr]
