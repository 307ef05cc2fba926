import pytest
from typer.testing import CliRunner

from experiments.cli import app
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
