"""``assistant_kit.notebook.html``: escaping, truncation, text blocks, SDK object reprs and
their IPython formatters — on real objects made by the in-process engine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from assistant_kit import local_client, register_model
from assistant_kit.notebook.code import FileImages
from assistant_kit.notebook.html import (
    escape,
    object_html,
    object_text,
    register_formatters,
    text_block,
    truncate,
)
from tests.notebook import assert_inert, data_images, ipython_shell
from tests.notebook.objects import code_call, message, step, tiny_png

EVIL = (
    "<script>alert(1)</script> <img src=x onerror=alert(1)> "
    "![x](http://evil.example/a.png) [click](javascript:alert(1))"
)
SECRET = "sk-secret-123"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def _boom(messages: list[dict[str, Any]]) -> str:
    raise RuntimeError("kaput " + EVIL)


@pytest.fixture(scope="module")
def objects() -> dict[str, Any]:
    """One of each SDK object, made by a real run in the in-process engine."""
    register_model("nb-html/boom", _boom)
    kit = local_client(":memory:")
    beta = kit.beta
    assistant = beta.assistants.create(
        model="test/tools", name=EVIL, instructions=EVIL, description=EVIL, tools=[WEATHER_TOOL]
    )
    thread = beta.threads.create(metadata={"note": EVIL, "api_key": SECRET})
    picture = kit.files.create(file=("picture.png", tiny_png()), purpose="vision").id
    user_message = beta.threads.messages.create(
        thread_id=thread.id,
        role="user",
        content=[
            {"type": "text", "text": EVIL},
            {"type": "image_url", "image_url": {"url": "http://evil.example/a.png"}},
            {"type": "image_file", "image_file": {"file_id": picture}},
        ],
    )
    waiting = beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    call = waiting.required_action.submit_tool_outputs.tool_calls[0]
    done = beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=thread.id, run_id=waiting.id, tool_outputs=[{"tool_call_id": call.id, "output": EVIL}]
    )
    steps = list(beta.threads.runs.steps.list(thread_id=thread.id, run_id=done.id, order="asc"))
    reply = beta.threads.messages.list(thread_id=thread.id, order="desc").data[0]
    broken = beta.assistants.create(model="nb-html/boom")
    failed_thread = beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    failed = beta.threads.runs.create_and_poll(thread_id=failed_thread.id, assistant_id=broken.id)
    return {
        "assistant": assistant,
        "thread": thread,
        "user_message": user_message,
        "reply": reply,
        "requires_action": waiting,
        "completed": done,
        "failed": failed,
        "tool_step": next(s for s in steps if s.type == "tool_calls"),
        "message_step": next(s for s in steps if s.type == "message_creation"),
    }


# ---- helpers -----------------------------------------------------------------------------


def test_escape_quotes_and_tags() -> None:
    assert escape('<a href="x">&\'') == "&lt;a href=&quot;x&quot;&gt;&amp;&#x27;"
    assert escape(None) == ""  # type: ignore[arg-type]


def test_truncate_marks_what_was_cut() -> None:
    assert truncate("short") == "short"
    assert truncate("x" * 200) == "x" * 200
    assert truncate("x" * 250) == "x" * 200 + "… (+50 chars)"
    assert truncate("abcdef", 2) == "ab… (+4 chars)"


def test_text_block_escapes_and_wraps() -> None:
    html = text_block(EVIL)
    assert html.startswith('<pre style="white-space:pre-wrap')
    assert escape(EVIL) in html
    assert "<details" not in html
    assert_inert(html)


def test_text_block_collapses_long_text() -> None:
    long = "line <b>bold</b>\n" * 300
    html = text_block(long)
    assert html.startswith("<details><summary")
    assert escape(long) in html
    assert f"({len(long):,} chars)" in html
    assert "<b>" not in html
    assert text_block(long, collapse_over=10**6).startswith("<pre")


# ---- object reprs ------------------------------------------------------------------------

CASES = [
    ("assistant", "assistant", "asst_"),
    ("thread", "thread", "thread_"),
    ("user_message", "message", "msg_"),
    ("reply", "message", "msg_"),
    ("requires_action", "run", "run_"),
    ("completed", "run", "run_"),
    ("failed", "run", "run_"),
    ("tool_step", "run step", "step_"),
    ("message_step", "run step", "step_"),
]


@pytest.mark.parametrize(("key", "kind", "prefix"), CASES)
def test_object_html_is_a_safe_card(objects: dict[str, Any], key: str, kind: str, prefix: str) -> None:
    obj = objects[key]
    html = object_html(obj)
    assert f"<b>{kind}</b>" in html
    assert f"<code>{obj.id}</code>" in html
    assert_inert(html)
    assert SECRET not in html


@pytest.mark.parametrize(("key", "kind", "prefix"), CASES)
def test_object_text_is_short_and_readable(objects: dict[str, Any], key: str, kind: str, prefix: str) -> None:
    obj = objects[key]
    text = object_text(obj)
    assert obj.id in text.splitlines()[0]
    assert len(text.splitlines()) <= 8
    assert SECRET not in text
    assert "=None" not in text  # not a pydantic repr dump


def test_status_badges_and_key_fields(objects: dict[str, Any]) -> None:
    assert ">completed</span>" in object_html(objects["completed"])
    assert ">requires_action</span>" in object_html(objects["requires_action"])
    assert ">failed</span>" in object_html(objects["failed"])
    assert "test/tools" in object_html(objects["assistant"])
    assert "get_weather" in object_html(objects["assistant"])
    assert "tools: get_weather" in object_text(objects["assistant"])
    assert "usage: prompt" in object_text(objects["completed"])


def test_message_content_is_escaped_text_never_markup(objects: dict[str, Any]) -> None:
    html = object_html(objects["user_message"])
    assert escape(EVIL) in html
    assert "[image_url: <code>http://evil.example/a.png</code>]" in html  # the URL as text
    image_file = objects["user_message"].content[2].image_file.file_id
    assert f"[image_file: <code>{image_file}</code>]" in html
    text = object_text(objects["user_message"])
    assert "[image_url: http://evil.example/a.png]" in text
    assert EVIL in text  # text/plain is not HTML: shown verbatim


def test_tool_calls_show_name_arguments_and_output(objects: dict[str, Any]) -> None:
    waiting = object_html(objects["requires_action"])
    assert "<code>get_weather</code>" in waiting
    assert "waiting for 1 tool output(s)" in waiting
    assert "→ get_weather(" in object_text(objects["requires_action"])
    step = object_html(objects["tool_step"])
    assert "<code>get_weather</code>" in step
    assert "&quot;city&quot;" in step
    assert escape(EVIL) in step  # the output, escaped
    assert "← " in object_text(objects["tool_step"])
    assert objects["reply"].id in object_html(objects["message_step"])


def test_failed_run_shows_its_error_escaped(objects: dict[str, Any]) -> None:
    failed = objects["failed"]
    assert failed.status == "failed"
    html = object_html(failed)
    assert "server_error" in html
    assert escape("kaput <script>") in html
    assert "error: server_error" in object_text(failed)


def test_secret_looking_metadata_is_masked(objects: dict[str, Any]) -> None:
    thread = objects["thread"]
    assert thread.metadata["api_key"] == SECRET
    assert "***" in object_text(thread)
    assert "&quot;api_key&quot;: &quot;***&quot;" in object_html(thread)


def test_unknown_objects_fall_back_to_escaped_repr() -> None:
    class Odd:
        def __repr__(self) -> str:
            return EVIL

    html = object_html(Odd())
    assert escape(EVIL) in html
    assert_inert(html)
    assert object_text(Odd()) == EVIL


# ---- IPython formatters ------------------------------------------------------------------


@pytest.fixture
def shell() -> Iterator[Any]:
    from IPython.core.interactiveshell import InteractiveShell

    ip = ipython_shell()
    yield ip
    InteractiveShell.clear_instance()


def test_register_formatters_in_an_interactive_shell(shell: Any, objects: dict[str, Any]) -> None:
    register_formatters()  # finds the running shell
    for obj in objects.values():
        data, _metadata = shell.display_formatter.format(obj)
        assert data["text/html"] == object_html(obj)
        assert data["text/plain"] == object_text(obj)


def test_register_formatters_is_a_noop_outside_ipython() -> None:
    from IPython import get_ipython

    assert get_ipython() is None
    register_formatters()  # nothing to register with, nothing raised


# ---- code_interpreter and files ----------------------------------------------------------


@pytest.fixture(scope="module")
def kit() -> Any:
    return local_client(":memory:")


def test_code_step_card_shows_code_logs_and_images(kit: Any) -> None:
    png = kit.files.create(file=("plot.png", tiny_png()), purpose="assistants").id
    card = step(calls=[code_call("call_1", f"print('{EVIL}')\n", f"{EVIL}\n", (png,))])
    html = object_html(card)
    assert "<b>run step</b>" in html and "<code>code_interpreter</code>" in html and "✓" in html
    assert '<span style="color: #008000">print</span>' in html  # highlighted
    assert escape(f"{EVIL}\n") in html  # the logs
    assert f"[image: <code>{png}</code>]" in html  # no client: by reference
    assert_inert(html)
    inline = object_html(card, files=FileImages(kit))
    assert [data for _, data in data_images(inline)] == [tiny_png()]
    assert_inert(inline, data_images=True)
    text = object_text(card)
    assert text.splitlines()[1:5] == [
        "  → code_interpreter",
        f"      print('{EVIL}')",
        f"  ← {EVIL}",
        f"  [image {png}]",
    ]


def test_failed_code_step_card_shows_the_error_once() -> None:
    error = "Execution timed out after 30 s; the kernel was restarted <i>"
    card = step(calls=[code_call("call_1", "while True: pass\n")], status="failed", error=error)
    html = object_html(card)
    assert ">failed</span>" in html and "✗ failed" in html
    assert html.count("Execution timed out") == 1 and escape(error) in html
    assert f"✗ server_error: {error}" in object_text(card)
    assert object_text(card).count("timed out") == 1


def test_message_card_shows_images_and_file_paths(kit: Any) -> None:
    png = kit.files.create(file=("plot.png", tiny_png()), purpose="assistants").id
    csv = kit.files.create(file=("out.csv", b"a,b\n"), purpose="assistants").id
    msg = message(
        text=f"Saved sandbox:/mnt/data/out.csv {EVIL}",
        images=(png,),
        file_paths=(("sandbox:/mnt/data/out.csv", csv),),
    )
    html = object_html(msg)
    assert f"[image_file: <code>{png}</code>]" in html  # a placeholder naming the file
    assert f"📎 file_path <code>sandbox:/mnt/data/out.csv</code> → <code>{csv}</code>" in html
    assert_inert(html)
    inline = object_html(msg, files=FileImages(kit))
    assert "out.csv · 4 bytes" in inline
    ((alt, data),) = data_images(inline)
    assert data == tiny_png() and alt == f"image_file {png}"
    assert_inert(inline, data_images=True)
    text = object_text(msg)
    assert f"  [file_path sandbox:/mnt/data/out.csv → {csv}]" in text
    assert f"  [image_file: {png}]" in text


def test_register_formatters_with_files_inlines_images(shell: Any, kit: Any) -> None:
    png = kit.files.create(file=("plot.png", tiny_png()), purpose="assistants").id
    register_formatters(files=FileImages(kit))
    data, _ = shell.display_formatter.format(message(images=(png,)))
    assert len(data_images(data["text/html"])) == 1
