"""Finding likely labelling mistakes: out-of-fold predictions and confident learning.

The TF-IDF estimator (``inference.tfidf.TfidfTopicStance``) is trained K times, each time
on all articles but one fold, and scores the paragraphs of the fold it did not see. Every
label then has a probability from a model that never saw it. Confident learning
(Northcutt et al., "Confident Learning", JAIR 2021) sets one threshold per class, the mean
probability the model gives that class on the examples labelled with it (its average
self-confidence); an example counts as confidently of class j when its probability of j
reaches j's threshold (the likeliest such class when several do). Where that class is not
the given label, the given label is flagged.

Each topic is a binary decision (applies / does not) with its own two thresholds; each
stance is a decision among the stance values on the paragraphs that carry the topic, with
thresholds per (topic, stance). A paragraph is flagged when any of its decisions is, and
ranked by its largest margin ``p(suggested) - p(given)``. The evidence for a flag is the
word n-grams of the paragraph that pushed the fold's model furthest toward the suggestion
(TF-IDF value times the logistic-regression weight).

``cleanlab`` implements the same method; it is not used because the labels here are a
multi-label topic set plus a stance per present topic, which this module handles in a few
lines with the project's own estimator, without another dependency.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from inference.tfidf import TfidfTopicStance
from labels import LabelSchema, load_schema
from labels.errors import UserError
from training.evaluate import Gold

logger = logging.getLogger(__name__)

PRESENT, ABSENT = "present", "absent"


@dataclass(frozen=True)
class AuditSettings:
    """How the out-of-fold models are trained and how much evidence is shown."""

    folds: int = 5
    seed: int = 13
    topic_c: float = 4.0
    stance_c: float = 2.0
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (2, 5)
    min_df: int = 2
    evidence: int = 6


@dataclass
class Issue:
    """One decision of a paragraph that the model confidently contradicts."""

    kind: str  # "topic" or "stance"
    topic: str
    given: str  # present/absent for a topic, a stance value for a stance
    suggested: str
    p_given: float
    p_suggested: float
    evidence: list[str] = field(default_factory=list)

    @property
    def margin(self) -> float:
        return self.p_suggested - self.p_given

    def describe(self) -> str:
        if self.kind == "topic":
            return f"{self.topic} {self.given}->{self.suggested}"
        return f"{self.topic} stance {self.given}->{self.suggested}"


@dataclass
class Flag:
    """A paragraph with at least one contradicted decision, and the labels the model suggests."""

    record: dict
    issues: list[Issue]
    suggested_topics: list[str]
    suggested_stance: dict[str, str]
    rank: int = 0

    @property
    def score(self) -> float:
        return max(i.margin for i in self.issues)

    def to_dict(self) -> dict:
        r = self.record
        return {
            "rank": self.rank,
            "id": r["id"],
            "score": round(self.score, 4),
            "given": {"topics": r["topics"], "stance": r["stance"]},
            "suggested": {"topics": self.suggested_topics, "stance": self.suggested_stance},
            "issues": [{**asdict(i), "margin": round(i.margin, 4)} for i in self.issues],
            "text": r["text"],
            "article_id": r.get("article_id"),
            "split": r.get("split"),
        }


@dataclass
class AuditResult:
    """Out-of-fold scores, the per-class thresholds and the ranked flags."""

    flags: list[Flag]
    n_records: int
    topic_thresholds: dict[str, dict[str, float]]
    stance_thresholds: dict[str, dict[str, float]]
    topic_scores: np.ndarray
    stance_proba: np.ndarray

    @property
    def n_issues(self) -> dict[str, int]:
        kinds = [i.kind for f in self.flags for i in f.issues]
        return {"topic": kinds.count("topic"), "stance": kinds.count("stance")}


def assign_folds(article_ids: Sequence[str], k: int, seed: int) -> np.ndarray:
    """A fold per record: articles shuffled with ``seed`` and dealt round-robin, so folds are balanced."""
    articles = sorted(set(article_ids))
    if k < 2 or k > len(articles):
        raise UserError(f"--folds must be between 2 and the number of articles ({len(articles)}), got {k}")
    order = np.random.default_rng(seed).permutation(len(articles))
    fold_of = {articles[j]: n % k for n, j in enumerate(order)}
    return np.array([fold_of[a] for a in article_ids])


def _estimator(settings: AuditSettings, n_classes: int) -> TfidfTopicStance:
    return TfidfTopicStance(
        n_stance_classes=n_classes,
        word_ngrams=settings.word_ngrams,
        char_ngrams=settings.char_ngrams,
        min_df=settings.min_df,
        topic_model="logreg",
        topic_C=settings.topic_c,
        stance_design="per_topic",
        stance_C=settings.stance_c,
        seed=settings.seed,
    )


def _word_block(model: TfidfTopicStance, texts: Sequence[str]):
    """The word n-gram TF-IDF rows of ``texts`` and the n-gram names (the first block of the features)."""
    normalized = model.features_.named_steps["normalize"].transform(list(texts))
    vectorizer = model.features_.named_steps["tfidf"].transformer_list[0][1]
    return vectorizer.transform(normalized), vectorizer.get_feature_names_out()


def _class_direction(head, toward: int, away: int, n_words: int) -> np.ndarray | None:
    """Weights whose dot product with a paragraph's features favours ``toward`` over ``away``."""
    coef = getattr(head, "coef_", None)
    if coef is None:
        return None
    classes = list(head.classes_)
    if toward not in classes or away not in classes:
        return None
    if coef.shape[0] == 1:  # binary: one row for classes_[1]
        sign = 1.0 if toward == classes[1] else -1.0
        return sign * coef[0, :n_words]
    return coef[classes.index(toward), :n_words] - coef[classes.index(away), :n_words]


def _top_ngrams(row, weights: np.ndarray | None, names: np.ndarray, k: int) -> list[str]:
    if weights is None or k <= 0:
        return []
    contrib = {names[j]: v * weights[j] for j, v in zip(row.indices, row.data, strict=True)}
    best = sorted((item for item in contrib.items() if item[1] > 0), key=lambda kv: -kv[1])[:k]
    return [f"{name} ({value:+.2f})" for name, value in best]


def _per_class_thresholds(proba: np.ndarray, given: np.ndarray, n_classes: int) -> np.ndarray:
    """Mean self-confidence per class (1.0, i.e. never reached by accident, for an unseen class)."""
    return np.array([proba[given == c, c].mean() if np.any(given == c) else 1.0 for c in range(n_classes)])


def _confident_class(proba_row: np.ndarray, thresholds: np.ndarray) -> int | None:
    above = np.flatnonzero(proba_row >= thresholds)
    if not len(above):
        return None
    return int(above[np.argmax(proba_row[above])])


def audit(
    records: Sequence[dict],
    schema: LabelSchema | None = None,
    settings: AuditSettings | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> AuditResult:
    """Out-of-fold predictions over ``records`` and every label the model confidently contradicts."""
    schema = schema or load_schema()
    settings = settings or AuditSettings()
    if not records:
        raise UserError("no records to audit")
    gold = Gold.from_records(records, schema)
    n, n_topics, n_classes = len(records), len(schema.topics), len(schema.stance_values)
    folds = assign_folds([r.get("article_id") or r["id"] for r in records], settings.folds, settings.seed)
    topic_scores = np.zeros((n, n_topics))
    stance_proba = np.zeros((n, n_topics, n_classes))
    models: list[TfidfTopicStance] = []
    for k in range(settings.folds):
        progress(f"fold {k + 1}/{settings.folds}")
        train, held = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
        model = _estimator(settings, n_classes).fit(
            [gold.texts[i] for i in train], gold.topics[train], gold.stances[train]
        )
        topic_scores[held], stance_proba[held] = model.predict_scores([gold.texts[i] for i in held])
        models.append(model)

    # Per-class thresholds: topic t absent/present, and stance s of topic t on its gold pairs.
    topic_thr = np.zeros((n_topics, 2))
    stance_thr = np.ones((n_topics, n_classes))
    for t in range(n_topics):
        binary = np.stack([1.0 - topic_scores[:, t], topic_scores[:, t]], axis=1)
        topic_thr[t] = _per_class_thresholds(binary, gold.topics[:, t], 2)
        pairs = gold.stances[:, t] >= 0
        if pairs.any():
            stance_thr[t] = _per_class_thresholds(stance_proba[pairs, t], gold.stances[pairs, t], n_classes)

    progress("collecting evidence")
    flags = []
    for i, record in enumerate(records):
        issues: list[Issue] = []
        word_rows = None

        def evidence(head, toward: int, away: int, i: int = i) -> list[str]:
            nonlocal word_rows
            model = models[folds[i]]
            if word_rows is None:
                word_rows = _word_block(model, [gold.texts[i]])
            rows, names = word_rows
            return _top_ngrams(rows[0], _class_direction(head, toward, away, len(names)), names, settings.evidence)

        suggested_topics = set(record["topics"])
        suggested_stance = dict(record["stance"])
        for t, topic in enumerate(schema.topic_ids):
            p = topic_scores[i, t]
            given = int(gold.topics[i, t])
            confident = _confident_class(np.array([1.0 - p, p]), topic_thr[t])
            if confident is not None and confident != given:
                head = models[folds[i]].topic_heads_[t]
                probs = (1.0 - p, p)
                issues.append(
                    Issue(
                        "topic",
                        topic,
                        PRESENT if given else ABSENT,
                        PRESENT if confident else ABSENT,
                        round(float(probs[given]), 4),
                        round(float(probs[confident]), 4),
                        evidence(head, confident, given),
                    )
                )
                if confident:
                    suggested_topics.add(topic)
                    suggested_stance[topic] = schema.decode_stance(int(np.argmax(stance_proba[i, t])))
                else:
                    suggested_topics.discard(topic)
                    suggested_stance.pop(topic, None)
                continue
            s_given = int(gold.stances[i, t])
            if s_given < 0:
                continue
            confident = _confident_class(stance_proba[i, t], stance_thr[t])
            if confident is not None and confident != s_given:
                head = models[folds[i]].stance_heads_[t]
                issues.append(
                    Issue(
                        "stance",
                        topic,
                        schema.decode_stance(s_given),
                        schema.decode_stance(confident),
                        round(float(stance_proba[i, t, s_given]), 4),
                        round(float(stance_proba[i, t, confident]), 4),
                        evidence(head, confident, s_given),
                    )
                )
                suggested_stance[topic] = schema.decode_stance(confident)
        if issues:
            ordered = [t for t in schema.topic_ids if t in suggested_topics]
            flags.append(Flag(record, issues, ordered, {t: suggested_stance[t] for t in ordered}))
    flags.sort(key=lambda f: -f.score)
    for rank, flag in enumerate(flags, start=1):
        flag.rank = rank
    return AuditResult(
        flags=flags,
        n_records=n,
        topic_thresholds={
            t: {ABSENT: round(float(a), 4), PRESENT: round(float(b), 4)}
            for t, (a, b) in zip(schema.topic_ids, topic_thr, strict=True)
        },
        stance_thresholds={
            t: {s: round(float(v), 4) for s, v in zip(schema.stance_values, row, strict=True)}
            for t, row in zip(schema.topic_ids, stance_thr, strict=True)
        },
        topic_scores=topic_scores,
        stance_proba=stance_proba,
    )


def _labels_text(topics: Sequence[str], stance: dict[str, str]) -> str:
    return "; ".join(f"{t}:{stance.get(t, '?')}" for t in topics) or "(none)"


def write_audit(result: AuditResult, output: str | Path) -> Path:
    """The ranked flags as JSON lines (``.jsonl``) or a spreadsheet-friendly table (``.csv``)."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix.lower() == ".csv":
        with output.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["rank", "id", "score", "issues", "given", "suggested", "evidence", "text"])
            for f in result.flags:
                writer.writerow(
                    [
                        f.rank,
                        f.record["id"],
                        f"{f.score:.3f}",
                        "; ".join(i.describe() for i in f.issues),
                        _labels_text(f.record["topics"], f.record["stance"]),
                        _labels_text(f.suggested_topics, f.suggested_stance),
                        " | ".join(", ".join(i.evidence) for i in f.issues),
                        f.record["text"],
                    ]
                )
    else:
        with output.open("w", encoding="utf-8") as fh:
            for f in result.flags:
                fh.write(json.dumps(f.to_dict(), ensure_ascii=False) + "\n")
    return output
