"""Numbered citations and file_search calls in every view of the notebook layer — the
streamed ``RunView`` (HTML snapshot, live handles, text mode), the object cards — built from
hand-made SDK objects (``tests/notebook/objects.py``), so that hostile file names and chunks,
missing content and markers that point nowhere are exactly what the test says."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import pytest

from assistant_kit.notebook.citations import citation_annotations, cited_text, resolve, search_results
from assistant_kit.notebook.html import escape, object_html, object_text
from assistant_kit.notebook.render import RunView
from tests.notebook import assert_inert, ipython_shell
from tests.notebook.objects import cited_message, search_call, search_run_events, step

EVIL = "<script>alert(1)</script><img src=x onerror=alert(2)>"
FRACTIONS = "A fraction names a part of a whole: the denominator says into how many parts."
PRIMES = "A prime has exactly two divisors. <b>2</b> is the only even prime."
RESULTS = [
    ("file-frac", "fractions.md", 0.91234, FRACTIONS),
    ("file-prime", "primes.md", 0.5, PRIMES),
]
ANSWER = "A denominator counts the parts【0:0†source】; 2 is prime【0:1†primes.md】 and even【0:1†x】."
CITES = [("【0:0†source】", "file-frac"), ("【0:1†primes.md】", "file-prime"), ("【0:1†x】", "file-prime")]


def _view(mode: str, calls: list[dict[str, Any]], answer: Any, **kwargs: Any) -> RunView:
    view = RunView(mode, display=lambda *a, **k: None, max_rate=1000, **kwargs)
    for event in search_run_events(calls, answer):
        view.on_event(event)
    view.close()
    return view


@pytest.fixture
def shell() -> Iterator[Any]:
    from IPython.core.interactiveshell import InteractiveShell

    ip = ipython_shell()
    yield ip
    InteractiveShell.clear_instance()


def test_markers_become_numbered_superscripts_with_footnotes() -> None:
    view = _view("static", [search_call("call_s", RESULTS)], cited_message(ANSWER, CITES))
    html = view.to_html()
    assert "【" not in html.split("file_search")[-1].split("ak-citations")[0]  # no marker left in the text
    assert html.count('class="ak-cite"') == 3
    assert ">[1]</sup>" in html and html.count(">[2]</sup>") == 2  # the same source keeps its number
    footnotes = html.split('class="ak-citations"')[1]
    assert "<b>fractions.md</b> · score 0.912 · <code>file-frac</code>" in footnotes
    assert escape(FRACTIONS) in footnotes and escape(PRIMES) in footnotes
    assert f'title="{escape("fractions.md · score 0.912")}' in html  # the hover says file and score…
    assert escape(FRACTIONS[:40]) in html.split('class="ak-cite" title="')[1].split('"')[0]  # …and quotes
    assert_inert(html)
    text = view.to_text()
    assert "assistant: A denominator counts the parts[1]; 2 is prime[2] and even[2]." in text
    assert '[1] fractions.md (score 0.912, ): "' not in text
    assert f'[1] fractions.md (score 0.912, file-frac): "{FRACTIONS}"' in text
    assert "[2] primes.md (score 0.500, file-prime): " in text


def test_the_file_search_call_shows_its_results() -> None:
    view = _view("static", [search_call("call_s", RESULTS, threshold=0.25)], cited_message(ANSWER, CITES))
    html = view.to_html()
    call = html.split("class='ak-file-search'")[1]
    assert "2 results, best score 0.912" in call and "score_threshold 0.25" in call
    assert "<b>fractions.md</b> · score 0.912" in call and escape(PRIMES) in call
    text = view.to_text()
    assert "→ file_search\n← 2 results\n   #0 fractions.md (score 0.912): " in text


def test_hostile_file_names_and_chunks_are_escaped() -> None:
    hostile = [("file-evil", f"{EVIL}.md", 0.7, f"chunk {EVIL} \" ' end")]
    answer = cited_message(f"See【0:0†{EVIL}】 <script>x</script>", [(f"【0:0†{EVIL}】", "file-evil")])
    view = _view("static", [search_call("call_e", hostile)], answer)
    html = view.to_html()
    assert_inert(html)
    assert escape(f"{EVIL}.md") in html and "<script>" not in html
    assert 'title="' + escape(f"{EVIL}.md · score 0.700") in html  # quotes escaped: the attribute holds
    text = view.to_text()
    assert f"[1] {EVIL}.md (score 0.700, file-evil)" in text  # text mode shows it as text


def test_without_content_or_steps_citations_show_what_there_is() -> None:
    answer = cited_message(ANSWER, CITES)
    no_content = _view("static", [search_call("call_s", RESULTS, content=False)], answer).to_html()
    assert "<b>fractions.md</b> · score 0.912 · <code>file-frac</code></li>" in no_content  # no quote
    no_steps = _view("static", [], answer)
    html = no_steps.to_html()
    assert html.count('class="ak-cite"') == 3 and "<b>file-frac</b>" in html
    assert "its search result is not available" in html
    assert "[1] file-frac\n[2] file-prime" in no_steps.to_text()


def test_markers_that_point_nowhere_or_at_another_file_keep_their_file_id() -> None:
    results = search_results([step("s1", [search_call("call_s", RESULTS)])])
    text = "a【0:9†x】 b【3:0†y】 c【0:0†z】 d[0:0]"
    cites = resolve(
        text,
        [
            ("【0:9†x】", 1, 8, "file-a"),
            ("【3:0†y】", None, None, "file-b"),
            ("【0:0†z】", 999, 1000, "file-prime"),
            ("not in text", 0, 3, "file-c"),
        ],
        results,
    )
    assert [(c.number, c.file_id, c.source) for c in cites] == [
        (1, "file-a", None),
        (2, "file-b", None),
        (3, "file-prime", None),
        (4, "file-c", None),
    ]
    assert [c.start for c in cites] == [1, text.index("【3"), text.index("【0:0"), None]  # found by its text
    assert cited_text(text, cites) == "a[1] b[2] c[3] d[0:0]"


def test_text_mode_numbers_markers_as_they_stream_and_ends_with_footnotes() -> None:
    out = io.StringIO()
    view = RunView("text", file=out, max_rate=1000)
    for event in search_run_events([search_call("call_s", RESULTS)], cited_message(ANSWER, CITES), chunk=3):
        view.on_event(event)  # 3-character deltas: every marker arrives cut in pieces
    view.close()
    written = out.getvalue()
    assert "【" not in written.split("→ file_search")[0]
    assert written.splitlines()[:7] == [
        "→ file_search",
        "← 2 results",
        f'   #0 fractions.md (score 0.912): "{FRACTIONS}"',
        f'   #1 primes.md (score 0.500): "{PRIMES}"',
        "A denominator counts the parts[1]; 2 is prime[2] and even[2].",
        f'[1] fractions.md (score 0.912, file-frac): "{FRACTIONS}"',
        f'[2] primes.md (score 0.500, file-prime): "{PRIMES}"',
    ]


def test_an_unclosed_bracket_is_not_held_forever() -> None:
    text = "Japanese quote 【 never closed " + "x" * 100
    out = io.StringIO()
    view = RunView("text", file=out, max_rate=1000)
    for event in search_run_events([], cited_message(text, [])):
        view.on_event(event)
    view.close()
    assert text in out.getvalue()


def test_message_and_step_cards(shell: Any) -> None:
    answer = cited_message(ANSWER, CITES)
    html = object_html(answer)
    assert html.count('class="ak-cite"') == 3 and "<code>file-frac</code>" in html and "📎" not in html
    assert_inert(html)
    assert "A denominator counts the parts[1]; 2 is prime[2] and even[2]." in object_text(answer)
    assert "  [1] file-frac" in object_text(answer)
    card = object_html(step("step_s", [search_call("call_s", RESULTS)]))
    assert "2 results, best score 0.912" in card and escape(PRIMES) in card
    assert_inert(card)
    assert "→ file_search\n  ← 2 results" in object_text(step("step_s", [search_call("call_s", RESULTS)]))


def test_annotations_of_sdk_models_and_dicts_read_alike() -> None:
    answer = cited_message(ANSWER, CITES)
    from_model = citation_annotations(answer.content[0].text.annotations)
    from_dict = citation_annotations(answer.model_dump()["content"][0]["text"]["annotations"])
    assert from_model == from_dict and [c[3] for c in from_model] == ["file-frac", "file-prime", "file-prime"]


def _search_model() -> str | None:
    from assistant_kit.errors import ModelConfigError
    from assistant_kit.models.registry import resolve_model

    try:
        resolve_model("test/search")
    except ModelConfigError:
        return "needs test/search: file_search executed in runs"
    return None


@pytest.mark.skipif(_search_model() is not None, reason=str(_search_model()))
@pytest.mark.parametrize("stream", [True, False])
def test_a_session_run_quotes_the_chunk_it_cites(stream: bool, capsys: pytest.CaptureFixture[str]) -> None:
    """End to end through the SDK: the session asks for the results' content (streamed steps,
    and the steps listed after a polled run), so the footnote quotes the chunk, and the tables
    find the cited result by its marker."""
    from assistant_kit import Session
    from assistant_kit.notebook import tables

    session = Session(db=":memory:", live="text")
    notes = [
        ("evil<script>.md", f"Denominators count equal parts. {EVIL}".encode()),
        ("b.md", b"Other words."),
    ]
    session.create_vector_store("notes", files=notes, progress=False)
    session.create_assistant(
        "test/search",
        tools=["file_search"],
        tool_resources={"file_search": {"vector_store_ids": [session.vector_store.id]}},
    ).create_thread()
    session.add_message("What do denominators count?").run(stream=stream)
    out = capsys.readouterr().out
    assert "Denominators count equal parts. [1]" in out
    assert (
        "[1] evil<script>.md (score 1.000, file-" in out and f'Denominators count equal parts. {EVIL}"' in out
    )
    html = session.last_view.to_html()
    assert_inert(html)
    assert ">[1]</sup>" in html and escape(EVIL) in html
    results = session.file_search_results()
    assert results["content"].iloc[0] == f"Denominators count equal parts. {EVIL}"
    (cites,) = tables.messages(session.client, session.thread.id, run_id=session.last_run.id)["citations"]
    assert cites[0]["text"] == "【0:0†source】" and cites[0]["file_id"] == results["file_id"].iloc[0]


def test_the_queries_show_where_the_server_records_them() -> None:
    asked = ["denominator <b>", 'what "is" it']
    view = _view("static", [search_call("call_q", RESULTS, queries=asked)], cited_message(ANSWER, CITES))
    assert '→ file_search("denominator <b>", "what \\"is\\" it")\n← 2 results' in view.to_text()
    html = view.to_html()
    assert escape('"denominator <b>", "what \\"is\\" it"') + "</span>)" in html
    assert_inert(html)
    card = step("step_q", [search_call("call_q", RESULTS, queries=asked)])
    assert '→ file_search("denominator <b>"' in object_text(card) and "denominator &lt;b&gt;" in object_html(
        card
    )


def test_live_handles_number_the_citations_once_the_message_is_whole() -> None:
    published: list[dict[str, Any]] = []
    view = RunView("handles", display=lambda obj, **kw: published.append(obj), max_rate=1000)
    events = search_run_events([search_call("call_s", RESULTS)], cited_message(ANSWER, CITES))
    completed = next(i for i, e in enumerate(events) if e.event == "thread.message.completed")
    for event in events[:completed]:
        view.on_event(event)
        time.sleep(0.003)  # past the throttle's interval: each delta is shown
    time.sleep(0.1)  # and what it held back, flushed by its timer
    streaming = [o["text/html"] for o in published if "A denominator" in o.get("text/html", "")]
    assert streaming and "【0:0†source】" in streaming[-1] and "ak-cite" not in streaming[-1]
    view.on_event(events[completed])  # the message with its annotations: numbered at once
    assert published[-1]["text/html"].count('class="ak-cite"') == 3
    assert_inert(published[-1]["text/html"])
    view.on_event(events[completed + 1])
    view.close()
