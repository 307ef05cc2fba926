"""Article text to paragraphs: blank-line blocks, furniture dropped, fragments merged, long blocks split.

The steps, in order, for one article:

1. Split the text into blocks at blank lines. Everything from a "Related articles"-style
   marker line on is not part of the article (kept, flagged ``related``, only with
   ``keep_related``). Walking back from the last block before it over furniture, a
   publisher's description of itself and a run of teaser headlines are dropped by position.
2. In a block of several lines, furniture lines at its top and bottom (a byline or a caption
   glued above the first paragraph, a credit below it) are dropped one by one; then a wire's
   codes in front of the story and after it are cut (``wire``), a view counter or timestamp
   glued to the headline is cut off, and a caption glued to the start of the first
   paragraph on the same line is cut off.
3. What is left of the block is dropped with a reason (see ``records.REASONS``) or kept.
   The first heading before any paragraph becomes the title when none is known.
4. A kept block that only completes the previous one (a trailing attribution after a quote,
   a sentence cut by a line break) is merged into it.
5. Blocks over ``max_words`` words are split at sentence boundaries into near-equal chunks.

Every kept paragraph's ``text`` is ``flatten(article.text[start:end])``: its lines, stripped,
joined by single spaces. Plain Python with precompiled regular expressions; deterministic.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from inference.ingest import wire
from inference.ingest.language import is_english
from inference.ingest.records import Article, DroppedBlock, Paragraph, SegmentedArticle


@dataclass(frozen=True)
class SegmentSettings:
    """How segmentation behaves; the defaults are what ``allystance data import`` uses."""

    max_words: int = 180  # blocks longer than this are split at sentence boundaries
    keep_related: bool = False  # keep what follows a "Related articles" marker, flagged related
    heading_max_words: int = 14  # a single line this short without final punctuation is a heading
    language_min_words: int = 5  # shorter Latin-script text is not sent to the language identifier
    language_confidence: float = 0.9  # probability from which another language is believed


_BLANK_LINES = re.compile(r"\n(?:[ \t\f\v\r]*\n)+")
_NEWLINE = re.compile(r"\n")
_TERMINAL = frozenset(".!?…\"”’'")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URLISH = re.compile(
    r"(?:https?://|www\.)\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
    r"|\b[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|kr|cn|jp|gov|edu|int|io|co|info)\b(?:/\S*)?"
)

_URL_HINT = re.compile(r"@|://|www\.|\.(?:com|org|net|kr|cn|jp|gov|edu|int|io|co|info)\b")
_RELATED = re.compile(
    r"^\W{0,3}(?i:related(?:\s+(?:articles?|stories|news|coverage|content|links|reading|posts?))?"
    r"|more\s+(?:stories|news|articles|explainers|coverage|headlines|from\s+[\w ]{1,30})"
    r"|most\s+(?:popular|read|viewed|shared|commented)|read\s+more|see\s+also|also\s+read"
    r"|you\s+(?:may|might)\s+also\s+like|recommended(?:\s+(?:for\s+you|stories|articles|reading))?"
    r"|trending(?:\s+now)?|popular(?:\s+(?:now|stories|articles))?|hot\s+issues?|top\s+stories"
    r"|editor'?s?\s+picks|what\s+to\s+read\s+next|further\s+reading|latest\s+news)"
    r"\s*(?:[:：▶►▸»>|·•—–-]+\s*|$)"
)
_BY_NAME = re.compile(r"^[*_]*(?i:by)\s+[*_]*[A-Z][\w.'’-]*")
_CREDIT_LINE = re.compile(
    r"^(?i:\(?\s*(?:--|—)?\s*(?:additional\s+)?(?:reporting|writing|editing|compiled|photos?|photographs)\s+(?:by|from)\b)"
    r"|^(?i:this\s+(?:is|has\s+been))\s+[A-Z][\w'’-]+(?:\s+[A-Z][\w'’-]+){0,3},?\s+(?i:reporting)\b"
    r"|\b(?i:contributed\s+(?:to\s+)?(?:this|the)\s+(?:report|article|story))\b"
)
_CREDIT_WORDS = (
    r"photos?|yonhap|ap|afp|reuters|epa|getty(?:\s+images)?|pool|file|news1|newsis|kcna|xinhua|courtesy|handout|staff"
)
_CAPTION_START = re.compile(
    r"^(?i:photo(?:graph)?s?|pictured|picture|image|illustration|graphic|caption|file\s+photo|video)"
    r"\s*(?:[:：|]|(?i:by|courtesy)\b)"
)
_CREDIT_END = re.compile(
    rf"(?:\((?i:[^()]{{0,60}}\b(?:{_CREDIT_WORDS})\b[^()]{{0,40}})\)|\b(?i:photos?)\s*(?:by|:)\s*[\w .'’-]{{1,40}})\s*$"
)
_GLUED_CAPTION = re.compile(
    rf"^.{{20,400}}?\((?i:[^()]{{0,60}}\b(?:{_CREDIT_WORDS})\b[^()]{{0,40}})\)\s+(?=[\"“‘'A-Z])"
)
_COPYRIGHT = re.compile(
    r"©|ⓒ|\([cC]\)\s|\b(?i:copyright)\b|\b(?i:all\s+rights\s+reserved)\b"
    r"|\b(?i:(?:reproduction|redistribution|copying|reprint)\b[^.]{0,80}\b(?:prohibited|forbidden|not\s+permitted))"
    r"|版权|版權|저작권|무단\s*전재"
)
_ABOUT = re.compile(
    r"^(?i:about\s+(?:us|the\s+(?:author|writer)s?)\b|about\s+[A-Z][^:.]{0,40}:"
    # "The writer is a professor ..." is a blurb; "The writer is right that ..." is a letter.
    r"|(?:the\s+)?(?:writer|author|columnist|contributor)s?,?\s+"
    r"(?:(?:is|was|are|were)\s+(?:a|an|the|also|currently|formerly)\b|teaches|directs|served|heads)"
    r"|this\s+(?:commentary|editorial|column|explainer|interview|article|report|story|page|piece|analysis)\b"
    r".{0,60}\b(?:reflects?|part\s+of|translated|updated|appeared|printed|edited|series)\b"
    r"|\(?this\s+article\s+(?:has\s+been|was)\s+translated|translated\s+(?:and\s+\w+\s+)?from\b"
    r"|(?:media|press)\s+(?:inquiries|enquiries|contacts?)\b|tips\s+and\s+corrections|printed\s+in\s+the\b)"
    r"|\b(?i:views\s+expressed)\b|\b(?i:do(?:es)?\s+not\s+(?:necessarily\s+)?(?:reflect|represent)\s+(?:those|the\s+views))"
    r"|\b(?i:is\s+an?\s+(?:independent\s+|non-?profit\s+|online\s+)*"
    r"(?:news\s+(?:outlet|organi[sz]ation|site|website)|media\s+(?:outlet|company|group)|publication)\b)"
)
_SHARE_TARGETS = r"facebook|twitter|kakaotalk|linkedin|whatsapp|telegram|threads|line|e-?mail|print|x|copy\s+link"
_WIDGET = re.compile(
    r"^(?i:share\b|tweet\b|follow\s+us\b|subscribe\b|sign\s+up\b|sign\s+in\b|log\s+in\b|newsletter\b"
    r"|comments?\s*(?:\(\d+\)|are\s+closed|:|$)|\d+\s+comments?\b|leave\s+a\s+comment|reader\s+comments"
    r"|join\s+the\s+(?:conversation|discussion)|advertisement\b|\[?ad\]?$|sponsored\b"
    r"|print(?:\s+this(?:\s+page|\s+article)?)?\s*(?:$|\|)|e-?mail\s+this|send\s+to\s+a\s+friend|font\s+size"
    r"|\W{0,3}listen\s+to\s+(?:this|the)\s+article|download\s+(?:our|the)\s+(?:app|full)"
    r"|get\s+(?:breaking\s+)?news\s+alerts|we\s+use\s+cookies|report\s+an\s+error|copy\s+link"
    r"|breaking\s+news\s+alert|skip\s+to\b|watch\s*:|video\s*:|scroll\s+to\s+continue|click\s+here"
    r"|more\s+(?:photos|videos)\b)"
    r"|\b(?i:(?:sign\s+up|subscribe)\s+(?:now|free|today|here))\b"
    rf"|\b(?i:(?:{_SHARE_TARGETS})\s*[|·•/]\s*(?:{_SHARE_TARGETS}))\b"
    r"|\b(?i:comments\s*\(\d+\)|\d+\s+min(?:ute)?s?\s+read|reading\s+time"
    r"|no\s+comments?\s+yet|be\s+the\s+first\s+to\s+(?:comment|reply|respond|react))\b"
)
# A call to action: an imperative addressed to the reader ("Try our AI features", "Explore what
# ... can do for you"), which a news paragraph, short of a quotation, does not open with.
_CALL_TO_ACTION = re.compile(
    r"^(?i:try|explore|discover|download|install|join|follow|subscribe|sign\s+up|listen|watch|get|unlock|upgrade)\s"
    r"(?=.{0,120}?\b(?i:you|your|our|us)\b)"
)
_MEDIA_NOUN = (
    r"(?:(?:news)?paper|daily|weekly|magazine|journal|broadcaster|publication|publisher|outlet|wire\s+service"
    r"|(?:news|media)\s+(?:site|website|portal|platform|company|group|organi[sz]ation|outlet|service|agency))"
)
_PUBLISHER_SELF = re.compile(
    r"^(?P<name>(?:The\s+)?(?:[A-Z0-9][\w&'’.-]*\s+){1,6}?)(?:is|has\s+been)\s+(?:an?|the|one\s+of)\s+"
    rf"(?:[\w'’-]+\s+){{0,6}}?{_MEDIA_NOUN}s?\b"
)
_SELF_DESCRIPTION = re.compile(
    r"\b(?i:based\s+in|headquartered\s+in|founded\s+in|launched\s+in|dedicated\s+to|brings\s+you|for\s+readers)\b"
)
_LOGO = re.compile(r"\b(?i:logo)\b")
_TEASER_RUN = 3  # teaser lines in a row at the end of the page, from which they are a list
_NAV_SEP = re.compile(r"\s(?:>|›|»|\||·|▸|•)\s|\s*(?:›|»|▸)\s*")
_BRACKET_MENU = re.compile(r"^(?:\[[^\]]{1,30}\]\s*){2,}$")
_TAGS = re.compile(r"^(?i:tags?|topics|filed\s+under|categories)\s*:")
_BULLET = re.compile(r"^(?:[▶►▸•·*]|-\s|\d{1,2}[.)]\s)")
_MD_LINK = re.compile(r"!?\[[^\]]*\]\([^)]*\)")
_MD_HEADING = re.compile(r"^#{1,6}\s")
_DATELINE = re.compile(
    r"^[A-Z][A-Z.'’ -]{1,40}(?:,\s*(?:[A-Z][a-z]{2,8}\.?\s+\d{1,2}(?:,\s*\d{4})?|[A-Z][A-Za-z ]{2,30}))?"
    r"\s*(?:\([A-Za-z ]+\))?\s*(?:--|—|–|-|:)?$"
)
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DATE_TOKEN = re.compile(
    rf"\b\d{{4}}[./-]\d{{1,2}}[./-]\d{{1,2}}\b|\b\d{{1,2}}:\d{{2}}(?::\d{{2}})?\b|\b{_MONTH}\s+\d{{1,2}}(?:,\s*\d{{4}})?\b"
    rf"|\b\d{{1,2}}\s+{_MONTH}(?:\s+\d{{4}})?\b|\b(?:KST|GMT|UTC|EST|EDT|a\.m\.|p\.m\.)"
    r"|\b(?:posted|updated|published|last\s+updated|modified|date)\b\s*:?",
    re.IGNORECASE,
)
_TOKEN = re.compile(r"\S+")
_STAMP_PIECE = re.compile(r"\d[\d,.:/-]*|[|·•/:—–-]|(?i:KST|GMT|UTC|[ap]\.?m\.?)")
_FULL_DATE = re.compile(r"\d{4}[./-]\d{1,2}[./-]\d{1,2}|\d{1,2}:\d{2}")
_SPEAKER = re.compile(r"^[A-Z][\w.()' -]{0,40}:\s")
_ATTRIBUTION = re.compile(
    r"\b(?:said|says|told|added|asked|wrote|noted|stated|explained|warned|insisted|argued|continued|recalled)\b"
    r"|\baccording\s+to\b"
)
_CLOSING_QUOTE = frozenset("\"”’'")
_SENTENCE_END = re.compile(r"[.!?…]+[\"”’')\]]*(?=\s+[\"“‘'(\[]?[A-Z0-9])")
_ABBREVIATION = re.compile(
    r"(?:^|[\s(])(?:Mr|Mrs|Ms|Dr|Gen|Lt|Col|Maj|Sgt|Adm|Capt|Cmdr|Gov|Sen|Rep|Rev|St|Prof|Jan|Feb|Mar|Apr|Jun|Jul|Aug"
    r"|Sep|Sept|Oct|Nov|Dec|No|Nos|Vol|Inc|Co|Corp|Ltd|Jr|Sr|vs|U\.S|U\.N|U\.K|[A-Z])\.$"
)


def flatten(raw: str) -> str:
    """A paragraph's text from its span: the stripped non-empty lines joined by single spaces."""
    return " ".join(line.strip() for line in raw.split("\n") if line.strip())


def _key(text: str) -> str:
    return " ".join(text.casefold().split())


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _pieces(text: str, start: int, end: int, separator: re.Pattern[str]) -> list[tuple[int, int]]:
    """Non-blank stretches of ``text[start:end]`` between separator matches, whitespace stripped."""
    out = []
    pos = start
    for match in separator.finditer(text, start, end):
        s, e = _strip_span(text, pos, match.start())
        if s < e:
            out.append((s, e))
        pos = match.end()
    s, e = _strip_span(text, pos, end)
    if s < e:
        out.append((s, e))
    return out


def _is_url_heavy(flat: str, n_words: int) -> bool:
    if not _URL_HINT.search(flat):
        return False
    matches = _URLISH.findall(flat)
    if not matches:
        return False
    url_chars = sum(len(m) for m in matches)
    return url_chars >= 0.35 * len(flat.replace(" ", "")) or n_words - len(matches) <= 2


def _is_navigation(flat: str, n_words: int) -> bool:
    if _BRACKET_MENU.match(flat) or _TAGS.match(flat):
        return True
    if n_words > 30 or flat[-1] in ".!?":
        return False
    parts = [p for p in _NAV_SEP.split(flat) if p.strip()]
    return len(parts) >= 3 and n_words / len(parts) <= 3.5


def _is_link_list(flat: str, n_words: int) -> bool:
    if _MD_LINK.search(flat):
        rest = _MD_LINK.sub(" ", flat)
        return len(re.findall(r"\w+", rest)) <= 3
    return bool(_BULLET.match(flat)) and n_words <= 25 and flat[-1] not in _TERMINAL


def _stamp_tail(text: str, start: int, end: int, max_words: int) -> tuple[int, str] | None:
    """Where a view counter or a timestamp glued to the end of a headline starts, and its reason.

    A reposting site prints "Allies delay drills Views 2,418 2024.03.05 10:22" on one line:
    walking back from the end over numbers, separators and at most two labels that stand
    before a number ("Views", "조회수"), the tail must hold a full date or a time and two
    numbers, and what is left must be a headline (at most ``max_words`` words, no final stop).
    """
    if not _FULL_DATE.search(text, max(start, end - 60), end):
        return None
    tokens = list(_TOKEN.finditer(text, start, end))
    i, labels, numbers, dated = len(tokens), 0, 0, False
    while i > 0:
        tok = tokens[i - 1].group()
        if _STAMP_PIECE.fullmatch(tok):
            numbers += tok[0].isdigit()
            dated = dated or _FULL_DATE.search(tok) is not None
        elif (
            labels < 2
            and i < len(tokens)
            and tokens[i].group()[0].isdigit()
            and len(tok) <= 12
            and (tok[0].isupper() or not tok.isascii() or tok.endswith(":"))
            and tok.rstrip(":").isalpha()
        ):
            labels += 1
        else:
            break
        i -= 1
    if not dated or numbers < 2 or i < 3 or i > max_words:
        return None
    head_end = tokens[i - 1].end()
    if text[head_end - 1] in _TERMINAL:
        return None
    return tokens[i].start(), "widget" if labels else "dateline"


def _is_dateline(flat: str, n_words: int) -> bool:
    if n_words <= 8 and _DATELINE.match(flat):
        return True
    if n_words > 14 or not _DATE_TOKEN.search(flat):
        return False
    rest = _DATE_TOKEN.sub(" ", flat)
    return len(re.findall(r"[^\W\d_]{2,}", rest)) <= 3


def furniture_reason(flat: str, n_words: int) -> str | None:
    """The reason a line or block of page furniture is not a paragraph, or None.

    Only rules that hold for a line anywhere in an article; headings, repeats and the
    language check depend on context and live in the segmenter.
    """
    if _MD_HEADING.match(flat):
        return "heading"
    if n_words <= 25 and (
        (_BY_NAME.match(flat) and (_EMAIL.search(flat) or flat[-1] not in ".!?" or n_words <= 4))
        or _CREDIT_LINE.search(flat)
    ):
        return "byline"
    if n_words <= 40 and (_CAPTION_START.match(flat) or _CREDIT_END.search(flat)):
        return "caption"
    if n_words <= 40 and _COPYRIGHT.search(flat):
        return "copyright"
    if n_words <= 35 and (_WIDGET.search(flat) or _CALL_TO_ACTION.match(flat)):
        return "widget"
    if _is_link_list(flat, n_words):
        return "links"
    if _is_url_heavy(flat, n_words):
        return "url_email"
    if _is_navigation(flat, n_words):
        return "navigation"
    if _is_dateline(flat, n_words):
        return "dateline"
    if n_words <= 80 and _ABOUT.search(flat):
        return "about"
    return None


def _is_publisher_blurb(flat: str, source: str | None) -> bool:
    """A publisher describing itself ("X is a daily online newspaper based in Seoul; it covers ..."):
    a name, "is a ... newspaper", and one more sign: words a blurb uses, widgets or a logo glued
    on, or the name of the article's own site."""
    if len(flat) > 900 or not (match := _PUBLISHER_SELF.match(flat)):
        return False
    name = match.group("name").strip()
    return bool(
        _SELF_DESCRIPTION.search(flat)
        or _WIDGET.search(flat)
        or _LOGO.search(flat)
        or (source and _key(source).removeprefix("the ") == _key(name).removeprefix("the "))
    )


def _is_teaser_line(text: str, start: int, end: int) -> bool:
    """A headline of another story: 3-30 words, capitalised, one sentence without a final stop."""
    last, first = text[end - 1], text[start]
    return (
        last not in _TERMINAL
        and last not in ",;:-–—"
        and (first.isupper() or first.isdigit())
        and 3 <= len(text[start:end].split()) <= 30
        and len(_sentences(text, start, end)) == 1
    )


def _is_heading(flat: str, n_words: int, max_words: int) -> bool:
    if n_words > max_words:
        return False
    last = flat[-1]
    if last not in _TERMINAL or last == ":":
        return True
    if last == "?" and not _SPEAKER.match(flat) and not _SENTENCE_END.search(flat[:-1]):
        return flat[0] not in "\"“‘'"
    return flat.isupper()


def _completes(prev: str, frag: str) -> bool:
    """Whether ``frag`` only finishes the paragraph ``prev`` (an attribution, a cut sentence)."""
    first = frag.lstrip("\"“‘'(…. ")[:1]
    last = prev[-1]
    frag_words = len(frag.split())
    if last.isalnum() or last in ",;-–—":
        # prev stops mid-sentence: it ends in a comma or a lowercase word ("... in" / "March, ...");
        # a signature such as "-- Lee Jae-hoon, Suwon" ends in a capitalised word and stays apart
        return first.islower() or last in ",;-–—" or prev.rsplit(None, 1)[-1].islower()
    if last in _CLOSING_QUOTE and frag_words <= 20 and _ATTRIBUTION.search(frag):
        # '"... against North Korea,"' then 'the official said.'
        return first.islower() or prev[-2:-1] in {",", "?", "!", "…"} or frag_words <= 8
    return first.islower() and frag_words <= 20 and bool(_ATTRIBUTION.search(frag))


@dataclass
class _Unit:
    start: int
    end: int
    related: bool
    joins_previous: bool  # nothing was dropped between this and the previous kept unit


@dataclass
class _Segmenter:
    article: Article
    settings: SegmentSettings
    title: str | None = None
    title_key: str | None = None
    title_taken: bool = False
    related: bool = False
    last_kept: bool = False
    seen: set[str] = field(default_factory=set)
    units: list[_Unit] = field(default_factory=list)
    dropped: list[DroppedBlock] = field(default_factory=list)
    furniture: dict[str, str | None] = field(default_factory=dict)
    english: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.title = wire.strip_marks(self.article.title) if self.article.title else None
        self.title_key = _key(self.title) if self.title else None

    def run(self) -> SegmentedArticle:
        text = self.article.text
        keep_related = self.settings.keep_related
        blocks = [(bs, be, _pieces(text, bs, be, _NEWLINE)) for bs, be in _pieces(text, 0, len(text), _BLANK_LINES)]
        markers = (
            (k, i)
            for k, (_, _, lines) in enumerate(blocks)
            for i, (s, e) in enumerate(lines)
            if _RELATED.match(text[s:e])
        )
        first_marker = next(markers, None)
        page_end = {}
        if first_marker is None or first_marker[1] == 0:
            page_end = self._page_end(blocks[: first_marker[0]] if first_marker else blocks)
        for k, (bs, be, lines) in enumerate(blocks):
            if self.related and not keep_related:
                self._drop(bs, be, "related")
                continue
            if k in page_end:
                self._drop(bs, be, page_end[k])
                continue
            marker = first_marker[1] if first_marker and first_marker[0] == k else None
            if marker is None:
                self._block(lines)
                continue
            if marker:
                self._block(lines[:marker])
            self.related = True
            ms, me = lines[marker]
            if not keep_related:
                self._drop(ms, be, "related")
                continue
            match = _RELATED.match(text[ms:me])
            assert match is not None
            self._drop(*_strip_span(text, ms, ms + match.end()), "related")
            rest_start, rest_end = _strip_span(text, ms + match.end(), me)
            rest = ([(rest_start, rest_end)] if rest_start < rest_end else []) + lines[marker + 1 :]
            if rest:
                self._block(rest)
        paragraphs = self._paragraphs()
        self.dropped.sort(key=lambda d: d.start)
        return SegmentedArticle(self.article, self.title, tuple(paragraphs), tuple(self.dropped))

    def _page_end(self, blocks: list[tuple[int, int, list[tuple[int, int]]]]) -> dict[int, str]:
        """Reasons for blocks that only their place at the end of the page gives away.

        Walking back from the last block (before any "Related articles" marker), over page
        furniture, until the first story paragraph: a publisher's description of itself is a
        ``publisher_blurb``; blocks of teaser-like lines (headlines of other stories) are a
        ``teaser_list`` when they hold at least three such lines and a story comes before them.
        """
        text = self.article.text
        found: dict[int, str] = {}
        teasers: list[int] = []
        teaser_lines = 0
        story_before = False
        for k in range(len(blocks) - 1, -1, -1):
            bs, be, lines = blocks[k]
            flat = text[bs:be] if len(lines) == 1 else flatten(text[bs:be])
            if _is_publisher_blurb(flat, self.article.source):
                found[k] = "publisher_blurb"
                continue
            if self._furniture(flat) or not self._english(flat):
                continue
            n_teasers = self._teaser_lines(lines)
            if not n_teasers:
                story_before = True
                break
            teasers.append(k)
            teaser_lines += n_teasers
        if story_before and teaser_lines >= _TEASER_RUN:
            found.update(dict.fromkeys(teasers, "teaser_list"))
        return found

    def _teaser_lines(self, lines: list[tuple[int, int]]) -> int:
        """How many lines of a block are teaser headlines; 0 unless every other line is furniture."""
        text = self.article.text
        teasers = 0
        for s, e in lines:
            line = text[s:e]
            if _is_teaser_line(text, s, e):
                teasers += 1
            elif not self._furniture(line):
                return 0
        return teasers

    def _furniture(self, flat: str) -> str | None:
        """``furniture_reason``, remembered: the page-end walk and the blocks ask about the same texts."""
        if flat not in self.furniture:
            self.furniture[flat] = furniture_reason(flat, len(flat.split()))
        return self.furniture[flat]

    def _english(self, flat: str) -> bool:
        """``is_english`` with the settings, remembered like ``_furniture``."""
        if flat not in self.english:
            settings = self.settings
            self.english[flat] = is_english(flat, settings.language_min_words, settings.language_confidence)
        return self.english[flat]

    def _drop(self, start: int, end: int, reason: str) -> None:
        self.dropped.append(DroppedBlock(self.article.article_id, start, end, reason, self.article.text[start:end]))
        self.last_kept = False

    def _line_reason(self, lines: list[tuple[int, int]], i: int) -> str | None:
        """The reason to drop line ``i`` at the edge of a block, judged by context-free rules only."""
        text = self.article.text
        s, e = lines[i]
        line = text[s:e]
        if line[-1] in ",;-–—" or (i + 1 < len(lines) and text[lines[i + 1][0]].islower()):
            return None  # the line runs on into the next: a hard-wrapped paragraph
        key = _key(line)
        reason = self._title_or_repeat(key)
        if reason:
            return reason
        reason = self._furniture(line)
        if reason is None and not is_english(line, self.settings.language_min_words, self.settings.language_confidence):
            reason = "non_english"
        if reason:
            self.seen.add(key)
        return reason

    def _block(self, lines: list[tuple[int, int]]) -> None:
        i, j = 0, len(lines)
        trailing: list[tuple[int, int, str]] = []
        if len(lines) > 1:
            while i < j and (reason := self._line_reason(lines, i)):
                self._drop(*lines[i], reason)
                i += 1
            while j - 1 > i and (reason := self._line_reason(lines, j - 1)):
                trailing.append((*lines[j - 1], reason))
                j -= 1
        if i < j:
            self._rest(lines[i][0], lines[j - 1][1], j - i == 1, trailing)
        for s, e, reason in reversed(trailing):
            self._drop(s, e, reason)

    def _rest(self, start: int, end: int, single: bool, trailing: list[tuple[int, int, str]]) -> None:
        """What is left of a block once its furniture lines are off: wire codes, a stamp glued to
        the headline and a caption glued to the paragraph are cut; the rest is dropped or kept.
        Cuts at its end go to ``trailing``, dropped after it."""
        text = self.article.text
        if text[start] == "(" and wire.is_codes_only(text[start:end]):
            self._drop(start, end, "wire_code")
            return
        if (end_mark := wire.split_end(text, start, end)) is not None:
            trailing.append((*end_mark, "wire_code"))
            end = _strip_span(text, start, end_mark[0])[1]
        # a wire lead opens the story: look for one before the first kept block, or where a
        # version mark or a byline opens a block
        if not self.units or text[start] == "(" or text.startswith("By ", start):
            for s, e, part in wire.split_lead(text, start, end, top=not self.units):
                self._drop(s, e, self._headline_reason(flatten(text[s:e])) if part == "headline" else part)
                start = _strip_span(text, e, end)[0]
                single = "\n" not in text[start:end]
            if start >= end:
                return
        if (
            single
            and not self.units
            and (stamp := _stamp_tail(text, start, end, self.settings.heading_max_words))
            and not self._furniture(text[start : (head_end := _strip_span(text, start, stamp[0])[1])])
        ):
            # a headline with a stamp glued on; a byline or a menu with one stays whole
            trailing.append((stamp[0], end, stamp[1]))
            end = head_end
        if single and (glued := _GLUED_CAPTION.match(text, start, end)):
            rest_start, _ = _strip_span(text, glued.end(), end)
            rest = text[rest_start:end]
            if len(glued.group().split()) >= 5 and len(rest.split()) >= 10 and rest[0] not in "-–—":
                self.seen.add(_key(glued.group()))
                self._drop(*_strip_span(text, start, glued.end()), "caption")
                start = rest_start
        reason = self._reason(flatten(text[start:end]), single)
        if reason:
            self._drop(start, end, reason)
        else:
            self.units.append(_Unit(start, end, self.related, self.last_kept))
            self.last_kept = True

    def _headline_reason(self, flat: str) -> str:
        """The reason for a headline cut from the front of a wire lead: title, repeated or heading."""
        key = _key(flat)
        reason = self._title_or_repeat(key) or self._heading_or_title(flat, key)
        self.seen.add(key)
        return reason

    def _title_or_repeat(self, key: str) -> str | None:
        """``title`` for the first block equal to the headline, ``repeated`` for any later
        one or for a block seen before; None otherwise."""
        if self.title_key and key == self.title_key:
            reason = "repeated" if self.title_taken else "title"
            self.title_taken = True
            return reason
        return "repeated" if key in self.seen else None

    def _reason(self, flat: str, single_line: bool) -> str | None:
        key = _key(flat)
        reason = self._title_or_repeat(key)
        if reason:
            return reason
        self.seen.add(key)
        n_words = len(flat.split())
        reason = self._furniture(flat)
        if reason:
            if reason == "heading":
                return self._heading_or_title(flat, key)
            return reason
        settings = self.settings
        if not self._english(flat):
            return "non_english"
        if single_line and _is_heading(flat, n_words, settings.heading_max_words):
            return self._heading_or_title(flat, key)
        return None

    def _heading_or_title(self, flat: str, key: str) -> str:
        if self.title is None and not self.units and not self.related:
            self.title = wire.strip_marks(flat.lstrip("#").strip())
            self.title_key, self.title_taken = key, True
            return "title"
        return "heading"

    def _paragraphs(self) -> list[Paragraph]:
        text = self.article.text
        settings = self.settings
        merged: list[_Unit] = []
        for unit in self.units:
            if merged and unit.joins_previous and unit.related == merged[-1].related:
                prev = merged[-1]
                if _completes(flatten(text[prev.start : prev.end]), flatten(text[unit.start : unit.end])):
                    prev.end = unit.end
                    continue
            merged.append(_Unit(unit.start, unit.end, unit.related, unit.joins_previous))
        article = self.article
        out: list[Paragraph] = []
        for unit in merged:
            for start, end in _split_long(text, unit.start, unit.end, settings.max_words):
                out.append(
                    Paragraph(
                        article_id=article.article_id,
                        position=len(out),
                        text=flatten(text[start:end]),
                        start=start,
                        end=end,
                        title=self.title,
                        date=article.date,
                        source=article.source,
                        url=article.url,
                        related=unit.related,
                    )
                )
        return out


def _sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    out = []
    pos = start
    for match in _SENTENCE_END.finditer(text, start, end):
        if _ABBREVIATION.search(text, max(start, match.start() - 6), match.start() + 1):
            continue
        out.append((pos, match.end()))
        pos, _ = _strip_span(text, match.end(), end)
    if pos < end:
        out.append((pos, end))
    return out


def _split_long(text: str, start: int, end: int, max_words: int) -> list[tuple[int, int]]:
    """Spans of near-equal chunks of whole sentences, none over ``max_words`` unless one sentence is."""
    total = len(text[start:end].split())
    if total <= max_words:
        return [(start, end)]
    sentences = _sentences(text, start, end)
    n_chunks = math.ceil(total / max_words)
    target = total / n_chunks
    chunks = []
    chunk_start, words = sentences[0][0], 0
    for s, e in sentences:
        n = len(text[s:e].split())
        if words and (words + n > max_words or words + n / 2 > target) and len(chunks) < n_chunks - 1:
            chunks.append((chunk_start, _strip_span(text, chunk_start, s)[1]))
            chunk_start, words = s, 0
        words += n
    chunks.append((chunk_start, end))
    return chunks


def segment_article(article: Article, settings: SegmentSettings | None = None) -> SegmentedArticle:
    """Segment one article into kept paragraphs and dropped blocks (each with its reason)."""
    return _Segmenter(article, settings or SegmentSettings()).run()


def segment_text(
    text: str, article_id: str = "article", title: str | None = None, settings: SegmentSettings | None = None
) -> SegmentedArticle:
    """``segment_article`` on a bare text: handy in notebooks and tests."""
    return segment_article(Article(article_id=article_id, text=text, title=title), settings)
