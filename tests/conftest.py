"""Shared fixtures: a small valid dataset written to a temporary folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# Training scores real news when a folder is beside the checkout (training.realnews); the
# suite runs the same with or without one, and tests that need it pass a folder of their own.
os.environ["ALLYSTANCE_REALNEWS"] = "off"

# Hand-written, mutually distinct paragraphs covering every topic, a multi-topic and a no-topic case.
FIXTURE_RECORDS = [
    {
        "id": "a1-p0",
        "article_id": "a1",
        "position": 0,
        "split": "train",
        "source": "wire-service",
        "date": "2019-11-19",
        "text": "The American negotiator walked out of the Seoul session after an hour, saying the allies' "
        "split of the garrison bill had to change and that Korea could afford far more.",
        "topics": ["cost_sharing"],
        "stance": {"cost_sharing": "favor"},
    },
    {
        "id": "a1-p1",
        "article_id": "a1",
        "position": 1,
        "split": "train",
        "source": "wire-service",
        "date": "2019-11-19",
        "text": "Ruling-party lawmakers answered that a fivefold jump in the payment was robbery and told "
        "the foreign ministry not to sign anything of the kind.",
        "topics": ["cost_sharing"],
        "stance": {"cost_sharing": "against"},
    },
    {
        "id": "b1-p0",
        "article_id": "b1",
        "position": 0,
        "split": "dev",
        "source": "nk-state-media",
        "date": "2023-03-13",
        "text": "Pyongyang's news agency branded the spring manoeuvres a dress rehearsal "
        "for invasion and promised a reply the enemy would regret.",
        "topics": ["exercises"],
        "stance": {"exercises": "against"},
    },
    {
        "id": "b1-p1",
        "article_id": "b1",
        "position": 1,
        "split": "dev",
        "source": "nk-state-media",
        "date": "2023-03-13",
        "text": "Photo: file",
        "topics": [],
        "stance": {},
    },
    {
        "id": "c1-p0",
        "article_id": "c1",
        "position": 0,
        "split": "test",
        "source": "korean-daily-translated",
        "date": "2025-09-02",
        "text": "The defence ministry said verification of full operational capability would continue this "
        "autumn, and that unification officials hoped to reopen military talks with the North.",
        "topics": ["opcon", "inter_korean"],
        "stance": {"opcon": "neutral", "inter_korean": "favor"},
    },
    {
        "id": "c1-p1",
        "article_id": "c1",
        "position": 1,
        "split": "test",
        "source": "korean-daily-translated",
        "date": None,
        "text": "Shipyards in Ulsan and Geoje expect new repair contracts for American naval vessels next year.",
        "topics": [],
        "stance": {},
    },
]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def records() -> list[dict]:
    return [dict(r) for r in FIXTURE_RECORDS]


@pytest.fixture
def dataset_file(tmp_path: Path, records: list[dict]) -> Path:
    return write_jsonl(tmp_path / "fixture.jsonl", records)


def small_subset(n_train: int = 30, n_eval: int = 10) -> list[dict]:
    """Whole articles from the shipped dataset: enough to train on in a second or two."""
    from labels import read_records

    wanted = {"train": n_train, "dev": n_eval, "test": n_eval}
    chosen: dict[str, list[str]] = {s: [] for s in wanted}
    records = read_records()
    for r in records:
        split, article = r["split"], r["article_id"]
        if article not in chosen[split] and len(chosen[split]) < wanted[split]:
            chosen[split].append(article)
    keep = {a for articles in chosen.values() for a in articles}
    return [r for r in records if r["article_id"] in keep]


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("data") / "small.jsonl", small_subset())


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"


@pytest.fixture(scope="session")
def trained_baseline(small_dataset: Path, tracking_uri: str):
    """One small baseline run shared by the tests that need a logged model."""
    from training.baseline import train_baseline
    from training.config import BaselineRecipe, build

    recipe = build(
        BaselineRecipe,
        {"data": str(small_dataset), "search": {"topics.C": [1.0, 4.0], "stance.design": ["per_topic", "crossed"]}},
    )
    return train_baseline(recipe, tracking_uri, promote=True)


TINY_TRANSFORMER = {
    "designs": ["per_topic", "attention", "pair"],
    "epochs": 2,
    "max_length": 64,
    "batch_size": 8,
    "eval_batch_size": 32,
    "patience": 2,
}


@pytest.fixture(scope="session")
def trained_transformer(small_dataset: Path, tiny_base_model: Path, tracking_uri: str):
    """One tiny transformer run (every stance design) in the shared store."""
    from training.config import TransformerRecipe, build
    from training.transformer import train_transformer

    settings = {"data": str(small_dataset), "base_model": str(tiny_base_model), **TINY_TRANSFORMER}
    recipe = build(TransformerRecipe, settings)
    return train_transformer(recipe, tracking_uri, promote=False)


def embed_model_on(embedder, records: list[dict], embeddings=None):
    """An embed-family model: ``embedder`` with linear topic and stance heads fitted on
    ``records`` (their embeddings computed here unless given)."""
    import numpy as np

    from inference.embed import EmbedTopicStance, as_features
    from inference.tfidf import fit_stance_heads, fit_topic_heads
    from labels import load_schema

    schema = load_schema()
    X = as_features(embedder.embed([r["text"] for r in records]) if embeddings is None else embeddings)
    topics = np.array([schema.encode_topics(r["topics"]) for r in records])
    stances = np.array([schema.encode_stances(r["stance"]) for r in records])
    topic_heads = fit_topic_heads(X, topics, "logreg", 1.0, None, 0)
    return EmbedTopicStance(embedder, topic_heads, fit_stance_heads(X, stances, 3, "crossed", 1.0, None, 0), 3)


def build_tiny_bert(folder: Path, texts: list[str], hidden: int = 32, layers: int = 2) -> Path:
    """A randomly initialised BERT and a WordPiece tokenizer trained on ``texts``, saved as a
    base-model folder (what ``base_model`` points at): the transformer code paths run on it in
    seconds, with no download."""
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertModel, BertTokenizer

    from inference.preprocess import normalize_text

    folder.mkdir(parents=True, exist_ok=True)
    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator([normalize_text(t) for t in texts], vocab_size=600, min_frequency=1)
    vocab_file = wordpiece.save_model(str(folder))[0]
    tokenizer = BertTokenizer(vocab=vocab_file, do_lower_case=True)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=128,
    )
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_base_model(tmp_path_factory, small_dataset: Path) -> Path:
    from labels import read_records

    texts = [r["text"] for r in read_records(small_dataset)]
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), texts)


def pytest_addoption(parser) -> None:
    parser.addoption(
        "--model-uri",
        action="append",
        default=[],
        help="Also run the behavioural tests in tests/model against this model (a folder or an MLflow URI; "
        "models:/ URIs use $MLFLOW_TRACKING_URI, else ./mlflow.db). Repeatable.",
    )
