"""Citation markers → ``file_citation`` annotations (``engine/citations.py``). Directly: the
parser is pure, so every repair and drop rule is checked on hand-built results, whole and
split at every position (a marker cut across deltas must come out the same). Then through
the official SDK, in-process and over HTTP, with the ``test/cite`` model: what a client
streaming the run with ``AssistantEventHandler`` sees, and the stored message."""

from __future__ import annotations

import importlib.util
import io
from typing import Any

import openai
import pytest
from openai import AssistantEventHandler
from typing_extensions import override

from assistant_kit.engine.citations import CitationStream, cite, run_results
from tests.conftest import wait_for

# Two file_search calls: call 0 found two results, call 1 one.
RESULTS = [
    [
        {"file_id": "file-a", "file_name": "a.txt", "content": [{"type": "text", "text": "alpha"}]},
        {"file_id": "file-b", "file_name": "b.md", "content": [{"type": "text", "text": "beta"}]},
    ],
    [{"file_id": "file-c", "file_name": "c.pdf", "content": [{"type": "text", "text": "gamma"}]}],
]


def _check_indices(text: str, annotations: list[dict[str, Any]]) -> None:
    for annotation in annotations:
        assert text[annotation["start_index"] : annotation["end_index"]] == annotation["text"]
        assert annotation["type"] == "file_citation"


def _streamed(text: str, results: Any, cuts: list[int]) -> tuple[str, list[dict[str, Any]]]:
    stream = CitationStream(results)
    out = []
    last = 0
    for cut in [*cuts, len(text)]:
        piece, _ = stream.feed(text[last:cut])
        out.append(piece)
        last = cut
    tail, _ = stream.finish()
    out.append(tail)
    return "".join(out), stream.annotations


@pytest.mark.parametrize(
    ("raw", "expected", "file_ids"),
    [
        # well-formed: kept exactly, its name too
        ("Paris【0:0†a.txt】 is big.", "Paris【0:0†a.txt】 is big.", ["file-a"]),
        ("Paris 【0:1†source】.", "Paris 【0:1†source】.", ["file-b"]),
        # repaired to the canonical form
        ("Paris [0:1] is big.", "Paris 【0:1†source】 is big.", ["file-b"]),
        ("Paris 【0:1】 is big.", "Paris 【0:1†source】 is big.", ["file-b"]),
        ("Paris [0:1†b.md] is big.", "Paris 【0:1†source】 is big.", ["file-b"]),
        ("Paris 【0:1†b.md] is big.", "Paris 【0:1†source】 is big.", ["file-b"]),
        ("Paris 【 1 : 0 †x】 is big.", "Paris 【1:0†source】 is big.", ["file-c"]),
        ("Paris 【0:1 is big.", "Paris 【0:1†source】 is big.", ["file-b"]),
        ("Paris 【0:1†source is big.", "Paris 【0:1†source】 is big.", ["file-b"]),
        ("Paris 【0:1†source.", "Paris 【0:1†source】.", ["file-b"]),
        ("Paris 【0:1", "Paris 【0:1†source】", ["file-b"]),
        # one number: result N of the most recent call (call 1 here)
        ("Paris 【0†x】 is big.", "Paris 【1:0†source】 is big.", ["file-c"]),
        ("Paris [0†x] is big.", "Paris 【1:0†source】 is big.", ["file-c"]),
        ("Paris 【0】 is big.", "Paris 【1:0†source】 is big.", ["file-c"]),
        # invented: dropped, without leaving a double space or a space before punctuation
        ("Paris 【5:0†source】 is big.", "Paris is big.", []),
        ("Paris 【0:9†source】.", "Paris.", []),
        ("Paris【0:9】 is big.", "Paris is big.", []),
        ("Paris 【7†x】", "Paris", []),
        ("Paris [3:3] and [0:0].", "Paris and 【0:0†source】.", ["file-a"]),
        # several in a row
        ("A【0:0†a】【0:1†b】【1:0†c】.", "A【0:0†a】【0:1†b】【1:0†c】.", ["file-a", "file-b", "file-c"]),
        # not markers: left alone
        ("x[0:1] and f(a)[0:1] and `[0:1]`", "x[0:1] and f(a)[0:1] and `[0:1]`", []),
        ("see [1] and [2]", "see [1] and [2]", []),
        ("【注意】 and [a] and 【 and [", "【注意】 and [a] and 【 and [", []),
        ("[0:x] and 【12345:0】", "[0:x] and 【12345:0】", []),
    ],
)
def test_markers(raw: str, expected: str, file_ids: list[str]) -> None:
    text, annotations = cite(raw, RESULTS)
    assert text == expected
    assert [a["file_citation"]["file_id"] for a in annotations] == file_ids
    _check_indices(text, annotations)
    # the same text streamed in every two-piece split gives the same result
    for cut in range(len(raw) + 1):
        assert _streamed(raw, RESULTS, [cut]) == (text, annotations), cut
    # and one character at a time
    assert _streamed(raw, RESULTS, list(range(1, len(raw)))) == (text, annotations)


def test_indices_are_python_str_indices_with_wide_characters() -> None:
    """Emoji and accents before a marker: the indices count code points, as ``str`` does."""
    raw = "Café 😀 naïve [0:0] then 【1:0†c.pdf】 end"
    text, annotations = cite(raw, RESULTS)
    assert text == "Café 😀 naïve 【0:0†source】 then 【1:0†c.pdf】 end"
    _check_indices(text, annotations)
    assert annotations[0]["start_index"] == len("Café 😀 naïve ")


def test_offset_shifts_indices() -> None:
    stream = CitationStream(RESULTS, offset=10)
    sent, new = stream.feed("ab 【0:0†a】 c")
    sent2, _ = stream.finish()
    assert sent + sent2 == "ab 【0:0†a】 c"
    assert new[0]["start_index"] == 13


def test_only_a_possible_marker_is_held_back() -> None:
    """Plain text goes out at once; a partial marker (and the spaces before it) waits."""
    stream = CitationStream(RESULTS)
    assert stream.feed("Hello world")[0] == "Hello world"
    assert stream.feed(", see 【0")[0] == ", see"  # the space before the bracket waits too
    _, new = stream.feed(":1†b】 ok")
    assert new and new[0]["file_citation"]["file_id"] == "file-b"
    assert stream.finish()[0] == ""


def test_a_held_partial_marker_is_bounded() -> None:
    """An opening bracket followed by a long run without a closing one is text, not held."""
    stream = CitationStream(RESULTS)
    raw = "【0:0†" + "x" * 300
    sent, _ = stream.feed(raw)
    assert sent == raw
    assert stream.finish() == ("", [])
    assert stream.annotations == []


def test_no_results_drops_every_marker() -> None:
    text, annotations = cite("One 【0:0†source】 two [0:0] three 【4†x】.", [])
    assert (text, annotations) == ("One two three.", [])


def test_results_without_file_id_do_not_resolve() -> None:
    assert cite("a 【0:0】 b", [[{"file_name": "x"}]]) == ("a b", [])


def test_run_results_reads_steps_in_order() -> None:
    steps = [
        {"step_details": {"type": "message_creation", "message_creation": {"message_id": "m"}}},
        {
            "step_details": {
                "type": "tool_calls",
                "tool_calls": [
                    {"type": "function", "function": {"name": "f"}},
                    {"type": "file_search", "file_search": {"results": RESULTS[0]}},
                ],
            }
        },
        {
            "step_details": {
                "type": "tool_calls",
                "tool_calls": [{"type": "file_search", "file_search": {"ranking_options": {}}}],
            }
        },
        {
            "step_details": {
                "type": "tool_calls",
                "tool_calls": [{"type": "file_search", "file_search": {"results": RESULTS[1]}}],
            }
        },
    ]
    assert run_results(steps) == [RESULTS[0], [], RESULTS[1]]


# -- through the official SDK, in-process and over HTTP ---------------------------------------

SEARCH_EXECUTES = importlib.util.find_spec("assistant_kit.engine.search_calls") is not None


class Collector(AssistantEventHandler):
    """What a client streaming the run sees: text deltas, annotation deltas, the snapshot."""

    def __init__(self) -> None:
        super().__init__()
        self.text = ""
        self.delta_annotations: list[Any] = []
        self.done: Any = None

    @override
    def on_text_delta(self, delta, snapshot) -> None:  # type: ignore[no-untyped-def]
        self.text += delta.value or ""
        self.delta_annotations += delta.annotations or []

    @override
    def on_message_done(self, message) -> None:  # type: ignore[no-untyped-def]
        self.done = message


def _stream(client: openai.OpenAI, assistant_id: str, text: str, **run: Any) -> tuple[Collector, Any]:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": text}])
    handler = Collector()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant_id, event_handler=handler, **run
    ) as stream:
        stream.until_done()
    run_obj = handler.get_final_run()
    messages = client.beta.threads.messages.list(thread.id, run_id=run_obj.id)
    return handler, (run_obj, messages.data[0] if messages.data else None)


def test_invented_markers_are_dropped_from_the_stream_and_the_message(client: openai.OpenAI) -> None:
    """A run with file_search whose model cites results no search returned: nothing points
    nowhere — the markers never reach the client, and no double space is left behind."""
    assistant = client.beta.assistants.create(model="test/cite", tools=[{"type": "file_search"}])
    raw = "Paris 【0:0†source】 is big [1:2]. End 【3†x】"
    handler, (run, message) = _stream(client, assistant.id, raw, tool_choice="none")
    assert run.status == "completed", run.last_error
    assert handler.text == "Paris is big. End"
    assert message.content[0].text.value == "Paris is big. End"
    assert message.content[0].text.annotations == [] and handler.delta_annotations == []
    assert handler.done.content[0].text.value == "Paris is big. End"


def test_runs_without_file_search_stream_text_untouched(client: openai.OpenAI) -> None:
    """Markers mean something only where file_search can have put them there."""
    assistant = client.beta.assistants.create(model="test/cite")
    raw = "x[0:1] and 【0:0†source】 stay"
    handler, (_, message) = _stream(client, assistant.id, raw)
    assert handler.text == raw and message.content[0].text.value == raw


@pytest.mark.skipif(
    not SEARCH_EXECUTES,
    reason="file_search execution (engine/search_calls.py, issue 18 branch s4-search) not merged yet",
)
def test_cited_answer_streams_annotations_that_point_at_the_markers(client: openai.OpenAI) -> None:
    """End to end once file_search executes: the model searches, then cites result 0 of call
    0 well-formed, mangled and invented; the client streaming the run gets annotation deltas
    that the SDK merges into the same annotations the stored message has, each pointing at
    its marker and at the file of the cited chunk."""
    file = client.files.create(
        file=("paris.txt", io.BytesIO(b"Paris is the capital of France and its largest city.\n")),
        purpose="assistants",
    )
    store = client.vector_stores.create(name="geo", file_ids=[file.id])
    wait_for(lambda: client.vector_stores.retrieve(store.id).status == "completed", timeout=60)
    assistant = client.beta.assistants.create(
        model="test/cite",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
    )
    raw = "Paris is the capital 【0:0†source】, the largest [0:0] city 【9:9】."
    handler, (run, message) = _stream(client, assistant.id, raw)
    assert run.status == "completed", run.last_error
    expected = "Paris is the capital 【0:0†source】, the largest 【0:0†source】 city."
    text = message.content[0].text
    assert text.value == handler.text == expected
    assert [(a.type, a.text, a.file_citation.file_id) for a in text.annotations] == [
        ("file_citation", "【0:0†source】", file.id),
        ("file_citation", "【0:0†source】", file.id),
    ]
    for annotation in text.annotations:
        assert text.value[annotation.start_index : annotation.end_index] == annotation.text
    streamed = [(a.index, a.start_index, a.end_index, a.text) for a in handler.delta_annotations]
    assert streamed == [(n, a.start_index, a.end_index, a.text) for n, a in enumerate(text.annotations)]
    snapshot = handler.done.content[0].text
    assert [(a.start_index, a.end_index, a.file_citation.file_id) for a in snapshot.annotations] == [
        (a.start_index, a.end_index, a.file_citation.file_id) for a in text.annotations
    ]
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id, order="asc")
    assert [s.step_details.type for s in steps][:1] == ["tool_calls"]
