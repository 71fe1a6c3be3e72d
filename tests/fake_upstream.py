"""A real OpenAI-compatible Chat Completions server on 127.0.0.1, for tests.

Why a real server and not a mocked transport: the backends must be exercised through the
official SDK's whole HTTP path (auth headers, Azure URL layout, SSE parsing, its retry
loop, a connection dropped mid-body), which only a socket can show.

Why the stdlib server and not uvicorn: a dropped connection has to be a *real* abrupt
close in the middle of a chunked body, written byte by byte, and uvicorn would turn that
into a clean response plus an error log. ``ThreadingHTTPServer`` gives that control,
starts instantly, and needs no event loop next to the one under test.

One server runs per test session (started on first use); the ``fake_upstream`` fixture
resets its reply queue and request log for each test. Script it with ``reply_*`` calls;
each incoming request consumes one queued reply, and with an empty queue the server echoes
the last user message word by word. ``requests`` records everything received.
"""

from __future__ import annotations

import atexit
import itertools
import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

_AZURE_PATH = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/chat/completions$")
_call_ids = itertools.count(1)


def words(text: str) -> list[str]:
    """Word-sized chunks that keep their whitespace, so joined chunks equal ``text``."""
    return re.findall(r"\S+\s*|\s+", text)


def _content_text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


@dataclass
class Reply:
    """One scripted answer; ``kind`` is text, tools, error, drop, early_end, stream_error or
    malformed (see the ``FakeUpstream.reply_*`` method of the same name)."""

    kind: str
    chunks: list[str] = field(default_factory=list)
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    delay: float = 0.0
    status: int = 200
    error: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    finish: str = "stop"
    usage: tuple[int, int] | None = None
    #: False: no usage chunk even when asked for (as llama-cpp-python's server streams).
    send_usage: bool = True


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: dict[str, Any]
    #: Set when the client hung up while this request's stream was still being written.
    hung_up: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def deployment(self) -> str | None:
        match = _AZURE_PATH.match(self.path)
        return match["deployment"] if match else None


class FakeUpstream:
    """The server plus its script. ``url`` is the OpenAI-style base (``…/v1``);
    ``endpoint`` is the bare origin, usable as an Azure endpoint."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Reply] = deque()
        self.requests: list[RecordedRequest] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.fake = self  # type: ignore[attr-defined]
        self.port = self._httpd.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.endpoint}/v1"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()

    # --- scripting ---------------------------------------------------------------------

    def reply_text(
        self,
        text: str | list[str],
        *,
        delay: float = 0.0,
        finish: str = "stop",
        usage: tuple[int, int] | None = None,
        send_usage: bool = True,
    ) -> None:
        """Stream ``text`` (a string is split into words; a list is sent chunk by chunk),
        sleeping ``delay`` seconds before each chunk. ``send_usage=False``: no usage chunk."""
        chunks = words(text) if isinstance(text, str) else list(text)
        self._push(
            Reply("text", chunks=chunks, delay=delay, finish=finish, usage=usage, send_usage=send_usage)
        )

    def reply_tool_calls(
        self,
        calls: list[tuple[str, str | dict[str, Any]]],
        *,
        text: str = "",
        delay: float = 0.0,
        finish: str = "tool_calls",
        send_usage: bool = True,
    ) -> None:
        """Call tools ``[(name, arguments)]`` in one turn, optionally after some ``text``.
        Each call streams as an id+name fragment followed by argument fragments; ``finish``
        ``"length"`` with cut arguments is a model stopped by ``max_tokens``."""
        normalized = [(n, a if isinstance(a, str) else json.dumps(a)) for n, a in calls]
        self._push(
            Reply(
                "tools",
                chunks=words(text),
                tool_calls=normalized,
                delay=delay,
                finish=finish,
                send_usage=send_usage,
            )
        )

    def reply_error(
        self,
        status: int,
        *,
        times: int = 1,
        message: str | None = None,
        code: str | None = None,
        retry_after_ms: int | None = 1,
    ) -> None:
        """Answer the next ``times`` requests with HTTP ``status`` and an OpenAI error body.
        ``retry_after_ms`` (default 1) is sent as ``retry-after-ms``, which the SDK honours,
        so retried tests do not sit through real backoff; pass None to omit it."""
        codes = {429: "rate_limit_exceeded", 401: "invalid_api_key", 404: "model_not_found"}
        default_code = codes.get(status, "server_error" if status >= 500 else None)
        error = {
            "message": message or f"Scripted upstream error {status}.",
            "type": "requests"
            if status == 429
            else "invalid_request_error"
            if status < 500
            else "server_error",
            "param": None,
            "code": code or default_code,
        }
        headers = {} if retry_after_ms is None else {"retry-after-ms": str(retry_after_ms)}
        for _ in range(times):
            self._push(Reply("error", status=status, error=error, headers=headers))

    def reply_drop(
        self, after: int, text: str = "one two three four five six seven eight", *, delay: float = 0.0
    ) -> None:
        """Stream the first ``after`` chunks of ``text``, then close the socket mid-body."""
        self._push(Reply("drop", chunks=words(text)[:after], delay=delay))

    def reply_early_end(self, text: str = "cut short") -> None:
        """Stream ``text`` and end the body cleanly, but with no finish_reason and no
        ``[DONE]`` (a misbehaving server)."""
        self._push(Reply("early_end", chunks=words(text)))

    def reply_stream_error(
        self,
        message: str = "Upstream failed mid-stream.",
        *,
        after: int = 0,
        code: str | None = "server_error",
    ) -> None:
        """Stream ``after`` chunks, then an SSE ``{"error": …}`` event, as OpenAI does."""
        chunks = words("one two three four five six seven eight")[:after]
        self._push(
            Reply(
                "stream_error",
                chunks=chunks,
                error={"message": message, "type": "server_error", "code": code},
            )
        )

    def reply_malformed(self, after: int = 1) -> None:
        """Stream ``after`` chunks, then an SSE event whose data is not JSON."""
        self._push(Reply("malformed", chunks=words("one two three four")[:after]))

    def _push(self, reply: Reply) -> None:
        with self._lock:
            self._queue.append(reply)

    # --- inspection --------------------------------------------------------------------

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            return self.requests[-1]

    @property
    def pending(self) -> int:
        """Scripted replies not consumed yet."""
        with self._lock:
            return len(self._queue)

    def wait_for_disconnect(self, timeout: float = 2.0) -> bool:
        """True once the client hung up on the latest request's stream mid-write. (Per
        request, so a late hang-up from an earlier test's stream cannot count.)"""
        return self.last_request.hung_up.wait(timeout)

    def _take(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self._queue:
                return self._queue.popleft()
        return _echo(request.body)


def _echo(body: dict[str, Any]) -> Reply:
    last = next((m for m in reversed(body.get("messages") or []) if m.get("role") == "user"), {})
    return Reply("text", chunks=words(_content_text(last.get("content"))))


def fake_embedding(text: str, size: int = 16) -> list[float]:
    """A bag of words hashed into ``size`` buckets (not unit length): texts sharing words are
    close, and the same text always maps to the same vector."""
    import hashlib

    vector = [0.0] * size
    for word in re.findall(r"\w+", str(text).lower()):
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % size] += 1.0
    return vector


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies, like real servers

    disable_nagle_algorithm = True  # small SSE chunks go out at once, as from a real server

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def do_POST(self) -> None:
        fake: FakeUpstream = self.server.fake  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        if parts.path == "/v1/embeddings":
            self._embeddings(fake, parts, body)
            return
        if parts.path != "/v1/chat/completions" and not _AZURE_PATH.match(parts.path):
            self._json(
                404,
                {
                    "error": {
                        "message": f"No route {parts.path}",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": None,
                    }
                },
            )
            return
        request = RecordedRequest(
            "POST",
            parts.path,
            dict(parse_qsl(parts.query)),
            {k.lower(): v for k, v in self.headers.items()},
            body,
        )
        reply = fake._take(request)
        if reply.kind == "error":
            self._json(reply.status, {"error": reply.error}, reply.headers)
        elif reply.kind == "drop" and not body.get("stream"):
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        elif not body.get("stream"):
            self._json(200, _completion(body, reply))
        else:
            try:
                self._stream(body, reply)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
                request.hung_up.set()

    def _embeddings(self, fake: FakeUpstream, parts: Any, body: dict[str, Any]) -> None:
        """``POST /v1/embeddings``: a scripted error (``reply_error``) or :func:`fake_embedding`
        of each input, in OpenAI's shape; dimensions 16 unless the body asks for fewer."""
        request = RecordedRequest(
            "POST",
            parts.path,
            dict(parse_qsl(parts.query)),
            {k.lower(): v for k, v in self.headers.items()},
            body,
        )
        with fake._lock:
            fake.requests.append(request)
            reply = fake._queue.popleft() if fake._queue else None
        if reply is not None and reply.kind == "error":
            self._json(reply.status, {"error": reply.error}, reply.headers)
            return
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
        size = int(body.get("dimensions") or 16)
        data = [
            {"object": "embedding", "index": i, "embedding": fake_embedding(text, size)}
            for i, text in reversed(list(enumerate(inputs)))  # out of order: clients must sort by index
        ]
        tokens = sum(len(str(text).split()) for text in inputs)
        self._json(
            200,
            {
                "object": "list",
                "data": data,
                "model": body.get("model"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _event(self, payload: dict[str, Any] | str) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        self._chunk(f"data: {text}\n\n".encode())

    def _stream(self, body: dict[str, Any], reply: Reply) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        usage_wanted = bool((body.get("stream_options") or {}).get("include_usage"))
        chunk = _Chunker(body.get("model", "fake"), usage_wanted)
        self._event(chunk.delta({"role": "assistant", "content": ""}))
        for text in reply.chunks:
            if reply.delay:
                time.sleep(reply.delay)
            self._event(chunk.delta({"content": text}))
        if reply.kind == "drop":
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)  # abrupt: the chunked body never ends
            self.close_connection = True
            return
        if reply.kind in ("stream_error", "malformed"):
            self._event({"error": reply.error} if reply.kind == "stream_error" else "{oops")
            self._chunk(b"")
            return
        for index, (name, arguments) in enumerate(reply.tool_calls):
            if reply.delay:
                time.sleep(reply.delay)
            self._event(
                chunk.delta(
                    {
                        "tool_calls": [
                            {
                                "index": index,
                                "id": f"call_fake{next(_call_ids)}",
                                "type": "function",
                                "function": {"name": name, "arguments": ""},
                            }
                        ]
                    }
                )
            )
            third = max(1, len(arguments) // 3)
            for start in range(0, len(arguments), third):
                self._event(
                    chunk.delta(
                        {
                            "tool_calls": [
                                {"index": index, "function": {"arguments": arguments[start : start + third]}}
                            ]
                        }
                    )
                )
        if reply.kind != "early_end":
            self._event(chunk.delta({}, finish=reply.finish))
            if usage_wanted and reply.send_usage:
                self._event(chunk.usage(reply.usage or _usage(body, reply)))
            self._event("[DONE]")
        self._chunk(b"")  # end of the chunked body


class _Chunker:
    """Builds ``chat.completion.chunk`` objects sharing one id/created/model."""

    def __init__(self, model: str, usage_wanted: bool):
        self.base = {
            "id": f"chatcmpl-fake{next(_call_ids)}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": None,
        }
        self.usage_wanted = usage_wanted

    def delta(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        chunk = {
            **self.base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.usage_wanted:
            chunk["usage"] = None
        return chunk

    def usage(self, counts: tuple[int, int]) -> dict[str, Any]:
        return {**self.base, "choices": [], "usage": _usage_body(counts)}


def _usage(body: dict[str, Any], reply: Reply) -> tuple[int, int]:
    prompt = sum(len(_content_text(m.get("content")).split()) for m in body.get("messages") or [])
    return prompt, len(reply.chunks) + len(reply.tool_calls)


def _usage_body(counts: tuple[int, int]) -> dict[str, int]:
    return {"prompt_tokens": counts[0], "completion_tokens": counts[1], "total_tokens": counts[0] + counts[1]}


def _completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    """The non-streaming ``chat.completion`` for a reply."""
    message: dict[str, Any] = {"role": "assistant", "content": "".join(reply.chunks) or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": f"call_fake{next(_call_ids)}",
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
            for name, arguments in reply.tool_calls
        ]
    return {
        "id": f"chatcmpl-fake{next(_call_ids)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake"),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish}],
        "usage": _usage_body(reply.usage or _usage(body, reply)),
    }


_server: FakeUpstream | None = None
_server_lock = threading.Lock()


def get_fake_upstream() -> FakeUpstream:
    """The session's server, started on first use and stopped at interpreter exit."""
    global _server
    with _server_lock:
        if _server is None:
            _server = FakeUpstream()
            atexit.register(_server.stop)
        return _server


@pytest.fixture
def fake_upstream() -> Iterator[FakeUpstream]:
    """The shared fake server with an empty script and request log."""
    server = get_fake_upstream()
    server.reset()
    yield server
    server.reset()
