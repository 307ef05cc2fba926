import numpy as np
import pytest

from labels import load_schema
from training.evaluate import INTERVAL_METRICS, bootstrap_intervals, evaluate, precision_thresholds, tune_thresholds

SCHEMA = load_schema()


def _records():
    return [
        {"id": "1", "text": "a", "topics": ["cost_sharing"], "stance": {"cost_sharing": "favor"}},
        {
            "id": "2",
            "text": "b",
            "topics": ["exercises", "opcon"],
            "stance": {"exercises": "against", "opcon": "neutral"},
        },
        {"id": "3", "text": "c", "topics": [], "stance": {}},
        {"id": "4", "text": "d", "topics": ["cost_sharing"], "stance": {"cost_sharing": "against"}},
    ]


def _onehot(rows):
    out = np.zeros((len(rows), 4, 3))
    for i, row in enumerate(rows):
        for t, s in enumerate(row):
            out[i, t, s] = 1.0
    return out


def test_metrics_by_hand():
    # Topics: paragraph 2 misses opcon, paragraph 3 gets a spurious inter_korean.
    scores = np.array([[0.9, 0.1, 0.1, 0.1], [0.1, 0.8, 0.2, 0.1], [0.1, 0.1, 0.1, 0.7], [0.6, 0.1, 0.1, 0.1]])
    # Stance: paragraph 4's cost_sharing says favor (gold against); the rest right.
    stance = _onehot([[0, 2, 2, 2], [2, 1, 2, 2], [2, 2, 2, 2], [0, 2, 2, 2]])
    result = evaluate(_records(), scores, stance, [0.5] * 4, SCHEMA)
    m = result.metrics
    assert m["topic_cost_sharing_f1"] == 1.0
    assert m["topic_opcon_recall"] == 0.0
    assert m["topic_inter_korean_precision"] == 0.0
    # 3 true positives, 1 false positive, 1 false negative.
    assert m["topic_micro_f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    assert m["topic_exact_match"] == 0.5
    # Gold pairs: (1,cs,favor)->favor, (2,ex,against)->against, (2,op,neutral)->neutral, (4,cs,against)->favor.
    f1_favor, f1_against, f1_neutral = 2 / 3, 2 / 3, 1.0
    assert m["stance_macro_f1"] == pytest.approx((f1_favor + f1_against + f1_neutral) / 3)
    assert m["stance_f_avg"] == pytest.approx((f1_favor + f1_against) / 2)
    # End-to-end: the opcon pair is right on stance but its topic was missed, so 2 of 4.
    assert m["stance_e2e_accuracy"] == 0.5
    assert "stance_inter_korean_macro_f1" not in m  # no gold pairs for it
    assert set(result.figures) == {"topic_confusion.png", "stance_confusion.png"}
    kinds = set(result.errors["kind"])
    assert kinds == {"missed topic", "spurious topic", "wrong stance"}
    assert result.errors["confidence"].is_monotonic_decreasing


def test_perfect_predictions_score_one():
    records = _records()
    scores = np.array([SCHEMA.encode_topics(r["topics"]) for r in records], dtype=float)
    stance = np.zeros((4, 4, 3))
    for i, r in enumerate(records):
        for t, s in enumerate(SCHEMA.encode_stances(r["stance"])):
            stance[i, t, max(s, 0)] = 1
    m = evaluate(records, scores, stance, [0.5] * 4, SCHEMA, with_artifacts=False).metrics
    assert m["topic_micro_f1"] == m["stance_macro_f1"] == m["stance_e2e_accuracy"] == m["topic_exact_match"] == 1.0


def test_thresholds_maximise_dev_f1():
    gold = np.array([[1], [1], [0], [0]])
    scores = np.array([[0.3], [0.35], [0.2], [0.1]])
    (threshold,) = tune_thresholds(gold, scores)
    assert 0.2 < threshold <= 0.3


def test_a_threshold_tolerance_takes_the_low_end_of_the_f1_plateau():
    # Gold positives score 0.9, 0.8 and 0.3; the negatives 0.4 and 0.1. F1 is best (0.857:
    # three found, one wrong) for every grid threshold from 0.125 to 0.3; 0.8 from 0.425 to 0.8.
    gold = np.array([[1], [1], [1], [0], [0]])
    scores = np.array([[0.9], [0.8], [0.3], [0.4], [0.1]])
    (balanced,) = tune_thresholds(gold, scores)
    assert balanced == 0.3  # of the tied best, the one closest to 0.5
    assert tune_thresholds(gold, scores, tolerance=0.0) == [balanced]
    (low,) = tune_thresholds(gold, scores, tolerance=0.01)
    assert low == 0.125  # the lowest grid point still within 0.01 of the best
    # A wider tolerance reaches below the lowest score: F1 0.75 at 0.05 is within 0.2 of 0.857.
    assert tune_thresholds(gold, scores, tolerance=0.2) == [0.05]


def test_precision_thresholds_rise_until_the_target_is_reached():
    # Topic 0: scores 0.9 (gold), 0.8 (not), 0.7 (gold), 0.6 (not). At the F1 floor 0.5 the
    # precision is 0.5; from 0.9 it is 1.0. Topic 1 never reaches the target: no labels.
    gold = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])
    scores = np.array([[0.9, 0.9], [0.8, 0.1], [0.7, 0.1], [0.6, 0.1]])
    high, none = precision_thresholds(gold, scores, floor=[0.5, 0.5], target=0.95)
    assert high == 0.9
    assert none > 0.9 and not (scores[:, 1] >= none).any()
    # A lower target stops earlier: from 0.7 two of three given are right.
    (low, _) = precision_thresholds(gold, scores, floor=[0.5, 0.5], target=0.6)
    assert low == 0.7


def test_end_to_end_stance_macro_f1_counts_a_missed_topic_as_wrong():
    # Same predictions as test_metrics_by_hand: the opcon pair (gold neutral) has the right
    # stance but its topic was missed, so end to end neutral has no true positive.
    scores = np.array([[0.9, 0.1, 0.1, 0.1], [0.1, 0.8, 0.2, 0.1], [0.1, 0.1, 0.1, 0.7], [0.6, 0.1, 0.1, 0.1]])
    stance = _onehot([[0, 2, 2, 2], [2, 1, 2, 2], [2, 2, 2, 2], [0, 2, 2, 2]])
    m = evaluate(_records(), scores, stance, [0.5] * 4, SCHEMA, with_artifacts=False).metrics
    # favor: 1 TP, 1 FP (pair 4) -> 2/3; against: 1 TP, 1 FN -> 2/3; neutral: 0 TP -> 0.
    assert m["stance_e2e_macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 0.0) / 3)
    assert m["stance_e2e_macro_f1"] < m["stance_macro_f1"]


def test_alt_stance_counts_as_right_and_only_for_its_pair():
    records = _records()
    records[3] = {**records[3], "alt": {"cost_sharing": "favor"}}  # two-sided: favor is acceptable
    records[0] = {**records[0], "alt": {"opcon": "against"}}  # no gold opcon pair: ignored
    scores = np.array([SCHEMA.encode_topics(r["topics"]) for r in records], dtype=float)
    stance = _onehot([[0, 2, 2, 2], [2, 1, 2, 2], [2, 2, 2, 2], [0, 2, 2, 2]])  # pair 4 says favor
    with_alt = evaluate(records, scores, stance, [0.5] * 4, SCHEMA, with_artifacts=False).metrics
    without = evaluate(_records(), scores, stance, [0.5] * 4, SCHEMA, with_artifacts=False).metrics
    assert with_alt["stance_macro_f1"] == 1.0 and with_alt["stance_e2e_macro_f1"] == 1.0
    assert without["stance_macro_f1"] < 1.0


def test_e2e_confusion_and_groups():
    from training.evaluate import Gold, e2e_stance_confusion, evaluate_groups

    records = [{**r, "origin": "wire" if i < 2 else "state"} for i, r in enumerate(_records())]
    scores = np.array([[0.9, 0.1, 0.1, 0.1], [0.1, 0.8, 0.2, 0.1], [0.1, 0.1, 0.1, 0.7], [0.6, 0.1, 0.1, 0.1]])
    stance = _onehot([[0, 2, 2, 2], [2, 1, 2, 2], [2, 2, 2, 2], [0, 2, 2, 2]])
    gold = Gold.from_records(records, SCHEMA)
    table = e2e_stance_confusion(gold.stances, stance.argmax(-1), (scores >= 0.5).astype(int), SCHEMA)
    assert list(table.columns) == ["favor", "against", "neutral", "missed"]
    assert table.loc["neutral", "missed"] == 1 and table.loc["against", "favor"] == 1
    assert table.to_numpy().sum() == 4
    groups = evaluate_groups(records, scores, stance, [0.5] * 4, SCHEMA)
    assert set(groups) == {"wire", "state"}
    assert groups["wire"]["n_paragraphs"] == 2 and groups["state"]["n_pairs"] == 1
    assert evaluate_groups(_records(), scores, stance, [0.5] * 4, SCHEMA) == {}


def _random_case(n: int = 60, seed: int = 3) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """Records with gold topics and stances (some with an ``alt``), and noisy scores for them."""
    rng = np.random.default_rng(seed)
    records, scores, stance = [], np.zeros((n, 4)), np.zeros((n, 4, 3))
    for i in range(n):
        gold = {t: SCHEMA.stance_values[rng.integers(3)] for t in SCHEMA.topic_ids if rng.random() < 0.35}
        record = {"id": str(i), "text": str(i), "topics": sorted(gold), "stance": gold}
        if gold and rng.random() < 0.2:
            topic = next(iter(gold))
            record["alt"] = {topic: SCHEMA.stance_values[(SCHEMA.encode_stance(gold[topic]) + 1) % 3]}
        records.append(record)
        for t, topic in enumerate(SCHEMA.topic_ids):
            scores[i, t] = np.clip((0.7 if topic in gold else 0.3) + rng.normal(0, 0.25), 0, 1)
        stance[i] = rng.dirichlet(np.ones(3), size=4)
    return records, scores, stance


def test_bootstrap_draw_equals_evaluating_the_resampled_records():
    # One resample: both ends of the interval are that draw's value, which must be what the
    # shared evaluation gives on the same paragraphs drawn with the same generator.
    records, scores, stance = _random_case()
    thresholds = [0.5] * 4
    for seed in (0, 1, 2):
        idx = np.random.default_rng(seed).integers(0, len(records), len(records))
        expected = evaluate([records[i] for i in idx], scores[idx], stance[idx], thresholds, SCHEMA, False).metrics
        got = bootstrap_intervals(records, scores, stance, thresholds, SCHEMA, resamples=1, seed=seed)
        assert set(got) == set(INTERVAL_METRICS)
        for name, (low, high) in got.items():
            assert low == pytest.approx(expected[name]) and high == pytest.approx(expected[name]), name


def test_bootstrap_interval_brackets_the_estimate_and_narrows_with_more_data():
    thresholds = [0.5] * 4
    small = _random_case(n=40)
    large = _random_case(n=1000)
    small_iv = bootstrap_intervals(*small, thresholds, SCHEMA, resamples=300)
    large_iv = bootstrap_intervals(*large, thresholds, SCHEMA, resamples=300)
    point = evaluate(*large, thresholds, SCHEMA, False).metrics
    for name in INTERVAL_METRICS:
        low, high = large_iv[name]
        assert low <= point[name] <= high, name
        assert high - low < small_iv[name][1] - small_iv[name][0], name
    assert bootstrap_intervals(*small, thresholds, SCHEMA, resamples=50) == bootstrap_intervals(
        *small, thresholds, SCHEMA, resamples=50
    )
