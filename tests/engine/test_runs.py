"""The run state machine through the official SDK: every parameter honoured, tools over any
number of rounds, limits → incomplete, cancel, expiry, one active run per thread."""

from __future__ import annotations

import asyncio
import time

import openai
import pytest

from assistant_kit import register_model
from tests.conftest import wait_for

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]},
        },
    }
    for name in ("alpha", "beta", "gamma")
]


async def _slow(messages):  # type: ignore[no-untyped-def]
    for i in range(400):
        await asyncio.sleep(0.01)
        yield f"w{i} "


register_model("demo/slow", _slow)


def _setup(client: openai.OpenAI, model: str = "test/echo", text: str = "hello", **assistant):  # type: ignore[no-untyped-def]
    a = client.beta.assistants.create(model=model, **assistant)
    t = client.beta.threads.create(messages=[{"role": "user", "content": text}])
    return a, t


def test_create_returns_queued_and_create_and_poll_completes(client: openai.OpenAI) -> None:
    a, t = _setup(client)
    run = client.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id)
    assert run.status == "queued"
    assert run.expires_at is not None and run.expires_at - run.created_at == 600
    done = client.beta.threads.runs.poll(run.id, thread_id=t.id)
    assert done.status == "completed" and done.started_at and done.completed_at
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    msgs = client.beta.threads.messages.list(t.id).data
    assert msgs[0].role == "assistant" and msgs[0].run_id == run.id and msgs[0].assistant_id == a.id
    assert msgs[0].content[0].text.value == "hello"


def test_parallel_calls_in_one_round(client: openai.OpenAI) -> None:
    a, t = _setup(client, "test/tools", tools=TOOLS)
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "requires_action"
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert [c.function.name for c in calls] == ["alpha", "beta", "gamma"]
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=t.id,
        run_id=run.id,
        tool_outputs=[{"tool_call_id": c.id, "output": f"out-{c.function.name}"} for c in calls],
    )
    assert run.status == "completed"
    answer = client.beta.threads.messages.list(t.id).data[0].content[0].text.value
    assert all(f"out-{n}" in answer for n in ("alpha", "beta", "gamma"))


def test_many_rounds_one_call_each(client: openai.OpenAI) -> None:
    a, t = _setup(client, "test/tools", tools=TOOLS)
    run = client.beta.threads.runs.create_and_poll(
        thread_id=t.id, assistant_id=a.id, parallel_tool_calls=False
    )
    names = []
    while run.status == "requires_action":
        (call,) = run.required_action.submit_tool_outputs.tool_calls
        names.append(call.function.name)
        run = client.beta.threads.runs.submit_tool_outputs_and_poll(
            thread_id=t.id,
            run_id=run.id,
            tool_outputs=[{"tool_call_id": call.id, "output": call.function.name.upper()}],
        )
    assert names == ["alpha", "beta", "gamma"]
    assert run.status == "completed" and run.parallel_tool_calls is False
    steps = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=t.id, order="asc").data
    assert [s.type for s in steps] == ["tool_calls"] * 3 + ["message_creation"]
    assert all(s.status == "completed" and s.usage is not None for s in steps)
    assert run.usage.completion_tokens == sum(s.usage.completion_tokens for s in steps)


def test_tool_choice_none_and_named(client: openai.OpenAI) -> None:
    a, t = _setup(client, "test/tools", tools=TOOLS)
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id, tool_choice="none")
    assert run.status == "completed"
    run = client.beta.threads.runs.create_and_poll(
        thread_id=t.id, assistant_id=a.id, tool_choice={"type": "function", "function": {"name": "beta"}}
    )
    assert [c.function.name for c in run.required_action.submit_tool_outputs.tool_calls] == ["beta"]


def test_max_completion_tokens_makes_run_incomplete(client: openai.OpenAI) -> None:
    a, t = _setup(client, text=" ".join(f"w{i}" for i in range(300)))
    run = client.beta.threads.runs.create_and_poll(
        thread_id=t.id, assistant_id=a.id, max_completion_tokens=256
    )
    assert run.status == "incomplete"
    assert run.incomplete_details.reason == "max_completion_tokens"
    assert run.usage.completion_tokens == 256
    message = client.beta.threads.messages.list(t.id).data[0]
    assert message.status == "incomplete" and message.incomplete_details.reason == "max_tokens"
    assert len(message.content[0].text.value.split()) == 256


def test_max_prompt_tokens_makes_run_incomplete(client: openai.OpenAI) -> None:
    a, t = _setup(client, text=" ".join(f"w{i}" for i in range(300)))
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id, max_prompt_tokens=256)
    assert run.status == "incomplete"
    assert run.incomplete_details.reason == "max_prompt_tokens"
    assert client.beta.threads.messages.list(t.id).data[0].role == "user"  # nothing generated


def test_parameters_reach_the_model(make_client, fake_upstream) -> None:  # type: ignore[no-untyped-def]
    client = make_client(api_key="sk-secret-123", api_base=fake_upstream.url)
    a = client.beta.assistants.create(
        model="openai/gpt-x", instructions="Base.", tools=[TOOLS[0]], temperature=0.2
    )
    t = client.beta.threads.create(
        messages=[{"role": "user", "content": "old"}, {"role": "user", "content": "newer"}]
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=t.id,
        assistant_id=a.id,
        additional_instructions="More.",
        additional_messages=[{"role": "user", "content": "extra"}],
        tools=[TOOLS[1]],
        tool_choice="auto",
        temperature=0.5,
        top_p=0.9,
        response_format={"type": "json_object"},
        max_completion_tokens=300,
        truncation_strategy={"type": "last_messages", "last_messages": 2},
        metadata={"k": "v"},
    )
    assert run.status == "completed", run.last_error
    assert run.metadata == {"k": "v"} and run.temperature == 0.5 and run.top_p == 0.9
    body = fake_upstream.last_request.body
    assert body["model"] == "gpt-x"
    assert body["messages"] == [
        {"role": "system", "content": "Base.\n\nMore."},
        {"role": "user", "content": "newer"},
        {"role": "user", "content": "extra"},
    ]
    assert [tool["function"]["name"] for tool in body["tools"]] == ["beta"]
    assert body["tool_choice"] == "auto" and body["temperature"] == 0.5 and body["top_p"] == 0.9
    assert body["response_format"] == {"type": "json_object"}
    assert body["max_completion_tokens"] == 300
    assert fake_upstream.last_request.headers["authorization"] == "Bearer sk-secret-123"


def test_upstream_tool_calls_and_outputs_round_trip(make_client, fake_upstream) -> None:  # type: ignore[no-untyped-def]
    client = make_client(api_key="sk-x", api_base=fake_upstream.url)
    a, t = _setup(client, "openai/m", tools=TOOLS[:2])
    fake_upstream.reply_tool_calls([("alpha", {"x": 1}), ("beta", {"x": 2})])
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert [(c.function.name, c.function.arguments) for c in calls] == [
        ("alpha", '{"x": 1}'),
        ("beta", '{"x": 2}'),
    ]
    fake_upstream.reply_text("all done")
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=t.id,
        run_id=run.id,
        tool_outputs=[{"tool_call_id": c.id, "output": str(i)} for i, c in enumerate(calls)],
    )
    assert run.status == "completed"
    sent = fake_upstream.last_request.body["messages"]
    assert sent[-3]["tool_calls"][0]["id"] == calls[0].id
    assert sent[-2:] == [
        {"role": "tool", "tool_call_id": calls[0].id, "content": "0"},
        {"role": "tool", "tool_call_id": calls[1].id, "content": "1"},
    ]


@pytest.mark.parametrize(
    ("script", "code"),
    [
        (lambda f: f.reply_error(500), "server_error"),
        (lambda f: f.reply_error(429), "rate_limit_exceeded"),
        (lambda f: f.reply_drop(after=2), "server_error"),
    ],
    ids=["500", "429", "drop"],
)
def test_upstream_failure_fails_the_run(make_client, fake_upstream, script, code) -> None:  # type: ignore[no-untyped-def]
    client = make_client(api_key="sk-hidden-key", api_base=fake_upstream.url, max_retries=0)
    a, t = _setup(client, "openai/m")
    script(fake_upstream)
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "failed" and run.failed_at
    assert run.last_error.code == code
    assert "sk-hidden-key" not in run.last_error.message
    steps = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=t.id).data
    assert all(s.status != "in_progress" for s in steps)
    messages = client.beta.threads.messages.list(t.id).data
    assert all(m.status != "in_progress" for m in messages)
    # The thread is usable again.
    again = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert again.status == "completed"


def test_retry_before_first_token_then_success(make_client, fake_upstream) -> None:  # type: ignore[no-untyped-def]
    client = make_client(api_key="sk-x", api_base=fake_upstream.url, max_retries=2)
    a, t = _setup(client, "openai/m")
    fake_upstream.reply_error(429, times=2)
    fake_upstream.reply_text("made it")
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "completed"
    assert client.beta.threads.messages.list(t.id).data[0].content[0].text.value == "made it"


def test_cancel_in_progress_run(client: openai.OpenAI) -> None:
    a, t = _setup(client, "demo/slow")
    run = client.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id)
    wait_for(lambda: client.beta.threads.messages.list(t.id).data[0].role == "assistant")
    cancelling = client.beta.threads.runs.cancel(run.id, thread_id=t.id)
    assert cancelling.status in ("cancelling", "cancelled")
    run = client.beta.threads.runs.poll(run.id, thread_id=t.id)
    assert run.status == "cancelled" and run.cancelled_at
    message = client.beta.threads.messages.list(t.id).data[0]
    assert message.status == "incomplete" and message.incomplete_details.reason == "run_cancelled"
    (step,) = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=t.id).data
    assert step.status == "cancelled"
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.cancel(run.id, thread_id=t.id)


def test_cancel_run_waiting_for_tool_outputs(client: openai.OpenAI) -> None:
    a, t = _setup(client, "test/tools", tools=TOOLS[:1])
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "requires_action"
    run = client.beta.threads.runs.cancel(run.id, thread_id=t.id)
    assert run.status == "cancelled" and run.required_action is None
    # The thread accepts new work again.
    client.beta.threads.messages.create(t.id, role="user", content="next")


def test_expiry_while_waiting_for_tool_outputs(make_client) -> None:  # type: ignore[no-untyped-def]
    # 3 s: the run must reach requires_action and be seen there first, also on a busy CI machine
    # (created_at is whole seconds, so the wait can be as short as 2 s).
    client = make_client(run_expiry_seconds=3)
    a, t = _setup(client, "test/tools", tools=TOOLS[:1])
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "requires_action" and run.expires_at - run.created_at == 3
    run = wait_for(
        lambda: (r := client.beta.threads.runs.retrieve(run.id, thread_id=t.id)).status == "expired" and r, 6
    )
    (step,) = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=t.id).data
    assert step.status == "expired" and step.expired_at
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.submit_tool_outputs(
            thread_id=t.id, run_id=run.id, tool_outputs=[{"tool_call_id": "call_x", "output": "late"}]
        )


def test_expiry_of_a_running_run(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(run_expiry_seconds=1)
    a, t = _setup(client, "demo/slow")
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "expired"


def test_one_active_run_per_thread_then_two_runs(client: openai.OpenAI) -> None:
    a, t = _setup(client, "demo/slow")
    first = client.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id)
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id)
    assert first.id in err.value.message
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.messages.create(t.id, role="user", content="during")
    client.beta.threads.runs.cancel(first.id, thread_id=t.id)
    client.beta.threads.runs.poll(first.id, thread_id=t.id)
    echo = client.beta.assistants.create(model="test/echo")
    client.beta.threads.messages.create(t.id, role="user", content="second question")
    second = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=echo.id)
    assert second.status == "completed"
    runs = client.beta.threads.runs.list(t.id).data
    assert [r.id for r in runs] == [second.id, first.id]
    assert client.beta.threads.messages.list(t.id).data[0].content[0].text.value == "second question"


def test_model_override_and_unknown_model(client: openai.OpenAI) -> None:
    a, t = _setup(client, "test/tools")
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id, model="test/echo")
    assert run.model == "test/echo" and run.status == "completed"
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id, model="test/nope")
    assert err.value.body["param"] == "model"


def test_runs_continue_after_stream_consumer_leaves(client: openai.OpenAI) -> None:
    a, t = _setup(client, "demo/slow")
    stream = client.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id, stream=True)
    first = next(iter(stream))
    stream.close()
    start = time.monotonic()
    run = client.beta.threads.runs.poll(first.data.id, thread_id=t.id)
    assert run.status == "completed" and time.monotonic() - start < 30


def test_json_schema_response_format_keeps_wire_names(make_client, fake_upstream) -> None:  # type: ignore[no-untyped-def]
    client = make_client(api_key="sk-x", api_base=fake_upstream.url)
    fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}
    a, t = _setup(client, "openai/m", response_format=fmt)
    raw = client.beta.assistants.with_raw_response.retrieve(a.id).http_response.json()
    assert raw["response_format"]["json_schema"]["schema"] == {"type": "object"}
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "completed"
    sent = fake_upstream.last_request.body["response_format"]
    assert sent["json_schema"]["schema"] == {"type": "object"} and "schema_" not in sent["json_schema"]
