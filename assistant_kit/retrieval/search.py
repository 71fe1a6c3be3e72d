"""Hybrid search over vector stores' chunks: BM25 keyword + cosine semantic, fused by rank.

* **Keyword**: the store's own full-text index, the query's words (stop words dropped) OR-ed,
  so a chunk needs only some of them. SQLite: FTS5 ``bm25()``, whose IDF statistics are those
  of the whole table (all stores), a harmless approximation. PostgreSQL: a ``tsvector`` with
  ``ts_rank(…, 1)`` per word weighted by the word's BM25 IDF within the searched stores, read
  from statistics kept at ingestion, and max-score pruning (see :func:`_pg_keyword_search`).
* **Semantic**: exact cosine with numpy over the store's vectors, held in an in-process cache
  per (database, vector store, embedding model) that is checked against the store's row of
  ``vector_store_index_stats`` on every search (one read by key): added chunks are appended,
  anything else reloads. So replicas sharing a PostgreSQL database see each other's
  ingestion on their next search.
  Exact search is cheap here: 100k chunks x 384 floats is one matrix-vector product
  (measured in docs/vector-stores.md).
* **Fusion**: reciprocal rank fusion, ``Σ 1/(k + rank)`` over the keyword and semantic lists of
  every query string, divided by its maximum (first in every list), so ``score`` is in 0-1:
  1 = ranked first by every retriever, about 0.5 = first by one of two and absent from the
  other. ``score_threshold`` therefore cuts results that the retrievers do not agree on.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, case, delete, select, text
from sqlalchemy.engine import Connection, Engine

from ..errors import InvalidRequestError
from ..store.schema import vector_store_chunks as chunks
from ..store.schema import vector_store_index_stats as stats
from ..store.schema import vector_store_terms as terms
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
    # The store's statistics row first: its writers queue here (see schema.vector_store_index_stats).
    _count_change(conn, vector_store_id, len(rows), removal=False)
    if conn.dialect.name == "sqlite":
        conn.execute(chunks.insert(), rows)
    else:
        ids = [row[0] for row in conn.execute(chunks.insert().returning(chunks.c.id), rows)]
        # Each lexeme's document frequency, in lexeme order (two writers of one store cannot
        # get here at once, but replicas' writers of different stores never share rows).
        conn.execute(
            text(
                "INSERT INTO vector_store_terms (vector_store_id, lexeme, df, rank_bound) "
                f"SELECT :store, lexeme, count(*), max(ts_rank(tsv, {_LEXEME_QUERY}, 1)) "
                "FROM vector_store_chunks, unnest(tsvector_to_array(tsv)) AS lexeme "
                "WHERE id = ANY(:ids) GROUP BY lexeme ORDER BY lexeme "
                "ON CONFLICT (vector_store_id, lexeme) DO UPDATE SET "
                "df = vector_store_terms.df + excluded.df, "
                "rank_bound = greatest(vector_store_terms.rank_bound, excluded.rank_bound)"
            ),
            {"store": vector_store_id, "ids": ids},
        )
    return len(rows)


# A lexeme (a ``tsvector_to_array`` element) as the tsquery of that lexeme alone, the query
# ``to_tsquery('english', word)`` makes of a word with that one lexeme: quoted, with its
# backslashes and quotes escaped.
_LEXEME_QUERY = "('''' || replace(replace(lexeme, E'\\\\', E'\\\\\\\\'), '''', '''''') || '''')::tsquery"


def _count_change(conn: Connection, vector_store_id: str, added: int, *, removal: bool) -> None:
    """``vector_store_index_stats``: ``added`` chunks more (fewer when negative), one change."""
    conn.execute(
        text(
            "INSERT INTO vector_store_index_stats (vector_store_id, chunks, version, removals) "
            "VALUES (:store, :added, 1, :removal) ON CONFLICT (vector_store_id) DO UPDATE SET "
            "chunks = vector_store_index_stats.chunks + excluded.chunks, "
            "version = vector_store_index_stats.version + 1, "
            "removals = vector_store_index_stats.removals + excluded.removals"
        ),
        {"store": vector_store_id, "added": added, "removal": int(removal)},
    )


def delete_chunks(conn: Connection, vector_store_id: str, file_id: str | None = None) -> int:
    """Remove a file's chunks from a store (all the store's chunks, and its statistics, when
    ``file_id`` is None)."""
    params = {"store": vector_store_id, "file": file_id}
    if file_id is None:
        conn.execute(delete(stats).where(stats.c.vector_store_id == vector_store_id))
        conn.execute(delete(terms).where(terms.c.vector_store_id == vector_store_id))
        removed = conn.execute(delete(chunks).where(chunks.c.vector_store_id == vector_store_id))
        return int(removed.rowcount or 0)
    # The row lock first; no row: the store has no chunks.
    row = conn.execute(
        select(stats.c.chunks).where(stats.c.vector_store_id == vector_store_id).with_for_update()
    ).first()
    if row is None:
        return 0
    if conn.dialect.name != "sqlite":
        conn.execute(
            text(
                "UPDATE vector_store_terms AS t SET df = t.df - d.n FROM ("
                "SELECT lexeme, count(*) AS n FROM vector_store_chunks, "
                "unnest(tsvector_to_array(tsv)) AS lexeme "
                "WHERE vector_store_id = :store AND file_id = :file GROUP BY lexeme) AS d "
                "WHERE t.vector_store_id = :store AND t.lexeme = d.lexeme"
            ),
            params,
        )
    statement = delete(chunks).where(chunks.c.vector_store_id == vector_store_id, chunks.c.file_id == file_id)
    removed = int(conn.execute(statement).rowcount or 0)
    if removed:
        _count_change(conn, vector_store_id, -removed, removal=True)
    return removed


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
        return [row[0] for row in conn.execute(_expanding(sql, file_ids), params)]
    return _pg_keyword_search(conn, terms, params, file_clause, file_ids)


def _expanding(sql: str, file_ids: Collection[str] | None) -> Any:
    statement = text(sql).bindparams(bindparam("stores", expanding=True))
    if file_ids is not None:
        statement = statement.bindparams(bindparam("files", expanding=True))
    return statement


#: Words in at least this share of the searched chunks (and in at least ``limit`` of them)
#: are left out of the first, pruned ranking on PostgreSQL (see :func:`_pg_keyword_search`).
COMMON_SHARE = 0.05


def _pg_keyword_search(
    conn: Connection,
    terms: Sequence[str],
    params: dict[str, Any],
    file_clause: str,
    file_ids: Collection[str] | None,
) -> list[int]:
    """``Σ idf(word) x ts_rank(tsv, word, 1)`` over the words, best first, ties by id.

    Exact, and pruned when it can be (max-score pruning): a chunk that has only *common*
    words (in at least :data:`COMMON_SHARE` of the chunks) scores at most ``B = Σ idf x
    rank_bound`` over those words (``vector_store_terms.rank_bound``). So the chunks with a
    rarer word are ranked first, alone — an index scan of a few of them instead of a quarter
    of the store — and if the last of the ``limit`` best scores more than ``B``, no
    common-words-only chunk can be among them and that is the answer; else every match is
    ranked. The ranking is the same either way."""
    limit = params["limit"]
    total, stats_rows = _pg_term_stats(conn, params["stores"], terms)
    weights = [float(f"{math.log(1 + (total - df + 0.5) / (df + 0.5)):.6f}") for df, _ in stats_rows]
    rank = " + ".join(f"{weight:.6f} * ts_rank(c.tsv, q{i}, 1)" for i, weight in enumerate(weights))
    params = {**params, **{f"t{i}": term for i, term in enumerate(terms)}}
    # Each word's tsquery parsed once, in FROM, not once per ranked row.
    words = "".join(f", to_tsquery('english', :t{i}) AS q{i}" for i in range(len(terms)))

    def ranked(where_terms: Sequence[int]) -> list[tuple[int, float]]:
        wanted = " | ".join(terms[i] for i in where_terms)
        sql = (
            f"SELECT c.id, {rank} FROM vector_store_chunks AS c, to_tsquery('english', :q) AS q{words} "
            "WHERE c.tsv @@ q AND c.vector_store_id IN :stores"
            + file_clause
            + f" ORDER BY {rank} DESC, c.id LIMIT :limit"
        )
        return [(row[0], row[1]) for row in conn.execute(_expanding(sql, file_ids), {**params, "q": wanted})]

    def cap(indexes: Sequence[int]) -> float:
        """The most a chunk with only these words can score (a margin for float4 ranks
        times the weights summed in float8)."""
        bound = sum(weights[i] * (stats_rows[i][1] or 0.0) for i in indexes)
        return bound * (1 + 1e-6) + 1e-12

    # The common words, most common first, while enough matches of the others remain.
    single = [i for i, (_, bound) in enumerate(stats_rows) if bound is not None]
    common: list[int] = []
    left = sum(df for df, _ in stats_rows)
    for i in sorted(single, key=lambda i: -stats_rows[i][0]):
        df = stats_rows[i][0]
        if df < max(limit, COMMON_SHARE * total) or left - df < 2 * limit:
            break
        common.append(i)
        left -= df
    for _ in range(2):
        if not common:
            break
        found = ranked([i for i in range(len(terms)) if i not in common])
        last = found[-1][1] if len(found) == limit else 0.0
        if last > cap(common):
            return [chunk_id for chunk_id, _ in found]
        # Ranking more chunks can only raise the last score: leaving out only the most common
        # words whose bound stays under it makes the second try succeed.
        fewer: list[int] = []
        for i in common:
            if cap([*fewer, i]) < last:
                fewer.append(i)
        common = fewer
    return [chunk_id for chunk_id, _ in ranked(range(len(terms)))]


def _pg_term_stats(
    conn: Connection, vector_store_ids: Sequence[str], terms: Sequence[str]
) -> tuple[int, list[tuple[int, float | None]]]:
    """The stores' chunk count and, per word, its document frequency and its rank bound
    (None: unknown, the word is several lexemes).

    BM25's inverse document frequency is computed from these (PostgreSQL's own ``ts_rank``
    has none, and without it common words outrank rare ones: recall@5 0.89 against 0.92 with
    these weights on the quality set). The counts are read by key from the statistics kept at
    ingestion (``vector_store_index_stats``, ``vector_store_terms``), not counted in the
    index: a common word matches a large share of the chunks, and counting them took 15-80 ms
    at 100k chunks. A word the parser splits into several lexemes (``foo_bar``) is still
    counted, by its own GIN bitmap scan."""
    where = "FROM vector_store_chunks WHERE vector_store_id IN :stores"
    lexeme = "FROM vector_store_terms WHERE vector_store_id IN :stores AND lexeme = " + (
        "(tsvector_to_array(to_tsvector('english', :t{i})))[1]"
    )
    columns = ", ".join(
        f"CASE numnode(to_tsquery('english', :t{i})) WHEN 0 THEN 0 WHEN 1 THEN "
        f"(SELECT coalesce(sum(df), 0) {lexeme.format(i=i)}) "
        f"ELSE (SELECT count(*) {where} AND tsv @@ to_tsquery('english', :t{i})) END, "
        f"CASE numnode(to_tsquery('english', :t{i})) WHEN 0 THEN 0 WHEN 1 THEN "
        f"(SELECT coalesce(max(rank_bound), 0) {lexeme.format(i=i)}) END"
        for i in range(len(terms))
    )
    total = "SELECT coalesce(sum(chunks), 0) FROM vector_store_index_stats WHERE vector_store_id IN :stores"
    statement = text(f"SELECT ({total}), {columns}").bindparams(bindparam("stores", expanding=True))
    params: dict[str, Any] = {"stores": list(vector_store_ids)}
    params.update({f"t{i}": term for i, term in enumerate(terms)})
    total_chunks, *values = conn.execute(statement, params).one()
    pairs = [
        (int(values[2 * i]), None if values[2 * i + 1] is None else float(values[2 * i + 1]))
        for i in range(len(terms))
    ]
    return int(total_chunks), pairs


def _pg_idf(conn: Connection, vector_store_ids: Sequence[str], terms: Sequence[str]) -> list[float]:
    """Each word's BM25 inverse document frequency within the stores (see :func:`_pg_term_stats`)."""
    total, pairs = _pg_term_stats(conn, vector_store_ids, terms)
    return [math.log(1 + (total - df + 0.5) / (df + 0.5)) for df, _ in pairs]


# --- semantic --------------------------------------------------------------------------------


class _Vectors:
    """One store's vectors of one model, as arrays (ids, file codes, unit-length rows), and
    what of the store they reflect: its ``version`` and ``removals`` (of
    ``vector_store_index_stats``) and the count and largest id of all the chunks read (of
    every model) for appending."""

    def __init__(self) -> None:
        import numpy as np

        self.version = -1
        self.removals = -1
        self.seen = 0
        self.max_id = 0
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
        """Append ``(id, file id, embedding or None)`` rows: None (another model's chunk) and
        vectors of another length (another build of the model) are counted, not compared."""
        import numpy as np

        ids, codes, vectors = [], [], []
        for chunk_id, file_id, blob in rows:
            self.seen += 1
            self.max_id = max(self.max_id, chunk_id)
            if blob is None:
                continue
            vector = np.frombuffer(blob, dtype="<f4")
            if vector.shape[0] != dimensions:
                continue
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
    """The store's cached vectors, brought up to date: the statistics row read by key says
    whether anything changed (``version``); if nothing was removed, chunks with larger ids
    are appended when their number accounts for every chunk added (rows committed out of id
    order on PostgreSQL do not, and cause a reload), else everything is read again."""
    key = (str(conn.engine.url), vector_store_id, model)
    with _cache_lock:
        entry = _cache.setdefault(key, _Vectors())
    row = conn.execute(
        select(stats.c.chunks, stats.c.version, stats.c.removals).where(
            stats.c.vector_store_id == vector_store_id
        )
    ).first()
    count, version, removals = (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)
    with entry.lock:
        if entry.matrix is not None and (entry.version, entry.removals) == (version, removals):
            entry.sync_ann()
            return entry
        mine = case((chunks.c.embedding_model == model, chunks.c.embedding), else_=None)
        base = (
            select(chunks.c.id, chunks.c.file_id, mine)
            .where(chunks.c.vector_store_id == vector_store_id)
            .order_by(chunks.c.id)
        )
        if entry.matrix is not None and removals == entry.removals:
            added = conn.execute(base.where(chunks.c.id > entry.max_id)).all()
            if entry.seen + len(added) == count:
                entry.extend(added, dimensions)
                entry.version = version
                entry.sync_ann()
                return entry
        fresh = _Vectors()
        fresh.extend(conn.execute(base), dimensions)
        entry.ids, entry.codes, entry.files, entry.matrix = fresh.ids, fresh.codes, fresh.files, fresh.matrix
        entry.seen, entry.max_id = fresh.seen, fresh.max_id
        entry.ann = None
        entry.version, entry.removals = version, removals
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
