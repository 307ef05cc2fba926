import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from experiments.cli import app
from inference.onnx_encoder import onnx_file_name
from labels import read_records
from tests.conftest import write_jsonl
from tests.inference.test_onnx_runtime import TEXTS as ONNX_TEXTS
from tests.inference.test_onnx_runtime import transformer_dir  # noqa: F401 (fixture)
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


def test_unknown_operating_point_is_refused_in_one_line(tmp_path, model_dir):  # noqa: F811
    args = ["predict", str(FIXTURES / "widgets.txt"), "--model", str(model_dir), "-o", "-"]
    result = runner.invoke(app, [*args, "--operating-point", "fast"])
    assert result.exit_code == 1
    assert result.output.strip() == "error: unknown operating point 'fast'; use balanced or stream"
    # model_dir was saved without operating points, as models trained before they existed
    result = runner.invoke(app, [*args, "--operating-point", "stream"])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1
    assert f"{model_dir} has no 'stream' operating point" in lines[0] and "--operating-point balanced" in lines[0]


@pytest.mark.slow
def test_stream_operating_point_gives_no_more_topic_labels(tmp_path, trained_baseline, tracking_uri, small_dataset):
    paragraphs = [{"id": r["id"], "text": r["text"]} for r in read_records(small_dataset)]
    table = write_jsonl(tmp_path / "in.jsonl", paragraphs)
    model = f"models:/allystance/{trained_baseline.model_version}"
    rows = {}
    for point in ("balanced", "stream"):
        out = tmp_path / f"{point}.jsonl"
        args = ["predict", str(table), "--model", model, "--tracking-uri", tracking_uri, "-o", str(out)]
        result = runner.invoke(app, [*args, "--operating-point", point])
        assert result.exit_code == 0, result.output
        assert f"(operating point: {point})" in result.stderr
        rows[point] = [json.loads(line) for line in out.read_text().splitlines()]
    balanced, stream = rows["balanced"], rows["stream"]
    assert [r["id"] for r in stream] == [r["id"] for r in balanced]
    assert all(set(s["topics"]) <= set(b["topics"]) for s, b in zip(stream, balanced, strict=True))
    assert sum(map(len, (r["topics"] for r in stream))) <= sum(map(len, (r["topics"] for r in balanced)))
    assert stream[0]["model"] == f"{model}, stream operating point" and balanced[0]["model"] == model


def test_runtime_flag_scores_a_transformer_end_to_end(tmp_path, transformer_dir, monkeypatch):  # noqa: F811
    monkeypatch.setenv("ALLYSTANCE_CACHE", str(tmp_path / "cache"))
    table = write_jsonl(tmp_path / "in.jsonl", [{"id": str(i), "text": t} for i, t in enumerate(ONNX_TEXTS)])
    rows = {}
    for flags in (["--runtime", "torch"], ["--runtime", "onnx"], ["--runtime", "onnx-int8"], ["--quantized"]):
        out = tmp_path / f"{flags[-1]}.jsonl"
        result = runner.invoke(app, ["predict", str(table), "--model", str(transformer_dir), "-o", str(out), *flags])
        assert result.exit_code == 0, result.output
        rows[flags[-1]] = [json.loads(line) for line in out.read_text().splitlines()]
    assert {len(r) for r in rows.values()} == {len(ONNX_TEXTS)}
    for fp32, onnx in zip(rows["torch"], rows["onnx"], strict=True):
        assert onnx["id"] == fp32["id"] and onnx["topics"] == fp32["topics"]
        assert max(abs(onnx["topic_scores"][t] - s) for t, s in fp32["topic_scores"].items()) < 1e-4
    # One export per ONNX runtime, in the cache: the fp32 encoder and its int8 quantization.
    exported = sorted(p.name for p in (tmp_path / "cache").rglob("*.onnx"))
    assert exported == sorted([onnx_file_name(int8=False), onnx_file_name(int8=True)])


def test_runtime_errors_are_one_line(tmp_path, transformer_dir, model_dir, monkeypatch):  # noqa: F811
    monkeypatch.setenv("ALLYSTANCE_CACHE", str(tmp_path / "cache"))
    args = ["predict", str(FIXTURES / "widgets.txt"), "-o", str(tmp_path / "o.jsonl")]
    cases = [
        (["--model", str(transformer_dir), "--runtime", "fast"], "unknown runtime 'fast'"),
        (["--model", str(transformer_dir), "--runtime", "onnx", "--quantized"], "--quantized is --runtime torch-int8"),
        (["--model", str(model_dir), "--runtime", "onnx"], "the baseline family has no ONNX variant"),
    ]
    for flags, expected in cases:
        result = runner.invoke(app, [*args, *flags])
        lines = result.output.strip().splitlines()
        assert result.exit_code == 1 and len(lines) == 1 and expected in lines[0], result.output
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if the onnx extra were not installed
    result = runner.invoke(app, [*args, "--model", str(transformer_dir), "--runtime", "onnx-int8"])
    assert result.exit_code == 1
    assert result.output.strip() == "error: --runtime onnx-int8 needs ONNX Runtime: pip install 'allystance[onnx]'"
