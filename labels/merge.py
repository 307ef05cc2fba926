"""Appending newly labelled paragraphs to a dataset file, the way ``allystance data merge`` does.

New records get their split from the hash of their article (``labels.splits.split_of``), so
they land where every other paragraph of that article is and a later re-split agrees. Texts
already in the dataset (compared as lower-cased words) are refused; the combined file must
pass ``validate_files`` with no error caused by a new record, or nothing is written.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from labels.errors import UserError
from labels.labelstudio import read_export
from labels.records import read_records, write_records
from labels.schema import LabelSchema, load_schema
from labels.splits import SplitSettings, split_of
from labels.validate import validate_files, words

RECORD_ORDER = ("id", "article_id", "position", "text", "topics", "stance", "source", "date", "split")


def _field_rank(name: str) -> int:
    return RECORD_ORDER.index(name) if name in RECORD_ORDER else len(RECORD_ORDER)


class MergeError(UserError):
    """The export cannot be merged; nothing was written."""


@dataclass
class MergeReport:
    """What a merge did: records appended, duplicates refused, tasks skipped."""

    added: list[dict] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def text_key(text: str) -> str:
    """Texts compare as their lower-cased words, as ``data validate`` compares them."""
    return " ".join(w.lower() for w in words(text))


def read_export_file(path: str | Path, schema: LabelSchema) -> tuple[list[dict], list[str], list[str]]:
    """Records, problems and skipped tasks from a Label Studio JSON export file."""
    path = Path(path)
    if not path.is_file():
        raise MergeError(f"{path}: no such file")
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise MergeError(f"{path}: not JSON ({exc.msg} at line {exc.lineno}); export the project as 'JSON'") from None
    reading = read_export(tasks, schema)
    return reading.records, reading.problems, reading.skipped


def merge_records(
    new: Sequence[dict], into: str | Path, settings: SplitSettings | None = None, schema: LabelSchema | None = None
) -> MergeReport:
    """Append ``new`` records (without splits) to the dataset file ``into``, refusing duplicate texts."""
    settings = settings or SplitSettings()
    into = Path(into)
    existing = read_records(into) if into.exists() else []
    report = MergeReport()
    seen = {text_key(r["text"]): r.get("id", "?") for r in existing if isinstance(r.get("text"), str)}
    for record in new:
        key = text_key(record["text"])
        if key in seen:
            report.duplicates.append(f"{record['id']}: same text as {seen[key]}")
            continue
        seen[key] = record["id"]
        full = {**record, "split": split_of(record.get("article_id") or record["id"], settings)}
        report.added.append(dict(sorted(full.items(), key=lambda kv: _field_rank(kv[0]))))
    if not report.added:
        return report
    combined = [*existing, *report.added]
    with tempfile.TemporaryDirectory() as tmp:
        candidate = Path(tmp) / into.name
        write_records(candidate, combined)
        result = validate_files([candidate], schema=schema or load_schema())
    # Errors on the existing lines are the file's own; refuse only what the new records cause.
    caused = [p for p in result.errors if p.line > len(existing)]
    if caused:
        shown = "; ".join(f"{report.added[p.line - len(existing) - 1]['id']}: {p.message}" for p in caused[:5])
        more = f" (and {len(caused) - 5} more)" if len(caused) > 5 else ""
        raise MergeError(f"nothing merged: {len(caused)} problem(s) with the new records: {shown}{more}")
    into.parent.mkdir(parents=True, exist_ok=True)
    write_records(into, combined)
    return report


def merge_export(
    export: str | Path, into: str | Path, settings: SplitSettings | None = None, schema: LabelSchema | None = None
) -> MergeReport:
    """Read a Label Studio JSON export, check it against the schema and append it to ``into``.

    Any schema problem in the export (an unknown topic or stance, a topic without a stance,
    annotations that disagree) refuses the whole merge, so a file is never half-merged.
    """
    schema = schema or load_schema()
    records, problems, skipped = read_export_file(export, schema)
    if problems:
        shown = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
        raise MergeError(f"nothing merged: {len(problems)} problem(s) in {export}: {shown}")
    report = merge_records(records, into, settings, schema)
    report.skipped = skipped
    return report


def merge_jsonl(
    path: str | Path, into: str | Path, settings: SplitSettings | None = None, schema: LabelSchema | None = None
) -> MergeReport:
    """Append JSON-lines records labelled by hand (e.g. corrected ``data suggest`` output) to ``into``.

    Only the record fields are kept (the suggestion's scores, rank and model are dropped);
    the split is recomputed from the article, as for an export.
    """
    records = []
    for r in read_records(path):
        if not isinstance(r.get("text"), str) or not r.get("id"):
            raise MergeError(f"nothing merged: {path}: every record needs an 'id' and a 'text'")
        kept = {k: r[k] for k in RECORD_ORDER if k in r and k != "split"}
        kept.setdefault("article_id", str(r["id"]))
        kept.setdefault("source", "unknown")
        kept.setdefault("date", None)
        kept.setdefault("topics", [])
        kept.setdefault("stance", {})
        records.append(kept)
    return merge_records(records, into, settings, schema)
