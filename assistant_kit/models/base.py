"""The one small interface every model backend implements.

A backend turns a chat-format request into an async stream of events: text deltas,
tool-call deltas, usage, finish. The run executor owns everything else (steps, messages,
SSE); a backend never sees the store. Non-streaming use drains the stream.
(Shape borrowed from simonw/llm's ``execute()`` generator and pydantic-ai's one-method
``Model``.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any


def content_text(content: Any) -> str:
    """The text of a chat message's ``content``: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


@dataclass
class ModelRequest:
    """A model turn in Chat Completions terms.

    ``messages`` use the chat format (``role``/``content``/``tool_calls``/``tool_call_id``);
    ``tools`` are chat function tools; ``tool_choice`` is ``"auto" | "none" | "required"`` or
    ``{"type": "function", "function": {"name": ...}}``; ``max_tokens`` is what is left of
    the run's ``max_completion_tokens`` budget (None = no limit).
    """

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool = True
    response_format: dict[str, Any] | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    # Names among ``tools`` that stand for the Assistants built-ins (code_interpreter, …)
    # rather than the caller's functions; scripted models leave them alone.
    builtin_tools: set[str] = field(default_factory=set)


@dataclass
class TextDelta:
    text: str


@dataclass
class ToolCallDelta:
    """A fragment of one tool call. The first fragment for an ``index`` carries ``id`` and
    ``name``; later ones only ``arguments`` text (the Chat Completions streaming shape)."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass
class Finish:
    """End of the turn: ``stop``, ``length`` (token budget hit) or ``tool_calls``."""

    reason: str


ModelEvent = TextDelta | ToolCallDelta | Usage | Finish


class BaseChatModel:
    """Subclass and implement :meth:`stream`.

    ``stream`` must stop promptly when the consuming task is cancelled (the executor
    cancels it for ``runs.cancel``). Raise :class:`assistant_kit.errors.ModelError` for
    upstream failures; set ``retryable=True`` only when nothing has been yielded yet.
    """

    name: str = "model"
    #: Whether the model can be trusted to call tools when they help. False (the embedded
    #: 135M model): the engine searches the run's files with the latest user message before
    #: the model's first turn and gives it the results as that tool round (``file_search``
    #: only; see docs/file-search.md), instead of waiting for a call that rarely comes right.
    calls_tools: bool = True

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        raise NotImplementedError

    def count_tokens(self, messages: list[dict[str, Any]]) -> int:
        """Estimate prompt tokens, used to fit ``max_prompt_tokens`` before a turn.

        The default is the common ~4 characters per token rule plus a few tokens of
        per-message overhead; backends with a tokenizer override it.
        """
        total = 0
        for message in messages:
            content = message.get("content") or ""
            if not isinstance(content, str):
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            total += len(content) // 4 + 4
            for call in message.get("tool_calls") or []:
                total += len(call["function"]["arguments"]) // 4 + 4
        return total

    def count_completion_tokens(self, text: str, tool_calls: list[tuple[str, str]]) -> int:
        """Estimate the tokens of what a turn generated: its ``text`` and its tool calls as
        ``(name, arguments)``. Used when an upstream reports no usage (many OpenAI-compatible
        servers send none in a stream), so a run counts what it produced rather than 0.

        The default applies :meth:`count_tokens`' rule, ~4 characters per token, rounded up
        per piece (a one-character answer is still a token); backends with a tokenizer
        override it.
        """
        pieces = [text, *(name + arguments for name, arguments in tool_calls)]
        return sum(-(-len(piece) // 4) for piece in pieces if piece)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
