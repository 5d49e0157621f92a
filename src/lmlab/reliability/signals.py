"""Stop at an optimizer step on a stop signal, save a checkpoint there, and on SLURM requeue the job.

- SIGTERM (what SLURM, Kubernetes and ``kill`` send before they stop a job): save
  ``checkpoints/sigterm-step<N>.ckpt`` and exit with 143.
- SLURM's requeue signal (``sbatch --signal=SIGUSR1@90 --requeue``; only when the run is a SLURM job): save
  ``checkpoints/requeue-step<N>.ckpt``, then requeue the job (``lmlab.reliability.slurm``); the requeued job
  (the same command with ``resume=auto``) continues from that checkpoint.

Lightning reacts to both on its own, in ways that break an exact resume: it saves the requeue checkpoint
inside the signal handler, wherever in a step the signal lands (Lightning issue #21406; on several
processes a save from a handler can also hang), and it stops on SIGTERM after the current batch even in
the middle of a gradient accumulation, or, in an epoch's last batch, after the epoch's end (a state that its
restart resumes with one batch too many). Here the handlers only set a flag. The decision is taken in
``on_train_batch_end`` of a batch that stepped the optimizer, agreed by all processes (one all-reduce of a
flag per optimizer step when there are several), so every rank stops after the same optimizer step and
before that step's validation: the state of a periodic checkpoint, from which a resumed run continues
exactly. Lightning's SIGTERM flag is taken over at each batch so that its own stop does not come first;
Lightning's requeue handler is switched off (``lmlab.reliability.slurm.trainer_plugins``). The requeue
signal during a validation is acted on after the next optimizer step.

Lightning's own SIGTERM handler also broadcasts a flag from rank 0 (a collective inside a signal handler):
when the signal reaches one rank only (``kill`` of one process, a node's OOM handling), or reaches the ranks
at different points of their collectives, that broadcast pairs with another rank's gradient all-reduce or
barrier, and the job hangs until the process group's timeout. Here the SIGTERM handler only sets a flag
(and, as Lightning's does, passes the signal on to the ranks that Lightning's own launcher started).

On several processes a SIGTERM during a validation is acted on after the next optimizer step, as the requeue
signal is: the ranks cannot agree inside a validation without a collective per batch, which would hang where
ranks hold different numbers of validation batches.

In one process, SIGTERM during a validation (of a fit) stops it at once, as Lightning does, since a long
validation could outlast the grace period before SIGKILL. Lightning would restore that checkpoint as one
saved after the validation and skip the rest of it (the step's validation results, best checkpoint and
early-stopping check lost). The checkpoint's validation progress is therefore rewound to "the validation
begun, no batch done": Lightning's restart path for a checkpoint saved inside a validation then runs the
whole validation again before the next training step, as the uninterrupted run did.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)

VAL_PROGRESS = "epoch_loop.val_loop.batch_progress"  # Lightning's key in the fit loop's state


class SaveOnSignal(Callback):
    def __init__(self, dirpath: str, requeue_signal: signal.Signals | None = None) -> None:
        self.dirpath = Path(dirpath)
        self.requeue_signal = requeue_signal
        self.saved: Path | None = None
        self.requeue = False  # the stop was the requeue signal (on some rank): requeue after the save
        self._sigterm = False  # SIGTERM seen on this rank, not acted on yet
        self._requeue_asked = False  # the requeue signal seen on this rank (set by the handler)
        self._rewind = False  # the checkpoint being saved is a stop inside a validation

    def _on_requeue_signal(self, signum: int, frame: Any) -> None:
        self._requeue_asked = True  # nothing else in a handler: the save happens at the next optimizer step

    def _on_sigterm(self, trainer: Trainer, signum: int, frame: Any) -> None:
        """Lightning's SIGTERM handler without its broadcast (see the module docstring)."""
        connector = trainer._signal_connector
        launcher = trainer.strategy.launcher
        if launcher is not None and not (self._sigterm or connector.received_sigterm):
            launcher.kill(signum)  # the ranks Lightning started itself get the signal too
        if trainer.world_size > 1 and trainer.state.fn == "fit":
            self._sigterm = True  # agreed by all ranks at the next optimizer step (on_train_batch_end)
        else:
            connector.received_sigterm = True  # Lightning's flag: it also stops a validation at once

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # Lightning registers its SIGTERM handler from this attribute after the setup hooks have run
        trainer._signal_connector._sigterm_notifier_fn = partial(self._on_sigterm, trainer)

    @contextmanager
    def listening(self) -> Iterator[None]:
        """The requeue signal's handler, around the whole run: installed before any data loader worker is
        forked (workers inherit it; SLURM signals them too, and the default action would end them)."""
        if self.requeue_signal is None or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(self.requeue_signal, self._on_requeue_signal)
        try:
            yield
        finally:
            signal.signal(self.requeue_signal, previous)

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        # Lightning's SIGTERM flag, taken over (see the module docstring)
        connector = trainer._signal_connector
        if connector.received_sigterm:
            self._sigterm, connector.received_sigterm = True, False
        stepped = (batch_idx + 1) % trainer.accumulate_grad_batches == 0 or trainer.is_last_batch
        if not stepped:
            return
        asked = self._sigterm or self._requeue_asked
        if trainer.world_size > 1:  # every rank stops after the same step, or none does
            asked = trainer.strategy.reduce_boolean_decision(asked, all=False)
        if not asked:
            return
        requeue = self._requeue_asked
        if trainer.world_size > 1:
            requeue = trainer.strategy.reduce_boolean_decision(requeue, all=False)
        self.requeue = requeue
        raise SIGTERMException

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # a SIGTERM that came while validating: act on it after the next optimizer step (see on_train_batch_end)
        connector = trainer._signal_connector
        if trainer.state.fn == "fit" and connector.received_sigterm:
            self._sigterm, connector.received_sigterm = True, False

    on_train_epoch_end = on_validation_end

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict) -> None:
        if self._rewind:  # the stop checkpoint of a SIGTERM during a validation (see the module docstring)
            rewind_validation(checkpoint["loops"]["fit_loop"])

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException) or trainer.state.fn != "fit":
            return
        kind = "requeue" if self.requeue else "sigterm"
        path = self.dirpath / f"{kind}-step{trainer.global_step:06d}.ckpt"
        self._rewind = trainer.validating and not trainer.sanity_checking
        try:
            trainer.save_checkpoint(path)
        finally:
            self._rewind = False
        self.saved = path
        what = "the requeue signal" if self.requeue else "SIGTERM"
        log.warning("Received %s: saved %s; continue with the same command and resume=auto", what, path)


def rewind_validation(fit_loop: dict[str, Any]) -> None:
    """Set the validation progress of a fit loop's state to a validation that has begun its first batch and
    finished none: Lightning's ``RESTARTED_MID_EVALUATION`` stage, from which the restored run validates from
    the first batch on (the batches done before the stop are not counted twice)."""
    progress = fit_loop[VAL_PROGRESS]
    # batches of the earlier validations; "current" counts this one's
    before = progress["total"]["completed"] - progress["current"]["completed"]
    progress["total"] = {"ready": before + 1, "started": before + 1, "processed": before, "completed": before}
    progress["current"] = {"ready": 1, "started": 1, "processed": 0, "completed": 0}
    progress["is_last_batch"] = False
