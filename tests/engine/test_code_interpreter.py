"""code_interpreter through the official SDK: real kernels, the scripted ``test/tools`` model
(which runs the fenced code blocks of the user's message, one call per round), both transports.

Over HTTP the engine is built like a server's: code_interpreter is off unless given, so those
tests pass ``code_interpreter=CodeInterpreterSettings.local()``; in-process it is on.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import AssistantEventHandler
from typing_extensions import override

from assistant_kit.models.scripted import DEFAULT_PROGRAM
from assistant_kit.tools import isolation
from assistant_kit.tools.code_interpreter import DIR_ENV, CodeInterpreterSettings

pytestmark = pytest.mark.timeout(120)

PNG = b"\x89PNG\r\n\x1a\n"


def fenced(*programs: str) -> str:
    return "Run these.\n" + "".join(f"```python\n{p}\n```\n" for p in programs)


@pytest.fixture
def code_client(make_client, monkeypatch: pytest.MonkeyPatch) -> openai.OpenAI:  # type: ignore[no-untyped-def]
    """A client whose engine runs code, with a short timeout (limits are read when the engine
    is made) and secrets in the environment the kernels must not see."""
    # Kernels run niced (tools/kernel.py): on a machine busy with other work, a first
    # matplotlib import and plot took over 10 s in a loaded local run. The timeout program
    # (while True) waits this long once per transport.
    monkeypatch.setenv("ASSISTANT_KIT_CODE_TIMEOUT", "20")
    monkeypatch.setenv("ASSISTANT_KIT_CODE_MEMORY_MB", "400")
    monkeypatch.setenv("ASSISTANT_KIT_CODE_IDLE_SECONDS", "20")  # in-process engines live on: free kernels
    monkeypatch.setenv("OPENAI_API_KEY", "sk-parent-secret")
    monkeypatch.setenv("ASSISTANT_KIT_MASTER_KEY", "mk-parent-secret")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw-parent-secret@db/kit")
    return make_client(code_interpreter=CodeInterpreterSettings.local())


def _assistant(client: openai.OpenAI, **kw: Any) -> Any:
    return client.beta.assistants.create(
        model=kw.pop("model", "test/tools"), tools=kw.pop("tools", [{"type": "code_interpreter"}]), **kw
    )


def _upstream_setup(make_client: Any, fake_upstream: Any) -> tuple[openai.OpenAI, Any, Any]:
    """A code-running client whose model is the fake upstream, an assistant and a thread on it."""
    client = make_client(
        api_key="sk-x", api_base=fake_upstream.url, code_interpreter=CodeInterpreterSettings.local()
    )
    assistant = _assistant(client, model="openai/m")
    return client, assistant, client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])


def _run(client: openai.OpenAI, text: str, **kw: Any) -> tuple[Any, Any]:
    assistant = _assistant(client, **kw)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": text}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    return thread, run


def _code_steps(client: openai.OpenAI, thread_id: str, run_id: str) -> list[Any]:
    steps = client.beta.threads.runs.steps.list(run_id=run_id, thread_id=thread_id, order="asc").data
    return [s for s in steps if s.type == "tool_calls"]


def _logs(call: Any) -> str:
    return "".join(o.logs for o in call.code_interpreter.outputs if o.type == "logs")


def test_default_program_runs_and_the_model_reads_its_output(code_client: openai.OpenAI) -> None:
    thread, run = _run(code_client, "What is the sum of the first five squares?")
    assert run.status == "completed", run.last_error
    (step,) = _code_steps(code_client, thread.id, run.id)
    assert step.status == "completed" and step.last_error is None
    (call,) = step.step_details.tool_calls
    assert call.type == "code_interpreter" and call.code_interpreter.input == DEFAULT_PROGRAM
    assert _logs(call) == "squares: [1, 4, 9, 16, 25]\nsum: 55\n"
    answer = code_client.beta.threads.messages.list(thread.id).data[0]
    assert answer.role == "assistant"
    assert "code_interpreter returned squares: [1, 4, 9, 16, 25]\nsum: 55" in answer.content[0].text.value


def test_print_plot_raise_loop_environ_in_one_run(code_client: openai.OpenAI) -> None:
    programs = [
        "print('hello', 6 * 7)",
        "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.show()",
        "raise ValueError('bad value here')",
        "while True:\n    pass",
        "import os\nprint(sorted(os.environ))\nprint('cwd', os.getcwd())",
        "print('after the timeout')",
    ]
    thread, run = _run(code_client, fenced(*programs))
    assert run.status == "completed", run.last_error
    steps = _code_steps(code_client, thread.id, run.id)
    assert len(steps) == len(programs)
    calls = [s.step_details.tool_calls[0] for s in steps]
    assert [c.code_interpreter.input for c in calls] == [p + "\n" for p in programs]

    assert _logs(calls[0]) == "hello 42\n"

    images = [o for o in calls[1].code_interpreter.outputs if o.type == "image"]
    assert len(images) == 1, (steps[1].last_error, _logs(calls[1]))
    png = code_client.files.content(images[0].image.file_id).content
    assert png.startswith(PNG) and len(png) > 1000
    meta = code_client.files.retrieve(images[0].image.file_id)
    assert meta.purpose == "assistants_output" and meta.filename.endswith(".png") and meta.bytes == len(png)

    assert steps[2].status == "completed"  # the code raised: an ordinary result
    assert "ValueError: bad value here" in _logs(calls[2])

    assert steps[3].status == "failed"
    assert steps[3].last_error is not None and "timed out" in steps[3].last_error.message
    assert "timed out" in _logs(calls[3])

    env_logs = _logs(calls[4])
    for secret in ("OPENAI_API_KEY", "ASSISTANT_KIT_MASTER_KEY", "DATABASE_URL", "parent-secret"):
        assert secret not in env_logs
    # cwd: the thread's own working directory, at /mnt/data inside the sandbox
    assert ("cwd /mnt/data" if isolation.missing() is None else thread.id) in env_logs

    assert _logs(calls[5]) == "after the timeout\n"  # a new kernel took over

    answer = code_client.beta.threads.messages.list(thread.id).data[0]
    assert [p.type for p in answer.content] == ["image_file", "text"]  # the plot first, as hosted
    assert answer.content[0].image_file.file_id == images[0].image.file_id
    text = answer.content[1].text.value
    assert "hello 42" in text and "ValueError: bad value here" in text and "timed out" in text


def test_kernel_crash_and_memory_bomb_are_tool_errors_and_the_run_goes_on(code_client: openai.OpenAI) -> None:
    programs = (
        "x = 1",
        "import os\nos._exit(3)",
        "print('x' in dir())",
        "y = 2\nblocks = []\nwhile True:\n    blocks.append(bytearray(50 * 1024 ** 2))",  # limit: 400 MB
        "print('y' in dir())",
    )
    thread, run = _run(code_client, fenced(*programs))
    assert run.status == "completed", run.last_error
    steps = _code_steps(code_client, thread.id, run.id)
    assert [s.status for s in steps] == ["completed", "failed", "completed", "failed", "completed"]
    assert "kernel" in steps[1].last_error.message.lower()
    assert _logs(steps[2].step_details.tool_calls[0]) == "False\n"  # restarted: state is gone
    assert "memory" in steps[3].last_error.message.lower() and "400" in steps[3].last_error.message
    assert _logs(steps[4].step_details.tool_calls[0]) == "False\n"
    text = code_client.beta.threads.messages.list(thread.id).data[0].content[0].text.value
    assert "memory" in text.lower()  # the model read the reason


def test_state_persists_across_runs(code_client: openai.OpenAI) -> None:
    assistant = _assistant(code_client)
    thread = code_client.beta.threads.create(messages=[{"role": "user", "content": fenced("x = 41")}])
    first = code_client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert first.status == "completed"
    code_client.beta.threads.messages.create(thread.id, role="user", content=fenced("print(x + 1)"))
    second = code_client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert second.status == "completed"
    (step,) = _code_steps(code_client, thread.id, second.id)
    assert _logs(step.step_details.tool_calls[0]) == "42\n"


class Recorder(AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[str] = []
        self.logs: list[str] = []
        self.images: list[str] = []
        self.created: list[str] = []
        self.done: list[Any] = []

    @override
    def on_tool_call_created(self, tool_call: Any) -> None:
        self.created.append(tool_call.type)

    @override
    def on_tool_call_delta(self, delta: Any, snapshot: Any) -> None:
        if delta.type != "code_interpreter" or delta.code_interpreter is None:
            return
        if delta.code_interpreter.input:
            self.inputs.append(delta.code_interpreter.input)
        for output in delta.code_interpreter.outputs or []:
            if output.type == "logs" and output.logs:
                self.logs.append(output.logs)
            elif output.type == "image" and output.image is not None:
                self.images.append(output.image.file_id)

    @override
    def on_tool_call_done(self, tool_call: Any) -> None:
        self.done.append(tool_call)


def test_streamed_input_and_outputs(code_client: openai.OpenAI) -> None:
    program = (
        "import time\nfor i in range(3):\n    print('line', i, flush=True)\n    time.sleep(0.2)\n"
        "import matplotlib.pyplot as plt\nplt.bar([1, 2], [3, 4])\nplt.show()"
    )
    assistant = _assistant(code_client)
    thread = code_client.beta.threads.create(messages=[{"role": "user", "content": fenced(program)}])
    recorder = Recorder()
    with code_client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=recorder
    ) as stream:
        stream.until_done()
        final = stream.get_final_run()
    assert final.status == "completed"
    assert recorder.created == ["code_interpreter"]
    program += "\n"  # as the fenced block had it
    assert len(recorder.inputs) > 3 and "".join(recorder.inputs) == program  # streamed as written
    assert "".join(recorder.logs) == "line 0\nline 1\nline 2\n"
    assert len(recorder.logs) >= 2  # chunks as the code printed, not one block at the end
    # The SDK calls on_tool_call_done again at every later step/run end (its quirk): same call.
    done = recorder.done[0]
    assert {d.id for d in recorder.done} == {done.id}
    assert done.code_interpreter.input == program
    assert [o.type for o in done.code_interpreter.outputs] == ["logs", "image"]
    assert recorder.images == [done.code_interpreter.outputs[1].image.file_id]
    assert code_client.files.content(recorder.images[0]).content.startswith(PNG)


def test_a_plot_is_the_answers_first_part_also_as_streamed(code_client: openai.OpenAI) -> None:
    """The hosted API put a plot before the text: ``content[0].image_file`` is where client
    code looks (the cookbook's slides notebook polls for it). The streamed message deltas use
    the same indexes, so what the SDK accumulates is what ``thread.message.completed`` carries."""
    program = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [3, 1, 2])\nplt.show()\nprint('drawn')"
    assistant = _assistant(code_client)
    thread = code_client.beta.threads.create(messages=[{"role": "user", "content": fenced(program)}])
    with code_client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        events = list(stream)
        snapshot = stream.current_message_snapshot
    assert stream.current_run is not None and stream.current_run.status == "completed"
    deltas = [part for e in events if e.event == "thread.message.delta" for part in e.data.delta.content]
    assert deltas[0].type == "image_file" and deltas[0].index == 0  # announced before any text
    assert {d.index for d in deltas[1:]} == {1} and {d.type for d in deltas[1:]} == {"text"}
    (completed,) = [e.data for e in events if e.event == "thread.message.completed"]
    assert [p.type for p in completed.content] == ["image_file", "text"]
    assert snapshot is not None and snapshot.content == completed.content
    image_id = completed.content[0].image_file.file_id
    assert "code_interpreter returned drawn" in completed.content[1].text.value
    (step,) = _code_steps(code_client, thread.id, stream.current_run.id)
    outputs = step.step_details.tool_calls[0].code_interpreter.outputs
    assert [o.image.file_id for o in outputs if o.type == "image"] == [image_id]
    # Read back the cookbook's way.
    message = code_client.beta.threads.messages.list(thread_id=thread.id).data[0]
    assert message.content[0].image_file.file_id == image_id
    assert code_client.files.content(message.content[0].image_file.file_id).content.startswith(PNG)


def test_input_files_and_written_files(code_client: openai.OpenAI) -> None:
    data = code_client.files.create(file=("data.csv", io.BytesIO(b"n\n1\n2\n3\n")), purpose="assistants")
    program = (
        "rows = open('data.csv').read().split()[1:]\n"
        "total = sum(map(int, rows))\n"
        "open('total.txt', 'w').write(str(total))\nprint('total', total)"
    )
    thread, run = _run(
        code_client,
        fenced(program),
        tool_resources={"code_interpreter": {"file_ids": [data.id]}},
    )
    assert run.status == "completed", run.last_error
    (step,) = _code_steps(code_client, thread.id, run.id)
    assert _logs(step.step_details.tool_calls[0]) == "total 6\n"
    written = [f for f in code_client.files.list(purpose="assistants_output") if f.filename == "total.txt"]
    assert len(written) == 1 and code_client.files.content(written[0].id).content == b"6"
    answer = code_client.beta.threads.messages.list(thread.id).data[0]
    text = answer.content[0].text
    (note,) = [a for a in text.annotations if a.type == "file_path"]
    assert note.file_path.file_id == written[0].id and note.text == "total.txt"
    assert text.value[note.start_index : note.end_index] == "total.txt"


def test_input_files_keep_their_names_for_the_thread(code_client: openai.OpenAI) -> None:
    """Two input files named alike: the first keeps the name, the second gets its id added —
    and a file keeps its name in later runs, whatever the order of the ids then."""
    first = code_client.files.create(file=("data.csv", b"AAA"), purpose="assistants")
    second = code_client.files.create(file=("data.csv", b"BBB"), purpose="assistants")
    dotdot = code_client.files.create(file=("..", b"odd name"), purpose="assistants")
    listing = "import os\nprint(sorted((n, open(n).read()) for n in os.listdir('.')))"
    assistant = _assistant(code_client, tool_resources={"code_interpreter": {"file_ids": [first.id]}})
    thread = code_client.beta.threads.create(messages=[{"role": "user", "content": fenced(listing)}])
    run = code_client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error
    (step,) = _code_steps(code_client, thread.id, run.id)
    assert _logs(step.step_details.tool_calls[0]) == "[('data.csv', 'AAA')]\n"
    code_client.beta.assistants.update(
        assistant.id, tool_resources={"code_interpreter": {"file_ids": [second.id, first.id, dotdot.id]}}
    )
    code_client.beta.threads.messages.create(thread.id, role="user", content=fenced(listing))
    run = code_client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error
    (step,) = _code_steps(code_client, thread.id, run.id)
    expected = [("data.csv", "AAA"), (f"data-{second.id}.csv", "BBB"), (dotdot.id, "odd name")]
    assert _logs(step.step_details.tool_calls[0]) == f"{sorted(expected)}\n"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX file types")
def test_written_files_are_read_only_when_regular_inside_and_small(tmp_path: Path) -> None:
    from assistant_kit.engine.code_calls import read_written

    work, outside = tmp_path / "work", tmp_path / "secret.txt"
    (work / "sub").mkdir(parents=True)
    outside.write_text("secret")
    (work / "ok.txt").write_text("fine")
    (work / "sub" / "deep.txt").write_text("deep")
    (work / "link.txt").symlink_to(outside)
    (work / "linkdir").symlink_to(tmp_path)
    os.mkfifo(work / "pipe")
    with open(work / "sparse.bin", "wb") as handle:
        handle.truncate(10**9)
    (work / "empty.txt").write_bytes(b"")
    got = {
        name: read_written(work, Path(name), 1000)
        for name in [
            "ok.txt",
            "sub/deep.txt",
            "link.txt",
            "linkdir/secret.txt",
            "pipe",
            "sparse.bin",
            "empty.txt",
        ]
    }
    assert got == {
        "ok.txt": b"fine",
        "sub/deep.txt": b"deep",
        "link.txt": None,
        "linkdir/secret.txt": None,
        "pipe": None,  # and no hang: opened without blocking, refused by its type
        "sparse.bin": None,  # refused by its size, never read
        "empty.txt": None,
    }


def test_odd_written_file_names_keep_the_store_readable(code_client: openai.OpenAI) -> None:
    program = (
        "open(b'bad\\xffname.txt', 'wb').write(b'1')\n"
        "open('big.bin', 'wb').truncate(100 * 2**20)\n"  # sparse: costs no disk
        "print('ok')"
    )
    thread, run = _run(code_client, fenced(program))
    assert run.status == "completed", run.last_error
    names = [f.filename for f in code_client.files.list(purpose="assistants_output")]
    assert "bad\ufffdname.txt" in names and "big.bin" not in names
    assert code_client.beta.threads.messages.list(thread.id).data  # readable
    (step,) = _code_steps(code_client, thread.id, run.id)
    limit = 64 * 2**20
    assert _logs(step.step_details.tool_calls[0]) == (
        f"ok\n[file not kept: big.bin is {100 * 2**20:,} bytes, over the {limit:,}-byte limit]\n"
    )


def test_code_then_functions_then_answer(code_client: openai.OpenAI) -> None:
    weather = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
    assistant = _assistant(code_client, tools=[{"type": "code_interpreter"}, weather])
    thread = code_client.beta.threads.create(messages=[{"role": "user", "content": fenced("print(2 + 2)")}])
    run = code_client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    pending = run.required_action.submit_tool_outputs.tool_calls
    assert [c.function.name for c in pending] == ["get_weather"]
    run = code_client.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=thread.id, run_id=run.id, tool_outputs=[{"tool_call_id": pending[0].id, "output": "sunny"}]
    )
    assert run.status == "completed", run.last_error
    text = code_client.beta.threads.messages.list(thread.id).data[0].content[0].text.value
    assert "code_interpreter returned 4" in text and "get_weather returned sunny" in text


def test_deleting_the_thread_removes_its_working_directory(code_client: openai.OpenAI) -> None:
    thread, run = _run(code_client, fenced("import os\nopen('x.txt', 'w').write('x')\nprint(os.getcwd())"))
    (step,) = _code_steps(code_client, thread.id, run.id)
    workdir = Path(os.environ[DIR_ENV]) / thread.id
    assert _logs(step.step_details.tool_calls[0]).strip() in (str(workdir), "/mnt/data")
    assert (workdir / "x.txt").exists()
    code_client.beta.threads.delete(thread.id)
    assert not workdir.exists()


def test_off_by_default_for_an_engine_built_directly(tmp_path: Path) -> None:
    """An Engine made by hand (as a server makes one) does not run code unless told to."""
    from assistant_kit.engine.app import create_app
    from assistant_kit.engine.core import Engine
    from assistant_kit.store import Store
    from tests.conftest import serve

    engine = Engine(Store(tmp_path / "kit.db"))
    assert not engine.code.enabled
    with (
        serve(create_app(engine)) as url,
        openai.OpenAI(base_url=url, api_key="sk-x", max_retries=0) as client,
    ):
        _, run = _run(client, "compute something")
    assert run.status == "failed"
    assert run.last_error.code == "server_error"
    assert "disabled" in run.last_error.message and "code_interpreter.enabled" in run.last_error.message


def test_model_history_carries_code_and_logs(make_client, fake_upstream) -> None:  # type: ignore[no-untyped-def]
    """An upstream model sees its call as a function call with the code, and the logs as the result."""
    client, assistant, thread = _upstream_setup(make_client, fake_upstream)
    fake_upstream.reply_tool_calls([("code_interpreter", {"code": "print(6 * 7)"})])
    fake_upstream.reply_text("The answer is 42.")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error
    second = fake_upstream.requests[-1].body
    call = second["messages"][-2]["tool_calls"][0]
    assert call["function"] == {"name": "code_interpreter", "arguments": json.dumps({"code": "print(6 * 7)"})}
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": call["id"], "content": "42\n"}
    assert "working directory" in second["tools"][0]["function"]["description"]


def test_tool_calls_cut_off_by_max_tokens_are_not_run(make_client, fake_upstream, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A turn that ends with finish_reason "length" may carry cut calls: the code is not run,
    the function is not handed to the client; the run ends incomplete, its tool step cancelled."""
    client, assistant, thread = _upstream_setup(make_client, fake_upstream)
    marker = tmp_path / "ran"
    code = json.dumps({"code": f"open({str(marker)!r}, 'w').write('x')\nprint('and more')"})
    weather = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    client.beta.assistants.update(assistant.id, tools=[{"type": "code_interpreter"}, weather])
    fake_upstream.reply_tool_calls(
        [("code_interpreter", code[: code.index("print")]), ("get_weather", '{"city": "Par')], finish="length"
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=256, poll_interval_ms=50
    )
    assert run.status == "incomplete" and run.incomplete_details.reason == "max_completion_tokens"
    assert run.required_action is None
    (step,) = _code_steps(client, thread.id, run.id)
    assert step.status == "cancelled"
    code_call, function_call = step.step_details.tool_calls
    assert code_call.code_interpreter.outputs == [] and not marker.exists()
    assert function_call.function.arguments == '{"city": "Par'


def test_cancel_while_code_runs(code_client: openai.OpenAI) -> None:
    import time

    assistant = _assistant(code_client)
    thread = code_client.beta.threads.create(
        messages=[
            {"role": "user", "content": fenced("import time\nprint('start', flush=True)\ntime.sleep(60)")}
        ]
    )
    run = code_client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # wait until the code is running (it has printed)
        steps = _code_steps(code_client, thread.id, run.id)
        calls = steps[0].step_details.tool_calls if steps else []
        if calls and calls[0].code_interpreter.input.endswith("time.sleep(60)\n"):
            break
        time.sleep(0.05)
    time.sleep(0.5)
    started = time.monotonic()
    code_client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    while True:
        run = code_client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
        if run.status not in ("cancelling", "in_progress", "queued"):
            break
        assert time.monotonic() - started < 5, "cancel did not stop the code"
        time.sleep(0.05)
    assert run.status == "cancelled"
    (step,) = _code_steps(code_client, thread.id, run.id)
    assert step.status == "cancelled"


def test_forced_code_interpreter_is_honoured_once(make_client, fake_upstream) -> None:  # type: ignore[no-untyped-def]
    """tool_choice={"type": "code_interpreter"} forces the first turn; later turns are "auto", so
    a model that would always obey cannot keep the engine running code until the run expires."""
    client, assistant, thread = _upstream_setup(make_client, fake_upstream)
    fake_upstream.reply_tool_calls([("code_interpreter", {"code": "print(1)"})])
    fake_upstream.reply_text("done")
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, tool_choice={"type": "code_interpreter"}
    )
    assert run.status == "completed", run.last_error
    first, second = (r.body for r in fake_upstream.requests[-2:])
    assert first["tool_choice"] == {"type": "function", "function": {"name": "code_interpreter"}}
    assert second["tool_choice"] == "auto"
