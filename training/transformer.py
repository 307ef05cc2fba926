"""Fine-tuning the transformer family from a recipe: each stance design a nested run, the
better one by dev score evaluated, logged, registered and (if asked) promoted.

Training choices, and why:

- the stance loss is masked to the gold topics (a paragraph says nothing about the stance
  of a topic it does not discuss), and classes are weighted (``balanced``), as are topic
  positives, because neutral and absent are rarer or commoner than the rest;
- AdamW with a linear warm-up then linear decay, a larger learning rate for the fresh heads
  than for the pretrained encoder, and gradient clipping;
- batches of similar length padded to their own longest item (most paragraphs are far
  shorter than ``max_length``, which keeps CPU steps cheap);
- dev thresholds re-tuned and dev combined F1 computed after every epoch; the best epoch is
  kept and training stops after ``patience`` epochs without improvement;
- bf16 autocast on CUDA; fixed seeds everywhere.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from inference.encoder import length_sorted_batches, pick_device, resolve_base_model
from inference.model_io import ModelMeta, Predictor
from inference.transformer import WEIGHTS, TransformerTopicStance
from labels import NO_STANCE, LabelSchema, load_schema
from training import tracking
from training.config import TransformerRecipe
from training.evaluate import Gold, evaluate, tune_thresholds
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


@dataclass
class FitOutcome:
    """One stance design, fitted: the model at its best dev epoch and how it got there."""

    design: str
    model: TransformerTopicStance | None  # None once another design has won
    thresholds: list[float]
    dev_metrics: dict[str, float]  # prefixed dev_
    best_epoch: int
    epochs_run: int
    steps: int
    seconds: float


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def stance_class_weights(stances: np.ndarray, n_classes: int) -> np.ndarray:
    """``balanced`` weights over the gold (paragraph, topic) pairs: n / (k * count)."""
    labels = stances[stances != NO_STANCE]
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    weights = len(labels) / (n_classes * np.maximum(counts, 1.0))
    return np.where(counts > 0, weights, 1.0)


def topic_pos_weights(topics: np.ndarray) -> np.ndarray:
    """negatives / positives per topic, capped at 10 (BCE ``pos_weight``)."""
    pos = topics.sum(0).astype(float)
    return np.clip((len(topics) - pos) / np.maximum(pos, 1.0), 1.0, 10.0)


class _Examples:
    """Training inputs tokenised once: paragraphs, and for the pair design the gold pairs.

    ``weights`` (one per paragraph, None = 1 each) scale each paragraph's loss terms, e.g.
    a pseudo-labelled paragraph against a gold one; a topic whose stance is ``NO_STANCE``
    while the topic is present trains the topic head only (its stance is masked).

    ``gold.topics`` may hold probabilities rather than 0/1 (a teacher's, in distillation), and
    ``stance_targets`` (n x T x S, one-pass designs only) replaces the hard stances with a
    distribution per (paragraph, topic); a row of zeros trains no stance for that pair.
    ``feature_targets`` (n x F x H', a teacher's ``features``) are vectors for the student's
    own (projected to H') to point the same way, paragraph by paragraph.
    """

    def __init__(
        self,
        model: TransformerTopicStance,
        gold: Gold,
        weights: Sequence[float] | None = None,
        stance_targets: np.ndarray | None = None,
        feature_targets: np.ndarray | None = None,
    ):
        self.paragraphs = model.tokenize(gold.texts)
        self.topics = torch.tensor(gold.topics, dtype=torch.float32)
        self.stances = torch.tensor(gold.stances, dtype=torch.long)
        self.weights = None if weights is None else torch.tensor(np.asarray(weights, dtype=np.float32))
        if self.weights is not None and len(self.weights) != len(gold.texts):
            raise ValueError(f"{len(self.weights)} weights for {len(gold.texts)} training paragraphs")
        self.stance_targets = None if stance_targets is None else torch.tensor(stance_targets, dtype=torch.float32)
        if self.stance_targets is not None:
            if model.design == "pair":
                raise ValueError("stance distributions need a one-pass design (per_topic or attention), not pair")
            if self.stance_targets.shape[:2] != self.topics.shape:
                shape = tuple(self.stance_targets.shape)
                raise ValueError(f"stance targets {shape} do not fit {len(gold.texts)} paragraphs")
        self.feature_targets = None if feature_targets is None else torch.from_numpy(np.asarray(feature_targets))
        if self.feature_targets is not None:
            if model.design == "pair":
                raise ValueError("feature targets need a one-pass design (per_topic or attention), not pair")
            if len(self.feature_targets) != len(gold.texts):
                raise ValueError(f"{len(self.feature_targets)} feature targets for {len(gold.texts)} paragraphs")
        self.pairs: list[dict[str, list[int]]] = []
        self.pair_labels = torch.zeros(0, dtype=torch.long)
        self.pair_rows = np.zeros(0, dtype=int)
        self.pairs_of: list[list[int]] = [[] for _ in gold.texts]
        if model.design == "pair":
            rows, topics = np.nonzero(gold.stances != NO_STANCE)
            self.pairs = model.tokenize_pairs([gold.texts[r] for r in rows], topics)
            self.pair_labels = torch.tensor(gold.stances[rows, topics], dtype=torch.long)
            self.pair_rows = rows
            for k, r in enumerate(rows):
                self.pairs_of[r].append(k)

    def lengths(self) -> list[int]:
        return [len(p["input_ids"]) for p in self.paragraphs]


def _backward(
    model: TransformerTopicStance,
    examples: _Examples,
    idx: np.ndarray,
    topic_loss: torch.nn.Module,
    stance_loss: torch.nn.Module,
    stance_weight: float,
    device: torch.device,
    projection: torch.nn.Linear | None = None,
    feature_weight: float = 0.0,
) -> float:
    """Forward and backward for one batch of paragraphs; returns the loss.

    With ``examples.feature_targets`` and a ``projection`` (student width to the targets'),
    ``feature_weight`` x the mean cosine distance between the projected features and the
    targets is added (``feature_loss``).

    The pair design runs its two passes (paragraphs for topics, pairs for stance) with a
    backward after each: the gradients are the same as for the summed loss, and only one
    graph is held at a time, which on CPU is markedly faster than holding both.
    """
    net = model.net
    weights = None if examples.weights is None else examples.weights[idx].to(device)
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    with autocast:
        batch = model.collate([examples.paragraphs[i] for i in idx])
        if projection is None:  # the feature stack is built only when something reads it
            topic_logits, stance_logits = net.paragraph_logits(batch)
        else:
            topic_logits, stance_logits, features = net.paragraph_outputs(batch)
        topic_targets = examples.topics[idx].to(device)
        if weights is None:
            loss = topic_loss(topic_logits.float(), topic_targets)
        else:
            loss = _weighted_topic_loss(topic_loss, topic_logits.float(), topic_targets, weights)
        if stance_logits is not None and examples.stance_targets is not None:  # distributions (distillation)
            logits = stance_logits.float().reshape(-1, net.n_stances)
            dists = examples.stance_targets[idx].to(device).reshape(-1, net.n_stances)
            row_weights = None if weights is None else weights.repeat_interleave(examples.stance_targets.shape[1])
            if bool((dists.sum(-1) > 0).any()):
                loss = loss + stance_weight * soft_stance_loss(stance_loss, logits, dists, row_weights)
        elif stance_logits is not None:  # the one-pass designs
            targets = examples.stances[idx].to(device)
            if bool((targets != NO_STANCE).any()):  # all-ignored targets would give NaN
                logits = stance_logits.float().reshape(-1, net.n_stances)
                if weights is None:
                    loss = loss + stance_weight * stance_loss(logits, targets.reshape(-1))
                else:
                    row_weights = weights.repeat_interleave(targets.shape[1])
                    loss = loss + stance_weight * _weighted_stance_loss(
                        stance_loss, logits, targets.reshape(-1), row_weights
                    )
        if projection is not None:  # fine_tune makes one only for feature targets and a weight above 0
            targets = examples.feature_targets[idx].to(device)
            loss = loss + feature_weight * feature_loss(projection(features.float()), targets.float())
    loss.backward()
    total = float(loss.detach())
    pair_idx = [k for i in idx for k in examples.pairs_of[i]]
    if model.design == "pair" and pair_idx:
        with autocast:
            pair_pooled = net.encode(model.collate([examples.pairs[k] for k in pair_idx]))
            logits = net.stance_logits(pair_pooled).float()
            targets = examples.pair_labels[pair_idx].to(device)
            if examples.weights is None:
                loss = stance_weight * stance_loss(logits, targets)
            else:
                pair_weights = examples.weights[examples.pair_rows[pair_idx]].to(device)
                loss = stance_weight * _weighted_stance_loss(stance_loss, logits, targets, pair_weights)
        loss.backward()
        total += float(loss.detach())
    return total


def _weighted_topic_loss(
    topic_loss: torch.nn.BCEWithLogitsLoss, logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """``topic_loss`` (its ``pos_weight`` included) with each paragraph's terms scaled by its
    weight; the mean over the batch as before, so weights of 1 give the unweighted loss."""
    per_item = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, targets, pos_weight=topic_loss.pos_weight, reduction="none"
    )
    return (per_item * weights[:, None]).mean()


def _weighted_stance_loss(
    stance_loss: torch.nn.CrossEntropyLoss, logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """``stance_loss`` (class weights, ``NO_STANCE`` ignored) with each pair's term scaled by
    its paragraph's weight. The normaliser is the one the unweighted mean uses (the summed
    class weights of the pairs), so a weight is an absolute scale: a batch of pseudo-labelled
    paragraphs at weight 0.5 moves the model half as far as the same batch of gold ones."""
    per_item = torch.nn.functional.cross_entropy(
        logits, targets, weight=stance_loss.weight, ignore_index=NO_STANCE, reduction="none"
    )
    valid = targets != NO_STANCE
    class_weights = stance_loss.weight[targets[valid]] if stance_loss.weight is not None else valid[valid].float()
    return (per_item * weights).sum() / class_weights.sum()


def soft_stance_loss(
    stance_loss: torch.nn.CrossEntropyLoss,
    logits: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy against stance distributions (rows of ``targets``; a row of zeros counts
    for nothing), with ``stance_loss``'s class weights and the same normaliser as the hard
    loss: for one-hot rows it equals ``stance_loss`` exactly. ``weights`` scale each row."""
    class_weights = stance_loss.weight if stance_loss.weight is not None else torch.ones_like(targets[0])
    weighted = targets * class_weights  # rows x S
    per_row = -(weighted * torch.log_softmax(logits, dim=-1)).sum(-1)
    norm = weighted.sum(-1)
    if weights is not None:
        per_row = per_row * weights
    return per_row.sum() / norm.sum()


def feature_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean cosine distance (1 - cos) between a student's projected features (n x F x H) and a
    teacher's (n x F' x H), over the vectors both have: the mean pooling, and each topic's
    pooling when both read per-topic poolings (``attention``). 0 when they point the same way."""
    width = min(student.shape[1], teacher.shape[1])
    cosine = torch.nn.functional.cosine_similarity(student[:, :width], teacher[:, :width], dim=-1)
    return (1.0 - cosine).mean()


def freeze_lower_layers(encoder: torch.nn.Module, train_layers: int) -> int:
    """Leave only the top ``train_layers`` transformer layers of ``encoder`` trainable.

    The embeddings, the layers below and any weights shared across layers (MPNet's relative
    position bias) are frozen, so autograd starts at the first trained layer: a frozen layer
    costs a plain forward pass. Returns how many layers stay trainable.
    """
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    if layers is None:
        kind = type(encoder).__name__
        raise TrainingError(f"train_layers needs a BERT-style encoder (encoder.layer); {kind} has none")
    if train_layers >= len(layers):
        return len(layers)
    trained = {id(p) for layer in layers[len(layers) - train_layers :] for p in layer.parameters()}
    for param in encoder.parameters():
        param.requires_grad = id(param) in trained
    return train_layers


def _optimizer(model: TransformerTopicStance, recipe: TransformerRecipe) -> torch.optim.Optimizer:
    """AdamW; no decay on biases and LayerNorm; heads at ``head_lr``, encoder at ``lr``."""
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    for name, param in model.net.named_parameters():
        if not param.requires_grad:
            continue
        lr = recipe.lr if name.startswith("encoder.") else recipe.head_lr
        decay = 0.0 if param.ndim < 2 or "LayerNorm" in name or "norm" in name.lower() else recipe.weight_decay
        groups.setdefault((lr, decay), []).append(param)
    return torch.optim.AdamW([{"params": p, "lr": lr, "weight_decay": wd} for (lr, wd), p in groups.items()])


def dev_evaluation(
    model: TransformerTopicStance, dev_records: Sequence[dict], dev: Gold, schema: LabelSchema, tolerance: float = 0.0
) -> tuple[list[float], dict[str, float]]:
    """Thresholds tuned on dev (``tolerance``: see ``tune_thresholds``), and the dev metrics
    (prefixed ``dev_``) they give."""
    scores, stance = model.predict_scores(dev.texts)
    thresholds = tune_thresholds(dev.topics, scores, tolerance=tolerance)
    result = evaluate(dev_records, scores, stance, thresholds, schema, with_artifacts=False)
    return thresholds, result.prefixed("dev")


def fine_tune(
    recipe: TransformerRecipe,
    design: str,
    base_folder: str,
    train: Gold,
    dev_records: Sequence[dict],
    schema: LabelSchema,
    show_progress: bool = False,
    weights: Sequence[float] | None = None,
    stance_targets: np.ndarray | None = None,
    feature_targets: np.ndarray | None = None,
    feature_weight: float = 0.0,
) -> FitOutcome:
    """Fine-tune one stance design; log the loss curve and per-epoch dev scores to the active run.

    ``weights``: one per training paragraph (None = 1 each, the plain loss); ``stance_targets``:
    stance distributions in place of the hard stances; ``feature_targets``: a teacher's
    features to match with weight ``feature_weight`` through a linear projection that is
    trained alongside and dropped afterwards (see ``_Examples`` and ``_backward``).
    """
    start = time.perf_counter()
    set_seed(recipe.seed)
    device = pick_device(recipe.device)
    dev = Gold.from_records(dev_records, schema)
    model = TransformerTopicStance.from_base(
        base_folder,
        schema.topic_ids,
        [t.proposition for t in schema.topics],
        len(schema.stance_values),
        design,
        dropout=recipe.dropout,
        max_length=recipe.max_length,
        batch_size=recipe.eval_batch_size,
    )
    if recipe.train_layers is not None:  # any encoder trains whole; only a partial fine-tune needs encoder.layer
        tracking.log_params({"trained_layers": freeze_lower_layers(model.net.encoder, recipe.train_layers)})
    model.net.to(device)
    examples = _Examples(model, train, weights, stance_targets, feature_targets)
    n_classes = len(schema.stance_values)
    balanced = recipe.class_weight == "balanced"
    topic_loss = torch.nn.BCEWithLogitsLoss(
        pos_weight=torch.tensor(topic_pos_weights(train.topics), dtype=torch.float32, device=device)
        if balanced
        else None
    )
    stance_loss = torch.nn.CrossEntropyLoss(
        weight=torch.tensor(stance_class_weights(train.stances, n_classes), dtype=torch.float32, device=device)
        if balanced
        else None,
        ignore_index=NO_STANCE,
    )
    steps_per_epoch = -(-len(train.texts) // recipe.batch_size)
    total = recipe.epochs * steps_per_epoch
    if recipe.max_steps is not None:
        total = min(total, recipe.max_steps)
    optimizer = _optimizer(model, recipe)
    projection = None
    if examples.feature_targets is not None and feature_weight > 0:
        projection = torch.nn.Linear(model.net.encoder.config.hidden_size, examples.feature_targets.shape[-1])
        projection.to(device)
        optimizer.add_param_group(
            {"params": [projection.weight], "lr": recipe.head_lr, "weight_decay": recipe.weight_decay}
        )
        optimizer.add_param_group({"params": [projection.bias], "lr": recipe.head_lr, "weight_decay": 0.0})
    trained = [p for p in model.net.parameters() if p.requires_grad]
    if projection is not None:
        trained += list(projection.parameters())
    from transformers import get_linear_schedule_with_warmup

    scheduler = get_linear_schedule_with_warmup(optimizer, int(recipe.warmup_ratio * total), total)
    rng = np.random.default_rng(recipe.seed)

    best: tuple[float, int, dict, list[float], dict[str, float]] | None = None
    step, epochs_run, since_best, running = 0, 0, 0, None
    bar = tqdm(total=total, desc=design, unit="step", disable=not show_progress, dynamic_ncols=True, mininterval=1.0)
    for epoch in range(1, recipe.epochs + 1):
        model.net.train()
        for idx in length_sorted_batches(examples.lengths(), recipe.batch_size, rng):
            if step >= total:
                break
            optimizer.zero_grad(set_to_none=True)
            value = _backward(
                model,
                examples,
                idx,
                topic_loss,
                stance_loss,
                recipe.stance_loss_weight,
                device,
                projection,
                feature_weight,
            )
            torch.nn.utils.clip_grad_norm_(trained, recipe.max_grad_norm)
            optimizer.step()
            scheduler.step()
            step += 1
            running = value if running is None else 0.9 * running + 0.1 * value
            bar.set_postfix(loss=f"{running:.3f}", epoch=f"{epoch}/{recipe.epochs}", refresh=False)
            bar.update()
            if step % 10 == 0 or step == total:
                tracking.log_metrics({"train_loss": running}, step=step)
        epochs_run = epoch
        thresholds, metrics = dev_evaluation(model, dev_records, dev, schema, recipe.threshold_tolerance)
        tracking.log_metrics(metrics, step=epoch)
        score = metrics[recipe.select_metric]
        message = f"{design} epoch {epoch}: {recipe.select_metric} {score:.4f}"
        if show_progress:
            bar.write(message)  # a log line would break the bar
        else:
            logger.info(message)
        if best is None or score > best[0]:
            state = {k: v.detach().to("cpu", copy=True) for k, v in model.net.state_dict().items()}
            best, since_best = (score, epoch, state, thresholds, metrics), 0
        else:
            since_best += 1
        if since_best >= recipe.patience or step >= total:
            break
    bar.close()
    assert best is not None
    _, best_epoch, state, thresholds, metrics = best
    model.net.load_state_dict(state)
    model.net.eval()
    return FitOutcome(design, model, thresholds, metrics, best_epoch, epochs_run, step, time.perf_counter() - start)


def fit_designs(
    recipe: TransformerRecipe,
    base_folder: str,
    train: Gold,
    dev_records: Sequence[dict],
    schema: LabelSchema,
    weights: Sequence[float] | None = None,
    show_progress: bool = False,
    stance_targets: np.ndarray | None = None,
    feature_targets: np.ndarray | None = None,
    feature_weight: float = 0.0,
) -> tuple[FitOutcome, list[FitOutcome]]:
    """Fine-tune every stance design of the recipe, each a nested run of the active run; the
    best by ``select_metric`` on dev (its model kept, the others' freed), and all outcomes."""
    outcomes: list[FitOutcome] = []
    for design in recipe.designs:
        with tracking.nested_run(f"stance design {design}", {"design": design}, recipe.family):
            outcome = fine_tune(
                recipe,
                design,
                base_folder,
                train,
                dev_records,
                schema,
                show_progress,
                weights,
                stance_targets,
                feature_targets,
                feature_weight,
            )
            tracking.log_metrics(
                {
                    **outcome.dev_metrics,
                    "best_epoch": outcome.best_epoch,
                    "epochs_run": outcome.epochs_run,
                    "steps": outcome.steps,
                    "train_seconds": outcome.seconds,
                }
            )
        outcomes.append(outcome)
    if recipe.select_metric not in outcomes[0].dev_metrics:
        raise TrainingError(f"select_metric {recipe.select_metric!r} is not a dev metric")
    chosen = max(outcomes, key=lambda o: o.dev_metrics[recipe.select_metric])
    for other in outcomes:
        if other is not chosen:
            other.model = None  # free its encoder before evaluating the winner
    assert chosen.model is not None
    return chosen, outcomes


def transformer_meta(recipe: TransformerRecipe, schema: LabelSchema, chosen: FitOutcome, **extra) -> ModelMeta:
    """What a fine-tuned model says about itself (family, thresholds, design, base model)."""
    return make_meta(
        recipe.family,
        schema,
        chosen.thresholds,
        weights=WEIGHTS,
        base_model=recipe.base_model,
        design=chosen.design,
        max_length=recipe.max_length,
        **extra,
    )


def train_transformer(
    recipe: TransformerRecipe,
    tracking_uri: str | None = None,
    promote: bool = False,
    show_progress: bool = False,
) -> TrainResult:
    """Fine-tune every stance design in the recipe, keep the best on dev, evaluate, log, register."""
    schema = load_schema()
    splits = read_splits(recipe.data)
    base_folder = str(resolve_base_model(recipe.base_model))
    train = Gold.from_records(splits.train, schema)
    with tracked_family_run(recipe, schema, splits, tracking_uri) as run:
        chosen, outcomes = fit_designs(recipe, base_folder, train, splits.dev, schema, show_progress=show_progress)
        return publish_designs(recipe, schema, splits, chosen, outcomes, promote, run.info.run_id)


def publish_designs(
    recipe: TransformerRecipe,
    schema: LabelSchema,
    splits: Splits,
    chosen: FitOutcome,
    outcomes: Sequence[FitOutcome],
    promote: bool,
    run_id: str,
    **meta_extra,
) -> TrainResult:
    """Inside the family's run: log the chosen design, calibrate its int8 ranges, then
    evaluate, save, register and (if asked) promote it; ``meta_extra`` goes into its meta."""
    assert chosen.model is not None
    tracking.log_params({"chosen.design": chosen.design, "chosen.best_epoch": chosen.best_epoch})
    tracking.log_thresholds(schema, chosen.thresholds)
    tracking.log_metrics({"train_seconds": sum(o.seconds for o in outcomes)})
    chosen.model.calibrate(calibration_texts(splits.train))  # input ranges for the int8 variant
    predictor = Predictor(chosen.model, transformer_meta(recipe, schema, chosen, **meta_extra), schema)
    result = evaluate_and_publish(predictor, splits, schema, recipe, promote, run_id)
    result.chosen = {"chosen.design": chosen.design, "chosen.best_epoch": chosen.best_epoch}
    result.candidates = {o.design: {**o.dev_metrics, "train_seconds": o.seconds} for o in outcomes}
    return result
