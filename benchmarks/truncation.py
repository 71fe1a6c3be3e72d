"""``max_prompt_tokens`` on a long thread: a run that must cut the history vs the same run
without a budget, on the same thread, in this run.

The engine cuts the history to the budget (``engine/context.py`` :func:`fit_history`) before
every turn. Dropping one message at a time and counting again was quadratic in the thread's
length (0.88 s for 2,000 short messages with the scripted model, whose count is a word
split); the binary search counts about log2(n) times. Both runs here use ``test/echo`` (no
model time), so the ratio is the cut's cost over a run's fixed cost: reading the thread,
writing the steps and the answer. Target: with/without <= 2x at every size.

Run from the repo root: ``.venv/bin/python benchmarks/truncation.py`` (``BENCH_SIZES=2000,10000``
to change the thread lengths). Always exits 0.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import run_main

REPEATS = 5


def main() -> None:
    from assistant_kit import local_client

    sizes = [int(s) for s in os.environ.get("BENCH_SIZES", "1000,5000").split(",")]
    client = local_client(":memory:")
    assistant = client.beta.assistants.create(model="test/echo")
    print(f"{'messages':>9} {'no budget s':>12} {'budget s':>10} {'ratio':>6}")
    for size in sizes:
        thread = client.beta.threads.create()
        for i in range(size):
            content = f"message {i} says something short about item {i}."
            client.beta.threads.messages.create(thread.id, role="user", content=content)
        timings: dict[str, list[float]] = {"none": [], "budget": []}
        for _ in range(REPEATS):
            for kind in timings:
                extra = {"max_prompt_tokens": 500} if kind == "budget" else {}
                began = time.perf_counter()
                run = client.beta.threads.runs.create_and_poll(
                    thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=5, **extra
                )
                timings[kind].append(time.perf_counter() - began)
                assert run.status == "completed", run.last_error
        none, budget = statistics.median(timings["none"]), statistics.median(timings["budget"])
        ratio = budget / none
        verdict = "ok" if ratio <= 2 else "MISS"
        print(f"{size:>9} {none:>12.3f} {budget:>10.3f} {ratio:>6.2f} {verdict}")


if __name__ == "__main__":
    run_main(main, __file__)
