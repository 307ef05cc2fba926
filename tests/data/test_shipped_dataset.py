"""The shipped dataset: valid against the schema, and its splits reproducible by command."""

from labels import DEFAULT_DATASET, read_records
from labels.records import ARTICLES_FILE
from labels.splits import SplitSettings, assign_splits, balance_problems
from labels.validate import validate_files


def test_shipped_dataset_has_no_errors():
    report = validate_files([DEFAULT_DATASET])
    assert report.records_checked > 0
    assert [str(p) for p in report.errors] == []


def test_shipped_splits_are_what_the_split_command_gives():
    records = read_records()
    assignment = assign_splits(records)
    assert all(r["split"] == assignment[r["article_id"]] for r in records)
    assert balance_problems(records, SplitSettings()) == []


def test_articles_file_matches_the_paragraphs():
    paragraphs = {r["id"]: r for r in read_records()}
    articles = read_records(ARTICLES_FILE)
    listed = [pid for a in articles for pid in a["paragraph_ids"]]
    assert sorted(listed) == sorted(paragraphs)
    for article in articles:
        for pid in article["paragraph_ids"]:
            record = paragraphs[pid]
            assert record["article_id"] == article["article_id"]
            assert record["split"] == article["split"]
            assert record["text"] in article["text"]


def test_unlabelled_articles_are_new_articles_that_segment_into_paragraphs():
    """The distillation transfer set: team-written articles apart from the labelled ones,
    which the teacher sees as ``predict`` would (segmented into paragraphs)."""
    import json

    from labels.records import UNLABELLED_FILE
    from training.distill import read_unlabelled

    articles = [json.loads(line) for line in UNLABELLED_FILE.read_text(encoding="utf-8").splitlines()]
    ids = [a["article_id"] for a in articles]
    assert len(ids) == len(set(ids)) and not set(ids) & {a["article_id"] for a in read_records(ARTICLES_FILE)}
    paragraphs = read_unlabelled(UNLABELLED_FILE)
    assert len(paragraphs) >= 2000  # furniture (datelines, "(END)", editor's notes) dropped
    labelled = {r["text"] for r in read_records()}
    assert not labelled & set(paragraphs)


def test_dataset_v1_minimums_hold():
    """The v1 floor from the dataset issue: size, balance and dev/test coverage."""
    from collections import Counter

    records = read_records()
    assert len(records) >= 2000
    assert len({r["article_id"] for r in records}) >= 300
    topics = Counter(t for r in records for t in r["topics"])
    assert min(topics.values()) >= 350 and len(topics) == 4
    cells = Counter((t, s) for r in records for t, s in r["stance"].items())
    assert len(cells) == 12 and min(cells.values()) >= 80
    assert sum(1 for r in records if not r["topics"]) >= 500
    assert sum(1 for r in records if len(r["topics"]) >= 2) >= 250
    for split in ("dev", "test"):
        split_cells = Counter((t, s) for r in records if r["split"] == split for t, s in r["stance"].items())
        assert len(split_cells) == 12 and min(split_cells.values()) >= 12, split
