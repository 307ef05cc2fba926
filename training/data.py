"""Loading labelled records as a ``datasets.DatasetDict`` with schema-encoded labels."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import datasets

from labels import LabelSchema, load_schema, read_records
from labels.records import SPLITS

FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "article_id": datasets.Value("string"),
        "text": datasets.Value("string"),
        "topics": datasets.Sequence(datasets.Value("string")),
        # One entry per schema topic, in schema order.
        "topic_labels": datasets.Sequence(datasets.Value("int8")),
        # Stance class index per schema topic; labels.NO_STANCE where the topic is absent.
        "stance_labels": datasets.Sequence(datasets.Value("int8")),
    }
)


def load_splits(
    paths: str | Path | Iterable[str | Path] | None = None, schema: LabelSchema | None = None
) -> datasets.DatasetDict:
    """Read JSON-lines records (the shipped dataset by default) into one Dataset per split.

    Labels are encoded with the schema, never inferred from the data, so the columns of
    ``topic_labels`` and the classes of ``stance_labels`` are the same in every run.
    """
    schema = schema or load_schema()
    rows: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for r in read_records(paths):
        split = r.get("split") or "train"
        rows.setdefault(split, []).append(
            {
                "id": r["id"],
                "article_id": r.get("article_id") or r["id"],
                "text": r["text"],
                "topics": list(r["topics"]),
                "topic_labels": schema.encode_topics(r["topics"]),
                "stance_labels": schema.encode_stances(r["stance"]),
            }
        )
    return datasets.DatasetDict(
        {split: datasets.Dataset.from_list(items, features=FEATURES) for split, items in rows.items() if items}
    )
