"""The notebook layer: a chainable :class:`Session`, live-rendered runs, DataFrames, a thread
inspector and a cell magic — for exploratory notebooks, teaching demos and quick thread
inspection in Jupyter, VS Code and Colab.

Modules (imports point one way: html → render → tables/inspect → session → magics):

``html``     escaping and truncation helpers; HTML/text reprs for the SDK's objects
             (Assistant, Thread, Message, Run, RunStep), registered as IPython formatters.
``render``   ``RunView``: renders one run as it streams (display handles by default, an
             ipywidgets panel with a cancel button where widgets work, plain text in a
             terminal; throttled to ~10 updates/s; a static HTML snapshot at the end).
``tables``   pandas DataFrames of messages, runs, steps, threads, assistants.
``inspect``  ``inspect(thread)``: transcript, runs, steps and a run timeline picture.
``session``  ``Session``: provider config + current assistant/thread/run, chainable.
``magics``   ``%load_ext assistant_kit`` → ``%%assistant`` cell magic.

pandas, IPython and ipywidgets are imported lazily, only when a feature needs them.
"""
