"""What a request body may point at: files named in ``tool_resources``, ``attachments`` and
``image_file`` content parts must exist, not be expired, and be the caller's — else a 400 that
names the parameter and the id — within the spec's counts (20 code_interpreter files, one
vector store). Read-only: the engine checks a body here before it writes anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import InvalidRequestError
from .shapes import expired

if TYPE_CHECKING:
    from ..store import AsyncStore

MAX_CODE_FILES = 20  # tool_resources.code_interpreter.file_ids, per the spec


async def check_references(
    store: AsyncStore, body: dict[str, Any], owner: str | None, where: str = ""
) -> None:
    """Check the files ``body`` points at; ``where`` prefixes the parameter names (a body
    nested in another: ``thread.``, ``messages[0].``)."""
    resources = body.get("tool_resources") or {}
    file_ids = (resources.get("code_interpreter") or {}).get("file_ids") or []
    param = f"{where}tool_resources.code_interpreter.file_ids"
    if len(file_ids) > MAX_CODE_FILES:
        raise InvalidRequestError(
            f"Invalid '{param}': at most {MAX_CODE_FILES} files, got {len(file_ids)}.", param=param
        )
    for index, file_id in enumerate(file_ids):
        await check_file(store, file_id, owner, f"{param}[{index}]")
    stores = (resources.get("file_search") or {}).get("vector_store_ids") or []
    if len(stores) > 1:
        param = f"{where}tool_resources.file_search.vector_store_ids"
        raise InvalidRequestError(
            f"Invalid '{param}': at most 1 vector store, got {len(stores)}.", param=param
        )
    for index, attachment in enumerate(body.get("attachments") or []):
        await check_file(store, attachment.get("file_id"), owner, f"{where}attachments[{index}].file_id")
    content = body.get("content")
    for index, part in enumerate(content if isinstance(content, list) else ()):
        if isinstance(part, dict) and part.get("type") == "image_file":
            file_id = (part.get("image_file") or {}).get("file_id")
            await check_file(store, file_id, owner, f"{where}content[{index}].image_file.file_id")


async def check_messages(
    store: AsyncStore, messages: list[dict[str, Any]], owner: str | None, where: str
) -> None:
    """Check the files each of ``messages`` (the body's list at ``where``) points at."""
    for index, message in enumerate(messages):
        await check_references(store, message, owner, f"{where}[{index}].")


async def check_file(store: AsyncStore, file_id: Any, owner: str | None, param: str) -> None:
    """``file_id`` names a live file of ``owner``'s, else a 400 naming ``param``."""
    file = await store.get("file", file_id, owner) if isinstance(file_id, str) else None
    if file is None or expired(file):
        raise InvalidRequestError(f"Invalid '{param}': no file found with id '{file_id}'.", param=param)
