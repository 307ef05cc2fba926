"""The sample articles the README's main job classifies: messy, and all of them read."""

from pathlib import Path

from inference.predict import PredictReport, PredictSettings, iter_units

SAMPLES = Path(__file__).parents[2] / "experiments" / "samples" / "articles"


def test_every_sample_article_gives_paragraphs_and_drops_furniture():
    report = PredictReport()
    units = list(iter_units([str(SAMPLES)], PredictSettings(), report))
    articles = {u.article_id for u in units}
    assert articles == {p.stem for p in SAMPLES.iterdir()}
    assert not [u for u in units if not hasattr(u, "text")]  # no bad records
    for reason in ("title", "byline", "caption", "related", "navigation"):
        assert report.dropped[reason] >= 1, reason
    texts = " ".join(u.text for u in units)
    assert "Share on Facebook" not in texts and "All rights reserved" not in texts
