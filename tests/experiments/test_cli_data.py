from pathlib import Path

from typer.testing import CliRunner

from experiments.cli import app
from labels import read_records
from tests.conftest import write_jsonl

runner = CliRunner()


def test_validate_passes_on_a_valid_file(dataset_file: Path):
    result = runner.invoke(app, ["data", "validate", str(dataset_file)])
    assert result.exit_code == 0, result.output
    assert "6 records checked: 0 errors, 1 warnings" in result.output
    assert "8-word runs in more than 3 paragraphs: 0" in result.output


def test_validate_fails_and_names_the_line(tmp_path: Path, records):
    records[3]["split"] = "holdout"
    path = write_jsonl(tmp_path / "bad.jsonl", records)
    result = runner.invoke(app, ["data", "validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}:4: unknown split 'holdout'" in result.output


def test_strict_turns_warnings_into_failure(dataset_file: Path):
    result = runner.invoke(app, ["data", "validate", "--strict", str(dataset_file)])
    assert result.exit_code == 1
    assert "warning: very short text" in result.output


def test_stats_prints_tables(dataset_file: Path):
    result = runner.invoke(app, ["data", "stats", str(dataset_file)])
    assert result.exit_code == 0, result.output
    for expected in ("Paragraphs per topic", "inter_korean", "Text length in words", "Topics per paragraph"):
        assert expected in result.output


def test_stats_on_a_missing_file_is_one_line_error(tmp_path: Path):
    result = runner.invoke(app, ["data", "stats", str(tmp_path / "missing.jsonl")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"error: {tmp_path / 'missing.jsonl'}: no such file"]


def test_split_rewrites_splits_reproducibly(dataset_file: Path):
    first = runner.invoke(app, ["data", "split", str(dataset_file), "--seed", "3"])
    assert first.exit_code == 0, first.output
    once = [r["split"] for r in read_records(dataset_file)]
    runner.invoke(app, ["data", "split", str(dataset_file), "--seed", "3"])
    assert [r["split"] for r in read_records(dataset_file)] == once
    assert set(once) <= {"train", "dev", "test"}
    # Six records cannot fill every cell of dev and test: the command says so.
    assert "warning: dev has 0 paragraphs of" in first.output
    assert "seed 3" in first.output


def test_split_search_reports_the_seed_it_used(tmp_path: Path):
    from tests.conftest import small_subset

    path = write_jsonl(tmp_path / "s.jsonl", small_subset(60, 20))
    result = runner.invoke(app, ["data", "split", str(path), "--seed", "0", "--search", "--min-cell", "1"])
    assert result.exit_code == 0, result.output
    seed = int(result.output.split("seed ")[1].split()[0])
    assert "warning" not in result.output
    again = runner.invoke(app, ["data", "split", str(path), "--seed", str(seed), "--min-cell", "1"])
    assert "warning" not in again.output


def test_help_lists_the_data_commands():
    result = runner.invoke(app, ["data", "--help"])
    assert result.exit_code == 0
    for command in ("validate", "stats", "split"):
        assert command in result.output
