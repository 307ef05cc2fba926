"""Scoring on real published news kept outside the repository.

The team's dataset is team-written; how a model does on real reporting is measured on a
folder of real paragraphs that never enters the project (``../shared/realnews`` beside a
checkout of the team's repository): ``dev.jsonl``, labelled in the project's record format
(plus ``origin`` and an acceptable ``alt`` stance), and ``stream.jsonl``, unlabelled
paragraphs of the same sources. Nothing here trains on them. Every function takes the folder
as an argument; :func:`find_realnews` returns None when it is absent, so callers skip cleanly
on a user's fresh clone.

Selection. When the folder is present, training logs ``realnews_*`` metrics next to the
team's ``dev_*`` ones, and the champion is chosen by ``selection_score``: the mean of the
team-dev ``combined_f1`` and the real-dev ``combined_f1`` (topic micro-F1 and end-to-end
stance macro-F1 averaged), weighted equally because each alone misleads (the team split
overstates quality; the real dev set is small, 192 paragraphs, and tuned to hard it stops
predicting the held-out real set). Without the folder it is the team-dev ``combined_f1``.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from inference.model_io import Predictor
from labels import read_records
from training.evaluate import evaluate, metric_prefix

# The folder beside the repository that holds the real-news files, when there is one.
DEFAULT_REALNEWS = Path(__file__).resolve().parents[2] / "shared" / "realnews"
DEV_FILE = "dev.jsonl"
STREAM_FILE = "stream.jsonl"
PREFIX = "realnews"
SELECTION_METRIC = "selection_score"
# Weight of the real-dev combined F1 in the selection score (the rest is team dev).
REALNEWS_WEIGHT = 0.5


# Where ``auto`` looks first: a folder, or "off" (the test suite sets it off).
ENV_VAR = "ALLYSTANCE_REALNEWS"


def find_realnews(folder: str | Path | None = "auto") -> Path | None:
    """The real-news folder if it holds a labelled ``dev.jsonl``, else None (skip).

    ``auto`` means ``$ALLYSTANCE_REALNEWS`` when set, else ``../shared/realnews`` beside the
    checkout; None or ``off`` turns real-news scoring off.
    """
    if folder == "auto":
        folder = os.environ.get(ENV_VAR) or DEFAULT_REALNEWS
    if folder is None or str(folder) == "off":
        return None
    path = Path(folder)
    return path if (path / DEV_FILE).is_file() else None


def realnews_metrics(predictor: Predictor, folder: Path, points: Sequence[str] | None = None) -> dict[str, float]:
    """The shared evaluation on the real dev set at each operating point in ``points`` (the
    predictor's own when None; the texts are scored once), prefixed ``realnews_`` at the
    balanced point and ``realnews_<point>_`` at another; ``combined_f1`` there is topic
    micro-F1 and end-to-end stance macro-F1 averaged (a missed topic is a wrong stance)."""
    records = read_records(folder / DEV_FILE)
    topic_scores, stance_proba = predictor.score([r["text"] for r in records])
    out: dict[str, float] = {}
    for point in points or [predictor.operating_point]:
        thresholds = predictor.thresholds if point == predictor.operating_point else predictor.at(point).thresholds
        metrics = evaluate(records, topic_scores, stance_proba, thresholds, predictor.schema, False).metrics
        metrics["combined_f1"] = (metrics["topic_micro_f1"] + metrics.get("stance_e2e_macro_f1", 0.0)) / 2
        out.update({f"{metric_prefix(PREFIX, point)}_{k}": v for k, v in metrics.items()})
    return out


def selection_score(metrics: dict[str, float]) -> float:
    """Team-dev combined F1, averaged with the real-dev combined F1 when it was measured."""
    team = metrics["dev_combined_f1"]
    real = metrics.get(f"{PREFIX}_combined_f1")
    return team if real is None else (1 - REALNEWS_WEIGHT) * team + REALNEWS_WEIGHT * real


def stream_texts(folder: Path, limit: int | None = None) -> list[dict]:
    """The rows of the unlabelled stream file (``id``, ``origin``, ``text``), the first ``limit``."""
    path = folder / STREAM_FILE
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()][:limit]


def stream_summary(
    predictor: Predictor,
    folder: Path,
    sample_size: int = 100,
    seed: int = 0,
    limit: int | None = None,
    scores: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[dict[str, float], list[dict]]:
    """Share of stream paragraphs given any topic and each topic, and a random sample of the
    topic-labelled ones (to read and count the wrong ones by hand), at the predictor's
    operating point. ``scores``: the stream rows already scored by this model (to compare
    operating points without scoring twice)."""
    rows = stream_texts(folder, limit)
    texts = [r["text"] for r in rows]
    if scores is None:
        scores = predictor.score(texts)
    predictions = predictor.decide(*scores) if texts else []
    schema = predictor.schema
    labelled = [i for i, p in enumerate(predictions) if p.topics]
    n = max(len(rows), 1)
    summary = {"stream_paragraphs": float(len(rows)), "stream_topic_share": len(labelled) / n}
    for t in schema.topic_ids:
        summary[f"stream_{t}_share"] = sum(t in p.topics for p in predictions) / n
    picked = sorted(random.Random(seed).sample(labelled, min(sample_size, len(labelled))))
    sample = [
        {
            "id": rows[i].get("id", str(i)),
            "origin": rows[i].get("origin"),
            "text": rows[i]["text"],
            "topics": predictions[i].topics,
            "stance": predictions[i].stance,
        }
        for i in picked
    ]
    return summary, sample


__all__ = [
    "DEFAULT_REALNEWS",
    "SELECTION_METRIC",
    "find_realnews",
    "realnews_metrics",
    "selection_score",
    "stream_summary",
    "stream_texts",
]
