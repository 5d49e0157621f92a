"""Names that tie the jobs of a sweep together: the W&B group and run name, the Optuna study name.

Registered as OmegaConf resolvers (``lmlab.sweep_group``, ``lmlab.job_run_name``) by ``lmlab.stages.resolvers``, so
``conf/logger/wandb.yaml`` groups single runs by experiment and every job of a multirun by its sweep.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf


def _multirun_hydra() -> Any | None:
    """The Hydra config of the current job when it belongs to a multirun, else None."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode
    except ImportError:
        return None
    if not HydraConfig.initialized():
        return None
    hydra = HydraConfig.get()
    return hydra if hydra.mode == RunMode.MULTIRUN else None


def sweep_name(experiment_name: str, sweep_dir: str | Path, study_name: str | None = None) -> str:
    """``hydra.sweeper.study_name`` if set, else ``<experiment_name>-sweep-<sweep folder name>``."""
    return study_name or f"{experiment_name}-sweep-{Path(str(sweep_dir)).name}"


def sweep_group(experiment_name: str) -> str:
    """The W&B group: the experiment for a single run, the sweep for each job of a multirun."""
    hydra = _multirun_hydra()
    if hydra is None:
        return experiment_name
    study = OmegaConf.select(hydra, "sweeper.study_name", default=None)
    return sweep_name(experiment_name, hydra.sweep.dir, study)


def job_run_name(run_name: str) -> str:
    """The W&B run name: the run name, plus ``-<job number>`` inside a multirun (jobs start together)."""
    hydra = _multirun_hydra()
    num = OmegaConf.select(hydra, "job.num", default=None) if hydra is not None else None
    return run_name if num is None else f"{run_name}-{num}"
