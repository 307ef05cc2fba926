"""Real-news benchmark (not a test: ``make bench-realnews``).

Scores the champion and each family's newest registered version on the real-news folder kept
outside the repository (``../shared/realnews`` by default; ``--realnews DIR``):

- ``dev.jsonl``: topic micro-F1 and end-to-end stance macro-F1 (a missed topic is a wrong
  stance; ``alt`` accepted), overall and per ``origin``;
- ``stream.jsonl``: the share of stream paragraphs given a topic, overall and per topic, and a
  random sample of the topic-labelled ones written to ``OUT/stream_sample_<family>.jsonl``
  for reading by hand.
- with ``--min-precision P``: the same for each model at a stream operating point, thresholds
  chosen on the team's dev split alone for precision ``P`` (real news never picks them).

The figures are logged to each model's own run (``realnews_*`` and ``realnews_stream_*``), so
``allystance experiments compare`` shows them. Without the folder it prints one line and exits 0.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import numpy as np

from labels import read_records
from labels.stats import Table


def newest_versions(client) -> dict[str, tuple[str, str]]:
    """``{label: (model URI, run id)}``: the champion, then each family's newest version."""
    from inference.model_io import ModelLoadError

    versions = client.search_model_versions("name='allystance'")
    out: dict[str, tuple[str, str]] = {}
    try:
        champion = client.get_model_version_by_alias("allystance", "champion")
        out["champion"] = (f"models:/allystance/{champion.version}", champion.run_id)
    except Exception:  # no champion yet is fine
        pass
    newest: dict[str, object] = {}
    for v in versions:
        family = client.get_run(v.run_id).data.tags.get("family", "?")
        if family not in newest or int(v.version) > int(newest[family].version):
            newest[family] = v
    for family, v in sorted(newest.items()):
        out[family] = (f"models:/allystance/{v.version}", v.run_id)
    if not out:
        raise ModelLoadError("no registered models in this store; train one with 'allystance train baseline'")
    return out


def at_precision(predictor, team_dev: list[dict], target: float):
    """A copy of ``predictor`` whose thresholds are the stream operating point: per topic, the
    lowest threshold (at or above the model's own) at which team-dev precision reaches ``target``."""
    from training.evaluate import precision_thresholds

    scores, _ = predictor.score([r["text"] for r in team_dev])
    gold = np.array([predictor.schema.encode_topics(r["topics"]) for r in team_dev])
    point = copy.copy(predictor)
    point.thresholds = np.asarray(precision_thresholds(gold, scores, predictor.thresholds, target))
    return point


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realnews", default="auto", help="folder with dev.jsonl and stream.jsonl")
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--out", type=Path, default=Path("bench-realnews"), help="folder for stream samples")
    parser.add_argument("--sample", type=int, default=100, help="topic-labelled stream paragraphs to write out")
    parser.add_argument("--no-log", action="store_true", help="do not log the figures to the models' runs")
    parser.add_argument(
        "--min-precision",
        type=float,
        default=None,
        help="also score each model at a stream operating point: per topic, the lowest threshold at which "
        "its precision on the team's dev split reaches this (e.g. 0.95); not logged",
    )
    args = parser.parse_args(argv)

    from training.realnews import find_realnews

    folder = find_realnews(args.realnews)
    if folder is None:
        print("bench-realnews: skipped, no real-news folder (dev.jsonl) at ../shared/realnews or --realnews")
        return 0

    import mlflow
    from mlflow import MlflowClient

    from experiments.cli.common import print_tables
    from inference.model_io import load_predictor
    from inference.store import use_store
    from training.realnews import realnews_metrics, stream_summary

    team_dev = [r for r in read_records() if r.get("split") == "dev"] if args.min_precision else []

    use_store(args.tracking_uri)
    client = MlflowClient()
    args.out.mkdir(parents=True, exist_ok=True)
    rows, stream_rows = [], []
    for label, (uri, run_id) in newest_versions(client).items():
        predictor = load_predictor(uri)
        metrics = realnews_metrics(predictor, folder)
        stream, sample = stream_summary(predictor, folder, sample_size=args.sample)
        with (args.out / f"stream_sample_{label}.jsonl").open("w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(s, ensure_ascii=False) + "\n" for s in sample)
        if not args.no_log:
            with mlflow.start_run(run_id=run_id):
                mlflow.log_metrics({**metrics, **{f"realnews_{k}": v for k, v in stream.items()}})
        run = client.get_run(run_id).data.metrics
        rows.append(
            (
                label,
                uri,
                f"{run.get('test_topic_micro_f1', float('nan')):.3f}",
                f"{run.get('test_stance_macro_f1', float('nan')):.3f}",
                f"{metrics['realnews_topic_micro_f1']:.3f}",
                f"{metrics.get('realnews_stance_e2e_macro_f1', 0.0):.3f}",
            )
        )
        stream_rows.append(
            (
                label,
                f"{stream['stream_topic_share']:.1%}",
                *(f"{stream[f'stream_{t}_share']:.1%}" for t in predictor.schema.topic_ids),
            )
        )
        topic_ids = predictor.schema.topic_ids
        if args.min_precision:
            point = at_precision(predictor, team_dev, args.min_precision)
            name = f"{label} @ {args.min_precision:g}"
            print(f"{name}: thresholds {dict(zip(topic_ids, np.round(point.thresholds, 3).tolist(), strict=True))}")
            metrics = realnews_metrics(point, folder)
            stream, sample = stream_summary(point, folder, sample_size=args.sample)
            with (args.out / f"stream_sample_{label}_p{args.min_precision:g}.jsonl").open("w", encoding="utf-8") as fh:
                fh.writelines(json.dumps(s, ensure_ascii=False) + "\n" for s in sample)
            rows.append(
                (
                    name,
                    uri,
                    "—",
                    "—",
                    f"{metrics['realnews_topic_micro_f1']:.3f}",
                    f"{metrics.get('realnews_stance_e2e_macro_f1', 0.0):.3f}",
                )
            )
            stream_rows.append(
                (
                    name,
                    f"{stream['stream_topic_share']:.1%}",
                    *(f"{stream[f'stream_{t}_share']:.1%}" for t in topic_ids),
                )
            )
    print_tables(
        [
            Table(
                f"Team test and real-news dev ({folder / 'dev.jsonl'})",
                ("model", "uri", "test topic µF1", "test stance mF1", "real topic µF1", "real stance mF1 (e2e)"),
                tuple(rows),
            ),
            Table(
                f"Stream: share of paragraphs given a topic ({folder / 'stream.jsonl'})",
                ("model", "any topic", *topic_ids),
                tuple(stream_rows),
            ),
        ]
    )
    print(f"samples of topic-labelled stream paragraphs: {args.out}/stream_sample_<model>.jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
