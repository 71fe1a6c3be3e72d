"""``assistant_kit.notebook.code``: highlighted code, logs, images fetched through a real
client (the in-process engine's Files API), file references — and, end to end, a Session
run whose model-written program prints and plots with matplotlib in a real Jupyter kernel."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from assistant_kit import local_client
from assistant_kit.notebook import code as code_mod
from assistant_kit.notebook.code import (
    FileImages,
    code_block,
    code_call_html,
    code_call_text,
    code_outputs,
    file_ref_html,
    highlight,
    image_html,
    image_line,
    image_mime,
)
from assistant_kit.notebook.html import escape
from tests.notebook import PNG_MAGIC, assert_inert, data_images, ipython_shell
from tests.notebook.objects import code_call, step, tiny_png

EVIL = "<script>alert(1)</script> <img src=x onerror=alert(1)>"
EVIL_CODE = f'print("{EVIL}")  # </pre><script>x</script>\nx = 1 < 2 & 3 > 0\n'


@pytest.fixture(scope="module")
def kit() -> openai.OpenAI:
    return local_client(":memory:")


@pytest.fixture(scope="module")
def png_id(kit: openai.OpenAI) -> str:
    return kit.files.create(file=("plot.png", tiny_png()), purpose="assistants").id


# ---- highlighting --------------------------------------------------------------------------


def test_highlight_escapes_with_inline_styles() -> None:
    html = highlight(EVIL_CODE)
    assert '<span style="color: #008000">print</span>' in html  # pygments, inline styles
    assert "class=" not in html and "<style" not in html
    assert escape("<script>alert(1)</script>") in html and "x</script>" not in html
    assert "&lt;</span>" in html or "&lt; " in html or "&lt;" in html
    assert_inert(html)
    block = code_block(EVIL_CODE)
    assert block.startswith('<pre style="white-space:pre;') and "background:#f6f8fa" in block
    assert_inert(block)


def test_half_written_code_highlights_without_error_boxes() -> None:
    html = highlight('print("unfinished $')  # "$" is an error token: no red box while code streams
    assert "border" not in html and '"unfinished $' in html
    assert highlight("") == ""


def test_highlight_without_pygments_is_escaped_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pygments", None)
    code_mod._pygments.cache_clear()
    try:
        assert highlight(EVIL_CODE) == escape(EVIL_CODE)
    finally:
        code_mod._pygments.cache_clear()


def test_long_code_collapses() -> None:
    source = "x = 1\n" * 5000
    block = code_block(source)
    assert block.startswith("<details>") and "(30,000 chars)" in block


# ---- images --------------------------------------------------------------------------------


def test_image_mime_sniffs_raster_formats_only() -> None:
    assert image_mime(tiny_png()) == "image/png"
    assert image_mime(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert image_mime(b"GIF89a...") == "image/gif"
    assert image_mime(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert image_mime(b'<svg xmlns="http://www.w3.org/2000/svg"><script>x</script></svg>') is None
    assert image_mime(b"") is None


def test_image_without_a_client_is_a_labelled_placeholder() -> None:
    html = image_html("file-abc", None)
    assert "[image: <code>file-abc</code>]" in html and "dashed" in html
    assert_inert(html)
    assert image_html("file-<b>", None, label="image_file").count("&lt;b&gt;") == 1


def test_image_is_inlined_from_the_client(kit: openai.OpenAI, png_id: str) -> None:
    files = FileImages(kit)
    html = image_html(png_id, files)
    assert_inert(html, data_images=True)
    ((alt, data),) = data_images(html)
    assert data == tiny_png() and data.startswith(PNG_MAGIC)
    assert alt == f"image {png_id}" and f'title="{png_id}"' in html
    thumb = image_html(png_id, files, width=240)
    assert "max-width:min(100%,240px)" in thumb
    assert files.size(png_id) == len(tiny_png())
    assert files.info(png_id) == ("plot.png", len(tiny_png()))
    assert image_line(png_id, files) == f"[image {png_id} ({len(tiny_png()):,} bytes)]"
    assert image_line(png_id, None) == f"[image {png_id}]"


def test_images_are_fetched_once_per_file_id(kit: openai.OpenAI) -> None:
    file_id = kit.files.create(file=("once.png", tiny_png(3, 2)), purpose="assistants").id
    files = FileImages(kit)
    first = image_html(file_id, files)
    kit.files.delete(file_id)  # gone from the server: the cached bytes still render
    assert image_html(file_id, files) == first
    assert "not shown" in image_html(file_id, FileImages(kit))  # a fresh cache asks again


def test_fetch_failures_are_short_escaped_notes(kit: openai.OpenAI) -> None:
    files = FileImages(kit)
    html = image_html("file-<script>", files)
    assert "not shown: NotFoundError:" in html and "&lt;script&gt;" in html
    assert_inert(html)
    svg = kit.files.create(file=("x.svg", b"<svg><script>alert(1)</script></svg>"), purpose="assistants")
    assert "not a PNG, JPEG, GIF or WebP image" in image_html(svg.id, files)
    png = tiny_png(64, 64)
    big = kit.files.create(file=("big.png", png), purpose="assistants")
    small = FileImages(kit, max_bytes=20)
    assert f"not shown: {len(png):,} bytes is too large to inline" in image_html(big.id, small)
    assert small.size(big.id) == len(png)  # from the file's metadata: the bytes were not kept
    assert files.info("file-nope") is None and files.size("file-nope") is None
    assert image_line("file-nope", files) == "[image file-nope]"
    dead = FileImages(openai.OpenAI(api_key="x", base_url="http://127.0.0.1:9/v1", max_retries=0))
    assert "not shown: APIConnectionError" in image_html("file-x", dead)
    assert repr(files).startswith("<FileImages ")


def test_file_references(kit: openai.OpenAI) -> None:
    csv = kit.files.create(file=("out.csv", b"a,b\n1,2\n"), purpose="assistants")
    plain = file_ref_html("file_path", "sandbox:/mnt/data/out.csv", csv.id, None)
    assert f"<code>sandbox:/mnt/data/out.csv</code> → <code>{csv.id}</code>" in plain
    named = file_ref_html("file_path", "sandbox:/mnt/data/out.csv", csv.id, FileImages(kit))
    assert "out.csv · 8 bytes" in named
    assert "→" not in file_ref_html("file_path", "", csv.id, None)
    assert_inert(file_ref_html("file_path", EVIL, EVIL, None))


# ---- a whole call --------------------------------------------------------------------------


def test_code_outputs_from_models_and_dicts() -> None:
    call = code_call("call_1", "x", "a\n", ("file-1", "file-2"))
    assert code_outputs(call["code_interpreter"]["outputs"]) == ("a\n", ["file-1", "file-2"])
    sdk = step(calls=[call]).step_details.tool_calls[0].code_interpreter.outputs  # type: ignore[union-attr]
    assert code_outputs(sdk) == ("a\n", ["file-1", "file-2"])
    assert code_outputs([]) == (None, [])
    assert code_outputs(None) == (None, [])


def test_code_call_html_shows_code_logs_images_and_error(kit: openai.OpenAI, png_id: str) -> None:
    html = code_call_html(
        EVIL_CODE,
        f"out {EVIL}\n",
        [png_id],
        status="failed",
        error="server_error: timed out <b>",
        call_id="call_1",
    )
    assert html.startswith("<details open")
    assert "→ <code>code_interpreter</code>" in html and "✗ failed" in html
    assert escape(f"out {EVIL}\n") in html
    assert f"[image: <code>{png_id}</code>]" in html  # no client: by reference
    assert "✗ server_error: timed out &lt;b&gt;" in html
    assert_inert(html)
    with_images = code_call_html(EVIL_CODE, "out", [png_id], status="completed", files=FileImages(kit))
    assert "✓" in with_images and len(data_images(with_images)) == 1
    assert_inert(with_images, data_images=True)
    assert "…</span>" in code_call_html("x = 1", None, [])  # still running
    assert ">cancelled</span>" in code_call_html("x = 1", None, [], status="cancelled")
    long_logs = code_call_html("x", "line\n" * 1000, [])
    assert "(5,000 chars)</span></summary>" in long_logs


def test_code_call_text() -> None:
    text = code_call_text("a = 1\nprint(a)\n", "1\n", ["file-1"], error="server_error: boom")
    assert text.splitlines() == [
        "→ code_interpreter",
        "    a = 1",
        "    print(a)",
        "← 1",
        "[image file-1]",
        "✗ server_error: boom",
    ]
    assert code_call_text("x", None, ["file-1"], ids=False).splitlines()[-1] == "[image]"


# ---- end to end: a Session, the engine, a Jupyter kernel, matplotlib --------------------------

PROGRAM = """```python
import matplotlib.pyplot as plt
print("mean <b>:", sum([1, 2, 3]) / 3)
plt.plot([1, 2, 3], [1, 4, 9])
plt.title("squares")
plt.show()
```"""


@pytest.fixture
def shell() -> Iterator[Any]:
    from IPython.core.interactiveshell import InteractiveShell

    ip = ipython_shell()
    yield ip
    InteractiveShell.clear_instance()


@pytest.mark.timeout(120)
def test_session_renders_code_logs_and_plot_end_to_end(shell: Any, tmp_path: Path) -> None:
    from IPython.utils.capture import capture_output

    from assistant_kit.notebook.session import Session

    session = Session(tmp_path / "kit.db").create_assistant(
        "test/tools", tools=[{"type": "code_interpreter"}]
    )
    session.create_thread().add_message(PROGRAM)
    with capture_output(stdout=False, stderr=False) as cap:
        session.run(live="handles")
    assert session.last_run.status == "completed"
    records = [(o.data.get("text/html", ""), o.transient["display_id"], o.update) for o in cap.outputs]
    final = session.last_view.to_html()
    assert records[-len(session.last_view.items) - 1][0] == final  # the snapshot replaced it
    assert '<span style="color: #008000; font-weight: bold">import</span>' in final  # highlighted code
    assert "mean &lt;b&gt;: 2.0" in final  # the logs, escaped
    images = data_images(final)
    assert len(images) == 2  # the call's output and the reply's image_file part
    for alt, data in images:
        assert data.startswith(PNG_MAGIC) and len(data) > 1000
        assert alt.split()[-1].startswith("file")
    assert_inert(final, data_images=True)
    # Live: the call had one display handle of its own, updated in place.
    live = records[: -len(session.last_view.items) - 1]  # before close
    calls = [(html, slot, update) for html, slot, update in live if "<code>code_interpreter</code>" in html]
    assert len({slot for _, slot, _ in calls}) == 1 and [u for _, _, u in calls][1:] == [True] * (
        len(calls) - 1
    )
    assert "mean &lt;b&gt;: 2.0" in calls[-1][0] and len(data_images(calls[-1][0])) == 1
    # The tables and the inspector refer to the image by id; the inspector shows a thumbnail.
    steps = session.steps()
    (file_id,) = steps["image_file_ids"][0]
    assert steps["tool_calls"][0][0].startswith("code_interpreter(import matplotlib.pyplot as plt")
    assert steps["tool_outputs"][0] == ["mean <b>: 2.0\n"]
    assert session.messages()["image_file_ids"].tolist() == [[], [file_id]]
    inspection = session.inspect()._repr_html_()
    assert "max-width:min(100%,360px)" in inspection and "mean &lt;b&gt;: 2.0" in inspection
    assert_inert(inspection.split("<b>Runs (")[0], data_images=True)  # the tables carry a <style>


@pytest.mark.timeout(120)
def test_session_text_mode_and_a_failed_execution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant_kit.notebook.session import Session

    monkeypatch.setenv("ASSISTANT_KIT_CODE_TIMEOUT", "1")
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    session = Session(tmp_path / "kit.db").create_assistant(
        "test/tools", tools=[{"type": "code_interpreter"}]
    )
    program = '```python\nprint("before \\x1b[31m")\nimport time\ntime.sleep(30)\n```'
    session.create_thread().add_message(program).run()
    monkeypatch.undo()
    text = out.getvalue()
    lines = text.splitlines()
    start = lines.index("→ code_interpreter")
    assert lines[start + 1 : start + 4] == [
        '    print("before \\x1b[31m")',
        "    import time",
        "    time.sleep(30)",
    ]
    assert lines[start + 4].startswith("← before")  # logs as they came
    failure = next(line for line in lines if line.startswith("✗ "))
    assert "server_error" in failure and "timed out" in failure.lower()
    html = session.last_view.to_html()
    assert "✗ failed" in html and escape(failure[2:]) in html
    step_row = session.steps().iloc[0]
    assert step_row["status"] == "failed" and "timed out" in step_row["last_error"].lower()


@pytest.mark.timeout(120)
def test_session_files_go_in_and_come_back(tmp_path: Path) -> None:
    from assistant_kit.errors import SessionError
    from assistant_kit.notebook.session import Session

    data = tmp_path / "data.csv"
    data.write_text("x,y\n1,2\n3,4\n")
    session = Session(tmp_path / "kit.db", live="static").create_assistant(
        "test/tools", tools=[{"type": "code_interpreter"}]
    )
    uploaded = session.client.files.create(file=("by_id.txt", b"from an id"), purpose="assistants").id
    program = (
        "```python\n"
        "import csv\n"
        "rows = list(csv.DictReader(open('data.csv')))\n"
        "print('sum y:', sum(int(r['y']) for r in rows))\n"
        "print(open('notes.txt').read(), open('by_id.txt').read())\n"
        "n = open('out.txt', 'w').write('written <by> the code')\n"
        "```"
    )
    session.create_thread()
    with pytest.raises(SessionError, match=r"files: '.*missing\.csv' is not a file") as missing:
        session.add_message(program, files=[data, tmp_path / "missing.csv"])
    assert missing.value.param == "files"
    assert session.messages().empty  # nothing was sent
    session.add_message(program, files=[data, ("notes.txt", b"a note"), uploaded]).run()
    message = session.client.beta.threads.messages.list(session.thread.id, order="asc").data[0]
    assert [a.tools[0].type for a in message.attachments] == ["code_interpreter"] * 3
    assert message.attachments[2].file_id == uploaded
    assert session.steps()["tool_outputs"][0] == ["sum y: 6\na note from an id\n"]
    (written,) = session.messages()["file_path_ids"].iloc[-1]
    saved = session.save_file(written, tmp_path)  # a directory: the file keeps its name
    assert saved == tmp_path / "out.txt" and saved.read_text() == "written <by> the code"
    other = session.save_file(written, tmp_path / "copy.txt")
    assert other.read_bytes() == saved.read_bytes()
    with pytest.raises(SessionError, match="file_nope"):
        session.save_file("file_nope", tmp_path)
    with pytest.raises(SessionError, match="expected paths"):
        session.add_message("x", files=[42])
