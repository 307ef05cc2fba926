"""The MLflow pyfunc wrapper: the same Predictor behind ``mlflow.pyfunc.load_model``.

``predict`` takes a DataFrame with a ``text`` column (or a list of texts) and returns one
row per text: ``topics`` (list of topic ids), and ``stance``, ``topic_scores`` and
``stance_scores`` as JSON objects in strings, so that serving and Spark UDFs get plain
column types.
"""

from __future__ import annotations

import json
from typing import Any

import mlflow.pyfunc
import pandas as pd

from inference.model_io import BALANCED, TORCH, Prediction, load_model

MODEL_ARTIFACT = "model"
OUTPUT_COLUMNS = ("topics", "stance", "topic_scores", "stance_scores")


def texts_from_input(model_input: Any) -> list[str]:
    if isinstance(model_input, pd.DataFrame):
        if "text" not in model_input.columns:
            raise ValueError(f"input needs a 'text' column; got {list(model_input.columns)}")
        return ["" if pd.isna(t) else str(t) for t in model_input["text"]]
    if isinstance(model_input, pd.Series):
        return [str(t) for t in model_input]
    if isinstance(model_input, str):
        return [model_input]
    return [str(t) for t in model_input]


def predictions_frame(predictions: list[Prediction]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "topics": [p.topics for p in predictions],
            "stance": [json.dumps(p.stance) for p in predictions],
            "topic_scores": [json.dumps(p.topic_scores) for p in predictions],
            "stance_scores": [json.dumps(p.stance_scores) for p in predictions],
        },
        columns=list(OUTPUT_COLUMNS),
    )


class AllystancePyfunc(mlflow.pyfunc.PythonModel):
    """Loads the model folder logged as the ``model`` artifact.

    ``mlflow.pyfunc.load_model(uri, model_config={"quantized": True})`` loads the dynamic
    int8 variant of a transformer family; ``model_config={"runtime": "onnx-int8"}`` picks any
    runtime (``inference.model_io``); ``model_config={"operating_point": "stream"}`` decides
    at the stream operating point (models logged before a key existed do not declare it, so
    MLflow drops it with a warning and they load as before: ``runtime`` came after
    ``quantized``, ``operating_point`` after both).
    """

    # MLflow would wrap predict to validate inputs by its type hints (and warn that there are
    # none); this wrapper takes DataFrames, Series and lists on purpose, so skip that.
    _skip_type_hint_validation = True

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        config = getattr(context, "model_config", None) or {}
        predictor = load_model(
            context.artifacts[MODEL_ARTIFACT],
            quantized=bool(config.get("quantized")),
            runtime=config.get("runtime") or TORCH,
        )
        self.predictor = predictor.at(config.get("operating_point") or BALANCED)

    def predict(self, context, model_input, params=None) -> pd.DataFrame:
        return predictions_frame(self.predictor.predict(texts_from_input(model_input)))
