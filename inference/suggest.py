"""Choosing which unlabelled paragraphs to label next: uncertainty sampling over a pool.

A model scores every paragraph of the pool; each paragraph gets one number saying how
unsure the model is about its labels, and the most unsure come first:

- ``margin`` (breaking ties, the default): the smallest margin among the paragraph's
  decisions. A topic decision's margin is its score's distance from the model's threshold,
  scaled to [0, 1] on each side; a stance decision's margin is the gap between its two
  likeliest stances, weighted by how likely the topic is to apply (a stance the model is
  torn about matters little on a paragraph that is clearly not about the topic).
- ``uncertainty``: total entropy, the mean over topics of the topic decision's binary
  entropy (with the threshold mapped to 0.5) plus the weighted stance entropy.
- ``random``: a seeded shuffle, the baseline any strategy should beat.

``diverse`` walks down the ranking and skips a paragraph whose word TF-IDF cosine
similarity to one already picked reaches ``max_similarity``, so a batch does not spend
annotation time on near-identical wire copies.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.model_io import Prediction, Predictor
from labels import LabelSchema, read_records
from labels.errors import UserError
from labels.labelstudio import DATA_FIELDS, labeling_config, make_task
from labels.merge import text_key

logger = logging.getLogger(__name__)

STRATEGIES = ("margin", "uncertainty", "random")
FORMATS = ("jsonl", "label-studio")
POOL_SUFFIXES = (".jsonl", ".csv", ".parquet")


@dataclass(frozen=True)
class Suggestion:
    """One paragraph picked for labelling: its record, the model's labels and how unsure it is."""

    record: dict
    prediction: Prediction
    score: float
    rank: int


# -- reading a pool ---------------------------------------------------------------------
def _pool_record(row: dict, path: Path, row_no: int) -> dict | None:
    text = row.get("text")
    if not isinstance(text, str) or not text.strip():
        return None
    record = {k: row[k] for k in DATA_FIELDS if row.get(k) not in (None, "")}
    record["id"] = str(record.get("id") or f"{path.stem}-{row_no:05d}")
    if "position" in record:
        try:
            record["position"] = int(record["position"])
        except (TypeError, ValueError):
            del record["position"]
    for key in ("article_id", "source", "date", "title", "url"):
        if key in record:
            record[key] = str(record[key])
    return record


def _rows(path: Path) -> Iterable[dict]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from read_records(path)
    elif suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            if "text" not in (reader.fieldnames or []):
                raise UserError(f"{path}: no 'text' column (columns: {', '.join(reader.fieldnames or []) or 'none'})")
            yield from reader
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        if "text" not in table.column_names:
            raise UserError(f"{path}: no 'text' column (columns: {', '.join(table.column_names)})")
        yield from table.to_pylist()
    else:
        kinds = ", ".join(POOL_SUFFIXES)
        raise UserError(f"{path}: a pool is a paragraph table ({kinds}), not {suffix or 'a file without suffix'}")


def read_pool(paths: Sequence[str | Path]) -> list[dict]:
    """Paragraph records from tables with a ``text`` column (the output of ``data import`` or any other).

    Rows without text are skipped; ``id`` defaults to ``<file stem>-<row>``, and ``article_id``,
    ``position``, ``source``, ``date``, ``title`` and ``url`` are kept when present.
    """
    pool = []
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise UserError(f"{path}: no such file")
        for row_no, row in enumerate(_rows(path), start=1):
            record = _pool_record(dict(row), path, row_no)
            if record is not None:
                pool.append(record)
    return pool


# -- scoring ----------------------------------------------------------------------------
def _threshold_margin(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Distance of each topic score from its threshold, scaled to [0, 1] on either side."""
    th = np.clip(thresholds, 1e-6, 1 - 1e-6)
    above = (scores - th) / (1 - th)
    below = (th - scores) / th
    return np.clip(np.where(scores >= th, above, below), 0.0, 1.0)


def _topic_weight(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """How much a topic's stance decision counts: 1 at or over the threshold, less below it."""
    return np.clip(scores / np.clip(thresholds, 1e-6, None), 0.0, 1.0)


def uncertainty_scores(
    topic_scores: np.ndarray, stance_proba: np.ndarray, thresholds: Sequence[float], strategy: str = "margin"
) -> np.ndarray:
    """One number per paragraph, higher for a paragraph the model is less sure about (in [0, 1])."""
    if strategy not in ("margin", "uncertainty"):
        raise UserError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    th = np.broadcast_to(np.asarray(thresholds, dtype=float), topic_scores.shape)
    weight = _topic_weight(topic_scores, th)
    if strategy == "margin":
        topic_unsure = 1.0 - _threshold_margin(topic_scores, th)
        top2 = np.sort(stance_proba, axis=2)[:, :, -2:]
        stance_unsure = weight * (1.0 - (top2[:, :, 1] - top2[:, :, 0]))
        return np.maximum(topic_unsure, stance_unsure).max(axis=1)
    # Entropy, with the threshold mapped to probability 0.5 so that "at the threshold" is most unsure.
    p = np.where(topic_scores < th, 0.5 * topic_scores / th, 0.5 + 0.5 * (topic_scores - th) / (1 - th))
    p = np.clip(p, 1e-9, 1 - 1e-9)
    topic_h = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    q = np.clip(stance_proba, 1e-12, 1.0)
    stance_h = -(q * np.log(q)).sum(axis=2) / math.log(stance_proba.shape[2])
    return ((topic_h + weight * stance_h) / 2).mean(axis=1)


def diverse_order(texts: Sequence[str], order: Sequence[int], n: int, max_similarity: float = 0.5) -> list[int]:
    """The first ``n`` of ``order`` whose word TF-IDF cosine to every earlier pick is below ``max_similarity``."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from inference.tfidf import normalize_texts

    if not len(order):
        return []
    vectors = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit_transform(normalize_texts(texts))
    picked: list[int] = []
    for i in order:
        if len(picked) >= n:
            break
        if picked and (vectors[picked] @ vectors[i].T).max() >= max_similarity:
            continue
        picked.append(int(i))
    return picked


def suggest(
    pool: Sequence[dict],
    predictor: Predictor,
    n: int,
    strategy: str = "margin",
    diverse: bool = False,
    max_similarity: float = 0.5,
    exclude: Iterable[str] = (),
    seed: int = 0,
    batch_size: int = 2000,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> list[Suggestion]:
    """The ``n`` paragraphs of ``pool`` to label next, most useful first, with the model's labels.

    Paragraphs whose text is in ``exclude`` (texts already labelled) and repeats of a text
    earlier in the pool are left out, since ``data merge`` would refuse them anyway.
    """
    if strategy not in STRATEGIES:
        raise UserError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    if n < 1:
        raise UserError(f"-n must be at least 1, got {n}")
    seen = {text_key(t) for t in exclude}
    candidates = []
    for record in pool:
        key = text_key(record["text"])
        if key and key not in seen:
            seen.add(key)
            candidates.append(record)
    if len(candidates) < len(pool):
        left_out = len(pool) - len(candidates)
        logger.info("%d of %d pool paragraphs left out: already labelled or repeated", left_out, len(pool))
    if not candidates:
        return []
    texts = [r["text"] for r in candidates]
    topic_parts, stance_parts = [], []
    for start in range(0, len(texts), batch_size):
        t, s = predictor.score(texts[start : start + batch_size])
        topic_parts.append(t)
        stance_parts.append(s)
        progress(min(start + batch_size, len(texts)), len(texts))
    topic_scores, stance_proba = np.concatenate(topic_parts), np.concatenate(stance_parts)
    if strategy == "random":
        scores = np.random.default_rng(seed).random(len(texts))
    else:
        scores = uncertainty_scores(topic_scores, stance_proba, predictor.thresholds, strategy)
    # Stable sort on the negated score: ties keep pool order, so runs are reproducible.
    order = np.argsort(-scores, kind="stable")
    chosen = diverse_order(texts, order, n, max_similarity) if diverse else [int(i) for i in order[:n]]
    predictions = predictor.decide(topic_scores[chosen], stance_proba[chosen])
    return [
        Suggestion(candidates[i], prediction, round(float(scores[i]), 6), rank)
        for rank, (i, prediction) in enumerate(zip(chosen, predictions, strict=True), start=1)
    ]


# -- writing ----------------------------------------------------------------------------
def suggestion_record(s: Suggestion, strategy: str, model: str) -> dict:
    """A dataset-shaped record with the model's labels filled in for the annotator to correct."""
    return {
        **{k: v for k, v in s.record.items() if k in DATA_FIELDS},
        "topics": s.prediction.topics,
        "stance": s.prediction.stance,
        "rank": s.rank,
        "uncertainty": s.score,
        "strategy": strategy,
        "model": model,
        "topic_scores": s.prediction.topic_scores,
    }


def config_path(output: str | Path) -> Path:
    """Where the labelling config goes next to a Label Studio tasks file: ``<stem>.config.xml``."""
    output = Path(output)
    return output.with_name(f"{output.stem}.config.xml")


def write_suggestions(
    suggestions: Sequence[Suggestion],
    output: str | Path,
    schema: LabelSchema,
    fmt: str = "jsonl",
    strategy: str = "margin",
    model: str = "",
) -> list[Path]:
    """Write the suggestions: JSON lines, or Label Studio tasks plus the labelling config."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        with output.open("w", encoding="utf-8") as fh:
            for s in suggestions:
                fh.write(json.dumps(suggestion_record(s, strategy, model), ensure_ascii=False) + "\n")
        return [output]
    if fmt == "label-studio":
        tasks = [
            make_task(s.record, s.prediction.topics, s.prediction.stance, model_version=model, score=1.0 - s.score)
            for s in suggestions
        ]
        for task, s in zip(tasks, suggestions, strict=True):
            task["data"]["uncertainty"] = s.score
            task["data"]["rank"] = s.rank
        output.write_text(json.dumps(tasks, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        config = config_path(output)
        config.write_text(labeling_config(schema), encoding="utf-8")
        return [output, config]
    raise UserError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
