"""``assistant-kit``: run the proxy.

    assistant-kit serve --config config.yaml [--host 127.0.0.1] [--port 4000]
    assistant-kit --config config.yaml            # the seed's (LiteLLM's) form, same thing

Startup prints where it listens, the store (password hidden), the mode, and the configured
model names (names only: never a key, never a credential in a URL). Config problems stop
startup with exit status 2 and one line per problem; warnings are printed and startup goes on.
SIGINT/SIGTERM stop it cleanly: no new connections, in-flight requests (SSE streams included)
get ``--graceful-timeout`` seconds, then executing runs get as long again before they are
cancelled (see :mod:`assistant_kit.server.app`), the store is closed, exit status 0.

Decisions: port 4000 as LiteLLM has it, but the address is ``127.0.0.1``, not LiteLLM's
``0.0.0.0``: a proxy holding a provider's credentials must not be reachable from a classroom
network by default; ``--host 0.0.0.0`` shares it, and the startup line says so. Without any
key in the config the server accepts every request, and says so.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
from typing import Any

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4000
COMMANDS = ("serve",)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="assistant-kit",
        description="The Assistants API v2 as a server (LiteLLM-compatible config).",
    )
    sub = parser.add_subparsers(dest="command", metavar="serve")
    serve = sub.add_parser("serve", help="serve the Assistants API (the default command)")
    _serve_options(parser)
    # SUPPRESS: options given after "serve" override, options before it are kept.
    _serve_options(serve, argparse.SUPPRESS)
    return parser


def _serve_options(parser: argparse.ArgumentParser, default: Any = None) -> None:
    def d(value: Any) -> Any:
        return value if default is None else default

    parser.add_argument("--config", "-c", default=d(None), help="YAML config file (LiteLLM's shape)")
    parser.add_argument("--host", default=d(DEFAULT_HOST), help=f"address to bind (default {DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=int, default=d(DEFAULT_PORT), help=f"port (default {DEFAULT_PORT}; 0 = any free port)"
    )
    parser.add_argument(
        "--graceful-timeout",
        type=float,
        default=d(10.0),
        help="seconds in-flight requests, then executing runs, get at shutdown (default 10)",
    )
    parser.add_argument(
        "--log-level", default=d("info"), choices=["critical", "error", "warning", "info", "debug"]
    )
    parser.add_argument(
        "--no-access-log", action="store_true", default=d(False), help="do not log each request line"
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio then sets TCP_NODELAY on accepted connections, so small
    # SSE events are not held back ~40 ms by Nagle + delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def banner(app: Any, url: str) -> list[str]:
    """The startup lines (no secrets)."""
    from .app import ProxyApp

    assert isinstance(app, ProxyApp)
    config = app.config
    store = app.store.engine.url.render_as_string(hide_password=True)
    lines = [f"assistant-kit listening on {url} (routes at / and /v1; docs at {url}/openapi.json)"]
    host = url.split("//", 1)[1].rsplit(":", 1)[0].strip("[]")
    if host in ("127.0.0.1", "localhost", "::1"):
        lines.append("reachable from this machine only; to share it on your network: --host 0.0.0.0")
    lines.append(f"store: {store}")
    if config.passthrough:
        from sqlalchemy.engine import make_url

        try:
            remote = make_url(config.api_base or "").render_as_string(hide_password=True)
        except Exception:
            remote = "(api_base)"
        lines.append(
            f"mode: pass-through to the Assistants server at {remote} (objects are not isolated per key)"
        )
    else:
        provider = config.provider or "local"
        lines.append(f"mode: engine; plain model names go to provider '{provider}'")
    names = config.model_names
    lines.append(
        f"models: {', '.join(names) if names else '(no model_list)'}; prefixes test/, openai/, azure/, local/"
    )
    if config.auth_enabled:
        parts = ["master key" if config.master_key else None]
        parts.append(f"{len(config.api_keys)} config key(s)" if config.api_keys else None)
        parts.append("generated keys" if config.master_key else None)
        lines.append("auth: " + ", ".join(p for p in parts if p))
    else:
        lines.append("auth: OFF (no general_settings.master_key): every request is accepted")
    return lines


def _log_to_stderr(level: str) -> None:
    """The kit's own log lines beside uvicorn's (other libraries' loggers are left alone)."""
    logger = logging.getLogger("assistant_kit")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False


class RedactQuery(logging.Filter):
    """Blank the values of query strings in access-log lines: a client that sends its key as
    ``?api_key=sk-…`` is refused, but uvicorn would still print the key with the path.
    Parameter names stay (``?api_key=[redacted]``), so the line still says what was sent."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


def _redact(text: str) -> str:
    path, sep, query = text.partition("?")
    if not sep:
        return text
    names = (part.partition("=")[0] for part in query.split("&"))
    return path + "?" + "&".join(f"{name}=[redacted]" for name in names)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import build_app
    from .config import Config, ConfigError, load_config

    try:
        config = load_config(args.config) if args.config else Config()
    except ConfigError as exc:
        print(f"assistant-kit: {exc}", file=sys.stderr)
        return 2
    for warning in config.warnings:
        print(f"assistant-kit: warning: {warning}", file=sys.stderr)
    os.environ.update(config.environment)  # as LiteLLM does: model backends read the env too
    try:
        app = build_app(config, shutdown_grace=args.graceful_timeout)
    except Exception as exc:  # the store cannot be opened, typically
        print(f"assistant-kit: cannot start: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    try:
        sock = _bind(args.host, args.port)
    except OSError as exc:
        print(f"assistant-kit: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    url = _url(args.host, sock.getsockname()[1])

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if not self.should_exit:
                print("\n".join(banner(app, url)), flush=True)

    uv_config = uvicorn.Config(
        app,
        lifespan="on",
        log_level=args.log_level,
        access_log=not args.no_access_log,
        timeout_graceful_shutdown=args.graceful_timeout,
        server_header=False,
    )
    _log_to_stderr(args.log_level)
    logging.getLogger("uvicorn.access").addFilter(RedactQuery())
    # uvicorn handles SIGINT/SIGTERM (graceful shutdown), then re-raises the signal through
    # the handlers that were in place before it: these turn that into a normal return.
    previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        Server(uv_config).run(sockets=[sock])
    except _Stopped:
        pass
    finally:
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("assistant-kit stopped", flush=True)
    return 0


class _Stopped(Exception):
    pass


def _stopped(signum: int, frame: Any) -> None:
    raise _Stopped


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
