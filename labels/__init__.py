"""Labels: the schema (what a label means), the dataset and the checks on it.

This package imports no ML library, so that every other package can depend on it.
"""

from labels.records import DATA_DIR, DEFAULT_DATASET, DatasetError, read_records
from labels.schema import NO_STANCE, LabelSchema, SchemaError, Topic, load_schema

__all__ = [
    "DATA_DIR",
    "DEFAULT_DATASET",
    "NO_STANCE",
    "DatasetError",
    "LabelSchema",
    "SchemaError",
    "Topic",
    "load_schema",
    "read_records",
]
