"""``allystance report``: charts, CSVs and an HTML page from ``allystance predict`` output."""

from __future__ import annotations

from pathlib import Path

import typer

from experiments.cli.common import print_tables, user_errors
from experiments.defaults import DEFAULT_GROUPINGS, MIN_COUNT


@user_errors
def report_command(
    predictions: Path = typer.Argument(
        ..., help="Output of allystance predict: .jsonl, .csv or .parquet.", show_default=False
    ),
    by: list[str] = typer.Option(list(DEFAULT_GROUPINGS), "--by", help="year, month, week or source (repeatable)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for the PNGs, CSVs and report.html."),
    min_count: int = typer.Option(
        MIN_COUNT, "--min-count", min=1, help="Mark groups with fewer paragraphs than this as thin."
    ),
) -> None:
    """Chart topic share of paragraphs and the stance mix per topic over time and by source; write the counts as CSV and one self-contained report.html.

    Paragraphs without a date are counted and reported, and left out of the charts over time only. Months, weeks or sources with fewer than --min-count paragraphs show their counts and are marked, so that noise is not read as a trend.

    Examples:

        allystance report predictions.jsonl -o report/

        allystance report predictions.csv --by week --by source -o report/
    """
    from experiments.coverage import write_report

    result = write_report(predictions, output, by, min_count)
    print_tables(result.tables())
    for line in result.skipped:
        typer.secho(f"warning: skipped {line}", err=True, fg=typer.colors.YELLOW)
