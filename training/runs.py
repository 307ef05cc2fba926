"""What every model family does around its own fitting: read the splits, evaluate on dev
and test, log, save, register and promote. Families call these so that runs compare."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np

from inference.model_io import BALANCED, JOBLIB_FILE, STREAM, ModelMeta, Predictor, save_model
from labels import DEFAULT_DATASET, LabelSchema, read_records
from labels.errors import UserError
from training import tracking
from training.evaluate import Gold, evaluate, metric_prefix, precision_thresholds, tune_thresholds
from training.realnews import SELECTION_METRIC, find_realnews, realnews_metrics, selection_score

logger = logging.getLogger(__name__)


# At most this many training paragraphs, evenly spaced, record the int8 layers' input ranges
# (see inference.encoder). The ranges settle early: on the fine-tuned MiniLM, calibrating on
# 64, 432 (this default), 539 or all 2,156 training paragraphs gives dev+test stance
# agreement with fp32 of 0.994, 0.994, 0.993 and 0.990.
CALIBRATION_PARAGRAPHS = 512


def calibration_texts(records: Sequence[dict], limit: int = CALIBRATION_PARAGRAPHS) -> list[str]:
    """An evenly spaced sample of at most ``limit`` training texts (the same every run)."""
    step = max(1, -(-len(records) // limit))
    return [r["text"] for r in records[::step]]


class TrainingError(UserError):
    """The data or recipe cannot train a model; the message says what to fix."""


@dataclass
class Splits:
    train: list[dict]
    dev: list[dict]
    test: list[dict]
    source: str


@dataclass
class TrainResult:
    run_id: str
    model_version: str
    metrics: dict[str, float]
    promoted: bool = False
    previous_champion: float | None = None
    chosen: dict[str, object] = field(default_factory=dict)
    # Dev metrics of each candidate compared inside the run (e.g. the transformer's stance designs).
    candidates: dict[str, dict[str, float]] = field(default_factory=dict)
    # The in-memory model that was logged (so callers and tests can compare a reload with it).
    predictor: Predictor | None = None


@contextlib.contextmanager
def tracked_family_run(
    recipe: Any,
    schema: LabelSchema,
    splits: Splits,
    tracking_uri: str | None,
    run_name: str | None = None,
    resume_run_id: str | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """The top-level run every family trains in: named after the family (or ``run_name``),
    with the recipe, the schema and all three splits as the run's dataset; ``resume_run_id``
    continues that run when the store has it (a resumed adaptation)."""
    dataset = tracking.dataset_input(splits.train + splits.dev + splits.test, splits.source)
    with tracking.tracked_run(
        family=recipe.family,
        recipe=recipe,
        schema=schema,
        experiment=recipe.experiment,
        tracking_uri=tracking_uri,
        run_name=run_name or recipe.family,
        dataset=dataset,
        resume_run_id=resume_run_id,
    ) as run:
        yield run


def read_splits(path: str | Path | None) -> Splits:
    """Records of a dataset file grouped by split; train and dev must not be empty."""
    path = Path(path) if path else DEFAULT_DATASET
    records = read_records(path)
    by_split: dict[str, list[dict]] = {"train": [], "dev": [], "test": []}
    for r in records:
        by_split.setdefault(r.get("split") or "train", []).append(r)
    for needed in ("train", "dev"):
        if not by_split[needed]:
            raise TrainingError(f"{path} has no '{needed}' records; run 'allystance data split {path}' first")
    return Splits(by_split["train"], by_split["dev"], by_split["test"], str(path))


def stream_operating_point(
    predictor: Predictor, dev: Sequence[dict], dev_topic_scores: np.ndarray, min_precision: float
) -> Predictor:
    """The predictor with its ``stream`` operating point added to its meta: per topic, the
    lowest threshold at or above the balanced one whose team-dev precision reaches
    ``min_precision`` (``training.evaluate.precision_thresholds``). Real news never picks it.

    The floor is the higher of the model's thresholds and the F1-maximising ones on these
    scores, so a recipe's ``threshold_tolerance`` lowers the balanced point but not this one."""
    gold = Gold.from_records(dev, predictor.schema).topics
    floor = np.maximum(predictor.meta.thresholds, tune_thresholds(gold, dev_topic_scores))
    thresholds = precision_thresholds(gold, dev_topic_scores, floor.tolist(), min_precision)
    point = {"thresholds": thresholds, "min_precision": min_precision, "chosen_on": "team dev"}
    meta = dataclasses.replace(predictor.meta, operating_points={**predictor.meta.operating_points, STREAM: point})
    return Predictor(predictor.model, meta, predictor.schema, predictor.source)


def evaluate_and_publish(
    predictor: Predictor,
    splits: Splits,
    schema: LabelSchema,
    recipe: Any,
    promote: bool,
    run_id: str,
    model_family: str | None = None,
) -> TrainResult:
    """Inside an active run: evaluate on dev and test (and on the real-news dev set when the
    recipe's ``realnews`` folder is there), add the ``stream`` operating point chosen on dev
    (``recipe.stream_precision``) and evaluate there too, log, save and register the model,
    and promote it by the recipe's ``promote_metric`` when asked. The registered version is
    tagged with ``model_family`` (default: the recipe's family).

    Metrics at the stream point are named with the point after the split
    (``test_stream_topic_micro_f1``, ``realnews_stream_topic_micro_precision``); the
    selection score stays on the balanced point."""
    family, promote_metric, realnews = model_family or recipe.family, recipe.promote_metric, recipe.realnews
    metrics: dict[str, float] = {}
    scored = {}
    for name, records in (("dev", splits.dev), ("test", splits.test)):
        if not records:
            continue
        scored[name] = (records, predictor.score([r["text"] for r in records]))
        result = evaluate(records, *scored[name][1], predictor.thresholds, schema)
        tracking.log_evaluation(result, name)
        metrics.update(result.prefixed(name))
    dev_records, (dev_topic_scores, _) = scored["dev"]
    predictor = stream_operating_point(predictor, dev_records, dev_topic_scores, recipe.stream_precision)
    stream = predictor.at(STREAM)
    mlflow.log_dict(
        {
            "thresholds": dict(zip(schema.topic_ids, stream.thresholds.tolist(), strict=True)),
            **{k: v for k, v in predictor.meta.operating_points[STREAM].items() if k != "thresholds"},
        },
        "thresholds_stream.json",
    )
    for name, (records, scores) in scored.items():
        result = evaluate(records, *scores, stream.thresholds, schema, with_artifacts=False)
        metrics.update(result.prefixed(metric_prefix(name, STREAM)))
    folder = find_realnews(realnews)
    if folder is not None:
        metrics.update(realnews_metrics(predictor, folder, points=(BALANCED, STREAM)))
        mlflow.set_tag("realnews", str(folder))
    metrics[SELECTION_METRIC] = selection_score(metrics)
    logged_apart = ("realnews_", SELECTION_METRIC, *(f"{metric_prefix(name, STREAM)}_" for name in scored))
    tracking.log_metrics({k: v for k, v in metrics.items() if k.startswith(logged_apart)})
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = save_model(Path(tmp) / "model", predictor.model, predictor.meta)
        version = tracking.log_model(model_dir, predictor, [r["text"] for r in splits.dev], family)
    promoted, previous = False, None
    if promote:
        if promote_metric not in metrics:
            raise TrainingError(f"promote_metric {promote_metric!r} is not one of the logged metrics")
        promoted, previous = tracking.promote_if_better(version, promote_metric, metrics[promote_metric])
    return TrainResult(run_id, version, metrics, promoted, previous, predictor=predictor)


def make_meta(
    family: str,
    schema: LabelSchema,
    thresholds: Sequence[float],
    weights: str = JOBLIB_FILE,
    base_model: str | None = None,
    **extra,
) -> ModelMeta:
    """The self-description a saved model carries (schema and hash, thresholds, weights format)."""
    return ModelMeta(
        family=family,
        schema=schema.to_dict(),
        schema_hash=schema.hash,
        thresholds=[float(t) for t in thresholds],
        base_model=base_model,
        weights=weights,
        extra=extra,
    )
