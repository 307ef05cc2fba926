"""Adapting a family to an unlabelled corpus (``training.adapt``): the pseudo-label selection on
hand-made scores, the corpus stage, the weighted transformer loss, and end-to-end runs of the
baseline (with a resume), the transformer (with the masked-LM stage) and the embed family."""

import dataclasses
import json
import logging
import shutil

import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from inference.model_io import load_model, load_predictor
from inference.predict import PredictReport, PredictSettings, iter_units
from inference.transformer import TransformerTopicStance
from labels import load_schema, read_records
from tests.training.adapt_corpus import N_PARAGRAPHS, ROWS, write_corpus
from training import adapt
from training.adapt import (
    CorpusInfo,
    Cutoffs,
    cap_selection,
    corpus_digest,
    dev_cutoffs,
    pseudo_counts,
    read_corpus,
    select_pseudo_labels,
    train_adapt,
)
from training.config import AdaptRecipe, RecipeError, build, load_recipe
from training.evaluate import Gold
from training.runs import Splits, TrainingError
from training.tracking import REGISTERED_MODEL, use_store
from training.transformer import _backward, _Examples

SCHEMA = load_schema()


# -- pseudo-labels on hand-made scores ---------------------------------------------------------

CUTOFFS = Cutoffs(sure=[0.8] * 4, surely_not=[0.1] * 4, stance_confidence=0.7)
# cost_sharing, exercises, opcon, inter_korean
SCORES = np.array(
    [
        [0.90, 0.05, 0.05, 0.05],  # 0: cost_sharing, surely
        [0.90, 0.05, 0.50, 0.05],  # 1: cost_sharing, but opcon uncertain -> left out
        [0.02, 0.02, 0.02, 0.02],  # 2: surely no topic -> a negative
        [0.85, 0.05, 0.05, 0.95],  # 3: cost_sharing and inter_korean
        [0.50, 0.02, 0.02, 0.02],  # 4: uncertain -> left out
    ]
)


@pytest.fixture
def own_store(tmp_path) -> str:
    """A store of the test's own: adaptation registers and promotes models, which must not
    change the champion of the session's shared store that other tests check."""
    return f"sqlite:///{tmp_path / 'adapt-mlflow.db'}"


PROBA = np.full((5, 4, 3), 1 / 3)
PROBA[0, 0] = [0.8, 0.1, 0.1]  # favor, confident
PROBA[3, 0] = [0.5, 0.4, 0.1]  # favor, not confident -> stance masked
PROBA[3, 3] = [0.05, 0.9, 0.05]  # against, confident


def test_confident_paragraphs_are_kept_and_uncertain_ones_left_out():
    selection = select_pseudo_labels(SCORES, PROBA, CUTOFFS, SCHEMA, self_training=True, negatives=True)
    assert [(p.index, p.topics, p.stance) for p in selection.labels] == [
        (0, ("cost_sharing",), {"cost_sharing": "favor"}),
        (2, (), {}),
        (3, ("cost_sharing", "inter_korean"), {"inter_korean": "against"}),  # cost_sharing's stance masked
    ]
    counts = pseudo_counts(selection, SCHEMA)
    assert counts["positives"] == {"cost_sharing": 2, "exercises": 0, "opcon": 0, "inter_korean": 1}
    assert (counts["negatives"], counts["stance_masked"], counts["uncertain"], counts["left_out"]) == (1, 1, 2, 2)


def test_negatives_join_only_when_asked_and_positives_only_with_self_training():
    only_positives = select_pseudo_labels(SCORES, PROBA, CUTOFFS, SCHEMA, self_training=True, negatives=False)
    assert [p.index for p in only_positives.labels] == [0, 3] and only_positives.unused == 1
    only_negatives = select_pseudo_labels(SCORES, PROBA, CUTOFFS, SCHEMA, self_training=False, negatives=True)
    assert [(p.index, p.topics) for p in only_negatives.labels] == [(2, ())] and only_negatives.unused == 2


def test_no_stance_is_kept_when_the_dev_accuracy_is_never_reached():
    never = Cutoffs(CUTOFFS.sure, CUTOFFS.surely_not, stance_confidence=float("inf"))
    selection = select_pseudo_labels(SCORES, PROBA, never, SCHEMA, self_training=True, negatives=True)
    assert all(p.stance == {} for p in selection.labels)
    assert pseudo_counts(selection, SCHEMA)["stance_masked"] == 3


def test_cutoffs_are_measured_on_dev():
    # one topic column with gold positives and negatives, the others with no positives at all
    scores = np.zeros((7, 4))
    scores[:, 0] = [0.2, 0.5, 0.6, 0.9, 0.1, 0.3, 0.55]
    topics = np.zeros((7, 4), dtype=int)
    topics[:4, 0] = 1
    stances = np.full((7, 4), -1)
    stances[:4, 0] = [0, 0, 1, 0]
    proba = np.full((7, 4, 3), 1 / 3)
    proba[:4, 0] = [[0.5, 0.3, 0.2], [0.8, 0.1, 0.1], [0.6, 0.2, 0.2], [0.9, 0.05, 0.05]]  # 3rd is wrong
    dev = Gold([str(i) for i in range(7)], [""] * 7, topics, stances)
    cut = dev_cutoffs(dev, scores, proba, [0.5] * 4, 1.0, 0.25, 0.9)
    assert cut.sure[0] == 0.6  # the lowest score >= 0.5 from which dev precision is 1.0
    assert cut.surely_not[0] == 0.5  # below it one positive of four (0.25) falls
    assert cut.sure[1] > scores[:, 1].max()  # never precise: nothing is pseudo-labelled present
    assert cut.surely_not[1] == cut.sure[1]  # no dev positive: the model's threshold, never above "sure"
    assert cut.stance_confidence == 0.8  # from 0.8 up the stances are right (0.6 is not)
    assert dev_cutoffs(dev, scores, proba, [0.5] * 4, 1.0, 0.01, 0.9).surely_not[0] == 0.2


def test_the_pseudo_label_cap_is_a_fixed_sample_in_corpus_order():
    selection = select_pseudo_labels(SCORES, PROBA, CUTOFFS, SCHEMA, self_training=True, negatives=True)
    capped = cap_selection(selection, 2, seed=13)
    assert len(capped.labels) == 2 and capped.capped == 1
    assert [p.index for p in capped.labels] == sorted(p.index for p in capped.labels)
    assert capped.labels == cap_selection(selection, 2, seed=13).labels
    assert cap_selection(selection, 10, seed=13) is selection


# -- the corpus stage ---------------------------------------------------------------------------


def test_the_corpus_is_segmented_as_predict_segments_it(tmp_path, small_dataset):
    inputs = write_corpus(tmp_path / "corpus")
    team = read_records(small_dataset)
    extra = [{"id": "again", "text": ROWS[0]}, {"id": "team", "text": team[0]["text"]}]
    (tmp_path / "corpus" / "zz-extra.jsonl").write_text("".join(json.dumps(r) + "\n" for r in extra))
    units = list(iter_units(inputs, PredictSettings(), PredictReport()))
    recipe = AdaptRecipe(min_paragraphs=10)
    info = read_corpus(inputs, recipe, [r["text"] for r in team], tmp_path / "corpus.jsonl")
    assert info.paragraphs == len(units) == N_PARAGRAPHS + 2
    assert info.digest == corpus_digest(u.text for u in units)
    assert (info.repeated, info.in_labelled_data, info.used, info.sampled) == (1, 1, N_PARAGRAPHS, False)
    kept = [json.loads(line)["text"] for line in (tmp_path / "corpus.jsonl").open()]
    assert kept == [u.text for u in units][:N_PARAGRAPHS]

    capped = read_corpus(inputs, AdaptRecipe(min_paragraphs=10, max_paragraphs=10), [], tmp_path / "c10.jsonl")
    texts = [json.loads(line)["text"] for line in (tmp_path / "c10.jsonl").open()]
    assert capped.used == 10 and capped.sampled and texts[0] == units[0].text and len(set(texts)) == 10

    with pytest.raises(TrainingError, match=r"^the corpus has 50 paragraphs after segmentation \(52 read"):
        read_corpus(inputs, AdaptRecipe(), [r["text"] for r in team], tmp_path / "small.jsonl")


def test_labelled_paragraphs_stay_out_of_the_corpus(tmp_path, records):
    splits = Splits(records[:2], records[2:4], records[4:], "fixture")
    assert adapt.labelled_texts(splits, None) == [r["text"] for r in records]
    folder = tmp_path / "realnews"  # a stand-in with the fixture's team-written records
    folder.mkdir()
    (folder / "dev.jsonl").write_text(json.dumps({**records[0], "id": "real-1", "text": "A real paragraph."}) + "\n")
    assert adapt.labelled_texts(splits, folder)[-1] == "A real paragraph."


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["mlm=true"], "mlm continues the pretraining of an encoder and the baseline family has none"),
        (["base_family=rules"], "base_family must be one of"),
        (["rounds=0"], "rounds must be at least 1"),
        (["topic_precision=1.5"], r"topic_precision must be in \(0, 1\]"),
        (["pseudo_rate=1"], "unknown recipe key"),
        (["base_set=[search={}]"], "the value is not valid YAML"),  # needs quotes: "base_set=['search={}']"
    ],
)
def test_bad_adapt_recipes_are_refused(overrides, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe("experiments/adapt.yaml", AdaptRecipe, overrides)


def test_the_base_recipe_must_be_of_the_base_family():
    recipe = load_recipe(
        "experiments/adapt.yaml", AdaptRecipe, ["base_family=embed", "base_recipe=experiments/baseline.yaml"]
    )
    with pytest.raises(RecipeError, match="is a baseline recipe but base_family is embed"):
        adapt.load_base_recipe(recipe)
    base = adapt.load_base_recipe(load_recipe("experiments/adapt.yaml", AdaptRecipe, ["base_set=[topics.C=8]"]))
    assert base.family == "baseline" and base.topics.C == 8.0 and base.realnews == "auto"


# -- the weighted transformer loss -------------------------------------------------------------


def test_unit_weights_give_the_plain_transformer_loss(tiny_base_model):
    records = [
        {"id": "a", "text": ROWS[0], "topics": ["inter_korean"], "stance": {"inter_korean": "favor"}},
        {"id": "b", "text": ROWS[3], "topics": ["opcon"], "stance": {"opcon": "favor"}},
        {"id": "c", "text": ROWS[6], "topics": [], "stance": {}},
        {"id": "d", "text": ROWS[22], "topics": ["exercises"], "stance": {}},  # a pseudo-label, stance masked
    ]
    gold = Gold.from_records(records, SCHEMA)
    idx = np.arange(4)
    losses = (
        torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor([2.0, 1.0, 3.0, 1.5])),
        torch.nn.CrossEntropyLoss(weight=torch.tensor([0.5, 2.0, 1.0]), ignore_index=-1),
    )
    for design in ("per_topic", "attention", "pair"):
        model = TransformerTopicStance.from_base(
            tiny_base_model, SCHEMA.topic_ids, [t.proposition for t in SCHEMA.topics], 3, design, max_length=48
        )
        model.net.eval()  # no dropout: the two passes see the same network
        cpu = torch.device("cpu")
        plain = _backward(model, _Examples(model, gold), idx, *losses, 2.0, cpu)
        ones = _backward(model, _Examples(model, gold, np.ones(4)), idx, *losses, 2.0, cpu)
        halved = _backward(model, _Examples(model, gold, np.full(4, 0.5)), idx, *losses, 2.0, cpu)
        assert ones == pytest.approx(plain, rel=1e-5), design
        assert halved == pytest.approx(plain / 2, rel=1e-5), design  # a weight scales, it is not normalised away


# -- end to end ------------------------------------------------------------------------------


def _recipe(small_dataset, tmp_path, **settings) -> AdaptRecipe:
    return build(
        AdaptRecipe,
        {
            "data": str(small_dataset),
            "base_set": ["search={}", "features.char_ngrams=[3, 4]"],  # one fit per round, fewer features
            "min_paragraphs": 20,
            "topic_precision": 0.8,  # the tiny dev split rarely reaches 0.95
            "state_dir": str(tmp_path / "state"),
            **settings,
        },
    )


@pytest.mark.slow
def test_baseline_adaptation_end_to_end_and_resumed(tmp_path, small_dataset, own_store, monkeypatch, caplog):
    inputs = write_corpus(tmp_path / "corpus")
    recipe = _recipe(small_dataset, tmp_path, rounds=1)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed while publishing")

    # A first run dies in the final stage, after every round finished.
    monkeypatch.setattr(adapt, "evaluate_and_publish", killed)
    with pytest.raises(KeyboardInterrupt):
        train_adapt(recipe, inputs, own_store)
    monkeypatch.undo()
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    assert state["finished"] == ["corpus", "round0", "round1"]
    assert (tmp_path / "state" / "round0_pseudo.jsonl").is_file() and (tmp_path / "state" / "round1").is_dir()
    shutil.copytree(tmp_path / "state", tmp_path / "copy")

    # The rerun fits nothing again: it continues the same MLflow run with the final stage.
    def refit(*args, **kwargs):
        raise AssertionError("a finished round was fitted again")

    monkeypatch.setattr(adapt._BaselineFamily, "fit", refit)
    with caplog.at_level(logging.INFO, logger="training.adapt"):
        outcome = train_adapt(recipe, inputs, own_store)
    assert outcome.skipped == ["corpus", "round0", "round1"]
    assert "round 1: finished in an earlier run, skipping" in caplog.text
    assert outcome.result.run_id == state["run_id"]

    # The same state finished against another store: a new parent run, with the rounds the
    # killed run fitted logged again as its nested runs.
    elsewhere = f"sqlite:///{tmp_path / 'other.db'}"
    moved = train_adapt(dataclasses.replace(recipe, state_dir=str(tmp_path / "copy")), inputs, elsewhere)
    assert moved.result.run_id != state["run_id"] and moved.skipped == ["corpus", "round0", "round1"]
    use_store(elsewhere)
    relogged = MlflowClient().search_runs(
        [MlflowClient().get_run(moved.result.run_id).info.experiment_id],
        f"tags.mlflow.parentRunId = '{moved.result.run_id}'",
        order_by=["attributes.start_time"],
    )
    assert [r.info.run_name for r in relogged] == ["round 0 (unadapted)", "round 1"]
    assert relogged[1].data.metrics["dev_combined_f1"] == outcome.rounds[1]["metrics"]["dev_combined_f1"]

    # what was registered
    digest = corpus_digest(u.text for u in iter_units(inputs, PredictSettings(), PredictReport()))
    assert outcome.corpus == CorpusInfo(digest, N_PARAGRAPHS, used=N_PARAGRAPHS)
    assert outcome.methods == ["self_training", "negatives", "corpus_features"]
    use_store(own_store)
    client = MlflowClient()
    run = client.get_run(outcome.result.run_id)
    assert run.info.run_name == "adapt baseline" and run.info.status == "FINISHED"
    params, tags = run.data.params, run.data.tags
    assert params["corpus_digest"] == digest and params["corpus_paragraphs"] == str(N_PARAGRAPHS)
    assert params["self_training"] == "True" and params["pseudo_weight"] == "0.5" and params["base.search"] == "{}"
    assert params["base.features.char_ngrams"] == "(3, 4)"
    assert tags["adapted_from"] == digest and tags["family"] == "adapt"
    assert {"dev_combined_f1", "test_combined_f1", "unadapted_dev_combined_f1"} <= set(run.data.metrics)
    rounds = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'", order_by=["attributes.start_time"]
    )
    assert [r.info.run_name for r in rounds] == ["round 0 (unadapted)", "round 1"]
    assert rounds[0].data.metrics["pseudo_used"] == outcome.rounds[0]["pseudo"]["used"] > 0
    assert rounds[1].data.params["pseudo_paragraphs"] == str(outcome.rounds[0]["pseudo"]["used"])

    uri = f"models:/{REGISTERED_MODEL}/{outcome.result.model_version}"
    predictor = load_predictor(uri)
    assert predictor.meta.family == "baseline"
    assert predictor.meta.extra["adapted"]["corpus_digest"] == digest
    assert predictor.meta.extra["adapted"]["methods"] == outcome.methods
    saved = load_model(tmp_path / "state" / "round1")  # the last round is what was published
    texts = ROWS[:8]
    np.testing.assert_allclose(predictor.score(texts)[0], saved.score(texts)[0])
    assert predictor.predict(texts)[0].topic_scores

    # A third run finds everything done; --promote then compares the registered model with the champion.
    assert not outcome.result.promoted and outcome.result.previous_champion is None
    again = train_adapt(recipe, inputs, own_store, promote=True)
    assert again.result.model_version == outcome.result.model_version
    assert again.skipped == ["corpus", "round0", "round1", "final"]
    assert again.result.promoted or again.result.previous_champion is not None

    # Another recipe is another state: refused in the same state_dir.
    with pytest.raises(TrainingError, match="holds an adaptation of another corpus or recipe"):
        train_adapt(_recipe(small_dataset, tmp_path, rounds=2), inputs, own_store)


@pytest.mark.slow
def test_transformer_adaptation_with_masked_lm(tmp_path, small_dataset, tiny_base_model, own_store):
    recipe = _recipe(
        small_dataset,
        tmp_path,
        base_family="transformer",
        mlm=True,
        rounds=1,
        mlm_batch_size=8,
        mlm_max_length=48,
        base_set=[
            f"base_model={tiny_base_model}",
            "designs=[per_topic]",
            "epochs=1",
            "max_steps=2",
            "max_length=48",
            "batch_size=8",
            "device=cpu",
        ],
    )
    outcome = train_adapt(recipe, write_corpus(tmp_path / "corpus"), own_store)
    encoder = tmp_path / "state" / "encoder"
    assert (encoder / "config.json").is_file() and (encoder / "model.safetensors").is_file()
    assert (encoder / "tokenizer_config.json").is_file()
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    assert state["finished"] == ["corpus", "mlm", "round0", "round1", "final"]
    assert state["stages"]["mlm"]["mlm_steps"] == 7  # 50 paragraphs in batches of 8
    assert state["stages"]["mlm"]["mlm_fresh_head_weights"] > 0  # the tiny BERT ships no LM head either
    assert outcome.methods == ["self_training", "negatives", "mlm"]
    # round 1 fine-tuned from the adapted encoder
    heads = json.loads((tmp_path / "state" / "round1" / "heads.json").read_text())
    assert heads["base_model"] == str(encoder.resolve())
    predictor = load_predictor(f"models:/{REGISTERED_MODEL}/{outcome.result.model_version}")
    assert predictor.meta.family == "transformer" and predictor.meta.extra["adapted"]["methods"][-1] == "mlm"
    assert len(predictor.predict(ROWS[:3])) == 3


@pytest.mark.slow
def test_embed_adaptation_keeps_the_corpus_embeddings(tmp_path, small_dataset, tiny_base_model, own_store):
    recipe = _recipe(
        small_dataset,
        tmp_path,
        base_family="embed",
        rounds=1,
        negatives=True,
        self_training=False,
        base_set=["search={}", f"base_model={tiny_base_model}", "device=cpu"],
    )
    outcome = train_adapt(recipe, write_corpus(tmp_path / "corpus"), own_store)
    embeddings = np.load(tmp_path / "state" / "corpus_embeddings_base.npy")
    assert embeddings.shape == (N_PARAGRAPHS, 32)
    pseudo = outcome.rounds[0]["pseudo"]
    assert sum(pseudo["positives"].values()) == 0 and pseudo["negatives"] == pseudo["used"]  # negatives only
    assert load_predictor(f"models:/{REGISTERED_MODEL}/{outcome.result.model_version}").meta.family == "embed"
