"""The wire's bracket grammar: what is cut in front of a story and what is left alone."""

from __future__ import annotations

import pytest

from inference.ingest import segment_text
from inference.ingest.wire import is_codes_only, split_end, split_lead, strip_marks

STORY = "South Korea and the United States will hold the drills at full scale, officials said."


@pytest.mark.parametrize(
    ("text", "top", "parts"),
    [
        (
            "(3rd LD) Allies resume drills (ATTN: CHANGES headline; ADDS photo) By Yoon Ha-neul, Oh Ji-hyun "
            f"WASHINGTON, Oct. 31 (Yonhap) -- {STORY}",
            False,
            [
                ("wire_code", "(3rd LD)"),
                ("headline", "Allies resume drills"),
                ("wire_code", "(ATTN: CHANGES headline; ADDS photo)"),
                ("byline", "By Yoon Ha-neul, Oh Ji-hyun"),
            ],
        ),
        (f"By Chae Min-ju SEOUL, Oct. 4 (Yonhap) -- {STORY}", False, [("byline", "By Chae Min-ju")]),
        (
            f"(URGENT) Allies resume drills\nSEOUL, Oct. 4 (Yonhap) -- {STORY}",
            False,
            [("wire_code", "(URGENT)"), ("headline", "Allies resume drills")],
        ),
        # a bare headline before a dateline is cut only where a headline can be: the top
        (f"Allies resume drills SEOUL -- {STORY}", True, [("headline", "Allies resume drills")]),
        (f"Allies resume drills SEOUL -- {STORY}", False, []),
        # a dateline that starts with a source in brackets is not a version mark
        (f"(CNN) -- {STORY}", True, []),
        # a dash after capitals in a sentence is not a dateline: the next word is not capitalised
        ("The ministry said the U.S. -- and Japan -- would take part.", True, []),
        # a sentence or a caption in front of a dateline is not a headline
        (f"The ministry spoke on Monday. SEOUL -- {STORY}", True, []),
        (f"Troops unload gear at a port in Pyeongtaek. (Yonhap) SEOUL -- {STORY}", True, []),
    ],
)
def test_split_lead(text, top, parts):
    assert [(part, text[s:e]) for s, e, part in split_lead(text, 0, len(text), top)] == parts


def test_end_marks_and_code_lines():
    text = f"{STORY} (END)"
    start, end = split_end(text, 0, len(text))
    assert text[start:end] == "(END)"
    assert split_end("The talks (in Geneva) ended.", 0, 28) is None
    assert split_end("They met in Geneva (SWITZERLAND)", 0, 32) is None  # no sentence end before it
    assert is_codes_only("(END)") and is_codes_only("(LEAD) (ATTN: ADDS details in para 3)")
    assert not is_codes_only("(LEAD) Allies resume drills")


def test_titles_lose_their_version_marks():
    assert strip_marks("(2nd LD) Allies resume drills") == "Allies resume drills"
    assert strip_marks("Allies resume drills (LEAD)") == "Allies resume drills (LEAD)"
    result = segment_text(f"(LEAD) Allies resume drills\n\nSEOUL -- {STORY}", title="(LEAD) Allies resume drills")
    assert result.title == "Allies resume drills"
    assert [(d.reason, d.text) for d in result.dropped] == [("wire_code", "(LEAD)"), ("title", "Allies resume drills")]
    assert [p.text for p in result.paragraphs] == [f"SEOUL -- {STORY}"]
