"""The models the behavioural tests run against: a baseline trained once per test session on
the full shipped data (in a temporary store), plus any ``--model-uri`` given to pytest."""

from __future__ import annotations

import os

import pytest

SHIPPED_BASELINE = "shipped-baseline"
# Read before any test runs: MLflow's set_tracking_uri also sets this variable, so the
# temporary stores of other fixtures would otherwise hide the user's.
USER_STORE = os.environ.get("MLFLOW_TRACKING_URI")


@pytest.fixture(scope="session")
def shipped_baseline(tmp_path_factory):
    """The baseline recipe on the shipped dataset, trained once, reloaded from its store.

    The recipe's grid search is left out (defaults only): it would add half a minute to
    every test run and change nothing these tests look at.
    """
    from inference.model_io import load_predictor
    from training.baseline import train_baseline
    from training.config import BaselineRecipe, load_recipe
    from training.tracking import use_store

    uri = f"sqlite:///{tmp_path_factory.mktemp('behaviour-store') / 'mlflow.db'}"
    recipe = load_recipe("experiments/baseline.yaml", BaselineRecipe, ["search={}"])
    result = train_baseline(recipe, uri)
    use_store(uri)
    return load_predictor(f"models:/allystance/{result.model_version}")


def pytest_generate_tests(metafunc) -> None:
    if "predictor" in metafunc.fixturenames:
        uris = [SHIPPED_BASELINE, *metafunc.config.getoption("--model-uri")]
        metafunc.parametrize("predictor", uris, indirect=True, scope="session")


@pytest.fixture(scope="session")
def predictor(request):
    """The model under test (parametrised over the shipped baseline and every --model-uri)."""
    if request.param == SHIPPED_BASELINE:
        return request.getfixturevalue("shipped_baseline")
    from inference.model_io import load_predictor
    from training.tracking import use_store

    use_store(USER_STORE)  # $MLFLOW_TRACKING_URI, else ./mlflow.db, as the CLI does
    return load_predictor(request.param)
