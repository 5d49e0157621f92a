"""Judge one finished Hydra job: completed with a finite value, or failed with the reason.

A trial fails when it raised (config error, out of memory, ...), returned NaN or inf, or returned
nothing. A job that finished training but did not return ``optimized_metric`` is a config error of the
whole sweep (every trial would do the same): ``returned_metrics`` then lists what train did return.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from lmlab.sweeps.metric import missing_metric_message


@dataclass
class JobOutcome:
    status: str  # "completed" or "failed"
    value: float | None = None
    error: str | None = None
    returned_metrics: list[str] | None = None  # set when train finished without the optimized metric


def describe_error(error: BaseException | Any) -> str:
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {error}".strip()
    return str(error)


def job_dir_of(job_return: JobReturn) -> Path | None:
    output_dir = OmegaConf.select(job_return.hydra_cfg, "hydra.runtime.output_dir", default=None)
    return Path(output_dir) if output_dir else None


def judge(job_return: JobReturn, metric: str | None) -> JobOutcome:
    """The outcome of a job; ``metric`` is ``optimized_metric`` (None: the job only has to finish)."""
    # The public ``return_value`` re-raises a failed job's exception; read the stored value instead.
    value = job_return._return_value
    if job_return.status != JobStatus.COMPLETED:
        return JobOutcome("failed", error=describe_error(value))
    return judge_value(value, metric, job_dir_of(job_return))


def judge_value(value: Any, metric: str | None, job_dir: Path | None) -> JobOutcome:
    if value is None:
        if metric is None:
            return JobOutcome("completed")
        return _without_value(metric, job_dir)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return JobOutcome("failed", error=f"the job returned {value!r}, not a number")
    if not math.isfinite(number):
        return JobOutcome("failed", value=None, error=f"{metric} is {number} (diverged?)")
    return JobOutcome("completed", value=number)


def _without_value(metric: str, job_dir: Path | None) -> JobOutcome:
    summary = read_json(job_dir / "metrics.json") if job_dir else {}
    status = summary.get("status")
    if status == "completed":
        returned = sorted(summary.get("metrics", {}))
        return JobOutcome("failed", error=missing_metric_message(metric, returned), returned_metrics=returned)
    return JobOutcome("failed", error=f"no value for {metric}: the run's status is {status or 'unknown'}")


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
