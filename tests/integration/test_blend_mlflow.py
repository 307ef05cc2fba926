"""The blend family end to end: two logged members (a baseline and a tiny transformer) in a
temp store, weights chosen on dev, the blend logged, registered, reloaded and quantized."""

import json
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from experiments.cli import app
from inference.model_io import ModelLoadError, load_predictor
from labels import read_records
from tests.conftest import write_jsonl
from training.baseline import train_baseline
from training.blend import train_blend
from training.config import BaselineRecipe, BlendRecipe, build
from training.runs import TrainingError
from training.tracking import REGISTERED_MODEL, use_store

pytestmark = pytest.mark.slow


def _run_count() -> int:
    client = MlflowClient()
    return len(client.search_runs([e.experiment_id for e in client.search_experiments()]))


def _uri(result) -> str:
    return f"models:/{REGISTERED_MODEL}/{result.model_version}"


@pytest.fixture(scope="module")
def trained_blend(small_dataset, tracking_uri, trained_baseline, trained_transformer):
    members = [_uri(trained_baseline), _uri(trained_transformer)]
    recipe = build(BlendRecipe, {"data": str(small_dataset), "members": members, "weight_step": 0.25})
    return train_blend(recipe, tracking_uri)


def test_blend_chooses_weights_on_dev_and_logs_like_any_family(trained_blend, tracking_uri):
    use_store(tracking_uri)
    client = MlflowClient()
    run = client.get_run(trained_blend.run_id)
    assert run.data.tags["family"] == "blend" and run.data.tags["dataset_digest"]
    for split in ("dev", "test"):
        for name in ("topic_micro_f1", "stance_macro_f1", "combined_f1"):
            assert 0.0 <= run.data.metrics[f"{split}_{name}"] <= 1.0
    search = json.loads(Path(client.download_artifacts(run.info.run_id, "blend_search.json")).read_text())
    assert len(search["grid"]) == 5  # 0, 0.25, ..., 1 for the first member
    best = max(row["dev_stance_macro_f1"] for row in search["grid"])
    chosen = trained_blend.chosen["chosen.stance_weights"]
    assert next(r for r in search["grid"] if r["weights"] == chosen)["dev_stance_macro_f1"] == best
    topic_best = max(row["dev_topic_micro_f1"] for row in search["grid"])
    topic_chosen = trained_blend.chosen["chosen.topic_weights"]
    assert next(r for r in search["grid"] if r["weights"] == topic_chosen)["dev_topic_micro_f1"] == topic_best
    assert run.data.metrics["dev_topic_micro_f1"] == pytest.approx(topic_best)  # the same thresholds
    assert trained_blend.chosen["chosen.members"] == ["baseline", "transformer"]
    version = client.get_model_version(REGISTERED_MODEL, trained_blend.model_version)
    assert version.tags["family"] == "blend"


def test_registered_blend_reloads_with_the_same_scores_and_quantizes(trained_blend, tracking_uri, small_dataset):
    use_store(tracking_uri)
    texts = [r["text"] for r in read_records(small_dataset)][:20]
    loaded = load_predictor(_uri(trained_blend))
    expected = trained_blend.predictor.score(texts)
    np.testing.assert_allclose(loaded.score(texts)[0], expected[0], atol=1e-6)
    np.testing.assert_allclose(loaded.score(texts)[1], expected[1], atol=1e-6)
    assert loaded.predict(texts) == trained_blend.predictor.predict(texts)
    int8 = load_predictor(_uri(trained_blend), quantized=True)
    assert [getattr(m.model, "quantized", None) for m in int8.model.members] == [None, True]


def test_blend_has_its_own_stream_operating_point(trained_blend, tracking_uri):
    use_store(tracking_uri)
    own = trained_blend.predictor.meta
    stream = load_predictor(_uri(trained_blend), operating_point="stream")
    np.testing.assert_array_equal(stream.thresholds, own.operating_points["stream"]["thresholds"])
    assert all(s >= b for s, b in zip(stream.thresholds, own.thresholds, strict=True))
    assert "test_stream_topic_micro_f1" in trained_blend.metrics


def test_members_trained_on_other_data_are_refused(small_dataset, tracking_uri, trained_baseline, tmp_path):
    other_data = write_jsonl(tmp_path / "other.jsonl", read_records(small_dataset)[1:])
    other = train_baseline(build(BaselineRecipe, {"data": str(other_data), "search": {}}), tracking_uri)
    recipe = build(BlendRecipe, {"data": str(small_dataset), "members": [_uri(trained_baseline), _uri(other)]})
    with pytest.raises(TrainingError, match="trained on other data"):
        train_blend(recipe, tracking_uri)
    missing = build(BlendRecipe, {"data": str(small_dataset), "members": [_uri(trained_baseline), "models:/nope/7"]})
    runs_before = _run_count()
    with pytest.raises(ModelLoadError, match="cannot load model models:/nope/7"):
        train_blend(missing, tracking_uri)
    assert (
        len(MlflowClient().search_runs([r.experiment_id for r in MlflowClient().search_experiments()])) == runs_before
    )
    with pytest.raises(TrainingError, match="two or more members"):
        train_blend(build(BlendRecipe, {"data": str(small_dataset), "members": [_uri(other)]}), tracking_uri)


def test_cli_blend_prints_the_member_weights(small_dataset, tracking_uri, trained_baseline, trained_transformer):
    args = ["train", "blend", _uri(trained_baseline), _uri(trained_transformer), "--set", f"data={small_dataset}"]
    result = CliRunner().invoke(app, [*args, "--set", "weight_step=0.5", "--tracking-uri", tracking_uri])
    assert result.exit_code == 0, result.output
    assert "Member weights (chosen on dev)" in result.output and "1: transformer" in result.output
    assert _uri(trained_transformer) in result.output
    bad = CliRunner().invoke(app, ["train", "blend", "--set", "weight_step=0.3", "--tracking-uri", tracking_uri])
    assert bad.exit_code == 1 and "weight_step must divide 1" in bad.output


def test_a_member_given_no_weight_is_left_out_of_the_saved_blend(
    small_dataset, tracking_uri, trained_baseline, trained_transformer, monkeypatch
):
    import training.blend as blend_training

    real_choose = blend_training.choose_weights

    def third_member_unused(scores, dev, schema, step, tolerance):  # the dev search, third member's weights forced to 0
        _, thresholds, _, rows = real_choose(scores[:2], dev, schema, step, tolerance)
        return (0.5, 0.5, 0.0), thresholds, (0.5, 0.5, 0.0), rows

    monkeypatch.setattr(blend_training, "choose_weights", third_member_unused)
    members = [_uri(trained_baseline), _uri(trained_transformer), _uri(trained_baseline)]
    args = ["train", "blend", *members, "--set", f"data={small_dataset}", "--set", "weight_step=0.5"]
    result = CliRunner().invoke(app, [*args, "--tracking-uri", tracking_uri])
    assert result.exit_code == 0, result.output
    assert "left out of the saved blend (weight 0)" in result.output
    version = max(int(v.version) for v in MlflowClient().search_model_versions(f"name='{REGISTERED_MODEL}'"))
    saved = load_predictor(f"models:/{REGISTERED_MODEL}/{version}")
    assert len(saved.model.members) == 2 and saved.model.topic_weights == [0.5, 0.5]


def test_equal_weights_average_seeds_into_one_member_of_another_blend(
    small_dataset, tracking_uri, trained_baseline, trained_transformer
):
    use_store(tracking_uri)
    texts = [r["text"] for r in read_records(small_dataset)][:20]
    seeds = [_uri(trained_transformer), _uri(trained_baseline), _uri(trained_transformer)]
    mean = train_blend(
        build(BlendRecipe, {"data": str(small_dataset), "members": seeds, "weights": "equal"}), tracking_uri
    )
    assert mean.chosen["chosen.topic_weights"] == mean.chosen["chosen.stance_weights"] == [0.333333] * 3
    transformer, baseline = load_predictor(seeds[0]).score(texts), load_predictor(seeds[1]).score(texts)
    for got, t, b in zip(mean.predictor.score(texts), transformer, baseline, strict=True):
        np.testing.assert_allclose(got, (2 * t + b) / 3, atol=1e-5)
    outer_members = [_uri(trained_baseline), _uri(mean)]
    recipe = build(BlendRecipe, {"data": str(small_dataset), "members": outer_members, "weight_step": 0.5})
    outer = train_blend(recipe, tracking_uri)
    loaded = load_predictor(_uri(outer))
    assert [m.meta.family for m in loaded.model.members] == ["baseline", "blend"]
    np.testing.assert_allclose(loaded.score(texts)[0], outer.predictor.score(texts)[0], atol=1e-6)
