from labels import NO_STANCE, load_schema
from training.data import load_splits


def test_load_splits_encodes_labels_with_the_schema(dataset_file):
    splits = load_splits(dataset_file)
    assert set(splits) == {"train", "dev", "test"}
    test = splits["test"]
    assert test["id"] == ["c1-p0", "c1-p1"]
    schema = load_schema()
    assert test[0]["topic_labels"] == schema.encode_topics(["opcon", "inter_korean"])
    assert test[0]["stance_labels"] == [NO_STANCE, NO_STANCE, 2, 0]
    assert test[1]["topic_labels"] == [0, 0, 0, 0]


def test_calibration_sample_is_evenly_spaced_and_bounded():
    from training.runs import calibration_texts

    records = [{"text": f"paragraph {i}"} for i in range(2156)]
    sample = calibration_texts(records)
    assert len(sample) == 432 and sample[:2] == ["paragraph 0", "paragraph 5"]
    assert calibration_texts(records) == sample  # the same every run
    assert calibration_texts(records[:10]) == [f"paragraph {i}" for i in range(10)]
    assert len(calibration_texts(records, limit=64)) <= 64
