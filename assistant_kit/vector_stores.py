"""LiteLLM's vector store functions — ``litellm.vector_stores.create`` / ``search`` and their
``a*`` twins, plus ``retrieve``, ``list``, ``update`` and ``delete`` — over the kit's engine:
``from assistant_kit import vector_stores`` then ``vector_stores.search(vector_store_id=...,
query=...)``. Where a call goes (``custom_llm_provider``, ``api_key``, ``api_base``,
``client=``) and how parameters are forwarded are as for the assistants functions of
:mod:`assistant_kit.sdk`; each returns the official SDK's objects (``VectorStore``, a page of
``VectorStoreSearchResponse`` …). Files are attached with the SDK's own
``client.vector_stores.files`` / ``file_batches`` (``local_client()``).
"""

from __future__ import annotations

from typing import Any

from openai.pagination import SyncCursorPage, SyncPage
from openai.types import VectorStore, VectorStoreDeleted, VectorStoreSearchResponse

from .sdk import Client, _call, _twin

__all__ = [
    "acreate",
    "adelete",
    "alist",
    "aretrieve",
    "asearch",
    "aupdate",
    "create",
    "delete",
    "list",
    "retrieve",
    "search",
    "update",
]


def create(
    name: str | None = None,
    file_ids: list[str] | None = None,
    custom_llm_provider: str | None = None,
    client: Client | None = None,
    api_key: str | None = None,
    api_base: str | None = None,
    api_version: str | None = None,
    *,
    timeout: float | None = None,
    **kwargs: Any,
) -> VectorStore:
    """Create a vector store (``chunking_strategy``, ``expires_after``, ``metadata``,
    ``description`` pass through ``kwargs``); its files are ingested in the background."""
    return _call("vector_stores.create", locals())


def search(
    vector_store_id: str | None = None,
    query: str | list[str] | None = None,
    custom_llm_provider: str | None = None,
    client: Client | None = None,
    api_key: str | None = None,
    api_base: str | None = None,
    api_version: str | None = None,
    *,
    timeout: float | None = None,
    **kwargs: Any,
) -> SyncPage[VectorStoreSearchResponse]:
    """Search a vector store (``filters``, ``max_num_results``, ``ranking_options``,
    ``rewrite_query`` through ``kwargs``)."""
    return _call("vector_stores.search", locals())


def retrieve(
    vector_store_id: str | None = None,
    custom_llm_provider: str | None = None,
    client: Client | None = None,
    api_key: str | None = None,
    api_base: str | None = None,
    api_version: str | None = None,
    *,
    timeout: float | None = None,
    **kwargs: Any,
) -> VectorStore:
    """Retrieve a vector store (its ``status`` and ``file_counts`` as they are now)."""
    return _call("vector_stores.retrieve", locals())


def list(
    custom_llm_provider: str | None = None,
    client: Client | None = None,
    api_key: str | None = None,
    api_base: str | None = None,
    api_version: str | None = None,
    *,
    limit: int | None = None,
    order: str | None = None,
    after: str | None = None,
    before: str | None = None,
    timeout: float | None = None,
    **kwargs: Any,
) -> SyncCursorPage[VectorStore]:
    """List vector stores, one page; iterate the pager to walk all pages."""
    return _call("vector_stores.list", locals())


def update(
    vector_store_id: str | None = None,
    custom_llm_provider: str | None = None,
    client: Client | None = None,
    api_key: str | None = None,
    api_base: str | None = None,
    api_version: str | None = None,
    *,
    timeout: float | None = None,
    **kwargs: Any,
) -> VectorStore:
    """Modify a vector store (``name``, ``metadata``, ``expires_after``)."""
    return _call("vector_stores.update", locals())


def delete(
    vector_store_id: str | None = None,
    custom_llm_provider: str | None = None,
    client: Client | None = None,
    api_key: str | None = None,
    api_base: str | None = None,
    api_version: str | None = None,
    *,
    timeout: float | None = None,
    **kwargs: Any,
) -> VectorStoreDeleted:
    """Delete a vector store (its files stay in the Files API)."""
    return _call("vector_stores.delete", locals())


acreate = _twin(create, "vector_stores.create", VectorStore, name="acreate")
asearch = _twin(search, "vector_stores.search", Any, name="asearch")  # type: ignore[arg-type]
aretrieve = _twin(retrieve, "vector_stores.retrieve", VectorStore, name="aretrieve")
alist = _twin(list, "vector_stores.list", Any, name="alist")  # type: ignore[arg-type]
aupdate = _twin(update, "vector_stores.update", VectorStore, name="aupdate")
adelete = _twin(delete, "vector_stores.delete", VectorStoreDeleted, name="adelete")
