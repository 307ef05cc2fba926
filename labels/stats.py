"""Counts that describe a labelled dataset: splits, topics, (topic, stance) cells, lengths."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from labels.records import SPLITS
from labels.schema import LabelSchema, load_schema
from labels.validate import words

PERCENTILES = (5, 25, 50, 75, 95)


@dataclass(frozen=True)
class Table:
    """A small table: a title, column headers and rows of cells."""

    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]


def _percentile(sorted_values: Sequence[int], q: float) -> int:
    """Nearest-rank percentile (no interpolation, so the value is a real length)."""
    if not sorted_values:
        return 0
    rank = max(1, round(q / 100 * len(sorted_values) + 0.5 - 1e-9))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def dataset_stats(records: Sequence[dict], schema: LabelSchema | None = None) -> list[Table]:
    """Tables of counts for ``allystance data stats``; splits are columns where present."""
    schema = schema or load_schema()
    splits = [s for s in SPLITS if any(r.get("split") == s for r in records)]
    columns = [*splits, "all"]

    def by_split(predicate) -> tuple[int, ...]:
        counts = [sum(1 for r in records if r.get("split") == s and predicate(r)) for s in splits]
        return (*counts, sum(1 for r in records if predicate(r)))

    tables = [
        Table(
            "Records",
            ("", *columns),
            (
                ("paragraphs", *by_split(lambda r: True)),
                (
                    "articles",
                    *(len({r.get("article_id") for r in records if r.get("split") == s}) for s in splits),
                    len({r.get("article_id") for r in records}),
                ),
                ("no topic", *by_split(lambda r: not r.get("topics"))),
                ("2+ topics", *by_split(lambda r: len(r.get("topics") or []) >= 2)),
            ),
        )
    ]

    topic_rows = [(t, *by_split(lambda r, t=t: t in (r.get("topics") or []))) for t in schema.topic_ids]
    tables.append(Table("Paragraphs per topic", ("topic", *columns), tuple(topic_rows)))

    cell_rows = [
        (t, s, *by_split(lambda r, t=t, s=s: (r.get("stance") or {}).get(t) == s))
        for t in schema.topic_ids
        for s in schema.stance_values
    ]
    tables.append(Table("Paragraphs per (topic, stance)", ("topic", "stance", *columns), tuple(cell_rows)))

    n_topics = Counter(len(r.get("topics") or []) for r in records)
    tables.append(
        Table(
            "Topics per paragraph",
            ("topics", "paragraphs", "share"),
            tuple((k, n_topics[k], f"{n_topics[k] / max(1, len(records)):.1%}") for k in sorted(n_topics)),
        )
    )

    lengths = sorted(len(words(r.get("text") or "")) for r in records)
    tables.append(
        Table(
            "Text length in words",
            (*tuple(f"p{q}" for q in PERCENTILES), "min", "max", "mean"),
            (
                (
                    *(_percentile(lengths, q) for q in PERCENTILES),
                    lengths[0] if lengths else 0,
                    lengths[-1] if lengths else 0,
                    f"{sum(lengths) / max(1, len(lengths)):.1f}",
                ),
            ),
        )
    )
    return tables
