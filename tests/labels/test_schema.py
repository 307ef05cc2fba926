from pathlib import Path

import pytest
import yaml

from labels import NO_STANCE, SchemaError, load_schema
from labels.schema import SCHEMA_PATH, schema_from_dict

# The contract in shared/spec/labels.md, restated: the schema file must encode exactly this.
SPEC_TOPICS = {
    "cost_sharing": "South Korea should pay more for the alliance",
    "exercises": "Combined exercises should go ahead at full scale",
    "opcon": "Wartime OPCON should be transferred to Seoul soon",
    "inter_korean": "Seoul should engage and reconcile with Pyongyang",
}


def test_shipped_schema_encodes_the_spec():
    schema = load_schema()
    assert schema.topic_ids == tuple(SPEC_TOPICS)
    assert schema.stance_values == ("favor", "against", "neutral")
    for topic_id, proposition in SPEC_TOPICS.items():
        assert schema.topic(topic_id).proposition == proposition
    assert len(schema.hash) == 16


def test_topic_vectors_round_trip():
    schema = load_schema()
    vector = schema.encode_topics(["opcon", "cost_sharing"])
    assert vector == [1, 0, 1, 0]
    assert schema.decode_topics(vector) == ["cost_sharing", "opcon"]
    assert schema.decode_topics([0.2, 0.7, 0.4, 0.9], threshold=[0.5, 0.5, 0.3, 0.95]) == ["exercises", "opcon"]


def test_stance_vectors_round_trip():
    schema = load_schema()
    stance = {"exercises": "against", "inter_korean": "neutral"}
    encoded = schema.encode_stances(stance)
    assert encoded == [NO_STANCE, 1, NO_STANCE, 2]
    assert schema.decode_stances(encoded) == stance


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.encode_topics(["tariffs"]),
        lambda s: s.encode_stance("support"),
        lambda s: s.encode_stances({"tariffs": "favor"}),
        lambda s: s.decode_stance(3),
        lambda s: s.decode_topics([1, 0]),
    ],
)
def test_labels_outside_the_schema_are_refused(call):
    with pytest.raises(SchemaError):
        call(load_schema())


def _raw() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))


def test_hash_changes_when_a_topic_changes():
    raw = _raw()
    before = schema_from_dict(raw).hash
    raw["topics"][0]["id"] = "burden_sharing"
    assert schema_from_dict(raw).hash != before


def test_hash_changes_when_a_stance_value_changes():
    raw = _raw()
    before = schema_from_dict(raw).hash
    raw["stance_values"] = ["favor", "against", "none"]
    assert schema_from_dict(raw).hash != before


def test_hash_changes_when_topic_order_changes():
    raw = _raw()
    before = schema_from_dict(raw).hash
    raw["topics"] = list(reversed(raw["topics"]))
    assert schema_from_dict(raw).hash != before


def test_hash_ignores_formatting_and_comments(tmp_path: Path):
    reformatted = tmp_path / "schema.yaml"
    reformatted.write_text("# a comment\n" + yaml.safe_dump(_raw(), sort_keys=True, width=60), encoding="utf-8")
    assert load_schema(reformatted).hash == load_schema().hash


def test_malformed_schema_is_a_clear_error():
    raw = _raw()
    raw["topics"].append(dict(raw["topics"][0]))
    with pytest.raises(SchemaError, match="duplicate topic ids"):
        schema_from_dict(raw)
    del raw["stance_values"]
    with pytest.raises(SchemaError, match="missing or mistyped"):
        schema_from_dict(raw)
