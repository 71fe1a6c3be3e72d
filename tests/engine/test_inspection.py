"""The inspector's routes through the official SDK (``client.get(path, cast_to=object)``),
in-process and over HTTP: millisecond timings that agree with the wire's seconds, an end for
every terminal state, the exact prompt of each model turn (truncated as sent, instructions as
merged, capped, switchable off, never a credential), and runs and steps across the store."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.beta.threads import Run
from openai.types.beta.threads.runs import RunStep

from assistant_kit.tools.code_interpreter import CodeInterpreterSettings
from tests.conftest import wait_for
from tests.engine.test_runs import TOOLS

RUN_KEYS = ("created_at_ms", "started_at_ms", "first_token_at_ms", "ended_at_ms")


def inspect(client: openai.OpenAI, thread_id: str, run_id: str) -> dict[str, Any]:
    body = client.get(f"/threads/{thread_id}/runs/{run_id}/inspection", cast_to=object)
    assert isinstance(body, dict)
    return body


def across(client: openai.OpenAI, path: str, **params: Any) -> dict[str, Any]:
    body = client.get(path, cast_to=object, options={"params": params})
    assert isinstance(body, dict)
    return body


def _setup(
    client: openai.OpenAI, model: str = "test/echo", text: str = "hello there", **assistant: Any
) -> Any:
    a = client.beta.assistants.create(model=model, **assistant)
    t = client.beta.threads.create(messages=[{"role": "user", "content": text}])
    return a, t


def _second(ms: int | None) -> int | None:
    return None if ms is None else ms // 1000


def assert_ordered(*values: int | None) -> None:
    known = [v for v in values if v is not None]
    assert known == sorted(known), values


def test_streamed_run_has_millisecond_timings_within_its_seconds(client: openai.OpenAI) -> None:
    a, t = _setup(client)
    with client.beta.threads.runs.stream(thread_id=t.id, assistant_id=a.id) as stream:
        stream.until_done()
    run = stream.get_final_run()
    assert run.status == "completed"
    body = inspect(client, t.id, run.id)
    assert body["object"] == "assistant_kit.run_inspection"
    assert (body["run_id"], body["thread_id"], body["record_prompts"]) == (run.id, t.id, True)
    timings = body["timings"]
    assert set(timings) == set(RUN_KEYS) and all(isinstance(timings[k], int) for k in RUN_KEYS)
    assert_ordered(*(timings[k] for k in RUN_KEYS))
    assert _second(timings["created_at_ms"]) == run.created_at
    assert _second(timings["started_at_ms"]) == run.started_at
    assert _second(timings["ended_at_ms"]) == run.completed_at
    (step,) = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=t.id).data
    (timed,) = body["steps"]
    assert (timed["step_id"], timed["type"], timed["tool_ms"]) == (step.id, "message_creation", None)
    assert_ordered(
        timings["started_at_ms"],
        timed["created_at_ms"],
        timed["first_token_at_ms"],
        timed["ended_at_ms"],
        timings["ended_at_ms"],
    )
    assert _second(timed["created_at_ms"]) == step.created_at
    assert _second(timed["ended_at_ms"]) == step.completed_at
    assert timings["first_token_at_ms"] == timed["first_token_at_ms"]
    (prompt,) = body["prompts"]
    assert prompt["turn"] == 0 and prompt["step_ids"] == [step.id] and prompt["model"] == "test/echo"
    assert prompt["request"]["messages"] == [{"role": "user", "content": "hello there"}]
    assert set(prompt["request"]) == {
        "messages",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "temperature",
        "top_p",
        "max_tokens",
    }
    assert prompt["truncated"] is False and prompt["bytes"] > 0
    assert timings["started_at_ms"] <= prompt["created_at_ms"] <= timed["created_at_ms"]


def test_the_route_is_served_with_and_without_v1(client: openai.OpenAI) -> None:
    a, t = _setup(client)
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    root = client.with_options(base_url=str(client.base_url).rstrip("/").removesuffix("/v1"))
    assert inspect(root, t.id, run.id) == inspect(client, t.id, run.id)
    assert across(root, "/runs")["data"] == across(client, "/runs")["data"]
    with pytest.raises(openai.NotFoundError):
        inspect(client, t.id, "run_missing")
    other = client.beta.threads.create()
    with pytest.raises(openai.NotFoundError):
        inspect(client, other.id, run.id)  # a run is inspected under its own thread


def test_tool_rounds_record_each_turn_with_its_steps(client: openai.OpenAI) -> None:
    a, t = _setup(client, "test/tools", tools=TOOLS[:1], instructions="Use tools.")
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "requires_action"
    waiting = inspect(client, t.id, run.id)
    assert waiting["timings"]["ended_at_ms"] is None  # not over yet
    call = run.required_action.submit_tool_outputs.tool_calls[0]
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=t.id, run_id=run.id, tool_outputs=[{"tool_call_id": call.id, "output": "forty-two"}]
    )
    assert run.status == "completed"
    body = inspect(client, t.id, run.id)
    steps = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=t.id, order="asc").data
    assert [s["step_id"] for s in body["steps"]] == [s.id for s in steps]
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    tool_step = body["steps"][0]
    assert tool_step["tool_ms"] is None  # a function call: the client's time, not a built-in tool's
    assert _second(tool_step["ended_at_ms"]) == steps[0].completed_at
    assert [p["turn"] for p in body["prompts"]] == [0, 1]
    assert [p["step_ids"] for p in body["prompts"]] == [[steps[0].id], [steps[1].id]]
    first, second = (p["request"] for p in body["prompts"])
    assert first["messages"][0] == {"role": "system", "content": "Use tools."}
    (offered,) = first["tools"]
    assert offered["type"] == "function" and offered["function"]["name"] == "alpha"
    assert offered["function"]["parameters"] == TOOLS[0]["function"]["parameters"]
    tool_message = second["messages"][-1]
    assert tool_message == {"role": "tool", "tool_call_id": call.id, "content": "forty-two"}
    assert second["messages"][-2]["tool_calls"][0]["id"] == call.id
    assert_ordered(
        body["timings"]["first_token_at_ms"],
        tool_step["ended_at_ms"],
        body["steps"][1]["created_at_ms"],
        body["timings"]["ended_at_ms"],
    )


def test_truncated_context_and_merged_instructions_are_what_is_recorded(client: openai.OpenAI) -> None:
    a = client.beta.assistants.create(model="test/echo", instructions="Base.")
    words = [f"message{i} " + "word " * 99 for i in range(8)]
    t = client.beta.threads.create(messages=[{"role": "user", "content": w} for w in words])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=t.id,
        assistant_id=a.id,
        additional_instructions="Be brief.",
        truncation_strategy={"type": "last_messages", "last_messages": 5},
        max_prompt_tokens=256,  # 100 tokens a message (test/echo counts words): the newest two fit
    )
    assert run.status == "completed"
    (prompt,) = inspect(client, t.id, run.id)["prompts"]
    messages = prompt["request"]["messages"]
    assert messages[0] == {"role": "system", "content": "Base.\n\nBe brief."}
    sent = [m["content"] for m in messages[1:]]
    assert sent == words[-2:]  # the newest, fewer than last_messages
    assert prompt["truncated"] is False  # truncation is the run's; the record is whole


def test_code_interpreter_time_is_the_steps_tool_ms(make_client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ASSISTANT_KIT_CODE_IDLE_SECONDS", "20")
    client = make_client(code_interpreter=CodeInterpreterSettings.local())
    a, t = _setup(
        client,
        "test/tools",
        text="Run this.\n```python\nimport time\ntime.sleep(0.3)\nprint('slept')\n```\n",
        tools=[{"type": "code_interpreter"}],
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "completed", run.last_error
    body = inspect(client, t.id, run.id)
    code_step, answer = body["steps"]
    assert code_step["type"] == "tool_calls" and code_step["tool_ms"] >= 300
    assert code_step["tool_ms"] <= code_step["ended_at_ms"] - code_step["created_at_ms"]
    assert answer["tool_ms"] is None


def test_every_terminal_state_has_an_end(make_client, fake_upstream) -> None:  # type: ignore[no-untyped-def]
    client = make_client(api_key="sk-x", api_base=fake_upstream.url, max_retries=0, run_expiry_seconds=3)
    echo = client.beta.assistants.create(model="test/echo")
    ended: dict[str, Any] = {}
    # incomplete (max_completion_tokens): no wire timestamp says when it ended
    t = client.beta.threads.create(messages=[{"role": "user", "content": " ".join(["w"] * 300)}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=t.id, assistant_id=echo.id, max_completion_tokens=256
    )
    ended["incomplete"] = (t.id, run)
    # incomplete before any turn (max_prompt_tokens): never started a model turn
    t = client.beta.threads.create(messages=[{"role": "user", "content": "w " * 2000}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=t.id, assistant_id=echo.id, max_prompt_tokens=256
    )
    ended["incomplete_prompt"] = (t.id, run)
    # failed: the model server answers 500
    upstream = client.beta.assistants.create(model="openai/m")
    fake_upstream.reply_error(500)
    t = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=upstream.id)
    ended["failed"] = (t.id, run)
    # cancelled mid-answer
    fake_upstream.reply_text(["slow "] * 200, delay=0.02)
    t = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create(thread_id=t.id, assistant_id=upstream.id)
    wait_for(lambda: client.beta.threads.messages.list(t.id).data[0].role == "assistant")
    client.beta.threads.runs.cancel(run.id, thread_id=t.id)
    ended["cancelled"] = (t.id, client.beta.threads.runs.poll(run.id, thread_id=t.id))
    # expired while waiting for tool outputs (settled without a task)
    tools = client.beta.assistants.create(model="test/tools", tools=TOOLS[:1])
    t = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=tools.id)
    assert run.status == "requires_action"
    expired = wait_for(
        lambda: (r := client.beta.threads.runs.retrieve(run.id, thread_id=t.id)).status == "expired" and r, 8
    )
    ended["expired"] = (t.id, expired)

    statuses = {name: run.status for name, (_, run) in ended.items()}
    assert statuses == {
        "incomplete": "incomplete",
        "incomplete_prompt": "incomplete",
        "failed": "failed",
        "cancelled": "cancelled",
        "expired": "expired",
    }
    for name, (thread_id, run) in ended.items():
        body = inspect(client, thread_id, run.id)
        timings = body["timings"]
        assert timings["ended_at_ms"] is not None, name
        assert_ordered(*(timings[k] for k in RUN_KEYS))
        wire = run.failed_at or run.cancelled_at
        if wire is not None:
            assert _second(timings["ended_at_ms"]) == wire, name
        for step in body["steps"]:
            assert step["ended_at_ms"] is not None and step["ended_at_ms"] <= timings["ended_at_ms"], name
    assert inspect(client, *_ids(ended["incomplete_prompt"]))["prompts"] == []  # no turn was sent
    assert inspect(client, *_ids(ended["failed"]))["timings"]["first_token_at_ms"] is None  # none came
    assert len(inspect(client, *_ids(ended["failed"]))["prompts"]) == 1  # what it sent is kept
    assert inspect(client, *_ids(ended["cancelled"]))["timings"]["first_token_at_ms"] is not None


def _ids(entry: tuple[str, Any]) -> tuple[str, str]:
    return entry[0], entry[1].id


def test_a_turn_cut_short_links_its_prompt_to_the_steps_it_opened(make_client, fake_upstream) -> None:  # type: ignore[no-untyped-def]
    """A model turn cancelled mid-answer, cancelled mid-tool-call or failed mid-stream still
    names the steps it opened in its recorded prompt: the prompt fold links the turn to the
    partial message (or the cut tool round) it produced."""
    client = make_client(api_key="sk-x", api_base=fake_upstream.url, max_retries=0)
    assistant = client.beta.assistants.create(model="openai/m", tools=TOOLS[:1])
    ended = {}
    # cancelled while the answer streams
    fake_upstream.reply_text(["slow "] * 300, delay=0.02)
    t = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create(thread_id=t.id, assistant_id=assistant.id)
    wait_for(lambda: client.beta.threads.messages.list(t.id).data[0].role == "assistant")
    client.beta.threads.runs.cancel(run.id, thread_id=t.id)
    ended["text"] = (t.id, client.beta.threads.runs.poll(run.id, thread_id=t.id))
    # cancelled while a tool call's arguments stream
    fake_upstream.reply_tool_calls([("alpha", {"x": "y " * 300})], delay=0.02)
    t = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create(thread_id=t.id, assistant_id=assistant.id)
    wait_for(lambda: client.beta.threads.runs.steps.list(run_id=run.id, thread_id=t.id).data)
    client.beta.threads.runs.cancel(run.id, thread_id=t.id)
    ended["tool"] = (t.id, client.beta.threads.runs.poll(run.id, thread_id=t.id))
    # failed: the model server breaks off mid-answer
    fake_upstream.reply_stream_error(after=3)
    t = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=assistant.id)
    ended["failed"] = (t.id, run)

    statuses = {name: run.status for name, (_, run) in ended.items()}
    assert statuses == {"text": "cancelled", "tool": "cancelled", "failed": "failed"}
    for name, (thread_id, run) in ended.items():
        steps = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread_id).data
        assert [s.type for s in steps] == ["tool_calls" if name == "tool" else "message_creation"], name
        (prompt,) = inspect(client, thread_id, run.id)["prompts"]
        assert prompt["step_ids"] == [steps[0].id], name
        assert steps[0].status == run.status, name


def test_no_credential_is_recorded(make_client, fake_upstream, transport: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    secret = "sk-inspect-secret-4711"
    client = make_client(api_key=secret, api_base=fake_upstream.url)
    a, t = _setup(client, "openai/m", tools=TOOLS[:1], instructions="Answer.")
    fake_upstream.reply_text("fine")
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "completed"
    assert fake_upstream.last_request.headers["authorization"] == f"Bearer {secret}"  # it was used
    body = inspect(client, t.id, run.id)
    assert body["prompts"] and secret not in json.dumps(body)
    for path in ("/runs", "/runs/steps"):
        assert secret not in json.dumps(across(client, path))
    (db,) = tmp_path.glob("kit*.db")
    with sqlite3.connect(db) as conn:
        stored = [row[0] for row in conn.execute("SELECT request FROM run_prompts")]
    assert stored and all(secret not in request for request in stored)
    client.beta.threads.delete(t.id)  # the prompts go with their thread
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM run_prompts").fetchone() == (0,)


def test_recording_off_keeps_no_prompt(make_client, monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ASSISTANT_KIT_RECORD_PROMPTS", "0")
    client = make_client()
    a, t = _setup(client)
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    body = inspect(client, t.id, run.id)
    assert body["record_prompts"] is False and body["prompts"] == []
    assert body["timings"]["ended_at_ms"] is not None  # timings are kept either way
    (db,) = tmp_path.glob("kit*.db")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM run_prompts").fetchone() == (0,)


def test_a_large_request_is_capped_from_the_oldest_message(make_client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ASSISTANT_KIT_PROMPT_RECORD_MAX_BYTES", "4096")
    client = make_client()
    a = client.beta.assistants.create(model="test/echo", instructions="Keep me.")
    t = client.beta.threads.create(
        messages=[
            {"role": "user", "content": "old " * 2000},
            {"role": "user", "content": "older-but-newer " * 100},
            {"role": "user", "content": "newest question"},
        ]
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    (prompt,) = inspect(client, t.id, run.id)["prompts"]
    assert prompt["truncated"] is True and prompt["bytes"] <= 4096
    assert prompt["bytes"] == len(json.dumps(prompt["request"], ensure_ascii=False).encode())
    system, oldest, middle, newest = prompt["request"]["messages"]
    assert system == {"role": "system", "content": "Keep me."}
    assert oldest["content"].startswith("old old") and "bytes not recorded]" in oldest["content"]
    assert len(oldest["content"]) < len("old " * 2000) - 4000  # cut by what was over, no more
    assert middle["content"] == "older-but-newer " * 100  # cut from the oldest: enough was cut there
    assert newest["content"] == "newest question"


def test_runs_across_the_store_page_and_filter(client: openai.OpenAI) -> None:
    echo = client.beta.assistants.create(model="test/echo")
    tools = client.beta.assistants.create(model="test/tools", tools=TOOLS[:1])
    made = []
    for i in range(3):
        t = client.beta.threads.create(messages=[{"role": "user", "content": f"q{i}"}])
        made.append(client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=echo.id))
    t = client.beta.threads.create(messages=[{"role": "user", "content": "call"}])
    waiting = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=tools.id)
    assert waiting.status == "requires_action"

    everything = across(client, "/runs", limit=100)
    assert [r["id"] for r in everything["data"]] == [waiting.id, *[r.id for r in reversed(made)]]
    for item in everything["data"]:
        Run.model_validate(item)  # the wire Run, with an extra key
        assert set(item["timings"]) == set(RUN_KEYS)
    first = across(client, "/runs", limit=2)
    assert first["has_more"] is True and first["first_id"] == waiting.id
    rest = across(client, "/runs", limit=2, after=first["last_id"])
    assert [r["id"] for r in rest["data"]] == [made[1].id, made[0].id] and rest["has_more"] is False
    back = across(client, "/runs", limit=2, before=rest["first_id"])
    assert [r["id"] for r in back["data"]] == [r["id"] for r in first["data"]]
    oldest_first = across(client, "/runs", order="asc", limit=1)
    assert oldest_first["data"][0]["id"] == made[0].id

    def ids(**params: Any) -> list[str]:
        return [r["id"] for r in across(client, "/runs", limit=100, **params)["data"]]

    assert ids(status="requires_action") == [waiting.id]
    assert set(ids(status="completed,requires_action")) == {waiting.id, *(r.id for r in made)}
    assert ids(assistant_id=tools.id) == [waiting.id]
    assert ids(model="test/echo") == [r.id for r in reversed(made)]
    assert ids(thread_id=made[1].thread_id) == [made[1].id]
    assert ids(created_before=made[0].created_at) == []
    assert set(ids(created_after=made[0].created_at)) == {waiting.id, *(r.id for r in made)}
    assert ids(status="failed") == []

    steps = across(client, "/runs/steps", limit=100)
    assert len(steps["data"]) == 4
    for item in steps["data"]:
        RunStep.model_validate(item)
        assert set(item["timings"]) == {"created_at_ms", "first_token_at_ms", "ended_at_ms", "tool_ms"}
    calls = across(client, "/runs/steps", type="tool_calls")["data"]
    assert [(s["run_id"], s["status"]) for s in calls] == [(waiting.id, "in_progress")]
    assert across(client, "/runs/steps", run_id=made[2].id)["data"][0]["run_id"] == made[2].id
    assert len(across(client, "/runs/steps", model="test/echo", status="completed")["data"]) == 3
    assert across(client, "/runs/steps", model="test/tools", type="message_creation")["data"] == []


@pytest.mark.parametrize(
    ("path", "params", "param"),
    [
        ("/runs", {"status": "done"}, "status"),
        ("/runs", {"status": ","}, "status"),
        ("/runs", {"created_after": "yesterday"}, "created_after"),
        ("/runs", {"created_before": "1.5"}, "created_before"),
        ("/runs", {"type": "tool_calls"}, "type"),  # a filter of steps, not of runs
        ("/runs", {"limit": "0"}, "limit"),
        ("/runs", {"order": "up"}, "order"),
        ("/runs", {"thread_id": "a\x00b"}, "thread_id"),
        ("/runs/steps", {"type": "message"}, "type"),
        ("/runs/steps", {"status": "requires_action"}, "status"),  # a run's status, not a step's
        ("/runs/steps", {"colour": "red"}, "colour"),
    ],
)
def test_bad_filters_are_400_naming_the_parameter(
    client: openai.OpenAI, path: str, params: dict[str, str], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        across(client, path, **params)
    assert err.value.param == param


def _not_found(client: openai.OpenAI, path: str, **params: Any) -> dict[str, Any]:
    with pytest.raises(openai.NotFoundError) as err:
        across(client, path, **params)
    return err.value.body  # type: ignore[return-value]


def test_an_unknown_thread_or_run_filter_is_404_naming_it(client: openai.OpenAI) -> None:
    """As the wire's per-thread listings answer: a ``thread_id``/``run_id`` naming nothing is a
    404 naming the parameter, not an empty page; a known thread without runs is an empty page."""
    a, t = _setup(client)
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    empty = client.beta.threads.create()
    for path in ("/runs", "/runs/steps"):
        body = _not_found(client, path, thread_id="thread_nope")
        assert body["param"] == "thread_id" and body["message"] == "No thread found with id 'thread_nope'."
        assert body["type"] == "invalid_request_error"
        assert across(client, path, thread_id=empty.id)["data"] == []
    body = _not_found(client, "/runs/steps", run_id="run_nope")
    assert body["param"] == "run_id" and body["message"] == "No run found with id 'run_nope'."
    # a run of another thread than the one named: as /threads/{thread_id}/runs/{run_id}/steps
    assert _not_found(client, "/runs/steps", thread_id=empty.id, run_id=run.id)["param"] == "run_id"
    assert _not_found(client, "/runs/steps", thread_id="thread_nope", run_id=run.id)["param"] == "thread_id"
    assert len(across(client, "/runs/steps", thread_id=t.id, run_id=run.id)["data"]) == 1


def test_another_keys_thread_or_run_is_404(tmp_path: Path) -> None:
    """In-process, two owners on one engine (the scope an authenticating server sets): Bob
    naming Alice's thread or run gets the 404 an unknown id gets."""
    from assistant_kit.client import provider_settings
    from assistant_kit.runtime import app_for, engine_loop
    from assistant_kit.transport import InProcessTransport

    db = tmp_path / "owners.db"

    def as_owner(owner: str) -> openai.OpenAI:
        scope = {"assistant_kit.owner": owner, "assistant_kit.settings": provider_settings()}
        http = openai.DefaultHttpxClient(transport=InProcessTransport(app_for(db), engine_loop(), scope))
        return openai.OpenAI(
            api_key="sk-x", base_url="http://assistant-kit.local/v1", max_retries=0, http_client=http
        )

    alice, bob = as_owner("alice"), as_owner("bob")
    a, t = _setup(alice)
    run = alice.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert [r["id"] for r in across(alice, "/runs", thread_id=t.id)["data"]] == [run.id]
    assert len(across(alice, "/runs/steps", run_id=run.id)["data"]) == 1
    assert _not_found(bob, "/runs", thread_id=t.id)["param"] == "thread_id"
    assert _not_found(bob, "/runs/steps", thread_id=t.id)["param"] == "thread_id"
    assert _not_found(bob, "/runs/steps", run_id=run.id)["param"] == "run_id"


def test_on_postgresql_across_two_replicas(pg_url: str) -> None:
    """One run executed by two processes (B takes it over with the tool outputs): its turns are
    numbered across them, each process stamps what it executed, and either one reads it all."""
    from tests.engine.test_replicas import replicas

    with replicas(pg_url) as (a, b):
        assistant = a.client.beta.assistants.create(model="test/tools", tools=TOOLS[:1])
        thread = a.client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        with a.client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
            stream.until_done()
        run = stream.get_final_run()
        assert run.status == "requires_action"
        call = run.required_action.submit_tool_outputs.tool_calls[0]
        run = b.client.beta.threads.runs.submit_tool_outputs_and_poll(
            thread_id=thread.id, run_id=run.id, tool_outputs=[{"tool_call_id": call.id, "output": "ok"}]
        )
        assert run.status == "completed"
        seen = [inspect(client, thread.id, run.id) for client in (a.client, b.client)]
        assert seen[0] == seen[1]
        body = seen[0]
        assert [p["turn"] for p in body["prompts"]] == [0, 1]
        assert all(len(p["step_ids"]) == 1 for p in body["prompts"])
        timings = body["timings"]
        assert_ordered(*(timings[k] for k in RUN_KEYS))
        assert None not in timings.values()
        assert _second(timings["ended_at_ms"]) == run.completed_at
        for step in body["steps"]:
            assert None not in (step["created_at_ms"], step["first_token_at_ms"], step["ended_at_ms"])
        listed = across(b.client, "/runs", status="completed", model="test/tools")["data"]
        assert [r["id"] for r in listed] == [run.id] and listed[0]["timings"] == timings
        assert len(across(a.client, "/runs/steps", run_id=run.id, type="tool_calls")["data"]) == 1


@pytest.mark.parametrize("max_bytes", [1024, 3000, 20000])
def test_a_capped_record_always_fits_and_says_so(max_bytes: int) -> None:
    """The cap holds whatever is too large — multi-byte text, JSON escapes, tool-call
    arguments, tool definitions — and a request that fits is recorded whole."""
    from assistant_kit.engine.prompts import capped

    body = {
        "messages": [
            {"role": "system", "content": "Rules: " + 'é"\\\n' * 3000},
            {"role": "user", "content": "ünïcödé " * 2000},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c", "function": {"name": "f", "arguments": '{"code": "' + "x" * 9000 + '"}'}}
                ],
            },
            {"role": "tool", "tool_call_id": "c", "content": "out " * 3000},
            {"role": "user", "content": "the question"},
        ],
        "tools": [
            {"type": "function", "function": {"name": f"tool{i}", "description": "d" * 500}}
            for i in range(10)
        ],
        "tool_choice": "auto",
    }
    text, size, truncated = capped(body, max_bytes)
    assert truncated and size == len(text.encode()) <= max_bytes
    recorded = json.loads(text)
    assert recorded["tool_choice"] == "auto"
    if recorded["messages"]:
        assert recorded["messages"][-1] == {"role": "user", "content": "the question"}  # the newest kept
    small = {"messages": [{"role": "user", "content": "hi"}], "tools": []}
    assert capped(small, max_bytes) == (json.dumps(small, ensure_ascii=False), len(json.dumps(small)), False)


def test_a_long_thread_keeps_its_newest_messages_in_the_record() -> None:
    from assistant_kit.engine.prompts import capped

    messages = [{"role": "system", "content": "Be brief."}]
    messages += [{"role": "user", "content": f"message {i} " + "w " * 40} for i in range(10_000)]
    text, size, truncated = capped({"messages": messages, "tools": []}, 262144)
    recorded = json.loads(text)
    assert truncated and size <= 262144
    kept = recorded["messages"]
    assert kept[0] == messages[0] and kept[-1] == messages[-1]
    assert recorded["messages_not_recorded"] + len(kept) == len(messages)
    assert len(kept) > 1000  # as many as fit, not none
