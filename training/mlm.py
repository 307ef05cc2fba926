"""Continued masked-LM pretraining of an encoder on a corpus (domain-adaptive pretraining).

``training.adapt`` runs it on a user's unlabelled paragraphs before fine-tuning, so the
encoder has seen the corpus's vocabulary and style (Gururangan et al. 2020, "Don't stop
pretraining"). The result is a plain encoder folder (weights, config, tokenizer), which the
transformer and embed families take as their ``base_model`` like any other.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from inference.encoder import length_sorted_batches, pick_device, tokenize
from labels.errors import UserError
from training import tracking

logger = logging.getLogger(__name__)

# Paragraphs tokenised at a time: their token ids are kept as small arrays, not Python lists
# (a list of ints costs ~36 bytes a token; 100,000 paragraphs of ~60 tokens would be ~600 MB).
TOKENIZE_CHUNK = 4096


@dataclass(frozen=True)
class MlmSettings:
    epochs: int = 1
    lr: float = 5e-5
    batch_size: int = 16
    max_length: int = 128
    probability: float = 0.15
    seed: int = 13
    device: str = "auto"
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06


def _token_ids(tokenizer, texts: Sequence[str], max_length: int) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for start in range(0, len(texts), TOKENIZE_CHUNK):
        items = tokenize(tokenizer, texts[start : start + TOKENIZE_CHUNK], max_length)
        out.extend(np.asarray(item["input_ids"], dtype=np.int32) for item in items)
    return out


def continue_pretraining(
    base_folder: str | Path,
    texts: Sequence[str],
    out_folder: str | Path,
    settings: MlmSettings,
    show_progress: bool = False,
) -> dict[str, float]:
    """Masked-LM training of the encoder in ``base_folder`` on ``texts``; the encoder and its
    tokenizer are written to ``out_folder`` (through a temporary folder, renamed at the end).

    Paragraphs are normalised and tokenised as the families tokenise them, batched by
    similar length, masked by ``DataCollatorForLanguageModeling`` and trained with AdamW and
    a linear schedule; the loss curve goes to the active run. Returns steps, seconds, the
    last smoothed loss and how many weights of the LM head were freshly initialised.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import (
        AutoModelForMaskedLM,
        AutoTokenizer,
        DataCollatorForLanguageModeling,
        get_linear_schedule_with_warmup,
    )
    from transformers.utils import logging as hf_logging

    start = time.perf_counter()
    torch.manual_seed(settings.seed)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # a bar per load and per save is noise next to ours
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(base_folder), local_files_only=True)
        model, info = AutoModelForMaskedLM.from_pretrained(
            str(base_folder), local_files_only=True, output_loading_info=True
        )
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot load a masked-LM model from {base_folder}: {str(exc).splitlines()[0]}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    if tokenizer.mask_token is None:
        raise UserError(f"the tokenizer in {base_folder} has no mask token, so it cannot do masked-LM training")
    fresh = [k for k in info.get("missing_keys", []) if not k.startswith(model.base_model_prefix + ".")]
    if fresh:
        # A sentence-transformers package ships the encoder alone: the LM head's transform
        # starts from scratch (the output projection is tied to the word embeddings).
        logger.info(
            "mlm: %s ships only the encoder, so %d weights of the LM head start freshly initialised (expected)",
            base_folder,
            len(fresh),
        )
    device = pick_device(settings.device)
    model.to(device).train()

    ids = _token_ids(tokenizer, texts, settings.max_length)
    collator = DataCollatorForLanguageModeling(
        tokenizer, mlm=True, mlm_probability=settings.probability, return_tensors="pt", seed=settings.seed
    )
    rng = np.random.default_rng(settings.seed)
    steps_per_epoch = -(-len(ids) // settings.batch_size)
    total = settings.epochs * steps_per_epoch
    no_decay = ("bias", "LayerNorm.weight", "norm.weight")
    groups = [
        {
            "params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
            "weight_decay": settings.weight_decay,
        },
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=settings.lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(settings.warmup_ratio * total), total)
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    step, running = 0, None
    bar = tqdm(total=total, desc="mlm", unit="step", disable=not show_progress, dynamic_ncols=True, mininterval=1.0)
    for _ in range(settings.epochs):
        for idx in length_sorted_batches([len(i) for i in ids], settings.batch_size, rng):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "a fast tokenizer's __call__ is faster than pad"
                batch = collator([{"input_ids": ids[i].tolist()} for i in idx])
            batch = {k: v.to(device) for k, v in batch.items()}
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                loss = model(**batch).loss
            loss.float().backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            value = float(loss.detach())
            running = value if running is None else 0.9 * running + 0.1 * value
            bar.set_postfix(loss=f"{running:.3f}", refresh=False)
            bar.update()
            if step % 10 == 0 or step == total:
                tracking.log_metrics({"mlm_loss": running}, step=step)
    bar.close()

    out_folder = Path(out_folder)
    tmp = out_folder.with_name(out_folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.base_model.to("cpu").save_pretrained(tmp)  # the encoder alone, as a base model folder
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(out_folder, ignore_errors=True)
    tmp.rename(out_folder)
    return {
        "mlm_steps": float(step),
        "mlm_loss": float(running) if running is not None else float("nan"),
        "mlm_seconds": time.perf_counter() - start,
        "mlm_fresh_head_weights": float(len(fresh)),
    }
