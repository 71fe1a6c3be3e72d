"""Fixtures for the proxy: ``assistant-kit serve`` started as a real subprocess on loopback.

``start_proxy(config)`` writes ``config`` (a dict, dumped as YAML) to a file, starts the
server with ``--port 0`` (an ephemeral port), waits for its "listening on" line and returns a
:class:`Proxy`. Every proxy started is stopped (SIGTERM, then SIGKILL after a grace) when
the test ends, and its output file stays readable for assertions. The subprocess gets a
scrubbed environment: no OpenAI/Azure credentials, so nothing can reach a real provider.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
import yaml

MASTER_KEY = "sk-master-test-0123456789"
_LISTENING = re.compile(r"assistant-kit listening on (http://\S+?) ")
_SCRUB = ("OPENAI_", "AZURE_", "ASSISTANT_KIT_DB")


def command() -> list[str]:
    """The installed console script when present, else the module (same ``main``)."""
    script = Path(sys.executable).parent / "assistant-kit"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "assistant_kit.server.cli"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB)}
    env.update(extra)
    return env


@dataclass
class Proxy:
    process: subprocess.Popen[bytes]
    url: str  # origin, no /v1
    output_path: Path
    config_path: Path
    clients: list[Any] = field(default_factory=list)  # closed at stop: no socket left to the GC

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def client(self, key: str | None = MASTER_KEY, *, v1: bool = True, **options: Any) -> openai.OpenAI:
        options.setdefault("max_retries", 0)
        client = openai.OpenAI(base_url=self.v1 if v1 else self.url, api_key=key or "", **options)
        self.clients.append(client)
        return client

    def http(self, key: str | None = MASTER_KEY, **options: Any) -> httpx2.Client:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx2.Client(base_url=self.url, headers=headers, timeout=30, **options)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        for client in self.clients:
            client.close()
        self.clients.clear()
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def wait_listening(process: subprocess.Popen[bytes], output: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = _LISTENING.search(output.read_text(errors="replace"))
        if match:
            return match[1]
        if process.poll() is not None:
            raise RuntimeError(
                f"proxy exited with {process.returncode}:\n{output.read_text(errors='replace')}"
            )
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"proxy did not start in {timeout} s:\n{output.read_text(errors='replace')}")


StartProxy = Callable[..., Proxy]


class Launcher:
    """Starts proxies with configs and stores under ``directory``; stops them all at the end."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.started: list[Proxy] = []
        self._counter = iter(range(1000))

    def start(
        self,
        config: dict[str, Any] | None = None,
        *args: str,
        env: dict[str, str] | None = None,
        wait: bool = True,
        subcommand: bool = True,
    ) -> Proxy:
        """Start one; ``general_settings.database_url`` defaults to a fresh file here.
        ``subcommand=False`` uses the seed's form, ``assistant-kit --config …``."""
        n = next(self._counter)
        config = dict(config or {})
        general = dict(config.get("general_settings") or {})
        general.setdefault("database_url", str(self.directory / f"proxy{n}.db"))
        config["general_settings"] = general
        config_path = self.directory / f"config{n}.yaml"
        config_path.write_text(yaml.safe_dump(config))
        output_path = self.directory / f"proxy{n}.log"
        argv = [
            *command(),
            *(["serve"] if subcommand else []),
            "--config",
            str(config_path),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
        ]
        argv += ["--graceful-timeout", "3", *args]
        with output_path.open("wb") as out:
            process = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=clean_env(**(env or {})),
            )
        proxy = Proxy(process, "", output_path, config_path)
        self.started.append(proxy)
        if wait:
            proxy.url = wait_listening(process, output_path)
        return proxy

    def stop_all(self) -> None:
        for proxy in reversed(self.started):
            proxy.stop()


@pytest.fixture
def start_proxy(tmp_path: Path) -> Iterator[StartProxy]:
    """``start_proxy(config, *cli_args, env=None, wait=True, subcommand=True)`` → a running
    :class:`Proxy`."""
    launcher = Launcher(tmp_path)
    yield launcher.start
    launcher.stop_all()


@pytest.fixture(scope="module")
def module_launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    """For a module's shared proxy (start it in a module-scoped fixture)."""
    launcher = Launcher(tmp_path_factory.mktemp("proxy"))
    yield launcher
    launcher.stop_all()


def master_config(**general: Any) -> dict[str, Any]:
    return {"general_settings": {"master_key": MASTER_KEY, **general}}


def fake_route(fake_upstream: Any, name: str = "fake") -> dict[str, Any]:
    """A model_list route sending model ``name`` to the fake OpenAI-compatible upstream."""
    return {
        "model_name": name,
        "litellm_params": {
            "model": "openai/fake-model",
            "api_base": fake_upstream.url,
            "api_key": "sk-upstream",
        },
    }


def have_console_script() -> bool:
    return (Path(sys.executable).parent / "assistant-kit").exists() or shutil.which(
        "assistant-kit"
    ) is not None
