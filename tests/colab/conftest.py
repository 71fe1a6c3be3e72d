"""Collect these tests only inside the Colab environment (``scripts/colab_env.sh`` sets
``ASSISTANT_KIT_COLAB_ENV=1``).

Elsewhere they would test the wrong thing: they check the versions Colab pins and install
the kit into the running environment, which must not happen to a developer's ``.venv``. Not
collected rather than skipped, so the main suite's "no skips in CI" rule stays meaningful.
"""

from __future__ import annotations

import os
from pathlib import Path


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    if os.environ.get("ASSISTANT_KIT_COLAB_ENV") != "1" and collection_path.name.startswith("test_"):
        return True
    return None
