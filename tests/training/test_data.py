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
