"""The Files API, as much of it as the Assistants tools need: upload, list, retrieve, delete,
download. Bytes are kept as uploaded (a download returns the original), in the same store and
under the same ownership rules as every other object (another key's file is a 404).

Decisions:

- Size: at most ``max_bytes`` per file (``ASSISTANT_KIT_MAX_FILE_MB``, default 64 MB; the proxy's
  ``general_settings.max_file_size_mb``). OpenAI allows 512 MB, but here files live in the
  database, next to the threads; a larger file is refused with a 400 that names the limit, as
  is an empty one.
- ``purpose``: the upload values of OpenAI's spec (but ``evals``) are accepted and stored; files the
  code_interpreter makes get ``assistants_output``. ``expires_after`` is honoured: an expired
  file reads as deleted.
- ``GET /files`` pages like OpenAI's (``limit`` 1 to 10,000, default 10,000; ``after``; ``order``).
- Memory: an upload is stored from the temp file Starlette spooled it to, and a download is
  streamed, a chunk (``store.schema.CHUNK_BYTES``, 1 MB) at a time — a file is never in the
  server's memory whole (see the store's ``file_chunks``). How many uploads the proxy takes at
  once is limited there (``general_settings.max_concurrent_uploads``).
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote

from openai.types import FileObject

from .._ids import new_id, now
from ..errors import InvalidRequestError, NotFoundError
from .steps import build
from .validation import list_params

if TYPE_CHECKING:
    from .core import Engine

# OpenAI's upload purposes but "evals": the File object has no such purpose to report (the SDK's
# FileObject.purpose does not list it) and this server has no Evals API to use it.
UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data")
DEFAULT_MAX_FILE_MB = 64.0
MAX_FILE_ENV = "ASSISTANT_KIT_MAX_FILE_MB"


def max_file_bytes(value: float | None = None) -> int:
    """The per-file limit in bytes: ``value`` (MB), else ``$ASSISTANT_KIT_MAX_FILE_MB``, else 64 MB."""
    if value is None:
        text = os.environ.get(MAX_FILE_ENV)
        value = float(text) if text else DEFAULT_MAX_FILE_MB
    return int(value * 1024 * 1024)


def content_headers(file: dict[str, Any]) -> dict[str, str]:
    """``Content-Type`` guessed from the name, and a ``Content-Disposition`` that cannot be
    broken out of (RFC 5987 encoding of the uploaded name)."""
    kind = mimetypes.guess_type(file["filename"])[0] or "application/octet-stream"
    return {
        "content-type": kind,
        "content-disposition": f"attachment; filename*=UTF-8''{quote(file['filename'], safe='')}",
    }


class Files:
    def __init__(self, engine: Engine, max_bytes: int | None = None):
        self.engine = engine
        self.store = engine.store
        self.max_bytes = max_file_bytes() if max_bytes is None else max_bytes

    def __repr__(self) -> str:
        return f"<Files max_bytes={self.max_bytes}>"

    def check_upload(self, filename: str | None, size: int, purpose: Any) -> None:
        """The 400s of an upload, before anything is stored."""
        if purpose is None or purpose == "":
            raise InvalidRequestError("Missing required parameter: 'purpose'.", param="purpose")
        if purpose not in UPLOAD_PURPOSES:
            raise InvalidRequestError(
                f"Invalid 'purpose': '{purpose}'. Expected one of: {', '.join(UPLOAD_PURPOSES)}.",
                param="purpose",
            )
        if size == 0:
            raise InvalidRequestError(f"File '{filename}' is empty: nothing to upload.", param="file")
        if size > self.max_bytes:
            raise InvalidRequestError(
                f"File '{filename}' is too large: the limit is {self.max_bytes:,} bytes per file "
                f"({self.max_bytes / 1024 / 1024:.3g} MB).",
                param="file",
            )

    async def create(
        self,
        filename: str,
        content: bytes | BinaryIO,
        purpose: str,
        owner: str | None = None,
        *,
        size: int | None = None,
        expires_after: dict[str, Any] | None = None,
        thread_id: str | None = None,
        call_id: str | None = None,
        file_id: str | None = None,
    ) -> dict[str, Any]:
        """Store a file. Uploads go through :meth:`check_upload` first; the code_interpreter
        stores what code made with ``purpose="assistants_output"`` and the call that made it.
        ``content``: bytes, or a binary file (an upload's spooled temp file, copied to the
        store a chunk at a time) whose ``size`` must then be given."""
        if size is None:
            if not isinstance(content, (bytes, bytearray, memoryview)):
                raise TypeError("size is required when content is a file")
            size = len(content)
        created = now()
        expires_at = None
        if expires_after is not None:
            expires_at = created + _expiry_seconds(expires_after)
        obj = build(
            FileObject,
            id=file_id or new_id("file"),
            object="file",
            bytes=size,
            created_at=created,
            expires_at=expires_at,
            filename=filename,
            purpose=purpose,
            status="processed",
            status_details=None,
        )
        return await self.store.insert_file(obj, content, owner, thread_id=thread_id, call_id=call_id)

    async def get(self, file_id: str, owner: str | None = None, param: str | None = None) -> dict[str, Any]:
        obj = await self.store.get("file", file_id, owner)
        if obj is None or expired(obj):
            raise NotFoundError("file", file_id, param=param)
        return obj

    async def content(self, file_id: str, owner: str | None = None) -> tuple[dict[str, Any], bytes]:
        obj = await self.get(file_id, owner)
        data = await self.store.file_content(file_id)
        if data is None:  # deleted between the two reads
            raise NotFoundError("file", file_id)
        return obj, data

    async def stream(
        self, file_id: str, owner: str | None = None
    ) -> tuple[dict[str, Any], AsyncIterator[bytes]]:
        """The File object and its bytes as chunks read from the store one at a time (a
        download never holds the file whole). The file is looked up now (a 404 before any
        byte); if it is deleted mid-stream the stream stops short of ``bytes``, and the
        response, sent with that ``Content-Length``, then ends incomplete rather than
        silently shorter."""
        obj = await self.get(file_id, owner)

        async def chunks() -> AsyncIterator[bytes]:
            seq = sent = 0
            while (chunk := await self.store.file_chunk(file_id, seq)) is not None:
                sent += len(chunk)
                seq += 1
                yield chunk
            if sent != obj["bytes"]:
                raise NotFoundError("file", file_id)  # deleted while it was being sent

        return obj, chunks()

    async def delete(self, file_id: str, owner: str | None = None) -> dict[str, Any]:
        await self.get(file_id, owner)
        await self.store.delete_file(file_id)
        await self.engine.vector_stores.file_deleted(file_id)  # it leaves every vector store
        return {"id": file_id, "object": "file", "deleted": True}

    async def list(self, query: Any, owner: str | None = None) -> dict[str, Any]:
        from .core import page_body

        params = list_params(
            query, filters=("purpose",), default_limit=10_000, max_limit=10_000, before=False, ignored=()
        )
        # Expired files are not listed; pages are refilled past them, so a page is short only
        # at the end (a client pages on while has_more is true).
        limit = params["limit"]
        data: list[dict[str, Any]] = []
        while True:
            page = await self.store.list("file", owner=owner, **params)
            data += [f for f in page.data if not expired(f)]
            if not page.has_more or len(data) >= limit:
                break
            params["after"] = page.data[-1]["id"]
        page.has_more = page.has_more or len(data) > limit
        page.data = data[:limit]
        return page_body(page)


def _expiry_seconds(expires_after: dict[str, Any]) -> int:
    if expires_after.get("anchor") != "created_at":
        raise InvalidRequestError(
            "Invalid 'expires_after[anchor]': expected 'created_at'.", param="expires_after.anchor"
        )
    try:
        seconds = int(expires_after.get("seconds"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidRequestError(
            "Invalid 'expires_after[seconds]': expected an integer.", param="expires_after.seconds"
        ) from None
    if not 3600 <= seconds <= 2_592_000:
        raise InvalidRequestError(
            f"Invalid 'expires_after[seconds]': {seconds} is outside [3600, 2592000].",
            param="expires_after.seconds",
        )
    return seconds


def expired(obj: dict[str, Any]) -> bool:
    """Past its ``expires_after``: as good as deleted."""
    return obj.get("expires_at") is not None and obj["expires_at"] <= now()
