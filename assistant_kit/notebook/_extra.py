"""The notebook extra, asked for by name when a feature needs it and it is missing.

pandas (and IPython, ipywidgets, jinja2) come with ``assistant-kit[notebook]``, not with the
base install or ``[local]``: a server or a script needs none of them. So a ``Session`` works
without them — it creates, runs and streams as text — until a feature needs one: the
DataFrames (``messages()``, ``runs()``, ``steps()``, ``threads()``, ``assistants()``) and
``inspect()``. Without this, the first such call in a fresh environment (the README's main
job installs ``.[local]``) would end in a bare ``ModuleNotFoundError: No module named
'pandas'`` from deep in the kit, which says neither that it is expected nor what to install.
:func:`require` turns it into one :class:`~assistant_kit.errors.SessionError` naming the
extra, raised before any request is sent.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import SessionError

INSTALL_NOTEBOOK = (
    "pip install -e '.[notebook]' in a clone of assistant_kit (pip install 'assistant-kit[notebook]' "
    "once it is on the package index)"
)


def require(module: str, feature: str) -> ModuleType:
    """``module``, imported; a :class:`SessionError` naming the notebook extra when it cannot be.

    The import error's own text is kept in the message: a module that is installed but broken
    (a numpy built for another Python …) should not read as merely missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        reason = str(exc) or type(exc).__name__
        raise SessionError(
            f"{module} is needed for {feature} but cannot be imported ({reason}). It comes with the "
            f"notebook extra: {INSTALL_NOTEBOOK}.",
            code="missing_extra",
        ) from None
