"""The Files API through the official SDK (multipart upload as the SDK sends it), both transports."""

from __future__ import annotations

import io

import openai
import pytest


def test_upload_retrieve_list_download_delete(client: openai.OpenAI) -> None:
    data = bytes(range(256)) * 40  # binary, not text: downloads must return the original bytes
    made = client.files.create(file=("table.bin", io.BytesIO(data)), purpose="assistants")
    assert made.object == "file" and made.id.startswith("file")
    assert (made.filename, made.bytes, made.purpose, made.status) == (
        "table.bin",
        len(data),
        "assistants",
        "processed",
    )
    assert client.files.retrieve(made.id) == made
    assert client.files.content(made.id).content == data
    other = client.files.create(file=("notes.txt", b"hello"), purpose="user_data")
    assert [f.id for f in client.files.list()] == [other.id, made.id]
    assert [f.id for f in client.files.list(purpose="assistants")] == [made.id]
    page = client.files.list(limit=1, order="asc")
    assert [f.id for f in page.data] == [made.id] and page.has_more
    assert [f.id for f in client.files.list(after=made.id, order="asc")] == [other.id]
    deleted = client.files.delete(made.id)
    assert (deleted.id, deleted.deleted) == (made.id, True)
    with pytest.raises(openai.NotFoundError) as err:
        client.files.retrieve(made.id)
    assert made.id in err.value.message
    with pytest.raises(openai.NotFoundError):
        client.files.content(made.id)
    assert [f.id for f in client.files.list()] == [other.id]


def test_content_keeps_name_and_type(client: openai.OpenAI) -> None:
    made = client.files.create(file=("résumé; final.csv", b"a,b\n1,2\n"), purpose="assistants")
    assert made.filename == "résumé; final.csv"
    response = client.files.with_raw_response.content(made.id)
    assert response.headers["content-type"].startswith("text/csv")
    disposition = "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9%3B%20final.csv"
    assert response.headers["content-disposition"] == disposition
    assert response.http_response.content == b"a,b\n1,2\n"


def test_expires_after_is_kept(client: openai.OpenAI) -> None:
    made = client.files.create(
        file=("a.txt", b"x"), purpose="assistants", expires_after={"anchor": "created_at", "seconds": 3600}
    )
    assert made.expires_at == made.created_at + 3600
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(
            file=("a.txt", b"x"), purpose="assistants", expires_after={"anchor": "created_at", "seconds": 5}
        )
    assert err.value.body["param"] == "expires_after.seconds"


def test_an_expired_file_is_gone_and_pages_fill_past_it(
    client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assistant_kit.engine import shapes  # where a file's expiry is judged

    hour = {"anchor": "created_at", "seconds": 3600}
    first = client.files.create(file=("first.txt", b"1"), purpose="user_data")
    gone = [
        client.files.create(file=(f"gone{i}.txt", b"x"), purpose="user_data", expires_after=hour)
        for i in range(3)
    ]
    last = client.files.create(file=("last.txt", b"2"), purpose="user_data")
    real_now = shapes.now
    monkeypatch.setattr(shapes, "now", lambda: real_now() + 3601)  # an hour later
    page = client.files.list(purpose="user_data", limit=1)
    assert [f.id for f in page.data] == [last.id] and page.has_more
    assert [f.id for f in page.get_next_page().data] == [first.id]  # not an empty page
    assert [f.id for f in client.files.list(purpose="user_data", limit=1)] == [last.id, first.id]
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(gone[0].id)
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.create(tool_resources={"code_interpreter": {"file_ids": [gone[1].id]}})
    assert err.value.body["param"] == "tool_resources.code_interpreter.file_ids[0]"


def test_empty_file_is_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=("empty.txt", b""), purpose="assistants")
    assert err.value.body["param"] == "file" and "empty" in err.value.message
    assert client.files.list().data == []


def test_oversized_file_is_refused(make_client, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ASSISTANT_KIT_MAX_FILE_MB", "0.01")  # 10,485 bytes
    client = make_client()
    client.files.create(file=("ok.bin", b"x" * 10_000), purpose="assistants")
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=("big.bin", b"x" * 20_000), purpose="assistants")
    assert err.value.body["param"] == "file" and "10,485 bytes" in err.value.message
    assert [f.filename for f in client.files.list()] == ["ok.bin"]


@pytest.mark.parametrize(
    ("purpose", "param"),
    [("nonsense", "purpose"), ("assistants_output", "purpose"), ("evals", "purpose")],
)
def test_bad_purpose(client: openai.OpenAI, purpose: str, param: str) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=("a.txt", b"x"), purpose=purpose)  # type: ignore[arg-type]
    assert err.value.body["param"] == param and purpose in err.value.message


def test_not_multipart_is_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.post("/files", body={"purpose": "assistants"}, cast_to=object)
    assert err.value.body["param"] == "file" and "multipart/form-data" in err.value.message


def test_list_params_are_checked(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.files.list(limit=0)
    assert err.value.body["param"] == "limit"
    with pytest.raises(openai.BadRequestError) as err:
        client.files.list(extra_query={"colour": "red"})
    assert err.value.body["param"] == "colour"


def test_file_references_must_exist(client: openai.OpenAI) -> None:
    """Bodies that point at files: an unknown id is a 400 naming the parameter and the id."""
    real = client.files.create(file=("a.txt", b"x"), purpose="assistants")
    assistant = client.beta.assistants.create(model="test/echo")
    resources = {"code_interpreter": {"file_ids": [real.id, "file_nope"]}}
    attachment = [{"file_id": "file_gone", "tools": [{"type": "code_interpreter"}]}]
    cases = [
        (
            lambda: client.beta.assistants.create(model="test/echo", tool_resources=resources),
            "tool_resources.code_interpreter.file_ids[1]",
        ),
        (
            lambda: client.beta.assistants.update(assistant.id, tool_resources=resources),
            "tool_resources.code_interpreter.file_ids[1]",
        ),
        (
            lambda: client.beta.threads.create(tool_resources=resources),
            "tool_resources.code_interpreter.file_ids[1]",
        ),
        (
            lambda: client.beta.threads.create(
                messages=[
                    {"role": "user", "content": "hi"},
                    {"role": "user", "content": "x", "attachments": attachment},
                ]
            ),
            "messages[1].attachments[0].file_id",
        ),
        (
            lambda: client.beta.threads.create_and_run(
                assistant_id=assistant.id,
                thread={"messages": [{"role": "user", "content": "x", "attachments": attachment}]},
            ),
            "thread.messages[0].attachments[0].file_id",
        ),
        (
            lambda: client.beta.threads.create(
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "look"},
                            {"type": "image_file", "image_file": {"file_id": "file_nope"}},
                        ],
                    }
                ]
            ),
            "messages[0].content[1].image_file.file_id",
        ),
        (
            lambda: client.beta.assistants.create(
                model="test/echo", tool_resources={"code_interpreter": {"file_ids": [real.id] * 21}}
            ),
            "tool_resources.code_interpreter.file_ids",
        ),
        (
            lambda: client.beta.assistants.create(
                model="test/echo", tool_resources={"file_search": {"vector_store_ids": ["vs_a", "vs_b"]}}
            ),
            "tool_resources.file_search.vector_store_ids",
        ),
    ]
    for call, param in cases:
        with pytest.raises(openai.BadRequestError) as err:
            call()
        assert err.value.body["param"] == param
    thread = client.beta.threads.create()
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.messages.create(thread.id, role="user", content="x", attachments=attachment)
    assert err.value.body["param"] == "attachments[0].file_id" and "file_gone" in err.value.message
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.runs.create(
            thread_id=thread.id,
            assistant_id=assistant.id,
            additional_messages=[{"role": "user", "content": "x", "attachments": attachment}],
        )
    assert err.value.body["param"] == "additional_messages[0].attachments[0].file_id"
    assert client.beta.threads.messages.list(thread.id).data == []  # nothing half-written
    assert [a.id for a in client.beta.assistants.list()] == [assistant.id]
