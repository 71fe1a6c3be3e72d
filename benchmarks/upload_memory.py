"""Proxy memory under concurrent uploads: peak RSS of ``assistant-kit serve`` while 8 clients
each upload a 60 MB file at once (``POST /v1/files``, multipart), then while 8 clients download
them at once, against the same process's idle RSS measured just before each phase.

The proxy is a real subprocess (``assistant-kit serve --config …`` on 127.0.0.1:0, master key
on, access log off, a SQLite store in a temp dir, or PostgreSQL with ``BENCH_PG_URL``), stopped
by PID at the end. The clients stream the file from disk (httpx), so only the server's memory is
measured. Peak RSS is the kernel's high-water mark (``VmHWM``, reset through
``/proc/PID/clear_refs`` before each phase), cross-checked by a 5 ms sampler (see
``tests/server/upload_memory.py``). Every upload must answer 200 and every download must hash
to the uploaded bytes.

Target (issue 13): peak RSS growth of the upload phase under +300 MB. Before the fix the same
load took the proxy from 92 MB to a 1.7 GB peak (the body buffered whole by the proxy's size
limit, joined, parsed, read whole again, then bound as one SQLite parameter, per upload).

Run from the repo root: ``.venv/bin/python benchmarks/upload_memory.py``. Always exits 0.
Environment: BENCH_UPLOADS (8), BENCH_UPLOAD_MB (60), BENCH_PG_URL (a PostgreSQL server URL; a
fresh database is created there and dropped at the end).
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _common import run_main  # noqa: E402
from _proxy import ProxyProcess  # noqa: E402

from tests.server.conftest import MASTER_KEY  # noqa: E402
from tests.server.upload_memory import MB, download_all, make_payload, measure, upload_all  # noqa: E402

UPLOADS = int(os.environ.get("BENCH_UPLOADS", "8"))
SIZE_MB = float(os.environ.get("BENCH_UPLOAD_MB", "60"))
TARGET_MB = 300


def _pg_database(server_url: str) -> tuple[str, str]:
    """A fresh database on ``server_url``: (its URL, its name)."""
    import psycopg

    name = f"bench_upload_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}", name


def _drop(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    size = int(SIZE_MB * MB)
    pg_server = os.environ.get("BENCH_PG_URL")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        db_name = None
        if pg_server:
            database_url, db_name = _pg_database(pg_server)
        else:
            database_url = str(directory / "upload.db")
        config = {
            "general_settings": {
                "master_key": MASTER_KEY,
                "database_url": database_url,
                "max_file_size_mb": max(64, SIZE_MB + 1),
            }
        }
        payload, digest = make_payload(directory, size)
        proxy = ProxyProcess(config, directory, "upload")
        try:
            store = "PostgreSQL" if pg_server else "SQLite"
            print(f"upload_memory: {UPLOADS} concurrent uploads of {SIZE_MB:g} MB, {store} store")
            made: list[dict] = []

            def uploads() -> None:
                made.extend(upload_all(proxy.url, MASTER_KEY, payload, UPLOADS))

            up = measure(proxy.pid, "uploads", uploads)
            print("  " + up.line())
            ids = [f["id"] for f in made]
            hashes: list[str] = []
            down = measure(
                proxy.pid, "downloads", lambda: hashes.extend(download_all(proxy.url, MASTER_KEY, ids))
            )
            print("  " + down.line())
            bad = sum(h != digest for h in hashes)
            print(f"  downloads matching the upload: {len(hashes) - bad}/{len(hashes)}")
            verdict = "OK" if up.growth < TARGET_MB * MB and not bad else "MISS"
            print(
                f"upload_memory: {verdict} upload peak growth +{up.growth / MB:.0f} MB "
                f"(target < +{TARGET_MB} MB; {UPLOADS} x {SIZE_MB:g} MB = {UPLOADS * SIZE_MB:g} MB sent)"
            )
        finally:
            proxy.stop()
            if db_name and pg_server:
                _drop(pg_server, db_name)


if __name__ == "__main__":
    run_main(main, __file__)
