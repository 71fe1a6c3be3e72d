"""Render throughput: a 10,000 tokens/s stream through ``RunView``, per display mode.

The events are real: one run of a registered model emitting ``BENCH_TOKENS`` one-token
chunks is streamed through ``local_client(":memory:")`` and its SDK event objects are
recorded. They are then replayed into a fresh ``RunView`` per mode, message deltas paced at
``BENCH_RATE`` tokens/s (default 10,000; the other events go through as they come), so the
renderer sees a stream far faster than any real model.

Display goes through IPython's real ``display()`` into an ``InteractiveShell`` whose display
publisher records every message (``IPython.utils.capture``), i.e. the same path as in a
kernel minus ZMQ. Widgets mode uses real ipywidgets (without a kernel, their comm messages
are dropped rather than sent). Text mode writes to an in-memory file.

Measured per mode:

* display updates per second over the stream's wall time — target <= 15 (the view's
  ``max_rate`` is 10/s; transitions and the final snapshot come on top);
* bytes published per second while streaming (HTML + text) — Jupyter's IOPub limit is
  1 MB/s — and the size of the final snapshot, sent once at ``close()``;
* renderer CPU: ``time.thread_time()`` summed around every ``on_event``/``close`` call,
  as a share of the stream's wall time — target <= 10 %.

Run from the repo root: ``.venv/bin/python benchmarks/render_throughput.py``. Always exits 0.
"""

from __future__ import annotations

import io
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

warnings.filterwarnings("ignore", category=DeprecationWarning)  # client.beta.* is "deprecated"

from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from IPython.utils.capture import capture_output  # noqa: E402

from assistant_kit import local_client, register_model  # noqa: E402
from assistant_kit.notebook.render import RunView  # noqa: E402

N_TOKENS = int(os.environ.get("BENCH_TOKENS", "20000"))
RATE = float(os.environ.get("BENCH_RATE", "10000"))
MAX_UPDATES_PER_S = 15.0
MAX_CPU_SHARE = 0.10
MODES = ("handles", "widgets", "text", "static")


def record_events() -> list[Any]:
    """The SDK event objects of one real run emitting ``N_TOKENS`` chunks."""
    register_model("bench/render", lambda messages: (f"tok{i} " for i in range(N_TOKENS)))
    client = local_client(":memory:")
    assistant = client.beta.assistants.create(model="bench/render")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        events = list(stream)
    deltas = sum(e.event == "thread.message.delta" for e in events)
    assert deltas == N_TOKENS, deltas
    return events


def replay(events: list[Any], mode: str) -> dict[str, Any]:
    out = io.StringIO()
    with capture_output(stdout=False, stderr=False) as cap:
        view = RunView(mode, max_rate=10.0, file=out)
        cpu = 0.0
        delivered = 0
        start = time.perf_counter()
        for event in events:
            if event.event == "thread.message.delta":
                due = start + delivered / RATE
                delivered += 1
                while (now := time.perf_counter()) < due:
                    if due - now > 0.002:
                        time.sleep(due - now - 0.001)
            c0 = time.thread_time()
            view.on_event(event)
            cpu += time.thread_time() - c0
        live_outputs, live_text = len(cap.outputs), len(out.getvalue())
        c0 = time.thread_time()
        view.close()
        cpu += time.thread_time() - c0
        wall = time.perf_counter() - start
    sizes = [sum(len(v) for v in o.data.values() if isinstance(v, str)) for o in cap.outputs]
    live, final = sum(sizes[:live_outputs]), sum(sizes[live_outputs:])
    if mode == "text":
        live, final = live_text, len(out.getvalue()) - live_text
    expected = "".join(f"tok{i} " for i in range(N_TOKENS))
    complete = expected in (view.to_text() if mode != "text" else out.getvalue())
    return {
        "mode": mode,
        "wall": wall,
        "updates": view.updates,
        "rate": view.updates / wall,
        "kb_s": live / 1024 / wall,
        "final_kb": final / 1024,
        "cpu_ms": cpu * 1000,
        "cpu_share": cpu / wall,
        "complete": complete,
    }


def main() -> int:
    print(f"Recording a real run of {N_TOKENS:,} one-token chunks …", flush=True)
    events = record_events()
    print(f"{len(events):,} events; replaying the deltas at {RATE:,.0f} tokens/s per mode\n")
    InteractiveShell.instance()
    rows = [replay(events, mode) for mode in MODES]
    header = (
        f"{'mode':<8} {'wall s':>7} {'updates':>8} {'upd/s':>6} {'live KB/s':>9} {'final KB':>8} "
        f"{'CPU ms':>7} {'CPU %':>6} {'text ok':>7}  result"
    )
    print(header)
    print("-" * len(header))
    misses = 0
    for r in rows:
        ok = r["rate"] <= MAX_UPDATES_PER_S and r["cpu_share"] <= MAX_CPU_SHARE and r["complete"]
        misses += not ok
        print(
            f"{r['mode']:<8} {r['wall']:>7.2f} {r['updates']:>8} {r['rate']:>6.1f} {r['kb_s']:>9.1f} "
            f"{r['final_kb']:>8.1f} "
            f"{r['cpu_ms']:>7.1f} {r['cpu_share'] * 100:>5.1f}% {r['complete']!s:>7}  "
            f"{'PASS' if ok else 'MISS'}"
        )
    print(
        f"\ntargets: <= {MAX_UPDATES_PER_S:.0f} display updates/s, renderer CPU <= "
        f"{MAX_CPU_SHARE:.0%} of wall time, full text in the final render."
    )
    print("widgets: no kernel here, so widget comm messages are built but not sent (nor counted in KB/s).")
    print("overall:", "PASS" if not misses else f"MISS ({misses} mode(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
