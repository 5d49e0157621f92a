"""Optimizer parameter groups and learning-rate schedules."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from transformers import get_scheduler

from lmlab.errors import ConfigError


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices (>= 2-D: linear and embedding weights) only; never on biases or norms."""
    decay, no_decay = [], []
    for _, param in model.named_parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay, "name": "decay"},
        {"params": no_decay, "weight_decay": 0.0, "name": "no_decay"},
    ]


def fused_on_cpu(factory: Any, groups: list[dict], precision: str | None) -> dict[str, bool]:
    """``{"fused": True}`` for Adam/AdamW whose config leaves ``fused`` and ``foreach`` unset, when every
    parameter is a plain CPU tensor and no mixed precision is on; else ``{}`` (PyTorch's default).

    Why: on CPUs PyTorch's default update is a Python loop over tensors; its fused CPU kernel computes the
    same update 3-4x faster, which is 3-6% of a small model's training step (BENCHMARKS.md). Mixed
    precision is left alone: Lightning refuses gradient clipping with fused optimizers there.
    """
    keywords = getattr(factory, "keywords", None) or {}
    if getattr(factory, "func", None) not in (torch.optim.Adam, torch.optim.AdamW):
        return {}
    if keywords.get("fused") is not None or keywords.get("foreach") is not None:
        return {}
    if precision is None or "mixed" in str(precision):
        return {}
    params = [p for group in groups for p in group["params"]]
    floats = (torch.float32, torch.float64, torch.bfloat16, torch.float16)
    if params and all(
        type(p.data) is torch.Tensor and p.device.type == "cpu" and p.dtype in floats for p in params
    ):
        return {"fused": True}
    return {}


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
