"""A hostile tenant against a real proxy with code_interpreter on (issue 15): every escape the
unsandboxed kernel allowed is tried — secrets in /proc, the config, the database, another
tenant's files, other kernels' connection files, 200 processes, a double-forked daemon,
3 x 380 MB children, filling the disk, a socket to the server — and each must fail or be stopped,
no process may outlive the execution, the thread or a ``kill -9`` of the server, and ``/health``
must stay responsive meanwhile (its p99 is measured and printed)."""

from __future__ import annotations

import os
import signal
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from assistant_kit.tools import isolation
from tests.tools import DAEMON_AND_FORKS

from .conftest import MASTER_KEY, Proxy, StartProxy

psutil = pytest.importorskip("psutil")
REQUIRE = os.environ.get("ASSISTANT_KIT_REQUIRE_ALL") == "1"
pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(isolation.missing() is not None and not REQUIRE, reason=f"{isolation.missing()}"),
]
CANARY = "sk-canary-upstream-7f3a9c"


def _config(tmp_path: Path) -> dict[str, Any]:
    return {
        "assistant_settings": {
            "code_interpreter": {
                "enabled": True,
                "timeout": 20,
                "memory_mb": 256,
                "disk_mb": 50,
                "max_processes": 64,
                "directory": str(tmp_path / "code"),
            }
        },
        "general_settings": {"master_key": "os.environ/MASTER_KEY", "database_url": str(tmp_path / "kit.db")},
        "environment_variables": {"UPSTREAM_KEY": CANARY},
    }


def _blocks(proxy: Proxy, tmp_path: Path, victim: str) -> str:
    secrets = [MASTER_KEY.encode().hex(), CANARY.encode().hex()]  # not literally in the code
    port = int(proxy.url.rsplit(":", 1)[1])
    reads = f"""
import glob, os
SECRETS = [bytes.fromhex(h) for h in {secrets!r}]
def attempt(name, fn):
    try:
        print(f"ESCAPE {{name}}: {{str(fn())[:60]!r}}")
    except Exception as exc:
        print(f"held {{name}}: {{type(exc).__name__}}")
def read(path):
    return open(path, 'rb').read()
def leaked():
    for path in glob.glob('/proc/*/environ') + glob.glob('/proc/*/cmdline'):
        try:
            data = read(path)
        except OSError:
            continue
        if any(s in data for s in SECRETS):
            return path
    raise PermissionError('no secret readable in /proc')
def kernel_files():
    found = glob.glob({str(tmp_path / "code")!r} + '/.*/kernel.json') + glob.glob('/tmp/ak-*/kernel.json')
    if found:
        return found
    raise FileNotFoundError('no kernel.json of another kernel')
attempt('parent environ', lambda: read(f'/proc/{{os.getppid()}}/environ'))
attempt('secrets in /proc', leaked)
attempt('config', lambda: read({str(proxy.config_path)!r}))
attempt('database', lambda: read({str(tmp_path / "kit.db")!r}))
attempt('other tenant', lambda: read({str(tmp_path / "code" / victim / "secret.txt")!r}))
attempt('other tenant via ..', lambda: read('/mnt/data/../{victim}/secret.txt'))
attempt('kernel.json', kernel_files)
"""
    processes = (
        DAEMON_AND_FORKS
        + """
    print(f'held fork: refused after {started}')
else:
    print('ESCAPE fork: 200 processes')
"""
    )
    network = f"""
import socket
try:
    socket.create_connection(('127.0.0.1', {port}), timeout=3).close()
    print('ESCAPE socket: connected to the server')
except OSError as exc:
    print(f'held socket: {{type(exc).__name__}}')
"""
    disk = """
chunk = b'x' * (1 << 20)
for n in range(1000):
    with open(f'/mnt/data/fill{n}.bin', 'wb') as out:
        out.write(chunk * 5)
print('ESCAPE disk: 5 GB written')
"""
    memory = """
import subprocess, sys
kids = [subprocess.Popen([sys.executable, '-c', "b = b'x' * (380 << 20); import time; time.sleep(60)"])
        for _ in range(3)]
for kid in kids:
    kid.wait()
print('ESCAPE memory: 3 x 380 MB lived')
"""
    programs = (reads, processes, network, disk, memory)
    return "\n".join(f"```python\n{p.strip()}\n```" for p in programs)


def _sandbox_processes(proxy: Proxy) -> list[Any]:
    try:
        return proxy_children(proxy.process.pid)
    except psutil.NoSuchProcess:
        return []


def proxy_children(pid: int) -> list[Any]:
    return [p for p in psutil.Process(pid).children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]


def _strays(proxy: Proxy) -> list[str]:
    """Processes of the proxy's tree other than bwrap's two and the kernels."""
    out = []
    for process in _sandbox_processes(proxy):
        try:
            line = " ".join(process.cmdline())
        except psutil.Error:
            continue
        if process.name() != "bwrap" and "ipykernel_launcher" not in line:
            out.append(line)
    return out


def test_a_hostile_tenant_gets_nothing_and_leaves_nothing(start_proxy: StartProxy, tmp_path: Path) -> None:
    proxy = start_proxy(_config(tmp_path), env={"MASTER_KEY": MASTER_KEY})
    with proxy.http(None) as http:
        health = http.get("/health").json()
    assert health["code_interpreter"] == {"sandbox": "bwrap", "network": False} and "warnings" not in health
    master = proxy.client()
    assistant = master.beta.assistants.create(model="test/tools", tools=[{"type": "code_interpreter"}])
    # Tenant B (the master key's owner) keeps a secret in its thread's working directory.
    victim = master.beta.threads.create(
        messages=[{"role": "user", "content": "```python\nopen('secret.txt', 'w').write('b-secret')\n```"}]
    )
    run = master.beta.threads.runs.create_and_poll(thread_id=victim.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error
    assert (tmp_path / "code" / victim.id / "secret.txt").read_text() == "b-secret"

    with proxy.http() as http:
        tenant_key = http.post("/key/generate", json={}).json()["key"]
    tenant = proxy.client(tenant_key)
    hostile = tenant.beta.assistants.create(model="test/tools", tools=[{"type": "code_interpreter"}])
    thread = tenant.beta.threads.create(
        messages=[{"role": "user", "content": _blocks(proxy, tmp_path, victim.id)}]
    )
    latencies: list[float] = []
    attacking = True

    def probe() -> None:
        with proxy.http(None) as http:
            while attacking:
                started = time.perf_counter()
                assert http.get("/health").status_code == 200
                latencies.append(time.perf_counter() - started)
                time.sleep(0.02)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        run = tenant.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=hostile.id, poll_interval_ms=200
        )
    finally:
        attacking = False
        prober.join()
    assert run.status == "completed", run.last_error
    steps = tenant.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    calls = [s for s in steps if s.type == "tool_calls"]
    logs = [
        "".join(o.logs for o in s.step_details.tool_calls[0].code_interpreter.outputs if o.type == "logs")
        for s in calls
    ]
    everything = "\n".join(logs)
    assert "ESCAPE" not in everything, everything
    for name in ("parent environ", "secrets in /proc", "config", "database", "other tenant", "kernel.json"):
        assert f"held {name}:" in logs[0], logs[0]
    assert "held fork: refused after" in logs[1], logs[1]
    assert "process(es) the code started were still running and were stopped" in logs[1]
    assert "held socket:" in logs[2], logs[2]
    assert [s.status for s in calls] == ["completed", "completed", "completed", "failed", "failed"]
    assert "disk quota of 50 MB" in calls[3].last_error.message
    assert "more than 256 MB of memory (all its processes together)" in calls[4].last_error.message
    assert not list((tmp_path / "code" / thread.id).glob("fill*.bin"))  # what it wrote is gone
    assert _strays(proxy) == []
    p99 = statistics.quantiles(latencies, n=100)[98]
    print(
        f"/health during the attack: {len(latencies)} requests, "
        f"median {statistics.median(latencies) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"
    )
    assert p99 < 1.0, p99

    # Deleting the thread stops its kernel; a kill -9 of the server takes the other one along.
    tenant.beta.threads.delete(thread.id)
    kernels = _sandbox_processes(proxy)
    assert len([p for p in kernels if p.name() != "bwrap"]) == 1  # B's kernel only
    proxy.process.send_signal(signal.SIGKILL)
    proxy.process.wait(10)
    deadline = time.monotonic() + 5
    while (
        any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in kernels)
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    assert not [p for p in kernels if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_sandbox_none_is_warned_about(start_proxy: StartProxy, tmp_path: Path) -> None:
    config = _config(tmp_path)
    config["assistant_settings"]["code_interpreter"]["sandbox"] = "none"
    proxy = start_proxy(config, env={"MASTER_KEY": MASTER_KEY})
    assert "sandbox: none: model-written code runs unsandboxed" in proxy.output()
    with proxy.http(None) as http:
        health = http.get("/health").json()
    assert health["code_interpreter"]["sandbox"] == "none" and health["warnings"]
