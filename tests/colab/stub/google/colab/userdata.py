"""``google.colab.userdata`` as the install cell sees it: ``get(name)`` returns the secret or
raises :class:`SecretNotFoundError`, as Colab does for a secret that is not set. The test
sets a secret ``NAME`` through the environment variable ``COLAB_SECRET_NAME``."""

from __future__ import annotations

import os


class SecretNotFoundError(Exception):
    pass


def get(key: str) -> str:
    value = os.environ.get(f"COLAB_SECRET_{key}")
    if value is None:
        raise SecretNotFoundError(f"Secret {key} does not exist.")
    return value
