"""Uploads through the proxy subprocess: bounded memory, the concurrency limit, the streamed size
limit.

Why these run against a real ``assistant-kit serve``: the memory an upload costs is spent in
every layer between the socket and the database (uvicorn, the body limit, multipart parsing,
the store), and only the whole process's resident set shows it. Before uploads were streamed,
8 concurrent 60 MB uploads took the proxy from 92 MB to a 1.7 GB peak; the issue's bound is
+300 MB for those. The test sends 8 x 32 MB (its time on 2 shared cores) and holds the growth
to the same share of what was sent, +160 MB; ``benchmarks/upload_memory.py`` runs the full
size.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from assistant_kit.server.config import ConfigError, parse_config

from .conftest import MASTER_KEY, StartProxy, master_config
from .upload_memory import MB, download_all, make_payload, measure, upload_all

UPLOADS = 8
SIZE_MB = 32
BOUND_MB = 300 * SIZE_MB / 60  # the issue's +300 MB for 60 MB files, in proportion


def test_concurrent_uploads_keep_the_proxy_memory_bounded(start_proxy: StartProxy, tmp_path: Path) -> None:
    proxy = start_proxy(master_config(), "--no-access-log")
    payload, digest = make_payload(tmp_path, SIZE_MB * MB)
    made: list[dict] = []
    up = measure(
        proxy.process.pid, "uploads", lambda: made.extend(upload_all(proxy.url, MASTER_KEY, payload, UPLOADS))
    )
    assert [f["bytes"] for f in made] == [SIZE_MB * MB] * UPLOADS
    assert up.growth < BOUND_MB * MB, up.line()
    hashes: list[str] = []
    down = measure(
        proxy.process.pid,
        "downloads",
        lambda: hashes.extend(download_all(proxy.url, MASTER_KEY, [f["id"] for f in made])),
    )
    assert hashes == [digest] * UPLOADS
    assert down.growth < BOUND_MB * MB, down.line()


BOUNDARY = "kit-test-boundary"


def _multipart(parts: int, part_bytes: int, pause: float = 0.0) -> Iterator[bytes]:
    """A multipart upload body sent in ``parts`` pieces, ``pause`` seconds apart, with no
    Content-Length (chunked): the proxy cannot know its size before reading it."""
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="slow.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    for _ in range(parts):
        time.sleep(pause)
        yield b"x" * part_bytes
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def _post(url: str, body: Iterator[bytes]) -> httpx2.Response:
    with httpx2.Client(timeout=60) as http:
        return http.post(
            f"{url}/v1/files",
            content=body,
            headers={
                "authorization": f"Bearer {MASTER_KEY}",
                "content-type": f"multipart/form-data; boundary={BOUNDARY}",
            },
        )


def test_a_chunked_upload_past_the_limit_is_cut_off_with_413(start_proxy: StartProxy) -> None:
    """No Content-Length to refuse it by: the body is counted as it streams through, the
    route is told the client left (nothing stored), and the client gets the 413."""
    proxy = start_proxy(master_config(max_file_size_mb=1, max_request_size_mb=0.5))  # cut off past 2 MB
    response = _post(proxy.url, _multipart(parts=40, part_bytes=128 * 1024))  # 5 MB
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "request_too_large"
    within = _post(proxy.url, _multipart(parts=4, part_bytes=128 * 1024))
    assert within.status_code == 200, within.text
    client = proxy.client()
    assert [f.bytes for f in client.files.list().data] == [512 * 1024]
    assert "Traceback" not in proxy.output()


@pytest.mark.parametrize("limit", [1, 2])
def test_uploads_past_the_limit_wait_for_a_slot(start_proxy: StartProxy, limit: int) -> None:
    """With ``max_concurrent_uploads: 1`` a second upload waits until the slow first one is
    done, then succeeds; with 2 it finishes while the first is still sending."""
    proxy = start_proxy(master_config(max_concurrent_uploads=limit))
    finished: dict[str, float] = {}
    answers: dict[str, int] = {}

    def slow() -> None:
        answers["slow"] = _post(proxy.url, _multipart(parts=10, part_bytes=1024, pause=0.3)).status_code
        finished["slow"] = time.monotonic()

    first = threading.Thread(target=slow)
    started = time.monotonic()
    first.start()
    time.sleep(0.8)  # the slow upload holds its slot and is sending
    answers["quick"] = _post(proxy.url, _multipart(parts=1, part_bytes=1024)).status_code
    finished["quick"] = time.monotonic()
    first.join(30)
    assert answers == {"slow": 200, "quick": 200}
    sending = 10 * 0.3  # the slow body takes at least this long to send
    if limit == 1:
        # Not "after the slow response arrived": the slot is free once the slow file is
        # stored, and the quick answer may reach its client a moment before the slow one.
        assert finished["quick"] - started >= sending - 0.1
    else:
        assert finished["quick"] - started < sending - 0.5 and finished["quick"] < finished["slow"]
    assert len(proxy.client().files.list().data) == 2


def test_max_concurrent_uploads_is_checked() -> None:
    config = parse_config({"general_settings": {"max_concurrent_uploads": 3}}, {})
    assert config.max_concurrent_uploads == 3
    for wrong, fragment in (
        (0, "must be ≥ 1"),
        (1.5, "expected an integer"),
        ("many", "expected an integer"),
    ):
        with pytest.raises(ConfigError, match=f"max_concurrent_uploads: {fragment}"):
            parse_config({"general_settings": {"max_concurrent_uploads": wrong}}, {})
