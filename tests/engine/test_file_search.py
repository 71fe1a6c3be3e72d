"""``file_search`` inside runs, through the official SDK in-process and over real HTTP (the
``client`` / ``make_client`` fixtures run each test over both): the step and its events as
``AssistantEventHandler`` sees them, ``include[]`` on create run / list steps / retrieve step,
the tool's ``max_num_results`` and ``score_threshold``, the assistant's and the thread's stores
searched together, the exact text the model reads (markers), and the engine's own search for a
model that cannot call tools."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import pytest
from openai import AssistantEventHandler

from assistant_kit.models.base import BaseChatModel, Finish, ModelEvent, ModelRequest, TextDelta, Usage
from assistant_kit.models.registry import register_model
from tests.conftest import wait_for
from tests.engine.test_replicas import replicas, shared_db  # noqa: F401  (fixture)

INCLUDE = "step_details.tool_calls[*].file_search.results[*].content"
GCD = "The math module's gcd function returns the greatest common divisor of two integers. It is fast.\n"
SORT = "The sorted builtin returns a new sorted list from the items of any iterable.\n"
PATHS = "pathlib offers classes representing filesystem paths with semantics for different systems.\n"


def _store(client: openai.OpenAI, files: dict[str, str]) -> str:
    """A vector store of ``files`` (name → text), ingested."""
    ids = [
        client.files.create(file=(name, io.BytesIO(text.encode())), purpose="assistants").id
        for name, text in files.items()
    ]
    store = client.vector_stores.create(file_ids=ids)
    wait_for(lambda: client.vector_stores.retrieve(store.id).status == "completed", timeout=60)
    return store.id


def _searching(client: openai.OpenAI, store_id: str | None, model: str = "test/search", **tool: Any) -> Any:
    resources = {"file_search": {"vector_store_ids": [store_id]}} if store_id else {}
    return client.beta.assistants.create(
        model=model, tools=[{"type": "file_search", **tool}], tool_resources=resources
    )


def _search_calls(client: openai.OpenAI, run: Any, **params: Any) -> list[Any]:
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id, order="asc", **params)
    return [
        call
        for step in steps.data
        if step.step_details.type == "tool_calls"
        for call in step.step_details.tool_calls
        if call.type == "file_search"
    ]


class Recorder(AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.created: list[Any] = []
        self.done: list[Any] = []
        self.events: list[Any] = []

    def on_event(self, event: Any) -> None:
        self.events.append(event)

    def on_tool_call_created(self, tool_call: Any) -> None:
        self.created.append(tool_call)

    def on_tool_call_done(self, tool_call: Any) -> None:
        self.done.append(tool_call)


def test_stream_shows_the_search_and_the_run_answers_from_it(client: openai.OpenAI) -> None:
    store_id = _store(client, {"gcd.txt": GCD, "sort.md": SORT, "paths.txt": PATHS})
    assistant = _searching(client, store_id)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "greatest common divisor"}])
    handler = Recorder()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=handler
    ) as stream:
        stream.until_done()
    run = stream.get_final_run()
    assert run.status == "completed", run.last_error
    # Created as the model starts the call (empty, as the spec's delta has it), done with results.
    (created,) = {c.id: c for c in handler.created}.values()
    assert created.type == "file_search" and not created.file_search.results
    done = handler.done[0]
    assert done.id == created.id and done.type == "file_search"
    assert done.file_search.ranking_options.model_dump() == {
        "ranker": "default_2024_08_21",
        "score_threshold": 0.0,
    }
    first = done.file_search.results[0]
    assert first.file_name == "gcd.txt" and 0 < first.score <= 1
    assert first.content is None  # not asked for: no content in the events either
    assert done.file_search.queries == ["greatest common divisor"]  # an assistant_kit addition
    scores = [r.score for r in done.file_search.results]
    assert scores == sorted(scores, reverse=True)
    # The step events: created/in_progress, two deltas, completed — before the answer's.
    names = [e.event for e in handler.events]
    step_events = [n for n in names if n.startswith("thread.run.step")]
    assert step_events[:5] == [
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.run.step.delta",
        "thread.run.step.delta",
        "thread.run.step.completed",
    ]
    assert names.index("thread.run.step.completed") < names.index("thread.message.created")
    # The model read the results: it answers with the first one's sentence and its marker.
    answer = client.beta.threads.messages.list(thread.id).data[0]
    assert answer.content[0].text.value == (
        "The math module's gcd function returns the greatest common divisor of two integers. 【0:0†source】"
    )
    (stored,) = _search_calls(client, run)
    assert stored.model_dump() == done.model_dump(exclude={"index"})


def test_include_puts_the_content_in_steps_and_in_the_stream(client: openai.OpenAI) -> None:
    store_id = _store(client, {"gcd.txt": GCD, "sort.md": SORT})
    assistant = _searching(client, store_id)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "sorted list"}])
    handler = Recorder()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=handler, include=[INCLUDE]
    ) as stream:
        stream.until_done()
    run = stream.get_final_run()
    first = handler.done[0].file_search.results[0]
    assert first.file_name == "sort.md"
    assert [(c.type, c.text) for c in first.content] == [("text", SORT.strip())]
    completed = next(e.data for e in handler.events if e.event == "thread.run.step.completed")
    assert completed.step_details.tool_calls[0].file_search.results[0].content[0].text == SORT.strip()

    (plain,) = _search_calls(client, run)
    assert all(r.content is None for r in plain.file_search.results)
    (full,) = _search_calls(client, run, include=[INCLUDE])
    assert full.file_search.results[0].content[0].text == SORT.strip()
    step_id = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data[0].id
    one = client.beta.threads.runs.steps.retrieve(step_id, thread_id=thread.id, run_id=run.id)
    assert one.step_details.tool_calls[0].file_search.results[0].content is None
    one = client.beta.threads.runs.steps.retrieve(
        step_id, thread_id=thread.id, run_id=run.id, include=[INCLUDE]
    )
    assert one.step_details.tool_calls[0].file_search.results[0].content[0].text == SORT.strip()
    # Streaming without include (the other run of the same store): no content.
    again = Recorder()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=again
    ) as stream:
        stream.until_done()
    assert all(r.content is None for r in again.done[0].file_search.results)


def test_an_unknown_include_value_is_a_400_naming_include(client: openai.OpenAI) -> None:
    assistant = _searching(client, None)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
    bad = ["step_details.tool_calls[*].file_search.results[*].nope"]
    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id, include=bad)  # type: ignore[list-item]
    assert caught.value.body["param"] == "include"  # type: ignore[index]
    assert client.beta.threads.runs.list(thread.id).data == []  # nothing was created
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    step = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data[0]
    for call in (
        lambda: client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, include=bad),  # type: ignore[list-item]
        lambda: client.beta.threads.runs.steps.retrieve(
            step.id,
            thread_id=thread.id,
            run_id=run.id,
            include=bad,  # type: ignore[list-item]
        ),
    ):
        with pytest.raises(openai.BadRequestError) as caught:
            call()
        assert caught.value.body["param"] == "include"  # type: ignore[index]


def test_max_num_results_and_score_threshold_are_honoured(client: openai.OpenAI) -> None:
    store_id = _store(client, {"gcd.txt": GCD, "sort.md": SORT, "paths.txt": PATHS})
    # Words of two files, so keyword search alone (no embedder) ranks two results too.
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "returns the greatest common divisor"}]
    )

    def results(**tool: Any) -> Any:
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=_searching(client, store_id, **tool).id
        )
        assert run.status == "completed", run.last_error
        (call,) = _search_calls(client, run)
        return call.file_search

    everything = results()
    assert len(everything.results) >= 2
    one = results(file_search={"max_num_results": 1})
    assert [r.file_id for r in one.results] == [everything.results[0].file_id]
    # A threshold between the best score and the next keeps only the best.
    best, second = everything.results[0].score, everything.results[1].score
    threshold = round((best + second) / 2, 4)
    assert second < threshold < best
    cut = results(file_search={"ranking_options": {"score_threshold": threshold}})
    assert cut.ranking_options.score_threshold == threshold
    assert [r.file_id for r in cut.results] == [everything.results[0].file_id]
    nothing = results(file_search={"ranking_options": {"score_threshold": 1.0}, "max_num_results": 50})
    assert all(r.score >= 1.0 for r in nothing.results)
    # The model reads what the step records, no more: with no result it says so.
    messages = client.beta.threads.messages.list(thread.id).data
    if not nothing.results:
        assert messages[0].content[0].text.value == "No results."


def test_the_assistant_and_the_thread_stores_are_searched_together(client: openai.OpenAI) -> None:
    mine = _store(client, {"gcd.txt": GCD})
    theirs = _store(client, {"sort.md": SORT})
    assistant = _searching(client, mine)
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "greatest common divisor\nsorted list"}],
        tool_resources={"file_search": {"vector_store_ids": [theirs]}},
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    (call,) = _search_calls(client, run, include=[INCLUDE])
    assert call.file_search.queries == ["greatest common divisor", "sorted list"]
    assert {r.file_name for r in call.file_search.results} == {"gcd.txt", "sort.md"}
    # The same file in both stores is one result.
    both = _store(client, {"gcd.txt": GCD})
    twice = client.beta.threads.create(
        messages=[{"role": "user", "content": "greatest common divisor"}],
        tool_resources={"file_search": {"vector_store_ids": [both]}},
    )
    solo = client.beta.assistants.create(
        model="test/search",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [both]}},
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=twice.id, assistant_id=solo.id)
    (call,) = _search_calls(client, run)
    assert [r.file_name for r in call.file_search.results] == ["gcd.txt"]


def test_the_model_reads_the_results_with_their_markers(make_client, fake_upstream) -> None:  # type: ignore[no-untyped-def]
    client = make_client(api_key="sk-x", api_base=fake_upstream.url)
    store_id = _store(client, {"gcd.txt": GCD, "sort.md": SORT})
    assistant = _searching(client, store_id, model="openai/m", file_search={"max_num_results": 2})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "what is gcd?"}])
    fake_upstream.reply_tool_calls([("file_search", {"queries": ["greatest common divisor", "gcd"]})])
    fake_upstream.reply_tool_calls([("file_search", {"query": "sorted list"})])  # the legacy form
    fake_upstream.reply_text("It is the gcd 【0:0†source】.")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error
    offered = fake_upstream.requests[0].body["tools"]
    assert offered[0]["function"]["name"] == "file_search"
    assert offered[0]["function"]["parameters"]["properties"]["queries"]["maxItems"] == 5
    first, second = _search_calls(client, run, include=[INCLUDE])
    assert first.file_search.queries == ["greatest common divisor", "gcd"]
    assert second.file_search.queries == ["sorted list"]
    messages = fake_upstream.requests[2].body["messages"]
    tool_messages = [m for m in messages if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == [first.id, second.id]
    calls = [m["tool_calls"][0] for m in messages if m.get("tool_calls")]
    assert calls[0]["function"] == {
        "name": "file_search",
        "arguments": '{"queries": ["greatest common divisor", "gcd"]}',
    }

    def expected(number: int, call: Any, asked: str) -> str:
        lines = [
            f"file_search results for {asked}. Cite a result you use by its marker, "
            f"for example 【{number}:0†source】."
        ]
        for index, result in enumerate(call.file_search.results):
            lines.append(f"\n【{number}:{index}†{result.file_name}】\n{result.content[0].text}")
        return "\n".join(lines)

    assert tool_messages[0]["content"] == expected(0, first, '"greatest common divisor", "gcd"')
    assert tool_messages[1]["content"] == expected(1, second, '"sorted list"')
    assert "【0:0†gcd.txt】\n" + GCD.strip() in tool_messages[0]["content"]
    assert "【1:0†sort.md】\n" + SORT.strip() in tool_messages[1]["content"]


def test_a_search_without_stores_or_queries_tells_the_model(make_client, fake_upstream) -> None:  # type: ignore[no-untyped-def]
    client = make_client(api_key="sk-x", api_base=fake_upstream.url)
    assistant = _searching(client, None, model="openai/m")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "anything"}])
    fake_upstream.reply_tool_calls([("file_search", {"query": "q"}), ("file_search", "{}")])
    fake_upstream.reply_text("done")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    found, empty = _search_calls(client, run)
    assert (found.file_search.results, empty.file_search.queries) == ([], [])
    tool_messages = [m for m in fake_upstream.last_request.body["messages"] if m["role"] == "tool"]
    assert [m["content"] for m in tool_messages] == [
        'file_search found nothing for "q" in the attached files.',
        'file_search needs queries: call it with {"queries": ["..."]}.',
    ]


def test_search_model_answers_a_scripted_line_and_searches_the_others(client: openai.OpenAI) -> None:
    """``test/search``'s ``answer:`` line (how citation tests feed it markers) is its answer,
    not a query."""
    assistant = _searching(client, _store(client, {"gcd.txt": GCD}))
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "greatest common divisor\nanswer: See the gcd 【0:0†source】."}]
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    (call,) = _search_calls(client, run)
    assert call.file_search.queries == ["greatest common divisor"]
    answer = client.beta.threads.messages.list(thread.id).data[0].content[0].text.value
    assert answer.startswith("See the gcd 【0:0†source】")


class NoTools(BaseChatModel):
    """A model that cannot call tools (like the embedded one): records what it reads."""

    name = "search/no-tools"
    calls_tools = False

    def __init__(self) -> None:
        self.requests: list[ModelRequest] = []

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        self.requests.append(request)
        yield TextDelta("answered")
        yield Usage(1, 1)
        yield Finish("stop")


NO_TOOLS = NoTools()
register_model("search/no-tools", NO_TOOLS)


@pytest.fixture
def no_tools() -> Iterator[NoTools]:
    NO_TOOLS.requests.clear()
    yield NO_TOOLS
    NO_TOOLS.requests.clear()


def test_a_model_that_cannot_call_tools_gets_a_search_before_its_turn(
    client: openai.OpenAI, no_tools: NoTools
) -> None:
    store_id = _store(client, {"gcd.txt": GCD, "sort.md": SORT, "paths.txt": PATHS, "more.txt": GCD + SORT})
    assistant = _searching(client, store_id, model="search/no-tools")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "What does gcd return?"}])
    handler = Recorder()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=handler
    ) as stream:
        stream.until_done()
    run = stream.get_final_run()
    assert run.status == "completed"
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    assert steps[0].status == "completed" and steps[0].usage.total_tokens == 0
    (call,) = steps[0].step_details.tool_calls
    assert call.type == "file_search" and call.file_search.queries == ["What does gcd return?"]
    assert 1 <= len(call.file_search.results) <= 3  # a small model's small context
    assert handler.done and handler.done[0].id == call.id
    (request,) = no_tools.requests
    tool = request.messages[-1]
    assert tool["role"] == "tool" and tool["tool_call_id"] == call.id
    assert tool["content"].startswith('file_search results for "What does gcd return?".')
    assert f"【0:0†{call.file_search.results[0].file_name}】" in tool["content"]
    # tool_choice "none": no search.
    quiet = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, tool_choice="none"
    )
    assert [s.type for s in client.beta.threads.runs.steps.list(quiet.id, thread_id=thread.id).data] == [
        "message_creation"
    ]


def test_a_run_on_another_replica_searches_the_shared_database(shared_db: Any) -> None:  # noqa: F811
    """PostgreSQL and one SQLite file shared by two engines: a store made and ingested through
    one replica is searched by a run executing on the other."""
    with replicas(shared_db, lease_seconds=5) as (a, b):
        store_id = _store(a.client, {"gcd.txt": GCD, "sort.md": SORT})
        assistant = _searching(a.client, store_id)
        thread = b.client.beta.threads.create(
            messages=[{"role": "user", "content": "greatest common divisor"}]
        )
        run = b.client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
        assert run.status == "completed", run.last_error
        (call,) = _search_calls(a.client, run, include=[INCLUDE])
        assert call.file_search.results[0].file_name == "gcd.txt"
        assert call.file_search.results[0].content[0].text == GCD.strip()
        answer = a.client.beta.threads.messages.list(thread.id).data[0].content[0].text.value
        assert answer.endswith("【0:0†source】")
