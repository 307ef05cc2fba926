"""Spark scoring gives exactly the rows and labels of the local predict (local[2] mode)."""

import json
import logging

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from inference.model_io import load_predictor
from inference.predict import predict_files
from inference.store import use_store
from tests.conftest import small_subset
from training.tracking import REGISTERED_MODEL

pytestmark = pytest.mark.slow

# py4j logs "Closing down clientserver connection" at interpreter exit, after pytest has
# closed the stream its handler writes to; quieten it so the run ends cleanly.
logging.getLogger("py4j").setLevel(logging.WARNING)


def test_spark_rows_equal_local_predict(tmp_path, trained_baseline, tracking_uri, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    use_store(tracking_uri)
    uri = f"models:/{REGISTERED_MODEL}/{trained_baseline.model_version}"
    records = small_subset(40, 0)[:300]
    rows = [
        {"id": r["id"], "article_id": r["article_id"], "text": r["text"], "source": r["source"], "date": r["date"]}
        for r in records
    ]
    rows.append({"id": "blank", "article_id": "zz", "text": "   ", "source": "x", "date": None})
    source = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist(rows), source)

    local = tmp_path / "local.jsonl"
    predict_files([str(source)], load_predictor(uri), local, "m")
    expected = [json.loads(line) for line in local.read_text().splitlines()]

    from inference.spark import score_parquet

    out = tmp_path / "spark.parquet"
    try:
        assert score_parquet(str(source), str(out), uri, master="local[2]", model_label="m") == len(expected)
    finally:
        from pyspark.sql import SparkSession

        if SparkSession.getActiveSession() is not None:
            SparkSession.getActiveSession().stop()
    got = pq.read_table(out).to_pylist()
    for row in got:
        row["stance"] = dict(row["stance"])
        row["topic_scores"] = dict(row["topic_scores"])
        row["stance_scores"] = {t: dict(s) for t, s in row["stance_scores"]}
        for key in [k for k, v in row.items() if v is None]:
            del row[key]
    by_id = {r["id"]: r for r in got}
    assert sorted(by_id) == sorted(r["id"] for r in expected)
    for row in expected:
        assert by_id[row["id"]] == row
