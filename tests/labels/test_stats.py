from labels.stats import dataset_stats


def _table(tables, title):
    return next(t for t in tables if t.title == title)


def test_counts_per_split_topic_and_cell(records):
    tables = dataset_stats(records)
    overview = _table(tables, "Records")
    assert overview.headers == ("", "train", "dev", "test", "all")
    assert overview.rows[0] == ("paragraphs", 2, 2, 2, 6)
    assert overview.rows[1] == ("articles", 1, 1, 1, 3)
    assert overview.rows[2] == ("no topic", 0, 1, 1, 2)
    assert overview.rows[3] == ("2+ topics", 0, 0, 1, 1)
    topics = dict((row[0], row[1:]) for row in _table(tables, "Paragraphs per topic").rows)
    assert topics["cost_sharing"] == (2, 0, 0, 2)
    assert topics["inter_korean"] == (0, 0, 1, 1)
    cells = {(row[0], row[1]): row[-1] for row in _table(tables, "Paragraphs per (topic, stance)").rows}
    assert cells[("cost_sharing", "against")] == 1
    assert cells[("exercises", "favor")] == 0
    assert len(cells) == 12
    per_paragraph = dict((row[0], row[1]) for row in _table(tables, "Topics per paragraph").rows)
    assert per_paragraph == {0: 2, 1: 3, 2: 1}


def test_length_percentiles(records):
    lengths = _table(dataset_stats(records), "Text length in words").rows[0]
    p5, p25, p50, p75, p95, lo, hi, _mean = lengths
    assert lo == 2 and p5 == 2
    assert lo <= p25 <= p50 <= p75 <= p95 <= hi
