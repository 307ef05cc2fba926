"""The blend family's scoring and saved format, on two small TF-IDF models and a tiny BERT."""

import numpy as np
import pytest

from inference.blend import WEIGHTS, BlendedTopicStance, combine, weight_grid
from inference.model_io import ModelLoadError, Predictor, load_model, read_meta, save_model
from inference.tfidf import TfidfTopicStance
from inference.transformer import WEIGHTS as TRANSFORMER_WEIGHTS
from inference.transformer import TransformerTopicStance
from labels import load_schema, read_records
from training.blend import choose_weights, unused_members
from training.evaluate import Gold, tune_thresholds
from training.runs import make_meta

SCHEMA = load_schema()


def _tfidf(small_dataset, C: float) -> Predictor:
    gold = Gold.from_records(read_records(small_dataset), SCHEMA)
    model = TfidfTopicStance(stance_C=C, topic_C=C).fit(gold.texts, gold.topics, gold.stances)
    return Predictor(model, make_meta("baseline", SCHEMA, [0.5] * 4), SCHEMA)


def _texts(small_dataset) -> list[str]:
    return [r["text"] for r in read_records(small_dataset)][:12]


def test_weight_grid_lists_every_point_that_sums_to_one():
    assert weight_grid(2, 0.5) == [(1.0, 0.0), (0.5, 0.5), (0.0, 1.0)]
    three = weight_grid(3, 0.25)
    assert len(three) == 15 and len(set(three)) == 15
    assert all(np.isclose(sum(p), 1.0) for p in three)
    for bad in (0.3, 0.33333, 0.0, 0.75):
        with pytest.raises(ValueError, match="weight_step must divide 1"):
            weight_grid(2, bad)


def test_combine_averages_topics_and_stance_with_their_own_weights():
    a = (np.array([[0.2, 0.8]]), np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]))
    b = (np.array([[0.6, 0.0]]), np.array([[[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]]))
    topics, stance = combine([a, b], [0.5, 0.5], [0.25, 0.75])
    np.testing.assert_allclose(topics, [[0.4, 0.4]])
    np.testing.assert_allclose(stance[0, 0], [0.25, 0.0, 0.75])
    with pytest.raises(ValueError, match="sum to 1"):
        BlendedTopicStance([None, None], [0.5, 0.6], [0.5, 0.5], ["a", "b"])
    with pytest.raises(ValueError, match="two or more"):
        BlendedTopicStance([None], [1.0], [1.0], ["a"])


def test_blend_scores_survive_save_and_load(small_dataset, tmp_path):
    members = [_tfidf(small_dataset, 1.0), _tfidf(small_dataset, 8.0)]
    blend = BlendedTopicStance(members, [0.3, 0.7], [0.6, 0.4], ["first", "second"])
    texts = _texts(small_dataset)
    topics, stance = blend.predict_scores(texts)
    expected = combine([m.score(texts) for m in members], [0.3, 0.7], [0.6, 0.4])
    np.testing.assert_allclose(topics, expected[0])
    np.testing.assert_allclose(stance, expected[1])
    assert not np.allclose(topics, members[0].score(texts)[0])  # the members really differ

    folder = save_model(tmp_path / "blend", blend, make_meta("blend", SCHEMA, [0.5] * 4, weights=WEIGHTS))
    assert read_meta(folder / "members" / "1").family == "baseline"
    loaded = load_model(folder)
    np.testing.assert_allclose(loaded.score(texts)[0], topics)
    np.testing.assert_allclose(loaded.score(texts)[1], stance)
    assert loaded.model.sources == ["first", "second"]
    with pytest.raises(ModelLoadError, match="no member of this blend has a quantized variant"):
        load_model(folder, quantized=True)


def test_quantized_blend_quantizes_only_the_encoder_member(small_dataset, tiny_base_model, tmp_path):
    encoder = TransformerTopicStance.from_base(
        tiny_base_model, SCHEMA.topic_ids, [t.proposition for t in SCHEMA.topics], 3, "per_topic", max_length=48
    ).calibrate(_texts(small_dataset))
    members = [
        _tfidf(small_dataset, 2.0),
        Predictor(encoder, make_meta("transformer", SCHEMA, [0.5] * 4, weights=TRANSFORMER_WEIGHTS), SCHEMA),
    ]
    blend = BlendedTopicStance(members, [0.5, 0.5], [0.5, 0.5], ["tfidf", "bert"])
    folder = save_model(tmp_path / "blend", blend, make_meta("blend", SCHEMA, [0.5] * 4, weights=WEIGHTS))
    int8 = load_model(folder, quantized=True)
    assert int8.model.members[1].model.quantized and not hasattr(int8.model.members[0].model, "quantized")
    texts = _texts(small_dataset)
    fp32 = load_model(folder).score(texts)
    topics, stance = int8.score(texts)
    np.testing.assert_allclose(topics, fp32[0], atol=0.05)
    np.testing.assert_allclose(stance, fp32[1], atol=0.05)
    assert not np.array_equal(stance, fp32[1])  # the encoder member really runs in int8
    with pytest.raises(ValueError, match="not saved"):
        int8.model.save_pretrained(tmp_path / "again")


def test_weights_are_chosen_on_dev_and_ties_go_to_the_most_even_point(small_dataset):
    gold = Gold.from_records([r for r in read_records(small_dataset) if r["split"] == "dev"], SCHEMA)
    good = _tfidf(small_dataset, 4.0).score(gold.texts)
    noise = np.random.default_rng(0)
    bad = (noise.random(good[0].shape), noise.dirichlet(np.ones(3), size=good[1].shape[:2]))
    _, thresholds, stance_w, rows = choose_weights([good, bad], gold, SCHEMA, 0.25)
    assert len(rows) == 5 and len(thresholds) == 4
    best = max(r["dev_stance_macro_f1"] for r in rows)
    assert next(r for r in rows if r["weights"] == list(stance_w))["dev_stance_macro_f1"] == best
    assert stance_w[0] >= 0.5  # the real model outweighs noise
    # Identical members tie everywhere: the even split wins; with three members at step 0.5
    # (no even split on the grid) the first of the most even points does.
    assert choose_weights([good, good], gold, SCHEMA, 0.5)[2] == (0.5, 0.5)
    assert choose_weights([good, good, good], gold, SCHEMA, 0.5)[2] == (0.5, 0.5, 0.0)


def test_blend_thresholds_follow_the_recipe_tolerance(small_dataset):
    gold = Gold.from_records([r for r in read_records(small_dataset) if r["split"] == "dev"], SCHEMA)
    scores = [_tfidf(small_dataset, 4.0).score(gold.texts), _tfidf(small_dataset, 1.0).score(gold.texts)]
    tolerant_weights, tolerant, _, _ = choose_weights(scores, gold, SCHEMA, 0.5, tolerance=0.05)
    topics, _ = combine(scores, tolerant_weights, tolerant_weights)
    assert tolerant == tune_thresholds(gold.topics, topics, tolerance=0.05)
    balanced = tune_thresholds(gold.topics, topics)
    assert all(low <= high for low, high in zip(tolerant, balanced, strict=True)) and tolerant != balanced


def test_members_with_no_weight_are_left_out_unless_fewer_than_two_would_remain():
    assert unused_members([0.5, 0.0, 0.5, 0.0], [0.5, 0.0, 0.0, 0.5]) == [1]  # member 3 still has stance weight
    assert unused_members([0.6, 0.4, 0.0], [0.7, 0.3, 0.0]) == [2]
    assert unused_members([1.0, 0.0, 0.0], [1.0, 0.0, 0.0]) == []  # a blend keeps two members at least
    assert unused_members([0.5, 0.5], [0.2, 0.8]) == []
