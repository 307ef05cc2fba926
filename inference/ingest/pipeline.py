"""From inputs to unlabelled paragraph records: the function behind ``allystance data import``."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from inference.ingest.readers import iter_articles
from inference.ingest.records import REASONS, DroppedBlock, SegmentedArticle, SkippedInput
from inference.ingest.segmenter import SegmentSettings, segment_article
from labels.stats import Table

logger = logging.getLogger(__name__)


@dataclass
class ImportReport:
    """Counts of one import: what was kept, what was dropped and why, what was skipped."""

    articles: int = 0
    paragraphs: int = 0
    related_paragraphs: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    skipped: list[SkippedInput] = field(default_factory=list)
    seconds: float = 0.0

    def tables(self) -> list[Table]:
        """The summary printed by ``allystance data import``."""
        totals = [
            ("articles", self.articles),
            ("paragraphs kept", self.paragraphs),
            ("blocks dropped", sum(self.dropped.values())),
            ("inputs skipped", len(self.skipped)),
        ]
        if self.related_paragraphs:
            totals.insert(2, ("of which related", self.related_paragraphs))
        tables = [Table("Import", ("", "count"), tuple(totals))]
        if self.dropped:
            order = {r: i for i, r in enumerate(REASONS)}
            rows = tuple((r, n) for r, n in sorted(self.dropped.items(), key=lambda kv: order.get(kv[0], 99)))
            tables.append(Table("Dropped", ("reason", "blocks"), rows))
        if self.skipped:
            tables.append(Table("Skipped", ("input", "reason"), tuple((s.path, s.reason) for s in self.skipped)))
        return tables


def iter_segmented(
    inputs: Iterable[str | Path], settings: SegmentSettings | None = None, stdin: TextIO | None = None
) -> Iterator[SegmentedArticle | SkippedInput]:
    """Segmented articles from the inputs, lazily, with ``SkippedInput`` for what could not be read.

    Article ids are made unique by adding ``-2``, ``-3``... to repeats (two ``a.txt`` in
    different folders), so that paragraph ids are unique across one stream.
    """
    settings = settings or SegmentSettings()
    seen_ids: Counter[str] = Counter()
    for item in iter_articles(inputs, stdin=stdin):
        if isinstance(item, SkippedInput):
            yield item
            continue
        seen_ids[item.article_id] += 1
        if seen_ids[item.article_id] > 1:
            item = replace(item, article_id=f"{item.article_id}-{seen_ids[item.article_id]}")
        yield segment_article(item, settings)


def import_articles(
    inputs: Iterable[str | Path],
    output: str | Path,
    settings: SegmentSettings | None = None,
    default_source: str = "unknown",
    on_dropped: Callable[[DroppedBlock], None] | None = None,
    on_article: Callable[[SegmentedArticle], None] | None = None,
    stdin: TextIO | None = None,
) -> ImportReport:
    """Segment every article in ``inputs`` and write unlabelled paragraph records to ``output``.

    Records are written as they come (JSON lines, written to a temporary file renamed at the
    end). Unreadable inputs are logged as one-line warnings and listed in the report; the rest
    of the batch goes on. ``on_dropped`` sees every dropped block (for ``--explain``) and
    ``on_article`` every segmented article (for a progress bar).
    """
    output = Path(output)
    report = ImportReport()
    started = time.perf_counter()
    tmp = output.with_name(output.name + ".tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            for item in iter_segmented(inputs, settings, stdin=stdin):
                if isinstance(item, SkippedInput):
                    logger.warning("skipped %s", item)
                    report.skipped.append(item)
                    continue
                report.articles += 1
                for paragraph in item.paragraphs:
                    fh.write(json.dumps(paragraph.to_record(default_source), ensure_ascii=False) + "\n")
                    report.paragraphs += 1
                    report.related_paragraphs += paragraph.related
                for block in item.dropped:
                    report.dropped[block.reason] += 1
                    if on_dropped:
                        on_dropped(block)
                if on_article:
                    on_article(item)
        tmp.replace(output)
    finally:
        tmp.unlink(missing_ok=True)
    report.seconds = time.perf_counter() - started
    return report
