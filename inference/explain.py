"""Evidence behind a label: the words and phrases that drove each topic and its stance.

Every family explains through the same unit, the paragraph's words (the word n-gram
vectorizer's tokens over the normalised text, each mapped back to its span in the original
text), and the same quantity: each word's additive contribution to the logits the heads
read, so that the contributions of a paragraph's words add up to its logit less the bias.

- TF-IDF (``inference.tfidf``): coefficient x feature. A word n-gram's value is shared by
  the words it spans, a character n-gram's by the words of the whitespace chunk it came from.
- Frozen encoder (``inference.embed``) and fine-tuned transformer with per-topic or pair
  stance heads: the pooled encoding is a mean of token states, so each token's state,
  divided as the mean divides it, times the head's weights; sub-word tokens add up to words.
- Transformer with the attention stance head: the head reads, per topic, an attention-weighted
  sum of token states, so each token's contribution is its attention weight times its state
  times the head's weights (where the head looked, and what it read there).
- Blend (``inference.blend``): each member's contributions, scaled to the same total size per
  topic, averaged with the blend's topic and stance weights.
- Keyword rules: the words of the patterns that matched; stance is always neutral.

For a predicted topic, the evidence is the words with the largest positive contribution to
the topic's logit; for its stance, the words that push the predicted stance over the
runner-up (logit of the stance minus logit of the runner-up), and the words that push the
other way. Neighbouring chosen words are joined into phrases. Weights are in the model's
logit units (for a blend: shares of each member's total, weighted), comparable within a
paragraph, not across models.

Nothing here runs unless asked: ``allystance predict --explain`` calls
:meth:`inference.model_io.Predictor.explain`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from inference.preprocess import _NUMBER, _QUOTES, normalize_text

# The word vectorizer's token pattern (inference.tfidf.build_features).
WORD = re.compile(r"(?u)\b\w[\w'-]*\b")
TOP_WORDS = 5  # words chosen per kind of evidence, before neighbours are joined into phrases
MIN_SHARE = 0.2  # a word weaker than this share of the strongest is left out (noise, "the")


@dataclass(frozen=True)
class Words:
    """A paragraph's words: the normalised text the models read, each word's span in it, and
    its span in the original text."""

    text: str
    normalized: str
    spans: list[tuple[int, int]]  # in ``normalized``
    original: list[tuple[int, int]]  # in ``text``

    def __len__(self) -> int:
        return len(self.spans)

    def word_of(self, start: int, end: int) -> list[int]:
        """Indices of the words that overlap the normalised span ``[start, end)``."""
        return [i for i, (s, e) in enumerate(self.spans) if s < end and start < e]


@dataclass
class WordAttribution:
    """Each word's contribution to the logits: ``topic`` (T x W) and ``stance`` (T x S x W)."""

    words: Words
    topic: np.ndarray
    stance: np.ndarray


def normalize_with_offsets(text: str) -> tuple[str, list[tuple[int, int]]]:
    """:func:`inference.preprocess.normalize_text` and, for each of its characters, the span
    of the original text it came from.

    Done character by character; when that differs from normalising the whole text (a
    combining sequence that NFKC composes), the spans are spread evenly instead, which is
    close enough to highlight words.
    """
    chars: list[tuple[str, tuple[int, int]]] = []
    for i, ch in enumerate(text):
        if ch.isascii():  # NFKC and the quote table leave ASCII alone
            chars.append((ch, (i, i + 1)))
            continue
        for c in unicodedata.normalize("NFKC", ch).translate(_QUOTES):
            chars.append((c, (i, i + 1)))
    joined = "".join(c for c, _ in chars)
    folded: list[tuple[str, tuple[int, int]]] = []
    last = 0
    for match in _NUMBER.finditer(joined):
        folded += chars[last : match.start()]
        folded.append(("0", (chars[match.start()][1][0], chars[match.end() - 1][1][1])))
        last = match.end()
    folded += chars[last:]
    out: list[tuple[str, tuple[int, int]]] = []
    for c, span in folded:
        if c.isspace():
            if out and out[-1][0] != " ":
                out.append((" ", span))
            continue
        out += [(lower, span) for lower in c.lower()]
    while out and out[-1][0] == " ":
        out.pop()
    normalized = "".join(c for c, _ in out)
    expected = normalize_text(text)
    if normalized != expected:  # rare Unicode (see the docstring): spans spread evenly
        scale = len(text) / max(len(expected), 1)
        return expected, [(int(i * scale), max(int(i * scale) + 1, int((i + 1) * scale))) for i in range(len(expected))]
    return normalized, [span for _, span in out]


def split_words(text: str) -> Words:
    """The words of a paragraph as the models see them, with both spans."""
    normalized, offsets = normalize_with_offsets(text)
    spans, original = [], []
    for match in WORD.finditer(normalized):
        spans.append((match.start(), match.end()))
        original.append((offsets[match.start()][0], offsets[match.end() - 1][1]))
    return Words(text, normalized, spans, original)


def tokens_to_words(words: Words, offsets: Sequence[tuple[int, int]]) -> np.ndarray:
    """A token x word matrix that adds sub-word tokens' contributions into words: a token
    (character offsets into the normalised text) goes to the words it overlaps, split evenly;
    special tokens (empty offsets) and punctuation go nowhere."""
    out = np.zeros((len(offsets), len(words)))
    for i, (start, end) in enumerate(offsets):
        if end <= start:
            continue
        hit = words.word_of(start, end)
        for w in hit:
            out[i, w] = 1.0 / len(hit)
    return out


# -- evidence -------------------------------------------------------------------------------


def _phrases(words: Words, values: np.ndarray, top: int) -> list[dict]:
    """The ``top`` words with the largest positive value, neighbours joined into phrases,
    strongest first."""
    floor = MIN_SHARE * float(values.max()) if len(values) else 0.0
    order = [int(i) for i in np.argsort(-values, kind="stable")[:top] if values[i] > 0 and values[i] >= floor]
    chosen = sorted(order)
    groups: list[list[int]] = []
    for i in chosen:
        if groups and groups[-1][-1] == i - 1:
            groups[-1].append(i)
        else:
            groups.append([i])
    out = []
    for group in groups:
        start, end = words.original[group[0]][0], words.original[group[-1]][1]
        weight = float(values[group].sum())
        out.append({"text": words.text[start:end], "weight": round(weight, 4), "start": start, "end": end})
    return sorted(out, key=lambda p: -p["weight"])


def evidence(
    attribution: WordAttribution,
    topics: Sequence[str],
    stance: dict[str, str],
    stance_scores: dict[str, dict[str, float]],
    topic_ids: Sequence[str],
    stance_values: Sequence[str],
    top: int = TOP_WORDS,
) -> dict[str, dict]:
    """Per predicted topic: the phrases behind the topic, behind its stance (over the
    runner-up stance), and behind the runner-up."""
    out = {}
    for topic in topics:
        t = list(topic_ids).index(topic)
        chosen = stance[topic]
        ranked = sorted(stance_scores[topic].items(), key=lambda kv: -kv[1])
        runner_up = next(s for s, _ in ranked if s != chosen)
        s, r = list(stance_values).index(chosen), list(stance_values).index(runner_up)
        margin = attribution.stance[t, s] - attribution.stance[t, r]
        out[topic] = {
            "topic": _phrases(attribution.words, attribution.topic[t], top),
            "stance": _phrases(attribution.words, margin, top),
            "versus": runner_up,
            "versus_evidence": _phrases(attribution.words, -margin, top),
        }
    return out


def blend_attributions(
    parts: Sequence[WordAttribution], topic_weights: Sequence[float], stance_weights: Sequence[float]
) -> WordAttribution:
    """Members' contributions, each topic's scaled to unit total size, weighted and summed.

    Members score in different units (a TF-IDF logit is not a transformer's), so each is
    scaled per topic before the blend's weights apply.
    """

    def scaled(values: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        size = np.abs(values).sum(axis=axes, keepdims=True)
        return np.divide(values, size, out=np.zeros_like(values), where=size > 0)

    topic = sum(w * scaled(p.topic, (1,)) for w, p in zip(topic_weights, parts, strict=True))
    stance = sum(w * scaled(p.stance, (1, 2)) for w, p in zip(stance_weights, parts, strict=True))
    return WordAttribution(parts[0].words, np.asarray(topic), np.asarray(stance))
