"""Fixtures of the model tests: a client of a throwaway in-memory store, and an assistant on
the embedded model (``local/smollm2``) in it."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from assistant_kit import local_client


@pytest.fixture
def kit() -> openai.OpenAI:
    return local_client(":memory:")


@pytest.fixture
def assistant(kit: openai.OpenAI) -> Any:
    return kit.beta.assistants.create(model="local/smollm2")
