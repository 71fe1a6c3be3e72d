"""Proxy streaming overhead: a 2,000-token run through ``assistant-kit serve`` vs the same tokens
read straight from the upstream with ``chat.completions.create(stream=True)``, in this run.

Three processes, all on 127.0.0.1, so the comparison is what a deployment sees (the model
server is not in the client's process, and the proxy is not either):

* the fake upstream (``tests/fake_upstream.py``, a real OpenAI-compatible server) in a
  subprocess of its own. Its reply is chosen by the prompt: "stream N tokens, U us apart"
  makes it stream N one-token chunks ``t0 t1 …`` with U microseconds between chunks, so the
  direct call and the proxy's call to it get exactly the same stream;
* the proxy: ``assistant-kit serve --config …`` (ephemeral port, SQLite store in a temp dir,
  master key, access log off) whose config routes model ``m`` to the fake upstream
  (``model_list: [{model_name: m, litellm_params: {model: openai/m, api_base: FAKE, …}}]``);
* this process: the official SDK (``openai.OpenAI``), consuming every chunk / event.

Variants, each consuming the whole stream and checking the text (and, for the proxy, the
stored assistant message, outside the timed region):

* baseline: ``OpenAI(base_url=FAKE).chat.completions.create(model="m", stream=True)``;
* proxy raw: ``beta.threads.runs.create(thread_id, assistant_id, stream=True)``, every event;
* proxy helper: ``with beta.threads.runs.stream(...) as s: for event in s: ...`` then
  ``s.get_final_messages()``.

Each proxy run uses a fresh thread (created outside the timed region) holding the prompt.
Variants alternate in rotating order, ``REPEATS`` times after a warm-up; medians are
compared. Target: proxy/baseline <= 1.3x wall, for both raw and helper.

Why two paces. The engine merges the text deltas of one message that queue up while the
run's SSE writer is behind (``engine/events.py`` ``Subscription.events``): a consumer slower
than the model gets fewer, larger events instead of falling behind. With chunks sent back to
back (pace 0) the proxy reads many upstream chunks per socket read and publishes all of
them before the SSE writer task gets its turn, so nearly everything merges: the client
receives a few dozen events for 2,000 tokens while the baseline parses 2,000 chunks, and the
proxy's wall then looks *better* than the direct call, because the official SDK's per-event
parsing is the dominant cost on both sides. The ``events`` column shows it. With chunks 1 ms
apart (``BENCH_PACE_US``, a fast real model's pace) the proxy keeps up, merging is rare
(events ~ tokens), and that pair measures the proxy with one event per token; its wall is
dominated by the pacing itself, so the ratio is close to 1 by construction and the CPU
columns (proxy CPU per token, client CPU) carry the information. Both are printed.

Besides wall it reports time to the first token and, per run, the CPU of each process
(psutil, all threads): this client, the proxy (also per token) and the fake upstream.
``--profile`` (automatic on a MISS) then runs a few runs of each pace with the proxy's event
loop under cProfile (thread CPU time) and this client under cProfile, and prints where the
time goes.

Run from the repo root: ``.venv/bin/python benchmarks/proxy_stream.py``. Always exits 0.
Environment: BENCH_TOKENS (2000), BENCH_REPEATS (7), BENCH_PACED_REPEATS (5), BENCH_PACE_US (1000).
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _proxy import ProxyProcess, _areas, _trim_pstats, by_package  # noqa: E402

warnings.filterwarnings("ignore", category=DeprecationWarning)  # client.beta.* is "deprecated"

import openai  # noqa: E402
import psutil  # noqa: E402

from tests.server.conftest import MASTER_KEY, clean_env  # noqa: E402

N_TOKENS = int(os.environ.get("BENCH_TOKENS", "2000"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "7"))
PACED_REPEATS = int(os.environ.get("BENCH_PACED_REPEATS", "5"))
PACE_US = int(os.environ.get("BENCH_PACE_US", "1000"))
TARGET = 1.3
EXPECTED = "".join(f"t{i} " for i in range(N_TOKENS))

# The fake upstream in its own process: the reply is read from the prompt, so the direct
# call and the proxy's call (which forwards the thread's user message) get the same stream.
FAKE_CODE = r"""
import re, sys
sys.path.insert(0, sys.argv[1])
import tests.fake_upstream as fake_upstream

def scripted(body):
    last = next((m for m in reversed(body.get("messages") or []) if m.get("role") == "user"), {})
    text = fake_upstream._content_text(last.get("content"))
    match = re.fullmatch(r"stream (\d+) tokens, (\d+) us apart", text.strip())
    if not match:
        return fake_upstream.Reply("text", chunks=fake_upstream.words(text))
    chunks = [f"t{i} " for i in range(int(match[1]))]
    return fake_upstream.Reply("text", chunks=chunks, delay=int(match[2]) / 1e6)

fake_upstream._echo = scripted  # what FakeUpstream answers when nothing is queued
server = fake_upstream.FakeUpstream()
print(server.url, flush=True)
sys.stdin.read()  # until the parent closes stdin (or stops us by PID)
"""


def prompt(pace_us: int) -> str:
    return f"stream {N_TOKENS} tokens, {pace_us} us apart"


class FakeProcess:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", FAKE_CODE, str(ROOT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=clean_env(),
            cwd=ROOT,
        )
        self.pid = self.process.pid
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().decode().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"fake upstream did not start (got {self.url!r})")
        self.ps = psutil.Process(self.pid)

    def cpu(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.process.wait(5)


# The proxy under cProfile, started and stopped by signals so that neither its imports nor the
# warm-up are in the profile: SIGUSR1 enables a profiler on the main thread (the event loop)
# and one per store worker thread (the store's ThreadPoolExecutor is swapped for one whose
# tasks run under a per-thread profiler while profiling is on); SIGUSR2 stops them and writes
# FILE.store (all store threads merged), then FILE (the loop). The profilers count thread CPU
# time (time.thread_time), not wall time: on this 2-core box a send() that wakes the client is
# often preempted by it, and wall time would charge that wait to the send.


def proxy_config(fake_url: str, db: Path) -> dict[str, Any]:
    route = {
        "model_name": "m",
        "litellm_params": {"model": "openai/m", "api_base": fake_url, "api_key": "sk-x"},
    }
    return {"model_list": [route], "general_settings": {"master_key": MASTER_KEY, "database_url": str(db)}}


class Sample:
    def __init__(
        self, wall: float, first: float, events: int, client_cpu: float, proxy_cpu: float, fake_cpu: float
    ):
        self.wall, self.first, self.events = wall, first, events
        self.client_cpu, self.proxy_cpu, self.fake_cpu = client_cpu, proxy_cpu, fake_cpu


class Bench:
    def __init__(self, fake: FakeProcess, proxy: ProxyProcess):
        self.fake, self.proxy = fake, proxy
        self.direct = openai.OpenAI(base_url=fake.url, api_key="sk-x", max_retries=0)
        self.client = openai.OpenAI(base_url=proxy.v1, api_key=MASTER_KEY, max_retries=0, timeout=120)
        self.assistant = self.client.beta.assistants.create(model="m", name="bench")

    def close(self) -> None:
        self.direct.close()
        self.client.close()

    def _timed(self, body: Callable[[], tuple[float | None, int, str]], thread_id: str | None) -> Sample:
        f0, p0, c0 = self.fake.cpu(), self.proxy.cpu(), time.process_time()
        t0 = time.perf_counter()
        first, events, text = body()
        t1 = time.perf_counter()
        c1, p1, f1 = time.process_time(), self.proxy.cpu(), self.fake.cpu()
        if text != EXPECTED:
            raise AssertionError(f"streamed text {len(text)} chars, expected {len(EXPECTED)}")
        if thread_id is not None:
            stored = self.client.beta.threads.messages.list(thread_id, limit=1).data[0]
            if stored.role != "assistant" or stored.content[0].text.value != EXPECTED:
                raise AssertionError("stored assistant message differs from the streamed tokens")
        return Sample(t1 - t0, (first or t1) - t0, events, c1 - c0, p1 - p0, f1 - f0)

    def baseline(self, pace_us: int) -> Sample:
        def body() -> tuple[float | None, int, str]:
            parts: list[str] = []
            first = None
            chunks = 0
            stream = self.direct.chat.completions.create(
                model="m", messages=[{"role": "user", "content": prompt(pace_us)}], stream=True
            )
            for chunk in stream:
                chunks += 1
                for choice in chunk.choices:
                    if choice.delta.content:
                        if first is None:
                            first = time.perf_counter()
                        parts.append(choice.delta.content)
            return first, chunks, "".join(parts)

        return self._timed(body, None)

    def _thread(self, pace_us: int) -> str:
        return self.client.beta.threads.create(messages=[{"role": "user", "content": prompt(pace_us)}]).id

    def raw(self, pace_us: int) -> Sample:
        thread_id = self._thread(pace_us)

        def body() -> tuple[float | None, int, str]:
            parts: list[str] = []
            first = None
            events = 0
            stream = self.client.beta.threads.runs.create(
                thread_id, assistant_id=self.assistant.id, stream=True
            )
            for event in stream:
                events += 1
                if event.event == "thread.message.delta":
                    if first is None:
                        first = time.perf_counter()
                    for part in event.data.delta.content or []:
                        if part.type == "text" and part.text and part.text.value:
                            parts.append(part.text.value)
            return first, events, "".join(parts)

        return self._timed(body, thread_id)

    def helper(self, pace_us: int) -> Sample:
        thread_id = self._thread(pace_us)

        def body() -> tuple[float | None, int, str]:
            first = None
            events = 0
            with self.client.beta.threads.runs.stream(
                thread_id=thread_id, assistant_id=self.assistant.id
            ) as s:
                for event in s:
                    events += 1
                    if first is None and event.event == "thread.message.delta":
                        first = time.perf_counter()
                final = s.get_final_messages()
            return first, events, final[-1].content[0].text.value

        return self._timed(body, thread_id)


def run_group(bench: Bench, pace_us: int, repeats: int) -> dict[str, list[Sample]]:
    variants: dict[str, Callable[[int], Sample]] = {
        "direct chat.completions": bench.baseline,
        "proxy runs.create(stream)": bench.raw,
        "proxy runs.stream helper": bench.helper,
    }
    names = list(variants)
    for fn in variants.values():  # warm-up
        fn(pace_us)
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    for i in range(repeats):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            samples[name].append(variants[name](pace_us))
    return samples


def print_group(title: str, samples: dict[str, list[Sample]]) -> dict[str, float]:
    names = list(samples)

    def med(name: str, attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in samples[name])

    base = med(names[0], "wall")
    print()
    print(title)
    print(
        f"  {'variant':<28}{'wall ms':>9}{'min..max':>13}{'1st tok ms':>11}{'events':>8}"
        f"{'client CPU ms':>14}{'proxy CPU ms':>13}{'proxy us/tok':>13}{'upstream CPU ms':>16}{'ratio':>8}"
    )
    ratios = {}
    for name in names:
        walls = [s.wall * 1000 for s in samples[name]]
        ratio = med(name, "wall") / base
        ratios[name] = ratio
        direct = name == names[0]
        proxy_ms = "-" if direct else f"{med(name, 'proxy_cpu') * 1000:.0f}"
        per_token = "-" if direct else f"{med(name, 'proxy_cpu') * 1e6 / N_TOKENS:.0f}"
        print(
            f"  {name:<28}{med(name, 'wall') * 1000:>9.1f}{f'{min(walls):.0f}..{max(walls):.0f}':>13}"
            f"{med(name, 'first') * 1000:>11.1f}{med(name, 'events'):>8.0f}"
            f"{med(name, 'client_cpu') * 1000:>14.0f}{proxy_ms:>13}{per_token:>13}"
            f"{med(name, 'fake_cpu') * 1000:>16.0f}{ratio:>7.2f}x"
        )
    return ratios


# -- profiling ------------------------------------------------------------------------------------


def profile_runs(fake: FakeProcess, directory: Path, top: int = 16) -> None:
    """Unpaced and paced runs (raw and helper) again with the proxy's event loop under cProfile
    (enabled after a warm-up) and this client under cProfile, one profile per pace."""
    for pace_us, runs in ((0, 4), (PACE_US, 2)):
        prof_path = directory / f"proxy-{pace_us}.prof"
        db = directory / f"profiled-{pace_us}.db"
        proxy = ProxyProcess(proxy_config(fake.url, db), directory, f"profiled-{pace_us}", prof_path)
        client_prof = cProfile.Profile(time.thread_time)
        written = None
        try:
            bench = Bench(fake, proxy)
            bench.raw(pace_us)  # warm-up
            bench.helper(pace_us)
            proxy.profile_start()
            client_prof.enable()
            for _ in range(runs):
                bench.raw(pace_us)
                bench.helper(pace_us)
            client_prof.disable()
            written = proxy.profile_stop()
            bench.close()
        finally:
            proxy.stop()
        print()
        print(
            f"== profile, pace {pace_us} us: {runs} raw + {runs} helper runs ({2 * runs * N_TOKENS} tokens), "
            "proxy loop and client under cProfile (times inflated) =="
        )
        sources: list[tuple[str, Any]] = [("client (this process)", client_prof)]
        if written is not None:
            print(_areas(pstats.Stats(str(written))))
            print("proxy event loop thread:")
            print(by_package(str(written)))
            sources.insert(0, ("proxy main thread (event loop)", str(written)))
        else:
            print("   (no proxy profile written)")
        for label, source in sources:
            for sort, by in (("tottime", "own time"), ("cumulative", "cumulative time")):
                buf = io.StringIO()
                pstats.Stats(source, stream=buf).sort_stats(sort).print_stats(top)
                print(f"\n-- {label}: top by {by} --")
                print(_trim_pstats(buf.getvalue()))


# -- main -----------------------------------------------------------------------------------------


def main() -> int:
    tmp = tempfile.TemporaryDirectory(prefix="ak-bench-pstream-")
    directory = Path(tmp.name)
    fake = FakeProcess()
    try:
        measure_and_report(fake, directory)
    finally:
        fake.stop()
        tmp.cleanup()
    return 0


def measure_and_report(fake: FakeProcess, directory: Path) -> None:
    proxy = ProxyProcess(proxy_config(fake.url, directory / "stream.db"), directory, "proxy")
    try:
        print(
            f"proxy_stream: {N_TOKENS} one-token chunks; {REPEATS} (unpaced) / {PACED_REPEATS} (paced) "
            "rotating repeats after warm-up; medians"
        )
        print(f"fake upstream pid {fake.pid} at {fake.url}; proxy pid {proxy.pid} at {proxy.url} (SQLite)")
        bench = Bench(fake, proxy)
        # Pace 0: the proxy merges queued deltas (few events reach the client, see the
        # docstring); paced: ~one event per token, the per-token overhead without merging.
        unpaced = run_group(bench, 0, REPEATS)
        paced = run_group(bench, PACE_US, PACED_REPEATS)
        bench.close()
    finally:
        proxy.stop()
    r0 = print_group("chunks back to back (pace 0): the proxy may merge queued deltas, see 'events'", unpaced)
    r1 = print_group(f"chunks {PACE_US} us apart: merging rare, ~one event per token", paced)
    names = list(unpaced)
    print()
    for label, group in (("unpaced", unpaced), ("paced", paced)):
        raw_events = statistics.median(s.events for s in group[names[1]])
        helper_events = statistics.median(s.events for s in group[names[2]])
        print(
            f"{label}: events received for {N_TOKENS} tokens: raw {raw_events:.0f}, "
            f"helper {helper_events:.0f} "
            f"(a run adds ~10 lifecycle events; fewer than {N_TOKENS} means deltas were merged)"
        )
    checks = [r0[names[1]], r0[names[2]], r1[names[1]], r1[names[2]]]
    ok = all(r <= TARGET for r in checks)
    print()
    print(
        f"target: proxy/direct <= {TARGET}x wall, runs.create(stream=True) and runs.stream helper, both paces"
    )
    print(
        f"RESULT: {'PASS' if ok else 'MISS'}  (unpaced: raw {checks[0]:.2f}x, helper {checks[1]:.2f}x; "
        f"paced {PACE_US} us: raw {checks[2]:.2f}x, helper {checks[3]:.2f}x)"
    )
    if "--profile" in sys.argv or not ok:
        profile_runs(fake, directory)


if __name__ == "__main__":
    from _common import run_main

    run_main(main, __file__)
