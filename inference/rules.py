"""Keyword rules: what a user might write instead of a model (a floor every model must beat).

A topic applies when any of its patterns matches; stance is always ``neutral``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

KEYWORDS: dict[str, tuple[str, ...]] = {
    "cost_sharing": (
        r"cost[- ]shar",
        r"burden[- ]shar",
        r"special measures agreement",
        r"\bSMA\b",
        r"host[- ]nation (?:support|funding)",
        r"pay (?:more|for (?:the )?(?:us |american )?troops)",
    ),
    "exercises": (
        r"\bdrills?\b",
        r"\b(?:joint|combined|military|trilateral) exercises?\b",
        r"war ?games?",
        r"\bmanoeuvres\b|\bmaneuvers\b",
        r"freedom shield|freedom edge|ulchi|foal eagle|key resolve|team spirit",
    ),
    "opcon": (
        r"\bOPCON\b",
        r"operational control",
        r"wartime command",
        r"combined forces command",
    ),
    "inter_korean": (
        r"inter-korean",
        r"\bunification\b|\breunification\b",
        r"seoul and pyongyang|pyongyang and seoul|two koreas",
        r"kaesong|mount kumgang",
        r"loudspeakers?|balloons?",
        r"liaison office|military agreement",
    ),
}


class KeywordRules:
    """A regex list per topic; the same ``predict_scores`` interface as the trained models."""

    def __init__(self, topic_ids: Sequence[str], n_stance_classes: int = 3, neutral_index: int = 2):
        unknown = set(topic_ids) - set(KEYWORDS)
        if unknown:
            raise ValueError(f"no keyword rules for topic(s) {sorted(unknown)}")
        self.topic_ids = tuple(topic_ids)
        self.n_stance_classes = n_stance_classes
        self.neutral_index = neutral_index
        self.patterns_ = [re.compile("|".join(KEYWORDS[t]), re.IGNORECASE) for t in self.topic_ids]

    def word_attributions(self, texts: Sequence[str]) -> list:
        """The words of the patterns that matched, one point per match; stance has none."""
        from inference.explain import WordAttribution, split_words

        out = []
        for text in texts:
            words = split_words(text)
            topic = np.zeros((len(self.topic_ids), len(words)))
            for t, pattern in enumerate(self.patterns_):
                for match in pattern.finditer(text):
                    for w, (start, end) in enumerate(words.original):
                        if start < match.end() and match.start() < end:
                            topic[t, w] += 1.0
            stance = np.zeros((len(self.topic_ids), self.n_stance_classes, len(words)))
            out.append(WordAttribution(words, topic, stance))
        return out

    def predict_scores(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        topics = np.array([[float(bool(p.search(text))) for p in self.patterns_] for text in texts])
        topics = topics.reshape(len(texts), len(self.topic_ids))
        stance = np.zeros((len(texts), len(self.topic_ids), self.n_stance_classes))
        stance[:, :, self.neutral_index] = 1.0
        return topics, stance
