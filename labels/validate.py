"""Checks on labelled dataset files: every problem reported as ``file:line: message``.

Errors make a dataset unusable for training or evaluation (bad JSON, wrong fields, labels
outside the schema, duplicates, leakage between splits). Warnings point at records worth a
look (very short or very long texts, stock phrases repeated across paragraphs).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

from labels.records import DEFAULT_DATASET, SPLITS
from labels.schema import LabelSchema, load_schema

REQUIRED_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "text": str,
    "topics": list,
    "stance": dict,
    "source": str,
    "date": (str, type(None)),
    "split": str,
}
OPTIONAL_FIELDS: dict[str, type | tuple[type, ...]] = {"article_id": str, "position": int}

_WORD = re.compile(r"[\w'’-]+")


@dataclass(frozen=True)
class Problem:
    """One finding at one line of one file."""

    path: str
    line: int
    message: str
    severity: str = "error"  # or "warning"

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.path}:{self.line}: {prefix}{self.message}"


@dataclass(frozen=True)
class ValidationSettings:
    near_duplicate_threshold: float = 0.6  # Jaccard similarity of word 3-shingles
    near_duplicate_min_words: int = 8  # shorter texts are checked for exact duplicates only
    short_words: int = 3
    long_words: int = 250
    repeated_run_words: int = 8
    repeated_run_max_paragraphs: int = 3


@dataclass
class ValidationReport:
    problems: list[Problem] = field(default_factory=list)
    records_checked: int = 0
    repeated_runs: int = 0  # word runs shared by too many paragraphs (a warning)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


@dataclass(frozen=True)
class _Located:
    path: str
    line: int
    record: dict

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def words(text: str) -> list[str]:
    """The word tokens of a text, as every text check here counts them."""
    return _WORD.findall(text)


def validate_files(
    paths: Sequence[str | Path] | None = None,
    schema: LabelSchema | None = None,
    settings: ValidationSettings | None = None,
) -> ValidationReport:
    """Check dataset files (the shipped dataset by default) and return every problem found."""
    schema = schema or load_schema()
    settings = settings or ValidationSettings()
    paths = [_display_path(Path(p)) for p in (paths or [DEFAULT_DATASET])]
    report = ValidationReport()
    located: list[_Located] = []
    for path in paths:
        if not path.is_file():
            report.problems.append(Problem(str(path), 0, "no such file"))
            continue
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line_no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    report.problems.append(Problem(str(path), line_no, f"invalid JSON: {exc.msg}"))
                    continue
                report.records_checked += 1
                problems = _check_record(record, schema)
                report.problems.extend(Problem(str(path), line_no, msg, sev) for sev, msg in problems)
                if isinstance(record, dict):
                    located.append(_Located(str(path), line_no, record))
    report.problems.extend(_check_ids(located))
    report.problems.extend(_check_articles(located))
    report.problems.extend(_check_texts(located, settings))
    runs = _check_repeated_runs(located, settings)
    report.repeated_runs = len(runs)
    report.problems.extend(runs)
    report.problems.sort(key=lambda p: (p.path, p.line, p.severity != "error"))
    return report


def _display_path(path: Path) -> Path:
    """Paths under the working directory are reported relative to it, others as given."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()) if path.is_absolute() else path
    except ValueError:
        return path


def _type_name(expected: type | tuple[type, ...]) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    names = {str: "string", list: "list", dict: "object", int: "integer", type(None): "null"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _is_type(value: object, expected: type | tuple[type, ...]) -> bool:
    # JSON true/false load as bool, a subclass of int; never accept them as integers.
    if isinstance(value, bool):
        return False
    return isinstance(value, expected)


def _check_record(record: object, schema: LabelSchema) -> list[tuple[str, str]]:
    """Field-level problems of one record, as (severity, message) pairs."""
    if not isinstance(record, dict):
        return [("error", "record is not a JSON object")]
    out: list[tuple[str, str]] = []
    for name, expected in REQUIRED_FIELDS.items():
        if name not in record:
            out.append(("error", f"missing field '{name}'"))
        elif not _is_type(record[name], expected):
            out.append(("error", f"field '{name}' should be {_type_name(expected)}, got {type(record[name]).__name__}"))
    for name, expected in OPTIONAL_FIELDS.items():
        if name in record and not _is_type(record[name], expected):
            out.append(("error", f"field '{name}' should be {_type_name(expected)}, got {type(record[name]).__name__}"))
    for name in sorted(set(record) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS)):
        out.append(("warning", f"unknown field '{name}'"))

    if isinstance(record.get("id"), str) and not record["id"].strip():
        out.append(("error", "empty id"))
    if isinstance(record.get("text"), str) and not record["text"].strip():
        out.append(("error", "empty or whitespace-only text"))
    if isinstance(record.get("split"), str) and record["split"] not in SPLITS:
        out.append(("error", f"unknown split {record['split']!r}; expected one of {', '.join(SPLITS)}"))
    if isinstance(record.get("date"), str):
        try:
            dt.date.fromisoformat(record["date"])
            if len(record["date"]) != 10:
                raise ValueError
        except ValueError:
            out.append(("error", f"date {record['date']!r} is not YYYY-MM-DD or null"))
    if isinstance(record.get("position"), int) and record["position"] < 0:
        out.append(("error", "position must be >= 0"))

    topics = record.get("topics")
    if isinstance(topics, list):
        for topic in topics:
            if not isinstance(topic, str):
                out.append(("error", f"topic {topic!r} should be a string"))
            elif topic not in schema.topic_ids:
                out.append(("error", f"unknown topic {topic!r}; expected one of {', '.join(schema.topic_ids)}"))
        if len(set(map(str, topics))) != len(topics):
            out.append(("error", "topic listed twice"))
    stance = record.get("stance")
    if isinstance(stance, dict):
        for topic, value in stance.items():
            if value not in schema.stance_values:
                expected = ", ".join(schema.stance_values)
                out.append(("error", f"unknown stance {value!r} for {topic!r}; expected one of {expected}"))
        if isinstance(topics, list) and set(stance) != set(map(str, topics)):
            missing = sorted(set(map(str, topics)) - set(stance))
            extra = sorted(set(stance) - set(map(str, topics)))
            parts = (missing and f"no stance for {missing}", extra and f"stance for unlisted {extra}")
            detail = "; ".join(part for part in parts if part)
            out.append(("error", f"stance keys must equal topics ({detail})"))
    return out


def _check_ids(located: list[_Located]) -> Iterable[Problem]:
    first: dict[str, _Located] = {}
    for item in located:
        rid = item.record.get("id")
        if not isinstance(rid, str) or not rid.strip():
            continue
        if rid in first:
            yield Problem(item.path, item.line, f"duplicate id {rid!r} (first at {first[rid].where})")
        else:
            first[rid] = item


def _check_articles(located: list[_Located]) -> Iterable[Problem]:
    """An article's paragraphs must all be in one split, or the split leaks context."""
    first_split: dict[str, _Located] = {}
    for item in located:
        article, split = item.record.get("article_id"), item.record.get("split")
        if not isinstance(article, str) or split not in SPLITS:
            continue
        seen = first_split.setdefault(article, item)
        if seen.record["split"] != split:
            yield Problem(
                item.path,
                item.line,
                f"leakage: article {article!r} is in {split} here and in {seen.record['split']} at {seen.where}",
            )


def _normalise(text: str) -> str:
    return " ".join(w.lower() for w in words(text))


def _shingles(tokens: list[str], n: int = 3) -> frozenset[tuple[str, ...]]:
    return frozenset(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _text_problem(a: _Located, b: _Located, what: str) -> Problem:
    split_a, split_b = a.record.get("split"), b.record.get("split")
    if split_a in SPLITS and split_b in SPLITS and split_a != split_b:
        return Problem(b.path, b.line, f"leakage: {what} of {a.where} in another split ({split_b} vs {split_a})")
    return Problem(b.path, b.line, f"{what} of {a.where}")


def _check_texts(located: list[_Located], settings: ValidationSettings) -> Iterable[Problem]:
    texts = [(item, item.record["text"]) for item in located if isinstance(item.record.get("text"), str)]
    texts = [(item, text) for item, text in texts if text.strip()]

    first_by_text: dict[str, _Located] = {}
    unique: list[tuple[_Located, list[str]]] = []
    for item, text in texts:
        tokens = [w.lower() for w in words(text)]
        if len(tokens) < settings.short_words:
            yield Problem(item.path, item.line, f"very short text ({len(tokens)} words)", "warning")
        elif len(tokens) > settings.long_words:
            yield Problem(item.path, item.line, f"very long text ({len(tokens)} words)", "warning")
        key = " ".join(tokens)
        if key in first_by_text:
            yield _text_problem(first_by_text[key], item, "duplicate text")
            continue
        first_by_text[key] = item
        if len(tokens) >= settings.near_duplicate_min_words:
            unique.append((item, tokens))
    yield from _near_duplicates(unique, settings.near_duplicate_threshold)


def _near_duplicates(docs: list[tuple[_Located, list[str]]], threshold: float) -> Iterable[Problem]:
    """Pairs whose word 3-shingle Jaccard similarity reaches the threshold.

    Candidates come from an inverted index over shingles; shingles shared by many texts
    (stock phrases) are left out of the index, since near-duplicates share rare ones too.
    """
    shingles = [_shingles(tokens) for _, tokens in docs]
    index: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for i, sh in enumerate(shingles):
        for s in sh:
            index[s].append(i)
    max_df = max(20, len(docs) // 50)
    candidates: set[tuple[int, int]] = set()
    for postings in index.values():
        if 1 < len(postings) <= max_df:
            candidates.update(combinations(postings, 2))
    for i, j in sorted(candidates):
        a, b = shingles[i], shingles[j]
        score = len(a & b) / len(a | b)
        if score >= threshold:
            yield _text_problem(docs[i][0], docs[j][0], f"near-duplicate (similarity {score:.2f})")


def _check_repeated_runs(located: list[_Located], settings: ValidationSettings) -> list[Problem]:
    """Runs of N identical words in more than K paragraphs: the mark of a template.

    Runs that are mostly capitalised words (names of people, ministries, titles) are
    allowed to repeat, since real reporting repeats them too.
    """
    n = settings.repeated_run_words
    where: dict[tuple[str, ...], list[_Located]] = defaultdict(list)
    for item in located:
        text = item.record.get("text")
        if not isinstance(text, str):
            continue
        tokens = words(text)
        seen: set[tuple[str, ...]] = set()
        for i in range(len(tokens) - n + 1):
            window = tokens[i : i + n]
            if sum(w[:1].isupper() for w in window) * 2 >= n:
                continue
            key = tuple(w.lower() for w in window)
            if key not in seen:
                seen.add(key)
                where[key].append(item)
    problems = []
    for key, items in where.items():
        if len(items) > settings.repeated_run_max_paragraphs:
            lines = ", ".join(str(i.line) for i in items[:8]) + (" ..." if len(items) > 8 else "")
            problems.append(
                Problem(
                    items[0].path,
                    items[0].line,
                    f"{n}-word run {' '.join(key)!r} appears in {len(items)} paragraphs (lines {lines})",
                    "warning",
                )
            )
    return problems
