"""Object ids: OpenAI's type prefix plus a time-ordered suffix.

The suffix is a 48-bit millisecond timestamp followed by 80 bits that are random at the
start of each millisecond and incremented within it (the ULID "monotonic" scheme), in
Crockford base32. So within one process, id order *is* creation order, which makes
cursor pagination a plain ``WHERE id < :cursor ORDER BY id`` on the primary key — no
offset scans, page cost independent of thread length.

The separator is the hosted API's: ``_`` for every object except files, whose ids were
``file-…``. Files made before the kit did so have ``file_…`` ids and keep them — an id is a
reference held by user code and by other objects (attachments, tool_resources, image parts),
so it is never rewritten; lookups are exact and list order treats both spellings alike
(:func:`sort_key`).
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_lock = threading.Lock()
_last_ms = -1
_last_rand = 0

PREFIXES = ("asst", "thread", "msg", "run", "step", "call", "file")
_SEPARATORS = {"file": "-"}
LEGACY_FILE_PREFIX, FILE_PREFIX = "file_", "file-"


def _encode(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_id(prefix: str) -> str:
    """Return ``<prefix>_<26 chars>`` (``file-<26 chars>``); ids made later in this process sort
    after earlier ones."""
    global _last_ms, _last_rand
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _last_rand += 1
        else:
            _last_ms = ms
            _last_rand = int.from_bytes(os.urandom(10), "big") >> 1  # headroom for increments
        rand = _last_rand
    return f"{prefix}{_SEPARATORS.get(prefix, '_')}{_encode(ms, 10)}{_encode(rand, 16)}"


def sort_key(object_id: str) -> str:
    """The id as it sorts among its kind: a legacy ``file_…`` id as if it were ``file-…``
    (``-`` sorts before ``_``, so without this every old file would list as newer than
    every new one)."""
    if object_id.startswith(LEGACY_FILE_PREFIX):
        return FILE_PREFIX + object_id[len(LEGACY_FILE_PREFIX) :]
    return object_id


def now() -> int:
    """Unix seconds, the wire protocol's timestamp unit."""
    return int(time.time())
