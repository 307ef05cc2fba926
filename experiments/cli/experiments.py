"""``allystance experiments``: compare tracked runs and pick the best one."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from experiments.cli.common import print_tables, user_errors
from experiments.defaults import DEFAULT_EXPERIMENT, DEFAULT_METRIC, DEFAULT_TOP
from labels.errors import UserError

app = typer.Typer(help="Compare the runs tracked in MLflow and pick the best model.", no_args_is_help=True)

ExperimentOption = typer.Option(DEFAULT_EXPERIMENT, "--experiment", "-e", help="MLflow experiment to read.")
MetricOption = typer.Option(
    DEFAULT_METRIC, "--metric", "-m", help="Metric to sort by, highest first (dev_* or test_*)."
)
TrackingOption = typer.Option(
    None, "--tracking-uri", help="MLflow tracking URI. \\[default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here]"
)


@app.command()
@user_errors
def compare(
    experiment: str = ExperimentOption,
    metric: str = MetricOption,
    top: int = typer.Option(DEFAULT_TOP, "--top", "-n", min=1, help="Show this many runs (recipes with --seeds)."),
    plot: Path = typer.Option(None, "--plot", help="Write a PNG of per-topic F1 and stance macro-F1 of the top runs."),
    html: Path = typer.Option(None, "--html", help="Write a self-contained HTML page with the table and the plot."),
    include_search: bool = typer.Option(False, "--include-search", help="Also list the nested grid-search runs."),
    seeds: bool = typer.Option(
        False,
        "--seeds",
        help="One row per recipe instead of per run: runs that differ only in their seed, with the mean "
        "and standard deviation of each figure over the seeds.",
    ),
    tracking_uri: str = TrackingOption,
) -> None:
    """Rank runs by a metric: family, the parameters that differ, dataset digest, training time and every headline metric, and the behaviour suite's failure rates of the runs scored on it.

    Nested grid-search runs are left out unless --include-search; runs that did not finish are always left out. The table shows the metrics of the split the sort metric is on; --html has both splits.

    One run of a fine-tuned encoder is one draw: on real news a seed alone moves topic micro-F1 by a few hundredths. Train a recipe with several seeds (--set seed=N) and compare with --seeds, which ranks recipes by their mean over the seeds and gives the spread.

    Examples:

        allystance experiments compare

        allystance experiments compare --metric test_stance_macro_f1 --top 5 --plot runs.png --html runs.html

        allystance experiments compare --seeds --metric realnews_topic_micro_f1
    """
    from experiments.leaderboard import behaviour_table, rank_runs, tables, write_html, write_plot
    from experiments.run_reader import read_runs
    from inference.store import resolve_tracking_uri

    if seeds and (plot is not None or html is not None):
        raise UserError("--plot and --html draw runs, not recipes: leave them out with --seeds")
    runs = read_runs(experiment, tracking_uri, include_search=include_search)
    # Eleven columns need about 95 characters; narrower consoles (and pipes, 80) would cut cells.
    console = Console()
    if seeds:
        from experiments.leaderboard import seed_details, seed_groups, seed_table

        groups = seed_groups(runs, metric)[:top]
        wide = Console(width=max(console.width, 100))
        print_tables([seed_table(groups, metric), seed_details(groups)], wide, left_columns=2)
        return
    board = rank_runs(runs, metric, top)
    print_tables(tables(board), Console(width=max(console.width, 100)), left_columns=4)
    behaviour = behaviour_table(board)
    if behaviour is not None:
        print_tables([behaviour], Console(width=max(console.width, 100)))
    if plot is not None:
        typer.echo(f"wrote {write_plot(board, plot)}")
    if html is not None:
        typer.echo(f"wrote {write_html(board, html, resolve_tracking_uri(tracking_uri))}")


@app.command()
@user_errors
def best(
    experiment: str = ExperimentOption,
    metric: str = MetricOption,
    tracking_uri: str = TrackingOption,
) -> None:
    """Print the model URI of the best run by a metric (models:/allystance/N when registered, else runs:/ID/model).

    Example:

        allystance evaluate --model "$(allystance experiments best --metric dev_stance_macro_f1)"
    """
    from experiments.leaderboard import best_run
    from experiments.run_reader import read_runs

    typer.echo(best_run(read_runs(experiment, tracking_uri), metric).model_uri)
