"""The embedded model through the engine vs straight from llama-cpp-python, in this run.

Both sides generate the same 300 tokens from the same model instance with the same settings:
the prompt below, temperature 0 (greedy, so the text is identical), llama.cpp's chat sampling
defaults, ``max_tokens`` 300. The prompt makes SmolLM2-135M talk past 300 tokens at
temperature 0, so no end-of-turn token cuts a sample short (checked: every sample must
report exactly 300 completion tokens, and both sides the same text).

* direct: ``Llama.create_chat_completion(messages, stream=True, max_tokens=300,
  temperature=0)``, iterating every chunk;
* engine: ``local_client(":memory:").beta.threads.runs.stream(...)`` with
  ``max_completion_tokens=300``, consuming every event until the stream ends (the run ends
  ``incomplete``); completion tokens are read from ``run.usage``.

Before every sample the model's KV cache is cleared, so both sides evaluate the whole prompt
(otherwise each would reuse the previous sample's cache). After a warm-up, the two are
alternated ``REPEATS`` times (order rotating); medians are compared. Reported: tokens/s over
the whole call (prompt evaluation included), time to the first text token, and the
process's peak RSS. Target: engine tokens/s >= 0.9x direct.

``ASSISTANT_KIT_LOCAL_THREADS`` sets llama.cpp's thread count (default: the usable CPUs).
Run from the repo root: ``.venv/bin/python benchmarks/local_model.py``. Always exits 0.
"""

from __future__ import annotations

import os
import resource
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

N_TOKENS = 300
REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))
TARGET = 0.9
PROMPT = "Write a very long story about a dragon and a knight."
MESSAGES = [{"role": "user", "content": PROMPT}]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class Bench:
    def __init__(self) -> None:
        self.rt = local.runtime(local.model_path("smollm2"))
        self.client = local_client(":memory:")
        self.assistant = self.client.beta.assistants.create(model="local/smollm2", name="bench")

    def _cold(self) -> None:
        with self.rt.lock:
            self.rt.llama.reset()  # no KV-cache reuse from the previous sample

    def direct(self) -> tuple[float, float, int, str]:
        """(wall s, first-token s, completion tokens, text)"""
        self._cold()
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

    def engine(self) -> tuple[float, float, int, str]:
        self._cold()
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
    rss_before = peak_rss_mb()
    try:
        bench = Bench()
    except ModelConfigError as exc:
        print(f"SKIP: {exc.message}")
        return
    rss_loaded = peak_rss_mb()
    print(
        f"model {bench.rt.path}\nn_ctx {bench.rt.n_ctx}, n_threads {local.n_threads()}, "
        f"{N_TOKENS} tokens per sample, {REPEATS} alternated samples per side (+1 warm-up)\n"
    )
    bench.direct()
    bench.engine()
    results: dict[str, list[tuple[float, float, int, str]]] = {"direct": [], "engine": []}
    for i in range(REPEATS):
        order = ("direct", "engine") if i % 2 == 0 else ("engine", "direct")
        for name in order:
            results[name].append(getattr(bench, name)())

    problems: list[str] = []
    texts = {name: {r[3] for r in rows} for name, rows in results.items()}
    for name, rows in results.items():
        counts = {r[2] for r in rows}
        if counts != {N_TOKENS}:
            problems.append(f"{name}: completion tokens {sorted(counts)} != {N_TOKENS} (-1: ended early)")
    if texts["direct"] != texts["engine"]:
        problems.append("the two sides generated different text")

    def summary(name: str) -> dict[str, Any]:
        rows = results[name]
        walls = [r[0] for r in rows]
        return {
            "tok_s": statistics.median(N_TOKENS / w for w in walls),
            "wall": statistics.median(walls),
            "ttft": statistics.median(r[1] for r in rows),
            "spread": (min(walls), max(walls)),
        }

    d, e = summary("direct"), summary("engine")
    ratio = e["tok_s"] / d["tok_s"]
    print(f"{'':<24}{'tokens/s':>10}{'wall s':>9}{'first token ms':>16}{'wall min-max s':>17}")
    for name, s in (("llama-cpp-python direct", d), ("engine (runs.stream)", e)):
        lo, hi = s["spread"]
        print(f"{name:<24}{s['tok_s']:>10.1f}{s['wall']:>9.2f}{s['ttft'] * 1000:>16.0f}{lo:>9.2f}-{hi:.2f}")
    print(f"\nengine/direct tokens/s: {ratio:.3f}x (target >= {TARGET}x)")
    print(f"first-token overhead of the engine: {(e['ttft'] - d['ttft']) * 1000:+.0f} ms")
    print(
        f"peak RSS: {rss_before:.0f} MB before loading, {rss_loaded:.0f} MB after loading, "
        f"{peak_rss_mb():.0f} MB at the end"
    )
    for problem in problems:
        print(f"WARNING: {problem}")
    print("PASS" if ratio >= TARGET and not problems else "MISS")


if __name__ == "__main__":
    main()
