"""``allystance predict --explain`` and the evidence section of ``allystance report``."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from experiments.cli import app
from experiments.coverage import highlight
from inference.tfidf import TfidfTopicStance
from tests.conftest import small_subset, write_jsonl
from tests.inference.test_predict import model_dir  # noqa: F401 (fixture)

runner = CliRunner()


@pytest.fixture(scope="module")
def paragraphs(tmp_path_factory):
    """Paragraphs the small model gives topics to (and a few it does not), as a table."""
    records = [r for r in small_subset(40, 0) if r["topics"]][:25] + [
        r for r in small_subset(40, 0) if not r["topics"]
    ][:5]
    rows = [{"id": r["id"], "text": r["text"], "date": r["date"], "source": r["source"]} for r in records]
    return write_jsonl(tmp_path_factory.mktemp("explain") / "paragraphs.jsonl", rows)


def _rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_explain_adds_evidence_that_points_into_each_paragraph(tmp_path, model_dir, paragraphs):  # noqa: F811
    out = tmp_path / "explained.jsonl"
    result = runner.invoke(app, ["predict", str(paragraphs), "-m", str(model_dir), "-o", str(out), "--explain"])
    assert result.exit_code == 0, result.output
    rows = _rows(out)
    assert any(r["topics"] for r in rows)
    for row in rows:
        assert set(row["evidence"]) == set(row["topics"])
        for topic, parts in row["evidence"].items():
            assert parts["versus"] in ("favor", "against", "neutral") and parts["versus"] != row["stance"][topic]
            for phrase in parts["topic"] + parts["stance"] + parts["versus_evidence"]:
                assert row["text"][phrase["start"] : phrase["end"]] == phrase["text"]
    assert sum(bool(p["topic"]) for r in rows for p in r["evidence"].values()) >= len([r for r in rows if r["topics"]])


def test_without_explain_no_evidence_is_computed(tmp_path, model_dir, paragraphs, monkeypatch):  # noqa: F811
    def refuse(self, texts):
        raise AssertionError("evidence computed without --explain")

    monkeypatch.setattr(TfidfTopicStance, "word_attributions", refuse)
    out = tmp_path / "plain.jsonl"
    result = runner.invoke(app, ["predict", str(paragraphs), "-m", str(model_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert all("evidence" not in row for row in _rows(out))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_evidence_survives_csv_and_parquet_and_reaches_the_report(tmp_path, model_dir, paragraphs, suffix):  # noqa: F811
    out = tmp_path / f"explained{suffix}"
    result = runner.invoke(app, ["predict", str(paragraphs), "-m", str(model_dir), "-o", str(out), "--explain"])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    explained = [json.loads(e) for e in frame["evidence"]]
    assert any(explained) and all("topic" in parts for ev in explained for parts in ev.values())

    report = runner.invoke(app, ["report", str(out), "-o", str(tmp_path / "report"), "--by", "source"])
    assert report.exit_code == 0, report.output
    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "Evidence behind the labels" in page and "<span class='ev-topic" in page
    assert "with evidence (--explain)" in report.output


def test_a_report_without_evidence_has_no_evidence_section(tmp_path, model_dir, paragraphs):  # noqa: F811
    out = tmp_path / "plain.jsonl"
    assert runner.invoke(app, ["predict", str(paragraphs), "-m", str(model_dir), "-o", str(out)]).exit_code == 0
    assert runner.invoke(app, ["report", str(out), "-o", str(tmp_path / "r"), "--by", "source"]).exit_code == 0
    assert "Evidence behind the labels" not in (tmp_path / "r" / "report.html").read_text(encoding="utf-8")


def test_highlight_marks_each_kind_of_evidence_and_escapes_the_text():
    text = "Seoul <b>will not</b> pay more for the troops."

    def phrase(words: str, weight: float) -> dict:
        start = text.index(words)
        return {"text": words, "weight": weight, "start": start, "end": start + len(words)}

    evidence = {
        "topic": [phrase("pay more", 1.5)],
        "stance": [phrase("not", 2.0)],
        "versus": "favor",
        "versus_evidence": [phrase("more", 0.4)],
    }
    page = highlight(text, evidence, "against")
    assert "&lt;b&gt;" in page and "<b>" not in page
    assert "<span class='ev-stance ev-against' title='against +2.00'>not</span>" in page
    assert "<span class='ev-topic' title='topic +1.50'>pay </span>" in page
    # Where topic and runner-up evidence overlap, the word carries both marks.
    assert "<span class='ev-topic ev-versus' title='topic +1.50; favor +0.40'>more</span>" in page


def test_explain_is_refused_on_spark_in_one_line(tmp_path):
    result = runner.invoke(
        app, ["predict", "x.parquet", "-o", str(tmp_path / "o.parquet"), "--engine", "spark", "--explain"]
    )
    assert result.exit_code == 1
    assert result.output.strip() == "error: --explain runs with --engine local"
