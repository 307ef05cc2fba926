"""``allystance train adapt`` through the CLI: a run end to end, and the one-line errors."""

import json

import pytest
from typer.testing import CliRunner

from experiments.cli import app
from tests.training.adapt_corpus import N_PARAGRAPHS, write_corpus


@pytest.fixture
def own_store(tmp_path) -> str:
    """A store of the test's own: adaptation registers and promotes models, which must not
    change the champion of the session's shared store that other tests check."""
    return f"sqlite:///{tmp_path / 'adapt-mlflow.db'}"


runner = CliRunner()


@pytest.mark.slow
def test_train_adapt_prints_before_and_after(tmp_path, small_dataset, own_store, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default state folder goes under the working directory
    corpus = write_corpus(tmp_path / "archive")[0]
    args = ["train", "adapt", "--unlabelled", corpus, "--tracking-uri", own_store, "--set", f"data={small_dataset}"]
    for setting in (
        "base_set=['search={}', 'features.char_ngrams=[3, 4]']",
        "rounds=1",
        "min_paragraphs=20",
        "topic_precision=0.8",
    ):
        args += ["--set", setting]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Before and after adapting the baseline" in result.output
    assert "dev_combined_f1" in result.output and "test_combined_f1" in result.output
    assert "Pseudo-labels trained on" in result.output and "positive: opcon" in result.output
    assert f"{N_PARAGRAPHS} paragraphs, {N_PARAGRAPHS} used" in result.output
    assert "model allystance version" in result.output
    (folder,) = (tmp_path / ".allystance" / "adapt").iterdir()  # <corpus digest>-<recipe hash>
    state = json.loads((folder / "state.json").read_text())
    assert folder.name == f"{state['corpus_digest'][:12]}-{state['recipe_hash'][:12]}"
    assert state["finished"] == ["corpus", "round0", "round1", "final"]


def test_too_small_a_corpus_is_a_one_line_error(tmp_path, small_dataset):
    corpus = write_corpus(tmp_path / "archive")[0]
    state = tmp_path / "state"
    result = runner.invoke(
        app,
        ["train", "adapt", "-u", corpus, "--set", f"data={small_dataset}", "--set", f"state_dir={state}"],
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        f"error: the corpus has {N_PARAGRAPHS} paragraphs after segmentation; "
        "adaptation needs at least 1,000 (below that it measured no gain)"
    )
    assert not state.exists()


def test_mlm_on_the_baseline_is_a_one_line_error(tmp_path):
    result = runner.invoke(app, ["train", "adapt", "-u", str(tmp_path), "--set", "mlm=true"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: mlm continues the pretraining of an encoder and the baseline family has none: "
        "use base_family transformer or embed, or --set mlm=false"
    )
