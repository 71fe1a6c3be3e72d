"""code_interpreter and files through the proxy subprocess: off by default, on when the config
says so, uploads sized by ``max_file_size_mb`` rather than ``max_request_size_mb``."""

from __future__ import annotations

import openai
import pytest

from .conftest import Launcher, Proxy, StartProxy, master_config

pytestmark = pytest.mark.timeout(120)

PROGRAM = (
    "```python\nimport matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0])\nplt.show()\nprint('drawn')\n```"
)


def _run(client: openai.OpenAI, text: str = PROGRAM) -> tuple[str, object]:
    assistant = client.beta.assistants.create(model="test/tools", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": text}])
    return thread.id, client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)


@pytest.fixture(scope="module")
def default_proxy(module_launcher: Launcher) -> Proxy:
    return module_launcher.start(master_config(max_request_size_mb=0.01))  # 10 KiB of JSON


def test_proxy_refuses_code_by_default(default_proxy: Proxy) -> None:
    client = default_proxy.client()
    thread_id, run = _run(client)
    assert run.status == "failed"  # type: ignore[attr-defined]
    message = run.last_error.message  # type: ignore[attr-defined]
    assert "disabled" in message and "assistant_settings.code_interpreter.enabled" in message
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread_id).data  # type: ignore[attr-defined]
    assert all(s.status != "in_progress" for s in steps)


def test_uploads_are_limited_by_the_file_limit_not_the_json_limit(default_proxy: Proxy) -> None:
    client = default_proxy.client()
    data = bytes(range(256)) * 400  # 100 KiB: over the 10 KiB body limit, far under 64 MB
    made = client.files.create(file=("blob.bin", data), purpose="assistants")
    assert client.files.content(made.id).content == data
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=("empty.bin", b""), purpose="assistants")
    assert err.value.body["param"] == "file"


def test_oversized_upload_is_refused(start_proxy: StartProxy) -> None:
    proxy = start_proxy(master_config(max_file_size_mb=0.05, max_request_size_mb=0.01))  # 52,428 bytes
    client = proxy.client()
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=("big.bin", b"x" * 60_000), purpose="assistants")
    assert err.value.body["param"] == "file" and "52,428 bytes" in err.value.message
    with pytest.raises(openai.APIStatusError) as too_big:  # far past it: refused before reading it all
        client.files.create(file=("huge.bin", b"x" * 3_000_000), purpose="assistants")
    assert too_big.value.status_code == 413
    assert client.files.list().data == []


def test_enabled_by_config(start_proxy: StartProxy) -> None:
    config = master_config()
    config["assistant_settings"] = {"code_interpreter": {"enabled": True, "timeout": 20, "memory_mb": 600}}
    proxy = start_proxy(config)
    client = proxy.client()
    thread_id, run = _run(client)
    assert run.status == "completed", run.last_error  # type: ignore[attr-defined]
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread_id, order="asc").data  # type: ignore[attr-defined]
    call = steps[0].step_details.tool_calls[0]
    assert [o.type for o in call.code_interpreter.outputs] == ["image", "logs"]  # shown, then printed
    png = client.files.content(call.code_interpreter.outputs[0].image.file_id).content
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    # Another key sees neither the thread nor the image.
    other = proxy.client(proxy_key(proxy))
    with pytest.raises(openai.NotFoundError):
        other.files.content(call.code_interpreter.outputs[0].image.file_id)
    assert "code_interpreter runs model-written Python" not in proxy.output()  # no local banner


def proxy_key(proxy: Proxy) -> str:
    with proxy.http() as http:
        return http.post("/key/generate", json={}).json()["key"]
