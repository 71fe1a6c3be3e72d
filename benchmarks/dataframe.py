"""DataFrame of a 10,000-message thread: ``tables.messages(local_client(db), thread_id)``.

Builds a SQLite file in a temp dir holding one thread of ``BENCH_MESSAGES`` (default 10,000)
messages, inserted in bulk with ``Store.insert_many`` (ids from ``assistant_kit._ids.new_id``,
message dicts shaped like ``engine.shapes.new_message`` makes them, alternating user and assistant
turns), then times, ``REPEATS`` times each (default 5), median reported:

* ``tables.messages`` — the whole thing: 100 cursor pages of 100 through the SDK and the
  in-process transport, then the DataFrame;
* baseline, typed: the plain SDK loop ``for m in client.beta.threads.messages.list(thread,
  limit=100)`` — every page listed, 100 ``Message`` models built per page, no DataFrame;
* baseline, JSON: the same 100 requests through the SDK's cursor pages with the items kept
  as dicts (what ``tables`` does), no DataFrame — so ``tables.messages`` / this is the cost
  of building the frame;
* the frame alone, built from items fetched once beforehand (no requests): the DataFrame's
  own share, which machine load hardly moves (the request path is thread hand-offs between
  the caller and the engine loop, and those slow down a lot on a busy machine).

Target: ``tables.messages`` <= 0.5 s for 10,000 messages. Run from the repo root:
``.venv/bin/python benchmarks/dataframe.py``. Always exits 0.
"""

from __future__ import annotations

import os
import statistics
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

warnings.filterwarnings("ignore", category=DeprecationWarning)  # client.beta.* is "deprecated"

from openai.types.beta import Thread  # noqa: E402

from assistant_kit import local_client  # noqa: E402
from assistant_kit._ids import new_id, now  # noqa: E402
from assistant_kit.engine.shapes import build, new_message, text_content  # noqa: E402
from assistant_kit.notebook import tables  # noqa: E402
from assistant_kit.store import Store  # noqa: E402

MESSAGES = int(os.environ.get("BENCH_MESSAGES", "10000"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))
TARGET_S = 0.5

USER_TEXT = "Can you summarise section {i} of the report and list the three main risks it names?"
ASSISTANT_TEXT = (
    "Section {i} covers the quarterly rollout. The three main risks it names are: (1) the data "
    "migration may overrun its window, (2) two vendors have not confirmed support dates, and (3) "
    "the on-call rota is thin during the holiday period. It recommends a dry run first."
)


def build_db(db: Path) -> str:
    """One thread of ``MESSAGES`` messages; returns its id."""
    user = new_message("thread_x", {"role": "user", "content": "x"})
    assistant = new_message("thread_x", {"role": "assistant", "content": "x"})
    assistant.update(assistant_id=new_id("asst"))
    store = Store(db)
    thread = build(
        Thread, id=new_id("thread"), object="thread", created_at=now(), metadata={}, tool_resources=None
    )
    store.insert("thread", thread)
    run_id = new_id("run")
    items: list[tuple[str, dict[str, Any]]] = []
    t0 = time.perf_counter()
    for i in range(MESSAGES):
        odd = i % 2
        message = {
            **(assistant if odd else user),
            "id": new_id("msg"),
            "created_at": now(),
            "completed_at": now(),
            "thread_id": thread["id"],
            "content": [text_content((ASSISTANT_TEXT if odd else USER_TEXT).format(i=i))],
        }
        if odd:
            message["run_id"] = run_id
            run_id = new_id("run")
        items.append(("thread.message", message))
    store.insert_many(items)
    store.close()
    print(f"built {MESSAGES:,} messages in {time.perf_counter() - t0:.1f}s")
    return thread["id"]


def main() -> int:
    tmp = tempfile.TemporaryDirectory(prefix="ak-bench-df-")
    db = Path(tmp.name) / "frame.db"
    print(f"dataframe: tables.messages of a {MESSAGES:,}-message thread; {REPEATS} runs each; store {db}")
    thread_id = build_db(db)
    client = local_client(db)

    def frame() -> int:
        df = tables.messages(client, thread_id)
        assert len(df) == MESSAGES and df["text"].iloc[-1].startswith("Section")
        return len(df)

    def sdk_typed() -> int:
        n = 0
        for message in client.beta.threads.messages.list(thread_id, limit=100, order="asc"):
            n += message.id is not None
        assert n == MESSAGES
        return n

    def sdk_json() -> int:
        n = sum(1 for _ in tables._list(client, f"/threads/{thread_id}/messages"))
        assert n == MESSAGES
        return n

    pages = list(tables._list(client, f"/threads/{thread_id}/messages"))

    def frame_only() -> int:
        return len(tables._messages_frame(pages))

    calls: dict[str, Callable[[], int]] = {
        "tables.messages (DataFrame)": frame,
        "baseline: SDK pages, typed models": sdk_typed,
        "baseline: SDK pages, JSON items": sdk_json,
        "frame from fetched items (no I/O)": frame_only,
    }
    for fn in calls.values():  # warm-up: page cache, statement cache, SDK, pandas
        fn()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(REPEATS):
        for name, fn in calls.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)

    med = {name: statistics.median(values) for name, values in times.items()}
    print()
    print(f"{'':<36}{'median s':>10}{'min s':>10}{'per 1k msgs':>14}")
    for name, values in times.items():
        print(
            f"{name:<36}{med[name]:>10.3f}{min(values):>10.3f}{med[name] / MESSAGES * 1000 * 1000:>11.1f} ms"
        )
    df_s = med["tables.messages (DataFrame)"]
    typed = med["baseline: SDK pages, typed models"]
    json_s = med["baseline: SDK pages, JSON items"]
    print()
    build_s = med["frame from fetched items (no I/O)"]
    print(
        f"DataFrame / JSON pages: {df_s / json_s:.2f}x; DataFrame / typed SDK loop: {df_s / typed:.2f}x; "
        f"building the frame from fetched items alone: {build_s:.3f} s ({build_s / df_s:.0%} of the total)"
    )
    print(f"target: tables.messages <= {TARGET_S} s for {MESSAGES:,} messages")
    print(f"RESULT: {'PASS' if df_s <= TARGET_S else 'MISS'}  ({df_s:.3f} s)")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    from _common import run_main

    run_main(main, __file__)
