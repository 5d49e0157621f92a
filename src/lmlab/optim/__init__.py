"""Optimizers and learning-rate schedules. ``lmlab.optim.build_scheduler`` is the ``_target_`` of
``conf/scheduler/*.yaml``."""

from lmlab.optim.param_groups import fused_on_cpu, param_groups
from lmlab.optim.schedules import build_scheduler

__all__ = ["build_scheduler", "fused_on_cpu", "param_groups"]
