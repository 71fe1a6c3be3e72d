"""Shared by the benchmark scripts: how a benchmark ends.

A benchmark reports; it never fails the build. An exception is printed with the script's
name, and the process exits 0 at once with ``os._exit``: the engine loop, the store
workers and fake servers are daemon threads that must not be waited on.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any


def run_main(main: Callable[[], Any], script: str) -> None:
    try:
        main()
    except Exception as exc:
        traceback.print_exc()
        print(f"{Path(script).stem}: ERROR {type(exc).__name__}: {exc}")
    sys.stdout.flush()
    os._exit(0)
