"""The engine as an ASGI app: Assistants v2 routes over :class:`Engine`.

Routes only translate HTTP to engine calls and engine results/events to JSON or SSE.
They are served both at the root and under ``/v1``. Two values may be put in the ASGI
scope by whatever sits in front (the in-process transport, the proxy's auth layer):
``assistant_kit.owner`` (the API-key identity objects belong to) and
``assistant_kit.settings`` (per-request model credentials, memory only).

Extensions beyond the hosted API: ``GET /threads`` lists threads; the inspector's
``GET /threads/{thread_id}/runs/{run_id}/inspection``, ``GET /runs`` and ``GET /runs/steps``
(:mod:`.inspection`, docs/inspection.md).

``POST /files`` takes ``multipart/form-data`` as the SDK sends it (``file``, ``purpose``,
``expires_after[anchor]``, ``expires_after[seconds]``), parsed by Starlette (python-multipart);
``GET /files/{file_id}/content`` answers with the original bytes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

from ..errors import AssistantKitError, InvalidRequestError, error_body
from .core import Engine
from .events import DONE, Subscription, sse
from .search_calls import visible, wants_content
from .validation import list_params, parse_json, validate_body
from .vector_routes import POLLED_OBJECTS, VECTOR_ROUTES

log = logging.getLogger("assistant_kit.http")

POLL_AFTER_MS = "100"  # the SDK's create_and_poll honours this instead of its 1 s default


def _error(exc: AssistantKitError) -> JSONResponse:
    return JSONResponse(exc.to_body(), status_code=exc.status_code)


async def _stream(sub: Subscription, include_content: bool) -> AsyncIterator[bytes]:
    async for name, data in sub.events():
        if name.startswith("thread.run.step"):
            data = visible(data, include_content)
        yield sse(name, data)
    yield DONE


def _sse_response(sub: Subscription, include_content: bool = False) -> StreamingResponse:
    """A run's events as SSE; its steps' file_search results carry their ``content`` only
    when the request asked for it (``include[]``: only create run has it)."""
    return StreamingResponse(
        _stream(sub, include_content),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


Handler = Callable[[Request, Engine], Awaitable[Any]]


def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler: engine from app state, errors in OpenAI's shape, JSON or SSE out."""

    async def call(request: Request) -> Response:
        engine: Engine = request.app.state.engine
        if not engine.started:  # background work runs on the loop that serves the engine
            await engine.start()
        try:
            result = await handler(request, engine)
        except AssistantKitError as exc:
            return _error(exc)
        except Exception as exc:  # a bug: answered in OpenAI's shape, the connection kept
            return _unexpected(request, exc)
        if isinstance(result, Response):
            return result
        if isinstance(result, Subscription):
            return _sse_response(result)
        polled = result.get("object") == "thread.run" or result.get("object") in POLLED_OBJECTS
        headers = {"openai-poll-after-ms": POLL_AFTER_MS} if polled else None
        return JSONResponse(result, headers=headers)

    call.__name__ = handler.__name__
    return call


async def _body(request: Request, kind: str) -> dict[str, Any]:
    return validate_body(kind, parse_json(await request.body()))


def _owner(request: Request) -> str | None:
    return request.scope.get("assistant_kit.owner")


def _settings(request: Request) -> Any:
    return request.scope.get("assistant_kit.settings")


def _p(request: Request, name: str) -> str:
    return request.path_params[name]


def _include(request: Request, body: dict[str, Any] | None = None) -> bool:
    """Whether the request asks for the file_search results' ``content``
    (``include[]=step_details.tool_calls[*].file_search.results[*].content``: the query, as
    the SDK sends it, or a body's ``include``); another value is a 400 naming ``include``."""
    values: list[Any] = [*request.query_params.getlist("include[]"), *request.query_params.getlist("include")]
    extra = (body or {}).get("include")
    values += extra if isinstance(extra, list) else [extra] if extra is not None else []
    return wants_content(values)


# -- files ----------------------------------------------------------------------------


async def create_file(request: Request, engine: Engine) -> Any:
    kind = request.headers.get("content-type", "")
    if not kind.startswith("multipart/form-data"):
        raise InvalidRequestError(
            "Files are uploaded as multipart/form-data with the fields 'file' and 'purpose'.",
            param="file",
        )
    try:
        async with request.form(max_files=1, max_fields=16) as form:
            return await _upload(request, engine, form)
    except HTTPException as exc:  # Starlette's answer to a malformed multipart body
        raise InvalidRequestError(f"Invalid multipart body: {exc.detail}", param="file") from None
    except ClientDisconnect:
        # The client went away mid-body (or the proxy's size limit cut the body off and
        # answers 413 itself): nothing was stored, and this is no server error to log.
        raise InvalidRequestError("The upload ended before its body was complete.", param="file") from None


async def _upload(request: Request, engine: Engine, form: Any) -> Any:
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise InvalidRequestError("Missing required parameter: 'file' (a file part).", param="file")
    for key in form:
        if key not in ("file", "purpose", "expires_after[anchor]", "expires_after[seconds]"):
            raise InvalidRequestError(f"Unrecognized request argument supplied: {key}", param=key)
    filename = upload.filename or "upload"
    # Parsed already: Starlette spooled the part to a temp file past 1 MB, and counted it. The
    # store copies that file a chunk at a time; reading it whole here would put the upload
    # in memory (twice, with the store's own copy), per concurrent upload.
    size = upload.size
    if size is None:
        size = upload.file.seek(0, os.SEEK_END)
    upload.file.seek(0)
    engine.files.check_upload(filename, size, form.get("purpose"))
    expires = None
    if "expires_after[anchor]" in form or "expires_after[seconds]" in form:
        expires = {"anchor": form.get("expires_after[anchor]"), "seconds": form.get("expires_after[seconds]")}
    return await engine.files.create(
        filename, upload.file, str(form["purpose"]), _owner(request), size=size, expires_after=expires
    )


async def list_files(request: Request, engine: Engine) -> Any:
    return await engine.files.list(request.query_params, _owner(request))


async def get_file(request: Request, engine: Engine) -> Any:
    return await engine.files.get(_p(request, "file_id"), _owner(request))


async def delete_file(request: Request, engine: Engine) -> Any:
    return await engine.delete_file(_p(request, "file_id"), _owner(request))


async def file_content(request: Request, engine: Engine) -> Any:
    from .files import content_headers

    file, chunks = await engine.files.stream(_p(request, "file_id"), _owner(request))
    headers = {**content_headers(file), "content-length": str(file["bytes"])}
    return StreamingResponse(chunks, headers=headers)


# -- assistants -----------------------------------------------------------------------


async def create_assistant(request: Request, engine: Engine) -> Any:
    return await engine.create_assistant(await _body(request, "assistant.create"), _owner(request))


async def list_assistants(request: Request, engine: Engine) -> Any:
    return await engine.list_assistants(list_params(request.query_params), _owner(request))


async def get_assistant(request: Request, engine: Engine) -> Any:
    return await engine.get_assistant(_p(request, "assistant_id"), _owner(request))


async def update_assistant(request: Request, engine: Engine) -> Any:
    body = await _body(request, "assistant.update")
    return await engine.update_assistant(_p(request, "assistant_id"), body, _owner(request))


async def delete_assistant(request: Request, engine: Engine) -> Any:
    return await engine.delete_assistant(_p(request, "assistant_id"), _owner(request))


# -- threads ------------------------------------------------------------------------------


async def create_thread(request: Request, engine: Engine) -> Any:
    return await engine.create_thread(await _body(request, "thread.create"), _owner(request))


async def list_threads(request: Request, engine: Engine) -> Any:
    return await engine.list_threads(list_params(request.query_params), _owner(request))


async def get_thread(request: Request, engine: Engine) -> Any:
    return await engine.get_thread(_p(request, "thread_id"), _owner(request))


async def update_thread(request: Request, engine: Engine) -> Any:
    body = await _body(request, "thread.update")
    return await engine.update_thread(_p(request, "thread_id"), body, _owner(request))


async def delete_thread(request: Request, engine: Engine) -> Any:
    return await engine.delete_thread(_p(request, "thread_id"), _owner(request))


async def create_thread_and_run(request: Request, engine: Engine) -> Any:
    body = await _body(request, "thread.create_and_run")
    stream = bool(body.pop("stream", False))
    run, sub = await engine.create_thread_and_run(body, _owner(request), _settings(request), stream=stream)
    return sub if stream else run


# -- messages -----------------------------------------------------------------------------


async def create_message(request: Request, engine: Engine) -> Any:
    body = await _body(request, "message.create")
    return await engine.create_message(_p(request, "thread_id"), body, _owner(request))


async def list_messages(request: Request, engine: Engine) -> Any:
    params = list_params(request.query_params, filters=("run_id",))
    return await engine.list_messages(_p(request, "thread_id"), params, _owner(request))


async def get_message(request: Request, engine: Engine) -> Any:
    return await engine.get_message(_p(request, "thread_id"), _p(request, "message_id"), _owner(request))


async def update_message(request: Request, engine: Engine) -> Any:
    body = await _body(request, "message.update")
    return await engine.update_message(
        _p(request, "thread_id"), _p(request, "message_id"), body, _owner(request)
    )


async def delete_message(request: Request, engine: Engine) -> Any:
    return await engine.delete_message(_p(request, "thread_id"), _p(request, "message_id"), _owner(request))


# -- runs ---------------------------------------------------------------------------------


async def create_run(request: Request, engine: Engine) -> Any:
    body = await _body(request, "run.create")
    include = _include(request, body)  # checked before the run exists; its stream applies it
    body.pop("include", None)
    body.pop("reasoning_effort", None)
    stream = bool(body.pop("stream", False))
    run, sub = await engine.create_run(
        _p(request, "thread_id"), body, _owner(request), _settings(request), stream=stream
    )
    return _sse_response(sub, include) if sub is not None else run


async def list_runs(request: Request, engine: Engine) -> Any:
    return await engine.list_runs(
        _p(request, "thread_id"), list_params(request.query_params), _owner(request)
    )


async def get_run(request: Request, engine: Engine) -> Any:
    return await engine.get_run(_p(request, "thread_id"), _p(request, "run_id"), _owner(request))


async def update_run(request: Request, engine: Engine) -> Any:
    body = await _body(request, "run.update")
    return await engine.update_run(_p(request, "thread_id"), _p(request, "run_id"), body, _owner(request))


async def cancel_run(request: Request, engine: Engine) -> Any:
    return await engine.cancel_run(_p(request, "thread_id"), _p(request, "run_id"), _owner(request))


async def submit_tool_outputs(request: Request, engine: Engine) -> Any:
    body = await _body(request, "run.submit_tool_outputs")
    stream = bool(body.pop("stream", False))
    run, sub = await engine.submit_tool_outputs(
        _p(request, "thread_id"),
        _p(request, "run_id"),
        body,
        _owner(request),
        _settings(request),
        stream=stream,
    )
    return sub if stream else run


async def list_steps(request: Request, engine: Engine) -> Any:
    include = _include(request)
    page = await engine.list_steps(
        _p(request, "thread_id"), _p(request, "run_id"), list_params(request.query_params), _owner(request)
    )
    return visible(page, include)


async def get_step(request: Request, engine: Engine) -> Any:
    include = _include(request)
    step = await engine.get_step(
        _p(request, "thread_id"), _p(request, "run_id"), _p(request, "step_id"), _owner(request)
    )
    return visible(step, include)


# -- inspection (extensions) -----------------------------------------------------------------


async def inspect_run(request: Request, engine: Engine) -> Any:
    return await engine.inspect_run(_p(request, "thread_id"), _p(request, "run_id"), _owner(request))


async def list_all_runs(request: Request, engine: Engine) -> Any:
    return await engine.list_all_runs(request.query_params, _owner(request))


async def list_all_steps(request: Request, engine: Engine) -> Any:
    include = _include(request)  # the file_search results' content, as for a run's steps
    return visible(await engine.list_all_steps(request.query_params, _owner(request)), include)


ROUTES: list[tuple[str, str, Handler]] = [
    ("/files", "GET", list_files),
    ("/files", "POST", create_file),
    ("/files/{file_id}", "GET", get_file),
    ("/files/{file_id}", "DELETE", delete_file),
    ("/files/{file_id}/content", "GET", file_content),
    ("/assistants", "GET", list_assistants),
    ("/assistants", "POST", create_assistant),
    ("/assistants/{assistant_id}", "GET", get_assistant),
    ("/assistants/{assistant_id}", "POST", update_assistant),
    ("/assistants/{assistant_id}", "DELETE", delete_assistant),
    ("/threads", "GET", list_threads),
    ("/threads", "POST", create_thread),
    ("/threads/runs", "POST", create_thread_and_run),
    ("/threads/{thread_id}", "GET", get_thread),
    ("/threads/{thread_id}", "POST", update_thread),
    ("/threads/{thread_id}", "DELETE", delete_thread),
    ("/threads/{thread_id}/messages", "GET", list_messages),
    ("/threads/{thread_id}/messages", "POST", create_message),
    ("/threads/{thread_id}/messages/{message_id}", "GET", get_message),
    ("/threads/{thread_id}/messages/{message_id}", "POST", update_message),
    ("/threads/{thread_id}/messages/{message_id}", "DELETE", delete_message),
    ("/threads/{thread_id}/runs", "GET", list_runs),
    ("/threads/{thread_id}/runs", "POST", create_run),
    ("/threads/{thread_id}/runs/{run_id}", "GET", get_run),
    ("/threads/{thread_id}/runs/{run_id}", "POST", update_run),
    ("/threads/{thread_id}/runs/{run_id}/cancel", "POST", cancel_run),
    ("/threads/{thread_id}/runs/{run_id}/submit_tool_outputs", "POST", submit_tool_outputs),
    ("/threads/{thread_id}/runs/{run_id}/steps", "GET", list_steps),
    ("/threads/{thread_id}/runs/{run_id}/steps/{step_id}", "GET", get_step),
    ("/threads/{thread_id}/runs/{run_id}/inspection", "GET", inspect_run),
    ("/runs", "GET", list_all_runs),
    ("/runs/steps", "GET", list_all_steps),
    *VECTOR_ROUTES,
]


def routes() -> list[Route]:
    return [Route(path, endpoint(handler), methods=[method]) for path, method, handler in ROUTES]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error = InvalidRequestError(
        f"Invalid URL ({request.method} {request.url.path})" if exc.status_code == 404 else str(exc.detail)
    )
    error.status_code = exc.status_code
    return _error(error)


async def _server_error(request: Request, exc: Exception) -> Response:
    return _unexpected(request, exc)


def _unexpected(request: Request, exc: Exception) -> Response:
    """A 500 in OpenAI's error shape for an exception nothing expected. Returned, not
    raised, so the server keeps the connection alive (Starlette's last-resort handler
    re-raises, and uvicorn then closes it). The log names the route, not the query."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    body = error_body(f"Internal server error: {type(exc).__name__}", "server_error", code="server_error")
    return JSONResponse(body, status_code=500)


def create_app(engine: Engine) -> Starlette:
    """The ASGI app serving ``engine`` at ``/`` and ``/v1``."""
    app = Starlette(
        routes=[Mount("/v1", routes=routes()), *routes()],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.state.engine = engine
    return app
