"""The proxy's OpenAPI document, served at ``/openapi.json``.

It is OpenAI's own published OpenAPI spec (MIT licence, kept in the document's ``info``),
cut down to the operations the proxy serves, plus the proxy's extensions: ``GET /threads``,
the inspector's routes (``GET /threads/{thread_id}/runs/{run_id}/inspection``, ``GET /runs``,
``GET /runs/steps``), ``GET /health`` and the key routes (``POST /key/generate``,
``POST /key/delete``, ``GET /key/info``). The cut-down document ships as package data
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

def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema or {"type": "string"},
        "description": description,
    }


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _ok(schema: str) -> dict[str, Any]:
    return {
        "200": {
            "description": "OK",
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        },
        "400": _ERROR_RESPONSE,
        "404": _ERROR_RESPONSE,
    }


_ACROSS_FILTERS = [
    _query("assistant_id", "Only runs of this assistant."),
    _query("thread_id", "Only runs of this thread."),
    _query("status", "Only these statuses (comma-separated)."),
    _query("model", "Only runs of this model (for steps: the run's model)."),
    _query("created_after", "Created at or after (Unix seconds).", {"type": "integer"}),
    _query("created_before", "Created before (Unix seconds).", {"type": "integer"}),
]

_EXTENSIONS: dict[str, dict[str, Any]] = {
    "/threads/{thread_id}/runs/{run_id}/inspection": {
        "get": {
            "operationId": "inspectRun",
            "tags": ["Assistants"],
            "summary": "A run's millisecond timings, its steps' and the prompt of each model turn "
            "(assistant-kit extension, docs/inspection.md).",
            "parameters": [_path("thread_id"), _path("run_id")],
            "responses": _ok("RunInspection"),
        }
    },
    "/runs": {
        "get": {
            "operationId": "listAllRuns",
            "tags": ["Assistants"],
            "summary": "Runs across the whole store, each with its timings (assistant-kit extension).",
            "parameters": ["<list parameters of listAssistants>", *_ACROSS_FILTERS],
            "responses": _ok("ListRunsAcrossResponse"),
        }
    },
    "/runs/steps": {
        "get": {
            "operationId": "listAllRunSteps",
            "tags": ["Assistants"],
            "summary": "Run steps across the whole store, each with its timings (assistant-kit extension).",
            "parameters": [
                "<list parameters of listAssistants>",
                *_ACROSS_FILTERS,
                _query("run_id", "Only steps of this run."),
                _query(
                    "type",
                    "Only steps of this type.",
                    {"type": "string", "enum": ["message_creation", "tool_calls"]},
                ),
            ],
            "responses": _ok("ListRunStepsAcrossResponse"),
        }
    },
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

_MS = {"type": ["integer", "null"], "description": "Unix milliseconds; null: unknown."}
_RUN_TIMINGS = {
    "type": "object",
    "properties": {
        name: _MS for name in ("created_at_ms", "started_at_ms", "first_token_at_ms", "ended_at_ms")
    },
}
_STEP_TIMINGS = {
    "type": "object",
    "properties": {
        **{name: _MS for name in ("created_at_ms", "first_token_at_ms", "ended_at_ms")},
        "tool_ms": {
            "type": ["integer", "null"],
            "description": "Milliseconds spent executing built-in tools in the step; null: none or unknown.",
        },
    },
}


def _list_of(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "data": {"type": "array", "items": item},
            "first_id": {"type": ["string", "null"]},
            "last_id": {"type": ["string", "null"]},
            "has_more": {"type": "boolean"},
        },
        "required": ["object", "data", "first_id", "last_id", "has_more"],
    }


_EXTRA_SCHEMAS: dict[str, dict[str, Any]] = {
    "RunTimings": _RUN_TIMINGS,
    "RunStepTimings": _STEP_TIMINGS,
    "RunInspection": {
        "type": "object",
        "properties": {
            "object": {"type": "string", "enum": ["assistant_kit.run_inspection"]},
            "run_id": {"type": "string"},
            "thread_id": {"type": "string"},
            "timings": {"$ref": "#/components/schemas/RunTimings"},
            "steps": {
                "type": "array",
                "items": {
                    "allOf": [
                        {"$ref": "#/components/schemas/RunStepTimings"},
                        {
                            "type": "object",
                            "properties": {
                                "step_id": {"type": "string"},
                                "type": {"type": ["string", "null"]},
                            },
                        },
                    ]
                },
            },
            "prompts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "turn": {"type": "integer"},
                        "step_ids": {"type": "array", "items": {"type": "string"}},
                        "created_at_ms": {"type": "integer"},
                        "model": {"type": ["string", "null"]},
                        "request": {
                            "type": "object",
                            "description": "The chat-format request as sent (never credentials).",
                        },
                        "truncated": {"type": "boolean"},
                        "bytes": {"type": "integer"},
                    },
                },
            },
            "record_prompts": {"type": "boolean"},
        },
        "required": ["object", "run_id", "thread_id", "timings", "steps", "prompts", "record_prompts"],
    },
    "ListRunsAcrossResponse": _list_of(
        {
            "allOf": [
                {"$ref": "#/components/schemas/RunObject"},
                {"type": "object", "properties": {"timings": {"$ref": "#/components/schemas/RunTimings"}}},
            ]
        }
    ),
    "ListRunStepsAcrossResponse": _list_of(
        {
            "allOf": [
                {"$ref": "#/components/schemas/RunStepObject"},
                {
                    "type": "object",
                    "properties": {"timings": {"$ref": "#/components/schemas/RunStepTimings"}},
                },
            ]
        }
    ),
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
    for operations in extensions.values():
        for operation in operations.values():
            parameters = operation.get("parameters")
            if isinstance(parameters, list) and "<list parameters of listAssistants>" in parameters:
                at = parameters.index("<list parameters of listAssistants>")
                parameters[at : at + 1] = copy.deepcopy(list_parameters)
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
        "extensions: GET /threads, GET /threads/{thread_id}/runs/{run_id}/inspection, GET /runs, "
        "GET /runs/steps, GET /health, POST /key/generate, POST /key/delete, GET /key/info."
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
