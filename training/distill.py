"""Distillation: a small, fast encoder (the student) taught a larger model's scores (the teacher).

The teacher is any allystance model (the recipe of record uses the all-mpnet-base-v2
transformer). It scores the training paragraphs and the team's unlabelled articles once;
the scores are cached under ``.allystance/distill/`` by the teacher's content hash and the
texts. The student is the transformer family (MiniLM by default) fine-tuned exactly as
``train transformer`` does, with targets that mix in the teacher:

- topics: ``alpha`` x the teacher's probability + (1 - ``alpha``) x gold on labelled
  paragraphs; the teacher's probability alone on unlabelled ones;
- stance: on the gold topics of a labelled paragraph, ``alpha`` x the teacher's distribution
  + (1 - ``alpha``) x the gold stance; on an unlabelled paragraph, the teacher's
  distribution for each topic the teacher gives at its own thresholds; no stance elsewhere.
  The teacher's distributions are softened by ``temperature`` first (p ** (1 / T),
  renormalised: the softmax of its logits over T), which keeps the runner-up stances it
  sees, the "dark knowledge" a student learns most from.
- features (``feature_weight`` above 0): the student's pooled vectors, projected to the
  teacher's width, are pulled towards the teacher's (cosine) on every transfer paragraph,
  so it learns how the teacher represents a paragraph as well as what it outputs.

Why mix in gold at all: the teacher was trained on the same training paragraphs and is
nearly certain on them; on those the gold labels and its scores mostly agree, and where
they do not the gold label is the better guide. The unlabelled paragraphs, which it never
saw, carry most of what it knows beyond the labels.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from inference.encoder import folder_sha256, resolve_base_model
from inference.ingest.pipeline import iter_segmented
from inference.ingest.records import SkippedInput
from inference.model_io import load_model, model_folder, read_meta
from inference.store import use_store
from inference.transformer import WEIGHTS as TRANSFORMER_WEIGHTS
from labels import NO_STANCE, LabelSchema, load_schema
from labels.records import UNLABELLED_FILE
from training import tracking
from training.blend import check_trained_on
from training.config import DistillRecipe
from training.evaluate import Gold
from training.runs import TrainingError, TrainResult, read_splits, tracked_family_run
from training.transformer import fit_designs, publish_designs

logger = logging.getLogger(__name__)

CACHE = Path(".allystance") / "distill"
SCORE_BATCH = 256  # paragraphs per teacher call (the progress bar's step)


@dataclass(frozen=True)
class TeacherScores:
    """A teacher's scores of a list of texts and the thresholds it decides topics at."""

    topics: np.ndarray  # n x T probabilities
    stance: np.ndarray  # n x T x S distributions, every topic
    thresholds: np.ndarray  # T, the teacher's balanced thresholds


def read_unlabelled(path: str | Path) -> list[str]:
    """The paragraphs of a file or folder of articles, segmented as ``predict`` segments them;
    an unreadable input is skipped with a warning, a missing path is a one-line error."""
    if not Path(path).exists():
        raise TrainingError(f"unlabelled articles {path} not found; give a file or folder, or --set unlabelled=null")
    texts = []
    for item in iter_segmented([path]):
        if isinstance(item, SkippedInput):
            logger.warning("skipped %s", item)
            continue
        texts.extend(p.text for p in item.paragraphs)
    return texts


def unlabelled_texts(setting: str | None) -> list[str]:
    """The recipe's ``unlabelled``: ``shipped`` (the team's file, none if it is absent), a path, or none."""
    if setting is None:
        return []
    if setting == "shipped":
        return read_unlabelled(UNLABELLED_FILE) if UNLABELLED_FILE.is_file() else []
    return read_unlabelled(setting)


def texts_sha256(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    return digest.hexdigest()


def _cache_entry(teacher: str, texts: Sequence[str], cache: Path | None, suffix: str) -> tuple[Path, str, Path]:
    """The teacher's folder, its content hash, and the cache file for what it computes on ``texts``."""
    folder = Path(model_folder(teacher))
    identity = folder_sha256(folder)
    return folder, identity, (cache or Path.cwd() / CACHE) / f"{identity[:16]}-{texts_sha256(texts)[:16]}{suffix}"


def teacher_scores(
    teacher: str, texts: Sequence[str], schema: LabelSchema, cache: Path | None = None, show_progress: bool = False
) -> tuple[TeacherScores, str]:
    """The teacher's scores of ``texts`` (from the cache when this teacher scored these texts
    before) and the teacher's content hash."""
    folder, identity, path = _cache_entry(teacher, texts, cache, ".npz")
    if path.is_file():
        with np.load(path) as saved:
            logger.info("teacher scores from %s", path)
            return TeacherScores(saved["topics"], saved["stance"], saved["thresholds"]), identity
    predictor = load_model(folder, schema)
    topics, stance = [], []
    with tqdm(total=len(texts), desc="teacher", unit="para", disable=not show_progress, dynamic_ncols=True) as bar:
        for start in range(0, len(texts), SCORE_BATCH):
            batch = texts[start : start + SCORE_BATCH]
            t, s = predictor.score(batch)
            topics.append(t)
            stance.append(s)
            bar.update(len(batch))
    n_topics, n_stances = len(schema.topics), len(schema.stance_values)
    scores = TeacherScores(
        np.concatenate(topics) if topics else np.zeros((0, n_topics)),
        np.concatenate(stance) if stance else np.zeros((0, n_topics, n_stances)),
        np.asarray(predictor.thresholds, dtype=float),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial.npz")
    np.savez(tmp, topics=scores.topics, stance=scores.stance, thresholds=scores.thresholds)
    tmp.replace(path)
    return scores, identity


def check_feature_teacher(teacher: str, folder: Path) -> None:
    """A one-line error unless the teacher (saved in ``folder``) has an encoder whose pooled
    vectors a student can match: a transformer or a distilled student, not the baseline,
    embed or a blend."""
    if read_meta(folder).weights != TRANSFORMER_WEIGHTS:
        raise TrainingError(f"{teacher}: feature_weight needs a transformer-family teacher; set feature_weight=0")


def teacher_features(
    teacher: str, texts: Sequence[str], cache: Path | None = None, show_progress: bool = False
) -> np.ndarray:
    """The teacher's ``features`` of ``texts`` (n x F x H, float16), cached like its scores.
    A one-line error for a teacher without an encoder of its own (a blend, the baseline)."""
    folder, _, path = _cache_entry(teacher, texts, cache, "-features.npy")
    if path.is_file():
        logger.info("teacher features from %s", path)
        return np.load(path)
    check_feature_teacher(teacher, folder)
    model = load_model(folder).model
    parts = []
    with tqdm(total=len(texts), desc="teacher features", unit="para", disable=not show_progress) as bar:
        for start in range(0, len(texts), SCORE_BATCH):
            parts.append(model.features(texts[start : start + SCORE_BATCH]))
            bar.update(len(parts[-1]))
    features = np.concatenate(parts) if parts else np.zeros((0, 1, 1), dtype=np.float16)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial.npy")
    np.save(tmp, features)
    tmp.replace(path)
    return features


def soften(distributions: np.ndarray, temperature: float) -> np.ndarray:
    """Distributions over the last axis at ``temperature``: p ** (1 / T), renormalised."""
    powered = np.power(np.clip(distributions, 1e-12, 1.0), 1.0 / temperature)
    return powered / powered.sum(axis=-1, keepdims=True)


def distill_targets(
    gold: Gold, teacher: TeacherScores, alpha: float, temperature: float
) -> tuple[np.ndarray, np.ndarray]:
    """Topic targets (n x T) and stance targets (n x T x S; zero rows train no stance) for
    the labelled paragraphs of ``gold`` followed by the unlabelled ones the teacher scored
    beyond them (see the module docstring)."""
    n_labelled, n_stances = len(gold.texts), teacher.stance.shape[2]
    if len(teacher.topics) < n_labelled:
        raise ValueError(f"the teacher scored {len(teacher.topics)} texts for {n_labelled} labelled paragraphs")
    soft = soften(teacher.stance, temperature)
    topics = teacher.topics.copy()
    topics[:n_labelled] = alpha * teacher.topics[:n_labelled] + (1 - alpha) * gold.topics
    stance = np.zeros_like(soft)
    has_gold = gold.stances != NO_STANCE
    one_hot = np.eye(n_stances)[np.where(has_gold, gold.stances, 0)]
    mixed = alpha * soft[:n_labelled] + (1 - alpha) * one_hot
    stance[:n_labelled] = np.where(has_gold[:, :, None], mixed, 0.0)
    given = teacher.topics[n_labelled:] >= teacher.thresholds[None, :]
    stance[n_labelled:] = np.where(given[:, :, None], soft[n_labelled:], 0.0)
    return topics, stance


def train_distill(
    recipe: DistillRecipe,
    tracking_uri: str | None = None,
    promote: bool = False,
    show_progress: bool = False,
) -> TrainResult:
    """Score the transfer set with the teacher, fine-tune the student on the mixed targets
    (every stance design a nested run, as ``train transformer``), evaluate, log, register."""
    if not recipe.teacher:
        raise TrainingError("give a teacher model: allystance train distill models:/allystance/<version>")
    schema = load_schema()
    splits = read_splits(recipe.data)
    base_folder = str(resolve_base_model(recipe.base_model))
    gold = Gold.from_records(splits.train, schema)
    extra = unlabelled_texts(recipe.unlabelled)
    texts = gold.texts + extra
    use_store(tracking_uri)  # a models:/ teacher is read from the store the run goes to
    digest = tracking.dataset_input(splits.train + splits.dev + splits.test, splits.source).digest
    check_trained_on(recipe.teacher, digest, use="distil from a teacher")  # else it may have seen dev and test
    # Fetched from the store once; every teacher call below reads this folder.
    teacher = str(model_folder(recipe.teacher))
    if recipe.feature_weight > 0:
        check_feature_teacher(recipe.teacher, Path(teacher))  # before the (long) scoring, not after it
    # Two cached scorings, so that new unlabelled articles do not rescore the training split.
    labelled, identity = teacher_scores(teacher, gold.texts, schema, show_progress=show_progress)
    unlabelled, _ = teacher_scores(teacher, extra, schema, show_progress=show_progress)
    scores = TeacherScores(
        np.concatenate([labelled.topics, unlabelled.topics]),
        np.concatenate([labelled.stance, unlabelled.stance]),
        labelled.thresholds,
    )
    topics, stance = distill_targets(gold, scores, recipe.alpha, recipe.temperature)
    n_topics = len(schema.topics)
    train = Gold(
        ids=gold.ids + [f"unlabelled:{i}" for i in range(len(extra))],
        texts=texts,
        topics=topics,
        stances=np.concatenate([gold.stances, np.full((len(extra), n_topics), NO_STANCE, dtype=int)]),
    )
    features = None
    if recipe.feature_weight > 0:
        features = np.concatenate(
            [teacher_features(teacher, t, show_progress=show_progress) for t in (gold.texts, extra) if t]
        )
    with tracked_family_run(recipe, schema, splits, tracking_uri) as run:
        tracking.log_params(
            {
                "teacher.sha256": identity,
                "transfer.labelled": len(gold.texts),
                "transfer.unlabelled": len(extra),
            }
        )
        chosen, outcomes = fit_designs(
            recipe,
            base_folder,
            train,
            splits.dev,
            schema,
            show_progress=show_progress,
            stance_targets=stance,
            feature_targets=features,
            feature_weight=recipe.feature_weight,
        )
        return publish_designs(
            recipe, schema, splits, chosen, outcomes, promote, run.info.run_id, teacher=recipe.teacher
        )
