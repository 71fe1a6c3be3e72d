"""The OpenAI Cookbook's Assistants notebooks, walked end to end through the official SDK.

``Assistants_API_overview_python.ipynb`` and ``Creating_slides_with_Assistants_API_and_DALL-E3
.ipynb`` — the code people copied from — read every object in a particular way: polling loops
on ``run.status``, ``messages.data[0].content[0].image_file`` for a plot, ``content[0].text
.annotations[0].file_path.file_id`` for a written file, ``run.required_action
.submit_tool_outputs.tool_calls[0]`` for a function. The cells below do what those cells do,
in the same order, reading objects the same way (DALL-E and file_search are not part of the
kit's object model: left out).

The model is scripted, writing what a real one would: ``test/tools`` runs the fenced python
blocks of the user's message with code_interpreter (the code a model writes for that request)
and answers with their output; for the parallel round, the same model with its code call and
its function call in one turn, as gpt-4 made them.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest

from assistant_kit._ids import new_id
from assistant_kit.models.base import Finish, ModelEvent, ModelRequest, ToolCallDelta, Usage
from assistant_kit.models.registry import register_model
from assistant_kit.models.scripted import ToolsModel
from assistant_kit.tools.code_interpreter import CodeInterpreterSettings

pytestmark = pytest.mark.timeout(180)

PNG = b"\x89PNG\r\n\x1a\n"
FINANCIAL_DATA = json.dumps(
    [
        {"Year": y, "Quarter": q, "Distribution channel": c, "Revenue": r, "Costs": r * 0.6}
        for y in (2021, 2022)
        for q in ("Q1", "Q2", "Q3", "Q4")
        for c, r in (("Online Sales", 1000 + 10 * len(q)), ("Direct Sales", 800), ("Retail Partners", 600))
    ]
)
PLOT_CODE = """import json
import matplotlib.pyplot as plt
rows = json.load(open("NotRealCorp_financial_data.json"))
channels = sorted({r["Distribution channel"] for r in rows})
for channel, color in zip(channels, ["green", "#ff9999", "lightblue"]):
    points = [(f"{r['Year']} {r['Quarter']}", r["Revenue"] - r["Costs"]) for r in rows
              if r["Distribution channel"] == channel]
    plt.plot([p[0] for p in points], [p[1] for p in points], color=color, label=channel)
plt.legend()
plt.show()
print("profit plotted for", len(channels), "channels")"""
SLIDES_CODE = """import zipfile
with zipfile.ZipFile("NotRealCorp_slides.pptx", "w") as deck:
    deck.writestr("ppt/slides/slide1.xml", "<title>NotRealCorp</title>")
    deck.write("NotRealCorp_chart.png", "ppt/media/chart.png")
print("[Download the slides](sandbox:/mnt/data/NotRealCorp_slides.pptx)")"""
QUIZ = {
    "name": "display_quiz",
    "description": "Displays a quiz to the student, and returns the student's response.",
    "parameters": {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "questions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "question_text": {"type": "string"},
                        "question_type": {"type": "string", "enum": ["MULTIPLE_CHOICE", "FREE_RESPONSE"]},
                        "choices": {"type": "array", "items": {"type": "string"}},
                    },
                    "required": ["question_text"],
                },
            },
        },
        "required": ["title", "questions"],
    },
}


def fenced(text: str, code: str) -> str:
    return f"{text}\n```python\n{code}\n```\n"


class ParallelTools(ToolsModel):
    """``test/tools`` whose first turn after a user message calls code_interpreter and every
    function tool at once, the way gpt-4 answered "run this and quiz me"."""

    name = "cookbook/parallel"

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        last = request.messages[-1] if request.messages else {}
        functions = [
            t["function"] for t in request.tools if t["function"]["name"] not in request.builtin_tools
        ]
        if last.get("role") != "user" or "code_interpreter" not in request.builtin_tools or not functions:
            async for event in super().stream(request):
                yield event
            return
        code = last["content"].split("```python\n", 1)[1].split("```", 1)[0]
        yield ToolCallDelta(0, id=new_id("call"), name="code_interpreter")
        yield ToolCallDelta(0, arguments=json.dumps({"code": code}))
        quiz = {
            "title": "Mathematics Quiz",
            "questions": [
                {"question_text": "What is 3x + 11 = 14 for x?", "question_type": "FREE_RESPONSE"},
                {
                    "question_text": "What is 2 + 2?",
                    "question_type": "MULTIPLE_CHOICE",
                    "choices": ["3", "4"],
                },
            ],
        }
        for index, function in enumerate(functions, start=1):
            yield ToolCallDelta(index, id=new_id("call"), name=function["name"])
            yield ToolCallDelta(index, arguments=json.dumps(quiz))
        yield Usage(10, 2)
        yield Finish("tool_calls")


register_model(ParallelTools.name, ParallelTools())


@pytest.fixture
def client(make_client: Any, monkeypatch: pytest.MonkeyPatch) -> openai.OpenAI:
    monkeypatch.setenv("ASSISTANT_KIT_CODE_TIMEOUT", "30")  # matplotlib imports slowly on a busy machine
    monkeypatch.setenv("ASSISTANT_KIT_CODE_IDLE_SECONDS", "20")
    return make_client(code_interpreter=CodeInterpreterSettings.local())  # type: ignore[no-any-return]


def wait_on_run(client: openai.OpenAI, run: Any, thread: Any) -> Any:
    """The overview notebook's helper, as written there (with a deadline added)."""
    deadline = time.monotonic() + 120
    while run.status == "queued" or run.status == "in_progress":
        assert time.monotonic() < deadline, "the run did not finish"
        run = client.beta.threads.runs.retrieve(thread_id=thread.id, run_id=run.id)
        time.sleep(0.1)
    return run


def get_response(client: openai.OpenAI, thread: Any) -> Any:
    return client.beta.threads.messages.list(thread_id=thread.id)


def show_json(obj: Any) -> dict[str, Any]:
    return json.loads(obj.model_dump_json())  # type: ignore[no-any-return]


def test_overview_notebook(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(
        name="Math Tutor",
        instructions="You are a personal math tutor. Answer questions briefly, in a sentence or less.",
        model="test/tools",
    )
    shown = show_json(assistant)
    assert (shown["temperature"], shown["top_p"], shown["tools"]) == (1.0, 1.0, [])
    assert shown["tool_resources"] == {"code_interpreter": None, "file_search": None}
    thread = client.beta.threads.create()
    message = client.beta.threads.messages.create(
        thread_id=thread.id,
        role="user",
        content="I need to solve the equation `3x + 11 = 14`. Can you help me?",
    )
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "queued" and run.expires_at is not None
    run = wait_on_run(client, run, thread)
    assert run.status == "completed" and run.expires_at is None and run.completed_at is not None
    messages = client.beta.threads.messages.list(thread_id=thread.id, order="asc", after=message.id)
    assert [m.role for m in messages.data] == ["assistant"]
    assert "3x + 11 = 14" in messages.data[0].content[0].text.value  # type: ignore[union-attr]

    # Tools: code_interpreter, and the run's steps read the notebook's way.
    assistant = client.beta.assistants.update(assistant.id, tools=[{"type": "code_interpreter"}])
    fibonacci = (
        "a, b = 0, 1\nfib = []\nfor _ in range(20):\n    fib.append(a)\n    a, b = b, a + b\nprint(fib)"
    )
    client.beta.threads.messages.create(
        thread_id=thread.id,
        role="user",
        content=fenced("Generate the first 20 fibbonaci numbers with code.", fibonacci),
    )
    run = wait_on_run(
        client, client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id), thread
    )
    assert run.status == "completed", run.last_error
    run_steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc")
    details = [show_json(step.step_details) for step in run_steps.data]
    assert [d["type"] for d in details] == ["tool_calls", "message_creation"]
    call = details[0]["tool_calls"][0]
    assert call["type"] == "code_interpreter" and call["code_interpreter"]["input"] == fibonacci + "\n"
    assert call["code_interpreter"]["outputs"] == [
        {
            "type": "logs",
            "logs": "[0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597, 2584, 4181]\n",
        }
    ]
    answer = get_response(client, thread).data[0]
    assert details[1]["message_creation"]["message_id"] == answer.id
    assert "4181" in answer.content[0].text.value

    # Functions, called in parallel with code: the run waits for the function's output only.
    assistant = client.beta.assistants.update(
        assistant.id,
        model=ParallelTools.name,
        tools=[{"type": "code_interpreter"}, {"type": "function", "function": QUIZ}],
    )
    assert assistant.tools[1].function.strict is False  # type: ignore[union-attr]
    client.beta.threads.messages.create(
        thread_id=thread.id,
        role="user",
        content=fenced(
            "Make a quiz with 2 questions: One open ended, one multiple choice. Check x too.",
            "print((14 - 11) / 3)",
        ),
    )
    run = wait_on_run(
        client, client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id), thread
    )
    assert run.status == "requires_action" and run.required_action is not None
    assert run.required_action.type == "submit_tool_outputs"
    (tool_call,) = run.required_action.submit_tool_outputs.tool_calls
    name = tool_call.function.name
    arguments = json.loads(tool_call.function.arguments)
    assert name == "display_quiz" and arguments["title"] == "Mathematics Quiz"
    assert [q["question_type"] for q in arguments["questions"]] == ["FREE_RESPONSE", "MULTIPLE_CHOICE"]
    (step,) = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id).data
    code_call, function_call = step.step_details.tool_calls  # type: ignore[union-attr]
    assert code_call.type == "code_interpreter" and code_call.code_interpreter.outputs[0].logs == "1.0\n"
    assert function_call.type == "function" and function_call.id == tool_call.id
    assert function_call.function.output is None and step.status == "in_progress"
    responses = ["x = 1", "4"]
    run = client.beta.threads.runs.submit_tool_outputs(
        thread_id=thread.id,
        run_id=run.id,
        tool_outputs=[{"tool_call_id": tool_call.id, "output": json.dumps(responses)}],
    )
    run = wait_on_run(client, run, thread)
    assert run.status == "completed", run.last_error
    text = get_response(client, thread).data[0].content[0].text.value
    assert (
        "code_interpreter returned 1.0" in text and f"display_quiz returned {json.dumps(responses)}" in text
    )
    steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc").data
    assert [s.status for s in steps] == ["completed", "completed"]
    assert steps[0].step_details.tool_calls[1].function.output == json.dumps(responses)  # type: ignore[union-attr]


def test_slides_notebook(client: openai.OpenAI, tmp_path: Path) -> None:
    data_path = tmp_path / "NotRealCorp_financial_data.json"
    data_path.write_text(FINANCIAL_DATA)
    with open(data_path, "rb") as handle:
        file = client.files.create(file=handle, purpose="assistants")
    assert file.id.startswith("file-")
    assistant = client.beta.assistants.create(
        instructions="You are a data scientist assistant. When given data and a query, write the proper "
        "code and create the proper visualization",
        model="test/tools",
        tools=[{"type": "code_interpreter"}],
        tool_resources={"code_interpreter": {"file_ids": [file.id]}},
    )
    thread = client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": fenced(
                    "Calculate profit (revenue minus cost) by quarter and year, and visualize as a line "
                    "plot across the distribution channels, where the colors of the lines are green, "
                    "light red, and light blue",
                    PLOT_CODE,
                ),
                "attachments": [{"file_id": file.id, "tools": [{"type": "code_interpreter"}]}],
            }
        ]
    )
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)

    # The notebook's loop: poll until the newest message starts with the plot.
    deadline = time.monotonic() + 120
    while True:
        messages = client.beta.threads.messages.list(thread_id=thread.id)
        try:
            messages.data[0].content[0].image_file  # noqa: B018 (the cell's test)
            break
        except (AttributeError, IndexError):  # the notebook's bare except: text first, or no part yet
            assert time.monotonic() < deadline, "Assistant still working... (never plotted)"
            time.sleep(0.2)
    assert messages.data[0].content[0].image_file is not None  # type: ignore[union-attr]
    plot_file_id = messages.data[0].content[0].image_file.file_id  # type: ignore[union-attr]
    assert plot_file_id.startswith("file-")

    # Download it (the notebook's convert_file_to_png), then upload it again for the slides.
    data = client.files.content(plot_file_id)
    data_bytes = data.read()
    image_path = tmp_path / "NotRealCorp_chart.png"
    image_path.write_bytes(data_bytes)
    assert data_bytes.startswith(PNG) and len(data_bytes) > 1000
    with open(image_path, "rb") as handle:
        plot_file = client.files.create(file=handle, purpose="assistants")
    assert plot_file.filename == "NotRealCorp_chart.png" and plot_file.bytes == len(data_bytes)
    run = client.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=100)
    assert run.status == "completed", run.last_error
    assert "profit plotted for 3 channels" in messages.data[0].content[1].text.value  # type: ignore[union-attr]

    # "Give me two medium length sentences…": the notebook's submit_message_wait_completion.
    client.beta.threads.messages.create(thread_id=thread.id, role="user", content="Two insights, please.")
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    deadline = time.monotonic() + 60
    while run.status != "completed":
        assert run.status in ("queued", "in_progress") and time.monotonic() < deadline, run.last_error
        time.sleep(0.1)
        run = client.beta.threads.runs.retrieve(thread_id=thread.id, run_id=run.id)
    bullet_points = get_response(client, thread).data[0].content[0].text.value  # type: ignore[union-attr]
    assert bullet_points

    # The slides: code that reads the re-uploaded plot and writes a file; the answer links it.
    client.beta.threads.messages.create(
        thread_id=thread.id,
        role="user",
        content=fenced("Use the included code template to create a PPTX slide with the image.", SLIDES_CODE),
        attachments=[{"file_id": plot_file.id, "tools": [{"type": "code_interpreter"}]}],
    )
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    run = client.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=100)
    assert run.status == "completed", run.last_error
    response = get_response(client, thread)
    assert [p.type for p in response.data[0].content] == ["text"]  # no plot this time
    annotation = response.data[0].content[0].text.annotations[0]  # type: ignore[union-attr]
    assert annotation.type == "file_path" and annotation.text == "sandbox:/mnt/data/NotRealCorp_slides.pptx"
    pptx_id = annotation.file_path.file_id  # type: ignore[union-attr]
    ppt_file = client.files.content(pptx_id)
    file_obj = io.BytesIO(ppt_file.read())
    with zipfile.ZipFile(file_obj) as deck:
        assert deck.read("ppt/media/chart.png") == data_bytes
    assert client.files.retrieve(pptx_id).purpose == "assistants_output"
