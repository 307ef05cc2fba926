"""Readers: every input kind, and bad input that is skipped with a one-line reason."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from inference.ingest import Article, SkippedInput, iter_articles, iter_segmented

FIXTURES = Path(__file__).with_name("fixtures")
STORY = "The allies agreed on Monday to hold the spring drills at full scale, the defence ministry said."


def _split(items):
    articles = [i for i in items if isinstance(i, Article)]
    skipped = [(Path(s.path).name, s.reason) for s in items if isinstance(s, SkippedInput)]
    return articles, skipped


def test_directory_is_walked_in_sorted_order_and_html_is_extracted():
    articles, skipped = _split(list(iter_articles([FIXTURES])))
    assert skipped == []
    names = [a.article_id for a in articles]
    assert names == sorted(names) and "page" in names and "combined_markdown" in names
    page = next(a for a in articles if a.article_id == "page")
    assert page.title == "Unification minister offers talks"
    assert page.date == "2024-05-14"
    assert page.url == "https://example.com/2024/05/unification-talks"
    assert "Most read" not in page.text and "Copyright" not in page.text


def test_glob_and_stdin(tmp_path):
    articles, _ = _split(list(iter_articles([str(FIXTURES / "head*.txt"), "-"], stdin=io.StringIO(STORY))))
    assert [a.article_id for a in articles] == ["headline_twice", "stdin"]
    assert articles[1].text == STORY


def test_tables_jsonl_csv_parquet(tmp_path):
    rows = [
        {
            "id": "r1",
            "text": STORY,
            "title": "Drills",
            "date": "2024-03-04",
            "source": "wire",
            "url": "https://x.org/1",
        },
        {"text": STORY.replace("Monday", "Tuesday")},
    ]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (tmp_path / "b.csv").write_text(f'id,text,source\nc1,"{STORY}",paper\n', encoding="utf-8")
    pq.write_table(pa.Table.from_pylist([{"text": STORY, "date": "2024-01-02"}]), tmp_path / "c.parquet")
    articles, skipped = _split(list(iter_articles([tmp_path])))
    assert skipped == []
    assert [(a.article_id, a.source, a.date) for a in articles] == [
        ("r1", "wire", "2024-03-04"),
        ("a-2", None, None),
        ("c1", "paper", None),
        ("c-1", None, "2024-01-02"),
    ]
    assert articles[0].title == "Drills" and articles[0].url == "https://x.org/1"


def test_bad_inputs_are_skipped_with_a_reason_and_the_batch_goes_on(tmp_path, caplog):
    (tmp_path / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 20)
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "latin1.txt").write_bytes(f"Caf\xe9 talk. {STORY}".encode("latin-1"))
    (tmp_path / "notext.csv").write_text("headline,body\nDrills,Something\n", encoding="utf-8")
    (tmp_path / "good.txt").write_text(STORY, encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        articles, skipped = _split(list(iter_articles([tmp_path, tmp_path / "missing.txt"])))
    assert sorted(a.article_id for a in articles) == ["good", "latin1"]
    assert skipped == [
        ("binary.txt", "binary file, not text"),
        ("empty.txt", "empty file"),
        ("notext.csv", "no 'text' column (columns: headline, body)"),
        ("missing.txt", "no such file or directory"),
    ]
    latin1 = next(a for a in articles if a.article_id == "latin1")
    assert latin1.text.startswith("Caf\ufffd talk.")
    assert any("latin1.txt: not valid UTF-8" in r.getMessage() for r in caplog.records)


def test_bad_rows_in_a_table_cost_only_those_rows(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(f'{{"text": "{STORY}"}}\nnot json\n{{"id": 3}}\n{{"text": "{STORY} Again."}}\n', encoding="utf-8")
    articles, skipped = _split(list(iter_articles([path])))
    assert len(articles) == 2
    assert skipped == [("rows.jsonl:2", "invalid JSON (Expecting value)"), ("rows.jsonl:3", "no text in this row")]


def test_unsupported_file_and_unmatched_glob(tmp_path):
    (tmp_path / "notes.docx").write_bytes(b"PK")
    _, skipped = _split(list(iter_articles([tmp_path / "notes.docx", str(tmp_path / "*.nothing")])))
    assert skipped == [("notes.docx", "unsupported file type '.docx'"), ("*.nothing", "no files match this pattern")]


def test_repeated_article_ids_are_made_unique(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "story.txt").write_text(STORY, encoding="utf-8")
    ids = [item.article.article_id for item in iter_segmented([tmp_path])]
    assert ids == ["story", "story-2"]
