"""Make every checkpoint self-describing, and resumes exact.

Each ``.ckpt`` carries the resolved config, the model's Hugging Face config and head, the tokenizer files
and the W&B run id, so ``evaluate.py ckpt_path=x.ckpt`` needs nothing else, and a resumed run continues
the same W&B run. It also carries the random-number-generator states (Lightning does not save them), so
dropout after a resume draws the same numbers as an uninterrupted run.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from transformers import PreTrainedTokenizerBase

CHECKPOINT_KEY = "lmlab"


def tokenizer_files(tokenizer: PreTrainedTokenizerBase) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        return {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}


def collect_rng_states() -> dict[str, Any]:
    """torch (CPU and CUDA), numpy and Python RNG states, as plain types that load with ``weights_only=True``."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "python": [version, list(internal), gauss],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class RunMetadata(Callback):
    def __init__(self, config: dict[str, Any], head: str, tokenizer: PreTrainedTokenizerBase) -> None:
        self.config = config
        self.head = head
        self.tokenizer_files = tokenizer_files(tokenizer)
        self.wandb_run_id: str | None = None
        self._rng_to_restore: dict[str, Any] | None = None

    def on_save_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[CHECKPOINT_KEY] = {
            "config": self.config,
            "head": self.head,
            "model_config": pl_module.model.config.to_dict(),
            "tokenizer_files": self.tokenizer_files,
            "wandb_run_id": self.wandb_run_id,
            "rng_states": collect_rng_states(),
        }

    def on_load_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        meta = checkpoint.get(CHECKPOINT_KEY) or {}
        if meta.get("rng_states") is not None and trainer.world_size == 1:
            # Per-rank states are not stored; with several ranks each keeps its seeded stream instead.
            self._rng_to_restore = meta["rng_states"]

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        # Restored just before the first step after a resume, not at load time: creating the data
        # iterator in between draws from the global generator, which the uninterrupted run did earlier.
        if self._rng_to_restore is not None:
            restore_rng_states(self._rng_to_restore)
            self._rng_to_restore = None
