"""The sweep summary in W&B, next to the trials' runs: one ``sweep-summary`` run in the sweep's group.

Best effort: a W&B problem is a warning, never a failed sweep (the files in the sweep folder are the record).
"""

from __future__ import annotations

import logging
import sys

from omegaconf import DictConfig, OmegaConf

from lmlab.config.secrets import masked_argv
from lmlab.sweeps.results import SweepSummary
from lmlab.tracking.wandb import choose_wandb_mode

log = logging.getLogger(__name__)


def wandb_logger_config(config: DictConfig) -> DictConfig | None:
    """``logger.wandb`` when the runs log to W&B (logger=wandb or logger=many), else None."""
    node = OmegaConf.select(config, "logger.wandb", default=None)
    return node if isinstance(node, DictConfig) and "_target_" in node else None


def log_summary_to_wandb(summary: SweepSummary, config: DictConfig) -> str | None:
    """Log the trials table, the best value and parameters and the plots; return the run folder."""
    settings = wandb_logger_config(config)
    if settings is None:
        return None
    try:
        mode = choose_wandb_mode(
            settings.get("mode") or "auto",
            str(summary.sweep_dir),
            float(settings.get("connect_timeout") or 10),
        )
        if mode == "disabled":
            return None
        import wandb

        with masked_argv():  # W&B records the process arguments: secrets masked
            run = wandb.init(
                project=settings.get("project") or "lmlab",
                entity=settings.get("entity"),
                group=summary.name,
                name=f"{summary.name}-summary",
                job_type="sweep-summary",
                dir=str(summary.sweep_dir),
                mode=mode,
                config={
                    "metric": summary.metric,
                    "direction": summary.direction,
                    "trials": len(summary.records),
                },
                reinit="finish_previous",
                settings={"init_timeout": float(settings.get("init_timeout") or 60)},
            )
        columns = ["number", "status", summary.metric_label, "duration_s", *summary.param_names, "error"]
        rows = [
            [
                r.number,
                r.status,
                r.value,
                r.duration_s,
                *(_cell(r.params.get(p)) for p in summary.param_names),
                r.error,
            ]
            for r in summary.records
        ]
        images = {f"sweep/{path.stem}": wandb.Image(str(path)) for path in summary.plots}
        run.log({"sweep/trials": wandb.Table(columns=columns, data=rows), **images})
        best = summary.best
        if best is not None:
            run.summary.update({"best/value": best.value, "best/trial": best.number})
            run.summary.update({f"best/{k}": v for k, v in best.params.items()})
        run_dir = str(run.dir)
        run.finish()
        return run_dir
    except Exception as e:  # noqa: BLE001 - never fail a finished sweep over its W&B copy
        log.warning("W&B: the sweep summary was not logged (%s: %s)", type(e).__name__, e)
        return None


def finish_wandb_run(exit_code: int = 0) -> None:
    """Close the W&B run a job left open, so the next job of the same process starts its own run."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish(exit_code=exit_code)


def _cell(value: object) -> object:
    return "" if value is None else value if isinstance(value, (int, float)) else str(value)
