"""Chunking in o200k_base tokens, and the ``chunking_strategy`` bounds the routes enforce."""

from __future__ import annotations

import pytest

from assistant_kit.errors import InvalidRequestError
from assistant_kit.retrieval.chunking import (
    chunk_text,
    count_tokens,
    tokenizer_name,
    validate_chunking_strategy,
)

quicktok = pytest.importorskip("quicktok")


def test_tokenizer_is_o200k_and_matches_known_ids() -> None:
    assert tokenizer_name() == "o200k_base"
    # Reference ids of tiktoken's o200k_base ("hello world" -> [24912, 2375]).
    assert list(quicktok.get_encoding("o200k_base").encode_ordinary("hello world")) == [24912, 2375]
    assert count_tokens("hello world") == 2


def test_windows_have_the_requested_size_and_overlap() -> None:
    text = " ".join(f"word{i}" for i in range(3000))
    total = count_tokens(text)
    chunks = chunk_text(text, max_chunk_size_tokens=200, chunk_overlap_tokens=50)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert all(c.tokens == 200 for c in chunks[:-1]) and 0 < chunks[-1].tokens <= 200
    # Windows start every 150 tokens and the last one reaches the end.
    assert len(chunks) == 1 + -(-(total - 200) // 150)
    assert chunks[0].text.startswith("word0 ") and chunks[-1].text.endswith("word2999")
    # Consecutive chunks share their 50-token overlap: the next one starts inside this one.
    assert chunks[1].text.split()[0] in chunks[0].text.split()


def test_short_text_is_one_chunk_and_multibyte_edges_do_not_break() -> None:
    assert [c.text for c in chunk_text("just a short note")] == ["just a short note"]
    text = "日本語のテキスト。" * 400
    chunks = chunk_text(text, 100, 0)
    assert all("\ufffd" not in c.text for c in chunks)
    assert len("".join(c.text for c in chunks)) >= len(text) - 2 * len(chunks)
    assert chunk_text("") == []


def test_auto_and_static_strategies_resolve_to_stored_shape() -> None:
    auto = {"type": "static", "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}}
    assert validate_chunking_strategy(None) == auto
    assert validate_chunking_strategy({"type": "auto"}) == auto
    edge = {"type": "static", "static": {"max_chunk_size_tokens": 4096, "chunk_overlap_tokens": 2048}}
    assert validate_chunking_strategy(edge) == edge
    low = {"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0}}
    assert validate_chunking_strategy(low) == low


@pytest.mark.parametrize(
    ("strategy", "param"),
    [
        ("auto", "chunking_strategy"),
        ({"type": "semantic"}, "chunking_strategy.type"),
        ({"type": "static"}, "chunking_strategy.static"),
        ({"type": "auto", "static": {}}, "chunking_strategy.static"),
        (
            {"type": "static", "static": {"max_chunk_size_tokens": 99, "chunk_overlap_tokens": 0}},
            "chunking_strategy.static.max_chunk_size_tokens",
        ),
        (
            {"type": "static", "static": {"max_chunk_size_tokens": 4097, "chunk_overlap_tokens": 0}},
            "chunking_strategy.static.max_chunk_size_tokens",
        ),
        (
            {"type": "static", "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 401}},
            "chunking_strategy.static.chunk_overlap_tokens",
        ),
        (
            {"type": "static", "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": -1}},
            "chunking_strategy.static.chunk_overlap_tokens",
        ),
        (
            {"type": "static", "static": {"max_chunk_size_tokens": "800", "chunk_overlap_tokens": 0}},
            "chunking_strategy.static.max_chunk_size_tokens",
        ),
        (
            {"type": "static", "static": {"max_chunk_size_tokens": 800.0, "chunk_overlap_tokens": 0}},
            "chunking_strategy.static.max_chunk_size_tokens",
        ),
        (
            {"type": "static", "static": {"max_chunk_size_tokens": 800}},
            "chunking_strategy.static.chunk_overlap_tokens",
        ),
    ],
)
def test_bad_strategies_name_the_parameter(strategy: object, param: str) -> None:
    with pytest.raises(InvalidRequestError) as err:
        validate_chunking_strategy(strategy)
    assert err.value.param == param
    assert err.value.status_code == 400
