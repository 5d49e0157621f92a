"""Optimizers and learning-rate schedules. ``lmlab.optim.build_scheduler`` is the ``_target_`` of
``conf/scheduler/*.yaml``; ``build_optimizer`` applies a ``conf/optimizer/*.yaml`` partial to a module."""

from lmlab.optim.build import build_optimizer, check_optimizer
from lmlab.optim.combined import CombinedOptimizer
from lmlab.optim.muon import MuonAdamW, hidden_matrices
from lmlab.optim.param_groups import fused_on_cpu, param_groups
from lmlab.optim.schedules import build_scheduler

__all__ = [
    "CombinedOptimizer",
    "MuonAdamW",
    "build_optimizer",
    "build_scheduler",
    "check_optimizer",
    "fused_on_cpu",
    "hidden_matrices",
    "param_groups",
]
