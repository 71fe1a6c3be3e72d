"""API keys: which key a request carries, whose objects it may see, and the key routes
(``POST /key/generate``, ``POST /key/delete``, ``GET /key/info``, in LiteLLM's shapes).

:class:`AuthMiddleware` is pure ASGI in front of the engine app. It reads the key from
``Authorization: Bearer <key>`` (or ``api-key: <key>``, the header Azure-style clients send),
turns it into an *owner* and puts that in the scope as ``assistant_kit.owner``; the engine
scopes every object to it, so another key gets 404 for it and never sees it in a list. Which
rows an owner sees is decided in one place, ``Store._owner_condition`` (store/sql.py).
No key, or a wrong or expired one, is a 401 in OpenAI's error shape.

Owners (decisions):

- the master key → ``"master"``: what it creates is owned by ``"master"``, and it sees that
  *and the unowned objects* — the ones local sessions (``local_client(db)``, ``Session(db)``,
  the SDK functions) store with owner NULL. Local sessions run as the machine's owner, and
  whoever holds the master key of a proxy on that store is the same person: a notebook and
  a proxy on one database file are one store, one view (threads created in the notebook can
  be listed, continued and run through the proxy). It is still **not** a view of everything:
  objects of other keys stay theirs (the Assistants API has no admin view, and a client using
  the master key, as the seed's examples do with ``sk-1234``, should list what it and the
  local sessions created, not every student's threads). Local sessions (owner None) keep
  seeing everything, the master key's objects included.
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

import asyncio
import datetime as dt
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .._ids import now
from ..engine.validation import check_metadata, parse_json
from ..errors import AssistantKitError, AuthenticationError, InvalidRequestError, NotFoundError, error_body
from ..store import MASTER_OWNER, AsyncStore, Store
from .config import Config
from .owners import hash_key, owner_for

OWNER_SCOPE_KEY = "assistant_kit.owner"
CACHE_SECONDS = 10.0
MISS_REFRESH_SECONDS = 1.0

ASGIApp = Callable[..., Any]

_DURATION = re.compile(r"^(\d{1,12})\s*([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_GENERATE_FIELDS = frozenset({"key", "key_alias", "user_id", "duration", "metadata"})


def error_response(
    status: int, message: str, *, code: str | None, type: str = "invalid_request_error"
) -> Response:
    return JSONResponse(error_body(message, type, code=code), status_code=status)


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
    """Every accepted key, as digests: the master key, the config's keys, the stored ones.

    Stored keys are known from a snapshot of the ``api_keys`` table, read in one query and
    shared by every request: a request with an unknown key is refused from memory, without
    queueing behind store work (a flood of wrong keys costs at most one read per
    :data:`MISS_REFRESH_SECONDS`). The snapshot is read again when a key is not in it and
    it is older than that (a key generated on another replica works here within a second),
    and whatever its age after :data:`CACHE_SECONDS` (a key revoked on another replica stops
    working here within that time; on this replica, at once). Concurrent readers share one
    read of the store.
    """

    def __init__(self, config: Config, store: Store | None):
        self._static: dict[str, str] = {}
        if config.master_key is not None:
            self._static[hash_key(config.master_key)] = MASTER_OWNER
        for entry in config.api_keys:
            self._static[hash_key(entry.key)] = entry.owner
        self.enabled = bool(self._static)
        self._store = AsyncStore(store) if store is not None else None
        self._rows: dict[str, dict[str, Any]] = {}
        self._read_at = -1e9
        self._reading: asyncio.Future[None] | None = None

    def is_static(self, digest: str) -> bool:
        return digest in self._static

    async def _refresh(self) -> None:
        """Read the stored keys once; concurrent callers wait for the same read."""
        if self._store is None:
            return
        if self._reading is not None:
            await asyncio.shield(self._reading)
            return
        self._reading = asyncio.get_running_loop().create_future()
        try:
            rows = await self._store.list_api_keys()
            self._rows = {row["key_hash"]: row for row in rows}
            self._read_at = time.monotonic()
            self._reading.set_result(None)
        except BaseException as exc:
            self._reading.set_exception(exc)
            self._reading.exception()  # retrieved: waiters re-raise it, nobody logs it twice
            raise
        finally:
            self._reading = None

    async def row(self, digest: str) -> dict[str, Any] | None:
        """The stored row of a generated key (None for unknown or configured keys)."""
        age = time.monotonic() - self._read_at
        if age > CACHE_SECONDS or (digest not in self._rows and age > MISS_REFRESH_SECONDS):
            await self._refresh()
        return self._rows.get(digest)

    async def owner(self, key: str) -> str | None:
        """The owner for ``key``, or None when it is not (or no longer) a valid key."""
        digest = hash_key(key)
        if digest in self._static:
            return self._static[digest]
        row = await self.row(digest)
        if row is None:
            return None
        if row["expires_at"] is not None and row["expires_at"] <= now():
            return None
        return row["owner"]

    def forget(self, digests: Iterable[str]) -> None:
        for digest in digests:
            self._rows.pop(digest, None)

    def remember(self, row: dict[str, Any]) -> None:
        self._rows[row["key_hash"]] = row

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
        answer = {
            "key": key,
            "key_name": f"sk-...{key[-4:]}",
            "key_alias": body.get("key_alias"),
            "user_id": body.get("user_id"),
            "token": digest,
            "expires": _iso(expires_at),
            "created_at": _iso(created),
            "metadata": metadata,
        }  # built before the insert: nothing after it can fail
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
        self.remember(row)
        return answer

    async def delete(self, body: dict[str, Any]) -> dict[str, Any]:
        """``/key/delete``: remove generated keys, named by the key or its ``token`` (digest)."""
        if self._store is None:
            raise InvalidRequestError("This server has no store for generated keys.")
        unknown = sorted(set(body) - {"keys"})
        if unknown:
            raise InvalidRequestError(
                f"Unsupported parameter for /key/delete: '{unknown[0]}' (supported: keys).", param=unknown[0]
            )
        keys = body.get("keys")
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) and k for k in keys):
            raise InvalidRequestError("Invalid 'keys': expected a non-empty array of keys.", param="keys")
        if len(keys) > 100:
            raise InvalidRequestError("Invalid 'keys': at most 100 keys per request.", param="keys")
        digests = [_digest_of(k) for k in keys]
        for index, digest in enumerate(digests):
            if digest in self._static:
                raise InvalidRequestError(
                    f"Invalid 'keys[{index}]': the master key and keys listed in the config cannot "
                    "be deleted here; edit the config instead.",
                    param=f"keys[{index}]",
                )
        deleted = set(await self._store.delete_api_keys(digests))
        self.forget(deleted)
        missing = [i for i, d in enumerate(digests) if d not in deleted]
        if missing and not deleted:
            raise NotFoundError("key", f"keys[{missing[0]}]", param=f"keys[{missing[0]}]")
        return {"deleted_keys": [keys[i] for i, d in enumerate(digests) if d in deleted]}

    async def info(self, key: str, asking_owner: str | None) -> dict[str, Any]:
        """``/key/info``: a key's facts in LiteLLM's shape, never the key itself. The master
        key may ask about any key; another key only about itself."""
        digest = _digest_of(key)
        owner = self._static.get(digest)
        row = None if owner is not None else await self.row(digest)
        if owner is None and row is None:
            raise NotFoundError("key", "the given key", param="key")
        owner = owner if owner is not None else row["owner"]  # type: ignore[index]
        if asking_owner != MASTER_OWNER and asking_owner != owner:
            raise NotFoundError("key", "the given key", param="key")
        data = json.loads(row["data"]) if row else {}
        info = {
            "key_name": f"sk-...{key[-4:]}" if key.startswith("sk-") else None,
            "key_alias": row["key_alias"] if row else None,
            "user_id": data.get("user_id"),
            "expires": _iso(row["expires_at"]) if row else None,
            "created_at": _iso(row["created_at"]) if row else None,
            "metadata": data.get("metadata") or {},
            "source": "generated" if row else "config",
        }
        return {"key": digest, "info": info}


def _digest_of(key_or_token: str) -> str:
    """A key's digest; a 64-hex-digit string is taken as the digest itself (LiteLLM's
    ``token``), so a key can be managed without its plaintext."""
    if re.fullmatch(r"[0-9a-f]{64}", key_or_token):
        return key_or_token
    return hash_key(key_or_token)


#: The longest ``duration`` a generated key may have (LiteLLM sets none; a bound keeps the
#: expiry a representable date).
MAX_DURATION_DAYS = 36_500


def _duration(text: str) -> int:
    match = _DURATION.match(text.strip())
    if not match or int(match[1]) == 0:
        raise InvalidRequestError(
            f"Invalid 'duration': '{text[:20]}' (use a number and s, m, h or d, e.g. '30d').",
            param="duration",
        )
    seconds = int(match[1]) * _SECONDS[match[2]]
    if seconds > MAX_DURATION_DAYS * 86400:
        raise InvalidRequestError(
            f"Invalid 'duration': '{text[:20]}' is longer than {MAX_DURATION_DAYS} days.", param="duration"
        )
    return seconds


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


def key_info_endpoint(keyring: KeyRing) -> Callable[[Request], Any]:
    """``GET /key/info[?key=…]``: the given key's facts, or the caller's own."""

    async def key_info(request: Request) -> Response:
        if not keyring.enabled:
            return error_response(400, "This server has no keys: no master key is configured.", code=None)
        key = request.query_params.get("key") or presented_key(request.scope["headers"]) or ""
        try:
            return JSONResponse(await keyring.info(key, request.scope.get(OWNER_SCOPE_KEY)))
        except AssistantKitError as exc:
            return _error(exc)

    return key_info


def _master_only(keyring: KeyRing, request: Request, what: str) -> Response | None:
    if not keyring.enabled:
        return error_response(
            400,
            f"Managing keys needs a master key: set general_settings.master_key in the config ({what}).",
            code="master_key_not_set",
        )
    if request.scope.get(OWNER_SCOPE_KEY) != MASTER_OWNER:
        return error_response(403, f"Only the master key may {what}.", code="permission_denied")
    return None


def _master_route(
    keyring: KeyRing, what: str, action: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
) -> Callable[[Request], Any]:
    """A POST route only the master key may use: its JSON body to ``action``, the answer back."""

    async def route(request: Request) -> Response:
        refused = _master_only(keyring, request, what)
        if refused is not None:
            return refused
        try:
            return JSONResponse(await action(parse_json(await request.body())))
        except AssistantKitError as exc:
            return _error(exc)

    return route


def generate_key_endpoint(keyring: KeyRing) -> Callable[[Request], Any]:
    """``POST /key/generate``: the master key creates a key; the body and the
    ``{"key": "sk-..."}`` answer follow LiteLLM's route of the same name."""
    return _master_route(keyring, "generate keys", keyring.generate)


def delete_key_endpoint(keyring: KeyRing) -> Callable[[Request], Any]:
    """``POST /key/delete`` (master key only): ``{"keys": [...]}`` → ``{"deleted_keys": [...]}``."""
    return _master_route(keyring, "delete keys", keyring.delete)
