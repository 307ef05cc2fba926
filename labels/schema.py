"""The label schema: topics, stance values and propositions, read from ``schema.yaml``.

The schema is data, written by hand; nothing here infers labels from a dataset. Topic
order fixes the columns of every topic vector and stance order the classes of every stance
head, so both are taken from the file exactly as written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from labels.errors import UserError

SCHEMA_PATH = Path(__file__).with_name("schema.yaml")

# Stance index for a topic that does not apply to a paragraph (the loss ignores it).
NO_STANCE = -1


class SchemaError(UserError):
    """The schema file is malformed, or a label is not in the schema."""


@dataclass(frozen=True)
class Topic:
    """One topic and the proposition its stance is taken toward."""

    id: str
    name: str
    description: str
    proposition: str
    favor: str
    against: str


@dataclass(frozen=True)
class LabelSchema:
    """Ordered topics and stance values, with a version and a content hash."""

    version: str
    topics: tuple[Topic, ...]
    stance_values: tuple[str, ...]

    @property
    def topic_ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.topics)

    @property
    def hash(self) -> str:
        """SHA-256 (first 16 hex digits) of the schema's content, independent of formatting."""
        return content_hash(self.to_dict())

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "stance_values": list(self.stance_values),
            "topics": [
                {
                    "id": t.id,
                    "name": t.name,
                    "description": t.description,
                    "proposition": t.proposition,
                    "favor": t.favor,
                    "against": t.against,
                }
                for t in self.topics
            ],
        }

    def topic(self, topic_id: str) -> Topic:
        for t in self.topics:
            if t.id == topic_id:
                return t
        raise SchemaError(f"unknown topic {topic_id!r}; known: {', '.join(self.topic_ids)}")

    # -- topics <-> multi-hot vectors -------------------------------------------------
    def encode_topics(self, topics: Iterable[str]) -> list[int]:
        """Topic names to a multi-hot vector in schema order."""
        wanted = set(topics)
        unknown = wanted - set(self.topic_ids)
        if unknown:
            raise SchemaError(f"unknown topic(s) {sorted(unknown)}; known: {', '.join(self.topic_ids)}")
        return [int(t in wanted) for t in self.topic_ids]

    def decode_topics(self, vector: Sequence[float], threshold: float | Sequence[float] = 0.5) -> list[str]:
        """A multi-hot vector or per-topic scores to topic names (score >= threshold)."""
        if len(vector) != len(self.topics):
            raise SchemaError(f"topic vector has {len(vector)} entries, schema has {len(self.topics)} topics")
        thresholds = [threshold] * len(self.topics) if isinstance(threshold, int | float) else list(threshold)
        return [t for t, v, th in zip(self.topic_ids, vector, thresholds, strict=True) if v >= th]

    # -- stance <-> class indices ------------------------------------------------------
    def encode_stance(self, value: str) -> int:
        try:
            return self.stance_values.index(value)
        except ValueError:
            raise SchemaError(f"unknown stance {value!r}; known: {', '.join(self.stance_values)}") from None

    def decode_stance(self, index: int) -> str:
        if not 0 <= index < len(self.stance_values):
            raise SchemaError(f"stance index {index} out of range 0..{len(self.stance_values) - 1}")
        return self.stance_values[index]

    def encode_stances(self, stance: Mapping[str, str]) -> list[int]:
        """A topic -> stance mapping to one class index per topic (NO_STANCE where absent)."""
        unknown = set(stance) - set(self.topic_ids)
        if unknown:
            raise SchemaError(f"unknown topic(s) {sorted(unknown)}; known: {', '.join(self.topic_ids)}")
        return [self.encode_stance(stance[t]) if t in stance else NO_STANCE for t in self.topic_ids]

    def decode_stances(self, indices: Sequence[int]) -> dict[str, str]:
        """One class index per topic back to a topic -> stance mapping (NO_STANCE skipped)."""
        if len(indices) != len(self.topics):
            raise SchemaError(f"stance vector has {len(indices)} entries, schema has {len(self.topics)} topics")
        return {t: self.decode_stance(i) for t, i in zip(self.topic_ids, indices, strict=True) if i != NO_STANCE}


def content_hash(content: Mapping) -> str:
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def schema_from_dict(raw: Mapping) -> LabelSchema:
    """Build and check a schema from its parsed form."""
    try:
        version = str(raw["version"])
        stance_values = tuple(str(s) for s in raw["stance_values"])
        topics = tuple(
            Topic(
                id=str(t["id"]),
                name=str(t["name"]),
                description=str(t["description"]),
                proposition=str(t["proposition"]),
                favor=str(t["favor"]),
                against=str(t["against"]),
            )
            for t in raw["topics"]
        )
    except (KeyError, TypeError) as exc:
        raise SchemaError(f"malformed schema: missing or mistyped field {exc}") from None
    if not topics or not stance_values:
        raise SchemaError("malformed schema: needs at least one topic and one stance value")
    ids = [t.id for t in topics]
    if len(set(ids)) != len(ids):
        raise SchemaError(f"malformed schema: duplicate topic ids in {ids}")
    if len(set(stance_values)) != len(stance_values):
        raise SchemaError(f"malformed schema: duplicate stance values in {list(stance_values)}")
    return LabelSchema(version=version, topics=topics, stance_values=stance_values)


def load_schema(path: str | Path | None = None) -> LabelSchema:
    """Load the label schema (the shipped one by default)."""
    if path is None:
        return _shipped_schema()
    with open(path, encoding="utf-8") as fh:
        return schema_from_dict(yaml.safe_load(fh))


@cache
def _shipped_schema() -> LabelSchema:
    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        return schema_from_dict(yaml.safe_load(fh))
