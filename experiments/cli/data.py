"""``allystance data``: check, describe and split the labelled dataset; import raw articles."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from experiments.cli.common import print_tables, user_errors
from experiments.cli.evaluate import DEFAULT_MODEL
from inference.ingest import DroppedBlock, SegmentedArticle, SegmentSettings, import_articles
from labels import DEFAULT_DATASET, read_records
from labels.errors import UserError
from labels.records import write_records
from labels.splits import SplitSettings, apply_splits, balance_problems, search_seed
from labels.stats import Table, dataset_stats
from labels.validate import ValidationSettings, validate_files

app = typer.Typer(help="Check, describe, split, grow and audit labelled datasets.", no_args_is_help=True)

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
    seed: int = typer.Option(SplitSettings.seed, help="Seed of the article hash (the shipped splits use the default)."),
    search: bool = typer.Option(
        False, "--search", help="Use the first seed from --seed on whose split meets the balance rules."
    ),
    dev: float = typer.Option(SplitSettings.dev, help="Share of articles for dev."),
    test: float = typer.Option(SplitSettings.test, help="Share of articles for test."),
    min_cell: int = typer.Option(
        SplitSettings.min_cell, help="Balance rule: paragraphs per (topic, stance) cell in dev and in test."
    ),
) -> None:
    """Assign train/dev/test by a hash of each article's id, so whole articles stay together and label fixes never move one.

    The shipped splits are exactly what this command gives with its defaults. With --search, the seed is the first (from --seed) whose split puts every (topic, stance) cell at least --min-cell times in dev and in test, with paragraph shares within 3 points of the targets. The command warns when the split it writes misses those rules.

    Examples:

        allystance data split

        allystance data split my_labels.jsonl --seed 0 --search
    """
    records = read_records(file)
    settings = SplitSettings(seed=seed, dev=dev, test=test, min_cell=min_cell)
    if search:
        settings = SplitSettings(search_seed(records, settings), dev, test, min_cell)
    records = apply_splits(records, settings)
    write_records(file, records)
    print_tables(dataset_stats(records)[:1])
    typer.echo(f"seed {settings.seed}")
    for problem in balance_problems(records, settings):
        typer.secho(f"warning: {problem}", err=True, fg=typer.colors.YELLOW)


def _explain_line(block: DroppedBlock) -> str:
    text = " ".join(block.text.split())
    text = text if len(text) <= 100 else text[:97] + "..."
    return f"{block.article_id}:{block.start}-{block.end}\t{block.reason}\t{text}"


@app.command("import")
@user_errors
def import_(
    inputs: list[str] = typer.Argument(
        ..., help="Files, folders, glob patterns, or - for standard input.", show_default=False
    ),
    output: Path = typer.Option(..., "--output", "-o", help="JSON-lines file to write the paragraph records to."),
    keep_related: bool = typer.Option(
        False, "--keep-related", help="Keep what follows a 'Related articles' marker, flagged related."
    ),
    explain: bool = typer.Option(False, "--explain", help="Print every dropped block with its reason."),
    source: str = typer.Option("unknown", help="Source for records whose input names none."),
) -> None:
    """Turn raw articles into unlabelled paragraph records (the dataset format with empty labels) for annotation.

    Reads .txt/.md (one article each), .html (main text extracted), .jsonl/.csv/.parquet tables with a 'text' column (optional id, title, date, source, url), folders, globs, and - for standard input. Page furniture is dropped by reason: headings, datelines, bylines, captions, repeated lines, widgets, navigation, link lists, URL/e-mail lines, copyright and about notes, wire codes ('(LEAD)', '(ATTN: ...)', '(END)'), a publisher's blurb and a list of teaser headlines at the end of the page, non-English text, and everything from a 'Related articles' marker on. Unreadable inputs are skipped with a one-line reason; the rest of the batch goes on.

    Examples:

        allystance data import scraped/ -o paragraphs.jsonl

        allystance data import 'pages/*.html' feed.csv -o paragraphs.jsonl --explain
    """
    console = Console(stderr=True)
    settings = SegmentSettings(keep_related=keep_related)
    columns = (
        SpinnerColumn(),
        TextColumn("{task.completed} articles"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("import", total=None, rate="")

        def advance(article: SegmentedArticle) -> None:
            elapsed = progress.tasks[0].elapsed or 0.0
            done = progress.tasks[0].completed + 1
            progress.update(task, completed=done, rate=f"{done / elapsed:,.0f} articles/s" if elapsed else "")

        def show(block: DroppedBlock) -> None:
            typer.echo(_explain_line(block))

        report = import_articles(
            inputs, output, settings, default_source=source, on_dropped=show if explain else None, on_article=advance
        )
    if explain:
        typer.echo()
    print_tables(report.tables())
    rate = report.paragraphs / report.seconds if report.seconds else 0.0
    typer.echo(
        f"wrote {report.paragraphs} paragraph records to {output} ({report.seconds:.1f} s, {rate:,.0f} paragraphs/s)"
    )
    if not report.articles:
        raise UserError("no article could be read from the inputs")


@app.command()
@user_errors
def suggest(
    pool: list[Path] = typer.Argument(
        ...,
        help="Unlabelled paragraph tables: the output of 'data import', or .jsonl/.csv/.parquet with a 'text' column.",
        show_default=False,
    ),
    n: int = typer.Option(50, "-n", help="How many paragraphs to pick."),
    output: Path = typer.Option(
        ...,
        "--output",
        "-o",
        help="File to write: JSON lines, or Label Studio tasks (JSON) with --format label-studio.",
    ),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="MLflow model URI or a local model folder."),
    strategy: str = typer.Option(
        "margin", help="margin (smallest decision margin first), uncertainty (total entropy) or random."
    ),
    diverse: bool = typer.Option(
        False, "--diverse", help="Skip paragraphs too similar (word TF-IDF cosine) to one already picked."
    ),
    max_similarity: float = typer.Option(
        0.5, help="With --diverse: cosine similarity from which a paragraph counts as near-identical."
    ),
    fmt: str = typer.Option(
        "jsonl", "--format", help="jsonl or label-studio (tasks with predictions, plus <stem>.config.xml)."
    ),
    exclude: list[Path] = typer.Option(
        None,
        "--exclude",
        help="Labelled files whose texts are left out of the pool. \\[default: the shipped dataset]",
        show_default=False,
    ),
    seed: int = typer.Option(0, help="Seed of the random strategy."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow tracking URI for models:/ and runs:/ URIs."),
) -> None:
    """Pick the paragraphs the model is least sure about, with its labels as pre-annotations for the annotator to correct.

    Paragraphs already in the labelled data (--exclude) and repeated texts are left out. With --format label-studio the output is a Label Studio tasks file (import it in the project) and the labelling config generated from the label schema is written next to it as <stem>.config.xml (paste it under Settings > Labeling Interface > Code).

    Examples:

        allystance data suggest new_paragraphs.jsonl -n 50 -o batch.jsonl

        allystance data suggest new_paragraphs.jsonl -n 50 --diverse --format label-studio -o batch1.json
    """
    from inference.model_io import load_predictor
    from inference.store import use_store
    from inference.suggest import FORMATS, STRATEGIES, read_pool, write_suggestions
    from inference.suggest import suggest as pick

    if strategy not in STRATEGIES:
        raise UserError(f"unknown --strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    if fmt not in FORMATS:
        raise UserError(f"unknown --format {fmt!r}; expected one of {', '.join(FORMATS)}")
    records = read_pool(pool)
    if not records:
        raise UserError("the pool holds no paragraph with text")
    use_store(tracking_uri)
    predictor = load_predictor(model)
    labelled = [r["text"] for r in read_records(exclude or None) if isinstance(r.get("text"), str)]
    picked = pick(records, predictor, n, strategy, diverse, max_similarity, exclude=labelled, seed=seed)
    if not picked:
        raise UserError("every paragraph of the pool is already labelled or repeated; nothing to suggest")
    written = write_suggestions(picked, output, predictor.schema, fmt, strategy, model)
    rows = tuple(
        (
            s.rank,
            s.record["id"],
            f"{s.score:.3f}",
            ", ".join(f"{t}:{v}" for t, v in s.prediction.stance.items()) or "-",
            _short(s.record["text"], 60),
        )
        for s in picked[:10]
    )
    print_tables(
        [
            Table(
                f"Most unsure ({strategy}{', diverse' if diverse else ''})",
                ("rank", "id", "unsure", "model's labels", "text"),
                rows,
            )
        ]
    )
    typer.echo(f"picked {len(picked)} of {len(records)} pool paragraphs; wrote {', '.join(map(str, written))}")


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


@app.command()
@user_errors
def audit(
    files: list[Path] = FilesArg,
    folds: int = typer.Option(5, "--folds", "-k", help="Folds by article for the out-of-fold predictions."),
    output: Path = typer.Option(..., "--output", "-o", help="Ranked flags: .jsonl, or .csv for a spreadsheet."),
    seed: int = typer.Option(13, help="Seed of the fold assignment and the models."),
    top: int = typer.Option(15, help="How many flags to print."),
) -> None:
    """Find labels the baseline confidently contradicts (confident learning on out-of-fold predictions).

    The TF-IDF baseline is trained K times, each time leaving one fold of articles out, and scores the fold it did not see. A label is flagged when the model gives another class at least that class's mean self-confidence; flags are ranked by p(suggested) - p(given), each with the given label, the suggested one and the n-grams that pushed the model. Review flags against labels/GUIDELINES.md: many are the model's mistakes, not the annotator's.

    Examples:

        allystance data audit -o audit.jsonl

        allystance data audit my_labels.jsonl --folds 10 -o audit.csv
    """
    from training.audit import AuditSettings, write_audit
    from training.audit import audit as run_audit

    records = read_records(files or None)
    console = Console(stderr=True)
    with console.status("auditing") as status:
        result = run_audit(records, settings=AuditSettings(folds=folds, seed=seed), progress=lambda m: status.update(m))
    write_audit(result, output)
    rows = tuple(
        (
            f.rank,
            f.record["id"],
            f"{f.score:.2f}",
            "; ".join(i.describe() for i in f.issues),
            _short(f.record["text"], 50),
        )
        for f in result.flags[:top]
    )
    issues = result.n_issues
    print_tables(
        [
            Table(
                "Audit",
                ("", "count"),
                (
                    ("paragraphs", result.n_records),
                    ("flagged", len(result.flags)),
                    ("topic issues", issues["topic"]),
                    ("stance issues", issues["stance"]),
                ),
            ),
            Table(f"Top {min(top, len(result.flags))} flags", ("rank", "id", "margin", "issues", "text"), rows),
        ]
    )
    typer.echo(f"wrote {len(result.flags)} flags to {output}")


@app.command()
@user_errors
def merge(
    export: Path = typer.Argument(
        ..., help="Label Studio JSON export (Export > JSON), or JSON lines of labelled records.", show_default=False
    ),
    into: Path = typer.Option(DEFAULT_DATASET, "--into", help="Dataset file to append to (created if missing)."),
    seed: int = typer.Option(SplitSettings.seed, help="Seed of the article hash that gives new records their split."),
) -> None:
    """Append labelled paragraphs from a Label Studio export to a dataset file, checked against the schema.

    Each task needs one annotation (cancelled ones are ignored; several must agree). Records keep id, article_id, position, source and date from the task data; the split is the article's hash split, so paragraphs of an article already in the file land with it. Texts already in the file are refused. Nothing is written if any record breaks the schema or 'data validate'.

    Examples:

        allystance data merge project-1-export.json --into my_labels.jsonl
    """
    from labels.merge import merge_export, merge_jsonl

    settings = SplitSettings(seed=seed)
    report = (
        merge_jsonl(export, into, settings)
        if export.suffix.lower() == ".jsonl"
        else merge_export(export, into, settings)
    )
    for line in report.duplicates:
        typer.secho(f"refused duplicate: {line}", err=True, fg=typer.colors.YELLOW)
    for line in report.skipped:
        typer.secho(f"skipped {line}", err=True, fg=typer.colors.YELLOW)
    if report.added:
        print_tables(dataset_stats(report.added)[:2])
    typer.echo(
        f"merged {len(report.added)} records into {into} ({len(report.duplicates)} duplicates refused, {len(report.skipped)} tasks skipped)"
    )
