"""SLURM's requeue: submit with ``#SBATCH --signal=SIGUSR1@90`` and ``#SBATCH --requeue``.

SLURM sends SIGUSR1 90 s before the time limit. ``SaveOnSignal`` stops every rank after the same optimizer
step and saves ``checkpoints/requeue-step<N>.ckpt``; rank 0 then runs ``scontrol requeue <job>``, and the job
goes back to the queue; started again, the same command with ``resume=auto`` continues from that checkpoint.
Lightning's own auto-requeue, which saves inside the signal handler, is switched off
(``SLURMEnvironment(auto_requeue=False)``). ``slurm_requeue=false`` leaves the signal alone (its default
action ends the process).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def trainer_plugins(cfg: DictConfig) -> tuple[dict[str, Any], signal.Signals | None]:
    """Trainer keyword arguments (the configured plugins plus a SLURM environment without Lightning's
    auto-requeue) and the signal lmlab requeues on; nothing when the run is not a SLURM job."""
    from lightning.fabric.plugins.environments import ClusterEnvironment, SLURMEnvironment

    requeue = cfg.get("slurm_requeue", True)  # a bool: lmlab.config.checks
    if not SLURMEnvironment.detect():
        return {}, None
    plugins = [instantiate(p) if isinstance(p, DictConfig) else p for p in cfg.trainer.get("plugins") or []]
    if any(isinstance(p, ClusterEnvironment) for p in plugins):
        log.info("trainer.plugins sets a cluster environment: lmlab's SLURM requeue is off")
        return {}, None
    environment = SLURMEnvironment(auto_requeue=False)
    return {"plugins": [*plugins, environment]}, environment.requeue_signal if requeue else None


def slurm_job_id() -> str | None:
    """The job to requeue: an array task as <array job>_<task>, as scontrol names it."""
    array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array_job}_{task}" if array_job and task else os.environ.get("SLURM_JOB_ID")


def requeue_job() -> bool:
    """``scontrol requeue`` this job; True when SLURM took it. A failure is logged with what to do."""
    job = slurm_job_id()
    manual = "submit the same script again: resume=auto continues from the saved checkpoint"
    if not job:
        log.error("Could not requeue: SLURM_JOB_ID is not set; %s", manual)
        return False
    try:
        result = subprocess.run(
            ["scontrol", "requeue", job], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        log.error("Could not requeue SLURM job %s (scontrol requeue: %s); %s", job, e, manual)
        return False
    if result.returncode != 0:
        log.error(
            "Could not requeue SLURM job %s (scontrol requeue exited with %d: %s); %s",
            job, result.returncode, (result.stderr or result.stdout).strip(), manual,
        )  # fmt: skip
        return False
    log.warning("Requeued SLURM job %s; started again, it continues with resume=auto", job)
    return True
