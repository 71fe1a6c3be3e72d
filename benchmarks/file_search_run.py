"""A run with ``file_search`` over a 10k-chunk vector store against the same run without the
tool, through the official SDK on the in-process engine (issue 18: ≤ 100 ms added).

* **with the tool**: an assistant on the scripted ``test/search`` model with ``file_search`` and
  the store attached. The model calls the tool (one query: the user's message), the engine
  searches the store (hybrid: the query embedded by the embedded model, keyword + exact cosine,
  fused; or keyword only), records the ``file_search`` step, and the model answers from the
  first result in a second turn;
* **baseline (same run, no tool)**: the same assistant and thread without ``file_search``: the
  model answers in one turn (``test/search`` echoes the question when it has no tool).

Both are ``runs.stream(...).until_done()`` (event-driven, no polling), alternated, each
``REPEATS`` times after one warm-up run each (the warm-up loads the store's vectors into the
search cache and the embedded model). Reported: median and p90 wall time, the overhead of the
tool (difference of medians) and the ratio, and for reference the search alone (the store
service's public search called directly, same query). Scripted model turns cost ~1 ms, so the
overhead is the engine's: the search, the step (two writes, four events), one more turn.

The store: 10 real files uploaded and ingested through the API, then their chunks padded to
``CHUNKS`` in total (as ``benchmarks/vector_search.py`` builds its corpus): texts made of 4
random sentences of the stdlib docstrings of the retrieval quality set; vectors = real
embeddings of ``BASE_DOCS`` of those docstrings plus noise, stored under the embedded model's
name so semantic search uses them (embedding 10k real chunks would take hours here).

Two modes, each on its own database: ``keyword`` (``ASSISTANT_KIT_EMBEDDINGS=none``: no query
embedding) and ``hybrid`` (the default embedder, when the ``retrieval`` extra is installed).
Run from the repo root: ``.venv/bin/python benchmarks/file_search_run.py``. Always exits 0.
Environment: BENCH_CHUNKS (10000), BENCH_REPEATS (15), BENCH_BASE_DOCS (40), BENCH_MODES
(keyword,hybrid).
"""

from __future__ import annotations

import io
import os
import random
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

from benchmarks._common import run_main  # noqa: E402

CHUNKS = int(os.environ.get("BENCH_CHUNKS", "10000"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "15"))
BASE_DOCS = int(os.environ.get("BENCH_BASE_DOCS", "40"))
MODES = [m for m in os.environ.get("BENCH_MODES", "keyword,hybrid").split(",") if m]
FILES = 10
QUESTION = "what returns the greatest common divisor"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def corpus(embedder: Any) -> tuple[list[str], Any, str | None]:
    """Sentences of the stdlib docstrings, and base vectors (None keyword-only)."""
    from assistant_kit.retrieval.quality import stdlib_corpus

    docs = stdlib_corpus()
    sentences = [s.strip() for d in docs for s in d.text.replace("\n", " ").split(". ") if len(s.split()) > 3]
    if embedder is None or not embedder.enabled:
        return sentences, None, None
    rng = random.Random(1)
    base = embedder.embed([d.text for d in rng.sample(docs, min(BASE_DOCS, len(docs)))])
    return sentences, base, embedder.name


def build(client: Any, db_store: Any, sentences: list[str], base: Any, model: str | None) -> str:
    """A store of ``FILES`` ingested files padded with synthetic chunks to ``CHUNKS``."""
    import numpy as np

    from assistant_kit.retrieval.chunking import Chunk
    from assistant_kit.retrieval.search import add_chunks

    rng = random.Random(0)
    ids = []
    for n in range(FILES):
        text = ". ".join(rng.sample(sentences, 6)) + ".\n"
        if n == 0:
            text = "The math module's gcd function returns the greatest common divisor of two integers.\n"
        upload = client.files.create(file=(f"doc{n}.txt", io.BytesIO(text.encode())), purpose="assistants")
        ids.append(upload.id)
    store = client.vector_stores.create(name="bench", file_ids=ids)
    deadline = time.monotonic() + 600
    while client.vector_stores.retrieve(store.id).status != "completed":
        if time.monotonic() > deadline:
            raise RuntimeError("ingestion did not finish")
        time.sleep(0.2)
    per_file = (CHUNKS - FILES) // FILES
    gen = np.random.default_rng(0)
    for file_id in ids:
        texts = [". ".join(rng.sample(sentences, 4)) for _ in range(per_file)]
        vectors = None
        if base is not None:
            vectors = base[gen.integers(0, len(base), per_file)]
            vectors = vectors + gen.normal(0, 0.04, vectors.shape).astype(np.float32)
            vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
        with db_store._write() as conn:
            add_chunks(
                conn,
                store.id,
                file_id,
                [Chunk(i + 1, t, 60) for i, t in enumerate(texts)],
                vectors,
                model,
            )
    return store.id


def timed_run(client: Any, assistant_id: str) -> float:
    """One run on a fresh thread holding the question (made before the clock starts)."""
    thread = client.beta.threads.create(messages=[{"role": "user", "content": QUESTION}])
    started = time.perf_counter()
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant_id) as stream:
        stream.until_done()
    took = time.perf_counter() - started
    run = stream.get_final_run()
    if run.status != "completed":
        raise RuntimeError(f"run {run.status}: {run.last_error}")
    return took


def measure(mode: str) -> dict[str, Any]:
    from assistant_kit.client import local_client
    from assistant_kit.runtime import app_for, engine_loop

    if mode == "keyword":
        os.environ["ASSISTANT_KIT_EMBEDDINGS"] = "none"
    else:
        os.environ.pop("ASSISTANT_KIT_EMBEDDINGS", None)
    from assistant_kit.engine.vector_index import shared_embedder

    embedder = shared_embedder(os.environ.get("ASSISTANT_KIT_EMBEDDINGS"))
    if mode == "hybrid" and not embedder.enabled:
        return {"mode": mode, "skipped": "no embedded model installed (the retrieval extra)"}
    tmp = tempfile.mkdtemp()
    db = f"{tmp}/bench.db"
    client = local_client(db)
    engine = app_for(db).state.engine
    t = time.perf_counter()
    sentences, base, model = corpus(embedder if mode == "hybrid" else None)
    store_id = build(client, engine.sync_store, sentences, base, model)
    built = time.perf_counter() - t
    with_tool = client.beta.assistants.create(
        model="test/search",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store_id]}},
    )
    without = client.beta.assistants.create(model="test/search")
    for assistant in (with_tool, without):  # warm-up: vector cache, embedder, code paths
        timed_run(client, assistant.id)
    tool_s, base_s = [], []
    for _ in range(REPEATS):
        tool_s.append(timed_run(client, with_tool.id))
        base_s.append(timed_run(client, without.id))
    # The search alone, as the tool calls it (the service's public search, on the engine loop).
    import asyncio

    body = {"query": [QUESTION], "max_num_results": 20, "ranking_options": {"score_threshold": 0.0}}
    search_s = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        future = asyncio.run_coroutine_threadsafe(
            engine.vector_stores.search(store_id, dict(body), None), engine_loop()
        )
        page = future.result(60)
        search_s.append(time.perf_counter() - started)
    with engine.sync_store._read() as conn:
        chunks = conn.exec_driver_sql(
            "SELECT count(*) FROM vector_store_chunks WHERE vector_store_id = ?", (store_id,)
        ).scalar()
    return {
        "mode": mode,
        "chunks": chunks,
        "built_s": built,
        "tool": tool_s,
        "base": base_s,
        "search": search_s,
        "results": len(page["data"]),
    }


def main() -> None:
    import platform

    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, load average "
        f"{tuple(round(x, 2) for x in os.getloadavg())}; {CHUNKS} chunks, {REPEATS} runs each"
    )
    rows = [measure(mode) for mode in MODES]
    print(
        "\n| search | chunks | run with file_search p50 / p90 ms | same run without p50 / p90 ms "
        "| added ms (p50) | ratio | search alone p50 ms | results |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "skipped" in r:
            print(f"| {r['mode']} | skipped: {r['skipped']} |")
            continue
        tool, base = statistics.median(r["tool"]) * 1000, statistics.median(r["base"]) * 1000
        print(
            f"| {r['mode']} | {r['chunks']} | {tool:.1f} / {pct(r['tool'], 0.9) * 1000:.1f} "
            f"| {base:.1f} / {pct(r['base'], 0.9) * 1000:.1f} | {tool - base:.1f} | {tool / base:.2f} "
            f"| {statistics.median(r['search']) * 1000:.1f} | {r['results']} |"
        )
    built = ", ".join(f"{r['mode']} {r['built_s']:.0f} s" for r in rows if "built_s" in r)
    print(f"(building the stores, not measured above: {built})")


if __name__ == "__main__":
    run_main(main, __file__)
