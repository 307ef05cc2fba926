"""A leaderboard of tracked runs: which model to trust, on which topic, and at what cost.

Runs come from ``experiments.run_reader``; this module sorts them by a metric, picks the
parameters that tell runs of one family apart, and draws per-topic scores of the top runs.
"""

from __future__ import annotations

import html
import math
import textwrap
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from experiments.defaults import DEFAULT_METRIC, DEFAULT_TOP
from experiments.figures import figure_data_uri, html_page, image_tag, save_figure, series_style
from experiments.run_reader import RunsError, RunSummary
from labels import LabelSchema, load_schema
from labels.stats import Table
from training.evaluate import HEADLINE_METRICS

# Parameters that name where a run went rather than how it trained.
UNINFORMATIVE = ("family", "experiment", "promote_metric")
SHORT_NAMES = {
    "topic_micro_f1": "topic µF1",
    "topic_macro_f1": "topic mF1",
    "topic_exact_match": "exact match",
    "stance_macro_f1": "stance mF1",
    "stance_f_avg": "F_avg",
    "stance_e2e_accuracy": "e2e acc",
    "combined_f1": "combined",
}
# Real-news dev figures, logged when ../shared/realnews is present (training.realnews).
REALNEWS_COLUMNS = {
    "realnews_topic_micro_f1": "topic µF1",
    "realnews_stance_e2e_macro_f1": "stance mF1 (end to end)",
    "selection_score": "selection score",
}


@dataclass
class Leaderboard:
    """Runs ranked by ``metric`` (best first), one row per run, plus the runs themselves."""

    metric: str
    frame: pd.DataFrame
    runs: list[RunSummary]

    @property
    def split(self) -> str:
        return split_of(self.metric)


def split_of(metric: str) -> str:
    """The split a metric was computed on (``dev`` unless it says ``test``)."""
    return "test" if metric.startswith("test_") else "dev"


def key_params(runs: Sequence[RunSummary]) -> dict[str, str]:
    """Per run, ``k=v`` for the parameters that differ between runs of its family.

    The search grid itself is left out; what it chose (``chosen.*``) stands in for the
    setting it replaced, so a searched run shows the values its model really used.
    """
    effective: dict[str, dict[str, str]] = {}
    for run in runs:
        params = {k: v for k, v in run.params.items() if not k.startswith("search") and k not in UNINFORMATIVE}
        for key in [k for k in params if k.startswith("chosen.")]:
            params[key.removeprefix("chosen.")] = params.pop(key)
        effective[run.run_id] = params
    out = {}
    for run in runs:
        family = [effective[r.run_id] for r in runs if r.family == run.family]
        out[run.run_id] = _differing(effective[run.run_id], family)
    return out


def _differing(params: dict[str, str], family: Sequence[dict[str, str]]) -> str:
    """``k=v`` for the keys of ``params`` whose values differ somewhere in ``family`` (the
    parameter dicts of its family, its own included)."""
    keys = sorted({k for p in family for k in p})
    varying = [k for k in keys if len({p.get(k) for p in family}) > 1]
    return " ".join(f"{k}={params.get(k, '-')}" for k in varying)


def rank_runs(runs: Sequence[RunSummary], metric: str = DEFAULT_METRIC, top: int | None = DEFAULT_TOP) -> Leaderboard:
    """Sort runs by ``metric``, highest first; runs without it go last (ties: older first)."""
    _check_metric(runs, metric)
    ordered = sorted(runs, key=lambda r: (metric not in r.metrics, -r.metrics.get(metric, 0.0), r.start_ms or 0))
    if top is not None:
        ordered = ordered[:top]
    params = key_params(runs)
    rows = []
    for rank, run in enumerate(ordered, start=1):
        row: dict[str, object] = {
            "rank": rank,
            "run_id": run.run_id,
            "family": run.family,
            "params": params[run.run_id],
            "dataset": run.dataset_digest,
            "train_seconds": run.seconds,
            "model_uri": run.model_uri,
            metric: run.metrics.get(metric),
        }
        for split in ("dev", "test"):
            for name in HEADLINE_METRICS:
                row[f"{split}_{name}"] = run.metrics.get(f"{split}_{name}")
        for name in REALNEWS_COLUMNS:
            row[name] = run.metrics.get(name)
        rows.append(row)
    return Leaderboard(metric, pd.DataFrame(rows), list(ordered))


def _check_metric(runs: Sequence[RunSummary], metric: str) -> None:
    """A one-line error when there are no runs or none of them has ``metric``."""
    if not runs:
        raise RunsError("no finished runs to compare; train a model first (allystance train baseline)")
    known = sorted({m for r in runs for m in r.metrics})
    if metric not in known:
        raise RunsError(f"no run has the metric {metric!r}; for example: {', '.join(_examples(known))}")


def _examples(known: Sequence[str]) -> list[str]:
    headline = [f"{s}_{m}" for s in ("dev", "test") for m in HEADLINE_METRICS if f"{s}_{m}" in known]
    return headline or list(known)[:8]


def best_run(runs: Sequence[RunSummary], metric: str = DEFAULT_METRIC) -> RunSummary:
    """The run with the highest ``metric``."""
    board = rank_runs(runs, metric, top=1)
    return board.runs[0]


def _fmt(value: object, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _duration(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "-"
    return f"{seconds:.1f}s" if seconds < 600 else f"{seconds / 60:.0f}min"


def tables(board: Leaderboard) -> list[Table]:
    """The leaderboard as printable tables: the headline metrics of the sorting split, then
    the dataset digest and the parameters that tell the runs apart (a table of their own,
    so that both fit an 80-column terminal)."""
    split = board.split
    names = list(HEADLINE_METRICS)
    extra = board.metric not in {f"{split}_{n}" for n in names}
    headers = ["#", "run", "family", "time"]
    headers += ([board.metric] if extra else []) + [SHORT_NAMES[n] for n in names]
    rows, details, real_rows = [], [], []
    for _, r in board.frame.iterrows():
        cells = [r["rank"], r["run_id"][:8], r["family"], _duration(r["train_seconds"])]
        if extra:
            cells.append(_fmt(r[board.metric]))
        cells += [_fmt(r[f"{split}_{n}"]) for n in names]
        rows.append(tuple(cells))
        if pd.notna(r.get("realnews_topic_micro_f1")):
            real_rows.append((r["rank"], r["run_id"][:8], r["family"], *(_fmt(r[n]) for n in REALNEWS_COLUMNS)))
        details.append((r["rank"], r["run_id"][:8], r["dataset"][:12] or "-", r["params"] or "-"))
    title = f"Runs by {board.metric}, best first ({split} metrics; µF1 micro, mF1 macro)"
    headers_details = ("#", "run", "dataset digest", "parameters that differ within the family")
    out = [Table(title, tuple(headers), tuple(rows)), Table("Runs in detail", headers_details, tuple(details))]
    if real_rows:  # runs scored on ../shared/realnews (training.realnews)
        headers_real = ("#", "run", "family", *REALNEWS_COLUMNS.values())
        out.append(Table("Real-news dev (runs that were scored on it)", headers_real, tuple(real_rows)))
    return out


BEHAVIOUR_PREFIX, BEHAVIOUR_SUFFIX = "behaviour_", "_failure_rate"


def behaviour_table(board: Leaderboard) -> Table | None:
    """Failure rate per capability of the behaviour suite (``allystance evaluate --behaviour``),
    one column per ranked run that was scored on it; None when none was. Rows: capabilities,
    then the overall rate and the suite's digest (figures compare only on one digest)."""
    ranked = [(rank, run) for rank, run in enumerate(board.runs, start=1) if "behaviour_failure_rate" in run.metrics]
    if not ranked:
        return None
    names = sorted(
        {
            m.removeprefix(BEHAVIOUR_PREFIX).removesuffix(BEHAVIOUR_SUFFIX)
            for _, run in ranked
            for m in run.metrics
            if m.startswith(BEHAVIOUR_PREFIX)
            and m.endswith(BEHAVIOUR_SUFFIX)
            and m != "behaviour_failure_rate"
            and not m.startswith(("behaviour_int8_", "behaviour_onnx_"))  # other runtimes
        }
    )

    def rate(run: RunSummary, metric: str) -> str:
        value = run.metrics.get(metric)
        return "-" if value is None else f"{value:.0%}"

    rows = [(name, *(rate(run, f"{BEHAVIOUR_PREFIX}{name}{BEHAVIOUR_SUFFIX}") for _, run in ranked)) for name in names]
    rows.append(("all", *(rate(run, "behaviour_failure_rate") for _, run in ranked)))
    rows.append(("suite", *(run.tags.get("behaviour_suite_digest", "-")[:8] for _, run in ranked)))
    headers = ("capability", *(f"#{rank} {run.family} {run.run_id[:8]}" for rank, run in ranked))
    return Table("Behaviour suite: failure rate per capability (lower is better)", headers, tuple(rows))


SEED_PARAM = "seed"
CHOSEN_PREFIX = "chosen."  # what a run chose for itself: its search's pick, its best epoch


@dataclass
class SeedGroup:
    """Runs of one family, dataset and recipe that differ only in their seed (and so in what
    each chose for itself)."""

    family: str
    dataset: str
    differing: str  # "k=v ..." for the recipe parameters that differ between its family's groups
    runs: list[RunSummary]

    @property
    def seeds(self) -> str:
        """The seeds, in numeric order; a seed run more than once is one draw repeated: ``13 (x2)``."""
        counts = Counter(r.params.get(SEED_PARAM, "-") for r in self.runs)
        ordered = sorted(counts, key=lambda s: (len(s), s))
        return ",".join(seed if counts[seed] == 1 else f"{seed} (x{counts[seed]})" for seed in ordered)

    def values(self, metric: str) -> list[float]:
        """The metric of the runs that logged it (a run scored before a metric existed has none)."""
        return [r.metrics[metric] for r in self.runs if metric in r.metrics]

    def mean(self, metric: str) -> float | None:
        values = self.values(metric)
        return float(np.mean(values)) if values else None

    def sd(self, metric: str) -> float | None:
        """Sample standard deviation over the seeds; None with fewer than two runs."""
        values = self.values(metric)
        return float(np.std(values, ddof=1)) if len(values) > 1 else None


def _recipe(run: RunSummary) -> dict[str, str]:
    """The parameters that make a recipe: all but the seed, what the run chose for itself and
    where it went. A search grid stays (it is the recipe); its pick (``chosen.*``) goes."""
    return {
        k: v
        for k, v in run.params.items()
        if k != SEED_PARAM and not k.startswith(CHOSEN_PREFIX) and k not in UNINFORMATIVE
    }


def seed_groups(runs: Sequence[RunSummary], metric: str = DEFAULT_METRIC) -> list[SeedGroup]:
    """Runs grouped by family, dataset digest and recipe (``_recipe``), best mean ``metric``
    first (a group none of whose runs has it goes last). Families without a seed (rules,
    blends) give one group per distinct recipe."""
    _check_metric(runs, metric)
    grouped: dict[tuple, list[RunSummary]] = {}
    for run in sorted(runs, key=lambda r: r.start_ms or 0):
        key = (run.family, run.dataset_digest, tuple(sorted(_recipe(run).items())))
        grouped.setdefault(key, []).append(run)
    groups = []
    for (family, dataset, recipe), members in grouped.items():
        siblings = [dict(k[2]) for k in grouped if k[0] == family]
        groups.append(SeedGroup(family, dataset, _differing(dict(recipe), siblings), members))

    def best_first(group: SeedGroup) -> float:
        mean = group.mean(metric)
        return -math.inf if mean is None else mean

    return sorted(groups, key=best_first, reverse=True)


def _spread(group: SeedGroup, metric: str) -> str:
    """``mean±sd`` over the runs that have the metric, with their count when some runs lack it."""
    values, mean, sd = group.values(metric), group.mean(metric), group.sd(metric)
    if mean is None:
        return "-"
    cell = f"{mean:.3f}" if sd is None else f"{mean:.3f}±{sd:.3f}"
    return cell if len(values) == len(group.runs) else f"{cell} (n={len(values)})"


def seed_table(groups: Sequence[SeedGroup], metric: str = DEFAULT_METRIC) -> Table:
    """One row per recipe: its number of runs, then mean±standard deviation over the seeds of
    the sort metric, the split's topic and stance figures and the real-news dev figures."""
    split = split_of(metric)
    columns = [metric, f"{split}_topic_micro_f1", f"{split}_stance_macro_f1", *REALNEWS_COLUMNS]
    # selection_score mixes team dev and real news: a column only when it is what the rows are sorted by.
    columns = [c for c in dict.fromkeys(columns) if c != "selection_score" or c == metric]
    names = {f"{s}_{k}": f"{s} {v}" for s in ("dev", "test") for k, v in SHORT_NAMES.items()}
    names |= {k: f"real-news {v}" for k, v in REALNEWS_COLUMNS.items() if k != "selection_score"}
    headers = ("#", "family", "runs", *(names.get(c, c.replace("_", " ")) for c in columns))
    rows = tuple(
        (rank, group.family, len(group.runs), *(_spread(group, c) for c in columns))
        for rank, group in enumerate(groups, start=1)
    )
    return Table(f"Recipes over their seeds, by mean {metric} (mean±standard deviation)", headers, rows)


def seed_details(groups: Sequence[SeedGroup]) -> Table:
    """Which recipe each row of ``seed_table`` is: its seeds, dataset digest and the parameters
    that differ."""
    headers = ("#", "family", "seeds", "dataset digest", "parameters that differ within the family")
    rows = tuple(
        (rank, g.family, g.seeds, g.dataset[:12] or "-", g.differing or "-") for rank, g in enumerate(groups, start=1)
    )
    return Table("Recipes in detail", headers, rows)


def _label(run: RunSummary, rank: int, params: str) -> str:
    return f"#{rank} {run.family} {run.run_id[:8]}" + (f" ({params})" if params else "")


def plot_per_topic(board: Leaderboard, schema: LabelSchema | None = None, max_runs: int = 6) -> plt.Figure:
    """Per-topic F1 and stance macro-F1 of the top runs, side by side, one bar group per topic."""
    schema = schema or load_schema()
    runs = board.runs[:max_runs]
    split = board.split
    params = dict(zip(board.frame["run_id"], board.frame["params"], strict=True))
    panels = (
        ("Topic detection F1", "topic_{}_f1"),
        ("Stance macro-F1 (gold topic pairs)", "stance_{}_macro_f1"),
    )
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True)
    x = np.arange(len(schema.topics))
    width = 0.8 / max(len(runs), 1)
    for ax, (title, pattern) in zip(axes, panels, strict=True):
        for i, run in enumerate(runs):
            style = series_style(i)
            values = [run.metrics.get(f"{split}_" + pattern.format(t), np.nan) for t in schema.topic_ids]
            bars = ax.bar(
                x - 0.4 + width * (i + 0.5),
                np.nan_to_num(values),
                width,
                color=style["color"],
                hatch=style["hatch"],
                edgecolor="black",
                linewidth=0.5,
                label=_label(run, i + 1, params[run.run_id]),
            )
            for bar, value in zip(bars, values, strict=True):
                if np.isnan(value):
                    ax.annotate("n/a", (bar.get_x() + bar.get_width() / 2, 0.01), ha="center", fontsize=7)
        ax.set_title(title)
        ax.set_xticks(x, [textwrap.fill(t.name, 16, break_on_hyphens=False) for t in schema.topics])
        ax.set_ylim(0, 1)
        ax.set_xlabel("Topic")
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(f"Score on the {split} split (0–1)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.suptitle(f"Per-topic scores of the top {len(runs)} runs ({split} split)")
    fig.tight_layout()
    fig.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=min(len(runs), 2),
        title=f"Runs, ranked by {board.metric} (parameters that differ in brackets)",
    )
    return fig


def write_plot(board: Leaderboard, path: Path) -> Path:
    return save_figure(plot_per_topic(board), path)


def write_html(board: Leaderboard, path: Path, source: str) -> Path:
    """One self-contained page: the leaderboard with both splits' metrics, and the plot."""
    frame = board.frame.copy()
    frame["train_seconds"] = frame["train_seconds"].map(lambda s: _duration(s))
    figure = plot_per_topic(board)
    uri = figure_data_uri(figure)
    plt.close(figure)
    parts = [
        f"<p class='note'>Tracking store: {html.escape(source)}. Sorted by {html.escape(board.metric)}, "
        "best first; nested search runs are left out.</p>",
        "<h2>Leaderboard</h2>",
        frame.to_html(index=False, na_rep="-", float_format=lambda v: f"{v:.3f}"),
        "<h2>Per-topic scores</h2>",
        image_tag(uri, f"Per-topic F1 and stance macro-F1 of the top runs by {board.metric}"),
    ]
    behaviour = behaviour_table(board)
    if behaviour is not None:
        parts += [
            "<h2>Behaviour suite</h2>",
            pd.DataFrame(list(behaviour.rows), columns=list(behaviour.headers)).to_html(index=False),
            "<p class='note'>Failure rate per capability (allystance evaluate --behaviour), lower is better.</p>",
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_page("allystance: run comparison", parts), encoding="utf-8")
    return path
