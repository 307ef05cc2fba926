"""``allystance data``: check, describe and split the labelled dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from experiments.cli.common import print_tables, user_errors
from labels import DEFAULT_DATASET, read_records
from labels.records import write_records
from labels.splits import SplitSettings, apply_splits
from labels.stats import dataset_stats
from labels.validate import ValidationSettings, validate_files

app = typer.Typer(help="Check, describe and split labelled datasets.", no_args_is_help=True)

FilesArg = typer.Argument(None, help="JSON-lines dataset files (default: the shipped dataset).", show_default=False)


@app.command()
@user_errors
def validate(
    files: list[Path] = FilesArg,
    strict: bool = typer.Option(False, "--strict", help="Exit non-zero on warnings too."),
    near_threshold: float = typer.Option(
        ValidationSettings.near_duplicate_threshold,
        help="Word 3-shingle Jaccard similarity from which two texts count as near-duplicates.",
    ),
) -> None:
    """Check dataset files and report every problem as file:line: message.

    Errors: invalid JSON, missing or mistyped fields, unknown topics, stances or splits, stance keys not equal to topics, duplicate ids, empty texts, duplicate and near-duplicate texts, leakage of a text or an article across splits.

    Warnings (exit 0 unless --strict): very short or very long texts, unknown fields, and 8-word runs repeated in more than 3 paragraphs.

    Examples:

        allystance data validate

        allystance data validate my_labels.jsonl --strict
    """
    report = validate_files(files or None, settings=ValidationSettings(near_duplicate_threshold=near_threshold))
    for problem in report.problems:
        typer.echo(str(problem))
    typer.echo(
        f"{report.records_checked} records checked: {len(report.errors)} errors, {len(report.warnings)} warnings "
        f"(8-word runs in more than 3 paragraphs: {report.repeated_runs})"
    )
    if report.errors or (strict and report.warnings):
        raise typer.Exit(1)


@app.command()
@user_errors
def stats(files: list[Path] = FilesArg) -> None:
    """Print counts per split, topic, (topic, stance) cell, topics per paragraph and text length.

    Example:

        allystance data stats labels/data/paragraphs.jsonl
    """
    print_tables(dataset_stats(read_records(files or None)))


@app.command()
@user_errors
def split(
    file: Path = typer.Argument(DEFAULT_DATASET, help="Dataset file to re-split in place."),
    seed: int = typer.Option(SplitSettings.seed, help="Random seed of the article order."),
    dev: float = typer.Option(SplitSettings.dev, help="Fraction of paragraphs for dev."),
    test: float = typer.Option(SplitSettings.test, help="Fraction of paragraphs for test."),
) -> None:
    """Assign train/dev/test by article, balanced over (topic, stance) cells, reproducibly.

    The shipped splits are exactly what this command gives with its defaults.

    Example:

        allystance data split labels/data/paragraphs.jsonl --seed 13
    """
    records = apply_splits(read_records(file), SplitSettings(seed=seed, dev=dev, test=test))
    write_records(file, records)
    print_tables(dataset_stats(records)[:1])
