"""The ``code_interpreter`` tool as the run executor sees it: policy, the function the model
is offered, its arguments, and what the model is told afterwards.

Execution itself lives in :mod:`assistant_kit.tools.sandbox` (a Jupyter kernel per thread);
the run executor (:mod:`assistant_kit.engine.runs`, with :mod:`assistant_kit.engine.steps` and
:mod:`assistant_kit.engine.code_calls`) owns the step and its events. This module is the seam
between them, free of both, so each side can change alone.

Policy (decided here, documented in the README):

- **Local sessions** (``local_client``, ``Session``, the SDK functions) have it on: the code
  runs on the user's own machine, like the notebook they are in. The first execution of an
  engine (one per database in a process) prints one line saying so and where the working
  directories are; the engine's :class:`CodeInterpreter` remembers that it did, so no module
  state is shared between engines.
- **The proxy** has it off unless its config says ``assistant_settings.code_interpreter.enabled:
  true``: a remote client must not run code on the server by default. A run whose model calls
  the tool while it is off fails with a ``last_error`` that says how to enable it.
- An :class:`~assistant_kit.engine.core.Engine` built directly has it off (explicit is safer).

Isolation (:mod:`assistant_kit.tools.isolation`): each kernel runs inside bubblewrap — its own
PID namespace, a filesystem view with only the thread's directories writable and none of the
engine's files, no network, its own uid. The proxy requires it (startup fails, naming what to
install, unless the config says ``sandbox: none``, which is warned about at startup and in
``/health``); local sessions use it when bwrap works and otherwise run kernels unsandboxed, said
in their one announcement line.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._capture import base_name

if TYPE_CHECKING:
    from .sandbox import ExecutionResult, KernelPool, SandboxLimits

log = logging.getLogger("assistant_kit.code_interpreter")

NAME = "code_interpreter"
DIR_ENV = "ASSISTANT_KIT_CODE_DIR"
# What the model gets back of an execution's logs: the head and the tail, so both the first
# lines (what ran) and the last ones (the result, the exception) survive.
MODEL_LOG_CHARS = 4000

_DESCRIPTION = (
    "Run Python code in a stateful Jupyter kernel: variables and imports persist between calls in "
    "this thread. The current working directory holds the thread's files; save files you create "
    "there. Print the values you need: the tool returns stdout, stderr and errors. Plots made with "
    "matplotlib are shown to the user as images."
)


def tool_function(files: list[str] | None = None) -> dict[str, Any]:
    """The chat-format function the model is offered for ``code_interpreter``; ``files``
    names the files placed in the working directory, so the model knows they are there."""
    description = _DESCRIPTION
    if files:
        description += " Files in the working directory: " + ", ".join(files) + "."
    return {
        "name": NAME,
        "description": description,
        "parameters": {
            "type": "object",
            "properties": {"code": {"type": "string", "description": "The Python source to run."}},
            "required": ["code"],
        },
    }


def code_from_arguments(raw: str, *, partial: bool) -> str:
    """The ``code`` in a tool call's JSON arguments, while they stream (``partial``: the
    arguments so far, a string cut anywhere) or at the end. Models that send the source
    itself instead of JSON get it back as is (at the end only)."""
    import jiter

    text = raw.strip()
    if not text:
        return ""
    if not text.startswith("{"):
        return "" if partial else raw
    try:
        value = jiter.from_json(text.encode(), partial_mode="trailing-strings" if partial else "off")
    except ValueError:
        return "" if partial else raw
    if isinstance(value, dict):
        code = value.get("code")
        if isinstance(code, str):
            return code
        strings = [v for v in value.values() if isinstance(v, str)]
        if not partial and len(strings) == 1:
            return strings[0]  # a model that named the argument differently
    return "" if partial else raw


def clip(text: str, limit: int = MODEL_LOG_CHARS) -> str:
    """``text`` cut to about ``limit`` characters, keeping its head and tail."""
    if len(text) <= limit:
        return text
    half = limit // 2
    dropped = len(text) - 2 * half
    return f"{text[:half]}\n… [{dropped:,} characters omitted] …\n{text[-half:]}"


def model_result(call: dict[str, Any], made: Sequence[dict[str, Any]] = ()) -> str:
    """What the model reads as the tool's result: the logs (clipped) and a note of each
    image and file the code made."""
    outputs = (call.get("code_interpreter") or {}).get("outputs") or []
    logs = "".join(o.get("logs") or "" for o in outputs if o.get("type") == "logs")
    parts = [clip(logs)] if logs.strip() else ["(no output)"]
    images = [o["image"]["file_id"] for o in outputs if o.get("type") == "image"]
    if images:
        parts.append(f"[{len(images)} image(s) shown to the user: {', '.join(images)}]")
    for file in made:  # the files the code wrote (its plots are the images above, not these)
        if file.get("purpose") == "assistants_output":
            parts.append(f"[file written: {file['filename']} ({file['bytes']} bytes), id {file['id']}]")
    return "\n".join(parts)


def file_annotations(text: str, files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``file_path`` annotations for the files a run's code wrote, where the answer mentions
    them: as ``sandbox:/mnt/data/NAME`` (the hosted tool's convention, e.g. a markdown link),
    ``/mnt/data/NAME`` or plain ``NAME``, the longest form matched at each place. A plain name
    counts only as a whole path (not the tail of ``xNAME`` or ``dir/NAME``, not the head of
    ``NAME.bak``; a sentence's full stop may follow). ``files`` come in the order written:
    when the code wrote one name twice, the answer means the latest file."""
    latest = {file["filename"]: file for file in files}
    annotations: list[dict[str, Any]] = []
    taken: list[tuple[int, int]] = []
    for name, file in latest.items():
        pattern = re.compile(
            r"(?:sandbox:/mnt/data/|/mnt/data/|(?<![\w./-]))" + re.escape(name) + r"(?![\w.-]*\w)"
        )
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(start < b and a < end for a, b in taken):
                continue
            taken.append((start, end))
            annotations.append(
                {
                    "type": "file_path",
                    "text": match.group(0),
                    "start_index": start,
                    "end_index": end,
                    "file_path": {"file_id": file["id"]},
                }
            )
    annotations.sort(key=lambda a: a["start_index"])
    return annotations


def _number(env: str, default: float) -> float:
    text = os.environ.get(env)
    return float(text) if text else default


def default_directory() -> Path:
    """``$ASSISTANT_KIT_CODE_DIR``, else ``code_interpreter/`` beside the default database
    (``~/.local/share/assistant_kit/code_interpreter``)."""
    if os.environ.get(DIR_ENV):
        return Path(os.environ[DIR_ENV]).expanduser()
    from ..store.sql import default_db_path

    return default_db_path().parent / "code_interpreter"


@dataclass(frozen=True)
class CodeInterpreterSettings:
    """Whether model-written code may run here, where, and within what limits.

    ``limits`` is a :class:`~assistant_kit.tools.sandbox.SandboxLimits` (None: its defaults).
    ``announce``: print one line the first time this engine runs code (local sessions).
    ``disabled_reason``: the run's ``last_error`` when the model calls the tool while off.
    ``sandbox``: ``"bwrap"`` (required), ``"auto"`` (when it works here) or ``"none"``;
    ``network``: the sandbox keeps the host's network; ``hidden``: directories of the engine (config,
    database) kept out of the sandbox's view besides the working directories' root.
    """

    enabled: bool = False
    directory: Path | None = None
    limits: SandboxLimits | None = None
    announce: bool = False
    sandbox: str = "auto"
    network: bool = False
    hidden: tuple[Path, ...] = ()
    disabled_reason: str = (
        "This run's model called the code_interpreter tool, but running code is disabled on this "
        "server. The operator can enable it (assistant_settings.code_interpreter.enabled: true in "
        "the proxy config); in-process sessions have it on."
    )

    @classmethod
    def local(cls) -> CodeInterpreterSettings:
        """Local sessions: on, announced, limits from ``ASSISTANT_KIT_CODE_TIMEOUT`` (seconds),
        ``ASSISTANT_KIT_CODE_MEMORY_MB``, ``ASSISTANT_KIT_CODE_CPU_SECONDS``,
        ``ASSISTANT_KIT_CODE_IDLE_SECONDS`` when set."""
        return cls(enabled=True, announce=True, limits=limits_from_env())

    def with_limits(self, **changes: Any) -> CodeInterpreterSettings:
        from .sandbox import SandboxLimits

        return replace(self, limits=replace(self.limits or SandboxLimits(), **changes))


def limits_from_env() -> SandboxLimits | None:
    names = {
        "timeout": "ASSISTANT_KIT_CODE_TIMEOUT",
        "memory_mb": "ASSISTANT_KIT_CODE_MEMORY_MB",
        "cpu_seconds": "ASSISTANT_KIT_CODE_CPU_SECONDS",
        "idle_seconds": "ASSISTANT_KIT_CODE_IDLE_SECONDS",
    }
    changes: dict[str, Any] = {}
    for key, env in names.items():
        if os.environ.get(env):
            value = _number(env, 0)
            changes[key] = int(value) if key in ("memory_mb", "cpu_seconds") else value
    if not changes:
        return None
    from .sandbox import SandboxLimits

    return replace(SandboxLimits(), **changes)


@dataclass
class CodeInterpreter:
    """One engine's code_interpreter: the kernel pool (created on first use) and the policy."""

    settings: CodeInterpreterSettings = field(default_factory=CodeInterpreterSettings)
    _pool: KernelPool | None = None
    _placed: dict[str, dict[str, str]] = field(default_factory=dict)  # thread → {file id: name}
    _announced: bool = False

    def __repr__(self) -> str:
        state = "on" if self.settings.enabled else "off"
        return f"<CodeInterpreter {state} directory={str(self.directory)!r} pool={self._pool!r}>"

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    @property
    def directory(self) -> Path:
        return self.settings.directory or default_directory()

    @property
    def pool(self) -> KernelPool:
        if self._pool is None:
            from .isolation import Isolation
            from .sandbox import KernelPool, SandboxLimits

            settings = self.settings
            hidden = (*settings.hidden, default_directory().parent)  # the default database's dir too
            isolation = Isolation(mode=settings.sandbox, network=settings.network, hidden=hidden)
            self._pool = KernelPool(self.directory, settings.limits or SandboxLimits(), isolation)
        return self._pool

    @property
    def sandbox(self) -> str:
        """``"bwrap"`` or ``"none"``: what this engine's kernels run in."""
        return self.pool.sandbox

    def _announce(self) -> None:
        if self.settings.announce and not self._announced:
            self._announced = True
            limits = self.pool.limits
            if self.pool.sandbox == "bwrap":
                how = "in a bubblewrap sandbox"
            else:
                from .isolation import missing

                why = missing() if self.settings.sandbox != "none" else "sandbox: none"
                how = f"NOT sandboxed ({why})"
            print(
                f"assistant_kit: code_interpreter runs model-written Python on this machine, {how}, in a "
                f"Jupyter kernel per thread under {self.directory} "
                f"(limits: {limits.timeout:g} s per call, {limits.memory_mb} MB).",
                file=sys.stderr,
                flush=True,
            )

    async def place_files(self, thread_id: str, files: list[tuple[dict[str, Any], bytes]]) -> list[str]:
        """Write input files into the thread's working directory, once per file id, each under
        a name that stays its own while the thread lives: the file's name, or — when another
        file of the thread already has that name — the name with the file id added. Returns
        the names, for the model."""
        placed = self._placed.setdefault(thread_id, {})
        names = []
        for file, content in files:
            name = placed.get(file["id"])
            if name is None:
                name = input_name(file["filename"], file["id"], set(placed.values()))
                await self.pool.put_file(thread_id, name, content)
                placed[file["id"]] = name
            names.append(name)
        return names

    async def execute(
        self, thread_id: str, code: str, on_output: Callable[[str, str | bytes], None] | None = None
    ) -> ExecutionResult:
        self._announce()
        result = await self.pool.execute(thread_id, code, on_output)
        log.info(
            "thread %s: code ran %.3f s (%s, %s)",
            thread_id,
            result.seconds,
            result.status,
            "cold" if result.cold else "warm",
        )
        return result

    def workdir(self, thread_id: str) -> Path:
        return self.pool.workdir(thread_id)

    async def forget(self, thread_id: str) -> None:
        """The thread was deleted: stop its kernel, remove its working directory."""
        self._placed.pop(thread_id, None)
        if self._pool is not None:
            await self._pool.shutdown(thread_id, remove_files=True)

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()


def input_name(filename: str, file_id: str, taken: set[str]) -> str:
    """The name an input file gets in the working directory: the last part of its file name
    (the file id when that is empty, ``.``, ``..`` or has NUL; the id and the extension when it
    is over 200 bytes), with the id added before the extension when the name is ``taken``."""
    name = base_name(filename) or file_id
    if len(os.fsencode(name)) > 200:  # file systems allow 255 bytes: keep the extension, if short
        suffix = Path(name).suffix
        name = file_id + (suffix if len(os.fsencode(suffix)) <= 16 else "")
    if name in taken:
        stem, dot, ext = name.partition(".")
        name = f"{stem}-{file_id}{dot}{ext}"
    return name


def arguments_json(code: str) -> str:
    """The arguments the model is shown it sent (history of earlier calls)."""
    return json.dumps({"code": code})
