"""What every task module shares: the wrapped Hugging Face model, optimizer and schedule, compile."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from lightning.pytorch import LightningModule
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lmlab.errors import ConfigError
from lmlab.optim import param_groups


class TaskModule(LightningModule):
    """Base LightningModule around a Hugging Face model.

    Args:
        model: the Transformer (its state dict keys are saved under ``model.``).
        tokenizer: the run's tokenizer (special token ids; not saved by Lightning).
        optimizer: a partial optimizer (``_partial_: true`` in config); weight decay goes to >= 2-D weights only.
        scheduler: a partial of ``lmlab.optim.build_scheduler`` or None for a constant learning rate.
        compile: ``torch.compile`` the model in place (state dict keys stay free of ``_orig_mod.``).
    """

    HEAD: ClassVar[str]  # the model head it trains (a key of lmlab.models.HEADS)
    EVALUATION: ClassVar[str]  # what evaluate.py computes for its models (a key of lmlab.evaluate.EVALUATORS)

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.compile_model = compile
        self._compiled = False

    def logged_metrics(self) -> list[str] | None:
        """Names of the metrics this module logs (to check monitor/optimized_metric up front); None = unknown."""
        return None

    @classmethod
    def check_tokenizer(cls, tokenizer: PreTrainedTokenizerBase) -> None:
        """Raise ConfigError if the tokenizer lacks what this objective needs (called before data preparation)."""

    def configure_model(self) -> None:
        if self.compile_model and not self._compiled:
            self.model.compile()  # in place: parameters and state-dict keys are unchanged
            self._compiled = True

    def configure_optimizers(self) -> dict[str, Any]:
        if self.optimizer_factory is None:
            raise ConfigError("no optimizer configured: set the optimizer group (e.g. optimizer=adamw)")
        weight_decay = getattr(self.optimizer_factory, "keywords", {}).get("weight_decay", 0.0)
        optimizer = self.optimizer_factory(params=param_groups(self.model, weight_decay))
        if self.scheduler_factory is None:
            return {"optimizer": optimizer}
        scheduler = self.scheduler_factory(
            optimizer=optimizer, total_steps=self.trainer.estimated_stepping_batches
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def should_log_step(self) -> bool:
        """True on the steps the trainer logs, so costly extras (accuracy) run only then."""
        every = self.trainer.log_every_n_steps if self._trainer is not None else 1
        return self.global_step % max(every, 1) == 0
