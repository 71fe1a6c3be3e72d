"""Shared by the proxy benchmarks: the proxy as a subprocess (optionally under cProfile, with the
event loop and the store worker threads profiled by CPU time), and profile summaries."""

from __future__ import annotations

import os
import pstats
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import yaml

from tests.server.conftest import clean_env, command, wait_listening

ROOT = Path(__file__).resolve().parent.parent


PROFILED_PROXY = r"""
import cProfile, os, pstats, signal, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
out = sys.argv.pop(1)
import assistant_kit.store.sql as sql
import assistant_kit.server.cli as cli
loop_profiler = cProfile.Profile(time.thread_time)
store_profilers = {}
active = False

class ProfiledExecutor(ThreadPoolExecutor):
    def submit(self, fn, /, *args, **kwargs):
        def run():
            if not active:
                return fn(*args, **kwargs)
            ident = threading.get_ident()
            if ident not in store_profilers:
                store_profilers[ident] = cProfile.Profile(time.thread_time)
            store_profilers[ident].enable()
            try:
                return fn(*args, **kwargs)
            finally:
                store_profilers[ident].disable()
        return super().submit(run)

sql.ThreadPoolExecutor = ProfiledExecutor

def start(signum, frame):
    global active
    active = True
    loop_profiler.enable()

def stop(signum, frame):
    global active
    active = False
    loop_profiler.disable()
    time.sleep(0.3)  # store tasks in flight finish (and disable their profilers)
    profilers = list(store_profilers.values())
    if profilers:
        merged = pstats.Stats(profilers[0])
        for other in profilers[1:]:
            merged.add(other)
        merged.dump_stats(out + ".store")
    loop_profiler.dump_stats(out + ".tmp")
    os.replace(out + ".tmp", out)

signal.signal(signal.SIGUSR1, start)
signal.signal(signal.SIGUSR2, stop)
sys.exit(cli.main(sys.argv[1:]))
"""


class ProxyProcess:
    """``assistant-kit serve`` on 127.0.0.1:0 with ``config``; ``profile_to``: run it under
    cProfile (``python -m cProfile -o FILE -m assistant_kit.server.cli``)."""

    def __init__(self, config: dict[str, Any], directory: Path, name: str, profile_to: Path | None = None):
        self.config_path = directory / f"{name}.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = directory / f"{name}.log"
        self.profile_to = profile_to
        self.written: Path | None = None  # the profile's stats file, once written
        if profile_to is None:
            argv = [*command(), "serve"]
        else:
            argv = [sys.executable, "-c", PROFILED_PROXY, str(profile_to), "serve"]
        argv += ["--config", str(self.config_path), "--host", "127.0.0.1", "--port", "0"]
        argv += ["--graceful-timeout", "3", "--no-access-log", "--log-level", "warning"]
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=clean_env(),
                cwd=ROOT,
            )
        self.pid = self.process.pid
        self.url = wait_listening(self.process, self.log_path, timeout=60)
        self.v1 = f"{self.url}/v1"
        self.ps = psutil.Process(self.pid)

    def cpu(self) -> float:
        times = self.ps.cpu_times()
        return times.user + times.system

    db_name: str | None = None  # PostgreSQL: the database the proxy uses

    def db_backends(self) -> list[psutil.Process]:
        """The PostgreSQL backend processes serving this proxy's database (empty on SQLite or when
        the server is not local): found by their process title, ``postgres: USER DB …``."""
        if self.db_name is None:
            return []
        found = []
        for process in psutil.process_iter(["cmdline"]):
            title = " ".join(process.info["cmdline"] or [])
            if title.startswith("postgres: ") and f" {self.db_name} " in title:
                found.append(process)
        return found

    def profile_start(self) -> None:
        os.kill(self.pid, signal.SIGUSR1)
        time.sleep(0.2)

    def profile_stop(self) -> Path | None:
        """Stop profiling; the stats file, or None when it did not appear."""
        assert self.profile_to is not None
        os.kill(self.pid, signal.SIGUSR2)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.profile_to.exists():
                return self.profile_to
            time.sleep(0.1)
        return None

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.process.wait(5)


_EPOLL = "<method 'poll' of 'select.epoll' objects>"


def _areas(stats: pstats.Stats) -> str:
    """Shares of the proxy loop's busy time (idle epoll excluded), by area. Areas can nest
    (the run executor's turn contains the upstream read), so shares do not add up to 100 %."""
    table = stats.stats  # type: ignore[attr-defined]
    busy = sum(tt for (_f, _l, name), (_cc, _nc, tt, _ct, _c) in table.items() if name != _EPOLL)

    def cum(path_end: str, *funcs: str) -> float:
        return sum(
            ct
            for (f, _l, name), (_cc, _nc, _tt, ct, _c) in table.items()
            if f.endswith(path_end) and name in funcs
        )

    def own(path_part: str, *funcs: str) -> float:
        return sum(
            tt
            for (f, _l, name), (_cc, _nc, tt, _ct, _c) in table.items()
            if path_part in f and (not funcs or name in funcs)
        )

    areas = {
        "upstream: read + SSE-decode chunks (openai AsyncStream.__stream__ > httpx2 > httpcore2 > h11)": cum(
            "openai/_streaming.py", "__stream__"
        ),
        "run executor turn (engine/steps.py turn, incl. the model stream it awaits)": cum(
            "assistant_kit/engine/steps.py", "turn"
        ),
        "downstream: events out (starlette stream_response: engine/app.py _stream, sse(), uvicorn h11)": cum(
            "starlette/responses.py", "stream_response"
        ),
        "  of which socket.send syscalls": own("", "<method 'send' of '_socket.socket' objects>"),
        "  of which json.dumps of event payloads (engine/events.py sse)": cum("json/__init__.py", "dumps"),
        "request handling before the stream (auth, routing, engine.create_run)": cum(
            "assistant_kit/engine/app.py", "call"
        ),
        "asyncio machinery (own time in asyncio/*: _run_once, queues, handles)": own("/asyncio/"),
        "all assistant_kit code, own time": own("assistant_kit/"),
    }
    lines = [f"proxy loop busy CPU (profiled, epoll idle excluded): {busy:.2f} s, of which"]
    for label, seconds in areas.items():
        lines.append(f"  {seconds / busy if busy else 0:5.0%}  {label}")
    return "\n".join(lines)


def _trim_pstats(text: str) -> str:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().startswith("ncalls")), 0)
    out = []
    for line in lines[start:]:
        if line.strip():
            out.append(line.replace(str(ROOT) + "/", "").replace(sys.prefix + "/", "")[:160])
    return "\n".join(out)


def by_package(source: Any, top: int = 12) -> str:
    """Own CPU time of a profile grouped by where the code lives: a site-packages package, a
    stdlib module, an assistant_kit file, or a C function (socket send, sqlite3 execute …)."""
    stats = pstats.Stats(source)
    groups: dict[str, float] = {}
    for (path, _line, name), (_cc, _nc, own, _cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if name == "<method 'poll' of 'select.epoll' objects>":
            continue  # idle
        if path == "~":
            key = "C: " + name.strip("<>").replace("method ", "").replace("built-in ", "")
        elif "site-packages/" in path:
            key = path.split("site-packages/", 1)[1].split("/", 1)[0]
        elif "assistant_kit/" in path:
            key = "assistant_kit/" + path.split("assistant_kit/", 1)[1]
        elif "/lib/python3" in path:
            rest = path.split("/lib/python3", 1)[1].split("/", 2)
            key = "stdlib " + (rest[1].removesuffix(".py") if len(rest) > 1 else path)
        else:
            key = path
        groups[key] = groups.get(key, 0.0) + own
    total = sum(groups.values()) or 1.0
    ranked = sorted(groups.items(), key=lambda kv: -kv[1])[:top]
    lines = [f"  own CPU {total:.2f} s (profiled), by package/module:"]
    lines += [f"    {seconds / total:5.1%}  {key[:100]}" for key, seconds in ranked]
    return "\n".join(lines)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))]
