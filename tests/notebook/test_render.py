"""``assistant_kit.notebook.render.RunView`` fed with real stream events from the in-process
engine (scripted and registered models), displayed through a real IPython shell whose
display publisher we capture — or, for text mode, into a file."""

from __future__ import annotations

import asyncio
import io
import itertools
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from openai.types.beta.assistant_stream_event import ErrorEvent
from openai.types.shared import ErrorObject

from assistant_kit import local_client, register_model
from assistant_kit.notebook.code import FileImages
from assistant_kit.notebook.html import escape
from assistant_kit.notebook.render import LIVE_TEXT_LIMIT, RunView, resolve_mode
from tests.notebook import assert_inert, data_images, ipython_shell, objects
from tests.notebook.objects import code_run_events, message, tiny_png

EVIL = "<script>alert(1)</script> <img src=x onerror=alert(1)> ![x](http://evil.example/a.png)"
SLOW_WORDS = [f"word{i} " for i in range(8)]
FAST_CHUNKS = 5_000
LONG_TEXT = "".join(f"line {i:05d} <tag> & more text here\n" for i in range(800))  # ~30k chars


def _tool(name: str) -> dict[str, Any]:
    params = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    return {"type": "function", "function": {"name": name, "parameters": params}}


async def _slow(messages: list[dict[str, Any]]) -> Any:
    for word in SLOW_WORDS:
        await asyncio.sleep(0.03)
        yield word


def _fast(messages: list[dict[str, Any]]) -> Any:
    return (f"t{i} " for i in range(FAST_CHUNKS))


def _long(messages: list[dict[str, Any]]) -> Any:
    return (LONG_TEXT[i : i + 100] for i in range(0, len(LONG_TEXT), 100))


def _boom(messages: list[dict[str, Any]]) -> str:
    raise RuntimeError("kaput <b>bold</b>")


@pytest.fixture(scope="module")
def kit() -> openai.OpenAI:
    for name, fn in [("slow", _slow), ("fast", _fast), ("long", _long), ("boom", _boom)]:
        register_model(f"nb-render/{name}", fn)
    return local_client(":memory:")


@pytest.fixture
def shell() -> Iterator[Any]:
    from IPython.core.interactiveshell import InteractiveShell

    ip = ipython_shell()
    yield ip
    InteractiveShell.clear_instance()


def _records(cap: Any) -> list[dict[str, Any]]:
    return [
        {"data": o.data, "display_id": o.transient.get("display_id"), "update": o.update} for o in cap.outputs
    ]


@pytest.fixture
def capture(shell: Any) -> Callable[[], Any]:
    from IPython.utils.capture import capture_output

    return lambda: capture_output(stdout=False, stderr=False)


def saved(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The outputs a notebook keeps: each display adds one, an update replaces by id."""
    outputs: list[dict[str, Any]] = []
    for r in records:
        if r["update"]:
            for out in outputs:
                if out["display_id"] == r["display_id"]:
                    out["data"] = r["data"]
        else:
            outputs.append({"display_id": r["display_id"], "data": r["data"]})
    return [out["data"] for out in outputs]


def stream_run(
    view: RunView,
    kit: openai.OpenAI,
    model: str,
    text: str = "hello there",
    *,
    tools: list[dict[str, Any]] | None = None,
    tool_output: Callable[[Any], str] = lambda call: "sunny",
) -> Any:
    """Stream a run into ``view`` (answering tool calls), as a Session would; return the run."""
    beta = kit.beta
    assistant = beta.assistants.create(model=model, tools=tools or [])
    thread = beta.threads.create(messages=[{"role": "user", "content": text}])
    with beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        for event in stream:
            view.on_event(event)
    run = stream.current_run
    while run.status == "requires_action":
        outputs = []
        for call in run.required_action.submit_tool_outputs.tool_calls:
            output = tool_output(call)
            view.on_tool_result(call.id, output)
            outputs.append({"tool_call_id": call.id, "output": output})
        with beta.threads.runs.submit_tool_outputs_stream(
            thread_id=thread.id, run_id=run.id, tool_outputs=outputs
        ) as stream:
            for event in stream:
                view.on_event(event)
        run = stream.current_run
    return run


# ---- mode choice -------------------------------------------------------------------------


def test_auto_mode_outside_a_kernel_is_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASSISTANT_KIT_LIVE", raising=False)
    assert RunView().mode == "text"
    assert RunView("handles").mode == "text"  # nowhere to display: falls back to text
    assert resolve_mode("static", sink=True) == "static"


def test_auto_mode_in_terminal_ipython_is_text(shell: Any) -> None:
    assert RunView().mode == "text"
    assert RunView("handles").mode == "handles"


def test_auto_mode_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    def sink(*a: Any, **k: Any) -> None:
        return None

    monkeypatch.delenv("ASSISTANT_KIT_LIVE", raising=False)
    monkeypatch.delenv("ASSISTANT_KIT_WIDGETS", raising=False)
    assert RunView(display=sink).mode == "handles"
    monkeypatch.setenv("ASSISTANT_KIT_WIDGETS", "1")
    assert RunView(display=sink).mode == "widgets"
    monkeypatch.setenv("ASSISTANT_KIT_LIVE", "false")
    assert RunView(display=sink).mode == "static"
    with pytest.raises(ValueError, match="mode must be one of"):
        RunView("fancy")
    with pytest.raises(ValueError, match="max_rate"):
        RunView("text", max_rate=0)


# ---- handles mode ------------------------------------------------------------------------


def test_text_grows_across_updates(kit: openai.OpenAI, capture: Callable[[], Any]) -> None:
    view = RunView("handles", max_rate=1000)
    with capture() as cap:
        stream_run(view, kit, "nb-render/slow")
    live = [r for r in _records(cap) if r["data"]["text/plain"].startswith("assistant:")]
    texts = [r["data"]["text/plain"] for r in live]
    assert len({r["display_id"] for r in live}) == 1
    assert len(set(texts)) >= 4
    for before, after in itertools.pairwise(texts):
        assert after.startswith(before)
    assert texts[-1] == "assistant: " + "".join(SLOW_WORDS)
    assert [r["update"] for r in live] == [False] + [True] * (len(live) - 1)
    view.close()


def test_one_handle_per_message_and_tool_call(kit: openai.OpenAI, capture: Callable[[], Any]) -> None:
    view = RunView("handles", max_rate=1000)
    with capture() as cap:
        run = stream_run(
            view,
            kit,
            "test/tools",
            tools=[_tool("get_weather"), _tool("get_time")],
            tool_output=lambda c: c.id,
        )
    assert run.status == "completed"
    records = _records(cap)
    ids = {r["display_id"] for r in records}
    assert len(ids) == 1 + 2 + 1  # header, two tool calls, the reply
    first_display = [r for r in records if not r["update"]]
    assert len(first_display) == len(ids)  # each handle displayed once, then only updated
    outputs = saved(records)
    assert "— completed" in outputs[0]["text/plain"]
    tool_texts = [o["text/plain"] for o in outputs[1:3]]
    assert tool_texts[0].startswith("→ get_weather(") and "← call_" in tool_texts[0]
    assert tool_texts[1].startswith("→ get_time(") and "← call_" in tool_texts[1]
    assert outputs[3]["text/plain"].startswith("assistant: Tool results: get_weather returned call_")
    view.close()


def test_update_rate_stays_within_max_rate_under_a_fast_stream(
    kit: openai.OpenAI, capture: Callable[[], Any]
) -> None:
    started = time.perf_counter()
    view = RunView("handles", max_rate=10)
    with capture() as cap:
        stream_run(view, kit, "nb-render/fast")
        view.close()
    duration = time.perf_counter() - started
    records = _records(cap)
    assert view.updates == len(records)
    assert view.updates <= 10 * duration + 10, (view.updates, duration)
    print(f"{view.updates} updates in {duration:.2f} s")
    message_updates = [r for r in records if r["data"].get("text/plain", "").startswith("assistant:")]
    assert len(message_updates) >= 2  # it was live, not only a final render
    full = "".join(f"t{i} " for i in range(FAST_CHUNKS))
    final = saved(records)
    assert full in final[0]["text/plain"]
    assert full in final[0]["text/html"]


def test_transitions_flush_even_when_throttled(kit: openai.OpenAI, capture: Callable[[], Any]) -> None:
    view = RunView("handles", max_rate=0.001)  # after the first update, only forced flushes
    with capture() as cap:
        stream_run(view, kit, "test/tools", tools=[_tool("get_weather")])
    outputs = saved(_records(cap))
    assert outputs[0]["text/plain"].startswith("— completed")
    assert outputs[1]["text/plain"] == '→ get_weather({"city": "text"})\n← sunny'
    assert outputs[2]["text/plain"] == "assistant: Tool results: get_weather returned sunny"
    view.close()


def test_snapshot_replaces_the_live_view(kit: openai.OpenAI, capture: Callable[[], Any]) -> None:
    view = RunView("handles", title="weather", max_rate=1000)
    with capture() as cap:
        stream_run(view, kit, "test/tools", tools=[_tool("get_weather")])
        view.close()
        view.close()  # idempotent
    outputs = saved(_records(cap))
    assert outputs[0] == {"text/html": view.to_html(), "text/plain": view.to_text()}
    assert outputs[1:] == [{"text/plain": ""}, {"text/plain": ""}]
    html = outputs[0]["text/html"]
    assert "<b>weather</b>" in html
    assert ">completed</span>" in html
    assert "<code>get_weather</code>" in html and "<details" in html
    assert "2 run steps" in html
    assert "usage: prompt" in html
    assert '<span class="ak-timing">wall ' in html and "first token" in html
    assert view._repr_html_() == view.to_html()
    text = outputs[0]["text/plain"]
    assert text.splitlines() == [
        "weather",
        '→ get_weather({"city": "text"})',
        "← sunny",
        "assistant: Tool results: get_weather returned sunny",
        text.splitlines()[-1],
    ]
    assert text.splitlines()[-1].startswith("— completed · ")
    assert "run_" not in text and " s" not in text.splitlines()[-1]  # no ids, no times


def test_static_mode_displays_once_at_close(kit: openai.OpenAI, capture: Callable[[], Any]) -> None:
    view = RunView("static")
    with capture() as cap:
        stream_run(view, kit, "test/echo", "static please")
        assert _records(cap) == []
        view.close()
    records = _records(cap)
    assert len(records) == 1 and not records[0]["update"]
    assert view.updates == 1
    assert "static please" in records[0]["data"]["text/html"]


# ---- safety ------------------------------------------------------------------------------


def test_model_and_tool_output_is_escaped_everywhere(kit: openai.OpenAI, capture: Callable[[], Any]) -> None:
    view = RunView("handles", max_rate=1000)
    with capture() as cap:
        stream_run(view, kit, "test/echo", EVIL)
        view.on_error(EVIL)
        view.close()
    tools_view = RunView("handles", max_rate=1000)
    with capture() as cap2:
        stream_run(
            tools_view, kit, "test/tools", EVIL, tools=[_tool("get_weather")], tool_output=lambda c: EVIL
        )
        tools_view.close()
    records = _records(cap) + _records(cap2)
    assert len(records) > 4
    for record in records:
        assert_inert(record["data"].get("text/html", ""))
    assert escape(EVIL) in view.to_html()
    assert escape(EVIL) in tools_view.to_html()


def test_long_outputs_are_collapsible_and_live_updates_bounded(
    kit: openai.OpenAI, capture: Callable[[], Any]
) -> None:
    view = RunView("handles", max_rate=1000)
    long_output = "result " * 1000
    with capture() as cap:
        stream_run(view, kit, "nb-render/long")
        view.on_tool_result("call_manual", long_output)
        view.close()
    records = _records(cap)
    live = [r["data"]["text/html"] for r in records[:-3] if r["data"].get("text/html")]
    assert any("earlier chars; all of it when the run ends" in h for h in live)
    assert max(len(h) for h in live) < LIVE_TEXT_LIMIT * 1.5 + 5_000
    snapshot = view.to_html()
    assert escape(LONG_TEXT) in snapshot  # the whole text, once, at the end
    assert f"({len(LONG_TEXT):,} chars)</span></summary>" in snapshot
    assert f"({len(long_output):,} chars)</span></summary>" in snapshot
    assert "← " + long_output[:1000] + "… (+" in view.to_text()


# ---- errors ------------------------------------------------------------------------------


def test_errors_are_one_clear_line(kit: openai.OpenAI, capture: Callable[[], Any]) -> None:
    view = RunView("handles", max_rate=1000)
    with capture() as cap:
        with pytest.raises(openai.APIError) as excinfo:
            stream_run(view, kit, "nb-render/boom")
        view.on_error(str(excinfo.value))
        view.on_event(ErrorEvent(event="error", data=ErrorObject(message="second <i>one</i>", type="x")))
        header = saved(_records(cap))[0]["text/html"]
        view.close()
    assert ">failed</span>" in header
    assert "⚠ Internal error: RuntimeError: kaput &lt;b&gt;bold&lt;/b&gt;" in header
    assert "⚠ second &lt;i&gt;one&lt;/i&gt;" in header
    assert header.count("kaput") == 1 and "⚠ server_error<" in header
    assert "Traceback" not in header
    assert view.errors == ["Internal error: RuntimeError: kaput <b>bold</b>", "second <i>one</i>"]


# ---- text mode ---------------------------------------------------------------------------


def test_text_mode_streams_text_tool_lines_and_a_status_line(kit: openai.OpenAI) -> None:
    out = io.StringIO()
    view = RunView("text", title="weather", file=out)
    stream_run(view, kit, "test/tools", tools=[_tool("get_weather")])
    view.close()
    lines = out.getvalue().splitlines()
    assert lines[:4] == [
        "weather",
        '→ get_weather({"city": "text"})',
        "← sunny",
        "Tool results: get_weather returned sunny",
    ]
    assert lines[4].startswith("— completed · ") and lines[4].endswith(" s)")
    assert len(lines) == 5
    assert "<" not in out.getvalue()


def test_text_mode_writes_as_text_arrives(kit: openai.OpenAI, capsys: pytest.CaptureFixture[str]) -> None:
    view = RunView("text", max_rate=1000)  # default file: sys.stdout
    stream_run(view, kit, "nb-render/slow")
    assert capsys.readouterr().out == "".join(SLOW_WORDS) + "\n"  # the message ended its line
    assert view.updates >= 4  # written in pieces as the words arrived
    view.close()
    assert capsys.readouterr().out.startswith("— completed · ")


def test_text_mode_neutralises_terminal_control_characters(kit: openai.OpenAI) -> None:
    out = io.StringIO()
    view = RunView("text", file=out)
    stream_run(view, kit, "test/echo", "red \x1b[31malert\x1b[0m\r done")
    view.close()
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue()
    assert "red \ufffd[31malert\ufffd[0m done" in out.getvalue()


def test_text_mode_reports_errors(kit: openai.OpenAI) -> None:
    out = io.StringIO()
    view = RunView("text", file=out)
    with pytest.raises(openai.APIError) as excinfo:
        stream_run(view, kit, "nb-render/boom")
    view.on_error(str(excinfo.value))
    view.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "! error: Internal error: RuntimeError: kaput <b>bold</b>"
    assert lines[1].startswith("— failed · ") and lines[1].endswith(" s · server_error")  # message: once


# ---- widgets mode ------------------------------------------------------------------------


def _walk(widget: Any) -> Iterator[Any]:
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


def test_widgets_mode_has_a_cancel_button_and_ends_as_a_snapshot(
    kit: openai.OpenAI, capture: Callable[[], Any]
) -> None:
    cancelled: list[bool] = []
    view = RunView("widgets", on_cancel=lambda: cancelled.append(True), max_rate=1000)
    with capture() as cap:
        stream_run(view, kit, "nb-render/slow")
        records = _records(cap)
        assert len(records) == 1  # the panel; everything after is widget state, not outputs
        assert "application/vnd.jupyter.widget-view+json" in records[0]["data"]
        panel = view.widget
        widgets = list(_walk(panel))
        assert {type(w).__name__ for w in widgets} <= {"VBox", "HBox", "HTML", "Button", "Label"}
        assert any("".join(SLOW_WORDS) in getattr(w, "value", "") for w in widgets)
        assert view.updates > 3
        button = next(w for w in widgets if type(w).__name__ == "Button")
        assert button.description == "Cancel"
        button.click()
        assert cancelled == [True] and button.disabled
        view.close()
    records = _records(cap)
    assert records[-1]["update"] and records[-1]["display_id"] == records[0]["display_id"]
    assert saved(records) == [{"text/html": view.to_html(), "text/plain": view.to_text()}]


# ---- code_interpreter ----------------------------------------------------------------------

CODE = 'import math\nprint("<script>alert(1)</script>", math.pi)\nfor i in range(3):\n    print(i)\n'
LOG_CHUNKS = ["<script>alert(1)</script> 3.14\n", "0\n", "1\n", "2\x1b[2J\n"]


def _visible(html: str) -> str:
    """The text a browser shows for ``html`` (tags dropped, entities decoded)."""
    import html as stdlib_html
    import re

    return stdlib_html.unescape(re.sub(r"<[^>]+>", "", html))


@pytest.fixture(scope="module")
def plot_id(kit: openai.OpenAI) -> str:
    return kit.files.create(file=("plot.png", tiny_png()), purpose="assistants").id


def test_code_call_grows_highlighted_then_shows_logs_and_images(
    kit: openai.OpenAI, plot_id: str, capture: Callable[[], Any]
) -> None:
    view = RunView("handles", max_rate=1000, files=FileImages(kit))
    with capture() as cap:
        for event in code_run_events(CODE, LOG_CHUNKS, (plot_id,)):
            view.on_event(event)
            time.sleep(0.002)  # past the throttle interval: every change is shown
        records = _records(cap)
        view.close()
    for record in _records(cap):
        assert_inert(record["data"].get("text/html", ""), data_images=True)
    calls = [r for r in records if r["data"]["text/plain"].startswith("→ code_interpreter")]
    assert len({r["display_id"] for r in calls}) == 1  # one handle for the call
    assert [r["update"] for r in calls] == [False] + [True] * (len(calls) - 1)
    shown = [_visible(r["data"]["text/html"]) for r in calls]
    code_seen = [next(i for i in range(len(CODE), -1, -1) if CODE[:i] in s) for s in shown]
    assert code_seen == sorted(code_seen) and len(set(code_seen)) > 5  # it grew, fragment by fragment
    assert code_seen[-1] == len(CODE)
    assert '<span style="color: #008000; font-weight: bold">import</span>' in calls[-1]["data"]["text/html"]
    final = calls[-1]["data"]["text/html"]
    assert escape("<script>alert(1)</script> 3.14\n0\n1\n2\x1b[2J\n") in final  # logs, escaped
    ((alt, data),) = data_images(final)
    assert data == tiny_png() and alt == f"image {plot_id}"
    snapshot = view.to_html()
    assert len(data_images(snapshot)) == 2  # the call's image and the reply's image_file part
    assert "✓" in snapshot and "✗" not in snapshot
    assert view.to_text().splitlines()[:6] == [
        "→ code_interpreter",
        "    import math",
        '    print("<script>alert(1)</script>", math.pi)',
        "    for i in range(3):",
        "        print(i)",
        "← <script>alert(1)</script> 3.14",
    ]
    assert "[image]" in view.to_text() and plot_id not in view.to_text().split("assistant:")[0]


def test_code_held_back_by_the_throttle_shows_before_the_code_has_run(capture: Callable[[], Any]) -> None:
    """The code streams faster than the throttle allows; the model then stops writing and the
    kernel runs the code (no events). The whole code is on screen well before the output."""
    events = code_run_events(CODE, LOG_CHUNKS)
    first_output = next(i for i, e in enumerate(events) if "logs" in str(getattr(e.data, "delta", "")))
    view = RunView("handles", max_rate=10)
    with capture() as cap:
        for event in events[:first_output]:
            view.on_event(event)
        assert CODE not in _visible(_records(cap)[-1]["data"]["text/html"])  # held back
        deadline = time.perf_counter() + 5
        while time.perf_counter() < deadline:  # the kernel is "running"
            records = [r for r in _records(cap) if r["data"]["text/plain"].startswith("→ code_interpreter")]
            if records and CODE in _visible(records[-1]["data"]["text/html"]):
                break
            time.sleep(0.02)
        else:
            pytest.fail("the end of the code was not shown while the code ran")
        waited = 5 - (deadline - time.perf_counter())
        for event in events[first_output:]:
            view.on_event(event)
        view.close()
    assert waited < 2.5, waited  # a throttle interval or a few (a busy machine), not the execution's length
    assert view.to_text().startswith("→ code_interpreter\n    import math")


def test_text_mode_writes_code_lines_as_they_complete() -> None:
    events = code_run_events(CODE + "x = 1", LOG_CHUNKS)  # the last line has no newline
    first_output = next(i for i, e in enumerate(events) if "logs" in str(getattr(e.data, "delta", "")))
    out = io.StringIO()
    view = RunView("text", file=out, max_rate=1000)
    seen = []
    for event in events[:first_output]:
        view.on_event(event)
        seen.append(out.getvalue().count("\n    "))
        time.sleep(0.002)
    assert out.getvalue().splitlines()[:2] == ["→ code_interpreter", "    import math"]
    assert seen[-1] == 4 and sorted(seen) == seen and len(set(seen)) == 5  # line by line
    assert "x = 1" not in out.getvalue()  # a line is written once it is complete
    for event in events[first_output:]:
        view.on_event(event)
    view.close()
    lines = out.getvalue().splitlines()
    assert lines[5:7] == ["    x = 1", "← <script>alert(1)</script> 3.14"]


def test_close_cancels_the_pending_flush(capture: Callable[[], Any]) -> None:
    events = code_run_events(CODE, LOG_CHUNKS)
    view = RunView("handles", max_rate=5)
    with capture() as cap:
        for event in events[:8]:
            view.on_event(event)
        view.close()
        closed = len(_records(cap))
        time.sleep(0.5)
        assert len(_records(cap)) == closed  # nothing rendered after the snapshot


def test_code_call_without_a_client_shows_images_by_id(capture: Callable[[], Any]) -> None:
    view = RunView("static")
    with capture() as cap:
        for event in code_run_events(CODE, LOG_CHUNKS, ("file-plot",)):
            view.on_event(event)
        view.close()
    (record,) = _records(cap)
    html = record["data"]["text/html"]
    assert "[image: <code>file-plot</code>]" in html and "[image_file: <code>file-plot</code>]" in html
    assert_inert(html)


def test_failed_code_step_shows_its_error(capture: Callable[[], Any]) -> None:
    error = "Execution timed out after 30 s; the kernel was restarted <b>"
    view = RunView("handles", max_rate=1000)
    with capture() as cap:
        for event in code_run_events("while True:\n    pass\n", [], error=error):
            view.on_event(event)
        view.close()
    html = view.to_html()
    assert "✗ failed" in html and escape(f"✗ server_error: {error}") in html
    assert html.count("Execution timed out") == 2  # the call, and the steps list
    assert f"✗ server_error: {error}" in view.to_text()
    assert view.status == "completed"  # the run went on
    for record in _records(cap):
        assert_inert(record["data"].get("text/html", ""))


def test_code_call_in_text_mode(kit: openai.OpenAI, plot_id: str) -> None:
    out = io.StringIO()
    view = RunView("text", file=out, files=FileImages(kit))
    for event in code_run_events(CODE, LOG_CHUNKS, (plot_id,)):
        view.on_event(event)
    view.close()
    size = f"({len(tiny_png()):,} bytes)"
    assert out.getvalue().splitlines()[:12] == [
        "→ code_interpreter",
        "    import math",
        '    print("<script>alert(1)</script>", math.pi)',
        "    for i in range(3):",
        "        print(i)",
        "← <script>alert(1)</script> 3.14",
        "0",
        "1",
        "2\ufffd[2J",  # the escape sequence neutralised
        f"[image {plot_id} {size}]",
        "Done.",
        f"[image {plot_id} {size}]",  # the reply's image_file part
    ]
    assert out.getvalue().splitlines()[12].startswith("— completed")


def test_text_mode_code_streams_logs_and_reports_failures() -> None:
    out = io.StringIO()
    view = RunView("text", file=out, max_rate=1000)
    events = code_run_events("x = 1\n", ["a\n", "b"], ("file-x",), error="server_error!")
    for event in events[:-5]:  # the code and its outputs, not the step's end yet
        view.on_event(event)
        time.sleep(0.002)
    assert out.getvalue() == "→ code_interpreter\n    x = 1\n← a\nb\n[image file-x]\n"
    for event in events[-5:]:
        view.on_event(event)
    view.close()
    lines = out.getvalue().splitlines()
    assert lines[5:7] == ["✗ server_error: server_error!", "Done."]


def test_code_deltas_respect_the_update_rate(capture: Callable[[], Any]) -> None:
    source = "".join(f"value_{i} = {i} * {i}\n" for i in range(400))  # ~8 kB in 1,200 deltas
    started = time.perf_counter()
    view = RunView("handles", max_rate=10)
    with capture() as cap:
        for event in code_run_events(source, ["done\n"] * 200, chunk=7):
            view.on_event(event)
            time.sleep(0.0002)
        view.close()
    duration = time.perf_counter() - started
    assert view.updates == len(_records(cap))
    assert view.updates <= 10 * duration + 10, (view.updates, duration)
    assert source in _visible(view.to_html())


def test_code_call_in_widgets_mode(capture: Callable[[], Any]) -> None:
    view = RunView("widgets", max_rate=1000)
    with capture():
        for event in code_run_events(CODE, LOG_CHUNKS):
            view.on_event(event)
            time.sleep(0.002)
        widgets = list(_walk(view.widget))
        html = [w.value for w in widgets if type(w).__name__ == "HTML" and "code_interpreter" in w.value]
        assert len(html) == 1 and escape("<script>alert(1)</script> 3.14") in html[0]
        view.close()


def test_message_images_and_file_paths_render(kit: openai.OpenAI, plot_id: str) -> None:
    csv = kit.files.create(file=("out.csv", b"a\n1\n"), purpose="assistants").id
    reply = message(
        text="See sandbox:/mnt/data/out.csv",
        images=(plot_id,),
        file_paths=(("sandbox:/mnt/data/out.csv", csv),),
    )
    view = RunView("static", display=lambda *a, **k: None, files=FileImages(kit))
    view.on_event(objects.event("thread.message.completed", reply))
    html = view.to_html()
    assert (
        f"<code>sandbox:/mnt/data/out.csv</code> → <code>{csv}</code>" in html and "out.csv · 4 bytes" in html
    )
    assert [data for _, data in data_images(html)] == [tiny_png()]
    assert view.to_text().splitlines()[:3] == [
        "assistant: See sandbox:/mnt/data/out.csv",
        f"[file_path sandbox:/mnt/data/out.csv → {csv}]",
        f"[image_file: {plot_id}]",
    ]


def test_big_images_slow_the_live_updates_down(kit: openai.OpenAI, capture: Callable[[], Any]) -> None:
    big = kit.files.create(file=("big.png", tiny_png(500, 500, noise=True)), purpose="assistants").id
    events = code_run_events("plot()\n", [], (big,))
    image_at = next(i for i, e in enumerate(events) if "image" in str(getattr(e.data, "delta", "")))
    tick = objects.code_delta(0, outputs=[{"index": 0, "type": "logs", "logs": "tick\n"}])
    view = RunView("handles", max_rate=10, files=FileImages(kit))
    with capture() as cap:
        for event in events[:image_at]:
            view.on_event(event)
        time.sleep(0.6)  # the held-back code is flushed by the timer, then the throttle reopens
        started = time.perf_counter()
        view.on_event(events[image_at])
        for _ in range(20):
            time.sleep(0.03)
            view.on_event(tick)
        duration = time.perf_counter() - started
        sent = [
            r["data"]["text/html"]
            for r in _records(cap)
            if "<code>code_interpreter</code>" in r["data"]["text/html"]
        ]
        view.close()
    shown = [html for html in sent if data_images(html)]
    assert "tick" not in shown[0]  # the image went out at once
    # ~330 kB of HTML counts as 4 messages: the next update waits 0.4 s, not 0.1 s.
    assert len(shown) <= 1 + math.ceil(duration / 0.4), (len(shown), duration)


def test_text_mode_caps_long_logs() -> None:
    from assistant_kit.notebook.terminal import LOG_LIMIT

    out = io.StringIO()
    view = RunView("text", file=out)
    for event in code_run_events("print('x' * 12_000)\n", ["x" * 6_000] * 2 + ["y\n"]):
        view.on_event(event)
    view.close()
    lines = out.getvalue().splitlines()
    assert lines[2] == "← " + "x" * LOG_LIMIT
    assert lines[3] == f"… (logs past {LOG_LIMIT:,} chars are not printed here)"
    assert lines[4] == "Done." and "y" not in out.getvalue().split("Done.")[0]
    assert "x" * 12_000 + "y" in view.to_html()
