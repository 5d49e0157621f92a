"""Early stopping that stays stopped when the run is resumed.

Lightning's ``EarlyStopping`` saves why it stopped (``stopping_reason``) in the checkpoint, but a Trainer
resumed from that checkpoint trains on, as if nothing had stopped it. This one tells the resumed Trainer
to stop before its first step, so resuming a finished run (``resume=auto`` after the run ended) trains no
further, as it does after ``max_steps`` or ``max_epochs``.
"""

from __future__ import annotations

import logging
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import EarlyStopping as LightningEarlyStopping
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason

log = logging.getLogger(__name__)


class EarlyStopping(LightningEarlyStopping):
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        # load_state_dict gets no Trainer; setup runs before any restore (also under FSDP and DeepSpeed, which
        # restore callbacks after on_fit_start)
        self._trainer = trainer

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        trainer = getattr(self, "_trainer", None)
        if trainer is not None and self.stopping_reason is not EarlyStoppingReason.NOT_STOPPED:
            log.info(
                "Early stopping ended this run at epoch %d (%s): nothing left to train",
                self.stopped_epoch, self.stopping_reason_message or self.stopping_reason.name,
            )  # fmt: skip
            trainer.should_stop = True  # read by the fit loop before its first step
