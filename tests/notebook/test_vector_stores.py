"""Vector stores from a notebook ``Session`` on the in-process engine: made from paths,
``(name, bytes)`` and file ids with a progress line, searched into a DataFrame, listed as
DataFrames, and shown by ``inspect()`` when the assistant or thread uses them."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant_kit.errors import SessionError
from assistant_kit.notebook import tables
from assistant_kit.notebook.session import Session

pytestmark = pytest.mark.timeout(60)

GCD = "The math module's gcd function returns the greatest common divisor of two integers.\n"


def test_create_search_tables_and_inspect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "gcd.md"
    path.write_text(GCD)
    session = Session(tmp_path / "kit.db")
    uploaded = session.client.files.create(
        file=("paths.txt", b"pathlib handles filesystem paths.\n"), purpose="assistants"
    )
    session.create_vector_store(
        "docs",
        files=[
            path,
            ("sort.txt", b"sorted returns a new sorted list.\n"),
            uploaded.id,
            ("bin.dat", bytes(range(256))),
        ],
    )
    store = session.vector_store
    assert store is not None and store.status == "completed"
    assert (store.file_counts.completed, store.file_counts.failed, store.file_counts.total) == (3, 1, 4)
    progress = capsys.readouterr().err
    assert "docs: [" in progress and "4/4 files (3 completed, 1 failed)" in progress

    found = session.search("greatest common divisor", max_num_results=2)
    assert list(found.columns[:3]) == ["file", "score", "snippet"]
    assert found.iloc[0]["file"] == "gcd.md" and 0 < found.iloc[0]["score"] <= 1
    assert "greatest common divisor" in found.iloc[0]["snippet"]

    stores = tables.vector_stores(session.client)
    assert list(stores["id"]) == [store.id] and stores.iloc[0]["files_completed"] == 3
    assert str(stores["created_at"].dtype) == "datetime64[s, UTC]" or "UTC" in str(stores["created_at"].dtype)
    files = session.vector_store_files()
    assert list(files["filename"]) == ["gcd.md", "sort.txt", "paths.txt", "bin.dat"]
    assert list(files["status"]) == ["completed"] * 3 + ["failed"]
    assert files.iloc[3]["last_error"].startswith("unsupported_file")
    assert files.iloc[0]["chunk_tokens"] == 800 and files.iloc[0]["overlap_tokens"] == 400

    session.create_assistant(
        "test/echo", tools=["file_search"], tool_resources={"file_search": {"vector_store_ids": [store.id]}}
    ).create_thread()
    inspection = session.inspect()
    assert [s.id for s in inspection.vector_stores] == [store.id]
    assert f"vector store: {store.id} 'docs' completed: 3/4 files ingested, 1 failed" in repr(inspection)
    assert "Vector stores (1)" in inspection._repr_html_()
    other = Session(tmp_path / "kit.db").create_assistant(
        "test/echo", tools=["file_search"], tool_resources={"file_search": {"vector_store_ids": [store.id]}}
    )
    assert other.search("sorted list").iloc[0]["file"] == "sort.txt"  # the assistant's store


def test_bad_files_and_no_store(tmp_path: Path) -> None:
    session = Session(tmp_path / "kit.db")
    with pytest.raises(SessionError) as err:
        session.create_vector_store("x", files=[tmp_path / "missing.txt"])
    assert err.value.param == "files"
    with pytest.raises(SessionError):
        session.create_vector_store("x", files=["file-doesnotexist"])
    with pytest.raises(SessionError) as err:
        session.search("anything")
    assert err.value.param == "vector_store_id"
    session.create_vector_store("quiet", files=[("a.txt", b"alpha beta\n")], progress=False)
    assert session.vector_store.file_counts.completed == 1
    assert list(session.vector_stores()["name"]) == ["quiet"]  # the refused ones stored nothing
