"""``code_interpreter`` calls inside a run: their streamed ``input``, their execution, their
``outputs``, and the files they leave behind.

The run executor (:mod:`assistant_kit.engine.runs`) decides when a call runs and what its step
becomes; this module does the work of one call and publishes its ``thread.run.step.delta``
events::

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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._ids import new_id
from ..tools.code_interpreter import code_from_arguments
from . import files as file_objects
from . import steps

if TYPE_CHECKING:
    from .runs import RunExecutor, RunHandle

# Sandbox outcomes that are failures of the tool (the step fails, the run goes on), as
# opposed to "ok" and "error" (the code raised: an ordinary result the model reads).
FAILED = frozenset({"timeout", "memory", "disk", "crashed"})


class StreamedInput:
    """Turns a code_interpreter call's streamed JSON arguments into ``input`` deltas."""

    def __init__(self, call: dict[str, Any]):
        self.call = call
        self.raw = ""

    def feed(self, fragment: str) -> str:
        """Add an arguments fragment; return the new ``input`` text it reveals (maybe "")."""
        self.raw += fragment
        return self._advance(code_from_arguments(self.raw, partial=True))

    def finish(self) -> str:
        """The arguments are complete: return what is left of ``input`` to publish."""
        return self._advance(code_from_arguments(self.raw, partial=False))

    def _advance(self, code: str) -> str:
        shown = self.call["code_interpreter"]["input"]
        if code.startswith(shown):
            self.call["code_interpreter"]["input"] = code
            return code[len(shown) :]
        if not self.raw.strip() or code == "":
            return ""
        # The final parse disagrees with what streamed (rare: arguments that stopped being
        # JSON midway). The final text is what runs and is stored; the step's snapshot
        # (step.completed) carries it.
        self.call["code_interpreter"]["input"] = code
        return ""


def new_call(call_id: str) -> dict[str, Any]:
    return {"id": call_id, "type": "code_interpreter", "code_interpreter": {"input": "", "outputs": []}}


def input_delta(index: int, text: str) -> dict[str, Any]:
    return {"index": index, "type": "code_interpreter", "code_interpreter": {"input": text}}


def _output_delta(index: int, output: dict[str, Any], at: int) -> dict[str, Any]:
    return {
        "index": index,
        "type": "code_interpreter",
        "code_interpreter": {"outputs": [{"index": at, **output}]},
    }


async def input_files(executor: RunExecutor, run: dict[str, Any], owner: str | None) -> list[str]:
    """Place the run's code_interpreter files (assistant and thread ``tool_resources``, and
    message attachments for the tool) in the thread's working directory; return their names
    there. Files the owner cannot see are left out (and named in the log of the engine)."""
    store = executor.store
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
        if file is None or file_objects.expired(file):
            continue
        content = await store.file_content(file_id)
        if content is None:
            continue
        files.append((file, content))
    if not files:
        return []
    return await executor.engine.code.place_files(run["thread_id"], files)


async def execute(
    executor: RunExecutor,
    handle: RunHandle,
    step: dict[str, Any],
    index: int,
    call: dict[str, Any],
    owner: str | None,
) -> str | None:
    """Run one call's ``input`` in the thread's kernel, streaming its outputs. Returns the
    failure reason when the sandbox failed it (timeout, memory, dead kernel), else None."""
    run = handle.run
    rid, thread_id = run["id"], run["thread_id"]
    code = executor.engine.code
    outputs: list[dict[str, Any]] = call["code_interpreter"]["outputs"]
    logs: dict[str, Any] | None = None
    saving: list[asyncio.Task[None]] = []

    def publish(output: dict[str, Any], at: int) -> None:
        steps.publish_step_delta(executor, rid, step, _output_delta(index, output, at))

    def add_logs(text: str) -> None:
        nonlocal logs
        if not text:
            return
        if logs is None:
            logs = {"type": "logs", "logs": ""}
            outputs.append(logs)
        logs["logs"] += text
        publish({"type": "logs", "logs": text}, outputs.index(logs))

    def add_line(text: str) -> None:
        """``text`` on a line of its own."""
        add_logs(("\n" if logs is not None and not logs["logs"].endswith("\n") else "") + text)

    async def save_image(file_id: str, png: bytes, at: int) -> None:
        await executor.engine.files.create(
            f"{call['id']}-{at}.png",
            png,
            "assistants_output",
            owner,
            thread_id=thread_id,
            call_id=call["id"],
            file_id=file_id,
        )
        publish(outputs[at], at)
        handle.made_images.append(file_id)

    def on_output(kind: str, value: str | bytes) -> None:
        if kind == "logs" and isinstance(value, str):
            add_logs(value)
        elif kind == "image" and isinstance(value, bytes):
            file_id = new_id("file")
            outputs.append({"type": "image", "image": {"file_id": file_id}})
            saving.append(asyncio.ensure_future(save_image(file_id, value, len(outputs) - 1)))

    try:
        result = await code.execute(thread_id, call["code_interpreter"]["input"], on_output)
    finally:
        if saving:
            await asyncio.gather(*saving, return_exceptions=True)
    streamed = logs["logs"] if logs is not None else ""
    if result.logs.startswith(streamed):
        add_logs(result.logs[len(streamed) :])  # whatever the sandbox did not stream
    if result.reason:
        add_line(result.reason)
    notes = await _keep_files(executor, handle, result.files, code.workdir(thread_id), owner, call["id"])
    if notes:
        add_line("\n".join(notes) + "\n")
    if result.status == "unavailable":
        from ..errors import AssistantKitError

        raise AssistantKitError(result.reason or "code_interpreter is unavailable here.")
    return result.reason if result.status in FAILED else None


async def _keep_files(
    executor: RunExecutor,
    handle: RunHandle,
    paths: list[Path],
    workdir: Path,
    owner: str | None,
    call_id: str,
) -> list[str]:
    """Store the files the code wrote as ``assistants_output`` files. Empty ones are skipped;
    too large ones (the limit of uploads applies) too, and named in the returned notes, so
    the logs tell the model and the user why there is no file to download."""
    files = executor.engine.files
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
            name, content, "assistants_output", owner, thread_id=handle.run["thread_id"], call_id=call_id
        )
        handle.made_files.append(made)
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
