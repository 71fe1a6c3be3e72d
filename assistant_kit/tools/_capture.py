"""What one execution produced, captured within limits: its logs (capped, colour codes
stripped), its images (checked: display data is the code's to forge), and the files it
wrote (found by listing the working directory before and after; see :func:`snapshot`) —
plus the one rule for the name a file may have in the working directory (:func:`base_name`).

Kept apart from :mod:`.sandbox`, which owns the kernels and their lifecycle, because these
are plain functions of data — testable without a kernel, and the only place that decides
what of the code's output the engine will hold in memory.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any

__all__ = ["Logs", "base_name", "png_bytes", "snapshot"]

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


class Logs:
    """One execution's logs, capped at ``limit`` characters: what is over is counted, not kept."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    def add(self, text: str) -> str:
        """Keep what fits of ``text``; return the part kept (what to stream)."""
        room = max(self.limit - self.size, 0)
        head = text[: room * 2 + 1024]  # colour codes are stripped from what may fit, not from 200 MB
        clean = _ANSI.sub("", head)
        kept = clean[:room]
        self.dropped += len(text) - len(head) + len(clean) - len(kept)
        if kept:
            self.parts.append(kept)
            self.size += len(kept)
        return kept

    def finish(self, images_dropped: int) -> str:
        """The closing marker, if anything was dropped (appended once)."""
        notes = []
        if self.dropped:
            notes.append(f"output truncated: {self.dropped:,} more characters")
        if images_dropped:
            notes.append(f"{images_dropped:,} more images not kept")
        marker = "".join(f"\n… [{note}]" for note in notes)
        if marker:
            self.parts.append(marker)
        return marker

    @property
    def text(self) -> str:
        return "".join(self.parts)


def png_bytes(value: Any, limit: int) -> bytes | str:
    """An ``image/png`` display value as bytes, or why it is not kept."""
    if not isinstance(value, str):
        return "not base64 text"
    if len(value) * 3 // 4 > limit:
        return f"over {limit:,} bytes"
    try:
        return base64.b64decode(value, validate=False)
    except ValueError:
        return "invalid base64"


def snapshot(root: Path, limit: int) -> tuple[dict[str, tuple[int, int]], set[str] | None]:
    """path -> (mtime_ns, size) of the regular files under ``root``, skipping hidden names,
    ``__pycache__`` and symlinks; directories are listed whole until ``limit`` files are found,
    so a huge tree stays cheap. Also: the directories listed when the listing stopped short
    (None when it covered everything) — a file of another directory is not known to be new."""
    found: dict[str, tuple[int, int]] = {}
    pending = [str(root)]
    scanned: set[str] = set()
    while pending and len(found) < limit:
        directory = pending.pop()
        try:
            entries = os.scandir(directory)
        except OSError:
            continue
        scanned.add(directory)
        with entries:
            for entry in entries:
                if entry.name.startswith(".") or entry.name == "__pycache__":
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        stat = entry.stat(follow_symlinks=False)
                        found[entry.path] = (stat.st_mtime_ns, stat.st_size)
                except OSError:
                    continue
    return found, (scanned if pending else None)


def base_name(name: str) -> str | None:
    """``name``'s last component (``/`` or ``\\``), the only part used in a working directory;
    None when that is unusable (empty, ``.``, ``..``, or with NUL)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return None if base in ("", ".", "..") or "\0" in base else base


def disk_usage(roots: list[Path], limit: int) -> tuple[int, int]:
    """Bytes on disk (allocated blocks, so a sparse file counts what it really takes) and entries
    under ``roots``, hidden ones included, symlinks not followed; the walk stops after ``limit``
    entries (the caller treats that many as over quota: a million empty files also fill a disk)."""
    used = entries_seen = 0
    pending = [str(root) for root in roots]
    while pending and entries_seen < limit:
        try:
            entries = os.scandir(pending.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                entries_seen += 1
                try:
                    stat = entry.stat(follow_symlinks=False)
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                except OSError:
                    continue
                used += getattr(stat, "st_blocks", 0) * 512 or stat.st_size
    return used, entries_seen
