"""Coverage reports from ``allystance predict`` output: how topics and stances moved.

Reads prediction rows (JSON lines, CSV with JSON-string list/dict fields, or Parquet),
counts paragraphs per period (month or week) and per source, and writes the counts as CSV,
charts as PNG, and one self-contained HTML page. Topic ids, names and stance values come
from the label schema, never from the data; a row naming anything else is an error.
"""

from __future__ import annotations

import html
import itertools
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from experiments.defaults import DEFAULT_GROUPINGS, GROUPINGS, MIN_COUNT
from experiments.figures import html_page, image_tag, png_data_uri, save_figure, series_style, stance_style
from labels import LabelSchema, load_schema
from labels.errors import UserError
from labels.stats import Table

THIN_ALPHA = 0.35  # thin groups' stance bars are faded: visible, but not read as firmly
MAX_SOURCES = 12  # sources charted one by one; the rest are charted together (CSV has all)
NO_SOURCE = "(no source)"
REQUIRED = ("id", "topics", "stance")
EVIDENCE_EXAMPLES = 3  # paragraphs shown with their evidence per topic and stance (predict --explain)


class ReportError(UserError):
    """The prediction file cannot be read or does not fit the label schema."""


@dataclass
class Predictions:
    """One row per paragraph: the fields reports need, checked against the schema."""

    path: Path
    frame: pd.DataFrame  # id, article_id, date (Timestamp or NaT), source, topics (list), stance (dict), model
    undated: int = 0  # rows with no date
    bad_dates: int = 0  # rows whose date could not be read as YYYY-MM-DD
    models: list[str] = field(default_factory=list)
    # From 'predict --explain': the first EVIDENCE_EXAMPLES rows of each (topic, stance),
    # each {"id", "text", "stance", "evidence"}; and how many rows carried evidence.
    examples: dict[tuple[str, str], list[dict]] = field(default_factory=dict)
    explained: int = 0

    @property
    def dated(self) -> pd.DataFrame:
        return self.frame[self.frame["date"].notna()]


# -- reading -----------------------------------------------------------------------------


def _rows(path: Path) -> Iterator[tuple[str, dict]]:
    """(location, row) pairs from a JSON-lines, CSV or Parquet file."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ReportError(f"{path}:{number}: invalid JSON: {exc.msg}") from None
                if not isinstance(row, dict):
                    raise ReportError(f"{path}:{number}: expected a JSON object per line")
                yield f"{path}:{number}", row
    elif suffix in (".csv", ".parquet"):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False) if suffix == ".csv" else pd.read_parquet(path)
        offset = 2 if suffix == ".csv" else 1  # CSV: line 1 is the header
        for number, row in enumerate(frame.to_dict(orient="records")):
            yield f"{path}:{number + offset}", row
    else:
        raise ReportError(f"{path}: unsupported file type {suffix or '(none)'}; use .jsonl, .csv or .parquet")


def _decoded(value: object, where: str, name: str) -> object:
    """A list or dict field: as is, from a JSON string (CSV), or from Parquet's arrays and maps."""
    if isinstance(value, str):
        try:
            return json.loads(value) if value.strip() else None
        except json.JSONDecodeError:
            raise ReportError(f"{where}: field {name!r} is not valid JSON: {value[:60]!r}") from None
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list) and value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
        return dict(value)  # a Parquet map column reads back as (key, value) pairs
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if v is not None}  # a struct column pads absent keys
    return value


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _checked(where: str, row: dict, schema: LabelSchema) -> dict:
    missing = [name for name in REQUIRED if name not in row]
    if missing:
        raise ReportError(f"{where}: missing field(s) {', '.join(missing)}; is this 'allystance predict' output?")
    topics = _decoded(row["topics"], where, "topics") or []
    stance = _decoded(row["stance"], where, "stance") or {}
    if not isinstance(topics, list) or not isinstance(stance, dict):
        raise ReportError(f"{where}: 'topics' must be a list and 'stance' a mapping")
    unknown = [t for t in topics if t not in schema.topic_ids]
    if unknown:
        raise ReportError(f"{where}: unknown topic(s) {unknown}; the schema has {', '.join(schema.topic_ids)}")
    if set(stance) != set(topics):
        raise ReportError(f"{where}: stance keys {sorted(stance)} differ from topics {sorted(topics)}")
    bad = [v for v in stance.values() if v not in schema.stance_values]
    if bad:
        raise ReportError(f"{where}: unknown stance value(s) {bad}; the schema has {', '.join(schema.stance_values)}")
    return {
        "id": str(row["id"]),
        "article_id": _text(row.get("article_id")),
        "date": _text(row.get("date")),
        "source": _text(row.get("source")) or NO_SOURCE,
        "topics": list(topics),
        "stance": dict(stance),
        "model": _text(row.get("model")) or "",
    }


def read_predictions(path: Path, schema: LabelSchema | None = None) -> Predictions:
    """Read and check a prediction file; dates that are missing or unreadable are counted."""
    schema = schema or load_schema()
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    rows, examples, explained = [], {}, 0
    for where, raw in _rows(path):
        row = _checked(where, raw, schema)
        rows.append(row)
        evidence = _decoded(raw.get("evidence"), where, "evidence")
        if isinstance(evidence, dict) and raw.get("text") is not None:
            explained += 1
            _keep_example(examples, row, str(raw["text"]), evidence)
    if not rows:
        raise ReportError(f"{path}: no prediction rows")
    frame = pd.DataFrame(rows)
    raw = frame["date"]
    frame["date"] = pd.to_datetime(raw, format="%Y-%m-%d", errors="coerce")
    undated = int(raw.isna().sum())
    bad_dates = int((raw.notna() & frame["date"].isna()).sum())
    models = sorted({m for m in frame["model"] if m})
    return Predictions(path, frame, undated, bad_dates, models, examples, explained)


def _keep_example(examples: dict, row: dict, text: str, evidence: dict) -> None:
    """Keep a row as an example of each (topic, stance) it has that is still short of examples."""
    for topic, stance in row["stance"].items():
        kept = examples.setdefault((topic, stance), [])
        if len(kept) < EVIDENCE_EXAMPLES and isinstance(evidence.get(topic), dict):
            kept.append({"id": row["id"], "text": text, "stance": stance, "evidence": evidence[topic]})


# -- counting ----------------------------------------------------------------------------


def _groups(predictions: Predictions, by: str) -> tuple[pd.DataFrame, list[str]]:
    """The rows that can be grouped by ``by`` with a ``group`` column, and every group in order.

    Periods run without gaps from the first to the last date (an empty month is news too);
    sources are ordered by their number of paragraphs, largest first.
    """
    if by == "source":
        frame = predictions.frame.assign(group=predictions.frame["source"])
        counts = frame["group"].value_counts()
        order = sorted(counts.index, key=lambda s: (-counts[s], s))
        return frame, order
    if by not in ("year", "month", "week"):
        raise ReportError(f"--by must be one of {', '.join(GROUPINGS)}, got {by!r}")
    frame = predictions.dated
    if frame.empty:
        return frame.assign(group=pd.Series(dtype=str)), []
    freq = {"year": "Y", "month": "M", "week": "W-SUN"}[by]  # weeks run Monday to Sunday
    periods = frame["date"].dt.to_period(freq)
    every = pd.period_range(periods.min(), periods.max(), freq=freq)
    label = _period_label(by)
    return frame.assign(group=periods.map(label)), [label(p) for p in every]


def _period_label(by: str):
    if by == "year":
        return lambda p: p.strftime("%Y")
    if by == "month":
        return lambda p: p.strftime("%Y-%m")
    return lambda p: p.start_time.strftime("%Y-%m-%d")


def topic_share(predictions: Predictions, by: str, schema: LabelSchema | None = None) -> pd.DataFrame:
    """Per group and topic: paragraphs in the group, paragraphs on the topic, and their share."""
    schema = schema or load_schema()
    frame, order = _groups(predictions, by)
    totals = frame.groupby("group").size()
    rows = []
    for group in order:
        members = frame[frame["group"] == group]
        n = int(totals.get(group, 0))
        for topic in schema.topics:
            k = int(sum(topic.id in topics for topics in members["topics"]))
            rows.append(
                {
                    by: group,
                    "paragraphs": n,
                    "topic": topic.id,
                    "topic_name": topic.name,
                    "paragraphs_on_topic": k,
                    "share": k / n if n else float("nan"),
                }
            )
    columns = [by, "paragraphs", "topic", "topic_name", "paragraphs_on_topic", "share"]
    return pd.DataFrame(rows, columns=columns)


def stance_mix(predictions: Predictions, by: str, schema: LabelSchema | None = None) -> pd.DataFrame:
    """Per group and topic: paragraphs on the topic, and how many take each stance (and shares)."""
    schema = schema or load_schema()
    frame, order = _groups(predictions, by)
    values = list(schema.stance_values)
    rows = []
    for group in order:
        members = frame[frame["group"] == group]
        for topic in schema.topics:
            stances = [stance[topic.id] for stance in members["stance"] if topic.id in stance]
            n = len(stances)
            row: dict[str, object] = {by: group, "topic": topic.id, "topic_name": topic.name, "paragraphs_on_topic": n}
            for value in values:
                row[value] = stances.count(value)
            for value in values:
                row[f"{value}_share"] = stances.count(value) / n if n else float("nan")
            rows.append(row)
    columns = [by, "topic", "topic_name", "paragraphs_on_topic", *values, *(f"{v}_share" for v in values)]
    return pd.DataFrame(rows, columns=columns)


# -- charts ------------------------------------------------------------------------------

AXIS_NAMES = {"year": "Year", "month": "Month", "week": "Week starting (Monday)", "source": "Source"}


def _thin_ticks(ax: plt.Axes, labels: Sequence[str], max_labels: int = 24) -> None:
    step = max(1, math.ceil(len(labels) / max_labels))
    ticks = list(range(0, len(labels), step))
    ax.set_xticks(ticks, [labels[i] for i in ticks], rotation=45, ha="right")


def _undated_note(predictions: Predictions) -> str:
    parts = []
    if predictions.undated:
        n = predictions.undated
        parts.append(f"{n} paragraph{'s' if n != 1 else ''} without a date")
    if predictions.bad_dates:
        parts.append(f"{predictions.bad_dates} with an unreadable date")
    return f"Not shown over time: {', '.join(parts)}." if parts else ""


def plot_topic_share_over_time(
    share: pd.DataFrame, by: str, predictions: Predictions, schema: LabelSchema, min_count: int = MIN_COUNT
) -> plt.Figure:
    """Lines of each topic's share of paragraphs per period, over a bar strip of paragraph counts."""
    periods = list(dict.fromkeys(share[by]))
    totals = share.drop_duplicates(by).set_index(by)["paragraphs"].reindex(periods).to_numpy()
    thin = totals < min_count
    x = np.arange(len(periods))
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(11, 6.8), sharex=True, gridspec_kw={"height_ratios": [3, 1.2], "hspace": 0.08}
    )
    for i, topic in enumerate(schema.topics):
        style = series_style(i)
        values = share[share["topic"] == topic.id].set_index(by)["share"].reindex(periods).to_numpy() * 100
        solid = np.where(thin, np.nan, values)
        # The full path faintly, then the line only between well-filled periods: a jump to or
        # from a thin period does not draw the eye like a real move.
        top.plot(x, values, color=style["color"], linestyle=style["linestyle"], linewidth=1.0, alpha=0.35)
        top.plot(
            x,
            solid,
            color=style["color"],
            linestyle=style["linestyle"],
            marker=style["marker"],
            markersize=6,
            linewidth=1.8,
            label=topic.name,
        )
        # Thin periods: the same marker, hollow, so nobody reads their wobble as a trend.
        top.plot(
            x[thin],
            values[thin],
            linestyle="none",
            marker=style["marker"],
            markersize=6,
            clip_on=False,
            markerfacecolor="white",
            markeredgecolor=style["color"],
            markeredgewidth=1.5,
        )
    top.set_ylabel("Share of paragraphs (%)")
    top.set_ylim(0, max(5.0, np.nanmax(share["share"].to_numpy() * 100, initial=0) * 1.15))
    top.grid(alpha=0.3)
    top.legend(title="Topic", loc="upper left", bbox_to_anchor=(1.01, 1))
    top.set_title(f"Share of paragraphs on each topic, by {by}")
    colors = np.where(thin, "#FFFFFF", "#888888")
    bars = bottom.bar(x, totals, color=colors, edgecolor="#444444", hatch=["//" if t else "" for t in thin])
    label_all = len(periods) <= 24
    for bar, n, is_thin in zip(bars, totals, thin, strict=True):
        if label_all or is_thin:
            bottom.annotate(
                str(int(n)),
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=8,
                rotation=0 if label_all else 90,
            )
    bottom.set_ylabel("Paragraphs")
    bottom.set_ylim(0, max(totals.max(initial=0), 1) * 1.3)
    bottom.set_xlabel(AXIS_NAMES[by])
    _thin_ticks(bottom, periods)
    note = f"Hollow markers, faint lines and hatched bars: {by}s with fewer than {min_count} paragraphs. "
    _footnote(fig, bottom, note + _undated_note(predictions))
    return fig


def _footnote(fig: plt.Figure, ax: plt.Axes, text: str) -> None:
    """A note at the left edge of the figure, just below ``ax``'s x-axis label."""
    fig.canvas.draw()  # the label's place is known only once the tick labels are laid out
    ax.annotate(
        text,
        xy=(0.01, 0),
        xycoords=("figure fraction", ax.xaxis.label),
        xytext=(0, -6),
        textcoords="offset points",
        fontsize=9,
        ha="left",
        va="top",
    )


def _legend_handles(schema: LabelSchema) -> list[Patch]:
    handles = []
    for j, value in enumerate(schema.stance_values):
        style = stance_style(value, j)
        handles.append(Patch(facecolor=style["color"], hatch=style["hatch"], edgecolor="#333333", label=value))
    return handles


def _stance_panels(n_topics: int) -> tuple[int, int]:
    """Columns and rows of a grid with one panel per topic."""
    cols = 2 if n_topics > 1 else 1
    rows = math.ceil(n_topics / cols)
    return cols, rows


def _stacked_stance_bars(
    ax: plt.Axes,
    positions: np.ndarray,
    shares: list[np.ndarray],
    counts: np.ndarray,
    schema: LabelSchema,
    min_count: int,
    width: float,
    horizontal: bool = False,
) -> None:
    """One 100% stacked bar per position, a segment per stance value (``shares`` in schema
    order, in percent); bars resting on fewer than ``min_count`` paragraphs are faded."""
    base = np.zeros(len(positions))
    draw = ax.barh if horizontal else ax.bar
    for j, (value, share) in enumerate(zip(schema.stance_values, shares, strict=True)):
        style = stance_style(value, j)
        stack = {"left": base} if horizontal else {"bottom": base}
        bars = draw(
            positions,
            share,
            width,
            **stack,
            color=style["color"],
            hatch=style["hatch"],
            edgecolor="#333333",
            linewidth=0.4,
            label=value,
        )
        for bar, count in zip(bars, counts, strict=True):
            if count < min_count:
                bar.set_alpha(THIN_ALPHA)
        base = base + share


def plot_stance_over_time(
    mix: pd.DataFrame, by: str, predictions: Predictions, schema: LabelSchema, min_count: int = MIN_COUNT
) -> plt.Figure:
    """Per topic, a 100% stacked bar of favor/against/neutral for each period, its count on top."""
    periods = list(dict.fromkeys(mix[by]))
    cols, rows = _stance_panels(len(schema.topics))
    fig, axes = plt.subplots(rows, cols, figsize=(12, 3.6 * rows + 0.6), sharex=True, sharey=True, squeeze=False)
    x = np.arange(len(periods))
    label_all = len(periods) <= 24
    for ax, topic in zip(axes.flat, schema.topics, strict=False):
        part = mix[mix["topic"] == topic.id].set_index(by).reindex(periods)
        n = part["paragraphs_on_topic"].to_numpy()
        shares = [np.nan_to_num(part[f"{value}_share"].to_numpy()) * 100 for value in schema.stance_values]
        _stacked_stance_bars(ax, x, shares, n, schema, min_count, width=0.8)
        for xi, count in zip(x, n, strict=True):
            if label_all or count < min_count:
                weight = "bold" if count < min_count else "normal"
                ax.annotate(
                    f"{int(count)}",
                    (xi, 100),
                    xytext=(0, 2),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    fontsize=8,
                    fontweight=weight,
                    rotation=0 if len(periods) <= 16 else 90,
                )
        ax.set_title(f"{topic.name}\nproposition: {topic.proposition}", fontsize=9.5)
        ax.set_ylim(0, 118)
        ax.set_yticks([0, 25, 50, 75, 100])
        ax.grid(axis="y", alpha=0.3)
    for ax in axes.flat[len(schema.topics) :]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("Paragraphs on the topic (%)")
    for ax in axes[-1, :]:
        ax.set_xlabel(AXIS_NAMES[by])
        _thin_ticks(ax, periods)
    legend = fig.legend(
        handles=_legend_handles(schema),
        title="Stance toward the proposition",
        loc="upper left",
        bbox_to_anchor=(1.0, 0.95),
    )
    legend.get_title().set_fontsize(9)
    fig.suptitle(f"Stance mix per topic, by {by} (number on each bar: paragraphs on the topic)")
    fig.tight_layout()
    note = f"Faded bars, bold counts: fewer than {min_count} paragraphs on the topic in that {by}. "
    _footnote(fig, axes[-1, 0], note + _undated_note(predictions))
    return fig


def _top_sources(frame: pd.DataFrame, max_sources: int) -> pd.DataFrame:
    """The largest sources as they are; the others summed into one 'other' row per topic."""
    sources = list(dict.fromkeys(frame["source"]))
    if len(sources) <= max_sources:
        return frame
    keep, rest = sources[: max_sources - 1], sources[max_sources - 1 :]
    other = frame[frame["source"].isin(rest)]
    numeric = [c for c in other.columns if c not in ("source", "topic", "topic_name") and not c.endswith("share")]
    summed = other.groupby(["topic", "topic_name"], sort=False)[numeric].sum().reset_index()
    summed["source"] = f"{len(rest)} other sources"
    return pd.concat([frame[frame["source"].isin(keep)], summed], ignore_index=True)


def plot_topic_share_by_source(
    share: pd.DataFrame, schema: LabelSchema, min_count: int = MIN_COUNT, max_sources: int = MAX_SOURCES
) -> plt.Figure:
    """Horizontal bars: each topic's share of a source's paragraphs, the count in the label."""
    share = _top_sources(share, max_sources)
    share = share.assign(share=share["paragraphs_on_topic"] / share["paragraphs"])
    sources = list(dict.fromkeys(share["source"]))
    totals = share.drop_duplicates("source").set_index("source")["paragraphs"].reindex(sources)
    y = np.arange(len(sources))
    height = 0.8 / len(schema.topics)
    fig, ax = plt.subplots(figsize=(10, 1.0 + 0.75 * len(sources) * max(1, len(schema.topics) / 4)))
    for i, topic in enumerate(schema.topics):
        style = series_style(i)
        values = share[share["topic"] == topic.id].set_index("source")["share"].reindex(sources).to_numpy() * 100
        ax.barh(
            y - 0.4 + height * (i + 0.5),
            values,
            height,
            color=style["color"],
            hatch=style["hatch"],
            edgecolor="black",
            linewidth=0.4,
            label=topic.name,
        )
    labels = [f"{s}\n(n={int(totals[s])}{', few' if totals[s] < min_count else ''})" for s in sources]
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel("Share of the source's paragraphs (%)")
    ax.set_ylabel("Source (paragraphs)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(title="Topic", loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.set_title("Share of paragraphs on each topic, by source")
    return fig


def plot_stance_by_source(
    mix: pd.DataFrame, schema: LabelSchema, min_count: int = MIN_COUNT, max_sources: int = MAX_SOURCES
) -> plt.Figure:
    """Per topic, a 100% stacked horizontal bar of stances for each source, its count at the end."""
    mix = _top_sources(mix, max_sources)
    sources = list(dict.fromkeys(mix["source"]))
    cols, rows = _stance_panels(len(schema.topics))
    fig, axes = plt.subplots(
        rows, cols, figsize=(12, (0.45 * len(sources) + 1.3) * rows + 0.6), sharey=True, squeeze=False
    )
    y = np.arange(len(sources))
    for ax, topic in zip(axes.flat, schema.topics, strict=False):
        part = mix[mix["topic"] == topic.id].set_index("source").reindex(sources)
        n = part["paragraphs_on_topic"].to_numpy()
        shares = [np.where(n > 0, part[value].to_numpy() / np.maximum(n, 1), 0) * 100 for value in schema.stance_values]
        _stacked_stance_bars(ax, y, shares, n, schema, min_count, width=0.75, horizontal=True)
        for yi, count in zip(y, n, strict=True):
            weight = "bold" if count < min_count else "normal"
            ax.annotate(
                f"n={int(count)}",
                (100, yi),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
                fontweight=weight,
            )
        ax.set_title(f"{topic.name}\nproposition: {topic.proposition}", fontsize=9.5)
        ax.set_xlim(0, 118)
        ax.set_xticks([0, 25, 50, 75, 100])
        ax.set_xlabel("Paragraphs on the topic (%)")
        ax.grid(axis="x", alpha=0.3)
    for ax in axes.flat[len(schema.topics) :]:
        ax.set_visible(False)
    axes[0, 0].set_yticks(y, sources)
    axes[0, 0].invert_yaxis()
    for ax in axes[:, 0]:
        ax.set_ylabel("Source")
    legend = fig.legend(
        handles=_legend_handles(schema),
        title="Stance toward the proposition",
        loc="upper left",
        bbox_to_anchor=(1.0, 0.95),
    )
    legend.get_title().set_fontsize(9)
    fig.suptitle("Stance mix per topic, by source (n: paragraphs on the topic)")
    fig.tight_layout()
    _footnote(fig, axes[-1, 0], f"Faded bars, bold counts: fewer than {min_count} paragraphs on the topic.")
    return fig


# -- evidence (predict --explain) ----------------------------------------------------------


def highlight(text: str, evidence: dict, stance: str) -> str:
    """A paragraph as HTML with its evidence marked: words behind the topic underlined, words
    behind the stance in bold on the stance's colour, words for the runner-up stance in
    italics with a dotted line (so colour is never the only cue); weights in the tooltips."""
    marks: list[tuple[int, int, str, str]] = []
    for kind, key in (("ev-topic", "topic"), (f"ev-stance ev-{stance}", "stance"), ("ev-versus", "versus_evidence")):
        label = {"topic": "topic", "stance": stance, "versus_evidence": evidence.get("versus", "")}[key]
        for phrase in evidence.get(key) or []:
            start, end = int(phrase["start"]), int(phrase["end"])
            if 0 <= start < end <= len(text):
                marks.append((start, end, kind, f"{label} {phrase['weight']:+.2f}"))
    cuts = sorted({0, len(text), *(m[0] for m in marks), *(m[1] for m in marks)})
    out = []
    for a, b in itertools.pairwise(cuts):
        covering = [m for m in marks if m[0] <= a and b <= m[1]]
        piece = html.escape(text[a:b])
        if covering:
            classes = " ".join(dict.fromkeys(c for m in covering for c in m[2].split()))
            title = html.escape("; ".join(m[3] for m in covering), quote=True)
            piece = f"<span class='{classes}' title='{title}'>{piece}</span>"
        out.append(piece)
    return "".join(out)


def _phrase_list(phrases: Sequence[dict]) -> str:
    return ", ".join(f"{html.escape(p['text'])} {p['weight']:+.2f}" for p in phrases) or "-"


def evidence_section(predictions: Predictions, schema: LabelSchema) -> list[str]:
    """HTML: per topic and stance, the first paragraphs of the file with their evidence marked."""
    parts = [
        "<h2>Evidence behind the labels</h2>",
        f"<p class='note'>{predictions.explained} paragraphs carry evidence (allystance predict --explain). "
        f"Up to {EVIDENCE_EXAMPLES} per topic and stance, the first in the file. "
        "<span class='ev-topic'>Underlined</span>: words behind the topic; "
        "<span class='ev-stance ev-neutral'>bold, shaded in the stance's colour</span>: words behind the stance "
        "rather than the runner-up; <span class='ev-versus'>italic, dotted</span>: words for the runner-up. "
        "Hover for the weights (the model's logit units).</p>",
    ]
    for topic in schema.topics:
        for value in schema.stance_values:
            kept = predictions.examples.get((topic.id, value), [])
            if not kept:
                continue
            parts.append(f"<h3>{html.escape(topic.name)}: {html.escape(value)}</h3>")
            for example in kept:
                ev = example["evidence"]
                parts.append(
                    f"<div class='evidence'><p>{highlight(example['text'], ev, value)}</p>"
                    f"<p class='note'>{html.escape(example['id'])}. Topic: {_phrase_list(ev.get('topic', []))}. "
                    f"{html.escape(value)} over {html.escape(str(ev.get('versus', '-')))}: "
                    f"{_phrase_list(ev.get('stance', []))}. For {html.escape(str(ev.get('versus', '-')))}: "
                    f"{_phrase_list(ev.get('versus_evidence', []))}.</p></div>"
                )
    return parts


# -- the report --------------------------------------------------------------------------


@dataclass
class Report:
    """What ``write_report`` wrote, and the numbers a user should see first."""

    summary: list[tuple[str, str]]
    files: list[Path]
    skipped: list[str]

    def tables(self) -> list[Table]:
        return [
            Table("Predictions", ("", "value"), tuple(self.summary)),
            Table("Written", ("file",), tuple((str(p),) for p in self.files)),
        ]


def _summary(predictions: Predictions) -> list[tuple[str, str]]:
    frame = predictions.frame
    dated = predictions.dated["date"]
    span = f"{dated.min():%Y-%m-%d} to {dated.max():%Y-%m-%d}" if len(dated) else "-"
    return [
        ("file", str(predictions.path)),
        ("paragraphs", str(len(frame))),
        ("articles", str(frame["article_id"].nunique())),
        ("paragraphs with a topic", str(int(sum(bool(t) for t in frame["topics"])))),
        ("dates", span),
        ("without a date", str(predictions.undated)),
        ("unreadable date", str(predictions.bad_dates)),
        ("sources", str(frame["source"].nunique())),
        ("models", ", ".join(predictions.models) or "-"),
        *([("with evidence (--explain)", str(predictions.explained))] if predictions.explained else []),
    ]


def _share_table(share: pd.DataFrame, by: str) -> pd.DataFrame:
    wide = share.pivot_table(index=by, columns="topic_name", values="share", sort=False, dropna=False) * 100
    wide = wide.round(1)
    wide.insert(0, "paragraphs", share.drop_duplicates(by).set_index(by)["paragraphs"])
    return wide


def _mix_table(mix: pd.DataFrame, by: str, schema: LabelSchema) -> pd.DataFrame:
    parts = {}
    for topic in schema.topics:
        part = mix[mix["topic"] == topic.id].set_index(by)
        cols = {"n": part["paragraphs_on_topic"]}
        cols.update({f"{v} %": (part[f"{v}_share"] * 100).round(1) for v in schema.stance_values})
        parts[topic.name] = pd.DataFrame(cols)
    return pd.concat(parts, axis=1)


def write_report(
    predictions_path: Path,
    output: Path,
    by: Sequence[str] = DEFAULT_GROUPINGS,
    min_count: int = MIN_COUNT,
    schema: LabelSchema | None = None,
) -> Report:
    """Write CSVs, PNGs and ``report.html`` for each grouping in ``by`` into ``output``."""
    schema = schema or load_schema()
    for grouping in by:
        if grouping not in GROUPINGS:
            raise ReportError(f"--by must be one of {', '.join(GROUPINGS)}, got {grouping!r}")
    predictions = read_predictions(predictions_path, schema)
    output.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    skipped: list[str] = []
    summary = _summary(predictions)
    sections = [
        "<h2>Summary</h2>",
        pd.DataFrame(summary, columns=["", "value"]).to_html(index=False),
        f"<p class='note'>Counts are of paragraphs. Topic ids, names and propositions come from label schema "
        f"{html.escape(schema.version)}. Groups with fewer than {min_count} paragraphs are marked on every chart."
        f"{' ' + html.escape(_undated_note(predictions)) if _undated_note(predictions) else ''}</p>",
    ]
    for grouping in dict.fromkeys(by):
        share, mix = topic_share(predictions, grouping, schema), stance_mix(predictions, grouping, schema)
        if share.empty:
            skipped.append(f"by {grouping}: no paragraph has a date")
            sections.append(f"<h2>By {grouping}</h2><p class='note'>Skipped: no paragraph has a date.</p>")
            continue
        share_csv, mix_csv = output / f"topic_share_by_{grouping}.csv", output / f"stance_by_{grouping}.csv"
        share.to_csv(share_csv, index=False)
        mix.to_csv(mix_csv, index=False)
        if grouping == "source":
            share_fig = plot_topic_share_by_source(share, schema, min_count)
            mix_fig = plot_stance_by_source(mix, schema, min_count)
        else:
            share_fig = plot_topic_share_over_time(share, grouping, predictions, schema, min_count)
            mix_fig = plot_stance_over_time(mix, grouping, predictions, schema, min_count)
        share_png = save_figure(share_fig, output / f"topic_share_by_{grouping}.png")
        mix_png = save_figure(mix_fig, output / f"stance_by_{grouping}.png")
        files += [share_csv, mix_csv, share_png, mix_png]
        sections += [
            f"<h2>Topic share by {grouping}</h2>",
            image_tag(png_data_uri(share_png), f"Share of paragraphs on each topic, by {grouping}"),
            "<p class='note'>Share of paragraphs (%) on each topic; a paragraph can have several topics.</p>",
            _share_table(share, grouping).to_html(na_rep="-"),
            f"<h2>Stance mix by {grouping}</h2>",
            image_tag(png_data_uri(mix_png), f"Stance mix per topic, by {grouping}"),
            _mix_table(mix, grouping, schema).to_html(na_rep="-"),
        ]
    if predictions.explained:
        sections += evidence_section(predictions, schema)
    page = output / "report.html"
    page.write_text(html_page(f"allystance coverage report: {predictions.path.name}", sections), encoding="utf-8")
    files.append(page)
    return Report(summary, files, skipped)
