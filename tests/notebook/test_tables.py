"""DataFrames of messages, runs, steps, threads and assistants — built from real runs of the
scripted models through the official SDK (in-process and over HTTP) — and ``display_frame``."""

from __future__ import annotations

import sys
from typing import Any

import openai
import pandas as pd
import pytest

from assistant_kit import local_client, register_model
from assistant_kit.notebook import tables
from tests.notebook import objects

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]},
        },
    }
    for name in ("alpha", "beta")
]
XSS = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>"]


async def _half_then_fail(messages):  # type: ignore[no-untyped-def]
    yield "partial "
    raise RuntimeError("<b>upstream broke</b>")


register_model("notebook/half-then-fail", _half_then_fail)


def tool_run(client: openai.OpenAI, thread_id: str, assistant_id: str) -> Any:
    """A ``test/tools`` run driven to completion: one tool per round, outputs ``out-<name>``."""
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant_id, parallel_tool_calls=False
    )
    while run.status == "requires_action":
        calls = run.required_action.submit_tool_outputs.tool_calls
        run = client.beta.threads.runs.submit_tool_outputs_and_poll(
            thread_id=thread_id,
            run_id=run.id,
            tool_outputs=[{"tool_call_id": c.id, "output": f"out-{c.function.name}"} for c in calls],
        )
    assert run.status == "completed"
    return run


def conversation(client: openai.OpenAI, first: str = "hello there") -> dict[str, Any]:
    """A thread with two completed runs: ``test/tools`` (alpha, beta in two rounds), then ``test/echo``."""
    tools_bot = client.beta.assistants.create(model="test/tools", tools=TOOLS, name="tools bot")
    echo_bot = client.beta.assistants.create(model="test/echo", name="echo bot")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": first}])
    run1 = tool_run(client, thread.id, tools_bot.id)
    client.beta.threads.messages.create(thread.id, role="user", content="say it again")
    run2 = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=echo_bot.id)
    assert run2.status == "completed"
    return {"thread": thread, "runs": [run1, run2], "assistants": [tools_bot, echo_bot]}


def _is_utc(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.DatetimeTZDtype) and str(series.dtype.tz) == "UTC"


# -- messages --------------------------------------------------------------------------------


def test_messages_columns_dtypes_and_values(client: openai.OpenAI) -> None:
    conv = conversation(client)
    run1, run2 = conv["runs"]
    df = tables.messages(client, conv["thread"].id)
    assert list(df.columns) == list(tables.MESSAGE_COLUMNS)
    assert _is_utc(df["created_at"]) and df["created_at"].notna().all()
    assert df["attachments"].dtype == "int64" and (df["attachments"] == 0).all()
    assert list(df["role"]) == ["user", "assistant", "user", "assistant"]
    assert list(df["status"]) == ["completed"] * 4
    assert df["text"][0] == "hello there"
    assert df["text"][1] == "Tool results: alpha returned out-alpha; beta returned out-beta"
    assert list(df["text"][2:]) == ["say it again", "say it again"]
    assert list(df["run_id"]) == [None, run1.id, None, run2.id]
    assert list(df["assistant_id"]) == [
        None,
        *(a.id for a in conv["assistants"][:1]),
        None,
        conv["assistants"][1].id,
    ]
    assert df["metadata"][0] == {}
    sdk_ids = [m.id for m in client.beta.threads.messages.list(conv["thread"].id, order="asc")]
    assert list(df["id"]) == sdk_ids


def test_messages_run_filter_limit_and_order(client: openai.OpenAI) -> None:
    conv = conversation(client)
    thread_id = conv["thread"].id
    run1, run2 = conv["runs"]
    only = tables.messages(client, thread_id, run_id=run1.id)
    assert list(only["run_id"]) == [run1.id] and only["text"][0].startswith("Tool results:")
    assert list(tables.messages(client, thread_id, run_id=run2.id)["role"]) == ["assistant"]
    latest = tables.messages(client, thread_id, limit=1, order="desc")
    assert len(latest) == 1 and latest["run_id"][0] == run2.id
    assert len(tables.messages(client, thread_id, limit=0)) == 0


def test_messages_paginate_past_one_page(client: openai.OpenAI) -> None:
    texts = [f"message {i} <{i}>" for i in range(250)]
    thread = client.beta.threads.create(messages=[{"role": "user", "content": t} for t in texts[:120]])
    for text in texts[120:]:
        client.beta.threads.messages.create(thread.id, role="user", content=text)
    df = tables.messages(client, thread.id)
    assert len(df) == 250 and df["id"].is_unique
    assert list(df["text"]) == texts  # every page, in order, nothing repeated
    assert df["created_at"].is_monotonic_increasing
    desc = tables.messages(client, thread.id, order="desc")
    assert list(desc["text"]) == texts[::-1]
    partial = tables.messages(client, thread.id, limit=150)
    assert list(partial["text"]) == texts[:150]


def test_empty_thread_gives_typed_empty_frames(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()
    for frame, columns in (
        (tables.messages(client, thread.id), tables.MESSAGE_COLUMNS),
        (tables.runs(client, thread.id), tables.RUN_COLUMNS),
        (tables.steps(client, thread.id), tables.STEP_COLUMNS),
    ):
        assert len(frame) == 0 and list(frame.columns) == list(columns)
        assert _is_utc(frame["created_at"])
    assert tables.runs(client, thread.id)["total_tokens"].dtype == "Int64"


def test_unknown_thread_raises_the_sdk_error(client: openai.OpenAI) -> None:
    """An unknown thread or run is the SDK's 404 from every table, not an empty frame: runs,
    steps and tool calls read ``GET /runs``/``GET /runs/steps``, whose 404 names the filter."""
    with pytest.raises(openai.NotFoundError):
        tables.messages(client, "thread_does_not_exist")
    for read in (tables.runs, tables.steps, tables.tool_calls):
        with pytest.raises(openai.NotFoundError) as err:
            read(client, "thread_does_not_exist")
        assert err.value.body["param"] == "thread_id", read  # type: ignore[index]
        assert "thread_does_not_exist" in err.value.message
    thread = client.beta.threads.create()
    for call in (
        lambda: tables.steps(client, thread.id, "run_nope"),
        lambda: tables.tool_calls(client, run_id="run_nope"),  # not "the server lacks the route"
    ):
        with pytest.raises(openai.NotFoundError) as err:
            call()
        assert err.value.body["param"] == "run_id"  # type: ignore[index]


# -- runs and steps ----------------------------------------------------------------------------


def test_runs_columns_tokens_durations(client: openai.OpenAI) -> None:
    conv = conversation(client)
    run1, run2 = conv["runs"]
    df = tables.runs(client, conv["thread"].id)
    assert list(df.columns) == list(tables.RUN_COLUMNS)
    assert list(df["id"]) == [run1.id, run2.id]
    for col in ("created_at", "started_at", "ended_at"):
        assert _is_utc(df[col]) and df[col].notna().all()
    assert list(df["status"]) == ["completed", "completed"]
    assert list(df["model"]) == ["test/tools", "test/echo"]
    assert list(df["assistant_id"]) == [a.id for a in conv["assistants"]]
    for col in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert df[col].dtype == "Int64"
        assert list(df[col]) == [getattr(run1.usage, col), getattr(run2.usage, col)]
    assert (df["total_tokens"] == df["prompt_tokens"] + df["completion_tokens"]).all()
    assert df["duration_s"].dtype == "float64" and (df["duration_s"] >= 0).all()
    assert (df["ended_at"] >= df["started_at"]).all()
    assert list(df["tools"]) == [["alpha", "beta"], []]
    assert df["last_error"].isna().all()
    assert list(tables.runs(client, conv["thread"].id, limit=1)["id"]) == [run1.id]


def test_failed_and_in_flight_runs(client: openai.OpenAI) -> None:
    tools_bot = client.beta.assistants.create(model="test/tools", tools=TOOLS)
    broken = client.beta.assistants.create(model="notebook/half-then-fail")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
    failed = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=broken.id)
    assert failed.status == "failed"
    client.beta.threads.messages.create(thread.id, role="user", content="try tools")
    waiting = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=tools_bot.id, parallel_tool_calls=False
    )
    assert waiting.status == "requires_action"

    runs = tables.runs(client, thread.id)
    assert list(runs["status"]) == ["failed", "requires_action"]
    assert "upstream broke" in runs["last_error"][0]
    assert runs["ended_at"].notna()[0] and runs["duration_s"][0] >= 0
    assert runs["ended_at"].isna()[1] and pd.isna(runs["duration_s"][1])

    steps = tables.steps(client, thread.id)
    by_run = steps.groupby("run_id")["status"].apply(list).to_dict()
    assert by_run[failed.id] == ["failed"]
    assert by_run[waiting.id] == ["in_progress"]
    pending = steps[steps["run_id"] == waiting.id].iloc[0]
    assert pending["type"] == "tool_calls"
    assert pending["tool_calls"] == ['alpha({"x": 1})'] and pending["tool_outputs"] == [None]
    assert pd.isna(pending["ended_at"]) and pd.isna(pending["duration_s"])
    broken_step = steps[steps["run_id"] == failed.id].iloc[0]
    assert broken_step["type"] == "message_creation" and broken_step["duration_s"] >= 0
    assert list(tables.messages(client, thread.id, run_id=failed.id)["status"]) == ["incomplete"]


def test_steps_of_all_runs_and_of_one(client: openai.OpenAI) -> None:
    conv = conversation(client)
    thread_id = conv["thread"].id
    run1, run2 = conv["runs"]
    df = tables.steps(client, thread_id)
    assert list(df.columns) == list(tables.STEP_COLUMNS)
    assert list(df["run_id"]) == [run1.id] * 3 + [run2.id]
    assert list(df["type"]) == ["tool_calls", "tool_calls", "message_creation", "message_creation"]
    assert list(df["status"]) == ["completed"] * 4
    assert list(df["tool_calls"]) == [['alpha({"x": 1})'], ['beta({"x": 1})'], [], []]
    assert list(df["tool_outputs"]) == [["out-alpha"], ["out-beta"], [], []]
    messages = tables.messages(client, thread_id)
    assistant_ids = list(messages[messages["role"] == "assistant"]["id"])
    assert list(df["message_id"]) == [None, None, *assistant_ids]
    assert df["tokens"].dtype == "Int64" and (df["tokens"] > 0).all()
    for col in ("created_at", "completed_at", "ended_at"):
        assert _is_utc(df[col]) and df[col].notna().all()
    assert (df["duration_s"] >= 0).all()
    sdk = client.beta.threads.runs.steps.list(run_id=run1.id, thread_id=thread_id, order="asc").data
    assert list(df["id"][:3]) == [s.id for s in sdk]

    one = tables.steps(client, thread_id, run_id=run2.id)
    assert list(one["id"]) == [df["id"][3]]


# -- threads and assistants ----------------------------------------------------------------------


def test_threads_newest_first_with_metadata(client: openai.OpenAI) -> None:
    made = [client.beta.threads.create(metadata={"n": str(i)}) for i in range(3)]
    df = tables.threads(client)
    assert list(df.columns) == ["id", "created_at", "metadata"]
    assert list(df["id"]) == [t.id for t in reversed(made)]
    assert list(df["metadata"]) == [{"n": "2"}, {"n": "1"}, {"n": "0"}]
    assert _is_utc(df["created_at"])
    assert list(tables.threads(client, limit=2)["id"]) == [made[2].id, made[1].id]
    assert list(tables.threads(client, order="asc")["id"]) == [t.id for t in made]


def test_assistants_with_full_instructions(client: openai.OpenAI) -> None:
    long = "Follow these rules. " * 100
    first = client.beta.assistants.create(model="test/echo", name="plain", instructions="short")
    second = client.beta.assistants.create(
        model="test/tools",
        name="tooled",
        instructions=long,
        tools=[*TOOLS, {"type": "code_interpreter"}],
        metadata={"team": "docs"},
    )
    df = tables.assistants(client)
    assert list(df.columns) == ["id", "created_at", "name", "model", "tools", "instructions", "metadata"]
    assert list(df["id"]) == [second.id, first.id]
    assert list(df["name"]) == ["tooled", "plain"]
    assert list(df["model"]) == ["test/tools", "test/echo"]
    assert df["tools"][0] == ["alpha", "beta", "code_interpreter"] and df["tools"][1] == []
    assert df["instructions"][0] == long  # full text; only display truncates
    assert list(df["metadata"]) == [{"team": "docs"}, {}]
    assert list(tables.assistants(client, limit=1)["id"]) == [second.id]


# -- display ---------------------------------------------------------------------------------------


def test_display_frame_escapes_model_output_and_truncates(client: openai.OpenAI) -> None:
    long = "word " * 1000
    thread = client.beta.threads.create(messages=[{"role": "user", "content": t} for t in [*XSS, long]])
    df = tables.messages(client, thread.id)
    html = tables.display_frame(df).to_html()
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "… (+4800 chars)" in html and long not in html
    assert df["text"][2] == long  # the frame keeps the full text


def test_display_frame_escapes_labels_lists_and_limits_rows() -> None:
    df = pd.DataFrame(
        {"<b>col</b>": ["x" * 300, None], "calls": [[XSS[0], "beta(1)"], []], "meta": [{"k": XSS[1]}, {}]},
        index=[XSS[1], "row"],
    )
    html = tables.display_frame(df, limit=50).to_html()
    assert "<script" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;b&gt;col&lt;/b&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "x" * 50 + "… (+250 chars)" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;, beta(1)" in html
    assert ">nan<" not in html and ">None<" not in html
    doubled = tables.display_frame(pd.concat([df, df])).to_html()  # non-unique index works too
    assert doubled.count("&lt;b&gt;col&lt;/b&gt;") == 1 and "<script" not in doubled
    cut = tables.display_frame(df, max_rows=1).to_html()
    assert "first 1 of 2 rows" in cut and ">row<" not in cut


def test_display_frame_without_jinja2(monkeypatch: pytest.MonkeyPatch) -> None:
    # Styler needs jinja2 (ipykernel alone does not bring it): the fallback escapes too.
    monkeypatch.setitem(sys.modules, "jinja2", None)
    monkeypatch.delitem(sys.modules, "pandas.io.formats.style", raising=False)
    df = pd.DataFrame({"<i>text</i>": [XSS[0], "y" * 300, None]}, index=[XSS[1], "b", "c"])
    out = tables.display_frame(df, max_rows=2)
    assert isinstance(out, tables.HTMLTable)
    html = out._repr_html_()
    assert "<script" not in html and "<img" not in html and "<i>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "… (+100 chars)" in html
    assert "first 2 of 3 rows" in html


def test_cell_text() -> None:
    stamp = pd.Timestamp(1_700_000_000, unit="s", tz="UTC")
    assert tables.cell_text(stamp) == "2023-11-14 22:13:20Z"
    assert tables.cell_text(pd.NaT) == tables.cell_text(pd.NA) == tables.cell_text(float("nan")) == ""
    assert tables.cell_text(["a(1)", "b"]) == "a(1), b"
    assert tables.cell_text({"k": "v"}) == '{"k": "v"}' and tables.cell_text({}) == ""
    assert tables.cell_text(2.5) == "2.5"


# -- code_interpreter --------------------------------------------------------------------------

PLOT_AND_CSV = """```python
import matplotlib.pyplot as plt
print("rows:", 2)
plt.plot([1, 2])
plt.show()
with open("out.csv", "w") as f:
    f.write("a,b\\n1,2\\n")
```"""


def _dumps(*objs: Any) -> list[dict[str, Any]]:
    return [o.model_dump(mode="json") for o in objs]


def test_steps_frame_of_code_calls() -> None:
    call = objects.code_call("call_1", "print(1)\n", "1\n", ("file-a", "file-b"))
    failed = objects.step(
        "step_2", [objects.code_call("call_2", "while True: pass\n")], status="failed", error="timed out"
    )
    df = tables._steps_frame(_dumps(objects.step("step_1", [call]), failed, objects.message_step("msg_1")))
    assert list(df.columns) == list(tables.STEP_COLUMNS)
    assert list(df["tool_calls"]) == [
        ["code_interpreter(print(1)\n)"],
        ["code_interpreter(while True: pass\n)"],
        [],
    ]
    assert list(df["tool_outputs"]) == [["1\n"], [None], []]
    assert list(df["image_file_ids"]) == [["file-a", "file-b"], [], []]
    assert list(df["last_error"]) == [None, "timed out", None]
    assert list(df["status"]) == ["completed", "failed", "completed"]


def test_code_calls_frame() -> None:
    items = _dumps(
        objects.step(
            "step_1",
            [objects.code_call("call_1", "x = 1\n"), objects.code_call("call_2", "print(x)\n", "1\n")],
        ),
        objects.message_step("msg_1"),
        objects.step(
            "step_2",
            [objects.code_call("call_3", "plot()\n", None, ("file-p",))],
            status="failed",
            error="boom",
        ),
    )
    df = tables._code_calls_frame(items)
    assert list(df.columns) == list(tables.CODE_CALL_COLUMNS)
    assert list(df["id"]) == ["call_1", "call_2", "call_3"]
    assert list(df["step_id"]) == ["step_1", "step_1", "step_2"]
    assert list(df["code"]) == ["x = 1\n", "print(x)\n", "plot()\n"]
    assert list(df["logs"]) == [None, "1\n", None]
    assert list(df["image_file_ids"]) == [[], [], ["file-p"]]
    assert list(df["last_error"]) == [None, None, "boom"]
    assert _is_utc(df["created_at"]) and _is_utc(df["ended_at"])
    # Steps listed without the engine's timings (another server, an imported thread): the wire's
    # seconds, said so, and what is unknown stays unknown.
    assert list(df["resolution"]) == ["s", "s", "s"]
    assert df["tool_s"].isna().all()
    assert list(df["created_at"]) == [pd.Timestamp(items[0]["created_at"], unit="s", tz="UTC")] * 2 + [
        pd.Timestamp(items[2]["created_at"], unit="s", tz="UTC")
    ]
    timings = {"created_at_ms": 1_700_000_000_250, "ended_at_ms": 1_700_000_000_900, "tool_ms": 600}
    (row, _) = tables._code_calls_frame([{**items[0], "timings": timings}]).itertuples()
    assert (row.resolution, row.duration_s, row.tool_s) == ("ms", 0.65, 0.6)
    assert row.created_at == pd.Timestamp(1_700_000_000_250, unit="ms", tz="UTC")
    assert len(tables._code_calls_frame([])) == 0


def test_messages_frame_references_images_and_files() -> None:
    msg = objects.message(
        text="see sandbox:/mnt/data/out.csv",
        images=("file-img",),
        file_paths=(("sandbox:/mnt/data/out.csv", "file-csv"),),
    )
    df = tables._messages_frame(_dumps(msg))
    assert list(df.columns) == list(tables.MESSAGE_COLUMNS)
    assert df["text"][0] == "see sandbox:/mnt/data/out.csv\n[image_file file-img]"
    assert df["image_file_ids"][0] == ["file-img"] and df["file_path_ids"][0] == ["file-csv"]


@pytest.mark.timeout(120)
def test_code_interpreter_runs_in_frames(tmp_path: Any) -> None:
    # In-process only: the frames read the same JSON either way, and a kernel per transport
    # would double the cost of the slowest test here.
    client = local_client(tmp_path / "kit.db")
    bot = client.beta.assistants.create(model="test/tools", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": PLOT_AND_CSV}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=bot.id)
    assert run.status == "completed"
    calls = tables.code_calls(client, thread.id)
    (call,) = calls.itertuples()
    assert call.code.startswith("import matplotlib.pyplot as plt\n") and call.logs == "rows: 2\n"
    (image_id,) = call.image_file_ids
    assert client.files.content(image_id).content.startswith(b"\x89PNG")
    steps = tables.steps(client, thread.id)
    assert steps["tool_calls"][0] == [f"code_interpreter({call.code})"]
    assert steps["tool_outputs"][0] == ["rows: 2\n"] and steps["image_file_ids"][0] == [image_id]
    messages = tables.messages(client, thread.id)
    reply = messages.iloc[-1]
    assert reply["image_file_ids"] == [image_id]
    (csv_id,) = reply["file_path_ids"]
    assert client.files.retrieve(csv_id).filename == "out.csv"
    assert f"[image_file {image_id}]" in reply["text"]
    assert list(tables.code_calls(client, thread.id, run_id=run.id)["id"]) == [call.id]


@pytest.mark.timeout(120)
def test_code_calls_have_the_millisecond_times_of_their_step(make_client, tmp_path: Any) -> None:  # type: ignore[no-untyped-def]
    """``tables.code_calls`` has the ms columns of ``tool_calls`` (its step's times), equal to
    theirs; with the timings unknown (a row from before the engine kept them, or imported)
    they fall back to the wire's seconds and ``tool_s`` is NaN, never 0."""
    import sqlite3

    from assistant_kit.tools.code_interpreter import CodeInterpreterSettings

    client = make_client(code_interpreter=CodeInterpreterSettings.local())
    bot = client.beta.assistants.create(model="test/tools", tools=[{"type": "code_interpreter"}])
    code = "```python\nimport time\ntime.sleep(0.2)\nprint('slept')\n```\n"
    thread = client.beta.threads.create(messages=[{"role": "user", "content": code}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=bot.id)
    assert run.status == "completed", run.last_error
    (call,) = tables.code_calls(client, thread.id).itertuples()
    (same,) = tables.tool_calls(client, thread.id).itertuples()
    assert call.logs == "slept\n" and same.id == call.id
    assert call.resolution == "ms" and 0.2 <= call.tool_s <= call.duration_s
    columns = ("created_at", "ended_at", "duration_s", "tool_s", "resolution")
    assert [getattr(call, c) for c in columns] == [getattr(same, c) for c in columns]
    assert call.created_at.microsecond % 1000 == 0 and call.ended_at > call.created_at

    (db,) = tmp_path.glob("kit*.db")
    with sqlite3.connect(db) as conn:  # as migration 0008 leaves older rows
        conn.execute(
            "UPDATE run_steps SET created_at_ms = NULL, first_token_at_ms = NULL, "
            "ended_at_ms = NULL, tool_ms = NULL"
        )
    (old,) = tables.code_calls(client, thread.id).itertuples()
    step = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id, order="asc").data[0]
    assert old.resolution == "s" and pd.isna(old.tool_s)
    assert old.created_at == pd.Timestamp(step.created_at, unit="s", tz="UTC")
    assert old.duration_s == step.completed_at - step.created_at


def _search_items() -> list[dict[str, Any]]:
    hits = [("file-a", "a.md", 0.9, "alpha <b>chunk</b>"), ("file-b", "b.md", 0.25, "beta")]
    return _dumps(
        objects.step(
            "step_s1",
            [objects.search_call("call_s1", hits, threshold=0.2, queries=["alpha", "beta"])],
            created_at=objects.T0,
        ),
        objects.message_step("msg_1"),
        objects.step(  # a second call of the same run, listed without content: T = 1
            "step_s2", [objects.search_call("call_s2", hits[1:], content=False)], created_at=objects.T0 + 3
        ),
        objects.step("step_s3", [objects.search_call("call_s3", [])], run_id="run_two"),  # no results
        objects.step("step_s4", [objects.search_call("call_s4", hits[:1])], run_id="run_two"),
    )


def test_file_search_results_frame() -> None:
    df = tables._search_frame(_search_items())
    assert list(df.columns) == list(tables.FILE_SEARCH_RESULT_COLUMNS)
    assert list(df["call_id"]) == ["call_s1", "call_s1", "call_s2", "call_s4"]
    assert list(df["call_index"]) == [0, 0, 1, 1]  # T counts the run's calls, the empty one too
    assert list(df["queries"]) == [["alpha", "beta"], ["alpha", "beta"], [], []]  # [] unrecorded
    assert list(df["rank"]) == [0, 1, 0, 0]
    assert list(df["marker"]) == ["【0:0】", "【0:1】", "【1:0】", "【1:0】"]
    assert list(df["file_name"]) == ["a.md", "b.md", "b.md", "a.md"]
    assert list(df["score"]) == [0.9, 0.25, 0.25, 0.9] and str(df["score"].dtype) == "float64"
    assert list(df["content"]) == ["alpha <b>chunk</b>", "beta", None, "alpha <b>chunk</b>"]
    assert list(df["score_threshold"])[:2] == [0.2, 0.2] and set(df["ranker"]) == {"default_2024_08_21"}
    assert _is_utc(df["created_at"]) and str(df["call_index"].dtype) == "int64"
    assert len(tables._search_frame([])) == 0 and list(tables._search_frame([]).columns) == list(df.columns)
    html = tables.display_frame(df).to_html()
    assert "&lt;b&gt;chunk&lt;/b&gt;" in html and "<b>chunk" not in html


def test_steps_frame_summarises_file_search_calls() -> None:
    df = tables._steps_frame(_search_items())
    assert list(df["tool_calls"])[:3] == [['file_search("alpha", "beta")'], [], ["file_search"]]
    assert list(df["tool_outputs"]) == [
        ["2 results: a.md (0.900), b.md (0.250)"],
        [],
        ["1 result: b.md (0.250)"],
        ["0 results"],
        ["1 result: a.md (0.900)"],
    ]


def test_messages_frame_keeps_citations_in_the_text_coordinates() -> None:
    cited = objects.cited_message("Yes【0:1†b.md】.", [("【0:1†b.md】", "file-b")])
    dump = cited.model_dump(mode="json")
    dump["content"].insert(0, {"type": "text", "text": {"value": "First part.", "annotations": []}})
    df = tables._messages_frame([dump])
    (notes,) = df["citations"]
    text = df["text"].iloc[0]
    assert notes == [{"text": "【0:1†b.md】", "start_index": 15, "end_index": 25, "file_id": "file-b"}]
    assert text[notes[0]["start_index"] : notes[0]["end_index"]] == "【0:1†b.md】"


def test_file_search_results_through_the_sdk_of_a_thread_without_searches(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    assistant = client.beta.assistants.create(model="test/echo")
    client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    df = tables.file_search_results(client, thread.id)  # the steps listed with include[]=…content
    assert len(df) == 0 and list(df.columns) == list(tables.FILE_SEARCH_RESULT_COLUMNS)
    assert list(tables.steps(client, thread.id)["type"]) == ["message_creation"]
