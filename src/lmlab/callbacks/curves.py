"""Learning curves as a picture: train/val loss and the main metric against steps, written at the end of a
run to ``<run>/learning_curves.png`` (and logged to W&B when it is the logger). Users without a W&B account
still see their curves; the points survive a resume (they are saved in checkpoints)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer

log = logging.getLogger(__name__)


class LearningCurves(Callback):
    def __init__(self, filename: str = "learning_curves.png") -> None:
        self.filename = filename
        self.points: dict[str, list[tuple[int, float]]] = {}

    def _record(self, trainer: Trainer, names: list[str]) -> None:
        for name in names:
            value = trainer.callback_metrics.get(name)
            if value is not None and value.numel() == 1:
                self.points.setdefault(name, []).append((trainer.global_step, float(value)))

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        if (
            trainer.global_step % max(trainer.log_every_n_steps, 1) == 0
            and not trainer.fit_loop._should_accumulate()
        ):
            self._record(trainer, ["train/loss"])

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self._record(trainer, [k for k in trainer.callback_metrics if k.startswith("val/")])

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero or not self.points:
            return
        path = Path(trainer.default_root_dir) / self.filename
        monitor = getattr(trainer.checkpoint_callback, "monitor", None)
        plot_curves(self.points, path, monitor)
        log.info("Learning curves: %s", path)
        from lightning.pytorch.loggers import WandbLogger

        for lg in trainer.loggers:
            if isinstance(lg, WandbLogger):
                lg.log_image(key="learning_curves", images=[str(path)])

    def state_dict(self) -> dict[str, Any]:
        return {"points": {k: [list(p) for p in v] for k, v in self.points.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.points = {k: [tuple(p) for p in v] for k, v in state_dict.get("points", {}).items()}


def plot_curves(points: dict[str, list[tuple[int, float]]], path: Path, monitor: str | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    extra = monitor if monitor and monitor in points and not monitor.endswith("/loss") else None
    fig, axes = plt.subplots(1, 2 if extra else 1, figsize=(11 if extra else 6, 4), squeeze=False)
    ax = axes[0][0]
    for name in ("train/loss", "val/loss"):
        if name in points:
            steps, values = zip(*points[name], strict=True)
            ax.plot(steps, values, marker="o" if name.startswith("val") else None, markersize=3, label=name)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    if extra:
        steps, values = zip(*points[extra], strict=True)
        axes[0][1].plot(steps, values, marker="o", markersize=3, color="tab:green")
        axes[0][1].set_xlabel("optimizer step")
        axes[0][1].set_ylabel(extra)
        axes[0][1].grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
