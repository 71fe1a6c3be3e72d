"""Peak memory of a proxy process while it takes concurrent uploads (and serves downloads).

Shared by ``tests/server/test_upload_memory.py`` (a bound that fails the build) and
``benchmarks/upload_memory.py`` (the numbers at the issue's full size). Why a real subprocess
and the kernel's own counters: the cost under test is the whole server's (uvicorn's body
buffering, multipart parsing, the store's copies), and a Python-level tracer would miss the
C allocations (SQLite, the socket buffers) that made the 1.7 GB peak.

How peak RSS is read: on Linux, ``/proc/PID/clear_refs`` ← ``5`` resets the process's
high-water mark, so ``VmHWM`` afterwards is the exact peak of the measured phase alone (not of
the imports at startup). Where that is not available a 5 ms ``psutil`` sampler stands in (it
can miss a spike shorter than its period). Both are reported; the larger is the peak.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx2
import psutil

MB = 1024 * 1024


@dataclass
class Phase:
    """RSS figures of one phase, in bytes: before it, its peak, and after it."""

    name: str
    baseline: int
    peak: int
    after: int
    seconds: float

    @property
    def growth(self) -> int:
        return self.peak - self.baseline

    def line(self) -> str:
        return (
            f"{self.name}: baseline {self.baseline / MB:.0f} MB, peak {self.peak / MB:.0f} MB "
            f"(+{self.growth / MB:.0f} MB), after {self.after / MB:.0f} MB, {self.seconds:.1f} s"
        )


def _status(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def measure(pid: int, name: str, work: Callable[[], None]) -> Phase:
    """Run ``work`` (in this process) while watching process ``pid``'s resident memory."""
    process = psutil.Process(pid)
    time.sleep(0.2)  # let the previous phase's frees settle
    exact = _reset_peak(pid)
    baseline = process.memory_info().rss
    sampled = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal sampled
        while not done.is_set():
            sampled = max(sampled, process.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    try:
        work()
    finally:
        done.set()
        sampler.join()
    seconds = time.monotonic() - started
    peak = max(sampled, (_status(pid, "VmHWM") or 0) if exact else 0)
    return Phase(name, baseline, peak, process.memory_info().rss, seconds)


def make_payload(directory: Path, size: int) -> tuple[Path, str]:
    """A file of ``size`` random bytes (incompressible, so no layer can shrink it) and its sha256."""
    path = directory / f"upload-{size}.bin"
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            block = os.urandom(min(left, 4 * MB))
            digest.update(block)
            out.write(block)
            left -= len(block)
    return path, digest.hexdigest()


def upload_all(url: str, key: str, payload: Path, count: int, timeout: float = 300) -> list[dict]:
    """``count`` concurrent ``POST /v1/files`` of ``payload``, streamed from disk by the client
    (so this process's memory is not what limits the test); every answer must be 200."""

    def one(i: int) -> dict:
        with httpx2.Client(timeout=timeout) as http, payload.open("rb") as handle:
            response = http.post(
                f"{url}/v1/files",
                headers={"authorization": f"Bearer {key}"},
                files={"file": (f"blob{i}.bin", handle, "application/octet-stream")},
                data={"purpose": "assistants"},
            )
        if response.status_code != 200:
            raise AssertionError(f"upload {i}: HTTP {response.status_code}: {response.text[:300]}")
        return response.json()

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def download_all(url: str, key: str, file_ids: list[str], timeout: float = 300) -> list[str]:
    """Concurrent streamed downloads of ``file_ids``; the sha256 of each body."""

    def one(file_id: str) -> str:
        digest = hashlib.sha256()
        with (
            httpx2.Client(timeout=timeout) as http,
            http.stream(
                "GET", f"{url}/v1/files/{file_id}/content", headers={"authorization": f"Bearer {key}"}
            ) as response,
        ):
            if response.status_code != 200:
                raise AssertionError(f"download {file_id}: HTTP {response.status_code}")
            for block in response.iter_bytes(MB):
                digest.update(block)
        return digest.hexdigest()

    with ThreadPoolExecutor(len(file_ids)) as pool:
        return list(pool.map(one, file_ids))
