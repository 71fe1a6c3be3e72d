"""``local_client`` / ``local_async_client``: the SDK in-process, inside running loops,
streaming incrementally, sharing one engine per database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import openai

from assistant_kit import local_async_client, local_client
from assistant_kit.models.registry import ProviderSettings


async def _ticks(messages):  # type: ignore[no-untyped-def]
    for i in range(5):
        await asyncio.sleep(0.2)
        yield f"t{i} "


def test_sync_client_inside_a_running_event_loop(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """What a Jupyter cell does: call the sync API while the caller's loop is running."""

    async def cell() -> str:
        client = local_client(tmp_path / "kit.db")
        assistant = client.beta.assistants.create(model="test/echo")
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "inside a loop"}])
        run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
        assert run.status == "completed"
        with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
            stream.until_done()
        return client.beta.threads.messages.list(thread.id).data[0].content[0].text.value

    assert asyncio.run(cell()) == "inside a loop"


def test_in_process_stream_is_incremental(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from assistant_kit import register_model

    register_model("demo/ticks", _ticks)
    client = local_client(tmp_path / "kit.db")
    assistant = client.beta.assistants.create(model="demo/ticks")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
    arrivals = []
    start = time.monotonic()
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        for _ in stream.text_deltas:
            arrivals.append(time.monotonic() - start)
    assert len(arrivals) == 5
    # Deltas arrive as produced (0.2 s apart), not in one blob at the end.
    assert arrivals[0] < 0.6 and arrivals[-1] - arrivals[0] > 0.6


def test_clients_on_one_db_share_the_engine(tmp_path) -> None:  # type: ignore[no-untyped-def]
    first, second = local_client(tmp_path / "kit.db"), local_client(tmp_path / "kit.db")
    assistant = first.beta.assistants.create(model="test/echo", name="shared")
    assert second.beta.assistants.retrieve(assistant.id).name == "shared"
    other = local_client(":memory:")
    assert other.beta.assistants.list().data == []


def test_async_client_from_two_loops(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Runs live on the engine's loop, so they survive the caller's loop closing."""
    client = local_async_client(tmp_path / "kit.db")

    async def start() -> tuple[str, str]:
        assistant = await client.beta.assistants.create(model="test/echo")
        thread = await client.beta.threads.create(messages=[{"role": "user", "content": "later"}])
        run = await client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
        return thread.id, run.id

    thread_id, run_id = asyncio.run(start())
    sync = local_client(tmp_path / "kit.db")
    assert sync.beta.threads.runs.poll(run_id, thread_id=thread_id).status == "completed"


def test_credentials_stay_out_of_reprs_and_store(tmp_path, fake_upstream) -> None:  # type: ignore[no-untyped-def]
    key = "sk-very-secret-value-123"
    settings = ProviderSettings(api_key=key, api_base=fake_upstream.url)
    assert key not in repr(settings)
    client = local_client(tmp_path / "kit.db", api_key=key, api_base=fake_upstream.url)
    assistant = client.beta.assistants.create(model="openai/m")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    assert fake_upstream.last_request.headers["authorization"] == f"Bearer {key}"
    for path in tmp_path.iterdir():
        assert key.encode() not in path.read_bytes()
    assert key not in repr(client._client._transport)  # type: ignore[attr-defined]


def test_remote_mode_is_the_same_client_with_a_base_url(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client()
    assert isinstance(client, openai.OpenAI)
    assert client.beta.assistants.create(model="test/echo").object == "assistant"


_CELL = """
import asyncio, sys, warnings
import assistant_kit
from assistant_kit import local_async_client, local_client
from assistant_kit.notebook.session import Session

db = sys.argv[1]
client = local_client(db)
assistant = client.beta.assistants.create(model="test/echo")
thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
client.beta.threads.messages.create(thread.id, role="user", content="again")
run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
    stream.until_done()
client.beta.threads.messages.list(thread.id)


async def cell():
    aclient = local_async_client(db)
    await aclient.beta.assistants.list()
    await aclient.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)

asyncio.run(cell())
Session(db, live="text").create_assistant("test/echo").create_thread().add_message("x").run().messages()
assistant_kit.get_assistants()
warnings.warn("an unrelated deprecation", DeprecationWarning)
warnings.warn("deprecated", DeprecationWarning, stacklevel=1)  # still the SDK's marker, from __main__
warnings.warn("deprecated", PendingDeprecationWarning)  # another category: shown
print("CELL DONE")
"""


def test_the_sdks_deprecation_warning_is_quiet_for_the_kits_clients(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Jupyter shows the DeprecationWarnings of code run as ``__main__``; the SDK raises one on
    every ``client.beta.*`` call. A subprocess runs such calls as ``__main__`` with every
    warning shown (``-W default``; pytest's own filters would hide them here): the SDK's
    marker is quiet, other warnings are not."""
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", _CELL, str(tmp_path / "kit.db")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "ASSISTANT_KIT_DB": str(tmp_path / "kit.db"), "ASSISTANT_KIT_LIVE": "0"},
    )
    assert done.returncode == 0 and "CELL DONE" in done.stdout, done.stderr
    assert "DeprecationWarning: an unrelated deprecation" in done.stderr
    assert "PendingDeprecationWarning: deprecated" in done.stderr
    assert "DeprecationWarning: deprecated\n" not in done.stderr.replace("PendingDeprecationWarning", "")
    assert "Assistants API is deprecated" not in done.stderr
    warned = [line for line in done.stderr.splitlines() if "Warning:" in line]
    assert len(warned) == 2, done.stderr


def _store_threads() -> int:
    import threading

    return sum(t.name.startswith("assistant_kit-store") for t in threading.enumerate())


def _one_run(client: openai.OpenAI) -> str:
    assistant = client.beta.assistants.create(model="test/echo")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi there"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    return run.status


async def _one_async_run(client: openai.AsyncOpenAI) -> str:
    assistant = await client.beta.assistants.create(model="test/echo")
    thread = await client.beta.threads.create(messages=[{"role": "user", "content": "hi there"}])
    run = await client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    return run.status


def test_a_memory_engine_ends_with_its_last_client() -> None:
    """``:memory:`` engines are their client's alone: once no client (nor a copy sharing its
    transport) is left, the store is closed and its thread ends — not one engine, thread and
    ~5,000 objects kept per client for the life of the process."""
    import gc

    from tests.conftest import wait_for

    before = _store_threads()
    for _ in range(10):
        assert _one_run(local_client(":memory:")) == "completed"
        assert asyncio.run(_one_async_run(local_async_client(":memory:"))) == "completed"
    gc.collect()
    wait_for(lambda: _store_threads() <= before, timeout=30)

    client = local_client(":memory:")
    copy = client.with_options(timeout=30)  # shares the transport: the engine lives on
    del client
    gc.collect()
    time.sleep(0.2)
    assert _one_run(copy) == "completed"
    assert _store_threads() == before + 1
