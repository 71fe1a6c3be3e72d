"""The edge between a :class:`~.session.Session` and the SDK: one error out, nothing secret shown.

A session is driven by hand in a notebook, so whatever goes wrong should read like an answer,
not like a crash inside a library. Everything that crosses the edge goes through here:

* **SDK errors out.** ``openai.APIError`` (a 404 for an unknown id, a refused connection, an
  invalid request) becomes one short :class:`~assistant_kit.errors.SessionError` —
  :func:`explain` picks the server's own message when it gave one — raised ``from None``,
  so IPython renders a single line, never a traceback from inside the SDK.
  (:meth:`Boundary._api` wraps every call; a *failed run* is data, not an error, and is
  left to the run's view.)
* **Parameters in.** ``**params`` passed through to the SDK are checked against the SDK
  method's signature first (:meth:`Boundary._checked`): a typo is a ``SessionError`` naming
  the accepted parameters instead of a ``TypeError`` from deep in the client; files to
  upload (:func:`file_sources`) are checked before anything is sent.
* **Config shown.** Reprs name where calls go; :func:`safe_url` and :func:`db_label` keep
  keys, passwords, paths and queries out of them.

:class:`Boundary` is the base of ``Session`` (and of the run driving in :mod:`._runs`), so
both call the SDK the same way, as ``self._api(...)``.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import openai

from ..errors import SessionError

_T = TypeVar("_T")


def safe_url(url: str) -> str:
    """``scheme://host[:port]`` — no userinfo, path or query, so nothing secret is shown."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def db_label(url: str) -> str:
    """A store for display: the SQLite path, or the URL with its password masked."""
    if url == "sqlite://":
        return ":memory:"
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///") :]
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def explain(exc: openai.APIError, where: str) -> SessionError:
    """One short :class:`SessionError` for an SDK error (the server's own message when it gave one)."""
    who = where[:1].upper() + where[1:]
    if isinstance(exc, openai.APITimeoutError):
        return SessionError(f"{who} did not answer in time.")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        reason = str(cause).strip() if cause else "connection failed"
        return SessionError(f"Cannot reach {where} ({reason}). Is it running, and is the URL right?")
    status = getattr(exc, "status_code", None)
    if isinstance(exc.body, Mapping) and exc.body.get("message"):
        message = str(exc.body["message"])
    else:  # not an API error body (a proxy's HTML page, …): say who answered what, briefly
        detail = " ".join(str(exc.body or "").split())
        message = f"{who} answered HTTP {status}" + (f": {detail[:200]}" if detail else ".")
    if isinstance(exc, openai.AuthenticationError):
        message = f"{who} refused the API key: {message}"
    return SessionError(message, status=status, param=exc.param, code=exc.code)


FileSource = str | os.PathLike[str] | tuple[str, bytes]
FilesArg = FileSource | Iterable[FileSource]
_FILE_ID = re.compile(r"file[-_][A-Za-z0-9]+")


def file_sources(files: FilesArg) -> list[str | tuple[str, bytes | Path]]:
    """``files`` as uploads — ``(name, bytes)`` or ``(name, path)`` — and file ids, checked
    before anything is sent: a missing path is a :class:`SessionError` naming it."""
    if isinstance(files, (str, os.PathLike)) or (
        isinstance(files, tuple) and len(files) == 2 and isinstance(files[1], bytes)
    ):
        files = [files]  # type: ignore[list-item]
    sources: list[str | tuple[str, bytes | Path]] = []
    for item in files:  # type: ignore[union-attr]
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
            sources.append((str(item[0]), item[1]))
        elif isinstance(item, (str, os.PathLike)):
            path = Path(item).expanduser()
            if path.is_file():
                sources.append((path.name, path))
            elif isinstance(item, str) and _FILE_ID.fullmatch(item):
                sources.append(item)
            else:
                raise SessionError(f"files: {str(item)!r} is not a file (nor a file id).", param="files")
        else:
            raise SessionError(
                f"files: expected paths, (name, bytes) pairs or file ids, got {type(item).__name__}.",
                param="files",
            )
    return sources


class Boundary:
    """SDK calls with their errors translated; pass-through parameters checked first."""

    _where: str
    """Who answers, for messages: "the local engine", "the Assistants server at …"."""

    def _api(self, call: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """``call(*args, **kwargs)`` with SDK errors turned into one :class:`SessionError`."""
        try:
            return call(*args, **kwargs)
        except openai.APIError as exc:
            error = explain(exc, self._where)
        raise error from None  # outside the handler: the SDK's error is not even kept as context

    @staticmethod
    def _checked(
        method: Callable[..., Any], params: dict[str, Any], exclude: Iterable[str] = ()
    ) -> dict[str, Any]:
        accepted = set(inspect.signature(method).parameters) - {"self", *exclude}
        unknown = sorted(set(params) - accepted)
        if unknown:
            raise SessionError(
                f"Unknown parameter(s) {', '.join(unknown)}. Accepted: {', '.join(sorted(accepted))}.",
                param=unknown[0],
            )
        return params
