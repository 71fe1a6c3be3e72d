"""Streaming overhead: a 2,000-token run through the local engine vs the same tokens read
straight from the upstream with ``chat.completions.create(stream=True)``, in this run.

Both sides are consumed by the official SDK and read from the same fake upstream
(``tests/fake_upstream.py``: a real OpenAI-compatible server on 127.0.0.1), scripted to
stream 2,000 one-token chunks with no delay, so the measured time is pure software cost:

* baseline: ``openai.OpenAI(base_url=fake.url).chat.completions.create(stream=True)``,
  iterating every chunk;
* engine (helper): ``local_client(db).beta.threads.runs.stream(...)`` consuming every event
  until the stream ends, then ``get_final_messages()``;
* engine (raw): ``runs.create(..., stream=True)`` iterating every event until ``[DONE]``.

Each engine run uses a fresh thread with one user message (created outside the timed
region), so history does not grow between samples; the assistant's message text is checked
against the 2,000 tokens. After a warm-up, the three variants are run in rotating order
``REPEATS`` times; medians are compared. Target: engine/baseline <= 1.15x wall.

Besides wall time it reports process CPU per run (all threads) and, for engine runs, CPU
by thread (client / engine loop / store worker / rest = fake upstream), read from the
threads' CPU clocks (no profiler overhead). ``--profile`` (automatic on a MISS) then runs
a few engine runs under cProfile in the engine-loop, store and client threads and prints
where the time goes. It also replays the recorded response bodies through the SDK alone
(``httpx2.MockTransport``) to show the client-side floor no engine change can remove.
``--nodelay`` sets TCP_NODELAY on the fake upstream's sockets, as real servers do.

Run from the repo root: ``.venv/bin/python benchmarks/stream_overhead.py``. Always exits 0.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

warnings.filterwarnings("ignore", category=DeprecationWarning)  # client.beta.* is "deprecated"

import openai  # noqa: E402

from assistant_kit import local_client  # noqa: E402
from tests.fake_upstream import get_fake_upstream  # noqa: E402

N_TOKENS = int(os.environ.get("BENCH_TOKENS", "2000"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "7"))
TARGET = 1.15
TOKENS = [f"t{i} " for i in range(N_TOKENS)]
EXPECTED = "".join(TOKENS)
PROMPT = "Say 2,000 tokens."


class Bench:
    def __init__(self, db: Path):
        self.fake = get_fake_upstream()
        self.fake.reset()
        self.direct = openai.OpenAI(base_url=self.fake.url, api_key="sk-x")
        self.db = db
        self.local = local_client(db, api_key="sk-x", api_base=self.fake.url)
        self.assistant = self.local.beta.assistants.create(model="openai/m", name="bench")

    # -- the three variants; each returns (wall s, cpu s, time to first token s, extra) --------

    def baseline(self) -> tuple[float, float, float, Any]:
        self.fake.reply_text(TOKENS)
        parts: list[str] = []
        first = None
        c0, t0 = time.process_time(), time.perf_counter()
        stream = self.direct.chat.completions.create(
            model="m", messages=[{"role": "user", "content": PROMPT}], stream=True
        )
        for chunk in stream:
            for choice in chunk.choices:
                if choice.delta.content:
                    if first is None:
                        first = time.perf_counter()
                    parts.append(choice.delta.content)
        t1, c1 = time.perf_counter(), time.process_time()
        text = "".join(parts)
        if text != EXPECTED:
            raise AssertionError(f"baseline got {len(text)} chars, expected {len(EXPECTED)}")
        return t1 - t0, c1 - c0, (first or t1) - t0, None

    def _thread(self) -> str:
        return self.local.beta.threads.create(messages=[{"role": "user", "content": PROMPT}]).id

    def _check(self, thread_id: str, text: str | None) -> None:
        stored = self.local.beta.threads.messages.list(thread_id, limit=1).data[0]
        stored_text = stored.content[0].text.value
        for label, value in (("streamed", text), ("stored", stored_text)):
            if value is not None and value != EXPECTED:
                raise AssertionError(f"engine {label} text: {len(value)} chars, expected {len(EXPECTED)}")

    def engine_helper(self) -> tuple[float, float, float, Any]:
        thread_id = self._thread()
        self.fake.reply_text(TOKENS)
        first = None
        events = 0
        cpu0 = thread_cpu()
        c0, t0 = time.process_time(), time.perf_counter()
        with self.local.beta.threads.runs.stream(thread_id=thread_id, assistant_id=self.assistant.id) as s:
            for event in s:
                events += 1
                if first is None and event.event == "thread.message.delta":
                    first = time.perf_counter()
            final = s.get_final_messages()
        t1, c1 = time.perf_counter(), time.process_time()
        cpu1 = thread_cpu()
        self._check(thread_id, final[-1].content[0].text.value)
        return t1 - t0, c1 - c0, (first or t1) - t0, (events, diff_cpu(cpu0, cpu1))

    def engine_raw(self) -> tuple[float, float, float, Any]:
        thread_id = self._thread()
        self.fake.reply_text(TOKENS)
        first = None
        parts: list[str] = []
        events = 0
        c0, t0 = time.process_time(), time.perf_counter()
        stream = self.local.beta.threads.runs.create(thread_id, assistant_id=self.assistant.id, stream=True)
        for event in stream:
            events += 1
            if event.event == "thread.message.delta":
                if first is None:
                    first = time.perf_counter()
                for part in event.data.delta.content or []:
                    if part.type == "text" and part.text and part.text.value:
                        parts.append(part.text.value)
        t1, c1 = time.perf_counter(), time.process_time()
        self._check(thread_id, "".join(parts))
        return t1 - t0, c1 - c0, (first or t1) - t0, events


# -- SDK floor: the client-side parsing alone, replaying recorded bytes ------------------------


def sdk_floor(bench: Bench, repeats: int) -> dict[str, float]:
    """Median seconds for the official SDK to consume recorded response bodies through
    ``httpx2.MockTransport`` (no engine, no upstream, no sockets): the cost no engine
    optimisation can remove from the client thread."""
    import httpx2

    bench.fake.reply_text(TOKENS)
    raw = bench.direct.chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": PROMPT}], stream=True
    )
    upstream_body = raw.http_response.read()
    thread_id = bench._thread()
    bench.fake.reply_text(TOKENS)
    raw = bench.local.beta.threads.runs.with_raw_response.create(
        thread_id, assistant_id=bench.assistant.id, stream=True
    )
    engine_body = raw.http_response.read()

    class Replay(httpx2.SyncByteStream):
        def __init__(self, body: bytes):
            self.events = [e + b"\n\n" for e in body.split(b"\n\n") if e]

        def __iter__(self) -> Any:
            return iter(self.events)  # one event per chunk, as when streamed live

    def client(body: bytes) -> openai.OpenAI:
        def handler(request: Any) -> Any:
            return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=Replay(body))

        return openai.OpenAI(
            base_url="http://replay.local/v1",
            api_key="sk-x",
            http_client=openai.DefaultHttpxClient(transport=httpx2.MockTransport(handler)),
        )

    up, eng = client(upstream_body), client(engine_body)

    def chat() -> None:
        for _ in up.chat.completions.create(model="m", messages=[], stream=True):
            pass

    def raw_events() -> None:
        for _ in eng.beta.threads.runs.create("thread_x", assistant_id="asst_x", stream=True):
            pass

    def helper() -> None:
        with eng.beta.threads.runs.stream(thread_id="thread_x", assistant_id="asst_x") as s:
            for _ in s:
                pass

    fns = {"chat": chat, "raw": raw_events, "helper": helper}
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()
    for i in range(repeats):
        for name in list(fns)[i % 3 :] + list(fns)[: i % 3]:
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


# -- per-thread CPU clocks ------------------------------------------------------------------


def _role(thread: threading.Thread) -> str:
    if thread is threading.main_thread():
        return "client"
    if thread.name == "assistant_kit-engine":
        return "engine loop"
    if thread.name.startswith("assistant_kit-store"):
        return "store worker"
    return "rest"


def thread_cpu() -> dict[str, float]:
    """CPU seconds so far, by role, for every live thread of this process."""
    out: dict[str, float] = {}
    for thread in threading.enumerate():
        if thread.ident is None:
            continue
        try:
            seconds = time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
        except (OSError, AttributeError):
            continue
        key = (_role(thread), thread.ident)
        out[f"{key[0]}#{key[1]}"] = seconds
    return out


def diff_cpu(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    roles: dict[str, float] = {}
    for key, value in after.items():
        role = key.split("#")[0]
        roles[role] = roles.get(role, 0.0) + value - before.get(key, 0.0)
    # Threads that ended during the run (fake-upstream handler threads) are lost; the
    # process total minus the known roles is reported as "rest" by the caller.
    return roles


# -- profiling ------------------------------------------------------------------------------


def profile_engine(bench: Bench, runs: int = 3, top: int = 14) -> None:
    from assistant_kit.runtime import app_for, engine_loop

    engine = app_for(bench.db).state.engine
    loop = engine_loop()
    profs = {
        "engine loop": cProfile.Profile(),
        "store worker": cProfile.Profile(),
        "client": cProfile.Profile(),
    }

    async def on_loop(fn: Any) -> None:
        fn()

    asyncio.run_coroutine_threadsafe(on_loop(profs["engine loop"].enable), loop).result()
    engine.sync_store.executor.submit(profs["store worker"].enable).result()
    profs["client"].enable()
    for _ in range(runs):
        bench.engine_helper()
    profs["client"].disable()
    engine.sync_store.executor.submit(profs["store worker"].disable).result()
    asyncio.run_coroutine_threadsafe(on_loop(profs["engine loop"].disable), loop).result()

    print()
    print(f"== profile: {runs} engine (helper) runs under cProfile (times inflated by the profiler) ==")
    print(_engine_loop_summary(profs["engine loop"]))
    for name, prof in profs.items():
        stats = pstats.Stats(prof)
        total = stats.total_tt  # type: ignore[attr-defined]
        print(f"\n-- {name} thread: {total:.3f}s profiled CPU; top by own time --")
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
        print(_trim_pstats(buf.getvalue()))
        kit = io.StringIO()
        pstats.Stats(prof, stream=kit).sort_stats("cumulative").print_stats("assistant_kit", 10)
        body = _trim_pstats(kit.getvalue())
        if body.strip():
            print(f"-- {name} thread: assistant_kit functions by cumulative time --")
            print(body)


def _engine_loop_summary(prof: cProfile.Profile) -> str:
    """Shares of the engine loop's busy time (idle epoll excluded), by area."""
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    busy = sum(
        tt
        for (f, _l, name), (_cc, _nc, tt, _ct, _c) in stats.items()
        if name != "<method 'poll' of 'select.epoll' objects>"
    )

    def cum(path_end: str, func: str) -> float:
        return sum(
            ct
            for (f, _l, name), (_cc, _nc, _tt, ct, _c) in stats.items()
            if f.endswith(path_end) and name == func
        )

    areas = {
        "SDK builds ChatCompletionChunk models (openai _process_response_data/construct_type)": cum(
            "openai/_base_client.py", "_process_response_data"
        ),
        "reading + SSE-decoding the upstream body (openai _iter_events, httpx2, h11)": cum(
            "openai/_streaming.py", "_iter_events"
        ),
        "encoding + sending run events (engine/app.py _stream, events.sse, starlette)": cum(
            "starlette/responses.py", "stream_response"
        ),
        "executor bookkeeping (steps.py turn own code, _delta_events, hub.publish)": sum(
            tt
            for (f, _l, name), (_cc, _nc, tt, _ct, _c) in stats.items()
            if "assistant_kit" in f and name in ("turn", "_delta_events", "publish", "stream")
        ),
    }
    lines = [f"engine loop busy CPU (profiled): {busy:.2f}s, of which"]
    for label, seconds in areas.items():
        lines.append(f"  {seconds / busy:5.0%}  {label}")
    return "\n".join(lines)


def _trim_pstats(text: str) -> str:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().startswith("ncalls")), 0)
    out = []
    for line in lines[start:]:
        if not line.strip():
            continue
        out.append(line.replace(str(ROOT) + "/", "").replace(sys.prefix + "/", "")[:150])
    return "\n".join(out)


# -- main -----------------------------------------------------------------------------------


def main() -> int:
    profile_requested = "--profile" in sys.argv
    if "--nodelay" in sys.argv:
        # Real servers (uvicorn, nginx, OpenAI) set TCP_NODELAY; the stdlib fake does not, and
        # Nagle + delayed ACK then holds the first body chunk to the engine's async client.
        import tests.fake_upstream as fake_module

        fake_module._Handler.disable_nagle_algorithm = True
    tmp = tempfile.TemporaryDirectory(prefix="ak-bench-stream-")
    db = Path(tmp.name) / "bench.db"
    bench = Bench(db)
    variants = {
        "baseline (chat.completions)": bench.baseline,
        "engine runs.stream helper": bench.engine_helper,
        "engine runs.create(stream)": bench.engine_raw,
    }
    print(f"stream_overhead: {N_TOKENS} one-token chunks, {REPEATS} rotating repeats after warm-up")
    print(f"fake upstream {bench.fake.url}; engine store {db} (SQLite file)")
    for fn in variants.values():  # warm-up: connections, caches, lazy imports
        fn()
    samples: dict[str, list[tuple[float, float, float, Any]]] = {name: [] for name in variants}
    names = list(variants)
    for i in range(REPEATS):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            samples[name].append(variants[name]())

    def med(name: str, k: int) -> float:
        return statistics.median(s[k] for s in samples[name])

    base = med(names[0], 0)
    print()
    print(
        f"{'variant':<30}{'wall ms':>9}{'min..max':>14}{'CPU ms':>9}{'1st tok ms':>12}{'events':>8}"
        f"{'ratio':>8}"
    )
    for name in names:
        walls = [s[0] * 1000 for s in samples[name]]
        extra = samples[name][-1][3]
        events = extra[0] if isinstance(extra, tuple) else (extra if extra is not None else N_TOKENS)
        print(
            f"{name:<30}{med(name, 0) * 1000:>9.1f}{f'{min(walls):.0f}..{max(walls):.0f}':>14}"
            f"{med(name, 1) * 1000:>9.1f}{med(name, 2) * 1000:>12.1f}{events:>8}"
            f"{med(name, 0) / base:>7.2f}x"
        )

    # CPU by thread for the helper runs (median per role).
    helper = [s for s in samples[names[1]]]
    roles = ["client", "engine loop", "store worker"]
    by_role = {r: statistics.median(s[3][1].get(r, 0.0) for s in helper) * 1000 for r in roles}
    total_cpu = med(names[1], 1) * 1000
    rest = max(0.0, total_cpu - sum(by_role.values()))
    print()
    print(
        "engine (helper) CPU by thread, median ms: "
        + ", ".join(f"{r} {by_role[r]:.0f}" for r in roles)
        + f", rest (fake upstream, SDK upstream I/O threads) {rest:.0f}; process total {total_cpu:.0f}"
    )
    print(
        f"per token: baseline {base / N_TOKENS * 1e6:.0f} us, engine helper "
        f"{med(names[1], 0) / N_TOKENS * 1e6:.0f} us, engine raw {med(names[2], 0) / N_TOKENS * 1e6:.0f} us"
    )

    floor = sdk_floor(bench, REPEATS)
    print()
    print("SDK-only floor (recorded bodies replayed through httpx2.MockTransport; no engine, no sockets):")
    print(
        f"  chat chunks {floor['chat'] * 1000:.1f} ms | engine events via runs.create(stream) "
        f"{floor['raw'] * 1000:.1f} ms ({floor['raw'] / floor['chat']:.2f}x) | via runs.stream helper "
        f"{floor['helper'] * 1000:.1f} ms ({floor['helper'] / floor['chat']:.2f}x)"
    )
    print("  -> client-side parsing alone, before any engine work, is that multiple of the baseline's")

    ratio_helper = med(names[1], 0) / base
    ratio_raw = med(names[2], 0) / base
    ok = ratio_helper <= TARGET and ratio_raw <= TARGET
    print()
    print(f"target: engine/baseline <= {TARGET}x wall (both runs.stream helper and runs.create(stream=True))")
    cpu_base = med(names[0], 1)
    print(
        f"RESULT: {'PASS' if ok else 'MISS'}  (wall: helper {ratio_helper:.2f}x, raw {ratio_raw:.2f}x; "
        f"process CPU, steadier on a busy machine: helper {med(names[1], 1) / cpu_base:.2f}x, "
        f"raw {med(names[2], 1) / cpu_base:.2f}x)"
    )
    if profile_requested or not ok:
        profile_engine(bench)
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    from _common import run_main

    run_main(main, __file__)
