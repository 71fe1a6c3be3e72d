"""The bubblewrap sandbox of the code_interpreter against real kernels (no mocks): the filesystem
view, the uid, no network, whole-tree memory, strays killed after each execution, the disk quota,
the cap on live kernels, the libraries of the hosted tool. The hostile program through a real
proxy is tests/server/test_sandbox_attack.py."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant_kit.tools import isolation, sandbox
from assistant_kit.tools.sandbox import Isolation, KernelPool, SandboxLimits
from tests.tools import DAEMON_AND_FORKS

psutil = pytest.importorskip("psutil")

REQUIRE = os.environ.get("ASSISTANT_KIT_REQUIRE_ALL") == "1"  # CI: a missing bwrap fails, not skips
_MISSING = sandbox.unavailable_reason() or isolation.missing()
pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(_MISSING is not None and not REQUIRE, reason=f"no sandbox here: {_MISSING}"),
]

LIMITS = {"timeout": 20.0, "memory_mb": 300, "idle_seconds": 60.0, "disk_mb": 20, "max_processes": 64}
Run = Callable[..., Any]


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def tree(pool: KernelPool) -> list[Any]:
    """Every process of every live kernel's sandbox (bwrap included)."""
    out = []
    for slot in pool._slots.values():
        if slot.kernel is not None:
            out += [slot.kernel.psutil, *slot.kernel.family()]
    return out


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    started: list[int] = []

    def runner(body: Callable[[KernelPool], Awaitable[Any]], *, network: bool = False, **limits: Any) -> Any:
        async def main() -> Any:
            hidden = (tmp_path / "secret",)
            pool = KernelPool(
                tmp_path / "root",
                SandboxLimits(**{**LIMITS, **limits}),
                Isolation(mode="bwrap", network=network, hidden=hidden),
            )
            try:
                return await body(pool)
            finally:
                started.extend(p.pid for p in tree(pool))
                await pool.aclose()

        return asyncio.run(main())

    yield runner
    alive = [pid for pid in started if running(pid)]
    assert alive == [], "a sandbox process outlived its pool"


def test_the_kernel_sees_mnt_data_its_own_uid_and_nothing_of_the_host(run: Run, tmp_path: Path) -> None:
    (tmp_path / "elsewhere.txt").write_text("not bound")
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "config.yaml").write_text("master_key: x")
    code = f"""
import os
print(os.getcwd(), os.getuid() != 0, os.getpid())
open('out.csv', 'w').write('a,b\\n')
for path in ({str(tmp_path / "secret" / "config.yaml")!r}, {str(tmp_path / "root" / "u" / "f.txt")!r},
             '/proc/1/environ', {str(tmp_path / "elsewhere.txt")!r}):
    try:
        os.stat(path); open(path).read(); print('READ', path)
    except (OSError, IsADirectoryError) as exc:
        print('held', type(exc).__name__)
print(sorted(p for p in os.listdir('/proc') if p.isdigit()))
"""

    async def body(pool: KernelPool) -> None:
        await pool.put_file("u", "f.txt", b"other thread")
        result = await pool.execute("t", code)
        assert result.status == "ok", result
        lines = result.logs.splitlines()
        assert lines[0] == "/mnt/data True 2"  # pid 2 of its own namespace, bwrap's init is 1
        held = ["FileNotFoundError", "FileNotFoundError", "PermissionError", "FileNotFoundError"]
        assert lines[1:5] == [f"held {name}" for name in held]
        assert lines[5] == "['1', '2']"
        assert result.files == [pool.workdir("t") / "out.csv"]  # written as /mnt/data/out.csv

    run(body)


def test_no_network_unless_opted_in(run: Run) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    code = f"""
import socket
try:
    socket.create_connection(('127.0.0.1', {port}), timeout=3).close(); print('connected')
except OSError as exc:
    print('held', type(exc).__name__)
"""
    with listener:
        closed = run(lambda pool: pool.execute("t", code))
        opened = run(lambda pool: pool.execute("t", code), network=True)
    assert closed.logs.startswith("held"), closed
    assert opened.logs == "connected\n", opened


def test_processes_are_limited_and_none_outlives_the_execution(run: Run) -> None:
    code = (
        DAEMON_AND_FORKS
        + """
    print('refused after', started, type(exc).__name__)
"""
    )

    async def body(pool: KernelPool) -> None:
        result = await pool.execute("t", code)
        assert result.status == "ok", result
        assert result.logs.startswith("refused after "), result.logs
        assert int(result.logs.split()[2]) < 64
        assert "process(es) the code started were still running and were stopped" in result.logs
        await asyncio.sleep(0.2)
        names = [p.name() for p in tree(pool) if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert "sleep" not in names, names
        assert len(names) == 3, names  # bwrap, its init, the kernel
        again = await pool.execute("t", "print('still here')")
        assert (again.status, again.logs, again.cold) == ("ok", "still here\n", False)

    run(body)


def test_memory_is_summed_over_the_tree(run: Run) -> None:
    code = """
import subprocess, sys
kids = [subprocess.Popen([sys.executable, '-c', "b = b'x' * (150 << 20); import time; time.sleep(60)"])
        for _ in range(3)]
for kid in kids:
    kid.wait()
"""

    async def body(pool: KernelPool) -> None:
        result = await pool.execute("t", code)
        assert result.status == "memory", result
        assert "all its processes together" in result.reason
        assert tree(pool) == []

    run(body, memory_mb=250)


def test_disk_quota_fails_the_execution_and_removes_what_it_wrote(run: Run) -> None:
    code = """
chunk = b'x' * (1 << 20)
for n in range(200):
    with open(f'/mnt/data/fill{n}.bin', 'wb') as out:
        out.write(chunk * 2)
print('wrote 400 MB')
"""

    async def body(pool: KernelPool) -> None:
        await pool.put_file("t", "input.csv", b"a,b\n")
        result = await pool.execute("t", code)
        assert result.status == "disk", result
        assert "disk quota of 20 MB" in result.reason
        assert sorted(p.name for p in pool.workdir("t").iterdir()) == ["input.csv"]
        again = await pool.execute("t", "print(open('input.csv').read())")
        assert (again.status, again.cold) == ("ok", True)

    run(body)


def test_live_kernels_are_capped_least_recently_used_first(run: Run) -> None:
    async def body(pool: KernelPool) -> None:
        for key in ("a", "b"):
            assert (await pool.execute(key, "x = 1")).status == "ok"
        await pool.execute("a", "x")  # b is now the least recently used
        third = await pool.execute("c", "x = 3")
        assert third.status == "ok" and "kernels=2" in repr(pool)
        assert (await pool.execute("a", "print(x)")).logs == "1\n"  # kept
        b = await pool.execute("b", "print(x)")
        assert b.cold and b.status == "error"  # stopped: a fresh kernel has no x

    run(body, max_kernels=2)


def test_the_hosted_tools_libraries_are_importable(run: Run) -> None:
    code = (
        "import pandas, numpy, matplotlib, scipy, openpyxl, docx, pptx, reportlab\n"
        "from pptx import Presentation\n"
        "Presentation().save('/mnt/data/deck.pptx')\n"
        "print('ok')"
    )
    result = run(lambda pool: pool.execute("t", code), timeout=60.0, memory_mb=600)
    assert (result.status, result.logs) == ("ok", "ok\n"), result
    assert [p.name for p in result.files] == ["deck.pptx"]


@pytest.mark.skipif(sys.platform != "linux", reason="bubblewrap is Linux only")
def test_missing_bwrap_is_named_with_the_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    isolation.missing.cache_clear()
    try:
        reason = isolation.missing()
    finally:
        isolation.missing.cache_clear()
    assert reason is not None and "bubblewrap" in reason and "apt-get install bubblewrap" in reason
