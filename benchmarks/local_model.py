"""The embedded model through the worker process and the engine vs llama-cpp-python in-process.

Three ways to generate the same 300 tokens with the same model file and settings (the prompt
below, temperature 0 — greedy, so the text is identical — llama.cpp's chat sampling
defaults, ``max_tokens`` 300; the prompt makes SmolLM2-135M talk past 300 tokens, so no
end-of-turn token cuts a sample short, and every sample must report exactly 300):

* direct: ``Llama.create_chat_completion(messages, stream=True, max_tokens=300,
  temperature=0)`` in this process (the model loaded as the kit loads it), every chunk read;
* worker: the kit's worker process alone (``local.worker().start_turn``), every event read
  — what the process boundary costs;
* engine: ``local_client(":memory:").beta.threads.runs.stream(...)`` with
  ``max_completion_tokens=300``, every event until the stream ends (the run ends
  ``incomplete``) — the whole path a user takes.

Each side keeps its own model (this process's for direct, the worker's for the other two)
and reuses the prompt's KV cache from its previous sample, so all three measure generation
plus their own overhead on equal terms. After a warm-up, the sides are alternated
``REPEATS`` times (order rotating); medians are compared. Reported: tokens/s over the whole
call, time to the first text token, the worker's and this process's RSS (this process's
before it loads its own copy for the direct side), the CPU features the installed
llama-cpp-python was compiled for and whether this CPU has AMX. Targets: engine tokens/s ≥
0.9x direct; first-token time added by the worker ≤ 50 ms.

``ASSISTANT_KIT_LOCAL_THREADS`` sets llama.cpp's thread count (default: see ``n_threads``).
Run from the repo root: ``.venv/bin/python benchmarks/local_model.py``. Always exits 0.
"""

from __future__ import annotations

import os
import queue
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

warnings.filterwarnings("ignore", category=DeprecationWarning)  # client.beta.* is "deprecated"

from assistant_kit import local_client  # noqa: E402
from assistant_kit.errors import ModelConfigError  # noqa: E402
from assistant_kit.models import local  # noqa: E402
from assistant_kit.models.base import ModelRequest, TextDelta, Usage  # noqa: E402

N_TOKENS = 300
REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))
TARGET = 0.9
TTFT_TARGET_MS = 50
PROMPT = "Write a very long story about a dragon and a knight."
MESSAGES = [{"role": "user", "content": PROMPT}]

Sample = tuple[float, float, int, str]  # wall s, first-token s, completion tokens, text


def rss_mb(pid: int | str = "self", field: str = "VmRSS") -> float:
    """Resident (``VmRSS``) or peak resident (``VmHWM``) MB of a process, from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_has_amx() -> bool:
    try:
        return " amx_tile" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


class Bench:
    def __init__(self) -> None:
        self.path = local.model_path("smollm2")
        self.client = local_client(":memory:")
        self.assistant = self.client.beta.assistants.create(model="local/smollm2", name="bench")
        self.rt: Any = None

    def load_direct(self) -> None:
        from assistant_kit.models._local_runtime import runtime

        self.rt = runtime(self.path)

    def direct(self) -> Sample:
        parts: list[str] = []
        first = None
        finish = None
        with self.rt.lock:
            t0 = time.perf_counter()
            for chunk in self.rt.llama.create_chat_completion(
                MESSAGES, stream=True, max_tokens=N_TOKENS, temperature=0
            ):
                choice = chunk["choices"][0]
                finish = choice.get("finish_reason") or finish
                text = choice["delta"].get("content")
                if text:
                    if first is None:
                        first = time.perf_counter() - t0
                    parts.append(text)
            wall = time.perf_counter() - t0
        # Streamed chunks carry no usage; finish "length" at max_tokens means all 300 came.
        tokens = N_TOKENS if finish == "length" else -1
        return wall, first or wall, tokens, "".join(parts)

    def worker(self) -> Sample:
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        request = ModelRequest(messages=MESSAGES, temperature=0, max_tokens=N_TOKENS)
        parts: list[str] = []
        first = None
        tokens = -1
        t0 = time.perf_counter()
        local.worker().start_turn("local/smollm2", self.path, request, lambda k, v: events.put((k, v)))
        while True:
            kind, value = events.get()
            if kind == "error":
                raise value
            if kind == "end":
                break
            if isinstance(value, TextDelta):
                if first is None:
                    first = time.perf_counter() - t0
                parts.append(value.text)
            elif isinstance(value, Usage):
                tokens = value.completion_tokens
        wall = time.perf_counter() - t0
        return wall, first or wall, tokens, "".join(parts)

    def engine(self) -> Sample:
        thread = self.client.beta.threads.create(messages=MESSAGES)  # outside the timed region
        first = None
        t0 = time.perf_counter()
        with self.client.beta.threads.runs.stream(
            thread_id=thread.id,
            assistant_id=self.assistant.id,
            temperature=0,
            max_completion_tokens=N_TOKENS,
        ) as stream:
            for event in stream:
                if first is None and event.event == "thread.message.delta":
                    first = time.perf_counter() - t0
            run = stream.get_final_run()
            messages = stream.get_final_messages()
        wall = time.perf_counter() - t0
        assert run.status == "incomplete", (run.status, run.last_error)
        assert run.usage is not None
        return wall, first or wall, run.usage.completion_tokens, messages[0].content[0].text.value


def main() -> None:
    try:
        bench = Bench()
        started = time.perf_counter()
        bench.engine()  # starts the worker and loads the model there
        first_run = time.perf_counter() - started
    except ModelConfigError as exc:
        print(f"SKIP: {exc.message}")
        return
    worker_pid = local.worker().pid
    parent_rss = rss_mb()
    bench.load_direct()
    import llama_cpp

    print(f"model {bench.path}")
    print(f"llama-cpp-python {llama_cpp.__version__}: {llama_cpp.llama_print_system_info().decode().strip()}")
    print(
        f"this CPU has AMX: {cpu_has_amx()}; extra buffer types when loaded: "
        f"{bench.rt.llama.model_params.use_extra_bufts}"
    )
    print(
        f"n_ctx {bench.rt.n_ctx}, n_threads {local.n_threads()}, {N_TOKENS} tokens per sample, "
        f"{REPEATS} alternated samples per side (+1 warm-up)"
    )
    print(f"first run of a process (worker start + model load + 300 tokens): {first_run:.2f} s\n")
    sides = ("direct", "worker", "engine")
    for name in sides:
        getattr(bench, name)()
    results: dict[str, list[Sample]] = {name: [] for name in sides}
    for i in range(REPEATS):
        order = sides[i % 3 :] + sides[: i % 3]
        for name in order:
            results[name].append(getattr(bench, name)())

    problems: list[str] = []
    texts = {name: {r[3] for r in rows} for name, rows in results.items()}
    for name, rows in results.items():
        counts = {r[2] for r in rows}
        if counts != {N_TOKENS}:
            problems.append(f"{name}: completion tokens {sorted(counts)} != {N_TOKENS} (-1: ended early)")
        if texts[name] != texts["direct"]:
            problems.append(f"{name} generated different text from direct")

    def summary(name: str) -> dict[str, Any]:
        rows = results[name]
        walls = [r[0] for r in rows]
        return {
            "tok_s": statistics.median(N_TOKENS / w for w in walls),
            "wall": statistics.median(walls),
            "ttft": statistics.median(r[1] for r in rows),
            "spread": (min(walls), max(walls)),
        }

    s = {name: summary(name) for name in sides}
    labels = {
        "direct": "llama-cpp-python direct",
        "worker": "worker process",
        "engine": "engine (runs.stream)",
    }
    print(f"{'':<24}{'tokens/s':>10}{'wall s':>9}{'first token ms':>16}{'wall min-max s':>17}")
    for name in sides:
        lo, hi = s[name]["spread"]
        row = s[name]
        print(
            f"{labels[name]:<24}{row['tok_s']:>10.1f}{row['wall']:>9.2f}"
            f"{row['ttft'] * 1000:>16.0f}{lo:>9.2f}-{hi:.2f}"
        )
    ratio = s["engine"]["tok_s"] / s["direct"]["tok_s"]
    added = (s["worker"]["ttft"] - s["direct"]["ttft"]) * 1000
    print(f"\nengine/direct tokens/s: {ratio:.3f}x (target >= {TARGET}x)")
    print(f"worker/direct tokens/s: {s['worker']['tok_s'] / s['direct']['tok_s']:.3f}x")
    print(f"first-token time added by the worker: {added:+.0f} ms (target <= {TTFT_TARGET_MS} ms)")
    engine_added = (s["engine"]["ttft"] - s["direct"]["ttft"]) * 1000
    print(f"first-token time added by the engine and worker: {engine_added:+.0f} ms")
    print(
        f"RSS: this process {parent_rss:.0f} MB before loading its own copy for 'direct' "
        f"({rss_mb():.0f} MB after); worker {rss_mb(worker_pid or 0):.0f} MB "
        f"(peak {rss_mb(worker_pid or 0, 'VmHWM'):.0f} MB)"
    )
    for problem in problems:
        print(f"WARNING: {problem}")
    ok = ratio >= TARGET and added <= TTFT_TARGET_MS and not problems
    print("PASS" if ok else "MISS")


if __name__ == "__main__":
    main()
