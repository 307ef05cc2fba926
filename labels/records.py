"""Reading labelled records: one JSON object per line, as the label spec gives them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from labels.errors import UserError

DATA_DIR = Path(__file__).with_name("data")
DEFAULT_DATASET = DATA_DIR / "paragraphs.jsonl"
ARTICLES_FILE = DATA_DIR / "articles.jsonl"
# Team-written articles without labels (the distillation transfer set; see DATASHEET.md).
UNLABELLED_FILE = DATA_DIR / "unlabelled.jsonl"
SPLITS = ("train", "dev", "test")


class DatasetError(UserError):
    """A dataset file cannot be read; the message names the file and line."""


def read_records(paths: str | Path | Iterable[str | Path] | None = None) -> list[dict]:
    """Read JSON-lines records from one or more files (the shipped dataset by default).

    Blank lines are skipped. Raises ``DatasetError`` naming ``file:line`` on invalid JSON;
    run ``allystance data validate`` for a full check of the records' content.
    """
    if paths is None:
        paths = [DEFAULT_DATASET]
    elif isinstance(paths, str | Path):
        paths = [paths]
    records: list[dict] = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise DatasetError(f"{path}: no such file")
        with path.open(encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DatasetError(f"{path}:{line_no}: invalid JSON ({exc.msg})") from None
                if not isinstance(record, dict):
                    raise DatasetError(f"{path}:{line_no}: a record must be a JSON object")
                records.append(record)
    return records


def write_records(path: str | Path, records: Iterable[dict]) -> None:
    """Write records as JSON lines, atomically (a temporary file renamed at the end)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    tmp.replace(path)
