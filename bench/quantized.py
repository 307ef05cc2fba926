"""fp32 versus dynamic int8 on CPU: paragraphs per second, and how often the two agree.

    python bench/quantized.py --model models:/allystance/4 --tracking-uri sqlite:////tmp/store/mlflow.db

Scores one split (test by default) with the model as logged and with its int8 variant
(``load_predictor(uri, quantized=True)``), each timed as the best of ``--repeats`` full
passes after a warm-up, and reports the share of topic decisions and of shown stance labels
that agree, and both variants' split figures from the shared evaluation module.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def timed(predictor, texts: list[str], repeats: int) -> tuple[float, tuple]:
    """Best wall time of ``repeats`` full passes (after a warm-up), and the scores."""
    predictor.score(texts[:16])
    best, scores = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        scores = predictor.score(texts)
        best = min(best, time.perf_counter() - start)
    return best, scores


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="models:/allystance@champion", help="MLflow model URI or model folder")
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI for models:/ and runs:/ URIs")
    parser.add_argument("--data", default=None, help="labelled JSON-lines file (default: the shipped dataset)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    import torch

    from inference.model_io import agreement, load_predictor
    from labels import read_records
    from training.evaluate import evaluate
    from training.tracking import use_store

    if args.threads:
        torch.set_num_threads(args.threads)
    use_store(args.tracking_uri)
    records = [r for r in read_records(args.data) if r.get("split") == args.split]
    texts = [r["text"] for r in records]
    fp32 = load_predictor(args.model)
    int8 = load_predictor(args.model, quantized=True)
    out: dict = {"model": args.model, "family": fp32.meta.family, "split": args.split, "paragraphs": len(texts)}
    out["threads"] = torch.get_num_threads()
    scores = {}
    for name, predictor in (("fp32", fp32), ("int8", int8)):
        seconds, scores[name] = timed(predictor, texts, args.repeats)
        metrics = evaluate(records, *scores[name], predictor.thresholds, predictor.schema, with_artifacts=False).metrics
        out[name] = {
            "seconds": round(seconds, 2),
            "paragraphs_per_s": round(len(texts) / seconds, 1),
            "topic_micro_f1": round(metrics["topic_micro_f1"], 4),
            "stance_macro_f1": round(metrics["stance_macro_f1"], 4),
            "combined_f1": round(metrics["combined_f1"], 4),
        }
    out["speed_up"] = round(out["int8"]["paragraphs_per_s"] / out["fp32"]["paragraphs_per_s"], 2)
    out["agreement"] = {k: round(v, 4) for k, v in agreement(scores["fp32"], scores["int8"], fp32.thresholds).items()}
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return out


if __name__ == "__main__":
    main()
