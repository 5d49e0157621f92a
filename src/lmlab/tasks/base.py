"""What every task module shares: the wrapped Hugging Face model, optimizer and schedule, compile."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
from lightning.pytorch import LightningModule
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lmlab import optim
from lmlab.errors import ConfigError, NonFiniteLossError, config_stage
from lmlab.models.lora import adapter_state, is_adapter, with_frozen_weights

log = logging.getLogger(__name__)


class TaskModule(LightningModule):
    """Base LightningModule around a Hugging Face model, and the contract of a task module with the stages.

    What the training and evaluation stages read from a task class (``task._target_``), with the defaults
    set here, so a task states only what it needs:

    - ``HEAD``: the model head it trains, a key of ``lmlab.models.HEADS`` (no default: every task
      sets it; it also picks the data layout and the exported model class).
    - ``EVALUATION``: what ``evaluate.py`` computes for its models, a key of
      ``lmlab.stages.evaluate.EVALUATORS`` (default None: chosen by the model head).
    - ``check_config(task_cfg)``: raise ConfigError for bad task settings, called before any data work
      (default: nothing to check).
    - ``check_tokenizer(tokenizer)``: raise ConfigError if the tokenizer lacks what the objective needs,
      called before data preparation (default: nothing to check).
    - ``logged_metrics()``: the names of the metrics the module logs, to check ``monitor.metric`` before
      training (default None: unknown, not checked).
    - ``build_optimizer()``: the configured optimizer on the module's parameters; the training stage builds
      one before the Trainer, so that values torch rejects (``optimizer.lr=-1``) fail before training.

    The optimizer, the schedule and ``torch.compile`` are built inside ``lmlab.errors.config_stage``: what
    torch or transformers reject there is a ConfigError naming the config group, not a traceback.

    Args:
        model: the Transformer (its state dict keys are saved under ``model.``).
        tokenizer: the run's tokenizer (special token ids; not saved by Lightning).
        optimizer: a partial optimizer (``_partial_: true`` in config): a torch optimizer (weight decay on >= 2-D
            weights only) or ``lmlab.optim.MuonAdamW``.
        scheduler: a partial of ``lmlab.optim.build_scheduler`` or None for a constant learning rate.
        compile: ``torch.compile`` the model in place (state dict keys stay free of ``_orig_mod.``, so a
            compiled run resumes into an uncompiled one and back); ``true`` or a dict of ``torch.compile``
            options, e.g. ``{mode: max-autotune}``.
        on_nonfinite_loss: ``stop`` (default: save the batch and the weights for debugging, then fail with a
            message naming the step), ``skip`` (skip the batch, at most ``max_skipped_batches`` times), or
            ``off`` (no check: saves one host-device sync per step).
        label_smoothing: of the training loss, in [0, 1) (evaluation losses are unsmoothed); each task
            applies it to its own loss.
    """

    HEAD: ClassVar[str]
    EVALUATION: ClassVar[str | None] = None

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        compile: bool | dict = False,
        on_nonfinite_loss: str = "stop",
        max_skipped_batches: int = 10,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        if on_nonfinite_loss not in ("stop", "skip", "off"):
            raise ConfigError(f"task.on_nonfinite_loss={on_nonfinite_loss!r} must be stop, skip or off")
        self.on_nonfinite_loss, self.max_skipped_batches = on_nonfinite_loss, max_skipped_batches
        self.skipped_batches = 0
        self.model = model
        self.tokenizer = tokenizer
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.compile_model = compile
        self._compiled = False
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"task.label_smoothing={label_smoothing} must be in [0, 1)")
        self.label_smoothing = label_smoothing

    @classmethod
    def check_config(cls, task_cfg: Any) -> None:
        """Raise ConfigError if the task settings are wrong (called before any data work)."""

    @classmethod
    def check_tokenizer(cls, tokenizer: PreTrainedTokenizerBase) -> None:
        """Raise ConfigError if the tokenizer lacks what this objective needs (called before data preparation)."""

    def logged_metrics(self) -> list[str] | None:
        """Names of the metrics this module logs (to check monitor/optimized_metric up front); None = unknown."""
        return None

    def configure_model(self) -> None:
        if self.compile_model and not self._compiled:
            options = dict(self.compile_model) if isinstance(self.compile_model, Mapping) else {}
            with config_stage("compile", "task.compile"):
                self.model.compile(**options)  # in place: parameters and state-dict keys are unchanged
            self._compiled = True

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # LoRA: only what trains; a resume rebuilds the frozen base from model.pretrained
        if is_adapter(self.model):
            checkpoint["state_dict"] = adapter_state(self, checkpoint["state_dict"])

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "state_dict" in checkpoint:  # a sharded (FSDP) checkpoint loads its weights apart, into the model
            checkpoint["state_dict"] = self.complete_state_dict(checkpoint["state_dict"])

    def complete_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A checkpoint's state dict, completed with the frozen base weights when it holds only adapters."""
        return with_frozen_weights(self, state) if is_adapter(self.model) else state

    def build_optimizer(self) -> torch.optim.Optimizer:
        """The configured optimizer over the whole module: the model and any extra head (e.g. an auxiliary LM
        head sharing the model's body); ``lmlab.optim.build_optimizer`` chooses the parameter groups."""
        if self.optimizer_factory is None:
            raise ConfigError("no optimizer configured: set the optimizer group (e.g. optimizer=adamw)")
        trainer = self._trainer
        precision = trainer.precision if trainer is not None else None
        strategy = trainer.strategy if trainer is not None else None
        with config_stage("optimizer"):
            return optim.build_optimizer(self.optimizer_factory, self, precision, strategy)

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = self.build_optimizer()
        if self.scheduler_factory is None:
            return {"optimizer": optimizer}
        # Lightning sets up the training data to count the steps; what it refuses there is a trainer setting
        with config_stage("training", "trainer", kinds=(ValueError, TypeError), library_only=True):
            total_steps = self.trainer.estimated_stepping_batches
        with config_stage("scheduler"):
            scheduler = self.scheduler_factory(optimizer=optimizer, total_steps=total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def checked_loss(self, loss: torch.Tensor, batch: Any) -> torch.Tensor | None:
        """The loss if it is finite; else skip the batch (return None: Lightning skips the optimizer step) or
        save what is needed to debug and raise NonFiniteLossError."""
        if self.on_nonfinite_loss == "off" or bool(torch.isfinite(loss)):
            return loss
        step = self.global_step
        if self.on_nonfinite_loss == "skip" and self.skipped_batches < self.max_skipped_batches:
            self.skipped_batches += 1
            log.warning(
                "Non-finite loss (%s) at step %d: batch skipped (%d so far)",
                loss.item(),
                step,
                self.skipped_batches,
            )
            return None
        where = Path(self.trainer.default_root_dir) / "nonfinite"
        where.mkdir(parents=True, exist_ok=True)
        cpu_batch = (
            {k: v.detach().cpu() if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            if isinstance(batch, dict)
            else batch
        )
        torch.save(
            {"step": step, "loss": loss.item(), "batch": cpu_batch},
            where / f"batch-step{step}-rank{self.global_rank}.pt",
        )
        torch.save(self.state_dict(), where / f"weights-before-step{step}-rank{self.global_rank}.pt")
        raise NonFiniteLossError(
            f"the training loss is {loss.item()} at step {step} (epoch {self.current_epoch}). The batch and the weights "
            f"before this step are saved in {where}. Common causes: a learning rate too high (optimizer.lr), fp16 "
            "overflow (trainer.precision=bf16-mixed), bad data. To skip such batches instead: task.on_nonfinite_loss=skip"
        )

    def should_log_step(self) -> bool:
        """True on the steps the trainer logs, so costly extras (accuracy) run only then.

        Lightning writes a step's logs when the optimizer steps it has taken, this one included, are a
        multiple of ``log_every_n_steps``: ``global_step + 1`` while the step runs (``global_step`` alone is
        one step early, and the value written would be the one computed ``log_every_n_steps - 1`` steps before).
        """
        every = self.trainer.log_every_n_steps if self._trainer is not None else 1
        return (self.global_step + 1) % max(every, 1) == 0

    def log_train(self, name: str, value: torch.Tensor, **kwargs: Any) -> None:
        """``self.log`` a per-step training value on the steps the logger writes and on the last step of an
        epoch or of training (what ``metrics.json`` reports), and only then.

        Values logged on the other steps are never written; each ``self.log`` call costs Lightning about half a
        millisecond of Python (1% of a small model's CPU step, more of a fast GPU step). The progress bar shows
        the value of the last logged step.
        """
        trainer = self._trainer
        last = trainer is None or trainer.is_last_batch or 0 < trainer.max_steps <= self.global_step + 1
        if last or self.should_log_step():
            self.log(name, value, **kwargs)
