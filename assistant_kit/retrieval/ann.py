"""Approximate nearest neighbours for large stores: a usearch HNSW index, kept in memory.

Why usearch: Apache-2.0, one small wheel on every platform (Linux x86-64/arm64, macOS,
Windows), maintained, incremental ``add`` (new chunks join the index without a rebuild), and
no server. Why only past a threshold: exact search with numpy is a single matrix-vector
product and stays within the latency goal up to ~100k chunks on a laptop CPU (see
docs/vector-stores.md), with perfect recall and no build time; an HNSW graph costs build
time and memory and gives approximate results. Stores with at least
``$ASSISTANT_KIT_ANN_MIN_CHUNKS`` (default 200000) vectors of one model use the index when
usearch is installed (``pip install usearch``); searches restricted by an attribute filter
stay exact (masked), which is also the fallback when usearch is missing.
"""

from __future__ import annotations

import os
from typing import Any

ANN_ENV = "ASSISTANT_KIT_ANN_MIN_CHUNKS"
DEFAULT_MIN_CHUNKS = 200_000


def min_chunks() -> int:
    try:
        return int(os.environ.get(ANN_ENV) or DEFAULT_MIN_CHUNKS)
    except ValueError:
        return DEFAULT_MIN_CHUNKS


def available() -> bool:
    import importlib.util

    return importlib.util.find_spec("usearch") is not None


class AnnIndex:
    """HNSW over unit vectors by inner product (= cosine); keys are row positions."""

    def __init__(self, dimensions: int):
        from usearch.index import Index

        self.index = Index(ndim=dimensions, metric="ip", dtype="f32", connectivity=16, expansion_add=128)
        self.index.expansion_search = 96
        self.size = 0

    def add(self, matrix: Any) -> None:
        """Add rows ``size…len(matrix)-1`` of ``matrix`` (the ones not yet indexed)."""
        import numpy as np

        if len(matrix) <= self.size:
            return
        keys = np.arange(self.size, len(matrix), dtype=np.uint64)
        self.index.add(keys, np.ascontiguousarray(matrix[self.size :]), threads=0)
        self.size = len(matrix)

    def search(self, vector: Any, k: int) -> tuple[Any, Any]:
        """(row positions, cosine scores), best first."""
        import numpy as np

        matches = self.index.search(vector, min(k, self.size))
        return np.asarray(matches.keys, dtype=np.int64), 1.0 - np.asarray(matches.distances, dtype=np.float32)
