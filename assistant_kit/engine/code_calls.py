"""``code_interpreter`` calls inside a run: their streamed ``input``, their execution, their
``outputs``, and the files they leave behind.

The run executor (:mod:`assistant_kit.engine.runs`) decides when a call runs and what its step
becomes; this module does the work of one call: it runs the code with the
:class:`~assistant_kit.tools.code_interpreter.CodeInterpreter` it is given, stores the files the
code makes with the :class:`~assistant_kit.engine.files.Files` it is given, and hands each
output to a :class:`CallOutputs` — the step's owner (:mod:`.steps`), which records it in the
call and publishes its ``thread.run.step.delta``::

    {"index": i, "id": "call_…", "type": "code_interpreter", "code_interpreter": {"input": "", "outputs": []}}
    {"index": i, "type": "code_interpreter", "code_interpreter": {"input": "<fragment>"}}        (n times)
    {"index": i, "type": "code_interpreter", "code_interpreter":
        {"outputs": [{"index": k, "type": "logs", "logs": "<chunk>"}]}}                           (n times)
    {"index": i, "type": "code_interpreter", "code_interpreter":
        {"outputs": [{"index": k, "type": "image", "image": {"file_id": "file-…"}}]}}

Logs accumulate in one ``logs`` output (as the hosted tool returned them); each image is an
output of its own, stored as a file (``assistants_output``) before its delta is published, so
a client that reacts by downloading it finds it. A sandbox failure (timeout, memory, a dead
kernel) ends the logs with its reason, which is also what the caller records as the step's
``last_error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .._ids import new_id
from ..errors import AssistantKitError
from ..tools.code_interpreter import NAME, code_from_arguments
from .shapes import expired

if TYPE_CHECKING:
    from ..store import AsyncStore
    from ..tools.code_interpreter import CodeInterpreter
    from .files import Files

# Sandbox outcomes that are failures of the tool (the step fails, the run goes on), as
# opposed to "ok" and "error" (the code raised: an ordinary result the model reads).
FAILED = frozenset({"timeout", "memory", "disk", "crashed"})


class StreamedInput:
    """Turns a code_interpreter call's streamed JSON arguments into its ``input`` text, and
    the new text each fragment reveals (what its ``input`` delta carries)."""

    def __init__(self) -> None:
        self.raw = ""
        self.input = ""  # the code as far as it can be read yet

    def feed(self, fragment: str) -> str:
        """Add an arguments fragment; return the new ``input`` text it reveals (maybe "")."""
        self.raw += fragment
        return self._advance(code_from_arguments(self.raw, partial=True))

    def finish(self) -> str:
        """The arguments are complete: return what is left of ``input`` to publish."""
        return self._advance(code_from_arguments(self.raw, partial=False))

    def _advance(self, code: str) -> str:
        shown = self.input
        if code.startswith(shown):
            self.input = code
            return code[len(shown) :]
        if not self.raw.strip() or code == "":
            return ""
        # The final parse disagrees with what streamed (rare: arguments that stopped being
        # JSON midway). The final text is what runs and is stored; the step's snapshot
        # (step.completed) carries it.
        self.input = code
        return ""


class CallOutputs(Protocol):
    """Where one call's outputs go as they happen (implemented by :mod:`.steps`, which owns
    the step they are part of)."""

    @property
    def logs_text(self) -> str:
        """The call's logs so far ("" before the first)."""

    def add_logs(self, text: str) -> None:
        """Append ``text`` to the call's one ``logs`` output (opening it) and announce it."""

    def add_image(self, file_id: str) -> int:
        """Give an image its place among the outputs (announced once stored); return it."""

    def image_stored(self, at: int) -> None:
        """The image at ``at`` is stored as a file: announce it; the next answer shows it."""

    def file_kept(self, file: dict[str, Any]) -> None:
        """A file the code wrote is stored (the answer's ``file_path`` annotations name it)."""


async def offered_files(store: AsyncStore, code: CodeInterpreter, run: dict[str, Any]) -> list[str] | None:
    """The input files of ``run``'s code_interpreter, placed in the thread's working directory
    (their names there: the tool's description lists them); None when the run has no
    code_interpreter tool that can run here (the model is then not offered it)."""
    if not code.enabled or not any(t["type"] == NAME for t in run.get("tools") or []):
        return None
    owner = await store.owner_of("thread", run["thread_id"])
    return await input_files(store, code, run, owner)


async def input_files(
    store: AsyncStore, code: CodeInterpreter, run: dict[str, Any], owner: str | None
) -> list[str]:
    """Place the run's code_interpreter files (assistant and thread ``tool_resources``, and
    message attachments for the tool) in the thread's working directory; return their names
    there. Files the owner cannot see are left out (and named in the log of the engine)."""
    assistant = await store.get("assistant", run["assistant_id"]) or {}
    thread = await store.get("thread", run["thread_id"]) or {}
    ids: list[str] = []
    for holder in (assistant, thread):
        resources = (holder.get("tool_resources") or {}).get("code_interpreter") or {}
        ids += resources.get("file_ids") or []
    for message in await store.thread_messages(run["thread_id"]):
        for attachment in message.get("attachments") or []:
            if any(t.get("type") == "code_interpreter" for t in attachment.get("tools") or []):
                ids.append(attachment["file_id"])
    files = []
    for file_id in dict.fromkeys(ids):
        file = await store.get("file", file_id, owner)
        if file is None or expired(file):
            continue
        content = await store.file_content(file_id)
        if content is None:
            continue
        files.append((file, content))
    if not files:
        return []
    return await code.place_files(run["thread_id"], files)


async def execute_all(
    code: CodeInterpreter,
    files: Files,
    store: AsyncStore,
    thread_id: str,
    calls: list[dict[str, Any]],
    outputs_for: Callable[[dict[str, Any]], CallOutputs],
) -> str | None:
    """Execute a turn's code_interpreter ``calls`` in order, each call's outputs going to
    ``outputs_for(call)``; return the first failure reason (None if none failed)."""
    if not code.enabled:
        raise AssistantKitError(code.settings.disabled_reason)
    owner = await store.owner_of("thread", thread_id)
    failure = None
    for call in calls:
        reason = await execute(code, files, thread_id, owner, call, outputs_for(call))
        failure = failure or reason
    return failure


async def execute(
    code: CodeInterpreter,
    files: Files,
    thread_id: str,
    owner: str | None,
    call: dict[str, Any],
    outputs: CallOutputs,
) -> str | None:
    """Run ``call``'s ``input`` in the thread's kernel, handing its outputs to ``outputs`` as
    they come. Returns the failure reason when the sandbox failed it (timeout, memory, dead
    kernel), else None."""
    call_id = call["id"]
    saving: list[asyncio.Task[None]] = []

    def add_line(text: str) -> None:
        """``text`` on a line of its own."""
        logs = outputs.logs_text
        outputs.add_logs(("\n" if logs and not logs.endswith("\n") else "") + text)

    async def save_image(file_id: str, png: bytes, at: int) -> None:
        await files.create(
            f"{call_id}-{at}.png",
            png,
            "assistants_output",
            owner,
            thread_id=thread_id,
            call_id=call_id,
            file_id=file_id,
        )
        outputs.image_stored(at)

    def on_output(kind: str, value: str | bytes) -> None:
        if kind == "logs" and isinstance(value, str):
            if value:
                outputs.add_logs(value)
        elif kind == "image" and isinstance(value, bytes):
            file_id = new_id("file")
            saving.append(asyncio.ensure_future(save_image(file_id, value, outputs.add_image(file_id))))

    try:
        result = await code.execute(thread_id, call["code_interpreter"]["input"], on_output)
    finally:
        if saving:
            await asyncio.gather(*saving, return_exceptions=True)
    streamed = outputs.logs_text
    if result.logs.startswith(streamed) and len(result.logs) > len(streamed):
        outputs.add_logs(result.logs[len(streamed) :])  # whatever the sandbox did not stream
    if result.reason:
        add_line(result.reason)
    notes = await _keep_files(
        files, outputs, result.files, code.workdir(thread_id), thread_id, owner, call_id
    )
    if notes:
        add_line("\n".join(notes) + "\n")
    if result.status == "unavailable":
        raise AssistantKitError(result.reason or "code_interpreter is unavailable here.")
    return result.reason if result.status in FAILED else None


async def _keep_files(
    files: Files,
    outputs: CallOutputs,
    paths: list[Path],
    workdir: Path,
    thread_id: str,
    owner: str | None,
    call_id: str,
) -> list[str]:
    """Store the files the code wrote as ``assistants_output`` files. Empty ones are skipped;
    too large ones (the limit of uploads applies) too, and named in the returned notes, so
    the logs tell the model and the user why there is no file to download."""
    notes = []
    for path in paths:
        try:
            relative = path.relative_to(workdir)
        except ValueError:
            continue
        # A name that is not UTF-8 (the code may write any bytes) is stored with U+FFFD instead.
        name = os.fsencode(str(relative)).decode("utf-8", "replace")
        content = await asyncio.to_thread(read_written, workdir, relative, files.max_bytes)
        if content is None:
            with contextlib.suppress(OSError):
                size = path.lstat().st_size
                if size > files.max_bytes:
                    notes.append(
                        f"[file not kept: {name} is {size:,} bytes, over the {files.max_bytes:,}-byte limit]"
                    )
            continue
        made = await files.create(
            name, content, "assistants_output", owner, thread_id=thread_id, call_id=call_id
        )
        outputs.file_kept(made)
    return notes


def read_written(workdir: Path, relative: Path, limit: int) -> bytes | None:
    """The bytes of a file the code wrote, or None: only a regular file inside ``workdir`` of
    1 to ``limit`` bytes, read no further than that. The code still runs (a thread it started)
    while this reads, so the path is walked without following symlinks and the file opened
    without blocking: a symlink, FIFO or device swapped in since the snapshot is not read, and
    a sparse 1 GB file is refused by its size, not loaded."""
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    try:
        if nofollow and os.open in os.supports_dir_fd:
            directory = os.open(workdir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            try:
                for part in relative.parts[:-1]:
                    inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | nofollow, dir_fd=directory)
                    os.close(directory)
                    directory = inner
                fd = os.open(relative.name, os.O_RDONLY | nofollow | os.O_NONBLOCK, dir_fd=directory)
            finally:
                os.close(directory)
        else:  # no dir_fd walk here (Windows): refuse a link anywhere on the way, then open
            path = workdir
            for part in relative.parts:
                path = path / part
                if path.is_symlink():
                    return None
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or not 0 < info.st_size <= limit:
            return None
        data = handle.read(limit + 1)
    return data if 0 < len(data) <= limit else None
