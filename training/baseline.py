"""Training the TF-IDF baseline (and the keyword-rules floor) from a recipe.

The topic heads and the stance model train separately (stance on gold pairs), so the
search is two small grids: topic settings chosen by dev topic micro-F1 with thresholds
tuned on dev, stance settings by dev stance macro-F1. Each grid point is a nested run.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from inference.model_io import Predictor
from inference.rules import KeywordRules
from inference.tfidf import (
    TfidfTopicStance,
    fast_transform,
    fit_stance_heads,
    fit_topic_heads,
    stance_scores,
    topic_scores,
)
from labels import LabelSchema, load_schema
from training import tracking
from training.config import BaselineRecipe, EmbedRecipe, RulesRecipe, StanceConfig, TopicConfig
from training.evaluate import Gold, stance_metrics, topic_metrics, tune_thresholds
from training.runs import TrainResult, evaluate_and_publish, make_meta, read_splits, tracked_family_run

logger = logging.getLogger(__name__)


def grid(recipe: BaselineRecipe, prefix: str) -> list[dict[str, object]]:
    """The grid points for the ``prefix`` part of the search ({} alone when not searched)."""
    keys = [k for k in recipe.search if k.startswith(prefix)]
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(recipe.search[k] for k in keys))]


def _with(config, point: dict[str, object], prefix: str):
    return dataclasses.replace(config, **{k.removeprefix(prefix): v for k, v in point.items()})


def search_heads(
    recipe: BaselineRecipe | EmbedRecipe,
    X_train,
    X_dev,
    train: Gold,
    dev: Gold,
    schema: LabelSchema,
    progress: Callable[[str], None] = lambda message: None,
    weights: np.ndarray | None = None,
) -> tuple[tuple[TopicConfig, list, list[float]], tuple[StanceConfig, object]]:
    """Fit the linear topic and stance heads over the recipe's grid, each point a nested run.

    Topic settings are chosen by dev topic micro-F1 (thresholds tuned on dev), stance
    settings by dev stance macro-F1 on gold pairs. Shared by every family with linear
    heads on fixed features (TF-IDF, frozen embeddings). ``weights``: one per training
    paragraph (None = 1 each), as ``inference.tfidf``'s ``sample_weight``.
    """
    n_classes = len(schema.stance_values)
    best_topic = None
    for point in grid(recipe, "topics."):
        cfg = _with(recipe.topics, point, "topics.")
        progress(f"topics: {cfg.model} C={cfg.C}")
        heads = fit_topic_heads(X_train, train.topics, cfg.model, cfg.C, recipe.class_weight, recipe.seed, weights)
        scores = topic_scores(heads, X_dev)
        thresholds = tune_thresholds(dev.topics, scores, tolerance=recipe.threshold_tolerance)
        pred = (scores >= np.asarray(thresholds)).astype(int)
        metrics = topic_metrics(dev.topics, pred, schema)
        with tracking.nested_run(f"topics {cfg.model} C={cfg.C}", dataclasses.asdict(cfg), recipe.family):
            tracking.log_metrics({f"dev_{k}": v for k, v in metrics.items()})
        if best_topic is None or metrics["topic_micro_f1"] > best_topic[0]:
            best_topic = (metrics["topic_micro_f1"], cfg, heads, thresholds)

    best_stance = None
    for point in grid(recipe, "stance."):
        cfg = _with(recipe.stance, point, "stance.")
        progress(f"stance: {cfg.design} C={cfg.C}")
        heads = fit_stance_heads(
            X_train, train.stances, n_classes, cfg.design, cfg.C, recipe.class_weight, recipe.seed, weights
        )
        proba = stance_scores(heads, X_dev, len(schema.topics), n_classes)
        # Stance is scored on gold pairs, so topic decisions do not matter here.
        metrics = stance_metrics(dev.stances, np.argmax(proba, axis=2), dev.topics, schema)
        with tracking.nested_run(f"stance {cfg.design} C={cfg.C}", dataclasses.asdict(cfg), recipe.family):
            tracking.log_metrics({f"dev_{k}": v for k, v in metrics.items()})
        if best_stance is None or metrics["stance_macro_f1"] > best_stance[0]:
            best_stance = (metrics["stance_macro_f1"], cfg, heads)

    assert best_topic is not None and best_stance is not None
    _, topic_cfg, topic_heads, thresholds = best_topic
    _, stance_cfg, stance_heads = best_stance
    return (topic_cfg, topic_heads, thresholds), (stance_cfg, stance_heads)


@dataclass
class LinearFit:
    """A fitted family with linear heads: the model, its dev-tuned thresholds and what the
    search chose (``chosen.*`` keys, logged as parameters)."""

    model: object
    thresholds: list[float]
    chosen: dict[str, object]


def settled_recipe(recipe: BaselineRecipe | EmbedRecipe, chosen: dict[str, object]) -> BaselineRecipe | EmbedRecipe:
    """The recipe with a search's choices (``chosen.*``) as its own values and no search: a
    refit at the chosen point, as ``training.adapt`` does after its first round."""
    return dataclasses.replace(
        recipe,
        topics=dataclasses.replace(recipe.topics, model=chosen["chosen.topics.model"], C=chosen["chosen.topics.C"]),
        stance=dataclasses.replace(recipe.stance, design=chosen["chosen.stance.design"], C=chosen["chosen.stance.C"]),
        search={},
    )


def chosen_settings(topic_cfg: TopicConfig, stance_cfg: StanceConfig) -> dict[str, object]:
    return {
        "chosen.topics.model": topic_cfg.model,
        "chosen.topics.C": topic_cfg.C,
        "chosen.stance.design": stance_cfg.design,
        "chosen.stance.C": stance_cfg.C,
    }


def fit_baseline(
    recipe: BaselineRecipe,
    train_records: Sequence[dict],
    dev_records: Sequence[dict],
    schema: LabelSchema,
    extra: Sequence[dict] = (),
    weights: Sequence[float] | None = None,
    feature_texts: Sequence[str] | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> LinearFit:
    """Fit the TF-IDF features and search the heads, inside the active run.

    ``extra`` records train alongside ``train_records`` (pseudo-labelled paragraphs, whose
    ``stance`` may leave a topic out); ``weights`` has one weight per record of
    ``train_records`` then ``extra`` (None = 1 each); ``feature_texts`` are what the TF-IDF
    vocabulary and IDF are fitted on (None = the training texts).
    """
    train = Gold.from_records([*train_records, *extra], schema)
    dev = Gold.from_records(dev_records, schema)
    sample_weight = None if weights is None else np.asarray(weights, dtype=float)
    if sample_weight is not None and len(sample_weight) != len(train.texts):
        raise ValueError(f"{len(sample_weight)} weights for {len(train.texts)} training records")
    progress("fitting TF-IDF features")
    base = TfidfTopicStance(
        n_stance_classes=len(schema.stance_values),
        word_ngrams=recipe.features.word_ngrams,
        char_ngrams=recipe.features.char_ngrams,
        min_df=recipe.features.min_df,
        max_features=recipe.features.max_features,
        sublinear_tf=recipe.features.sublinear_tf,
        class_weight=recipe.class_weight,
        seed=recipe.seed,
    )
    features = base.make_features()
    if feature_texts is None:
        X_train = features.fit_transform(train.texts)
        fast_transform(features, train.texts)  # fills the char n-gram word cache saved with the model
    else:
        features.fit(list(feature_texts))
        X_train = fast_transform(features, train.texts)  # the same matrix; fills the cache too
    X_dev = features.transform(dev.texts)
    tracking.log_metrics({"n_features": X_train.shape[1]})

    (topic_cfg, topic_heads, thresholds), (stance_cfg, stance_heads) = search_heads(
        recipe, X_train, X_dev, train, dev, schema, progress, sample_weight
    )
    model = base.set_params(
        topic_model=topic_cfg.model, topic_C=topic_cfg.C, stance_design=stance_cfg.design, stance_C=stance_cfg.C
    ).set_fitted(features, topic_heads, stance_heads)
    return LinearFit(model, thresholds, chosen_settings(topic_cfg, stance_cfg))


def train_baseline(
    recipe: BaselineRecipe,
    tracking_uri: str | None = None,
    promote: bool = False,
    progress: Callable[[str], None] = lambda message: None,
) -> TrainResult:
    """Fit, search, evaluate and log the TF-IDF baseline; register it, promote if asked."""
    schema = load_schema()
    splits = read_splits(recipe.data)

    with tracked_family_run(recipe, schema, splits, tracking_uri) as run:
        fit = fit_baseline(recipe, splits.train, splits.dev, schema, progress=progress)
        tracking.log_params(fit.chosen)
        tracking.log_thresholds(schema, fit.thresholds)
        predictor = Predictor(fit.model, make_meta(recipe.family, schema, fit.thresholds), schema)
        progress("evaluating and logging the model")
        result = evaluate_and_publish(predictor, splits, schema, recipe, promote, run.info.run_id)
        result.chosen = fit.chosen
        return result


def train_rules(
    recipe: RulesRecipe, tracking_uri: str | None = None, promote: bool = False, schema: LabelSchema | None = None
) -> TrainResult:
    """Track the keyword rules like a model: same evaluation, same registry."""
    schema = schema or load_schema()
    splits = read_splits(recipe.data)
    with tracked_family_run(recipe, schema, splits, tracking_uri) as run:
        model = KeywordRules(schema.topic_ids, len(schema.stance_values), schema.encode_stance("neutral"))
        predictor = Predictor(model, make_meta(recipe.family, schema, [0.5] * len(schema.topics)), schema)
        return evaluate_and_publish(predictor, splits, schema, recipe, promote, run.info.run_id)
