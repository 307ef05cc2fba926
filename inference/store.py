"""Where models are read from: the MLflow tracking store, resolved the same way everywhere.

The URI comes from an option, else ``MLFLOW_TRACKING_URI``, else the embedded default:
``sqlite:///mlflow.db`` in the working directory (artifacts in ``mlartifacts/`` beside it).
Training writes through ``training.tracking``, which uses these same functions.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DB = "mlflow.db"


def resolve_tracking_uri(option: str | None = None) -> str:
    """The tracking URI to use: the option, the environment, or the embedded default."""
    if option:
        return option
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{Path.cwd() / DEFAULT_DB}"


def use_store(uri: str | None = None) -> str:
    """Point MLflow (tracking and registry) at a store and return its URI."""
    import mlflow  # imported here: resolving a URI needs no MLflow

    uri = resolve_tracking_uri(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri
