"""Page latency: one page of 100 messages from threads of 1,000 / 10,000 / 100,000 messages.

Builds a SQLite file in a temp dir holding three threads of those sizes (inserted in bulk
with ``Store.insert_many``; ids from ``assistant_kit._ids.new_id("msg")``; message dicts
shaped exactly like ``engine.shapes.new_message`` / the run executor make them, alternating
user and assistant turns), then times, for each thread:

* ``client.beta.threads.messages.list(thread_id, limit=100)`` through ``local_client(db)``
  (the whole path: SDK, in-process transport, routes, engine, store, SDK parsing);
* the same with ``after=`` a cursor from the middle of the thread (a page deep inside);
* the bare ``Store.list("thread.message", thread_id=..., limit=100[, after=...])`` call.

Calls rotate over the thread sizes ``REPEATS`` times (default 30); medians are reported.
The baseline is the 1,000-message thread in the same run: with id-cursor pagination on the
``(thread_id, id)`` index a page's cost must not depend on the thread's length, so the
100k/1k ratio should be ~1. Target: <= 10 ms per page at 100,000 messages, and flat
(100k/1k <= 1.3x).

Run from the repo root: ``.venv/bin/python benchmarks/page_latency.py``. Always exits 0.
"""

from __future__ import annotations

import os
import sqlite3
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

warnings.filterwarnings("ignore", category=DeprecationWarning)  # client.beta.* is "deprecated"

from openai.types.beta import Thread  # noqa: E402

from assistant_kit import local_client  # noqa: E402
from assistant_kit._ids import new_id, now  # noqa: E402
from assistant_kit.engine.shapes import build, new_message, text_content  # noqa: E402
from assistant_kit.store import Store  # noqa: E402

SIZES = [int(x) for x in os.environ.get("BENCH_SIZES", "1000,10000,100000").split(",")]
REPEATS = int(os.environ.get("BENCH_REPEATS", "30"))
PAGE = 100
BATCH = 5000
TARGET_MS = 10.0
FLAT = 1.3

USER_TEXT = "Can you summarise section {i} of the report and list the three main risks it names?"
ASSISTANT_TEXT = (
    "Section {i} covers the quarterly rollout. The three main risks it names are: (1) the data "
    "migration may overrun its window, (2) two vendors have not confirmed support dates, and (3) "
    "the on-call rota is thin during the holiday period. It recommends a dry run first."
)


def templates() -> tuple[dict[str, Any], dict[str, Any]]:
    """A user message exactly as ``engine.shapes.new_message`` builds it, and an assistant message
    as the run executor leaves it (completed, with run and assistant ids)."""
    user = new_message("thread_x", {"role": "user", "content": "x"})
    assistant = new_message(
        "thread_x",
        {"role": "assistant", "content": "x"},
    )
    assistant.update(assistant_id=new_id("asst"), run_id=new_id("run"))
    return user, assistant


def build_db(db: Path) -> dict[int, dict[str, Any]]:
    """Create one thread per size; return {size: {"id", "middle"}} (middle = a cursor)."""
    store = Store(db)
    user_t, assistant_t = templates()
    threads: dict[int, dict[str, Any]] = {}
    t0 = time.perf_counter()
    for size in SIZES:
        thread = build(
            Thread, id=new_id("thread"), object="thread", created_at=now(), metadata={}, tool_resources=None
        )
        store.insert("thread", thread)
        run_id = new_id("run")
        middle = None
        batch: list[tuple[str, dict[str, Any]]] = []
        for i in range(size):
            template = user_t if i % 2 == 0 else assistant_t
            text = (USER_TEXT if i % 2 == 0 else ASSISTANT_TEXT).format(i=i)
            message = {
                **template,
                "id": new_id("msg"),
                "created_at": now(),
                "completed_at": now(),
                "thread_id": thread["id"],
                "content": [text_content(text)],
            }
            if i % 2:
                message["run_id"] = run_id
                if i % 10 == 9:
                    run_id = new_id("run")
            if i == size // 2:
                middle = message["id"]
            batch.append(("thread.message", message))
            if len(batch) >= BATCH:
                store.insert_many(batch)
                batch = []
        if batch:
            store.insert_many(batch)
        threads[size] = {"id": thread["id"], "middle": middle}
    elapsed = time.perf_counter() - t0
    store.close()
    total = sum(SIZES)
    print(
        f"built {total:,} messages in {elapsed:.1f}s ({total / elapsed:,.0f}/s, batches of {BATCH}); "
        f"db {db.stat().st_size / 1e6:.0f} MB (+WAL)"
    )
    return threads


def query_plan(db: Path, thread: dict[str, Any]) -> str:
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "EXPLAIN QUERY PLAN SELECT data FROM messages WHERE thread_id = ? AND id < ? "
            "ORDER BY id DESC LIMIT 101",
            (thread["id"], thread["middle"]),
        ).fetchall()
    finally:
        con.close()
    return "; ".join(r[-1] for r in rows)


def main() -> int:
    tmp = tempfile.TemporaryDirectory(prefix="ak-bench-page-")
    db = Path(tmp.name) / "pages.db"
    print(
        f"page_latency: {PAGE}-message pages from threads of {', '.join(f'{s:,}' for s in SIZES)}; "
        f"{REPEATS} rotating calls each; store {db}"
    )
    threads = build_db(db)
    print(f"query plan (deep page): {query_plan(db, threads[SIZES[-1]])}")

    client = local_client(db)
    store = Store(db)  # a second Store on the same file, for the bare calls

    def sdk_first(t: dict[str, Any]) -> Any:
        page = client.beta.threads.messages.list(t["id"], limit=PAGE)
        assert len(page.data) == PAGE and page.has_more
        return page

    def sdk_deep(t: dict[str, Any]) -> Any:
        page = client.beta.threads.messages.list(t["id"], limit=PAGE, after=t["middle"])
        assert len(page.data) == PAGE and page.data[0].id < t["middle"]
        return page

    def raw_first(t: dict[str, Any]) -> Any:
        # The same request, body read but not parsed into 100 ``Message`` models: the
        # engine's share (transport, routes, engine, store, JSON) of an SDK page.
        response = client.beta.threads.messages.with_raw_response.list(t["id"], limit=PAGE)
        assert response.http_response.read().count(b'"thread.message"') == PAGE
        return response

    def store_first(t: dict[str, Any]) -> Any:
        page = store.list("thread.message", limit=PAGE, thread_id=t["id"])
        assert len(page.data) == PAGE
        return page

    def store_deep(t: dict[str, Any]) -> Any:
        page = store.list("thread.message", limit=PAGE, after=t["middle"], thread_id=t["id"])
        assert len(page.data) == PAGE
        return page

    calls = {
        "SDK messages.list first page": sdk_first,
        "SDK messages.list after=middle": sdk_deep,
        "SDK raw response, no parsing": raw_first,
        "Store.list first page": store_first,
        "Store.list after=middle": store_deep,
    }
    for fn in calls.values():  # warm-up: page cache, SQLAlchemy statement cache, SDK
        for size in SIZES:
            fn(threads[size])
    times: dict[tuple[str, int], list[float]] = {(c, s): [] for c in calls for s in SIZES}
    for i in range(REPEATS):
        order = SIZES[i % len(SIZES) :] + SIZES[: i % len(SIZES)]
        for size in order:
            for name, fn in calls.items():
                t0 = time.perf_counter()
                fn(threads[size])
                times[(name, size)].append(time.perf_counter() - t0)

    def med(name: str, size: int) -> float:
        return statistics.median(times[(name, size)]) * 1000

    base, big = SIZES[0], SIZES[-1]
    print()
    header = "".join(f"{f'{s:,} msgs':>14}" for s in SIZES)
    print(
        f"{'ms per page (median)':<34}{header}{f'{big // 1000}k/{base // 1000}k':>10}"
        f"{'p90@' + f'{big // 1000}k':>10}"
    )
    worst_ratio = 0.0
    for name in calls:
        cells = "".join(f"{med(name, s):>14.2f}" for s in SIZES)
        ratio = med(name, big) / med(name, base)
        p90 = statistics.quantiles(times[(name, big)], n=10)[-1] * 1000
        worst_ratio = max(worst_ratio, ratio)
        print(f"{name:<34}{cells}{ratio:>9.2f}x{p90:>10.2f}")

    sdk_big = max(med("SDK messages.list first page", big), med("SDK messages.list after=middle", big))
    sdk_page = med("SDK messages.list first page", big)
    engine_share = med("SDK raw response, no parsing", big) / sdk_page
    store_share = med("Store.list first page", big) / sdk_page
    print()
    print(
        f"of an SDK first page at {big:,}: {store_share:.0%} Store.list, {engine_share:.0%} the whole "
        f"request without parsing; the rest ({1 - engine_share:.0%}) is the SDK building 100 Message models"
    )
    ok = sdk_big <= TARGET_MS and worst_ratio <= FLAT
    print(
        f"target: <= {TARGET_MS:.0f} ms per {PAGE}-message page at {big:,} messages (SDK path), "
        f"flat ({big // 1000}k/{base // 1000}k <= {FLAT}x)"
    )
    print(
        f"RESULT: {'PASS' if ok else 'MISS'}  (worst SDK page at {big:,}: {sdk_big:.2f} ms; "
        f"worst {big // 1000}k/{base // 1000}k ratio {worst_ratio:.2f}x)"
    )
    store.close()
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    from _common import run_main

    run_main(main, __file__)
