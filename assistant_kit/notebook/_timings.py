"""The engine's inspection extension as the notebook reads it: millisecond timings and prompts.

The wire's timestamps are whole Unix seconds, so runs that take a few hundred milliseconds all
start at "0 s" and last "0.0 s". An assistant_kit engine also keeps milliseconds (created,
started, first token, ended; per step the time spent in built-in tools) and what each model
turn was sent, and serves them beside the wire objects (docs/inspection.md):

* ``GET /threads/{thread_id}/runs/{run_id}/inspection`` — one run: ``timings``, ``steps``
  (per-step timings) and ``prompts``;
* ``GET /runs`` and ``GET /runs/steps`` — wire objects of the whole store, each with an extra
  ``"timings"`` key.

Any other server answers these with 404, and runs made before the engine kept milliseconds
(or imported threads) carry ``null`` timings: the frames then fall back to the wire's seconds
and say so (``resolution`` ``"s"``), and unknown values stay unknown (``NaN``/``NaT``), never 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import openai

from ..errors import SessionError

_BETA = {"OpenAI-Beta": "assistants=v2"}
TIMING_KEYS = ("created_at_ms", "started_at_ms", "first_token_at_ms", "ended_at_ms")


def run_inspection(client: openai.OpenAI, thread_id: str, run_id: str) -> dict[str, Any] | None:
    """The inspection object of one run, or None where the server has no such route (404)."""
    try:
        found = client.get(
            f"/threads/{thread_id}/runs/{run_id}/inspection", cast_to=object, options={"headers": _BETA}
        )
    except openai.NotFoundError:
        return None
    return found if isinstance(found, dict) else None


def inspections(client: openai.OpenAI, thread_id: str, run_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The inspection of every run in ``run_ids`` (one request each), by run id. The first 404
    stops the walk: the run was just listed, so the server lacks the route, not the run."""
    found: dict[str, dict[str, Any]] = {}
    for run_id in run_ids:
        item = run_inspection(client, thread_id, run_id)
        if item is None:
            break
        found[run_id] = item
    return found


def with_timings(items: list[dict[str, Any]], found: dict[str, dict[str, Any]]) -> None:
    """Give each listed run (in place) the ``timings`` of its inspection, as ``GET /runs`` does."""
    for item in items:
        inspection = found.get(item.get("id", ""))
        if inspection is not None and "timings" not in item:
            item["timings"] = inspection.get("timings")


def step_timings(found: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The per-step timings of every inspection, by step id."""
    return {s["step_id"]: s for i in found.values() for s in i.get("steps") or () if s.get("step_id")}


def with_step_timings(items: list[dict[str, Any]], by_step: dict[str, dict[str, Any]]) -> None:
    for item in items:
        if "timings" not in item and item.get("id") in by_step:
            item["timings"] = by_step[item["id"]]


def ms(obj: dict[str, Any], key: str) -> int | None:
    """``obj["timings"][key]`` (an int of Unix milliseconds) or None when unknown."""
    value = (obj.get("timings") or {}).get(key)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def seconds_ms(obj: dict[str, Any], *keys: str) -> int | None:
    """The first of the wire's second fields ``keys`` that is set, in milliseconds."""
    for key in keys:
        value = obj.get(key)
        if value is not None:
            return int(value) * 1000
    return None


def not_found(what: str, exc: openai.NotFoundError | None = None) -> SessionError:
    """The error for a server without an inspection route (an SDK 404, or a None from above)."""
    detail = f" (404: {exc.message})" if exc is not None else " (404)"
    return SessionError(
        f"{what} is an assistant_kit extension this server does not have{detail}; "
        "an assistant_kit engine or proxy serves it (docs/inspection.md)."
    )
