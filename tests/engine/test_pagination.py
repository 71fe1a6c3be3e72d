"""Cursor pagination exactly as the wire contract describes it.

``limit`` 1-100 (default 20), ``order`` asc|desc (default desc), ``after`` / ``before``
cursors; list bodies carry ``first_id``, ``last_id`` and ``has_more``. Each list endpoint
is walked forwards (``after``) and backwards (``before``) in both orders, checking every
page is exactly the expected slice: no overlap, no gap. The SDK's own auto-pagination
must iterate everything in order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest
from openai.pagination import SyncCursorPage
from openai.types.beta import Thread

pytestmark = pytest.mark.timeout(120)

Lister = Callable[..., SyncCursorPage[Any]]


def fetch(lister: Lister, **params: Any) -> tuple[list[str], bool]:
    """One page: its ids and has_more; checks first_id/last_id agree with the data."""
    page = lister(**{k: v for k, v in params.items() if v is not None})
    ids = [item.id for item in page.data]
    extra = page.model_extra or {}
    assert extra.get("object") == "list"
    assert extra.get("first_id") == (ids[0] if ids else None)
    assert extra.get("last_id") == (ids[-1] if ids else None)
    assert isinstance(page.has_more, bool)
    return ids, page.has_more


def check_paging(lister: Lister, ids: list[str], limit: int) -> None:
    """Every cursor walk over ``lister`` yields exactly ``ids`` (given in creation order)."""
    n = len(ids)
    assert n > limit >= 1, "pick a limit that needs several pages"
    for order, expected in (("asc", ids), ("desc", ids[::-1])):
        # Forwards with `after`.
        got: list[str] = []
        cursor = None
        while True:
            page, has_more = fetch(lister, order=order, limit=limit, after=cursor)
            assert page == expected[len(got) : len(got) + limit], (order, "after", cursor)
            got += page
            assert has_more == (len(got) < n)
            if not has_more:
                break
            cursor = page[-1]
        assert got == expected

        # Backwards with `before`, from the last item: each page is the slice just before
        # the cursor, in the requested order.
        end = n - 1
        cursor = expected[-1]
        pages: list[list[str]] = []
        while True:
            page, has_more = fetch(lister, order=order, limit=limit, before=cursor)
            assert page == expected[max(0, end - limit) : end], (order, "before", cursor)
            pages.append(page)
            end -= len(page)
            assert has_more == (end > 0)
            if not has_more:
                break
            cursor = page[0]
        assert [i for p in reversed(pages) for i in p] == expected[:-1]

        # Both cursors: the open interval between them.
        page, has_more = fetch(lister, order=order, limit=100, after=expected[0], before=expected[-1])
        assert page == expected[1:-1] and has_more is False
        page, has_more = fetch(lister, order=order, limit=1, after=expected[0], before=expected[-1])
        assert page == expected[1:2] and has_more is (n > 3)

        # Past either end: an empty page.
        assert fetch(lister, order=order, after=expected[-1]) == ([], False)
        assert fetch(lister, order=order, before=expected[0]) == ([], False)


def check_auto_paging(lister: Lister, ids: list[str], limit: int) -> None:
    assert [item.id for item in lister(limit=limit)] == ids[::-1]
    assert [item.id for item in lister(limit=limit, order="asc")] == ids
    first = lister(limit=limit)
    assert first.has_next_page()
    assert [item.id for item in first.get_next_page().data] == ids[::-1][limit : 2 * limit]
    pages = list(lister(limit=limit, order="asc").iter_pages())
    assert len(pages) == -(-len(ids) // limit)
    assert [item.id for page in pages for item in page.data] == ids


# -- messages ---------------------------------------------------------------------------------


@pytest.fixture
def thread_with_25(client: openai.OpenAI) -> tuple[str, list[str]]:
    thread = client.beta.threads.create()
    ids = [
        client.beta.threads.messages.create(thread.id, role="user", content=f"message {i}").id
        for i in range(25)
    ]
    assert ids == sorted(ids)  # ids are time-ordered
    return thread.id, ids


def test_messages_default_page(client: openai.OpenAI, thread_with_25: tuple[str, list[str]]) -> None:
    thread_id, ids = thread_with_25
    page = client.beta.threads.messages.list(thread_id)
    assert [m.id for m in page.data] == ids[::-1][:20]  # limit 20, newest first
    assert page.has_more is True
    assert page.model_extra == {"object": "list", "first_id": ids[24], "last_id": ids[5]}
    assert [m.content[0].text.value for m in page.data[:2]] == ["message 24", "message 23"]  # type: ignore[union-attr]


def test_messages_limit_and_order(client: openai.OpenAI, thread_with_25: tuple[str, list[str]]) -> None:
    thread_id, ids = thread_with_25
    messages = client.beta.threads.messages
    assert [m.id for m in messages.list(thread_id, limit=5).data] == ids[::-1][:5]
    assert [m.id for m in messages.list(thread_id, order="asc").data] == ids[:20]
    assert [m.id for m in messages.list(thread_id, order="desc", limit=1).data] == [ids[-1]]
    everything = messages.list(thread_id, limit=100, order="asc")
    assert [m.id for m in everything.data] == ids and everything.has_more is False
    exact = messages.list(thread_id, limit=25)
    assert len(exact.data) == 25 and exact.has_more is False
    almost = messages.list(thread_id, limit=24)
    assert len(almost.data) == 24 and almost.has_more is True


def test_messages_cursors(client: openai.OpenAI, thread_with_25: tuple[str, list[str]]) -> None:
    thread_id, ids = thread_with_25

    def lister(**params: Any) -> SyncCursorPage[Any]:
        return client.beta.threads.messages.list(thread_id, **params)

    # The spec's own example: after the first page's last id comes the next page.
    first, _ = fetch(lister, limit=10)
    second, _ = fetch(lister, limit=10, after=first[-1])
    assert second == ids[::-1][10:20]
    back, _ = fetch(lister, limit=10, before=second[0])
    assert back == first
    for limit in (1, 7, 10, 24):
        check_paging(lister, ids, limit)


def test_messages_auto_pagination(client: openai.OpenAI, thread_with_25: tuple[str, list[str]]) -> None:
    thread_id, ids = thread_with_25
    assert [m.id for m in client.beta.threads.messages.list(thread_id, limit=7)] == ids[::-1]

    def lister(**params: Any) -> SyncCursorPage[Any]:
        return client.beta.threads.messages.list(thread_id, **params)

    check_auto_paging(lister, ids, 7)


def test_message_run_filter_pages(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="test/echo")
    thread = client.beta.threads.create()
    replies = []
    for i in range(5):
        client.beta.threads.messages.create(thread.id, role="user", content=f"q{i}")
        run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
        replies.append((run.id, client.beta.threads.messages.list(thread.id, limit=1).data[0].id))
    for run_id, message_id in replies:
        page = client.beta.threads.messages.list(thread.id, run_id=run_id)
        assert [m.id for m in page.data] == [message_id] and page.has_more is False
    assert len(list(client.beta.threads.messages.list(thread.id, limit=3))) == 10


def test_empty_list(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()
    page = client.beta.threads.messages.list(thread.id)
    assert page.data == [] and page.has_more is False
    assert page.model_extra == {"object": "list", "first_id": None, "last_id": None}
    assert list(client.beta.threads.messages.list(thread.id)) == []


# -- assistants, threads, runs, steps -----------------------------------------------------------


def test_assistants_pagination(client: openai.OpenAI) -> None:
    ids = [client.beta.assistants.create(model="test/echo", name=f"a{i}").id for i in range(9)]
    check_paging(client.beta.assistants.list, ids, 4)
    check_auto_paging(client.beta.assistants.list, ids, 4)
    page = client.beta.assistants.list()
    assert [a.id for a in page.data] == ids[::-1] and page.has_more is False


def test_threads_pagination(client: openai.OpenAI) -> None:
    """``GET /threads`` (an extension) pages like the others, through the SDK's pager."""
    ids = [client.beta.threads.create().id for _ in range(7)]

    def lister(**params: Any) -> SyncCursorPage[Thread]:
        return client.get_api_list(
            "/threads", model=Thread, page=SyncCursorPage[Thread], options={"params": params}
        )

    check_paging(lister, ids, 3)
    check_auto_paging(lister, ids, 3)


def test_runs_pagination(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="test/echo")
    thread = client.beta.threads.create()
    ids = []
    for i in range(6):
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id,
            assistant_id=assistant.id,
            additional_messages=[{"role": "user", "content": f"turn {i}"}],
        )
        assert run.status == "completed"
        ids.append(run.id)

    def lister(**params: Any) -> SyncCursorPage[Any]:
        return client.beta.threads.runs.list(thread.id, **params)

    check_paging(lister, ids, 4)
    check_auto_paging(lister, ids, 4)


def test_run_steps_pagination(client: openai.OpenAI) -> None:
    """Three function tools called one per round: three tool_calls steps, then a message."""
    tools = [
        {"type": "function", "function": {"name": f"tool_{i}", "parameters": {"type": "object"}}}
        for i in range(3)
    ]
    assistant = client.beta.assistants.create(model="test/tools", tools=tools)  # type: ignore[arg-type]
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
    runs = client.beta.threads.runs
    run = runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, parallel_tool_calls=False)
    rounds = 0
    while run.status == "requires_action":
        assert run.required_action is not None
        calls = run.required_action.submit_tool_outputs.tool_calls
        assert len(calls) == 1
        rounds += 1
        run = runs.submit_tool_outputs_and_poll(
            run_id=run.id,
            thread_id=thread.id,
            tool_outputs=[{"tool_call_id": c.id, "output": f"out {rounds}"} for c in calls],
        )
    assert run.status == "completed" and rounds == 3

    def lister(**params: Any) -> SyncCursorPage[Any]:
        return runs.steps.list(run.id, thread_id=thread.id, **params)

    steps = runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert [s.type for s in steps] == ["tool_calls"] * 3 + ["message_creation"]
    ids = [s.id for s in steps]
    assert ids == sorted(ids)
    check_paging(lister, ids, 1)
    check_paging(lister, ids, 3)
    check_auto_paging(lister, ids, 3)
