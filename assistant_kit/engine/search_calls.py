"""``file_search`` calls inside a run: the function the model is offered, the search each call
runs over the assistant's and the thread's vector stores, what the step records, and the text
the model reads back.

The run executor (:mod:`assistant_kit.engine.runs`) decides when a call runs; the step's owner
(:mod:`.steps`) opens the call and publishes its deltas; this module does the work of one call
and owns the call's shape. A call in a step (spec ``RunStepDetailsToolCallsFileSearchObject``)::

    {"id": "call_…", "type": "file_search", "file_search": {
        "ranking_options": {"ranker": "default_2024_08_21", "score_threshold": 0.0},
        "results": [{"file_id", "file_name", "score", "content": [{"type": "text", "text"}]}],
        "queries": ["…"]}}

``queries`` (what was searched) is an assistant_kit addition: the hosted API kept them to
itself, but the next turn's context replays the call with them and a notebook shows them. The
store always keeps each result's ``content``; responses strip it unless the request asked
``include[]=step_details.tool_calls[*].file_search.results[*].content`` (:func:`visible`).

Streamed as two ``thread.run.step.delta`` tool-call deltas: the call as it opens (``"file_search":
{}``, the spec's delta shape) when the model starts it, then ``ranking_options``, ``results``
and ``queries`` once the search is done — so the SDK's ``AssistantEventHandler`` fires
``on_tool_call_created`` at once and hands ``on_tool_call_done`` the results.

What the model reads for result R of the run's T-th file_search call (both 0-based, T counted
over the run's file_search calls in step and call order, :func:`.citations.run_results`) starts with the
marker ``【T:R†<file name>】``; it cites by writing ``【T:R†source】`` (:mod:`.citations`).

Decisions:

- **Queries**: ``{"queries": [...]}``, the first :data:`MAX_QUERIES` non-empty strings; a
  legacy ``{"query": "…"}`` (or a bare JSON string) is one query. All queries go to one search
  per store, fused there (keyword + semantic, reciprocal rank), so a chunk two queries find is
  one result with the better rank.
- **Stores**: the assistant's and the thread's ``tool_resources.file_search.vector_store_ids``,
  searched each with the store service's public search; results merged by score (ties keep
  the assistant's first), the same chunk found in both counted once, ``max_num_results`` kept.
  A store deleted since it was attached is skipped; an expired one fails the run (its error
  names the store).
- **Options**: ``max_num_results`` from the run's tool definition (default
  :data:`DEFAULT_MAX_RESULTS`, the hosted default for gpt-4-class models) and
  ``ranking_options.score_threshold`` (results scoring below it are dropped); the ranker is
  recorded as the tool has it (``auto`` as ``default_2024_08_21``, what the hosted API
  reported), there being one ranker here.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import InvalidRequestError, NotFoundError
from .shapes import named_stores

if TYPE_CHECKING:
    from ..store import AsyncStore
    from .vector_stores import VectorStores

NAME = "file_search"
INCLUDE_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"
MAX_QUERIES = 5
MAX_QUERY_CHARS = 2000
DEFAULT_MAX_RESULTS = 20
#: The most results the engine's own search gives a model that cannot call tools (its
#: context window is small: 2048 tokens for the embedded model).
SEARCHED_FOR_RESULTS = 3
RANKER = "default_2024_08_21"

TOOL_FUNCTION: dict[str, Any] = {
    "name": NAME,
    "description": (
        "Search the files attached to this assistant or thread. Give one to five short search "
        "queries (different phrasings or sub-questions). Each result starts with a marker such "
        "as 【0:1†file.txt】; cite a result you use by writing its marker in your answer, "
        "for example 【0:1†source】."
    ),
    "parameters": {
        "type": "object",
        "properties": {
            "queries": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 1,
                "maxItems": MAX_QUERIES,
                "description": "The search queries.",
            }
        },
        "required": ["queries"],
    },
}


# -- the call ------------------------------------------------------------------------------


def new_call(call_id: str) -> dict[str, Any]:
    """A ``file_search`` tool call as it opens (its delta: the spec's empty object)."""
    return {"id": call_id, "type": NAME, "file_search": {}}


def parse_queries(arguments: str) -> list[str]:
    """The queries of a call's JSON ``arguments`` (see the module docstring); [] when there
    are none (the model then reads that it must give some)."""
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        value = arguments  # not JSON: the text itself is the query (small models do this)
    if isinstance(value, dict):
        value = value.get("queries", value.get("query", []))
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    queries = [q.strip()[:MAX_QUERY_CHARS] for q in items if isinstance(q, str) and q.strip()]
    return list(dict.fromkeys(queries))[:MAX_QUERIES]


def options(run: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """``(max_num_results, ranking_options)`` of ``run``'s file_search tool definition."""
    tool = next((t for t in run.get("tools") or [] if t.get("type") == NAME), {})
    settings = tool.get(NAME) or {}
    limit = settings.get("max_num_results") or DEFAULT_MAX_RESULTS
    ranking = settings.get("ranking_options") or {}
    ranker = ranking.get("ranker") or RANKER
    threshold = ranking.get("score_threshold") or 0.0
    return max(1, min(50, int(limit))), {
        "ranker": RANKER if ranker == "auto" else ranker,
        "score_threshold": float(threshold),
    }


async def store_ids(store: AsyncStore, run: dict[str, Any]) -> list[str]:
    """The vector stores ``run`` searches: its assistant's, then its thread's (no repeats)."""
    ids: list[str] = []
    for kind, key in (("assistant", "assistant_id"), ("thread", "thread_id")):
        ids += named_stores(await store.get(kind, run[key]) or {})
    return list(dict.fromkeys(ids))


async def execute(
    vector_stores: VectorStores | None,
    store: AsyncStore,
    run: dict[str, Any],
    call: dict[str, Any],
    queries: Sequence[str],
    *,
    max_results: int | None = None,
) -> None:
    """Run one call's search and record it in ``call["file_search"]`` (``ranking_options``,
    ``results`` best first with their ``content``, ``queries``). ``max_results`` lowers the
    tool's ``max_num_results`` (the pre-turn search of models that cannot call tools).
    Without ``vector_stores`` (an executor built without them) it finds nothing."""
    limit, ranking = options(run)
    if max_results is not None:
        limit = min(limit, max_results)
    results: list[dict[str, Any]] = []
    if queries and vector_stores is not None:
        owner = await store.owner_of("thread", run["thread_id"])
        body = {
            "query": list(queries),
            "max_num_results": limit,
            "ranking_options": {"score_threshold": ranking["score_threshold"]},
        }
        found: list[tuple[float, int, dict[str, Any]]] = []
        for store_id in await store_ids(store, run):
            try:
                page = await vector_stores.search(store_id, copy.deepcopy(body), owner)
            except NotFoundError:
                continue  # deleted since it was attached: nothing to search
            for item in page["data"]:
                found.append((-item["score"], len(found), item))
        seen: set[tuple[str, str]] = set()
        for _, _, item in sorted(found, key=lambda entry: entry[:2]):
            text = "".join(part.get("text", "") for part in item["content"])
            if (item["file_id"], text) in seen:
                continue
            seen.add((item["file_id"], text))
            results.append(
                {
                    "file_id": item["file_id"],
                    "file_name": item["filename"],
                    "score": item["score"],
                    "content": [{"type": "text", "text": text}],
                }
            )
            if len(results) == limit:
                break
    call[NAME] = {"ranking_options": ranking, "results": results, "queries": list(queries)}


async def latest_user_text(store: AsyncStore, thread_id: str) -> str:
    """The text of the thread's latest user message ("" if none): the query of the engine's
    own search for a model that cannot call tools."""
    for message in reversed(await store.thread_messages(thread_id, 20)):
        if message["role"] == "user":
            parts = [p["text"]["value"] for p in message.get("content") or [] if p["type"] == "text"]
            return " ".join(parts).strip()[:MAX_QUERY_CHARS]
    return ""


def results_delta(index: int, call: dict[str, Any]) -> dict[str, Any]:
    """The tool-call delta carrying a finished call's search (its second and last)."""
    return {"index": index, "type": NAME, NAME: copy.deepcopy(call[NAME])}


# -- what the model reads -------------------------------------------------------------------


def arguments_json(call: dict[str, Any]) -> str:
    """The call as the model made it (the next turn's history replays it)."""
    return json.dumps({"queries": (call.get(NAME) or {}).get("queries") or []}, ensure_ascii=False)


def marker(call_number: int, result_number: int, file_name: str) -> str:
    """The marker that starts result ``result_number`` of the run's call ``call_number``."""
    return f"【{call_number}:{result_number}†{file_name}】"


def model_text(call: dict[str, Any], call_number: int, max_chars: int | None = None) -> str:
    """What the model reads for ``call``, the run's file_search call number ``call_number``:
    a line naming the queries and how to cite, then each result as its marker on a line of
    its own followed by the chunk's text, results separated by a blank line. ``max_chars``
    cuts each result's text (models with a small context window)."""
    search = call.get(NAME) or {}
    queries = search.get("queries") or []
    results = search.get("results") or []
    if not queries:
        return 'file_search needs queries: call it with {"queries": ["..."]}.'
    asked = ", ".join(json.dumps(q, ensure_ascii=False) for q in queries)
    if not results:
        return f"file_search found nothing for {asked} in the attached files."
    lines = [
        f"file_search results for {asked}. Cite a result you use by its marker, "
        f"for example {marker(call_number, 0, 'source')}.",
    ]
    for number, result in enumerate(results):
        text = "".join(part.get("text", "") for part in result.get("content") or [])
        if max_chars is not None and len(text) > max_chars:
            text = text[:max_chars].rstrip() + " …"
        lines.append(f"\n{marker(call_number, number, result['file_name'])}\n{text.strip()}")
    return "\n".join(lines)


# -- include[] ------------------------------------------------------------------------------


def wants_content(values: Sequence[Any] | None) -> bool:
    """Whether ``include[]`` asks for the results' content; any other value is a 400 naming
    ``include``."""
    for value in values or ():
        if value != INCLUDE_CONTENT:
            raise InvalidRequestError(
                f"Invalid 'include': '{value}'. The only supported value is '{INCLUDE_CONTENT}'.",
                param="include",
            )
    return bool(values)


def visible(obj: dict[str, Any], include_content: bool) -> dict[str, Any]:
    """A run step, a list page of steps or a step delta as a response shows it: without the
    file_search results' ``content`` unless it was asked for. ``obj`` is not changed (an
    event's data is shared by every subscriber)."""
    if include_content or not any(_results(obj)):
        return obj
    out = copy.deepcopy(obj)
    for result in _results(out):
        result.pop("content", None)
    return out


def _results(obj: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """The file_search results (with content) inside a step, a page of steps or a step delta."""
    holders = (obj.get("data") or []) if obj.get("object") == "list" else [obj]
    for holder in holders:
        details = holder.get("step_details") or (holder.get("delta") or {}).get("step_details") or {}
        for call in details.get("tool_calls") or []:
            if call.get("type") == NAME:
                for result in (call.get(NAME) or {}).get("results") or []:
                    if "content" in result:
                        yield result
