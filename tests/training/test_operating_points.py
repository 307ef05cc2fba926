"""The stream operating point stays where the F1-maximising thresholds put it, whatever
``threshold_tolerance`` did to the balanced one."""

import numpy as np

from inference.model_io import Predictor
from labels import load_schema
from training.evaluate import precision_thresholds, tune_thresholds
from training.runs import make_meta, stream_operating_point

SCHEMA = load_schema()


def _dev():
    """Eight dev paragraphs; topic 0 gold on the first four, no other topic anywhere."""
    topics = [[SCHEMA.topic_ids[0]] if i < 4 else [] for i in range(8)]
    records = [{"id": f"p{i}", "text": f"text {i}", "topics": t, "stance": {}} for i, t in enumerate(topics)]
    scores = np.full((8, len(SCHEMA.topic_ids)), 0.02)
    # Topic 0: gold at 0.9, 0.8, 0.7, 0.2; the others at 0.6, 0.5, 0.4, 0.1. F1 is best (0.857)
    # from 0.625 to 0.7 and 0.75 from 0.525 to 0.6, where precision is 3 of 4.
    scores[:, 0] = [0.9, 0.8, 0.7, 0.2, 0.6, 0.5, 0.4, 0.1]
    return records, scores


def test_a_lowered_balanced_threshold_does_not_lower_the_stream_point():
    records, scores = _dev()
    gold = np.array([SCHEMA.encode_topics(r["topics"]) for r in records])
    balanced = tune_thresholds(gold, scores)
    tolerant = tune_thresholds(gold, scores, tolerance=0.11)
    assert (balanced[0], tolerant[0]) == (0.625, 0.525)
    # From the tolerant floor alone, a 0.7 precision target would stop at 0.6 (3 of 4 right);
    # from the balanced floor it stops at 0.7 (3 of 3).
    assert precision_thresholds(gold, scores, tolerant, 0.7)[0] == 0.6
    assert precision_thresholds(gold, scores, balanced, 0.7)[0] == 0.7

    def stream(thresholds):
        predictor = Predictor(None, make_meta("baseline", SCHEMA, thresholds), SCHEMA)
        return stream_operating_point(predictor, records, scores, 0.7).meta.operating_points["stream"]["thresholds"]

    assert stream(tolerant) == stream(balanced) == precision_thresholds(gold, scores, balanced, 0.7)
