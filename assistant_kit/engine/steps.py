"""What a run writes into its thread besides its own row: its steps, the assistant messages
they create, and the events that announce them, from opening to closing. Every change of a
step's or of a run's message's state is made here, by :class:`RunSteps` (one per run this
process executes, owned by the run executor, :mod:`.runs`, which alone calls it) and by
:func:`answer_tool_step`.

Each model turn becomes a ``message_creation`` step (with its message) and/or a ``tool_calls``
step. :meth:`RunSteps.stream_turn` streams the model's output into them —
``thread.message.delta`` for text, ``thread.run.step.delta`` for tool calls as their arguments
arrive — and :meth:`RunSteps.end_turn` closes them, persisting each object as it opens and as
it ends, and publishing each event after the store has the state it describes (so a client
that reacts to an event and re-reads sees it). The outputs of this run's ``code_interpreter``
calls (:mod:`.code_calls`) are recorded in their step here too (:class:`CodeOutputs`), and
its ``file_search`` calls' results (:mod:`.search_calls`) announced (:meth:`RunSteps.searched`). The
answer's content carries the ``file_path`` annotations and images of those calls. The images
come first, then the text, as the hosted API ordered them — client code reads a plot as
``content[0].image_file`` — and the streamed deltas use the same indexes: the images' delta
right after ``thread.message.in_progress``, then the text at the index after them. In a run
with ``file_search``, the text streams through :class:`.citations.CitationStream`: citation
markers go out with their ``file_citation`` annotation in the same delta (resolved against
the results of the run's file_search steps as stored), invented ones never go out. When a run
stops with a step or message still open, :meth:`RunSteps.close_open` closes them.

The run's own status (and its ``usage``) never changes here: :mod:`.runs` decides when a turn
happens and how the run ends, and writes what :meth:`~RunSteps.close_open` closed in the same
transaction as the run's final state — as it writes the step :func:`answer_tool_step`
completes (the client's outputs) in the compare-and-set that requeues the run, so that of two
concurrent submissions only one lands. Kept apart so that runs.py reads as the run's state
machine, and this module as the wire shape of what a run produces.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from openai.types.beta.threads import Message
from openai.types.beta.threads.runs import RunStep

from .._ids import new_id, now
from ..models.base import Finish, ModelRequest, TextDelta, ToolCallDelta, Usage
from ..tools import code_interpreter as ci
from . import search_calls, shapes
from .citations import CitationStream, annotation_delta, run_results
from .code_calls import StreamedInput
from .shapes import build, text_content
from .timings import STEP, Timings, now_ms

if TYPE_CHECKING:
    from ..models.base import BaseChatModel
    from ..store import AsyncStore

Publish = Callable[[str, str, Any], None]  # (run id, event, data): EventHub.publish
Items = list[tuple[str, dict[str, Any]]]  # (kind, object) pairs, written in one transaction


@dataclass
class Turn:
    """What one model turn produced, between :meth:`RunSteps.stream_turn` and
    :meth:`RunSteps.end_turn`."""

    finish: str
    calls: list[dict[str, Any]]
    tool_step: dict[str, Any] | None
    usage: Usage
    message: dict[str, Any] | None = None
    step: dict[str, Any] | None = None  # the message's message_creation step
    text: list[str] = field(default_factory=list)
    # The JSON arguments of the turn's file_search calls, by call id (the wire call has no
    # field for them; the search records the queries it ran).
    arguments: dict[str, str] = field(default_factory=dict)
    cite: CitationStream | None = None  # its citation markers, when the run has file_search


class RunSteps:
    """The open steps and message of one run in this process, and what its code made since
    its last answer: every change of their state happens in a method of this class."""

    def __init__(
        self,
        run: dict[str, Any],
        store: AsyncStore,
        publish: Publish,
        *,
        open_steps: list[dict[str, Any]] | None = None,
        open_message: dict[str, Any] | None = None,
    ):
        self.run_id: str = run["id"]
        self.thread_id: str = run["thread_id"]
        self.assistant_id: str = run["assistant_id"]
        self.store = store
        self.publish = publish
        self.open_steps: list[dict[str, Any]] = open_steps or []
        self.open_message = open_message
        self.open_text: list[str] = []  # text streamed into open_message
        self.open_citations: list[dict[str, Any]] = []  # its file_citation annotations so far
        # file_search: markers in the answers become file_citation annotations (.citations).
        self.cites = any(t.get("type") == "file_search" for t in run.get("tools") or [])
        self.open_images: list[dict[str, Any]] = []  # its image_file parts, first
        # code_interpreter: images not yet shown in a message (file ids), files the code wrote
        # (for file_path annotations).
        self.made_images: list[str] = []
        self.made_files: list[dict[str, Any]] = []
        # Millisecond timings of the run and its steps, written with the next write of either.
        self.timings = Timings()
        # The model turn streaming (or last streamed): what it opened, also if it was cut short.
        self.turn: Turn | None = None

    def __repr__(self) -> str:
        return f"<RunSteps run={self.run_id} open={len(self.open_steps)}>"

    @classmethod
    async def left_open(cls, run: dict[str, Any], store: AsyncStore, publish: Publish) -> RunSteps:
        """The steps and message ``run`` left open, read back from the store (a run no task of
        this process executes, about to be ended)."""
        rid = run["id"]
        steps = (await store.list("thread.run.step", run_id=rid, order="asc", limit=100)).data
        messages = (
            await store.list("thread.message", thread_id=run["thread_id"], run_id=rid, limit=100)
        ).data
        return cls(
            run,
            store,
            publish,
            open_steps=[s for s in steps if s["status"] == "in_progress"],
            open_message=next((m for m in messages if m["status"] == "in_progress"), None),
        )

    def _publish(self, event: str, data: dict[str, Any]) -> None:
        self.publish(self.run_id, event, data)

    # -- a model turn ------------------------------------------------------------------

    async def stream_turn(self, model: BaseChatModel, request: ModelRequest) -> Turn:
        """Stream one model turn into a message and/or a tool-calls step (opened as they
        start). Returns the turn; :meth:`end_turn` closes what it opened."""
        turn = self.turn = Turn("stop", [], None, Usage(0, 0))
        self.open_text = turn.text
        calls = turn.calls
        positions: dict[int, int] = {}
        inputs: dict[int, StreamedInput] = {}  # code_interpreter calls, by position
        async with contextlib.aclosing(model.stream(request)) as events:
            async for event in events:
                if isinstance(event, TextDelta):
                    if not event.text:
                        continue
                    if turn.message is None:
                        turn.step, turn.message = await self.open_answer(first_token=True)
                        turn.cite = await self.citation_stream()
                    if turn.cite is None:
                        self._send_text(turn, event.text, [])
                    else:
                        self._send_text(turn, *turn.cite.feed(event.text))
                elif isinstance(event, ToolCallDelta):
                    if turn.tool_step is None:
                        turn.tool_step = await self.open_step(
                            "tool_calls", {"type": "tool_calls", "tool_calls": []}, first_token=True
                        )
                    step_id = turn.tool_step["id"]
                    if event.index not in positions:
                        position = positions[event.index] = len(calls)
                        call_id = event.id or new_id("call")
                        if event.name == ci.NAME and ci.NAME in request.builtin_tools:
                            call = shapes.code_call(call_id)
                            inputs[position] = StreamedInput()
                        elif event.name == search_calls.NAME and search_calls.NAME in request.builtin_tools:
                            call = search_calls.new_call(call_id)
                            turn.arguments[call_id] = ""
                        else:
                            call = shapes.function_call(call_id, event.name or "")
                        calls.append(call)
                        self._step_delta(step_id, {"index": position, **copy.deepcopy(call)})
                    position = positions[event.index]
                    if position in inputs:
                        text = inputs[position].feed(event.arguments)
                        calls[position]["code_interpreter"]["input"] = inputs[position].input
                        if text:
                            self._step_delta(step_id, shapes.code_input_delta(position, text))
                    elif calls[position]["type"] == search_calls.NAME:
                        turn.arguments[calls[position]["id"]] += event.arguments
                    elif event.arguments:
                        calls[position]["function"]["arguments"] += event.arguments
                        self._step_delta(step_id, shapes.function_arguments_delta(position, event.arguments))
                elif isinstance(event, Usage):
                    turn.usage = event
                elif isinstance(event, Finish):
                    turn.finish = event.reason
        if turn.cite is not None:  # what it held back (a marker cut short at the end)
            self._send_text(turn, *turn.cite.finish())
        for position, streamed in inputs.items():
            text = streamed.finish()
            calls[position]["code_interpreter"]["input"] = streamed.input
            if text and turn.tool_step is not None:
                self._step_delta(turn.tool_step["id"], shapes.code_input_delta(position, text))
        if turn.message is None and turn.tool_step is None:
            turn.step, turn.message = await self.open_answer()  # an empty answer is still a turn
        return turn

    async def end_turn(self, turn: Turn) -> None:
        """Close the turn's message (and its step) and record its tool calls and usage in its
        tool-calls step, which stays open until its calls are answered."""
        message, step, tool_step = turn.message, turn.step, turn.tool_step
        step_usage = shapes.usage(turn.usage.prompt_tokens, turn.usage.completion_tokens)
        if message is not None and step is not None:
            citations = turn.cite.annotations if turn.cite is not None else []
            message["content"] = self.answer_content("".join(turn.text), citations)
            if turn.finish == "length":
                message.update(
                    status="incomplete", incomplete_at=now(), incomplete_details={"reason": "max_tokens"}
                )
            else:
                message.update(status="completed", completed_at=now())
            ended = self.timings.stamp(STEP, step["id"], "ended_at_ms")
            step.update(status="completed", completed_at=ended, usage=None if tool_step else step_usage)
            await self.store.put_many(
                [("thread.message", message), ("thread.run.step", step)], marks=self.timings.take()
            )
            self.open_message = None
            self.open_images = []
            self.open_citations = []
            self.open_steps.remove(step)
            self._publish(f"thread.message.{message['status']}", copy.deepcopy(message))
            self._publish("thread.run.step.completed", copy.deepcopy(step))
        if tool_step is not None:
            tool_step["step_details"]["tool_calls"] = turn.calls
            tool_step["usage"] = step_usage
            await self.store.put("thread.run.step", tool_step, marks=self.timings.take())

    def answer_content(self, text: str, citations: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
        """The answer's content: the images the code showed since the last answer (announced
        when the message opened), then its text, with its ``file_citation`` annotations (in
        the order and at the indexes they streamed with) and then ``file_path`` annotations
        for the files this run's code wrote and the text names."""
        content = text_content(text)
        content["text"]["annotations"] = copy.deepcopy(list(citations))
        if self.made_files:
            content["text"]["annotations"] += ci.file_annotations(text, self.made_files)
        return [*copy.deepcopy(self.open_images), content]

    def _send_text(self, turn: Turn, text: str, citations: list[dict[str, Any]]) -> None:
        """Stream ``text`` into the turn's message with the citations that complete in it."""
        if not text and not citations:
            return
        assert turn.message is not None
        turn.text.append(text)
        first = len(turn.cite.annotations) - len(citations) if turn.cite is not None else 0
        entries = [annotation_delta(a, first + n) for n, a in enumerate(citations)]
        self._publish(
            "thread.message.delta",
            shapes.text_delta(turn.message["id"], len(self.open_images), text, entries),
        )

    async def citation_stream(self) -> CitationStream | None:
        """Where the opening answer's citation markers resolve: the results of this run's
        file_search calls so far, read from its steps as stored (None: the run has no
        file_search tool, its text goes out untouched)."""
        if not self.cites:
            return None
        steps: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            page = await self.store.list(
                "thread.run.step", run_id=self.run_id, order="asc", limit=100, after=after
            )
            steps += page.data
            if not page.has_more:
                break
            after = page.last_id
        stream = CitationStream(run_results(steps))
        self.open_citations = stream.annotations
        return stream

    # -- opening -----------------------------------------------------------------------

    async def open_answer(self, first_token: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
        """Open an assistant message and its ``message_creation`` step (``first_token``: as
        :meth:`open_step`)."""
        message = build(
            Message,
            id=new_id("msg"),
            object="thread.message",
            created_at=now(),
            thread_id=self.thread_id,
            run_id=self.run_id,
            assistant_id=self.assistant_id,
            role="assistant",
            status="in_progress",
            content=[],
            attachments=[],
            metadata={},
        )
        step = await self.open_step(
            "message_creation",
            {"type": "message_creation", "message_creation": {"message_id": message["id"]}},
            also=[("thread.message", message)],
            first_token=first_token,
        )
        self.open_message = message
        self._publish("thread.message.created", copy.deepcopy(message))
        self._publish("thread.message.in_progress", copy.deepcopy(message))
        self._take_images(message)
        return step, message

    def _take_images(self, message: dict[str, Any]) -> None:
        """The images not yet shown become the opening message's first parts, announced in one
        delta (indexes 0…n-1) before any of its text."""
        self.open_images = [
            {"type": "image_file", "image_file": {"file_id": file_id, "detail": "auto"}}
            for file_id in self.made_images
        ]
        self.made_images = []
        if self.open_images:
            self._publish("thread.message.delta", shapes.parts_delta(message["id"], self.open_images))

    async def open_step(
        self,
        kind: str,
        details: dict[str, Any],
        also: Sequence[tuple[str, dict[str, Any]]] = (),
        *,
        first_token: bool = False,
    ) -> dict[str, Any]:
        """Open a step (with ``also``, in one transaction). ``first_token``: the model's first
        token of the step is what opens it — its time (and the run's, if it is the run's first)
        goes into the same transaction, so any reader of the store, another replica included,
        sees it from the moment the step exists, with no write of its own."""
        step_id = new_id("step")
        created_at = self.timings.stamp(STEP, step_id, "created_at_ms")
        if first_token:
            self.timings.first_token(self.run_id, step_id)
        step = build(
            RunStep,
            id=step_id,
            object="thread.run.step",
            created_at=created_at,
            run_id=self.run_id,
            assistant_id=self.assistant_id,
            thread_id=self.thread_id,
            type=kind,
            status="in_progress",
            step_details=details,
            metadata={},
            expired_at=None,
        )
        await self.store.insert_many([("thread.run.step", step), *also], marks=self.timings.take())
        self.open_steps.append(step)
        self._publish("thread.run.step.created", copy.deepcopy(step))
        self._publish("thread.run.step.in_progress", copy.deepcopy(step))
        return step

    def _step_delta(self, step_id: str, call: dict[str, Any]) -> None:
        self._publish("thread.run.step.delta", shapes.step_delta(step_id, call))

    # -- tool calls the engine runs ----------------------------------------------------

    def code_outputs(self, step: dict[str, Any], call: dict[str, Any]) -> CodeOutputs:
        """Where the outputs of ``call`` (a code_interpreter call of ``step``) go as it runs."""
        index = next(i for i, c in enumerate(step["step_details"]["tool_calls"]) if c["id"] == call["id"])
        return CodeOutputs(self, step["id"], index, call)

    async def save(self, step: dict[str, Any]) -> None:
        """Persist ``step`` as it is now (its code calls' outputs, say)."""
        await self.store.put("thread.run.step", step, marks=self.timings.take())

    def tool_time(self, step: dict[str, Any]) -> Any:
        """Wrap the execution of a built-in tool call of ``step`` (``with steps.tool_time(step):``)
        to count it in the step's ``tool_ms``; written with the step's next write."""
        return self.timings.tool_time(step["id"])

    async def open_search(self, call_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Open a tool-calls step with one file_search call the engine makes itself (the
        pre-turn search of a model that cannot call tools): no model turn, no tokens."""
        # Opened empty, the call announced by its delta, as a model's call is: the SDK adds a
        # delta's fields to the step it was created with (an id in both would be doubled).
        step = await self.open_step("tool_calls", {"type": "tool_calls", "tool_calls": []})
        call = search_calls.new_call(call_id)
        step["step_details"]["tool_calls"].append(call)
        step["usage"] = shapes.usage(0, 0)
        self._step_delta(step["id"], {"index": 0, **copy.deepcopy(call)})
        return step, call

    async def searched(self, step: dict[str, Any], call: dict[str, Any]) -> None:
        """``call`` (a file_search call of ``step``) has its results: stored, then announced
        in the call's second delta."""
        index = next(i for i, c in enumerate(step["step_details"]["tool_calls"]) if c["id"] == call["id"])
        await self.store.put("thread.run.step", step, marks=self.timings.take())
        self._step_delta(step["id"], search_calls.results_delta(index, call))

    def hold_failure(self, step: dict[str, Any], failure: str) -> None:
        """A code call of ``step`` failed in the sandbox while its function calls wait for the
        client: the step fails once their outputs are in (:func:`answer_tool_step`)."""
        step["last_error"] = {"code": "server_error", "message": failure}

    async def end_tool_step(self, step: dict[str, Any], failure: str | None) -> None:
        """A tool-calls step the engine answered itself is over: ``completed``, or ``failed``
        with the sandbox's reason (the run goes on either way)."""
        ended = self.timings.stamp(STEP, step["id"], "ended_at_ms")
        if failure:
            step.update(
                status="failed", failed_at=ended, last_error={"code": "server_error", "message": failure}
            )
        else:
            step.update(status="completed", completed_at=ended)
        await self.store.put("thread.run.step", step, marks=self.timings.take())
        if step in self.open_steps:
            self.open_steps.remove(step)
        self._publish(f"thread.run.step.{step['status']}", copy.deepcopy(step))

    def answered(self, step_id: str) -> None:
        """The client's outputs closed step ``step_id`` (:func:`answer_tool_step`, written by
        the executor): it is no longer open here."""
        self.open_steps = [s for s in self.open_steps if s["id"] != step_id]

    # -- closing -----------------------------------------------------------------------

    def close_open(self, status: str, error: dict[str, str] | None = None) -> tuple[Items, Items]:
        """Close whatever step/message the run left open when it stopped: the objects to write
        and the events to publish once written."""
        items: Items = []
        ms = now_ms()
        stamp = ms // 1000
        step_status = {"incomplete": "cancelled"}.get(status, status)
        stamp_field = {"cancelled": "cancelled_at", "failed": "failed_at", "expired": "expired_at"}.get(
            step_status, "cancelled_at"
        )
        for step in self.open_steps:
            step.update({"status": step_status, stamp_field: stamp})
            self.timings.mark(STEP, step["id"], "ended_at_ms", ms)
            if error:
                step["last_error"] = error
            items.append(("thread.run.step", step))
        message = self.open_message
        if message is not None:
            if self.open_text or self.open_images:  # stopped mid-answer: keep what was sent as deltas
                text = [text_content("".join(self.open_text))] if self.open_text else []
                if text:
                    text[0]["text"]["annotations"] = copy.deepcopy(self.open_citations)
                message["content"] = [*self.open_images, *text]
            reason = "max_tokens" if status == "incomplete" else f"run_{status}"
            message.update(status="incomplete", incomplete_at=stamp, incomplete_details={"reason": reason})
            items.append(("thread.message", message))
        events: Items = []
        if message is not None:
            events.append(("thread.message.incomplete", copy.deepcopy(message)))
        for step in self.open_steps:
            events.append((f"thread.run.step.{step_status}", copy.deepcopy(step)))
        self.open_steps = []
        self.open_message = None
        self.open_images = []
        self.open_citations = []
        return items, events


class CodeOutputs:
    """The outputs of one code_interpreter call as it runs (:class:`.code_calls.CallOutputs`):
    logs accumulate in one ``logs`` output, as the hosted tool returned them; each image is an
    output of its own, announced once stored as a file."""

    def __init__(self, steps: RunSteps, step_id: str, index: int, call: dict[str, Any]):
        self.steps = steps
        self.step_id = step_id
        self.index = index
        self.outputs: list[dict[str, Any]] = call["code_interpreter"]["outputs"]
        self.logs: dict[str, Any] | None = None

    @property
    def logs_text(self) -> str:
        return self.logs["logs"] if self.logs is not None else ""

    def _announce(self, output: dict[str, Any], at: int) -> None:
        self.steps._step_delta(self.step_id, shapes.code_output_delta(self.index, output, at))

    def add_logs(self, text: str) -> None:
        if not text:
            return
        if self.logs is None:
            self.logs = {"type": "logs", "logs": ""}
            self.outputs.append(self.logs)
        self.logs["logs"] += text
        self._announce({"type": "logs", "logs": text}, self.outputs.index(self.logs))

    def add_image(self, file_id: str) -> int:
        self.outputs.append({"type": "image", "image": {"file_id": file_id}})
        return len(self.outputs) - 1

    def image_stored(self, at: int) -> None:
        self._announce(self.outputs[at], at)
        self.steps.made_images.append(self.outputs[at]["image"]["file_id"])

    def file_kept(self, file: dict[str, Any]) -> None:
        self.steps.made_files.append(file)


def answer_tool_step(step: dict[str, Any], outputs: dict[str, str]) -> None:
    """Fill a ``requires_action`` step's function outputs (the client's) and end it: failed
    if one of its code calls failed in the sandbox, else completed. The executor writes it
    in the same compare-and-set as the run it requeues."""
    for call in step["step_details"]["tool_calls"]:
        if call["type"] == "function":  # code_interpreter calls of the step have their outputs
            call["function"]["output"] = outputs[call["id"]]
    if step.get("last_error"):  # a code_interpreter call of the step failed in the sandbox
        step.update(status="failed", failed_at=now())
    else:
        step.update(status="completed", completed_at=now())
