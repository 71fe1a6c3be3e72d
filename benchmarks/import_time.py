"""Import cost: ``import assistant_kit`` against ``import openai``, measured in this run.

Every sample is a fresh interpreter (``sys.executable -c ...``), so nothing is cached in
``sys.modules``; samples of the two statements alternate so machine noise hits both
alike. Per statement we record

* wall: the whole child process, spawn to exit (what a user waiting on a notebook cell
  or CLI sees), measured by the parent;
* import: ``time.perf_counter()`` around the import statement only, inside the child;
* peak RSS: the child's ``ru_maxrss`` from ``os.wait4`` (that child only).

Ratios are medians of assistant_kit over medians of openai. Target: <= 1.2x for wall and
peak RSS. The script also lists which heavy modules ``import assistant_kit`` loaded (none
should be) and, for information, what ``from assistant_kit import local_client`` loads.

Run from the repo root: ``.venv/bin/python benchmarks/import_time.py``. Always exits 0.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPEATS = int(os.environ.get("BENCH_REPEATS", "15"))
TARGET = 1.2
HEAVY = ("sqlalchemy", "starlette", "pandas", "ipywidgets", "fastapi", "uvicorn", "llama_cpp")

STATEMENTS = {
    "python (no import)": "pass",
    "import openai": "import openai",
    "import assistant_kit": "import assistant_kit",
    # What a notebook actually runs first; loads openai (the client is an openai.OpenAI).
    "...+ local_client": "from assistant_kit import local_client",
}

_CHILD = """
import sys, time
t0 = time.perf_counter()
{stmt}
t1 = time.perf_counter()
sys.stdout.write(repr(t1 - t0))
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONSTARTUP", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # let .pyc caches exist, as for users
    return env


def sample(stmt: str) -> tuple[float, float, float]:
    """(wall seconds, in-child import seconds, peak RSS MiB) of one fresh interpreter."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD.format(stmt=stmt)],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out = proc.stdout.read() if proc.stdout else b""
    err = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed for {stmt!r}: {err.decode(errors='replace')}")
    rss_mib = usage.ru_maxrss / 1024  # Linux reports KiB
    return wall, float(out), rss_mib


def modules_loaded(stmt: str) -> list[str]:
    """Top-level packages present in sys.modules after ``stmt`` that were not there before."""
    code = (
        "import sys, json\n"
        "before = set(sys.modules)\n"
        f"{stmt}\n"
        "new = sorted({m.split('.')[0] for m in set(sys.modules) - before})\n"
        "sys.stdout.write(json.dumps(new))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, check=True
    ).stdout
    return json.loads(out)


def main() -> int:
    print(f"import_time: {REPEATS} alternating fresh-interpreter samples per statement")
    print(f"python {sys.version.split()[0]} at {sys.executable}")
    # Warm the OS page cache and .pyc files once so the first sample is not an outlier.
    for stmt in STATEMENTS.values():
        sample(stmt)
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in STATEMENTS}
    names = list(STATEMENTS)
    for i in range(REPEATS):
        order = names if i % 2 == 0 else list(reversed(names))  # alternate, cancel drift
        for name in order:
            results[name].append(sample(STATEMENTS[name]))

    med = {
        name: tuple(statistics.median(s[k] for s in samples) for k in range(3))
        for name, samples in results.items()
    }
    print()
    print(f"{'statement':<24}{'wall ms':>10}{'import ms':>12}{'peak RSS MiB':>15}{'wall min..max':>18}")
    for name in names:
        wall, imp, rss = med[name]
        walls = [s[0] * 1000 for s in results[name]]
        print(
            f"{name:<24}{wall * 1000:>10.1f}{imp * 1000:>12.2f}{rss:>15.1f}"
            f"{f'{min(walls):.0f}..{max(walls):.0f}':>18}"
        )

    base, ours = med["import openai"], med["import assistant_kit"]
    wall_ratio = ours[0] / base[0]
    imp_ratio = ours[1] / base[1]
    rss_ratio = ours[2] / base[2]
    print()
    print(
        f"ratio assistant_kit/openai  wall {wall_ratio:.2f}x   import-only {imp_ratio:.2f}x   "
        f"peak RSS {rss_ratio:.2f}x"
    )
    lc_med = med["...+ local_client"]
    print(
        f"info: `from assistant_kit import local_client`/openai  wall {lc_med[0] / base[0]:.2f}x   "
        f"import-only {lc_med[1] / base[1]:.2f}x   peak RSS {lc_med[2] / base[2]:.2f}x"
    )

    heavy_now = [m for m in modules_loaded("import assistant_kit") if m in HEAVY]
    print()
    if heavy_now:
        print(f"heavy modules loaded by `import assistant_kit`: {', '.join(heavy_now)}  <-- SHOULD BE NONE")
    else:
        print(f"heavy modules loaded by `import assistant_kit`: none (checked: {', '.join(HEAVY)})")
    lc = modules_loaded("from assistant_kit import local_client")
    lc_heavy = [m for m in lc if m in HEAVY]
    print(
        "info: `from assistant_kit import local_client` loads "
        f"{len(lc)} top-level packages; heavy among them: {', '.join(lc_heavy) or 'none'}"
    )

    ok = wall_ratio <= TARGET and rss_ratio <= TARGET and not heavy_now
    print()
    print(f"target: wall <= {TARGET}x and peak RSS <= {TARGET}x of `import openai`, no heavy modules")
    print(
        f"RESULT: {'PASS' if ok else 'MISS'}  (wall {wall_ratio:.2f}x, RSS {rss_ratio:.2f}x, "
        f"heavy {len(heavy_now)})"
    )
    return 0


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # report, but a benchmark never fails the build
        print(f"import_time: ERROR {type(exc).__name__}: {exc}")
    sys.exit(0)
