"""The ONNX Runtime path (``runtime="onnx"`` and ``"onnx-int8"``) on a tiny random BERT: the
same scores as torch fp32, int8 that agrees, one export per model, and one-line refusals.

onnxruntime and onnx come with the ``dev`` extra (through ``onnx``), so these tests run them
for real; without them, loading says in one line to install ``allystance[onnx]``.
"""

import sys

import numpy as np
import pytest

from inference.blend import WEIGHTS as BLEND_WEIGHTS
from inference.blend import BlendedTopicStance
from inference.embed import SentenceEmbedder
from inference.model_io import ModelLoadError, Predictor, agreement, load_model, load_predictor, save_model
from inference.onnx_encoder import BATCH_SIZE, OnnxEncoder, onnx_cache, onnx_scope
from inference.rules import KeywordRules
from inference.transformer import WEIGHTS, TransformerTopicStance
from labels import load_schema
from tests.conftest import embed_model_on
from training.runs import make_meta

SCHEMA = load_schema()
# Different lengths, so that length-sorted batches of two pad to different widths; the last
# is longer than max_length and is cut.
TEXTS = [
    "Photo: file",
    "The negotiators said Seoul would not pay a fivefold increase for the troops.",
    "Pyongyang condemned the spring drills as a rehearsal for invasion.",
    "Shipyards expect new repair contracts.",
    "The ministry hopes to reopen military talks with the North, and officials said so twice. " * 4,
]


@pytest.fixture(scope="module")
def onnx_cache_dir(tmp_path_factory):
    """One export cache for this module's tests, so a model folder is exported once here too."""
    return tmp_path_factory.mktemp("allystance-cache")


@pytest.fixture(autouse=True)
def _cache(monkeypatch, onnx_cache_dir):
    monkeypatch.setenv("ALLYSTANCE_CACHE", str(onnx_cache_dir))


def save_transformer(folder, base_model, design: str = "attention"):
    """A tiny transformer with recorded int8 ranges, saved as a model folder."""
    model = TransformerTopicStance.from_base(
        base_model, SCHEMA.topic_ids, [t.proposition for t in SCHEMA.topics], 3, design, max_length=48, batch_size=2
    ).calibrate(TEXTS)
    return save_model(folder, model, make_meta("transformer", SCHEMA, [0.5] * 4, weights=WEIGHTS))


@pytest.fixture(scope="module")
def transformer_dir(tmp_path_factory, tiny_base_model):
    return save_transformer(tmp_path_factory.mktemp("transformer") / "m", tiny_base_model)


@pytest.mark.parametrize("design", ["attention", "pair"])
def test_onnx_scores_match_torch_fp32(tiny_base_model, tmp_path, monkeypatch, design):
    folder = save_transformer(tmp_path / "m", tiny_base_model, design)
    torch_fp32, on_onnx = load_model(folder), load_model(folder, runtime="onnx")
    assert isinstance(on_onnx.model.net.encoder, OnnxEncoder) and on_onnx.model.runtime == "onnx"
    assert not on_onnx.model.quantized
    seen = []  # the sequence length of every batch the session runs
    session = on_onnx.model.net.encoder.session
    run = session.run
    monkeypatch.setattr(
        session, "run", lambda outputs, feed: seen.append(feed["input_ids"].shape[1]) or run(outputs, feed)
    )
    expected, got = torch_fp32.score(TEXTS), on_onnx.score(TEXTS)
    np.testing.assert_allclose(got[0], expected[0], atol=1e-4)  # topic probabilities
    np.testing.assert_allclose(got[1], expected[1], atol=1e-4)  # stance distributions
    labels = [[(p.topics, p.stance) for p in m.predict(TEXTS)] for m in (on_onnx, torch_fp32)]
    assert labels[0] == labels[1]
    # Length-sorted batches of two, each padded to its own longest: the long text first (cut
    # at max_length 48), then narrower batches of the shorter ones.
    assert seen[0] == 48 and seen[1] < 48 and seen[2] < seen[1]
    # Explanations read the encoder's token states as well: the same words weigh the same.
    explained = [m.model.word_attributions(TEXTS[1:3]) for m in (torch_fp32, on_onnx)]
    for a, b in zip(*explained, strict=True):
        np.testing.assert_allclose(b.topic, a.topic, atol=1e-4)
        np.testing.assert_allclose(b.stance, a.stance, atol=1e-4)
    with pytest.raises(ValueError, match="not saved"):
        on_onnx.model.save_pretrained(tmp_path / "again")


def test_onnx_runtimes_score_in_smaller_batches(tiny_base_model, tmp_path):
    """ONNX Runtime's CPU kernels are fastest on small batches: a model saved to score 64 at a
    time scores BATCH_SIZE at a time there, and the same on torch."""
    model = TransformerTopicStance.from_base(
        tiny_base_model, SCHEMA.topic_ids, [t.proposition for t in SCHEMA.topics], 3, "attention", batch_size=64
    )
    folder = save_model(tmp_path / "m", model, make_meta("transformer", SCHEMA, [0.5] * 4, weights=WEIGHTS))
    assert BATCH_SIZE < 64
    assert load_model(folder).model.batch_size == 64
    on_onnx = load_model(folder, runtime="onnx")
    assert on_onnx.model.batch_size == BATCH_SIZE
    texts = [f"Paragraph {i} about the talks." for i in range(BATCH_SIZE + 1)]
    calls = []
    session = on_onnx.model.net.encoder.session
    run = session.run
    session.run = lambda outputs, feed: calls.append(len(feed["input_ids"])) or run(outputs, feed)
    on_onnx.score(texts)
    assert sorted(calls) == [1, BATCH_SIZE]
    embedder = SentenceEmbedder.from_folder(tiny_base_model, batch_size=64).use_runtime("onnx", tiny_base_model)
    assert embedder.batch_size == BATCH_SIZE


def test_onnx_int8_quantizes_the_torch_int8_layers_and_agrees(transformer_dir):
    import onnx

    fp32, int8 = load_model(transformer_dir), load_model(transformer_dir, runtime="onnx-int8")
    assert int8.model.quantized and int8.model.runtime == "onnx-int8"
    graph = onnx.load(str(int8.model.net.encoder.path)).graph
    quantized = [n.name for n in graph.node if n.op_type == "MatMulInteger"]
    # Per encoder layer, as torch-int8: query, key, value, attention output and FFN input
    # (smoothed, hence ".../linear/"); the FFN output projections stay fp32.
    assert len(quantized) == 2 * 5
    assert all("/linear/" in name for name in quantized)
    assert not any(n.startswith("/encoder/encoder/layer.0/output/dense/") for n in quantized)
    a, b = fp32.score(TEXTS), int8.score(TEXTS)
    assert not np.array_equal(a[0], b[0])  # it really is another computation
    figures = agreement(a, b, fp32.thresholds)
    assert figures["topic_agreement"] >= 0.9
    assert figures["max_topic_score_diff"] < 0.05


def test_the_export_is_made_once_and_keyed_by_the_folder_content(transformer_dir, tmp_path, monkeypatch):
    import inference.onnx_encoder

    monkeypatch.setenv("ALLYSTANCE_CACHE", str(tmp_path / "cache"))
    first = load_model(transformer_dir, runtime="onnx").model.net.encoder.path
    assert first.parent == onnx_cache(transformer_dir) and str(first).startswith(str(tmp_path / "cache"))
    written = first.stat().st_mtime_ns

    def no_second_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(inference.onnx_encoder, "export_encoder", no_second_export)
    again = load_predictor(transformer_dir, runtime="onnx").model.net.encoder.path
    assert again == first and first.stat().st_mtime_ns == written
    # Another model's content is another key (a copy of the folder with other thresholds).
    import shutil

    other = shutil.copytree(transformer_dir, tmp_path / "other")
    (other / "allystance.json").write_text((other / "allystance.json").read_text().replace("0.5", "0.6"))
    assert onnx_cache(other) != onnx_cache(transformer_dir)
    assert onnx_cache(shutil.copytree(transformer_dir, tmp_path / "copy")) == onnx_cache(transformer_dir)


def test_onnx_scope_names_the_exporter_s_node_prefix():
    assert onnx_scope("encoder.encoder.layer.10.output.dense") == "/encoder/encoder/layer.10/output/dense/"


def test_missing_onnxruntime_is_one_line(transformer_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now fails
    with pytest.raises(ModelLoadError) as info:
        load_model(transformer_dir, runtime="onnx-int8")
    message = str(info.value)
    assert "\n" not in message and "pip install 'allystance[onnx]'" in message
    assert load_model(transformer_dir).model.runtime == "torch"  # the other runtimes do not need it


def test_unknown_runtimes_and_families_without_an_encoder_are_refused(transformer_dir, tmp_path):
    with pytest.raises(ModelLoadError, match=r"unknown runtime 'tensorrt'; use torch, torch-int8, onnx, onnx-int8"):
        load_predictor(transformer_dir, runtime="tensorrt")
    with pytest.raises(ModelLoadError, match="--quantized is --runtime torch-int8"):
        load_predictor(transformer_dir, quantized=True, runtime="onnx")
    assert load_predictor(transformer_dir, quantized=True).model.runtime == "torch-int8"  # the older flag
    folder = save_model(tmp_path / "rules", _rules().model, _rules().meta)
    with pytest.raises(ModelLoadError, match=r"the rules family has no ONNX variant \(it has no encoder\)") as info:
        load_model(folder, runtime="onnx")
    assert "\n" not in str(info.value) and "--runtime torch" in str(info.value)


def _rules() -> Predictor:
    """A model without an encoder (the keyword rules, saved with joblib)."""
    model = KeywordRules(SCHEMA.topic_ids, 3, SCHEMA.encode_stance("neutral"))
    return Predictor(model, make_meta("rules", SCHEMA, [0.5] * 4), SCHEMA)


def test_embed_family_runs_on_onnx(tiny_base_model, records, tmp_path):
    embedder = SentenceEmbedder.from_folder(tiny_base_model, max_length=48, batch_size=2)
    texts = [r["text"] for r in records]
    model = embed_model_on(embedder.calibrate(texts), records)
    folder = save_model(tmp_path / "e", model, make_meta("embed", SCHEMA, [0.5] * 4, weights="embed"))
    fp32, on_onnx, int8 = (load_model(folder, runtime=r) for r in ("torch", "onnx", "onnx-int8"))
    assert isinstance(on_onnx.model.embedder.encoder, OnnxEncoder) and on_onnx.model.runtime == "onnx"
    np.testing.assert_allclose(on_onnx.score(texts)[0], fp32.score(texts)[0], atol=1e-4)
    np.testing.assert_allclose(on_onnx.score(texts)[1], fp32.score(texts)[1], atol=1e-4)
    assert (
        int8.model.quantized
        and agreement(fp32.score(texts), int8.score(texts), fp32.thresholds)["topic_agreement"] >= 0.9
    )


def test_a_blend_runs_its_encoder_members_on_onnx(transformer_dir, tmp_path):
    blend = BlendedTopicStance([_rules(), load_model(transformer_dir)], [0.5, 0.5], [0.5, 0.5], ["rules", "bert"])
    folder = save_model(tmp_path / "blend", blend, make_meta("blend", SCHEMA, [0.5] * 4, weights=BLEND_WEIGHTS))
    on_onnx = load_model(folder, runtime="onnx")
    members = on_onnx.model.members
    assert members[1].model.runtime == "onnx" and not hasattr(members[0].model, "runtime")
    fp32 = load_model(folder).score(TEXTS)
    np.testing.assert_allclose(on_onnx.score(TEXTS)[0], fp32[0], atol=1e-4)
    np.testing.assert_allclose(on_onnx.score(TEXTS)[1], fp32[1], atol=1e-4)
    with pytest.raises(ValueError, match="onnx runtime is not saved"):
        on_onnx.model.save_pretrained(tmp_path / "again")
