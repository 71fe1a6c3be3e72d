"""One exception tree; the engine maps each class to OpenAI's error body and status.

Status codes are chosen so the official SDK never retries a client mistake: it retries
408, 409, 429 and 5xx even for POST, so validation and state conflicts are 400 (never 409)
and missing objects are 404. A failed *run* is data (``status="failed"``, ``last_error``),
not an exception.
"""

from __future__ import annotations

from typing import Any


def error_body(
    message: str, type: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """OpenAI's error body, ``{"error": {"message", "type", "param", "code"}}`` — the one place
    it is built, for every response, SSE ``error`` event and proxy answer the kit sends. The
    SDK reads ``error`` as its exception's ``body`` (with ``.param`` and ``.code`` from it)."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


class AssistantKitError(Exception):
    """Root of every error the kit raises on purpose."""

    status_code = 500
    type = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def to_body(self) -> dict[str, Any]:
        """This error as the API answers it (:func:`error_body`)."""
        return error_body(self.message, self.type, param=self.param, code=self.code)


class InvalidRequestError(AssistantKitError):
    """The request is malformed or conflicts with the object's state (400)."""

    status_code = 400
    type = "invalid_request_error"


class NotFoundError(AssistantKitError):
    """An id that does not exist (or is not visible to the caller): 404, message names it."""

    status_code = 404
    type = "invalid_request_error"

    def __init__(self, kind: str, object_id: str, *, param: str | None = None):
        super().__init__(f"No {kind} found with id '{object_id}'.", param=param)
        self.kind = kind
        self.object_id = object_id


class AuthenticationError(AssistantKitError):
    status_code = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class RequestTooLargeError(AssistantKitError):
    status_code = 413
    type = "invalid_request_error"


class ModelError(AssistantKitError):
    """A model backend failed. ``code`` becomes the run's ``last_error.code``."""

    code = "server_error"

    def __init__(
        self,
        message: str,
        *,
        code: str = "server_error",
        retryable: bool = False,
        status: int | None = None,
        model: str | None = None,
    ):
        super().__init__(message, code=code)
        self.retryable = retryable
        self.status = status
        self.model = model


class ModelConfigError(AssistantKitError):
    """No backend for a model name, or its backend is missing credentials/extras (400)."""

    status_code = 400
    type = "invalid_request_error"
    code = "model_not_found"


class SessionError(AssistantKitError):
    """A session operation that cannot go on; the message says why and what to do next.

    ``status`` is the HTTP status the server answered with (None when none was reached).
    IPython shows it as one line (``_render_traceback_``) instead of a traceback.
    """

    status_code = 400
    type = "invalid_request_error"

    def __init__(
        self, message: str, *, status: int | None = None, param: str | None = None, code: str | None = None
    ):
        super().__init__(message, param=param, code=code)
        self.status = status

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self.message}"]
