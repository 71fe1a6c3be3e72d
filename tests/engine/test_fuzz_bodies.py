"""Property-based fuzz of every body-taking route with raw JSON: never a 5xx, and a request
that answers an error stores nothing.

schemathesis (tests/server/test_openapi_fuzz.py) generates bodies from the OpenAPI schema,
so it never sends what JSON allows but no schema describes: lone UTF-16 surrogates (as
``\\ud800`` escapes), NUL and other control characters, any code point in keys, booleans where
numbers go, absurd integers, deep nesting. Here hypothesis sends those, as raw bytes,
through the official SDK's own HTTP client (in-process transport, so thousands of requests
take seconds), to each create/update route of the engine.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import openai
import pytest

from assistant_kit import local_client

hypothesis = pytest.importorskip("hypothesis")
st = pytest.importorskip("hypothesis.strategies")

# Every code point, surrogates included (hypothesis leaves out category Cs by default).
ANY_TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=12)
NAMES = st.one_of(st.sampled_from(["test/echo", "f", "gpt-4o", ""]), ANY_TEXT)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    ANY_TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(ANY_TEXT, inner, max_size=3)),
    max_leaves=8,
)

# route template → the parameters it knows (each fuzzed, or left out), plus a sometimes-unknown key
ROUTES: dict[str, tuple[str, ...]] = {
    "/assistants": (
        "model",
        "name",
        "description",
        "instructions",
        "metadata",
        "temperature",
        "top_p",
        "tools",
        "response_format",
    ),
    "/assistants/{a}": ("model", "name", "instructions", "metadata", "tools"),
    "/threads": ("messages", "metadata", "tool_resources"),
    "/threads/{t}": ("metadata",),
    "/threads/{t}/messages": ("role", "content", "attachments", "metadata"),
    "/threads/{t}/messages/{m}": ("metadata",),
    "/threads/{t}/runs": (
        "assistant_id",
        "model",
        "instructions",
        "additional_instructions",
        "additional_messages",
        "tools",
        "metadata",
        "temperature",
        "max_completion_tokens",
        "truncation_strategy",
        "tool_choice",
    ),
    "/threads/runs": ("assistant_id", "thread", "model", "instructions", "metadata", "temperature"),
}

# Values that make a body plausible enough to get past the first check now and then.
PLAUSIBLE = {
    "model": NAMES,
    "role": st.sampled_from(["user", "assistant", "system", ""]),
    "content": st.one_of(ANY_TEXT, st.just([{"type": "text", "text": "hi"}]), VALUES),
    "messages": st.lists(
        st.fixed_dictionaries({"role": st.just("user"), "content": ANY_TEXT}, optional={"metadata": VALUES}),
        max_size=2,
    ),
    "metadata": st.one_of(st.dictionaries(ANY_TEXT, ANY_TEXT, max_size=3), VALUES),
    "tools": st.one_of(
        st.lists(
            st.fixed_dictionaries(
                {"type": st.just("function"), "function": st.fixed_dictionaries({"name": ANY_TEXT})}
            ),
            max_size=2,
        ),
        VALUES,
    ),
}


def _body(draw: Any, keys: tuple[str, ...], assistant_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key in keys:
        if draw(st.booleans()):
            body[key] = draw(PLAUSIBLE.get(key, VALUES))
    if "assistant_id" in keys and draw(st.integers(0, 3)):
        body["assistant_id"] = assistant_id
    if draw(st.integers(0, 5)) == 0:
        body[draw(ANY_TEXT)] = draw(VALUES)
    return body


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> openai.OpenAI:
    return local_client(Path(tmp_path_factory.mktemp("fuzz")) / "fuzz.db")


def _counts(kit: openai.OpenAI, thread_id: str) -> tuple[int, ...]:
    return (
        len(kit.beta.assistants.list(limit=100).data),
        len(kit.get("/threads?limit=100", cast_to=object)["data"]),  # type: ignore[index]
        len(kit.beta.threads.messages.list(thread_id=thread_id, limit=100).data),
        len(kit.beta.threads.runs.list(thread_id=thread_id, limit=100).data),
    )


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_raw_json_bodies_never_5xx_and_failures_store_nothing(kit: openai.OpenAI, route: str) -> None:
    assistant = kit.beta.assistants.create(model="test/echo")
    thread = kit.beta.threads.create(messages=[{"role": "user", "content": "seed"}])
    message = kit.beta.threads.messages.list(thread_id=thread.id).data[0]
    path = route.format(a=assistant.id, t=thread.id, m=message.id)
    http = kit._client  # the SDK's own HTTP client and transport, for bytes the SDK would not send
    seen: dict[int, int] = {}

    @hypothesis.settings(
        max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(hypothesis.HealthCheck)
    )
    @hypothesis.given(st.data())
    def check(data: Any) -> None:
        body = _body(data.draw, ROUTES[route], assistant.id)
        raw = json.dumps(body, ensure_ascii=True).encode()  # surrogates travel as \\udXXX escapes
        before = _counts(kit, thread.id)
        response = http.post(
            str(kit.base_url).rstrip("/") + path,
            content=raw,
            headers={"content-type": "application/json", "authorization": "Bearer sk-fuzz"},
        )
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code < 500, (response.status_code, response.text[:300], raw[:300])
        answer = response.json()
        if response.status_code != 200:
            assert set(answer["error"]) == {"message", "type", "param", "code"}
            assert _counts(kit, thread.id) == before, "a request that failed stored something"
        elif answer.get("object") == "thread.run":  # end it, so the thread takes the next one
            with contextlib.suppress(openai.BadRequestError):  # it may have ended already
                kit.beta.threads.runs.cancel(answer["id"], thread_id=answer["thread_id"])

    check()
    assert seen.get(400, 0) > 0  # the fuzz reached validation (and did not only pass)
