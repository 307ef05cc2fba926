"""Is a block of text English? A cheap script and stop-word check, then py3langid.

py3langid ships its model inside the wheel, so nothing is downloaded. Most English
paragraphs are settled by the stop-word check and never reach the model.
"""

from __future__ import annotations

import functools
import re
import unicodedata

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "his",
        "in",
        "into",
        "is",
        "it",
        "its",
        "not",
        "of",
        "on",
        "or",
        "our",
        "said",
        "says",
        "she",
        "that",
        "the",
        "their",
        "them",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "which",
        "while",
        "who",
        "will",
        "with",
        "would",
    }
)
# English prose runs at roughly 35-50% stop words; headlines and lists run lower.
_STOPWORD_SHARE = 0.15
# Below the confidence asked for, another language is still believed when it leads with at
# least this probability and English has less than that one.
_LEADER_MIN = 0.5
_ENGLISH_RULED_OUT = 1e-4


@functools.cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def _non_latin_share(text: str) -> float:
    if text.isascii():
        return 0.0
    letters = non_latin = 0
    for ch in text:
        if ch.isalpha():
            letters += 1
            if ord(ch) > 0x24F and "LATIN" not in unicodedata.name(ch, ""):
                non_latin += 1
    return non_latin / letters if letters else 0.0


def is_english(text: str, min_words: int = 5, confidence: float = 0.9) -> bool:
    """False when ``text`` is confidently in another language, or English is all but ruled out.

    Short texts (under ``min_words`` words) in Latin script are given the benefit of the doubt.
    """
    if _non_latin_share(text) > 0.3:
        return False
    words = _WORD.findall(text, 0, 600)  # the first hundred words or so settle it
    if len(words) < min_words:
        return True
    if sum(w.lower() in _STOPWORDS for w in words) / len(words) >= _STOPWORD_SHARE:
        return True
    identifier = _identifier()
    lang, prob = identifier.classify(text)
    if lang == "en" or prob >= confidence:
        return lang == "en"
    if prob < _LEADER_MIN:
        return True
    # Short lines leave the identifier unsure between neighbours (Spanish or Portuguese?);
    # when English itself is all but ruled out, the line is not English either way.
    return dict(identifier.rank(text)).get("en", 0.0) >= _ENGLISH_RULED_OUT
