"""The behaviour suite's format and judging, on small suites written here and a scripted model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from inference.model_io import Predictor
from labels import load_schema
from training.behaviour import SuiteError, add_typos, load_suite, run_suite
from training.runs import make_meta

SCHEMA = load_schema()


class Scripted:
    """Topic and stance by keyword: "drill" gives exercises; "cancel" makes it against,
    "resume" favor, else neutral; "Bob" flips favor to against (a name that changes labels)."""

    def predict_scores(self, texts):
        t_index = SCHEMA.topic_ids.index("exercises")
        values = list(SCHEMA.stance_values)
        topics = np.zeros((len(texts), len(SCHEMA.topics)))
        stance = np.full((len(texts), len(SCHEMA.topics), len(values)), 0.1)
        for i, text in enumerate(texts):
            lower = text.lower()
            topics[i, t_index] = 0.9 if "drill" in lower else 0.1
            label = "against" if "cancel" in lower or "bob" in lower else "favor" if "resume" in lower else "neutral"
            stance[i, t_index, values.index(label)] = 0.8
        return topics, stance


def scripted_predictor() -> Predictor:
    return Predictor(Scripted(), make_meta("scripted", SCHEMA, [0.5] * len(SCHEMA.topics)), SCHEMA)


def write_suite(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


LEXICONS = "who: [Alice, Bob, Carol, Dan]\nwhen: [Monday, Tuesday]\n"
CAPABILITY = """
capability: drills
description: drills
cases:
  - text: "{who} said the drill will resume."
    expect: {exercises: favor}
  - text: "The weather was fine."
    expect: {}
  - text: "{who} said the drill goes ahead on {when}."
    vary: [when]
  - text: "{who} said the drill goes ahead."
    vary: [who]
  - text: "They will resume the drill."
    perturb: [uppercase, typos]
  - base: "{who} said the drill would resume."
    changed: "{who} said the drill would be cancelled."
    towards: {exercises: against}
  - base: "{who} said the drill would be cancelled."
    changed: "{who} said the drill would resume."
    towards: {exercises: against}
"""


@pytest.fixture
def suite_dir(tmp_path):
    return write_suite(tmp_path / "suite", {"lexicons.yaml": LEXICONS, "drills.yaml": CAPABILITY})


def test_templates_expand_into_cases_of_each_kind(suite_dir):
    suite = load_suite(suite_dir)
    (cap,) = suite.capabilities
    assert cap.kinds == {"MFT": 3, "INV": 3, "DIR": 4}
    mft = [c for c in cap.cases if c.kind == "MFT"]
    # Two fills of the first template, taking fillers from the template's own offset on.
    assert [c.texts for c in mft[:2]] == [("Bob said the drill will resume.",), ("Carol said the drill will resume.",)]
    varied = next(c for c in cap.cases if c.id == "drills-03")
    assert varied.texts == ("Alice said the drill goes ahead on Monday.", "Alice said the drill goes ahead on Tuesday.")
    direction = next(c for c in cap.cases if c.id == "drills-06-0")
    assert direction.texts == ("Carol said the drill would resume.", "Carol said the drill would be cancelled.")
    perturbed = next(c for c in cap.cases if c.id == "drills-05-0")
    assert perturbed.texts == (
        "They will resume the drill.",
        "THEY WILL RESUME THE DRILL.",
        "They will resmue the drlil.",
    )
    assert direction.expect == {"exercises": "against"}


def test_the_scripted_model_passes_and_fails_where_it_should(suite_dir):
    result = run_suite(load_suite(suite_dir), scripted_predictor())
    failed = {o.case.id for o in result.failures()}
    # "Bob ... will resume" comes out against (MFT fails); swapping in Bob changes the labels
    # and the typos hide "drill" (INV fails); cancelled -> resume moves away from against (the
    # second DIR fails both fills). Casing, the weekday and the first DIR pass.
    assert failed == {"drills-01-0", "drills-04", "drills-05-0", "drills-07-0", "drills-07-1"}
    assert result.failure_rates()["drills"] == pytest.approx(5 / 10)
    assert result.metrics()["behaviour_drills_failure_rate"] == pytest.approx(0.5)


def test_failures_file_has_one_readable_line_per_failing_case(suite_dir, tmp_path):
    result = run_suite(load_suite(suite_dir), scripted_predictor())
    rows = [json.loads(line) for line in result.write_failures(tmp_path / "out" / "f.jsonl").read_text().splitlines()]
    assert len(rows) == 5
    direction = next(r for r in rows if r["id"] == "drills-07-0")
    assert direction["expected"] == "exercises: more against"
    assert direction["got"][0]["probabilities"]["exercises"] > direction["got"][1]["probabilities"]["exercises"]
    (heading, texts), *_ = [e for e in result.examples() if e[0].startswith("drills-04")]
    assert "exercises: neutral | exercises: against" in heading
    assert texts == ["Alice said the drill goes ahead.", "Bob said the drill goes ahead."]


def test_typos_are_repeatable_and_keep_the_words_apart():
    text = "The allies will resume the full-scale Freedom Shield drills next month."
    assert add_typos(text) == add_typos(text) != text
    assert len(add_typos(text)) == len(text) and add_typos(text).count(" ") == text.count(" ")


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ('  - text: "x"\n    expect: {exercise: favor}', "unknown topic 'exercise'"),
        ('  - text: "x"\n    expect: {exercises: pro}', "unknown stance 'pro'"),
        ('  - text: "{nobody} x"\n    expect: {}', "no lexicon for slot {nobody}"),
        ('  - text: "x"\n    expect: {}\n    expected: {}', "unknown key(s) expected"),
        ('  - text: "{when} x"\n    vary: [who]', "vary names slot(s) not in the text: who"),
        ('  - text: "x"\n    perturb: [shout]', "unknown perturbation(s) shout"),
        ('  - base: "x"\n    changed: "y"', "a DIR case needs base, changed and towards"),
    ],
)
def test_a_malformed_case_is_one_line_naming_file_and_case(tmp_path, case, message):
    folder = write_suite(tmp_path / "s", {"lexicons.yaml": LEXICONS, "bad.yaml": f"capability: bad\ncases:\n{case}\n"})
    with pytest.raises(SuiteError) as info:
        load_suite(folder)
    assert message in str(info.value) and "bad.yaml case 1" in str(info.value)
    assert "\n" not in str(info.value)


def test_a_missing_suite_folder_says_what_to_give(tmp_path):
    with pytest.raises(SuiteError, match="no behaviour suite at"):
        load_suite(tmp_path / "nowhere")


def test_the_digest_changes_when_a_case_changes(suite_dir):
    before = load_suite(suite_dir).digest
    (suite_dir / "drills.yaml").write_text(CAPABILITY.replace("goes ahead on", "starts on"), encoding="utf-8")
    assert load_suite(suite_dir).digest != before
