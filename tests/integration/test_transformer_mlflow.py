"""The transformer and embedding families end to end on a tiny random BERT: train, log to a
store in a temp dir, reload through MLflow and through load_predictor, compare."""

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from experiments.cli import app
from inference.encoder import SmoothedLinear
from inference.model_io import agreement, load_predictor
from inference.pyfunc import OUTPUT_COLUMNS
from labels import read_records
from training.config import EmbedRecipe, build
from training.embed import train_embed
from training.tracking import REGISTERED_MODEL, use_store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def trained_embed(small_dataset, tiny_base_model, tracking_uri):
    recipe = build(
        EmbedRecipe,
        {"data": str(small_dataset), "base_model": str(tiny_base_model), "search": {"stance.design": ["crossed"]}},
    )
    return train_embed(recipe, tracking_uri, promote=False)


def _texts(small_dataset) -> list[str]:
    return [r["text"] for r in read_records(small_dataset)][:40]


def test_transformer_run_compares_designs_and_logs_the_shared_metrics(
    trained_transformer, trained_baseline, tracking_uri, tiny_base_model
):
    use_store(tracking_uri)
    client = MlflowClient()
    run = client.get_run(trained_transformer.run_id)
    assert run.data.tags["family"] == "transformer" and run.data.tags["dataset_digest"]
    assert run.data.params["base_model"] == str(tiny_base_model)
    assert run.data.params["chosen.design"] in ("per_topic", "attention", "pair")
    # Same metric names as the baseline, so runs of every family compare.
    assert set(trained_transformer.metrics) == set(trained_baseline.metrics)
    children = client.search_runs(
        [run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    )
    assert sorted(c.data.params["design"] for c in children) == ["attention", "pair", "per_topic"]
    for child in children:
        per_epoch = [m for m in client.get_metric_history(child.info.run_id, "dev_combined_f1") if m.step >= 1]
        assert 1 <= len(per_epoch) <= 2 and "train_loss" in child.data.metrics
    chosen = max(trained_transformer.candidates.items(), key=lambda kv: kv[1]["dev_combined_f1"])[0]
    assert trained_transformer.chosen["chosen.design"] == chosen
    version = client.get_model_version(REGISTERED_MODEL, trained_transformer.model_version)
    assert version.tags["family"] == "transformer"


@pytest.mark.parametrize("fixture", ["trained_transformer", "trained_embed"])
def test_reloaded_model_predicts_as_in_memory(fixture, request, tracking_uri, small_dataset):
    result = request.getfixturevalue(fixture)
    use_store(tracking_uri)
    texts = _texts(small_dataset)
    uri = f"models:/{REGISTERED_MODEL}/{result.model_version}"
    in_memory = result.predictor.predict(texts)
    frame = mlflow.pyfunc.load_model(uri).predict(pd.DataFrame({"text": texts}))
    assert list(frame.columns) == list(OUTPUT_COLUMNS)
    assert [list(t) for t in frame["topics"]] == [p.topics for p in in_memory]
    reloaded = load_predictor(uri)
    assert reloaded.predict(texts) == in_memory
    np.testing.assert_allclose(reloaded.score(texts)[1], result.predictor.score(texts)[1], atol=1e-6)
    assert reloaded.meta.family == fixture.removeprefix("trained_")
    assert reloaded.meta.base_model and reloaded.meta.schema_hash == result.predictor.schema.hash


@pytest.mark.parametrize("fixture", ["trained_transformer", "trained_embed"])
def test_quantized_variant_loads_through_mlflow_and_agrees(fixture, request, tracking_uri, small_dataset):
    result = request.getfixturevalue(fixture)
    use_store(tracking_uri)
    texts = _texts(small_dataset)
    uri = f"models:/{REGISTERED_MODEL}/{result.model_version}"
    fp32, int8 = load_predictor(uri), load_predictor(uri, quantized=True)
    assert int8.model.quantized and not fp32.model.quantized
    # Training recorded the int8 layers' input ranges, and they travelled with the artifact.
    network = int8.model.net if fixture == "trained_transformer" else int8.model.embedder.encoder
    assert any(isinstance(m, SmoothedLinear) for m in network.modules())
    figures = agreement(fp32.score(texts), int8.score(texts), fp32.thresholds)
    # A random 32-wide model has scores bunched near its thresholds; the real model's
    # figure (>= 99%) is measured by bench/quantized.py.
    assert figures["topic_agreement"] >= 0.9 and figures["stance_agreement_all_pairs"] >= 0.9
    served = mlflow.pyfunc.load_model(uri, model_config={"quantized": True})
    assert served.unwrap_python_model().predictor.model.quantized


def test_onnx_runtime_loads_through_mlflow_and_exports_once(
    trained_transformer, tracking_uri, small_dataset, tmp_path, monkeypatch
):
    monkeypatch.setenv("ALLYSTANCE_CACHE", str(tmp_path / "cache"))
    use_store(tracking_uri)
    texts = _texts(small_dataset)
    uri = f"models:/{REGISTERED_MODEL}/{trained_transformer.model_version}"
    fp32, on_onnx = load_predictor(uri), load_predictor(uri, runtime="onnx")
    np.testing.assert_allclose(on_onnx.score(texts)[0], fp32.score(texts)[0], atol=1e-4)
    served = mlflow.pyfunc.load_model(uri, model_config={"runtime": "onnx"})
    assert served.unwrap_python_model().predictor.model.runtime == "onnx"
    frame = served.predict(pd.DataFrame({"text": texts}))
    assert [list(t) for t in frame["topics"]] == [p.topics for p in fp32.predict(texts)]
    # Each load fetched the artifact again; the cache is keyed by content, so one export.
    assert [p.name for p in (tmp_path / "cache").rglob("*.onnx")] == ["encoder.onnx"]


def test_baseline_has_no_quantized_variant(trained_baseline, tracking_uri):
    from inference.model_io import ModelLoadError

    use_store(tracking_uri)
    with pytest.raises(ModelLoadError, match="no quantized variant"):
        load_predictor(f"models:/{REGISTERED_MODEL}/{trained_baseline.model_version}", quantized=True)


def test_cli_trains_both_families_and_promotes(small_dataset, tiny_base_model, tmp_path):
    runner = CliRunner()
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    common = ["--set", f"data={small_dataset}", "--set", f"base_model={tiny_base_model}", "--tracking-uri", store]
    result = runner.invoke(
        app, ["train", "transformer", *common, "--set", "designs=[per_topic]", "--set", "max_steps=4", "--promote"]
    )
    assert result.exit_code == 0, result.output
    assert "Stance designs (dev)" in result.output and "per_topic" in result.output
    output = " ".join(result.output.split())  # rich wraps lines at the runner's width
    assert "stance_macro_f1" in output and "promoted to champion" in output
    result = runner.invoke(app, ["train", "embed", *common, "--set", "search={}"])
    assert result.exit_code == 0, result.output
    assert "topic_micro_f1" in result.output and "not promoted" in " ".join(result.output.split())
    result = runner.invoke(app, ["train", "transformer", "--set", "base_model=/nowhere/at/all"])
    assert result.exit_code == 1
    assert result.output.startswith("error: base model '/nowhere/at/all' is neither a folder")


def test_cli_evaluates_the_int8_variant(small_dataset, tracking_uri, trained_embed):
    uri = f"models:/{REGISTERED_MODEL}/{trained_embed.model_version}"
    args = ["evaluate", "--model", uri, "--data", str(small_dataset), "--tracking-uri", tracking_uri]
    result = CliRunner().invoke(app, [*args, "--quantized"])
    assert result.exit_code == 0, result.output
    assert "stance_macro_f1" in result.output
