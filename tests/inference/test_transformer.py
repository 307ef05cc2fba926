"""The transformer and embedding families on a tiny random BERT built in the test (no download)."""

import copy
import json

import numpy as np
import pytest
import torch

from inference.embed import SentenceEmbedder
from inference.encoder import (
    ACTIVATION_RANGES_FILE,
    FullRangeInt8Linear,
    SmoothedLinear,
    full_range_activations,
    length_sorted_batches,
    pad,
    quantize_dynamic,
    quantized_layer_names,
    record_activation_ranges,
    resolve_base_model,
    smooth_layers,
)
from inference.model_io import ModelLoadError, Predictor, agreement, load_model, save_model
from inference.transformer import WEIGHTS, TransformerTopicStance
from labels import load_schema
from tests.conftest import embed_model_on
from training.runs import make_meta

SCHEMA = load_schema()
TEXTS = [
    "The negotiators said Seoul would not pay a fivefold increase for the troops.",
    "Pyongyang condemned the spring drills as a rehearsal for invasion.",
    "Photo: file",
    "The ministry hopes to reopen military talks with the North.",
    "Shipyards expect new repair contracts.",
]


def _model(folder, design: str) -> TransformerTopicStance:
    return TransformerTopicStance.from_base(
        folder, SCHEMA.topic_ids, [t.proposition for t in SCHEMA.topics], 3, design, max_length=48, batch_size=2
    )


def test_base_model_is_a_folder_or_an_installed_package(tiny_base_model):
    assert resolve_base_model(str(tiny_base_model)) == tiny_base_model.resolve()
    with pytest.raises(ModelLoadError) as info:
        resolve_base_model("no-such-model-package")
    assert "\n" not in str(info.value) and "pip install no-such-model-package" in str(info.value)
    with pytest.raises(ModelLoadError, match="no get_model_path"):
        resolve_base_model("json")


def test_batches_cover_every_item_once_and_group_lengths():
    lengths = [5, 30, 6, 29, 7, 31, 4, 28]
    inference = length_sorted_batches(lengths, 3)
    assert [lengths[i] for i in inference[0]] == [31, 30, 29]
    training = length_sorted_batches(lengths, 4, np.random.default_rng(0))
    assert sorted(np.concatenate(training).tolist()) == list(range(8))
    assert {frozenset(lengths[i] > 20 for i in b) for b in training} == {frozenset({True}), frozenset({False})}


def test_dynamic_padding_pads_to_the_longest_in_the_batch():
    batch = pad([{"input_ids": [1, 2], "attention_mask": [1, 1]}, {"input_ids": [3], "attention_mask": [1]}], 0)
    assert batch["input_ids"].tolist() == [[1, 2], [3, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1], [1, 0]]


@pytest.mark.parametrize("design", ["per_topic", "attention", "pair"])
def test_scores_have_the_shared_shape_and_survive_save_and_load(tiny_base_model, tmp_path, design):
    model = _model(tiny_base_model, design)
    topics, stance = model.predict_scores(TEXTS)
    assert topics.shape == (5, 4) and stance.shape == (5, 4, 3)
    assert ((topics > 0) & (topics < 1)).all()
    np.testing.assert_allclose(stance.sum(axis=2), 1.0, atol=1e-5)
    if design == "pair":  # the proposition conditions the stance: topics differ for one text
        assert not np.allclose(stance[0, 0], stance[0, 1])

    predictor = Predictor(model, make_meta("transformer", SCHEMA, [0.5] * 4, weights=WEIGHTS), SCHEMA)
    folder = save_model(tmp_path / "m", model, predictor.meta)
    config = json.loads((folder / "config.json").read_text())
    assert config["id2label"] == {str(i): t for i, t in enumerate(SCHEMA.topic_ids)}
    assert (folder / "tokenizer_config.json").is_file() and (folder / "heads.safetensors").is_file()
    loaded = load_model(folder)
    again = loaded.score(TEXTS)
    np.testing.assert_allclose(again[0], topics, atol=1e-6)
    np.testing.assert_allclose(again[1], stance, atol=1e-6)
    assert loaded.predict(TEXTS) == predictor.predict(TEXTS)
    assert loaded.predict([]) == []


def test_attention_design_pools_each_topic_apart_and_ignores_padding(tiny_base_model):
    model = _model(tiny_base_model, "attention")
    model.net.eval()
    with torch.no_grad():
        _, per_topic = model.net(model.collate(model.tokenize(TEXTS[:1])))
    assert per_topic.shape == (1, 4, 32)
    assert not torch.allclose(per_topic[0, 0], per_topic[0, 1])  # each topic's query reads its own mix
    alone = model.predict_scores(TEXTS[:1])[1]
    padded = model.predict_scores([TEXTS[0], TEXTS[0] + " " + TEXTS[3] * 3])[1][:1]  # one batch, padded
    np.testing.assert_allclose(padded, alone, atol=1e-5)


def test_attention_design_reads_topic_t_with_its_own_head_rows_and_query(tiny_base_model):
    net = _model(tiny_base_model, "attention").net.eval()
    pooled = torch.randn(2, 4, 32)
    weight, bias = net.stance_head.weight.view(4, 3, 32), net.stance_head.bias.view(4, 3)
    expected = torch.stack([pooled[:, t] @ weight[t].T + bias[t] for t in range(4)], dim=1)
    torch.testing.assert_close(net.stance_logits(pooled), expected)
    with pytest.raises(ValueError, match="one pooling per topic"):
        net.stance_logits(torch.randn(8, 32))  # a paragraph encoding is not a per-topic pooling

    hidden = torch.randn(1, 5, 32)
    mask = torch.tensor([[1, 1, 1, 0, 0]])
    with torch.no_grad():
        net.stance_query[2] = 50 * hidden[0, 1]  # topic 2's query points at token 1
    weights = net.attention_weights(hidden, mask)
    assert weights.shape == (1, 4, 5) and (weights[..., 3:] == 0).all()  # padding gets nothing
    torch.testing.assert_close(weights.sum(-1), torch.ones(1, 4))
    assert weights[0, 2].argmax() == 1 and weights[0, 2, 1] > 0.9


def _int8_layers(net: torch.nn.Module) -> set[str]:
    return {n for n, m in net.named_modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)}


@pytest.mark.parametrize("design", ["per_topic", "attention"])
def test_quantized_variant_uses_int8_linear_layers_and_agrees(tiny_base_model, tmp_path, design):
    model = _model(tiny_base_model, design).calibrate(TEXTS)
    # Ranges for exactly the layers that go to int8, one value per input channel.
    assert set(model.activation_ranges) == set(quantized_layer_names(model.net))
    assert model.activation_ranges["encoder.encoder.layer.0.intermediate.dense"].shape == (32,)
    meta = make_meta("transformer", SCHEMA, [0.5] * 4, weights=WEIGHTS)
    folder = save_model(tmp_path / "m", model, meta)
    assert (folder / ACTIVATION_RANGES_FILE).is_file()
    fp32, int8 = load_model(folder), load_model(folder, quantized=True)
    modules = dict(int8.model.net.named_modules())
    # Per encoder layer: query, key, value, attention output and FFN input, each smoothed;
    # FFN output, pooler and heads stay fp32.
    assert len(_int8_layers(int8.model.net)) == 2 * 5
    assert {n.removesuffix(".linear") for n in _int8_layers(int8.model.net)} == set(model.activation_ranges)
    assert isinstance(modules["encoder.encoder.layer.1.attention.self.query"], SmoothedLinear)
    assert type(modules["encoder.encoder.layer.0.output.dense"]) is torch.nn.Linear
    assert type(modules["topic_head"]) is torch.nn.Linear
    a, b = fp32.score(TEXTS), int8.score(TEXTS)
    assert not np.array_equal(a[0], b[0])  # it really is another computation
    result = agreement(a, b, fp32.thresholds)
    assert result["max_topic_score_diff"] < 0.05
    assert result["stance_agreement_all_pairs"] >= 0.9
    with pytest.raises(ValueError, match="not saved"):
        int8.model.save_pretrained(tmp_path / "q")
    with pytest.raises(ValueError, match="before quantizing"):
        int8.model.calibrate(TEXTS)


def test_a_model_saved_without_ranges_still_quantizes_and_says_so(tiny_base_model, tmp_path, caplog):
    model = _model(tiny_base_model, "per_topic")
    folder = save_model(tmp_path / "m", model, make_meta("transformer", SCHEMA, [0.5] * 4, weights=WEIGHTS))
    assert not (folder / ACTIVATION_RANGES_FILE).exists()
    with caplog.at_level("WARNING"):
        int8 = load_model(folder, quantized=True)
    assert "no recorded activation ranges" in caplog.text
    assert len(_int8_layers(int8.model.net)) == 2 * 5
    assert not any(isinstance(m, SmoothedLinear) for m in int8.model.net.modules())


def _one_layer_net() -> torch.nn.Module:
    """A ``Linear`` named like an encoder layer's (``encoder.layer.0.dense``)."""
    layer = torch.nn.ModuleDict({"dense": torch.nn.Linear(64, 32)})
    return torch.nn.ModuleDict({"encoder": torch.nn.ModuleDict({"layer": torch.nn.ModuleList([layer])})})


def test_smoothing_keeps_the_function_and_tames_an_outlier_channel():
    torch.manual_seed(0)
    net = _one_layer_net()
    x = torch.randn(512, 64)
    x[:, 5] *= 60  # one channel always far larger than the rest, as after BERT's LayerNorms
    reference = net.encoder.layer[0].dense(x).detach()
    ranges = record_activation_ranges(net, lambda: net.encoder.layer[0].dense(x))
    assert list(ranges) == ["encoder.layer.0.dense"]
    assert ranges["encoder.layer.0.dense"][5] == x[:, 5].abs().max()

    def error(module: torch.nn.Module) -> float:
        with torch.no_grad():
            out = dict(module.named_modules())["encoder.layer.0.dense"](x)
        return float((out - reference).abs().mean() / reference.abs().mean())

    smoothed = copy.deepcopy(net)
    assert smooth_layers(smoothed, ranges) == ["encoder.layer.0.dense.linear"]
    assert error(smoothed) < 1e-5  # in fp32 it is the same layer
    plain_int8 = error(quantize_dynamic(copy.deepcopy(net)))
    smoothed_int8 = error(quantize_dynamic(copy.deepcopy(net), ranges))
    assert smoothed_int8 < plain_int8 / 3
    with pytest.raises(ModelLoadError, match="does not match"):
        smooth_layers(copy.deepcopy(net), {"encoder.layer.0.dense": torch.ones(7)})


@pytest.mark.parametrize(
    ("forced", "vnni", "expected"),
    [(None, True, True), (None, False, False), ("AVX2", True, False), ("avx512_e1", True, True)],
)
def test_full_8bit_activations_only_where_the_kernels_take_them(monkeypatch, forced, vnni, expected):
    if forced is None:
        monkeypatch.delenv("FBGEMM_ENABLE_INSTRUCTIONS", raising=False)
    else:
        monkeypatch.setenv("FBGEMM_ENABLE_INSTRUCTIONS", forced)
    monkeypatch.setattr(torch.cpu, "_is_vnni_supported", lambda: vnni)
    on_x86 = torch.backends.quantized.engine in ("x86", "fbgemm")
    assert full_range_activations() is (expected and on_x86)
    layer = dict(quantize_dynamic(_one_layer_net(), None).named_modules())["encoder.layer.0.dense"]
    assert type(layer) is (FullRangeInt8Linear if expected and on_x86 else torch.ao.nn.quantized.dynamic.Linear)


def test_agreement_counts_topic_decisions_and_shown_stances():
    th = [0.5, 0.5]
    topics_a = np.array([[0.9, 0.1], [0.6, 0.2]])
    topics_b = np.array([[0.8, 0.1], [0.4, 0.2]])  # one decision of four flips
    stance_a = np.zeros((2, 2, 3))
    stance_b = np.zeros((2, 2, 3))
    stance_a[:, :, 0] = stance_b[:, :, 0] = 1
    stance_b[1, 1] = [0, 1, 0]  # differs on a pair the reference does not show
    stance_b[1, 0] = [0, 0, 1]  # differs on a shown pair
    result = agreement((topics_a, stance_a), (topics_b, stance_b), th)
    assert result["topic_agreement"] == 0.75
    assert result["stance_agreement"] == 0.5
    assert result["stance_agreement_all_pairs"] == 0.5


def test_a_joblib_family_has_no_quantized_variant(tmp_path):
    from inference.rules import KeywordRules

    model = KeywordRules(SCHEMA.topic_ids, 3, SCHEMA.encode_stance("neutral"))
    folder = save_model(tmp_path / "m", model, make_meta("rules", SCHEMA, [0.5] * 4))
    with pytest.raises(ModelLoadError, match="no quantized variant"):
        load_model(folder, quantized=True)


def test_embed_model_round_trips_with_unit_embeddings(tiny_base_model, tmp_path, records):
    embedder = SentenceEmbedder.from_folder(tiny_base_model, max_length=48, batch_size=2)
    texts = [r["text"] for r in records]
    emb = embedder.embed(texts)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    # Batching and length sorting do not change an embedding.
    np.testing.assert_allclose(embedder.embed(texts[:1])[0], emb[0], atol=1e-5)
    model = embed_model_on(embedder, records, emb)
    meta = make_meta("embed", SCHEMA, [0.5] * 4, weights="embed")
    folder = save_model(tmp_path / "e", model, meta)
    loaded = load_model(folder)
    np.testing.assert_allclose(loaded.score(texts)[0], model.predict_scores(texts)[0], atol=1e-6)
    int8 = load_model(folder, quantized=True)
    assert int8.model.quantized and int8.score(texts)[1].shape == (6, 4, 3)
