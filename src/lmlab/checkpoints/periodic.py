"""Checkpoints every N optimizer steps, and a ``last.ckpt`` that holds the state at the end of training.

Lightning's ``ModelCheckpoint(save_last=True)`` refreshes ``last.ckpt`` only together with a periodic save,
and at the end of training only if it never saved before: a 24-step run saving every 10 steps would end
with ``last.ckpt`` at step 20. ``PeriodicCheckpoint`` also writes ``last.ckpt`` when training ends normally
(``max_steps``, ``max_epochs``, early stopping or another ``trainer.should_stop``), unless its last save
already was at the final step; so evaluating ``last.ckpt`` sees the final weights, and resuming a finished
run has nothing left to train. The save goes through ``trainer.save_checkpoint`` like every other: the
trainer's checkpoint plugin (written atomically) and every callback's ``on_save_checkpoint`` (lmlab's
metadata) take part. A run stopped by an exception (a kill, SIGTERM, a failure) ends without it.
"""

from __future__ import annotations

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint


class PeriodicCheckpoint(ModelCheckpoint):
    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # The skip test is Lightning's own: not while fitting, fast_dev_run, or already saved at this step.
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
