import json
from pathlib import Path

from typer.testing import CliRunner

from experiments.cli import app
from tests.inference.test_predict import model_dir  # noqa: F401 (fixture)

runner = CliRunner()
FIXTURES = Path(__file__).parents[1] / "inference" / "fixtures"


def test_predict_to_stdout_and_summary(tmp_path, model_dir):  # noqa: F811
    result = runner.invoke(app, ["predict", str(FIXTURES / "widgets.txt"), "--model", str(model_dir), "-o", "-"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert rows and all(r["article_id"] == "widgets" for r in rows)
    assert "Topics and stances (paragraphs)" in result.stderr and "Dropped blocks" in result.stderr


def test_missing_model_says_what_to_run(tmp_path):
    uri = f"sqlite:///{tmp_path / 'empty.db'}"
    result = runner.invoke(app, ["predict", str(FIXTURES), "--tracking-uri", uri, "-o", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot load model models:/allystance@champion")
    assert "allystance train baseline --promote" in lines[0]


def test_unknown_output_format_is_one_line(tmp_path, model_dir):  # noqa: F811
    result = runner.invoke(app, ["predict", str(FIXTURES), "--model", str(model_dir), "-o", str(tmp_path / "o.xlsx")])
    assert result.exit_code == 1
    assert "use a .jsonl, .csv or .parquet file name" in result.output


def test_nothing_to_classify_exits_non_zero(tmp_path, model_dir):  # noqa: F811
    result = runner.invoke(
        app, ["predict", str(tmp_path / "nope.txt"), "--model", str(model_dir), "-o", str(tmp_path / "o.jsonl")]
    )
    assert result.exit_code == 1
    assert "no paragraph could be classified" in result.output
    errors = (tmp_path / "o.errors.jsonl").read_text()
    assert "no such file or directory" in errors
