"""``runtime``: one engine per database per process, shared by every client on that database,
while each client's model settings stay its own.

Both halves matter together: sharing the engine is what lets a second client cancel or stream
a run the first one started; keeping settings per client is what lets two notebooks on one
database talk to two different model servers. The engine must therefore not remember the
settings of whichever client happened to come first.
"""

from __future__ import annotations

from pathlib import Path

from assistant_kit import local_client
from assistant_kit.runtime import app_for
from tests.fake_upstream import FakeUpstream


def _answer(client, assistant_id: str, text: str) -> str:  # type: ignore[no-untyped-def]
    thread = client.beta.threads.create(messages=[{"role": "user", "content": text}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    assert run.status == "completed", run.last_error
    reply = client.beta.threads.messages.list(thread.id, order="desc").data[0]
    return "".join(part.text.value for part in reply.content if part.type == "text")


def test_two_clients_on_one_database_reach_their_own_model_servers(
    tmp_path: Path, fake_upstream: FakeUpstream
) -> None:
    second_upstream = FakeUpstream()
    try:
        db = tmp_path / "kit.db"
        first = local_client(db, api_key="sk-first", api_base=fake_upstream.url)
        second = local_client(db, api_key="sk-second", api_base=second_upstream.url)
        assert app_for(db) is app_for(db)  # one engine for the database …
        fake_upstream.reply_text("from the first server")
        second_upstream.reply_text("from the second server")
        assistant = first.beta.assistants.create(model="openai/m")
        # … so the second client sees the first one's assistant, and runs it on its own server.
        assert _answer(second, assistant.id, "hello second") == "from the second server"
        assert _answer(first, assistant.id, "hello first") == "from the first server"
        assert [r.headers["authorization"] for r in fake_upstream.requests] == ["Bearer sk-first"]
        assert [r.headers["authorization"] for r in second_upstream.requests] == ["Bearer sk-second"]
        # A client created later with other settings does not change the earlier clients'.
        local_client(db, api_key="sk-third", api_base="http://127.0.0.1:9/v1")
        fake_upstream.reply_text("still the first")
        assert _answer(first, assistant.id, "again") == "still the first"
    finally:
        second_upstream.stop()
