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
