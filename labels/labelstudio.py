"""Label Studio's formats, generated from and checked against the label schema.

Three shapes, as Label Studio documents them (labelstud.io/tags/choices,
labelstud.io/guide/predictions, labelstud.io/guide/task_format):

- the labelling config: a ``<View>`` with the paragraph as ``<Text name="text"
  value="$text"/>``, the topics as one ``<Choices choice="multiple">`` and one single-choice
  stance ``<Choices>`` per topic with its header in a ``<View>``, both shown only while that
  topic is ticked (``visibleWhen="choice-selected" whenTagName="topics" whenChoiceValue=...``);
- tasks to import: ``{"data": {...}, "predictions": [{"model_version", "score", "result"}]}``
  where each result item is ``{"from_name", "to_name", "type": "choices",
  "value": {"choices": [...]}}``;
- the JSON export: the same tasks with ``annotations``, each holding a ``result`` list of
  the same items and ``was_cancelled``.

Choice values are the schema's ids (``cost_sharing``, ``favor``), so an export reads back
without a lookup table; the topic's name and proposition are shown as headers and hints.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import quoteattr

from labels.schema import LabelSchema

TEXT_NAME = "text"
TOPICS_NAME = "topics"
STANCE_PREFIX = "stance_"
# Task data fields carried from a paragraph record and back (``text`` is required).
DATA_FIELDS = ("id", "article_id", "position", "text", "source", "date", "title", "url")


def stance_control(topic_id: str) -> str:
    """The name of the stance ``<Choices>`` of one topic."""
    return f"{STANCE_PREFIX}{topic_id}"


def labeling_config(schema: LabelSchema) -> str:
    """The Label Studio labelling config (XML) for the schema's topics and stances."""
    topic_choices = "\n".join(
        f"    <Choice value={quoteattr(t.id)} hint={quoteattr(f'{t.name}: {t.description}')}/>" for t in schema.topics
    )
    stance_blocks = []
    for t in schema.topics:
        hints = {"favor": t.favor, "against": t.against}
        choices = "\n".join(
            f"      <Choice value={quoteattr(s)}" + (f" hint={quoteattr(hints[s])}" if s in hints else "") + "/>"
            for s in schema.stance_values
        )
        when = f'visibleWhen="choice-selected" whenTagName="{TOPICS_NAME}" whenChoiceValue={quoteattr(t.id)}'
        # Header has no visibleWhen of its own, so it sits in a conditional View; the Choices
        # carry the condition too, so that required="true" applies only while they are shown.
        stance_blocks.append(
            f"  <View {when}>\n"
            f'    <Header value={quoteattr(f"{t.name} — stance toward: {t.proposition}")} size="6"/>\n'
            f'    <Choices name={quoteattr(stance_control(t.id))} toName="{TEXT_NAME}" choice="single-radio"'
            f' showInline="true" required="true"\n             {when}>\n{choices}\n    </Choices>\n  </View>'
        )
    return (
        f"<View>\n"
        f"  <!-- allystance label schema {schema.version} (hash {schema.hash}); generated, do not edit -->\n"
        f'  <Text name="{TEXT_NAME}" value="$text"/>\n'
        f'  <Header value="Topics the paragraph says something substantive about (none is a valid answer)"'
        f' size="5"/>\n'
        f'  <Choices name="{TOPICS_NAME}" toName="{TEXT_NAME}" choice="multiple" showInline="false">\n'
        f"{topic_choices}\n"
        f"  </Choices>\n" + "\n".join(stance_blocks) + "\n</View>\n"
    )


def _choices_item(from_name: str, values: Sequence[str]) -> dict:
    return {"from_name": from_name, "to_name": TEXT_NAME, "type": "choices", "value": {"choices": list(values)}}


def result_items(topics: Sequence[str], stance: Mapping[str, str]) -> list[dict]:
    """Labels as Label Studio result items: the ticked topics, then one stance per topic."""
    items = [_choices_item(TOPICS_NAME, topics)] if topics else []
    items.extend(_choices_item(stance_control(t), [stance[t]]) for t in topics if t in stance)
    return items


def make_task(
    record: Mapping,
    topics: Sequence[str] | None = None,
    stance: Mapping[str, str] | None = None,
    model_version: str = "",
    score: float | None = None,
) -> dict:
    """One Label Studio task for a paragraph record, with the model's labels as a prediction."""
    task: dict = {"data": {k: record[k] for k in DATA_FIELDS if record.get(k) is not None}}
    if topics is not None:
        prediction: dict = {"model_version": model_version, "result": result_items(topics, stance or {})}
        if score is not None:
            prediction["score"] = float(score)
        task["predictions"] = [prediction]
    return task


@dataclass
class ExportReading:
    """What an export gave: records (without ``split``), and every task that gave none, with why."""

    records: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # errors: the merge is refused
    skipped: list[str] = field(default_factory=list)  # tasks without a usable annotation


def _annotation_time(annotation: Mapping) -> str:
    return str(annotation.get("updated_at") or annotation.get("created_at") or "")


def _labels_from_result(result: object, schema: LabelSchema, where: str) -> tuple[list[str], dict[str, str], list[str]]:
    """Topics and stance from one annotation's result list, and the problems found in it."""
    problems: list[str] = []
    topics: list[str] = []
    stance: dict[str, str] = {}
    if not isinstance(result, list):
        return [], {}, [f"{where}: annotation 'result' should be a list"]
    stance_names = {stance_control(t): t for t in schema.topic_ids}
    for item in result:
        if not isinstance(item, dict) or not isinstance(item.get("value"), dict):
            problems.append(f"{where}: result item is not an object with a 'value'")
            continue
        name, choices = item.get("from_name"), item["value"].get("choices")
        if item.get("type") != "choices" or not isinstance(choices, list):
            problems.append(f"{where}: result item {name!r} is not a 'choices' result")
            continue
        if name == TOPICS_NAME:
            for choice in choices:
                if choice not in schema.topic_ids:
                    problems.append(f"{where}: unknown topic {choice!r}; expected one of {', '.join(schema.topic_ids)}")
                elif choice not in topics:
                    topics.append(choice)
        elif name in stance_names:
            if len(choices) != 1 or choices[0] not in schema.stance_values:
                expected = ", ".join(schema.stance_values)
                problems.append(f"{where}: stance of {stance_names[name]} should be one of {expected}, got {choices}")
            else:
                stance[stance_names[name]] = choices[0]
        else:
            problems.append(f"{where}: unknown control {name!r}; was the project set up with 'data suggest' config?")
    # Label Studio can keep the answer of a stance control hidden after its topic was unticked.
    stance = {t: stance[t] for t in schema.topic_ids if t in stance and t in topics}
    problems.extend(f"{where}: topic {t} has no stance" for t in topics if t not in stance)
    return [t for t in schema.topic_ids if t in topics], stance, problems


def _date(value: object, where: str, problems: list[str]) -> str | None:
    if value in (None, ""):
        return None
    try:
        dt.date.fromisoformat(str(value))
        if len(str(value)) == 10:
            return str(value)
    except ValueError:
        pass
    problems.append(f"{where}: date {value!r} is not YYYY-MM-DD")
    return None


def read_export(tasks: object, schema: LabelSchema, default_source: str = "unknown") -> ExportReading:
    """Records from a Label Studio JSON export (a list of tasks), checked against the schema.

    Each task needs one usable annotation: cancelled (skipped) annotations are ignored, and
    when several remain they must agree (else the task is a problem to resolve in Label
    Studio). Record fields come from the task data (``id``, ``article_id``, ``position``,
    ``source``, ``date``); a task without an id gets ``ls-<task id>``.
    """
    reading = ExportReading()
    if not isinstance(tasks, list):
        reading.problems.append("a Label Studio JSON export is a list of tasks; this file holds something else")
        return reading
    for index, task in enumerate(tasks):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            reading.problems.append(f"task #{index}: not a task object with 'data'")
            continue
        data = task["data"]
        where = f"task {task.get('id', f'#{index}')}"
        text = data.get(TEXT_NAME)
        if not isinstance(text, str) or not text.strip():
            reading.problems.append(f"{where}: no text in the task data")
            continue
        annotations = [
            a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled", False)
        ]
        if not annotations:
            reading.skipped.append(f"{where}: no annotation (not labelled yet, or skipped)")
            continue
        labelled = [_labels_from_result(a.get("result"), schema, where) for a in annotations]
        problems = [p for _, _, ps in labelled for p in ps]
        distinct = {(tuple(t), tuple(sorted(s.items()))) for t, s, _ in labelled}
        if len(distinct) > 1:
            problems.append(f"{where}: {len(annotations)} annotations disagree; resolve them in Label Studio first")
        rid = data.get("id") if data.get("id") not in (None, "") else f"ls-{task.get('id', index)}"
        position = data.get("position")
        if position is not None and (isinstance(position, bool) or not isinstance(position, int) or position < 0):
            problems.append(f"{where}: position {position!r} is not an integer >= 0")
            position = None
        date = _date(data.get("date"), where, problems)
        if problems:
            reading.problems.extend(problems)
            continue
        latest = max(range(len(annotations)), key=lambda i: _annotation_time(annotations[i]))
        topics, stance, _ = labelled[latest]
        record = {
            "id": str(rid),
            "article_id": str(data.get("article_id") or rid),
            "text": text,
            "topics": topics,
            "stance": stance,
            "source": str(data.get("source") or default_source),
            "date": date,
        }
        if position is not None:
            record["position"] = position
        reading.records.append(record)
    return reading
