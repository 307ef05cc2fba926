"""What ingestion passes around: articles read, paragraphs kept, blocks dropped, inputs skipped."""

from __future__ import annotations

from dataclasses import dataclass

# Why a block of an article is not a paragraph, in the order the summary table lists them.
REASONS: tuple[str, ...] = (
    "title",  # the headline, kept separately as the article's title
    "heading",  # subheadings, including question-style ones
    "dateline",  # a dateline or a date/time stamp alone on a line
    "byline",  # bylines, "reporting by", "contributed to this report"
    "wire_code",  # a wire's version marks and editor notes: "(LEAD)", "(2nd LD)", "(ATTN: ...)", "(END)"
    "caption",  # photo captions and credits
    "repeated",  # a line or block already seen in the same article
    "widget",  # share/subscribe/comment/newsletter/ad/cookie text
    "navigation",  # breadcrumbs and menus
    "links",  # link lists and teaser bullets
    "url_email",  # lines that are mostly URLs or e-mail addresses
    "copyright",  # copyright and reproduction notices
    "about",  # "About us" blurbs, author notes, disclaimers, translation notes
    "publisher_blurb",  # a publisher's description of itself at the end of the page
    "non_english",  # text not in English
    "teaser_list",  # a run of headlines of other stories at the end of the page
    "related",  # everything from a "Related articles"-style marker on
)


@dataclass(frozen=True, slots=True)
class Article:
    """One article as read from an input, before segmentation.

    ``origin`` names where it came from (``path`` or ``path:line``) for messages.
    """

    article_id: str
    text: str
    title: str | None = None
    date: str | None = None
    source: str | None = None
    url: str | None = None
    origin: str = ""
    # Set for a row of a table: its own ``id`` and ``article_id`` columns, as given.
    row_id: str | None = None
    row_article_id: str | None = None
    from_table: bool = False


@dataclass(frozen=True, slots=True)
class SkippedInput:
    """An input (a path, a glob, a table row) that gave no article, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Paragraph:
    """A kept paragraph: ``text`` is ``flatten(article.text[start:end])``.

    ``related`` is true only for paragraphs after a "Related articles" marker, which are
    kept only when segmenting with ``keep_related=True``.
    """

    article_id: str
    position: int
    text: str
    start: int
    end: int
    title: str | None = None
    date: str | None = None
    source: str | None = None
    url: str | None = None
    related: bool = False

    @property
    def id(self) -> str:
        return f"{self.article_id}-p{self.position:02d}"

    def to_record(self, default_source: str = "unknown") -> dict:
        """The unlabelled dataset record for this paragraph (see the README for the fields)."""
        return {
            "id": self.id,
            "article_id": self.article_id,
            "position": self.position,
            "text": self.text,
            "topics": [],
            "stance": {},
            "source": self.source or default_source,
            "date": self.date,
            "title": self.title,
            "url": self.url,
            "start": self.start,
            "end": self.end,
            "related": self.related,
        }


@dataclass(frozen=True, slots=True)
class DroppedBlock:
    """A block (or a line of one) that segmentation left out, with its reason from ``REASONS``."""

    article_id: str
    start: int
    end: int
    reason: str
    text: str


@dataclass(frozen=True, slots=True)
class SegmentedArticle:
    """The outcome of segmenting one article."""

    article: Article
    title: str | None
    paragraphs: tuple[Paragraph, ...]
    dropped: tuple[DroppedBlock, ...]
