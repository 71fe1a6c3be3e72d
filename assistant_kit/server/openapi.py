"""The proxy's OpenAPI document, served at ``/openapi.json``.

It is OpenAI's own published OpenAPI spec (MIT licence, kept in the document's ``info``),
cut down to the operations the proxy serves, plus the proxy's extensions: ``GET /threads``,
``GET /health`` and the key routes (``POST /key/generate``, ``POST /key/delete``,
``GET /key/info``). The cut-down document ships as package data
(``openapi.json``, loaded once on first request, served as bytes); this module also builds it
from the full spec, so it can be regenerated and tests can check that it has not drifted::

    python -m assistant_kit.server.openapi ../shared/spec/openai-assistants-v2.yaml

Decision: JSON, not YAML, as the shipped form: ``json.loads`` costs milliseconds where a
pure-Python YAML parse of the same document costs about a second. ``x-oaiMeta`` (OpenAI's
documentation examples) is dropped; every schema still reachable from a kept operation stays.
"""

from __future__ import annotations

import copy
import functools
import json
import sys
from importlib import resources
from typing import Any

from ..engine.app import ROUTES

DATA_FILE = "openapi.json"

_ERROR_RESPONSE = {
    "description": "An error in OpenAI's shape.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
}

_EXTENSIONS: dict[str, dict[str, Any]] = {
    "/threads": {
        "get": {
            "operationId": "listThreads",
            "tags": ["Assistants"],
            "summary": "Returns a list of threads (assistant-kit extension).",
            "parameters": "<list parameters of listAssistants>",
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/ListThreadsResponse"}}
                    },
                }
            },
        }
    },
    "/health": {
        "get": {
            "operationId": "health",
            "tags": ["Proxy"],
            "summary": "Liveness and store readiness (no key needed).",
            "security": [],
            "responses": {
                "200": {
                    "description": "The server and its store answer.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}},
                },
                "503": {
                    "description": "The store does not answer.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}},
                },
            },
        }
    },
    "/key/generate": {
        "post": {
            "operationId": "generateKey",
            "tags": ["Proxy"],
            "summary": "Create an API key (master key only; LiteLLM's route and fields).",
            "requestBody": {
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/GenerateKeyRequest"}}
                }
            },
            "responses": {
                "200": {
                    "description": "The new key. It is shown once; only its SHA-256 is stored.",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/GenerateKeyResponse"}}
                    },
                },
                "400": _ERROR_RESPONSE,
                "401": _ERROR_RESPONSE,
                "403": _ERROR_RESPONSE,
            },
        }
    },
    "/key/delete": {
        "post": {
            "operationId": "deleteKeys",
            "tags": ["Proxy"],
            "summary": "Revoke generated keys, named by key or token (master key only; LiteLLM's route).",
            "requestBody": {
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/DeleteKeysRequest"}}
                }
            },
            "responses": {
                "200": {
                    "description": "The keys that were deleted.",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/DeleteKeysResponse"}}
                    },
                },
                "400": _ERROR_RESPONSE,
                "401": _ERROR_RESPONSE,
                "403": _ERROR_RESPONSE,
                "404": _ERROR_RESPONSE,
            },
        }
    },
    "/key/info": {
        "get": {
            "operationId": "keyInfo",
            "tags": ["Proxy"],
            "summary": "A key's facts, never the key (the caller's own, or any key for the master key).",
            "parameters": [
                {
                    "name": "key",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "The key or its token; default: the key of the request.",
                }
            ],
            "responses": {
                "200": {
                    "description": "The key's facts.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/KeyInfo"}}},
                },
                "401": _ERROR_RESPONSE,
                "404": _ERROR_RESPONSE,
            },
        }
    },
}

_EXTRA_SCHEMAS: dict[str, dict[str, Any]] = {
    "DeleteKeysRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"keys": {"type": "array", "items": {"type": "string"}, "maxItems": 100}},
        "required": ["keys"],
    },
    "DeleteKeysResponse": {
        "type": "object",
        "properties": {"deleted_keys": {"type": "array", "items": {"type": "string"}}},
        "required": ["deleted_keys"],
    },
    "KeyInfo": {
        "type": "object",
        "properties": {
            "key": {"type": "string", "description": "The key's token (SHA-256)."},
            "info": {"type": "object"},
        },
        "required": ["key", "info"],
    },
    "ListThreadsResponse": {
        "type": "object",
        "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/ThreadObject"}},
            "first_id": {"type": ["string", "null"]},
            "last_id": {"type": ["string", "null"]},
            "has_more": {"type": "boolean"},
        },
        "required": ["object", "data", "first_id", "last_id", "has_more"],
    },
    "Health": {
        "type": "object",
        "properties": {
            "status": {"type": "string"},
            "store": {"type": "string"},
            "mode": {"type": "string"},
            "code_interpreter": {
                "type": "object",
                "description": "Present when code_interpreter is enabled: what kernels run in.",
                "properties": {
                    "sandbox": {"type": "string", "enum": ["bwrap", "none"]},
                    "network": {"type": "boolean"},
                },
            },
            "warnings": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["status"],
    },
    "GenerateKeyRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "key": {"type": "string", "description": "A key of your own (must start with sk-)."},
            "key_alias": {"type": "string", "maxLength": 256},
            "user_id": {
                "type": "string",
                "description": "Keys of the same user share that user's objects.",
                "maxLength": 56,
            },
            "duration": {"type": "string", "description": "Validity such as 30s, 10m, 12h, 30d."},
            "metadata": {"$ref": "#/components/schemas/Metadata"},
        },
    },
    "GenerateKeyResponse": {
        "type": "object",
        "properties": {
            "key": {"type": "string"},
            "key_name": {"type": "string"},
            "key_alias": {"type": ["string", "null"]},
            "user_id": {"type": ["string", "null"]},
            "token": {"type": "string", "description": "The key's SHA-256 (hex)."},
            "expires": {"type": ["string", "null"], "format": "date-time"},
            "created_at": {"type": "string", "format": "date-time"},
            "metadata": {"type": "object"},
        },
        "required": ["key", "token"],
    },
}


def _served() -> set[tuple[str, str]]:
    return {(path, method.lower()) for path, method, _ in ROUTES}


def _strip_meta(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_meta(v) for k, v in value.items() if k != "x-oaiMeta"}
    if isinstance(value, list):
        return [_strip_meta(v) for v in value]
    return value


def _refs(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/"):
            found.add(ref)
        for item in value.values():
            found |= _refs(item)
    elif isinstance(value, list):
        for item in value:
            found |= _refs(item)
    return found


def build_document(spec: dict[str, Any]) -> dict[str, Any]:
    """The served document from OpenAI's full spec: served operations, extensions, and the
    components they reach."""
    spec = _strip_meta(copy.deepcopy(spec))
    served = _served()
    paths: dict[str, dict[str, Any]] = {}
    for path, operations in spec["paths"].items():
        kept = {m: op for m, op in operations.items() if (path, m) in served}
        if kept:
            paths[path] = kept
    extensions = copy.deepcopy(_EXTENSIONS)
    list_parameters = spec["paths"]["/assistants"]["get"]["parameters"]
    extensions["/threads"]["get"]["parameters"] = copy.deepcopy(list_parameters)
    for path, operations in extensions.items():
        paths.setdefault(path, {}).update(operations)
    missing = served - {(p, m) for p, ops in paths.items() for m in ops}
    if missing:
        raise ValueError(f"the spec lacks served operations: {sorted(missing)}")
    source = spec["components"]
    components: dict[str, dict[str, Any]] = {
        "securitySchemes": {"ApiKeyAuth": source["securitySchemes"]["ApiKeyAuth"]},
        "schemas": copy.deepcopy(_EXTRA_SCHEMAS),
    }
    pending = _refs(paths) | _refs(_EXTRA_SCHEMAS)
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, _, section, name = ref.split("/", 3)
        if name in components.get(section, {}):
            continue
        item = source[section][name]
        components.setdefault(section, {})[name] = item
        pending |= _refs(item)
    for section in components.values():
        section_sorted = dict(sorted(section.items()))
        section.clear()
        section.update(section_sorted)
    info = dict(spec["info"])
    info["title"] = "assistant-kit proxy: the Assistants API v2"
    info["description"] = (
        "The Assistants v2 operations that assistant-kit serves (at / and /v1), taken from "
        f"OpenAI's published OpenAPI spec ({spec['info']['title']}), plus the proxy's "
        "extensions: GET /threads, GET /health, POST /key/generate, POST /key/delete, GET /key/info."
    )
    info.pop("termsOfService", None)
    return {
        "openapi": spec["openapi"],
        "info": info,
        "servers": [{"url": "/v1"}, {"url": "/"}],
        "security": [{"ApiKeyAuth": []}],
        "paths": paths,
        "components": components,
    }


@functools.cache
def document_bytes() -> bytes:
    """The shipped document, as served."""
    return resources.files(__package__).joinpath(DATA_FILE).read_bytes()


def main(argv: list[str] | None = None) -> int:
    import yaml

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m assistant_kit.server.openapi SPEC.yaml", file=sys.stderr)
        return 2
    with open(args[0], encoding="utf-8") as f:
        spec = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    target = resources.files(__package__).joinpath(DATA_FILE)
    text = json.dumps(build_document(spec), indent=1, ensure_ascii=False) + "\n"
    with open(str(target), "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {target} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
