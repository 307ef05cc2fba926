"""The TF-IDF model family: n-gram features, one-vs-rest topic heads, target-conditioned stance.

The estimator lives in ``inference`` because a saved model must load without ``training``;
the recipe, search and tracking that produce it live in ``training.baseline``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import LinearSVC

from inference.preprocess import normalize_text

TOPIC_MODELS = ("logreg", "svm")
STANCE_DESIGNS = ("per_topic", "crossed")


def normalize_texts(texts: Sequence[str]) -> list[str]:
    """Vectorised :func:`normalize_text`, at module level so pipelines pickle."""
    return [normalize_text(t) for t in texts]


def build_features(
    word_ngrams: tuple[int, int] = (1, 2),
    char_ngrams: tuple[int, int] = (2, 5),
    min_df: int = 2,
    max_features: int | None = None,
    sublinear_tf: bool = True,
) -> Pipeline:
    """Normalisation, then word and character n-gram TF-IDF side by side."""
    return Pipeline(
        [
            ("normalize", FunctionTransformer(normalize_texts)),
            (
                "tfidf",
                FeatureUnion(
                    [
                        (
                            "word",
                            TfidfVectorizer(
                                ngram_range=tuple(word_ngrams),
                                min_df=min_df,
                                max_features=max_features,
                                sublinear_tf=sublinear_tf,
                                token_pattern=r"(?u)\b\w[\w'-]*\b",
                            ),
                        ),
                        (
                            "char",
                            TfidfVectorizer(
                                analyzer="char_wb",
                                ngram_range=tuple(char_ngrams),
                                min_df=min_df,
                                max_features=max_features,
                                sublinear_tf=sublinear_tf,
                            ),
                        ),
                    ]
                ),
            ),
        ]
    )


def _binary_classifier(model: str, C: float, class_weight: str | None, seed: int):
    if model == "logreg":
        return LogisticRegression(C=C, class_weight=class_weight, max_iter=5000, solver="liblinear", random_state=seed)
    if model == "svm":
        svm = LinearSVC(C=C, class_weight=class_weight, random_state=seed)
        return CalibratedClassifierCV(svm, method="sigmoid", cv=3)
    raise ValueError(f"unknown topic model {model!r}; expected one of {', '.join(TOPIC_MODELS)}")


class _Constant:
    """A 'classifier' for a column with one class in training: always that class."""

    def __init__(self, label: int):
        self.classes_ = np.array([label])

    def predict_proba(self, X) -> np.ndarray:
        return np.ones((X.shape[0], 1))


def fit_topic_heads(
    X,
    Y: np.ndarray,
    model: str,
    C: float,
    class_weight: str | None,
    seed: int,
    sample_weight: np.ndarray | None = None,
) -> list:
    """One binary classifier per topic column of ``Y`` (n x T, 0/1).

    ``sample_weight`` (one per row; None = 1 each) scales each row's loss, e.g. a
    pseudo-labelled paragraph counts less than a gold one (``training.adapt``).
    """
    heads = []
    for t in range(Y.shape[1]):
        y = Y[:, t]
        if len(np.unique(y)) < 2:
            heads.append(_Constant(int(y[0])))
        elif sample_weight is None:
            heads.append(_binary_classifier(model, C, class_weight, seed).fit(X, y))
        else:
            heads.append(_binary_classifier(model, C, class_weight, seed).fit(X, y, sample_weight=sample_weight))
    return heads


def topic_scores(heads: list, X) -> np.ndarray:
    """Probability of each topic (n x T)."""
    out = np.zeros((X.shape[0], len(heads)))
    for t, head in enumerate(heads):
        proba = head.predict_proba(X)
        classes = list(head.classes_)
        out[:, t] = proba[:, classes.index(1)] if 1 in classes else 0.0
    return out


def _cross(X, topic_index: np.ndarray, n_topics: int):
    """Shared features plus a copy in the block of the pair's topic: [x, 0, .., x, .., 0]."""
    blocks = [X]
    for t in range(n_topics):
        mask = sp.diags((topic_index == t).astype(np.float64))
        blocks.append(mask @ X)
    return sp.hstack(blocks, format="csr")


def _stance_classifier(C: float, class_weight: str | None, seed: int) -> LogisticRegression:
    return LogisticRegression(C=C, class_weight=class_weight, max_iter=5000, random_state=seed)


def fit_stance_heads(
    X,
    S: np.ndarray,
    n_classes: int,
    design: str,
    C: float,
    class_weight: str | None,
    seed: int,
    sample_weight: np.ndarray | None = None,
) -> list | LogisticRegression:
    """Stance models on gold (paragraph, topic) pairs; ``S`` is n x T with -1 where absent.

    ``sample_weight`` is one weight per paragraph (row of ``S``; None = 1 each), given to
    each of its pairs.
    """
    n_topics = S.shape[1]

    def weights(rows: np.ndarray) -> dict:
        return {} if sample_weight is None else {"sample_weight": np.asarray(sample_weight, dtype=float)[rows]}

    if design == "per_topic":
        heads = []
        for t in range(n_topics):
            rows = np.flatnonzero(S[:, t] >= 0)
            y = S[rows, t]
            if len(rows) == 0:
                heads.append(_Constant(n_classes - 1))
            elif len(np.unique(y)) < 2:
                heads.append(_Constant(int(y[0])))
            else:
                heads.append(_stance_classifier(C, class_weight, seed).fit(X[rows], y, **weights(rows)))
        return heads
    if design == "crossed":
        rows, topics = np.nonzero(S >= 0)
        return _stance_classifier(C, class_weight, seed).fit(
            _cross(X[rows], topics, n_topics), S[rows, topics], **weights(rows)
        )
    raise ValueError(f"unknown stance design {design!r}; expected one of {', '.join(STANCE_DESIGNS)}")


def stance_scores(heads, X, n_topics: int, n_classes: int) -> np.ndarray:
    """Stance probabilities for every (paragraph, topic) pair (n x T x S)."""
    n = X.shape[0]
    out = np.zeros((n, n_topics, n_classes))
    if isinstance(heads, list):
        for t, head in enumerate(heads):
            out[:, t, head.classes_] = head.predict_proba(X)
        return out
    rows = np.repeat(np.arange(n), n_topics)
    topics = np.tile(np.arange(n_topics), n)
    proba = heads.predict_proba(_cross(X[rows], topics, n_topics))
    flat = np.zeros((n * n_topics, n_classes))
    flat[:, heads.classes_] = proba
    return flat.reshape(n, n_topics, n_classes)


class CachedCharFeatures:
    """The fitted ``char_wb`` TF-IDF vectorizer's exact output, computed word by word with a cache.

    ``char_wb`` n-grams never cross a word boundary, so a paragraph's n-gram counts are the
    sum of its words' counts. Words repeat across news paragraphs (Zipf), so looking each
    word's vocabulary indices up in a cache replaces most of scikit-learn's per-character
    Python loop: the transform gives the same matrix several times faster.
    """

    def __init__(self, vectorizer: TfidfVectorizer, max_cache: int = 300_000):
        if vectorizer.analyzer != "char_wb":
            raise ValueError("CachedCharFeatures needs a fitted char_wb TfidfVectorizer")
        self.vectorizer = vectorizer
        self.max_cache = max_cache
        self._cache: dict[str, list[int]] = {}

    def _word_indices(self, word: str) -> list[int]:
        indices = self._cache.get(word)
        if indices is None:
            vocabulary = self.vectorizer.vocabulary_
            indices = [vocabulary[g] for g in self.vectorizer._char_wb_ngrams(word) if g in vocabulary]
            if len(self._cache) >= self.max_cache:
                self._cache.clear()
            self._cache[word] = indices
        return indices

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        preprocess = self.vectorizer.build_preprocessor()
        white = self.vectorizer._white_spaces
        word_indices = self._word_indices
        indices: list[int] = []
        lengths = []
        for text in texts:
            start = len(indices)
            for word in white.sub(" ", preprocess(text)).split():
                indices.extend(word_indices(word))
            lengths.append(len(indices) - start)
        rows = np.repeat(np.arange(len(lengths)), lengths)
        # COO to CSR sums repeated (row, n-gram) entries in compiled code.
        counts = sp.coo_matrix(
            (np.ones(len(indices), dtype=np.float64), (rows, np.asarray(indices, dtype=np.int64))),
            shape=(len(texts), len(self.vectorizer.vocabulary_)),
        ).tocsr()
        return self.vectorizer._tfidf.transform(counts, copy=False)


def fast_transform(features: Pipeline, texts: Sequence[str]) -> sp.csr_matrix:
    """``features.transform(texts)`` for a :func:`build_features` pipeline, with the char cache."""
    normalized = features.named_steps["normalize"].transform(list(texts))
    blocks = []
    for _, vectorizer in features.named_steps["tfidf"].transformer_list:
        if vectorizer.analyzer == "char_wb":
            cached = getattr(vectorizer, "_allystance_cache", None)
            if cached is None:
                cached = CachedCharFeatures(vectorizer)
                vectorizer._allystance_cache = cached
            blocks.append(cached.transform(normalized))
        else:
            blocks.append(vectorizer.transform(normalized))
    return sp.hstack(blocks, format="csr")


class TfidfTopicStance(BaseEstimator):
    """TF-IDF features with per-topic binary heads and a target-conditioned stance model.

    ``fit`` takes texts, a topic matrix (n x T, 0/1) and a stance matrix (n x T, class
    index or -1 where the topic is absent). ``predict_scores`` gives topic probabilities
    (n x T) and stance probabilities for every topic (n x T x S); decisions (thresholds,
    masking stance to predicted topics) are the Predictor's job.
    """

    def __init__(
        self,
        n_stance_classes: int = 3,
        word_ngrams: tuple[int, int] = (1, 2),
        char_ngrams: tuple[int, int] = (2, 5),
        min_df: int = 2,
        max_features: int | None = None,
        sublinear_tf: bool = True,
        topic_model: str = "logreg",
        topic_C: float = 4.0,
        stance_design: str = "per_topic",
        stance_C: float = 2.0,
        class_weight: str | None = "balanced",
        seed: int = 13,
    ):
        self.n_stance_classes = n_stance_classes
        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.min_df = min_df
        self.max_features = max_features
        self.sublinear_tf = sublinear_tf
        self.topic_model = topic_model
        self.topic_C = topic_C
        self.stance_design = stance_design
        self.stance_C = stance_C
        self.class_weight = class_weight
        self.seed = seed

    def make_features(self) -> Pipeline:
        return build_features(self.word_ngrams, self.char_ngrams, self.min_df, self.max_features, self.sublinear_tf)

    def fit(self, texts: Sequence[str], topics: np.ndarray, stances: np.ndarray) -> TfidfTopicStance:
        features = self.make_features()
        X = features.fit_transform(list(texts))
        fast_transform(features, texts)  # fills the word cache, which is saved with the model
        return self.set_fitted(
            features,
            fit_topic_heads(X, topics, self.topic_model, self.topic_C, self.class_weight, self.seed),
            fit_stance_heads(
                X, stances, self.n_stance_classes, self.stance_design, self.stance_C, self.class_weight, self.seed
            ),
        )

    def set_fitted(self, features: Pipeline, topic_heads: list, stance_heads) -> TfidfTopicStance:
        """Install parts fitted elsewhere (the hyper-parameter search reuses one feature fit)."""
        self.features_ = features
        self.topic_heads_ = topic_heads
        self.stance_heads_ = stance_heads
        self.n_topics_ = len(topic_heads)
        return self

    def predict_scores(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        X = fast_transform(self.features_, texts)
        return (
            topic_scores(self.topic_heads_, X),
            stance_scores(self.stance_heads_, X, self.n_topics_, self.n_stance_classes),
        )

    def word_attributions(self, texts: Sequence[str]) -> list:
        """Each word's contribution to the logits (coefficient x feature), per paragraph."""
        from inference.explain import WordAttribution, split_words

        X = fast_transform(self.features_, texts)
        weights = stacked_weights(
            *head_coefficients(self.topic_heads_, self.stance_heads_, self.n_stance_classes, X.shape[1])
        )
        out = []
        for i, text in enumerate(texts):
            words = split_words(text)
            shares = feature_shares(self.features_, words, X[i])
            out.append(
                WordAttribution(words, *linear_attributions(shares, weights, self.n_topics_, self.n_stance_classes))
            )
        return out


# -- evidence (allystance predict --explain; see inference.explain) ---------------------------


def _class_coefficients(model: LogisticRegression, n_classes: int) -> np.ndarray:
    """A fitted logistic regression as one weight row per stance class (S x F): the logit of
    each class up to a shared term. A two-class model scores its second class against its
    first; classes it never saw get zeros (they are never predicted)."""
    coef = np.asarray(model.coef_)
    out = np.zeros((n_classes, coef.shape[1]))
    classes = list(model.classes_)
    if len(classes) == 2:
        out[classes[1]] = coef[0]
    else:
        out[classes] = coef
    return out


def _binary_coefficients(head, n_features: int) -> np.ndarray:
    """The weights of a topic head's logit (F): logistic regression's own, a calibrated SVM's
    averaged over its folds with each fold's sigmoid slope; none for a constant head."""
    if isinstance(head, _Constant):
        return np.zeros(n_features)
    if isinstance(head, CalibratedClassifierCV):
        folds = [-fold.calibrators[0].a_ * np.asarray(fold.estimator.coef_[0]) for fold in head.calibrated_classifiers_]
        return np.mean(folds, axis=0)
    return np.asarray(head.coef_[0])


def head_coefficients(
    topic_heads: list, stance_heads, n_classes: int, n_features: int
) -> tuple[np.ndarray, np.ndarray]:
    """Linear weights of the heads over the features: topic logits (T x F) and stance logits
    per topic (T x S x F), for either stance design."""
    n_topics = len(topic_heads)
    topic = np.stack([_binary_coefficients(h, n_features) for h in topic_heads])
    stance = np.zeros((n_topics, n_classes, n_features))
    if isinstance(stance_heads, list):
        for t, head in enumerate(stance_heads):
            if not isinstance(head, _Constant):
                stance[t] = _class_coefficients(head, n_classes)
        return topic, stance
    crossed = _class_coefficients(stance_heads, n_classes)  # S x F(T + 1): shared block, then one per topic
    for t in range(n_topics):
        stance[t] = crossed[:, :n_features] + crossed[:, n_features * (t + 1) : n_features * (t + 2)]
    return topic, stance


def stacked_weights(topic: np.ndarray, stance: np.ndarray) -> np.ndarray:
    """The heads' weights as one F x (T + T*S) matrix, columns: topics, then (topic, stance)."""
    return np.ascontiguousarray(np.vstack([topic, stance.reshape(-1, stance.shape[-1])]).T)


def linear_attributions(shares, weights: np.ndarray, n_topics: int, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Each word's contribution to every logit: ``shares`` (W x F, the part of each feature
    each word carries; a matrix, or (rows, columns, values) of its non-zero entries) times
    the stacked weights (:func:`stacked_weights`); topic T x W, stance T x S x W."""
    if isinstance(shares, tuple):
        rows, cols, vals, n_words = shares
        per_word = np.zeros((n_words, weights.shape[1]))
        np.add.at(per_word, rows, vals[:, None] * weights[cols])
    else:
        per_word = np.asarray(shares @ weights)  # W x (T + T*S)
    return per_word[:, :n_topics].T, per_word[:, n_topics:].reshape(-1, n_topics, n_classes).transpose(1, 2, 0)


def _nearest_word(words, start: int) -> list[int]:
    """The word before a position in the normalised text, else the first word; none if none."""
    before = [i for i, (_, end) in enumerate(words.spans) if end <= start]
    return [before[-1]] if before else ([0] if len(words) else [])


def feature_shares(features: Pipeline, words, row: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """How a paragraph's TF-IDF row (1 x F) divides among its words: the entries (rows,
    columns, values; repeats add up) of a W x F matrix whose columns sum to the row, and W.

    A word n-gram's value is split among its occurrences and, within one, among its words;
    a character n-gram's among its occurrences in the whitespace chunks and, within a chunk,
    among its words; a chunk with no word (a lone dash) goes to the word before it.
    """
    columns, values = row.indices, row.data
    order = np.argsort(columns)
    columns, values = columns[order], values[order]

    def value_of(cols: np.ndarray) -> np.ndarray:
        at = np.clip(np.searchsorted(columns, cols), 0, max(len(columns) - 1, 0))
        return np.where(columns[at] == cols, values[at], 0.0) if len(columns) else np.zeros(len(cols))

    parts_w, parts_c, parts_s = [], [], []  # per occurrence: word, column, share of an occurrence
    offset = 0
    for _, vectorizer in features.named_steps["tfidf"].transformer_list:
        if vectorizer.analyzer == "char_wb":
            cache = getattr(vectorizer, "_allystance_cache", None) or CachedCharFeatures(vectorizer)
            vectorizer._allystance_cache = cache
            for match in re.finditer(r"\S+", words.normalized):
                grams = np.asarray(cache._word_indices(match.group()), dtype=np.int64) + offset
                hit = words.word_of(match.start(), match.end()) or _nearest_word(words, match.start())
                for w in hit:
                    parts_w.append(np.full(len(grams), w))
                    parts_c.append(grams)
                    parts_s.append(np.full(len(grams), 1.0 / len(hit)))
        else:
            tokens = [words.normalized[s:e] for s, e in words.spans]
            low, high = vectorizer.ngram_range
            for n in range(low, high + 1):
                for i in range(len(tokens) - n + 1):
                    j = vectorizer.vocabulary_.get(" ".join(tokens[i : i + n]))
                    if j is not None:
                        parts_w.append(np.arange(i, i + n))
                        parts_c.append(np.full(n, offset + j))
                        parts_s.append(np.full(n, 1.0 / n))
        offset += len(vectorizer.vocabulary_)
    if not parts_w:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0), len(words)
    rows, cols, share = np.concatenate(parts_w), np.concatenate(parts_c), np.concatenate(parts_s)
    # A feature's value is split evenly over its occurrences: an occurrence's words carry
    # ``share`` of one occurrence, and a feature's occurrences count once per occurrence.
    _, inverse = np.unique(cols, return_inverse=True)
    occurrences = np.bincount(inverse, weights=share)
    return rows, cols, value_of(cols) * share / occurrences[inverse], len(words)
