"""The one evaluation module every model family uses: same metrics, same names, same plots.

Metrics (prefixed by the split when logged, e.g. ``dev_topic_micro_f1``):

- ``topic_<t>_precision|recall|f1`` per topic, ``topic_micro_f1``, ``topic_macro_f1``,
  ``topic_micro_precision|recall`` (over all (paragraph, topic) decisions),
  ``topic_exact_match`` (all four topic decisions right);
- ``stance_macro_f1`` over favor/against/neutral on the gold (paragraph, topic) pairs,
  ``stance_f_avg`` (SemEval-style mean F1 of favor and against), ``stance_<t>_macro_f1``;
- ``stance_e2e_accuracy``: a gold pair counts as right only if its topic was detected and
  its stance is right;
- ``stance_e2e_macro_f1``: stance macro-F1 over every gold (paragraph, topic) pair, where a
  pair whose topic the model missed counts as a wrong stance (the real-news headline figure);
- records may carry ``alt``, a second acceptable stance per topic for genuinely two-sided
  cases (the real-news files do): a prediction equal to ``alt`` counts as right;
- ``combined_f1``: the mean of ``topic_micro_f1`` and ``stance_macro_f1``, the default
  score for choosing and promoting models.

Figures are at the model's balanced thresholds unless named otherwise: at another operating
point (``inference.model_io``) the point follows the split, e.g. ``test_stream_topic_micro_f1``
(:func:`metric_prefix`).

:func:`bootstrap_intervals` gives a percentile interval for any of them by resampling
paragraphs: on a set as small as the real-news dev file (192 paragraphs, 108 gold pairs) the
95% interval of end-to-end stance macro-F1 is about 0.2 wide, so a difference of a few
hundredths between two models there is not evidence of anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from inference.model_io import BALANCED
from labels import NO_STANCE, LabelSchema

# The few numbers worth printing and comparing, in this order (all higher-is-better).
HEADLINE_METRICS = (
    "topic_micro_f1",
    "topic_macro_f1",
    "topic_exact_match",
    "stance_macro_f1",
    "stance_f_avg",
    "stance_e2e_accuracy",
    "combined_f1",
)

# The column of the end-to-end stance confusion table for a gold pair whose topic was missed.
MISSED = "missed"


def metric_prefix(split: str, operating_point: str = BALANCED) -> str:
    """The prefix of a split's metrics at an operating point: ``dev`` at the balanced one (the
    names every run has always logged), ``dev_stream`` at the stream one."""
    return split if operating_point == BALANCED else f"{split}_{operating_point}"


@dataclass
class Gold:
    """Gold labels of a list of records, encoded with the schema."""

    ids: list[str]
    texts: list[str]
    topics: np.ndarray  # n x T, 0/1
    stances: np.ndarray  # n x T, class index or NO_STANCE
    alt: np.ndarray | None = None  # n x T, a second acceptable stance or NO_STANCE

    @classmethod
    def from_records(cls, records: Sequence[dict], schema: LabelSchema) -> Gold:
        return cls(
            ids=[r["id"] for r in records],
            texts=[r["text"] for r in records],
            topics=np.array([schema.encode_topics(r["topics"]) for r in records], dtype=int).reshape(
                len(records), len(schema.topics)
            ),
            stances=np.array([schema.encode_stances(r["stance"]) for r in records], dtype=int).reshape(
                len(records), len(schema.topics)
            ),
            alt=_alternatives(records, schema),
        )


def _alternatives(records: Sequence[dict], schema: LabelSchema) -> np.ndarray | None:
    """The ``alt`` stances as an n x T array (NO_STANCE where none), or None when no record has one."""
    if not any(r.get("alt") for r in records):
        return None
    alt = np.full((len(records), len(schema.topics)), NO_STANCE, dtype=int)
    for i, r in enumerate(records):
        for topic, stance in (r.get("alt") or {}).items():
            if topic in (r.get("stance") or {}):  # an alternative only for a gold pair
                alt[i, schema.topic_ids.index(topic)] = schema.encode_stance(stance)
    return alt


def accept_alternatives(gold_stances: np.ndarray, stance_pred: np.ndarray, alt: np.ndarray | None) -> np.ndarray:
    """Gold stances with each pair whose prediction equals its ``alt`` stance set to that prediction."""
    if alt is None:
        return gold_stances
    return np.where((alt != NO_STANCE) & (stance_pred == alt), stance_pred, gold_stances)


@dataclass
class Evaluation:
    metrics: dict[str, float]
    figures: dict[str, plt.Figure] = field(default_factory=dict)
    errors: pd.DataFrame = field(default_factory=pd.DataFrame)

    def prefixed(self, prefix: str) -> dict[str, float]:
        return {f"{prefix}_{k}": v for k, v in self.metrics.items()}


def tune_thresholds(
    gold_topics: np.ndarray, scores: np.ndarray, grid: Sequence[float] | None = None, tolerance: float = 0.0
) -> list[float]:
    """Per topic, the threshold that maximises F1 on these labels (ties: closest to 0.5).

    With ``tolerance`` above 0, per topic the lowest grid threshold whose F1 is within
    ``tolerance`` of the best: the low end of a flat F1 curve, which trades a little dev F1
    for recall on text unlike the dev split (``threshold_tolerance`` in the recipes)."""
    grid = np.round(np.arange(0.05, 0.951, 0.025), 3) if grid is None else np.asarray(grid)
    out = []
    for t in range(gold_topics.shape[1]):
        f1s = [f1_score(gold_topics[:, t], scores[:, t] >= g, zero_division=0) for g in grid]
        best = max(f1s)
        if tolerance > 0:
            out.append(float(min(g for g, f in zip(grid, f1s, strict=True) if f >= best - tolerance)))
            continue
        candidates = [g for g, f in zip(grid, f1s, strict=True) if f == best]
        out.append(float(min(candidates, key=lambda g: abs(g - 0.5))))
    return out


def precision_thresholds(
    gold_topics: np.ndarray, scores: np.ndarray, floor: Sequence[float], target: float
) -> list[float]:
    """Per topic, the lowest threshold at or above ``floor`` whose precision on these labels
    reaches ``target`` (an operating point for streams, where most paragraphs are off-topic);
    a topic that never reaches it keeps a threshold just above its highest score (no labels)."""
    out = []
    for t in range(gold_topics.shape[1]):
        column, gold = scores[:, t], gold_topics[:, t].astype(bool)
        chosen = float(column.max()) + 1e-6 if len(column) else float(floor[t])
        for candidate in np.unique(column[column >= floor[t]]):
            given = column >= candidate
            if gold[given].mean() >= target:
                chosen = float(candidate)
                break
        out.append(chosen)
    return out


def topic_metrics(gold: np.ndarray, pred: np.ndarray, schema: LabelSchema) -> dict[str, float]:
    p, r, f, _ = precision_recall_fscore_support(gold, pred, average=None, zero_division=0, labels=range(gold.shape[1]))
    out: dict[str, float] = {}
    for i, t in enumerate(schema.topic_ids):
        out[f"topic_{t}_precision"], out[f"topic_{t}_recall"], out[f"topic_{t}_f1"] = (
            float(p[i]),
            float(r[i]),
            float(f[i]),
        )
    micro_p, micro_r, micro_f, _ = precision_recall_fscore_support(gold, pred, average="micro", zero_division=0)
    out["topic_micro_precision"], out["topic_micro_recall"] = float(micro_p), float(micro_r)
    out["topic_micro_f1"] = float(micro_f)
    out["topic_macro_f1"] = float(f1_score(gold, pred, average="macro", zero_division=0))
    out["topic_exact_match"] = float(np.mean(np.all(gold == pred, axis=1))) if len(gold) else 0.0
    return out


def stance_metrics(
    gold_stances: np.ndarray, stance_pred: np.ndarray, topic_pred: np.ndarray, schema: LabelSchema
) -> dict[str, float]:
    rows, cols = np.nonzero(gold_stances != NO_STANCE)
    y, yhat = gold_stances[rows, cols], stance_pred[rows, cols]
    labels = list(range(len(schema.stance_values)))
    out: dict[str, float] = {"n_pairs": float(len(rows))}
    if len(rows) == 0:
        return out
    out["stance_macro_f1"] = float(f1_score(y, yhat, labels=labels, average="macro", zero_division=0))
    per_class = f1_score(y, yhat, labels=labels, average=None, zero_division=0)
    favor, against = schema.encode_stance("favor"), schema.encode_stance("against")
    out["stance_f_avg"] = float((per_class[favor] + per_class[against]) / 2)
    for i, t in enumerate(schema.topic_ids):
        mask = cols == i
        if mask.any():  # undefined, so not reported, for a topic with no gold pairs
            out[f"stance_{t}_macro_f1"] = float(
                f1_score(y[mask], yhat[mask], labels=labels, average="macro", zero_division=0)
            )
    detected = topic_pred[rows, cols].astype(bool)
    out["stance_e2e_accuracy"] = float(np.mean(detected & (y == yhat))) if len(rows) else 0.0
    # A missed topic predicts a class outside the three, so it is a false negative of the gold
    # stance and a false positive of none.
    yhat_e2e = np.where(detected, yhat, len(labels))
    out["stance_e2e_macro_f1"] = float(f1_score(y, yhat_e2e, labels=labels, average="macro", zero_division=0))
    return out


def e2e_stance_confusion(
    gold_stances: np.ndarray, stance_pred: np.ndarray, topic_pred: np.ndarray, schema: LabelSchema
) -> pd.DataFrame:
    """Counts of gold stance (rows) against predicted stance or ``missed`` (columns), all topics."""
    rows, cols = np.nonzero(gold_stances != NO_STANCE)
    names = list(schema.stance_values)
    predicted = [names[stance_pred[r, c]] if topic_pred[r, c] else MISSED for r, c in zip(rows, cols, strict=True)]
    gold = [names[gold_stances[r, c]] for r, c in zip(rows, cols, strict=True)]
    table = pd.crosstab(pd.Categorical(gold, names), pd.Categorical(predicted, [*names, MISSED]), dropna=False)
    table.index.name, table.columns.name = "gold", "predicted"
    return table


def _topic_confusion_figure(gold: np.ndarray, pred: np.ndarray, schema: LabelSchema) -> plt.Figure:
    fig, axes = plt.subplots(1, len(schema.topics), figsize=(3.2 * len(schema.topics), 3.2))
    for ax, (i, topic) in zip(np.atleast_1d(axes), enumerate(schema.topics), strict=True):
        cm = confusion_matrix(gold[:, i], pred[:, i], labels=[0, 1])
        _draw_matrix(ax, cm, ["absent", "present"], topic.name)
    fig.suptitle("Topic decisions (rows: gold, columns: predicted)")
    fig.tight_layout()
    return fig


def _stance_confusion_figure(gold_stances: np.ndarray, stance_pred: np.ndarray, schema: LabelSchema) -> plt.Figure:
    panels = [("All topics", None)] + [(t.name, i) for i, t in enumerate(schema.topics)]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4))
    rows, cols = np.nonzero(gold_stances != NO_STANCE)
    labels = list(range(len(schema.stance_values)))
    for ax, (title, topic) in zip(axes, panels, strict=True):
        mask = np.ones_like(rows, dtype=bool) if topic is None else cols == topic
        cm = (
            confusion_matrix(gold_stances[rows[mask], cols[mask]], stance_pred[rows[mask], cols[mask]], labels=labels)
            if mask.any()
            else np.zeros((len(labels), len(labels)), dtype=int)
        )
        _draw_matrix(ax, cm, list(schema.stance_values), title)
    fig.suptitle("Stance on gold (paragraph, topic) pairs (rows: gold, columns: predicted)")
    fig.tight_layout()
    return fig


def _draw_matrix(ax: plt.Axes, cm: np.ndarray, names: list[str], title: str) -> None:
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=30)
    ax.set_yticks(range(len(names)), names)
    ax.set_title(title, fontsize=10)
    for (r, c), v in np.ndenumerate(cm):
        ax.text(c, r, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black")


def worst_errors(
    gold: Gold,
    topic_scores: np.ndarray,
    topic_pred: np.ndarray,
    stance_proba: np.ndarray,
    schema: LabelSchema,
    limit: int = 50,
) -> pd.DataFrame:
    """The most confident mistakes: missed or spurious topics, and wrong stances on gold pairs."""
    rows = []
    stances = schema.stance_values
    for i in range(len(gold.ids)):
        for t, topic in enumerate(schema.topic_ids):
            g, p, s = gold.topics[i, t], topic_pred[i, t], topic_scores[i, t]
            if g != p:
                rows.append(
                    {
                        "id": gold.ids[i],
                        "kind": "missed topic" if g else "spurious topic",
                        "topic": topic,
                        "gold": "present" if g else "absent",
                        "predicted": "present" if p else "absent",
                        "confidence": float(1 - s if g else s),
                        "text": gold.texts[i],
                    }
                )
            if gold.stances[i, t] != NO_STANCE:
                k = int(np.argmax(stance_proba[i, t]))
                if k != gold.stances[i, t]:
                    rows.append(
                        {
                            "id": gold.ids[i],
                            "kind": "wrong stance",
                            "topic": topic,
                            "gold": stances[gold.stances[i, t]],
                            "predicted": stances[k],
                            "confidence": float(stance_proba[i, t, k]),
                            "text": gold.texts[i],
                        }
                    )
    columns = ["id", "kind", "topic", "gold", "predicted", "confidence", "text"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values("confidence", ascending=False, kind="stable").head(limit).reset_index(drop=True)


def evaluate(
    records: Sequence[dict],
    topic_scores: np.ndarray,
    stance_proba: np.ndarray,
    thresholds: Sequence[float],
    schema: LabelSchema,
    with_artifacts: bool = True,
) -> Evaluation:
    """Score predictions against gold records: metrics, and optionally plots and worst errors."""
    gold = Gold.from_records(records, schema)
    topic_pred = (topic_scores >= np.asarray(thresholds)[None, :]).astype(int)
    stance_pred = np.argmax(stance_proba, axis=2) if len(records) else np.zeros_like(gold.stances)
    gold_stances = accept_alternatives(gold.stances, stance_pred, gold.alt)
    metrics = {"n_paragraphs": float(len(records))}
    metrics.update(topic_metrics(gold.topics, topic_pred, schema))
    metrics.update(stance_metrics(gold_stances, stance_pred, topic_pred, schema))
    metrics["combined_f1"] = (metrics["topic_micro_f1"] + metrics.get("stance_macro_f1", 0.0)) / 2
    result = Evaluation(metrics)
    if with_artifacts:
        result.figures = {
            "topic_confusion.png": _topic_confusion_figure(gold.topics, topic_pred, schema),
            "stance_confusion.png": _stance_confusion_figure(gold_stances, stance_pred, schema),
        }
        result.errors = worst_errors(gold, topic_scores, topic_pred, stance_proba, schema)
    return result


# The metrics :func:`bootstrap_intervals` reports by default.
INTERVAL_METRICS = ("topic_micro_f1", "stance_macro_f1", "stance_e2e_macro_f1", "combined_f1")


def _macro_f1(y: np.ndarray, yhat: np.ndarray, weights: np.ndarray, n_classes: int) -> float:
    """Weighted macro-F1 over classes ``0..n_classes-1`` (a class with no support and no
    prediction scores 0, as scikit-learn's ``zero_division=0`` with fixed labels does)."""
    f1s = []
    for c in range(n_classes):
        tp = weights[(y == c) & (yhat == c)].sum()
        wrong = weights[(y == c) != (yhat == c)].sum()  # false positives plus false negatives
        f1s.append(2 * tp / (2 * tp + wrong) if tp + wrong > 0 else 0.0)
    return float(np.mean(f1s))


def bootstrap_intervals(
    records: Sequence[dict],
    topic_scores: np.ndarray,
    stance_proba: np.ndarray,
    thresholds: Sequence[float],
    schema: LabelSchema,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of ``INTERVAL_METRICS``: paragraphs drawn with
    replacement ``resamples`` times (a paragraph keeps all its topics and stances together) and
    the metrics recomputed on each draw, exactly as :func:`evaluate` computes them (a draw is a
    count per paragraph, so this is counting, not re-evaluating). Same seed, same intervals."""
    if resamples < 1 or not 0 < level < 1:
        raise ValueError("resamples must be at least 1 and level in (0, 1)")
    n = len(records)
    if n == 0:
        return {}
    gold = Gold.from_records(records, schema)
    topic_pred = (topic_scores >= np.asarray(thresholds)[None, :]).astype(bool)
    stance_pred = np.argmax(stance_proba, axis=2)
    gold_stances = accept_alternatives(gold.stances, stance_pred, gold.alt)
    gold_topics = gold.topics.astype(bool)
    rows, cols = np.nonzero(gold_stances != NO_STANCE)
    y, yhat = gold_stances[rows, cols], stance_pred[rows, cols]
    n_classes = len(schema.stance_values)
    yhat_e2e = np.where(topic_pred[rows, cols], yhat, n_classes)  # a missed topic is a wrong stance
    tp_row = (gold_topics & topic_pred).sum(1)
    wrong_row = (gold_topics != topic_pred).sum(1)  # false positives plus false negatives

    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {m: [] for m in INTERVAL_METRICS}
    for _ in range(resamples):
        counts = np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
        tp, wrong = counts @ tp_row, counts @ wrong_row
        topic_f1 = 2 * tp / (2 * tp + wrong) if tp + wrong > 0 else 0.0
        draws["topic_micro_f1"].append(topic_f1)
        pair_weights = counts[rows]
        if pair_weights.sum() == 0:  # no gold pair drawn: stance undefined on this draw
            continue
        stance_f1 = _macro_f1(y, yhat, pair_weights, n_classes)
        draws["stance_macro_f1"].append(stance_f1)
        draws["stance_e2e_macro_f1"].append(_macro_f1(y, yhat_e2e, pair_weights, n_classes))
        draws["combined_f1"].append((topic_f1 + stance_f1) / 2)
    tail = (1 - level) / 2 * 100
    return {
        m: (float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail)))
        for m, values in draws.items()
        if values
    }


def headline(metrics: dict[str, float], prefix: str = "") -> list[tuple[str, str]]:
    """The few numbers worth printing, as (name, value) pairs."""
    return [(n, f"{metrics[prefix + n]:.3f}") for n in HEADLINE_METRICS if prefix + n in metrics]


def evaluate_groups(
    records: Sequence[dict],
    topic_scores: np.ndarray,
    stance_proba: np.ndarray,
    thresholds: Sequence[float],
    schema: LabelSchema,
    key: str = "origin",
) -> dict[str, dict[str, float]]:
    """Metrics per value of ``key`` (e.g. each real-news origin); empty when no record has it."""
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        if r.get(key) is not None:
            groups.setdefault(str(r[key]), []).append(i)
    return {
        name: evaluate(
            [records[i] for i in idx], topic_scores[idx], stance_proba[idx], thresholds, schema, with_artifacts=False
        ).metrics
        for name, idx in sorted(groups.items())
    }
