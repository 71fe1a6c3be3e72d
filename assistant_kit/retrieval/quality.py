"""The labelled retrieval set: questions over the Python standard library's own docstrings.

Why this corpus: it is on every machine the kit runs on (no download, no licence question),
it is real technical prose, and each question has one unambiguous answer (``"what returns
the greatest common divisor"`` → ``math.gcd``). The questions and the module list are in
``quality_stdlib.json``; the documents are built from the running interpreter, one per
public function or class with a docstring (its first :data:`DOC_CHARS` characters). The
test suite and ``benchmarks/vector_search.py`` score keyword, semantic and fused search on
it with recall@5 and MRR (:func:`score`).
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DOC_CHARS = 600
_DATA = Path(__file__).with_name("quality_stdlib.json")


@dataclass(frozen=True)
class Doc:
    name: str  # qualified name, e.g. "math.gcd": the answer a question is labelled with
    text: str


def load_set() -> tuple[list[str], list[tuple[str, str]]]:
    """(module names, [(question, qualified name)])."""
    data = json.loads(_DATA.read_text())
    return list(data["modules"]), [(q, a) for q, a in data["questions"]]


def stdlib_corpus(modules: Sequence[str] | None = None) -> list[Doc]:
    """One document per public callable or class with a docstring, in a stable order."""
    if modules is None:
        modules = load_set()[0]
    docs: list[Doc] = []
    for module_name in modules:
        module = importlib.import_module(module_name)
        for name in sorted(dir(module)):
            if name.startswith("_"):
                continue
            obj = getattr(module, name)
            if inspect.ismodule(obj) or not callable(obj):
                continue
            doc = inspect.getdoc(obj) if inspect.isclass(obj) else obj.__doc__
            if inspect.isclass(obj) and obj.__doc__ is None:
                continue  # an inherited docstring would describe another class
            doc = inspect.cleandoc(doc or "")
            if len(doc) < 20:
                continue
            docs.append(Doc(f"{module_name}.{name}", doc[:DOC_CHARS]))
    return docs


@dataclass(frozen=True)
class Quality:
    recall_at_5: float
    mrr: float
    questions: int

    def __str__(self) -> str:
        return f"recall@5 {self.recall_at_5:.3f}  MRR {self.mrr:.3f}  ({self.questions} questions)"


def score(rankings: Sequence[Sequence[str]], answers: Sequence[str]) -> Quality:
    """recall@5 (answer among the first five) and MRR (mean of 1/rank, 0 if absent)."""
    hits = 0
    reciprocal = 0.0
    for ranking, answer in zip(rankings, answers, strict=True):
        ranking = list(dict.fromkeys(ranking))  # one file's chunks count once
        if answer in ranking[:5]:
            hits += 1
        if answer in ranking:
            reciprocal += 1.0 / (ranking.index(answer) + 1)
    n = len(answers)
    return Quality(hits / n, reciprocal / n, n)


def ingest_corpus(
    conn: Any, vector_store_id: str, docs: Sequence[Doc], vectors: Any, model: str | None
) -> None:
    """Each document as one file (id = its qualified name), chunked like an upload."""
    from .chunking import chunk_text
    from .search import add_chunks

    for i, doc in enumerate(docs):
        pieces = chunk_text(doc.text)
        rows = None if vectors is None else vectors[[i] * len(pieces)]
        add_chunks(conn, vector_store_id, doc.name, pieces, rows, model)


def evaluate(
    conn: Any, vector_store_id: str, embedder: Any, modes: Sequence[str] = ("keyword", "semantic", "hybrid")
) -> dict[str, Quality]:
    """recall@5 and MRR of each search mode over the labelled questions (top 50 ranked)."""
    from .search import search

    _, questions = load_set()
    answers = [answer for _, answer in questions]
    out = {}
    for mode in modes:
        rankings = [
            [
                hit.file_id
                for hit in search(
                    conn, [vector_store_id], q, embedder=embedder, max_num_results=50, mode=mode
                ).hits
            ]
            for q, _ in questions
        ]
        out[mode] = score(rankings, answers)
    return out
