"""Tokens seen and tokens/s, measured over logging windows.

Lightning's ThroughputMonitor synchronizes the GPU after every batch; this one only reads the clock on
logging steps (the loss is read there anyway), so it adds no host-device sync to the hot path.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from lmlab.data.base import BaseDataModule
from lmlab.errors import ConfigError
from lmlab.scale.flops import device_peak_tflops, training_flops_per_token


def batch_tokens(batch: Any, encoder_decoder: bool = False) -> int:
    """Token positions processed in a batch (padding included: it costs compute too); for encoder-decoders,
    the decoder's positions (its labels) as well."""
    if not isinstance(batch, dict):
        return int(batch[0].numel())
    tokens = batch["input_ids"].numel()
    if encoder_decoder:
        decoder = batch.get("decoder_input_ids", batch.get("labels"))
        tokens += decoder.numel() if isinstance(decoder, torch.Tensor) else 0
    return int(tokens)


class Throughput(Callback):
    """Logs ``train/tokens`` (all ranks, cumulative, survives resume), ``perf/tokens_per_sec`` and
    ``perf/samples_per_sec`` (all ranks together), excluding time spent in validation, and on GPUs
    ``perf/mfu``: model FLOPs utilization against the device's peak (``lmlab.scale.flops``).

    Args:
        peak_tflops: the device's dense bf16/fp16 peak in TFLOP/s; ``auto`` = known GPUs (H100/H200, A100, ...);
            null = no MFU. On CPUs only tokens/s are reported.
    """

    def __init__(self, peak_tflops: float | str | None = "auto") -> None:
        if not (peak_tflops is None or peak_tflops == "auto" or _positive_number(peak_tflops)):
            raise ConfigError(
                f"callbacks.throughput.peak_tflops={peak_tflops!r}: give the device's peak TFLOP/s (a positive "
                "number), auto (known GPUs) or null (no MFU)"
            )
        self.peak_tflops = peak_tflops
        self.flops_per_token: float | None = None
        self.tokens_seen = 0
        self._window_tokens = 0
        self._window_samples = 0
        self._window_start: float | None = None
        self._paused_at: float | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # Before the strategy wraps the model: FSDP shards its parameters, and a count taken after would be
        # this rank's shard only. The module is still on the CPU here: the device comes from the strategy.
        if stage != "fit":
            return
        if self.peak_tflops == "auto":
            self.peak_tflops = device_peak_tflops() if trainer.strategy.root_device.type == "cuda" else None
        datamodule = trainer.datamodule
        length = datamodule.sequence_length if isinstance(datamodule, BaseDataModule) else None
        if self.peak_tflops and length and hasattr(pl_module, "model"):
            self.flops_per_token = training_flops_per_token(pl_module.model, length)

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._window_start is None:
            self._window_start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        config = getattr(getattr(pl_module, "model", None), "config", None)
        tokens = batch_tokens(batch, bool(getattr(config, "is_encoder_decoder", False))) * trainer.world_size
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
            if self.flops_per_token and self.peak_tflops:
                achieved = metrics["perf/tokens_per_sec"] * self.flops_per_token / trainer.world_size
                metrics["perf/mfu"] = achieved / (float(self.peak_tflops) * 1e12)
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


def _positive_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
