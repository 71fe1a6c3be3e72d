"""Every Python and shell block of README.md and docs/*.md runs as printed.

Each block runs in a fresh process in an empty directory, as a reader would run it: Python
blocks with ``python`` (top-level ``await`` allowed, as in a notebook cell), shell blocks
with ``bash`` and this environment's ``bin`` first on ``PATH`` (an activated venv). The
home directory is a temporary one, so default stores and caches stay out of the user's.
No key of any provider is set: a block that shows a missing-key error must show it.

Fence info after the language says how (GitHub ignores it when highlighting):

* ``continues``: runs after the previous Python block of the same page, sharing its names
  (a notebook's next cell);
* ``no-run``: shown, not run — only for what cannot run here (a ``git clone``: no network),
  and the page says so next to it.

Why not pytest-examples: it runs each block in this process (the kit's engine state, the
warnings-as-errors filters and the model worker would be shared with the suite), and knows no
shell blocks; what is needed here is a fence parser and a subprocess per block.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.server.conftest import clean_env

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)

# Runs a chain of Python blocks in one namespace; a block with top-level await is awaited.
_RUNNER = textwrap.dedent(
    """
    import ast, asyncio, sys, types
    namespace = {"__name__": "__main__"}
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    for path in sys.argv[1:]:
        source = open(path, encoding="utf-8").read()
        code = compile(source, path, "exec", flags=flags)
        result = eval(code, namespace)
        if isinstance(result, types.CoroutineType):
            asyncio.run(result)
    """
)


@dataclass
class Block:
    page: Path
    line: int
    language: str
    options: frozenset[str]
    source: str

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks() -> list[Block]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            language = match[1].lower()
            if language not in ("python", "bash"):
                continue
            line = text.count("\n", 0, match.start()) + 1
            found.append(Block(page, line, language, frozenset(match[2].split()), match[3]))
    return found


def chains() -> list[list[Block]]:
    """Python blocks grouped with the ``continues`` blocks after them; bash blocks alone."""
    out: list[list[Block]] = []
    for block in blocks():
        if "no-run" in block.options:
            continue
        if "continues" in block.options:
            previous = next(
                (c for c in reversed(out) if c[0].language == "python" and c[0].page == block.page), None
            )
            assert previous is not None, f"{block.id}: 'continues' with no Python block before it"
            previous.append(block)
        else:
            out.append([block])
    return out


def _env(home: Path) -> dict[str, str]:
    env = clean_env()  # no provider credentials, no store of the caller's
    env.pop("ASSISTANT_KIT_LOCAL_MODEL", None)
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(ROOT),
    )
    return env


def test_the_docs_have_blocks_and_every_no_run_is_rare() -> None:
    found = blocks()
    assert len(found) >= 10
    skipped = [b.id for b in found if "no-run" in b.options]
    assert len(skipped) <= 2, skipped  # a block that cannot run is the exception


@pytest.mark.parametrize("chain", chains(), ids=lambda chain: chain[0].id)
def test_block_runs_as_printed(chain: list[Block], tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    if chain[0].language == "python":
        files = []
        for index, block in enumerate(chain):
            path = tmp_path / f"block{index}_{block.line}.py"
            path.write_text(block.source, encoding="utf-8")
            files.append(str(path))
        argv = [sys.executable, "-c", _RUNNER, *files]
    else:
        script = tmp_path / "block.sh"
        script.write_text("set -euo pipefail\n" + chain[0].source, encoding="utf-8")
        argv = ["bash", str(script)]
    process = subprocess.Popen(
        argv,
        cwd=work,
        env=_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a server a block starts in the background goes with it
    )
    try:
        output, _ = process.communicate(timeout=240)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
    where = ", ".join(b.id for b in chain)
    assert process.returncode == 0, f"{where} failed:\n{output[-3000:]}"
