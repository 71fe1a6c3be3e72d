"""``%load_ext assistant_kit`` → the ``%%assistant`` cell magic.

The cell's text is one user message on the current :class:`~.session.Session`'s thread
(``Session.current``); the run streams below the cell. What is missing is created first: a
session on the default store, an assistant on the default model (``--model`` names another),
a thread. Loading the extension also registers HTML reprs for the SDK's objects.

Errors reach the cell as one line: a :class:`~.session.SessionError` renders without a
traceback; an empty cell or a bad option is an IPython ``UsageError``.
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .session import Session


@magics_class
class AssistantMagics(Magics):
    """The ``%%assistant`` cell magic."""

    @magic_arguments()
    @argument("--new-thread", action="store_true", help="Start a new thread for this message.")
    @argument(
        "--model",
        "-m",
        default=None,
        help="Model for this run (creates the assistant with it when there is none yet).",
    )
    @argument("--auto-tools", action="store_true", help="Run the session's Python-function tools.")
    @argument("--static", action="store_true", help="Render once at the end (no live updates).")
    @cell_magic
    def assistant(self, line: str, cell: str) -> None:
        """Send the cell as a user message to the current session's thread and stream the run."""
        args = parse_argstring(self.assistant, line)
        message = cell.strip()
        if not message:
            raise UsageError("%%assistant: the cell is empty; write the message below the magic line.")
        session = Session.current or Session()
        run_params: dict[str, Any] = {}
        if session.assistant is None:
            session.create_assistant(args.model)
        elif args.model:
            run_params["model"] = args.model
        if args.new_thread or session.thread is None:
            session.create_thread()
        session.add_message(message)
        session.run(live="static" if args.static else None, auto_tools=args.auto_tools or None, **run_params)


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%%assistant`` and the HTML formatters for the SDK's objects."""
    from .html import register_formatters

    ipython.register_magics(AssistantMagics)
    register_formatters(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove ``%%assistant`` (the formatters stay: they only change how objects look)."""
    ipython.magics_manager.magics["cell"].pop("assistant", None)
