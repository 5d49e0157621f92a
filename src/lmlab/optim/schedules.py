"""Learning-rate schedules: warmup then cosine, linear or constant decay, or warmup-stable-decay
(``conf/scheduler/``)."""

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
    decay_ratio: float = 0.2,
    decay_shape: str = "1-sqrt",
) -> torch.optim.lr_scheduler.LRScheduler:
    """Linear warmup (``warmup_steps``, or ``warmup_ratio`` of all steps), then ``name`` decay.

    ``name``: ``cosine`` (to ``min_lr_ratio`` x peak), ``linear`` (to 0), ``constant``, or ``wsd``
    (warmup-stable-decay: the peak until the last ``decay_ratio`` of the steps, then ``decay_shape`` —
    ``1-sqrt``, ``linear`` or ``cosine`` — down to ``min_lr_ratio`` x peak, reached at the last step). Built on
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
        "wsd": ("warmup_stable_decay", None),
    }
    if name not in kinds:
        raise ConfigError(f"scheduler.name={name!r} is not one of {sorted(kinds)}")
    hf_name, kwargs = kinds[name]
    if name == "wsd":
        kwargs = _wsd_phases(total_steps, warmup_steps, decay_ratio, decay_shape, min_lr_ratio)
    return get_scheduler(
        hf_name,
        optimizer,
        num_warmup_steps=warmup_steps,
        num_training_steps=total_steps,
        scheduler_specific_kwargs=kwargs,
    )


_DECAY_SHAPES = ("1-sqrt", "linear", "cosine")


def _wsd_phases(
    total_steps: int, warmup_steps: int, decay_ratio: float, decay_shape: str, min_lr_ratio: float
) -> dict:
    """Arguments of the Hugging Face warmup-stable-decay schedule; at least one decay step."""
    if not 0.0 < decay_ratio <= 1.0:
        raise ConfigError(
            f"scheduler.decay_ratio={decay_ratio} must be in (0, 1]: the share of steps that decay"
        )
    if decay_shape not in _DECAY_SHAPES:
        raise ConfigError(f"scheduler.decay_shape={decay_shape!r} is not one of {', '.join(_DECAY_SHAPES)}")
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise ConfigError(f"scheduler.min_lr_ratio={min_lr_ratio} must be in [0, 1]")
    decay_steps = max(1, round(decay_ratio * total_steps))
    if warmup_steps + decay_steps > total_steps:
        raise ConfigError(
            f"scheduler: {warmup_steps} warmup and {decay_steps} decay steps (scheduler.decay_ratio={decay_ratio}) "
            f"are more than the {total_steps} training steps; lower scheduler.warmup_ratio/warmup_steps or "
            "scheduler.decay_ratio"
        )
    return {
        "num_decay_steps": decay_steps,  # the stable phase is what warmup and decay leave
        "decay_type": decay_shape,
        "min_lr_ratio": min_lr_ratio,
    }
