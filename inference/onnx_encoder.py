"""The ONNX Runtime path of the encoder families: ``--runtime onnx`` and ``--runtime onnx-int8``.

Only the encoder moves (the part that maps ``input_ids`` and ``attention_mask`` to
``last_hidden_state``): :class:`OnnxEncoder` takes the torch encoder's place and answers the
same call, ``encoder(**batch).last_hidden_state``, from an ONNX Runtime session. Tokenising,
the length-sorted batches with dynamic padding, pooling and the heads stay as they are, in
torch, so every family method (scores, explanations) works unchanged on either runtime.

The export happens once per model. ``torch.onnx.export`` writes the fp32 encoder with the
batch and sequence axes dynamic into ``<cache>/onnx/<key>/`` (the cache is
``inference.encoder.model_cache()``, ``~/.cache/allystance`` by default); ``<key>`` hashes the
model folder's content and the torch and onnxruntime versions, so a retrained model, or a new
exporter, exports again and nothing else does. The int8 file is made from a smoothed copy of
the encoder (the same SmoothQuant scales as ``torch-int8``, from the ranges saved with the
model) by ``onnxruntime.quantization.quantize_dynamic``, for the same layers as
``torch-int8`` (``inference.encoder.quantized_layer_names``): int8 weights per output channel,
uint8 activations per batch.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from inference.encoder import (
    folder_sha256,
    full_range_activations,
    model_cache,
    pad,
    quantized_layer_names,
    smooth_layers,
    tokenize,
)
from inference.model_io import ONNX_INT8, ModelLoadError, require_onnxruntime

logger = logging.getLogger(__name__)

OPSET = 17
# Paragraphs per ONNX Runtime call: its CPU kernels run fastest on small length-sorted
# batches (the distilled MiniLM student on onnx-int8, 2 threads, 1,869 test paragraphs:
# 289 paragraphs/s at 16, 283 at 32, 257 at 64, 229 at 128), where torch fp32 is flat (191-193).
BATCH_SIZE = 32
OUTPUT = "last_hidden_state"
# Part of the cache key: raise it when the export or the int8 recipe changes, so that files
# written by an older allystance are not reused.
EXPORT_FORMAT = 1
# The traced example: two texts of different lengths, so the batch has padding and the graph
# keeps the attention mask's path.
SAMPLE_TEXTS = ("A short paragraph.", "A longer paragraph, so that the first one is padded in this batch.")


@dataclass
class EncoderOutput:
    """What the families read from an encoder's output."""

    last_hidden_state: torch.Tensor


class OnnxEncoder(torch.nn.Module):
    """An ONNX Runtime session in the place of a Hugging Face encoder (CPU).

    Called with a padded batch (``input_ids``, ``attention_mask`` and, where the tokenizer
    makes them, ``token_type_ids``), it returns an :class:`EncoderOutput` whose
    ``last_hidden_state`` is a float32 CPU tensor, as the torch encoder's. It is a
    ``torch.nn.Module`` (with no parameters) only so that it can take the encoder's place
    inside the transformer family's ``TopicStanceNet``.
    """

    def __init__(self, path: str | Path, config, threads: int | None = None):
        import onnxruntime as ort

        super().__init__()
        options = ort.SessionOptions()
        # As many threads as torch uses, so that torch.set_num_threads (bench --threads) sets both runtimes.
        options.intra_op_num_threads = threads or torch.get_num_threads()
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.config = config  # the Hugging Face config (hidden_size, id2label), as the torch encoder has
        self.path = Path(path)

    def forward(self, **batch: torch.Tensor) -> EncoderOutput:
        feed = {name: batch[name].cpu().numpy() for name in self.input_names}
        (hidden,) = self.session.run([OUTPUT], feed)
        return EncoderOutput(torch.from_numpy(hidden))


class _LastHiddenState(torch.nn.Module):
    """The encoder with positional inputs and one output, which is what the exporter traces."""

    def __init__(self, encoder: torch.nn.Module, input_names: Sequence[str]):
        super().__init__()
        self.encoder = encoder
        self.input_names = list(input_names)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.encoder(**dict(zip(self.input_names, inputs, strict=True))).last_hidden_state


def export_encoder(encoder: torch.nn.Module, tokenizer, path: str | Path) -> None:
    """Write ``encoder`` (a fp32 Hugging Face encoder; changed: eager attention) to ``path`` as
    ONNX, inputs as the tokenizer makes them, batch and sequence axes dynamic."""
    batch = pad(tokenize(tokenizer, SAMPLE_TEXTS, 64), tokenizer.pad_token_id)
    names = list(batch)
    # Eager attention (the same function as torch's SDPA) exports as plain MatMul and Softmax,
    # with no branch of the SDPA integration traced on the example's shapes.
    encoder.set_attn_implementation("eager")
    module = _LastHiddenState(encoder.to("cpu"), names).eval()  # the exporter restores this mode: eval, no dropout
    with warnings.catch_warnings():
        # The TorchScript-based exporter (dynamo=False) is deprecated, but it is in torch itself;
        # the newer one needs onnxscript as well. The tracer's warnings are about branches on
        # shapes that hold for every batch (the mask is as long as the input).
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            tuple(batch[name] for name in names),
            str(path),
            input_names=names,
            output_names=[OUTPUT],
            dynamic_axes={name: {0: "batch", 1: "sequence"} for name in [*names, OUTPUT]},
            opset_version=OPSET,
            dynamo=False,
        )


def onnx_scope(module_name: str) -> str:
    """The prefix the exporter gives the nodes of a submodule of the exported module:
    ``encoder.encoder.layer.0.output.dense`` -> ``/encoder/encoder/layer.0/output/dense/``."""
    parts: list[str] = []
    for part in module_name.split("."):
        if part.isdigit() and parts:  # a list index stays joined to its list
            parts[-1] += f".{part}"
        else:
            parts.append(part)
    return "/" + "/".join(parts) + "/"


class _DropMessage(logging.Filter):
    """Drops the log records whose message starts with ``start``."""

    def __init__(self, start: str):
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.start)


def quantize_encoder_file(source: str | Path, target: str | Path, layer_names: Sequence[str]) -> None:
    """Quantize the ``MatMul`` of each named ``Linear`` layer (names inside the exported module)
    of the ONNX file ``source`` into ``target``: dynamic int8, weights per output channel."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    wanted = {onnx_scope(name) + "MatMul" for name in layer_names}
    graph = onnx.load(str(source)).graph
    nodes = [node.name for node in graph.node if node.op_type == "MatMul" and node.name in wanted]
    if len(nodes) != len(wanted):  # the exporter named its nodes differently: quantize nothing rather than guess
        found = f"{len(nodes)} of the {len(wanted)}"
        raise ModelLoadError(f"the ONNX export has {found} layers to quantize; use --runtime onnx or torch-int8")
    root = logging.getLogger()
    # quantize_dynamic logs "Please consider to run pre-processing" on the root logger; its
    # pre-processing (symbolic shape inference) fails on this graph and is not needed here.
    quiet = _DropMessage("Please consider to run pre-processing")
    root.addFilter(quiet)
    try:
        quantize_dynamic(
            str(source),
            str(target),
            per_channel=True,
            # 7-bit weights where the CPU's u8 x s8 kernels add pairs in 16 bits (no AVX-512
            # VNNI), as torch-int8 keeps 7-bit activations there (inference.encoder).
            reduce_range=not full_range_activations(),
            weight_type=QuantType.QInt8,
            nodes_to_quantize=nodes,
        )
    finally:
        root.removeFilter(quiet)


def onnx_cache(folder: str | Path) -> Path:
    """Where the ONNX files of the model saved in ``folder`` live: keyed by the folder's
    content and by the versions of the exporter and the runtime."""
    import onnxruntime

    key = f"{folder_sha256(folder)} {EXPORT_FORMAT} torch {torch.__version__} onnxruntime {onnxruntime.__version__}"
    return model_cache() / "onnx" / hashlib.sha256(key.encode()).hexdigest()[:24]


def onnx_file_name(int8: bool) -> str:
    if not int8:
        return "encoder.onnx"
    return "encoder-int8.onnx" if full_range_activations() else "encoder-int8-7bit-weights.onnx"


def load_onnx_encoder(
    encoder: torch.nn.Module,
    tokenizer,
    folder: str | Path,
    runtime: str,
    ranges: dict[str, torch.Tensor] | None = None,
) -> OnnxEncoder:
    """The ONNX Runtime stand-in for ``encoder`` (fp32 torch, loaded from the model ``folder``;
    left unchanged), exported on first use into :func:`onnx_cache` and read from there after.

    For ``onnx-int8`` the layers are smoothed with ``ranges`` (keyed by layer names inside
    ``encoder``, as ``record_activation_ranges`` gives them) before they are quantized.
    """
    require_onnxruntime(runtime)
    int8 = runtime == ONNX_INT8
    target = onnx_cache(folder) / onnx_file_name(int8)
    if not target.is_file():
        logger.warning("exporting the encoder of %s to %s (once; kept in %s)", folder, runtime, target.parent)
        target.parent.mkdir(parents=True, exist_ok=True)
        source = copy.deepcopy(encoder)  # smoothing and the export change it
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            staged = Path(tmp) / target.name
            if int8:
                if ranges:
                    names = smooth_layers(source, ranges)
                else:
                    logger.warning("this model has no recorded activation ranges; int8 agrees less with fp32")
                    names = quantized_layer_names(source)
                export_encoder(source, tokenizer, Path(tmp) / "fp32.onnx")
                # _LastHiddenState holds the encoder as "encoder": node names start one level down.
                quantize_encoder_file(Path(tmp) / "fp32.onnx", staged, [f"encoder.{name}" for name in names])
            else:
                export_encoder(source, tokenizer, staged)
            os.replace(staged, target)  # in one step: another process never reads half a file
    return OnnxEncoder(target, encoder.config)
