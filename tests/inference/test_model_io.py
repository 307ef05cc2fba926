import dataclasses
import json

import numpy as np
import pytest

from inference.model_io import ModelLoadError, Predictor, load_model, load_predictor, save_model
from inference.rules import KeywordRules
from labels import load_schema
from training.runs import make_meta

SCHEMA = load_schema()


def _rules_predictor() -> Predictor:
    model = KeywordRules(SCHEMA.topic_ids, 3, SCHEMA.encode_stance("neutral"))
    return Predictor(model, make_meta("rules", SCHEMA, [0.5] * 4), SCHEMA)


def test_rules_find_topics_and_say_neutral():
    (p,) = _rules_predictor().predict(["Seoul wants the drills cut and the cost-sharing talks restarted."])
    assert p.topics == ["cost_sharing", "exercises"]
    assert p.stance == {"cost_sharing": "neutral", "exercises": "neutral"}
    assert set(p.topic_scores) == set(SCHEMA.topic_ids)


def test_saved_model_round_trips(tmp_path):
    predictor = _rules_predictor()
    save_model(tmp_path / "m", predictor.model, predictor.meta)
    loaded = load_model(tmp_path / "m")
    texts = ["The unification ministry sent flood aid to the North.", "K-pop band sells out."]
    assert loaded.predict(texts) == predictor.predict(texts)
    assert load_predictor(str(tmp_path / "m")).meta.family == "rules"


def test_schema_mismatch_is_refused_in_one_line(tmp_path):
    predictor = _rules_predictor()
    folder = save_model(tmp_path / "m", predictor.model, predictor.meta)
    meta = json.loads((folder / "allystance.json").read_text())
    meta["schema_hash"] = "0123456789abcdef"
    (folder / "allystance.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError) as info:
        load_model(folder)
    message = str(info.value)
    assert "\n" not in message
    assert "0123456789abcdef" in message and SCHEMA.hash in message and "retrain" in message


def test_not_a_model_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="not an allystance model folder"):
        load_model(tmp_path)
    with pytest.raises(ModelLoadError, match="no model at"):
        load_predictor(tmp_path / "nothing-here")


def test_empty_input_gives_empty_output():
    topic_scores, stance = _rules_predictor().score([])
    assert topic_scores.shape == (0, 4) and stance.shape == (0, 4, 3)
    assert _rules_predictor().predict([]) == []


def test_stance_is_only_given_for_predicted_topics():
    predictor = _rules_predictor()
    scores = np.array([[0.9, 0.2, 0.6, 0.1]])
    stance = np.full((1, 4, 3), 1 / 3)
    stance[0, 0] = [0.7, 0.2, 0.1]
    (p,) = predictor.decide(scores, stance)
    assert p.topics == ["cost_sharing", "opcon"]
    assert p.stance["cost_sharing"] == "favor"
    assert set(p.stance_scores) == {"cost_sharing", "opcon"}


def _with_stream_point(predictor: Predictor, thresholds: list[float]) -> Predictor:
    point = {"thresholds": thresholds, "min_precision": 0.95, "chosen_on": "team dev"}
    meta = dataclasses.replace(predictor.meta, operating_points={"stream": point})
    return Predictor(predictor.model, meta, predictor.schema)


def test_stream_operating_point_round_trips_and_decides_with_its_thresholds(tmp_path):
    exercises_off = [0.5, 1.5, 0.5, 0.5]  # the rules score 0 or 1: no exercises label at this point
    predictor = _with_stream_point(_rules_predictor(), exercises_off)
    folder = save_model(tmp_path / "m", predictor.model, predictor.meta)
    stream = load_predictor(folder, operating_point="stream")
    assert stream.operating_point == "stream" and stream.meta.operating_points == predictor.meta.operating_points
    np.testing.assert_array_equal(stream.thresholds, exercises_off)
    text = ["Seoul wants the drills cut and the cost-sharing talks restarted."]
    (balanced,), (narrow,) = load_predictor(folder).predict(text), stream.predict(text)
    assert "exercises" in balanced.topics and "exercises" not in narrow.topics
    assert set(narrow.topics) <= set(balanced.topics) and narrow.topic_scores == balanced.topic_scores
    np.testing.assert_array_equal(stream.at("balanced").thresholds, predictor.meta.thresholds)


def test_model_saved_before_operating_points_loads_and_refuses_stream_in_one_line(tmp_path):
    predictor = _rules_predictor()
    folder = save_model(tmp_path / "m", predictor.model, predictor.meta)
    meta = json.loads((folder / "allystance.json").read_text())
    del meta["operating_points"]  # as every model saved before operating points existed
    (folder / "allystance.json").write_text(json.dumps(meta))
    texts = ["The unification ministry sent flood aid to the North."]
    assert load_predictor(folder).predict(texts) == predictor.predict(texts)
    with pytest.raises(ModelLoadError) as info:
        load_predictor(folder, operating_point="stream")
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{folder} has no 'stream' operating point")
    assert "saved before operating points existed" in message and "--operating-point balanced" in message


def test_unknown_operating_point_is_refused_before_any_model_is_loaded(tmp_path):
    with pytest.raises(ModelLoadError, match="unknown operating point 'fast'; use balanced or stream"):
        load_predictor(tmp_path / "nothing-here", operating_point="fast")
    with pytest.raises(ModelLoadError, match="unknown operating point"):
        _rules_predictor().at("fast")


def test_meta_from_a_newer_allystance_is_refused_in_one_line(tmp_path):
    predictor = _rules_predictor()
    folder = save_model(tmp_path / "m", predictor.model, predictor.meta)
    meta = json.loads((folder / "allystance.json").read_text())
    meta["calibration"] = {"kind": "isotonic"}
    (folder / "allystance.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match=r"saved by a newer allystance \(calibration\); upgrade allystance"):
        load_model(folder)
