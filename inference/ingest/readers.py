"""Readers: inputs (files, directories, globs, ``-``) to a lazy stream of articles.

``.txt`` and ``.md`` files hold one article each; ``.html``/``.htm`` pages go through
trafilatura for their main text; ``.jsonl``, ``.csv`` and ``.parquet`` tables hold one article
(or one paragraph) per row in a ``text`` column, with optional ``id``, ``title``, ``date``,
``source`` and ``url``. Whatever cannot be read becomes a ``SkippedInput`` with a one-line
reason, and the stream goes on with the next input. Tables are read row by row, so memory
does not grow with their length, nor with the number of files.
"""

from __future__ import annotations

import csv
import glob
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from inference.ingest.records import Article, SkippedInput

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
TABLE_SUFFIXES = frozenset({".jsonl", ".csv", ".parquet"})
SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | TABLE_SUFFIXES
METADATA_FIELDS = ("title", "date", "source", "url")
_SNIFF_BYTES = 8192
_GLOB_CHARS = frozenset("*?[")


def iter_articles(inputs: Iterable[str | Path], stdin: TextIO | None = None) -> Iterator[Article | SkippedInput]:
    """Articles from every input in order, or a ``SkippedInput`` for what cannot be read.

    An input is a file, a directory (walked recursively in sorted order, hidden files
    ignored), a glob pattern, or ``-`` for one plain-text article on standard input.
    """
    for item in inputs:
        name = str(item)
        if name == "-":
            yield from _read_stdin(stdin or sys.stdin)
            continue
        path = Path(name)
        if path.is_dir():
            for file in _walk(path):
                yield from read_file(file)
        elif path.is_file():
            yield from read_file(path)
        elif _GLOB_CHARS & set(name):
            matches = sorted(glob.iglob(name, recursive=True))
            if not matches:
                yield SkippedInput(name, "no files match this pattern")
            for match in matches:
                if Path(match).is_file():
                    yield from read_file(Path(match))
        else:
            yield SkippedInput(name, "no such file or directory")


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in sorted(filenames):
            if not filename.startswith("."):
                yield Path(dirpath) / filename


def read_file(path: Path) -> Iterator[Article | SkippedInput]:
    """The articles in one file, by its suffix; a ``SkippedInput`` when it has none."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        yield SkippedInput(str(path), f"unsupported file type {suffix or '(no suffix)'!r}")
        return
    try:
        if suffix == ".parquet":
            yield from _read_parquet(path)
            return
        with path.open("rb") as fh:
            head = fh.read(_SNIFF_BYTES)
        if not head.strip():
            yield SkippedInput(str(path), "empty file")
            return
        if _looks_binary(head):
            yield SkippedInput(str(path), "binary file, not text")
            return
        if suffix == ".jsonl":
            yield from _read_jsonl(path)
        elif suffix == ".csv":
            yield from _read_csv(path)
        else:
            text = decode(path.read_bytes(), str(path))
            if suffix in HTML_SUFFIXES:
                yield _read_html(text, path)
            else:
                yield Article(article_id=path.stem, text=text, origin=str(path))
    except OSError as exc:
        yield SkippedInput(str(path), f"cannot read: {exc.strerror or exc}")


def _looks_binary(head: bytes) -> bool:
    if b"\x00" in head:
        return True
    control = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    return control > 0.1 * len(head)


def decode(data: bytes, name: str) -> str:
    """UTF-8 (a BOM is dropped); undecodable bytes are replaced and the file named in a warning."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        logger.warning("%s: not valid UTF-8 (first bad byte at offset %d); undecodable bytes replaced", name, exc.start)
        return data.decode("utf-8-sig", errors="replace")


def _read_stdin(stream: TextIO) -> Iterator[Article | SkippedInput]:
    text = stream.read()
    if not text.strip():
        yield SkippedInput("-", "empty input")
    else:
        yield Article(article_id="stdin", text=text, origin="-")


def _read_html(text: str, path: Path) -> Article | SkippedInput:
    import trafilatura  # imported here: it is slow to import and only HTML needs it

    doc = trafilatura.bare_extraction(
        text, with_metadata=True, include_comments=False, include_tables=False, include_images=False
    )
    body = getattr(doc, "text", None) if doc is not None else None
    if not body or not body.strip():
        return SkippedInput(str(path), "no main text found in the HTML")
    # trafilatura puts one paragraph per line; the segmenter splits on blank lines
    return Article(
        article_id=path.stem,
        text="\n\n".join(line for line in body.split("\n") if line.strip()),
        title=doc.title or None,
        date=doc.date or None,
        source=doc.sitename or None,
        url=doc.url or None,
        origin=str(path),
    )


def _text_lines(path: Path) -> Iterator[str]:
    """The file's lines as text, decoded one by one so that a bad byte costs only its line."""
    warned = False
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                if not warned:
                    logger.warning("%s:%d: not valid UTF-8; undecodable bytes replaced", path, line_no)
                    warned = True
                yield raw.decode("utf-8", errors="replace")


def _row_article(row: dict, path: Path, row_no: int, where: str) -> Article | SkippedInput:
    text = row.get("text")
    if not isinstance(text, str) or not text.strip():
        return SkippedInput(where, "no text in this row")
    row_id = row.get("id") if row.get("id") not in (None, "") else row.get("article_id")
    meta = {k: (str(row[k]) if row.get(k) not in (None, "") else None) for k in METADATA_FIELDS}
    article_id = str(row_id) if row_id not in (None, "") else f"{path.stem}-{row_no}"
    return Article(
        article_id=article_id,
        text=text,
        origin=where,
        row_id=str(row["id"]) if row.get("id") not in (None, "") else None,
        row_article_id=str(row["article_id"]) if row.get("article_id") not in (None, "") else None,
        from_table=True,
        **meta,
    )


def _read_jsonl(path: Path) -> Iterator[Article | SkippedInput]:
    row_no = 0
    for line_no, line in enumerate(_text_lines(path), start=1):
        if not line.strip():
            continue
        row_no += 1
        where = f"{path}:{line_no}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            yield SkippedInput(where, f"invalid JSON ({exc.msg})")
            continue
        if not isinstance(row, dict):
            yield SkippedInput(where, "a row must be a JSON object")
            continue
        yield _row_article(row, path, row_no, where)


def _read_csv(path: Path) -> Iterator[Article | SkippedInput]:
    csv.field_size_limit(2**31 - 1)  # one article per cell can be long
    reader = csv.DictReader(_text_lines(path))
    try:
        columns = reader.fieldnames or []
    except csv.Error as exc:
        yield SkippedInput(str(path), f"not a readable CSV ({exc})")
        return
    if "text" not in columns:
        yield SkippedInput(str(path), f"no 'text' column (columns: {', '.join(columns) or 'none'})")
        return
    try:
        for row_no, row in enumerate(reader, start=1):
            yield _row_article(row, path, row_no, f"{path}:{reader.line_num}")
    except csv.Error as exc:
        yield SkippedInput(f"{path}:{reader.line_num}", f"CSV error ({exc}); rest of the file skipped")


def _read_parquet(path: Path) -> Iterator[Article | SkippedInput]:
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        yield SkippedInput(str(path), f"not a readable Parquet file ({type(exc).__name__})")
        return
    columns = table.schema_arrow.names
    if "text" not in columns:
        yield SkippedInput(str(path), f"no 'text' column (columns: {', '.join(columns) or 'none'})")
        return
    wanted = [c for c in ("text", "id", "article_id", *METADATA_FIELDS) if c in columns]
    row_no = 0
    for batch in table.iter_batches(batch_size=1024, columns=wanted):
        for row in batch.to_pylist():
            row_no += 1
            yield _row_article(row, path, row_no, f"{path}:row {row_no}")
