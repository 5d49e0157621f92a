"""Every validation's metrics by step, so the final report can give all metrics of the best checkpoint
(``best/val/f1`` and ``best/val/accuracy``, not only the monitored ``best/val/combined_score``)."""

from __future__ import annotations

from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer


class ValidationHistory(Callback):
    def __init__(self) -> None:
        self.by_step: dict[int, dict[str, float]] = {}

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        values = {
            k: float(v)
            for k, v in trainer.callback_metrics.items()
            if k.startswith("val/") and v.numel() == 1
        }
        self.by_step[trainer.global_step] = values

    def at(self, step: int) -> dict[str, float]:
        return dict(self.by_step.get(step, {}))

    def state_dict(self) -> dict[str, Any]:
        return {"by_step": {int(k): v for k, v in self.by_step.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.by_step = {int(k): dict(v) for k, v in state_dict.get("by_step", {}).items()}
