"""Training the embedding family: embed every paragraph once with the frozen encoder, then
search the baseline's linear heads on those features (same grid, same nested runs)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from inference.embed import WEIGHTS, EmbedTopicStance, SentenceEmbedder, as_features
from inference.encoder import pick_device, resolve_base_model
from inference.model_io import Predictor
from labels import LabelSchema, load_schema
from training import tracking
from training.baseline import LinearFit, chosen_settings, search_heads
from training.config import EmbedRecipe
from training.evaluate import Gold
from training.runs import (
    TrainResult,
    calibration_texts,
    evaluate_and_publish,
    make_meta,
    read_splits,
    tracked_family_run,
)
from training.transformer import set_seed

logger = logging.getLogger(__name__)


def load_embedder(recipe: EmbedRecipe, folder: str | None = None) -> SentenceEmbedder:
    """The recipe's frozen encoder (or the one in ``folder``) on the recipe's device."""
    return SentenceEmbedder.from_folder(
        folder or resolve_base_model(recipe.base_model), recipe.max_length, recipe.batch_size
    ).to(pick_device(recipe.device))


def fit_embed_heads(
    recipe: EmbedRecipe,
    embedder: SentenceEmbedder,
    X_train,
    X_dev,
    train: Gold,
    dev: Gold,
    schema: LabelSchema,
    weights: np.ndarray | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> LinearFit:
    """Search the linear heads on embeddings already computed (``as_features``), inside the
    active run; ``weights``: one per training paragraph (None = 1 each)."""
    (topic_cfg, topic_heads, thresholds), (stance_cfg, stance_heads) = search_heads(
        recipe, X_train, X_dev, train, dev, schema, progress, weights
    )
    model = EmbedTopicStance(embedder, topic_heads, stance_heads, len(schema.stance_values))
    return LinearFit(model, thresholds, chosen_settings(topic_cfg, stance_cfg))


def train_embed(
    recipe: EmbedRecipe,
    tracking_uri: str | None = None,
    promote: bool = False,
    progress: Callable[[str], None] = lambda message: None,
) -> TrainResult:
    """Embed, fit and search the linear heads, evaluate, log and register; promote if asked."""
    schema = load_schema()
    splits = read_splits(recipe.data)
    train, dev = Gold.from_records(splits.train, schema), Gold.from_records(splits.dev, schema)
    set_seed(recipe.seed)
    with tracked_family_run(recipe, schema, splits, tracking_uri) as run:
        progress(f"embedding {len(train.texts) + len(dev.texts)} paragraphs")
        start = time.perf_counter()
        embedder = load_embedder(recipe)
        X_train, X_dev = as_features(embedder.embed(train.texts)), as_features(embedder.embed(dev.texts))
        embedder.calibrate(calibration_texts(splits.train))  # input ranges for the int8 variant
        tracking.log_metrics({"embed_seconds": time.perf_counter() - start, "n_features": X_train.shape[1]})
        fit = fit_embed_heads(recipe, embedder, X_train, X_dev, train, dev, schema, progress=progress)
        tracking.log_params(fit.chosen)
        tracking.log_thresholds(schema, fit.thresholds)
        meta = make_meta(recipe.family, schema, fit.thresholds, weights=WEIGHTS, base_model=recipe.base_model)
        progress("evaluating and logging the model")
        result = evaluate_and_publish(
            Predictor(fit.model, meta, schema), splits, schema, recipe, promote, run.info.run_id
        )
        result.chosen = fit.chosen
        return result
