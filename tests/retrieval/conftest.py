"""A store on SQLite and (with ``ASSISTANT_KIT_TEST_PG_URL``) on PostgreSQL, and an embedder
that talks to the fake upstream's ``/v1/embeddings`` over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from assistant_kit.retrieval import search as retrieval_search
from assistant_kit.retrieval.embeddings import OpenAIEmbedder
from assistant_kit.store import Store
from tests.fake_upstream import FakeUpstream
from tests.postgres import fresh_database


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[Store]:
    if request.param == "sqlite":
        instance = Store(f"{tmp_path}/kit.db")
        yield instance
        instance.close()
        retrieval_search.forget_vectors()
        return
    with fresh_database() as url:
        instance = Store(url)
        yield instance
        instance.close()
        retrieval_search.forget_vectors()


@pytest.fixture
def http_embedder(fake_upstream: FakeUpstream) -> OpenAIEmbedder:
    return OpenAIEmbedder("fake-embed", api_key="sk-test-secret", api_base=fake_upstream.url, max_retries=0)
