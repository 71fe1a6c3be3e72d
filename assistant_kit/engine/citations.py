"""Citation markers in an answer's text → ``file_citation`` annotations, as the text streams.

What the model reads for result R of the run's T-th ``file_search`` call (both 0-based, T
counted over the run's file_search calls in order) starts with the marker ``【T:R†<file
name>】``; the model cites it by writing ``【T:R†source】`` (any text after ``†``). Each marker of
the answer that resolves to a result becomes an annotation::

    {"type": "file_citation", "text": <the marker as it stands in the final text>,
     "start_index": …, "end_index": …, "file_citation": {"file_id": …}}

with ``text.value[start_index:end_index] == text`` in Python ``str`` indices (code points) —
what the ``openai`` SDK's objects hold and what client code slices or ``replace()``s with.

Models mangle markers; the parser is lenient and repairs what it can:

- a well-formed marker that resolves is kept exactly as written (its name after ``†`` too);
- ``[T:R]``, ``【T:R】``, ``[T:R†x]``, ``【T:R†x]``, spaces inside, a missing closing bracket
  after a full-width opening one (``【0:1 …``) are rewritten to the canonical ``【T:R†source】``;
- a single number, ``【N†x】`` / ``【N】`` / ``[N†x]``, is read as result N of the run's most
  recent file_search call (the results the model has just read; with one call, call 0) —
  the hosted API's older markers had one number;
- ASCII forms without ``†`` are taken only with the colon (``[0:1]``; a bare ``[1]`` is a
  footnote or a list index, left alone) and only where the ``[`` does not follow a word,
  ``)``, ``]`` or a backtick, so code such as ``x[0:1]`` is never read as a marker;
- a marker that resolves to nothing (an invented call or result number) is removed, with
  the space before it when what follows is a space, punctuation or the end — no double
  spaces, no space before a full stop.

Streaming: :class:`CitationStream` takes the text deltas as the model produces them and
returns what can be sent now. It holds back only what may still turn out to be part of a
marker (from an opening bracket on, at most :data:`MAX_MARKER` characters) and trailing
spaces (removed if a dropped marker follows them); everything else goes out at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

OPEN = "【["
CLOSE = "】]"
DAGGER = "†"
MAX_MARKER = 120  # longer than this from the opening bracket: not a marker
_MAX_DIGITS = 4
_NAME_STOP = frozenset("【[\n")
_PUNCTUATION = frozenset(".,;:!?)]}»\"'\u201d\u2019")  # closing quotes too
_WORDLIKE_BEFORE = frozenset(")]`_")

Results = Sequence[Sequence[Mapping[str, Any]]]  # results[T][R] = {"file_id", "file_name", …}


@dataclass
class _Marker:
    """A marker found at ``buf[start:end]``: the call/result numbers as written (``result``
    None when one number was written) and whether it was written in canonical form."""

    start: int
    end: int
    call: int
    result: int | None
    canonical: bool


def _digits(buf: str, j: int) -> tuple[int | None, int, bool]:
    """Digits at ``buf[j:]``: (value or None, index after them, ran to the end of ``buf``)."""
    k = j
    while k < len(buf) and buf[k].isdigit() and buf[k].isascii():
        k += 1
    if k == j:
        return None, j, j >= len(buf)
    if k - j > _MAX_DIGITS:
        return None, j, False
    return int(buf[j:k]), k, k >= len(buf)


def _spaces(buf: str, j: int) -> int:
    while j < len(buf) and buf[j] == " ":
        j += 1
    return j


def scan(buf: str, i: int, final: bool, before: str) -> _Marker | str:
    """Read a marker at ``buf[i]`` (an opening bracket): a :class:`_Marker`, ``"not"`` (the
    bracket is plain text) or ``"more"`` (``buf`` ends before it can tell; never when
    ``final``). ``before`` is the character preceding the bracket ("" at the start)."""
    wide = buf[i] == "【"
    if not wide and (before.isalnum() or before in _WORDLIKE_BEFORE):
        return "not"  # x[0:1], f(a)[0:1]: code, not a citation
    more = "not" if final else "more"
    j = _spaces(buf, i + 1)
    call, j, at_end = _digits(buf, j)
    if call is None:
        return more if at_end else "not"
    result: int | None = None
    k = _spaces(buf, j)
    if at_end or k >= len(buf):
        return _missing_close(wide, i, j, call, None) if final else "more"
    if buf[k] == ":":
        m = _spaces(buf, k + 1)
        result, after, at_end = _digits(buf, m)
        if result is None:
            return more if at_end else "not"
        if at_end:
            return _missing_close(wide, i, after, call, result) if final else "more"
        j = after
        k = _spaces(buf, j)
        if k >= len(buf):
            return _missing_close(wide, i, j, call, result) if final else "more"
    if buf[k] == DAGGER:
        n = k + 1
        while n < len(buf) and buf[n] not in CLOSE and buf[n] not in _NAME_STOP and n - i < MAX_MARKER:
            n += 1
        if n < len(buf) and buf[n] in CLOSE:
            name = buf[k + 1 : n]
            canonical = (
                wide
                and buf[n] == "】"
                and result is not None
                and buf[i : k + 1] == (f"【{call}:{result}{DAGGER}")
                and bool(name.strip())
            )
            return _Marker(i, n + 1, call, result, canonical)
        if n >= len(buf) and not final and n - i < MAX_MARKER:
            return "more"
        if not wide:
            return "not"
        # A full-width marker whose closing bracket never came: its name is one word.
        end = k + 1
        while end < len(buf) and not buf[end].isspace() and buf[end] not in _NAME_STOP:
            end += 1
            if end - i >= MAX_MARKER:
                return "not"
        while end > k + 1 and buf[end - 1] in _PUNCTUATION:
            end -= 1
        return _Marker(i, end, call, result, False)
    if buf[k] in CLOSE:
        if not wide and result is None:
            return "not"  # [1]: a footnote, not ours
        return _Marker(i, k + 1, call, result, False)
    return _missing_close(wide, i, j, call, result)


def _missing_close(wide: bool, i: int, end: int, call: int, result: int | None) -> _Marker | str:
    """A marker cut short by other text: only a full-width opening bracket makes it one."""
    return _Marker(i, end, call, result, False) if wide else "not"


@dataclass
class CitationStream:
    """Turns the model's text deltas into the text to send and its ``file_citation``
    annotations (indices in the final text, counted from ``offset``: where this text starts
    in the content part). ``results[T][R]`` is result R of the run's T-th file_search call."""

    results: Results
    offset: int = 0
    annotations: list[dict[str, Any]] = field(default_factory=list)
    _buf: str = ""
    _sent: int = 0  # characters sent so far
    _last: str = ""  # the last character sent

    def feed(self, text: str) -> tuple[str, list[dict[str, Any]]]:
        """Take one delta; return the text that can be sent now and the annotations that
        complete in it (in order; each also appended to :attr:`annotations`)."""
        self._buf += text
        return self._drain(final=False)

    def finish(self) -> tuple[str, list[dict[str, Any]]]:
        """The model is done: send what was held back (a partial marker resolves or is text)."""
        return self._drain(final=True)

    def _resolve(self, marker: _Marker) -> tuple[int, int, str] | None:
        """(call, result, file_id) the marker points at, or None."""
        if marker.result is None:
            call, result = len(self.results) - 1, marker.call
        else:
            call, result = marker.call, marker.result
        if not 0 <= call < len(self.results) or not 0 <= result < len(self.results[call]):
            return None
        file_id = self.results[call][result].get("file_id")
        return (call, result, file_id) if file_id else None

    def _drain(self, final: bool) -> tuple[str, list[dict[str, Any]]]:
        buf = self._buf
        out: list[str] = []
        new: list[dict[str, Any]] = []
        pending = ""  # spaces held until we know whether a dropped marker follows them
        i = 0

        def send(piece: str) -> None:
            nonlocal pending
            if not piece:
                return
            if pending:
                out.append(pending)
                self._sent += len(pending)
                pending = ""
            out.append(piece)
            self._sent += len(piece)
            self._last = piece[-1]

        while i < len(buf):
            j = min((p for p in (buf.find(c, i) for c in OPEN) if p >= 0), default=-1)
            plain = buf[i:] if j < 0 else buf[i:j]
            if plain:
                body = plain.rstrip(" ")
                send(body)
                pending += plain[len(body) :]
            if j < 0:
                i = len(buf)
                break
            before = " " if pending else self._last
            found = scan(buf, j, final, before)
            if found == "more":
                i = j
                break
            if found == "not":
                send(buf[j])
                i = j + 1
                continue
            assert isinstance(found, _Marker)
            resolved = self._resolve(found)
            if resolved is None:
                following = buf[found.end : found.end + 1]
                if following == "" and not final:
                    i = j  # what follows decides the space: wait for it
                    break
                if pending and (following == "" or following.isspace() or following in _PUNCTUATION):
                    pending = ""
                i = found.end
                continue
            call, result, file_id = resolved
            marker = buf[found.start : found.end] if found.canonical else f"【{call}:{result}{DAGGER}source】"
            start = self.offset + self._sent + len(pending)
            send(marker)
            annotation = {
                "type": "file_citation",
                "text": marker,
                "start_index": start,
                "end_index": start + len(marker),
                "file_citation": {"file_id": file_id},
            }
            self.annotations.append(annotation)
            new.append(annotation)
            i = found.end
        rest = buf[i:]
        if final:
            if pending:
                out.append(pending)
                self._sent += len(pending)
            pending = ""
            rest = ""
        self._buf = pending + rest
        return "".join(out), new


def cite(text: str, results: Results) -> tuple[str, list[dict[str, Any]]]:
    """The whole of ``text`` at once: (the final text, its annotations)."""
    stream = CitationStream(results)
    head, _ = stream.feed(text)
    tail, _ = stream.finish()
    return head + tail, stream.annotations


def annotation_delta(annotation: dict[str, Any], index: int) -> dict[str, Any]:
    """``annotation`` as a ``thread.message.delta`` entry: the position ``index`` in the
    content part's ``annotations``, which the SDK's accumulator merges on."""
    return {"index": index, **annotation}


def run_results(steps: Sequence[Mapping[str, Any]]) -> list[list[dict[str, Any]]]:
    """The results of a run's file_search calls, in order (``results[T][R]``), read from its
    steps as stored (oldest first): ``step_details.tool_calls[].file_search.results[]``."""
    found: list[list[dict[str, Any]]] = []
    for step in steps:
        details = step.get("step_details") or {}
        if details.get("type") != "tool_calls":
            continue
        for call in details.get("tool_calls") or []:
            if call.get("type") == "file_search":
                found.append(list((call.get("file_search") or {}).get("results") or []))
    return found


__all__ = ["CitationStream", "Results", "annotation_delta", "cite", "run_results", "scan"]
