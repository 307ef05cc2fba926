"""Wire copy's own codes, found by the wire's bracket grammar, so that only the story is kept.

Korean English-language wire copy, flattened by a scraper, reads

    (LEAD) Headline (ATTN: ADDS details in paras 4-5) By Name Name SEOUL, Dec. 28 (Yonhap) -- Story...
    ... the last sentence of the story. (END)

Its parts, by their form rather than by a list of strings:

- version marks: a bracketed run of upper-case words or ordinals, "(LEAD)", "(2nd LD)",
  "(URGENT)", "(LEAD-2nd LD)"; "(END)" after the last sentence;
- editor notes: an upper-case label and a colon in brackets, "(ATTN: ADDS ...)";
- the headline, repeated before the story;
- a byline, "By" and capitalised names, run into the dateline;
- the dateline where the story starts: a place in capitals, an optional date, an optional
  source in brackets and a dash ("SEOUL, Dec. 28 (Yonhap) --").

The dateline stays with the story, as in the labelled dataset; everything before it is cut.
Spans are (start, end, part) with part one of ``wire_code``, ``headline`` and ``byline``.
"""

from __future__ import annotations

import re

_CODE_WORD = r"(?:[A-Z][A-Z0-9]+|\d+(?:st|nd|rd|th))"  # two capitals at least: "(C)" is a copyright sign
# "(CNN) -- ..." and "(AP) --" are datelines, not version marks: a mark is not followed by a dash
_MARK = rf"\({_CODE_WORD}(?:[ -]{_CODE_WORD})*\)(?!\s*(?:--|—|–))"
_NOTE = r"\([A-Z]{2,}(?:\s[A-Z]{2,})?\s?:[^()]{0,300}(?:\([^()]{0,40}\)[^()]{0,300})*\)"
_CODE = re.compile(rf"\s*(?:{_MARK}|{_NOTE})")
_CODES_ONLY = re.compile(rf"(?:\s*(?:{_MARK}|{_NOTE}))+\s*")
_NAME = r"[A-Z](?:[a-z'’][\w'’.-]*)?"
_PERSON = rf"{_NAME}(?:\s+{_NAME}){{0,3}}"
_BYLINE_AT_END = re.compile(rf"(?<!\S)(By\s+{_PERSON}(?:(?:\s*,\s*|\s+and\s+){_PERSON})*)\s*$")
_DATELINE = re.compile(
    r"(?<![\w,])[A-Z][A-Z.'’-]+(?:\s+[A-Z][A-Z.'’-]+){0,3},?"
    r"(?:\s+[A-Z][a-z]{2,4}\.?\s+\d{1,2}(?:,\s*\d{4})?)?\s*(?:\([A-Z][\w .&-]{0,30}\)\s*)?"
    r"(?:--|—|–)(?=\s+[\"“‘'(]?[A-Z0-9])"  # the story starts with a capital after the dash
)
_CODE_AT_END = re.compile(rf"\s*({_MARK}|{_NOTE})\s*$")
_DASH = re.compile(r"--|—|–")
_END_MARK = re.compile(rf"(?<=[.!?\"”’'])\s+{_MARK}\s*$")
_SENTENCE_INSIDE = re.compile(r"[a-z0-9]{2}[.!?][\"”’']?\s")
_LEAD_CHARS = 600  # the dateline is looked for this far into a block
_HEADLINE_MAX_WORDS = 30


def is_codes_only(text: str) -> bool:
    """Whether ``text`` is nothing but version marks and editor notes ("(END)", "(ATTN: ...)")."""
    return text[:1] == "(" and _CODES_ONLY.fullmatch(text) is not None


def strip_marks(title: str) -> str:
    """A headline without the version marks in front of it ("(LEAD) Allies ..." -> "Allies ...")."""
    if title[:1] != "(":
        return title
    pos = 0
    while match := _CODE.match(title, pos):
        pos = match.end()
    return title[pos:].strip() or title


def split_end(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The span of a version mark after the last sentence ("... officials said. (END)"), or None."""
    if text[end - 1 : end] != ")":
        return None
    match = _END_MARK.search(text, max(start, end - 40), end)
    return None if match is None else (_lstrip(text, match.start(), end), end)


def split_lead(text: str, start: int, end: int, top: bool) -> list[tuple[int, int, str]]:
    """The wire furniture before the story in ``text[start:end]``, as spans with their part.

    Version marks and editor notes at the start are cut wherever they are. Before a dateline,
    the prefix is cut only when it parses whole: marks and notes, a headline (no final full
    stop, at most 30 words), a byline; a prefix that is only a headline is cut only at the top
    of the article (``top``), where a headline can be. Without a dateline, what follows a
    version mark is cut when it parses as a headline and notes. An empty list leaves the block
    alone.
    """
    parts: list[tuple[int, int, str]] = []
    pos = start
    while (match := _CODE.match(text, pos, end)) is not None:
        parts.append((_lstrip(text, match.start(), match.end()), match.end(), "wire_code"))
        pos = match.end()
    window = min(end, pos + _LEAD_CHARS)
    dateline = _DATELINE.search(text, pos, window) if _DASH.search(text, pos, window) else None
    if dateline is None:
        # after a version mark, a block without a dateline is the headline (and its notes)
        return parts + (_prefix_parts(text, _lstrip(text, pos, end), end) or []) if parts else parts
    prefix = _prefix_parts(text, _lstrip(text, pos, dateline.start()), dateline.start())
    if prefix is None:
        return parts
    wire = bool(parts) or any(part != "headline" for _, _, part in prefix)
    if not wire and not top:
        return parts
    return parts + prefix


def _lstrip(text: str, start: int, end: int) -> int:
    while start < end and text[start].isspace():
        start += 1
    return start


def _prefix_parts(text: str, start: int, end: int) -> list[tuple[int, int, str]] | None:
    """Headline, editor notes and byline between the marks and the dateline; None if it does not parse."""
    tail: list[tuple[int, int, str]] = []
    if (byline := _BYLINE_AT_END.search(text, start, end)) is not None:
        tail.append((byline.start(1), byline.end(1), "byline"))
        end = byline.start(1)
    while (code := _CODE_AT_END.search(text, max(start, end - 700), end)) is not None:
        tail.append((_lstrip(text, code.start(), code.end()), code.end(1), "wire_code"))
        end = code.start()
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        headline = text[start:end]
        # a headline ends in a word (or a quote, a question mark), not in a full stop or a credit
        # "(Yonhap)", and has no sentence end inside it ("N." and "U.S." are not sentence ends)
        if (
            not (text[end - 1].isalnum() or text[end - 1] in "?%\"”’'")
            or not 3 <= len(headline.split()) <= _HEADLINE_MAX_WORDS
            or _SENTENCE_INSIDE.search(headline)
        ):
            return None
        tail.append((start, end, "headline"))
    return sorted(tail) or None
