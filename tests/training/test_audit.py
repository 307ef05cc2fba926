"""The label audit finds labels planted wrong in a copy of real data, and says why."""

import copy
import random

import numpy as np
import pytest

from tests.conftest import small_subset
from training.audit import AuditSettings, assign_folds, audit

TOPICS = ("cost_sharing", "exercises", "opcon", "inter_korean")


def plant_topic_swaps(records: list[dict], n: int, seed: int) -> set[str]:
    """Move ``n`` random single-topic paragraphs to another topic (stance kept); return their ids."""
    rng = random.Random(seed)
    chosen = rng.sample([r for r in records if len(r["topics"]) == 1], n)
    for r in chosen:
        old = r["topics"][0]
        new = rng.choice([t for t in TOPICS if t != old])
        r["topics"], r["stance"] = [new], {new: r["stance"][old]}
    return {r["id"] for r in chosen}


@pytest.mark.slow
def test_audit_finds_planted_errors_in_its_top_30():
    records = copy.deepcopy(small_subset(40, 10))  # 60 whole articles, ~430 paragraphs
    planted = plant_topic_swaps(records, 10, seed=2)
    # Char 3-4-grams instead of 2-5 keep the test to seconds; the method is the same.
    result = audit(records, settings=AuditSettings(folds=5, char_ngrams=(3, 4)))
    top = [f.record["id"] for f in result.flags[:30]]
    assert len(planted & set(top)) >= 8, (sorted(planted - set(top)), top)
    flag = next(f for f in result.flags if f.record["id"] in planted)
    planted_topic = flag.record["topics"][0]
    assert any(i.kind == "topic" and i.topic == planted_topic and i.suggested == "absent" for i in flag.issues) or any(
        i.kind == "topic" and i.suggested == "present" for i in flag.issues
    )
    assert flag.suggested_topics != flag.record["topics"]
    assert any(i.evidence for i in flag.issues)  # n-grams that pushed the model
    assert [f.rank for f in result.flags] == list(range(1, len(result.flags) + 1))
    assert all(a.score >= b.score for a, b in zip(result.flags, result.flags[1:], strict=False))


def test_folds_keep_articles_whole_and_balanced():
    articles = [f"a{i // 3}" for i in range(60)]  # 20 articles of 3 paragraphs
    folds = assign_folds(articles, 4, seed=1)
    for a in set(articles):
        assert len({folds[i] for i, b in enumerate(articles) if b == a}) == 1
    assert sorted(np.bincount(folds)) == [15, 15, 15, 15]
    assert list(assign_folds(articles, 4, seed=1)) == list(folds)
