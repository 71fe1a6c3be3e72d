"""Issue 19 in the notebook: runs inline in the transcript, prompt folds, millisecond timings.

The objects are built by hand in the wire's shapes (plus the engine's ``timings`` and
``prompts``, docs/inspection.md), so every case is exact: a tool round answered, a failed run,
a cancelled tool round, an incomplete run with no end on the wire, an imported run with no
timings at all, and hostile text everywhere. Over a real engine: tests/notebook/test_inspect.py.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from openai.types.beta import Thread

from assistant_kit import local_client
from assistant_kit.errors import SessionError
from assistant_kit.notebook import tables
from assistant_kit.notebook._prompts import TOKENS_SOURCE, PromptView, prompt_rows
from assistant_kit.notebook.inspect import ThreadInspection, inspect, timeline_svg
from tests.notebook import assert_inert

T0 = 1_700_000_000
MS = T0 * 1000
EVIL = "<script>boom()</script>"
SVG = "{http://www.w3.org/2000/svg}"


def _message(mid: str, role: str, text: str, at: int, run_id: str | None = None) -> dict[str, Any]:
    return {
        "id": mid,
        "object": "thread.message",
        "created_at": at,
        "thread_id": "thread_x",
        "role": role,
        "status": "completed",
        "run_id": run_id,
        "assistant_id": "asst_x" if role == "assistant" else None,
        "attachments": [],
        "metadata": {},
        "content": [{"type": "text", "text": {"value": text, "annotations": []}}],
    }


def _run(rid: str, status: str, at: int, timings: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    run = {
        "id": rid,
        "object": "thread.run",
        "thread_id": "thread_x",
        "assistant_id": "asst_x",
        "status": status,
        "created_at": at,
        "started_at": at,
        "model": "test/tools",
        "tools": [{"type": "function", "function": {"name": "lookup"}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
        "last_error": None,
        "incomplete_details": None,
    }
    run.update(extra)
    if timings is not None:
        run["timings"] = timings
    return run


def _step(
    sid: str, rid: str, at: int, calls: list[dict[str, Any]] | None, status: str = "completed", **extra: Any
):
    details: dict[str, Any]
    if calls is None:
        details = {"type": "message_creation", "message_creation": {"message_id": extra.pop("message_id")}}
    else:
        details = {"type": "tool_calls", "tool_calls": calls}
    step = {
        "id": sid,
        "object": "thread.run.step",
        "run_id": rid,
        "thread_id": "thread_x",
        "assistant_id": "asst_x",
        "type": details["type"],
        "status": status,
        "created_at": at,
        "completed_at": at if status == "completed" else None,
        "cancelled_at": at if status == "cancelled" else None,
        "last_error": None,
        "step_details": details,
    }
    step.update(extra)
    return step


def _call(cid: str, name: str, arguments: str, output: str | None) -> dict[str, Any]:
    return {
        "id": cid,
        "type": "function",
        "function": {"name": name, "arguments": arguments, "output": output},
    }


def _timings(start: int, first: int | None, end: int | None) -> dict[str, Any]:
    return {
        "created_at_ms": MS + start,
        "started_at_ms": MS + start,
        "first_token_at_ms": None if first is None else MS + first,
        "ended_at_ms": None if end is None else MS + end,
    }


PROMPT = {
    "turn": 0,
    "step_ids": ["step_m2"],
    "created_at_ms": MS + 60,
    "model": "test/tools",
    "request": {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": f"Look up {EVIL}"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": '{"term": "run"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "one answer to a thread"},
        ],
        "tools": [{"type": "function", "function": {"name": "lookup"}}],
        "tool_choice": "auto",
        "temperature": 0.2,
    },
    "truncated": False,
    "bytes": 400,
}


def _inspection() -> ThreadInspection:
    """Four user turns: a tool round answered; a failed run; a cancelled tool round; an
    imported-looking incomplete run with no timings and no end on the wire."""
    messages = [
        _message("msg_u1", "user", f"Look up {EVIL}", T0),
        _message("msg_a1", "assistant", "A run is one answer.", T0, "run_1"),
        _message("msg_u2", "user", "Are you there?", T0),
        _message("msg_u3", "user", "Look up 'step'.", T0),
        _message("msg_u4", "user", "Repeat.", T0 + 1),
    ]
    runs = [
        _run("run_1", "completed", T0, _timings(0, 40, 180), completed_at=T0),
        _run(
            "run_2",
            "failed",
            T0,
            _timings(200, None, 215),
            failed_at=T0,
            usage=None,
            last_error={"code": "server_error", "message": f"the model server is not answering {EVIL}"},
        ),
        _run("run_3", "cancelled", T0, _timings(300, 310, 420), cancelled_at=T0),
        _run("run_4", "incomplete", T0 + 1, None, incomplete_details={"reason": "max_prompt_tokens"}),
    ]
    # Ids sort by suffix in creation order within the same second, as the engine makes them.
    for n, obj in enumerate([messages[0], runs[0], messages[1], messages[2], runs[1], messages[3], runs[2]]):
        obj["id"] = f"{obj['id'].split('_')[0]}_{n:026d}"
    messages[1]["run_id"] = runs[0]["id"]
    rid = {r: runs[i]["id"] for i, r in enumerate(["run_1", "run_2", "run_3", "run_4"])}
    steps = [
        _step(
            "step_t1", rid["run_1"], T0, [_call("call_1", "lookup", '{"term": "run"}', f"one answer {EVIL}")]
        ),
        _step("step_m2", rid["run_1"], T0, None, message_id=messages[1]["id"]),
        _step(
            "step_t3", rid["run_3"], T0, [_call("call_2", "lookup", '{"term": "step"}', None)], "cancelled"
        ),
    ]
    steps[0]["timings"] = {
        "step_id": "step_t1",
        "created_at_ms": MS + 50,
        "ended_at_ms": MS + 55,
        "tool_ms": 3,
    }
    return ThreadInspection(
        thread=Thread(id="thread_x", object="thread", created_at=T0, metadata={}),
        messages=tables._messages_frame(messages),
        runs=tables._runs_frame(runs),
        steps=tables._steps_frame(steps),
        code_calls=tables._code_calls_frame(steps),
        prompts={rid["run_1"]: [PROMPT]},
        record_prompts=True,
    )


def test_runs_sit_under_the_user_turn_that_started_them() -> None:
    ins = _inspection()
    order = [(kind, row.id[:8]) for kind, row in ins._entries()]
    assert [k for k, _ in order] == [
        "message",
        "run",
        "message",
        "message",
        "run",
        "message",
        "run",
        "message",
        "run",
    ]
    kinds = [(k, r.role if k == "message" else r.status) for k, r in ins._entries()]
    assert kinds == [
        ("message", "user"),
        ("run", "completed"),
        ("message", "assistant"),
        ("message", "user"),
        ("run", "failed"),
        ("message", "user"),
        ("run", "cancelled"),
        ("message", "user"),
        ("run", "incomplete"),
    ]


def test_inline_html_shows_the_tool_round_the_error_the_cancelled_round_and_the_prompt() -> None:
    html = _inspection()._transcript_html()
    assert html.count('class="ak-run"') == 4
    assert "server_error: the model server is not answering &lt;script&gt;boom()&lt;/script&gt;" in html
    assert "one answer &lt;script&gt;boom()&lt;/script&gt;" in html  # the tool's output
    assert "never answered: the step is cancelled" in html  # the cancelled round
    assert "incomplete: max_prompt_tokens" in html
    assert "180 ms" in html and "first token 40 ms" in html  # the engine's milliseconds
    assert html.count("duration unknown") == 1  # only the imported run: no timings, no end on the wire
    assert "12 tokens (10 in, 2 out)" in html
    assert "tokens unknown" in html  # the failed run has no usage: unknown, not 0
    fold = re.search(r"<details class='ak-prompt'.*", html, re.S)
    assert fold and "turn 0 · 4 messages" in fold.group(0) and "Be brief." in fold.group(0)
    assert "→ lookup({&quot;term&quot;: &quot;run&quot;})" in fold.group(0)
    assert "<script" not in html
    assert_inert(html)


def test_text_repr_has_the_runs_inline() -> None:
    text = repr(_inspection())
    assert "run: run_0000" in text and "completed  test/tools  12 tokens (10 in, 2 out)  180 ms" in text
    assert f"✗ server_error: the model server is not answering {EVIL}" in text
    assert '→ lookup({"term": "step"})  ← (never answered)' in text
    assert f'→ lookup({{"term": "run"}})  ← one answer {EVIL}' in text
    assert "prompt · turn 0 · 4 messages" in text
    assert "incomplete: max_prompt_tokens" in text
    lines = text.splitlines()
    assert lines.index(next(ln for ln in lines if "user: Are you there?" in ln)) < lines.index(
        next(ln for ln in lines if "failed" in ln and "run:" in ln)
    )


def test_frames_use_milliseconds_and_say_when_they_cannot() -> None:
    runs = _inspection().runs
    assert list(runs["resolution"]) == ["ms", "ms", "ms", "s"]
    assert runs["duration_s"].iloc[0] == pytest.approx(0.18)
    assert runs["first_token_s"].iloc[0] == pytest.approx(0.04)
    assert runs["first_token_s"].isna().iloc[1]  # unknown, not 0
    assert runs["ended_at"].iloc[0].value // 1_000_000 == MS + 180
    assert runs["ended_at"].isna().iloc[3] and runs["duration_s"].isna().iloc[3]
    assert list(runs["incomplete_reason"].fillna("")) == ["", "", "", "max_prompt_tokens"]
    steps = _inspection().steps
    assert steps["tool_s"].iloc[0] == pytest.approx(0.003) and steps["tool_s"].isna().iloc[1]
    assert steps["calls"].iloc[2] == [
        {
            "id": "call_2",
            "type": "function",
            "name": "lookup",
            "arguments": '{"term": "step"}',
            "output": None,
        }
    ]


def test_incomplete_run_on_the_wire_has_an_end() -> None:
    run = _run("run_5", "incomplete", T0, None, incomplete_at=T0 + 2, incomplete_details={"reason": "x"})
    frame = tables._runs_frame([run])
    assert frame["duration_s"].iloc[0] == 2.0 and frame["resolution"].iloc[0] == "s"


def _svg(source: str) -> ET.Element:
    return ET.fromstring(source)


def test_timeline_in_milliseconds_with_first_token_and_tool_time_and_no_stretched_end() -> None:
    ins = _inspection()
    svg = _svg(timeline_svg(ins.runs, ins.steps))
    runs = {
        r.find(f"{SVG}title").text.split(" · ")[0]: r
        for r in svg.iter(f"{SVG}rect")
        if r.get("class") == "run"
    }
    assert len(runs) == 4
    widths = sorted(float(r.get("width")) for r in runs.values())
    assert widths[-1] < 760 - 200 - 150 + 1  # nothing past the plot
    first = [e for e in svg.iter(f"{SVG}line") if e.get("class") == "first-token"]
    assert len(first) == 2  # run_1 and run_3; run_2 never produced a token
    tools = [e for e in svg.iter(f"{SVG}rect") if e.get("class") == "tool-time"]
    assert len(tools) == 1 and "3 ms" in tools[0].find(f"{SVG}title").text
    texts = "".join(svg.itertext())
    assert "end unknown" in texts  # the incomplete run without timings: not stretched
    assert "s resolution (1 of 4 runs" in texts
    incomplete = next(r for r in runs.values() if "incomplete" in r.find(f"{SVG}title").text)
    assert incomplete.get("stroke-dasharray") and float(incomplete.get("width")) <= 3.0
    ticks = [e.text for e in svg.iter(f"{SVG}text") if e.text and re.fullmatch(r"\d+ (ms|s)", e.text)]
    assert ticks[:2] == ["0 s", "1 s"]  # whole seconds, since one run has nothing finer


def test_timeline_ticks_in_ms_when_every_run_has_ms() -> None:
    ins = _inspection()
    runs = ins.runs.iloc[:3]
    svg = _svg(timeline_svg(runs, ins.steps))
    ticks = [e.text for e in svg.iter(f"{SVG}text") if e.text and e.text.endswith(" ms")]
    assert ticks[0] == "0 ms" and len(ticks) >= 4
    assert "s resolution" not in "".join(svg.itertext())


def test_prompt_rows_view_and_estimate() -> None:
    rows = prompt_rows({"prompts": [PROMPT]})
    assert [r["role"] for r in rows] == ["system", "user", "assistant", "tool"]
    assert rows[0]["tokens"] == len("Be brief.") // 4 + 4 and rows[0]["tokens_source"] == TOKENS_SOURCE
    assert rows[2]["content"] == '→ lookup({"term": "run"})'
    assert rows[3]["tool_call_id"] == "call_1"
    frame = tables._frame(tables.PROMPTS, rows)
    assert list(frame.columns[:4]) == ["turn", "index", "role", "content"]
    view = PromptView("run_1", [PROMPT])
    assert "Be brief." in repr(view) and f"Look up {EVIL}" in repr(view)
    html = view._repr_html_()
    assert "&lt;script&gt;" in html and "<script" not in html and "temperature" in html
    assert "off" in repr(PromptView("run_1", [], record_prompts=False))


class _WithoutInspection(httpx2.BaseTransport):
    """A server that speaks Assistants v2 but has none of the inspection routes (as the hosted
    API): those answer 404, everything else goes to the engine."""

    def __init__(self, inner: httpx2.BaseTransport):
        self.inner = inner

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path.removeprefix("/v1")
        if path.endswith("/inspection") or path in ("/runs", "/runs/steps"):
            return httpx2.Response(
                404, json={"error": {"message": "Not found", "type": "invalid_request_error"}}
            )
        return self.inner.handle_request(request)


def test_without_the_extension_routes_everything_falls_back_to_seconds(tmp_path: Path) -> None:
    """A server without the routes: 404 → the wire's seconds, marked "s"; unknown stays unknown;
    whole-store tables and prompts say why they cannot work."""
    from assistant_kit.transport import InProcessTransport
    from tests.notebook.test_tables import conversation

    local = local_client(tmp_path / "kit.db")
    inner = local._client._transport  # the in-process transport of that engine
    assert isinstance(inner, InProcessTransport)
    client = openai.OpenAI(
        api_key="x",
        base_url=str(local.base_url),
        max_retries=0,
        http_client=openai.DefaultHttpxClient(transport=_WithoutInspection(inner)),
    )
    conv = conversation(client, first="hi")
    thread = conv["thread"]
    frame = tables.runs(client, thread.id)
    assert len(frame) == 2 and list(frame["resolution"]) == ["s", "s"]
    assert frame["first_token_s"].isna().all()  # unknown, not 0
    calls = tables.tool_calls(client, thread.id)
    assert list(calls["name"]) == ["alpha", "beta"] and list(calls["output"]) == ["out-alpha", "out-beta"]
    assert (tables.steps(client, thread.id)["resolution"] == "s").all()
    with pytest.raises(SessionError, match=r"GET /runs .*extension"):
        tables.runs(client, status="failed")
    with pytest.raises(SessionError, match="extension"):
        tables.tool_calls(client)
    with pytest.raises(SessionError, match="inspection"):
        tables.prompts(client, thread.id, conv["runs"][0].id)
    ins = inspect(thread, client)
    assert ins.record_prompts is None and "no inspection route" in repr(ins)
    html = ins._repr_html_()
    assert html.count('class="ak-run"') == 2 and "ak-step" in html and "ak-prompt" not in html
    assert "s resolution" in ins.timeline_svg()


def test_what_could_not_be_known_is_said() -> None:
    ins = _inspection()
    assert "no inspection route" not in repr(ins) and "ak-note" not in ins._repr_html_()
    ins.record_prompts = None  # a server without the routes
    assert "no inspection route: times are the wire's whole seconds" in repr(ins)
    assert 'class="ak-note"' in ins._repr_html_()
    ins.record_prompts = False
    assert "Prompt recording is off" in repr(ins)
