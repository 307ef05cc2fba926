"""Growing the dataset from the command line: suggest, a Label Studio round trip, merge, audit."""

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from experiments.cli import app
from inference.model_io import save_model
from inference.tfidf import TfidfTopicStance
from labels import load_schema, read_records
from labels.splits import SplitSettings, split_of
from tests.conftest import small_subset, write_jsonl
from training.evaluate import Gold
from training.runs import make_meta

runner = CliRunner()
EXPORT = Path(__file__).with_name("fixtures") / "label_studio_export.json"


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    """A small TF-IDF model saved as a local folder (no MLflow needed)."""
    schema = load_schema()
    records = small_subset(20, 0)
    gold = Gold.from_records(records, schema)
    model = TfidfTopicStance(char_ngrams=(3, 4)).fit(gold.texts, gold.topics, gold.stances)
    return save_model(tmp_path_factory.mktemp("model") / "m", model, make_meta("baseline", schema, [0.5] * 4))


@pytest.fixture
def pool_file(tmp_path: Path) -> Path:
    labelled = {r["text"] for r in small_subset(20, 0)}
    unlabelled = [r for r in read_records() if r["text"] not in labelled][:40]
    return write_jsonl(tmp_path / "pool.jsonl", [{**r, "topics": [], "stance": {}} for r in unlabelled])


def test_suggest_writes_label_studio_tasks_and_config(tmp_path: Path, model_folder: Path, pool_file: Path):
    out = tmp_path / "batch.json"
    args = [
        "data",
        "suggest",
        str(pool_file),
        "-n",
        "5",
        "--model",
        str(model_folder),
        "--diverse",
        "--format",
        "label-studio",
        "--exclude",
        str(EXPORT.with_suffix(".missing")),
        "-o",
        str(out),
    ]
    assert runner.invoke(app, args).exit_code == 1  # a missing --exclude file is a one-line error
    args[args.index("--exclude") : args.index("--exclude") + 2] = ["--exclude", str(pool_file.with_name("none.jsonl"))]
    write_jsonl(pool_file.with_name("none.jsonl"), [])
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    tasks = json.loads(out.read_text(encoding="utf-8"))
    assert len(tasks) == 5
    config = ET.fromstring((tmp_path / "batch.config.xml").read_text(encoding="utf-8"))
    controls = {c.get("name") for c in config.iter("Choices")}
    for task in tasks:
        assert task["data"]["text"] and task["data"]["id"]
        (prediction,) = task["predictions"]
        assert 0.0 <= prediction["score"] <= 1.0 and prediction["model_version"] == str(model_folder)
        assert all(item["from_name"] in controls for item in prediction["result"])
    assert [t["data"]["rank"] for t in tasks] == [1, 2, 3, 4, 5]
    assert sorted((t["data"]["uncertainty"] for t in tasks), reverse=True) == [t["data"]["uncertainty"] for t in tasks]


def test_suggest_jsonl_leaves_out_labelled_texts(tmp_path: Path, model_folder: Path, pool_file: Path):
    out = tmp_path / "batch.jsonl"

    def suggest(n: int, *options: str):
        args = ["data", "suggest", str(pool_file), "-n", str(n), "--model", str(model_folder), *options]
        return runner.invoke(app, [*args, "-o", str(out)])

    result = suggest(50, "--exclude", str(pool_file))
    assert result.exit_code == 1 and "already labelled" in result.output
    # The pool comes from the shipped dataset, which --exclude leaves out by default.
    assert suggest(3, "--strategy", "uncertainty").exit_code == 1
    empty = write_jsonl(tmp_path / "empty.jsonl", [])
    result = suggest(3, "--strategy", "uncertainty", "--exclude", str(empty))
    assert result.exit_code == 0, result.output
    rows = read_records(out)
    assert [r["rank"] for r in rows] == [1, 2, 3] and all(set(r["stance"]) == set(r["topics"]) for r in rows)


def test_hand_written_export_merges_into_records_that_pass_validate(tmp_path: Path, dataset_file: Path):
    into = tmp_path / "mine.jsonl"
    shutil.copy(dataset_file, into)
    result = runner.invoke(app, ["data", "merge", str(EXPORT), "--into", str(into)])
    assert result.exit_code == 0, result.output
    assert "merged 3 records" in result.output and "skipped task 104" in result.output
    records = read_records(into)
    assert len(records) == 6 + 3
    new = {r["id"]: r for r in records[6:]}
    assert new["harbor-notes-p02"]["stance"] == {"cost_sharing": "against"}
    assert new["harbor-notes-p03"]["topics"] == ["exercises", "inter_korean"]
    assert new["harbor-notes-p04"]["topics"] == [] and new["harbor-notes-p04"]["position"] == 4
    assert {r["split"] for r in new.values()} == {split_of("harbor-notes", SplitSettings())}
    validate = runner.invoke(app, ["data", "validate", str(into)])
    assert validate.exit_code == 0, validate.output
    again = runner.invoke(app, ["data", "merge", str(EXPORT), "--into", str(into)])
    assert "merged 0 records" in again.output and "refused duplicate: harbor-notes-p02" in again.output
    assert len(read_records(into)) == 9


def test_an_export_outside_the_schema_merges_nothing(tmp_path: Path, dataset_file: Path):
    tasks = json.loads(EXPORT.read_text(encoding="utf-8"))
    tasks[1]["annotations"][0]["result"][2]["value"]["choices"] = ["supportive"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(tasks), encoding="utf-8")
    before = dataset_file.read_text(encoding="utf-8")
    result = runner.invoke(app, ["data", "merge", str(bad), "--into", str(dataset_file)])
    assert result.exit_code == 1
    assert "task 102: stance of inter_korean should be one of favor, against, neutral" in result.output
    assert dataset_file.read_text(encoding="utf-8") == before


def test_merge_refuses_a_near_duplicate_that_validate_would_reject(tmp_path: Path, dataset_file: Path, records):
    tasks = json.loads(EXPORT.read_text(encoding="utf-8"))[:1]
    tasks[0]["data"]["text"] = records[0]["text"].replace("an hour", "two hours")
    export = tmp_path / "near.json"
    export.write_text(json.dumps(tasks), encoding="utf-8")
    result = runner.invoke(app, ["data", "merge", str(export), "--into", str(dataset_file)])
    assert result.exit_code == 1 and "near-duplicate" in result.output
    assert len(read_records(dataset_file)) == 6


def test_edited_suggestions_merge_as_jsonl(tmp_path: Path, dataset_file: Path):
    edited = write_jsonl(
        tmp_path / "batch.jsonl",
        [
            {
                "id": "n-p00",
                "article_id": "n",
                "position": 0,
                "text": "Seoul and Pyongyang reopened the liaison office.",
                "topics": ["inter_korean"],
                "stance": {"inter_korean": "favor"},
                "source": "wire",
                "date": None,
                "rank": 1,
                "uncertainty": 0.9,
                "model": "m",
                "topic_scores": {"opcon": 0.1},
            },
        ],
    )
    result = runner.invoke(app, ["data", "merge", str(edited), "--into", str(dataset_file)])
    assert result.exit_code == 0, result.output
    added = read_records(dataset_file)[-1]
    assert set(added) == {"id", "article_id", "position", "text", "topics", "stance", "source", "date", "split"}
    assert runner.invoke(app, ["data", "validate", str(dataset_file)]).exit_code == 0


def test_audit_command_writes_ranked_flags(tmp_path: Path):
    records = small_subset(12, 3)
    records[0] = {**records[0], "topics": ["opcon"], "stance": {"opcon": "favor"}}
    data = write_jsonl(tmp_path / "d.jsonl", records)
    out = tmp_path / "audit.csv"
    result = runner.invoke(app, ["data", "audit", str(data), "--folds", "3", "-o", str(out), "--top", "3"])
    assert result.exit_code == 0, result.output
    assert "flagged" in result.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("rank,id,score,issues,given,suggested,evidence,text")
    assert np.all(np.diff([float(line.split(",")[2]) for line in lines[1:4]]) <= 0)
    bad = runner.invoke(app, ["data", "audit", str(data), "--folds", "1", "-o", str(out)])
    assert bad.exit_code == 1 and "--folds must be between 2" in bad.output
