"""Two engines on one database behave as one service.

Each replica is an :class:`Engine` with its own :class:`Store` (its own connections), served
by uvicorn on a thread of its own, and clients talk to them over HTTP with the official SDK.
The HTTP tests run on PostgreSQL (a fresh database; skipped without
``ASSISTANT_KIT_TEST_PG_URL``) and on one SQLite file (a notebook and a server sharing it):
on PostgreSQL the replicas also talk over LISTEN/NOTIFY, on SQLite only through the store.
The bus tests put two engines on one event loop, so nothing but PostgreSQL connects them.
Killing a replica's process is in tests/server/test_replicas_pg.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from assistant_kit import register_model
from assistant_kit._ids import new_id, now
from assistant_kit.engine.app import create_app
from assistant_kit.engine.bus import PAYLOAD_LIMIT, PgBus
from assistant_kit.engine.core import Engine
from assistant_kit.store import Store
from tests.conftest import serve, wait_for
from tests.postgres import fresh_database, query

pytestmark = pytest.mark.timeout(120)

TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
    },
}


def _words(count: int, pause: float) -> Any:
    async def model(messages: Any) -> Any:
        for i in range(count):
            await asyncio.sleep(pause)
            yield f"w{i} "

    return model


register_model("replica/slow", _words(30, 0.02))  # ~0.6 s of deltas
register_model("replica/endless", _words(3000, 0.01))  # runs until cancelled


@dataclass
class Replica:
    engine: Engine
    client: openai.OpenAI

    def call(self, coro: Any) -> Any:
        """Run ``coro`` on the replica's own loop (where its engine lives)."""
        assert self.engine.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.engine.loop).result(30)


@contextmanager
def replicas(db: Any, count: int = 2, **engine_options: Any) -> Iterator[list[Replica]]:
    """``count`` engines on ``db``, each served over HTTP; stopped cleanly at the end."""
    engine_options.setdefault("renew_seconds", 0.1)
    engine_options.setdefault("sweep_seconds", 0.2)
    engines = [Engine(Store(db), **engine_options) for _ in range(count)]
    with _served(engines) as urls:
        found = []
        for engine, url in zip(engines, urls, strict=True):
            client = openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0)
            client.beta.assistants.list(limit=1)  # the first request starts the engine
            found.append(Replica(engine, client))
        try:
            yield found
        finally:
            for replica in found:
                replica.call(replica.engine.aclose())
                replica.client.close()
    for engine in engines:
        engine.sync_store.close()


@contextmanager
def _served(engines: list[Engine]) -> Iterator[list[str]]:
    if not engines:
        yield []
        return
    with serve(create_app(engines[0])) as url, _served(engines[1:]) as rest:
        yield [url, *rest]


@pytest.fixture(params=["postgresql", "sqlite"])
def shared_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        yield tmp_path / "shared.db"
    else:
        with fresh_database() as url:
            yield url


def _is_pg(db: Any) -> bool:
    return isinstance(db, str) and db.startswith("postgresql")


def _setup(client: openai.OpenAI, model: str, **assistant: Any) -> tuple[Any, Any]:
    a = client.beta.assistants.create(model=model, **assistant)
    t = client.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
    return a, t


def _answering(client: openai.OpenAI, thread_id: str) -> bool:
    """The run has started its answer (the assistant message exists; its text comes at the end)."""
    return client.beta.threads.messages.list(thread_id).data[0].role == "assistant"


def _text(client: openai.OpenAI, thread_id: str) -> str:
    message = client.beta.threads.messages.list(thread_id).data[0]
    return message.content[0].text.value if message.content else ""


# -- HTTP: one service through either replica ------------------------------------------------------


def test_poll_and_read_through_the_other_replica(shared_db: Any) -> None:
    with replicas(shared_db) as (a, b):
        asst, thread = _setup(a.client, "replica/slow")
        run = a.client.beta.threads.runs.create(thread_id=thread.id, assistant_id=asst.id)
        assert b.client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status in (
            "queued",
            "in_progress",
        )
        done = b.client.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=50)
        assert done.status == "completed" and done.usage.completion_tokens == 30
        assert _text(b.client, thread.id) == "".join(f"w{i} " for i in range(30))
        assert [r.id for r in b.client.beta.threads.runs.list(thread.id).data] == [run.id]
        steps = b.client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id).data
        assert [s.status for s in steps] == ["completed"]
        wait_for(lambda: run.id not in a.engine.executor.handles, timeout=3)
        assert run.id not in b.engine.executor.handles


def test_cancel_through_the_other_replica(shared_db: Any) -> None:
    """On PostgreSQL the executor hears of the cancel at once (NOTIFY), so the lease renewal is
    made slow here to show it is not what stops the run; on SQLite the renewal is the way."""
    pg = _is_pg(shared_db)
    options = {"renew_seconds": 5.0, "lease_seconds": 30.0} if pg else {}
    with replicas(shared_db, **options) as (a, b):
        asst, thread = _setup(a.client, "replica/endless")
        stream = a.client.beta.threads.runs.create(thread_id=thread.id, assistant_id=asst.id, stream=True)
        events = iter(stream)
        run_id = next(events).data.id
        wait_for(lambda: _answering(b.client, thread.id), timeout=10)
        started = time.monotonic()
        cancelling = b.client.beta.threads.runs.cancel(run_id, thread_id=thread.id)
        assert cancelling.status == "cancelling"
        seen = [event.event for event in events]  # the stream on A ends with the cancel
        stream.close()
        run = b.client.beta.threads.runs.poll(run_id, thread_id=thread.id, poll_interval_ms=20)
        assert run.status == "cancelled" and run.cancelled_at
        assert time.monotonic() - started < (2.0 if pg else 3.0)
        assert seen[-1] == "thread.run.cancelled"
        assert "thread.run.cancelling" in seen
        message = b.client.beta.threads.messages.list(thread.id).data[0]
        assert message.status == "incomplete" and message.incomplete_details.reason == "run_cancelled"
        assert message.content[0].text.value.startswith("w0 ")  # what was streamed is kept
        (step,) = b.client.beta.threads.runs.steps.list(run_id=run_id, thread_id=thread.id).data
        assert step.status == "cancelled"
        wait_for(lambda: run_id not in a.engine.executor.handles, timeout=3)
        with pytest.raises(openai.BadRequestError):
            a.client.beta.threads.runs.cancel(run_id, thread_id=thread.id)


def test_first_token_time_reaches_the_other_replica_while_the_run_streams(shared_db: Any) -> None:
    """The inspector of replica B, which reads only the store, sees the first-token time of a run
    A is still streaming: it is written with the step the first token opens, not with the run's
    next write (here: never before the cancel). After the cancel, the recorded prompt of the
    cut-short turn names the partial message's step."""
    with replicas(shared_db) as (a, b):
        asst, thread = _setup(a.client, "replica/endless")
        run = a.client.beta.threads.runs.create(thread_id=thread.id, assistant_id=asst.id)
        wait_for(lambda: _answering(b.client, thread.id), timeout=10)
        path = f"/threads/{thread.id}/runs/{run.id}/inspection"
        body = b.client.get(path, cast_to=object)
        assert isinstance(body, dict) and run.id not in b.engine.executor.handles  # B has the store only
        assert b.client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "in_progress"
        timings, (step,) = body["timings"], body["steps"]
        assert timings["first_token_at_ms"] is not None and timings["ended_at_ms"] is None
        assert step["first_token_at_ms"] == timings["first_token_at_ms"] and step["ended_at_ms"] is None
        assert timings["started_at_ms"] <= step["created_at_ms"] <= step["first_token_at_ms"]
        (prompt,) = body["prompts"]
        assert prompt["step_ids"] == []  # the turn is still streaming: linked when it ends

        b.client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
        ended = b.client.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=20)
        assert ended.status == "cancelled"
        after = b.client.get(path, cast_to=object)
        assert isinstance(after, dict)
        assert after["timings"]["first_token_at_ms"] == timings["first_token_at_ms"]  # never moved
        assert after["steps"][0]["ended_at_ms"] is not None
        (cut,) = after["prompts"]
        assert cut["step_ids"] == [step["step_id"]]  # the partial message's step
        message = b.client.beta.threads.messages.list(thread.id).data[0]
        assert message.status == "incomplete" and message.content[0].text.value.startswith("w0 ")


def test_submit_tool_outputs_through_the_other_replica(shared_db: Any) -> None:
    """A run parked in requires_action on A is resumed, and streamed to completion, by B."""
    with replicas(shared_db) as (a, b):
        asst, thread = _setup(a.client, "test/tools", tools=[TOOL])
        run = a.client.beta.threads.runs.create(thread_id=thread.id, assistant_id=asst.id)
        run = b.client.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=20)
        assert run.status == "requires_action"
        assert run.id in a.engine.executor.handles  # parked on A
        (call,) = run.required_action.submit_tool_outputs.tool_calls
        stamps: list[tuple[float, str]] = []
        with b.client.beta.threads.runs.submit_tool_outputs_stream(
            thread_id=thread.id, run_id=run.id, tool_outputs=[{"tool_call_id": call.id, "output": "42"}]
        ) as stream:
            for event in stream:
                stamps.append((time.monotonic(), event.event))
            final = stream.get_final_run()
        names = [name for _, name in stamps]
        assert names[0] == "thread.run.step.completed" and names[-1] == "thread.run.completed"
        assert "thread.message.delta" in names
        assert final.status == "completed"
        assert "lookup returned 42" in _text(a.client, thread.id)
        # B executed the rest; A let go of the parked run (told over the bus on PostgreSQL,
        # or on its next read of the run on SQLite).
        assert a.client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "completed"
        wait_for(lambda: run.id not in a.engine.executor.handles, timeout=3)
        assert run.id not in b.engine.executor.handles
        steps = b.client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id, order="asc").data
        assert [(s.type, s.status) for s in steps] == [
            ("tool_calls", "completed"),
            ("message_creation", "completed"),
        ]
        assert steps[0].step_details.tool_calls[0].function.output == "42"


def test_concurrent_tool_outputs_to_both_replicas_one_wins(shared_db: Any) -> None:
    with replicas(shared_db) as (a, b):
        asst, thread = _setup(a.client, "test/tools", tools=[TOOL])
        run = a.client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=asst.id, poll_interval_ms=20
        )
        (call,) = run.required_action.submit_tool_outputs.tool_calls
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def submit(replica: Replica, output: str) -> None:
            barrier.wait()
            try:
                replica.client.beta.threads.runs.submit_tool_outputs(
                    thread_id=thread.id,
                    run_id=run.id,
                    tool_outputs=[{"tool_call_id": call.id, "output": output}],
                )
                outcomes.append(output)
            except openai.BadRequestError as exc:
                assert "do not accept tool outputs" in exc.message
                outcomes.append("refused")

        workers = [threading.Thread(target=submit, args=(r, o)) for r, o in ((a, "from-a"), (b, "from-b"))]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert sorted(outcomes)[0] in ("from-a", "from-b") and sorted(outcomes)[1] == "refused"
        winner = next(o for o in outcomes if o != "refused")
        done = b.client.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=20)
        assert done.status == "completed"
        assert f"lookup returned {winner}" in _text(b.client, thread.id)


def test_metadata_update_through_the_other_replica_survives_the_executor(shared_db: Any) -> None:
    with replicas(shared_db) as (a, b):
        asst, thread = _setup(a.client, "replica/slow")
        run = a.client.beta.threads.runs.create(thread_id=thread.id, assistant_id=asst.id)
        updated = b.client.beta.threads.runs.update(run.id, thread_id=thread.id, metadata={"k": "v"})
        assert updated.metadata == {"k": "v"}
        done = a.client.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=20)
        assert done.status == "completed"
        if _is_pg(shared_db):  # the executor adopted it (bus) before its last write
            assert done.metadata == {"k": "v"}
        final = b.client.beta.threads.runs.update(run.id, thread_id=thread.id, metadata={"k": "w"})
        assert final.status == "completed" and final.metadata == {"k": "w"}  # status untouched


def test_orphans_are_settled_when_an_engine_starts(shared_db: Any) -> None:
    """Runs left active by a process that died (here: rows it left behind) are settled by the
    next engine's first sweep, before anyone reads them: executing ones failed, a cancelling
    one cancelled, one waiting for tool outputs past its expiry expired; a fresh lease is kept."""
    store = Store(shared_db)
    thread_ids = []

    def leave(
        status: str, beat_age: float, expires_in: int = 600, lease: str = "dead-worker"
    ) -> dict[str, Any]:
        thread = {"id": new_id("thread"), "object": "thread", "created_at": now(), "metadata": {}}
        run = {
            "id": new_id("run"),
            "object": "thread.run",
            "created_at": now() - 100,
            "thread_id": thread["id"],
            "assistant_id": "asst_x",
            "status": status,
            "expires_at": now() + expires_in,
            "required_action": {"type": "submit_tool_outputs"} if status == "requires_action" else None,
            "last_error": None,
        }
        store.insert("thread", thread)
        store.insert_if_idle(thread["id"], [("thread.run", run)], lease=lease)
        from sqlalchemy import update

        from assistant_kit.store import schema

        with store.engine.begin() as conn:
            table = schema.runs
            conn.execute(
                update(table).where(table.c.id == run["id"]).values(heartbeat_at=time.time() - beat_age)
            )
        thread_ids.append(thread["id"])
        return run

    executing = leave("in_progress", beat_age=60)
    message = {
        "id": new_id("msg"),
        "object": "thread.message",
        "created_at": now(),
        "thread_id": executing["thread_id"],
        "run_id": executing["id"],
        "role": "assistant",
        "status": "in_progress",
        "content": [],
    }
    step = {
        "id": new_id("step"),
        "object": "thread.run.step",
        "created_at": now(),
        "thread_id": executing["thread_id"],
        "run_id": executing["id"],
        "type": "message_creation",
        "status": "in_progress",
    }
    store.insert_many([("thread.message", message), ("thread.run.step", step)])
    queued = leave("queued", beat_age=45)
    cancelling = leave("cancelling", beat_age=45)
    parked = leave("requires_action", beat_age=0, expires_in=-5)
    alive = leave("in_progress", beat_age=1, lease="live-worker")
    store.close()

    with replicas(shared_db, count=1, lease_seconds=30, sweep_seconds=60) as (replica,):
        engine = replica.engine
        runs = {r["id"]: r for r in (executing, queued, cancelling, parked, alive)}

        def stored(run_id: str) -> dict[str, Any]:
            return engine.sync_store.get("thread.run", run_id)

        wait_for(lambda: stored(parked["id"])["status"] == "expired", timeout=5)  # the first sweep ran
        assert stored(executing["id"])["status"] == "failed"
        error = stored(executing["id"])["last_error"]
        assert error["code"] == "server_error"
        assert error["message"].startswith("The server executing this run stopped")
        assert stored(executing["id"])["failed_at"]
        assert stored(queued["id"])["status"] == "failed"
        assert stored(cancelling["id"])["status"] == "cancelled"
        assert stored(alive["id"])["status"] == "in_progress"  # its lease is fresh: someone runs it
        assert engine.sync_store.get("thread.message", message["id"])["status"] == "incomplete"
        assert engine.sync_store.get("thread.run.step", step["id"])["status"] == "failed"
        # The inspector: every settled run has an end (when it was settled), the one still
        # executing none; what the dead process never stamped stays unknown, not 0.
        for run_id, run in runs.items():
            path = f"/threads/{run['thread_id']}/runs/{run_id}/inspection"
            inspection = replica.client.get(path, cast_to=object)
            assert (inspection["timings"]["ended_at_ms"] is None) == (run_id == alive["id"])  # type: ignore[index]
            assert inspection["timings"]["created_at_ms"] is None  # type: ignore[index]
        (left,) = replica.client.get(
            f"/threads/{executing['thread_id']}/runs/{executing['id']}/inspection", cast_to=object
        )["steps"]  # type: ignore[index]
        assert left["ended_at_ms"] is not None and left["created_at_ms"] is None
        # The threads of settled runs take new work again; the live one does not.
        for run_id, run in runs.items():
            if run_id == alive["id"]:
                with pytest.raises(openai.BadRequestError):
                    replica.client.beta.threads.messages.create(run["thread_id"], role="user", content="x")
            else:
                replica.client.beta.threads.messages.create(run["thread_id"], role="user", content="x")


def test_a_frozen_executor_loses_its_run_and_does_not_write_again(shared_db: Any) -> None:
    """A replica that stops renewing (frozen, cut off) for longer than the lease has its run
    failed by the other. On PostgreSQL it hears so (``settled``) and stops the task at once;
    in any case its next write is refused and it lets the run go without writing."""
    with replicas(shared_db, lease_seconds=1.0) as (a, b):
        asst, thread = _setup(a.client, "replica/endless")
        run = a.client.beta.threads.runs.create(thread_id=thread.id, assistant_id=asst.id)
        wait_for(lambda: _answering(b.client, thread.id), timeout=10)
        a.call(_stop_renewing(a.engine))  # its task keeps streaming
        failed = wait_for(
            lambda: (
                (r := b.client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)).status == "failed"
                and r
            ),
            timeout=10,
        )
        assert failed.last_error.message.startswith("The server executing this run stopped")
        if _is_pg(shared_db):
            wait_for(lambda: run.id not in a.engine.executor.handles, timeout=5)
        else:
            handle = a.engine.executor.handles[run.id]
            a.call(_write_now(a.engine, handle))  # A's next write: refused, and A gives up the run
            wait_for(lambda: run.id not in a.engine.executor.handles, timeout=5)
        stored = b.client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
        assert stored.status == "failed" and stored.last_error == failed.last_error


async def _stop_renewing(engine: Engine) -> None:
    (renew,) = [task for task in engine._services if task.get_name() == "renew"]
    renew.cancel()


async def _write_now(engine: Engine, handle: Any) -> None:
    """What A's task does at its next status write, done now (instead of waiting for the end)."""
    from assistant_kit.engine.runs import _Stop

    handle.run["status"] = "requires_action"
    try:
        await engine.executor._save_run(handle.run)
    except _Stop as stop:
        assert stop.reason == "lost"
        handle.stop_reason = "lost"
        handle.task.cancel()
    else:
        raise AssertionError("a lost run was written")


# -- the bus: events between engines that share nothing but PostgreSQL --------------------------------


def test_events_reach_a_subscriber_on_the_other_replica(pg_url: str) -> None:
    """B subscribes to a run A executes: it gets A's events, incrementally (not at the end),
    in order and identical (large objects travel as fragments)."""
    long_instructions = "Be brief. " * 2000  # the run object alone is ~20 KB: over one NOTIFY

    async def main() -> tuple[list[tuple[float, str, Any]], list[tuple[float, str, Any]]]:
        a = Engine(Store(pg_url))
        b = Engine(Store(pg_url))
        await a.start()
        await b.start()
        try:
            asst = await a.create_assistant({"model": "replica/slow", "instructions": long_instructions})
            thread = await a.create_thread({"messages": [{"role": "user", "content": "hi"}]})
            run, sub_a = await a.create_run(thread["id"], {"assistant_id": asst["id"]}, stream=True)
            sub_b = b.hub.subscribe(run["id"], remote=True)

            async def collect(sub: Any) -> list[tuple[float, str, Any]]:
                return [(time.monotonic(), name, data) async for name, data in sub.events()]

            return await asyncio.wait_for(asyncio.gather(collect(sub_a), collect(sub_b)), 30)
        finally:
            for engine in (a, b):
                await engine.aclose()
                engine.sync_store.close()

    on_a, on_b = asyncio.run(main())

    def summary(events: list[tuple[float, str, Any]]) -> tuple[list[str], str]:
        names = [n for _, n, _ in events if n != "thread.message.delta"]
        text = "".join(
            d["delta"]["content"][0]["text"]["value"] for _, n, d in events if n == "thread.message.delta"
        )
        return names, text

    assert summary(on_b) == summary(on_a)
    assert summary(on_b)[1] == "".join(f"w{i} " for i in range(30))
    runs_a = [d for _, n, d in on_a if n.startswith("thread.run.") and not n.startswith("thread.run.step")]
    runs_b = [d for _, n, d in on_b if n.startswith("thread.run.") and not n.startswith("thread.run.step")]
    assert runs_b == runs_a and runs_b[0]["instructions"] == long_instructions
    deltas = [t for t, n, _ in on_b if n == "thread.message.delta"]
    assert len(deltas) >= 5  # batched every ~20 ms, not all at once at the end
    assert on_b[-1][0] - deltas[0] > 0.3


def test_bus_payloads_pack_merge_and_fragment() -> None:
    received: list[tuple[str, str, Any]] = []
    controls: list[dict[str, Any]] = []
    sender = PgBus("", "w-a", lambda *e: None, lambda m: None)
    receiver = PgBus("", "w-b", lambda *e: received.append(e), controls.append)

    def delta(text: str, message_id: str = "msg_1") -> dict[str, Any]:
        part = {"index": 0, "type": "text", "text": {"value": text, "annotations": []}}
        return {"id": message_id, "object": "thread.message.delta", "delta": {"content": [part]}}

    big = {"id": "run_1", "instructions": 'é"\\x' * 5000}  # escapes grow when nested
    messages = [
        {"t": "e", "r": "run_1", "e": "thread.message.delta", "d": delta("a ")},
        {"t": "e", "r": "run_1", "e": "thread.message.delta", "d": delta("b ")},
        {"t": "e", "r": "run_1", "e": "thread.message.delta", "d": delta("c ", "msg_2")},
        {"t": "e", "r": "run_1", "e": "thread.run.in_progress", "d": big},
        {"t": "cancel", "r": "run_1"},
        *(
            {"t": "e", "r": f"run_{i}", "e": "thread.run.queued", "d": {"id": f"run_{i}", "pad": "x" * 500}}
            for i in range(40)
        ),
    ]
    payloads = list(sender.payloads(messages))
    assert all(len(p.encode()) <= PAYLOAD_LIMIT for p in payloads)
    assert sum('"f":' in p for p in payloads) > 5  # the big one, in fragments
    for payload in payloads:
        receiver.received(payload)
        sender.received(payload)  # its own notifications: ignored
    assert received[0] == ("run_1", "thread.message.delta", delta("a b "))  # merged
    assert received[1] == ("run_1", "thread.message.delta", delta("c ", "msg_2"))  # other message
    assert received[2] == ("run_1", "thread.run.in_progress", big)  # reassembled
    assert controls == [{"t": "cancel", "r": "run_1"}]
    assert [r for r, _, _ in received[3:]] == [f"run_{i}" for i in range(40)]
    receiver.received("not json")  # ignored, logged


def test_notify_payload_limit_is_real(pg_url: str) -> None:
    """The limit the bus packs to is below what PostgreSQL accepts."""
    query(pg_url, "SELECT pg_notify('assistant_kit_runs', %s)", "x" * PAYLOAD_LIMIT)
    with pytest.raises(Exception, match="payload string too long"):
        query(pg_url, "SELECT pg_notify('assistant_kit_runs', %s)", "x" * 8000)
