"""Adapting a model family to a user's own unlabelled corpus (``allystance train adapt``).

A user has plenty of text of the kind they want classified (a paper's archive, state media,
a wire feed) and none of it labelled. Adaptation uses it in up to four ways, each a recipe
switch (``AdaptRecipe``):

- ``self_training``: paragraphs the model labels confidently join the training set with
  their predicted topics (and stances, where the stance is confident too), weighted below
  gold ones; repeated for ``rounds`` rounds, each labelling with the model of the last;
- ``negatives``: paragraphs the model is sure have no topic join as negatives (the
  off-domain guard: what a paper prints besides the alliance stops looking like it);
- ``mlm``: the encoder continues its masked-LM pretraining on the corpus before
  fine-tuning (transformer and embed families);
- ``corpus_features``: the baseline's TF-IDF vocabulary and IDF are fitted on the team's
  training texts plus the corpus, so the corpus's words have features.

Confidence is measured on the team dev split, never guessed: a topic is pseudo-labelled
present at the score whose dev precision reaches ``topic_precision``, absent below the score
under which at most ``negative_recall_loss`` of the dev positives fall; a paragraph with any
topic in between is left out; a stance is kept where the stance head's top probability
reaches the confidence at which dev stance accuracy (gold pairs) reaches ``stance_accuracy``,
and is otherwise masked (the topic still trains the topic head).

Stages, each kept in a state folder so that a killed run continues from the last finished
one (``state.json`` records the recipe hash, the corpus digest, the finished stages and
their outputs; every file is written to a temporary name and renamed):

1. ``corpus``: the inputs read and segmented exactly as ``allystance predict`` does
   (``inference.predict.iter_units``); repeats and paragraphs of the team's own data are
   dropped, an evenly spaced sample is taken above ``max_paragraphs``. The corpus is read
   again on every run, because its digest is what names the state folder (reading runs at
   thousands of paragraphs a second, so it is the cheap stage);
2. ``mlm`` (when asked, encoder families): the adapted encoder in ``encoder/``;
3. ``round0`` .. ``roundR``: round 0 fits the base family on the team's training split
   exactly as its trainer does (the unadapted reference; the baseline and embed grids are
   searched here once and their choice reused later); round k fits on train plus the
   paragraphs round k-1 pseudo-labelled (``round<k-1>_pseudo.jsonl``);
4. ``final``: the last round's model evaluated, logged, registered (and promoted if asked
   and better) through ``training.runs.evaluate_and_publish``, like every family.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import yaml
from tqdm.auto import tqdm

from inference.encoder import file_sha256
from inference.model_io import Predictor, load_model, save_model
from inference.predict import BadRecord, PredictReport, PredictSettings, count_records, iter_units
from inference.preprocess import normalize_text
from labels import NO_STANCE, LabelSchema, load_schema, read_records
from labels.records import write_records
from training import tracking
from training.config import (
    ENCODER_FAMILIES,
    AdaptRecipe,
    BaselineRecipe,
    EmbedRecipe,
    RecipeError,
    TransformerRecipe,
    flatten,
    load_recipe,
)
from training.evaluate import Gold, evaluate, precision_thresholds
from training.realnews import DEV_FILE as REALNEWS_DEV
from training.realnews import SELECTION_METRIC, find_realnews, realnews_metrics, selection_score
from training.runs import (
    Splits,
    TrainingError,
    TrainResult,
    calibration_texts,
    evaluate_and_publish,
    make_meta,
    read_splits,
    tracked_family_run,
)

logger = logging.getLogger(__name__)

# State folders live here, under the working directory (like mlflow.db), unless the recipe
# names one with ``state_dir``.
STORE = Path(".allystance") / "adapt"
STATE_FILE = "state.json"
CORPUS_FILE = "corpus.jsonl"
ENCODER_DIR = "encoder"
STATE_VERSION = 1
SHIPPED_RECIPES = Path(__file__).resolve().parents[1] / "experiments"
FAMILY_RECIPES: dict[str, type] = {"baseline": BaselineRecipe, "transformer": TransformerRecipe, "embed": EmbedRecipe}
# Paragraphs scored at a time when the corpus is pseudo-labelled (bounds the feature matrix).
SCORE_CHUNK = 2048
# Recipe keys that do not change what is trained, so they stay out of the recipe hash.
UNHASHED = (
    "experiment",
    "data",
    "base_recipe",
    "base_set",
    "state_dir",
    "promote_metric",
    "realnews",
    "min_paragraphs",
)
# Metrics of the unadapted round logged on the parent run (prefixed unadapted_), for comparisons.
REFERENCE_METRICS = (
    "dev_topic_micro_f1",
    "dev_stance_macro_f1",
    "dev_combined_f1",
    "test_topic_micro_f1",
    "test_stance_macro_f1",
    "test_combined_f1",
    "realnews_topic_micro_f1",
    "realnews_stance_e2e_macro_f1",
    "realnews_combined_f1",
    SELECTION_METRIC,
)


# -- small file helpers ---------------------------------------------------------------------


def _write_text(path: Path, text: str) -> None:
    """Write through a temporary file and rename, so a kill never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _read_jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def corpus_digest(texts: Iterable[str]) -> str:
    """sha256 of paragraph texts in order, each as a JSON string on its own line."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update((json.dumps(text, ensure_ascii=False) + "\n").encode("utf-8"))
    return digest.hexdigest()


# -- the recipe ----------------------------------------------------------------------------


def _recipe_file(path: str | None, family: str) -> Path:
    """The base recipe file: as given (from the working directory, else from the project's
    root, where ``experiments/*.yaml`` ship), or the family's shipped recipe when None."""
    if path is None:
        return SHIPPED_RECIPES / f"{family}.yaml"
    for candidate in (Path(path), SHIPPED_RECIPES.parent / path):
        if candidate.is_file():
            return candidate
    raise RecipeError(f"base_recipe {path} not found")


def load_base_recipe(recipe: AdaptRecipe) -> BaselineRecipe | TransformerRecipe | EmbedRecipe:
    """The base family's recipe with ``base_set`` applied; the adaptation recipe's ``data``,
    ``experiment``, ``promote_metric`` and ``realnews`` replace its own."""
    path = _recipe_file(recipe.base_recipe, recipe.base_family)
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    declared = raw.get("family") if isinstance(raw, dict) else None
    if declared not in (None, recipe.base_family):
        raise RecipeError(
            f"base_recipe {path} is a {declared} recipe but base_family is {recipe.base_family}; "
            "give a recipe of that family, or --set base_recipe=null for its shipped one"
        )
    base = load_recipe(path, FAMILY_RECIPES[recipe.base_family], recipe.base_set)
    return dataclasses.replace(
        base,
        data=recipe.data,
        experiment=recipe.experiment,
        promote_metric=recipe.promote_metric,
        realnews=recipe.realnews,
    )


def recipe_hash(recipe: AdaptRecipe, base: Any, data_digest: Any, schema: LabelSchema) -> str:
    """What the trained model depends on besides the corpus: the adaptation settings, the
    resolved base recipe, the labelled data's content and the label schema."""
    payload = {
        "adapt": {k: v for k, v in asdict(recipe).items() if k not in UNHASHED},
        "base": {k: v for k, v in asdict(base).items() if k not in UNHASHED},
        "data": data_digest,
        "schema": schema.hash,
        "version": STATE_VERSION,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def methods_applied(recipe: AdaptRecipe) -> list[str]:
    """The adaptation methods this recipe applies to its base family."""
    methods = []
    if recipe.self_training:
        methods.append("self_training")
    if recipe.negatives:
        methods.append("negatives")
    if recipe.mlm and recipe.base_family in ENCODER_FAMILIES:
        methods.append("mlm")
    if recipe.corpus_features and recipe.base_family == "baseline":
        methods.append("corpus_features")
    return methods


# -- stage 1: the corpus ---------------------------------------------------------------------


@dataclass
class CorpusInfo:
    """The corpus as read: its digest and size, and what was kept of it."""

    digest: str  # sha256 of the segmented paragraph texts in order (corpus_digest)
    paragraphs: int  # after segmentation
    repeated: int = 0  # dropped: the same text as an earlier paragraph
    in_labelled_data: int = 0  # dropped: the text of a labelled paragraph (team dataset, real-news dev)
    used: int = 0  # what adaptation works on (after the max_paragraphs sample)
    sampled: bool = False  # an evenly spaced sample of the usable paragraphs
    bad_records: int = 0

    @property
    def usable(self) -> int:
        return self.paragraphs - self.repeated - self.in_labelled_data


def labelled_texts(splits: Splits, realnews: Path | None) -> list[str]:
    """Texts that must not enter the corpus: every split of the team dataset and, when the
    real-news folder is there, its labelled dev set (what adaptation is measured on)."""
    texts = [r["text"] for r in [*splits.train, *splits.dev, *splits.test]]
    if realnews is not None:
        texts += [r["text"] for r in read_records(realnews / REALNEWS_DEV)]
    return texts


def text_key(text: str) -> int:
    """A 64-bit key of a paragraph's normalised text (repeats and team overlap)."""
    return int.from_bytes(hashlib.blake2b(normalize_text(text).encode("utf-8"), digest_size=8).digest(), "big")


def evenly_spaced(n: int, limit: int) -> np.ndarray:
    """``limit`` indices spread evenly over ``range(n)`` (all of them when n <= limit)."""
    if n <= limit:
        return np.arange(n)
    return (np.arange(limit, dtype=np.int64) * n) // limit


def read_corpus(
    inputs: Sequence[str],
    recipe: AdaptRecipe,
    labelled_texts: Iterable[str],
    out: Path,
    stdin: TextIO | None = None,
    show_progress: bool = False,
) -> CorpusInfo:
    """Read and segment ``inputs`` as ``allystance predict`` does, and write the paragraphs
    adaptation works on to ``out`` (JSON lines: ``id``, ``text``).

    Streams: memory holds one 64-bit key per distinct paragraph, not the texts. Raises a
    ``TrainingError`` when fewer than ``min_paragraphs`` paragraphs are usable.
    """
    settings = PredictSettings(segment_tables=recipe.segment_tables, keep_related=recipe.keep_related)
    report = PredictReport()
    labelled = {text_key(t) for t in labelled_texts}
    seen: set[int] = set()
    digest = hashlib.sha256()
    info = CorpusInfo(digest="", paragraphs=0)
    total = None if "-" in inputs else count_records(inputs)
    bar = tqdm(total=total, desc="corpus", unit="record", disable=not show_progress, dynamic_ncols=True)
    distinct = out.with_name(out.name + ".distinct")
    try:
        with distinct.open("w", encoding="utf-8") as fh:
            for unit in iter_units(inputs, settings, report, stdin=stdin, on_read=bar.update):
                if isinstance(unit, BadRecord):
                    info.bad_records += 1
                    if info.bad_records <= 5:
                        where = f"{unit.source}:{unit.line}" if unit.line else unit.source
                        logger.warning("corpus: skipped %s: %s", where, unit.reason)
                    continue
                info.paragraphs += 1
                digest.update((json.dumps(unit.text, ensure_ascii=False) + "\n").encode("utf-8"))
                key = text_key(unit.text)
                if key in labelled:
                    info.in_labelled_data += 1
                elif key in seen:
                    info.repeated += 1
                else:
                    seen.add(key)
                    fh.write(json.dumps({"id": unit.id, "text": unit.text}, ensure_ascii=False) + "\n")
                if info.paragraphs % 1000 == 0:
                    bar.set_postfix(paragraphs=info.paragraphs, refresh=False)
        bar.close()
        info.digest = digest.hexdigest()
        if info.bad_records > 5:
            logger.warning("corpus: %d bad records skipped in all", info.bad_records)
        usable = info.usable
        if usable < recipe.min_paragraphs:
            dropped = info.repeated + info.in_labelled_data
            note = (
                f" ({info.paragraphs:,} read, less {info.repeated:,} repeated and "
                f"{info.in_labelled_data:,} already labelled)"
                if dropped
                else ""
            )
            raise TrainingError(
                f"the corpus has {usable:,} paragraphs after segmentation{note}; adaptation needs at least "
                f"{recipe.min_paragraphs:,} (below that it measured no gain): give more text, "
                "or --set min_paragraphs=N"
            )
        keep = evenly_spaced(usable, recipe.max_paragraphs)
        info.used, info.sampled = len(keep), len(keep) < usable
        if info.sampled:
            logger.info(
                "corpus: %d usable paragraphs; an evenly spaced %d are used (max_paragraphs)", usable, info.used
            )
            wanted = iter(keep.tolist())
            next_index = next(wanted, None)
            rows = []
            for i, row in enumerate(_read_jsonl(distinct)):
                if i == next_index:
                    rows.append(row)
                    next_index = next(wanted, None)
            write_records(out, rows)
        else:
            os.replace(distinct, out)
    finally:
        bar.close()
        distinct.unlink(missing_ok=True)
    return info


# -- pseudo-labels ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Cutoffs:
    """Per topic, the score from which a topic is surely present (``sure``) and below which
    it is surely absent (``surely_not``); and the stance confidence from which a stance is kept."""

    sure: list[float]
    surely_not: list[float]
    stance_confidence: float


def surely_not_thresholds(
    gold_topics: np.ndarray, scores: np.ndarray, fallback: Sequence[float], recall_loss: float
) -> list[float]:
    """Per topic, the highest score below which at most ``recall_loss`` of the gold positives
    fall (the ``k+1``-th lowest positive score, k = floor(loss x positives)); the model's own
    threshold (``fallback``) for a topic with no gold positives."""
    out = []
    for t in range(gold_topics.shape[1]):
        positives = np.sort(scores[gold_topics[:, t] == 1, t])
        if len(positives) == 0:
            out.append(float(fallback[t]))
            continue
        out.append(float(positives[int(np.floor(recall_loss * len(positives) + 1e-9))]))
    return out


def stance_confidence(gold_stances: np.ndarray, stance_proba: np.ndarray, target: float) -> float:
    """The lowest top-probability from which the stance head's accuracy on the gold
    (paragraph, topic) pairs reaches ``target``; above every confidence when it never does."""
    rows, cols = np.nonzero(gold_stances != NO_STANCE)
    if len(rows) == 0:
        return float("inf")
    proba = stance_proba[rows, cols]
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == gold_stances[rows, cols]).astype(int)
    return precision_thresholds(correct[:, None], confidence[:, None], [0.0], target)[0]


def dev_cutoffs(
    dev: Gold,
    topic_scores: np.ndarray,
    stance_proba: np.ndarray,
    thresholds: Sequence[float],
    topic_precision: float,
    negative_recall_loss: float,
    stance_accuracy: float,
) -> Cutoffs:
    """The cut-offs measured on the team dev split (scores of the model being adapted)."""
    sure = precision_thresholds(dev.topics, topic_scores, list(thresholds), topic_precision)
    surely_not = surely_not_thresholds(dev.topics, topic_scores, thresholds, negative_recall_loss)
    surely_not = [min(n, s) for n, s in zip(surely_not, sure, strict=True)]
    return Cutoffs(sure, surely_not, stance_confidence(dev.stances, stance_proba, stance_accuracy))


@dataclass(frozen=True)
class PseudoLabel:
    index: int  # the paragraph's line in corpus.jsonl
    topics: tuple[str, ...]
    stance: dict[str, str]  # the topics whose stance was confident enough to keep


@dataclass
class PseudoSelection:
    labels: list[PseudoLabel]
    uncertain: int = 0  # some topic between its two cut-offs: left out
    unused: int = 0  # confident, but of a kind the recipe does not use (self_training or negatives off)
    capped: int = 0  # confident and used, but over max_pseudo_share


def select_pseudo_labels(
    topic_scores: np.ndarray,
    stance_proba: np.ndarray,
    cutoffs: Cutoffs,
    schema: LabelSchema,
    self_training: bool,
    negatives: bool,
) -> PseudoSelection:
    """The corpus paragraphs to train on, with their pseudo-labels.

    A paragraph whose topics are each either surely present or surely absent is confident;
    with no topic present it is a negative (kept when ``negatives``), otherwise a positive
    (kept when ``self_training``), the stance of each present topic kept when its top
    probability reaches the cut-off. Any topic in between leaves the paragraph out.
    """
    sure = topic_scores >= np.asarray(cutoffs.sure)[None, :]
    surely_not = topic_scores < np.asarray(cutoffs.surely_not)[None, :]
    confident = np.all(sure | surely_not, axis=1)
    selection = PseudoSelection([], uncertain=int((~confident).sum()))
    stances = schema.stance_values
    for i in np.flatnonzero(confident):
        present = np.flatnonzero(sure[i])
        if (len(present) == 0 and not negatives) or (len(present) > 0 and not self_training):
            selection.unused += 1
            continue
        stance = {
            schema.topic_ids[t]: stances[int(np.argmax(stance_proba[i, t]))]
            for t in present
            if float(np.max(stance_proba[i, t])) >= cutoffs.stance_confidence
        }
        selection.labels.append(PseudoLabel(int(i), tuple(schema.topic_ids[t] for t in present), stance))
    return selection


def cap_selection(selection: PseudoSelection, limit: int, seed: int) -> PseudoSelection:
    """At most ``limit`` labels: a seeded sample, in corpus order, when there are more."""
    if len(selection.labels) <= limit:
        return selection
    keep = np.sort(np.random.default_rng(seed).choice(len(selection.labels), size=limit, replace=False))
    return dataclasses.replace(
        selection,
        labels=[selection.labels[i] for i in keep],
        capped=selection.capped + len(selection.labels) - limit,
    )


def pseudo_counts(selection: PseudoSelection, schema: LabelSchema) -> dict[str, Any]:
    """What a pseudo-labelling gave: positives per topic, negatives, masked stances, left out."""
    positives = {t: sum(t in label.topics for label in selection.labels) for t in schema.topic_ids}
    return {
        "positives": positives,
        "negatives": sum(not label.topics for label in selection.labels),
        "stance_masked": sum(len(label.topics) - len(label.stance) for label in selection.labels),
        "used": len(selection.labels),
        "uncertain": selection.uncertain,
        "unused": selection.unused,
        "capped": selection.capped,
        "left_out": selection.uncertain + selection.unused + selection.capped,
    }


def pseudo_records(selection: PseudoSelection, corpus: Sequence[dict]) -> list[dict]:
    """The labels as training records (the stance of a masked topic is simply absent)."""
    return [
        {
            "id": f"corpus:{corpus[label.index]['id']}",
            "index": label.index,
            "text": corpus[label.index]["text"],
            "topics": list(label.topics),
            "stance": dict(label.stance),
        }
        for label in selection.labels
    ]


# -- the state folder ----------------------------------------------------------------------


class AdaptState:
    """``state.json`` of a state folder: what it was made from and the finished stages."""

    def __init__(self, folder: Path, recipe_hash: str, digest: str):
        self.folder = folder
        self.path = folder / STATE_FILE
        if self.path.is_file():
            self.data = json.loads(self.path.read_text(encoding="utf-8"))
            if (self.data.get("recipe_hash"), self.data.get("corpus_digest")) != (recipe_hash, digest):
                raise TrainingError(
                    f"{folder} holds an adaptation of another corpus or recipe; "
                    "give another state_dir, or remove that folder to start again"
                )
        else:
            self.data = {
                "version": STATE_VERSION,
                "recipe_hash": recipe_hash,
                "corpus_digest": digest,
                "run_id": None,
                "finished": [],
                "stages": {},
            }

    def done(self, stage: str) -> bool:
        return stage in self.data["finished"]

    def output(self, stage: str) -> dict:
        return self.data["stages"][stage]

    def finish(self, stage: str, output: dict) -> None:
        self.data["stages"][stage] = output
        if stage not in self.data["finished"]:
            self.data["finished"].append(stage)
        self.save()

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        _write_text(self.path, json.dumps(self.data, indent=2, ensure_ascii=False) + "\n")


def _save_round_model(folder: Path, predictor: Predictor) -> None:
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_model(tmp, predictor.model, predictor.meta)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


# -- the families --------------------------------------------------------------------------


@dataclass
class _Context:
    recipe: AdaptRecipe
    base: Any  # the base family's recipe
    splits: Splits
    schema: LabelSchema
    folder: Path
    corpus: list[dict]
    encoder: Path | None  # the MLM-adapted encoder folder, when there is one
    show_progress: bool
    chosen: dict[str, Any] = field(default_factory=dict)  # round 0's choices

    def bar(self, total: int | None, desc: str, unit: str):
        return tqdm(total=total, desc=desc, unit=unit, disable=not self.show_progress, dynamic_ncols=True)


class _Family:
    """How adaptation fits and scores one base family."""

    def __init__(self, ctx: _Context):
        self.ctx = ctx

    def fit(self, k: int, extra: list[dict], weights: np.ndarray | None) -> tuple[Predictor, dict[str, Any]]:
        raise NotImplementedError

    def score_corpus(self, predictor: Predictor, k: int) -> tuple[np.ndarray, np.ndarray]:
        texts = [row["text"] for row in self.ctx.corpus]
        n_topics, n_stances = len(self.ctx.schema.topics), len(self.ctx.schema.stance_values)
        topics, stances = np.zeros((len(texts), n_topics)), np.zeros((len(texts), n_topics, n_stances))
        bar = self.ctx.bar(len(texts), f"round {k}: pseudo-labelling", "paragraph")
        for start in range(0, len(texts), SCORE_CHUNK):
            chunk = texts[start : start + SCORE_CHUNK]
            topics[start : start + len(chunk)], stances[start : start + len(chunk)] = predictor.score(chunk)
            bar.update(len(chunk))
        bar.close()
        return topics, stances

    def _grid_progress(self, k: int, recipe: Any) -> tuple[Callable[[str], None], Any]:
        from training.baseline import grid

        points = len(grid(recipe, "topics.")) + len(grid(recipe, "stance."))
        bar = self.ctx.bar(points, f"round {k}: fitting", "fit")

        def progress(message: str) -> None:
            if message.startswith(("topics:", "stance:")):
                bar.set_postfix_str(message, refresh=False)
                bar.update()

        return progress, bar


class _BaselineFamily(_Family):
    def fit(self, k: int, extra: list[dict], weights: np.ndarray | None) -> tuple[Predictor, dict[str, Any]]:
        from training.baseline import fit_baseline, settled_recipe

        ctx = self.ctx
        recipe = ctx.base if k == 0 else settled_recipe(ctx.base, ctx.chosen)
        feature_texts = None
        if k > 0 and ctx.recipe.corpus_features:  # extras are corpus paragraphs: counted once
            feature_texts = [r["text"] for r in ctx.splits.train] + [row["text"] for row in ctx.corpus]
        progress, bar = self._grid_progress(k, recipe)
        fit = fit_baseline(
            recipe, ctx.splits.train, ctx.splits.dev, ctx.schema, extra, weights, feature_texts, progress
        )
        bar.close()
        meta = make_meta(ctx.base.family, ctx.schema, fit.thresholds)
        return Predictor(fit.model, meta, ctx.schema), fit.chosen


class _EmbedFamily(_Family):
    """Frozen encoder, linear heads: train and dev embedded once per encoder, the corpus once
    per encoder and kept in the state folder (``corpus_embeddings_<encoder>.npy``)."""

    def __init__(self, ctx: _Context):
        super().__init__(ctx)
        self._encoders: dict[str, tuple[Any, Any, Any]] = {}

    def _key(self, k: int) -> str:
        return "mlm" if k > 0 and self.ctx.encoder is not None else "base"

    def _encoder(self, k: int):
        from inference.embed import as_features
        from training.embed import load_embedder

        key = self._key(k)
        if key not in self._encoders:
            ctx = self.ctx
            embedder = load_embedder(ctx.base, str(ctx.encoder) if key == "mlm" else None)
            X_train = as_features(embedder.embed([r["text"] for r in ctx.splits.train]))
            X_dev = as_features(embedder.embed([r["text"] for r in ctx.splits.dev]))
            embedder.calibrate(calibration_texts(ctx.splits.train))  # input ranges for the int8 variant
            self._encoders[key] = (embedder, X_train, X_dev)
        return self._encoders[key]

    def corpus_embeddings(self, k: int) -> np.ndarray:
        path = self.ctx.folder / f"corpus_embeddings_{self._key(k)}.npy"
        if not path.is_file():
            embedder = self._encoder(k)[0]
            texts = [row["text"] for row in self.ctx.corpus]
            out = np.zeros((len(texts), embedder.encoder.config.hidden_size), dtype=np.float32)
            bar = self.ctx.bar(len(texts), "embedding the corpus", "paragraph")
            for start in range(0, len(texts), SCORE_CHUNK):
                out[start : start + SCORE_CHUNK] = embedder.embed(texts[start : start + SCORE_CHUNK])
                bar.update(len(texts[start : start + SCORE_CHUNK]))
            bar.close()
            tmp = path.with_name(path.name + ".tmp")
            with tmp.open("wb") as fh:
                np.save(fh, out)
            os.replace(tmp, path)
        return np.load(path, mmap_mode="r")

    def fit(self, k: int, extra: list[dict], weights: np.ndarray | None) -> tuple[Predictor, dict[str, Any]]:
        import scipy.sparse as sp

        from inference.embed import WEIGHTS, as_features
        from training.baseline import settled_recipe
        from training.embed import fit_embed_heads

        ctx = self.ctx
        recipe = ctx.base if k == 0 else settled_recipe(ctx.base, ctx.chosen)
        embedder, X_train, X_dev = self._encoder(k)
        if extra:
            rows = np.asarray([r["index"] for r in extra])
            X_train = sp.vstack([X_train, as_features(np.asarray(self.corpus_embeddings(k)[rows]))], format="csr")
        train = Gold.from_records([*ctx.splits.train, *extra], ctx.schema)
        dev = Gold.from_records(ctx.splits.dev, ctx.schema)
        progress, bar = self._grid_progress(k, recipe)
        fit = fit_embed_heads(recipe, embedder, X_train, X_dev, train, dev, ctx.schema, weights, progress)
        bar.close()
        meta = make_meta(ctx.base.family, ctx.schema, fit.thresholds, weights=WEIGHTS, base_model=ctx.base.base_model)
        return Predictor(fit.model, meta, ctx.schema), fit.chosen

    def score_corpus(self, predictor: Predictor, k: int) -> tuple[np.ndarray, np.ndarray]:
        from inference.embed import as_features
        from inference.tfidf import stance_scores, topic_scores

        model = predictor.model
        embeddings = self.corpus_embeddings(k)
        n_topics, n_stances = len(self.ctx.schema.topics), len(self.ctx.schema.stance_values)
        topics, stances = np.zeros((len(embeddings), n_topics)), np.zeros((len(embeddings), n_topics, n_stances))
        for start in range(0, len(embeddings), SCORE_CHUNK):
            X = as_features(np.asarray(embeddings[start : start + SCORE_CHUNK]))
            topics[start : start + X.shape[0]] = topic_scores(model.topic_heads_, X)
            stances[start : start + X.shape[0]] = stance_scores(model.stance_heads_, X, n_topics, n_stances)
        return topics, stances


class _TransformerFamily(_Family):
    def fit(self, k: int, extra: list[dict], weights: np.ndarray | None) -> tuple[Predictor, dict[str, Any]]:
        from inference.encoder import resolve_base_model
        from training.transformer import fit_designs, transformer_meta

        ctx = self.ctx
        recipe = ctx.base if k == 0 else dataclasses.replace(ctx.base, designs=[ctx.chosen["chosen.design"]])
        folder = ctx.encoder if k > 0 and ctx.encoder is not None else resolve_base_model(ctx.base.base_model)
        train = Gold.from_records([*ctx.splits.train, *extra], ctx.schema)
        chosen, _ = fit_designs(recipe, str(folder), train, ctx.splits.dev, ctx.schema, weights, ctx.show_progress)
        assert chosen.model is not None
        chosen.model.calibrate(calibration_texts(ctx.splits.train))  # input ranges for the int8 variant
        predictor = Predictor(chosen.model, transformer_meta(ctx.base, ctx.schema, chosen), ctx.schema)
        return predictor, {"chosen.design": chosen.design, "chosen.best_epoch": chosen.best_epoch}


FAMILIES: dict[str, type[_Family]] = {
    "baseline": _BaselineFamily,
    "embed": _EmbedFamily,
    "transformer": _TransformerFamily,
}


# -- evaluation and logging -------------------------------------------------------------------


def round_metrics(
    predictor: Predictor, splits: Splits, schema: LabelSchema, realnews: str | None
) -> tuple[dict[str, float], tuple[np.ndarray, np.ndarray]]:
    """Dev and test metrics (and real-news dev ones when the folder is there), and the dev scores."""
    metrics: dict[str, float] = {}
    dev_scores = predictor.score([r["text"] for r in splits.dev])
    for name, records, scores in (
        ("dev", splits.dev, dev_scores),
        ("test", splits.test, predictor.score([r["text"] for r in splits.test]) if splits.test else None),
    ):
        if scores is not None:
            metrics.update(
                evaluate(records, *scores, predictor.thresholds, schema, with_artifacts=False).prefixed(name)
            )
    folder = find_realnews(realnews)
    if folder is not None:
        metrics.update(realnews_metrics(predictor, folder))
    metrics[SELECTION_METRIC] = selection_score(metrics)
    return metrics, dev_scores


def _pseudo_metrics(counts: dict[str, Any]) -> dict[str, float]:
    out = {f"pseudo_positives_{t}": float(n) for t, n in counts["positives"].items()}
    out.update({f"pseudo_{k}": float(v) for k, v in counts.items() if k != "positives"})
    return out


def _round_name(k: int) -> str:
    return "round 0 (unadapted)" if k == 0 else f"round {k}"


def _log_round(entry: dict) -> None:
    """A finished round's figures in its nested run: metrics, and the pseudo-labels it gave."""
    tracking.log_metrics({**entry["metrics"], "trained_on_pseudo": float(entry["trained_on_pseudo"])})
    if entry.get("pseudo") is not None:
        tracking.log_metrics(_pseudo_metrics(entry["pseudo"]))
        tracking.log_dict(entry["cutoffs"], "pseudo_cutoffs.json")


# -- the whole run -----------------------------------------------------------------------------


@dataclass
class AdaptResult:
    """The registered model's result and what adaptation did on the way."""

    result: TrainResult
    base_family: str
    corpus: CorpusInfo
    rounds: list[dict]  # per round: metrics, trained_on_pseudo, and the pseudo-labels it gave
    state_dir: Path
    methods: list[str]
    skipped: list[str] = field(default_factory=list)  # stages finished by an earlier run

    @property
    def before(self) -> dict[str, float]:
        return self.rounds[0]["metrics"]


def train_adapt(
    recipe: AdaptRecipe,
    inputs: Sequence[str],
    tracking_uri: str | None = None,
    promote: bool = False,
    show_progress: bool = False,
    stdin: TextIO | None = None,
) -> AdaptResult:
    """Adapt the recipe's base family to the unlabelled ``inputs`` (anything ``allystance
    predict`` reads) and register the result as a tracked MLflow run; finished stages kept
    in the state folder are skipped (see the module docstring)."""
    schema = load_schema()
    base = load_base_recipe(recipe)
    methods = methods_applied(recipe)
    if not methods:
        raise TrainingError(
            f"the recipe turns off every method that applies to the {recipe.base_family} family; "
            "set self_training, negatives, mlm (encoder families) or corpus_features (baseline) to true"
        )
    splits = read_splits(recipe.data)
    realnews = find_realnews(recipe.realnews)
    data_digests = [file_sha256(splits.source), file_sha256(realnews / REALNEWS_DEV) if realnews else None]
    hashed = recipe_hash(recipe, base, data_digests, schema)
    skipped: list[str] = []
    state = _corpus_stage(recipe, inputs, labelled_texts(splits, realnews), hashed, stdin, show_progress, skipped)
    info, folder = CorpusInfo(**state.output("corpus")), state.folder
    pseudo = recipe.self_training or recipe.negatives
    rounds = recipe.rounds if pseudo else 1
    if not pseudo and recipe.rounds > 1:
        logger.info("no pseudo-labels (self_training and negatives are off): one adapted round")

    def outcome(result: TrainResult, skipped: list[str]) -> AdaptResult:
        finished = [state.output(f"round{k}") for k in range(rounds + 1) if state.done(f"round{k}")]
        return AdaptResult(result, base.family, info, finished, folder, methods, skipped)

    if state.done("final"):
        logger.info("every stage finished in an earlier run (%s); nothing to do", folder)
        final = state.output("final")
        if promote and not final["promoted"]:
            _promote_later(final, recipe, tracking_uri)
            state.save()
        result = TrainResult(
            final["run_id"], final["model_version"], final["metrics"], final["promoted"], final["previous_champion"]
        )
        return outcome(result, list(state.data["finished"]))

    corpus = list(_read_jsonl(folder / CORPUS_FILE))
    with tracked_family_run(
        recipe, schema, splits, tracking_uri, f"adapt {base.family}", resume_run_id=state.data["run_id"]
    ) as run:
        if run.info.run_id == state.data["run_id"]:
            logger.info("continuing MLflow run %s", run.info.run_id)
        else:
            extra = {"methods": ",".join(methods), "effective_rounds": rounds, "recipe_hash": hashed}
            _describe_run(state, run.info.run_id, base, info, extra, recipe.family)
        encoder = _mlm_stage(recipe, base, state, corpus, show_progress, skipped)
        ctx = _Context(recipe, base, splits, schema, folder, corpus, encoder, show_progress)
        family = FAMILIES[base.family](ctx)
        for k in range(rounds + 1):
            _round_stage(family, state, k, rounds, skipped)
        result = _final_stage(state, ctx, rounds, methods, promote, run.info.run_id)
    return outcome(result, skipped)


def _corpus_stage(
    recipe: AdaptRecipe,
    inputs: Sequence[str],
    labelled: list[str],
    hashed: str,
    stdin: TextIO | None,
    show_progress: bool,
    skipped: list[str],
) -> AdaptState:
    """Read and segment the corpus (every time: its digest names the state folder), and keep
    it in the state folder unless an earlier run did."""
    root = Path(recipe.state_dir).resolve().parent if recipe.state_dir else (Path.cwd() / STORE)
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".reading-", dir=root))
    try:
        info = read_corpus(inputs, recipe, labelled, work / CORPUS_FILE, stdin, show_progress)
        folder = Path(recipe.state_dir).resolve() if recipe.state_dir else root / f"{info.digest[:12]}-{hashed[:12]}"
        state = AdaptState(folder, hashed, info.digest)
        if state.done("corpus"):
            logger.info("corpus %s: read and segmented in an earlier run (%s), skipping", info.digest[:12], folder)
            skipped.append("corpus")
        else:
            folder.mkdir(parents=True, exist_ok=True)
            os.replace(work / CORPUS_FILE, folder / CORPUS_FILE)
            state.finish("corpus", asdict(info))
            logger.info(
                "corpus %s: %d paragraphs, %d used; state in %s", info.digest[:12], info.paragraphs, info.used, folder
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return state


def _describe_run(state: AdaptState, run_id: str, base: Any, info: CorpusInfo, extra: dict, family: str) -> None:
    """A new parent run: the base recipe and the corpus as parameters, the corpus digest as a
    tag, and the rounds an earlier run finished (logged to another store) as nested runs."""
    tracking.log_params(
        {
            **{f"base.{k}": v for k, v in flatten(base).items()},
            "corpus_digest": info.digest,
            "corpus_paragraphs": info.paragraphs,
            "corpus_repeated": info.repeated,
            "corpus_in_labelled_data": info.in_labelled_data,
            "corpus_used": info.used,
            "corpus_sampled": info.sampled,
            "corpus_bad_records": info.bad_records,
            "state_folder": str(state.folder),
            **extra,
        }
    )
    tracking.set_tags({"adapted_from": info.digest, "base_family": base.family})
    k = 0
    while state.done(f"round{k}"):
        with tracking.nested_run(_round_name(k), {"round": k}, family):
            _log_round(state.output(f"round{k}"))
        k += 1
    state.data["run_id"] = run_id
    state.save()


def _mlm_stage(
    recipe: AdaptRecipe, base: Any, state: AdaptState, corpus: list[dict], show_progress: bool, skipped: list[str]
) -> Path | None:
    """The encoder after continued masked-LM pretraining on the corpus (None without ``mlm``)."""
    if not (recipe.mlm and base.family in ENCODER_FAMILIES):
        return None
    encoder = state.folder / ENCODER_DIR
    if state.done("mlm"):
        logger.info("mlm: the adapted encoder is in %s from an earlier run, skipping", encoder)
        skipped.append("mlm")
        return encoder
    from inference.encoder import resolve_base_model
    from training.mlm import MlmSettings, continue_pretraining

    settings = MlmSettings(
        epochs=recipe.mlm_epochs,
        lr=recipe.mlm_lr,
        batch_size=recipe.mlm_batch_size,
        max_length=recipe.mlm_max_length,
        probability=recipe.mlm_probability,
        seed=base.seed,
        device=base.device,
    )
    with tracking.nested_run("mlm", asdict(settings), recipe.family):
        texts = [row["text"] for row in corpus]
        stats = continue_pretraining(resolve_base_model(base.base_model), texts, encoder, settings, show_progress)
        tracking.log_metrics(stats)
    state.finish("mlm", stats)
    return encoder


def _round_stage(family: _Family, state: AdaptState, k: int, rounds: int, skipped: list[str]) -> None:
    """Round k: fit on train plus round k-1's pseudo-labels, evaluate, and (before the last
    round) pseudo-label the corpus for round k+1; the last round's model is kept."""
    ctx, stage = family.ctx, f"round{k}"
    recipe, splits, schema = ctx.recipe, ctx.splits, ctx.schema
    if state.done(stage):
        logger.info("%s: finished in an earlier run, skipping", _round_name(k))
        skipped.append(stage)
        return
    pseudo = recipe.self_training or recipe.negatives
    ctx.chosen = state.output("round0")["chosen"] if k > 0 else {}
    extra = list(_read_jsonl(state.folder / f"round{k - 1}_pseudo.jsonl")) if k > 0 and pseudo else []
    weights = np.r_[np.ones(len(splits.train)), np.full(len(extra), recipe.pseudo_weight)] if k > 0 else None
    logger.info(
        "%s: fitting on %d team paragraphs and %d pseudo-labelled", _round_name(k), len(splits.train), len(extra)
    )
    params = {"round": k, "pseudo_paragraphs": len(extra), "encoder": "mlm" if k > 0 and ctx.encoder else "base"}
    with tracking.nested_run(_round_name(k), params, recipe.family):
        predictor, chosen = family.fit(k, extra, weights)
        metrics, (dev_topics, dev_stances) = round_metrics(predictor, splits, schema, recipe.realnews)
        entry: dict[str, Any] = {
            "metrics": metrics,
            "chosen": chosen,
            "trained_on_pseudo": len(extra),
            "pseudo": None,
            "cutoffs": None,
        }
        if pseudo and k < rounds:
            cutoffs = dev_cutoffs(
                Gold.from_records(splits.dev, schema),
                dev_topics,
                dev_stances,
                predictor.thresholds,
                recipe.topic_precision,
                recipe.negative_recall_loss,
                recipe.stance_accuracy,
            )
            scores, stances = family.score_corpus(predictor, k)
            selection = select_pseudo_labels(scores, stances, cutoffs, schema, recipe.self_training, recipe.negatives)
            selection = cap_selection(selection, int(recipe.max_pseudo_share * len(splits.train)), ctx.base.seed + k)
            write_records(state.folder / f"round{k}_pseudo.jsonl", pseudo_records(selection, ctx.corpus))
            entry["pseudo"] = pseudo_counts(selection, schema)
            entry["cutoffs"] = asdict(cutoffs)
        _log_round(entry)
    if k == rounds:  # the model published; earlier rounds live on in their pseudo-labels
        _save_round_model(state.folder / stage, predictor)
    state.finish(stage, entry)


def _final_stage(
    state: AdaptState, ctx: _Context, rounds: int, methods: list[str], promote: bool, run_id: str
) -> TrainResult:
    """The last round's model, as saved, evaluated, logged, registered and (if asked and
    better) promoted like every family's, its meta saying what it was adapted to."""
    info = CorpusInfo(**state.output("corpus"))
    predictor = load_model(state.folder / f"round{rounds}", ctx.schema)
    _to_device(predictor, ctx.base)
    adapted = {"corpus_digest": info.digest, "paragraphs": info.paragraphs, "used": info.used}
    adapted.update({"methods": methods, "rounds": rounds})
    meta = dataclasses.replace(predictor.meta, extra={**predictor.meta.extra, "adapted": adapted})
    predictor = Predictor(predictor.model, meta, ctx.schema)
    result = evaluate_and_publish(predictor, ctx.splits, ctx.schema, ctx.recipe, promote, run_id, ctx.base.family)
    before = state.output("round0")["metrics"]
    tracking.log_metrics({f"unadapted_{k}": before[k] for k in REFERENCE_METRICS if k in before})
    final = {"run_id": result.run_id, "model_version": result.model_version, "metrics": result.metrics}
    state.finish("final", {**final, "promoted": result.promoted, "previous_champion": result.previous_champion})
    return result


def _promote_later(final: dict, recipe: AdaptRecipe, tracking_uri: str | None) -> None:
    """``--promote`` on an adaptation that finished without it: compare its registered model
    with the champion now (``final`` is updated in place)."""
    metric = recipe.promote_metric
    if metric not in final["metrics"]:
        raise TrainingError(f"promote_metric {metric!r} is not one of the logged metrics")
    with tracking.resumed_run(final["run_id"], tracking_uri) as run:
        if run is None:
            raise TrainingError(
                f"--promote: run {final['run_id']} of this adaptation is not in this tracking store; "
                "give the --tracking-uri it was trained with"
            )
        final["promoted"], final["previous_champion"] = tracking.promote_if_better(
            final["model_version"], metric, final["metrics"][metric]
        )


def _to_device(predictor: Predictor, base: Any) -> None:
    """A reloaded encoder model back on the recipe's device (loading puts it on the CPU)."""
    if base.family not in ENCODER_FAMILIES:
        return
    from inference.encoder import pick_device

    device = pick_device(base.device)
    if base.family == "transformer":
        predictor.model.net.to(device)
    else:
        predictor.model.embedder.to(device)
