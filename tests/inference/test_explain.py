"""Evidence behind labels (``Predictor.explain``): every family's word contributions add up to
its logits, map back to the original text, and name the words a reader would expect."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inference.blend import BlendedTopicStance
from inference.embed import EmbedTopicStance, SentenceEmbedder, as_features
from inference.explain import WordAttribution, blend_attributions, evidence, normalize_with_offsets, split_words
from inference.model_io import Predictor
from inference.preprocess import normalize_text
from inference.rules import KeywordRules
from inference.tfidf import (
    TfidfTopicStance,
    _binary_coefficients,
    fast_transform,
    fit_stance_heads,
    fit_topic_heads,
)
from inference.transformer import TransformerTopicStance
from labels import load_schema, read_records
from training.evaluate import Gold
from training.runs import make_meta

SCHEMA = load_schema()
TEXT = "Seoul refused Washington’s demand that it pay  28,500 won MORE for the troops — “extortion”, it said."


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p / (1 - p))


@pytest.fixture(scope="module")
def gold(small_dataset) -> Gold:
    return Gold.from_records(read_records(small_dataset), SCHEMA)


@pytest.fixture(scope="module", params=["per_topic", "crossed"])
def tfidf(request, gold) -> TfidfTopicStance:
    return TfidfTopicStance(stance_design=request.param).fit(gold.texts, gold.topics, gold.stances)


def test_normalised_characters_point_back_at_the_original():
    normalized, _ = normalize_with_offsets(TEXT)
    assert normalized == normalize_text(TEXT)
    words = split_words(TEXT)
    seen = [TEXT[a:b] for a, b in words.original]
    assert seen[:3] == ["Seoul", "refused", "Washington’s"]
    assert "28,500" in seen and "MORE" in seen and "extortion" in seen
    # Each word of the normalised text is its original word, normalised.
    for (a, b), (c, d) in zip(words.spans, words.original, strict=True):
        assert normalized[a:b] == normalize_text(TEXT[c:d])


def test_text_that_normalises_differently_as_a_whole_still_gets_spans():
    text = "Cafe\u0301 talks on the SMA"  # NFKC composes e + combining accent only as a whole
    normalized, spans = normalize_with_offsets(text)
    assert normalized == normalize_text(text) and len(spans) == len(normalized)
    assert all(0 <= a < b <= len(text) for a, b in spans)


def test_tfidf_contributions_add_up_to_the_logits(tfidf):
    """Coefficient x feature: the words' contributions plus the bias are the heads' logits."""
    X = fast_transform(tfidf.features_, [TEXT])
    (attribution,) = tfidf.word_attributions([TEXT])
    for t, head in enumerate(tfidf.topic_heads_):
        if hasattr(head, "decision_function"):
            assert attribution.topic[t].sum() + head.intercept_[0] == pytest.approx(head.decision_function(X)[0])
    proba = tfidf.predict_scores([TEXT])[1][0]
    for t in range(len(SCHEMA.topics)):
        logits = attribution.stance[t].sum(axis=1)
        present = proba[t] > 0
        if present.sum() < 2:
            continue
        # Softmax of (logits + biases) gives the model's probabilities: compare the log-ratios,
        # which the biases shift by a constant only; the differences of differences vanish.
        head = tfidf.stance_heads_[t] if isinstance(tfidf.stance_heads_, list) else tfidf.stance_heads_
        bias = np.zeros(len(proba[t]))
        classes = list(head.classes_)
        if len(classes) == 2:
            bias[classes[1]] = head.intercept_[0]
        else:
            bias[classes] = head.intercept_
        expected = np.log(proba[t][present])
        got = (logits + bias)[present]
        np.testing.assert_allclose(got - got[0], expected - expected[0], atol=1e-6)


def test_calibrated_svm_topic_weights_follow_each_folds_slope(gold):
    model = TfidfTopicStance(topic_model="svm").fit(gold.texts, gold.topics, gold.stances)
    head = model.topic_heads_[0]
    X = fast_transform(model.features_, gold.texts[:5])
    # The mean over folds of the calibrated logit, less its biases, is linear in the features.
    folds = head.calibrated_classifiers_
    logit = np.mean(
        [-(f.calibrators[0].a_ * f.estimator.decision_function(X) + f.calibrators[0].b_) for f in folds], axis=0
    )
    bias = np.mean([-(f.calibrators[0].a_ * f.estimator.intercept_[0] + f.calibrators[0].b_) for f in folds])
    np.testing.assert_allclose(X @ _binary_coefficients(head, X.shape[1]) + bias, logit, atol=1e-8)


def test_evidence_names_the_words_and_their_place_in_the_text():
    words = split_words("Seoul will not pay more for the troops, the minister said.")
    topic = np.zeros((4, len(words)))
    stance = np.zeros((4, 3, len(words)))
    t, against, favor = SCHEMA.topic_ids.index("cost_sharing"), 1, 0
    assert SCHEMA.stance_values[against] == "against" and SCHEMA.stance_values[favor] == "favor"
    topic[t, [3, 4]] = [1.0, 0.8]  # "pay more"
    topic[t, 7] = 0.5  # "troops"
    stance[t, against, 2] = 2.0  # "not"
    stance[t, favor, 4] = 0.7  # "more" pulls towards favor
    stance[t, against, 9] = 0.01  # below the floor: left out
    found = evidence(
        WordAttribution(words, topic, stance),
        ["cost_sharing"],
        {"cost_sharing": "against"},
        {"cost_sharing": {"favor": 0.3, "against": 0.6, "neutral": 0.1}},
        SCHEMA.topic_ids,
        SCHEMA.stance_values,
    )["cost_sharing"]
    assert [(p["text"], p["weight"]) for p in found["topic"]] == [("pay more", 1.8), ("troops", 0.5)]
    assert [p["text"] for p in found["stance"]] == ["not"]
    assert found["versus"] == "favor" and [p["text"] for p in found["versus_evidence"]] == ["more"]
    text = words.text
    assert all(text[p["start"] : p["end"]] == p["text"] for p in found["topic"] + found["stance"])


def test_a_tfidf_paragraph_is_explained_by_its_own_words(small_dataset):
    gold = Gold.from_records(read_records(small_dataset), SCHEMA)
    model = TfidfTopicStance().fit(gold.texts, gold.topics, gold.stances)
    predictor = Predictor(model, make_meta("baseline", SCHEMA, [0.5] * 4), SCHEMA)
    texts = [t for t, topics in zip(gold.texts, gold.topics, strict=True) if topics.sum()][:6]
    for text, prediction, found in zip(texts, predictor.predict(texts), predictor.explain(texts), strict=True):
        assert set(found) == set(prediction.topics)
        for topic, parts in found.items():
            assert parts["topic"], f"no topic evidence for {topic} in {text!r}"
            for phrase in parts["topic"] + parts["stance"] + parts["versus_evidence"]:
                assert text[phrase["start"] : phrase["end"]] == phrase["text"] and phrase["weight"] > 0


def _tiny_transformer(folder, design: str) -> TransformerTopicStance:
    torch.manual_seed(1)
    model = TransformerTopicStance.from_base(
        folder, SCHEMA.topic_ids, [t.proposition for t in SCHEMA.topics], 3, design, max_length=48, batch_size=2
    )
    for head in (model.net.topic_head, model.net.stance_head):  # random heads, so the test is not trivial
        torch.nn.init.normal_(head.weight, std=0.5)
        torch.nn.init.normal_(head.bias, std=0.5)
    return model


@pytest.mark.parametrize("design", ["per_topic", "attention", "pair"])
def test_transformer_token_contributions_add_up_to_the_logits(tiny_base_model, design):
    model = _tiny_transformer(tiny_base_model, design)
    texts = [TEXT, "The allies will resume the drills."]
    topic_p, stance_p = model.predict_scores(texts)
    parts = model.token_contributions([normalize_text(t) for t in texts])
    topic_bias = model.net.topic_head.bias.detach().numpy()
    stance_bias = model.net.stance_head.bias.detach().numpy()
    for i, part in enumerate(parts):
        np.testing.assert_allclose(part["topic"].sum(dim=1).numpy() + topic_bias, _logit(topic_p[i]), atol=1e-3)
        if design == "pair":
            logits = np.stack([s.sum(dim=1).numpy() + stance_bias for _, s in part["pair"]])
        else:
            logits = part["stance"].sum(dim=2).numpy() + stance_bias.reshape(len(SCHEMA.topics), 3)
        softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        np.testing.assert_allclose(softmax, stance_p[i], atol=1e-4)
    (attribution,) = model.word_attributions(texts[:1])
    assert attribution.topic.shape == (4, len(split_words(TEXT)))
    assert attribution.stance.shape == (4, 3, len(split_words(TEXT)))


def test_embed_token_shares_add_up_to_the_embedding(tiny_base_model, gold):
    embedder = SentenceEmbedder.from_folder(tiny_base_model, max_length=48, batch_size=2)
    X = as_features(embedder.embed(gold.texts))
    model = EmbedTopicStance(
        embedder,
        fit_topic_heads(X, gold.topics, "logreg", 1.0, None, 0),
        fit_stance_heads(X, gold.stances, 3, "crossed", 1.0, None, 0),
        3,
    )
    ((_, shares),) = model.token_shares([normalize_text(TEXT)])
    np.testing.assert_allclose(shares.sum(axis=0), embedder.embed([TEXT])[0], atol=1e-5)
    (attribution,) = model.word_attributions([TEXT])
    assert np.abs(attribution.topic).sum() > 0 and attribution.stance.shape == (4, 3, len(split_words(TEXT)))


def test_a_blend_weights_its_members_evidence(small_dataset, gold):
    strong = TfidfTopicStance(topic_C=4.0).fit(gold.texts, gold.topics, gold.stances)
    weak = TfidfTopicStance(topic_C=0.5).fit(gold.texts, gold.topics, gold.stances)
    members = [Predictor(m, make_meta("baseline", SCHEMA, [0.5] * 4), SCHEMA) for m in (strong, weak)]
    only_first = BlendedTopicStance(members, [1.0, 0.0], [1.0, 0.0], ["a", "b"]).word_attributions([TEXT])[0]
    (alone,) = strong.word_attributions([TEXT])
    scale = np.abs(alone.topic).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(only_first.topic, alone.topic / scale)
    half = BlendedTopicStance(members, [0.5, 0.5], [0.5, 0.5], ["a", "b"]).word_attributions([TEXT])[0]
    (other,) = weak.word_attributions([TEXT])
    expected = blend_attributions([alone, other], [0.5, 0.5], [0.5, 0.5])
    np.testing.assert_allclose(half.stance, expected.stance)
    assert not np.allclose(half.topic, only_first.topic)


def test_keyword_rules_point_at_the_words_they_matched():
    rules = KeywordRules(SCHEMA.topic_ids)
    (attribution,) = rules.word_attributions(["The allies resumed the combined drills near the DMZ."])
    t = SCHEMA.topic_ids.index("exercises")
    words = attribution.words
    marked = [words.text[a:b] for (a, b), v in zip(words.original, attribution.topic[t], strict=True) if v > 0]
    assert marked == ["drills"]
    assert not attribution.stance.any()


def test_a_model_without_word_attributions_is_one_line():
    class Opaque:
        def predict_scores(self, texts):
            return np.full((len(texts), 4), 0.9), np.full((len(texts), 4, 3), 1 / 3)

    predictor = Predictor(Opaque(), make_meta("opaque", SCHEMA, [0.5] * 4), SCHEMA)
    with pytest.raises(Exception, match="the opaque family cannot explain its labels") as info:
        predictor.explain(["x"])
    assert "\n" not in str(info.value)
