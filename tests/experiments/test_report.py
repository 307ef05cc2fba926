"""``allystance report`` on a small hand-made prediction file with dates and sources."""

import csv
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from experiments.cli import app
from experiments.coverage import ReportError, read_predictions, stance_mix, topic_share, write_report
from labels import load_schema

runner = CliRunner()
SCHEMA = load_schema()


def row(i: int, date: str | None, source: str | None, stance: dict[str, str]) -> dict:
    """One prediction row in the shape ``allystance predict`` writes."""
    out = {
        "id": f"r{i}",
        "article_id": f"a{i // 2}",
        "position": i % 2,
        "text": f"paragraph {i}",
        "topics": list(stance),
        "stance": stance,
        "topic_scores": {t: (0.9 if t in stance else 0.1) for t in SCHEMA.topic_ids},
        "stance_scores": {t: {"favor": 0.5, "against": 0.3, "neutral": 0.2} for t in stance},
        "model": "models:/allystance/1",
        "title": "A title",
        "url": None,
    }
    if date is not None:
        out["date"] = date
    if source is not None:
        out["source"] = source
    return out


# January and March 2024 (February has none: it must still appear, with 0), two sources,
# one row without a date, one with an unreadable date, one without a source.
ROWS = [
    row(0, "2024-01-03", "wire", {"cost_sharing": "favor"}),
    row(1, "2024-01-03", "wire", {"cost_sharing": "against", "exercises": "against"}),
    row(2, "2024-01-20", "daily", {}),
    row(3, "2024-01-31", "daily", {"exercises": "neutral"}),
    row(4, "2024-03-01", "wire", {"exercises": "against"}),
    row(5, "2024-03-02", "daily", {"opcon": "favor", "inter_korean": "favor"}),
    row(6, "2024-03-09", None, {"inter_korean": "against"}),
    row(7, None, "wire", {"cost_sharing": "neutral"}),
    row(8, "March 2024", "daily", {"cost_sharing": "favor"}),
]


def independent_counts(rows: list[dict], key) -> dict[tuple[str, str], tuple[int, int]]:
    """(group, topic) -> (paragraphs in the group, paragraphs on the topic), by plain loops."""
    out: dict[tuple[str, str], tuple[int, int]] = {}
    groups = sorted({key(r) for r in rows if key(r) is not None})
    for g in groups:
        members = [r for r in rows if key(r) == g]
        for t in SCHEMA.topic_ids:
            out[(g, t)] = (len(members), sum(t in r["topics"] for r in members))
    return out


def month(r: dict) -> str | None:
    d = r.get("date")
    return d[:7] if d and d[:4].isdigit() else None


def source(r: dict) -> str:
    return r.get("source") or "(no source)"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def predictions(tmp_path) -> Path:
    return write_jsonl(tmp_path / "predictions.jsonl", ROWS)


def test_report_writes_pngs_csvs_and_one_self_contained_page(predictions, tmp_path):
    out = tmp_path / "report"
    result = runner.invoke(app, ["report", str(predictions), "--by", "month", "--by", "source", "-o", str(out)])
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    for grouping in ("month", "source"):
        for kind in ("topic_share", "stance"):
            assert f"{kind}_by_{grouping}.png" in names and f"{kind}_by_{grouping}.csv" in names
            assert (out / f"{kind}_by_{grouping}.png").read_bytes()[:4] == b"\x89PNG"
    page = (out / "report.html").read_text()
    assert page.count("<img src='data:image/png;base64,") == 4 and "src='http" not in page
    assert all(topic.name in page for topic in SCHEMA.topics)  # names from the schema, in the tables
    # Undated rows are counted and said, not dropped silently.
    assert "Not shown over time: 1 paragraph without a date, 1 with an unreadable date." in page
    assert "without a date" in result.output


def test_topic_share_csv_equals_counts_made_independently(predictions, tmp_path):
    write_report(predictions, tmp_path, ["month", "source"])
    for grouping, key in (("month", month), ("source", source)):
        frame = pd.read_csv(tmp_path / f"topic_share_by_{grouping}.csv", keep_default_na=False)
        expected = independent_counts(ROWS, key)
        if grouping == "month":  # the empty month in between is listed with zero paragraphs
            expected.update({("2024-02", t): (0, 0) for t in SCHEMA.topic_ids})
        got = {(str(r[grouping]), r["topic"]): (r["paragraphs"], r["paragraphs_on_topic"]) for _, r in frame.iterrows()}
        assert got == expected
        assert list(dict.fromkeys(frame["topic"])) == list(SCHEMA.topic_ids)  # schema order, not data order
    months = pd.read_csv(tmp_path / "topic_share_by_month.csv")
    jan = months[(months["month"] == "2024-01") & (months["topic"] == "exercises")].iloc[0]
    assert jan["paragraphs"] == 4 and jan["paragraphs_on_topic"] == 2 and jan["share"] == pytest.approx(0.5)


def test_stance_csv_equals_counts_made_independently(predictions, tmp_path):
    write_report(predictions, tmp_path, ["month", "source"])
    for grouping, key in (("month", month), ("source", source)):
        with (tmp_path / f"stance_by_{grouping}.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
        for r in rows:
            members = [p for p in ROWS if key(p) == r[grouping]]
            for value in SCHEMA.stance_values:
                expected = sum(p["stance"].get(r["topic"]) == value for p in members)
                assert int(r[value]) == expected, (grouping, r[grouping], r["topic"], value)
            assert int(r["paragraphs_on_topic"]) == sum(r["topic"] in p["topics"] for p in members)


def test_csv_and_parquet_inputs_give_the_same_counts(tmp_path):
    frame = pd.DataFrame(ROWS)
    as_csv = frame.copy()
    for column in ("topics", "stance", "topic_scores", "stance_scores"):
        as_csv[column] = as_csv[column].map(json.dumps)
    as_csv.to_csv(tmp_path / "p.csv", index=False)
    frame.to_parquet(tmp_path / "p.parquet")
    reference = read_predictions(write_jsonl(tmp_path / "p.jsonl", ROWS))
    for name in ("p.csv", "p.parquet"):
        other = read_predictions(tmp_path / name)
        assert (other.undated, other.bad_dates) == (reference.undated, reference.bad_dates) == (1, 1)
        for by in ("month", "source"):
            pd.testing.assert_frame_equal(topic_share(other, by), topic_share(reference, by))
            pd.testing.assert_frame_equal(stance_mix(other, by), stance_mix(reference, by))


def test_week_report_and_a_file_without_dates(tmp_path):
    write_report(write_jsonl(tmp_path / "p.jsonl", ROWS), tmp_path / "w", ["week"])
    weeks = pd.read_csv(tmp_path / "w" / "topic_share_by_week.csv")
    assert weeks["week"].iloc[0] == "2024-01-01"  # weeks are labelled by their Monday
    assert weeks.drop_duplicates("week")["paragraphs"].sum() == 7  # every row with a readable date
    undated = [{k: v for k, v in r.items() if k != "date"} for r in ROWS]
    report = write_report(write_jsonl(tmp_path / "u.jsonl", undated), tmp_path / "u", ["month", "source"])
    assert report.skipped == ["by month: no paragraph has a date"]
    assert (tmp_path / "u" / "topic_share_by_source.csv").exists()
    assert not (tmp_path / "u" / "topic_share_by_month.csv").exists()


@pytest.mark.parametrize(
    "bad,message",
    [
        ({"topics": ["tariffs"], "stance": {"tariffs": "favor"}}, "unknown topic(s) ['tariffs']"),
        ({"topics": ["opcon"], "stance": {}}, "stance keys [] differ from topics ['opcon']"),
        ({"topics": ["opcon"], "stance": {"opcon": "support"}}, "unknown stance value(s) ['support']"),
    ],
)
def test_rows_that_do_not_fit_the_schema_are_one_line_errors(tmp_path, bad, message):
    path = write_jsonl(tmp_path / "p.jsonl", [ROWS[0], {**ROWS[1], **bad}])
    with pytest.raises(ReportError, match=r"p\.jsonl:2: ") as info:
        read_predictions(path)
    assert message in str(info.value)
    result = runner.invoke(app, ["report", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1


def test_year_grouping_counts_and_fills_empty_years(tmp_path):
    rows = [
        row(0, "2019-03-01", "a", {"exercises": "favor"}),
        row(1, "2019-11-30", "a", {}),
        row(2, "2021-06-15", "b", {"exercises": "against", "opcon": "neutral"}),
    ]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    share = topic_share(read_predictions(path), "year")
    exercises = share[share["topic"] == "exercises"].set_index("year")
    assert list(exercises.index) == ["2019", "2020", "2021"]
    assert exercises.loc["2019", "paragraphs"] == 2 and exercises.loc["2019", "paragraphs_on_topic"] == 1
    assert exercises.loc["2020", "paragraphs"] == 0
    assert exercises.loc["2021", "paragraphs_on_topic"] == 1
