"""The one module that writes to MLflow: runs, parameters, metrics, plots and models.

The tracking URI comes from ``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else the
embedded default: ``sqlite:///mlflow.db`` in the working directory with artifacts in
``mlartifacts/`` beside it. Nothing is configured at import time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import subprocess
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature

from inference.model_io import BALANCED, PRETRAINED_FORMATS, TORCH, Predictor
from inference.pyfunc import MODEL_ARTIFACT, predictions_frame
from inference.store import use_store
from labels import LabelSchema
from training.config import flatten
from training.evaluate import Evaluation

logger = logging.getLogger(__name__)

REGISTERED_MODEL = "allystance"
CHAMPION = "champion"
ARTIFACTS_DIR = "mlartifacts"
# Found without importing it: the module registers the model with MLflow when it runs.
PYFUNC_ENTRY = importlib.util.find_spec("inference.pyfunc_entry").origin


def _artifact_location(uri: str) -> str | None:
    """For a sqlite store, artifacts go in ``mlartifacts/`` beside the database file."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / ARTIFACTS_DIR).resolve().as_uri()
    return None


def ensure_experiment(name: str, uri: str) -> str:
    client = MlflowClient()
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=_artifact_location(uri))


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def dataset_input(records: Sequence[dict], source: str, name: str = "paragraphs") -> mlflow.data.Dataset:
    """The dataset as an MLflow input; its digest identifies the exact data a run saw."""
    frame = pd.DataFrame(
        {
            "id": [r["id"] for r in records],
            "text": [r["text"] for r in records],
            "topics": [",".join(r["topics"]) for r in records],
            "stance": [",".join(f"{k}:{v}" for k, v in sorted(r["stance"].items())) for r in records],
            "split": [r.get("split") or "" for r in records],
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "source can be interpreted in multiple ways"
        return mlflow.data.from_pandas(frame, source=source, name=name)


@contextlib.contextmanager
def tracked_run(
    *,
    family: str,
    recipe: Any,
    schema: LabelSchema,
    experiment: str,
    tracking_uri: str | None = None,
    run_name: str | None = None,
    dataset: mlflow.data.Dataset | None = None,
    resume_run_id: str | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """A top-level run with the recipe, schema, git commit, dataset and family logged.

    ``resume_run_id``: continue that run instead (nothing is logged again) when this store
    has it; otherwise a new run starts. Compare the yielded run's id to tell which happened.
    """
    uri = use_store(tracking_uri)
    if resume_run_id is not None and _run_exists(resume_run_id):
        with mlflow.start_run(run_id=resume_run_id) as run:
            yield run
        return
    experiment_id = ensure_experiment(experiment, uri)
    tags = {
        "family": family,
        "schema_version": schema.version,
        "schema_hash": schema.hash,
        "git_commit": git_commit(),
    }
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags) as run:
        mlflow.log_params({k: _param(v) for k, v in flatten(recipe).items()})
        if dataset is not None:
            mlflow.log_input(dataset, context="training")
            mlflow.set_tag("dataset_digest", dataset.digest)
        yield run


@contextlib.contextmanager
def resumed_run(run_id: str, tracking_uri: str | None = None) -> Iterator[mlflow.ActiveRun | None]:
    """The run ``run_id`` continued (None when this store does not have it)."""
    use_store(tracking_uri)
    if not _run_exists(run_id):
        yield None
        return
    with mlflow.start_run(run_id=run_id) as run:
        yield run


def _run_exists(run_id: str) -> bool:
    try:
        MlflowClient().get_run(run_id)
    except mlflow.exceptions.MlflowException:
        return False
    return True


@contextlib.contextmanager
def nested_run(name: str, params: dict[str, Any], family: str) -> Iterator[mlflow.ActiveRun]:
    parent = mlflow.active_run()
    experiment_id = parent.info.experiment_id if parent else None
    with mlflow.start_run(
        run_name=name, nested=True, experiment_id=experiment_id, tags={"family": family, "search": "true"}
    ) as run:
        mlflow.log_params({k: _param(v) for k, v in params.items()})
        yield run


def log_params(params: dict[str, Any]) -> None:
    """Parameters of the active run (values as text, cut to MLflow's 500 characters)."""
    mlflow.log_params({k: _param(v) for k, v in params.items()})


def set_tags(tags: dict[str, Any]) -> None:
    """Tags of the active run."""
    mlflow.set_tags({k: str(v) for k, v in tags.items()})


def log_dict(data: dict, name: str) -> None:
    """A JSON artifact of the active run."""
    mlflow.log_dict(data, name)


def log_thresholds(schema: LabelSchema, thresholds: Sequence[float], name: str = "thresholds.json") -> None:
    """The topic thresholds, by topic id, as a JSON artifact of the active run."""
    mlflow.log_dict({"thresholds": dict(zip(schema.topic_ids, thresholds, strict=True))}, name)


def _param(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 500 else text[:497] + "..."


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    """Log metrics to the active run; ``step`` for curves (loss per step, dev score per epoch)."""
    mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)


def log_evaluation(evaluation: Evaluation, split: str) -> None:
    """Metrics with the split as prefix, confusion plots and the worst-errors table."""
    log_metrics(evaluation.prefixed(split))
    for name, figure in evaluation.figures.items():
        mlflow.log_figure(figure, f"eval/{split}_{name}")
        plt.close(figure)  # pyplot keeps every figure open until closed
    if not evaluation.errors.empty:
        mlflow.log_table(evaluation.errors, f"eval/{split}_worst_errors.json")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{split}_worst_errors.csv"
            evaluation.errors.to_csv(path, index=False)
            mlflow.log_artifact(str(path), "eval")


def log_model(model_dir: str | Path, predictor: Predictor, example_texts: Sequence[str], family: str) -> str:
    """Log the model folder as a pyfunc model, register it, tag the version; return its version."""
    example = pd.DataFrame({"text": list(example_texts)[:3]})
    signature = infer_signature(example, predictions_frame(predictor.predict(example["text"].tolist())))
    with warnings.catch_warnings():
        # MLflow nags about type hints on predict and about cloudpickle; neither applies here.
        warnings.simplefilter("ignore", UserWarning)
        info = _log_pyfunc(model_dir, signature, example, family, _requirements(predictor))
    version = str(info.registered_model_version)
    client = MlflowClient()
    client.set_model_version_tag(REGISTERED_MODEL, version, "family", family)
    mlflow.set_tag("model_version", version)
    return version


def _requirements(predictor: Predictor) -> list[str]:
    base = ["allystance", "mlflow==3.17.2", "scikit-learn", "pandas"]
    if predictor.meta.weights in PRETRAINED_FORMATS:
        base += ["torch>=2.13,<2.15", "transformers>=4.46,<6", "safetensors"]
    return base


def _log_pyfunc(model_dir: str | Path, signature, example: pd.DataFrame, family: str, requirements: list[str]):
    return mlflow.pyfunc.log_model(
        name="model",
        # Models from code: MLflow stores this small file instead of a pickled object.
        python_model=PYFUNC_ENTRY,
        artifacts={MODEL_ARTIFACT: str(model_dir)},
        signature=signature,
        input_example=example,
        registered_model_name=REGISTERED_MODEL,
        pip_requirements=requirements,
        # Declared so that load_model(uri, model_config={"runtime": "onnx", "operating_point":
        # "stream"}) reaches load_context (MLflow drops keys a model did not declare);
        # "quantized": True is the older spelling of "runtime": "torch-int8".
        model_config={"quantized": False, "runtime": TORCH, "operating_point": BALANCED},
        tags={"family": family},
    )


def promote_if_better(version: str, metric: str, value: float) -> tuple[bool, float | None]:
    """Give ``version`` the champion alias if it beats the current champion on ``metric``.

    Returns whether it was promoted and the old champion's value (None when there was none).
    """
    client = MlflowClient()
    current = None
    try:
        champion = client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION)
        current = client.get_run(champion.run_id).data.metrics.get(metric)
    except mlflow.exceptions.MlflowException:
        champion = None
    if champion is not None and champion.version == version:
        return True, current
    if current is not None and value <= current:
        return False, current
    client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, version)
    mlflow.set_tag("promoted", "true")
    return True, current


def run_of_model(uri: str) -> str | None:
    """The id of the run that logged the model at ``uri`` (``models:/name/N``,
    ``models:/name@alias``, ``runs:/ID/...``); None for a model folder, which has no run."""
    uri = str(uri)
    if uri.startswith("runs:/"):
        return uri.removeprefix("runs:/").split("/", 1)[0]
    if not uri.startswith("models:/"):
        return None
    client = MlflowClient()
    name_and_ref = uri.removeprefix("models:/")
    if "@" in name_and_ref:
        name, alias = name_and_ref.split("@", 1)
        return client.get_model_version_by_alias(name, alias).run_id
    name, _, version = name_and_ref.partition("/")
    return client.get_model_version(name, version).run_id


def log_behaviour(
    run_id: str, metrics: dict[str, float], summary: dict, failures: Path, folder: str = "behaviour"
) -> None:
    """Add a behaviour-suite result to a model's run: the failure rates as metrics, the suite's
    digest as a tag, and the failing cases and the summary as artifacts under ``folder``."""
    with mlflow.start_run(run_id=run_id):
        log_metrics(metrics)
        mlflow.set_tag(f"{folder}_suite_digest", summary["suite_digest"])
        mlflow.log_dict(summary, f"{folder}/summary.json")
        mlflow.log_artifact(str(failures), folder)
