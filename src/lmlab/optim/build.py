"""The configured optimizer over a module's parameters (what ``TaskModule.build_optimizer`` returns)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from lightning.pytorch.strategies import Strategy
from torch import nn

from lmlab.optim.muon import MuonAdamW
from lmlab.optim.param_groups import fused_on_cpu, param_groups


def build_optimizer(
    factory: Callable[..., torch.optim.Optimizer],
    module: nn.Module,
    precision: str | None = None,
    strategy: Strategy | None = None,
) -> torch.optim.Optimizer:
    """``factory`` (a partial from ``conf/optimizer/``) on ``module``'s parameters.

    ``MuonAdamW`` chooses its own parameter groups from the module; any other torch optimizer gets two
    groups, weight decay on >= 2-D weights only, and PyTorch's fused kernel on CPUs where it pays.
    ``precision`` and ``strategy`` are the trainer's, None before there is one.
    """
    target = getattr(factory, "func", None)
    if isinstance(target, type) and issubclass(target, MuonAdamW):
        return factory(module=module, precision=precision, strategy=strategy)
    weight_decay = (getattr(factory, "keywords", None) or {}).get("weight_decay", 0.0)
    groups = param_groups(module, weight_decay)
    return factory(params=groups, **fused_on_cpu(factory, groups, precision))


def check_optimizer(
    factory: Callable[..., torch.optim.Optimizer], meta_model: Callable[[], nn.Module]
) -> None:
    """Before any data work: an optimizer that chooses its parameters from the model (Muon's hidden matrices)
    is built once on the model's meta-device twin, so a selection that leaves it nothing fails in seconds."""
    target = getattr(factory, "func", None)
    if isinstance(target, type) and issubclass(target, MuonAdamW):
        build_optimizer(factory, meta_model())
