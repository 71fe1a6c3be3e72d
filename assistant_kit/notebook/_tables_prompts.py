"""The prompts table: what each model turn of a run was sent, one row per message of each
request, from the engine's record (``GET …/inspection``, flattened by
:func:`._prompts.prompt_rows`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import openai

from . import _timings
from ._prompts import prompt_rows
from ._tables_base import Column, _field, _frame, _pandas

if TYPE_CHECKING:
    import pandas as pd

PROMPTS = (
    _field("turn", "tokens"),
    _field("index", "tokens"),
    _field("role"),
    _field("content"),
    _field("tool_call_id"),
    _field("tokens", "tokens"),
    _field("tokens_source"),
    _field("step_ids"),
    _field("model"),
    Column("created_at", lambda r: r.get("created_at_ms"), "ms"),
    _field("truncated"),
)


def prompts(client: openai.OpenAI, thread_id: str, run_id: str) -> pd.DataFrame:
    """What each model turn of a run was sent (the engine's record: ``GET …/inspection``,
    an assistant_kit extension), one row per message of each request: turn (0-based), index
    (in the request), role, content (text; a tool round's calls as ``→ name(arguments)`` lines),
    tool_call_id, tokens, tokens_source, step_ids (the steps that turn produced), model,
    created_at, truncated (the record was cut to its size cap). Empty when the engine records
    no prompts (``frame.attrs["note"]`` says why).

    ``tokens`` is an estimate — the request records text, not token counts — made the way the
    engine fits ``max_prompt_tokens``: ~4 characters per token plus 4 per message
    (``tokens_source`` says so); the turn's real prompt total is its step's usage.
    """
    _pandas()
    found = _timings.run_inspection(client, thread_id, run_id)
    if found is None:
        raise _timings.not_found(f"GET /threads/{thread_id}/runs/{run_id}/inspection")
    frame = _frame(PROMPTS, prompt_rows(found))
    if not found.get("record_prompts", True):
        frame.attrs["note"] = "prompt recording is off on this engine (record_prompts)"
    return frame
