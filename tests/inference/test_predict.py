"""Batch prediction: inputs of every kind, outputs of every format, bad records, resume."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from inference.model_io import load_model, save_model
from inference.predict import OUTPUT_FIELDS, PredictSettings, predict_files
from inference.tfidf import TfidfTopicStance
from labels import load_schema
from tests.conftest import small_subset
from training.runs import make_meta

FIXTURES = Path(__file__).parent / "fixtures"
SCHEMA = load_schema()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A real TF-IDF model fitted on a slice of the shipped data, saved as a model folder."""
    records = small_subset(40, 0)
    texts = [r["text"] for r in records]
    topics = np.array([SCHEMA.encode_topics(r["topics"]) for r in records])
    stances = np.array([SCHEMA.encode_stances(r["stance"]) for r in records])
    model = TfidfTopicStance().fit(texts, topics, stances)
    return save_model(tmp_path_factory.mktemp("model") / "m", model, make_meta("baseline", SCHEMA, [0.5] * 4))


@pytest.fixture(scope="module")
def predictor(model_dir):
    return load_model(model_dir)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _table(tmp_path: Path, n: int = 6) -> list[dict]:
    records = small_subset(3, 0)[:n]
    return [
        {"id": f"r{i}", "text": r["text"], "date": r["date"], "source": r["source"], "article_id": r["article_id"]}
        for i, r in enumerate(records)
    ]


def test_article_files_become_rows_with_exact_fields(tmp_path, predictor):
    out = tmp_path / "out.jsonl"
    report = predict_files([str(FIXTURES / "headline_twice.txt")], predictor, out, "m")
    rows = _rows(out)
    assert report.paragraphs == len(rows) > 0 and report.articles == 1
    for i, row in enumerate(rows):
        assert list(row)[: len(OUTPUT_FIELDS)] == list(OUTPUT_FIELDS)
        assert set(row) - set(OUTPUT_FIELDS) <= {"title", "date", "source", "url"}
        assert row["id"] == f"headline_twice:{i}" and row["position"] == i
        assert set(row["topic_scores"]) == set(SCHEMA.topic_ids)
        assert set(row["stance"]) == set(row["topics"]) == set(row["stance_scores"])
        assert row["model"] == "m"
    # the same labels as the predictor gives for the same texts
    expected = predictor.predict([r["text"] for r in rows])
    assert [r["topics"] for r in rows] == [p.topics for p in expected]
    assert [r["stance"] for r in rows] == [p.stance for p in expected]


def test_wire_copy_is_classified_without_its_codes(tmp_path, predictor):
    text = (FIXTURES / "wire_flattened.txt").read_text(encoding="utf-8")
    table = tmp_path / "wire.jsonl"
    table.write_text(json.dumps({"id": "w1", "title": "(LEAD) Allies push back drills", "text": text}) + "\n")
    out = tmp_path / "out.jsonl"
    predict_files([str(table)], predictor, out, "m", PredictSettings(segment_tables=True))
    rows = _rows(out)
    assert [r["title"] for r in rows] == ["Allies push back drills"] * 4
    assert rows[0]["text"].startswith("SEOUL, March 2 (Yonhap) -- South Korea")
    assert not any(code in r["text"] for r in rows for code in ("(LEAD)", "(ATTN", "By Park", "(END)"))


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_tables_are_paragraphs_as_they_are(tmp_path, predictor, suffix):
    rows = _table(tmp_path)
    path = tmp_path / f"in{suffix}"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif suffix == ".csv":
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    out = tmp_path / "out.jsonl"
    predict_files([str(path)], predictor, out, "m")
    got = _rows(out)
    assert [r["id"] for r in got] == [r["id"] for r in rows]
    assert [r["text"] for r in got] == [" ".join(r["text"].split()) for r in rows]
    assert [r["source"] for r in got] == [r["source"] for r in rows]
    assert all(r["article_id"] == rows[0]["article_id"] for r in got[:1])


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_output_formats_hold_the_same_rows(tmp_path, predictor, suffix):
    inputs = [str(FIXTURES / "combined_markdown.md"), str(FIXTURES / "page.html")]
    reference = tmp_path / "ref.jsonl"
    predict_files(inputs, predictor, reference, "m")
    out = tmp_path / f"out{suffix}"
    predict_files(inputs, predictor, out, "m")
    expected = _rows(reference)
    if suffix == ".jsonl":
        got = _rows(out)
    elif suffix == ".csv":
        with out.open(newline="") as fh:
            got = list(csv.DictReader(fh))
        for row in got:
            for key in ("topics", "stance", "topic_scores", "stance_scores"):
                row[key] = json.loads(row[key])
            row["position"] = int(row["position"])
            for key in [k for k, v in row.items() if v == ""]:
                del row[key]
    else:
        got = pq.read_table(out).to_pylist()
        for row in got:
            for key in ("stance", "topic_scores"):
                row[key] = dict(row[key])
            row["stance_scores"] = {t: dict(s) for t, s in row["stance_scores"]}
            for key in [k for k, v in row.items() if v is None]:
                del row[key]
    assert got == expected
    assert not list(tmp_path.glob("*.partial*"))


def test_bad_records_are_listed_and_the_rest_written(tmp_path, predictor):
    good = _table(tmp_path, 3)
    lines = [
        json.dumps(good[0]),
        "{not json",
        json.dumps({"id": "empty", "text": "   "}),
        json.dumps({"id": "num", "text": 42}),
        json.dumps(good[1]),
        json.dumps({"id": "huge", "text": "word " * 30_000}),
        json.dumps(good[2]),
    ]
    table = tmp_path / "in.jsonl"
    table.write_text("\n".join(lines) + "\n")
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(json.dumps({"id": "bad-bytes", "text": "caf"}).encode()[:-2] + b'\xe9"}\n')
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02" * 100)
    out, errors = tmp_path / "out.jsonl", tmp_path / "errors.jsonl"
    report = predict_files(
        [str(table), str(latin), str(tmp_path / "binary.txt"), str(tmp_path / "missing.txt")],
        predictor,
        out,
        "m",
        errors=errors,
    )
    assert [r["id"] for r in _rows(out)] == ["r0", "r1", "r2"]
    bad = _rows(errors)
    assert [(b["line"], b["reason"].split(" (")[0]) for b in bad[:4]] == [
        (2, "invalid JSON"),
        (3, "no text in this row"),
        (4, "no text in this row"),
        (6, "text over 100,000 characters"),
    ]
    assert bad[4]["source"].endswith("latin.jsonl") and "undecodable" in bad[4]["reason"]
    assert bad[5]["reason"] == "binary file, not text"
    assert bad[6]["reason"] == "no such file or directory"
    assert len(report.bad) == 7


def test_article_summaries(tmp_path, predictor):
    out, articles = tmp_path / "out.jsonl", tmp_path / "articles.jsonl"
    predict_files([str(FIXTURES)], predictor, out, "m", articles=articles)
    rows, summaries = _rows(out), _rows(articles)
    assert [s["article_id"] for s in summaries] == list(dict.fromkeys(r["article_id"] for r in rows))
    for summary in summaries:
        mine = [r for r in rows if r["article_id"] == summary["article_id"]]
        assert summary["paragraphs"] == len(mine)
        for topic, info in summary["topics"].items():
            with_topic = [r for r in mine if topic in r["topics"]]
            assert info["paragraphs"] == len(with_topic)
            assert info["share"] == round(len(with_topic) / len(mine), 4)
            stances = [r["stance"][topic] for r in with_topic]
            assert stances.count(info["stance"]) == max(stances.count(s) for s in set(stances))


def test_workers_give_the_same_rows(tmp_path, predictor):
    inputs = [str(FIXTURES)]
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    predict_files(inputs, predictor, one, "m", PredictSettings(batch_size=4, workers=1))
    predict_files(inputs, predictor, two, "m", PredictSettings(batch_size=4, workers=2))
    assert one.read_text() == two.read_text()


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_output(tmp_path, model_dir):
    records = small_subset(60, 0)
    table = tmp_path / "in.jsonl"
    table.write_text("".join(json.dumps({"id": f"p{i}", "text": r["text"]}) + "\n" for i, r in enumerate(records * 8)))
    command = [
        sys.executable,
        "-m",
        "experiments",
        "-q",
        "predict",
        str(table),
        "--model",
        str(model_dir),
        "--batch-size",
        "8",
        "--workers",
        "1",
    ]
    env = dict(os.environ, COLUMNS="100")
    full = tmp_path / "full.jsonl"
    subprocess.run([*command, "-o", str(full)], check=True, env=env, capture_output=True)

    out = tmp_path / "out.jsonl"
    partial = tmp_path / "out.jsonl.partial"
    proc = subprocess.Popen([*command, "-o", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and (not partial.exists() or partial.stat().st_size < 20_000):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert partial.exists() and not out.exists(), "the run should have been killed mid-way"
    done_before = partial.read_text().count("\n")
    assert 0 < done_before < len(records) * 8

    result = subprocess.run([*command, "-o", str(out), "--resume"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert out.read_text() == full.read_text()
    assert "of which resumed" in result.stderr
