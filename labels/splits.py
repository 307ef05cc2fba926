"""Reproducible train/dev/test splits by article, balanced over (topic, stance) cells.

Whole articles go to one split, so that no split sees another's context. Articles are
visited in a seeded random order and each goes to the split that most lacks what it
carries: paragraphs (toward the target fractions) and (topic, stance) cells (toward each
split's share of every cell). The same records and seed always give the same splits.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from labels.errors import UserError
from labels.records import SPLITS


@dataclass(frozen=True)
class SplitSettings:
    seed: int = 13
    dev: float = 0.15
    test: float = 0.15

    @property
    def fractions(self) -> dict[str, float]:
        return {"train": 1.0 - self.dev - self.test, "dev": self.dev, "test": self.test}


def _cells(record: dict) -> list[str]:
    stance = record.get("stance") or {}
    cells = [f"{t}:{stance.get(t)}" for t in record.get("topics") or []]
    return cells or ["none"]


def _need(
    split: str, cells: Counter, fraction: float, n_total: int, have_n: Counter, total: Counter, have: dict
) -> float:
    """How far below its share a split is, on paragraphs and on the cells an article carries."""
    gap = (fraction * n_total - have_n[split]) / (fraction * n_total)
    cell_gap = sum(k * (fraction * total[c] - have[split][c]) / (fraction * total[c]) for c, k in cells.items()) / sum(
        cells.values()
    )
    return gap + cell_gap


def assign_splits(records: Sequence[dict], settings: SplitSettings | None = None) -> dict[str, str]:
    """Map every ``article_id`` to a split. Records without one count as their own article."""
    settings = settings or SplitSettings()
    fractions = settings.fractions
    if not all(0 < f < 1 for f in fractions.values()):
        raise UserError(f"split fractions must each lie in (0, 1), got {fractions}")

    articles: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        articles[r.get("article_id") or r["id"]].append(r)
    order = sorted(articles)
    random.Random(settings.seed).shuffle(order)

    total_cells = Counter(c for r in records for c in _cells(r))
    n_total = len(records)
    have_cells = {s: Counter() for s in SPLITS}
    have_n = Counter()
    assignment: dict[str, str] = {}
    for article in order:
        paragraphs = articles[article]
        cells = Counter(c for r in paragraphs for c in _cells(r))

        split = max(SPLITS, key=lambda s: _need(s, cells, fractions[s], n_total, have_n, total_cells, have_cells))
        assignment[article] = split
        have_n[split] += len(paragraphs)
        have_cells[split].update(cells)
    return assignment


def apply_splits(records: Sequence[dict], settings: SplitSettings | None = None) -> list[dict]:
    """Return copies of the records with ``split`` set by :func:`assign_splits`."""
    assignment = assign_splits(records, settings)
    return [{**r, "split": assignment[r.get("article_id") or r["id"]]} for r in records]
