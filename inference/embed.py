"""The embedding family: frozen sentence embeddings (mean-pooled, L2-normalised) of a
pretrained encoder, with the TF-IDF family's linear heads on top: one-vs-rest topic
heads and a target-conditioned stance model (per-topic heads, or shared features crossed
with the topic). The cheap model for small data, comparable to SetFit's starting point.

A saved model is a folder: the encoder and tokenizer as written by ``save_pretrained``,
``heads.joblib`` (the scikit-learn heads) and ``embed.json``. The encoder runs on the runtime
chosen at load time (``from_pretrained(folder, runtime=...)``, see ``inference.model_io``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import joblib
import numpy as np
import scipy.sparse as sp
import torch

from inference.encoder import (
    iterate_batches,
    last_hidden_states,
    load_activation_ranges,
    load_encoder,
    mean_pool,
    pad,
    quantize_dynamic,
    record_activation_ranges,
    save_activation_ranges,
    tokenize,
    tokenize_with_offsets,
)
from inference.model_io import INT8_RUNTIMES, ONNX_RUNTIMES, TORCH, TORCH_INT8, choose_runtime
from inference.tfidf import head_coefficients, linear_attributions, stacked_weights, stance_scores, topic_scores

WEIGHTS = "embed"  # ModelMeta.weights for this family
HEADS_FILE = "heads.joblib"
SETTINGS_FILE = "embed.json"


class SentenceEmbedder:
    """Mean-pooled, L2-normalised encodings of a frozen encoder."""

    def __init__(self, encoder: torch.nn.Module, tokenizer, max_length: int = 128, batch_size: int = 64):
        self.encoder = encoder.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        self.runtime = TORCH  # where the encoder runs; see use_runtime()
        self.activation_ranges: dict[str, torch.Tensor] | None = None  # see calibrate()

    @classmethod
    def from_folder(cls, folder: str | Path, max_length: int = 128, batch_size: int = 64) -> SentenceEmbedder:
        encoder, tokenizer = load_encoder(folder)
        return cls(encoder, tokenizer, max_length, batch_size)

    def to(self, device: torch.device | str) -> SentenceEmbedder:
        if self.runtime == TORCH:
            self.encoder.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.encoder.parameters()).device if self.runtime == TORCH else torch.device("cpu")

    @property
    def quantized(self) -> bool:
        """Whether the encoder runs in int8 (``torch-int8`` or ``onnx-int8``)."""
        return self.runtime in INT8_RUNTIMES

    def calibrate(self, texts: Sequence[str]) -> SentenceEmbedder:
        """Record the input ranges of the layers that go to int8 (see ``inference.encoder``)."""
        if self.runtime != TORCH:
            raise ValueError("calibrate the fp32 torch encoder, before quantizing it or changing its runtime")
        self.activation_ranges = record_activation_ranges(self.encoder, lambda: self.embed(texts))
        return self

    def quantize(self) -> SentenceEmbedder:
        return self.use_runtime(TORCH_INT8)

    def use_runtime(self, runtime: str, folder: str | Path | None = None) -> SentenceEmbedder:
        """Run the encoder on ``runtime`` from now on (in place, from fp32 torch; returns self);
        the ONNX runtimes export the model saved in ``folder`` (see ``inference.onnx_encoder``)."""
        runtime = choose_runtime(runtime)
        if runtime == self.runtime:
            return self
        if self.runtime != TORCH:
            raise ValueError(f"change the runtime of the fp32 torch encoder, not of one on {self.runtime}")
        if runtime == TORCH_INT8:
            self.encoder = quantize_dynamic(self.encoder, self.activation_ranges)
        elif runtime in ONNX_RUNTIMES:
            if folder is None:
                raise ValueError(f"the {runtime} runtime exports a saved model: give the folder it was saved in")
            from inference.onnx_encoder import BATCH_SIZE, load_onnx_encoder

            self.encoder = load_onnx_encoder(
                self.encoder.to("cpu"), self.tokenizer, folder, runtime, self.activation_ranges
            )
            self.batch_size = min(self.batch_size, BATCH_SIZE)
        self.runtime = runtime
        return self

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """n x H float32 embeddings, unit length."""
        out = np.zeros((len(texts), self.encoder.config.hidden_size), dtype=np.float32)
        if not len(texts):
            return out
        with torch.inference_mode():
            for idx, items in iterate_batches(tokenize(self.tokenizer, texts, self.max_length), self.batch_size):
                batch = pad(items, self.tokenizer.pad_token_id, self.device)
                pooled = mean_pool(self.encoder(**batch).last_hidden_state, batch["attention_mask"])
                out[idx] = torch.nn.functional.normalize(pooled, dim=-1).float().cpu().numpy()
        return out


def as_features(embeddings: np.ndarray) -> sp.csr_matrix:
    """Embeddings in the sparse form the TF-IDF heads (and their topic crossing) take."""
    return sp.csr_matrix(embeddings.astype(np.float64))


class EmbedTopicStance:
    """Frozen embeddings + linear heads; ``predict_scores`` as every family."""

    def __init__(self, embedder: SentenceEmbedder, topic_heads: list, stance_heads, n_stance_classes: int):
        self.embedder = embedder
        self.topic_heads_ = topic_heads
        self.stance_heads_ = stance_heads
        self.n_topics_ = len(topic_heads)
        self.n_stance_classes = n_stance_classes

    def predict_scores(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        X = as_features(self.embedder.embed(list(texts)))
        return (
            topic_scores(self.topic_heads_, X),
            stance_scores(self.stance_heads_, X, self.n_topics_, self.n_stance_classes),
        )

    def token_shares(self, normalized: Sequence[str]) -> list[tuple[list[tuple[int, int]], np.ndarray]]:
        """Per (already normalised) text, each token's character offsets and its share of the
        features (L x H): the embedding is the mean of the token states scaled to unit length,
        so each token carries its state / (length x norm), and the shares add up to it."""
        embedder = self.embedder
        items, offsets = tokenize_with_offsets(embedder.tokenizer, normalized, embedder.max_length)
        states = last_hidden_states(
            embedder.encoder, items, embedder.tokenizer.pad_token_id, embedder.device, embedder.batch_size
        )
        out = []
        for state, offset in zip(states, offsets, strict=True):
            state = state.numpy().astype(np.float64)
            norm = max(float(np.linalg.norm(state.mean(axis=0))), 1e-12)
            out.append((offset, state / (len(state) * norm)))
        return out

    def word_attributions(self, texts: Sequence[str]) -> list:
        """Each word's contribution to the logits: its tokens' shares of the embedding times
        the heads' weights (see :meth:`token_shares`)."""
        from inference.explain import WordAttribution, split_words, tokens_to_words

        hidden = self.embedder.encoder.config.hidden_size
        weights = stacked_weights(
            *head_coefficients(self.topic_heads_, self.stance_heads_, self.n_stance_classes, hidden)
        )
        words = [split_words(t) for t in texts]
        out = []
        for paragraph, (offsets, shares) in zip(words, self.token_shares([w.normalized for w in words]), strict=True):
            per_word = tokens_to_words(paragraph, offsets).T @ shares  # W x H
            out.append(
                WordAttribution(
                    paragraph, *linear_attributions(per_word, weights, self.n_topics_, self.n_stance_classes)
                )
            )
        return out

    @property
    def quantized(self) -> bool:
        return self.embedder.quantized

    @property
    def runtime(self) -> str:
        return self.embedder.runtime

    def quantize(self) -> EmbedTopicStance:
        """Dynamic int8 encoder on CPU (in place); returns self."""
        self.embedder.quantize()
        return self

    def save_pretrained(self, folder: str | Path) -> None:
        if self.embedder.runtime != TORCH:
            raise ValueError(
                f"a model on the {self.runtime} runtime is not saved; save the fp32 model, choose runtimes at load time"
            )
        folder = Path(folder)
        self.embedder.encoder.save_pretrained(folder)
        self.embedder.tokenizer.save_pretrained(folder)
        save_activation_ranges(folder, self.embedder.activation_ranges)
        joblib.dump({"topic_heads": self.topic_heads_, "stance_heads": self.stance_heads_}, folder / HEADS_FILE)
        settings = {
            "max_length": self.embedder.max_length,
            "batch_size": self.embedder.batch_size,
            "n_stance_classes": self.n_stance_classes,
            "pooling": "mean",
            "normalize": True,
        }
        (folder / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def from_pretrained(cls, folder: str | Path, runtime: str = TORCH) -> EmbedTopicStance:
        """Load a folder written by :meth:`save_pretrained`, its encoder on ``runtime``
        (``torch``, ``torch-int8``, ``onnx`` or ``onnx-int8``)."""
        folder = Path(folder)
        settings = json.loads((folder / SETTINGS_FILE).read_text(encoding="utf-8"))
        embedder = SentenceEmbedder.from_folder(folder, settings["max_length"], settings["batch_size"])
        embedder.activation_ranges = load_activation_ranges(folder)
        embedder.use_runtime(runtime, folder)
        heads = joblib.load(folder / HEADS_FILE)
        return cls(embedder, heads["topic_heads"], heads["stance_heads"], settings["n_stance_classes"])
