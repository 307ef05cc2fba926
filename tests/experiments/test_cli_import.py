"""``allystance data import``: records written, summary printed, bad inputs named, --explain."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from experiments.cli import app

runner = CliRunner()
FIXTURES = Path(__file__).resolve().parents[1] / "inference" / "fixtures"


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_import_writes_unlabelled_records_and_a_summary(tmp_path):
    out = tmp_path / "paragraphs.jsonl"
    result = runner.invoke(
        app, ["data", "import", str(FIXTURES / "headline_twice.txt"), str(FIXTURES / "widgets.txt"), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    records = _records(out)
    assert [r["id"] for r in records] == [
        "headline_twice-p00",
        "headline_twice-p01",
        "headline_twice-p02",
        "widgets-p00",
        "widgets-p01",
        "widgets-p02",
    ]
    first = records[0]
    assert set(first) == {
        "id",
        "article_id",
        "position",
        "text",
        "topics",
        "stance",
        "source",
        "date",
        "title",
        "url",
        "start",
        "end",
        "related",
    }
    assert (first["topics"], first["stance"], first["source"]) == ([], {}, "unknown")
    assert first["title"] == "Seoul and Washington fail to close cost-sharing gap"
    text = (FIXTURES / "headline_twice.txt").read_text(encoding="utf-8")
    assert text[first["start"] : first["end"]] == first["text"]
    assert re.search(r"paragraphs kept\s*│\s*6\n", result.output)
    assert "widget" in result.output and "wrote 6 paragraph records" in result.output


def test_import_explain_lists_each_dropped_block(tmp_path):
    out = tmp_path / "p.jsonl"
    result = runner.invoke(app, ["data", "import", str(FIXTURES / "caption_glued.txt"), "-o", str(out), "--explain"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("caption_glued:")]
    assert [line.split("\t")[1] for line in lines] == ["caption", "repeated"]


def test_keep_related_flags_related_paragraphs(tmp_path):
    out = tmp_path / "p.jsonl"
    args = ["data", "import", str(FIXTURES / "related_long_line.txt"), "-o", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    assert [r["related"] for r in _records(out)] == [False, False]
    assert runner.invoke(app, [*args, "--keep-related"]).exit_code == 0
    assert [r["related"] for r in _records(out)] == [False, False] + [True] * 6


def test_bad_inputs_are_named_and_the_rest_is_imported(tmp_path):
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    (tmp_path / "bad.csv").write_text("headline\nx\n", encoding="utf-8")
    out = tmp_path / "p.jsonl"
    result = runner.invoke(
        app,
        [
            "data",
            "import",
            str(tmp_path / "empty.txt"),
            str(tmp_path / "bad.csv"),
            "nowhere.txt",
            str(FIXTURES / "about_us.txt"),
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(_records(out)) == 2
    for expected in ("empty file", "no 'text' column (columns: headline)", "no such file or directory"):
        assert expected in result.output


def test_nothing_readable_is_a_one_line_error(tmp_path):
    result = runner.invoke(app, ["data", "import", str(tmp_path / "missing.txt"), "-o", str(tmp_path / "p.jsonl")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == "error: no article could be read from the inputs"
