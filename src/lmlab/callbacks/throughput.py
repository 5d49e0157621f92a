"""Tokens seen and tokens/s, measured over logging windows.

Lightning's ThroughputMonitor synchronizes the GPU after every batch; this one only reads the clock on
logging steps (the loss is read there anyway), so it adds no host-device sync to the hot path.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer


def batch_tokens(batch: Any) -> int:
    """Token positions processed in a batch (padding included: it costs compute too)."""
    ids = batch["input_ids"] if isinstance(batch, dict) else batch[0]
    return int(ids.numel())


class Throughput(Callback):
    """Logs ``train/tokens`` (all ranks, cumulative, survives resume), ``perf/tokens_per_sec`` and
    ``perf/samples_per_sec`` (all ranks together), excluding time spent in validation."""

    def __init__(self) -> None:
        self.tokens_seen = 0
        self._window_tokens = 0
        self._window_samples = 0
        self._window_start: float | None = None
        self._paused_at: float | None = None

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._window_start is None:
            self._window_start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        tokens = batch_tokens(batch) * trainer.world_size
        ids = batch["input_ids"] if isinstance(batch, dict) else batch[0]
        self.tokens_seen += tokens
        self._window_tokens += tokens
        self._window_samples += int(ids.shape[0]) * trainer.world_size
        step = trainer.global_step
        if trainer.fit_loop._should_accumulate() or step % max(trainer.log_every_n_steps, 1) != 0:
            return
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize()  # once per logging window, not per step
        elapsed = time.perf_counter() - (self._window_start or time.perf_counter())
        metrics = {"train/tokens": float(self.tokens_seen)}
        if elapsed > 0 and self._window_tokens:
            metrics["perf/tokens_per_sec"] = self._window_tokens / elapsed
            metrics["perf/samples_per_sec"] = self._window_samples / elapsed
        pl_module.log_dict(metrics, on_step=True, on_epoch=False, rank_zero_only=True)
        self._window_tokens = self._window_samples = 0
        self._window_start = time.perf_counter()

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._paused_at = time.perf_counter()

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._paused_at is not None and self._window_start is not None:
            self._window_start += time.perf_counter() - self._paused_at
        self._paused_at = None

    def state_dict(self) -> dict[str, Any]:
        return {"tokens_seen": self.tokens_seen}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.tokens_seen = int(state_dict.get("tokens_seen", 0))
