"""The shipped dataset: valid against the schema, and its splits reproducible by command."""

from labels import DEFAULT_DATASET, read_records
from labels.records import ARTICLES_FILE
from labels.splits import assign_splits
from labels.validate import validate_files


def test_shipped_dataset_has_no_errors():
    report = validate_files([DEFAULT_DATASET])
    assert report.records_checked > 0
    assert [str(p) for p in report.errors] == []


def test_shipped_splits_are_what_the_split_command_gives():
    records = read_records()
    assignment = assign_splits(records)
    assert all(r["split"] == assignment[r["article_id"]] for r in records)


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
