"""Optimizer parameter groups (weight decay on matrices only) and PyTorch's fused AdamW kernel on CPUs."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


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
