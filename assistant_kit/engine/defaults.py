"""The values the hosted API filled in where a request left a field out.

Code written against the hosted API reads them back (``assistant.temperature * 2``,
``tool.file_search.ranking_options.ranker``, ``for key in thread.tool_resources``), so an
object here carries what the hosted one carried, not ``null``:

- ``temperature`` and ``top_p``: ``1.0`` on assistants, and on runs when neither the run
  nor its assistant set them (the sampling defaults the model then used);
- ``tool_resources``: ``{}`` on assistants and threads that have none;
- a ``file_search`` tool: its ``file_search`` object with the default ranking options — the
  ranker as the hosted API reported it once resolved (``default_2024_08_21``; a request may
  still say ``auto``) and ``score_threshold`` 0.0; ``max_num_results`` stays unset (its
  default depended on the model);
- a ``function`` tool: ``strict: false``.

Applied to the wire dict once it is built (``steps.build`` dumps every unset field as null, so
this also drops the nulls the hosted API did not send inside ``tool_resources`` and a
``file_search`` tool's options), when objects are written: create, update, a run copying its
assistant's tools. Objects stored before this module existed read as they were stored until
next written.
"""

from __future__ import annotations

import copy
from typing import Any

TEMPERATURE = 1.0
TOP_P = 1.0
RANKER = "default_2024_08_21"
SCORE_THRESHOLD = 0.0


def tools(items: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """``items`` with each tool's defaults filled in (a copy; the input is not changed)."""
    out = []
    for tool in copy.deepcopy(items or []):
        if tool.get("type") == "file_search":
            options = _present(tool.get("file_search"))
            ranking = _present(options.get("ranking_options"))
            ranking.setdefault("ranker", RANKER)
            ranking.setdefault("score_threshold", SCORE_THRESHOLD)
            options["ranking_options"] = ranking
            tool["file_search"] = options
        elif tool.get("type") == "function" and isinstance(tool.get("function"), dict):
            if tool["function"].get("strict") is None:
                tool["function"]["strict"] = False
        out.append(tool)
    return out


def _present(value: dict[str, Any] | None) -> dict[str, Any]:
    """The keys of a wire object that have a value (``build`` dumps unset ones as null)."""
    return {k: v for k, v in (value or {}).items() if v is not None}


def assistant(obj: dict[str, Any]) -> dict[str, Any]:
    """A built ``Assistant`` wire dict with the defaults (changed in place, returned)."""
    obj["tools"] = tools(obj.get("tools"))
    obj["tool_resources"] = _present(obj.get("tool_resources"))
    for key, default in (("temperature", TEMPERATURE), ("top_p", TOP_P)):
        if obj.get(key) is None:
            obj[key] = default
    return obj


def thread(obj: dict[str, Any]) -> dict[str, Any]:
    """A built ``Thread`` wire dict with ``tool_resources`` ``{}`` when it has none."""
    obj["tool_resources"] = _present(obj.get("tool_resources"))
    return obj


def run(obj: dict[str, Any]) -> dict[str, Any]:
    """A built ``Run`` wire dict with the defaults (its tools may be its assistant's)."""
    obj["tools"] = tools(obj.get("tools"))
    for key, default in (("temperature", TEMPERATURE), ("top_p", TOP_P)):
        if obj.get(key) is None:
            obj[key] = default
    return obj
