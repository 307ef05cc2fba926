"""Article ingestion: raw scraped articles in, clean classifiable paragraphs out.

``iter_articles`` reads inputs lazily, ``segment_article`` turns one article into kept
paragraphs and dropped blocks with reasons, ``import_articles`` writes unlabelled records.
Shared by ``allystance data import`` and prediction.
"""

from inference.ingest.pipeline import ImportReport, import_articles, iter_segmented
from inference.ingest.readers import iter_articles, read_file
from inference.ingest.records import (
    REASONS,
    Article,
    DroppedBlock,
    Paragraph,
    SegmentedArticle,
    SkippedInput,
)
from inference.ingest.segmenter import SegmentSettings, flatten, segment_article, segment_text

__all__ = [
    "REASONS",
    "Article",
    "DroppedBlock",
    "ImportReport",
    "Paragraph",
    "SegmentSettings",
    "SegmentedArticle",
    "SkippedInput",
    "flatten",
    "import_articles",
    "iter_articles",
    "iter_segmented",
    "read_file",
    "segment_article",
    "segment_text",
]
