"""Real-news benchmark (not a test: ``make bench-realnews``).

Scores the champion and each family's newest registered version on the real-news folder kept
outside the repository (``../shared/realnews`` by default; ``--realnews DIR``):

- ``dev.jsonl``: topic micro-F1 and end-to-end stance macro-F1 (a missed topic is a wrong
  stance; ``alt`` accepted), overall and per ``origin``;
- ``stream.jsonl``: the share of stream paragraphs given a topic, overall and per topic, and a
  random sample of the topic-labelled ones written to ``OUT/stream_sample_<family>[_<point>].jsonl``
  for reading by hand.

Each at every operating point the model stores (``balanced``, and ``stream`` for models saved
since operating points exist; see ``inference.model_io``), the texts scored once. With
``--min-precision P`` also at a point chosen here, on the team's dev split alone, for
precision ``P`` (for models saved without a stream point, or to try another target).

The stored points' figures are logged to each model's own run (``realnews_*`` at the
balanced point, ``realnews_stream_*`` at the stream one; the stream file's topic shares as
``..._stream_topic_share``), so ``allystance experiments compare`` shows them. Without the
folder it prints one line and exits 0.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import numpy as np

from inference.model_io import BALANCED, OPERATING_POINTS
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
    """A copy of ``predictor`` whose thresholds are a stream operating point chosen here: per
    topic, the lowest threshold (at or above the balanced one) at which team-dev precision
    reaches ``target``, as training chooses the stored one."""
    from training.evaluate import precision_thresholds

    scores, _ = predictor.score([r["text"] for r in team_dev])
    gold = np.array([predictor.schema.encode_topics(r["topics"]) for r in team_dev])
    point = copy.copy(predictor.at(BALANCED))
    point.thresholds = np.asarray(precision_thresholds(gold, scores, point.thresholds, target))
    point.operating_point = f"p{target:g}"
    return point


def points_of(predictor, team_dev: list[dict], min_precision: float | None) -> list:
    """The predictor at each operating point it stores, then at ``min_precision`` when given."""
    points = [predictor.at(BALANCED)]
    points += [predictor.at(name) for name in predictor.meta.operating_points if name in OPERATING_POINTS]
    if min_precision:
        points.append(at_precision(predictor, team_dev, min_precision))
    return points


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
        help="also score each model at an operating point chosen here: per topic, the lowest threshold at which "
        "its precision on the team's dev split reaches this (e.g. 0.95); for models saved without a stream "
        "point, or to try another target; not logged",
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
    from training.evaluate import metric_prefix
    from training.realnews import realnews_metrics, stream_summary, stream_texts

    team_dev = [r for r in read_records() if r.get("split") == "dev"] if args.min_precision else []
    texts = [r["text"] for r in stream_texts(folder)]  # scored once per model, decided per point

    use_store(args.tracking_uri)
    client = MlflowClient()
    args.out.mkdir(parents=True, exist_ok=True)
    rows, share_rows = [], []
    for label, (uri, run_id) in newest_versions(client).items():
        predictor = load_predictor(uri)
        model = f"{label} v{uri.rsplit('/', 1)[-1]}"
        run = client.get_run(run_id).data.metrics
        stream_scores = predictor.score(texts)
        logged: dict[str, float] = {}
        for point in points_of(predictor, team_dev, args.min_precision):
            name = point.operating_point
            stored = name in OPERATING_POINTS
            metrics = realnews_metrics(point, folder)
            stream, sample = stream_summary(point, folder, sample_size=args.sample, scores=stream_scores)
            suffix = "" if name == BALANCED else f"_{name}"
            with (args.out / f"stream_sample_{label}{suffix}.jsonl").open("w", encoding="utf-8") as fh:
                fh.writelines(json.dumps(s, ensure_ascii=False) + "\n" for s in sample)
            real, test = metric_prefix("realnews", name), metric_prefix("test", name)
            if stored:
                logged.update(metrics)
                logged.update({f"{real}_{k}": v for k, v in stream.items()})
            else:
                print(f"{label} @ {name}: thresholds {np.round(point.thresholds, 3).tolist()} (team dev)")
            rows.append(
                (
                    model,
                    name,
                    f"{run.get(f'{test}_topic_micro_f1', float('nan')):.3f}",
                    f"{metrics[f'{real}_topic_micro_f1']:.3f}",
                    f"{metrics[f'{real}_topic_micro_precision']:.3f}",
                    f"{metrics.get(f'{real}_stance_e2e_macro_f1', 0.0):.3f}",
                    f"{stream['stream_topic_share']:.1%}",
                )
            )
            share_rows.append(
                (
                    model,
                    name,
                    f"{stream['stream_topic_share']:.1%}",
                    *(f"{stream[f'stream_{t}_share']:.1%}" for t in predictor.schema.topic_ids),
                )
            )
        if not args.no_log:
            with mlflow.start_run(run_id=run_id):
                mlflow.log_metrics(logged)
    topic_ids = predictor.schema.topic_ids
    print_tables(
        [
            Table(
                f"Team test and real-news dev ({folder / 'dev.jsonl'}), per operating point",
                (
                    "model",
                    "point",
                    "test topic µF1",
                    "real topic µF1",
                    "real topic precision",
                    "real stance mF1 (e2e)",
                    "stream given a topic",
                ),
                tuple(rows),
            ),
            Table(
                f"Stream: share of paragraphs given a topic ({folder / 'stream.jsonl'})",
                ("model", "point", "any topic", *topic_ids),
                tuple(share_rows),
            ),
        ],
        left_columns=2,
    )
    print(f"samples of topic-labelled stream paragraphs: {args.out}/stream_sample_<model>[_<point>].jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
