"""The code_interpreter sandbox against real ipykernel kernels (no mocks): output, state, limits,
crashes, files, environment, lifecycle. Limits are short so the file runs in well under a minute.

These pools run unsandboxed (``Isolation(mode="none")``, what a machine without bubblewrap falls
back to), so the kernel's pid and paths are the host's; tests/tools/test_isolation.py runs the
bubblewrap sandbox."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant_kit.errors import InvalidRequestError
from assistant_kit.tools import sandbox
from assistant_kit.tools.sandbox import ExecutionResult, Isolation, KernelPool, SandboxLimits

psutil = pytest.importorskip("psutil")
LINUX = pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_DATA, autogroups: Linux only")

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(sandbox.unavailable_reason() is not None, reason="jupyter_client/ipykernel missing"),
]

PNG = b"\x89PNG\r\n\x1a\n"
NONE = Isolation(mode="none")
# A generous timeout by default: the kernel runs at niceness 10, so on a loaded machine even a first
# matplotlib import can take seconds. The timeout test sets its own.
FAST = {"timeout": 20.0, "memory_mb": 300, "idle_seconds": 60.0}

Run = Callable[..., Any]


def kernels_under(root: Path) -> list[psutil.Process]:
    """This process's descendants started for a pool under ``root`` (their argv names its files)."""
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            if str(root) in " ".join(process.cmdline()):
                found.append(process)
        except psutil.Error:  # exited meanwhile
            continue
    return found


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    """``run(body, **limits)``: ``await body(pool)`` on a fresh pool under ``tmp_path`` in its own
    event loop; the pool is always closed, and no kernel it started may outlive it."""

    def runner(body: Callable[[KernelPool], Awaitable[Any]], **limits: Any) -> Any:
        async def main() -> Any:
            pool = KernelPool(tmp_path / "root", SandboxLimits(**{**FAST, **limits}), NONE)
            try:
                return await body(pool)
            finally:
                await pool.aclose()

        return asyncio.run(main())

    yield runner
    assert kernels_under(tmp_path) == [], "a kernel outlived its pool"


async def pid_of(pool: KernelPool, key: str = "t") -> int:
    result = await pool.execute(key, "import os; print(os.getpid())")
    assert result.status == "ok", result
    return int(result.logs)


def test_print_goes_to_logs_and_variables_persist(run: Run) -> None:
    async def body(pool: KernelPool) -> None:
        first = await pool.execute(
            "t", "x = 41\nprint('hello'); print('oops', file=__import__('sys').stderr)"
        )
        assert (first.status, first.logs, first.cold, first.reason) == ("ok", "hello\noops\n", True, None)
        assert repr(pool).endswith("kernels=1>")
        second = await pool.execute("t", "x + 1")  # the last expression's value, like the hosted tool
        assert (second.status, second.logs, second.cold) == ("ok", "42\n", False)
        assert second.seconds < first.seconds
        assert "ok" in repr(second) and "warm" in repr(second)

    run(body)


def test_error_reports_plain_traceback_and_keeps_the_kernel(run: Run) -> None:
    async def body(pool: KernelPool) -> None:
        await pool.execute("t", "kept = 'still here'")
        result = await pool.execute("t", "def f():\n    raise ValueError('boom')\nf()")
        assert result.status == "error" and result.reason is None
        assert result.logs.startswith("Traceback (most recent call last):")
        assert "ValueError: boom" in result.logs and "\x1b" not in result.logs
        asked = await pool.execute("t", "input('name? ')")  # no stdin: an error, not a hang
        assert asked.status == "error" and "StdinNotImplementedError" in asked.logs
        after = await pool.execute("t", "print(kept)")
        assert (after.status, after.logs, after.cold) == ("ok", "still here\n", False)

    run(body)


def test_matplotlib_figure_arrives_as_one_png(run: Run) -> None:
    seen: list[tuple[str, Any]] = []

    async def body(pool: KernelPool) -> ExecutionResult:
        code = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('t')\nprint('drawn')"
        return await pool.execute("t", code, lambda kind, value: seen.append((kind, value)))

    result = run(body)
    assert result.status == "ok" and result.logs == "drawn\n"  # no "<Figure size …>" text
    assert len(result.images) == 1 and result.images[0].startswith(PNG)
    assert ("image", result.images[0]) in seen


def test_timeout_kills_and_the_next_execution_starts_fresh(run: Run) -> None:
    async def body(pool: KernelPool) -> None:
        pid = await pid_of(pool)
        await pool.execute("t", "x = 1")
        started = time.monotonic()
        result = await pool.execute("t", "while True:\n    pass")
        assert time.monotonic() - started < 3 + 3
        assert result.status == "timeout"
        assert result.reason == (
            "Execution timed out after 3 s; the kernel was restarted, so variables and imports are gone."
        )
        assert not psutil.pid_exists(pid)
        after = await pool.execute("t", "print('x' in globals())")
        assert (after.status, after.logs, after.cold) == ("ok", "False\n", True)

    run(body, timeout=3.0)


@pytest.mark.parametrize(
    "bomb",
    [
        "x = []\nwhile True:\n    x.append('x' * 10_000_000)",
        pytest.param("b = bytearray(50 * 1024**3)", marks=LINUX),  # elsewhere it may just be mapped lazily
    ],
    ids=["growing-list", "huge-bytearray"],
)
def test_memory_bomb_is_stopped_and_the_next_execution_works(run: Run, bomb: str) -> None:
    async def body(pool: KernelPool) -> None:
        result = await pool.execute("t", bomb)
        assert result.status == "memory", result  # the limit ended it, not the timeout
        assert "300 MB" in result.reason and "restarted" in result.reason
        after = await pool.execute("t", "print(1 + 1)")
        assert (after.status, after.logs, after.cold) == ("ok", "2\n", True)

    run(body)


@pytest.mark.parametrize(
    ("code", "how"),
    [
        ("import os; os._exit(1)", "exit code 1"),
        ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "killed by signal SIGKILL"),
        ("import ctypes; ctypes.string_at(0)", "killed by signal SIGSEGV"),
    ],
    ids=["exit", "sigkill", "segfault"],
)
def test_a_dying_kernel_is_reported_quickly(run: Run, code: str, how: str) -> None:
    async def body(pool: KernelPool) -> None:
        await pool.execute("t", "print('before')")
        result = await pool.execute("t", code)
        assert result.status == "crashed"
        assert result.seconds < 5
        assert result.reason == (
            f"The kernel died while running this code ({how}); it will be restarted, "
            "so variables and imports are gone."
        )
        after = await pool.execute("t", "print('again')")
        assert (after.status, after.logs, after.cold) == ("ok", "again\n", True)

    run(body)


@LINUX
def test_cpu_budget_nice_and_rlimits_apply_inside_the_kernel(run: Run) -> None:
    code = (
        "import os, resource\n"
        "get = resource.getrlimit\n"
        "cpu, core, size = (get(getattr(resource, f'RLIMIT_{n}')) for n in ('CPU', 'CORE', 'FSIZE'))\n"
        "print(os.nice(0), cpu[0], core, size[0] // 2**20)\n"
        "if os.path.exists('/proc/self/autogroup'):\n"
        "    print(open('/proc/self/autogroup').read().split()[-1])"
    )

    async def body(pool: KernelPool) -> None:
        limits = await pool.execute("t", code)
        assert limits.logs.startswith("10 2 (0, 0) 50\n")
        assert limits.logs.endswith(("50\n", "50\n10\n"))  # Linux: the kernel's autogroup is niced too
        # 2 CPU seconds, kernel start included; the generous timeout is for a loaded machine
        burn = await pool.execute("t", "while True:\n    pass")
        assert burn.status == "crashed"
        assert burn.reason == (
            "The kernel used up its CPU-time budget (2 s) and was stopped; it will be restarted, "
            "so variables and imports are gone."
        )
        too_big = await pool.execute("t", "open('big.bin', 'wb').write(b'x' * 51 * 2**20)")
        assert too_big.status == "error" and "File too large" in too_big.logs

    run(body, cpu_seconds=2, timeout=20.0, max_file_mb=50, memory_mb=400)


def test_environment_is_scrubbed_of_secrets(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "OPENAI_API_KEY": "sk-test-secret-1",
        "ASSISTANT_KIT_MASTER_KEY": "master-secret-2",
        "ASSISTANT_KIT_DB": "/secret/path/db.sqlite",
        "DATABASE_URL": "postgresql://user:secret-3@db/x",
        "GITHUB_TOKEN": "ghp_secret4",
        "SOME_PASSWORD": "secret-5",
        "HTTPS_PROXY": "http://user:secret-6@proxy:3128",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)

    async def body(pool: KernelPool) -> tuple[dict[str, str], Path]:
        result = await pool.execute("t", "import json, os; print(json.dumps(dict(os.environ)))")
        assert result.status == "ok"
        for value in secrets.values():
            assert value not in result.logs
        return json.loads(result.logs), pool.workdir("t")

    env, workdir = run(body)
    assert not set(secrets) & set(env)
    assert not [name for name in env if name.startswith("ASSISTANT_KIT_")]
    assert env["PATH"] == os.environ["PATH"]
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"
    assert env["MPLBACKEND"] == "module://matplotlib_inline.backend_inline"  # set by ipykernel itself
    for name in ("HOME", "IPYTHONDIR", "MPLCONFIGDIR", "TMPDIR"):
        assert not Path(env[name]).is_relative_to(workdir), name
        assert Path(env[name]).is_relative_to(workdir.parent / ".t.private"), name


def test_cwd_is_the_workdir_and_written_files_are_reported(run: Run) -> None:
    code = (
        "import os\n"
        "print(os.getcwd())\n"
        "open('out.csv', 'w').write('a,b\\n')\n"
        "os.makedirs('sub', exist_ok=True); open('sub/deep.txt', 'w').write('x')\n"
        "open('.hidden', 'w').write('x')\n"
        "os.makedirs('__pycache__', exist_ok=True); open('__pycache__/m.pyc', 'w').write('x')\n"
        "import tempfile\n"
        "with tempfile.NamedTemporaryFile(delete=False) as tmp:\n"
        "    tmp.write(b'x')\n"
    )

    async def body(pool: KernelPool) -> None:
        workdir = pool.workdir("t")
        result = await pool.execute("t", code)
        assert result.status == "ok" and result.logs == f"{workdir}\n"
        assert result.files == [workdir / "out.csv", workdir / "sub" / "deep.txt"]
        quiet = await pool.execute("t", "open('out.csv').read()")
        assert quiet.files == []
        again = await pool.execute("t", "open('out.csv', 'a').write('1,2\\n')")
        assert again.files == [workdir / "out.csv"]

    run(body)


def test_put_file_is_readable_by_the_code(run: Run) -> None:
    async def body(pool: KernelPool) -> None:
        path = await pool.put_file("t", "../../uploads/data.csv", b"a,b\n1,2\n")
        assert path == pool.workdir("t") / "data.csv"
        result = await pool.execute("t", "print(open('data.csv').read().splitlines()[1])")
        assert (result.status, result.logs, result.files) == ("ok", "1,2\n", [])
        for bad in ("..", "x/..", "", "a\0b"):
            with pytest.raises(InvalidRequestError):
                await pool.put_file("t", bad, b"x")
        assert sorted(p.name for p in pool.workdir("t").iterdir()) == ["data.csv"]

    run(body)


def test_oversized_output_is_truncated_with_a_marker_and_streamed_alike(run: Run) -> None:
    chunks: list[str] = []

    async def body(pool: KernelPool) -> ExecutionResult:
        def on_output(kind: str, value: str | bytes) -> None:
            assert kind == "logs" and isinstance(value, str)
            chunks.append(value)

        return await pool.execute("t", "print('x' * 10**6)\nprint('tail')", on_output)

    result = run(body)
    marker = "\n… [output truncated: 980,006 more characters]"  # 10**6 + 1 + 5 printed, 20,000 kept
    assert result.status == "ok"
    assert result.logs == "x" * 20_000 + marker
    assert "".join(chunks) == result.logs and chunks[-1] == marker and len(chunks) > 1


def test_shutdown_with_remove_files_stops_the_kernel_and_deletes_its_dirs(run: Run) -> None:
    async def body(pool: KernelPool) -> None:
        pid = await pid_of(pool)
        await pool.execute("t", "open('f.txt', 'w').write('x')")
        workdir = pool.workdir("t")
        await pool.shutdown("t", remove_files=True)
        assert not psutil.pid_exists(pid)
        assert not workdir.exists() and not (workdir.parent / ".t.private").exists()
        assert repr(pool).endswith("kernels=0>")
        await pool.shutdown("never-used")  # nothing to do, no error

    run(body)


def test_shutdown_during_an_execution_ends_it_as_crashed(run: Run) -> None:
    async def body(pool: KernelPool) -> None:
        pid = await pid_of(pool)
        running = asyncio.create_task(pool.execute("t", "import time; time.sleep(30)"))
        await asyncio.sleep(0.3)
        await pool.shutdown("t")
        result = await asyncio.wait_for(running, 3)
        assert result.status == "crashed"
        assert (
            result.reason
            == "The kernel was shut down while this code was running, so variables and imports are gone."
        )
        assert not psutil.pid_exists(pid)
        assert (await pool.execute("t", "print(1)")).cold

    run(body)


def test_shutdown_while_the_kernel_starts_stops_it(run: Run) -> None:
    async def body(pool: KernelPool) -> None:
        starting = asyncio.create_task(pool.execute("t", "print(1)"))
        await asyncio.sleep(0.1)
        assert len(kernels_under(pool.root)) == 1
        await pool.shutdown("t")
        result = await starting
        assert result.status == "unavailable" and "the code did not run" in result.reason
        assert kernels_under(pool.root) == []

    run(body)


def test_cancelling_an_execution_stops_its_code(run: Run) -> None:
    async def body(pool: KernelPool) -> None:
        pid = await pid_of(pool)
        running = asyncio.create_task(pool.execute("t", "import time; time.sleep(30)"))
        await asyncio.sleep(0.3)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        assert not psutil.pid_exists(pid)
        assert (await pool.execute("t", "print(1)")).cold

    run(body)


def test_idle_kernel_is_shut_down_and_the_next_execution_is_cold(run: Run) -> None:
    async def body(pool: KernelPool) -> None:
        pid = await pid_of(pool)
        idle_since = time.monotonic()
        while psutil.pid_exists(pid) and time.monotonic() - idle_since < 5:
            await asyncio.sleep(0.05)
        assert 0.95 < time.monotonic() - idle_since < 3
        assert repr(pool).endswith("kernels=0>")
        after = await pool.execute("t", "print('back')")
        assert (after.logs, after.cold) == ("back\n", True)

    run(body, idle_seconds=1.0)


def test_keys_are_isolated_and_run_concurrently(run: Run) -> None:
    async def body(pool: KernelPool) -> None:
        await asyncio.gather(pool.execute("a", "secret = 1"), pool.execute("b", "other = 2"))
        a, b = await asyncio.gather(
            pool.execute("a", "import os; print(os.getcwd(), 'other' in globals())"),
            pool.execute("b", "import os; print(os.getcwd(), 'secret' in globals())"),
        )
        assert a.logs == f"{pool.workdir('a')} False\n"
        assert b.logs == f"{pool.workdir('b')} False\n"

    run(body)


def test_the_event_loop_keeps_running_while_code_runs(run: Run) -> None:
    async def body(pool: KernelPool) -> float:
        await pool.execute("t", "import time")
        gaps: list[float] = []

        async def tick() -> None:
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.01)
                gaps.append(time.monotonic() - last)
                last = time.monotonic()

        ticker = asyncio.create_task(tick())
        result = await pool.execute("t", "time.sleep(1); print('done')")
        ticker.cancel()
        assert result.logs == "done\n"
        return max(gaps)

    assert run(body) < 0.5  # the code slept 1 s; the loop never stalled for long


def test_invalid_keys_are_refused(tmp_path: Path) -> None:
    pool = KernelPool(tmp_path, isolation=NONE)
    for key in ("", ".hidden", "a/b", "..", "a\\b"):
        with pytest.raises(ValueError):
            pool.workdir(key)


def test_unavailable_without_jupyter(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ipykernel", None)  # what find_spec sees when it is missing
    result = run(lambda pool: pool.execute("t", "print(1)"))
    assert result.status == "unavailable"
    assert "ipykernel" in result.reason and "pip install 'assistant-kit[code-interpreter]'" in result.reason


def test_import_does_not_load_jupyter_and_atexit_kills_kernels(tmp_path: Path) -> None:
    script = f"""
import asyncio, sys
import assistant_kit, assistant_kit.tools.sandbox as sandbox
assert "jupyter_client" not in sys.modules and "zmq" not in sys.modules
async def main():
    pool = sandbox.KernelPool({str(tmp_path)!r}, isolation=sandbox.Isolation(mode="none"))
    result = await pool.execute("t", "import os; print(os.getpid())")
    print(result.logs, end="", flush=True)
asyncio.run(main())  # never closes the pool: the atexit hook must kill the kernel
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout)
    deadline = time.monotonic() + 3
    while psutil.pid_exists(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not psutil.pid_exists(pid)


@pytest.mark.parametrize("delay", [0.0, 0.005, 0.02])
def test_cancelling_while_the_kernel_starts_leaves_no_kernel(run: Run, delay: float) -> None:
    async def body(pool: KernelPool) -> None:
        starting = asyncio.create_task(pool.execute("t", "print(1)"))
        await asyncio.sleep(delay)
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await starting
        assert kernels_under(pool.root) == []  # not only once the pool is closed
        assert (await pool.execute("t", "print(2)")).logs == "2\n"

    run(body)


def test_malformed_display_data_is_a_note_not_a_crash(run: Run) -> None:
    async def body(pool: KernelPool) -> None:
        code = (
            "from IPython.display import display\n"
            "display({'image/png': 'abcde'}, raw=True)\n"
            "display({'image/png': 12}, raw=True)\n"
            "display({'text/plain': 123}, raw=True)\n"
            "x = 41"
        )
        result = await pool.execute("t", code)
        assert result.status == "ok", result
        assert result.logs.splitlines() == [
            "[image not kept: invalid base64]",
            "[image not kept: not base64 text]",
            "123",
        ]
        assert result.images == []
        assert (await pool.execute("t", "print(x + 1)")).logs == "42\n"  # the same kernel

    run(body)


def test_written_files_are_capped_with_a_note(run: Run) -> None:
    async def body(pool: KernelPool) -> None:
        result = await pool.execute("t", "for i in range(12): open(f'f{i:02}.txt', 'w').write('x')")
        assert [p.name for p in result.files] == [f"f{i:02}.txt" for i in range(5)]
        assert result.logs.endswith("[7 more files written; only the first 5 are kept as files]")

    run(body, max_files=5)


def test_a_process_in_a_session_of_its_own_dies_with_the_kernel(run: Run) -> None:
    async def body(pool: KernelPool) -> None:
        code = (
            "import subprocess, sys\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'],"
            " start_new_session=True)\n"
            "print(child.pid)"
        )
        result = await pool.execute("t", code)
        child = psutil.Process(int(result.logs))
        assert child.is_running()
        await pool.shutdown("t")
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not _alive(child)

    run(body)


def _alive(process: psutil.Process) -> bool:
    """Running and not a zombie (an orphan's zombie waits for init, which may not reap here)."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_tree_too_big_to_list_reports_no_untouched_files(run: Run) -> None:
    async def body(pool: KernelPool) -> None:
        make = (
            "import os\n"
            "for d in range(4):\n"
            "    os.makedirs(f'd{d}')\n"
            "    for i in range(30): n = open(f'd{d}/{i}', 'w').write('x')"
        )
        assert (await pool.execute("t", make)).status == "ok"
        # The listing before this one stops at 50 files (two directories): once d3 is gone, the
        # listing after reaches directories the first did not — their files are not new.
        result = await pool.execute(
            "t", "import shutil; shutil.rmtree('d3'); n = open('new.txt', 'w').write('x')"
        )
        assert result.status == "ok", result
        assert [p.name for p in result.files] == ["new.txt"]

    run(body, max_listed_files=50)
