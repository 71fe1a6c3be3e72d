"""What the model is asked on each turn (``engine/context.py``), seen by a model that records
the request it gets: the thread's messages in chat format, the run's instructions merged
from the assistant and the request, the tools (built-ins as functions), the sampling
settings, ``truncation_strategy`` and ``max_prompt_tokens``. Every test runs in-process and
over HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import pytest

from assistant_kit import register_model
from assistant_kit.models.base import (
    BaseChatModel,
    Finish,
    ModelEvent,
    ModelRequest,
    TextDelta,
    ToolCallDelta,
    Usage,
)


class Recorder(BaseChatModel):
    """Records every request; answers ``ok``, or first calls ``get_time`` when the run
    offers it and no tool has answered yet (a tool round to see in the next request)."""

    name = "context/recorder"

    def __init__(self) -> None:
        self.requests: list[ModelRequest] = []

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        self.requests.append(request)
        offered = [t["function"]["name"] for t in request.tools]
        if "get_time" in offered and not any(m["role"] == "tool" for m in request.messages):
            yield ToolCallDelta(0, id="call_time", name="get_time", arguments='{"zone": "UTC"}')
            yield Usage(10, 5)
            yield Finish("tool_calls")
            return
        yield TextDelta("ok")
        yield Usage(10, 1)
        yield Finish("stop")


RECORDER = Recorder()
register_model("context/recorder", RECORDER)
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}


@pytest.fixture(autouse=True)
def _fresh_recorder() -> Iterator[None]:
    RECORDER.requests.clear()
    yield
    RECORDER.requests.clear()


def _run(client: openai.OpenAI, thread_id: str, assistant_id: str, **params: Any) -> Any:
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id, **params)
    return run


def test_messages_in_chat_format_in_thread_order(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="context/recorder")
    thread = client.beta.threads.create(
        messages=[
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "second"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                ],
            },
        ]
    )
    run = _run(client, thread.id, assistant.id)
    assert run.status == "completed"
    (request,) = RECORDER.requests
    assert request.messages == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "second"},
        {"role": "user", "content": "look\n[image: https://example.com/a.png]"},
    ]
    # No tools offered: no tool_choice either (an upstream would reject one without tools).
    assert request.tools == [] and request.tool_choice is None


@pytest.mark.parametrize(
    ("assistant_instructions", "params", "system"),
    [
        ("Be brief.", {}, "Be brief."),
        ("Be brief.", {"additional_instructions": "Use French."}, "Be brief.\n\nUse French."),
        ("Be brief.", {"instructions": "Be long."}, "Be long."),
        (
            "Be brief.",
            {"instructions": "Be long.", "additional_instructions": "Rhyme."},
            "Be long.\n\nRhyme.",
        ),
        (None, {"additional_instructions": "Rhyme."}, "Rhyme."),
        (None, {}, None),
    ],
)
def test_instructions_merge(
    client: openai.OpenAI, assistant_instructions: str | None, params: dict[str, Any], system: str | None
) -> None:
    """The request's ``instructions`` replace the assistant's, ``additional_instructions`` are
    appended after a blank line; the result is the system message (none when empty) and
    the run's ``instructions``."""
    assistant = client.beta.assistants.create(model="context/recorder", instructions=assistant_instructions)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = _run(client, thread.id, assistant.id, **params)
    (request,) = RECORDER.requests
    expected = [{"role": "system", "content": system}] if system else []
    assert request.messages == [*expected, {"role": "user", "content": "hi"}]
    assert run.instructions == (system or "")


def test_truncation_strategy_last_messages(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="context/recorder", instructions="sys")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": f"m{i}"} for i in range(5)])
    run = _run(
        client, thread.id, assistant.id, truncation_strategy={"type": "last_messages", "last_messages": 2}
    )
    assert run.truncation_strategy.type == "last_messages"
    (request,) = RECORDER.requests
    assert request.messages == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "m3"},
        {"role": "user", "content": "m4"},
    ]


def test_truncation_strategy_auto_sends_the_whole_thread(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="context/recorder")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": f"m{i}"} for i in range(5)])
    _run(client, thread.id, assistant.id, truncation_strategy={"type": "auto"})
    (request,) = RECORDER.requests
    assert [m["content"] for m in request.messages] == [f"m{i}" for i in range(5)]


def test_max_prompt_tokens_drops_the_oldest_messages_first(client: openai.OpenAI) -> None:
    """The default estimate is ~4 characters a token plus 4 a message: three 400-character
    messages are 312 tokens, over a 256 budget; the newest two (208) fit."""
    assistant = client.beta.assistants.create(model="context/recorder")
    texts = [c * 400 for c in "abc"]
    thread = client.beta.threads.create(messages=[{"role": "user", "content": t} for t in texts])
    run = _run(client, thread.id, assistant.id, max_prompt_tokens=256)
    assert run.status == "completed"
    (request,) = RECORDER.requests
    assert [m["content"] for m in request.messages] == texts[1:]


def test_max_prompt_tokens_nothing_fits_ends_the_run_before_the_model_is_called(
    client: openai.OpenAI,
) -> None:
    assistant = client.beta.assistants.create(model="context/recorder")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "x" * 2000}])
    run = _run(client, thread.id, assistant.id, max_prompt_tokens=256)
    assert run.status == "incomplete"
    assert run.incomplete_details is not None and run.incomplete_details.reason == "max_prompt_tokens"
    assert RECORDER.requests == []


def test_sampling_settings_and_token_budget_reach_the_model(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="context/recorder", temperature=0.3, top_p=0.9)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    _run(
        client,
        thread.id,
        assistant.id,
        temperature=0.5,  # the run's own setting wins; top_p comes from the assistant
        max_completion_tokens=300,
        response_format={"type": "json_object"},
        parallel_tool_calls=False,
    )
    (request,) = RECORDER.requests
    assert (request.temperature, request.top_p) == (0.5, 0.9)
    assert request.response_format == {"type": "json_object"}
    assert request.parallel_tool_calls is False
    assert request.max_tokens == 300


def test_a_tool_round_is_in_the_next_request(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="context/recorder", tools=[TIME])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "time?"}])
    run = _run(client, thread.id, assistant.id, max_completion_tokens=300)
    assert run.status == "requires_action"
    first = RECORDER.requests[0]
    assert [(t["type"], t["function"]["name"], t["function"]["parameters"]) for t in first.tools] == [
        ("function", "get_time", {"type": "object"})
    ]
    assert first.tool_choice == "auto" and first.builtin_tools == set()
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": "call_time", "output": "noon"}]
    )
    assert run.status == "completed"
    second = RECORDER.requests[1]
    assert (first.max_tokens, second.max_tokens) == (300, 300 - 5)  # the first turn used 5
    assert second.messages == [
        {"role": "user", "content": "time?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_time",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": '{"zone": "UTC"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_time", "content": "noon"},
    ]


def test_file_search_is_offered_as_a_builtin_function(client: openai.OpenAI) -> None:
    """A built-in the engine cannot run yet is still offered to the model (as a function, so a
    chat model can call it), marked built-in; a ``tool_choice`` naming it names the function."""
    assistant = client.beta.assistants.create(model="context/recorder", tools=[{"type": "file_search"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "find it"}])
    _run(client, thread.id, assistant.id, tool_choice={"type": "file_search"})
    (request,) = RECORDER.requests
    assert [t["function"]["name"] for t in request.tools] == ["file_search"]
    assert request.builtin_tools == {"file_search"}
    assert request.tool_choice == {"type": "function", "function": {"name": "file_search"}}


def test_previous_runs_answers_are_history(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="context/recorder")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "one"}])
    _run(client, thread.id, assistant.id)
    client.beta.threads.messages.create(thread.id, role="user", content="two")
    _run(client, thread.id, assistant.id)
    assert RECORDER.requests[1].messages == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "two"},
    ]


def _dropping_one_at_a_time(
    model: BaseChatModel, system: list[dict[str, Any]], history: list[dict[str, Any]], budget: int
) -> list[dict[str, Any]] | None:
    """The rule as it was first written (drop the oldest message, and the tool results it
    leaves at the front, until the count fits): the oracle for :func:`fit_history`."""
    history = list(history)
    while history and model.count_tokens(system + history) > budget:
        history.pop(0)
        while history and history[0]["role"] == "tool":
            history.pop(0)
    return history or None


def test_the_history_cut_is_the_one_dropping_message_by_message_finds() -> None:
    import random

    from assistant_kit.engine.context import fit_history
    from assistant_kit.models.scripted import EchoModel

    model, rng = EchoModel(), random.Random(7)
    for _ in range(300):
        history: list[dict[str, Any]] = []
        for _ in range(rng.randrange(0, 30)):
            if history and history[-1]["role"] == "assistant" and rng.random() < 0.4:
                history.append({"role": "tool", "tool_call_id": "c", "content": "w " * rng.randrange(0, 9)})
            else:
                role = rng.choice(["user", "assistant"])
                history.append({"role": role, "content": "w " * rng.randrange(0, 9)})
        if history and rng.random() < 0.2:
            history.insert(0, {"role": "tool", "tool_call_id": "c", "content": "w w"})  # a cut-off round
        system = [{"role": "system", "content": "w " * rng.randrange(0, 5)}] if rng.random() < 0.5 else []
        budget = rng.randrange(0, 60)
        assert fit_history(model, system, history, budget) == _dropping_one_at_a_time(
            model, system, history, budget
        ), (system, history, budget)
