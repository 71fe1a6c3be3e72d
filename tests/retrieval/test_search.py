"""Keyword + semantic search over the chunks table, on SQLite and PostgreSQL.

The semantic side uses an OpenAI-compatible embeddings server (the fake upstream, over real
HTTP) whose vectors are hashed bags of words, so the expected neighbours are known.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from assistant_kit.errors import InvalidRequestError
from assistant_kit.retrieval.chunking import Chunk
from assistant_kit.retrieval.embeddings import NoEmbedder, OpenAIEmbedder
from assistant_kit.retrieval.search import (
    add_chunks,
    delete_chunks,
    file_chunk_texts,
    fuse,
    rewrite_query,
    search,
    to_page,
    validate_query,
    validate_search_options,
)
from assistant_kit.store import Store

DOCS = {
    "file_gcd": "Greatest common divisor of the integer arguments.",
    "file_sqrt": "Return the square root of x as a floating point number.",
    "file_sort": "Sort the list in place, stable, ascending by key.",
    "file_json": "Serialize obj to a JSON formatted string with indentation.",
    "file_fox": "The quick brown fox jumps over the lazy dog.",
}


def ingest(
    store: Store, embedder: OpenAIEmbedder | None, vs: str = "vs_a", docs: dict[str, str] = DOCS
) -> None:
    with store._write() as conn:
        for file_id, text in docs.items():
            vectors = embedder.embed([text]) if embedder else None
            add_chunks(conn, vs, file_id, [Chunk(0, text, 10)], vectors, embedder.name if embedder else None)


def test_keyword_only_ranks_matching_chunks_first(store: Store) -> None:
    ingest(store, None)
    with store._read() as conn:
        results = search(conn, ["vs_a"], "square roots", embedder=NoEmbedder())
    assert results.mode == "keyword"
    assert results.notes == ["no embedding backend: keyword results only"]
    assert results.hits[0].file_id == "file_sqrt"  # stemming: "roots" finds "root"
    assert results.hits[0].score == 1.0
    assert [h.file_id for h in results.hits] == ["file_sqrt"]  # nothing else shares a word


def test_hybrid_fuses_both_rankings_into_scores_in_0_1(store: Store, http_embedder: OpenAIEmbedder) -> None:
    ingest(store, http_embedder)
    with store._read() as conn:
        results = search(conn, ["vs_a"], "greatest common divisor", embedder=http_embedder, max_num_results=5)
    assert results.mode == "hybrid" and results.search_query == ["greatest common divisor"]
    top = results.hits[0]
    assert (top.file_id, top.keyword_rank, top.semantic_rank, top.score) == ("file_gcd", 1, 1, 1.0)
    assert all(0 <= h.score <= 1 for h in results.hits)
    assert [h.score for h in results.hits] == sorted((h.score for h in results.hits), reverse=True)
    # Only the semantic list holds the others (no shared words): at most half the top score.
    assert all(h.score <= 0.5 for h in results.hits[1:])
    with store._read() as conn:
        strict = search(
            conn, ["vs_a"], "greatest common divisor", embedder=http_embedder, score_threshold=0.6
        )
        one = search(conn, ["vs_a"], "greatest common divisor", embedder=http_embedder, max_num_results=1)
    assert [h.file_id for h in strict.hits] == ["file_gcd"]
    assert len(one.hits) == 1


def test_stores_files_and_deletions_are_respected(store: Store, http_embedder: OpenAIEmbedder) -> None:
    ingest(store, http_embedder)
    ingest(store, http_embedder, vs="vs_b", docs={"file_other": "Greatest common divisor, elsewhere."})
    with store._read() as conn:
        only_a = search(conn, ["vs_a"], "common divisor", embedder=http_embedder)
        both = search(conn, ["vs_a", "vs_b"], "common divisor", embedder=http_embedder)
        filtered = search(conn, ["vs_a"], "common divisor", embedder=http_embedder, file_ids={"file_fox"})
        nothing = search(conn, ["vs_a"], "common divisor", embedder=http_embedder, file_ids=set())
    assert "file_other" not in {h.file_id for h in only_a.hits}
    assert {"file_gcd", "file_other"} <= {h.file_id for h in both.hits[:2]}
    assert {h.file_id for h in filtered.hits} == {"file_fox"}
    assert nothing.hits == []
    with store._write() as conn:
        assert delete_chunks(conn, "vs_a", "file_gcd") == 1
    with store._read() as conn:
        after = search(conn, ["vs_a"], "common divisor", embedder=http_embedder)
        assert file_chunk_texts(conn, "vs_a", "file_gcd") == []
    # Gone from the keyword index and from the cached vectors alike.
    assert "file_gcd" not in {h.file_id for h in after.hits}
    # Added chunks are visible to the next search (the vector cache appends them).
    ingest(store, http_embedder, docs={"file_gcd2": "Compute the greatest common divisor quickly."})
    with store._read() as conn:
        again = search(conn, ["vs_a"], "greatest common divisor", embedder=http_embedder, mode="semantic")
    assert again.hits[0].file_id == "file_gcd2"
    with store._write() as conn:
        assert delete_chunks(conn, "vs_a") == 5


def test_chunks_embedded_by_another_model_are_not_compared(
    store: Store, http_embedder: OpenAIEmbedder
) -> None:
    ingest(store, http_embedder)
    other = OpenAIEmbedder("other-model", api_base=http_embedder.api_base, max_retries=0)
    with store._read() as conn:
        results = search(conn, ["vs_a"], "greatest common divisor", embedder=other)
    assert results.mode == "keyword"
    assert results.notes == ["no chunks embedded with " + other.name + ": keyword results only"]
    assert results.hits[0].file_id == "file_gcd"


def test_several_queries_and_rewrite(store: Store) -> None:
    ingest(store, None)
    with store._read() as conn:
        results = search(conn, ["vs_a"], ["square root", "JSON string"], embedder=None)
        rewritten = search(conn, ["vs_a"], "Can you please tell me what is the lazy dog?", rewrite=True)
    assert {h.file_id for h in results.hits[:2]} == {"file_sqrt", "file_json"}
    assert rewritten.search_query == ["lazy dog"]
    assert rewritten.hits[0].file_id == "file_fox"


def test_query_syntax_is_never_interpreted(store: Store) -> None:
    ingest(store, None)
    with store._read() as conn:
        for query in ['"unbalanced', "fox AND NOT", "NEAR(fox dog)", "col:fox", "fox* | !dog & (", "", "? !"]:
            search(conn, ["vs_a"], query, embedder=None)


def test_rewrite_query_keeps_content_words() -> None:
    assert rewrite_query("What is the function that returns the greatest common divisor?") == (
        "function returns greatest common divisor"
    )
    assert rewrite_query("what is it?") == "what is it?"


def test_fuse_normalises_to_one_for_agreement() -> None:
    scores = fuse([[1, 2, 3], [1, 3]])
    assert scores[1] == 1.0
    assert scores[3] > scores[2]
    assert 0 < scores[2] < 0.5


@pytest.mark.parametrize("backend", ["sqlite"])
def test_fts_index_is_kept_in_step_by_triggers(tmp_path: object, backend: str) -> None:
    store = Store(f"{tmp_path}/kit.db")
    ingest(store, None)
    with store._write() as conn:
        conn.exec_driver_sql(
            "UPDATE vector_store_chunks SET text = 'owls at night' WHERE file_id = 'file_fox'"
        )
    with store._read() as conn:
        assert [h.file_id for h in search(conn, ["vs_a"], "owls", embedder=None).hits] == ["file_fox"]
        assert search(conn, ["vs_a"], "lazy dog", embedder=None).hits == []
    store.close()


def test_large_stores_use_the_hnsw_index_and_keep_it_current(
    store: Store, http_embedder: OpenAIEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("usearch")
    from assistant_kit.retrieval import search as search_module

    monkeypatch.setenv("ASSISTANT_KIT_ANN_MIN_CHUNKS", "3")
    ingest(store, http_embedder)
    with store._read() as conn:
        results = search(conn, ["vs_a"], "greatest common divisor", embedder=http_embedder, mode="semantic")
    entry = next(v for k, v in search_module._cache.items() if k[1] == "vs_a")
    assert entry.ann is not None and entry.ann.size == 5
    assert results.hits[0].file_id == "file_gcd"
    ingest(store, http_embedder, docs={"file_owl": "Owls hunt at night in silent flight."})
    with store._read() as conn:
        results = search(conn, ["vs_a"], "owls hunt at night", embedder=http_embedder, mode="semantic")
        filtered = search(
            conn, ["vs_a"], "owls", embedder=http_embedder, mode="semantic", file_ids={"file_fox"}
        )
    assert entry.ann.size == 6  # added without a rebuild
    assert results.hits[0].file_id == "file_owl"
    assert [h.file_id for h in filtered.hits] == ["file_fox"]  # filtered searches stay exact


def test_page_has_the_spec_shape(store: Store) -> None:
    ingest(store, None)
    with store._read() as conn:
        results = search(conn, ["vs_a"], "lazy dog", embedder=None)
    files = {"file_fox": ("fox.txt", {"kind": "story"})}
    page = to_page(results, files)
    assert page == {
        "object": "vector_store.search_results.page",
        "search_query": ["lazy dog"],
        "data": [
            {
                "file_id": "file_fox",
                "filename": "fox.txt",
                "score": 1.0,
                "attributes": {"kind": "story"},
                "content": [{"type": "text", "text": DOCS["file_fox"]}],
            }
        ],
        "has_more": False,
        "next_page": None,
    }
    from openai.types.vector_store_search_response import VectorStoreSearchResponse

    assert VectorStoreSearchResponse.model_validate(page["data"][0]).filename == "fox.txt"


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"max_num_results": 0}, "max_num_results"),
        ({"max_num_results": 51}, "max_num_results"),
        ({"max_num_results": "5"}, "max_num_results"),
        ({"max_num_results": True}, "max_num_results"),
        ({"score_threshold": 1.5}, "ranking_options.score_threshold"),
        ({"score_threshold": "high"}, "ranking_options.score_threshold"),
        ({"rewrite": "yes"}, "rewrite_query"),
    ],
)
def test_bad_search_options_name_the_parameter(options: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidRequestError) as err:
        validate_search_options(**options)
    assert err.value.param == param


def test_query_validation() -> None:
    assert validate_query("fox") == ["fox"]
    assert validate_query(["fox", "dog"]) == ["fox", "dog"]
    assert validate_search_options(50, 1, True) == (50, 1.0, True)
    for bad in ("", "  ", [], ["fox", ""], ["fox", 3], None, 3):
        with pytest.raises(InvalidRequestError) as err:
            validate_query(bad)
        assert err.value.param == "query"


def _corpus(n: int) -> dict[str, str]:
    """``n`` chunks that all say "data" (a common word), a tenth of them something rarer,
    of varied lengths so that ranks differ."""
    rare = ["zebra", "quartz", "walrus", "oboe"]
    return {
        f"file_{i:03d}": " ".join(
            ["data"] * (1 + i % 3)
            + ([rare[i % 4]] * (1 + i % 2) if i % 10 == 0 else [])
            + ["record", "value", "entry"][: i % 4]
            + ["filler"] * (i % 7)
        )
        for i in range(n)
    }


def test_statistics_are_kept_with_the_chunks(store: Store) -> None:
    """``vector_store_index_stats`` counts the chunks and changes, and on PostgreSQL
    ``vector_store_terms`` holds each lexeme's document frequency and a bound of its rank —
    through additions, a file's removal and a store's removal."""
    ingest(store, None, docs=_corpus(60))
    ingest(store, None, vs="vs_b", docs={"file_b": "Data elsewhere."})
    with store.transaction(write=True) as conn:
        assert delete_chunks(conn, "vs_a", "file_010") == 1
        assert delete_chunks(conn, "vs_a", "file_unknown") == 0
    with store.transaction() as conn:
        chunks_now, version, removals = conn.exec_driver_sql(
            "SELECT chunks, version, removals FROM vector_store_index_stats WHERE vector_store_id = 'vs_a'"
        ).one()
        assert (chunks_now, version, removals) == (59, 61, 1)
        if store.is_sqlite:
            return
        counted = dict(
            conn.exec_driver_sql(
                "SELECT lexeme, count(*) FROM vector_store_chunks, unnest(tsvector_to_array(tsv)) AS "
                "lexeme WHERE vector_store_id = 'vs_a' GROUP BY lexeme"
            ).all()
        )
        kept = dict(
            conn.exec_driver_sql(
                "SELECT lexeme, df FROM vector_store_terms WHERE vector_store_id = 'vs_a' AND df > 0"
            ).all()
        )
        assert kept == counted and kept["data"] == 59 and kept["walrus"] == 2  # file_010 went
        unbounded = conn.exec_driver_sql(
            "SELECT count(*) FROM vector_store_chunks AS c, unnest(tsvector_to_array(c.tsv)) AS w(word) "
            "JOIN vector_store_terms AS t ON t.vector_store_id = 'vs_a' AND t.lexeme = w.word "
            "WHERE c.vector_store_id = 'vs_a' AND ts_rank(c.tsv, to_tsquery('simple', w.word), 1) "
            "> t.rank_bound"
        ).scalar()
        assert unbounded == 0
    with store.transaction(write=True) as conn:
        assert delete_chunks(conn, "vs_a") == 59
    with store.transaction() as conn:
        left = conn.exec_driver_sql(
            "SELECT (SELECT count(*) FROM vector_store_index_stats), "
            "(SELECT count(*) FROM vector_store_terms)"
        ).one()
    assert tuple(left) == (1, 0 if store.is_sqlite else 2)  # vs_b's: "data", "elsewher"


@pytest.mark.parametrize("query", ["data zebra", "data record quartz", "entry data", "filler walrus oboe"])
def test_pruned_keyword_ranking_is_the_full_ranking(
    store: Store, query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL chunks with only common words are skipped when they cannot reach the
    results (max-score pruning): the ranking is exactly the one of ranking every match."""
    from assistant_kit.retrieval import search as search_module

    ingest(store, None, docs=_corpus(80))
    ranked_for: list[str] = []  # the words of each ranking query (PostgreSQL)

    def seen(_conn: Any, _cursor: Any, _sql: str, params: Any, *_: Any) -> None:
        if isinstance(params, dict) and "q" in params:
            ranked_for.append(params["q"])

    event.listen(store.engine, "before_cursor_execute", seen)
    with store.transaction() as conn:
        pruned = [search_module.keyword_search(conn, ["vs_a"], query, limit) for limit in (3, 10)]
        monkeypatch.setattr(search_module, "COMMON_SHARE", 2.0)  # no word is common
        full = [search_module.keyword_search(conn, ["vs_a"], query, limit) for limit in (3, 10)]
    assert pruned == full and all(full)
    if query == "entry data" and not store.is_sqlite:
        assert ranked_for[0] == "entry"  # "data", in every chunk, was left out


def test_the_vector_cache_sees_a_removal_and_an_addition_of_as_many_chunks(
    store: Store, http_embedder: OpenAIEmbedder
) -> None:
    """Same chunk count after a file left and another came: the statistics row's counters,
    not the count, tell the cache to read the store again."""
    ingest(store, http_embedder)
    with store.transaction() as conn:
        first = search(conn, ["vs_a"], "owls hunt at night", embedder=http_embedder, mode="semantic")
    assert "file_owl" not in {h.file_id for h in first.hits}
    with store.transaction(write=True) as conn:
        delete_chunks(conn, "vs_a", "file_fox")
    ingest(store, http_embedder, docs={"file_owl": "Owls hunt at night in silent flight."})
    with store.transaction() as conn:
        again = search(conn, ["vs_a"], "owls hunt at night", embedder=http_embedder, mode="semantic")
    assert again.hits[0].file_id == "file_owl"
    assert "file_fox" not in {h.file_id for h in again.hits}
