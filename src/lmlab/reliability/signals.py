"""Save a checkpoint when the job is told to stop (SIGTERM: what SLURM and Kubernetes send before preemption).

Lightning turns SIGTERM into an exception after the current batch (on every rank); this callback then writes
``checkpoints/sigterm-step<N>.ckpt``, which ``resume=auto`` (or ``ckpt_path=``) continues from. On SLURM,
Lightning itself also requeues the job on the signal given with ``sbatch --signal=SIGUSR1@90``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)


class SaveOnSigterm(Callback):
    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)
        self.saved: Path | None = None

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException) or trainer.state.fn != "fit":
            return
        path = self.dirpath / f"sigterm-step{trainer.global_step:06d}.ckpt"
        trainer.save_checkpoint(path)
        self.saved = path
        log.warning("Received SIGTERM: saved %s; continue with the same command and resume=auto", path)
