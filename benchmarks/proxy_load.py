"""Proxy under load: 200 concurrent streamed runs against ONE ``assistant-kit serve`` process.

The proxy is started as a real subprocess (``assistant-kit serve --config …`` on an ephemeral
loopback port, SQLite store in a temp dir, master key on, access log off) and stopped by PID
at the end. The model is the built-in ``test/echo`` (the subprocess knows only built-in
models): each thread holds one 500-word user message, so each run streams 500 text deltas,
produced as fast as the engine's loop can go. The whole load therefore measures software
cost only: engine loop, store, SSE encoding, uvicorn/h11 and the client's SDK parsing.

Client: ONE ``openai.AsyncOpenAI`` (``max_retries=0``, so a failure is counted, not hidden)
in this process; every consumer is a coroutine with its own Assistants thread (created
before the timed region, one 500-word user message each) that calls
``beta.threads.runs.create(thread_id, assistant_id=..., stream=True)`` and iterates every
event until the stream ends. All 200 start together (released by one ``asyncio.Event``).

A second batch of 200 runs does the same with a raw reader instead of the SDK
(``httpx2.AsyncClient.stream`` + ``aiter_raw``, events counted by their ``\n\n`` and
stamped with the arrival time of the chunk that completed them, the body parsed only after
the load): a client several times cheaper than the SDK, so that row shows the proxy's own
pace and the SDK row shows what an SDK client sees.

Reported per batch:

* errors: exceptions, streams that do not end in ``thread.run.completed``, streamed text
  that is not the 500 words, or a stored assistant message that is not (read back after the
  load). Target: 0.
* total wall (first request sent → last stream ended), events received and events/s,
  tokens/s (words streamed / wall; independent of merging).
* gap between consecutive events as seen by each client, pooled over all runs: p50 / p99 /
  max, and which event precedes the gaps of 100 ms or more; time to the first text delta
  (request sent → first ``thread.message.delta``: the run's setup) p50 / p99.
* CPU per event of the proxy process (psutil, all threads) and of this client process.

Note on event counts: the engine merges text deltas of one message that queue up while the
run's SSE writer is behind (``engine/events.py`` ``Subscription.events``). Here that does not
happen: each run's whole stream (~130 KB) fits in the loopback socket buffers, so the
proxy's writer never blocks and the backlog of a slow client sits in the kernel, not in the
subscription queue; every client receives all ~510 events. ``events/run`` shows it.

Baseline in the same run, same proxy and client: one streamed run alone (median of 3 after a
warm-up). The load is compared with it as ``concurrency gain = 200 x single wall / total
wall`` (how much more work per second the two processes get done with 200 streams than with
one), ``p99 gap load / single`` and ``1st delta load / single``.

``--profile`` (automatic on a MISS) runs the SDK load again with the proxy under cProfile
(its event-loop thread and its store worker thread, thread CPU time) and this client under
cProfile, and prints where each side's time goes.

Run from the repo root: ``.venv/bin/python benchmarks/proxy_load.py``. Always exits 0.
Environment: BENCH_RUNS (200), BENCH_WORDS (500).
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _proxy import ProxyProcess, _areas, _trim_pstats, by_package, pct  # noqa: E402

warnings.filterwarnings("ignore", category=DeprecationWarning)  # client.beta.* is "deprecated"

import httpx2  # noqa: E402
import openai  # noqa: E402

from tests.server.conftest import MASTER_KEY  # noqa: E402

N_RUNS = int(os.environ.get("BENCH_RUNS", "200"))
N_WORDS = int(os.environ.get("BENCH_WORDS", "500"))
MESSAGE = " ".join(f"w{i}" for i in range(N_WORDS))  # test/echo streams it back word by word
MODEL = "test/echo"
SINGLE_REPEATS = 3
TARGET_ERRORS = 0
SLOW_GAP = 0.1  # s: a gap this long is reported with the event before it


# -- the proxy subprocess ---------------------------------------------------------------------


# The proxy under cProfile, started and stopped by signals so that neither its imports nor the
# warm-up are in the profile: SIGUSR1 enables a profiler on the main thread (the event loop)
# and one per store worker thread (the store's ThreadPoolExecutor is swapped for one whose
# tasks run under a per-thread profiler while profiling is on); SIGUSR2 stops them and writes
# FILE.store (all store threads merged), then FILE (the loop). The profilers count thread CPU
# time (time.thread_time), not wall time: on this 2-core box a send() that wakes the client is
# often preempted by it, and wall time would charge that wait to the send.


# -- one streamed run -------------------------------------------------------------------------


class RunResult:
    def __init__(self, thread_id: str) -> None:
        self.thread_id = thread_id
        self.t_sent = 0.0
        self.times: list[float] = []  # perf_counter of each event received
        self.names: list[str] = []  # event name of each event received
        self.text: list[str] = []
        self.body = bytearray()  # raw reader: the SSE body, parsed after the load
        self.error: str | None = None

    @property
    def wall(self) -> float:
        return (self.times[-1] if self.times else self.t_sent) - self.t_sent

    @property
    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.times, self.times[1:], strict=False)]

    @property
    def first_delta(self) -> float | None:
        """Request sent → first text delta (the run's setup: store writes, history read)."""
        for t, name in zip(self.times, self.names, strict=False):
            if name == "thread.message.delta":
                return t - self.t_sent
        return None

    def check(self) -> None:
        last = self.names[-1] if self.names else "nothing"
        if self.error is None and last != "thread.run.completed":
            self.error = f"stream ended with {last}"
        if self.error is None and "".join(self.text) != MESSAGE:
            self.error = f"streamed text {len(''.join(self.text))} chars, expected {len(MESSAGE)}"


async def sdk_run(
    client: openai.AsyncOpenAI, thread_id: str, assistant_id: str, start: asyncio.Event | None = None
) -> RunResult:
    """``runs.create(stream=True)`` through the official SDK, every event parsed by it."""
    result = RunResult(thread_id)
    if start is not None:
        await start.wait()
    clock = time.perf_counter
    times, text, names = result.times, result.text, result.names
    result.t_sent = clock()
    try:
        stream = await client.beta.threads.runs.create(thread_id, assistant_id=assistant_id, stream=True)
        async for event in stream:
            times.append(clock())
            names.append(event.event)
            if event.event == "thread.message.delta":
                for part in event.data.delta.content or []:
                    if part.type == "text" and part.text and part.text.value:
                        text.append(part.text.value)
    except Exception as exc:  # counted, reported
        result.error = f"{type(exc).__name__}: {exc}"[:200]
    return result


async def raw_run(
    http: httpx2.AsyncClient, thread_id: str, assistant_id: str, start: asyncio.Event | None = None
) -> RunResult:
    """The same request read as raw bytes (no SDK, no SSE parsing while streaming): a client
    much cheaper than the SDK, so what it sees is the proxy's own pace. Each event is stamped
    with the arrival time of the chunk that completed it; the body is parsed afterwards."""
    result = RunResult(thread_id)
    if start is not None:
        await start.wait()
    clock = time.perf_counter
    times, body = result.times, result.body
    result.t_sent = clock()
    try:
        async with http.stream(
            "POST", f"/v1/threads/{thread_id}/runs", json={"assistant_id": assistant_id, "stream": True}
        ) as response:
            if response.status_code != 200:
                await response.aread()
                raise RuntimeError(f"HTTP {response.status_code}: {response.text[:120]}")
            async for chunk in response.aiter_raw():
                t = clock()
                ends = (body[-1:] + chunk).count(b"\n\n")  # a separator may straddle two chunks
                body += chunk
                times.extend([t] * ends)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"[:200]
    return result


def parse_raw(result: RunResult) -> None:
    """Event names and delta texts of a raw body (after the timed region)."""
    for block in bytes(result.body).split(b"\n\n"):
        if not block:
            continue
        fields = dict(line.split(b": ", 1) for line in block.split(b"\n") if b": " in line)
        name = fields.get(b"event", b"").decode()
        if name == "done":  # event: done / data: [DONE]: the SDK does not yield it either
            continue
        result.names.append(name)
        if name == "thread.message.delta":
            for part in json.loads(fields[b"data"])["delta"].get("content") or []:
                if part.get("type") == "text":
                    result.text.append(part["text"]["value"])
    result.times = result.times[: len(result.names)]  # the [DONE] event's stamp


async def new_thread(client: openai.AsyncOpenAI) -> str:
    thread = await client.beta.threads.create(messages=[{"role": "user", "content": MESSAGE}])
    return thread.id


async def gather_limited(coros: list[Any], limit: int = 32) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def one(coro: Any) -> Any:
        async with sem:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros))


async def check_stored(client: openai.AsyncOpenAI, result: RunResult) -> None:
    """The run's assistant message, read back: it must hold the 500 words too."""
    if result.error is not None:
        return
    try:
        page = await client.beta.threads.messages.list(result.thread_id, limit=1)
        message = page.data[0]
        if message.role != "assistant" or message.content[0].text.value != MESSAGE:
            result.error = "stored assistant message differs"
    except Exception as exc:
        result.error = f"read-back {type(exc).__name__}: {exc}"[:200]


# -- the measurement ----------------------------------------------------------------------------


class Load:
    """One timed batch: results, wall, and CPU of both processes during it."""

    def __init__(self, results: list[RunResult], wall: float, proxy_cpu: float, client_cpu: float):
        self.results, self.wall, self.proxy_cpu, self.client_cpu = results, wall, proxy_cpu, client_cpu


async def load(
    proxy: ProxyProcess,
    client: openai.AsyncOpenAI,
    http: httpx2.AsyncClient,
    assistant_id: str,
    n_runs: int,
    raw: bool,
    profile: cProfile.Profile | None = None,
) -> Load:
    threads = await gather_limited([new_thread(client) for _ in range(n_runs)])  # not timed
    start = asyncio.Event()
    if raw:
        tasks = [asyncio.create_task(raw_run(http, t, assistant_id, start)) for t in threads]
    else:
        tasks = [asyncio.create_task(sdk_run(client, t, assistant_id, start)) for t in threads]
    await asyncio.sleep(0.2)  # every consumer is parked on the start event
    if profile is not None:
        proxy.profile_start()
    p0, c0 = proxy.cpu(), time.process_time()
    if profile is not None:
        profile.enable()
    t0 = time.perf_counter()
    start.set()
    results: list[RunResult] = await asyncio.gather(*tasks)
    t1 = time.perf_counter()
    if profile is not None:
        profile.disable()
    p1, c1 = proxy.cpu(), time.process_time()
    if profile is not None:
        proxy.written = proxy.profile_stop()
    for r in results:
        if raw:
            parse_raw(r)
        r.check()
    await gather_limited([check_stored(client, r) for r in results])
    return Load(results, t1 - t0, p1 - p0, c1 - c0)


async def measure(
    proxy: ProxyProcess, n_runs: int, profile: cProfile.Profile | None = None
) -> dict[str, Any]:
    client = openai.AsyncOpenAI(base_url=proxy.v1, api_key=MASTER_KEY, max_retries=0, timeout=300)
    http = httpx2.AsyncClient(
        base_url=proxy.url,
        headers={"authorization": f"Bearer {MASTER_KEY}", "openai-beta": "assistants=v2"},
        timeout=300,
        limits=httpx2.Limits(max_connections=1000, max_keepalive_connections=n_runs),
    )
    out: dict[str, Any] = {}
    try:
        assistant = await client.beta.assistants.create(model=MODEL, name="load")
        # warm-up: connections, lazy imports, first-run paths in the proxy
        await sdk_run(client, await new_thread(client), assistant.id)

        singles: list[Load] = []
        for _ in range(SINGLE_REPEATS):
            singles.append(await load(proxy, client, http, assistant.id, 1, raw=False))
        out["single"] = singles
        out["sdk"] = await load(proxy, client, http, assistant.id, n_runs, raw=False, profile=profile)
        if profile is None:
            out["raw"] = await load(proxy, client, http, assistant.id, n_runs, raw=True)
    finally:
        await client.close()
        await http.aclose()
    return out


def _row(label: str, runs: list[Load]) -> dict[str, Any]:
    """Table values for one batch (or the median of several single-run batches)."""
    rows = []
    for batch in runs:
        results = batch.results
        events = sum(len(r.times) for r in results)
        gaps = [g for r in results for g in r.gaps]
        firsts = [f for r in results if (f := r.first_delta) is not None]
        rows.append(
            {
                "runs": len(results),
                "errors": [r.error for r in results if r.error],
                "wall": batch.wall,
                "events": events,
                "ev_run": events / len(results),
                "events_s": events / batch.wall,
                "tokens_s": len(results) * N_WORDS / batch.wall,
                "p50": pct(gaps, 50),
                "p99": pct(gaps, 99),
                "max": max(gaps, default=0.0),
                "first50": pct(firsts, 50),
                "first99": pct(firsts, 99),
                "proxy_us": batch.proxy_cpu / max(events, 1) * 1e6,
                "client_us": batch.client_cpu / max(events, 1) * 1e6,
                "proxy_core": batch.proxy_cpu / batch.wall,
                "client_core": batch.client_cpu / batch.wall,
                "per_run": sorted(r.wall for r in results),
                "slow_after": _slow_after(results),
            }
        )
    if len(rows) == 1:
        row = rows[0]
    else:  # median of each numeric column over the repeats
        row = {
            k: statistics.median(r[k] for r in rows)
            for k in rows[0]
            if k not in ("errors", "per_run", "slow_after")
        }
        row["errors"] = [e for r in rows for e in r["errors"]]
        row["per_run"] = sorted(w for r in rows for w in r["per_run"])
        row["slow_after"] = rows[0]["slow_after"]
    row["label"] = label
    return row


def _slow_after(results: list[RunResult]) -> list[tuple[str, int]]:
    """Which event precedes the long gaps (>= SLOW_GAP), most frequent first: shows whether
    clients wait on the run's setup (store writes) or in the middle of the deltas."""
    counts: dict[str, int] = {}
    for r in results:
        for i, gap in enumerate(r.gaps):
            if gap >= SLOW_GAP:
                name = r.names[i] if i < len(r.names) else "?"
                counts[name] = counts.get(name, 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])


def _print_rows(rows: list[dict[str, Any]]) -> None:
    print()
    print(
        f"{'':<44}{'runs':>5}{'errors':>7}{'wall s':>8}{'events':>8}{'ev/run':>7}{'events/s':>9}"
        f"{'tokens/s':>9}"
        f"{'gap p50 ms':>11}{'gap p99 ms':>11}{'gap max ms':>11}{'1st delta p50/p99 ms':>21}"
        f"{'CPU us/event proxy|client':>27}"
    )
    for r in rows:
        first = f"{r['first50'] * 1e3:.0f}/{r['first99'] * 1e3:.0f}"
        cpu = f"{r['proxy_us']:.0f} | {r['client_us']:.0f}"
        print(
            f"{r['label']:<44}{r['runs']:>5.0f}{len(r['errors']):>7}{r['wall']:>8.3f}{r['events']:>8.0f}"
            f"{r['ev_run']:>7.0f}{r['events_s']:>9.0f}{r['tokens_s']:>9.0f}"
            f"{r['p50'] * 1e3:>11.3f}{r['p99'] * 1e3:>11.3f}{r['max'] * 1e3:>11.1f}{first:>21}{cpu:>27}"
        )


def report(data: dict[str, Any], n_runs: int) -> bool:
    single = _row("baseline: 1 SDK run alone (median of 3)", data["single"])
    sdk = _row(f"load: {n_runs} concurrent, AsyncOpenAI SDK", [data["sdk"]])
    rows = [single, sdk]
    if "raw" in data:
        rows.append(_row(f"load: {n_runs} concurrent, raw bytes reader", [data["raw"]]))
    _print_rows(rows)
    print()
    for r in rows[1:]:
        after = ", ".join(f"{name} x{n}" for name, n in r["slow_after"][:3]) or "none"
        print(
            f"{r['label']}: per-run wall p50 {pct(r['per_run'], 50):.2f} s, "
            f"p99 {pct(r['per_run'], 99):.2f} s; "
            f"CPU busy: proxy {r['proxy_core']:.0%} of a core, client {r['client_core']:.0%}; "
            f"gaps >= {SLOW_GAP * 1e3:.0f} ms come after: {after}"
        )
    print(
        f"ratios vs baseline (SDK load): concurrency gain {n_runs * single['wall'] / sdk['wall']:.2f}x "
        f"(= {n_runs} x single wall / total wall); p99 gap {sdk['p99'] / single['p99']:.1f}x; "
        f"1st delta p50 {sdk['first50'] / single['first50']:.0f}x; events per run "
        f"{sdk['ev_run'] / single['ev_run']:.0%} of the single run's (the rest merged by the proxy)"
    )
    errors = single["errors"] + sdk["errors"] + (rows[2]["errors"] if len(rows) > 2 else [])
    if errors:
        counts: dict[str, int] = {}
        for e in errors:
            counts[e] = counts.get(e, 0) + 1
        for e, n in list(counts.items())[:5]:
            print(f"  error x{n}: {e}")
    ok = len(errors) <= TARGET_ERRORS
    print()
    print(
        f"target: {TARGET_ERRORS} errors over {n_runs} concurrent streamed runs "
        "(wall, gaps, events/s: reported)"
    )
    print(
        f"RESULT: {'PASS' if ok else 'MISS'}  (errors {len(errors)}; SDK load: wall {sdk['wall']:.2f} s for "
        f"{n_runs} runs vs {single['wall'] * 1e3:.0f} ms for one alone, gap p50 {sdk['p50'] * 1e3:.2f} ms / "
        f"p99 {sdk['p99'] * 1e3:.1f} ms vs {single['p99'] * 1e3:.1f} ms alone, "
        f"{sdk['events_s']:.0f} events/s)"
    )
    return ok


def profile_load(directory: Path, n_runs: int, top: int = 20) -> None:
    """The SDK load again with the proxy's event loop under cProfile (enabled at the start of
    the load) and this process's client under cProfile; prints where each side's time goes."""
    config = {"general_settings": {"master_key": MASTER_KEY, "database_url": str(directory / "profiled.db")}}
    proxy = ProxyProcess(config, directory, "profiled", profile_to=directory / "proxy.prof")
    client_prof = cProfile.Profile(time.thread_time)
    try:
        data = asyncio.run(measure(proxy, n_runs, client_prof))
    finally:
        proxy.stop()
    row = _row("", [data["sdk"]])
    print()
    print("== profile: the SDK load again, proxy loop and client under cProfile (times inflated) ==")
    print(f"   wall {row['wall']:.2f} s, errors {len(row['errors'])}, events {row['events']:.0f}")
    sources: list[tuple[str, Any]] = [("client (this process, during the load)", client_prof)]
    if proxy.written is not None:
        print(_areas(pstats.Stats(str(proxy.written))))
        print("proxy event loop thread:")
        print(by_package(str(proxy.written)))
        sources.insert(0, ("proxy main thread (event loop)", str(proxy.written)))
        store_file = Path(str(proxy.written) + ".store")
        if store_file.exists():
            print("proxy store worker thread:")
            print(by_package(str(store_file)))
            sources.insert(1, ("proxy store worker thread", str(store_file)))
    else:
        print("   no proxy profile written")
    for label, source in sources:
        for sort, by in (("tottime", "own time"), ("cumulative", "cumulative time")):
            buf = io.StringIO()
            pstats.Stats(source, stream=buf).sort_stats(sort).print_stats(top)
            print(f"\n-- {label}: top by {by} --")
            print(_trim_pstats(buf.getvalue()))


def main() -> int:
    tmp = tempfile.TemporaryDirectory(prefix="ak-bench-load-")
    directory = Path(tmp.name)
    config = {"general_settings": {"master_key": MASTER_KEY, "database_url": str(directory / "load.db")}}
    proxy = ProxyProcess(config, directory, "proxy")
    print(f"proxy_load: {N_RUNS} concurrent runs.create(stream=True), model {MODEL}, {N_WORDS}-word message")
    print(f"proxy pid {proxy.pid} at {proxy.url}; SQLite store in {directory}; one AsyncOpenAI client")
    try:
        data = asyncio.run(measure(proxy, N_RUNS))
    finally:
        proxy.stop()
    ok = report(data, N_RUNS)
    if "--profile" in sys.argv or not ok:
        profile_load(directory, N_RUNS)
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    from _common import run_main

    run_main(main, __file__)
