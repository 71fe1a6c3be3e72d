"""What the embedded model (``local/smollm2``, 135M parameters) answers from documents: the
engine's search before its first turn (it cannot call ``file_search`` itself) against the same
questions without the documents.

Three short documents of made-up facts (a model cannot know them) in one vector store; six
questions, each with the words a right answer must contain. Each question is asked on a fresh
thread at temperature 0 (greedy: reproducible on one build), ``max_completion_tokens`` 256
(the spec's minimum):

* **with file_search**: the assistant has the tool and the store; the engine searches with the
  question and the model's first turn reads the results (``【0:R†file】`` markers and chunks);
* **without**: the same assistant without the tool (the model's own knowledge).

Reported per question: whether the first search result is the right document, whether the
answer contains the expected words, whether it carries a citation marker, the run's seconds,
and the answer. Run from the repo root with the ``local`` extra and the model installed:
``.venv/bin/python benchmarks/local_file_search.py``. Always exits 0.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

warnings.filterwarnings("ignore", category=DeprecationWarning)  # client.beta.* is "deprecated"

from benchmarks._common import run_main  # noqa: E402

DOCUMENTS = {
    "orion.txt": (
        "Project Orion is a small satellite mission. Its launch date is 14 March 2031, from the "
        "Andøya spaceport. The mission lead is Dr. Amara Okafor."
    ),
    "kettle.txt": (
        "The Blue Kettle is a café on Harbour Street. It opens at 7:30 and closes at 18:00. "
        "Its signature drink is cardamom coffee."
    ),
    "policy.txt": (
        "Remote work policy: employees may work from home on Tuesdays and Thursdays. Travel "
        "expenses must be filed within 30 days of the trip."
    ),
}
QUESTIONS = [
    ("When is Project Orion's launch date?", "orion.txt", ["2031"]),
    ("Who is the mission lead of Project Orion?", "orion.txt", ["Okafor"]),
    ("What time does the Blue Kettle open?", "kettle.txt", ["7:30"]),
    ("What is the signature drink of the Blue Kettle?", "kettle.txt", ["cardamom"]),
    ("On which days may employees work from home?", "policy.txt", ["Tuesday", "Thursday"]),
    ("Within how many days must travel expenses be filed?", "policy.txt", ["30"]),
]


def ask(client: Any, assistant_id: str, question: str) -> tuple[Any, str, float]:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": question}])
    started = time.perf_counter()
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant_id,
        temperature=0,
        max_completion_tokens=256,
        poll_interval_ms=100,
    )
    took = time.perf_counter() - started
    messages = client.beta.threads.messages.list(thread.id, run_id=run.id).data
    answer = messages[0].content[0].text.value if messages and messages[0].content else ""
    return run, answer, took


def main() -> None:
    from assistant_kit.client import local_client
    from assistant_kit.models.local import create
    from assistant_kit.models.settings import ProviderSettings

    try:
        create("smollm2", ProviderSettings())
    except Exception as exc:
        print(f"local model not installed: {exc}")
        return
    client = local_client(os.path.join(tempfile.mkdtemp(), "local.db"))
    ids = [
        client.files.create(file=(name, io.BytesIO(text.encode())), purpose="assistants").id
        for name, text in DOCUMENTS.items()
    ]
    store = client.vector_stores.create(file_ids=ids)
    while client.vector_stores.retrieve(store.id).status != "completed":
        time.sleep(0.2)
    with_tool = client.beta.assistants.create(
        model="local/smollm2",
        instructions="Answer the question from the documents.",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
    )
    without = client.beta.assistants.create(model="local/smollm2", instructions="Answer the question.")
    rows = []
    for question, document, expected in QUESTIONS:
        for label, assistant in (("with file_search", with_tool), ("without", without)):
            run, answer, took = ask(client, assistant.id, question)
            top = ""
            steps = client.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id, order="asc").data
            for step in steps:
                if step.step_details.type == "tool_calls":
                    results = step.step_details.tool_calls[0].file_search.results
                    top = results[0].file_name if results else "(none)"
            right = all(word.lower() in answer.lower() for word in expected)
            top_right = top == document if top else None
            rows.append((question, label, top_right, right, "【" in answer, took, answer))
    print("| question | run | top result right | answer right | marker | s | answer |")
    print("|---|---|---|---|---|---|---|")
    for question, label, top, right, cited, took, answer in rows:
        shown = " ".join(answer.split())[:140].replace("|", "\\|")
        print(
            f"| {question} | {label} | {'-' if top is None else 'yes' if top else 'no'} | "
            f"{'yes' if right else 'no'} | {'yes' if cited else 'no'} | {took:.1f} | {shown} |"
        )
    for label in ("with file_search", "without"):
        mine = [r for r in rows if r[1] == label]
        print(f"{label}: {sum(r[3] for r in mine)}/{len(mine)} answers right")


if __name__ == "__main__":
    run_main(main, __file__)
