"""``inspect(thread)`` over real runs (transcript escaped, runs, steps, timeline) and
``timeline_svg`` geometry and escaping."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import openai
import pandas as pd
import pytest

from assistant_kit import local_client
from assistant_kit.notebook import tables
from assistant_kit.notebook.inspect import MIN_BAR_PX, STATUS_COLORS, ThreadInspection, inspect, timeline_svg
from tests.notebook import assert_inert, data_images
from tests.notebook.test_tables import XSS, conversation

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = ["<script>boom</script>", "<img src=x onerror=boom>"]  # tool names: no "(" in a name


def _svg(html: str) -> ET.Element:
    match = re.search(r"<svg.*?</svg>", html, re.S)
    assert match, "no <svg> in the HTML"
    return ET.fromstring(match.group(0))  # well-formed XML, or this raises


def _bars(svg: ET.Element, cls: str) -> list[ET.Element]:
    return [e for e in svg.iter(f"{SVG}rect") if e.get("class") == cls]


def test_inspect_html_has_escaped_transcript_runs_steps_and_timeline(client: openai.OpenAI) -> None:
    conv = conversation(client, first=f"{XSS[0]} and {XSS[1]}")
    thread = conv["thread"]
    run1, run2 = conv["runs"]
    ins = inspect(thread, client)
    assert isinstance(ins, ThreadInspection)
    assert list(ins.messages["role"]) == ["user", "assistant", "user", "assistant"]
    assert len(ins.runs) == 2 and len(ins.steps) == 4 and not ins.more_messages

    html = ins._repr_html_()
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "Tool results: alpha returned out-alpha; beta returned out-beta" in html
    for obj_id in [thread.id, run1.id, run2.id, *ins.steps["id"]]:
        assert obj_id in html
    assert "Transcript" in html and "Runs (2)" in html and "Steps (4)" in html
    svg = _svg(html)
    assert len(_bars(svg, "step")) == len(ins.steps) == 4
    assert len(_bars(svg, "run")) == 2
    labels = [e.text for e in svg.iter(f"{SVG}text") if e.get("class") == "step-label"]
    assert labels == ["⚙ alpha", "⚙ beta", "message", "message"]
    marks = [e for e in svg.iter(f"{SVG}path") if e.get("class") == "tool-mark"]
    assert len(marks) == 2


def test_inspect_accepts_an_id_and_shows_failures_escaped(client: openai.OpenAI) -> None:
    broken = client.beta.assistants.create(model="notebook/half-then-fail")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=broken.id)
    assert run.status == "failed"
    ins = inspect(thread.id, client)
    html = ins._repr_html_()
    assert "&lt;b&gt;upstream broke&lt;/b&gt;" in html and "<b>upstream broke" not in html
    svg = _svg(html)
    (step,) = _bars(svg, "step")
    assert step.get("fill") == STATUS_COLORS["failed"]
    assert "failed" in repr(ins) and "upstream broke" in repr(ins)


def test_long_messages_collapse_and_old_messages_are_omitted(client: openai.OpenAI) -> None:
    texts = [f"note {i}" for i in range(29)] + ["long " * 1000]
    thread = client.beta.threads.create(messages=[{"role": "user", "content": t} for t in texts])
    ins = inspect(thread, client, max_messages=10)
    assert ins.more_messages and list(ins.messages["text"]) == texts[-10:]
    html = ins._repr_html_()
    assert "<details" in html and "older ones are omitted" in html
    assert "note 19" not in html and "note 20" in html
    assert "No runs." in html and "10+ messages" in repr(ins)


def test_text_repr_is_a_readable_summary(client: openai.OpenAI) -> None:
    conv = conversation(client, first=XSS[0])
    text = repr(inspect(conv["thread"], client))
    lines = text.splitlines()
    assert lines[0].startswith(f"Thread {conv['thread'].id}")
    assert "4 messages · 2 runs (2 completed) · 4 steps" in text
    assert "tool calls: alpha x1, beta x1" in text
    assert f"user: {XSS[0]}" in text  # plain text: nothing to escape
    assert "assistant: Tool results: alpha returned out-alpha" in text
    for run in conv["runs"]:
        assert run.id in text
    assert "tools: alpha, beta" in text
    assert "<div" not in text and "<svg" not in text


def test_inspect_defaults_to_the_local_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_KIT_DB", str(tmp_path / "kit.db"))
    client = local_client()
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    ins = inspect(thread)
    assert list(ins.messages["text"]) == ["hi"] and ins.thread.id == thread.id


# -- timeline_svg ------------------------------------------------------------------------------


def _t(seconds: float | None) -> pd.Timestamp:
    return pd.NaT if seconds is None else pd.Timestamp(1_700_000_000 + seconds, unit="s", tz="UTC")


def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hand-made frames with the columns of tables.runs/steps: hostile ids and tool names,
    a 12-second run, a zero-width step and a run still in progress."""
    runs = pd.DataFrame(
        {
            "id": ["run_<b>one</b>", "run_two"],
            "status": ["completed", "in_progress"],
            "created_at": [_t(0), _t(8)],
            "started_at": [_t(0), _t(8)],
            "ended_at": [_t(12), _t(None)],
            "duration_s": [12.0, float("nan")],
        }
    )
    steps = pd.DataFrame(
        {
            "id": ["step_a", "step_b", "step_c", "step_d"],
            "run_id": ["run_<b>one</b>", "run_<b>one</b>", "run_<b>one</b>", "run_two"],
            "type": ["tool_calls", "tool_calls", "message_creation", "message_creation"],
            "status": ["completed", "completed", "completed", "in_progress"],
            "created_at": [_t(0), _t(4), _t(10), _t(8)],
            "ended_at": [_t(4), _t(4), _t(12), _t(None)],
            "duration_s": [4.0, 0.0, 2.0, float("nan")],
            "tool_calls": [[f"{HOSTILE[0]}(1)", "get_time({})"], [f"{HOSTILE[1]}(2)"], [], []],
        }
    )
    return runs, steps


def test_timeline_geometry_ticks_and_colors() -> None:
    runs, steps = _frames()
    svg = ET.fromstring(timeline_svg(runs, steps))
    bars = _bars(svg, "step")
    assert len(bars) == 4
    x = {b.find(f"{SVG}title").text.split(" · ")[0]: float(b.get("x")) for b in bars}
    w = {b.find(f"{SVG}title").text.split(" · ")[0]: float(b.get("width")) for b in bars}
    assert x["step_a"] == pytest.approx(200)  # the plot starts right of the run labels
    assert x["step_a"] < x["step_b"] < x["step_d"] < x["step_c"]  # 0 s < 4 s < 8 s < 10 s
    assert w["step_a"] == pytest.approx(2 * w["step_c"], abs=0.2)  # 4 s vs 2 s
    assert w["step_b"] == MIN_BAR_PX  # zero seconds on the wire, still visible
    assert x["step_d"] + w["step_d"] == pytest.approx(
        x["step_c"] + w["step_c"], abs=0.2
    )  # open → latest time
    ys = [float(b.get("y")) for b in bars]
    assert len(set(ys)) == 4  # one lane per step
    ticks = [e.text for e in svg.iter(f"{SVG}text") if e.text and e.text.endswith(" s")]
    assert ticks == ["0 s", "2 s", "4 s", "6 s", "8 s", "10 s", "12 s"]
    fills = {b.find(f"{SVG}title").text.split(" · ")[0]: b.get("fill") for b in bars}
    assert fills["step_d"] == STATUS_COLORS["in_progress"] and fills["step_a"] == STATUS_COLORS["completed"]


def test_timeline_labels_are_escaped() -> None:
    runs, steps = _frames()
    source = timeline_svg(runs, steps)
    assert "<script" not in source and "<img" not in source and "<b>" not in source
    svg = ET.fromstring(source)  # parses: nothing broke out of a text node or attribute
    assert not [e for e in svg.iter() if e.tag.split("}")[-1] in ("script", "img", "b", "foreignObject")]
    texts = [e.text or "" for e in svg.iter(f"{SVG}text")]
    assert "run_<b>one</b>" in texts  # shown literally
    assert f"⚙ {HOSTILE[0]}, get_time" in texts and f"⚙ {HOSTILE[1]}" in texts


def test_timeline_of_nothing() -> None:
    empty_runs = tables._runs_frame([])
    svg = ET.fromstring(timeline_svg(empty_runs, pd.DataFrame(columns=list(tables.STEP_COLUMNS))))
    assert "No runs." in "".join(svg.itertext())


# -- code_interpreter in the transcript --------------------------------------------------------


def _code_inspection(files: Any = None, timings: dict[str, int] | None = None) -> ThreadInspection:
    """A thread by hand: a user asks; run 1 runs code (logs, a plot) then answers with the plot;
    the user asks again; run 2's code fails and its run writes nothing after it. ``timings``:
    the engine's ms timings of run 1's code step (default: none, the wire's seconds only)."""
    from openai.types.beta import Thread

    from tests.notebook import objects as o

    user1 = o.message("msg_u1", "plot it <script>", role="user", run_id=None, created_at=o.T0)
    reply = o.message("msg_a1", "Here it is.", images=("file-plot",), created_at=o.T0 + 2)
    user2 = o.message("msg_u2", "again", role="user", run_id=None, created_at=o.T0 + 5)
    code1 = o.step("step_c1", [o.code_call("call_1", "print('<b>hi</b>')\n", "<b>hi</b>\n", ("file-plot",))])
    code2 = o.step(
        "step_c2",
        [o.code_call("call_2", "while True: pass\n")],
        status="failed",
        error="Execution timed out",
        run_id="run_two",
        created_at=o.T0 + 5,
    )
    steps = [code1, o.message_step("msg_a1", created_at=o.T0 + 2), code2]
    dumps = [s.model_dump(mode="json") for s in steps]
    if timings is not None:
        dumps[0]["timings"] = timings
    return ThreadInspection(
        thread=Thread(id="thread_code", object="thread", created_at=o.T0, metadata={}),
        messages=tables._messages_frame([m.model_dump(mode="json") for m in (user1, reply, user2)]),
        runs=tables._runs_frame([]),
        steps=tables._steps_frame(dumps),
        code_calls=tables._code_calls_frame(dumps),
        files=files,
    )


def test_transcript_places_code_calls_where_they_ran() -> None:
    ins = _code_inspection()
    assert [(kind, row.id) for kind, row in ins._entries()] == [
        ("message", "msg_u1"),
        ("code", "call_1"),
        ("message", "msg_a1"),
        ("message", "msg_u2"),
        ("code", "call_2"),
    ]
    html = ins._transcript_html()
    assert html.count('class="ak-code-call"') == 2
    assert '<span style="color: #008000">print</span>' in html  # highlighted
    assert "&lt;b&gt;hi&lt;/b&gt;" in html and "<b>hi</b>" not in html
    assert "[image: <code>file-plot</code>]" in html and "[image_file: <code>file-plot</code>]" in html
    assert "✗ Execution timed out" in html and "failed" in html
    assert_inert(html)
    text = repr(ins)
    assert "       code: print('<b>hi</b>')  ← <b>hi</b>  [image file-plot]  · 1 s (s resolution)\n" in text
    assert text.endswith("       code: while True: pass  ✗ Execution timed out  · 1 s (s resolution)")
    assert text.index("user: plot it") < text.index("code: print") < text.index("assistant: Here it is.")


def test_code_calls_in_the_transcript_say_how_long_they_took() -> None:
    """With the engine's ms timings a code call shows its step's time and the time its code ran
    (``tables.code_calls``' duration_s and tool_s); with none known, nothing is said."""
    from tests.notebook import objects as o

    t0 = o.T0 * 1000
    ins = _code_inspection(timings={"created_at_ms": t0 + 120, "ended_at_ms": t0 + 570, "tool_ms": 300})
    html = ins._transcript_html()
    assert "<b>code_interpreter</b> · 2023-11-14 22:13:20 UTC · 450 ms · tools 300 ms · " in html
    assert "code: print('<b>hi</b>')  ← <b>hi</b>  [image file-plot]  · 450 ms · tools 300 ms\n" in repr(ins)
    unknown = _code_inspection()
    unknown.code_calls["duration_s"] = float("nan")  # no end on the wire either (imported)
    assert repr(unknown).endswith("       code: while True: pass  ✗ Execution timed out")
    assert "(s resolution)" not in unknown._transcript_html()


def test_transcript_thumbnails_come_through_the_client(client: openai.OpenAI) -> None:
    from assistant_kit.notebook.code import FileImages
    from tests.notebook.objects import tiny_png

    png = client.files.create(file=("plot.png", tiny_png()), purpose="assistants").id
    ins = _code_inspection(FileImages(client))
    ins.code_calls.at[0, "image_file_ids"] = [png]
    html = ins._transcript_html()
    assert len(data_images(html)) == 1 and "max-width:min(100%,360px)" in html
    assert_inert(html, data_images=True)
    assert "[image_file: <code>file-plot</code>] not shown: NotFoundError" in html  # a short note


def test_steps_table_lists_image_references() -> None:
    html = _code_inspection()._repr_html_()
    assert "file-plot" in html and "Execution timed out" in html


def _search_inspection() -> ThreadInspection:
    from openai.types.beta import Thread

    from assistant_kit.notebook._searches import search_calls
    from tests.notebook import objects as o

    hits = [("file-a", "<script>a</script>.md", 0.875, "Alpha <img src=x onerror=alert(1)> text.")]
    user = o.message("msg_u1", "what is alpha?", role="user", run_id=None, created_at=o.T0)
    reply = o.cited_message(
        "Alpha is text【0:0†source】.", [("【0:0†source】", "file-a")], created_at=o.T0 + 2
    )
    steps = [
        o.step("step_s1", [o.search_call("call_s1", hits, queries=["alpha?"])], created_at=o.T0 + 1),
        o.message_step("msg_cited"),
    ]
    dumps = [s.model_dump(mode="json") for s in steps]
    return ThreadInspection(
        thread=Thread(id="thread_code", object="thread", created_at=o.T0, metadata={}),
        messages=tables._messages_frame([m.model_dump(mode="json") for m in (user, reply)]),
        runs=tables._runs_frame([o.run().model_dump(mode="json")]),
        steps=tables._steps_frame(dumps),
        code_calls=tables._code_calls_frame(dumps),
        search_calls=search_calls(dumps),
    )


def test_transcript_shows_searches_and_numbered_citations() -> None:
    ins = _search_inspection()
    assert [(kind, row.id) for kind, row in ins._entries()] == [
        ("message", "msg_u1"),
        ("run", "run_code"),  # the search is drawn in its run's block, with its results
        ("message", "msg_cited"),
    ]
    html = ins._transcript_html()
    assert 'class="ak-search-call"' in html and "1 result, best score 0.875" in html
    assert ">[1]</sup>" in html and "【" not in html.split("msg_cited")[-1]
    assert "&lt;script&gt;a&lt;/script&gt;.md" in html and "score 0.875" in html
    assert_inert(html)
    text = repr(ins)
    assert '→ search: ("alpha?") → 1 result: <script>a</script>.md (0.875)' in text
    assert "  assistant: Alpha is text[1]." in text


def test_timeline_marks_search_steps() -> None:
    ins = _search_inspection()
    svg = ins.timeline_svg()
    assert svg.count('class="search-mark"') == 1 and 'class="tool-mark"' not in svg
    assert "🔎 file_search · 1 result" in svg
    assert "file_search → 1 result: &lt;script&gt;a&lt;/script&gt;.md (0.875)" in svg
    assert "<script>" not in svg and "<script>" not in ins._repr_html_()
