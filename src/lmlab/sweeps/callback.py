"""The Hydra callback of every multirun (``hydra.callbacks.sweep`` in conf/hydra/default.yaml).

- Before the first job: the launcher plugin is installed and ``optimized_metric`` is returned by train.
- Each job: its own W&B run (a run left open by the previous job of the same process is finished), and
  ``job.json`` in its folder: status, value, error, start, end and duration, wherever the job ran.
- Sweepers that keep no record of their own (Hydra's basic sweeper: grid search) get the summary of
  ``lmlab.sweeps.summary`` from the job folders: the tables after each job (so a sweep that stops on a
  failed job still has one), then the plots and the W&B copy at the end. The Optuna sweeper of this
  project writes the same summary from its study.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import traceback
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from lmlab.errors import LmlabError
from lmlab.sweeps.checks import check_before_start, user_errors_exit
from lmlab.sweeps.outcome import judge
from lmlab.sweeps.records import JOB_INFO
from lmlab.sweeps.settings import SWEEPER_TARGET
from lmlab.utils.io import atomic_write_json

log = logging.getLogger("lmlab.sweeps")


def _is_multirun(config: DictConfig) -> bool:
    return OmegaConf.select(config, "hydra.mode", default=None) == RunMode.MULTIRUN


def sweeper_writes_summary(config: DictConfig) -> bool:
    return OmegaConf.select(config, "hydra.sweeper._target_", default="") == SWEEPER_TARGET


class SweepCallback(Callback):
    def __init__(self, summary: bool = True) -> None:
        self.summary = summary
        self._started: dict[str, float] = {}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        with user_errors_exit():
            check_before_start(config)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if _is_multirun(config):
            from lmlab.sweeps.wandb_summary import finish_wandb_run

            finish_wandb_run()
            self._started[config.hydra.runtime.output_dir] = time.time()

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if not _is_multirun(config):
            return
        from lmlab.sweeps.wandb_summary import finish_wandb_run

        job_dir = Path(config.hydra.runtime.output_dir)
        metric = config.get("optimized_metric")
        outcome = judge(job_return, metric)
        failed = job_return.status != JobStatus.COMPLETED
        finish_wandb_run(exit_code=1 if outcome.status == "failed" else 0)
        start, end = self._started.pop(str(job_dir), None), time.time()
        info = {
            "job_num": config.hydra.job.num,
            "overrides": list(job_return.overrides or []),
            "status": outcome.status,
            "metric": metric,
            "value": outcome.value,
            "error": outcome.error,
            "start": start,
            "end": end,
            "duration_s": None if start is None else end - start,
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        if failed:
            info["traceback"] = _log_failure(job_return._return_value, config.hydra.job.num)
        elif outcome.error:
            log.error("Job %s: %s", config.hydra.job.num, outcome.error)
        atomic_write_json(job_dir / JOB_INFO, info)
        if self.summary and not sweeper_writes_summary(config):
            self._write_summary(config, plots=False)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.summary and not sweeper_writes_summary(config):
            summary = self._write_summary(config, plots=True)
            if summary is not None:
                from lmlab.sweeps.wandb_summary import log_summary_to_wandb

                log_summary_to_wandb(summary, config)

    def _write_summary(self, config: DictConfig, plots: bool):
        from lmlab.sweeps.metric import infer_direction
        from lmlab.sweeps.naming import sweep_name
        from lmlab.sweeps.records import records_from_job_dirs
        from lmlab.sweeps.summary import write_summary, write_summary_safely

        sweep_dir = Path(config.hydra.sweep.dir)
        metric = config.get("optimized_metric")
        return write_summary_safely(
            lambda: write_summary(
                records_from_job_dirs(sweep_dir, metric),
                sweep_dir,
                name=sweep_name(config.get("experiment_name", "sweep"), sweep_dir),
                metric=metric,
                direction=infer_direction(config),
                plots=plots,
            ),
            sweep_dir,
            final=plots,  # the tables after each job, the plots and the log at the end
        )


def _log_failure(error: Any, job_num: int) -> str | None:
    """Log why a job failed (into its own log file too) and return the traceback for job.json."""
    if not isinstance(error, BaseException):
        log.error("Job %s failed: %s", job_num, error)
        return None
    trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    if isinstance(error, LmlabError):
        log.error("Job %s failed: %s", job_num, error)
    else:
        log.error("Job %s failed:\n%s", job_num, trace)
    return trace
