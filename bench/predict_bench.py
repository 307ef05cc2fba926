"""Benchmark of batch prediction with the TF-IDF baseline (not a test: ``make bench``).

Fits the baseline with the default recipe's chosen settings on the shipped train split, saves
it as a model folder, and prints a table:

- raw model forward: ``Predictor.score`` on 10,000 paragraphs in one process, and the plain
  scikit-learn pipeline (``features_.transform`` + heads) for comparison;
- ``allystance predict`` end to end on a 10,000-paragraph JSON-lines file, as a subprocess
  (rate over the whole command, start-up included, and over the run itself);
- peak memory (max RSS) of ``allystance predict`` on 1,000,000 paragraphs (``--million``).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from inference.model_io import load_model, save_model
from inference.tfidf import TfidfTopicStance, stance_scores, topic_scores
from labels import load_schema, read_records
from training.runs import make_meta


def fit_model(folder: Path) -> Path:
    schema = load_schema()
    train = [r for r in read_records() if r["split"] == "train"]
    model = TfidfTopicStance(topic_C=4.0, stance_C=2.0).fit(
        [r["text"] for r in train],
        np.array([schema.encode_topics(r["topics"]) for r in train]),
        np.array([schema.encode_stances(r["stance"]) for r in train]),
    )
    return save_model(folder / "model", model, make_meta("baseline", schema, [0.5] * len(schema.topics)))


def write_input(path: Path, n: int, texts: list[str]) -> None:
    rng = random.Random(0)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps({"id": f"p{i}", "text": rng.choice(texts)}) + "\n")


def run_predict(model: Path, source: Path, out: Path, workers: int) -> tuple[float, float, int]:
    """Wall seconds, the run's own paragraphs/s (from its summary) and peak RSS in MiB."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments",
            "-q",
            "predict",
            str(source),
            "--model",
            str(model),
            "-o",
            str(out),
            "--workers",
            str(workers),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"COLUMNS": "120", "PATH": ""},
    )
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    rate = next(
        float(line.split("│")[1].replace(",", ""))
        for line in result.stderr.splitlines()
        if line.startswith("paragraphs/s")
    )
    return wall, rate, max(peak, before) // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paragraphs", type=int, default=10_000)
    parser.add_argument(
        "--million",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure peak memory on 1,000,000 paragraphs (several minutes)",
    )
    args = parser.parse_args()

    texts = [r["text"] for r in read_records() if len(r["text"].split()) >= 8]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_dir = fit_model(tmp)
        predictor = load_model(model_dir)
        sample = [random.Random(1).choice(texts) for _ in range(args.paragraphs)]
        rows = []

        predictor.score(sample[:500])  # warm-up
        start = time.perf_counter()
        predictor.score(sample)
        rows.append(("raw forward, Predictor.score (1 process)", args.paragraphs / (time.perf_counter() - start), ""))

        model = predictor.model
        start = time.perf_counter()
        X = model.features_.transform(sample)
        topic_scores(model.topic_heads_, X)
        stance_scores(model.stance_heads_, X, model.n_topics_, model.n_stance_classes)
        rows.append(("plain scikit-learn pipeline (1 process)", args.paragraphs / (time.perf_counter() - start), ""))

        source = tmp / "in.jsonl"
        write_input(source, args.paragraphs, texts)
        for workers in (1, 2):
            wall, rate, peak = run_predict(model_dir, source, tmp / "out.jsonl", workers)
            rows.append((f"allystance predict, {workers} worker(s): run", rate, f"{peak} MiB"))
            rows.append((f"allystance predict, {workers} worker(s): whole command", args.paragraphs / wall, ""))

        if args.million:
            big = tmp / "big.jsonl"
            write_input(big, 1_000_000, texts)
            wall, rate, peak = run_predict(model_dir, big, tmp / "big_out.jsonl", 2)
            rows.append(("allystance predict, 1,000,000 paragraphs, 2 workers: run", rate, f"{peak} MiB"))

    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'paragraphs/s':>12}  peak RSS")
    for name, rate, peak in rows:
        print(f"{name:<{width}}  {rate:>12,.0f}  {peak}")


if __name__ == "__main__":
    main()
