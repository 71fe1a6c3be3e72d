"""What a run request asks for, checked and made into objects before anything is written: the
``Run`` a create request makes (its instructions, tools and sampling settings merged from the
request and its assistant) and the tool outputs a submission gives. Pure: the run executor
(:mod:`.runs`) stores and executes what this returns.
"""

from __future__ import annotations

from typing import Any

from openai.types.beta.threads import Run

from .._ids import new_id, now
from ..errors import InvalidRequestError
from . import defaults
from .shapes import build


def instructions(body: dict[str, Any], assistant: dict[str, Any]) -> str:
    """The run's instructions: the request's ``instructions`` replace the assistant's;
    ``additional_instructions`` are appended after a blank line."""
    text = body.get("instructions")
    if text is None:
        text = assistant.get("instructions") or ""
    if body.get("additional_instructions"):
        text = (text + "\n\n" if text else "") + body["additional_instructions"]
    return text


def new_run(
    thread_id: str,
    body: dict[str, Any],
    assistant: dict[str, Any],
    model_name: str,
    expiry_seconds: int,
) -> dict[str, Any]:
    """The ``queued`` run a create request makes (``tool_choice`` checked against its tools)."""
    tools = body["tools"] if body.get("tools") is not None else assistant.get("tools") or []
    choice = body.get("tool_choice") or "auto"
    check_tool_choice(choice, tools)
    created = now()
    return defaults.run(
        build(
            Run,
            id=new_id("run"),
            object="thread.run",
            created_at=created,
            thread_id=thread_id,
            assistant_id=assistant["id"],
            status="queued",
            model=model_name,
            instructions=instructions(body, assistant),
            tools=tools,
            tool_choice=choice,
            metadata=body.get("metadata") or {},
            parallel_tool_calls=body.get("parallel_tool_calls", True),
            response_format=_pick(body, assistant, "response_format") or "auto",
            temperature=_pick(body, assistant, "temperature"),
            top_p=_pick(body, assistant, "top_p"),
            max_prompt_tokens=body.get("max_prompt_tokens"),
            max_completion_tokens=body.get("max_completion_tokens"),
            truncation_strategy=body.get("truncation_strategy") or {"type": "auto", "last_messages": None},
            expires_at=created + expiry_seconds,
            usage=None,
            required_action=None,
            last_error=None,
            incomplete_details=None,
        )
    )


def check_tool_choice(choice: Any, tools: list[dict[str, Any]]) -> None:
    """A forced ``tool_choice`` must name one of the run's tools (400 otherwise)."""
    if not isinstance(choice, dict):
        if choice == "required" and not tools:
            raise InvalidRequestError(
                "Invalid 'tool_choice': 'required' needs at least one tool.", param="tool_choice"
            )
        return
    if choice["type"] == "function":
        name = choice["function"]["name"]
        names = [t["function"]["name"] for t in tools if t["type"] == "function"]
        if name not in names:
            raise InvalidRequestError(
                f"Invalid 'tool_choice': function '{name}' is not among the run's tools "
                f"({', '.join(names) or 'none'}).",
                param="tool_choice.function.name",
            )
    elif not any(t["type"] == choice["type"] for t in tools):
        raise InvalidRequestError(
            f"Invalid 'tool_choice': tool type '{choice['type']}' is not among the run's tools.",
            param="tool_choice.type",
        )


def not_waiting(run_id: str, status: str) -> InvalidRequestError:
    """The 400 for tool outputs submitted to a run that does not wait for them."""
    return InvalidRequestError(
        f"Runs in status '{status}' do not accept tool outputs; run {run_id} must be in 'requires_action'.",
        param="run_id",
    )


def tool_outputs(run: dict[str, Any], body: dict[str, Any]) -> dict[str, str]:
    """The outputs of a ``submit_tool_outputs`` body, by call id: exactly one for each call
    ``run`` (in ``requires_action``) waits for, else a 400 naming the bad item."""
    if run["status"] != "requires_action":
        raise not_waiting(run["id"], run["status"])
    run_id = run["id"]
    pending = [c["id"] for c in run["required_action"]["submit_tool_outputs"]["tool_calls"]]
    outputs: dict[str, str] = {}
    for index, item in enumerate(body["tool_outputs"]):
        call_id = item.get("tool_call_id")
        if call_id not in pending:
            raise InvalidRequestError(
                f"Invalid 'tool_outputs[{index}].tool_call_id': no pending tool call "
                f"'{call_id}' in run {run_id} (pending: {', '.join(pending)}).",
                param=f"tool_outputs[{index}].tool_call_id",
            )
        if call_id in outputs:
            raise InvalidRequestError(
                f"Duplicate output for tool call '{call_id}'.",
                param=f"tool_outputs[{index}].tool_call_id",
            )
        outputs[call_id] = item.get("output") or ""
    missing = [c for c in pending if c not in outputs]
    if missing:
        raise InvalidRequestError(
            f"Missing tool outputs for: {', '.join(missing)}. Submit all outputs at once.",
            param="tool_outputs",
        )
    return outputs


def _pick(body: dict[str, Any], assistant: dict[str, Any], key: str) -> Any:
    value = body.get(key)
    return value if value is not None else assistant.get(key)
