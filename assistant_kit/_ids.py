"""Object ids: OpenAI's type prefix plus a time-ordered suffix.

The suffix is a 48-bit millisecond timestamp followed by 80 bits that are random at the
start of each millisecond and incremented within it (the ULID "monotonic" scheme), in
Crockford base32. So within one process, id order *is* creation order, which makes
cursor pagination a plain ``WHERE id < :cursor ORDER BY id`` on the primary key — no
offset scans, page cost independent of thread length.
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


def _encode(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_id(prefix: str) -> str:
    """Return ``<prefix>_<26 chars>``; ids made later in this process sort after earlier ones."""
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
    return f"{prefix}_{_encode(ms, 10)}{_encode(rand, 16)}"


def now() -> int:
    """Unix seconds, the wire protocol's timestamp unit."""
    return int(time.time())
