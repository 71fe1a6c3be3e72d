"""Why a file could not be ingested, as the vector-store file's ``last_error``.

The spec's ``last_error.code`` is one of ``server_error``, ``unsupported_file`` and
``invalid_file``; ingestion catches :class:`FileProcessingError` and stores
``{"code": err.code, "message": err.message}`` on the file, which goes to ``failed``.
These are not request errors (the upload itself was fine), so they do not derive from
:class:`assistant_kit.errors.InvalidRequestError`.
"""

from __future__ import annotations


class FileProcessingError(Exception):
    """A file's content cannot become chunks; ``code`` is the spec's ``last_error.code``."""

    code = "server_error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def last_error(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class UnsupportedFileError(FileProcessingError):
    """A format the kit does not extract text from (images, archives, binaries …)."""

    code = "unsupported_file"


class InvalidFileError(FileProcessingError):
    """A supported format whose bytes are broken, undecodable or hold no text."""

    code = "invalid_file"
