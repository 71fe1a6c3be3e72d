"""The notebook layer: a chainable :class:`Session`, live-rendered runs, DataFrames, a thread
inspector and a cell magic — for exploratory notebooks, teaching demos and quick thread
inspection in Jupyter, VS Code and Colab.

Modules (imports point one way: _extra → _markup → citations → code → html → _items → terminal →
render → _timings → _prompts → _tables_* → tables → _searches/_transcript/_timeline → inspect →
_boundary → _runs → session → magics):

``_extra``   ``require(module, feature)``: pandas & co. imported on use; missing, a
             ``SessionError`` naming the ``[notebook]`` extra (not a bare ModuleNotFoundError).
``_markup``  escaping, truncation, styles, text blocks, status badges (re-exported by ``html``).
``citations`` file_search results and ``file_citation`` annotations: markers ``【T:R†…】``
             resolved to the result they cite, drawn as ``[n]`` with a hover and footnotes
             (HTML) or ``[n]`` and footnote lines (text); a file_search call's results.
``code``     the code_interpreter tool and its files: highlighted code (pygments, inline
             styles), logs, images inlined from ``client.files.content`` (``FileImages``:
             once per file id; by file id without a client; ``owner``: which live
             session's client has a file), file references.
``html``     HTML/text reprs for the SDK's objects (Assistant, Thread, Message, Run,
             RunStep), registered as IPython formatters.
``_items``   the messages and tool calls a ``RunView`` keeps, and how each renders.
``terminal`` ``RunView``'s text mode (scripts, the terminal): streamed text, tool lines.
``render``   ``RunView``: renders one run as it streams (display handles by default, an
             ipywidgets panel with a cancel button where widgets work, plain text in a
             terminal; throttled to ~10 updates/s; a static HTML snapshot at the end).
``_timings`` the engine's inspection extension (ms timings, recorded prompts; a 404 → the
             wire's seconds, marked ``resolution="s"``).
``_prompts`` what a model turn was sent: rows, HTML folds, text, ``Session.prompt``'s view.
``tables``   pandas DataFrames of messages, runs, steps, code_interpreter calls, tool calls,
             file_search results, prompts, threads, assistants (images and files by file id,
             never bytes); runs and tool calls of one thread or of the whole store. Its
             docstring says which private module by subject holds each table
             (``_tables_threads``, ``_tables_runs``, ``_tables_steps``, ``_tables_prompts``,
             ``_tables_retrieval``, ``_tables_display``; shared: ``_tables_base``).
``_searches`` the file_search calls of a thread as the inspector shows them (transcript
             entries, cited message text, timeline marks).
``_transcript`` a run inside the transcript: status, steps, tool calls, errors, prompt folds.
``_timeline`` the run timeline picture (ms, first token, tool time, no stretched ends).
``inspect``  ``inspect(thread)``: transcript (runs inline under their user turns, code calls
             in place, images as thumbnails), runs, steps and the timeline.
``_boundary`` the edge between a session and the SDK: one ``SessionError`` for every failure,
             parameter names checked before a request, URLs and database paths shown without
             secrets.
``_runs``    how a session drives a run: the stream into a ``RunView``, the tool-call loop for
             Python callables, polled runs replayed as events, cancellation.
``session``  ``Session``: provider config + current assistant/thread/run, chainable.
``magics``   ``%load_ext assistant_kit`` → ``%%assistant`` cell magic.

pandas, IPython, ipywidgets and pygments are imported lazily, only when a feature needs them;
a Session without them still creates, runs and streams (as text).
"""
