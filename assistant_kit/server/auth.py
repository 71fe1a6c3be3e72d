"""API keys: which key a request carries, whose objects it may see, and ``POST /key/generate``.

:class:`AuthMiddleware` is pure ASGI in front of the engine app. It reads the key from
``Authorization: Bearer <key>`` (or ``api-key: <key>``, the header Azure-style clients send),
turns it into an *owner* and puts that in the scope as ``assistant_kit.owner``; the engine
scopes every object to it, so another key gets 404 for it and never sees it in a list.
No key, or a wrong or expired one, is a 401 in OpenAI's error shape.

Owners (decisions):

- the master key → ``"master"``: its own namespace like any other key, **not** a view of
  everything. The Assistants API has no admin view, and a client using the master key (as
  the seed's examples do with ``sk-1234``) should list what it created, not everyone's.
- a key with a ``user_id`` (config or ``/key/generate``) → ``"user:<user_id>"``: every key of
  one user shares that user's objects, so keys can be rotated without losing threads.
- any other key → ``"key:"`` + the first 32 hex digits of its SHA-256: stable across restarts
  and replicas without storing the key.
- no key configured at all (no ``master_key``, no ``api_keys``) → authentication is off and
  the owner is None: the single-user mode of the in-process client, seeing everything in the
  store. The CLI warns about it at startup.

Keys are stored and compared only as SHA-256 hex digests (``api_keys`` table, migration
``0002_api_keys``); no pepper: keys are 190-bit random strings, so a digest cannot be
reversed by guessing. Generated keys are looked up in the store on first use and cached for
:data:`CACHE_SECONDS`, so a key generated on one replica works on every replica sharing the
database. Nothing here logs or echoes a key; the 401 message does not quote it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .._ids import now
from ..engine.validation import check_metadata, parse_json
from ..errors import AssistantKitError, AuthenticationError, InvalidRequestError
from ..store import AsyncStore, Store
from .config import Config

MASTER_OWNER = "master"
OWNER_SCOPE_KEY = "assistant_kit.owner"
CACHE_SECONDS = 60.0
MAX_USER_ID = 56  # owner column is 64 characters: "user:" + 56 + margin

ASGIApp = Callable[..., Any]

_DURATION = re.compile(r"^(\d+)\s*([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_GENERATE_FIELDS = frozenset({"key", "key_alias", "user_id", "duration", "metadata"})


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def owner_for(key: str, user_id: str | None = None) -> str:
    """The owner id a key's objects get (see the module docstring)."""
    if user_id is not None:
        if not user_id or len(user_id) > MAX_USER_ID or not user_id.isprintable():
            raise ValueError(f"must be 1-{MAX_USER_ID} printable characters")
        return f"user:{user_id}"
    return "key:" + hash_key(key)[:32]


def error_response(
    status: int, message: str, *, code: str | None, type: str = "invalid_request_error"
) -> Response:
    body = {"error": {"message": message, "type": type, "param": None, "code": code}}
    return JSONResponse(body, status_code=status)


def _error(exc: AssistantKitError, status: int | None = None) -> Response:
    return JSONResponse(exc.to_body(), status_code=status or exc.status_code)


def presented_key(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The key from ``Authorization: Bearer …`` or else ``api-key: …``; None when absent."""
    bearer = api_key = None
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                bearer = token.strip()
        elif name == b"api-key" and value.strip():
            api_key = value.decode("latin-1").strip()
    return bearer or api_key


class KeyRing:
    """Every accepted key, as digests: the master key, the config's keys, the stored ones."""

    def __init__(self, config: Config, store: Store | None):
        self._static: dict[str, str] = {}
        if config.master_key is not None:
            self._static[hash_key(config.master_key)] = MASTER_OWNER
        for entry in config.api_keys:
            self._static[hash_key(entry.key)] = entry.owner
        self.enabled = bool(self._static)
        self._store = AsyncStore(store) if store is not None else None
        self._cache: dict[str, tuple[str, int | None, float]] = {}

    async def owner(self, key: str) -> str | None:
        """The owner for ``key``, or None when it is not (or no longer) a valid key."""
        digest = hash_key(key)
        if digest in self._static:
            return self._static[digest]
        cached = self._cache.get(digest)
        if cached is None or cached[2] < time.monotonic():
            if self._store is None:
                return None
            row = await self._store.get_api_key(digest)
            if row is None:
                return None
            cached = (row["owner"], row["expires_at"], time.monotonic() + CACHE_SECONDS)
            self._cache[digest] = cached
        owner, expires_at, _ = cached
        if expires_at is not None and expires_at <= now():
            return None
        return owner

    async def generate(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a key from a ``/key/generate`` body (LiteLLM's field names)."""
        if self._store is None:
            raise InvalidRequestError("This server has no store for generated keys.")
        unknown = sorted(set(body) - _GENERATE_FIELDS)
        if unknown:
            raise InvalidRequestError(
                f"Unsupported parameter for /key/generate: '{unknown[0]}' (supported: "
                f"{', '.join(sorted(_GENERATE_FIELDS))}).",
                param=unknown[0],
            )
        for name in ("key", "key_alias", "user_id", "duration"):
            if body.get(name) is not None and not isinstance(body[name], str):
                raise InvalidRequestError(f"Invalid '{name}': expected a string.", param=name)
        key = body.get("key") or "sk-" + secrets.token_urlsafe(24)
        if not key.startswith("sk-") or not 8 <= len(key) <= 256 or not key.isprintable():
            raise InvalidRequestError(
                "Invalid 'key': must start with 'sk-' and be 8-256 printable characters.", param="key"
            )
        if body.get("key_alias") is not None and len(body["key_alias"]) > 256:
            raise InvalidRequestError("Invalid 'key_alias': at most 256 characters.", param="key_alias")
        try:
            owner = owner_for(key, body.get("user_id"))
        except ValueError as exc:
            raise InvalidRequestError(f"Invalid 'user_id': {exc}.", param="user_id") from None
        metadata = body.get("metadata") or {}
        check_metadata(metadata)
        created = now()
        expires_at = created + _duration(body["duration"]) if body.get("duration") else None
        digest = hash_key(key)
        if digest in self._static or await self._store.get_api_key(digest) is not None:
            raise InvalidRequestError("Invalid 'key': this key already exists.", param="key")
        row = {
            "key_hash": digest,
            "owner": owner,
            "key_alias": body.get("key_alias"),
            "created_at": created,
            "expires_at": expires_at,
            "data": json.dumps({"user_id": body.get("user_id"), "metadata": metadata}),
        }
        try:
            await self._store.insert_api_key(row)
        except IntegrityError:  # a concurrent insert of the same custom key
            raise InvalidRequestError("Invalid 'key': this key already exists.", param="key") from None
        return {
            "key": key,
            "key_name": f"sk-...{key[-4:]}",
            "key_alias": body.get("key_alias"),
            "user_id": body.get("user_id"),
            "token": digest,
            "expires": _iso(expires_at),
            "created_at": _iso(created),
            "metadata": metadata,
        }


def _duration(text: str) -> int:
    match = _DURATION.match(text.strip())
    if not match or int(match[1]) == 0:
        raise InvalidRequestError(
            f"Invalid 'duration': '{text[:20]}' (use a number and s, m, h or d, e.g. '30d').",
            param="duration",
        )
    return int(match[1]) * _SECONDS[match[2]]


def _iso(timestamp: int | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).isoformat()


class AuthMiddleware:
    """Resolve the request's key to an owner; 401 when it has none. ``public`` paths
    (health, the OpenAPI document) need no key."""

    def __init__(self, app: ASGIApp, keyring: KeyRing, public: Iterable[str] = ()):
        self.app = app
        self.keyring = keyring
        self.public = frozenset(public)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.keyring.enabled or scope["path"] in self.public:
            await self.app(scope, receive, send)
            return
        key = presented_key(scope["headers"])
        if key is None:
            response = error_response(
                401,
                "You didn't provide an API key. Send it as 'Authorization: Bearer <key>' "
                "(or in an 'api-key' header).",
                code="missing_api_key",
            )
            await response(scope, receive, send)
            return
        owner = await self.keyring.owner(key)
        if owner is None:
            await _error(AuthenticationError("Incorrect API key provided."))(scope, receive, send)
            return
        await self.app({**scope, OWNER_SCOPE_KEY: owner}, receive, send)


def generate_key_endpoint(keyring: KeyRing) -> Callable[[Request], Any]:
    """``POST /key/generate``: the master key creates a key; the body and the
    ``{"key": "sk-..."}`` answer follow LiteLLM's route of the same name."""

    async def generate_key(request: Request) -> Response:
        if not keyring.enabled:
            return error_response(
                400,
                "Key generation needs a master key: set general_settings.master_key in the config.",
                code="master_key_not_set",
            )
        if request.scope.get(OWNER_SCOPE_KEY) != MASTER_OWNER:
            return error_response(403, "Only the master key may generate keys.", code="permission_denied")
        try:
            return JSONResponse(await keyring.generate(parse_json(await request.body())))
        except AssistantKitError as exc:
            return _error(exc)

    return generate_key
