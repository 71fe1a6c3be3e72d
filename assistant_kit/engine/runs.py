"""The run executor: every state change of a run happens in this file.

::

    queued → in_progress → completed | incomplete | failed
                         → requires_action → (submit_tool_outputs) → queued → in_progress …
    any active state → cancelling → cancelled;   any active state past expires_at → expired

A run executes as an asyncio task on the engine's loop, independent of the HTTP request
that created it (a client that disconnects does not stop it). Each model turn becomes a
``message_creation`` step and/or a ``tool_calls`` step, persisted as it starts and as it
ends. Events are published to the :class:`EventHub` as they happen, after the store has
the state they describe, so a client that reacts to an event and re-reads sees it.

Built-in tools (``code_interpreter``, ``file_search``) are offered to the model as
functions; until their executors land, a run whose model calls one fails with a
``last_error`` that says so, rather than pretending.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from openai.types.beta.threads import Message, Run
from openai.types.beta.threads.runs import RunStep

from .._ids import new_id, now
from ..errors import AssistantKitError, ModelError
from ..models.base import BaseChatModel, Finish, ModelRequest, TextDelta, ToolCallDelta, Usage
from ..models.registry import ProviderSettings

if TYPE_CHECKING:
    from .core import Engine

log = logging.getLogger("assistant_kit.runs")

TERMINAL = frozenset({"completed", "incomplete", "failed", "cancelled", "expired"})

BUILTIN_TOOLS: dict[str, dict[str, Any]] = {
    "code_interpreter": {
        "name": "code_interpreter",
        "description": "Write and run Python code. Returns what the code prints.",
        "parameters": {
            "type": "object",
            "properties": {"code": {"type": "string", "description": "Python source to run."}},
            "required": ["code"],
        },
    },
    "file_search": {
        "name": "file_search",
        "description": "Search the files attached to this assistant or thread.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "required": ["query"],
        },
    },
}


def build(cls: type[Any], /, **fields: Any) -> dict[str, Any]:
    """Validate ``fields`` as an ``openai.types.beta`` model and return its wire dict."""
    return cls.model_validate(fields).model_dump(mode="json")


def text_content(value: str) -> dict[str, Any]:
    return {"type": "text", "text": {"value": value, "annotations": []}}


def _sort_key(obj: dict[str, Any]) -> str:
    return obj["id"].split("_", 1)[1]


@dataclass
class RunHandle:
    """What this process holds for a run it is executing (never persisted: credentials)."""

    run: dict[str, Any]
    settings: ProviderSettings
    model: BaseChatModel
    task: asyncio.Task[None] | None = None
    stop_reason: str | None = None  # "cancelled" | "expired" when we interrupt the task
    expiry: asyncio.TimerHandle | None = None
    open_steps: list[dict[str, Any]] = field(default_factory=list)
    open_message: dict[str, Any] | None = None


class RunExecutor:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.store = engine.store
        self.hub = engine.hub
        self.handles: dict[str, RunHandle] = {}

    # -- entry points ------------------------------------------------------------------

    def start(
        self, run: dict[str, Any], settings: ProviderSettings, model: BaseChatModel, *, resumed: bool = False
    ) -> None:
        """Execute (or resume, after tool outputs) ``run`` in the background."""
        handle = self.handles.get(run["id"])
        if handle is None:
            handle = RunHandle(run, settings, model)
            self.handles[run["id"]] = handle
            delay = max(0.0, run["expires_at"] - now()) if run.get("expires_at") else None
            if delay is not None:
                loop = asyncio.get_running_loop()
                handle.expiry = loop.call_later(delay, self._expire, run["id"])
        else:
            handle.run, handle.settings, handle.model = run, settings, model
        handle.task = asyncio.create_task(self._activate(handle, resumed), name=run["id"])

    async def cancel(self, run: dict[str, Any]) -> dict[str, Any]:
        """``runs.cancel``: interrupt a live run, or settle one nobody is executing."""
        handle = self.handles.get(run["id"])
        if handle and handle.task and not handle.task.done():
            handle.run["status"] = "cancelling"
            await self._save_run(handle.run)
            self._publish_run(handle.run)
            handle.stop_reason = "cancelled"
            handle.task.cancel()
            return copy.deepcopy(handle.run)
        # requires_action, or queued/in_progress in a process that is gone.
        return await self._settle(run, handle, "cancelled")

    async def expire_if_due(self, run: dict[str, Any]) -> dict[str, Any]:
        """Reads call this: a run past ``expires_at`` that nobody here executes is expired."""
        if run["status"] in TERMINAL or not run.get("expires_at") or run["expires_at"] > now():
            return run
        handle = self.handles.get(run["id"])
        if handle and handle.task and not handle.task.done():
            return run  # our watchdog will do it
        return await self._settle(run, handle, "expired")

    def _expire(self, run_id: str) -> None:
        handle = self.handles.get(run_id)
        if handle is None:
            return
        if handle.task and not handle.task.done():
            handle.stop_reason = "expired"
            handle.task.cancel()
        elif handle.run["status"] not in TERMINAL:
            asyncio.get_running_loop().create_task(self._settle(handle.run, handle, "expired"))

    # -- one activation: queued → in_progress → … ----------------------------------------

    async def _activate(self, handle: RunHandle, resumed: bool) -> None:
        run = handle.run
        try:
            if not resumed:
                self._publish_run(run, "thread.run.created")
            self._publish_run(run)  # queued
            run["status"] = "in_progress"
            run["started_at"] = run.get("started_at") or now()
            await self._save_run(run)
            self._publish_run(run)
            await self._turns(handle)
        except asyncio.CancelledError:
            await asyncio.shield(self._interrupted(handle))
        except ModelError as exc:
            await asyncio.shield(self._fail(handle, exc.code or "server_error", exc.message))
        except AssistantKitError as exc:
            await asyncio.shield(self._fail(handle, exc.code or "server_error", exc.message))
        except Exception as exc:  # a bug of ours must still not leave the run in_progress
            log.exception("run %s crashed", run["id"])
            await asyncio.shield(
                self._fail(handle, "server_error", f"Internal error: {type(exc).__name__}: {exc}")
            )
        finally:
            if run["status"] in TERMINAL:
                self._forget(run["id"])

    def _forget(self, run_id: str) -> None:
        handle = self.handles.pop(run_id, None)
        if handle and handle.expiry:
            handle.expiry.cancel()

    async def _turns(self, handle: RunHandle) -> None:
        run = handle.run
        while True:
            usage = run.get("usage") or {}
            limit = run.get("max_completion_tokens")
            used = usage.get("completion_tokens", 0)
            if limit is not None and used >= limit:
                return await self._incomplete(handle, "max_completion_tokens")
            request = await self._request(handle, None if limit is None else limit - used)
            if request is None:
                return await self._incomplete(handle, "max_prompt_tokens")
            finish, calls = await self._turn(handle, request)
            if calls:
                builtin = [
                    c["function"]["name"] for c in calls if c["function"]["name"] in request.builtin_tools
                ]
                if builtin:
                    return await self._fail(
                        handle,
                        "server_error",
                        f"This run needs the {builtin[0]} tool, which assistant_kit accepts and "
                        "stores but cannot execute yet. Remove it from the assistant's tools or "
                        "use function tools.",
                    )
                return await self._requires_action(handle, calls)
            if finish == "length":
                return await self._incomplete(handle, "max_completion_tokens")
            run["status"] = "completed"
            run["completed_at"] = now()
            await self._save_run(run)
            self._publish_run(run)
            return

    async def _request(self, handle: RunHandle, max_tokens: int | None) -> ModelRequest | None:
        """The chat-format request for the next turn, or None if it cannot fit the budget."""
        run = handle.run
        strategy = run.get("truncation_strategy") or {}
        last = strategy.get("last_messages") if strategy.get("type") == "last_messages" else None
        messages = await self.store.thread_messages(run["thread_id"], last)
        steps = [
            s
            for s in (
                await self.store.list("thread.run.step", run_id=run["id"], order="asc", limit=1000)
            ).data
            if s["type"] == "tool_calls"
        ]
        history: list[dict[str, Any]] = []
        for obj in sorted(messages + steps, key=_sort_key):
            if obj["object"] == "thread.message":
                history.append({"role": obj["role"], "content": _message_text(obj)})
            else:
                calls = obj["step_details"]["tool_calls"]
                history.append(
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": c["id"],
                                "type": "function",
                                "function": {
                                    "name": c["function"]["name"],
                                    "arguments": c["function"]["arguments"],
                                },
                            }
                            for c in calls
                        ],
                    }
                )
                history.extend(
                    {"role": "tool", "tool_call_id": c["id"], "content": c["function"]["output"] or ""}
                    for c in calls
                )
        system = [{"role": "system", "content": run["instructions"]}] if run.get("instructions") else []
        budget = run.get("max_prompt_tokens")
        if budget is not None:
            budget -= (run.get("usage") or {}).get("prompt_tokens", 0)
            # Drop the oldest history until the estimate fits (tool rounds stay whole).
            while history and handle.model.count_tokens(system + history) > budget:
                history.pop(0)
                while history and history[0]["role"] == "tool":
                    history.pop(0)
            if not history:
                return None
        tools, builtin = [], set()
        for tool in run.get("tools") or []:
            if tool["type"] == "function":
                tools.append({"type": "function", "function": tool["function"]})
            elif tool["type"] in BUILTIN_TOOLS:
                tools.append({"type": "function", "function": BUILTIN_TOOLS[tool["type"]]})
                builtin.add(tool["type"])
        choice = run.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") in BUILTIN_TOOLS:
            choice = {"type": "function", "function": {"name": choice["type"]}}
        fmt = run.get("response_format")
        return ModelRequest(
            messages=system + history,
            tools=tools,
            tool_choice=None if choice in (None, "auto") and not tools else choice,
            parallel_tool_calls=run.get("parallel_tool_calls", True),
            response_format=None if fmt in (None, "auto") else fmt,
            temperature=run.get("temperature"),
            top_p=run.get("top_p"),
            max_tokens=max_tokens,
            builtin_tools=builtin,
        )

    async def _turn(self, handle: RunHandle, request: ModelRequest) -> tuple[str, list[dict[str, Any]]]:
        """One model turn: stream it into a message and/or a tool-calls step."""
        run = handle.run
        rid = run["id"]
        text_parts: list[str] = []
        message = step = tool_step = None
        calls: list[dict[str, Any]] = []
        positions: dict[int, int] = {}
        finish = "stop"
        usage = Usage(0, 0)
        async with contextlib.aclosing(handle.model.stream(request)) as events:
            async for event in events:
                if isinstance(event, TextDelta):
                    if not event.text:
                        continue
                    if message is None:
                        step, message = await self._open_message(handle)
                    text_parts.append(event.text)
                    self.hub.publish(
                        rid,
                        "thread.message.delta",
                        {
                            "id": message["id"],
                            "object": "thread.message.delta",
                            "delta": {
                                "content": [
                                    {
                                        "index": 0,
                                        "type": "text",
                                        "text": {"value": event.text, "annotations": []},
                                    }
                                ]
                            },
                        },
                    )
                elif isinstance(event, ToolCallDelta):
                    if tool_step is None:
                        tool_step = await self._open_step(
                            handle, "tool_calls", {"type": "tool_calls", "tool_calls": []}
                        )
                    if event.index not in positions:
                        positions[event.index] = len(calls)
                        call = {
                            "id": event.id or new_id("call"),
                            "type": "function",
                            "function": {"name": event.name or "", "arguments": "", "output": None},
                        }
                        calls.append(call)
                        self._publish_step_delta(
                            rid,
                            tool_step,
                            {
                                "index": positions[event.index],
                                "id": call["id"],
                                "type": "function",
                                "function": {
                                    "name": call["function"]["name"],
                                    "arguments": "",
                                    "output": None,
                                },
                            },
                        )
                    if event.arguments:
                        calls[positions[event.index]]["function"]["arguments"] += event.arguments
                        self._publish_step_delta(
                            rid,
                            tool_step,
                            {
                                "index": positions[event.index],
                                "type": "function",
                                "function": {"arguments": event.arguments},
                            },
                        )
                elif isinstance(event, Usage):
                    usage = event
                elif isinstance(event, Finish):
                    finish = event.reason
        if message is None and tool_step is None:
            step, message = await self._open_message(handle)  # an empty answer is still a turn
        self._add_usage(run, usage)
        step_usage = _usage_dict(usage)
        if message is not None and step is not None:
            message["content"] = [text_content("".join(text_parts))]
            if finish == "length":
                message.update(
                    status="incomplete", incomplete_at=now(), incomplete_details={"reason": "max_tokens"}
                )
            else:
                message.update(status="completed", completed_at=now())
            step.update(status="completed", completed_at=now(), usage=None if tool_step else step_usage)
            await self.store.put_many([("thread.message", message), ("thread.run.step", step)])
            handle.open_message = None
            handle.open_steps.remove(step)
            self.hub.publish(rid, f"thread.message.{message['status']}", copy.deepcopy(message))
            self.hub.publish(rid, "thread.run.step.completed", copy.deepcopy(step))
        if tool_step is not None:
            tool_step["step_details"]["tool_calls"] = calls
            tool_step["usage"] = step_usage
            await self.store.put("thread.run.step", tool_step)
        return finish, calls

    async def _open_message(self, handle: RunHandle) -> tuple[dict[str, Any], dict[str, Any]]:
        run = handle.run
        message = build(
            Message,
            id=new_id("msg"),
            object="thread.message",
            created_at=now(),
            thread_id=run["thread_id"],
            run_id=run["id"],
            assistant_id=run["assistant_id"],
            role="assistant",
            status="in_progress",
            content=[],
            attachments=[],
            metadata={},
        )
        step = await self._open_step(
            handle,
            "message_creation",
            {"type": "message_creation", "message_creation": {"message_id": message["id"]}},
            also=[("thread.message", message)],
        )
        handle.open_message = message
        self.hub.publish(run["id"], "thread.message.created", copy.deepcopy(message))
        self.hub.publish(run["id"], "thread.message.in_progress", copy.deepcopy(message))
        return step, message

    async def _open_step(
        self,
        handle: RunHandle,
        kind: str,
        details: dict[str, Any],
        also: list[tuple[str, dict[str, Any]]] = (),
    ) -> dict[str, Any]:
        run = handle.run
        step = build(
            RunStep,
            id=new_id("step"),
            object="thread.run.step",
            created_at=now(),
            run_id=run["id"],
            assistant_id=run["assistant_id"],
            thread_id=run["thread_id"],
            type=kind,
            status="in_progress",
            step_details=details,
            metadata={},
            expired_at=None,
        )
        await self.store.insert_many([("thread.run.step", step), *also])
        handle.open_steps.append(step)
        self.hub.publish(run["id"], "thread.run.step.created", copy.deepcopy(step))
        self.hub.publish(run["id"], "thread.run.step.in_progress", copy.deepcopy(step))
        return step

    def _publish_step_delta(self, run_id: str, step: dict[str, Any], call: dict[str, Any]) -> None:
        self.hub.publish(
            run_id,
            "thread.run.step.delta",
            {
                "id": step["id"],
                "object": "thread.run.step.delta",
                "delta": {"step_details": {"type": "tool_calls", "tool_calls": [call]}},
            },
        )

    # -- hand-offs and endings ---------------------------------------------------------

    async def _requires_action(self, handle: RunHandle, calls: list[dict[str, Any]]) -> None:
        run = handle.run
        run["status"] = "requires_action"
        run["required_action"] = {
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {
                "tool_calls": [
                    {
                        "id": c["id"],
                        "type": "function",
                        "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]},
                    }
                    for c in calls
                ]
            },
        }
        await self._save_run(run)
        self._publish_run(run)

    async def submit_tool_outputs(
        self, run: dict[str, Any], step: dict[str, Any], outputs: dict[str, str]
    ) -> None:
        """Fill the pending step's outputs; the run goes back to ``queued``."""
        for call in step["step_details"]["tool_calls"]:
            call["function"]["output"] = outputs[call["id"]]
        step.update(status="completed", completed_at=now())
        run.update(status="queued", required_action=None)
        await self.store.put_many([("thread.run.step", step), ("thread.run", run)])
        handle = self.handles.get(run["id"])
        if handle:
            handle.open_steps = [s for s in handle.open_steps if s["id"] != step["id"]]
        self.hub.publish(run["id"], "thread.run.step.completed", copy.deepcopy(step))

    async def _incomplete(self, handle: RunHandle, reason: str) -> None:
        run = handle.run
        run.update(status="incomplete", incomplete_details={"reason": reason}, completed_at=None)
        await self._close_open(handle, "incomplete")
        await self._save_run(run)
        self._publish_run(run)

    async def _fail(self, handle: RunHandle, code: str, message: str) -> None:
        # The wire allows three codes; the message keeps the precise reason.
        code = code if code in ("rate_limit_exceeded", "invalid_prompt") else "server_error"
        run = handle.run
        run.update(
            status="failed",
            failed_at=now(),
            required_action=None,
            last_error={"code": code, "message": message},
        )
        await self._close_open(handle, "failed", {"code": code, "message": message})
        await self._save_run(run)
        self._publish_run(run)

    async def _interrupted(self, handle: RunHandle) -> None:
        reason = handle.stop_reason or "cancelled"
        run = handle.run
        run["status"] = reason
        run["required_action"] = None
        if reason == "cancelled":
            run["cancelled_at"] = now()
        await self._close_open(handle, reason)
        await self._save_run(run)
        self._publish_run(run)

    async def _settle(self, run: dict[str, Any], handle: RunHandle | None, status: str) -> dict[str, Any]:
        """End a run that has no live task (waiting for tool outputs, or orphaned)."""
        if handle is None:
            steps = (await self.store.list("thread.run.step", run_id=run["id"], order="asc", limit=100)).data
            handle = RunHandle(
                run,
                ProviderSettings(),
                BaseChatModel(),
                open_steps=[s for s in steps if s["status"] == "in_progress"],
            )
        handle.run = run
        handle.stop_reason = status
        await self._interrupted(handle)
        self._forget(run["id"])
        return copy.deepcopy(run)

    async def _close_open(self, handle: RunHandle, status: str, error: dict[str, str] | None = None) -> None:
        """Close whatever step/message the run left open when it stopped."""
        items: list[tuple[str, dict[str, Any]]] = []
        stamp = now()
        step_status = {"incomplete": "cancelled"}.get(status, status)
        stamp_field = {"cancelled": "cancelled_at", "failed": "failed_at", "expired": "expired_at"}.get(
            step_status, "cancelled_at"
        )
        for step in handle.open_steps:
            step.update({"status": step_status, stamp_field: stamp})
            if error:
                step["last_error"] = error
            items.append(("thread.run.step", step))
        message = handle.open_message
        if message is not None:
            reason = "max_tokens" if status == "incomplete" else f"run_{status}"
            message.update(status="incomplete", incomplete_at=stamp, incomplete_details={"reason": reason})
            items.append(("thread.message", message))
        if items:
            await self.store.put_many(items)
        rid = handle.run["id"]
        if message is not None:
            self.hub.publish(rid, "thread.message.incomplete", copy.deepcopy(message))
        for step in handle.open_steps:
            self.hub.publish(rid, f"thread.run.step.{step_status}", copy.deepcopy(step))
        handle.open_steps = []
        handle.open_message = None

    # -- helpers -----------------------------------------------------------------------

    async def _save_run(self, run: dict[str, Any]) -> None:
        await self.store.put("thread.run", run)

    def _publish_run(self, run: dict[str, Any], event: str | None = None) -> None:
        self.hub.publish(run["id"], event or f"thread.run.{run['status']}", copy.deepcopy(run))

    @staticmethod
    def _add_usage(run: dict[str, Any], usage: Usage) -> None:
        total = run.get("usage") or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        total = {
            "prompt_tokens": total["prompt_tokens"] + usage.prompt_tokens,
            "completion_tokens": total["completion_tokens"] + usage.completion_tokens,
        }
        total["total_tokens"] = total["prompt_tokens"] + total["completion_tokens"]
        run["usage"] = total


def _usage_dict(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def _message_text(message: dict[str, Any]) -> str:
    parts = []
    for part in message.get("content") or []:
        if part["type"] == "text":
            parts.append(part["text"]["value"])
        elif part["type"] == "image_url":
            parts.append(f"[image: {part['image_url']['url']}]")
        elif part["type"] == "image_file":
            parts.append(f"[image file: {part['image_file']['file_id']}]")
    return "\n".join(parts)


__all__ = ["TERMINAL", "Run", "RunExecutor", "build", "text_content"]
