"""``allystance predict``: classify every paragraph of new articles, in batches."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from experiments.cli.common import print_tables, user_errors

logger = logging.getLogger(__name__)
DEFAULT_MODEL = "models:/allystance@champion"


@user_errors
def predict_command(
    ctx: typer.Context,
    inputs: list[str] = typer.Argument(
        ...,
        help="Article files (.txt .md .html), tables (.jsonl .csv .parquet), folders, globs, or - for stdin.",
        show_default=False,
    ),
    model: str = typer.Option(
        DEFAULT_MODEL, "--model", "-m", help="MLflow model URI (runs:/, models:/) or a local model folder."
    ),
    output: str = typer.Option(
        "predictions.jsonl", "--output", "-o", help="Rows out: .jsonl, .csv or .parquet, or - for stdout."
    ),
    articles: Path = typer.Option(
        None, "--articles", help="Also write one JSON line per article: topics, counts, shares, dominant stance."
    ),
    errors: Path = typer.Option(
        None, "--errors", help="Bad records (source, line, reason). \\[default: <output>.errors.jsonl]"
    ),
    batch_size: int = typer.Option(
        0,
        "--batch-size",
        min=0,
        help="Paragraphs scored at a time; 0 = 256 for TF-IDF models, 1024 for transformers (larger length-sorted batches pad less).",
    ),
    workers: int = typer.Option(
        0,
        "--workers",
        min=0,
        help="Processes scoring in parallel; 0 = one per CPU core for TF-IDF models, 1 for transformers.",
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its partial output."),
    segment: bool = typer.Option(
        False, "--segment", help="Segment table texts as articles instead of taking each row as a paragraph."
    ),
    keep_related: bool = typer.Option(False, "--keep-related", help="Keep text after a 'Related articles' marker."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda (transformer models)."),
    runtime: str = typer.Option(
        "torch",
        "--runtime",
        help="Where a transformer or embed model's encoder runs (and a blend's encoder members'): torch (fp32, CPU or GPU), torch-int8 (torch dynamic int8, CPU), onnx or onnx-int8 (ONNX Runtime, CPU; pip install 'allystance\\[onnx]'; the first run exports the encoder into ~/.cache/allystance/onnx). Tokenising, batching and the heads are the same on all four.",
    ),
    quantized: bool = typer.Option(False, "--quantized", help="The same as --runtime torch-int8."),
    operating_point: str = typer.Option(
        "balanced",
        "--operating-point",
        help="Which thresholds saved with the model decide: balanced (per topic, the best F1 on team dev) or stream (raised until team-dev precision reaches the recipe's stream_precision, 0.95). Use stream for a feed where most paragraphs are not about the alliance: fewer topic labels, more of them right.",
    ),
    explain: bool = typer.Option(
        False,
        "--explain",
        help="Add an 'evidence' field per row: for each topic given, the phrases that drove the topic and its stance (and the runner-up stance), with weights and character offsets; 'allystance report' highlights them.",
    ),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow tracking URI for models:/ and runs:/ URIs."),
    engine: str = typer.Option("local", "--engine", help="local, or spark to score a Parquet table with Apache Spark."),
    spark_master: str = typer.Option("local[*]", "--spark-master", help="Spark master URL (--engine spark)."),
) -> None:
    """Label every paragraph of new articles with topics and stances; one row per paragraph.

    Article files are split into paragraphs (page furniture dropped, as 'data import' does); a table's rows are taken as paragraphs as they are (--segment to split them). Bad records go to the errors file and the run goes on. Output is written to <output>.partial and renamed at the end; after an interruption, --resume continues where it stopped.

    Examples:

        allystance predict articles/ -o predictions.jsonl --articles articles.jsonl

        allystance predict paragraphs.parquet -o out.parquet --model models:/allystance/3

        cat story.txt | allystance predict - -o -

        allystance predict feed.jsonl -o labelled.jsonl --operating-point stream

        allystance predict feed.jsonl -o labelled.jsonl --runtime onnx-int8

        allystance predict --engine spark paragraphs.parquet -o labelled.parquet --spark-master spark://host:7077

        allystance predict experiments/samples/articles --explain -o explained.jsonl && allystance report explained.jsonl -o report/
    """
    from inference.model_io import TORCH, choose_runtime, load_predictor
    from inference.predict import PredictSettings, count_records, describe_model, predict_files
    from inference.store import use_store
    from labels.errors import UserError

    if device not in ("cpu", "cuda"):
        raise typer.BadParameter("use cpu or cuda", param_hint="--device")
    runtime = choose_runtime(runtime, quantized)  # a typo fails before a model is fetched
    if engine == "spark":
        if runtime != TORCH:
            raise UserError("--runtime and --quantized run with --engine local; Spark scores with fp32 torch")
        if explain:
            raise UserError("--explain runs with --engine local")
        if operating_point != "balanced":
            raise UserError("--operating-point runs with --engine local; Spark scores at the balanced point")
        _predict_on_spark(inputs, model, output, spark_master, tracking_uri)
        return
    if engine != "local":
        raise typer.BadParameter("use local or spark", param_hint="--engine")
    quiet = bool(ctx.find_root().obj and ctx.find_root().obj.get("quiet"))
    if ":/" in model:  # a model folder needs no tracking store (nor MLflow's import time)
        use_store(tracking_uri)
    predictor = load_predictor(model, operating_point=operating_point, runtime=runtime)
    if explain and not hasattr(predictor.model, "word_attributions"):
        raise UserError(f"the {predictor.meta.family} family cannot explain its labels; run without --explain")
    if device == "cuda":
        net = getattr(predictor.model, "net", None)
        if net is None or runtime != TORCH:
            raise UserError(
                f"--device cuda runs transformer models on --runtime torch; this is a {predictor.meta.family} model"
                + (f" on {runtime}" if runtime != TORCH else "")
            )
        import torch

        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is visible here; use --device cpu")
        net.to("cuda")
    sklearn_family = predictor.meta.family in ("baseline", "rules")
    if batch_size == 0:
        batch_size = 256 if sklearn_family else 1024
    if workers == 0:  # forked workers suit scikit-learn models; torch uses its own threads
        workers = min(2, os.cpu_count() or 1) if predictor.meta.family in ("baseline", "rules") else 1
    errors = (
        errors
        if errors is not None
        else (None if output == "-" else Path(output).with_suffix("").with_name(Path(output).stem + ".errors.jsonl"))
    )
    console = Console(stderr=True)
    show = console.is_terminal and not quiet
    total = count_records(inputs) if show else None
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[paragraphs]:,} paragraphs"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not show,
    )
    with progress:
        task = progress.add_task("reading", total=total, paragraphs=0)
        report = predict_files(
            inputs,
            predictor,
            output,
            describe_model(model, operating_point),
            PredictSettings(
                batch_size=batch_size,
                segment_tables=segment,
                keep_related=keep_related,
                workers=workers,
                explain=explain,
            ),
            articles=articles,
            errors=errors,
            resume=resume,
            stdin=sys.stdin,
            on_read=lambda: progress.advance(task),
            on_rows=lambda n: progress.update(task, paragraphs=progress.tasks[0].fields["paragraphs"] + n),
        )
    print_tables(report.tables(predictor.schema.topic_ids, predictor.schema.stance_values), console)
    where = "standard output" if output == "-" else output
    console.print(
        f"wrote {report.paragraphs:,} rows to {where} (operating point: {predictor.operating_point})", highlight=False
    )
    if report.articles_file:
        console.print(f"article summaries in {report.articles_file}", highlight=False)
    if report.bad:
        console.print(
            f"[yellow]{len(report.bad)} bad records skipped[/]; see {report.errors_file or 'the warnings above'}"
        )
    if report.paragraphs == 0:
        typer.secho("error: no paragraph could be classified; check the inputs above", err=True, fg=typer.colors.RED)
        raise typer.Exit(1)


def _predict_on_spark(inputs: list[str], model: str, output: str, master: str, tracking_uri: str | None) -> None:
    """``--engine spark``: one Parquet input (file or folder) to a Parquet output folder."""
    import time

    from labels.errors import UserError

    if len(inputs) != 1 or not inputs[0].endswith(".parquet") or not output.endswith(".parquet"):
        raise UserError("--engine spark reads one .parquet input and writes a .parquet output")
    if ":/" not in model:
        raise UserError("--engine spark needs an MLflow model URI (models:/... or runs:/...), not a folder")
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise UserError("--engine spark needs PySpark: pip install 'allystance[spark]'") from None
    from inference.predict import describe_model
    from inference.spark import score_parquet
    from inference.store import use_store

    uri = use_store(tracking_uri)
    os.environ.setdefault("MLFLOW_TRACKING_URI", uri)  # Spark's Python workers resolve the model URI too
    start = time.perf_counter()
    count = score_parquet(inputs[0], output, model, master, describe_model(model))
    seconds = time.perf_counter() - start
    Console(stderr=True).print(
        f"wrote {count:,} rows to {output} with Spark ({master}) in {seconds:.1f} s ({count / seconds:,.0f} paragraphs/s)",
        highlight=False,
    )
