"""How a :class:`~.session.Session` drives a run: stream it into a view, run its tools, stop it.

``Session.run`` / ``submit_tool_outputs`` decide *what* to start; :class:`RunDriver` (a base
of ``Session``) carries it through to the end:

* **Streamed runs.** The SDK's event stream feeds one :class:`~.render.RunView`; each
  ``thread.run.*`` event becomes ``last_run``, so the session always knows the run as last
  seen. A stream that ends while the run is still active is followed by one ``retrieve``
  (the real state, not a guess). A failed run's trailing ``error`` event only repeats its
  ``last_error`` and is not raised: a failed run is data, shown by the view.
* **The tool-call loop.** With ``auto_tools``, a run that reaches ``requires_action`` and
  asks only for functions the session knows has them run here (:func:`~.tools.call_tool`:
  arguments validated; an exception becomes the output ``"Error: <Type>: <message>"``), the
  outputs submitted, and the resumed run streamed into the *same* view — one cell, one
  conversation. Calls for a function the session lacks leave the run waiting
  (``pending_tool_calls``), and :meth:`RunDriver._check_not_waiting` turns the server's
  "active run" conflict into an error that says what to do.
* **Polled runs** (``stream=False``). ``*_and_poll`` waits; the final state — steps,
  messages, tool results, then the run — is then replayed as the SDK's own stream events
  through a RunView, so a polled run renders exactly like a streamed one that ended.
* **Cancellation**, from wherever it comes: the view's Cancel button and an interrupted
  ``await session.arun()`` (which sets ``_stop`` from another thread; the stream is then
  read on to its cancelled end) cancel without waiting; a ``KeyboardInterrupt`` in a
  blocking call cancels *and waits*, so ``last_run`` says the run stopped. Errors while
  cancelling are ignored: the run may have ended meanwhile.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import openai
import pydantic

from ..errors import SessionError
from ._boundary import Boundary, explain
from .citations import SEARCH_CONTENT
from .tools import call_tool

if TYPE_CHECKING:
    from openai import Stream
    from openai.types.beta import Assistant, AssistantStreamEvent
    from openai.types.beta.threads import Run
    from openai.types.beta.threads.required_action_function_tool_call import (
        RequiredActionFunctionToolCall,
    )

    from .code import FileImages
    from .render import RunView

ACTIVE = frozenset({"queued", "in_progress", "cancelling"})


def pending(run: Run | None) -> list[RequiredActionFunctionToolCall]:
    """The function calls ``run`` waits for (status ``requires_action``), else ``[]``."""
    if run is None or run.status != "requires_action" or run.required_action is None:
        return []
    return list(run.required_action.submit_tool_outputs.tool_calls)


@functools.cache
def _event_adapter() -> pydantic.TypeAdapter[Any]:
    from openai.types.beta import AssistantStreamEvent

    return pydantic.TypeAdapter(AssistantStreamEvent)


def event(name: str, data: Any) -> AssistantStreamEvent:
    """The SDK's stream event ``name`` carrying ``data`` (to replay a polled run)."""
    return _event_adapter().validate_python({"event": name, "data": data})


class RunDriver(Boundary):
    """The run-driving half of a ``Session``; the session's ``__init__`` sets these up."""

    client: openai.OpenAI
    live: str | bool | None
    functions: dict[str, Callable[..., Any]]
    _assistant: Assistant | None
    _last_run: Run | None
    _last_view: RunView | None
    _view_cell: tuple[int, int] | None  # the IPython cell the last view rendered in
    _stop: threading.Event
    _files: FileImages

    def _poll(self, call: Callable[..., Run], **kwargs: Any) -> Run:
        """A ``*_and_poll`` call; an interrupt cancels the thread's active run (the one polled)."""
        try:
            return self._api(call, **kwargs)
        except KeyboardInterrupt:
            try:
                latest = self.client.beta.threads.runs.list(kwargs["thread_id"], limit=1, order="desc")
            except openai.APIError:
                raise KeyboardInterrupt from None
            if latest.data:
                self._last_run = latest.data[0]
                self._cancel_quietly(wait=True)
            raise

    def _check_not_waiting(self, thread_id: str) -> None:
        """A clear error (instead of the server's "active run") while our run waits for tools."""
        run = self._last_run
        if run is None or run.status != "requires_action" or run.thread_id != thread_id:
            return
        run = self._last_run = self._api(self.client.beta.threads.runs.retrieve, run.id, thread_id=thread_id)
        if run.status == "requires_action":
            names = ", ".join(c.function.name for c in pending(run))
            raise SessionError(
                f"The last run ({run.id}) waits for tool outputs ({names}): call "
                "submit_tool_outputs({call_id: output}) (or submit_tool_outputs() to run the session's "
                "functions), or cancel() it, first."
            )

    def _view(self, live: str | bool | None) -> RunView:
        from .render import RunView, current_cell

        mode = self.live if live is None else live
        if mode is True:
            mode = None
        elif mode is False:
            mode = "static"
        assistant = self._assistant
        title = (assistant.name or assistant.model) if assistant else ""
        self._last_view = RunView(mode, title=title, on_cancel=self._cancel_quietly, files=self._files)
        self._view_cell = current_cell()
        return self._last_view

    def _can_run_tools(self, run: Run) -> bool:
        calls = pending(run)
        return bool(calls) and all(c.function.name in self.functions for c in calls)

    def _execute(
        self, run: Run, view: RunView | None, results: dict[str, tuple[str, bool]]
    ) -> list[dict[str, str]]:
        outputs = []
        for call in pending(run):
            output, failed = call_tool(self.functions[call.function.name], call.function.arguments)
            results[call.id] = (output, failed)
            if view is not None:
                view.on_tool_result(call.id, output, error=failed)
            outputs.append({"tool_call_id": call.id, "output": output})
        return outputs

    def _stream(
        self,
        events: Stream[AssistantStreamEvent],
        live: str | bool | None,
        auto: bool,
        results: dict[str, tuple[str, bool]] | None = None,
    ) -> None:
        """Feed a run's events to one view; with ``auto``, run the tools and keep going."""
        view = self._view(live)
        if results and self._last_run is not None:  # outputs run before this view: show the calls first
            view.on_event(event("thread.run.requires_action", self._last_run))
            for call_id, (output, failed) in results.items():
                view.on_tool_result(call_id, output, error=failed)
        try:
            run = self._consume(events, view)
            while auto and self._can_run_tools(run):
                outputs = self._execute(run, view, {})
                submit = self.client.beta.threads.runs.submit_tool_outputs
                events = self._api(submit, run.id, thread_id=run.thread_id, tool_outputs=outputs, stream=True)
                run = self._consume(events, view)
        except SessionError as exc:
            view.on_error(exc.message)
            raise
        except KeyboardInterrupt:
            self._cancel_quietly(wait=True)
            view.on_error("Interrupted: the run was cancelled.")
            raise
        finally:
            view.close(self._last_run)

    def _consume(self, events: Stream[AssistantStreamEvent], view: RunView) -> Run:
        failed = False
        cancelled = False
        with events:
            try:
                for item in events:
                    name = item.event
                    if name.startswith("thread.run.") and not name.startswith("thread.run.step."):
                        self._last_run = item.data  # type: ignore[assignment]
                        failed = name == "thread.run.failed"
                    view.on_event(item)
                    if self._stop.is_set() and not cancelled:
                        cancelled = True
                        self._cancel_quietly()
            except openai.APIError as exc:
                if not failed:  # a failed run's ``error`` event only repeats its last_error
                    raise explain(exc, self._where) from None
        run = self._last_run
        if run is None:
            raise SessionError(f"No run events came from {self._where}.")
        if run.status in ACTIVE:  # the stream ended early: read the run's real state
            run = self._last_run = self._api(
                self.client.beta.threads.runs.retrieve, run.id, thread_id=run.thread_id
            )
        return run

    def _finish_polled(
        self,
        run: Run,
        live: str | bool | None,
        auto: bool,
        results: dict[str, tuple[str, bool]] | None = None,
    ) -> None:
        """After ``*_and_poll``: run tools while allowed, then render the final state once."""
        results = dict(results or {})
        self._last_run = run
        runs = self.client.beta.threads.runs
        while auto and self._can_run_tools(run):
            outputs = self._execute(run, None, results)
            run = self._poll(
                runs.submit_tool_outputs_and_poll,
                run_id=run.id,
                thread_id=run.thread_id,
                tool_outputs=outputs,
            )
            self._last_run = run
        self._render_final(run, live, results)

    def _render_final(self, run: Run, live: str | bool | None, results: dict[str, tuple[str, bool]]) -> None:
        """Replay a polled run's final state — its steps, messages and tool results, then the
        run — through a RunView, so a polled run looks like a streamed one that ended."""
        view = self._view(live)
        threads = self.client.beta.threads
        try:
            steps = self._api(
                lambda: list(
                    threads.runs.steps.list(
                        run.id, thread_id=run.thread_id, order="asc", include=[SEARCH_CONTENT]
                    )
                )
            )
            messages = self._api(
                lambda: list(threads.messages.list(run.thread_id, run_id=run.id, order="asc"))
            )
        except SessionError as exc:
            view.on_error(exc.message)
            view.close(run)
            raise
        by_id = {m.id: m for m in messages}
        for step in steps:
            details = step.step_details
            if details.type == "message_creation" and details.message_creation.message_id in by_id:
                message = by_id[details.message_creation.message_id]
                view.on_event(event(f"thread.message.{message.status}", message))
            if details.type != "tool_calls":
                view.on_event(event(f"thread.run.step.{step.status}", step))
                continue
            # The calls first, then each output as a tool result (so errors are marked as such).
            bare = step.model_copy(deep=True)
            calls = [c for c in bare.step_details.tool_calls if c.type == "function"]  # type: ignore[union-attr]
            outputs = {c.id: c.function.output for c in calls}
            for call in calls:
                call.function.output = None
            view.on_event(event(f"thread.run.step.{step.status}", bare))
            for call_id, output in outputs.items():
                if output is not None:
                    view.on_tool_result(call_id, output, error=call_id in results and results[call_id][1])
        view.on_event(event(f"thread.run.{run.status}", run))
        view.close(run)

    def _cancel_quietly(self, wait: bool = False) -> None:
        """Cancel the active run, if any, ignoring errors (the view's Cancel button, an
        interrupt); ``wait``: until it has stopped, so ``last_run`` says so."""
        run = self._last_run
        if run is None or (run.status not in ACTIVE and run.status != "requires_action"):
            return
        runs = self.client.beta.threads.runs
        try:
            runs.cancel(run.id, thread_id=run.thread_id)
            if wait:
                self._last_run = runs.poll(run.id, thread_id=run.thread_id, poll_interval_ms=50)
        except openai.APIError:
            pass
