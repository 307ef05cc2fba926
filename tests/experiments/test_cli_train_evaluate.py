import re

import pytest
from typer.testing import CliRunner

from experiments.cli import app
from tests.inference.test_onnx_runtime import transformer_dir  # noqa: F401 (fixture)
from training.tracking import REGISTERED_MODEL

runner = CliRunner()


def test_unknown_recipe_key_is_one_line_error():
    result = runner.invoke(app, ["train", "baseline", "--set", "topics.gamma=3"])
    assert result.exit_code == 1
    assert result.output.strip() == "error: unknown recipe key(s): topics.gamma"


@pytest.mark.slow
def test_train_rules_then_evaluate(tmp_path, small_dataset, tracking_uri, trained_baseline):
    result = runner.invoke(app, ["train", "rules", "--set", f"data={small_dataset}", "--tracking-uri", tracking_uri])
    assert result.exit_code == 0, result.output
    assert "topic_micro_f1" in result.output and "not promoted" in result.output
    out = tmp_path / "eval"
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--model",
            f"models:/{REGISTERED_MODEL}/{trained_baseline.model_version}",
            "--data",
            str(small_dataset),
            "--split",
            "dev",
            "-o",
            str(out),
            "--tracking-uri",
            tracking_uri,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "stance_e2e_accuracy" in result.output and "inter_korean" in result.output
    assert {p.name for p in out.iterdir()} == {"topic_confusion.png", "stance_confusion.png", "worst_errors.csv"}


def test_evaluate_without_a_model_says_what_to_run(tmp_path, dataset_file):
    uri = f"sqlite:///{tmp_path / 'empty.db'}"
    result = runner.invoke(app, ["evaluate", "--data", str(dataset_file), "--tracking-uri", uri])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "allystance train baseline --promote" in lines[0]


@pytest.mark.slow
def test_evaluate_real_news_style_file_shows_origins_and_confusion(tmp_path, records, tracking_uri, trained_baseline):
    """A labelled file with ``origin`` and ``alt`` (the real-news format) gets a per-origin
    table, the end-to-end stance figure and the stance confusion with a missed column."""
    import json

    rows = [{**r, "origin": "kcna" if i % 2 else "wire", "split": "test"} for i, r in enumerate(records)]
    rows[0]["alt"] = {"cost_sharing": "neutral"}
    data = tmp_path / "real.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    model = f"models:/{REGISTERED_MODEL}/{trained_baseline.model_version}"
    result = runner.invoke(
        app, ["evaluate", "--model", model, "--data", str(data), "--split", "all", "--tracking-uri", tracking_uri]
    )
    assert result.exit_code == 0, result.output
    assert "stance_e2e_macro_f1" in result.output and "Per origin" in result.output
    assert "kcna" in result.output and "wire" in result.output and "missed" in result.output
    # 95% intervals of the headline metrics by default, a low-high pair on their rows; none with 0 resamples.
    assert "95% interval" in result.output
    assert re.search(r"topic_micro_f1\s.*\d\.\d{3}–\d\.\d{3}", result.output)
    plain = runner.invoke(
        app,
        [
            "evaluate",
            "--model",
            model,
            "--data",
            str(data),
            "--split",
            "all",
            "--tracking-uri",
            tracking_uri,
            "--bootstrap",
            "0",
        ],
    )
    assert plain.exit_code == 0, plain.output
    assert not re.search(r"\d\.\d{3}–\d\.\d{3}", plain.output)


@pytest.mark.slow
def test_evaluate_at_the_stream_operating_point(small_dataset, tracking_uri, trained_baseline):
    from experiments.cli.evaluate import evaluate_model

    model = f"models:/{REGISTERED_MODEL}/{trained_baseline.model_version}"
    report = evaluate_model(model, small_dataset, "test", None, tracking_uri, operating_point="stream")
    assert report.operating_point == "stream"
    assert report.metrics["topic_micro_f1"] == pytest.approx(trained_baseline.metrics["test_stream_topic_micro_f1"])
    args = ["evaluate", "--model", model, "--data", str(small_dataset), "--tracking-uri", tracking_uri]
    result = runner.invoke(app, [*args, "--operating-point", "stream"])
    assert result.exit_code == 0, result.output
    assert "Per topic (test, stream)" in result.output and "Overall (test, stream)" in result.output
    assert "micro" not in result.output.split("Overall")[0]  # the per-topic table lists topics only
    result = runner.invoke(app, [*args, "--operating-point", "strict"])
    assert result.exit_code == 1 and "unknown operating point 'strict'" in result.output


def test_evaluate_scores_a_transformer_on_the_onnx_runtime(tmp_path, small_dataset, transformer_dir, monkeypatch):  # noqa: F811
    from experiments.cli.evaluate import behaviour_folder, evaluate_model

    monkeypatch.setenv("ALLYSTANCE_CACHE", str(tmp_path / "cache"))
    args = ["evaluate", "--model", str(transformer_dir), "--data", str(small_dataset), "--split", "dev"]
    result = runner.invoke(app, [*args, "--bootstrap", "0", "--runtime", "onnx"])
    assert result.exit_code == 0, result.output
    assert "topic_micro_f1" in result.output
    fp32 = evaluate_model(str(transformer_dir), small_dataset, "dev", None).metrics
    on_onnx = evaluate_model(str(transformer_dir), small_dataset, "dev", None, runtime="onnx").metrics
    assert on_onnx == pytest.approx(fp32, abs=1e-6)  # the same decisions, so the same figures
    # Behaviour figures of another runtime are logged apart from the fp32 model's.
    assert [behaviour_folder(r) for r in ("torch", "torch-int8", "onnx", "onnx-int8")] == [
        "behaviour",
        "behaviour_int8",
        "behaviour_onnx",
        "behaviour_onnx_int8",
    ]
