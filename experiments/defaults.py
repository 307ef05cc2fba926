"""Defaults the CLI shows in its help, kept apart from the modules that use them so that
``allystance --help`` does not import MLflow, pandas or matplotlib."""

from pathlib import Path

DEFAULT_EXPERIMENT = "allystance"
DEFAULT_METRIC = "dev_combined_f1"
DEFAULT_TOP = 10
GROUPINGS = ("year", "month", "week", "source")
DEFAULT_GROUPINGS = ("month", "source")
MIN_COUNT = 20  # periods or sources with fewer paragraphs than this are marked as thin
# The team's behavioural suite: one YAML file per capability (see its README.md).
BEHAVIOUR_SUITE = str(Path(__file__).resolve().parent / "behaviour")
BEHAVIOUR_FAILURES = "behaviour_failures.jsonl"
