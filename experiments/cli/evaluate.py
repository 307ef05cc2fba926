"""``allystance evaluate``: score any saved model on a labelled file with the shared metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer

from experiments.cli.common import print_tables, user_errors
from experiments.defaults import BEHAVIOUR_FAILURES, BEHAVIOUR_SUITE
from labels import DEFAULT_DATASET, read_records
from labels.errors import UserError
from labels.stats import Table

DEFAULT_MODEL = "models:/allystance@champion"


@dataclass
class EvaluationReport:
    """What ``allystance evaluate`` prints: overall metrics, metrics per ``origin`` (when the
    records carry one, as the real-news files do) and the end-to-end stance confusion."""

    metrics: dict[str, float]
    by_origin: dict[str, dict[str, float]] = field(default_factory=dict)
    confusion: object = None  # a pandas DataFrame: gold stance rows, predicted stance or "missed" columns
    # 95% bootstrap interval of the headline metrics (paragraphs resampled); empty when not asked.
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    operating_point: str = "balanced"  # the thresholds the labels were decided with


def evaluate_model(
    model: str,
    data: Path,
    split: str | None,
    output: Path | None,
    tracking_uri: str | None = None,
    quantized: bool = False,
    bootstrap: int = 0,
    operating_point: str = "balanced",
    runtime: str = "torch",
) -> EvaluationReport:
    """Evaluate a model URI or folder on a dataset file; write plots and errors to ``output``.

    ``runtime`` runs the encoder of a transformer or embed model on ``torch``, ``torch-int8``,
    ``onnx`` or ``onnx-int8`` (``quantized`` is ``torch-int8``); ``bootstrap`` > 0
    adds 95% intervals of the headline metrics from that many resamples of the paragraphs;
    ``operating_point`` picks the model's thresholds (``balanced`` or ``stream``, see ``inference.model_io``).
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from inference.model_io import load_predictor
    from inference.store import use_store
    from training.evaluate import (
        Gold,
        accept_alternatives,
        bootstrap_intervals,
        e2e_stance_confusion,
        evaluate,
        evaluate_groups,
    )

    use_store(tracking_uri)
    predictor = load_predictor(model, quantized=quantized, operating_point=operating_point, runtime=runtime)
    records = [r for r in read_records(data) if split in (None, "all") or r.get("split") == split]
    if not records:
        raise UserError(f"{data} has no records in split {split!r}")
    scores = predictor.score([r["text"] for r in records])
    result = evaluate(records, *scores, predictor.thresholds, predictor.schema, with_artifacts=output is not None)
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        for name, figure in result.figures.items():
            figure.savefig(output / name, dpi=110)
            plt.close(figure)
        result.errors.to_csv(output / "worst_errors.csv", index=False)
    gold = Gold.from_records(records, predictor.schema)
    topic_pred = (scores[0] >= np.asarray(predictor.thresholds)[None, :]).astype(int)
    stance_pred = np.argmax(scores[1], axis=2)
    confusion = e2e_stance_confusion(
        accept_alternatives(gold.stances, stance_pred, gold.alt), stance_pred, topic_pred, predictor.schema
    )
    by_origin = evaluate_groups(records, *scores, predictor.thresholds, predictor.schema)
    intervals = (
        bootstrap_intervals(records, *scores, predictor.thresholds, predictor.schema, resamples=bootstrap)
        if bootstrap > 0
        else {}
    )
    return EvaluationReport(result.metrics, by_origin, confusion, intervals, predictor.operating_point)


@dataclass
class BehaviourReport:
    """What ``allystance evaluate --behaviour`` did: the result, where the failing cases went,
    and the run they were logged to (None when not logged)."""

    result: object  # training.behaviour.BehaviourResult
    failures_file: Path
    run_id: str | None


def evaluate_behaviour(
    model: str,
    suite: Path | None = None,
    output: Path | None = None,
    tracking_uri: str | None = None,
    quantized: bool = False,
    log: bool = True,
    runtime: str = "torch",
) -> BehaviourReport:
    """Run the behaviour suite on a model; write the failing cases to ``output`` (a folder;
    the working directory when None) and log the failure rates to the model's run, under
    names of their own for a runtime other than torch (``behaviour_int8_*`` for torch-int8).

    A model folder has no run, so nothing is logged for one.
    """
    from inference.model_io import choose_runtime, load_predictor
    from inference.store import use_store
    from training.behaviour import load_suite, run_suite
    from training.tracking import log_behaviour, run_of_model

    loaded_suite = load_suite(suite or BEHAVIOUR_SUITE)  # before the model: a bad suite fails fast
    runtime = choose_runtime(runtime, quantized)
    is_uri = ":/" in str(model)
    if is_uri:
        use_store(tracking_uri)
    predictor = load_predictor(model, runtime=runtime)
    result = run_suite(loaded_suite, predictor)
    failures = result.write_failures((output or Path(".")) / BEHAVIOUR_FAILURES)
    run_id = run_of_model(model) if log and is_uri else None
    if run_id is not None:
        metrics = result.metrics()
        folder = behaviour_folder(runtime)  # a runtime other than torch gets its own names
        metrics = {k.replace("behaviour_", f"{folder}_", 1): v for k, v in metrics.items()}
        log_behaviour(run_id, metrics, result.summary(), failures, folder)
    return BehaviourReport(result, failures, run_id)


def behaviour_folder(runtime: str) -> str:
    """Where a runtime's behaviour figures go in a run: ``behaviour`` for fp32 torch,
    ``behaviour_int8`` for torch-int8 (as before runtimes), ``behaviour_onnx``, ``behaviour_onnx_int8``."""
    from inference.model_io import TORCH, TORCH_INT8

    named = {TORCH: "behaviour", TORCH_INT8: "behaviour_int8"}
    return named.get(runtime, "behaviour_" + runtime.replace("-", "_"))


@user_errors
def evaluate_command(
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="MLflow model URI or a local model folder."),
    data: Path = typer.Option(DEFAULT_DATASET, "--data", "-d", help="Labelled JSON-lines file."),
    split: str = typer.Option("test", help="Split to score: train, dev, test or all."),
    output: Path = typer.Option(None, "--output", "-o", help="Folder for confusion-matrix PNGs and worst_errors.csv."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow tracking URI for models:/ and runs:/ URIs."),
    runtime: str = typer.Option(
        "torch",
        "--runtime",
        help="Where a transformer or embed model's encoder runs: torch, torch-int8, onnx or onnx-int8 (ONNX Runtime; pip install 'allystance\\[onnx]').",
    ),
    quantized: bool = typer.Option(False, "--quantized", help="The same as --runtime torch-int8."),
    behaviour: bool = typer.Option(
        False,
        "--behaviour",
        help="Run the behavioural suite instead: failure rate per capability, failing examples, and the failing cases written to <output>/behaviour_failures.jsonl (default: the working directory) and logged to the model's run.",
    ),
    suite: Path = typer.Option(
        None,
        "--suite",
        help="A behaviour suite folder (--behaviour). \\[default: experiments/behaviour, the team's suite]",
        show_default=False,
    ),
    log: bool = typer.Option(
        True, "--log/--no-log", help="Log the behaviour figures to the model's MLflow run (--behaviour)."
    ),
    bootstrap: int = typer.Option(
        1000,
        "--bootstrap",
        min=0,
        help="Resamples of the paragraphs for the 95%% intervals of the headline metrics (0: no intervals).",
    ),
    operating_point: str = typer.Option(
        "balanced",
        "--operating-point",
        help="Which thresholds saved with the model decide: balanced (the best F1 on team dev) or stream (for a feed where most paragraphs are not about the alliance: fewer topic labels, more of them right).",
    ),
) -> None:
    """Score a model on labelled data: per-topic P/R/F1, micro/macro F1, exact match, stance macro-F1, F_avg, end-to-end stance, a stance confusion table, and a table per origin when the records have one.

    Examples:

        allystance evaluate

        allystance evaluate --model models:/allystance/3 --split dev -o eval/

        allystance evaluate --model models:/allystance/4 --quantized

        allystance evaluate --model models:/allystance/4 --runtime onnx-int8

        allystance evaluate --data ../shared/realnews/dev.jsonl --split all

        allystance evaluate --data ../shared/realnews/dev.jsonl --split all --operating-point stream

        allystance evaluate --behaviour --model models:/allystance/4 -o eval/
    """
    from training.evaluate import HEADLINE_METRICS

    if behaviour:
        if data != DEFAULT_DATASET or split != "test":
            raise UserError("--behaviour runs the behaviour suite, not a labelled file: leave out --data and --split")
        if operating_point != "balanced":
            raise UserError("--behaviour checks the model at its balanced thresholds: leave out --operating-point")
        _print_behaviour(evaluate_behaviour(model, suite, output, tracking_uri, quantized, log, runtime))
        return
    if suite is not None:
        raise UserError("--suite goes with --behaviour")

    report = evaluate_model(model, data, split, output, tracking_uri, quantized, bootstrap, operating_point, runtime)
    metrics = report.metrics
    topics = [
        k.removeprefix("topic_").rsplit("_", 1)[0]
        for k in metrics
        if k.startswith("topic_") and k.endswith("_f1") and k not in ("topic_micro_f1", "topic_macro_f1")
    ]
    per_topic = [
        (
            t,
            f"{metrics[f'topic_{t}_precision']:.3f}",
            f"{metrics[f'topic_{t}_recall']:.3f}",
            f"{metrics[f'topic_{t}_f1']:.3f}",
            # undefined (not reported) for a topic with no gold pairs in this split
            f"{metrics[f'stance_{t}_macro_f1']:.3f}" if f"stance_{t}_macro_f1" in metrics else "-",
        )
        for t in topics
        if f"topic_{t}_precision" in metrics
    ]
    overall = [
        (k, f"{v:.0f}" if k.startswith("n_") else f"{v:.3f}", _interval(report.intervals.get(k)))
        for k, v in metrics.items()
        if not k.startswith(("topic_", "stance_")) or k in HEADLINE_METRICS or k == "stance_e2e_macro_f1"
    ]
    at = f"{split}, {report.operating_point}"
    tables = [
        Table(f"Per topic ({at})", ("topic", "precision", "recall", "F1", "stance macro-F1"), tuple(per_topic)),
        Table(f"Overall ({at})", ("metric", "value", "95% interval"), tuple(overall)),
    ]
    if report.confusion is not None and report.confusion.to_numpy().sum():
        frame = report.confusion
        tables.append(
            Table(
                "Stance on gold pairs (rows: gold; columns: predicted, or missed topic)",
                ("gold", *map(str, frame.columns)),
                tuple(
                    (str(g), *(str(int(v)) for v in row)) for g, row in zip(frame.index, frame.to_numpy(), strict=True)
                ),
            )
        )
    if report.by_origin:
        tables.append(
            Table(
                "Per origin",
                ("origin", "paragraphs", "gold pairs", "topic micro-F1", "stance macro-F1 (end to end)"),
                tuple(
                    (
                        origin,
                        f"{m['n_paragraphs']:.0f}",
                        f"{m.get('n_pairs', 0):.0f}",
                        f"{m['topic_micro_f1']:.3f}",
                        f"{m['stance_e2e_macro_f1']:.3f}" if "stance_e2e_macro_f1" in m else "-",
                    )
                    for origin, m in report.by_origin.items()
                ),
            )
        )
    print_tables(tables)


def _interval(bounds: tuple[float, float] | None) -> str:
    return f"{bounds[0]:.3f}–{bounds[1]:.3f}" if bounds else ""


def _print_behaviour(report: BehaviourReport, examples: int = 2) -> None:
    from rich.console import Console
    from rich.markup import escape

    result = report.result
    print_tables(result.tables())
    console = Console()
    shown = result.examples(examples)
    if shown:
        console.print(f"Failing examples (up to {examples} per capability)", highlight=False)
        for heading, texts in shown:
            console.print(f"  [bold]{escape(heading)}[/]", highlight=False)
            for text in texts:
                console.print(f"    {escape(text)}", highlight=False)
        console.print()
    failed = len(result.failures())
    console.print(f"wrote {failed} failing cases to {report.failures_file}", highlight=False)
    if report.run_id:
        console.print(f"logged to run {report.run_id} (behaviour_* metrics, artifacts in behaviour/)", highlight=False)
