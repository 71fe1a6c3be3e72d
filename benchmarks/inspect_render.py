"""``inspect()`` of a 10,000-message thread: the HTML of the whole transcript, runs inline.

Builds a SQLite file in a temp dir holding one thread of ``BENCH_MESSAGES`` (default 10,000)
messages: all but the last ``2 * BENCH_RUNS`` inserted in bulk (``Store.insert_many``, as
``benchmarks/dataframe.py`` does), then ``BENCH_RUNS`` (default 200) real turns through the
engine — a user message and a run, every other one on ``test/tools`` (a tool round answered
here, so steps with calls and outputs), with ``truncation_strategy`` ``last_messages=6`` as a
long thread would use (each run's recorded prompt stays small). Then times, ``REPEATS`` times
each (default 5), median reported:

* fetch: ``inspect(thread, client, max_messages=BENCH_MESSAGES)`` — every message, run, step,
  and each run's inspection (ms timings, prompts; one request per run where the server has it);
* render: ``ThreadInspection._repr_html_()`` of that — the transcript with every run inline
  (status, steps, tool calls, prompt folds), the runs and steps tables, the timeline;
* text: ``repr()`` of the same;
* baseline, same run: ``tables.messages`` of the same thread (100 pages and a DataFrame) —
  the render's ratio to it is printed, so machine load can be told from a regression.

Target: render <= 2 s for 10,000 messages. Run from the repo root:
``.venv/bin/python benchmarks/inspect_render.py``. Always exits 0.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

warnings.filterwarnings("ignore", category=DeprecationWarning)  # client.beta.* is "deprecated"

from openai.types.beta import Thread  # noqa: E402

from assistant_kit import local_client  # noqa: E402
from assistant_kit._ids import new_id, now  # noqa: E402
from assistant_kit.engine.shapes import build, new_message, text_content  # noqa: E402
from assistant_kit.notebook import tables  # noqa: E402
from assistant_kit.notebook.inspect import ThreadInspection, inspect  # noqa: E402
from assistant_kit.store import Store  # noqa: E402

MESSAGES = int(os.environ.get("BENCH_MESSAGES", "10000"))
RUNS = int(os.environ.get("BENCH_RUNS", "200"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))
TARGET_S = 2.0

USER_TEXT = "Can you summarise section {i} of the report and list the <b>three</b> main risks it names?"
ASSISTANT_TEXT = (
    "Section {i} covers the quarterly rollout. The three main risks it names are: (1) the data "
    "migration may overrun its window, (2) two vendors have not confirmed support dates, and (3) "
    "the on-call rota is thin during the holiday period. It recommends a dry run first."
)
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look a section up.",
            "parameters": {"type": "object", "properties": {"section": {"type": "string"}}},
        },
    }
]


def build_db(db: Path) -> str:
    """``MESSAGES - 2 * RUNS`` messages in bulk; returns the thread id."""
    user = new_message("thread_x", {"role": "user", "content": "x"})
    assistant = new_message("thread_x", {"role": "assistant", "content": "x"})
    assistant.update(assistant_id=new_id("asst"))
    store = Store(db)
    thread = build(
        Thread, id=new_id("thread"), object="thread", created_at=now(), metadata={}, tool_resources=None
    )
    store.insert("thread", thread)
    items: list[tuple[str, dict[str, Any]]] = []
    for i in range(MESSAGES - 2 * RUNS):
        odd = i % 2
        message = {
            **(assistant if odd else user),
            "id": new_id("msg"),
            "created_at": now(),
            "completed_at": now(),
            "thread_id": thread["id"],
            "content": [text_content((ASSISTANT_TEXT if odd else USER_TEXT).format(i=i))],
        }
        items.append(("thread.message", message))
    store.insert_many(items)
    store.close()
    return thread["id"]


def run_turns(client: Any, thread_id: str) -> None:
    """``RUNS`` real turns: a user message, then a run (tool rounds answered here)."""
    echo = client.beta.assistants.create(model="test/echo", tools=TOOLS)
    tools = client.beta.assistants.create(model="test/tools", tools=TOOLS)
    runs = client.beta.threads.runs
    last = {"type": "last_messages", "last_messages": 6}
    for i in range(RUNS):
        client.beta.threads.messages.create(thread_id, role="user", content=USER_TEXT.format(i=i))
        bot = tools if i % 2 else echo
        run = runs.create_and_poll(thread_id=thread_id, assistant_id=bot.id, truncation_strategy=last)
        while run.status == "requires_action":
            outputs = [
                {"tool_call_id": c.id, "output": f"section {i}: <i>ok</i>"}
                for c in run.required_action.submit_tool_outputs.tool_calls
            ]
            run = runs.submit_tool_outputs_and_poll(run_id=run.id, thread_id=thread_id, tool_outputs=outputs)


def main() -> int:
    tmp = tempfile.TemporaryDirectory(prefix="ak-bench-inspect-")
    db = Path(tmp.name) / "inspect.db"
    print(f"inspect_render: inspect() of a {MESSAGES:,}-message thread with {RUNS} runs; {REPEATS} runs each")
    t0 = time.perf_counter()
    thread_id = build_db(db)
    client = local_client(db)
    run_turns(client, thread_id)
    print(f"built in {time.perf_counter() - t0:.1f} s; store {db}")

    state: dict[str, ThreadInspection] = {}

    def fetch() -> int:
        state["ins"] = inspect(thread_id, client, max_messages=MESSAGES)
        assert len(state["ins"].messages) == MESSAGES and not state["ins"].more_messages
        return len(state["ins"].runs)

    def render() -> int:
        html = state["ins"]._repr_html_()
        assert html.count('class="ak-run"') == RUNS and "<b>three</b>" not in html
        return len(html)

    def text() -> int:
        return len(repr(state["ins"]))

    def baseline() -> int:
        return len(tables.messages(client, thread_id))

    calls: dict[str, Callable[[], int]] = {
        "fetch: inspect(max_messages=all)": fetch,
        "render: _repr_html_()": render,
        "text: repr()": text,
        "baseline: tables.messages": baseline,
    }
    for fn in calls.values():  # warm-up
        fn()
    sizes = {"html chars": render(), "text chars": text()}
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(REPEATS):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(values) for name, values in times.items()}
    print()
    print(f"{'':<36}{'median ms':>11}{'min ms':>10}")
    for name, values in times.items():
        print(f"{name:<36}{med[name] * 1000:>11.0f}{min(values) * 1000:>10.0f}")
    render_s, base_s = med["render: _repr_html_()"], med["baseline: tables.messages"]
    print()
    print(f"sizes: {sizes['html chars']:,} HTML chars, {sizes['text chars']:,} text chars")
    print(f"render / baseline (tables.messages of the same thread): {render_s / base_s:.2f}x")
    print(f"target: render <= {TARGET_S} s for {MESSAGES:,} messages")
    print(f"RESULT: {'PASS' if render_s <= TARGET_S else 'MISS'}  ({render_s * 1000:.0f} ms)")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    from _common import run_main

    run_main(main, __file__)
