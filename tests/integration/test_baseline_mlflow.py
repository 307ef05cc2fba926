"""Train on a small fixture against a store in a temp dir, reload, compare, promote."""

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from inference.model_io import load_predictor
from inference.pyfunc import OUTPUT_COLUMNS
from labels import read_records
from training.baseline import train_baseline, train_rules
from training.config import BaselineRecipe, RulesRecipe, build
from training.evaluate import Gold, evaluate, precision_thresholds
from training.tracking import CHAMPION, REGISTERED_MODEL, use_store

pytestmark = pytest.mark.slow


def test_run_logs_everything(trained_baseline, tracking_uri):
    use_store(tracking_uri)
    run = MlflowClient().get_run(trained_baseline.run_id)
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    assert tags["family"] == "baseline"
    assert len(tags["schema_hash"]) == 16 and tags["schema_version"]
    assert tags["git_commit"] and tags["dataset_digest"]
    assert params["topics.model"] == "logreg" and "chosen.stance.design" in params
    for split in ("dev", "test"):
        for name in (
            "topic_micro_f1",
            "topic_macro_f1",
            "topic_exact_match",
            "stance_macro_f1",
            "stance_f_avg",
            "stance_e2e_accuracy",
            "topic_opcon_f1",
        ):
            assert 0.0 <= metrics[f"{split}_{name}"] <= 1.0
    artifacts = {a.path for a in MlflowClient().list_artifacts(run.info.run_id, "eval")}
    assert {
        "eval/test_topic_confusion.png",
        "eval/test_stance_confusion.png",
        "eval/test_worst_errors.csv",
    } <= artifacts
    children = MlflowClient().search_runs(
        [run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    )
    assert len(children) == 4  # 2 topic settings + 2 stance designs


def test_reloaded_pyfunc_equals_in_memory_predictions(trained_baseline, tracking_uri, small_dataset):
    use_store(tracking_uri)
    texts = [r["text"] for r in read_records(small_dataset)][:40]
    uri = f"models:/{REGISTERED_MODEL}/{trained_baseline.model_version}"
    predictor = load_predictor(uri)
    in_memory = predictor.predict(texts)
    frame = mlflow.pyfunc.load_model(uri).predict(pd.DataFrame({"text": texts}))
    assert list(frame.columns) == list(OUTPUT_COLUMNS)
    assert [list(t) for t in frame["topics"]] == [p.topics for p in in_memory]
    # And against a fresh fit of the same model kept in memory: the artifact changed nothing.
    scores = predictor.score(texts)
    again = load_predictor(f"models:/{REGISTERED_MODEL}@{CHAMPION}").score(texts)
    np.testing.assert_array_equal(scores[0], again[0])
    np.testing.assert_array_equal(scores[1], again[1])


def test_stream_operating_point_is_chosen_on_dev_logged_and_saved(trained_baseline, tracking_uri, small_dataset):
    predictor = trained_baseline.predictor
    point = predictor.meta.operating_points["stream"]
    assert point["min_precision"] == 0.95 and point["chosen_on"] == "team dev"
    balanced = predictor.meta.thresholds
    assert all(s >= b for s, b in zip(point["thresholds"], balanced, strict=True))
    records = read_records(small_dataset)
    dev, test = ([r for r in records if r["split"] == split] for split in ("dev", "test"))
    dev_scores, _ = predictor.score([r["text"] for r in dev])
    gold = Gold.from_records(dev, predictor.schema).topics
    assert point["thresholds"] == precision_thresholds(gold, dev_scores, balanced, 0.95)

    # The stream figures are the shared evaluation at those thresholds; selection stays balanced.
    metrics = trained_baseline.metrics
    expected = evaluate(test, *predictor.score([r["text"] for r in test]), point["thresholds"], predictor.schema, False)
    for name in ("topic_micro_f1", "topic_micro_precision", "topic_micro_recall", "stance_e2e_macro_f1"):
        assert metrics[f"test_stream_{name}"] == pytest.approx(expected.metrics[name])
    assert "dev_stream_topic_micro_f1" in metrics and metrics["selection_score"] == metrics["dev_combined_f1"]
    use_store(tracking_uri)
    client = MlflowClient()
    logged = client.get_run(trained_baseline.run_id).data.metrics
    assert logged["test_stream_topic_micro_precision"] == pytest.approx(metrics["test_stream_topic_micro_precision"])
    artifact = client.download_artifacts(trained_baseline.run_id, "thresholds_stream.json")
    saved = json.loads(Path(artifact).read_text())
    assert list(saved["thresholds"].values()) == point["thresholds"] and saved["min_precision"] == 0.95

    # The registered model keeps the point, and the pyfunc decides there when asked.
    uri = f"models:/{REGISTERED_MODEL}/{trained_baseline.model_version}"
    reloaded = load_predictor(uri, operating_point="stream")
    np.testing.assert_array_equal(reloaded.thresholds, point["thresholds"])
    texts = [r["text"] for r in records][:40]
    frame = mlflow.pyfunc.load_model(uri, model_config={"operating_point": "stream"}).predict(
        pd.DataFrame({"text": texts})
    )
    assert [list(t) for t in frame["topics"]] == [p.topics for p in predictor.at("stream").predict(texts)]


def test_same_recipe_and_seed_give_identical_metrics(trained_baseline, small_dataset, tracking_uri):
    recipe = build(
        BaselineRecipe,
        {"data": str(small_dataset), "search": {"topics.C": [1.0, 4.0], "stance.design": ["per_topic", "crossed"]}},
    )
    again = train_baseline(recipe, tracking_uri, promote=False)
    assert again.metrics == trained_baseline.metrics
    assert again.model_version != trained_baseline.model_version


def test_promotion_only_when_better(trained_baseline, small_dataset, tracking_uri):
    use_store(tracking_uri)
    client = MlflowClient()
    assert trained_baseline.promoted
    champion = client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION).version
    rules = train_rules(build(RulesRecipe, {"data": str(small_dataset)}), tracking_uri, promote=True)
    assert rules.metrics["dev_combined_f1"] < trained_baseline.metrics["dev_combined_f1"]
    assert not rules.promoted
    assert client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION).version == champion
    assert client.get_model_version(REGISTERED_MODEL, rules.model_version).tags["family"] == "rules"


def test_real_news_figures_are_logged_and_choose_the_champion(tmp_path, small_dataset, records):
    """With a real-news folder, training logs realnews_* and a selection score that averages
    team dev and real dev; without one, the selection score is the team-dev figure."""
    import json

    folder = tmp_path / "realnews"
    folder.mkdir()
    (folder / "dev.jsonl").write_text(
        "".join(json.dumps({**r, "origin": "wire"}) + "\n" for r in records), encoding="utf-8"
    )
    uri = f"sqlite:///{tmp_path / 'rn.db'}"
    with_real = train_rules(build(RulesRecipe, {"data": str(small_dataset), "realnews": str(folder)}), uri, True)
    m = with_real.metrics
    assert m["selection_score"] == pytest.approx((m["dev_combined_f1"] + m["realnews_combined_f1"]) / 2)
    logged = MlflowClient(uri).get_run(with_real.run_id).data.metrics
    assert logged["realnews_topic_micro_f1"] == pytest.approx(m["realnews_topic_micro_f1"])
    assert logged["selection_score"] == pytest.approx(m["selection_score"])
    # the real dev set at the stream point too, logged apart; it does not enter the selection
    assert logged["realnews_stream_topic_micro_precision"] == pytest.approx(m["realnews_stream_topic_micro_precision"])
    assert "realnews_stream_stance_e2e_macro_f1" in logged
    without = train_rules(build(RulesRecipe, {"data": str(small_dataset), "realnews": None}), uri, False)
    assert without.metrics["selection_score"] == without.metrics["dev_combined_f1"]
    assert not any(k.startswith("realnews_") for k in without.metrics)


def test_bench_realnews_skips_without_the_folder(tmp_path, capsys):
    from bench.realnews import main

    assert main(["--realnews", str(tmp_path / "absent")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "skipped" in out[0]


def test_bench_realnews_reports_and_logs_each_stored_operating_point(tmp_path, small_dataset, records, capsys):
    from bench.realnews import main

    folder = tmp_path / "realnews"
    folder.mkdir()
    (folder / "dev.jsonl").write_text("".join(json.dumps({**r, "origin": "wire"}) + "\n" for r in records))
    (folder / "stream.jsonl").write_text(
        "".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in records)
    )
    uri = f"sqlite:///{tmp_path / 'bench.db'}"
    rules = train_rules(build(RulesRecipe, {"data": str(small_dataset), "realnews": None}), uri, promote=False)
    args = ["--realnews", str(folder), "--tracking-uri", uri, "--out", str(tmp_path / "out"), "--sample", "2"]
    assert main([*args, "--min-precision", "0.9"]) == 0
    out = capsys.readouterr().out
    for point in ("balanced", "stream", "p0.9"):
        assert f"│ {point} " in out
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        f"stream_sample_rules{suffix}.jsonl" for suffix in ("", "_stream", "_p0.9")
    }
    logged = MlflowClient(uri).get_run(rules.run_id).data.metrics
    assert {"realnews_topic_micro_f1", "realnews_stream_topic_micro_f1", "realnews_stream_stream_topic_share"} <= set(
        logged
    )
    assert not any("p0.9" in k for k in logged)
