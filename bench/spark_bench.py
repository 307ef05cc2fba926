"""Spark local mode against local ``allystance predict`` on the same Parquet input (``make bench-spark``).

Trains nothing: it logs the baseline fitted as in ``predict_bench`` into a temporary MLflow
store (Spark scores MLflow models), writes N paragraphs to Parquet, and times
``allystance predict --engine spark`` (``local[2]``) beside the local ``allystance predict``
on the same file, both as whole commands.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bench.predict_bench import fit_model
from inference.model_io import load_model
from inference.store import use_store
from labels import read_records
from training import tracking


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paragraphs", type=int, default=100_000)
    args = parser.parse_args()
    texts = [r["text"] for r in read_records() if len(r["text"].split()) >= 8]
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        uri = f"sqlite:///{tmp / 'mlflow.db'}"
        use_store(uri)
        model_dir = fit_model(tmp)
        predictor = load_model(model_dir)
        with tracking.tracked_run(
            family="baseline", recipe={}, schema=predictor.schema, experiment="bench", tracking_uri=uri
        ):
            version = tracking.log_model(model_dir, predictor, texts[:3], "baseline")
        model = f"models:/{tracking.REGISTERED_MODEL}/{version}"
        source = tmp / "in.parquet"
        rows = [{"id": f"p{i}", "text": rng.choice(texts)} for i in range(args.paragraphs)]
        pq.write_table(pa.Table.from_pylist(rows), source)
        env = dict(os.environ, MLFLOW_TRACKING_URI=uri, COLUMNS="120")
        results = []
        for name, extra, out in (
            ("allystance predict (local, 2 workers)", [], tmp / "local.parquet"),
            (
                "allystance predict --engine spark (local[2])",
                ["--engine", "spark", "--spark-master", "local[2]"],
                tmp / "spark.parquet",
            ),
        ):
            start = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "experiments",
                    "-q",
                    "predict",
                    str(source),
                    "--model",
                    model,
                    "-o",
                    str(out),
                    *extra,
                ],
                check=True,
                env=env,
                capture_output=True,
            )
            results.append((name, args.paragraphs / (time.perf_counter() - start)))
    print(f"{'measure (' + format(args.paragraphs, ',') + ' paragraphs, whole command)':<60} paragraphs/s")
    for name, rate in results:
        print(f"{name:<60} {rate:>12,.0f}")


if __name__ == "__main__":
    main()
