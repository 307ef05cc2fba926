"""Label Studio config, tasks and exports: the shapes Label Studio documents, from the schema."""

import json
import xml.etree.ElementTree as ET

from labels import load_schema
from labels.labelstudio import TOPICS_NAME, labeling_config, make_task, read_export, stance_control


def test_config_is_xml_with_topics_multi_choice_and_a_conditional_stance_per_topic():
    schema = load_schema()
    root = ET.fromstring(labeling_config(schema))
    assert root.tag == "View"
    text = root.find("Text")
    assert text is not None and text.get("name") == "text" and text.get("value") == "$text"
    choices = {c.get("name"): c for c in root.iter("Choices")}
    topics = choices[TOPICS_NAME]
    assert topics.get("choice") == "multiple" and topics.get("toName") == "text"
    assert [c.get("value") for c in topics.findall("Choice")] == list(schema.topic_ids)
    for topic in schema.topic_ids:
        stance = choices[stance_control(topic)]
        assert stance.get("toName") == "text" and stance.get("choice") == "single-radio"
        assert stance.get("visibleWhen") == "choice-selected"
        assert stance.get("whenTagName") == TOPICS_NAME and stance.get("whenChoiceValue") == topic
        assert [c.get("value") for c in stance.findall("Choice")] == list(schema.stance_values)
    assert len(choices) == 1 + len(schema.topics)
    conditional = [v for v in root.iter("View") if v.get("visibleWhen") == "choice-selected"]
    assert [v.get("whenChoiceValue") for v in conditional] == list(schema.topic_ids)
    assert all(v.get("whenTagName") == TOPICS_NAME and v.find("Header") is not None for v in conditional)


def test_task_holds_data_and_a_prediction_whose_controls_exist_in_the_config():
    schema = load_schema()
    record = {"id": "x-p01", "article_id": "x", "position": 1, "text": "Drills resume.", "source": "wire", "date": None}
    task = make_task(record, ["exercises"], {"exercises": "favor"}, model_version="models:/m/1", score=0.3)
    task = json.loads(json.dumps(task))  # plain JSON all the way down
    assert task["data"] == {"id": "x-p01", "article_id": "x", "position": 1, "text": "Drills resume.", "source": "wire"}
    (prediction,) = task["predictions"]
    assert prediction["model_version"] == "models:/m/1" and prediction["score"] == 0.3
    controls = {c.get("name") for c in ET.fromstring(labeling_config(schema)).iter("Choices")}
    for item in prediction["result"]:
        assert set(item) == {"from_name", "to_name", "type", "value"}
        assert item["from_name"] in controls and item["to_name"] == "text" and item["type"] == "choices"
    assert [i["value"]["choices"] for i in prediction["result"]] == [["exercises"], ["favor"]]


def _result(from_name: str, *choices: str) -> dict:
    return {
        "id": "r1",
        "from_name": from_name,
        "to_name": "text",
        "type": "choices",
        "origin": "manual",
        "value": {"choices": list(choices)},
    }


def test_export_reads_back_the_latest_agreeing_annotation_and_skips_unlabelled_tasks():
    tasks = [
        {
            "id": 7,
            "data": {"text": "T1", "id": "a-p00", "article_id": "a", "position": 0, "date": "2024-05-01"},
            "annotations": [
                {
                    "id": 1,
                    "was_cancelled": False,
                    "result": [
                        _result("topics", "opcon", "exercises"),
                        _result("stance_opcon", "against"),
                        _result("stance_exercises", "neutral"),
                        _result("stance_cost_sharing", "favor"),
                    ],
                }
            ],
        },
        {"id": 8, "data": {"text": "T2"}, "annotations": [{"id": 2, "was_cancelled": True, "result": []}]},
        {"id": 9, "data": {"text": "T3"}, "annotations": [{"id": 3, "result": []}]},
    ]
    reading = read_export(tasks, load_schema())
    assert reading.problems == []
    first, third = reading.records
    assert first["topics"] == ["exercises", "opcon"]  # schema order
    assert first["stance"] == {"exercises": "neutral", "opcon": "against"}  # hidden stance of an unticked topic dropped
    assert (first["id"], first["article_id"], first["position"], first["date"]) == ("a-p00", "a", 0, "2024-05-01")
    assert (third["id"], third["topics"], third["stance"], third["date"]) == ("ls-9", [], {}, None)
    assert reading.skipped == ["task 8: no annotation (not labelled yet, or skipped)"]


def test_export_problems_name_the_task():
    tasks = [
        {"id": 1, "data": {"text": "A"}, "annotations": [{"result": [_result("topics", "tariffs")]}]},
        {"id": 2, "data": {"text": "B"}, "annotations": [{"result": [_result("topics", "opcon")]}]},
        {
            "id": 3,
            "data": {"text": "C"},
            "annotations": [{"result": [_result("topics", "opcon"), _result("stance_opcon", "maybe")]}],
        },
        {
            "id": 4,
            "data": {"text": "D"},
            "annotations": [{"result": []}, {"result": [_result("topics", "opcon"), _result("stance_opcon", "favor")]}],
        },
    ]
    problems = read_export(tasks, load_schema()).problems
    assert problems[0].startswith("task 1: unknown topic 'tariffs'")
    assert "task 2: topic opcon has no stance" in problems
    assert any(p.startswith("task 3: stance of opcon should be one of") for p in problems)
    assert "task 4: 2 annotations disagree; resolve them in Label Studio first" in problems
    assert read_export({"not": "a list"}, load_schema()).problems
