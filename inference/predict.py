"""Batch classification of new articles: inputs in, one labelled row per paragraph out.

The stream is read lazily and scored in batches, so memory does not depend on the input's
size. Rows go to ``<output>.partial`` (JSON lines, flushed per batch) and become the output
file, in its format, only at the end; an interrupted run leaves the partial file and its
state beside it, and ``resume=True`` continues from the last complete row. Bad records go to
the errors file with their source, line and reason; the run goes on.
"""

from __future__ import annotations

import csv
import json
import logging
import multiprocessing
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, Any, TextIO

import numpy as np

from inference.ingest import Article, SegmentSettings, SkippedInput, iter_articles, segment_article
from inference.model_io import BALANCED, Predictor
from labels.errors import UserError
from labels.stats import Table

logger = logging.getLogger(__name__)

OUTPUT_FIELDS = ("id", "article_id", "position", "text", "topics", "stance", "topic_scores", "stance_scores", "model")
METADATA_FIELDS = ("title", "date", "source", "url")
FORMATS = {".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet"}
UNDECODABLE = "\ufffd"


@dataclass(frozen=True)
class PredictSettings:
    batch_size: int = 256
    segment_tables: bool = False  # segment table texts as articles instead of taking them as paragraphs
    keep_related: bool = False
    max_chars: int = 100_000
    workers: int = 1  # processes scoring batches in parallel (scikit-learn models; see score_batches)
    explain: bool = False  # add each row's evidence (inference.explain); costs nothing when off


@dataclass(frozen=True, slots=True)
class Unit:
    """One paragraph to classify, with where it came from."""

    id: str
    article_id: str
    position: int
    text: str
    meta: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class BadRecord:
    source: str
    line: int | None
    reason: str

    @classmethod
    def from_where(cls, where: str, reason: str) -> BadRecord:
        """``path:12`` or ``path:row 12`` to a source and a line number."""
        head, _, tail = where.rpartition(":")
        number = tail.removeprefix("row ").strip()
        if head and number.isdigit():
            return cls(head, int(number), reason)
        return cls(where, None, reason)


@dataclass
class PredictReport:
    paragraphs: int = 0
    resumed: int = 0  # rows already in the partial output when the run resumed
    articles: int = 0
    topics: Counter[str] = field(default_factory=Counter)
    stances: Counter[tuple[str, str]] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    bad: list[BadRecord] = field(default_factory=list)
    seconds: float = 0.0
    output: str = ""
    errors_file: str | None = None
    articles_file: str | None = None
    last_article: str | None = field(default=None, repr=False)  # to count articles as rows pass

    def count(self, row: dict) -> None:
        """Add one output row to the counts (an article is a run of rows with one article_id)."""
        self.paragraphs += 1
        if row["article_id"] != self.last_article:
            self.articles += 1
            self.last_article = row["article_id"]
        self.topics.update(row["topics"])
        self.stances.update(row["stance"].items())

    def tables(self, topic_ids: Iterable[str], stance_values: Iterable[str]) -> list[Table]:
        stance_values = list(stance_values)
        rate = self.paragraphs / self.seconds if self.seconds else 0.0
        totals = [
            ("paragraphs", f"{self.paragraphs:,}"),
            ("articles", f"{self.articles:,}"),
            ("bad records", f"{len(self.bad):,}"),
            ("seconds", f"{self.seconds:.1f}"),
            ("paragraphs/s", f"{rate:,.0f}"),
        ]
        if self.resumed:
            totals.insert(1, ("of which resumed", f"{self.resumed:,}"))
        tables = [Table("Predicted", ("", "count"), tuple(totals))]
        rows = [(t, self.topics[t], *(self.stances[(t, s)] for s in stance_values)) for t in topic_ids]
        tables.append(Table("Topics and stances (paragraphs)", ("topic", "paragraphs", *stance_values), tuple(rows)))
        if self.dropped:
            tables.append(Table("Dropped blocks", ("reason", "blocks"), tuple(self.dropped.most_common())))
        if self.bad:
            reasons = Counter(b.reason.split(" (")[0] for b in self.bad)
            tables.append(Table("Bad records", ("reason", "records"), tuple(reasons.most_common())))
        return tables


def iter_units(
    inputs: Iterable[str | Path],
    settings: PredictSettings,
    report: PredictReport,
    stdin: TextIO | None = None,
    on_read: Callable[[], None] | None = None,
) -> Iterator[Unit | BadRecord]:
    """Paragraphs to classify, in input order; bad records in their place.

    Article files are segmented (dropped blocks counted in ``report.dropped``); a table row
    is one paragraph as it is, unless ``settings.segment_tables``.
    """
    segment = SegmentSettings(keep_related=settings.keep_related)
    seen_articles: Counter[str] = Counter()
    last_row_article, row_position = None, 0
    for item in iter_articles(inputs, stdin=stdin):
        if on_read:
            on_read()
        if isinstance(item, SkippedInput):
            yield BadRecord.from_where(item.path, item.reason)
            continue
        if len(item.text) > settings.max_chars:
            yield BadRecord.from_where(item.origin, f"text over {settings.max_chars:,} characters ({len(item.text):,})")
            continue
        meta = tuple((k, v) for k in METADATA_FIELDS if (v := getattr(item, k)) is not None)
        if item.from_table and not settings.segment_tables:
            if UNDECODABLE in item.text:
                yield BadRecord.from_where(item.origin, "undecodable bytes in the text")
                continue
            article_id = item.row_article_id or item.row_id or item.article_id
            row_position = row_position + 1 if article_id == last_row_article else 0
            last_row_article = article_id
            unit_id = item.row_id or f"{article_id}:{row_position}"
            yield Unit(unit_id, article_id, row_position, " ".join(item.text.split()), meta)
            continue
        seen_articles[item.article_id] += 1
        if seen_articles[item.article_id] > 1:  # two a.txt in different folders
            item = _renamed(item, f"{item.article_id}-{seen_articles[item.article_id]}")
        result = segment_article(item, segment)
        report.dropped.update(block.reason for block in result.dropped)
        # the segmenter's title: the one given, less a wire's version marks, or the one found
        if not result.title:
            unit_meta = meta
        elif item.title:
            unit_meta = tuple((k, result.title if k == "title" else v) for k, v in meta)
        else:
            unit_meta = (*meta, ("title", result.title))
        for paragraph in result.paragraphs:
            if UNDECODABLE in paragraph.text:
                yield BadRecord(item.origin, None, f"undecodable bytes in paragraph {paragraph.position}")
                continue
            yield Unit(
                f"{item.article_id}:{paragraph.position}",
                item.article_id,
                paragraph.position,
                paragraph.text,
                unit_meta,
            )


def _renamed(article: Article, article_id: str) -> Article:
    from dataclasses import replace

    return replace(article, article_id=article_id)


def _batches(units: Iterator[Unit | BadRecord], size: int, report: PredictReport) -> Iterator[list[Unit]]:
    batch: list[Unit] = []
    for unit in units:
        if isinstance(unit, BadRecord):
            report.bad.append(unit)
            logger.warning("skipped %s%s: %s", unit.source, f":{unit.line}" if unit.line else "", unit.reason)
            continue
        batch.append(unit)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# The predictor a forked worker process scores with: set just before the pool forks, so each
# worker inherits the loaded model instead of loading or unpickling its own copy.
_WORKER_PREDICTOR: Predictor | None = None


def _score_in_worker(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    assert _WORKER_PREDICTOR is not None
    return _WORKER_PREDICTOR.score(texts)


def score_batches(
    batches: Iterable[list[Unit]], predictor: Predictor, workers: int = 1
) -> Iterator[tuple[list[Unit], np.ndarray, np.ndarray]]:
    """Scores for each batch, in order. With ``workers > 1`` batches are scored by forked
    processes, at most two per worker in flight, so memory stays bounded."""
    if workers <= 1:
        for batch in batches:
            yield batch, *predictor.score([u.text for u in batch])
        return
    global _WORKER_PREDICTOR
    _WORKER_PREDICTOR = predictor
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            pending: deque = deque()
            for batch in batches:
                pending.append((batch, pool.apply_async(_score_in_worker, ([u.text for u in batch],))))
                if len(pending) >= 2 * workers:
                    done, result = pending.popleft()
                    yield done, *result.get()
            while pending:
                done, result = pending.popleft()
                yield done, *result.get()
    finally:
        _WORKER_PREDICTOR = None


def rows_for(
    batch: list[Unit],
    predictor: Predictor,
    model_label: str,
    scores: tuple[np.ndarray, np.ndarray] | None = None,
    explain: bool = False,
) -> list[dict[str, Any]]:
    """Output rows for a scored batch (the fields in ``OUTPUT_FIELDS`` plus metadata, and
    ``evidence`` when ``explain``)."""
    predictions = predictor.decide(*(scores or predictor.score([u.text for u in batch])))
    evidence = predictor.explain([u.text for u in batch], predictions) if explain else None
    rows = []
    for i, (unit, p) in enumerate(zip(batch, predictions, strict=True)):
        row: dict[str, Any] = {
            "id": unit.id,
            "article_id": unit.article_id,
            "position": unit.position,
            "text": unit.text,
            "topics": p.topics,
            "stance": p.stance,
            "topic_scores": p.topic_scores,
            "stance_scores": p.stance_scores,
            "model": model_label,
        }
        if evidence is not None:
            row["evidence"] = evidence[i]
        row.update(unit.meta)
        rows.append(row)
    return rows


# -- output files -------------------------------------------------------------------------


def output_format(path: str | Path) -> str:
    if str(path) == "-":
        return "jsonl"
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise UserError(f"cannot write {path}: use a .jsonl, .csv or .parquet file name, or - for standard output")
    return FORMATS[suffix]


def _partial_paths(output: Path) -> tuple[Path, Path]:
    return output.with_name(output.name + ".partial"), output.with_name(output.name + ".partial.json")


def _count_complete_rows(path: Path) -> int:
    """Complete lines in a partial file; a torn last line (a kill mid-write) is cut off."""
    with path.open("rb+") as fh:
        data = fh.read()
        keep = data.rfind(b"\n") + 1
        if keep < len(data):
            fh.truncate(keep)
    return data[:keep].count(b"\n")


def _read_rows(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)


def _columns(rows_path: Path) -> list[str]:
    """Output columns: the fixed fields, ``evidence`` when rows carry it (every row does or
    none), and whichever metadata fields any row carries."""
    present: set[str] = set()
    evidence = False
    for i, row in enumerate(_read_rows(rows_path)):
        evidence = evidence or (i == 0 and "evidence" in row)
        present.update(k for k in METADATA_FIELDS if k in row)
        if len(present) == len(METADATA_FIELDS):
            break
    return [*OUTPUT_FIELDS, *(["evidence"] if evidence else []), *(k for k in METADATA_FIELDS if k in present)]


def write_final(partial: Path, output: Path, fmt: str) -> None:
    """Turn the partial JSON-lines rows into the output file, through a temporary file."""
    if fmt == "jsonl":
        partial.replace(output)
        return
    tmp = output.with_name(output.name + ".tmp")
    columns = _columns(partial)
    if fmt == "csv":
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            for row in _read_rows(partial):
                writer.writerow({k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in row.items()})
    else:
        _write_parquet(partial, tmp, columns)
    tmp.replace(output)
    partial.unlink()


def _write_parquet(partial: Path, tmp: Path, columns: list[str], chunk: int = 10_000) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    nested = pa.map_(pa.string(), pa.map_(pa.string(), pa.float64()))
    types = {
        "id": pa.string(),
        "article_id": pa.string(),
        "position": pa.int64(),
        "text": pa.string(),
        "topics": pa.list_(pa.string()),
        "stance": pa.map_(pa.string(), pa.string()),
        "topic_scores": pa.map_(pa.string(), pa.float64()),
        "stance_scores": nested,
        "model": pa.string(),
        "evidence": pa.string(),  # JSON: nested phrase lists do not fit a fixed Parquet type well
        **{k: pa.string() for k in METADATA_FIELDS},
    }
    schema = pa.schema([(c, types[c]) for c in columns])
    maps = ("stance", "topic_scores")
    with pq.ParquetWriter(tmp, schema) as writer:
        rows = _read_rows(partial)
        while batch := list(islice(rows, chunk)):
            data = {c: [r.get(c) for r in batch] for c in columns}
            for c in maps:
                data[c] = [list(v.items()) for v in data[c]]
            data["stance_scores"] = [[(t, list(s.items())) for t, s in v.items()] for v in data["stance_scores"]]
            if "evidence" in data:
                data["evidence"] = [json.dumps(v, ensure_ascii=False) for v in data["evidence"]]
            writer.write_table(pa.table(data, schema=schema))


def write_article_summaries(rows: Iterable[dict], path: Path, topic_ids: Iterable[str]) -> int:
    """One row per article (consecutive rows with the same ``article_id``): topics with
    paragraph counts and shares, the dominant stance per topic and its share, and metadata."""
    topic_ids = list(topic_ids)
    tmp = path.with_name(path.name + ".tmp")
    written = 0
    with tmp.open("w", encoding="utf-8") as fh:

        def flush(article: str, group: list[dict]) -> None:
            topics: Counter[str] = Counter(t for r in group for t in r["topics"])
            summary: dict[str, Any] = {"article_id": article, "paragraphs": len(group)}
            for key in METADATA_FIELDS:
                value = next((r[key] for r in group if r.get(key)), None)
                if value is not None and key != "url":
                    summary[key] = value
            summary["topics"] = {
                t: {
                    "paragraphs": topics[t],
                    "share": round(topics[t] / len(group), 4),
                    **_dominant(Counter(r["stance"][t] for r in group if t in r["stance"])),
                }
                for t in topic_ids
                if topics[t]
            }
            fh.write(json.dumps(summary, ensure_ascii=False) + "\n")

        current, group = None, []
        for row in rows:
            if row["article_id"] != current and group:
                flush(current, group)
                written += 1
                group = []
            current = row["article_id"]
            group.append(row)
        if group:
            flush(current, group)
            written += 1
    tmp.replace(path)
    return written


def _dominant(stances: Counter[str]) -> dict[str, Any]:
    stance, count = stances.most_common(1)[0]
    return {"stance": stance, "stance_share": round(count / sum(stances.values()), 4)}


# -- the run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunState:
    """What a partial output was made from; a resume must match it."""

    inputs: list[str]
    model: str
    settings: dict


def predict_files(
    inputs: list[str],
    predictor: Predictor,
    output: str | Path,
    model_label: str,
    settings: PredictSettings | None = None,
    articles: str | Path | None = None,
    errors: str | Path | None = None,
    resume: bool = False,
    stdin: TextIO | None = None,
    on_read: Callable[[], None] | None = None,
    on_rows: Callable[[int], None] | None = None,
    stdout: IO[str] | None = None,
) -> PredictReport:
    """Classify every paragraph in ``inputs`` and write the rows to ``output`` (``-``: stdout)."""
    settings = settings or PredictSettings()
    report = PredictReport(output=str(output))
    started = time.perf_counter()
    fmt = output_format(output)
    units = iter_units(inputs, settings, report, stdin=stdin, on_read=on_read)
    topic_ids = predictor.schema.topic_ids

    if str(output) == "-":
        if resume:
            raise UserError("--resume needs an output file, not standard output")
        out = stdout or sys.stdout
        for batch, *scores in score_batches(_batches(units, settings.batch_size, report), predictor, settings.workers):
            for row in rows_for(batch, predictor, model_label, tuple(scores), settings.explain):
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                report.count(row)
            out.flush()
            if on_rows:
                on_rows(len(batch))
    else:
        output = Path(output)
        partial, state_file = _partial_paths(output)
        state = RunState([str(i) for i in inputs], model_label, asdict(settings))
        skip = 0
        if resume and partial.exists():
            saved = json.loads(state_file.read_text(encoding="utf-8")) if state_file.exists() else None
            if saved != asdict(state):
                raise UserError(
                    f"{partial} was written from other inputs, model or settings; run again without --resume"
                )
            skip = _count_complete_rows(partial)
            report.resumed = skip
        elif partial.exists():
            logger.warning("%s from an earlier run is replaced (use --resume to continue it)", partial)
        state_file.write_text(json.dumps(asdict(state)), encoding="utf-8")
        with partial.open("a" if skip else "w", encoding="utf-8") as fh:
            if skip:
                units = _skip_units(units, skip)
                for row in _read_rows(partial):
                    report.count(row)
            scored = score_batches(_batches(units, settings.batch_size, report), predictor, settings.workers)
            for batch, *scores in scored:
                for row in rows_for(batch, predictor, model_label, tuple(scores), settings.explain):
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                    report.count(row)
                fh.flush()  # a kill now loses at most the batch being scored
                if on_rows:
                    on_rows(len(batch))
        if articles is not None:
            report.articles_file = str(articles)
            write_article_summaries(_read_rows(partial), Path(articles), topic_ids)
        write_final(partial, output, fmt)
        state_file.unlink(missing_ok=True)

    if errors is not None and (report.bad or Path(errors).exists()):
        _write_errors(Path(errors), report.bad)
        report.errors_file = str(errors)
    report.seconds = time.perf_counter() - started
    return report


def _skip_units(units: Iterator[Unit | BadRecord], n: int) -> Iterator[Unit | BadRecord]:
    """Pass bad records through (they are reported again) and drop the first ``n`` units."""
    for unit in units:
        if isinstance(unit, BadRecord) or n <= 0:
            yield unit
        else:
            n -= 1


def _write_errors(path: Path, bad: list[BadRecord]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for record in bad:
            fh.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")
    tmp.replace(path)


def count_records(inputs: Iterable[str | Path]) -> int | None:
    """How many articles or table rows the inputs hold, for a progress bar's total.

    Cheap: files are listed and table lines counted, nothing is parsed. None for stdin.
    """
    import glob
    import os

    total = 0
    for item in inputs:
        name = str(item)
        if name == "-":
            return None
        path = Path(name)
        if path.is_dir():
            files = [Path(d) / f for d, _, fs in os.walk(path) for f in fs if not f.startswith(".")]
        elif path.is_file():
            files = [path]
        else:
            files = [Path(m) for m in glob.glob(name, recursive=True) if Path(m).is_file()]
        for file in files:
            total += _records_in(file)
    return total


def _records_in(path: Path) -> int:
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
        if suffix in (".jsonl", ".csv"):
            with path.open("rb") as fh:
                lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
            return max(0, lines - (suffix == ".csv"))
    except Exception:  # a file that cannot be counted is reported when it is read
        return 1
    return 1


def describe_model(uri: str, operating_point: str = BALANCED) -> str:
    """The ``model`` field of output rows: the URI, with the registry version when it has one,
    and the operating point when it is not the balanced one (so rows say how they were
    labelled, and a resume at another point is refused)."""
    point = "" if operating_point == BALANCED else f", {operating_point} operating point"
    if not str(uri).startswith("models:/"):
        return f"{uri}{point}"
    import mlflow

    name_and_ref = str(uri).removeprefix("models:/")
    try:
        client = mlflow.MlflowClient()
        if "@" in name_and_ref:
            name, alias = name_and_ref.split("@", 1)
            return f"{uri} (version {client.get_model_version_by_alias(name, alias).version}){point}"
    except mlflow.exceptions.MlflowException:
        pass
    return f"{uri}{point}"
