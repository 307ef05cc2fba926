"""``allystance evaluate --behaviour``: the table, the failures file, the run it logs to, and
``experiments compare`` showing the figures."""

import json

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from experiments.cli import app
from tests.inference.test_predict import model_dir  # noqa: F401 (fixture)

runner = CliRunner()


@pytest.fixture(scope="module")
def rules_store(tmp_path_factory, small_dataset) -> tuple[str, str]:
    """The keyword rules (a model in a second) registered in a store of their own."""
    from training.baseline import train_rules
    from training.config import RulesRecipe, build

    uri = f"sqlite:///{tmp_path_factory.mktemp('behaviour-cli') / 'mlflow.db'}"
    result = train_rules(build(RulesRecipe, {"data": str(small_dataset)}), uri)
    return uri, result.model_version


def test_behaviour_on_a_model_folder_prints_rates_and_writes_failures(tmp_path, model_dir):  # noqa: F811
    result = runner.invoke(app, ["evaluate", "--behaviour", "--model", str(model_dir), "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "failure rate per capability" in result.output and "reject_vs_echo" in result.output
    assert "Failing examples" in result.output
    rows = [json.loads(line) for line in (tmp_path / "behaviour_failures.jsonl").read_text().splitlines()]
    assert rows and {"id", "capability", "kind", "texts", "expected", "got"} <= set(rows[0])
    assert f"wrote {len(rows)} failing cases" in result.output
    assert "logged to run" not in result.output  # a folder has no run


def test_behaviour_is_logged_to_the_models_run_and_compare_shows_it(tmp_path, rules_store):
    uri, version = rules_store
    model = f"models:/allystance/{version}"
    result = runner.invoke(app, ["evaluate", "--behaviour", "-m", model, "--tracking-uri", uri, "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(client.get_model_version("allystance", version).run_id)
    # The rules never take a side, so every case that expects favor or against fails.
    assert run.data.metrics["behaviour_negation_failure_rate"] == pytest.approx(1.0)
    assert 0 < run.data.metrics["behaviour_failure_rate"] < 1
    assert run.data.tags["behaviour_suite_digest"]
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "behaviour")}
    assert logged == {"behaviour/behaviour_failures.jsonl", "behaviour/summary.json"}

    compared = runner.invoke(app, ["experiments", "compare", "--tracking-uri", uri, "--html", str(tmp_path / "c.html")])
    assert compared.exit_code == 0, compared.output
    table = compared.output[compared.output.index("Behaviour suite") :]
    negation = next(line for line in table.splitlines() if line.startswith("negation"))
    assert negation.split()[-1] == "100%"  # as logged
    assert "Behaviour suite" in (tmp_path / "c.html").read_text()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--data", "labels/data/paragraphs.jsonl", "--split", "dev"], "leave out --data and --split"),
        (["--suite", "no/such/folder"], "no behaviour suite at no/such/folder"),
    ],
)
def test_behaviour_mistakes_are_one_line(tmp_path, model_dir, extra, message):  # noqa: F811
    result = runner.invoke(app, ["evaluate", "--behaviour", "--model", str(model_dir), "-o", str(tmp_path), *extra])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output


def test_suite_without_behaviour_is_refused(tmp_path, model_dir):  # noqa: F811
    result = runner.invoke(app, ["evaluate", "--suite", str(tmp_path), "--model", str(model_dir)])
    assert result.exit_code == 1 and "--suite goes with --behaviour" in result.output
