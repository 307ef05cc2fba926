"""``allystance train``: fit a model family from a recipe and track the run in MLflow."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from experiments.cli.common import print_tables, user_errors
from labels.stats import Table

if TYPE_CHECKING:
    from training.adapt import AdaptResult
    from training.runs import TrainResult

app = typer.Typer(help="Train a model family from a recipe; every run is tracked in MLflow.", no_args_is_help=True)
RECIPES = Path(__file__).resolve().parents[1]

SetOption = typer.Option(None, "--set", help="Override a recipe key, e.g. --set topics.C=8 (repeatable).")
TrackingOption = typer.Option(
    None, "--tracking-uri", help="MLflow tracking URI. \\[default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here]"
)
PromoteOption = typer.Option(
    False, "--promote", help="Make this model the champion if it beats the current one on the recipe's promote_metric."
)


def report(result: TrainResult, seconds: float, console: Console | None = None) -> None:
    from training.evaluate import headline

    console = console or Console()
    rows = [(name, value) for name, value in headline(result.metrics, "test_")]
    if "test_stance_e2e_macro_f1" in result.metrics:
        rows.append(("stance_e2e_macro_f1", f"{result.metrics['test_stance_e2e_macro_f1']:.3f}"))
    tables = [Table("Test split", ("metric", "value"), tuple(rows))]
    if "realnews_topic_micro_f1" in result.metrics:  # scored when ../shared/realnews is present
        real = [
            (name, f"{result.metrics[f'realnews_{name}']:.3f}")
            for name in ("topic_micro_f1", "stance_e2e_macro_f1", "combined_f1")
            if f"realnews_{name}" in result.metrics
        ]
        real.append(("selection_score", f"{result.metrics['selection_score']:.3f}"))
        tables.append(Table("Real-news dev", ("metric", "value"), tuple(real)))
    print_tables(tables, console)
    promoted = "promoted to champion" if result.promoted else "not promoted"
    if result.previous_champion is not None:
        promoted += f" (previous champion: {result.previous_champion:.3f})"
    console.print(
        f"run {result.run_id}  model allystance version {result.model_version}  {promoted}  ({seconds:.1f} s)",
        highlight=False,
    )


@app.command()
@user_errors
def baseline(
    recipe: Path = typer.Option(RECIPES / "baseline.yaml", "--recipe", help="YAML recipe."),
    overrides: list[str] = SetOption,
    tracking_uri: str = TrackingOption,
    promote: bool = PromoteOption,
) -> None:
    """Train the TF-IDF baseline: word and char n-grams, per-topic heads, target-conditioned stance.

    Examples:

        allystance train baseline --promote

        allystance train baseline --set topics.model=svm --set "search={}"
    """
    from training.baseline import train_baseline
    from training.config import BaselineRecipe, load_recipe

    config = load_recipe(recipe, BaselineRecipe, overrides or ())
    console = Console(stderr=True)
    start = time.perf_counter()
    with console.status("training") as status:
        result = train_baseline(config, tracking_uri, promote, progress=lambda m: status.update(m))
    report(result, time.perf_counter() - start)


@app.command()
@user_errors
def rules(
    recipe: Path = typer.Option(RECIPES / "rules.yaml", "--recipe", help="YAML recipe."),
    overrides: list[str] = SetOption,
    tracking_uri: str = TrackingOption,
    promote: bool = PromoteOption,
) -> None:
    """Track the keyword rules (a regex list per topic, stance always neutral) as a floor to beat.

    Example:

        allystance train rules
    """
    from training.baseline import train_rules
    from training.config import RulesRecipe, load_recipe

    config = load_recipe(recipe, RulesRecipe, overrides or ())
    start = time.perf_counter()
    report(train_rules(config, tracking_uri, promote), time.perf_counter() - start)


@app.command()
@user_errors
def transformer(
    recipe: Path = typer.Option(RECIPES / "transformer.yaml", "--recipe", help="YAML recipe."),
    overrides: list[str] = SetOption,
    tracking_uri: str = TrackingOption,
    promote: bool = PromoteOption,
) -> None:
    """Fine-tune the encoder with a topic head and a topic-conditioned stance head; each stance design is a nested run and the better on dev is kept.

    Examples:

        allystance train transformer --promote

        allystance train transformer --set "designs=\\[per_topic]" --set epochs=2

        allystance train transformer --set base_model=/path/to/a/bert/folder
    """
    from training.config import TransformerRecipe, load_recipe
    from training.transformer import train_transformer

    config = load_recipe(recipe, TransformerRecipe, overrides or ())
    start = time.perf_counter()
    result = train_transformer(config, tracking_uri, promote, show_progress=True)
    report_designs(result)
    report(result, time.perf_counter() - start)


def report_designs(result: TrainResult) -> None:
    """The dev scores of each stance design a transformer-family run compared."""
    rows = tuple(
        (
            design,
            f"{m['dev_topic_micro_f1']:.3f}",
            f"{m['dev_stance_macro_f1']:.3f}",
            f"{m['dev_combined_f1']:.3f}",
            f"{m['train_seconds']:.0f}",
            "kept" if result.chosen.get("chosen.design") == design else "",
        )
        for design, m in result.candidates.items()
    )
    print_tables(
        [
            Table(
                "Stance designs (dev)", ("design", "topic micro-F1", "stance macro-F1", "combined", "seconds", ""), rows
            )
        ]
    )


@app.command()
@user_errors
def distill(
    teacher: str = typer.Argument(
        None, help="The teacher: a trained model (MLflow URI or folder); default: the recipe's teacher."
    ),
    recipe: Path = typer.Option(RECIPES / "distill.yaml", "--recipe", help="YAML recipe."),
    overrides: list[str] = SetOption,
    tracking_uri: str = TrackingOption,
    promote: bool = PromoteOption,
) -> None:
    """Teach a small, fast encoder (MiniLM) a larger model's topic and stance scores: a transformer-family student for CPUs.

    The teacher scores the training paragraphs and the team's unlabelled articles once
    (cached in .allystance/distill/); the student trains on its scores mixed with the gold
    labels and learns to match its pooled vectors (feature_weight, 1 by default; the teacher
    must then be a transformer, so give a baseline or blend teacher --set feature_weight=0),
    then is evaluated and registered like any model. The teacher must have been trained on
    the same dataset file (checked), or it may have seen the dev and test splits.

    Examples:

        allystance train transformer --recipe experiments/transformer_mpnet.yaml

        allystance train distill models:/allystance/3 --promote

        allystance train distill models:/allystance/3 --set alpha=0.7 --set unlabelled=null

        allystance train distill models:/allystance@champion --set feature_weight=0
    """
    from training.config import DistillRecipe, load_recipe
    from training.distill import train_distill

    extra = [f"teacher={json.dumps(teacher)}"] if teacher else []
    config = load_recipe(recipe, DistillRecipe, [*(overrides or ()), *extra])
    start = time.perf_counter()
    result = train_distill(config, tracking_uri, promote, show_progress=True)
    report_designs(result)
    report(result, time.perf_counter() - start)


@app.command()
@user_errors
def embed(
    recipe: Path = typer.Option(RECIPES / "embed.yaml", "--recipe", help="YAML recipe."),
    overrides: list[str] = SetOption,
    tracking_uri: str = TrackingOption,
    promote: bool = PromoteOption,
) -> None:
    """Frozen mean-pooled sentence embeddings of the encoder with linear topic heads and target-conditioned stance.

    Examples:

        allystance train embed

        allystance train embed --set stance.design=crossed --set "search={}"
    """
    from training.config import EmbedRecipe, load_recipe
    from training.embed import train_embed

    config = load_recipe(recipe, EmbedRecipe, overrides or ())
    console = Console(stderr=True)
    start = time.perf_counter()
    with console.status("training") as status:
        result = train_embed(config, tracking_uri, promote, progress=lambda m: status.update(m))
    report(result, time.perf_counter() - start)


@app.command()
@user_errors
def blend(
    members: list[str] = typer.Argument(
        None, help="Two or more trained models (MLflow URIs or folders); default: the recipe's members."
    ),
    recipe: Path = typer.Option(RECIPES / "blend.yaml", "--recipe", help="YAML recipe."),
    overrides: list[str] = SetOption,
    tracking_uri: str = TrackingOption,
    promote: bool = PromoteOption,
) -> None:
    """Average trained models' scores, with weights chosen on dev: e.g. the fine-tuned transformer and the TF-IDF baseline.

    The members must have been trained on the same dataset file (checked); each keeps its
    own format inside the blend, and --quantized at load time quantizes the encoder members.

    Examples:

        allystance train blend models:/allystance/1 models:/allystance/2 --promote

        allystance train blend models:/allystance/1 models:/allystance/2 models:/allystance/4 --set weight_step=0.25

    Several seeds of one recipe averaged, to use as one member of another blend:

        allystance train blend models:/allystance/5 models:/allystance/6 models:/allystance/7 --set weights=equal
    """
    from training.blend import train_blend
    from training.config import BlendRecipe, load_recipe

    extra = [f"members={json.dumps(list(members))}"] if members else []
    config = load_recipe(recipe, BlendRecipe, [*(overrides or ()), *extra])
    console = Console(stderr=True)
    start = time.perf_counter()
    with console.status("blending") as status:
        result = train_blend(config, tracking_uri, promote, progress=lambda m: status.update(m))
    chosen = result.chosen
    rows = tuple(
        (f"{i}: {family}", uri, f"{t:.2f}", f"{s:.2f}")
        for i, (family, uri, t, s) in enumerate(
            zip(
                chosen["chosen.members"],
                config.members,
                chosen["chosen.topic_weights"],
                chosen["chosen.stance_weights"],
                strict=True,
            )
        )
    )
    how = "equal, as the recipe asks" if config.weights == "equal" else "chosen on dev"
    print_tables([Table(f"Member weights ({how})", ("member", "model", "topic weight", "stance weight"), rows)])
    if chosen.get("chosen.dropped_members"):
        console.print(f"left out of the saved blend (weight 0): {', '.join(chosen['chosen.dropped_members'])}")
    report(result, time.perf_counter() - start)


@app.command()
@user_errors
def adapt(
    ctx: typer.Context,
    unlabelled: list[str] = typer.Option(
        ...,
        "--unlabelled",
        "-u",
        help="Your unlabelled text, read as 'allystance predict' reads it: article files (.txt .md .html), tables (.jsonl .csv .parquet), folders, quoted globs, or - for stdin. Repeatable.",
        show_default=False,
    ),
    recipe: Path = typer.Option(RECIPES / "adapt.yaml", "--recipe", help="YAML recipe."),
    overrides: list[str] = SetOption,
    tracking_uri: str = TrackingOption,
    promote: bool = PromoteOption,
) -> None:
    """Adapt a model family to your own unlabelled corpus: self-training on confident pseudo-labels, confident no-topic paragraphs as negatives, TF-IDF features fitted on the corpus (baseline) or continued masked-LM pretraining (encoder families).

    The corpus is segmented as predict segments it; round 0 trains the base family as its own command does (the unadapted reference), each later round adds the corpus paragraphs the last one labelled confidently (cut-offs measured on the team dev split). Stages are kept under .allystance/adapt/ so that an interrupted run continues where it stopped.

    Examples:

        allystance train adapt --unlabelled archive/ --promote

        allystance train adapt -u wire.parquet --set rounds=3 --set "base_set=['search={}']"

        allystance train adapt -u archive/ --set base_family=transformer --set mlm=true
    """
    from training.adapt import train_adapt
    from training.config import AdaptRecipe, load_recipe

    config = load_recipe(recipe, AdaptRecipe, overrides or ())
    quiet = bool(ctx.find_root().obj and ctx.find_root().obj.get("quiet"))
    show = Console(stderr=True).is_terminal and not quiet
    start = time.perf_counter()
    outcome = train_adapt(
        config, unlabelled, tracking_uri, promote, show_progress=show, stdin=sys.stdin if "-" in unlabelled else None
    )
    print_tables(adapt_tables(outcome))
    info = outcome.corpus
    Console().print(
        f"corpus {info.digest[:12]}: {info.paragraphs:,} paragraphs, {info.used:,} used"
        f"{' (an evenly spaced sample)' if info.sampled else ''}; methods: {', '.join(outcome.methods)}; "
        f"state in {outcome.state_dir}",
        highlight=False,
    )
    report(outcome.result, time.perf_counter() - start)


def adapt_tables(outcome: AdaptResult) -> list[Table]:
    """Before (round 0) against after (the registered model), and the pseudo-labels per round."""
    from training.adapt import REFERENCE_METRICS

    before, after = outcome.before, outcome.result.metrics
    rows = tuple(
        (name, f"{before[name]:.3f}", f"{after[name]:.3f}", f"{round(after[name] - before[name], 3) + 0.0:+.3f}")
        for name in REFERENCE_METRICS
        if name in before and name in after
    )
    tables = [
        Table(f"Before and after adapting the {outcome.base_family}", ("metric", "round 0", "adapted", "change"), rows)
    ]
    labelled = [(k, r["pseudo"]) for k, r in enumerate(outcome.rounds) if r.get("pseudo")]
    if labelled:
        names = [*(f"positive: {t}" for t in labelled[0][1]["positives"]), "negatives", "stance left out", "left out"]
        columns = [
            [*counts["positives"].values(), counts["negatives"], counts["stance_masked"], counts["left_out"]]
            for _, counts in labelled
        ]
        pseudo_rows = tuple((name, *(column[i] for column in columns)) for i, name in enumerate(names))
        title = "Pseudo-labels trained on"
        tables.append(Table(title, ("", *(f"round {k + 1}" for k, _ in labelled)), pseudo_rows))
    return tables
