"""Who owns what a key creates: the key's digest and the owner id derived from it.

Shared by the config (owners of the keys it lists) and the auth middleware (owners of the
keys requests carry); the rules are written in :mod:`assistant_kit.server.auth`'s docstring.
"""

from __future__ import annotations

import hashlib

MAX_USER_ID = 56  # owner column is 64 characters: "user:" + 56 + margin


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def owner_for(key: str, user_id: str | None = None) -> str:
    """The owner id a key's objects get (see :mod:`assistant_kit.server.auth`)."""
    if user_id is not None:
        if not user_id or len(user_id) > MAX_USER_ID or not user_id.isprintable():
            raise ValueError(f"must be 1-{MAX_USER_ID} printable characters")
        return f"user:{user_id}"
    return "key:" + hash_key(key)[:32]
