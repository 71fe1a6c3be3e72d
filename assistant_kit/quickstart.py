"""The main job, end to end in a terminal: assistant → thread → message → a run streamed
live → the thread's history as a table.

    python -m assistant_kit.quickstart [--model local/smollm2] [--db PATH] [--message TEXT]

With no ``--model`` it uses the default model (the embedded ``local/smollm2`` when the
``[local]`` extra is installed; otherwise it says what to install or configure). Runs
offline: no API key, no network.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import textwrap

from .client import local_client
from .errors import AssistantKitError
from .models.registry import default_model

INSTRUCTIONS = "You are a friendly tutor. Answer in two or three short sentences."
QUESTION = "What is a thread in the Assistants API, and why keep one per conversation?"


def history_table(rows: list[tuple[str, str, str, str]], width: int) -> str:
    """Plain-text table of (time, role, status, text); text is wrapped, never cut off."""
    heads = ("time", "role", "status")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
    text_width = max(20, width - sum(widths) - 3 * len(widths) - 1)
    line = "  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)) + "  text"
    out = [line, "-" * min(width, len(line) + text_width)]
    for row in rows:
        wrapped = textwrap.wrap(row[3].replace("\n", " "), text_width) or [""]
        cells = "  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True))
        out.append(f"{cells}  {wrapped[0]}")
        pad = " " * (len(cells) + 2)
        out.extend(pad + more for more in wrapped[1:])
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    # The SDK's "deprecated" on every client.beta.* call: local_client() quiets it (client.py).
    parser = argparse.ArgumentParser(prog="python -m assistant_kit.quickstart", description=__doc__)
    parser.add_argument("--model", help="model name (default: the embedded local model)")
    parser.add_argument("--db", help="SQLite file or ':memory:' (default: the kit's default store)")
    parser.add_argument("--message", default=QUESTION, help="the user message to send")
    parser.add_argument(
        "--max-tokens", type=int, default=256, help="max_completion_tokens of the run (spec minimum: 256)"
    )
    args = parser.parse_args(argv)
    try:
        model = args.model or default_model()
    except AssistantKitError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    client = local_client(args.db)
    assistant = client.beta.assistants.create(model=model, name="Quickstart tutor", instructions=INSTRUCTIONS)
    thread = client.beta.threads.create()
    client.beta.threads.messages.create(thread.id, role="user", content=args.message)
    print(f"assistant {assistant.id} ({model}) · thread {thread.id}\n")
    print(f"user: {args.message}\nassistant: ", end="", flush=True)
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=args.max_tokens
    ) as stream:
        for text in stream.text_deltas:
            print(text, end="", flush=True)
        run = stream.get_final_run()
    print("\n")
    usage = (
        f", {run.usage.prompt_tokens} prompt + {run.usage.completion_tokens} completion tokens"
        if run.usage
        else ""
    )
    print(f"run {run.id}: {run.status}{usage}")
    if run.last_error:
        print(f"error: {run.last_error.message}", file=sys.stderr)
    rows = [
        (
            dt.datetime.fromtimestamp(m.created_at).strftime("%H:%M:%S"),
            m.role,
            m.status,
            " ".join(p.text.value for p in m.content if p.type == "text"),
        )
        for m in client.beta.threads.messages.list(thread.id, order="asc")
    ]
    print("\nThread history\n" + history_table(rows, shutil.get_terminal_size((100, 20)).columns))
    # ``incomplete`` = the answer reached --max-tokens: the job still did what it shows.
    return 0 if run.status in ("completed", "incomplete") else 1


if __name__ == "__main__":
    raise SystemExit(main())
