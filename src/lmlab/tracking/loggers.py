"""The configured experiment loggers of a stage (``logger`` config group), continued across a resume."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig


def build_loggers(cfg: DictConfig, resumed_from: str | None = None, wandb_run_id: str | None = None) -> list:
    """The configured loggers. A resumed run continues its W&B run (same id, no step logged twice) and writes
    file logs (CSV, TensorBoard) next to, not over, those of the first segment."""
    history = [str(Path(resumed_from).resolve().parents[1])] if resumed_from else []
    loggers = []
    for name, lg_cfg in (cfg.get("logger") or {}).items():
        if not lg_cfg or "_target_" not in lg_cfg:
            continue
        extra: dict[str, Any] = {}
        if name == "wandb" and wandb_run_id:
            extra = {"id": wandb_run_id, "history_dirs": history}
        elif resumed_from and lg_cfg.get("version") == "":
            extra = {"version": f"resumed-{time.strftime('%Y%m%d-%H%M%S')}"}
        loggers.append(instantiate(lg_cfg, **extra))
    return loggers


def wandb_run_id(loggers: list) -> str | None:
    """The W&B run id (starting the run now, on rank zero), so that checkpoints can carry it."""
    from lightning.pytorch.loggers import WandbLogger

    for lg in loggers:
        if isinstance(lg, WandbLogger):
            run_id = getattr(lg.experiment, "id", None)
            return str(run_id) if isinstance(run_id, str) else None
    return None


def close_loggers(loggers: list, status: str = "success") -> None:
    """Finalize the loggers and finish the W&B run they started, so that the next stage run in this process
    (a multirun job) starts its own."""
    from lightning.pytorch.loggers import WandbLogger

    for lg in loggers:
        lg.finalize(status)
        run = getattr(lg, "_experiment", None) if isinstance(lg, WandbLogger) else None
        if run is not None and hasattr(run, "finish"):
            run.finish(exit_code=0 if status == "success" else 1)
