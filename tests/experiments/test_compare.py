"""``experiments compare`` and ``best`` on a store with several small runs of two families."""

from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from experiments.cli import app
from experiments.leaderboard import key_params, rank_runs
from experiments.run_reader import RunsError, RunSummary, read_runs
from training.evaluate import HEADLINE_METRICS
from training.tracking import REGISTERED_MODEL

runner = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory, small_dataset) -> str:
    """Two baselines (one with a small search) and the rules, in a store of their own."""
    from training.baseline import train_baseline, train_rules
    from training.config import BaselineRecipe, RulesRecipe, build

    uri = f"sqlite:///{tmp_path_factory.mktemp('compare') / 'mlflow.db'}"
    data = str(small_dataset)
    train_baseline(build(BaselineRecipe, {"data": data, "search": {"topics.C": [1.0, 4.0]}}), uri)
    train_baseline(build(BaselineRecipe, {"data": data, "search": {}, "stance": {"design": "crossed"}}), uri)
    train_rules(build(RulesRecipe, {"data": data}), uri)
    return uri


def _expected(uri: str, metric: str) -> list[tuple[str, float]]:
    """Top-level runs and their metric, best first, read straight from MLflow."""
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("allystance")
    runs = [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" not in r.data.tags]
    return sorted(((r.info.run_id, r.data.metrics[metric]) for r in runs), key=lambda p: -p[1])


@pytest.mark.slow
def test_compare_orders_runs_and_prints_every_headline_metric(store):
    expected = _expected(store, "dev_combined_f1")
    assert len(expected) == 3
    result = runner.invoke(app, ["experiments", "compare", "--tracking-uri", store])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    rows = [line for line in lines if line[:1].isdigit()]
    # Main table, then the details table: the run ids appear in rank order in both.
    assert [row.split("│")[1].strip() for row in rows[:3]] == [run_id[:8] for run_id, _ in expected]
    assert [row.split("│")[2].strip() for row in rows[:3]].count("baseline") == 2
    assert rows[0].split("│")[-1].strip() == f"{expected[0][1]:.3f}"  # combined, last column
    header = " ".join(lines[:4])
    for name in ("run", "family", "time", "µF1", "mF1", "exact", "F_avg", "e2e acc", "combined"):
        assert name in header
    assert "dataset digest" in result.output and "stance.design=crossed" in result.output


@pytest.mark.slow
def test_leaderboard_frame_has_the_columns_and_leaves_search_runs_out(store):
    runs = read_runs("allystance", store)
    assert len(runs) == 3 and not any(r.is_search for r in runs)
    assert len(read_runs("allystance", store, include_search=True)) > 3
    board = rank_runs(runs, "test_stance_macro_f1", top=2)
    assert list(board.frame["run_id"]) == [r for r, _ in _expected(store, "test_stance_macro_f1")[:2]]
    for column in ("rank", "family", "params", "dataset", "train_seconds", "model_uri"):
        assert column in board.frame
    for name in HEADLINE_METRICS:
        assert f"dev_{name}" in board.frame and f"test_{name}" in board.frame
    assert (board.frame["train_seconds"] > 0).all()
    assert board.frame["dataset"].nunique() == 1  # same data, same digest


@pytest.mark.slow
def test_best_prints_the_model_uri_of_the_best_run(store):
    best_id, _ = _expected(store, "dev_stance_macro_f1")[0]
    version = MlflowClient(tracking_uri=store).get_run(best_id).data.tags["model_version"]
    result = runner.invoke(app, ["experiments", "best", "--metric", "dev_stance_macro_f1", "--tracking-uri", store])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"models:/{REGISTERED_MODEL}/{version}"


@pytest.mark.slow
def test_compare_writes_plot_and_self_contained_html(store, tmp_path: Path):
    png, page = tmp_path / "runs.png", tmp_path / "runs.html"
    result = runner.invoke(
        app, ["experiments", "compare", "--top", "2", "--plot", str(png), "--html", str(page), "--tracking-uri", store]
    )
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = page.read_text()
    assert "data:image/png;base64," in text and "<table" in text and "src='http" not in text
    assert text.count("models:/allystance/") == 2


@pytest.mark.slow
def test_unknown_metric_is_a_one_line_error(store):
    result = runner.invoke(app, ["experiments", "compare", "--metric", "dev_accuracy", "--tracking-uri", store])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "dev_accuracy" in lines[0] and "dev_combined_f1" in lines[0]


def test_missing_experiment_says_what_to_run(tmp_path):
    uri = f"sqlite:///{tmp_path / 'empty.db'}"
    result = runner.invoke(app, ["experiments", "best", "--tracking-uri", uri])
    assert result.exit_code == 1
    assert "allystance train baseline" in result.output.strip()


def _run(run_id: str, family: str, params: dict, metric: float | None, start: int) -> RunSummary:
    metrics = {} if metric is None else {"dev_combined_f1": metric}
    return RunSummary(run_id, run_id, family, "FINISHED", params, metrics, {}, start, start + 1000)


def test_key_params_show_what_differs_within_a_family_and_what_the_search_chose():
    runs = [
        _run("a", "baseline", {"topics.C": "4.0", "seed": "13", "chosen.topics.C": "1.0", "search": "{...}"}, 0.7, 1),
        _run("b", "baseline", {"topics.C": "4.0", "seed": "13", "search": "{}"}, 0.8, 2),
        _run("c", "rules", {"data": "x"}, None, 3),
    ]
    assert key_params(runs) == {"a": "topics.C=1.0", "b": "topics.C=4.0", "c": ""}
    board = rank_runs(runs, "dev_combined_f1")
    assert list(board.frame["run_id"]) == ["b", "a", "c"]  # a run without the metric goes last
    with pytest.raises(RunsError, match="no run has the metric"):
        rank_runs(runs, "test_combined_f1")


def test_real_news_columns_appear_when_runs_have_them():
    from experiments.leaderboard import tables

    plain = [_run("a", "baseline", {}, 0.7, 1), _run("b", "baseline", {}, 0.8, 2)]
    assert len(tables(rank_runs(plain, "dev_combined_f1"))) == 2
    metrics = {"dev_combined_f1": 0.75, "realnews_topic_micro_f1": 0.81, "selection_score": 0.78}
    real = RunSummary("r", "r", "blend", "FINISHED", {}, metrics, {}, 3, 4)
    table = tables(rank_runs([*plain, real], "dev_combined_f1"))[-1]
    assert table.title.startswith("Real-news dev")
    assert [row[1] for row in table.rows] == ["r"]  # only the run scored on real news
    assert dict(zip(table.headers, table.rows[0], strict=True))["topic µF1"] == "0.810"
    assert dict(zip(table.headers, table.rows[0], strict=True))["stance mF1 (end to end)"] == "-"


def _seeded(run_id: str, seed: int, metrics: dict, start: int, lr: str = "5e-05", digest: str = "d1", **params):
    params = {"lr": lr, "seed": str(seed), **params}
    tags = {"dataset_digest": digest}
    return RunSummary(run_id, run_id, "transformer", "FINISHED", params, metrics, tags, start, start + 1)


def test_seed_groups_join_runs_that_differ_only_in_seed_and_give_mean_and_spread():
    from experiments.leaderboard import seed_details, seed_groups, seed_table

    real = "realnews_topic_micro_f1"
    runs = [  # three seeds of one recipe (their best epochs differ), one run of another, one other dataset
        _seeded("a", 1, {"dev_combined_f1": 0.80, real: 0.82}, 1, **{"chosen.best_epoch": "3"}),
        _seeded("b", 2, {"dev_combined_f1": 0.84, real: 0.86}, 2, **{"chosen.best_epoch": "2"}),
        _seeded("c", 10, {"dev_combined_f1": 0.82}, 3),
        _seeded("d", 1, {"dev_combined_f1": 0.83}, 4, lr="1e-04"),
        _seeded("e", 1, {"dev_combined_f1": 0.9}, 5, digest="d2"),
        _seeded("f", 1, {"test_combined_f1": 0.9}, 6, lr="3e-05"),  # never scored on dev
    ]
    groups = seed_groups(runs)
    # best mean first; the group without the sort metric last
    assert [sorted(r.run_id for r in g.runs) for g in groups] == [["e"], ["d"], ["a", "b", "c"], ["f"]]
    three = groups[2]
    assert three.seeds == "1,2,10"  # numeric order
    assert three.mean("dev_combined_f1") == pytest.approx(0.82)
    assert three.sd("dev_combined_f1") == pytest.approx(0.02)  # sample standard deviation
    assert three.mean(real) == pytest.approx(0.84)  # over the runs that have it
    assert groups[1].sd("dev_combined_f1") is None  # one run has no spread
    assert groups[1].differing == "lr=1e-04" and three.differing == "lr=5e-05"
    table = seed_table(groups)
    assert table.headers[3] == "dev combined"
    rows = {row[0]: dict(zip(table.headers, row, strict=True)) for row in table.rows}
    assert rows[3]["runs"] == 3 and rows[3]["dev combined"] == "0.820±0.020"
    assert rows[3]["real-news topic µF1"] == "0.840±0.028 (n=2)"  # two of the three runs have it
    assert rows[1]["real-news topic µF1"] == "-" and rows[4]["dev combined"] == "-"
    assert "selection score" not in " ".join(table.headers)  # only when it is the sort metric
    assert [row[2] for row in seed_details(groups).rows] == ["1", "1", "1,2,10", "1"]
    with pytest.raises(RunsError, match="no run has the metric"):
        seed_groups(runs, "train_loss")


def test_seed_groups_keep_search_grids_apart_and_show_a_repeated_seed():
    from experiments.leaderboard import seed_groups

    searched = {"search": "{'topics.C': [1.0, 4.0]}", "chosen.topics.C": "4.0"}
    runs = [
        _seeded("a", 13, {"dev_combined_f1": 0.8}, 1, **searched),
        _seeded("b", 13, {"dev_combined_f1": 0.7}, 2, search="{}"),
        _seeded("c", 13, {"dev_combined_f1": 0.95}, 3, search="{}"),
    ]
    groups = seed_groups(runs)
    assert [[r.run_id for r in g.runs] for g in groups] == [["b", "c"], ["a"]]  # the grid is the recipe
    assert groups[0].seeds == "13 (x2)"  # one draw run twice, not two draws


@pytest.mark.slow
def test_compare_by_seed_prints_one_row_per_recipe(store):
    result = runner.invoke(app, ["experiments", "compare", "--seeds", "--tracking-uri", store])
    assert result.exit_code == 0, result.output
    assert "Recipes over their seeds" in result.output and "Recipes in detail" in result.output
    rows = [line for line in result.output.splitlines() if line[:1].isdigit()]
    assert len(rows) == 2 * 3  # three recipes (two baselines, the rules), each in both tables
    assert not [row for row in rows if "±" in row]  # one run per recipe: no spread to give
    assert "search=" in result.output  # the two baselines differ in their search grid


def test_compare_by_seed_refuses_plot_and_html(tmp_path):
    args = ["experiments", "compare", "--seeds", "--plot", str(tmp_path / "p.png"), "--tracking-uri", "sqlite://"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "--seeds" in result.output.strip().splitlines()[-1]
    assert not (tmp_path / "p.png").exists()
