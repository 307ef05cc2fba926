"""The saved-model format and the ``Predictor`` that every model family is used through.

A saved model is a folder holding ``allystance.json`` (family, label schema and its hash,
thresholds and operating points, preprocessing, base model) and the family's weights, named by
``ModelMeta.weights``: ``model.joblib`` for the scikit-learn families, ``transformer`` or
``embed`` for a ``save_pretrained`` encoder and tokenizer plus heads (see
``inference.transformer`` and ``inference.embed``), ``blend`` for member model folders and
their weights (``inference.blend``). Loading checks the schema hash against
the installed schema and refuses a mismatch. ``load_predictor`` also takes MLflow model URIs.

Runtimes. A model with an encoder (transformer, embed, and a blend's encoder members) runs it
on the runtime chosen at load time (``load_model(folder, runtime=...)``, ``--runtime``):
``torch`` (fp32, the default; CPU or GPU), ``torch-int8`` (torch dynamic int8, CPU; the older
``quantized=True`` / ``--quantized``), ``onnx`` and ``onnx-int8`` (ONNX Runtime, CPU, with
the ``onnx`` extra; see ``inference.onnx_encoder``). Only the encoder changes: tokenising,
batching and the heads are the same on every runtime, and a model is always saved as fp32 torch.

Operating points. A model carries more than one set of per-topic thresholds, named:
``balanced`` is ``ModelMeta.thresholds``, tuned for F1 on the team's dev split (the default,
and what every figure is measured at unless it says otherwise); ``stream`` is kept in
``ModelMeta.operating_points`` with the team-dev precision it was chosen for
(``training.runs.stream_operating_point``): higher thresholds for a feed where most
paragraphs are not about the alliance, so fewer topic labels and more of them right. A
``Predictor`` decides at one point (``Predictor.at``, ``load_predictor(operating_point=)``);
the scores do not depend on it. Models saved before operating points existed have only
``balanced``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import joblib
import numpy as np

from labels import LabelSchema, load_schema
from labels.errors import UserError, first_line
from labels.schema import schema_from_dict

logger = logging.getLogger(__name__)

META_FILE = "allystance.json"
JOBLIB_FILE = "model.joblib"
FORMAT_VERSION = 1
# Weights formats written by a model's own save_pretrained/from_pretrained: module, class.
PRETRAINED_FORMATS = {
    "transformer": ("inference.transformer", "TransformerTopicStance"),
    "embed": ("inference.embed", "EmbedTopicStance"),
    "blend": ("inference.blend", "BlendedTopicStance"),
}


class ModelLoadError(UserError):
    """A model cannot be loaded; the message says what to do."""


BALANCED = "balanced"  # ModelMeta.thresholds: per topic, the best F1 on team dev
STREAM = "stream"  # higher thresholds for a team-dev precision target (ModelMeta.operating_points)
OPERATING_POINTS = (BALANCED, STREAM)

TORCH = "torch"  # fp32 torch: the model as trained and saved
TORCH_INT8 = "torch-int8"  # torch dynamic int8 Linear layers (inference.encoder.quantize_dynamic)
ONNX = "onnx"  # the encoder exported to ONNX, run by ONNX Runtime (inference.onnx_encoder)
ONNX_INT8 = "onnx-int8"  # the same export, quantized by onnxruntime.quantization.quantize_dynamic
RUNTIMES = (TORCH, TORCH_INT8, ONNX, ONNX_INT8)
INT8_RUNTIMES = (TORCH_INT8, ONNX_INT8)
ONNX_RUNTIMES = (ONNX, ONNX_INT8)
# How a message names the variant a runtime loads (a family without an encoder has none).
RUNTIME_VARIANTS = {TORCH_INT8: "quantized", ONNX: "ONNX", ONNX_INT8: "ONNX int8"}


class ScoringModel(Protocol):
    def predict_scores(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Topic probabilities (n x T) and stance probabilities for every topic (n x T x S)."""
        ...


@dataclass(frozen=True)
class ModelMeta:
    """What a saved model says about itself."""

    family: str
    schema: dict
    schema_hash: str
    thresholds: list[float]
    preprocessing: str = "inference.preprocess.normalize_text"
    base_model: str | None = None
    weights: str = JOBLIB_FILE
    format_version: int = FORMAT_VERSION
    created: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    extra: dict = field(default_factory=dict)
    # Thresholds other than the balanced ones, by name: {"stream": {"thresholds": [...],
    # "min_precision": 0.95, "chosen_on": "team dev"}}; empty in models saved before them.
    operating_points: dict[str, dict] = field(default_factory=dict)


def check_operating_point(name: str) -> None:
    """Refuse a name that is not an operating point, before anything is loaded."""
    if name not in OPERATING_POINTS:
        raise ModelLoadError(f"unknown operating point {name!r}; use {' or '.join(OPERATING_POINTS)}")


def operating_thresholds(meta: ModelMeta, name: str, where: str) -> list[float]:
    """The per-topic thresholds of operating point ``name`` of the model at ``where``."""
    check_operating_point(name)
    if name == BALANCED:
        return list(meta.thresholds)
    if name not in meta.operating_points:
        why = (
            f"it has {', '.join([BALANCED, *meta.operating_points])}"
            if meta.operating_points
            else "saved before operating points existed"
        )
        raise ModelLoadError(
            f"{where} has no {name!r} operating point ({why}); retrain it, or use --operating-point {BALANCED}"
        )
    return list(meta.operating_points[name]["thresholds"])


def choose_runtime(runtime: str = TORCH, quantized: bool = False) -> str:
    """The runtime to load with, checked: ``quantized=True`` (the older flag) is ``torch-int8``."""
    if runtime not in RUNTIMES:
        raise ModelLoadError(f"unknown runtime {runtime!r}; use {', '.join(RUNTIMES)}")
    if quantized and runtime not in (TORCH, TORCH_INT8):
        raise ModelLoadError(f"--quantized is --runtime {TORCH_INT8}; give --runtime {runtime} alone")
    return TORCH_INT8 if quantized else runtime


def require_onnxruntime(runtime: str) -> None:
    """Refuse an ONNX runtime in one line when onnxruntime or onnx (the ``onnx`` extra) is missing."""
    try:
        import onnx  # noqa: F401  (the export and the int8 quantizer read and write ONNX files)
        import onnxruntime  # noqa: F401
    except ImportError:
        raise ModelLoadError(f"--runtime {runtime} needs ONNX Runtime: pip install 'allystance[onnx]'") from None


@dataclass(frozen=True)
class Prediction:
    """One paragraph's labels: topics over threshold, a stance for each, and all scores."""

    topics: list[str]
    stance: dict[str, str]
    topic_scores: dict[str, float]
    stance_scores: dict[str, dict[str, float]]


class Predictor:
    """A loaded model plus its thresholds and schema: texts in, labels out.

    It decides at one operating point (``balanced`` unless told otherwise); ``at`` gives the
    same model deciding at another.
    """

    def __init__(
        self,
        model: ScoringModel,
        meta: ModelMeta,
        schema: LabelSchema,
        source: str = "",
        operating_point: str = BALANCED,
    ):
        self.model = model
        self.meta = meta
        self.schema = schema
        self.source = source
        self.operating_point = operating_point
        where = source or f"this {meta.family} model"
        self.thresholds = np.asarray(operating_thresholds(meta, operating_point, where), dtype=float)

    def at(self, operating_point: str) -> Predictor:
        """The same model (weights shared, nothing reloaded) deciding at ``operating_point``;
        a name the model does not have is a ``ModelLoadError`` that says what to do."""
        return Predictor(self.model, self.meta, self.schema, self.source, operating_point)

    def score(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        if len(texts) == 0:
            n_topics, n_stances = len(self.schema.topics), len(self.schema.stance_values)
            return np.zeros((0, n_topics)), np.zeros((0, n_topics, n_stances))
        return self.model.predict_scores(list(texts))

    def decide(self, topic_scores: np.ndarray, stance_proba: np.ndarray) -> list[Prediction]:
        """Scores to labels: topics at or over their threshold, the likeliest stance for each."""
        topic_ids, stances = self.schema.topic_ids, self.schema.stance_values
        out = []
        for scores, proba in zip(topic_scores, stance_proba, strict=True):
            chosen = [t for t, s, th in zip(topic_ids, scores, self.thresholds, strict=True) if s >= th]
            index = {t: i for i, t in enumerate(topic_ids)}
            out.append(
                Prediction(
                    topics=chosen,
                    stance={t: stances[int(np.argmax(proba[index[t]]))] for t in chosen},
                    topic_scores={t: round(float(s), 6) for t, s in zip(topic_ids, scores, strict=True)},
                    stance_scores={
                        t: {s: round(float(p), 6) for s, p in zip(stances, proba[index[t]], strict=True)}
                        for t in chosen
                    },
                )
            )
        return out

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        return self.decide(*self.score(texts))

    def explain(self, texts: Sequence[str], predictions: Sequence[Prediction] | None = None) -> list[dict]:
        """The evidence behind each paragraph's labels (see ``inference.explain``): per
        predicted topic, the phrases that drove the topic, its stance, and the runner-up stance.

        ``predictions`` are this model's predictions of ``texts`` when already made.
        """
        from inference.explain import evidence

        attribute = getattr(self.model, "word_attributions", None)
        if attribute is None:
            raise UserError(f"the {self.meta.family} family cannot explain its labels; run without --explain")
        texts = list(texts)
        predictions = list(predictions) if predictions is not None else self.predict(texts)
        topic_ids, stances = self.schema.topic_ids, self.schema.stance_values
        labelled = [i for i, p in enumerate(predictions) if p.topics]  # most news paragraphs have none
        out: list[dict] = [{} for _ in texts]
        for i, attribution in zip(labelled, attribute([texts[i] for i in labelled]) if labelled else [], strict=True):
            p = predictions[i]
            out[i] = evidence(attribution, p.topics, p.stance, p.stance_scores, topic_ids, stances)
        return out


def save_model(folder: str | Path, model: ScoringModel, meta: ModelMeta) -> Path:
    """Write a model folder: ``allystance.json`` plus the weights."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if meta.weights == JOBLIB_FILE:
        joblib.dump(model, folder / JOBLIB_FILE)
    elif meta.weights in PRETRAINED_FORMATS:
        model.save_pretrained(folder)  # type: ignore[attr-defined]
    else:
        raise ValueError(f"unknown weights format {meta.weights!r}")
    (folder / META_FILE).write_text(json.dumps(asdict(meta), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return folder


def read_meta(folder: str | Path) -> ModelMeta:
    path = Path(folder) / META_FILE
    if not path.is_file():
        raise ModelLoadError(f"{folder} is not an allystance model folder (no {META_FILE})")
    raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if raw.get("format_version") != FORMAT_VERSION:
        raise ModelLoadError(
            f"{folder}: model format {raw.get('format_version')} is not supported (expected {FORMAT_VERSION})"
        )
    unknown = sorted(set(raw) - {f.name for f in fields(ModelMeta)})
    if unknown:  # written by a newer allystance; a missing key takes its default (older models)
        raise ModelLoadError(f"{folder} was saved by a newer allystance ({', '.join(unknown)}); upgrade allystance")
    return ModelMeta(**raw)


def check_schema(meta: ModelMeta, schema: LabelSchema, where: str) -> None:
    if meta.schema_hash != schema.hash:
        saved = schema_from_dict(meta.schema)
        raise ModelLoadError(
            f"{where} was trained with label schema {saved.version} (hash {meta.schema_hash}) but the installed "
            f"schema is {schema.version} (hash {schema.hash}); retrain it with 'allystance train' "
            "or install the allystance version it was trained with"
        )


def load_model(
    folder: str | Path, schema: LabelSchema | None = None, quantized: bool = False, runtime: str = TORCH
) -> Predictor:
    """Load a model folder written by :func:`save_model`, refusing a schema mismatch.

    ``runtime`` runs the encoder of a transformer or embed model, or of a blend's encoder
    members, on torch fp32 (``torch``), torch int8, ONNX Runtime fp32 or int8 (see the
    module docstring); ``quantized=True`` is ``runtime="torch-int8"``. A family without an
    encoder is refused on any runtime but ``torch``.
    """
    runtime = choose_runtime(runtime, quantized)
    schema = schema or load_schema()
    meta = read_meta(folder)
    check_schema(meta, schema, str(folder))
    if meta.weights == JOBLIB_FILE:
        if runtime != TORCH:
            raise ModelLoadError(
                f"{folder}: the {meta.family} family has no {RUNTIME_VARIANTS[runtime]} variant (it has no encoder); "
                f"load it with --runtime {TORCH}"
            )
        model = joblib.load(Path(folder) / JOBLIB_FILE)
    elif meta.weights in PRETRAINED_FORMATS:
        import importlib  # torch and transformers load only for the families that need them

        if runtime in ONNX_RUNTIMES:
            require_onnxruntime(runtime)  # before the weights load, not after
        module, name = PRETRAINED_FORMATS[meta.weights]
        model = getattr(importlib.import_module(module), name).from_pretrained(folder, runtime=runtime)
    else:
        raise ModelLoadError(f"{folder}: unknown weights format {meta.weights!r}; upgrade allystance to load it")
    return Predictor(model, meta, schema, source=str(folder))


def _pyfunc_model_folder(uri: str) -> Path:
    import mlflow  # imported here: local folders load without touching MLflow

    path = Path(uri)
    try:
        root = path if (path / "MLmodel").is_file() else Path(mlflow.artifacts.download_artifacts(uri))
    except mlflow.exceptions.MlflowException as exc:
        raise ModelLoadError(
            f"cannot load model {uri}: {first_line(exc)}; train one with 'allystance train baseline --promote'"
        ) from None
    folder = root / "artifacts" / "model"
    if not (folder / META_FILE).is_file():
        raise ModelLoadError(f"{uri} is an MLflow model but not an allystance one (no artifacts/model/{META_FILE})")
    return folder


def model_folder(uri: str | Path) -> Path:
    """The allystance model folder behind a folder path or an MLflow model URI (fetched from
    the store when it is a URI); a one-line ``ModelLoadError`` when there is none."""
    path = Path(str(uri))
    if (path / META_FILE).is_file():
        return path
    if (path / "MLmodel").is_file() or ":/" in str(uri):
        return _pyfunc_model_folder(str(uri))
    raise ModelLoadError(f"no model at {uri}: give a model folder or an MLflow URI such as models:/allystance@champion")


def load_predictor(
    uri: str | Path,
    schema: LabelSchema | None = None,
    quantized: bool = False,
    operating_point: str = BALANCED,
    runtime: str = TORCH,
) -> Predictor:
    """Load a model from a local folder or any MLflow model URI (``runs:/``, ``models:/``),
    deciding at ``operating_point`` (``balanced`` or ``stream``) and running its encoder on
    ``runtime`` (``torch``, ``torch-int8``, ``onnx`` or ``onnx-int8``; see the module docstring).

    ``quantized=True`` is ``runtime="torch-int8"``, the dynamic int8 variant.
    """
    check_operating_point(operating_point)  # a typo fails before a model is fetched
    runtime = choose_runtime(runtime, quantized)
    path = Path(str(uri))
    if (path / META_FILE).is_file():
        return load_model(path, schema, runtime=runtime).at(operating_point)
    if (path / "MLmodel").is_file() or ":/" in str(uri):
        # An allystance pyfunc model keeps its model folder as the artifact "model"; fetching
        # just that is faster than mlflow.pyfunc.load_model and loads the same weights.
        folder = _pyfunc_model_folder(str(uri))
        try:
            predictor = load_model(folder, schema, runtime=runtime)
        except ModelLoadError as exc:
            raise ModelLoadError(f"{uri}: {exc}") from None
        predictor.source = str(uri)
        return predictor.at(operating_point)
    raise ModelLoadError(f"no model at {uri}: give a model folder or an MLflow URI such as models:/allystance@champion")


def agreement(
    reference: tuple[np.ndarray, np.ndarray], other: tuple[np.ndarray, np.ndarray], thresholds: Sequence[float]
) -> dict[str, float]:
    """How often two scorings of the same texts give the same labels.

    ``topic_agreement``: share of (paragraph, topic) decisions that match;
    ``stance_agreement``: share of stance labels that match, over the pairs where the
    reference model predicts the topic (the labels a user sees); where it predicts none,
    over all pairs. Used to check a quantized or ONNX runtime against the fp32 torch model.
    """
    (topics_a, stance_a), (topics_b, stance_b) = reference, other
    th = np.asarray(thresholds)[None, :]
    decided_a, decided_b = topics_a >= th, topics_b >= th
    labels_a, labels_b = np.argmax(stance_a, axis=2), np.argmax(stance_b, axis=2)
    mask = decided_a if decided_a.any() else np.ones_like(decided_a)
    return {
        "topic_agreement": float(np.mean(decided_a == decided_b)) if decided_a.size else 1.0,
        "stance_agreement": float(np.mean(labels_a[mask] == labels_b[mask])) if mask.any() else 1.0,
        "stance_agreement_all_pairs": float(np.mean(labels_a == labels_b)) if labels_a.size else 1.0,
        "max_topic_score_diff": float(np.max(np.abs(topics_a - topics_b))) if topics_a.size else 0.0,
    }
