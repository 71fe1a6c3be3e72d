"""pandas DataFrames of messages, runs, run steps, tool calls, file_search results, prompts,
threads, assistants and vector stores: the public module of the notebook's tables.

Every table takes an ``openai.OpenAI`` client — local (:func:`assistant_kit.local_client`)
or any server speaking Assistants v2 — and walks the whole listing with the SDK's cursor
pagination, so threads of any length work. Import the tables from here; each lives in a
private module of its subject (imports point one way: ``_tables_base`` → ``_tables_threads``,
``_tables_runs`` → ``_tables_steps`` → ``_tables_retrieval``; ``_tables_prompts`` and
``_tables_display`` use the base only):

``_tables_threads``   the conversation: :func:`messages` (text, images and files by id,
                      citations), :func:`threads`, :func:`assistants`.
``_tables_runs``      :func:`runs` of one thread, or of the whole store with its filters
                      (``GET /runs``; the filters ``GET /runs/steps`` shares).
``_tables_steps``     run steps and the tool calls in them: :func:`steps`, :func:`code_calls`,
                      :func:`tool_calls` (one thread, or the whole store: ``GET /runs/steps``).
``_tables_prompts``   :func:`prompts`: what each model turn of a run was sent.
``_tables_retrieval`` :func:`file_search_results` of a run or a thread, :func:`vector_stores`,
                      :func:`vector_store_files`.
``_tables_display``   :func:`display_frame` and :func:`cell_text`: any frame shown in a notebook,
                      cut and HTML-escaped.
``_tables_base``      what they share: the paged listing (pages of JSON dicts, not typed models:
                      it says why), :class:`Column` declarations and the frame built from them,
                      the readers of errors, usage and millisecond times.

Each frame is declared once, as a tuple of :class:`Column` (``MESSAGES``, ``RUNS``, ``STEPS``,
``CODE_CALLS``, ``TOOL_CALLS``, ``FILE_SEARCH_RESULTS``, ``PROMPTS``, ``THREADS``,
``ASSISTANTS``, ``VECTOR_STORES``, ``VECTOR_STORE_FILES``): a column's name, how one row gives
its value, and its kind (which fixes its dtype). Adding a column is one line there.

Conventions of every frame:

* timestamps are tz-aware UTC ``datetime64`` (``DatetimeTZDtype``, tz UTC), ``NaT`` when unset.
  The wire carries whole Unix seconds, so that is their resolution;
* durations (``duration_s``) are float seconds, ``NaN`` until the object has ended;
* token counts are nullable ``Int64`` (``<NA>`` while a run is in flight);
* text columns hold the full text — only :func:`display_frame` truncates, and it escapes;
* images and files are references (``image_file_ids``, ``file_path_ids``): file ids, never bytes;
* rows come in the API's order: ``order="asc"`` (oldest first) for messages, runs and steps,
  ``"desc"`` (newest first) for threads and assistants; ``limit`` keeps the first ``limit`` rows.

pandas is imported inside the functions, so importing this module does not load it; without
pandas every function raises a ``SessionError`` naming the notebook extra (:mod:`._extra`),
before any request.
"""

from __future__ import annotations

# Re-exported (``name as name``): the tables, their column declarations, and the frame
# builders the inspector, the tests and the benchmarks apply to rows they already listed.
from ._tables_base import PAGE_SIZE as PAGE_SIZE
from ._tables_base import Column as Column
from ._tables_base import _frame as _frame
from ._tables_base import _list as _list
from ._tables_display import HTMLTable as HTMLTable
from ._tables_display import cell_text as cell_text
from ._tables_display import display_frame as display_frame
from ._tables_prompts import PROMPTS as PROMPTS
from ._tables_prompts import prompts as prompts
from ._tables_retrieval import FILE_SEARCH_RESULT_COLUMNS as FILE_SEARCH_RESULT_COLUMNS
from ._tables_retrieval import FILE_SEARCH_RESULTS as FILE_SEARCH_RESULTS
from ._tables_retrieval import VECTOR_STORE_FILES as VECTOR_STORE_FILES
from ._tables_retrieval import VECTOR_STORES as VECTOR_STORES
from ._tables_retrieval import _search_frame as _search_frame
from ._tables_retrieval import file_search_results as file_search_results
from ._tables_retrieval import vector_store_files as vector_store_files
from ._tables_retrieval import vector_stores as vector_stores
from ._tables_runs import RUN_COLUMNS as RUN_COLUMNS
from ._tables_runs import RUNS as RUNS
from ._tables_runs import _runs_frame as _runs_frame
from ._tables_runs import runs as runs
from ._tables_steps import CODE_CALL_COLUMNS as CODE_CALL_COLUMNS
from ._tables_steps import CODE_CALLS as CODE_CALLS
from ._tables_steps import STEP_COLUMNS as STEP_COLUMNS
from ._tables_steps import STEPS as STEPS
from ._tables_steps import TOOL_CALL_COLUMNS as TOOL_CALL_COLUMNS
from ._tables_steps import TOOL_CALLS as TOOL_CALLS
from ._tables_steps import _code_calls_frame as _code_calls_frame
from ._tables_steps import _step_items as _step_items
from ._tables_steps import _steps_frame as _steps_frame
from ._tables_steps import code_calls as code_calls
from ._tables_steps import steps as steps
from ._tables_steps import tool_calls as tool_calls
from ._tables_threads import ASSISTANTS as ASSISTANTS
from ._tables_threads import MESSAGE_COLUMNS as MESSAGE_COLUMNS
from ._tables_threads import MESSAGES as MESSAGES
from ._tables_threads import THREADS as THREADS
from ._tables_threads import _messages_frame as _messages_frame
from ._tables_threads import assistants as assistants
from ._tables_threads import messages as messages
from ._tables_threads import threads as threads

__all__ = [
    "assistants",
    "code_calls",
    "display_frame",
    "file_search_results",
    "messages",
    "prompts",
    "runs",
    "steps",
    "threads",
    "tool_calls",
    "vector_store_files",
    "vector_stores",
]
