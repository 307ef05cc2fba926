from pathlib import Path

import pytest
import yaml

from tests.conftest import write_jsonl
from training.config import (
    BaselineRecipe,
    BlendRecipe,
    EmbedRecipe,
    RecipeError,
    RulesRecipe,
    TransformerRecipe,
    build,
    flatten,
    load_recipe,
)
from training.runs import TrainingError, read_splits


def test_shipped_recipes_load():
    recipe = load_recipe("experiments/baseline.yaml", BaselineRecipe)
    assert recipe.features.word_ngrams == (1, 2)
    assert recipe.search["stance.design"] == ["per_topic", "crossed"]
    assert load_recipe("experiments/rules.yaml", RulesRecipe).family == "rules"
    blend = load_recipe("experiments/blend.yaml", BlendRecipe, ["members=[models:/allystance/1, runs:/abc/model]"])
    assert blend.members == ["models:/allystance/1", "runs:/abc/model"] and blend.weight_step == 0.1
    assert blend.weights == "search"
    assert load_recipe("experiments/blend.yaml", BlendRecipe, ["weights=equal"]).weights == "equal"
    with pytest.raises(RecipeError, match="weights must be one of search, equal, got 'mean'"):
        load_recipe("experiments/blend.yaml", BlendRecipe, ["weights=mean"])


def test_overrides_are_typed_and_validated():
    recipe = load_recipe(None, BaselineRecipe, ["topics.C=8", "stance.design=crossed", "data=x.jsonl"])
    assert recipe.topics.C == 8.0 and isinstance(recipe.topics.C, float)
    assert recipe.stance.design == "crossed"
    assert recipe.data == "x.jsonl"


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["topics.Cc=1"], "unknown recipe key(s): topics.Cc"),
        (["learning_rate=1"], "unknown recipe key(s): learning_rate"),
        (["topics.model=forest"], "topics.model must be one of"),
        (["seed=abc"], "seed must be int"),
        (["features.word_ngrams=[1, 2, 3]"], "must be a list of 2 values"),
        (["search={features.min_df: [1, 2]}"], "must be under topics. or stance."),
        (["search={topics.gamma: [1, 2]}"], "unknown recipe key 'topics.gamma'"),
        (["topics.C"], "must look like key=value"),
    ],
)
def test_bad_recipes_are_refused_with_the_key(overrides, message):
    with pytest.raises(RecipeError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_recipe(None, BaselineRecipe, overrides)


def test_recipe_is_frozen():
    recipe = build(BaselineRecipe, {})
    with pytest.raises(AttributeError):
        recipe.seed = 3  # type: ignore[misc]


def test_flatten_gives_dotted_params():
    flat = flatten(build(BaselineRecipe, {"topics": {"C": 2}}))
    assert flat["topics.C"] == 2.0
    assert flat["features.char_ngrams"] == (2, 5)


def test_read_splits_needs_train_and_dev(tmp_path, records):
    only_train = [dict(r, split="train") for r in records]
    with pytest.raises(TrainingError, match="no 'dev' records"):
        read_splits(write_jsonl(tmp_path / "t.jsonl", only_train))


@pytest.mark.parametrize("cls", [BaselineRecipe, TransformerRecipe, EmbedRecipe, BlendRecipe])
def test_families_that_tune_thresholds_take_a_validated_tolerance(cls):
    assert build(cls, {}).threshold_tolerance == 0.0
    assert build(cls, {"threshold_tolerance": 0.01}).threshold_tolerance == 0.01
    for bad in (-0.01, 0.5):
        with pytest.raises(RecipeError, match=r"threshold_tolerance must be in \[0, 0.2\]"):
            build(cls, {"threshold_tolerance": bad})


@pytest.mark.parametrize("cls", [BaselineRecipe, TransformerRecipe, EmbedRecipe, BlendRecipe, RulesRecipe])
def test_every_family_has_a_validated_stream_precision(cls):
    assert build(cls, {}).stream_precision == 0.95
    assert build(cls, {"stream_precision": 1}).stream_precision == 1.0
    for bad in (0.5, 1.01, 0):
        with pytest.raises(RecipeError, match=r"stream_precision must be in \(0.5, 1\]"):
            build(cls, {"stream_precision": bad})
    with pytest.raises(RecipeError, match="stream_precision must be float"):
        build(cls, {"stream_precision": "high"})


@pytest.mark.parametrize("name", ["baseline", "transformer", "embed", "blend", "rules"])
def test_shipped_recipes_set_the_stream_precision(name):
    raw = yaml.safe_load(Path(f"experiments/{name}.yaml").read_text(encoding="utf-8"))
    assert 0.5 < raw["stream_precision"] <= 1.0
