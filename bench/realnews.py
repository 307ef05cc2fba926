"""Real-news benchmark (not a test: ``make bench-realnews``).

Scores the champion and each family's newest registered version on the real-news folder kept
outside the repository (``../shared/realnews`` by default; ``--realnews DIR``):

- ``dev.jsonl``: topic micro-F1 and end-to-end stance macro-F1 (a missed topic is a wrong
  stance; ``alt`` accepted), overall and per ``origin``;
- ``stream.jsonl``: the share of stream paragraphs given a topic, overall and per topic, and a
  random sample of the topic-labelled ones written to ``OUT/stream_sample_<family>.jsonl``
  for reading by hand.

The figures are logged to each model's own run (``realnews_*`` and ``realnews_stream_*``), so
``allystance experiments compare`` shows them. Without the folder it prints one line and exits 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realnews", default="auto", help="folder with dev.jsonl and stream.jsonl")
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--out", type=Path, default=Path("bench-realnews"), help="folder for stream samples")
    parser.add_argument("--sample", type=int, default=100, help="topic-labelled stream paragraphs to write out")
    parser.add_argument("--no-log", action="store_true", help="do not log the figures to the models' runs")
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
