"""``assistant_kit.tools.code_interpreter``: what the model reads back and how the answer's
mentions of written files become ``file_path`` annotations (pure functions, no kernel)."""

from __future__ import annotations

from typing import Any

from assistant_kit.tools.code_interpreter import file_annotations, model_result


def _file(name: str, file_id: str, size: int = 3) -> dict[str, Any]:
    return {"filename": name, "id": file_id, "bytes": size, "purpose": "assistants_output"}


def _marks(text: str, files: list[dict[str, Any]]) -> list[tuple[str, str]]:
    found = file_annotations(text, files)
    for a in found:
        assert text[a["start_index"] : a["end_index"]] == a["text"]
    return [(a["text"], a["file_path"]["file_id"]) for a in found]


def test_the_hosted_tool_link_forms_are_annotated_whole() -> None:
    text = "[Download](sandbox:/mnt/data/out.csv), or /mnt/data/out.csv, or just out.csv."
    assert _marks(text, [_file("out.csv", "f1")]) == [
        ("sandbox:/mnt/data/out.csv", "f1"),
        ("/mnt/data/out.csv", "f1"),
        ("out.csv", "f1"),
    ]


def test_a_name_counts_only_as_a_whole_path() -> None:
    files = [_file("out.csv", "f1"), _file("sub/a.csv", "f2")]
    text = "xout.csv out.csvx out.csv.bak dir/out.csv mysub/a.csv | sub/a.csv /mnt/data/sub/a.csv"
    assert _marks(text, files) == [("sub/a.csv", "f2"), ("/mnt/data/sub/a.csv", "f2")]


def test_a_name_written_twice_means_the_latest_file() -> None:
    files = [_file("out.csv", "first"), _file("out.csv", "second")]
    assert _marks("see out.csv and sandbox:/mnt/data/out.csv", files) == [
        ("out.csv", "second"),
        ("sandbox:/mnt/data/out.csv", "second"),
    ]


def test_offsets_are_characters_not_bytes() -> None:
    text = "Voilà 🎉 — out.csv"
    ((name, _),) = _marks(text, [_file("out.csv", "f1")])
    assert name == "out.csv"


def test_model_result_names_every_written_file_pngs_too() -> None:
    call = {
        "code_interpreter": {
            "outputs": [{"type": "logs", "logs": "done\n"}, {"type": "image", "image": {"file_id": "img1"}}]
        }
    }
    result = model_result(call, [_file("chart.png", "f1", 10), _file("chart.csv", "f2", 5)])
    assert [line for line in result.splitlines() if line] == [
        "done",
        "[1 image(s) shown to the user: img1]",
        "[file written: chart.png (10 bytes), id f1]",
        "[file written: chart.csv (5 bytes), id f2]",
    ]


def test_each_engine_announces_once_and_no_engine_silences_another(tmp_path: Any, capsys: Any) -> None:
    """The "runs model-written Python on this machine" line is the engine's own state: one
    line per engine however often it runs code, and a second engine (another database in
    the same process) says it too rather than finding a process-wide flag already set."""
    from assistant_kit.tools.code_interpreter import CodeInterpreter, CodeInterpreterSettings

    def interpreter(name: str) -> CodeInterpreter:
        directory = tmp_path / name
        return CodeInterpreter(
            CodeInterpreterSettings(enabled=True, announce=True, sandbox="none", directory=directory)
        )

    first, second = interpreter("a"), interpreter("b")
    first._announce()
    first._announce()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "NOT sandboxed (sandbox: none)" in lines[0] and str(tmp_path / "a") in lines[0]
    second._announce()
    assert str(tmp_path / "b") in capsys.readouterr().err
    quiet = CodeInterpreter(CodeInterpreterSettings(enabled=True, sandbox="none", directory=tmp_path / "c"))
    quiet._announce()
    assert capsys.readouterr().err == ""
