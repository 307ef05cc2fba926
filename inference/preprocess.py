"""Text preprocessing shared by training and inference (training imports it from here).

Functions live at module level so that scikit-learn pipelines holding them pickle and load.
"""

from __future__ import annotations

import re
import unicodedata

_QUOTES = str.maketrans({"‘": "'", "’": "'", "‚": "'", "“": '"', "”": '"', "„": '"', "–": "-", "—": "-"})
_SPACE = re.compile(r"\s+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def normalize_text(text: str) -> str:
    """Unicode NFKC, straight quotes and dashes, single spaces, lower case, numbers as ``0``.

    Numbers are folded because the figure in a paragraph (a year, a troop count, a won
    amount) says nothing about its topic or stance, and a model that keys on them
    would not carry over to next year's reporting.
    """
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    text = _NUMBER.sub("0", text)
    return _SPACE.sub(" ", text).strip().lower()
