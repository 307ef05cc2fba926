import json
from pathlib import Path

import pytest

from labels.validate import ValidationSettings, validate_files
from tests.conftest import write_jsonl


def test_valid_fixture_has_no_errors_or_warnings(dataset_file: Path):
    report = validate_files([dataset_file])
    assert report.records_checked == 6
    assert report.errors == []
    # "Photo: file" is two words: reported as very short, which is only a warning.
    assert [p.message for p in report.warnings] == ["very short text (2 words)"]


def _replace(records, index, **changes):
    out = [dict(r) for r in records]
    out[index].update(changes)
    return out


def _drop(records, index, field):
    out = [dict(r) for r in records]
    del out[index][field]
    return out


NEW_TEXT = (
    "A forum in Busan heard that the allies had not yet fixed a date for the next round, "
    "which officials expect before winter."
)

# (description, how to plant it, line of the error, substring of the message)
PLANTED = [
    ("missing field", lambda r: _drop(r, 2, "stance"), 3, "missing field 'stance'"),
    ("mistyped field", lambda r: _replace(r, 1, topics="cost_sharing"), 2, "field 'topics' should be list"),
    ("mistyped date", lambda r: _replace(r, 0, date="19/11/2019"), 1, "is not YYYY-MM-DD"),
    (
        "unknown topic",
        lambda r: _replace(r, 0, topics=["tariffs"], stance={"tariffs": "favor"}),
        1,
        "unknown topic 'tariffs'",
    ),
    ("unknown stance", lambda r: _replace(r, 0, stance={"cost_sharing": "pro"}), 1, "unknown stance 'pro'"),
    (
        "stance keys != topics",
        lambda r: _replace(r, 4, stance={"opcon": "neutral"}),
        5,
        "stance keys must equal topics",
    ),
    ("duplicate id", lambda r: _replace(r, 3, id="a1-p0"), 4, "duplicate id 'a1-p0' (first at"),
    ("empty text", lambda r: _replace(r, 5, text="   \n "), 6, "empty or whitespace-only text"),
    ("duplicate text", lambda r: [*r, {**r[0], "id": "x", "position": 9}], 7, "duplicate text of"),
    (
        "near-duplicate",
        lambda r: [
            *r,
            {**r[1], "id": "x", "position": 9, "text": r[1]["text"].replace("told the foreign", "warned the foreign")},
        ],
        7,
        "near-duplicate (similarity",
    ),
    (
        "text leakage",
        lambda r: [*r, {**r[2], "id": "x", "article_id": "zz", "split": "test"}],
        7,
        "leakage: duplicate text",
    ),
    ("article leakage", lambda r: _replace(r, 1, split="test"), 2, "leakage: article 'a1'"),
    ("bad split", lambda r: _replace(r, 0, split="validation"), 1, "unknown split 'validation'"),
]


@pytest.mark.parametrize("name,plant,line,message", PLANTED, ids=[p[0] for p in PLANTED])
def test_each_planted_error_is_reported_with_its_line(tmp_path, records, name, plant, line, message):
    path = write_jsonl(tmp_path / "planted.jsonl", plant(records))
    report = validate_files([path])
    hits = [p for p in report.errors if p.line == line and message in p.message]
    assert hits, f"{name}: expected {message!r} at line {line}, got {[str(p) for p in report.errors]}"
    assert str(hits[0]).startswith(f"{path}:{line}: ")


def test_invalid_json_is_reported_and_the_rest_still_checked(tmp_path, records):
    path = write_jsonl(tmp_path / "planted.jsonl", records)
    lines = path.read_text().splitlines()
    lines.insert(2, '{"id": "broken", "text": ')
    path.write_text("\n".join(lines) + "\n")
    report = validate_files([path])
    assert any(p.line == 3 and p.message.startswith("invalid JSON") for p in report.errors)
    assert report.records_checked == 6


def test_every_planted_kind_in_one_file_is_reported(tmp_path, records):
    planted = _replace(records, 0, split="validation")
    planted = _replace(planted, 1, topics=["tariffs"], stance={"tariffs": "favor"})
    planted = _replace(planted, 3, id="a1-p0")
    report = validate_files([write_jsonl(tmp_path / "p.jsonl", planted)])
    assert {p.line for p in report.errors} >= {1, 2, 4}


def test_warnings_for_short_long_and_repeated_runs(tmp_path, records):
    stock = "the two sides agreed to keep talking about the matter in the weeks ahead"
    extra = [
        {**records[5], "id": f"r{i}", "article_id": f"r{i}", "text": f"{opening} {stock}."}
        for i, opening in enumerate(
            [
                "Negotiators from Seoul and Washington met for a fourth day at a hotel near the airport, and",
                "After a lunch that ran well past two o'clock, officials from both foreign ministries said",
                "Late on Friday a spokesman for the embassy, asked about the budget figures, replied that",
                "Across the sea in Tokyo, where the vice ministers compared notes on shipbuilding, aides said",
            ]
        )
    ]
    long_text = " ".join(f"word{i}" for i in range(300))
    extra.append({**records[5], "id": "long", "article_id": "long", "text": long_text})
    report = validate_files([write_jsonl(tmp_path / "w.jsonl", records + extra)])
    assert report.errors == []
    messages = [p.message for p in report.warnings]
    assert any("very long text (300 words)" in m for m in messages)
    assert report.repeated_runs >= 1
    assert any("appears in 4 paragraphs" in m for m in messages)


def test_repeated_names_are_not_counted_as_stock_phrases(tmp_path, records):
    name = "Ministry Of National Defense Spokesman Jeon Ha Kyu"
    extra = [
        {**records[5], "id": f"n{i}", "article_id": f"n{i}", "text": f"{name} spoke {topic}."}
        for i, topic in enumerate(["on Monday about drills", "about the budget", "at noon", "to reporters twice"])
    ]
    report = validate_files([write_jsonl(tmp_path / "n.jsonl", records + extra)])
    assert report.repeated_runs == 0


def test_near_duplicate_threshold_is_a_setting(tmp_path, records):
    twin = {
        **records[1],
        "id": "x",
        "position": 9,
        "text": records[1]["text"].replace("robbery", "daylight robbery").replace("ministry", "office"),
    }
    path = write_jsonl(tmp_path / "t.jsonl", [*records, twin])
    assert any("near-duplicate" in p.message for p in validate_files([path]).errors)
    strict = ValidationSettings(near_duplicate_threshold=0.95)
    assert not any("near-duplicate" in p.message for p in validate_files([path], settings=strict).errors)


def test_missing_file_is_reported(tmp_path):
    report = validate_files([tmp_path / "nope.jsonl"])
    assert report.errors and "no such file" in report.errors[0].message


def test_non_object_line_is_an_error(tmp_path, records):
    path = write_jsonl(tmp_path / "x.jsonl", records)
    path.write_text(path.read_text() + json.dumps(["a", "list"]) + "\n")
    report = validate_files([path])
    assert any(p.line == 7 and "not a JSON object" in p.message for p in report.errors)
