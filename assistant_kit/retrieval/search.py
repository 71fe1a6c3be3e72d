"""Hybrid search over vector stores' chunks: BM25 keyword + cosine semantic, fused by rank.

* **Keyword**: the store's own full-text index, the query's words (stop words dropped) OR-ed,
  so a chunk needs only some of them. SQLite: FTS5 ``bm25()``, whose IDF statistics are those
  of the whole table (all stores), a harmless approximation. PostgreSQL: a ``tsvector`` with
  ``ts_rank(…, 1)`` per word weighted by the word's BM25 IDF within the searched stores.
* **Semantic**: exact cosine with numpy over the store's vectors, held in an in-process cache
  per (database, vector store, embedding model) that is checked against ``(count, max id)`` on
  every search (one indexed query): added chunks are appended, anything else reloads. So
  replicas sharing a PostgreSQL database see each other's ingestion on their next search.
  Exact search is cheap here: 100k chunks x 384 floats is one matrix-vector product
  (measured in docs/vector-stores.md).
* **Fusion**: reciprocal rank fusion, ``Σ 1/(k + rank)`` over the keyword and semantic lists of
  every query string, divided by its maximum (first in every list), so ``score`` is in 0-1:
  1 = ranked first by every retriever, about 0.5 = first by one of two and absent from the
  other. ``score_threshold`` therefore cuts results that the retrievers do not agree on.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, func, select, text
from sqlalchemy.engine import Connection, Engine

from ..errors import InvalidRequestError
from ..store.schema import vector_store_chunks as chunks
from . import ann
from .chunking import Chunk
from .embeddings import BaseEmbedder, EmbeddingError

if TYPE_CHECKING:
    import numpy as np

    from ..store import Store

RRF_K = 60
MIN_DEPTH = 50


@dataclass
class Hit:
    """One chunk in the results; ``score`` in 0-1 (see the module docstring)."""

    chunk_id: int
    file_id: str
    vector_store_id: str
    chunk_index: int
    text: str
    score: float
    keyword_rank: int | None = None
    semantic_rank: int | None = None


@dataclass
class SearchResults:
    hits: list[Hit]
    search_query: list[str]
    #: ``hybrid``, ``keyword`` (no embedder, or no vectors for it) or ``semantic``.
    mode: str
    notes: list[str] = field(default_factory=list)


# --- writing -------------------------------------------------------------------------------


def add_chunks(
    conn: Connection,
    vector_store_id: str,
    file_id: str,
    items: Sequence[Chunk],
    embeddings: np.ndarray | None = None,
    embedding_model: str | None = None,
) -> int:
    """Insert a file's chunks (with their vectors, rows aligned with ``items``) in the caller's
    transaction; returns how many."""
    if not items:
        return 0
    rows = []
    for i, chunk in enumerate(items):
        vector = None
        if embeddings is not None:
            vector = embeddings[i].astype("<f4").tobytes()
        rows.append(
            {
                "vector_store_id": vector_store_id,
                "file_id": file_id,
                "chunk_index": chunk.index,
                "tokens": chunk.tokens,
                "text": chunk.text,
                "embedding_model": embedding_model if vector is not None else None,
                "embedding": vector,
            }
        )
    conn.execute(chunks.insert(), rows)
    return len(rows)


def delete_chunks(conn: Connection, vector_store_id: str, file_id: str | None = None) -> int:
    """Remove a file's chunks from a store (all the store's chunks when ``file_id`` is None)."""
    statement = delete(chunks).where(chunks.c.vector_store_id == vector_store_id)
    if file_id is not None:
        statement = statement.where(chunks.c.file_id == file_id)
    return int(conn.execute(statement).rowcount or 0)


def file_chunk_texts(conn: Connection, vector_store_id: str, file_id: str) -> list[str]:
    """The chunks of one file in order (the ``…/files/{id}/content`` route)."""
    rows = conn.execute(
        select(chunks.c.text)
        .where(chunks.c.vector_store_id == vector_store_id, chunks.c.file_id == file_id)
        .order_by(chunks.c.chunk_index)
    )
    return [row[0] for row in rows]


# --- query rewriting ------------------------------------------------------------------------

_STOPWORDS = frozenset(
    """a about above after again all am an and any are as at be been being below between both but by
    can could did do does doing down during each few for from further had has have having he her here
    hers him his how i if in into is it its itself just let me might more most must my no nor not now of
    off on once only or other our ours out over own please same she should so some such than that the
    their them then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours tell show find give get know
    want need explain describe""".split()
)
_WORDS = re.compile(r"\w+", re.UNICODE)


def rewrite_query(query: str) -> str:
    """``rewrite_query=true``: the query's content words, lower-cased, in order, without
    question words, pronouns, auxiliaries and request verbs ("please tell me how do I …");
    the query itself if nothing would remain. Offline and deterministic (no model call)."""
    words = [w for w in _WORDS.findall(query.lower()) if w not in _STOPWORDS]
    return " ".join(words) if words else query.strip()


# --- keyword ---------------------------------------------------------------------------------


def _terms(query: str) -> list[str]:
    """The words the keyword index is asked for: stop words dropped (unless nothing else is
    left). They carry almost no BM25 weight, yet each matches nearly every chunk and the
    index ranks every match, so they cost most of a keyword search's time."""
    words = [w for w in _WORDS.findall(query.lower()) if len(w) > 1 or w.isdigit()]
    content = [w for w in words if w not in _STOPWORDS]
    return list(dict.fromkeys(content or words))


def keyword_search(
    conn: Connection,
    vector_store_ids: Sequence[str],
    query: str,
    limit: int,
    file_ids: Collection[str] | None = None,
) -> list[int]:
    """Chunk ids, best first, by BM25 (SQLite) / IDF-weighted ts_rank (PostgreSQL)."""
    terms = _terms(query)
    if not terms or (file_ids is not None and not file_ids):
        return []
    params: dict[str, Any] = {"stores": list(vector_store_ids), "limit": limit}
    file_clause = ""
    if file_ids is not None:
        file_clause = " AND c.file_id IN :files"
        params["files"] = list(file_ids)
    if conn.dialect.name == "sqlite":
        params["q"] = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        sql = (
            "SELECT c.id FROM vector_store_chunks_fts AS f JOIN vector_store_chunks AS c ON c.id = f.rowid "
            "WHERE vector_store_chunks_fts MATCH :q AND c.vector_store_id IN :stores"
            + file_clause
            + " ORDER BY bm25(vector_store_chunks_fts) LIMIT :limit"
        )
    else:
        params["q"] = " | ".join(terms)
        rank = " + ".join(
            f"{weight:.6f} * ts_rank(c.tsv, q{i}, 1)"
            for i, weight in enumerate(_pg_idf(conn, vector_store_ids, terms))
        )
        params.update({f"t{i}": term for i, term in enumerate(terms)})
        # Each word's tsquery parsed once, in FROM, not once per ranked row.
        words = "".join(f", to_tsquery('english', :t{i}) AS q{i}" for i in range(len(terms)))
        sql = (
            f"SELECT c.id FROM vector_store_chunks AS c, to_tsquery('english', :q) AS q{words} "
            "WHERE c.tsv @@ q AND c.vector_store_id IN :stores"
            + file_clause
            + f" ORDER BY {rank} DESC, c.id LIMIT :limit"
        )
    statement = text(sql).bindparams(bindparam("stores", expanding=True))
    if file_ids is not None:
        statement = statement.bindparams(bindparam("files", expanding=True))
    return [row[0] for row in conn.execute(statement, params)]


def _pg_idf(conn: Connection, vector_store_ids: Sequence[str], terms: Sequence[str]) -> list[float]:
    """BM25's inverse document frequency of each term within the stores (PostgreSQL's own
    ``ts_rank`` has none, and without it common words outrank rare ones: recall@5 0.89 against
    0.92 with these weights on the quality set)."""
    import math

    # One statement, one count per word, each a bitmap scan of the GIN index for that word
    # alone. (Counting all words in one scan with ``count(*) FILTER (WHERE tsv @@ …)``
    # re-evaluated every word on every matching row's detoasted tsvector: 106 ms against 23 ms
    # p50 at 100k chunks on PostgreSQL 15, where a common word matches a quarter of the chunks.)
    where = "FROM vector_store_chunks WHERE vector_store_id IN :stores"
    counts = ", ".join(
        f"(SELECT count(*) {where} AND tsv @@ to_tsquery('english', :t{i}))" for i in range(len(terms))
    )
    statement = text(f"SELECT (SELECT count(*) {where}), {counts}").bindparams(
        bindparam("stores", expanding=True)
    )
    params: dict[str, Any] = {"stores": list(vector_store_ids)}
    params.update({f"t{i}": term for i, term in enumerate(terms)})
    total, *frequencies = conn.execute(statement, params).one()
    return [math.log(1 + (total - df + 0.5) / (df + 0.5)) for df in frequencies]


# --- semantic --------------------------------------------------------------------------------


class _Vectors:
    """One store's vectors of one model, as arrays (ids, file codes, unit-length rows)."""

    def __init__(self) -> None:
        import numpy as np

        self.fingerprint: tuple[int, int] = (0, 0)
        self.ids = np.zeros(0, dtype=np.int64)
        self.codes = np.zeros(0, dtype=np.int32)
        self.files: dict[str, int] = {}
        self.matrix: Any = None
        self.ann: Any = None  # an ann.AnnIndex over ``matrix`` once the store is large enough
        self.lock = threading.Lock()

    def sync_ann(self) -> None:
        """Index rows added since the last call; build the index when the store crossed the
        threshold (and usearch is installed)."""
        if self.matrix is None:
            return
        if self.ann is None:
            if len(self.matrix) < ann.min_chunks() or not ann.available():
                return
            self.ann = ann.AnnIndex(int(self.matrix.shape[1]))
        self.ann.add(self.matrix)

    def extend(self, rows: Iterable[Any], dimensions: int) -> None:
        import numpy as np

        ids, codes, vectors = [], [], []
        for chunk_id, file_id, blob in rows:
            vector = np.frombuffer(blob, dtype="<f4")
            if vector.shape[0] != dimensions:
                continue  # written by another build of the model: not comparable
            ids.append(chunk_id)
            codes.append(self.files.setdefault(file_id, len(self.files)))
            vectors.append(vector)
        if not ids:
            if self.matrix is None:
                self.matrix = np.zeros((0, dimensions), dtype=np.float32)
            return
        block = np.vstack(vectors).astype(np.float32)
        self.ids = np.concatenate([self.ids, np.asarray(ids, dtype=np.int64)])
        self.codes = np.concatenate([self.codes, np.asarray(codes, dtype=np.int32)])
        self.matrix = (
            block if self.matrix is None or not len(self.matrix) else np.vstack([self.matrix, block])
        )


_cache: dict[tuple[str, str, str], _Vectors] = {}
_cache_lock = threading.Lock()


def _vectors(conn: Connection, vector_store_id: str, model: str, dimensions: int) -> _Vectors:
    key = (str(conn.engine.url), vector_store_id, model)
    with _cache_lock:
        entry = _cache.setdefault(key, _Vectors())
    where = (chunks.c.vector_store_id == vector_store_id, chunks.c.embedding_model == model)
    count, max_id = conn.execute(select(func.count(), func.max(chunks.c.id)).where(*where)).one()
    fingerprint = (int(count or 0), int(max_id or 0))
    with entry.lock:
        if entry.fingerprint == fingerprint and entry.matrix is not None:
            entry.sync_ann()
            return entry
        base = select(chunks.c.id, chunks.c.file_id, chunks.c.embedding).where(*where).order_by(chunks.c.id)
        old_count, old_max = entry.fingerprint
        if entry.matrix is not None and fingerprint[0] >= old_count and fingerprint[1] >= old_max:
            added = conn.execute(base.where(chunks.c.id > old_max)).all()
            if old_count + len(added) == fingerprint[0]:
                entry.extend(added, dimensions)
                entry.fingerprint = fingerprint
                entry.sync_ann()
                return entry
        fresh = _Vectors()
        fresh.extend(conn.execute(base), dimensions)
        entry.ids, entry.codes, entry.files, entry.matrix = fresh.ids, fresh.codes, fresh.files, fresh.matrix
        entry.ann = None
        entry.fingerprint = fingerprint
        entry.sync_ann()
        return entry


def semantic_search(
    conn: Connection,
    vector_store_ids: Sequence[str],
    query_vector: np.ndarray,
    model: str,
    limit: int,
    file_ids: Collection[str] | None = None,
) -> list[int]:
    """Chunk ids, best first, by cosine similarity with ``query_vector``: exact, or by the
    store's HNSW index when it has one (see :mod:`.ann`) and no file restriction applies."""
    import numpy as np

    all_ids, all_scores = [], []
    for store_id in vector_store_ids:
        entry = _vectors(conn, store_id, model, int(query_vector.shape[0]))
        with entry.lock:
            ids, codes, matrix, files, index = entry.ids, entry.codes, entry.matrix, entry.files, entry.ann
            if index is not None and file_ids is None and len(ids):
                # Under the lock: the index and ``ids`` describe the same rows.
                positions, similarities = index.search(query_vector, limit)
                all_ids.append(ids[positions])
                all_scores.append(similarities)
                continue
        if matrix is None or not len(ids):
            continue
        scores = matrix @ query_vector
        if file_ids is not None:
            wanted = np.asarray([files[f] for f in file_ids if f in files], dtype=np.int32)
            scores = np.where(np.isin(codes, wanted), scores, -np.inf)
        k = min(limit, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.isfinite(scores[top])]
        all_ids.append(ids[top])
        all_scores.append(scores[top])
    if not all_ids:
        return []
    ids = np.concatenate(all_ids)
    scores = np.concatenate(all_scores)
    order = np.argsort(-scores, kind="stable")[:limit]
    return [int(i) for i in ids[order]]


def forget_vectors(vector_store_id: str | None = None) -> None:
    """Drop cached vectors (of one store, or all): a deleted store's memory is freed at once."""
    with _cache_lock:
        for key in [k for k in _cache if vector_store_id is None or k[1] == vector_store_id]:
            del _cache[key]


# --- fusion -----------------------------------------------------------------------------------


def fuse(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> dict[int, float]:
    """Reciprocal rank fusion normalised to 0-1 (1 = first in every ranking)."""
    if not rankings:
        return {}
    totals: dict[int, float] = {}
    for ranking in rankings:
        for rank, chunk_id in enumerate(ranking, start=1):
            totals[chunk_id] = totals.get(chunk_id, 0.0) + 1.0 / (k + rank)
    best = len(rankings) / (k + 1)
    return {chunk_id: min(1.0, value / best) for chunk_id, value in totals.items()}


@dataclass
class EmbeddedQuery:
    """A search's query strings (rewritten when asked) with their vectors (None: keyword only)
    and what the results should say about it: made by :func:`embed_query` before any
    transaction is opened, since the embedder may be slow (a model, a server)."""

    texts: list[str]
    vectors: np.ndarray | None
    model: str | None
    mode: str
    notes: list[str] = field(default_factory=list)


def embed_query(
    query: str | Sequence[str],
    *,
    embedder: BaseEmbedder | None = None,
    rewrite: bool = False,
    mode: str = "hybrid",
) -> EmbeddedQuery:
    """Rewrite (``rewrite``) and embed the query strings for :func:`search_embedded`; no
    database is touched. ``mode`` as for :func:`search`."""
    queries = [query] if isinstance(query, str) else list(query)
    if rewrite:
        queries = [rewrite_query(q) for q in queries]
    notes: list[str] = []
    use_semantic = mode in ("hybrid", "semantic") and embedder is not None and embedder.enabled
    vectors = None
    if use_semantic:
        try:
            vectors = embedder.embed(queries, query=True)  # type: ignore[union-attr]
        except EmbeddingError as exc:
            if mode == "semantic":
                raise
            notes.append(f"semantic search unavailable ({exc}); keyword results only")
    elif mode == "hybrid":
        notes.append("no embedding backend: keyword results only")
    model = embedder.name if vectors is not None else None  # type: ignore[union-attr]
    return EmbeddedQuery(queries, vectors, model, mode, notes)


def search(
    conn: Connection,
    vector_store_ids: Sequence[str],
    query: str | Sequence[str],
    *,
    embedder: BaseEmbedder | None = None,
    max_num_results: int = 10,
    score_threshold: float = 0.0,
    file_ids: Collection[str] | None = None,
    rewrite: bool = False,
    mode: str = "hybrid",
) -> SearchResults:
    """Search the stores; ``file_ids`` restricts to files that passed the attribute filter.

    ``mode`` ``keyword`` / ``semantic`` runs one retriever alone (the quality benchmark's
    baselines); ``hybrid`` falls back to keyword when the embedder is ``none`` or fails.
    The query is embedded in the caller's transaction: :func:`search_store` embeds first.
    """
    embedded = embed_query(query, embedder=embedder, rewrite=rewrite, mode=mode)
    return search_embedded(
        conn,
        vector_store_ids,
        embedded,
        max_num_results=max_num_results,
        score_threshold=score_threshold,
        file_ids=file_ids,
    )


def search_store(
    store: Store,
    vector_store_ids: Sequence[str],
    query: str | Sequence[str] | EmbeddedQuery,
    *,
    embedder: BaseEmbedder | None = None,
    max_num_results: int = 10,
    score_threshold: float = 0.0,
    file_ids: Collection[str] | None = None,
    rewrite: bool = False,
    mode: str = "hybrid",
) -> SearchResults:
    """:func:`search` on an :class:`~assistant_kit.store.Store`: the query is embedded first
    (unless it already is, an :class:`EmbeddedQuery`), then the store is read in one
    transaction, so a slow embedder never holds a connection or a snapshot open."""
    if not isinstance(query, EmbeddedQuery):
        query = embed_query(query, embedder=embedder, rewrite=rewrite, mode=mode)
    with store.transaction() as conn:
        return search_embedded(
            conn,
            vector_store_ids,
            query,
            max_num_results=max_num_results,
            score_threshold=score_threshold,
            file_ids=file_ids,
        )


def search_embedded(
    conn: Connection,
    vector_store_ids: Sequence[str],
    query: EmbeddedQuery,
    *,
    max_num_results: int = 10,
    score_threshold: float = 0.0,
    file_ids: Collection[str] | None = None,
) -> SearchResults:
    """The database half of :func:`search`, for a query :func:`embed_query` made."""
    queries, vectors, mode, model = query.texts, query.vectors, query.mode, query.model
    notes = list(query.notes)
    depth = max(MIN_DEPTH, 4 * max_num_results)
    rankings: list[list[int]] = []
    kw_ranks: dict[int, int] = {}
    sem_ranks: dict[int, int] = {}
    for i, q in enumerate(queries):
        if mode in ("hybrid", "keyword"):
            ranking = keyword_search(conn, vector_store_ids, q, depth, file_ids)
            rankings.append(ranking)
            for rank, chunk_id in enumerate(ranking, 1):
                kw_ranks.setdefault(chunk_id, rank)
        if vectors is not None and model is not None:
            ranking = semantic_search(conn, vector_store_ids, vectors[i], model, depth, file_ids)
            if ranking or mode == "semantic":
                rankings.append(ranking)
            for rank, chunk_id in enumerate(ranking, 1):
                sem_ranks.setdefault(chunk_id, rank)
    if mode == "hybrid" and vectors is not None and not sem_ranks:
        notes.append(f"no chunks embedded with {model}: keyword results only")
    used = mode
    if mode == "hybrid":
        used = "hybrid" if vectors is not None and sem_ranks else "keyword"
    scores = fuse(rankings)
    best = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    best = [(cid, s) for cid, s in best if s >= score_threshold][:max_num_results]
    rows = {}
    if best:
        statement = select(
            chunks.c.id, chunks.c.file_id, chunks.c.vector_store_id, chunks.c.chunk_index, chunks.c.text
        ).where(chunks.c.id.in_([cid for cid, _ in best]))
        rows = {row[0]: row for row in conn.execute(statement)}
    hits = [
        Hit(
            chunk_id=cid,
            file_id=rows[cid][1],
            vector_store_id=rows[cid][2],
            chunk_index=rows[cid][3],
            text=rows[cid][4],
            score=round(s, 6),
            keyword_rank=kw_ranks.get(cid),
            semantic_rank=sem_ranks.get(cid),
        )
        for cid, s in best
        if cid in rows
    ]
    return SearchResults(hits=hits, search_query=queries, mode=used, notes=notes)


def engine_of(store: Any) -> Engine:
    """The SQLAlchemy engine of an ``assistant_kit.store.Store`` (or an engine itself)."""
    return store.engine if hasattr(store, "engine") else store


# --- the request's options and the response page ---------------------------------------------


def validate_search_options(
    max_num_results: Any = 10, score_threshold: Any = 0.0, rewrite: Any = False
) -> tuple[int, float, bool]:
    """``max_num_results`` an integer 1-50, ``ranking_options.score_threshold`` a number 0-1,
    ``rewrite_query`` a boolean; else a 400 naming the parameter."""
    if isinstance(max_num_results, bool) or not isinstance(max_num_results, int):
        raise InvalidRequestError(
            "Invalid type for 'max_num_results': expected an integer.", param="max_num_results"
        )
    if not 1 <= max_num_results <= 50:
        raise InvalidRequestError(
            f"Invalid 'max_num_results': {max_num_results}. It must be between 1 and 50.",
            param="max_num_results",
        )
    name = "ranking_options.score_threshold"
    if isinstance(score_threshold, bool) or not isinstance(score_threshold, (int, float)):
        raise InvalidRequestError(f"Invalid type for '{name}': expected a number.", param=name)
    if not 0 <= score_threshold <= 1:
        raise InvalidRequestError(
            f"Invalid '{name}': {score_threshold}. It must be between 0 and 1.", param=name
        )
    if not isinstance(rewrite, bool):
        raise InvalidRequestError(
            "Invalid type for 'rewrite_query': expected a boolean.", param="rewrite_query"
        )
    return max_num_results, float(score_threshold), rewrite


def validate_query(query: Any) -> list[str]:
    """``query``: a non-empty string or a non-empty array of non-empty strings."""
    queries = [query] if isinstance(query, str) else query
    if not isinstance(queries, list) or not queries or not all(isinstance(q, str) for q in queries):
        raise InvalidRequestError(
            "Invalid type for 'query': expected a string or an array of strings.", param="query"
        )
    if not all(q.strip() for q in queries):
        raise InvalidRequestError("Invalid 'query': it must not be empty.", param="query")
    return list(queries)


def to_page(results: SearchResults, files: Mapping[str, tuple[str, dict[str, Any] | None]]) -> dict[str, Any]:
    """The spec's ``vector_store.search_results.page``: one item per chunk, best first;
    ``files`` maps a file id to its (filename, attributes). Hits of files no longer in the map
    (deleted meanwhile) are left out."""
    data = []
    for hit in results.hits:
        if hit.file_id not in files:
            continue
        filename, attributes = files[hit.file_id]
        data.append(
            {
                "file_id": hit.file_id,
                "filename": filename,
                "score": hit.score,
                "attributes": attributes or {},
                "content": [{"type": "text", "text": hit.text}],
            }
        )
    return {
        "object": "vector_store.search_results.page",
        "search_query": results.search_query,
        "data": data,
        "has_more": False,
        "next_page": None,
    }
