"""What the token-level objectives share (language models, seq2seq): cross-entropy over token positions,
and the evaluation loss, a token-weighted mean per stage logged with its perplexity.

A mean of per-batch means would weight a short last batch like a full one; weighting each batch's loss by
its number of scored tokens gives the exact mean over the split, synced across DDP ranks when computed
(each token counted once).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric

from lmlab.metrics.perplexity import perplexity
from lmlab.tasks.base import TaskModule

EVAL_STAGES = ("val", "test")


def token_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Mean cross-entropy (in float32) of ``(batch, length, vocab)`` logits over the targets that are not -100."""
    return F.cross_entropy(
        logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100, label_smoothing=label_smoothing
    )


class TokenLossModule(TaskModule):
    """A task scored by its token-level loss: logs ``{stage}/loss`` and ``{stage}/ppl`` for val and test.

    A subclass implements ``eval_step`` (adding each batch's loss to ``eval_loss[stage]``, weighted by its
    scored tokens) and may extend ``eval_epoch_end`` with its own metrics.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.eval_loss = torch.nn.ModuleDict({s: MeanMetric() for s in EVAL_STAGES})

    @staticmethod
    def eval_metric_names(*extra: str) -> list[str]:
        """``{stage}/loss``, ``{stage}/ppl`` and ``{stage}/<extra>`` for the evaluation stages."""
        return [f"{s}/{m}" for s in EVAL_STAGES for m in ("loss", "ppl", *extra)]

    def eval_step(self, batch: dict[str, Any], batch_idx: int, stage: str) -> None:
        raise NotImplementedError

    def eval_epoch_end(self, stage: str) -> None:
        """Log the stage's mean loss and perplexity, and start the next evaluation afresh."""
        loss = self.eval_loss[stage].compute()
        self.eval_loss[stage].reset()
        self.log_dict({f"{stage}/loss": loss, f"{stage}/ppl": perplexity(loss)}, prog_bar=stage == "val")

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self.eval_step(batch, batch_idx, "val")

    def on_validation_epoch_end(self) -> None:
        self.eval_epoch_end("val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self.eval_step(batch, batch_idx, "test")

    def on_test_epoch_end(self) -> None:
        self.eval_epoch_end("test")
