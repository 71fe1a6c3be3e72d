"""Other clients' latency while someone floods the proxy with wrong keys.

One ``assistant-kit serve`` subprocess (SQLite, master key, a few generated keys in its key
table). A "victim" client with a valid generated key sends ``GET /v1/assistants`` in a loop
and records each latency. Measured twice in the same run, same proxy:

* baseline: the victim alone for ``SECONDS``;
* flood: the victim while ``FLOODERS`` threads send requests with a different wrong key each
  time, as fast as the proxy answers them (all 401).

Reported: the victim's p50/p95 in both phases, their ratio, and the flood's rate. (The
proxy re-reads its key table at most once a second for keys it does not know, so wrong keys
should not queue behind store work; tests/server/test_hardening.py counts those reads.)
The probe behind issue 13 saw p95 666 ms at 292 wrong-key requests/s when every unknown key
was a store lookup. Target: flood p95 <= 3x baseline p95 (the proxy shares 2 cores with
the flooders and this client, so some slowdown is CPU, not queueing).

Run from the repo root: ``.venv/bin/python benchmarks/wrong_keys.py``. Always exits 0.
Environment: BENCH_SECONDS (5), BENCH_FLOODERS (4).
"""

from __future__ import annotations

import itertools
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx2  # noqa: E402

from benchmarks._proxy import ProxyProcess, pct  # noqa: E402
from tests.server.conftest import MASTER_KEY  # noqa: E402

SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
FLOODERS = int(os.environ.get("BENCH_FLOODERS", "4"))


def victim(base: str, key: str, seconds: float) -> list[float]:
    latencies: list[float] = []
    with httpx2.Client(base_url=base, headers={"authorization": f"Bearer {key}"}, timeout=30) as http:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            response = http.get("/v1/assistants", params={"limit": "5"})
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
    return latencies


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = {"general_settings": {"master_key": MASTER_KEY, "database_url": f"{tmp}/bench.db"}}
        proxy = ProxyProcess(config, Path(tmp), "wrong_keys")
        try:
            with httpx2.Client(
                base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}, timeout=30
            ) as admin:
                keys = [admin.post("/key/generate", json={}).json()["key"] for _ in range(20)]
            key = keys[0]
            victim(proxy.url, key, 1.0)  # warm-up
            alone = victim(proxy.url, key, SECONDS)

            stop = threading.Event()
            counter = itertools.count()
            sent = [0] * FLOODERS

            def flood(slot: int) -> None:
                with httpx2.Client(base_url=proxy.url, timeout=30) as http:
                    while not stop.is_set():
                        wrong = f"sk-wrong-{next(counter)}-{'x' * 24}"
                        response = http.get("/v1/assistants", headers={"authorization": f"Bearer {wrong}"})
                        assert response.status_code == 401
                        sent[slot] += 1

            flooders = [threading.Thread(target=flood, args=(i,), daemon=True) for i in range(FLOODERS)]
            for thread in flooders:
                thread.start()
            time.sleep(0.5)
            started = time.monotonic()
            before = sum(sent)
            flooded = victim(proxy.url, key, SECONDS)
            rate = (sum(sent) - before) / (time.monotonic() - started)
            stop.set()
            for thread in flooders:
                thread.join(10)
        finally:
            proxy.stop()
    p50a, p95a = pct(alone, 50) * 1000, pct(alone, 95) * 1000
    p50f, p95f = pct(flooded, 50) * 1000, pct(flooded, 95) * 1000
    print(f"victim alone:        {len(alone):>6} requests, p50 {p50a:6.1f} ms, p95 {p95a:6.1f} ms")
    print(f"victim during flood: {len(flooded):>6} requests, p50 {p50f:6.1f} ms, p95 {p95f:6.1f} ms")
    print(f"flood: {FLOODERS} clients, {rate:.0f} wrong-key requests/s, all 401")
    ratio = p95f / p95a
    print(f"p95 flood / alone: {ratio:.2f}x (target <= 3x)")
    print("PASS" if ratio <= 3 else "MISS")


if __name__ == "__main__":
    main()
