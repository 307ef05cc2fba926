"""Reading tracked runs back from MLflow, for comparison. Writing stays in ``training.tracking``.

Works against any tracking URI (the embedded sqlite store or a server): the URI is resolved
exactly as training resolves it, and nothing global is set.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from mlflow import MlflowClient
from mlflow.entities import Run

from experiments.defaults import DEFAULT_EXPERIMENT
from inference.store import resolve_tracking_uri
from labels.errors import UserError
from training.tracking import REGISTERED_MODEL


class RunsError(UserError):
    """No experiment or no usable run in the store; the message says what to run."""


@dataclass(frozen=True)
class RunSummary:
    """What comparison needs of one top-level run."""

    run_id: str
    name: str
    family: str
    status: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    start_ms: int | None = None
    end_ms: int | None = None

    @property
    def seconds(self) -> float | None:
        """Training time: the run's end time minus its start time."""
        if self.start_ms is None or self.end_ms is None:
            return None
        return (self.end_ms - self.start_ms) / 1000

    @property
    def dataset_digest(self) -> str:
        return self.tags.get("dataset_digest", "")

    @property
    def is_search(self) -> bool:
        """A nested grid-search run (tagged ``search=true``) rather than a trained model."""
        return self.tags.get("search") == "true" or "mlflow.parentRunId" in self.tags

    @property
    def model_uri(self) -> str:
        """The registered version when the run registered one, else the model in the run."""
        version = self.tags.get("model_version")
        if version:
            return f"models:/{REGISTERED_MODEL}/{version}"
        return f"runs:/{self.run_id}/model"


def summarize(run: Run) -> RunSummary:
    tags = dict(run.data.tags)
    return RunSummary(
        run_id=run.info.run_id,
        name=run.info.run_name or "",
        family=tags.get("family", ""),
        status=run.info.status,
        params=dict(run.data.params),
        metrics=dict(run.data.metrics),
        tags=tags,
        start_ms=run.info.start_time,
        end_ms=run.info.end_time,
    )


def _all_runs(client: MlflowClient, experiment_id: str) -> Iterator[Run]:
    token = None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def read_runs(
    experiment: str = DEFAULT_EXPERIMENT,
    tracking_uri: str | None = None,
    include_search: bool = False,
    finished_only: bool = True,
) -> list[RunSummary]:
    """The runs of ``experiment``, oldest first; nested search runs only when asked."""
    uri = resolve_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise RunsError(f"no experiment {experiment!r} in {uri}; train a model first (allystance train baseline)")
    runs = [summarize(r) for r in _all_runs(client, found.experiment_id)]
    runs = [r for r in runs if (include_search or not r.is_search) and (not finished_only or r.status == "FINISHED")]
    return sorted(runs, key=lambda r: r.start_ms or 0)
