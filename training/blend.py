"""Training the blend family: score dev with every member, choose the members' weights on
dev (topic weights by topic micro-F1 with thresholds re-tuned at each point, stance weights
by stance macro-F1), or give every member the same weight (the mean of several seeds), then
evaluate, log and register the blend like any family.

Members are trained models given by URI. They must have been trained on exactly the data
the blend is tuned and tested on (the dataset digest of their MLflow runs is checked), or
the blend's dev and test scores would mean nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from inference.blend import WEIGHTS, BlendedTopicStance, combine, weight_grid
from inference.model_io import META_FILE, Predictor, load_predictor
from inference.store import use_store
from labels import LabelSchema, load_schema
from labels.errors import first_line
from training import tracking
from training.config import BlendRecipe
from training.evaluate import Gold, stance_metrics, topic_metrics, tune_thresholds
from training.runs import TrainingError, TrainResult, evaluate_and_publish, make_meta, read_splits, tracked_family_run

logger = logging.getLogger(__name__)

# Each weight set re-tunes the topic thresholds on dev (a fraction of a second); two members
# at the default step make 11 sets, three make 66, four 286.
MAX_GRID_POINTS = 1000


def member_digest(uri: str) -> str | None:
    """The dataset digest of the MLflow run that logged ``uri``; None for a model folder.

    Raises ``TrainingError`` for a URI MLflow cannot resolve, or whose run recorded no dataset.
    """
    import mlflow

    if (Path(uri) / META_FILE).is_file():
        return None
    try:
        run_id = mlflow.models.get_model_info(uri).run_id
        tags = mlflow.get_run(run_id).data.tags if run_id else {}
    except mlflow.exceptions.MlflowException as exc:
        raise TrainingError(f"cannot find the member {uri}: {first_line(exc)}") from None
    if "dataset_digest" not in tags:
        raise TrainingError(f"{uri}: its run recorded no dataset, so it cannot be checked; retrain it with allystance")
    return tags["dataset_digest"]


def check_trained_on(uri: str, digest: str, use: str = "blend models") -> None:
    """Refuse a model whose run trained on other data than ``digest`` (its dev or test
    paragraphs may have been its training data); a model folder is taken on trust, with a
    warning. ``use`` ends the message: what to do instead."""
    member_data = member_digest(uri)
    if member_data is None:
        logger.warning("%s is a model folder: it is taken on trust to be trained on this data", uri)
    elif member_data != digest:
        raise TrainingError(
            f"{uri} was trained on other data (dataset digest {member_data}, this data {digest}); "
            f"{use} trained on the same dataset file"
        )


def load_members(uris: Sequence[str], digest: str, schema: LabelSchema) -> list[Predictor]:
    """Every member, loaded, after checking it was trained on the data with ``digest``."""
    members = []
    for uri in uris:
        member = load_predictor(uri, schema)  # a clear error for a model that is not there
        check_trained_on(uri, digest)
        members.append(member)
    return members


def choose_weights(
    scores: Sequence[tuple[np.ndarray, np.ndarray]],
    dev: Gold,
    schema: LabelSchema,
    step: float,
    tolerance: float = 0.0,
) -> tuple[tuple[float, ...], list[float], tuple[float, ...], list[dict]]:
    """Topic weights and their thresholds, stance weights, and every grid point's dev scores.
    ``tolerance``: how the thresholds are tuned at each point (``tune_thresholds``).

    Ties go to the point nearest equal weights, then to the earlier grid point (the grid
    starts with the most weight on the first member).
    """
    grid = weight_grid(len(scores), step)
    n = len(scores)
    rows, best_topic, best_stance = [], None, None
    for point in grid:
        thresholds, row = score_point(scores, point, dev, schema, tolerance)
        rows.append(row)
        topic_f1, stance_f1 = row["dev_topic_micro_f1"], row["dev_stance_macro_f1"]
        spread = round(float(np.abs(np.asarray(point) - 1 / n).sum()), 6)  # rounded: equal spreads compare equal
        if best_topic is None or (topic_f1, -spread) > best_topic[0]:
            best_topic = ((topic_f1, -spread), point, thresholds)
        if best_stance is None or (stance_f1, -spread) > best_stance[0]:
            best_stance = ((stance_f1, -spread), point)
    assert best_topic is not None and best_stance is not None
    return best_topic[1], best_topic[2], best_stance[1], rows


def score_point(
    scores: Sequence[tuple[np.ndarray, np.ndarray]],
    point: Sequence[float],
    dev: Gold,
    schema: LabelSchema,
    tolerance: float,
) -> tuple[list[float], dict]:
    """The topic thresholds tuned on dev for one weight set (topics and stance weighted alike),
    and its dev row: the weights, topic micro-F1 and stance macro-F1."""
    topics, stance = combine(scores, point, point)
    thresholds = tune_thresholds(dev.topics, topics, tolerance=tolerance)
    predicted = (topics >= np.asarray(thresholds)).astype(int)
    topic_f1 = topic_metrics(dev.topics, predicted, schema)["topic_micro_f1"]
    stance_f1 = stance_metrics(dev.stances, stance.argmax(-1), predicted, schema).get("stance_macro_f1", 0.0)
    return thresholds, {"weights": list(point), "dev_topic_micro_f1": topic_f1, "dev_stance_macro_f1": stance_f1}


def equal_weights(
    scores: Sequence[tuple[np.ndarray, np.ndarray]], dev: Gold, schema: LabelSchema, tolerance: float = 0.0
) -> tuple[tuple[float, ...], list[float], tuple[float, ...], list[dict]]:
    """``choose_weights``'s answer when every member weighs 1/n (recipe ``weights: equal``):
    nothing is searched, only the thresholds are tuned on dev."""
    point = tuple(round(1 / len(scores), 6) for _ in scores)
    thresholds, row = score_point(scores, point, dev, schema, tolerance)
    return point, thresholds, point, [row]


def unused_members(topic_weights: Sequence[float], stance_weights: Sequence[float]) -> list[int]:
    """Members whose topic and stance weights are both 0: they change no score, only cost time
    at prediction, so the saved blend leaves them out. None when that would leave fewer than two."""
    unused = [i for i, (t, s) in enumerate(zip(topic_weights, stance_weights, strict=True)) if t == 0 and s == 0]
    return unused if len(topic_weights) - len(unused) >= 2 else []


def train_blend(
    recipe: BlendRecipe,
    tracking_uri: str | None = None,
    promote: bool = False,
    progress: Callable[[str], None] = lambda message: None,
) -> TrainResult:
    """Load the members, choose their weights on dev, evaluate, log and register the blend."""
    if len(recipe.members) < 2:
        raise TrainingError("a blend needs two or more members, e.g. models:/allystance/1 models:/allystance/2")
    points = len(weight_grid(len(recipe.members), recipe.weight_step)) if recipe.weights == "search" else 1
    if points > MAX_GRID_POINTS:
        raise TrainingError(
            f"{len(recipe.members)} members at weight_step {recipe.weight_step} make {points} weight sets to try; "
            f"raise weight_step (at most {MAX_GRID_POINTS} sets)"
        )
    schema = load_schema()
    splits = read_splits(recipe.data)
    dev = Gold.from_records(splits.dev, schema)
    use_store(tracking_uri)
    progress("loading the members")
    digest = tracking.dataset_input(splits.train + splits.dev + splits.test, splits.source).digest
    members = load_members(recipe.members, digest, schema)  # before the run: a bad member leaves no run
    with tracked_family_run(recipe, schema, splits, tracking_uri) as run:
        import mlflow

        progress("scoring dev with every member")
        scores = [m.score(dev.texts) for m in members]
        if recipe.weights == "equal":
            topic_weights, thresholds, stance_weights, rows = equal_weights(
                scores, dev, schema, recipe.threshold_tolerance
            )
        else:
            topic_weights, thresholds, stance_weights, rows = choose_weights(
                scores, dev, schema, recipe.weight_step, recipe.threshold_tolerance
            )
        chosen = {
            "chosen.topic_weights": list(topic_weights),
            "chosen.stance_weights": list(stance_weights),
            "chosen.members": [m.meta.family for m in members],
        }
        mlflow.log_params({k: str(v) for k, v in chosen.items()})
        mlflow.log_dict({"members": list(recipe.members), "grid": rows}, "blend_search.json")
        mlflow.log_dict({"thresholds": dict(zip(schema.topic_ids, thresholds, strict=True))}, "thresholds.json")
        unused = unused_members(topic_weights, stance_weights)
        if unused:
            dropped = [recipe.members[i] for i in unused]
            logger.info("left out of the saved blend (weight 0 for topics and stance): %s", ", ".join(dropped))
            mlflow.log_param("chosen.dropped_members", str(dropped))
            chosen["chosen.dropped_members"] = dropped
        keep = [i for i in range(len(members)) if i not in unused]
        sources = [recipe.members[i] for i in keep]
        model = BlendedTopicStance(
            [members[i] for i in keep], [topic_weights[i] for i in keep], [stance_weights[i] for i in keep], sources
        )
        meta = make_meta(recipe.family, schema, thresholds, weights=WEIGHTS, members=sources)
        progress("evaluating and logging the blend")
        predictor = Predictor(model, meta, schema)
        result = evaluate_and_publish(predictor, splits, schema, recipe, promote, run.info.run_id)
        result.chosen = chosen
        return result
