"""Retrieval core of vector stores: text extraction, token chunking, embeddings, keyword +
semantic search fused into one score.

Nothing here imports the engine, the server or the notebook: the vector-store routes call
these functions, and the store's migration list includes :mod:`.schema`. Heavy parsers and
models load lazily (the ``retrieval`` extra), so importing this package costs milliseconds.
"""

from __future__ import annotations

from .errors import FileProcessingError, InvalidFileError, UnsupportedFileError

__all__ = ["FileProcessingError", "InvalidFileError", "UnsupportedFileError"]
