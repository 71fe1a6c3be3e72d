"""Quiet the SDK's deprecation marker on the Assistants API — for the kit's clients only.

The SDK marks every ``client.beta.*`` method ``@deprecated`` (OpenAI retired the hosted
Assistants API), so each call warns ``DeprecationWarning("deprecated")`` — or "The Assistants
API is deprecated in favor of the Responses API" — and Jupyter shows the warnings of calls
made from a cell (``__main__``). Keeping that API alive is this kit's purpose, so on the kit's
own clients the warning is noise: :func:`quiet_sdk_deprecations` ignores exactly those two
messages, of that category, raised from the kit's modules, ``__main__`` (scripts, notebook
cells) and the SDK's own modules (its helpers call its deprecated methods: ``create_and_poll``
calls ``create`` and ``poll``, ``with_raw_response`` wraps them).
Any other warning, deprecations included, still shows. It is installed when the kit makes a
client (``local_client``, ``local_async_client``, ``Session``, the SDK functions); from then
on it also covers a plain ``openai.OpenAI`` called from the same cells — a warnings filter
sees only the message, category and module, not the client.

This module imports nothing of the kit, so a remote ``Session`` does not load the engine.
"""

from __future__ import annotations

import re
import warnings

_SDK_DEPRECATION = r"(deprecated|The Assistants API is deprecated in favor of the Responses API)\Z"
_QUIET_IN = r"(__main__|assistant_kit(\..*)?|openai(\..*)?)\Z"
# warnings.filterwarnings compiles the message case-insensitively and the module as is.
_QUIET_FILTER = (
    "ignore",
    re.compile(_SDK_DEPRECATION, re.I),
    DeprecationWarning,
    re.compile(_QUIET_IN),
    0,
)


def quiet_sdk_deprecations() -> None:
    """Ignore the SDK's deprecation marker on the Assistants API where the kit's clients are
    used (see the module docstring) — not a global ignore. Added once: a filter the user puts
    in front of it later (``"error"``, say) still wins."""
    if _QUIET_FILTER not in warnings.filters:
        warnings.filterwarnings("ignore", _SDK_DEPRECATION, DeprecationWarning, _QUIET_IN)
