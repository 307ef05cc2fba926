"""Sample weights of the linear heads (``inference.tfidf``): what self-training's pseudo-labelled
paragraphs count for. A weight of 0 must equal leaving the paragraph out."""

import numpy as np
import pytest
import scipy.sparse as sp

from inference.tfidf import fit_stance_heads, fit_topic_heads, stance_scores, topic_scores

N_GOLD, N_EXTRA = 60, 25


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = sp.csr_matrix(rng.normal(size=(N_GOLD + N_EXTRA, 12)))
    topics = (rng.random((N_GOLD + N_EXTRA, 2)) < 0.4).astype(int)
    stances = np.where(topics == 1, rng.integers(0, 3, size=topics.shape), -1)
    return X, topics, stances


def _weights(extra: float) -> np.ndarray:
    return np.r_[np.ones(N_GOLD), np.full(N_EXTRA, extra)]


@pytest.mark.parametrize("class_weight", ["balanced", None])
def test_zero_weight_extras_are_the_same_as_none(data, class_weight):
    X, topics, stances = data
    alone = fit_topic_heads(X[:N_GOLD], topics[:N_GOLD], "logreg", 4.0, class_weight, 13)
    zeroed = fit_topic_heads(X, topics, "logreg", 4.0, class_weight, 13, sample_weight=_weights(0.0))
    np.testing.assert_allclose(topic_scores(alone, X), topic_scores(zeroed, X), atol=1e-9)
    for design in ("per_topic", "crossed"):
        alone = fit_stance_heads(X[:N_GOLD], stances[:N_GOLD], 3, design, 2.0, class_weight, 13)
        zeroed = fit_stance_heads(X, stances, 3, design, 2.0, class_weight, 13, sample_weight=_weights(0.0))
        np.testing.assert_allclose(stance_scores(alone, X, 2, 3), stance_scores(zeroed, X, 2, 3), atol=1e-6)


def test_weights_change_the_heads(data):
    X, topics, stances = data
    for model in ("logreg", "svm"):
        half = topic_scores(fit_topic_heads(X, topics, model, 4.0, "balanced", 13, sample_weight=_weights(0.5)), X)
        full = topic_scores(fit_topic_heads(X, topics, model, 4.0, "balanced", 13), X)
        assert np.abs(half - full).max() > 1e-3, model
    half = fit_stance_heads(X, stances, 3, "per_topic", 2.0, "balanced", 13, sample_weight=_weights(0.5))
    full = fit_stance_heads(X, stances, 3, "per_topic", 2.0, "balanced", 13)
    assert np.abs(stance_scores(half, X, 2, 3) - stance_scores(full, X, 2, 3)).max() > 1e-3
    # unit weights are the unweighted fit
    ones = fit_topic_heads(X, topics, "logreg", 4.0, "balanced", 13, sample_weight=np.ones(len(topics)))
    np.testing.assert_allclose(
        topic_scores(ones, X), topic_scores(fit_topic_heads(X, topics, "logreg", 4.0, "balanced", 13), X)
    )
