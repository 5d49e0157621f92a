"""Learning-rate schedules: warmup then cosine, linear or constant decay (``conf/scheduler/``)."""

from __future__ import annotations

import math

import torch
from transformers import get_scheduler

from lmlab.errors import ConfigError


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    name: str = "cosine",
    warmup_steps: int | None = None,
    warmup_ratio: float = 0.0,
    min_lr_ratio: float = 0.0,
) -> torch.optim.lr_scheduler.LRScheduler:
    """Linear warmup (``warmup_steps``, or ``warmup_ratio`` of all steps), then ``name`` decay.

    ``name``: ``cosine`` (to ``min_lr_ratio`` x peak), ``linear`` (to 0), ``constant``. Built on
    ``transformers.get_scheduler``, so the curves are the ones the Hugging Face recipes use.
    """
    if total_steps is None or not math.isfinite(total_steps) or total_steps <= 0:
        raise ConfigError(
            "the learning-rate schedule needs a finite number of steps: set trainer.max_steps or trainer.max_epochs"
        )
    total_steps = int(total_steps)
    if warmup_steps is None:
        if not 0.0 <= warmup_ratio < 1.0:
            raise ConfigError(f"scheduler.warmup_ratio={warmup_ratio} must be in [0, 1)")
        warmup_steps = round(warmup_ratio * total_steps)
    if warmup_steps < 0 or warmup_steps >= max(total_steps, 1) and warmup_steps > 0:
        raise ConfigError(f"scheduler.warmup_steps={warmup_steps} must be in [0, total steps={total_steps})")
    kinds = {
        "cosine": ("cosine_with_min_lr", {"min_lr_rate": min_lr_ratio}),
        "linear": ("linear", None),
        "constant": ("constant_with_warmup", None),
    }
    if name not in kinds:
        raise ConfigError(f"scheduler.name={name!r} is not one of {sorted(kinds)}")
    hf_name, kwargs = kinds[name]
    return get_scheduler(
        hf_name,
        optimizer,
        num_warmup_steps=warmup_steps,
        num_training_steps=total_steps,
        scheduler_specific_kwargs=kwargs,
    )
