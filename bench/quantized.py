"""Inference runtimes on CPU: torch fp32, torch int8, ONNX Runtime fp32 and int8, compared.

    python bench/quantized.py --model models:/allystance/4 --tracking-uri sqlite:////tmp/store/mlflow.db

Loads the model on each runtime (``load_predictor(uri, runtime=...)``; ``inference.model_io``
describes them) and scores the same paragraphs, one split (test by default), with each:

- paragraphs/s of the scoring pass (``Predictor.score``), the best of ``--repeats`` full
  passes after a warm-up, and its speed-up over torch fp32;
- paragraphs/s of the whole command: ``allystance predict`` on those paragraphs as a
  subprocess (start-up, model load and scoring; the ONNX export is in the cache by then),
  the rate the command itself reports over its run (reading, scoring and writing, after
  the model has loaded), and the seconds this script's own load took (after an untimed
  first load, which pays for the imports; an ONNX runtime's first load ever also makes the
  export, marked as such);
- the share of topic decisions and of the stance labels shown that agree with torch fp32,
  and each runtime's split figures from the shared evaluation module.

Prints a table; ``--json`` also writes every figure. The ONNX runtimes need the onnx extra
(``pip install 'allystance[onnx]'``); ``--runtimes`` picks fewer.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

REFERENCE = "torch"


def timed(predictor, texts: list[str], repeats: int) -> tuple[float, tuple]:
    """Best wall time of ``repeats`` full passes (after a warm-up), and the scores."""
    predictor.score(texts[:16])
    best, scores = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        scores = predictor.score(texts)
        best = min(best, time.perf_counter() - start)
    return best, scores


def onnx_files() -> int:
    """How many ONNX exports the cache holds (a load that adds one made an export)."""
    from inference.encoder import model_cache

    return len(list((model_cache() / "onnx").glob("*/*.onnx")))


def time_command(model: str, runtime: str, source: Path, tracking_uri: str | None, threads: int | None) -> dict:
    """``allystance predict`` on ``source`` in a subprocess: wall seconds of the whole command,
    and the paragraphs/s it reports over its own run (after loading the model)."""
    env = {**os.environ, "COLUMNS": "120"}
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    command = [sys.executable, "-m", "experiments", "-q", "predict", str(source), "--model", model]
    command += ["-o", str(source.with_name(f"out-{runtime}.jsonl")), "--runtime", runtime]
    if tracking_uri:
        command += ["--tracking-uri", tracking_uri]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parents[1])
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"allystance predict --runtime {runtime} failed:\n{result.stderr[-2000:]}")
    run_rate = next(
        (
            float(line.split()[-1].replace(",", ""))
            for line in result.stderr.splitlines()
            if line.strip().startswith("paragraphs/s")
        ),
        None,
    )
    return {"seconds": round(seconds, 2), "run_paragraphs_per_s": run_rate}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="models:/allystance@champion", help="MLflow model URI or model folder")
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI for models:/ and runs:/ URIs")
    parser.add_argument("--data", default=None, help="labelled JSON-lines file (default: the shipped dataset)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=None, help="the first N paragraphs only (a smoke run)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads, torch and ONNX Runtime alike")
    parser.add_argument(
        "--runtimes", default="torch,torch-int8,onnx,onnx-int8", help="comma-separated; torch fp32 always runs"
    )
    parser.add_argument(
        "--command", action=argparse.BooleanOptionalAction, default=True, help="also time allystance predict"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    import torch
    from rich.console import Console

    from experiments.cli.common import print_tables
    from inference.model_io import agreement, choose_runtime, load_predictor
    from labels import read_records
    from labels.stats import Table
    from training.evaluate import evaluate
    from training.tracking import use_store

    runtimes = [REFERENCE] + [r for r in dict.fromkeys(args.runtimes.split(",")) if r and r != REFERENCE]
    for runtime in runtimes:
        choose_runtime(runtime)  # a typo fails before anything loads
    if args.threads:
        torch.set_num_threads(args.threads)
    use_store(args.tracking_uri)
    records = [r for r in read_records(args.data) if r.get("split") == args.split][: args.limit]
    texts = [r["text"] for r in records]
    out: dict = {"model": args.model, "split": args.split, "paragraphs": len(texts), "threads": torch.get_num_threads()}
    figures: dict[str, dict] = {}
    reference = None  # torch fp32's scores
    load_predictor(args.model)  # untimed: the first load pays for imports that every later one skips
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "paragraphs.jsonl"
        source.write_text("".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in records))
        for runtime in runtimes:
            before, start = onnx_files(), time.perf_counter()
            predictor = load_predictor(args.model, runtime=runtime)
            load_seconds = time.perf_counter() - start
            out.setdefault("family", predictor.meta.family)
            seconds, scores = timed(predictor, texts, args.repeats)
            if reference is None:
                reference = scores
            metrics = evaluate(records, *scores, predictor.thresholds, predictor.schema, with_artifacts=False).metrics
            row = {
                "load_seconds": round(load_seconds, 2),
                "exported": onnx_files() > before,  # this load made the ONNX export (once per model)
                "score_seconds": round(seconds, 2),
                "paragraphs_per_s": round(len(texts) / seconds, 1),
                "agreement": {k: round(v, 4) for k, v in agreement(reference, scores, predictor.thresholds).items()},
                "topic_micro_f1": round(metrics["topic_micro_f1"], 4),
                "stance_macro_f1": round(metrics["stance_macro_f1"], 4),
                "combined_f1": round(metrics["combined_f1"], 4),
            }
            row["speed_up"] = round(row["paragraphs_per_s"] / figures.get(REFERENCE, row)["paragraphs_per_s"], 2)
            del predictor  # one loaded model at a time
            if args.command:
                command = time_command(args.model, runtime, source, args.tracking_uri, args.threads)
                command["paragraphs_per_s"] = round(len(texts) / command["seconds"], 1)
                row["command"] = command
            figures[runtime] = row
    out["runtimes"] = figures

    def rate(value) -> str:
        return "-" if value is None else f"{value:,.1f}"

    table = Table(
        f"Runtimes on {len(texts):,} {args.split} paragraphs ({out['family']}, threads: {out['threads']})",
        (
            "runtime",
            "load s",
            "export",
            "score p/s",
            "speed-up",
            "command p/s",
            "run p/s",
            "topics agree",
            "stances agree",
            "stance F1",
        ),
        tuple(
            (
                name,
                f"{row['load_seconds']:.1f}",
                "made" if row["exported"] else "-",
                rate(row["paragraphs_per_s"]),
                f"{row['speed_up']:.2f}x",
                rate(row["command"]["paragraphs_per_s"]) if "command" in row else "-",
                rate(row["command"]["run_paragraphs_per_s"]) if "command" in row else "-",
                f"{row['agreement']['topic_agreement']:.2%}",
                f"{row['agreement']['stance_agreement']:.2%}",
                f"{row['stance_macro_f1']:.3f}",
            )
            for name, row in figures.items()
        ),
    )
    print_tables([table], Console(width=max(120, Console().width)))
    print(
        "p/s: paragraphs per second; score: the scoring pass, best of the repeats; command: allystance predict,\n"
        "start-up and load included; run: the rate allystance predict reports over its run (reading, scoring,\n"
        "writing; after the load); export: this load made the ONNX export (once per model); agree: share of\n"
        "torch fp32's topic decisions and shown stance labels; stance F1: stance macro-F1 on the split"
    )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
        print(f"figures in {args.json}")
    return out


if __name__ == "__main__":
    main()
