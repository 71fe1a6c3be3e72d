"""Issue 19 over a real engine (in-process and over HTTP): runs and tool calls across the whole
store, the exact prompt of a truncated run, and millisecond timings in the frames, the
transcript and the timeline — through the engine's inspection extension (docs/inspection.md)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openai
import pytest

from assistant_kit import Session
from assistant_kit.errors import SessionError
from assistant_kit.notebook import tables
from assistant_kit.notebook.inspect import inspect
from tests.notebook.test_tables import TOOLS, XSS, tool_run


def test_runs_and_tool_calls_across_threads_with_filters(client: openai.OpenAI) -> None:
    tools_bot = client.beta.assistants.create(model="test/tools", tools=TOOLS)
    broken = client.beta.assistants.create(model="notebook/half-then-fail")
    first = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
    second = client.beta.threads.create(messages=[{"role": "user", "content": XSS[0]}])
    tool_run(client, first.id, tools_bot.id)
    failed = client.beta.threads.runs.create_and_poll(thread_id=second.id, assistant_id=broken.id)
    assert failed.status == "failed"

    everything = tables.runs(client)
    assert set(everything["thread_id"]) == {first.id, second.id}
    assert (everything["resolution"] == "ms").all()
    week = tables.runs(client, status="failed", since=dt.timedelta(days=7))
    assert list(week["id"]) == [failed.id] and week["thread_id"].iloc[0] == second.id
    assert "upstream broke" in week["last_error"].iloc[0]
    assert tables.runs(client, status=["failed", "completed"], assistant_id=tools_bot.id)["id"].size == 1
    assert tables.runs(client, since=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).empty
    assert list(tables.runs(client, model="notebook/half-then-fail")["id"]) == [failed.id]
    assert list(tables.runs(client, first.id)["thread_id"]) == [first.id]  # the thread form still works

    calls = tables.tool_calls(client)
    assert list(calls["name"]) == ["alpha", "beta"] and list(calls["output"]) == ["out-alpha", "out-beta"]
    assert set(calls["thread_id"]) == {first.id} and (calls["resolution"] == "ms").all()
    assert tables.tool_calls(client, assistant_id=broken.id).empty
    assert len(tables.tool_calls(client, first.id)) == 2


def test_prompt_of_a_max_prompt_tokens_run(tmp_path: Path) -> None:
    s = Session(tmp_path / "kit.db", live="static").create_assistant("test/echo").create_thread()
    s.add_message("Hello! What is a thread?").run()
    s.add_message("Please repeat this: " + "word " * 300).run()
    s.add_message(f"Only the latest turns fit {XSS[0]}").run(max_prompt_tokens=256)
    run_id = s.last_run.id
    frame = tables.prompts(s.client, s.thread.id, run_id)
    texts = list(frame["content"])
    assert texts[-1] == f"Only the latest turns fit {XSS[0]}"
    assert "Hello! What is a thread?" not in texts  # dropped to fit
    assert frame["tokens"].sum() <= 256 and frame["tokens_source"].str.startswith("estimate").all()
    view = s.prompt()
    assert view.run_id == run_id and f"Only the latest turns fit {XSS[0]}" in repr(view)
    html = view._repr_html_()
    assert "&lt;script&gt;" in html and "<script" not in html
    step_id = s.steps(run_id)["id"].iloc[-1]
    by_step = s.prompt(step_id)
    assert by_step.run_id == run_id and by_step.turns and by_step.step_id == step_id
    with pytest.raises(SessionError, match="No step"):
        s.prompt("step_nope")

    ins = s.inspect()
    transcript = ins._transcript_html()
    assert transcript.count("class='ak-prompt'") == 3 and "max_prompt_tokens=256" in transcript
    assert (ins.runs["resolution"] == "ms").all() and ins.runs["first_token_s"].notna().all()
    assert ins.runs["ended_at"].notna().all()


def test_incomplete_run_has_an_end_in_milliseconds(client: openai.OpenAI) -> None:
    bot = client.beta.assistants.create(model="test/echo")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "word " * 400}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=bot.id, max_completion_tokens=256
    )
    assert run.status == "incomplete"
    ins = inspect(thread, client)
    row = ins.runs.iloc[0]
    assert row["resolution"] == "ms" and row["ended_at"] == row["ended_at"]  # not NaT
    assert row["duration_s"] >= 0 and "end unknown" not in ins.timeline_svg()
    assert "incomplete: max_completion_tokens" in repr(ins)


def test_the_prompt_of_a_turn_that_broke_off_is_found_from_its_partial_message(client: openai.OpenAI) -> None:
    """A model turn cut short mid-answer (here the model server breaks off after one word)
    names its partial message's step in its recorded prompt, so ``prompt(step_id)`` and the
    prompts frame link the two, as for a turn that completed."""
    from assistant_kit.notebook._prompts import find_prompt

    broken = client.beta.assistants.create(model="notebook/half-then-fail")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go on"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=broken.id)
    assert run.status == "failed"
    (step,) = tables.steps(client, thread.id).itertuples()
    assert (step.type, step.status) == ("message_creation", "failed")
    view = find_prompt(client, thread.id, step.id)
    assert view.run_id == run.id and len(view.turns) == 1
    assert "go on" in repr(view) and "No model request was recorded" not in repr(view)
    frame = tables.prompts(client, thread.id, run.id)
    assert len(frame) and all(ids == [step.id] for ids in frame["step_ids"])
