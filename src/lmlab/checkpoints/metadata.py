"""Make every checkpoint self-describing, and resumes exact.

Each ``.ckpt`` carries the resolved config, the model's Hugging Face config and head, the tokenizer files
and the W&B run id, so ``evaluate.py ckpt_path=x.ckpt`` needs nothing else, and a resumed run continues
the same W&B run. Every run has this callback, so it also does what exact resumes need beyond Lightning's
own restore: it seeds the random generators from the step (``step_seeds``) and puts the training loader
back at the saved position in the right epoch (``loader_position``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from transformers import PreTrainedTokenizerBase

from lmlab.checkpoints.loader_position import reseat, take_position
from lmlab.checkpoints.step_seeds import derived_seed, seed_generators
from lmlab.models.lora import adapter_meta

CHECKPOINT_KEY = "lmlab"


def tokenizer_files(tokenizer: PreTrainedTokenizerBase) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        return {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}


class RunMetadata(Callback):
    def __init__(self, config: dict[str, Any], head: str, tokenizer: PreTrainedTokenizerBase) -> None:
        self.config = config
        self.head = head
        self.tokenizer_files = tokenizer_files(tokenizer)
        self.wandb_run_id: str | None = None
        self.seed = int(config.get("seed") or 0)
        self._loader_position: tuple[int | None, list[dict[str, Any]]] | None = None

    def on_save_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[CHECKPOINT_KEY] = {
            "config": self.config,
            "head": self.head,
            "model_config": pl_module.model.config.to_dict(),
            "tokenizer_files": self.tokenizer_files,
            "wandb_run_id": self.wandb_run_id,
            # LoRA runs: the state dict holds only the adapters; these are the frozen weights they belong to
            "adapter_base": adapter_meta(pl_module.model),
        }

    def on_load_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if trainer.state.fn == "fit":
            self._loader_position = take_position(checkpoint)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._loader_position is not None:
            reseat(trainer, *self._loader_position)
            self._loader_position = None

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        seed_generators(derived_seed(self.seed, trainer.global_step, batch_idx, trainer.global_rank))
