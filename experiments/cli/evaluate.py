"""``allystance evaluate``: score any saved model on a labelled file with the shared metrics."""

from __future__ import annotations

from pathlib import Path

import typer

from experiments.cli.common import print_tables, user_errors
from labels import DEFAULT_DATASET, read_records
from labels.errors import UserError
from labels.stats import Table

DEFAULT_MODEL = "models:/allystance@champion"


def evaluate_model(
    model: str,
    data: Path,
    split: str | None,
    output: Path | None,
    tracking_uri: str | None = None,
    quantized: bool = False,
) -> dict[str, float]:
    """Evaluate a model URI or folder on a dataset file; write plots and errors to ``output``.

    ``quantized`` scores the dynamic int8 variant (transformer families).
    """
    import matplotlib.pyplot as plt

    from inference.model_io import load_predictor
    from inference.store import use_store
    from training.evaluate import evaluate

    use_store(tracking_uri)
    predictor = load_predictor(model, quantized=quantized)
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
    return result.metrics


@user_errors
def evaluate_command(
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="MLflow model URI or a local model folder."),
    data: Path = typer.Option(DEFAULT_DATASET, "--data", "-d", help="Labelled JSON-lines file."),
    split: str = typer.Option("test", help="Split to score: train, dev, test or all."),
    output: Path = typer.Option(None, "--output", "-o", help="Folder for confusion-matrix PNGs and worst_errors.csv."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow tracking URI for models:/ and runs:/ URIs."),
    quantized: bool = typer.Option(
        False, "--quantized", help="Score the dynamic int8 variant (transformer and embed models)."
    ),
) -> None:
    """Score a model on labelled data: per-topic P/R/F1, micro/macro F1, exact match, stance macro-F1, F_avg, end-to-end accuracy.

    Examples:

        allystance evaluate

        allystance evaluate --model models:/allystance/3 --split dev -o eval/

        allystance evaluate --model models:/allystance/4 --quantized
    """
    from training.evaluate import HEADLINE_METRICS

    metrics = evaluate_model(model, data, split, output, tracking_uri, quantized)
    topics = [
        k.removeprefix("topic_").rsplit("_", 1)[0] for k in metrics if k.startswith("topic_") and k.endswith("_f1")
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
        (k, f"{v:.0f}" if k.startswith("n_") else f"{v:.3f}")
        for k, v in metrics.items()
        if not k.startswith(("topic_", "stance_")) or k in HEADLINE_METRICS
    ]
    print_tables(
        [
            Table(f"Per topic ({split})", ("topic", "precision", "recall", "F1", "stance macro-F1"), tuple(per_topic)),
            Table(f"Overall ({split})", ("metric", "value"), tuple(overall)),
        ]
    )
