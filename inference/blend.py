"""The blend family: a weighted average of the scores of two or more trained models.

A fine-tuned encoder and the TF-IDF baseline make different mistakes (one reads phrasing,
the other exact words), so averaging their probabilities, with weights chosen on dev by
``allystance train blend``, is the cheapest way to get the better of both. Topic
probabilities and stance distributions are averaged with separate weights; the blend's own
thresholds are tuned on dev like any family's.

A saved blend is a folder with ``blend.json`` (the weights and where each member came from)
and ``members/0``, ``members/1``, ...: each a complete model folder as ``save_model``
writes it, so every member keeps its own schema check and format. A runtime other than
``torch`` (``from_pretrained(folder, runtime=...)``: torch int8, ONNX, ONNX int8) applies to
the members that have an encoder (the transformer and embed families); the others load as they are.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.model_io import TORCH

WEIGHTS = "blend"  # ModelMeta.weights for this family
BLEND_CONFIG = "blend.json"
MEMBERS_FOLDER = "members"


@dataclass
class BlendedTopicStance:
    """Members' scores averaged: ``topic_weights`` for topic probabilities, ``stance_weights``
    for stance distributions (each sums to 1; a weight of 0 still keeps the member)."""

    members: list  # Predictor, one per member model
    topic_weights: list[float]
    stance_weights: list[float]
    sources: list[str]  # where each member was loaded from (a model URI or folder)

    def __post_init__(self) -> None:
        n = len(self.members)
        if n < 2 or len(self.topic_weights) != n or len(self.stance_weights) != n or len(self.sources) != n:
            raise ValueError("a blend needs two or more members, each with a topic and a stance weight and a source")
        for weights in (self.topic_weights, self.stance_weights):
            if min(weights) < 0 or not np.isclose(sum(weights), 1.0):
                raise ValueError(f"blend weights must be non-negative and sum to 1, got {weights}")

    def predict_scores(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        return combine([m.score(texts) for m in self.members], self.topic_weights, self.stance_weights)

    def word_attributions(self, texts: Sequence[str]) -> list:
        """The members' word contributions, each scaled per topic, weighted as the scores are."""
        from inference.explain import blend_attributions
        from inference.model_io import ModelLoadError

        parts = []
        for member in self.members:
            attribute = getattr(member.model, "word_attributions", None)
            if attribute is None:
                raise ModelLoadError(f"blend member {member.meta.family} cannot explain its labels")
            parts.append(attribute(texts))
        return [
            blend_attributions(per_text, self.topic_weights, self.stance_weights)
            for per_text in zip(*parts, strict=True)
        ]

    def save_pretrained(self, folder: str | Path) -> None:
        from inference.model_io import save_model

        folder = Path(folder)
        for i, member in enumerate(self.members):
            runtime = getattr(member.model, "runtime", TORCH)
            if runtime != TORCH:
                raise ValueError(
                    f"a model on the {runtime} runtime is not saved; save the fp32 model, choose runtimes at load time"
                )
            save_model(folder / MEMBERS_FOLDER / str(i), member.model, member.meta)
        config = {
            "topic_weights": self.topic_weights,
            "stance_weights": self.stance_weights,
            "members": [
                {"folder": f"{MEMBERS_FOLDER}/{i}", "family": m.meta.family, "source": s}
                for i, (m, s) in enumerate(zip(self.members, self.sources, strict=True))
            ],
        }
        (folder / BLEND_CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def from_pretrained(cls, folder: str | Path, runtime: str = TORCH) -> BlendedTopicStance:
        """Load a folder written by :meth:`save_pretrained`; members with an encoder run it on ``runtime``."""
        from inference.model_io import JOBLIB_FILE, RUNTIME_VARIANTS, ModelLoadError, load_model, read_meta

        folder = Path(folder)
        config = json.loads((folder / BLEND_CONFIG).read_text(encoding="utf-8"))
        paths = [folder / m["folder"] for m in config["members"]]
        has_encoder = [read_meta(p).weights != JOBLIB_FILE for p in paths]
        if runtime != TORCH and not any(has_encoder):
            variant = RUNTIME_VARIANTS[runtime]
            raise ModelLoadError(f"{folder}: no member of this blend has a {variant} variant; use --runtime {TORCH}")
        members = [
            load_model(p, runtime=runtime if encoder else TORCH) for p, encoder in zip(paths, has_encoder, strict=True)
        ]
        return cls(members, config["topic_weights"], config["stance_weights"], [m["source"] for m in config["members"]])


def combine(
    scores: Sequence[tuple[np.ndarray, np.ndarray]], topic_weights: Sequence[float], stance_weights: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted averages of several models' (topic probabilities, stance distributions)."""
    topics = sum(w * s[0] for w, s in zip(topic_weights, scores, strict=True))
    stance = sum(w * s[1] for w, s in zip(stance_weights, scores, strict=True))
    return np.asarray(topics, dtype=float), np.asarray(stance, dtype=float)


def grid_units(step: float) -> int:
    """How many steps of ``step`` make 1; a step that does not divide 1 is refused."""
    if not 0 < step <= 0.5 or abs(round(1 / step) * step - 1) > 1e-9:
        raise ValueError(f"weight_step must divide 1 (0.5, 0.25, 0.1, ...), got {step}")
    return round(1 / step)


def weight_grid(n_members: int, step: float) -> list[tuple[float, ...]]:
    """Every weight vector over ``n_members`` on a grid of ``step`` that sums to 1, starting
    with all the weight on the first member."""
    units = grid_units(step)

    def split(total: int, parts: int) -> list[tuple[int, ...]]:
        if parts == 1:
            return [(total,)]
        return [(k, *rest) for k in range(total, -1, -1) for rest in split(total - k, parts - 1)]

    return [tuple(round(k / units, 6) for k in point) for point in split(units, n_members)]
