"""The served OpenAPI document: it matches what the proxy serves and what OpenAI's spec says
(fuzzing with it: test_openapi_fuzz.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from assistant_kit.engine.app import ROUTES
from assistant_kit.server.openapi import build_document, document_bytes

SPEC = Path(__file__).resolve().parents[2].parent / "shared" / "spec" / "openai-assistants-v2.yaml"
OWN = {("/health", "get"), ("/key/generate", "post"), ("/key/delete", "post"), ("/key/info", "get")}


def document() -> dict[str, Any]:
    return json.loads(document_bytes())


def test_document_lists_exactly_the_served_operations() -> None:
    operations = {(path, method) for path, ops in document()["paths"].items() for method in ops}
    assert operations == {(path, method.lower()) for path, method, _ in ROUTES} | OWN


def test_document_keeps_openai_licence_and_auth() -> None:
    doc = document()
    assert doc["info"]["license"]["identifier"] == "MIT"
    assert doc["components"]["securitySchemes"]["ApiKeyAuth"] == {"type": "http", "scheme": "bearer"}
    assert doc["paths"]["/health"]["get"]["security"] == []
    refs = json.dumps(doc)
    for name in doc["components"]["schemas"]:
        assert f"#/components/schemas/{name}" in refs or name in ("Health",)


@pytest.mark.skipif(not SPEC.exists(), reason="the shared spec is not beside the repository")
def test_shipped_document_is_up_to_date() -> None:
    with SPEC.open(encoding="utf-8") as f:
        spec = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert build_document(spec) == document(), (
        "regenerate: python -m assistant_kit.server.openapi ../shared/spec/openai-assistants-v2.yaml"
    )
