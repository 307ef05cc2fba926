"""Uncertainty sampling: unsure paragraphs first, near-identical ones skipped, pools read from tables."""

import csv
from pathlib import Path

import numpy as np
import pytest

from inference.model_io import ModelMeta, Predictor
from inference.suggest import diverse_order, read_pool, suggest, uncertainty_scores
from labels import load_schema


class ScoresByText:
    """A stand-in model: fixed topic and stance scores per text."""

    def __init__(self, table: dict[str, tuple[list[float], list[list[float]]]]):
        self.table = table

    def predict_scores(self, texts):
        topics = np.array([self.table[t][0] for t in texts], dtype=float)
        stances = np.array([self.table[t][1] for t in texts], dtype=float)
        return topics, stances


SURE_STANCE = [[0.96, 0.02, 0.02]] * 4
TORN_STANCE = [[0.48, 0.47, 0.05]] * 4
TABLE = {
    "sure about cost-sharing": ([0.98, 0.01, 0.02, 0.01], SURE_STANCE),
    "sure it is furniture": ([0.01, 0.02, 0.01, 0.01], SURE_STANCE),
    "sure about drills": ([0.02, 0.97, 0.03, 0.01], SURE_STANCE),
    "unsure whether OPCON applies": ([0.02, 0.01, 0.51, 0.03], SURE_STANCE),
    "sure of the topic, torn on stance": ([0.01, 0.01, 0.02, 0.99], TORN_STANCE),
}


def make_predictor(table=TABLE) -> Predictor:
    schema = load_schema()
    meta = ModelMeta(family="stub", schema=schema.to_dict(), schema_hash=schema.hash, thresholds=[0.5] * 4)
    return Predictor(ScoresByText(table), meta, schema)


def pool(texts) -> list[dict]:
    return [{"id": f"p{i}", "text": t} for i, t in enumerate(texts)]


@pytest.mark.parametrize("strategy", ["margin", "uncertainty"])
def test_unsure_paragraphs_rank_above_sure_ones(strategy):
    picked = suggest(pool(TABLE), make_predictor(), n=5, strategy=strategy)
    order = [s.record["text"] for s in picked]
    unsure = {"unsure whether OPCON applies", "sure of the topic, torn on stance"}
    assert set(order[:2]) == unsure
    assert picked[0].score > picked[2].score
    assert [s.rank for s in picked] == [1, 2, 3, 4, 5]


def test_suggestions_carry_the_models_labels_and_leave_out_labelled_texts():
    picked = suggest(pool(TABLE), make_predictor(), n=5, exclude=["Sure of the topic,  torn on stance"])
    assert picked[0].record["text"] == "unsure whether OPCON applies"
    assert len(picked) == 4
    top = picked[0].prediction
    assert top.topics == ["opcon"] and top.stance == {"opcon": "favor"}


def test_random_strategy_is_seeded():
    first = [s.record["id"] for s in suggest(pool(TABLE), make_predictor(), 5, "random", seed=4)]
    again = [s.record["id"] for s in suggest(pool(TABLE), make_predictor(), 5, "random", seed=4)]
    assert first == again and sorted(first) == sorted(f"p{i}" for i in range(5))


def test_margin_is_smallest_at_the_threshold():
    topics = np.array([[0.5, 0.0, 0.0, 0.0], [0.9, 0.0, 0.0, 0.0]])
    stances = np.tile(np.array([1.0, 0.0, 0.0]), (2, 4, 1))
    scores = uncertainty_scores(topics, stances, [0.5] * 4, "margin")
    assert scores[0] == pytest.approx(1.0) and scores[1] == pytest.approx(0.2)


def test_diverse_skips_near_identical_picks():
    texts = [
        "North Korea fired artillery near the border island on Tuesday, the joint chiefs said.",
        "North Korea fired artillery near the border island on Tuesday, the joint chiefs said on Wednesday.",
        "The allies will discuss the cost of stationing troops at the next round of talks.",
    ]
    assert diverse_order(texts, [0, 1, 2], n=2) == [0, 2]
    assert diverse_order(texts, [0, 1, 2], n=2, max_similarity=1.01) == [0, 1]


def test_read_pool_takes_csv_with_text_and_keeps_metadata(tmp_path: Path):
    path = tmp_path / "pool.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, ["text", "article_id", "position", "date"])
        writer.writeheader()
        writer.writerow({"text": "First paragraph.", "article_id": "a", "position": "3", "date": "2024-01-02"})
        writer.writerow({"text": "  ", "article_id": "a", "position": "4", "date": ""})
    (record,) = read_pool([path])
    assert record == {
        "id": "pool-00001",
        "text": "First paragraph.",
        "article_id": "a",
        "position": 3,
        "date": "2024-01-02",
    }
