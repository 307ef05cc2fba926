"""The fine-tuned transformer family: one encoder, a multi-label topic head and a stance head
conditioned on the topic.

Two stance designs share the encoder and the topic head (mean-pooled paragraph encoding):

- ``per_topic``: one forward pass per paragraph; the stance head maps the pooled encoding
  to a 3-way distribution for every topic at once (T x S logits).
- ``attention``: one forward pass; each topic has a learned query that pools the token
  states it attends to (label-wise attention), and that topic's 3-way head reads its own
  pooling, so the stance of a multi-topic paragraph is read from the words about that topic.
- ``pair``: as in the stance-detection literature, the stance of a paragraph toward a
  topic is read from ``proposition [SEP] paragraph``, with the topic's proposition taken
  from the label schema; one 3-way head shared by all topics, T extra passes per paragraph.

A saved model is a folder: the encoder written by ``save_pretrained`` (its config carries
``id2label`` = the topic ids), the tokenizer, ``heads.safetensors`` and ``heads.json``.
The estimator lives here, not in ``training``, so a saved model loads without it. It is
saved as fp32 torch and loaded on any runtime (``from_pretrained(folder, runtime=...)``, see
``inference.model_io``): the encoder then runs in torch int8 or in ONNX Runtime, the heads in torch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

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
from inference.families import TRANSFORMER_DESIGNS
from inference.model_io import INT8_RUNTIMES, ONNX_RUNTIMES, TORCH, TORCH_INT8, ModelLoadError, choose_runtime

WEIGHTS = "transformer"  # ModelMeta.weights for this family
DESIGNS = TRANSFORMER_DESIGNS
HEADS_FILE = "heads.safetensors"
HEADS_CONFIG = "heads.json"


class TopicStanceNet(nn.Module):
    """Encoder + topic head + stance head (T x S outputs for ``per_topic`` and ``attention``,
    S for ``pair``); ``attention`` adds one query vector per topic."""

    def __init__(self, encoder: nn.Module, n_topics: int, n_stances: int, design: str, dropout: float = 0.1):
        super().__init__()
        if design not in DESIGNS:
            raise ValueError(f"unknown stance design {design!r}; expected one of {', '.join(DESIGNS)}")
        self.encoder = encoder
        self.design = design
        self.n_topics, self.n_stances = n_topics, n_stances
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.topic_head = nn.Linear(hidden, n_topics)
        self.stance_head = nn.Linear(hidden, n_stances if design == "pair" else n_topics * n_stances)
        if design == "attention":
            self.stance_query = nn.Parameter(torch.randn(n_topics, hidden) * encoder.config.initializer_range)

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean-pooled last hidden states (n x H)."""
        return self.forward(batch)[0]

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The mean-pooled encoding (n x H) and, for ``attention``, each topic's pooling (n x T x H)."""
        hidden = self.encoder(**batch).last_hidden_state
        pooled = self.dropout(mean_pool(hidden, batch["attention_mask"]))
        if self.design != "attention":
            return pooled, None
        weights = self.attention_weights(hidden, batch["attention_mask"])
        return pooled, self.dropout(torch.einsum("ntl,nlh->nth", weights, hidden))

    def attention_weights(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``attention``: each topic's weights over the tokens (n x T x L; 0 on padding)."""
        scores = torch.einsum("nlh,th->ntl", hidden, self.stance_query.to(hidden.dtype)) / hidden.shape[-1] ** 0.5
        padding = mask[:, None, :] == 0
        return torch.softmax(scores.masked_fill(padding, torch.finfo(scores.dtype).min), dim=-1)

    def topic_logits(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.topic_head(pooled)

    def stance_logits(self, pooled: torch.Tensor) -> torch.Tensor:
        """``per_topic``: n x T x S from paragraph encodings (n x H); ``attention``: n x T x S
        from each topic's pooling (n x T x H), topic t read by its own rows of the head;
        ``pair``: n x S from pair encodings."""
        if self.design == "pair":
            return self.stance_head(pooled)
        if self.design == "per_topic":
            return self.stance_head(pooled).view(-1, self.n_topics, self.n_stances)
        if pooled.dim() != 3 or pooled.shape[1] != self.n_topics:
            raise ValueError(f"the attention design reads one pooling per topic (n x {self.n_topics} x H)")
        weight = self.stance_head.weight.view(self.n_topics, self.n_stances, -1)
        bias = self.stance_head.bias.view(self.n_topics, self.n_stances)
        return torch.einsum("nth,tsh->nts", pooled, weight.to(pooled.dtype)) + bias.to(pooled.dtype)

    def paragraph_logits(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Topic logits (n x T) and, for the one-pass designs, stance logits (n x T x S)."""
        pooled, per_topic = self.forward(batch)
        return self._heads(pooled, per_topic)

    def _heads(self, pooled: torch.Tensor, per_topic: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        stance_input = per_topic if self.design == "attention" else pooled
        stance = None if self.design == "pair" else self.stance_logits(stance_input)
        return self.topic_logits(pooled), stance

    def paragraph_outputs(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """``paragraph_logits`` and the vectors the heads read (n x F x H): the mean pooling,
        then for ``attention`` each topic's pooling (F = 1 + T; F = 1 for the other designs)."""
        pooled, per_topic = self.forward(batch)
        features = pooled[:, None, :] if per_topic is None else torch.cat([pooled[:, None, :], per_topic], dim=1)
        return *self._heads(pooled, per_topic), features

    def head_state(self) -> dict[str, torch.Tensor]:
        state = {
            f"{name}.{key}": value.detach().to("cpu").contiguous()
            for name in ("topic_head", "stance_head")
            for key, value in getattr(self, name).state_dict().items()
        }
        if self.design == "attention":
            state["stance_query"] = self.stance_query.detach().to("cpu").contiguous()
        return state


class TransformerTopicStance:
    """A fine-tuned encoder as a scoring model: ``predict_scores`` gives topic probabilities
    (n x T) and stance probabilities for every topic (n x T x S)."""

    def __init__(
        self,
        net: TopicStanceNet,
        tokenizer,
        topic_ids: Sequence[str],
        propositions: Sequence[str],
        max_length: int = 128,
        batch_size: int = 64,
        base_model: str = "",
    ):
        self.net = net
        self.tokenizer = tokenizer
        self.topic_ids = list(topic_ids)
        self.propositions = list(propositions)
        self.max_length = max_length
        self.batch_size = batch_size
        self.base_model = base_model
        self.runtime = TORCH  # where the encoder runs; see use_runtime()
        self.activation_ranges: dict[str, torch.Tensor] | None = None  # see calibrate()

    @classmethod
    def from_base(
        cls,
        folder: str | Path,
        topic_ids: Sequence[str],
        propositions: Sequence[str],
        n_stances: int,
        design: str,
        dropout: float = 0.1,
        max_length: int = 128,
        batch_size: int = 64,
    ) -> TransformerTopicStance:
        """A new model on a pretrained encoder, with freshly initialised heads."""
        encoder, tokenizer = load_encoder(folder)
        net = TopicStanceNet(encoder, len(topic_ids), n_stances, design, dropout)
        return cls(net, tokenizer, topic_ids, propositions, max_length, batch_size, base_model=str(folder))

    @property
    def design(self) -> str:
        return self.net.design

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device if self.runtime == TORCH else torch.device("cpu")

    @property
    def quantized(self) -> bool:
        """Whether the encoder runs in int8 (``torch-int8`` or ``onnx-int8``)."""
        return self.runtime in INT8_RUNTIMES

    # -- tokenising ---------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> list[dict[str, list[int]]]:
        return tokenize(self.tokenizer, texts, self.max_length)

    def tokenize_pairs(self, texts: Sequence[str], topics: Sequence[int]) -> list[dict[str, list[int]]]:
        """``proposition(topic) [SEP] text`` for each (text, topic index)."""
        return tokenize(self.tokenizer, texts, self.max_length, first=[self.propositions[t] for t in topics])

    def collate(self, items: Sequence[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        return pad(items, self.tokenizer.pad_token_id, self.device)

    # -- scoring ------------------------------------------------------------------------
    def predict_scores(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Topic probabilities (n x T) and stance probabilities for every topic (n x T x S)."""
        texts = list(texts)
        n, n_topics, n_stances = len(texts), self.net.n_topics, self.net.n_stances
        topic_probs = np.zeros((n, n_topics), dtype=np.float32)
        stance_probs = np.zeros((n, n_topics, n_stances), dtype=np.float32)
        if n == 0:
            return topic_probs, stance_probs
        self.net.eval()
        with torch.inference_mode():
            for idx, items in iterate_batches(self.tokenize(texts), self.batch_size):
                topic_logits, stance_logits = self.net.paragraph_logits(self.collate(items))
                topic_probs[idx] = torch.sigmoid(topic_logits).float().cpu().numpy()
                if stance_logits is not None:
                    stance_probs[idx] = torch.softmax(stance_logits, -1).float().cpu().numpy()
            if self.design == "pair":
                rows = np.repeat(np.arange(n), n_topics)
                topics = np.tile(np.arange(n_topics), n)
                pairs = self.tokenize_pairs([texts[i] for i in rows], topics)
                for idx, items in iterate_batches(pairs, self.batch_size):
                    logits = self.net.stance_logits(self.net.encode(self.collate(items)))
                    stance_probs[rows[idx], topics[idx]] = torch.softmax(logits, -1).float().cpu().numpy()
        return topic_probs.astype(np.float64), stance_probs.astype(np.float64)

    def features(self, texts: Sequence[str]) -> np.ndarray:
        """The vectors the heads read for each text (n x F x H, see ``paragraph_outputs``),
        float16: a teacher's representation for a student to match in distillation."""
        texts = list(texts)
        width = 1 + self.net.n_topics if self.design == "attention" else 1
        out = np.zeros((len(texts), width, self.net.encoder.config.hidden_size), dtype=np.float16)
        self.net.eval()
        with torch.inference_mode():
            for idx, items in iterate_batches(self.tokenize(texts), self.batch_size):
                out[idx] = self.net.paragraph_outputs(self.collate(items))[2].float().cpu().numpy()
        return out

    # -- evidence (allystance predict --explain) ----------------------------------------
    def token_contributions(self, normalized: Sequence[str]) -> list[dict]:
        """Per (already normalised) text, each token's additive share of the logits, so that
        the shares plus the heads' biases are the logits: ``topic`` (T x L), ``stance``
        (T x S x L, or for the pair design T x S x L_t, one pass per topic), and each token's
        character ``offsets`` (empty for special tokens and the proposition of a pair)."""
        net = self.net.eval()
        n_topics, n_stances = net.n_topics, net.n_stances
        pad_id = self.tokenizer.pad_token_id
        items, offsets = tokenize_with_offsets(self.tokenizer, normalized, self.max_length)
        states = last_hidden_states(net.encoder, items, pad_id, self.device, self.batch_size)
        topic_w = net.topic_head.weight.detach().float().cpu()  # T x H
        stance_w = net.stance_head.weight.detach().float().cpu()
        out = []
        for state, offset in zip(states, offsets, strict=True):
            part = {"offsets": offset, "topic": ((state @ topic_w.T) / len(state)).T}  # T x L
            if self.design != "pair":
                per_token = torch.einsum("lh,tsh->tsl", state, stance_w.view(n_topics, n_stances, -1))
                if self.design == "attention":  # the head reads each topic's attention-weighted sum
                    query = net.stance_query.detach().float().cpu()
                    weights = torch.softmax((state @ query.T) / state.shape[-1] ** 0.5, dim=0).T  # T x L
                    part["stance"] = per_token * weights[:, None, :]
                else:
                    part["stance"] = per_token / len(state)
            out.append(part)
        if self.design == "pair":
            for t in range(n_topics):
                first = [self.propositions[t]] * len(normalized)
                pair_items, pair_offsets = tokenize_with_offsets(self.tokenizer, normalized, self.max_length, first)
                pair_states = last_hidden_states(net.encoder, pair_items, pad_id, self.device, self.batch_size)
                for part, state, offset in zip(out, pair_states, pair_offsets, strict=True):
                    part.setdefault("pair", []).append((offset, ((state @ stance_w.T) / len(state)).T))  # S x L_t
        return out

    def word_attributions(self, texts: Sequence[str]) -> list:
        """Each word's contribution to the logits (see ``inference.explain``): topic logits read
        the mean of the token states, so each token gives its state / length times the topic
        head; the attention design's stance head reads each topic's attention-weighted sum, so
        each token gives its attention weight times its state times that topic's head (the
        per-topic design: state / length; pair: the same over the paragraph's tokens of the
        proposition-paragraph pair). Sub-word tokens add up to words."""
        from inference.explain import WordAttribution, split_words, tokens_to_words

        words = [split_words(t) for t in texts]
        out = []
        for paragraph, part in zip(words, self.token_contributions([w.normalized for w in words]), strict=True):
            to_words = torch.from_numpy(tokens_to_words(paragraph, part["offsets"])).float()  # L x W
            topic = part["topic"] @ to_words
            if "pair" in part:
                stance = torch.stack(
                    [s @ torch.from_numpy(tokens_to_words(paragraph, o)).float() for o, s in part["pair"]]
                )
            else:
                stance = part["stance"] @ to_words
            out.append(WordAttribution(paragraph, topic.double().numpy(), stance.double().numpy()))
        return out

    # -- int8 and other runtimes -------------------------------------------------------------
    def calibrate(self, texts: Sequence[str]) -> TransformerTopicStance:
        """Record the input ranges of the layers that go to int8 over ``texts`` (a sample of
        training paragraphs); saved with the model, they let the int8 runtimes smooth them."""
        if self.runtime != TORCH:
            raise ValueError("calibrate the fp32 torch model, before quantizing it or changing its runtime")
        self.activation_ranges = record_activation_ranges(self.net, lambda: self.predict_scores(texts))
        return self

    def quantize(self) -> TransformerTopicStance:
        """Switch to dynamic int8 ``Linear`` layers on CPU (in place); returns self."""
        return self.use_runtime(TORCH_INT8)

    def use_runtime(self, runtime: str, folder: str | Path | None = None) -> TransformerTopicStance:
        """Run the encoder on ``runtime`` from now on (in place, from fp32 torch; returns self):
        ``torch-int8`` quantizes the torch layers, ``onnx`` and ``onnx-int8`` put an ONNX
        Runtime session in the encoder's place, exported from the model saved in ``folder``
        (the export is cached by that folder's content; see ``inference.onnx_encoder``)."""
        runtime = choose_runtime(runtime)
        if runtime == self.runtime:
            return self
        if self.runtime != TORCH:
            raise ValueError(f"change the runtime of the fp32 torch model, not of one on {self.runtime}")
        if runtime == TORCH_INT8:
            self.net = quantize_dynamic(self.net, self.activation_ranges)
        elif runtime in ONNX_RUNTIMES:
            if folder is None:
                raise ValueError(f"the {runtime} runtime exports a saved model: give the folder it was saved in")
            from inference.onnx_encoder import BATCH_SIZE, load_onnx_encoder

            ranges = self.activation_ranges  # recorded on the whole net: keys start with its "encoder."
            inside = {k.removeprefix("encoder."): v for k, v in ranges.items()} if ranges else None
            self.net = self.net.to("cpu").eval()
            self.net.encoder = load_onnx_encoder(self.net.encoder, self.tokenizer, folder, runtime, inside)
            self.batch_size = min(self.batch_size, BATCH_SIZE)
        self.runtime = runtime
        return self

    def save_pretrained(self, folder: str | Path) -> None:
        """Encoder (with ``id2label``), tokenizer and heads, in ``folder``."""
        from safetensors.torch import save_file

        if self.runtime != TORCH:
            raise ValueError(
                f"a model on the {self.runtime} runtime is not saved; save the fp32 model, choose runtimes at load time"
            )
        folder = Path(folder)
        encoder = self.net.encoder
        encoder.config.id2label = dict(enumerate(self.topic_ids))
        encoder.config.label2id = {t: i for i, t in enumerate(self.topic_ids)}
        encoder.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        save_file(self.net.head_state(), str(folder / HEADS_FILE))
        save_activation_ranges(folder, self.activation_ranges)
        settings = {
            "design": self.design,
            "n_topics": self.net.n_topics,
            "n_stances": self.net.n_stances,
            "topic_ids": self.topic_ids,
            "propositions": self.propositions,
            "max_length": self.max_length,
            "batch_size": self.batch_size,
            "base_model": self.base_model,
            "pooling": "mean",
        }
        (folder / HEADS_CONFIG).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def from_pretrained(cls, folder: str | Path, runtime: str = TORCH) -> TransformerTopicStance:
        """Load a folder written by :meth:`save_pretrained`, its encoder on ``runtime``
        (``torch``, ``torch-int8``, ``onnx`` or ``onnx-int8``; see :meth:`use_runtime`)."""
        from safetensors.torch import load_file

        folder = Path(folder)
        settings = json.loads((folder / HEADS_CONFIG).read_text(encoding="utf-8"))
        encoder, tokenizer = load_encoder(folder)
        net = TopicStanceNet(encoder, settings["n_topics"], settings["n_stances"], settings["design"])
        heads = load_file(str(folder / HEADS_FILE))
        for name in ("topic_head", "stance_head"):
            getattr(net, name).load_state_dict({k.split(".", 1)[1]: v for k, v in heads.items() if k.startswith(name)})
        if settings["design"] == "attention":
            if "stance_query" not in heads:
                raise ModelLoadError(f"{folder}: {HEADS_FILE} has no stance_query for the attention design")
            net.stance_query.data.copy_(heads["stance_query"])
        model = cls(
            net.eval(),
            tokenizer,
            settings["topic_ids"],
            settings["propositions"],
            settings["max_length"],
            settings["batch_size"],
            settings.get("base_model", ""),
        )
        model.activation_ranges = load_activation_ranges(folder)
        return model.use_runtime(runtime, folder)
