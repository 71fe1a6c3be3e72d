"""code_interpreter execution: cold (a kernel starts) and warm (the thread's kernel is running),
through the sandbox and through a whole run, against bare jupyter_client in the same run.

* baseline: ``jupyter_client.AsyncKernelManager`` + ``ipykernel`` with default settings: cold =
  ``start_kernel`` + ``wait_for_ready`` + execute ``print(1)`` until idle; warm = execute again;
* sandbox: :class:`assistant_kit.tools.sandbox.KernelPool` inside bubblewrap when it works here
  (namespaces, filesystem view, own uid, IPC sockets; plus scrubbed env, limits, watchdog, file
  snapshot, strays killed, disk quota): cold = first ``execute`` on a new key, warm = the next
  one. Budget (issue 15): at most 0.2 s more than bare cold, 5 ms more than bare warm;
* run: ``local_client`` + scripted ``test/tools`` running ``print(1)`` — a whole run through the
  SDK (create, stream, model turns, step, outputs, answer): cold = first run on a new thread,
  warm = a second run on the same thread; and the same run shape with no code at all
  (``test/echo``), so the ratio shows what the code step adds.

Each measurement is repeated ``REPEATS`` times with fresh keys/threads, medians compared. Run
from the repo root: ``.venv/bin/python benchmarks/code_interpreter.py``. Always exits 0.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

warnings.filterwarnings("ignore", category=DeprecationWarning)  # client.beta.* is "deprecated"

from benchmarks._common import run_main  # noqa: E402

REPEATS = 5


async def _bare_execute(client: object, code: str) -> None:
    msg_id = client.execute(code)  # type: ignore[attr-defined]
    while True:
        msg = await client.get_iopub_msg(timeout=60)  # type: ignore[attr-defined]
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status":
            if msg["content"]["execution_state"] == "idle":
                return


async def bare() -> tuple[float, float]:
    from jupyter_client import AsyncKernelManager

    started = time.perf_counter()
    manager = AsyncKernelManager(kernel_name="python3")
    await manager.start_kernel(stderr=subprocess.DEVNULL)  # its log (a TCP warning) is noise here
    client = manager.client()
    client.start_channels()
    await client.wait_for_ready(timeout=60)
    await _bare_execute(client, "print(1)")
    cold = time.perf_counter() - started
    started = time.perf_counter()
    await _bare_execute(client, "print(1)")
    warm = time.perf_counter() - started
    client.stop_channels()
    await manager.shutdown_kernel(now=True)
    return cold, warm


async def sandbox(root: Path, n: int) -> tuple[float, float]:
    from assistant_kit.tools.sandbox import KernelPool

    pool = KernelPool(root)
    try:
        started = time.perf_counter()
        first = await pool.execute(f"k{n}", "print(1)")
        cold = time.perf_counter() - started
        started = time.perf_counter()
        second = await pool.execute(f"k{n}", "print(1)")
        warm = time.perf_counter() - started
        assert first.logs == second.logs == "1\n" and first.cold and not second.cold, (first, second)
        return cold, warm
    finally:
        await pool.aclose()


def runs(client: object) -> tuple[float, float, float]:
    beta = client.beta  # type: ignore[attr-defined]
    coder = beta.assistants.create(model="test/tools", tools=[{"type": "code_interpreter"}])
    echo = beta.assistants.create(model="test/echo")
    text = "```python\nprint(1)\n```"
    thread = beta.threads.create(messages=[{"role": "user", "content": text}])

    def one(assistant_id: str, thread_id: str) -> float:
        started = time.perf_counter()
        run = beta.threads.runs.create_and_poll(
            thread_id=thread_id, assistant_id=assistant_id, poll_interval_ms=5
        )
        assert run.status == "completed", run.last_error
        return time.perf_counter() - started

    cold = one(coder.id, thread.id)
    beta.threads.messages.create(thread.id, role="user", content=text)
    warm = one(coder.id, thread.id)
    plain = beta.threads.create(messages=[{"role": "user", "content": text}])
    no_code = one(echo.id, plain.id)
    return cold, warm, no_code


def main() -> None:
    import os

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ASSISTANT_KIT_CODE_DIR"] = str(Path(tmp) / "code")
        from assistant_kit import local_client

        client = local_client(Path(tmp) / "kit.db")
        samples: dict[str, list[float]] = {}
        for n in range(REPEATS):
            for name, value in zip(("bare cold", "bare warm"), asyncio.run(bare()), strict=True):
                samples.setdefault(name, []).append(value)
            result = asyncio.run(sandbox(Path(tmp) / "pool", n))
            for name, value in zip(("sandbox cold", "sandbox warm"), result, strict=True):
                samples.setdefault(name, []).append(value)
            result = runs(client)
            for name, value in zip(("run cold", "run warm", "run without code"), result, strict=True):
                samples.setdefault(name, []).append(value)
    median = {name: statistics.median(values) for name, values in samples.items()}
    print(f"code_interpreter: medians of {REPEATS} (seconds)")
    for name, value in median.items():
        spread = f"{min(samples[name]):.3f} to {max(samples[name]):.3f}"
        print(f"  {name:<18} {value:8.3f}   ({spread})")
    from assistant_kit.tools.isolation import missing

    print(f"  sandbox: {'bubblewrap' if missing() is None else 'none (' + str(missing()) + ')'}")
    cold_extra = median["sandbox cold"] - median["bare cold"]
    print(f"  sandbox cold - bare cold      = {cold_extra:+.3f} s (budget 0.2)")
    warm_extra = (median["sandbox warm"] - median["bare warm"]) * 1000
    print(f"  sandbox warm - bare warm      = {warm_extra:+.1f} ms (budget 5)")
    print(f"  sandbox cold / bare cold      = {median['sandbox cold'] / median['bare cold']:.2f}x")
    print(f"  sandbox warm / bare warm      = {median['sandbox warm'] / median['bare warm']:.2f}x")
    print(f"  run warm / run without code   = {median['run warm'] / median['run without code']:.2f}x")
    start = median["run cold"] - median["run warm"]
    print(f"  run cold - run warm           = {start:.3f} s (the kernel start)")


if __name__ == "__main__":
    run_main(main, __file__)
