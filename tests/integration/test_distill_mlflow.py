"""The distill family end to end through the CLI: a logged teacher (the small baseline) in a
temp store, a tiny BERT student taught its scores on the training split plus unlabelled
articles, the student logged, registered and reloaded; the teacher's scores cached."""

import re

import numpy as np
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from experiments.cli import app
from inference.model_io import load_predictor
from labels import read_records
from tests.conftest import write_jsonl
from training.tracking import REGISTERED_MODEL, use_store

pytestmark = pytest.mark.slow

UNLABELLED = [
    {
        "article_id": "u-1",
        "title": "Allies weigh the spring drills",
        "text": "Seoul and Washington said the spring drills would go ahead on a smaller scale.\n\n"
        "Pyongyang called the plan a rehearsal for invasion and warned of a response.\n\n"
        "Officials in Seoul said they still hoped to reopen the liaison office this year.",
    },
    {
        "article_id": "u-2",
        "title": "Budget talks",
        "text": "Negotiators met for a fourth round on the cost of keeping US troops in Korea.\n\n"
        "The finance ministry said tax revenue rose for a third straight quarter.",
    },
]


def _distill(teacher: str, small_dataset, tiny_base_model, tracking_uri, unlabelled, *extra: str):
    settings = [
        f"data={small_dataset}",
        f"base_model={tiny_base_model}",
        f"unlabelled={unlabelled}",
        "epochs=1",
        "max_length=48",
        "batch_size=8",
        "eval_batch_size=32",
        *extra,
    ]
    args = ["train", "distill", teacher, "--tracking-uri", tracking_uri]
    for item in settings:
        args += ["--set", item]
    return CliRunner().invoke(app, args)


def test_distill_teaches_a_student_and_registers_it(
    trained_baseline, small_dataset, tiny_base_model, tracking_uri, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # the teacher's score cache goes under ./.allystance/distill
    unlabelled = write_jsonl(tmp_path / "unlabelled.jsonl", UNLABELLED)
    teacher = f"models:/{REGISTERED_MODEL}/{trained_baseline.model_version}"
    result = _distill(teacher, small_dataset, tiny_base_model, tracking_uri, unlabelled, "feature_weight=0")
    assert result.exit_code == 0, result.output
    assert "Stance designs (dev)" in result.output and "Test split" in result.output
    assert len(list((tmp_path / ".allystance" / "distill").glob("*.npz"))) == 2  # training split, unlabelled

    use_store(tracking_uri)
    client = MlflowClient()
    version = client.get_model_version(REGISTERED_MODEL, re.search(r"allystance version (\d+)", result.output)[1])
    run = client.get_run(version.run_id)
    assert run.data.tags["family"] == "distill" and version.tags["family"] == "distill"
    train_paragraphs = sum(r["split"] == "train" for r in read_records(small_dataset))
    assert run.data.params["transfer.labelled"] == str(train_paragraphs)
    assert run.data.params["transfer.unlabelled"] == "5"
    assert run.data.params["teacher"] == teacher and len(run.data.params["teacher.sha256"]) == 64
    for split in ("dev", "test"):
        assert 0.0 <= run.data.metrics[f"{split}_combined_f1"] <= 1.0

    student = load_predictor(f"models:/{REGISTERED_MODEL}/{version.version}")
    assert student.meta.family == "distill" and student.meta.extra["teacher"] == teacher
    assert student.meta.base_model == str(tiny_base_model)  # the student's encoder, not the teacher's
    texts = [u["text"].split("\n\n")[0] for u in UNLABELLED]
    topics, stance = student.score(texts)
    assert topics.shape == (2, 4) and np.allclose(stance.sum(-1), 1.0, atol=1e-5)


def test_distill_refuses_a_teacher_trained_on_other_data(
    trained_baseline, small_dataset, tiny_base_model, tracking_uri, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    records = read_records(small_dataset)
    dropped = next(r["article_id"] for r in records if r["split"] == "train")
    other = [r for r in records if r["article_id"] != dropped]  # other data: one training article fewer
    other_file = write_jsonl(tmp_path / "other.jsonl", other)
    teacher = f"models:/{REGISTERED_MODEL}/{trained_baseline.model_version}"
    result = _distill(teacher, other_file, tiny_base_model, tracking_uri, "null")
    assert result.exit_code != 0
    assert "trained on other data" in result.output and "distil from a teacher" in result.output
    assert not (tmp_path / ".allystance").exists()  # refused before the teacher scored anything


def test_distill_without_a_teacher_says_how_to_give_one(small_dataset, tracking_uri):
    result = CliRunner().invoke(
        app, ["train", "distill", "--set", f"data={small_dataset}", "--tracking-uri", tracking_uri]
    )
    assert result.exit_code != 0 and "give a teacher model" in result.output
    assert "Traceback" not in result.output


def test_distill_with_feature_matching_caches_the_teachers_features_and_trains_the_student(
    trained_transformer, small_dataset, tiny_base_model, tracking_uri, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    unlabelled = write_jsonl(tmp_path / "unlabelled.jsonl", UNLABELLED)
    teacher = f"models:/{REGISTERED_MODEL}/{trained_transformer.model_version}"
    result = _distill(teacher, small_dataset, tiny_base_model, tracking_uri, unlabelled, "feature_weight=1.0")
    assert result.exit_code == 0, result.output
    cached = sorted((tmp_path / ".allystance" / "distill").glob("*-features.npy"))
    assert len(cached) == 2  # training split, unlabelled
    train_paragraphs = sum(r["split"] == "train" for r in read_records(small_dataset))
    features = np.load(next(p for p in cached if np.load(p).shape[0] == train_paragraphs))
    assert features.dtype == np.float16 and features.shape[2] == 32  # the tiny BERT's width
    use_store(tracking_uri)
    version = MlflowClient().get_model_version(
        REGISTERED_MODEL, re.search(r"allystance version (\d+)", result.output)[1]
    )
    run = MlflowClient().get_run(version.run_id)
    assert run.data.params["feature_weight"] == "1.0"
    assert all(np.isfinite(v) for k, v in run.data.metrics.items() if k.startswith("train_loss"))


def test_feature_matching_refuses_a_teacher_without_an_encoder(
    trained_baseline, small_dataset, tiny_base_model, tracking_uri, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    teacher = f"models:/{REGISTERED_MODEL}/{trained_baseline.model_version}"
    result = _distill(teacher, small_dataset, tiny_base_model, tracking_uri, "null")  # the default feature_weight
    assert result.exit_code != 0
    assert "needs a transformer-family teacher" in result.output and "Traceback" not in result.output
    assert not (tmp_path / ".allystance").exists()  # refused before the teacher scored anything
