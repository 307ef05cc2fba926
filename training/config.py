"""Recipes: frozen, validated configs per model family, read from YAML in ``experiments/``.

Unknown keys are errors; ``--set key=value`` overrides (dotted keys, YAML values) are applied
before validation, so an override is checked exactly like the file.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from inference.blend import grid_units
from inference.families import DEFAULT_BASE_MODEL, TRANSFORMER_DESIGNS
from inference.tfidf import STANCE_DESIGNS, TOPIC_MODELS
from labels.errors import UserError

T = TypeVar("T")


class RecipeError(UserError):
    """A recipe or an override is invalid; the message names the key."""


@dataclass(frozen=True)
class FeatureConfig:
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (2, 5)
    min_df: int = 2
    max_features: int | None = None
    sublinear_tf: bool = True


@dataclass(frozen=True)
class TopicConfig:
    model: str = "logreg"  # logreg | svm (calibrated)
    C: float = 4.0

    def __post_init__(self) -> None:
        if self.model not in TOPIC_MODELS:
            raise RecipeError(f"topics.model must be one of {', '.join(TOPIC_MODELS)}, got {self.model!r}")


@dataclass(frozen=True)
class StanceConfig:
    design: str = "per_topic"  # per_topic | crossed
    C: float = 2.0

    def __post_init__(self) -> None:
        if self.design not in STANCE_DESIGNS:
            raise RecipeError(f"stance.design must be one of {', '.join(STANCE_DESIGNS)}, got {self.design!r}")


@dataclass(frozen=True)
class BaselineRecipe:
    """The TF-IDF baseline: features, topic heads, stance model and the search over them."""

    family: str = "baseline"
    experiment: str = "allystance"
    data: str | None = None  # a dataset file; None = the shipped dataset
    seed: int = 13
    class_weight: str | None = "balanced"
    features: FeatureConfig = field(default_factory=FeatureConfig)
    topics: TopicConfig = field(default_factory=TopicConfig)
    stance: StanceConfig = field(default_factory=StanceConfig)
    # Grid searched as nested runs: dotted keys under topics.* are chosen by the dev topic
    # score, keys under stance.* by the dev stance score (the two heads train separately).
    search: dict[str, list] = field(default_factory=dict)
    # The champion is chosen by selection_score: team-dev combined F1, averaged with the
    # real-news dev combined F1 when the real-news folder is present (training.realnews).
    promote_metric: str = "selection_score"
    realnews: str | None = "auto"  # real-news folder to score on; auto = ../shared/realnews if present; null = off
    # Topic thresholds: per topic, the lowest dev threshold whose F1 is within this of the
    # best (0 = the F1-maximising one). See training.evaluate.tune_thresholds.
    threshold_tolerance: float = 0.0
    # The stream operating point saved with the model: per topic, the lowest threshold (at or
    # above the balanced one) whose team-dev topic precision reaches this (predict --operating-point stream).
    stream_precision: float = 0.95

    def __post_init__(self) -> None:
        _check_search(self)
        _check_threshold_tolerance(self)
        _check_stream_precision(self)


def _check_stream_precision(recipe: Any) -> None:
    # At 0.5 or below the stream point would be no stricter than F1 thresholds usually are.
    if not 0.5 < recipe.stream_precision <= 1.0:
        raise RecipeError(f"stream_precision must be in (0.5, 1], got {recipe.stream_precision}")


def _check_threshold_tolerance(recipe: Any) -> None:
    if not 0.0 <= recipe.threshold_tolerance <= 0.2:
        raise RecipeError(f"threshold_tolerance must be in [0, 0.2], got {recipe.threshold_tolerance}")


def _check_search(recipe: Any) -> None:
    for key, values in recipe.search.items():
        if not key.startswith(("topics.", "stance.")):
            raise RecipeError(f"search key {key!r} must be under topics. or stance.")
        _lookup_field(type(recipe), key)
        if not isinstance(values, list) or not values:
            raise RecipeError(f"search.{key} must be a non-empty list")


DEVICES = ("auto", "cpu", "cuda")
BLEND_WEIGHTS = ("search", "equal")  # BlendRecipe.weights


@dataclass(frozen=True)
class TransformerRecipe:
    """The fine-tuned encoder: topic head plus a topic-conditioned stance head.

    Every design in ``designs`` is trained as a nested run; the one with the best dev
    ``select_metric`` is evaluated, logged and registered. The shipped recipe of record is
    ``experiments/transformer.yaml`` (the ``attention`` design, 8 epochs, stance loss weight
    2, patience 2); the defaults here are the smallest sensible run, which the tests build on.
    """

    family: str = "transformer"
    experiment: str = "allystance"
    data: str | None = None
    seed: int = 13
    base_model: str = DEFAULT_BASE_MODEL  # a folder, or an installed package that ships one
    designs: list[str] = field(default_factory=lambda: ["per_topic"])  # add "attention" or "pair" to compare
    max_length: int = 128
    batch_size: int = 16
    eval_batch_size: int = 64
    epochs: int = 3
    max_steps: int | None = None  # stop each design after this many steps (smoke runs, timing)
    # Fine-tune only the top N encoder layers (and the heads); the embeddings and the layers
    # below stay as pretrained. null = every layer. A large encoder on a CPU needs it:
    # all-mpnet-base-v2 at batch 16 here: about 1.0 s a step with train_layers 4, 1.2 s with 6.
    train_layers: int | None = None
    lr: float = 5e-5  # encoder
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    dropout: float = 0.1
    stance_loss_weight: float = 1.0
    class_weight: str | None = "balanced"  # stance classes and topic positives; null for none
    patience: int = 1  # epochs without a better dev score before stopping
    device: str = "auto"  # auto = CUDA when present (bf16 autocast), else CPU
    select_metric: str = "dev_combined_f1"
    # The champion is chosen by selection_score: team-dev combined F1, averaged with the
    # real-news dev combined F1 when the real-news folder is present (training.realnews).
    promote_metric: str = "selection_score"
    realnews: str | None = "auto"  # real-news folder to score on; auto = ../shared/realnews if present; null = off
    # Topic thresholds: per topic, the lowest dev threshold whose F1 is within this of the
    # best (0 = the F1-maximising one). See training.evaluate.tune_thresholds.
    threshold_tolerance: float = 0.0
    # The stream operating point saved with the model: per topic, the lowest threshold (at or
    # above the balanced one) whose team-dev topic precision reaches this (predict --operating-point stream).
    stream_precision: float = 0.95

    def __post_init__(self) -> None:
        unknown = [d for d in self.designs if d not in TRANSFORMER_DESIGNS]
        if not self.designs or unknown:
            raise RecipeError(
                f"designs must be a non-empty list of {', '.join(TRANSFORMER_DESIGNS)}, got {self.designs!r}"
            )
        if self.device not in DEVICES:
            raise RecipeError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.class_weight not in (None, "balanced"):
            raise RecipeError(f"class_weight must be balanced or null, got {self.class_weight!r}")
        for name in ("max_length", "batch_size", "eval_batch_size", "epochs"):
            if getattr(self, name) < 1:
                raise RecipeError(f"{name} must be at least 1")
        if self.train_layers is not None and self.train_layers < 1:
            raise RecipeError("train_layers must be at least 1, or null for every layer")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise RecipeError("warmup_ratio must be in [0, 1)")
        _check_threshold_tolerance(self)
        _check_stream_precision(self)


@dataclass(frozen=True)
class DistillRecipe(TransformerRecipe):
    """A small student encoder fine-tuned on a teacher model's scores (``train distill``).

    Every field of the transformer recipe, plus the teacher and how its scores are mixed in:
    a labelled paragraph's targets are ``alpha`` x the teacher's + (1 - ``alpha``) x gold; an
    unlabelled one's are the teacher's alone. ``temperature`` softens the teacher's stance
    distributions (p ** (1 / T), renormalised) before they are mixed.
    """

    family: str = "distill"
    teacher: str | None = None  # any allystance model: a folder or an MLflow URI (models:/allystance/8)
    alpha: float = 0.5
    temperature: float = 2.0
    # Team-written unlabelled articles scored by the teacher and added to the training set:
    # "shipped" = labels/data/unlabelled.jsonl, or a file or folder of articles; null = none.
    unlabelled: str | None = "shipped"
    # Also match the teacher's representation: the vectors its heads read (mean pooling, and
    # each topic's pooling for the attention design), by cosine through a trained projection,
    # at this weight beside the topic and stance losses. 0 = off (scores only), for a teacher
    # without an encoder (the baseline, a blend). 1 is the measured default (docs/models/distill.md).
    feature_weight: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.feature_weight >= 0:  # also refuses nan
            raise RecipeError(f"feature_weight must be 0 or more, got {self.feature_weight}")
        if "pair" in self.designs:
            raise RecipeError("distillation needs one-pass stance designs (per_topic, attention); remove pair")
        if not 0.0 <= self.alpha <= 1.0:
            raise RecipeError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.temperature <= 0:
            raise RecipeError(f"temperature must be above 0, got {self.temperature}")


@dataclass(frozen=True)
class EmbedRecipe:
    """Frozen sentence embeddings of the base encoder with the baseline's linear heads."""

    family: str = "embed"
    experiment: str = "allystance"
    data: str | None = None
    seed: int = 13
    base_model: str = DEFAULT_BASE_MODEL
    max_length: int = 128
    batch_size: int = 64
    device: str = "auto"
    class_weight: str | None = "balanced"
    topics: TopicConfig = field(default_factory=TopicConfig)
    stance: StanceConfig = field(default_factory=StanceConfig)
    # As in the baseline: topic keys chosen by dev topic micro-F1, stance keys by dev stance macro-F1.
    search: dict[str, list] = field(default_factory=dict)
    # The champion is chosen by selection_score: team-dev combined F1, averaged with the
    # real-news dev combined F1 when the real-news folder is present (training.realnews).
    promote_metric: str = "selection_score"
    realnews: str | None = "auto"  # real-news folder to score on; auto = ../shared/realnews if present; null = off
    # Topic thresholds: per topic, the lowest dev threshold whose F1 is within this of the
    # best (0 = the F1-maximising one). See training.evaluate.tune_thresholds.
    threshold_tolerance: float = 0.0
    # The stream operating point saved with the model: per topic, the lowest threshold (at or
    # above the balanced one) whose team-dev topic precision reaches this (predict --operating-point stream).
    stream_precision: float = 0.95

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise RecipeError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        _check_search(self)
        _check_threshold_tolerance(self)
        _check_stream_precision(self)


@dataclass(frozen=True)
class BlendRecipe:
    """A weighted average of trained models' scores, weights chosen on dev."""

    family: str = "blend"
    experiment: str = "allystance"
    data: str | None = None
    members: list[str] = field(default_factory=list)  # model URIs or folders, two or more
    weight_step: float = 0.1  # grid of member weights searched on dev
    # search: the weights chosen on dev on the weight_step grid; equal: every member 1/n, no
    # search (the mean of several seeds of one recipe, to use as one member of another blend).
    weights: str = "search"
    # The champion is chosen by selection_score: team-dev combined F1, averaged with the
    # real-news dev combined F1 when the real-news folder is present (training.realnews).
    promote_metric: str = "selection_score"
    realnews: str | None = "auto"  # real-news folder to score on; auto = ../shared/realnews if present; null = off
    # Topic thresholds: per topic, the lowest dev threshold whose F1 is within this of the
    # best (0 = the F1-maximising one). See training.evaluate.tune_thresholds.
    threshold_tolerance: float = 0.0
    # The stream operating point saved with the model: per topic, the lowest threshold (at or
    # above the balanced one) whose team-dev topic precision reaches this (predict --operating-point stream).
    stream_precision: float = 0.95

    def __post_init__(self) -> None:
        try:
            grid_units(self.weight_step)
        except ValueError as exc:
            raise RecipeError(str(exc)) from None
        if self.weights not in BLEND_WEIGHTS:
            raise RecipeError(f"weights must be one of {', '.join(BLEND_WEIGHTS)}, got {self.weights!r}")
        _check_threshold_tolerance(self)
        _check_stream_precision(self)


@dataclass(frozen=True)
class RulesRecipe:
    """Keyword rules: no learning, tracked like a model so it shows up in comparisons."""

    family: str = "rules"
    experiment: str = "allystance"
    data: str | None = None
    # The champion is chosen by selection_score: team-dev combined F1, averaged with the
    # real-news dev combined F1 when the real-news folder is present (training.realnews).
    promote_metric: str = "selection_score"
    realnews: str | None = "auto"  # real-news folder to score on; auto = ../shared/realnews if present; null = off
    # The stream operating point saved with the model: per topic, the lowest threshold (at or
    # above the balanced one) whose team-dev topic precision reaches this (predict --operating-point stream).
    stream_precision: float = 0.95

    def __post_init__(self) -> None:
        _check_stream_precision(self)


ADAPT_BASE_FAMILIES = ("baseline", "transformer", "embed")
ENCODER_FAMILIES = ("transformer", "embed")


@dataclass(frozen=True)
class AdaptRecipe:
    """Adapting a family to a user's unlabelled corpus (``allystance train adapt``).

    Round 0 fits the base family on the team's training split as its own trainer would;
    each later round adds corpus paragraphs the previous round labelled confidently
    (``self_training``) or confidently left without a topic (``negatives``), weighted by
    ``pseudo_weight``. The confidence cut-offs are set on the team dev split. ``mlm``
    continues the encoder's masked-LM pretraining on the corpus first (encoder families);
    ``corpus_features`` fits the baseline's TF-IDF vocabulary and IDF on train + corpus.
    """

    family: str = "adapt"
    experiment: str = "allystance"
    data: str | None = None  # the team dataset (null = shipped); replaces the base recipe's data
    base_family: str = "baseline"  # baseline | transformer | embed: the family adapted
    base_recipe: str | None = None  # that family's recipe file; null = experiments/<base_family>.yaml
    base_set: list[str] = field(default_factory=list)  # key=value overrides of the base recipe
    self_training: bool = True
    negatives: bool = True
    mlm: bool = False
    corpus_features: bool = True
    rounds: int = 2
    pseudo_weight: float = 0.5
    topic_precision: float = 0.95
    negative_recall_loss: float = 0.01
    stance_accuracy: float = 0.9
    max_pseudo_share: float = 1.0
    mlm_epochs: int = 1
    mlm_lr: float = 5e-5
    mlm_batch_size: int = 16
    mlm_max_length: int = 128
    mlm_probability: float = 0.15
    min_paragraphs: int = 1000  # measured: 300 stream paragraphs gained nothing, 1,000 +0.010, 5,000 +0.041
    max_paragraphs: int = 100_000
    segment_tables: bool = False  # as predict --segment: split table texts into paragraphs
    keep_related: bool = False  # as predict --keep-related
    state_dir: str | None = None  # null = .allystance/adapt/<corpus digest>-<recipe hash> here
    promote_metric: str = "selection_score"
    realnews: str | None = "auto"  # real-news folder to score on; auto = ../shared/realnews if present; null = off
    stream_precision: float = 0.95  # the adapted model's stream operating point, as in the other recipes

    def __post_init__(self) -> None:
        _check_stream_precision(self)
        if self.base_family not in ADAPT_BASE_FAMILIES:
            raise RecipeError(f"base_family must be one of {', '.join(ADAPT_BASE_FAMILIES)}, got {self.base_family!r}")
        if self.mlm and self.base_family not in ENCODER_FAMILIES:
            raise RecipeError(
                f"mlm continues the pretraining of an encoder and the {self.base_family} family has none: "
                "use base_family transformer or embed, or --set mlm=false"
            )
        if not isinstance(self.base_set, list) or not all(isinstance(item, str) for item in self.base_set):
            raise RecipeError("base_set must be a list of key=value strings")
        for name in ("rounds", "mlm_epochs", "mlm_batch_size", "mlm_max_length", "min_paragraphs"):
            if getattr(self, name) < 1:
                raise RecipeError(f"{name} must be at least 1")
        if self.max_paragraphs < self.min_paragraphs:
            raise RecipeError("max_paragraphs must be at least min_paragraphs")
        for name in ("topic_precision", "stance_accuracy"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise RecipeError(f"{name} must be in (0, 1]")
        if not 0.0 <= self.negative_recall_loss < 1.0:
            raise RecipeError("negative_recall_loss must be in [0, 1)")
        if not 0.0 < self.mlm_probability < 1.0:
            raise RecipeError("mlm_probability must be in (0, 1)")
        for name in ("pseudo_weight", "max_pseudo_share", "mlm_lr"):
            if getattr(self, name) <= 0:
                raise RecipeError(f"{name} must be above 0")


def _lookup_field(cls: type, dotted: str) -> dataclasses.Field:
    current: Any = cls
    fld = None
    for part in dotted.split("."):
        fields = {f.name: f for f in dataclasses.fields(current)} if dataclasses.is_dataclass(current) else {}
        if part not in fields:
            raise RecipeError(f"unknown recipe key {dotted!r}")
        fld = fields[part]
        current = typing.get_type_hints(current)[part]
    assert fld is not None
    return fld


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check a YAML value against a field's type; build nested dataclasses."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, Mapping):
            raise RecipeError(f"{key} must be a mapping")
        return build(hint, value, prefix=f"{key}.")
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(hint):
            try:
                return _coerce(value, option, key)
            except RecipeError as exc:
                errors.append(str(exc))
        raise RecipeError(f"{key}: {value!r} does not fit {hint}")
    if hint is type(None):
        if value is not None:
            raise RecipeError(f"{key} must be null")
        return None
    if origin is tuple:
        if not isinstance(value, list | tuple) or len(value) != len(typing.get_args(hint)):
            raise RecipeError(f"{key} must be a list of {len(typing.get_args(hint))} values")
        return tuple(_coerce(v, a, key) for v, a in zip(value, typing.get_args(hint), strict=True))
    if origin in (dict, list):
        if not isinstance(value, dict if origin is dict else list):
            raise RecipeError(f"{key} must be a {origin.__name__}")
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and (not isinstance(value, hint) or (hint is int and isinstance(value, bool))):
        raise RecipeError(f"{key} must be {hint.__name__}, got {value!r}")
    return value


def build(cls: type[T], raw: Mapping[str, Any], prefix: str = "") -> T:
    """Build a recipe dataclass from a mapping; unknown keys and wrong types are errors."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise RecipeError(f"unknown recipe key(s): {', '.join(prefix + k for k in unknown)}")
    kwargs = {name: _coerce(value, hints[name], prefix + name) for name, value in raw.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise RecipeError(str(exc)) from None


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides (dotted keys, values parsed as YAML) to a raw recipe."""
    out = yaml.safe_load(yaml.safe_dump(raw)) or {}
    for item in overrides:
        if "=" not in item:
            raise RecipeError(f"override {item!r} must look like key=value")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        target = out
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise RecipeError(f"override {key!r}: {part} is not a mapping")
        try:
            target[parts[-1]] = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise RecipeError(f"override {item!r}: the value is not valid YAML ({problem}); quote strings") from None
    return out


def load_recipe(path: str | Path | None, cls: type[T], overrides: Iterable[str] = ()) -> T:
    """Read a YAML recipe (or the defaults when ``path`` is None) and apply overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise RecipeError(f"recipe {path} not found")
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(raw, dict):
            raise RecipeError(f"recipe {path} must be a YAML mapping")
    return build(cls, apply_overrides(raw, overrides))


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """A recipe as flat ``a.b: value`` pairs, for logging as run parameters."""
    out: dict[str, Any] = {}
    items = dataclasses.asdict(config).items() if dataclasses.is_dataclass(config) else config.items()
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and key != "search":
            out.update(flatten(value, prefix=f"{name}."))
        else:
            out[name] = value
    return out
