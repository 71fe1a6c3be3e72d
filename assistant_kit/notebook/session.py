"""``Session``: provider config plus the current assistant, thread and run, chainable.

A notebook cell reads like the conversation it starts::

    Session(db="demo.db").create_assistant("test/echo").create_thread().add_message("Hi").run()

Every operation is one call on an ``openai.OpenAI`` client — the in-process engine by
default (:func:`assistant_kit.local_client`), or a remote server that speaks the Assistants
API (``base_url=``) — and returns the session. The objects it leaves behind are the SDK's own
(``session.assistant``, ``.thread``, ``.last_run``); ``session.answer`` is the text the last run
wrote. Runs stream through a :class:`~assistant_kit.notebook.render.RunView`.

Why the choices:

* **One error at the boundary.** ``openai.APIError`` (a 404 for an unknown id, a refused
  connection, an invalid request) becomes one short :class:`SessionError`, raised ``from
  None`` and rendered by IPython as a single line — never a traceback from inside the SDK.
  A *failed run* is data (``last_run.status == "failed"``), shown by the view, not raised.
* **Python functions as tools.** A callable in ``tools=[...]`` becomes a function tool whose
  JSON schema pydantic derives from the signature (``TypeAdapter(fn).json_schema()``); the
  docstring's first paragraph is the description, an ``Args:`` / ``Parameters`` /
  ``:param:`` section gives per-parameter descriptions. With ``auto_tools`` the session runs
  them when a run reaches ``requires_action`` (arguments validated by the same adapter) and
  streams the resumed run into the same view; an exception becomes the output
  ``"Error: <Type>: <message>"`` and the run goes on.
* **Images through the session's client.** A code_interpreter plot or an ``image_file``
  part is fetched once (``client.files.content``, cached per file id) and shown inline by
  the run's view, the object cards and :meth:`inspect`; the DataFrames keep file ids only.
  Sessions share the process's IPython formatters, so a card finds its client by the files it
  shows (:func:`.code.owner`), never by which session was created last.
* **No event-loop tricks.** The sync client hands work to the engine's own loop thread, so
  it works inside Jupyter's running loop. The ``a*`` twins run the sync method in a worker
  thread (``asyncio.to_thread``, which copies the context: ipykernel routes a worker's
  display output to the awaiting cell by a context variable — checked with a real kernel).
  While ``await session.arun(live="widgets")`` runs, the kernel still handles widget
  messages, so the view's Cancel button works; a blocking ``run()`` is stopped with an
  interrupt, and the session then cancels the run.

This module is the public surface: construction, the current objects, the chainable
operations and their ``a*`` twins. The machinery behind them lives in private modules —
:mod:`._boundary` (SDK errors → ``SessionError``, parameter checks, secret-free config
labels) and :mod:`._runs` (``RunDriver``, a base of ``Session``: streaming into a RunView,
the tool-call loop, polled-run replay, cancellation).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, ParamSpec, TypeVar

import openai

from .._quiet import quiet_sdk_deprecations
from ..errors import InvalidRequestError, ModelConfigError, SessionError
from ..providers import decide
from ._boundary import FilesArg, db_label, file_sources, safe_url
from ._runs import ACTIVE, RunDriver, pending
from .citations import SEARCH_CONTENT
from .code import FileImages, enroll
from .tools import function_tool

if TYPE_CHECKING:
    import pandas as pd
    from openai.types import VectorStore
    from openai.types.beta import Assistant, Thread
    from openai.types.beta.threads import Run
    from openai.types.beta.threads.required_action_function_tool_call import (
        RequiredActionFunctionToolCall,
    )

    from ._prompts import PromptView
    from .inspect import ThreadInspection
    from .render import RunView

_P = ParamSpec("_P")
_T = TypeVar("_T")

_RUN_TARGET = ("thread_id", "assistant_id")  # the session's current objects, not parameters


def _text(message: Any) -> str:
    return "".join(part.text.value for part in message.content if part.type == "text")


def _is_callable_tool(tool: Any) -> bool:
    return callable(tool) and not isinstance(tool, Mapping)


_MODEL_GOES = (
    "a model belongs to an assistant — Session(...).create_assistant(model) — or to one run — run(model=...)"
)
_TOOL_NAMES = ("code_interpreter", "file_search")


def _check_init(db: Any, unknown: dict[str, Any]) -> None:
    """``Session(...)``'s natural mistakes as a :class:`SessionError` saying where things go,
    not a bare ``TypeError`` (an unknown keyword) or a store silently made at a path named like
    a model (``Session("test/echo")``)."""
    if unknown:
        names = sorted(unknown)
        if "model" in unknown:
            raise SessionError(f"Session() takes no model: {_MODEL_GOES}.", param="model")
        accepted = [p for p in inspect.signature(Session).parameters if p != "unknown"]
        raise SessionError(
            f"Unknown parameter(s) for Session(): {', '.join(names)}. Accepted: {', '.join(accepted)}. "
            f"(Assistant and run settings go to create_assistant(...) and run(...).)",
            param=names[0],
        )
    if isinstance(db, str) and "://" not in db and db != ":memory:" and not Path(db).expanduser().exists():
        from ..models.registry import names_a_model

        if names_a_model(db) and Path(db).suffix == "":
            raise SessionError(
                f"Session({db!r}): the first argument is the store (a database file), and {db!r} "
                f"names a model: {_MODEL_GOES}.",
                param="db",
            )


# --- the session ---------------------------------------------------------------------------


def _async_twin(method: Callable[_P, _T], *, runs: bool = False) -> Callable[_P, Coroutine[Any, Any, _T]]:
    """``await``-able twin of a sync method: the same method, run in a worker thread.

    The sync API never needs the caller's loop, so a thread is all it takes; the context is
    copied, so a notebook's display output still lands in the awaiting cell. For methods that
    drive a run (``runs``), a cancelled await (an interrupt) cancels that run too.
    """

    async def twin(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        session = args[0]
        try:
            return await asyncio.to_thread(method, *args, **kwargs)
        except (asyncio.CancelledError, KeyboardInterrupt):
            if runs and isinstance(session, Session):
                session._stop.set()
                threading.Thread(target=session._cancel_quietly, daemon=True).start()
            raise

    twin.__name__ = twin.__qualname__ = f"a{method.__name__}"
    twin.__doc__ = f"Async twin of :meth:`{method.__name__}` (``await session.a{method.__name__}(...)``)."
    twin.__signature__ = inspect.signature(method)  # type: ignore[attr-defined]
    return twin


class Session(RunDriver):
    """Provider config plus the current assistant, thread and run; every operation chains.

    Where calls go:

    * default: the in-process engine on ``db`` (a SQLite path, ``":memory:"``, a SQLAlchemy
      URL, or None for ``$ASSISTANT_KIT_DB`` / ``~/.local/share/assistant_kit``). Model
      credentials are as in the SDK functions: ``custom_llm_provider`` (None/``"local"``,
      ``"openai"``, ``"azure"``), ``api_key``, ``api_base`` (an OpenAI-compatible Chat
      Completions server), ``api_version``, ``model_list`` (LiteLLM routes), ``timeout``.
    * ``base_url=``: a remote server speaking the Assistants API (the kit's proxy, Astra …),
      with ``api_key`` (or ``$OPENAI_API_KEY``) as its key. ``custom_llm_provider="openai"``
      with an explicit ``api_base`` means the same (the rule: :func:`assistant_kit.providers.decide`).
    * ``client=``: your own ``openai.OpenAI``.

    ``auto_tools``: run Python-function tools automatically (per call: ``run(auto_tools=)``).
    ``live``: the default RunView mode (``"widgets"``, ``"handles"``, ``"text"``, ``"static"``,
    None for automatic; ``$ASSISTANT_KIT_LIVE=0`` makes automatic static). Keys are kept in
    the client only; no repr shows them.
    """

    current: ClassVar[Session | None] = None
    """The most recently created session: the ``%%assistant`` magic continues it. A
    convenience for the magic only — how an object is shown never depends on it."""

    def __init__(
        self,
        db: str | os.PathLike[str] | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        custom_llm_provider: str | None = None,
        api_base: str | None = None,
        api_version: str | None = None,
        model_list: Iterable[dict[str, Any]] | None = None,
        timeout: float | None = None,
        max_retries: int = 2,
        client: openai.OpenAI | None = None,
        auto_tools: bool = False,
        live: str | bool | None = None,
        **unknown: Any,
    ):
        _check_init(db, unknown)
        quiet_sdk_deprecations()  # the SDK's "deprecated" on every call, shown under each cell
        self.auto_tools = auto_tools
        self.live = live
        self.functions: dict[str, Callable[..., Any]] = {}
        """Python callables the session runs for function tool calls, by tool name."""
        self._assistant: Assistant | None = None
        self._thread: Thread | None = None
        self._last_run: Run | None = None
        self._vector_store: VectorStore | None = None
        self._last_view: RunView | None = None
        self._view_cell: tuple[int, int] | None = None
        self._stop = threading.Event()
        self._config: list[tuple[str, str]] = []  # what the reprs show of the provider (no secrets)
        try:
            where = decide(
                custom_llm_provider,
                api_key=api_key,
                api_base=api_base,
                api_version=api_version,
                base_url=base_url,
            )
        except InvalidRequestError as exc:
            raise SessionError(exc.message, param=exc.param) from None
        if where.remote is not None and base_url is None and db is not None:
            raise SessionError(
                "custom_llm_provider='openai' with api_base means a remote Assistants server, which "
                "keeps its own store: drop db=, or leave custom_llm_provider unset to use api_base "
                "as an OpenAI-compatible model server for the local engine."
            )
        if client is not None:
            if not isinstance(client, openai.OpenAI):
                raise SessionError("client= must be an openai.OpenAI (the a* methods use it from a thread).")
            self.client = client
            self._config = [("remote", safe_url(str(client.base_url)))]
            self._where = f"the server at {self._config[0][1]}"
        elif where.remote is not None:
            if db is not None:
                raise SessionError("db= is for the local engine; a remote server keeps its own store.")
            try:
                self.client = openai.OpenAI(
                    api_key=where.api_key or "no-key",  # a server without keys takes any
                    base_url=where.remote,
                    timeout=openai.NOT_GIVEN if timeout is None else timeout,
                    max_retries=max_retries,
                )
            except openai.OpenAIError as exc:
                raise SessionError(str(exc)) from None
            self._config = [("remote", safe_url(where.remote))]
            self._where = f"the Assistants server at {self._config[0][1]}"
        else:
            from ..client import local_client
            from ..store import database_url

            self._config = [("local", db_label(database_url(db)))]
            if where.provider is not None:
                self._config.append(("provider", where.provider))
            if where.api_base:
                self._config.append(("api_base", safe_url(where.api_base)))
            self.client = local_client(
                db,
                custom_llm_provider=where.provider,
                api_key=where.api_key,
                api_base=where.api_base,
                api_version=where.api_version,
                model_list=model_list,
                timeout=timeout,
                max_retries=max_retries,
            )
            self._where = "the local engine"
        Session.current = self  # for the %%assistant magic only; nothing else reads it
        # Images the runs make (code_interpreter plots, image_file parts), fetched once each;
        # enrolled so the shared IPython formatters find this client for this session's files.
        self._files = FileImages(self.client)
        enroll(self._files)
        # The SDK objects a session hands out (assistant, thread, run …) show as cards in a
        # notebook without %load_ext; a no-op outside IPython. Registered once per shell: the
        # formatters pick the client per object, so a later session has nothing to replace.
        from .html import ensure_formatters

        ensure_formatters()

    # --- current objects ---------------------------------------------------------------------

    @property
    def assistant(self) -> Assistant | None:
        """The current assistant (an ``openai.types.beta.Assistant``), or None."""
        return self._assistant

    @property
    def thread(self) -> Thread | None:
        """The current thread, or None."""
        return self._thread

    @property
    def last_run(self) -> Run | None:
        """The last run this session started or resumed, as last seen (streamed or polled)."""
        return self._last_run

    @property
    def last_view(self) -> RunView | None:
        """The RunView that rendered the last run (``.to_html()``, ``.errors`` …)."""
        return self._last_view

    @property
    def pending_tool_calls(self) -> list[RequiredActionFunctionToolCall]:
        """The calls the last run waits for (status ``requires_action``), else ``[]``."""
        return pending(self._last_run)

    @property
    def answer(self) -> str:
        """The text of the assistant messages the last run created ("" before any run)."""
        run = self._last_run
        if run is None:
            return ""
        listing = self.client.beta.threads.messages.list
        messages = self._api(lambda: list(listing(run.thread_id, run_id=run.id, order="asc", limit=100)))
        return "\n\n".join(_text(m) for m in messages if m.role == "assistant")

    # --- assistants and threads --------------------------------------------------------------

    def create_assistant(
        self,
        model: str | None = None,
        *,
        name: str | None = None,
        instructions: str | None = None,
        tools: Iterable[dict[str, Any] | Callable[..., Any]] | None = None,
        **params: Any,
    ) -> Session:
        """Create an assistant and make it current. ``model`` None: the default model
        (``local/smollm2`` when installed; else an error listing the choices). ``tools`` may
        mix dict tools, Python functions and the names ``"code_interpreter"``/``"file_search"``.
        Other parameters (``description``, ``metadata``, ``temperature``, ``tool_resources`` …)
        go to ``assistants.create``."""
        if model is None:
            from ..models.registry import default_model

            try:
                model = default_model()
            except ModelConfigError as exc:
                raise SessionError(exc.message, param="model", code=exc.code) from None
        given = {"name": name, "instructions": instructions, "tools": self._tools(tools)}
        params.update({k: v for k, v in given.items() if v is not None})
        create = self.client.beta.assistants.create
        self._assistant = self._api(create, model=model, **self._checked(create, params))
        return self

    def get_assistant(self, assistant_id: str, *, functions: Iterable[Callable[..., Any]] = ()) -> Session:
        """Make an existing assistant current. ``functions``: the Python functions behind its
        function tools (by ``__name__``), for ``auto_tools``."""
        self._assistant = self._api(self.client.beta.assistants.retrieve, assistant_id)
        self.functions.update({fn.__name__: fn for fn in functions})
        return self

    def delete_assistant(self, assistant_id: str | None = None) -> Session:
        """Delete an assistant (the current one by default); threads are not touched."""
        target = assistant_id or self._require("assistant").id
        self._api(self.client.beta.assistants.delete, target)
        if self._assistant is not None and self._assistant.id == target:
            self._assistant = None
        return self

    def create_thread(self, messages: Iterable[dict[str, Any]] | None = None, **params: Any) -> Session:
        """Create a thread (optionally with first ``messages``) and make it current."""
        if messages is not None:
            params["messages"] = messages
        create = self.client.beta.threads.create
        self._thread = self._api(create, **self._checked(create, params))
        self._last_run = None
        return self

    def get_thread(self, thread_id: str) -> Session:
        """Make an existing thread current."""
        self._thread = self._api(self.client.beta.threads.retrieve, thread_id)
        self._last_run = None
        return self

    def add_message(
        self,
        content: str | Iterable[dict[str, Any]],
        *,
        role: str = "user",
        files: FilesArg = (),
        **params: Any,
    ) -> Session:
        """Add a message to the current thread (``attachments``, ``metadata`` pass through).

        ``files``: data for code_interpreter — paths, ``(name, bytes)`` pairs or ids of
        uploaded files (one, or a list). Each is uploaded (purpose ``"assistants"``) and
        attached to the message for code_interpreter, so the code finds it in its working
        directory under its name. Nothing is sent when one of them is missing."""
        thread = self._require("thread")
        self._check_not_waiting(thread.id)
        create = self.client.beta.threads.messages.create
        params = self._checked(create, params)
        uploads = file_sources(files)
        ids = [self._upload(source) for source in uploads]
        if ids:
            tools = [{"type": "code_interpreter"}]
            params["attachments"] = [
                *(params.get("attachments") or ()),
                *({"file_id": file_id, "tools": tools} for file_id in ids),
            ]
        self._api(create, thread.id, role=role, content=content, **params)
        return self

    def _upload(self, source: str | tuple[str, bytes | Path]) -> str:
        if isinstance(source, str):
            return source  # an uploaded file's id: the server checks that it exists and is ours
        name, data = source
        if isinstance(data, Path):
            with data.open("rb") as handle:
                return self._api(self.client.files.create, file=(name, handle), purpose="assistants").id
        return self._api(self.client.files.create, file=(name, data), purpose="assistants").id

    def save_file(self, file_id: str, path: str | os.PathLike[str] | None = None) -> Path:
        """Download a file — one the code wrote, a plot — to ``path`` (a file, or a directory to
        put it in under its own name; default: the current directory). Returns where it went.
        Only the last part of the server's file name is used: a name cannot climb directories."""
        target = Path(path) if path is not None else Path()
        if path is None or target.is_dir():
            info = self._api(self.client.files.retrieve, file_id)
            name = Path(str(info.filename)).name
            target = target / (name if name not in ("", ".", "..") else file_id)
        data = self._api(self.client.files.content, file_id).content
        target.write_bytes(data)
        return target

    # --- runs --------------------------------------------------------------------------------

    def run(
        self,
        *,
        stream: bool = True,
        live: str | bool | None = None,
        auto_tools: bool | None = None,
        **run_params: Any,
    ) -> Session:
        """Run the current assistant on the current thread and render it.

        ``stream=True`` streams the events through a RunView (``live`` picks its mode);
        ``stream=False`` polls (``create_and_poll``) and renders the final state once.
        ``auto_tools`` (default: the session's) runs the Python-function tools and resumes.
        ``run_params`` go to ``runs.create``: ``model``, ``instructions``,
        ``additional_instructions``, ``additional_messages``, ``tools`` (functions and names allowed),
        ``tool_choice``, ``temperature`` … A run that stops at ``requires_action`` leaves its
        calls in :attr:`pending_tool_calls` for :meth:`submit_tool_outputs`.

        ``include`` defaults to the file_search results' content, so that the view's citations
        can quote the chunks they cite (pass ``include=[]`` to leave them out).
        """
        assistant, thread = self._require("assistant"), self._require("thread")
        self._check_not_waiting(thread.id)
        if "tools" in run_params and run_params["tools"] is not None:
            run_params["tools"] = self._tools(run_params["tools"])
        run_params.setdefault("include", [SEARCH_CONTENT])
        runs = self.client.beta.threads.runs
        auto = self.auto_tools if auto_tools is None else auto_tools
        if not stream:
            params = self._checked(runs.create_and_poll, run_params, exclude=_RUN_TARGET)
            run = self._poll(runs.create_and_poll, thread_id=thread.id, assistant_id=assistant.id, **params)
            self._finish_polled(run, live, auto)
            return self
        params = self._checked(runs.create, run_params, exclude=("stream", *_RUN_TARGET))
        self._stop.clear()
        events = self._api(runs.create, thread_id=thread.id, assistant_id=assistant.id, stream=True, **params)
        self._stream(events, live, auto)
        return self

    def submit_tool_outputs(
        self,
        outputs: Mapping[str, Any] | Iterable[Mapping[str, Any]] | None = None,
        *,
        stream: bool = True,
        live: str | bool | None = None,
        auto_tools: bool | None = None,
    ) -> Session:
        """Answer the pending tool calls and resume the run (streamed into a new view).

        ``outputs``: ``{call_id: output}`` or a list of ``{"tool_call_id", "output"}``; an
        output that is not a str is sent as JSON. None: run the pending calls with the
        session's Python ``functions``.
        """
        run = self._last_run
        if run is None:
            raise SessionError("No run yet: call run() first.")
        if run.status != "requires_action":
            raise SessionError(
                f"The last run ({run.id}) is {run.status}; it waits for no tool outputs. "
                "Call run() to start a new one."
            )
        auto = self.auto_tools if auto_tools is None else auto_tools
        results: dict[str, tuple[str, bool]] = {}
        if outputs is None:
            missing = sorted({c.function.name for c in self.pending_tool_calls} - set(self.functions))
            if missing:
                raise SessionError(
                    f"No Python function for {', '.join(missing)}: pass outputs={{call_id: output}}."
                )
            tool_outputs = self._execute(run, None, results)
        else:
            items = (
                outputs.items()
                if isinstance(outputs, Mapping)
                else [(o["tool_call_id"], o["output"]) for o in outputs]
            )
            tool_outputs = [
                {"tool_call_id": call_id, "output": out if isinstance(out, str) else json.dumps(out)}
                for call_id, out in items
            ]
        runs = self.client.beta.threads.runs
        if not stream:
            run = self._poll(
                runs.submit_tool_outputs_and_poll,
                run_id=run.id,
                thread_id=run.thread_id,
                tool_outputs=tool_outputs,
            )
            self._finish_polled(run, live, auto, results)
            return self
        self._stop.clear()
        events = self._api(
            runs.submit_tool_outputs, run.id, thread_id=run.thread_id, tool_outputs=tool_outputs, stream=True
        )
        self._stream(events, live, auto, results)
        return self

    def cancel(self) -> Session:
        """Cancel the last run (active or waiting for tool outputs) and wait until it stops."""
        run = self._last_run
        if run is None:
            raise SessionError("No run to cancel: call run() first.")
        if run.status not in ACTIVE and run.status != "requires_action":
            raise SessionError(f"The last run ({run.id}) is already {run.status}; nothing to cancel.")
        runs = self.client.beta.threads.runs
        self._last_run = self._api(runs.cancel, run.id, thread_id=run.thread_id)
        self._last_run = self._api(runs.poll, run.id, thread_id=run.thread_id, poll_interval_ms=50)
        return self

    # --- vector stores ------------------------------------------------------------------------

    @property
    def vector_store(self) -> VectorStore | None:
        """The vector store :meth:`create_vector_store` made last (an ``openai.types.VectorStore``)."""
        return self._vector_store

    def create_vector_store(
        self,
        name: str = "",
        files: Iterable[Any] = (),
        *,
        progress: bool = True,
        timeout: float | None = None,
        **params: Any,
    ) -> Session:
        """Create a vector store from ``files`` — paths, ``(name, bytes)`` pairs or ids of
        uploaded files — and wait while they are ingested, showing progress (an HTML line in a
        notebook, text on stderr elsewhere; ``progress=False``: none). It becomes the store
        :meth:`search` searches. ``params``: ``chunking_strategy``, ``expires_after``,
        ``metadata``. Attach it to an assistant with ``tools=["file_search"],
        tool_resources={"file_search": {"vector_store_ids": [session.vector_store.id]}}``."""
        from .vector_stores import create_vector_store

        self._checked(self.client.vector_stores.create, params, exclude=("name", "file_ids"))
        self._vector_store = self._api(
            create_vector_store, self.client, name, files, progress=progress, timeout=timeout, **params
        )
        return self

    def search(
        self, query: str | list[str], *, vector_store_id: str | None = None, **options: Any
    ) -> pd.DataFrame:
        """Search a vector store (default: the session's :attr:`vector_store`, else the one the
        assistant or thread uses): a DataFrame of ``file``, ``score``, ``snippet`` (and
        ``file_id``, ``attributes``, ``text``), best first. ``options``: ``max_num_results``,
        ``filters``, ``ranking_options``, ``rewrite_query``."""
        from .vector_stores import attached_store_ids, search

        if vector_store_id is None:
            if self._vector_store is not None:
                vector_store_id = self._vector_store.id
            else:
                attached = attached_store_ids(self._assistant, self._thread)
                if not attached:
                    raise SessionError(
                        "No vector store to search: call create_vector_store(name, files=[...]) first "
                        "or pass vector_store_id=.",
                        param="vector_store_id",
                    )
                vector_store_id = attached[0]
        return self._api(search, self.client, vector_store_id, query, **options)

    def vector_stores(self) -> pd.DataFrame:
        """Every vector store of the store, newest first (:func:`tables.vector_stores`)."""
        from . import tables

        return self._api(tables.vector_stores, self.client)

    def vector_store_files(self, vector_store_id: str | None = None) -> pd.DataFrame:
        """The files of a vector store (default: the session's) with their ingestion status."""
        from . import tables

        if vector_store_id is None:
            if self._vector_store is None:
                raise SessionError("No vector store yet: call create_vector_store(name, files=[...]) first.")
            vector_store_id = self._vector_store.id
        return self._api(tables.vector_store_files, self.client, vector_store_id)

    # --- tables and inspection ---------------------------------------------------------------

    def messages(
        self, *, run_id: str | None = None, limit: int | None = None, order: str = "asc"
    ) -> pd.DataFrame:
        """The current thread's messages as a DataFrame (:func:`tables.messages`)."""
        from . import tables

        thread = self._require("thread")
        return self._api(tables.messages, self.client, thread.id, run_id=run_id, limit=limit, order=order)

    def runs(self) -> pd.DataFrame:
        """The current thread's runs as a DataFrame."""
        from . import tables

        return self._api(tables.runs, self.client, self._require("thread").id)

    def steps(self, run_id: str | None = None) -> pd.DataFrame:
        """Run steps of one run (default: every run of the current thread) as a DataFrame."""
        from . import tables

        return self._api(tables.steps, self.client, self._require("thread").id, run_id)

    def file_search_results(self, run_id: str | None = None) -> pd.DataFrame:
        """Every file_search result of one run (default: every run of the current thread), one
        row each, with its score and chunk (:func:`tables.file_search_results`)."""
        from . import tables

        return self._api(tables.file_search_results, self.client, self._require("thread").id, run_id)

    def threads(self) -> pd.DataFrame:
        """Every thread of the store, newest first."""
        from . import tables

        return self._api(tables.threads, self.client)

    def assistants(self) -> pd.DataFrame:
        """Every assistant of the store, newest first."""
        from . import tables

        return self._api(tables.assistants, self.client)

    def inspect(self) -> ThreadInspection:
        """The current thread's transcript, runs, steps and timeline (:func:`inspect.inspect`)."""
        from .inspect import inspect as inspect_thread

        return self._api(
            inspect_thread,
            self._require("thread"),
            client=self.client,
            files=self._files,
            assistant=self._assistant,
        )

    def prompt(self, object_id: str | None = None) -> PromptView:
        """What the model was sent: every model turn of run ``object_id``, or the turn that
        produced step ``object_id`` (default: the last run) — messages after truncation,
        instructions as merged, tools as offered, sampling parameters. Read from the engine's
        record (an assistant_kit extension, docs/inspection.md); renders as HTML and text."""
        from ._prompts import find_prompt

        thread = self._require("thread")
        if object_id is None:
            if self._last_run is None:
                raise SessionError("No run yet: pass a run or step id, or run() first.")
            object_id = self._last_run.id
        return self._api(find_prompt, self.client, thread.id, object_id)

    # --- async twins (top-level await) -------------------------------------------------------

    acreate_assistant = _async_twin(create_assistant)
    aget_assistant = _async_twin(get_assistant)
    adelete_assistant = _async_twin(delete_assistant)
    acreate_thread = _async_twin(create_thread)
    aget_thread = _async_twin(get_thread)
    aadd_message = _async_twin(add_message)
    asave_file = _async_twin(save_file)
    arun = _async_twin(run, runs=True)
    asubmit_tool_outputs = _async_twin(submit_tool_outputs, runs=True)
    acancel = _async_twin(cancel)
    acreate_vector_store = _async_twin(create_vector_store)

    # --- reprs -------------------------------------------------------------------------------

    def _fields(self) -> list[tuple[str, str]]:
        run, assistant = self._last_run, self._assistant
        model = (run.model if run else None) or (assistant.model if assistant else None)
        return [
            *self._config,
            ("model", model or "-"),
            ("assistant", assistant.id if assistant else "-"),
            ("thread", self._thread.id if self._thread else "-"),
            ("run", f"{run.id} ({run.status})" if run else "-"),
        ]

    def __repr__(self) -> str:
        return "Session(" + ", ".join(f"{k}={v!r}" for k, v in self._fields()) + ")"

    def _ipython_display_(self) -> None:
        """How IPython shows a session: its card (HTML, or ``repr`` as text) — except as the
        result of the cell that just rendered its run. ``Session(...)…run()`` ends a cell with
        the session itself, right under the run's transcript, whose header already says the
        run's status, id and model; a card there would only repeat it, so nothing is shown.
        The next cell (or a cell with no run) shows the card as always."""
        from .render import current_cell

        if self._view_cell is not None and self._view_cell == current_cell():
            return
        from IPython.display import display

        display({"text/html": self._repr_html_(), "text/plain": repr(self)}, raw=True)

    def _repr_html_(self) -> str:
        from .html import CARD_STYLE, escape

        rows = "".join(
            f"<tr><th style='text-align:left;padding-right:8px'>{escape(k)}</th>"
            f"<td><code>{escape(v)}</code></td></tr>"
            for k, v in self._fields()
        )
        return f'<div style="{CARD_STYLE}"><b>Session</b><table>{rows}</table></div>'

    # --- internals ---------------------------------------------------------------------------

    def _require(self, kind: str) -> Any:
        obj = self._assistant if kind == "assistant" else self._thread
        if obj is None:
            hint = "create_assistant(model)" if kind == "assistant" else "create_thread()"
            raise SessionError(f"No {kind} yet: call {hint} or get_{kind}(id) first.")
        return obj

    def _tools(self, tools: Iterable[Any] | None) -> list[Any] | None:
        """Dict tools as given; Python callables as function tools (and remembered to run);
        the built-in tools' names as their dicts (``"code_interpreter"`` →
        ``{"type": "code_interpreter"}``): the string is what one naturally writes, and the API's
        own answer to it ("Input should be a valid dictionary") does not say what to write."""
        if tools is None:
            return None
        if isinstance(tools, (str, Mapping)) or callable(tools):
            tools = [tools]  # one tool given alone
        converted = []
        for tool in tools:
            if isinstance(tool, str):
                if tool not in _TOOL_NAMES:
                    raise SessionError(
                        f"tools: unknown tool name {tool!r}. Built-in tools by name: "
                        f"{', '.join(repr(n) for n in _TOOL_NAMES)} (or {{'type': 'code_interpreter'}}); "
                        "a function tool is a Python function or a {'type': 'function', 'function': {...}} "
                        "dict.",
                        param="tools",
                    )
                tool = {"type": tool}
            elif _is_callable_tool(tool):
                spec = function_tool(tool)
                self.functions[spec["function"]["name"]] = tool
                tool = spec
            converted.append(tool)
        return converted
