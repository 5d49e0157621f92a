"""Several torch optimizers over disjoint parameters, as one optimizer object.

Lightning's automatic optimization steps one optimizer per training step, and schedulers, gradient clipping,
loss scalers and the LR monitor all read ``param_groups``. Two optimizer objects would need manual
optimization; one object that holds both keeps every one of those working unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from lmlab.errors import CheckpointError


class CombinedOptimizer(torch.optim.Optimizer):
    """Steps each of ``optimizers`` (their parameters must be disjoint) as one optimizer.

    - ``param_groups`` lists the inner optimizers' groups, the same dicts: a scheduler that sets a group's
      ``lr`` sets it where the inner optimizer reads it; each group keeps its own hyperparameters.
    - ``state`` is one dict shared with the inner optimizers (a parameter belongs to exactly one of them).
    - ``state_dict()`` is torch's standard format over all groups, so a checkpoint holds every inner state
      and ``load_state_dict`` restores it exactly, into the same group and state objects.
    """

    def __init__(self, optimizers: Sequence[torch.optim.Optimizer]) -> None:
        self.optimizers = list(optimizers)
        params = [p for opt in self.optimizers for group in opt.param_groups for p in group["params"]]
        if len({id(p) for p in params}) != len(params):
            raise ValueError("a parameter is in more than one of the combined optimizers")
        super().__init__(params, {})
        self.param_groups = [group for opt in self.optimizers for group in opt.param_groups]
        self._group_counts = [len(opt.param_groups) for opt in self.optimizers]
        self._link()

    def _link(self) -> None:
        """Point every inner optimizer at its slice of ``param_groups`` and at the shared ``state``."""
        start = 0
        for opt, count in zip(self.optimizers, self._group_counts, strict=True):
            opt.param_groups = self.param_groups[start : start + count]
            opt.state = self.state
            start += count

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for opt in self.optimizers:
            opt.step()
        return loss

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict["param_groups"]
        layout = [(g.get("name"), len(g["params"])) for g in saved]
        ours = [(g.get("name"), len(g["params"])) for g in self.param_groups]
        if layout != ours:
            raise CheckpointError(
                f"the checkpoint's optimizer state does not fit {type(self).__name__}: its parameter groups (name, "
                f"size) are {layout}, this run's are {ours}. Resume with the optimizer and model settings the "
                "checkpoint was written with (e.g. optimizer=adamw)"
            )
        groups, state = self.param_groups, self.state
        super().load_state_dict(state_dict)  # replaces param_groups and state with new objects...
        groups[:] = self.param_groups  # ...whose contents go into the ones every holder already has
        state.clear()
        state.update(self.state)
        self.param_groups, self.state = groups, state
        self._link()
