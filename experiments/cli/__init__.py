"""The ``allystance`` command: one root app with a sub-app per noun."""

from __future__ import annotations

import os

import typer

from experiments.cli.common import configure_logging
from experiments.cli.data import app as data_app
from experiments.cli.evaluate import evaluate_command
from experiments.cli.experiments import app as experiments_app
from experiments.cli.predict import predict_command
from experiments.cli.report import report_command
from experiments.cli.train import app as train_app

app = typer.Typer(
    name="allystance",
    help="Topic and stance classification for news about the US-South Korea alliance.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(data_app, name="data")
app.add_typer(train_app, name="train")
app.command("evaluate")(evaluate_command)
app.command("predict")(predict_command)
app.add_typer(experiments_app, name="experiments")
app.command("report")(report_command)


@app.callback()
def root(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks and debug logs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only warnings and errors in the log."),
) -> None:
    """Topic and stance classification for news about the US-South Korea alliance."""
    # The code never reaches a model hub; weights come from local folders or packages.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow sets its own log level when it is imported (later, lazily); this is what it reads.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "DEBUG" if debug else "WARNING")
    ctx.obj = {"debug": debug, "quiet": quiet}
    configure_logging(debug, quiet)


def main() -> None:
    app()
