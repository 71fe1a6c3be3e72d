"""Citation markers → ``file_citation`` annotations (``engine/citations.py``), directly: the
parser is pure, so every repair and drop rule is checked on hand-built results, whole and
split at every position (a marker cut across deltas must come out the same)."""

from __future__ import annotations

from typing import Any

import pytest

from assistant_kit.engine.citations import CitationStream, cite, run_results

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
    sent2, new2 = stream.finish()
    assert sent + sent2 == "ab 【0:0†a】 c"
    assert new[0]["start_index"] == 13


def test_only_a_possible_marker_is_held_back() -> None:
    """Plain text goes out at once; a partial marker (and the spaces before it) waits."""
    stream = CitationStream(RESULTS)
    assert stream.feed("Hello world")[0] == "Hello world"
    assert stream.feed(", see 【0")[0] == ", see"  # the space before the bracket waits too
    sent, new = stream.feed(":1†b】 ok")
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
        {"step_details": {"type": "tool_calls", "tool_calls": [{"type": "file_search", "file_search": {"results": RESULTS[1]}}]}},
    ]
    assert run_results(steps) == [RESULTS[0], [], RESULTS[1]]
