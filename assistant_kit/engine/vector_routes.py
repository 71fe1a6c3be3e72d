"""The ``/vector_stores`` routes (served at the root and under ``/v1`` like every route).

Handlers only translate HTTP to :class:`~.vector_stores.VectorStores` calls; bodies are parsed
with :func:`~.validation.parse_json` and validated by the service against the SDK's param types.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from .validation import parse_json

if TYPE_CHECKING:
    from .core import Engine


def _owner(request: Request) -> str | None:
    return request.scope.get("assistant_kit.owner")


def _p(request: Request, name: str) -> str:
    return request.path_params[name]


async def _json(request: Request) -> dict[str, Any]:
    return parse_json(await request.body())


async def create_vector_store(request: Request, engine: Engine) -> Any:
    return await engine.vector_stores.create(await _json(request), _owner(request))


async def list_vector_stores(request: Request, engine: Engine) -> Any:
    return await engine.vector_stores.list(request.query_params, _owner(request))


async def get_vector_store(request: Request, engine: Engine) -> Any:
    return await engine.vector_stores.get(_p(request, "vector_store_id"), _owner(request))


async def update_vector_store(request: Request, engine: Engine) -> Any:
    return await engine.vector_stores.update(
        _p(request, "vector_store_id"), await _json(request), _owner(request)
    )


async def delete_vector_store(request: Request, engine: Engine) -> Any:
    return await engine.vector_stores.delete(_p(request, "vector_store_id"), _owner(request))


async def search_vector_store(request: Request, engine: Engine) -> Any:
    return await engine.vector_stores.search(
        _p(request, "vector_store_id"), await _json(request), _owner(request)
    )


async def create_vector_store_file(request: Request, engine: Engine) -> Any:
    return await engine.vector_stores.create_file(
        _p(request, "vector_store_id"), await _json(request), _owner(request)
    )


async def list_vector_store_files(request: Request, engine: Engine) -> Any:
    return await engine.vector_stores.list_files(
        _p(request, "vector_store_id"), request.query_params, _owner(request)
    )


async def get_vector_store_file(request: Request, engine: Engine) -> Any:
    return await engine.vector_stores.get_file(
        _p(request, "vector_store_id"), _p(request, "file_id"), _owner(request)
    )


async def update_vector_store_file(request: Request, engine: Engine) -> Any:
    return await engine.vector_stores.update_file(
        _p(request, "vector_store_id"), _p(request, "file_id"), await _json(request), _owner(request)
    )


async def delete_vector_store_file(request: Request, engine: Engine) -> Any:
    return await engine.vector_stores.delete_file(
        _p(request, "vector_store_id"), _p(request, "file_id"), _owner(request)
    )


async def vector_store_file_content(request: Request, engine: Engine) -> Any:
    return await engine.vector_stores.file_content(
        _p(request, "vector_store_id"), _p(request, "file_id"), _owner(request)
    )


async def create_file_batch(request: Request, engine: Engine) -> Any:
    return await engine.vector_stores.create_batch(
        _p(request, "vector_store_id"), await _json(request), _owner(request)
    )


async def get_file_batch(request: Request, engine: Engine) -> Any:
    return await engine.vector_stores.get_batch(
        _p(request, "vector_store_id"), _p(request, "batch_id"), _owner(request)
    )


async def cancel_file_batch(request: Request, engine: Engine) -> Any:
    return await engine.vector_stores.cancel_batch(
        _p(request, "vector_store_id"), _p(request, "batch_id"), _owner(request)
    )


async def list_file_batch_files(request: Request, engine: Engine) -> Any:
    return await engine.vector_stores.list_files(
        _p(request, "vector_store_id"),
        request.query_params,
        _owner(request),
        batch_id=_p(request, "batch_id"),
    )


VS = "/vector_stores/{vector_store_id}"
VECTOR_ROUTES: list[tuple[str, str, Any]] = [
    ("/vector_stores", "GET", list_vector_stores),
    ("/vector_stores", "POST", create_vector_store),
    (VS, "GET", get_vector_store),
    (VS, "POST", update_vector_store),
    (VS, "DELETE", delete_vector_store),
    (f"{VS}/search", "POST", search_vector_store),
    (f"{VS}/files", "GET", list_vector_store_files),
    (f"{VS}/files", "POST", create_vector_store_file),
    (f"{VS}/files/{{file_id}}", "GET", get_vector_store_file),
    (f"{VS}/files/{{file_id}}", "POST", update_vector_store_file),
    (f"{VS}/files/{{file_id}}", "DELETE", delete_vector_store_file),
    (f"{VS}/files/{{file_id}}/content", "GET", vector_store_file_content),
    (f"{VS}/file_batches", "POST", create_file_batch),
    (f"{VS}/file_batches/{{batch_id}}", "GET", get_file_batch),
    (f"{VS}/file_batches/{{batch_id}}/cancel", "POST", cancel_file_batch),
    (f"{VS}/file_batches/{{batch_id}}/files", "GET", list_file_batch_files),
]
# Objects the SDK's *_and_poll helpers poll: answered with openai-poll-after-ms.
POLLED_OBJECTS = frozenset({"vector_store.file", "vector_store.files_batch"})
