"""A Lightning callback that records when each optimizer step ends (benchmarks only).

Added to a real ``train.py`` run from the command line (``bench/`` on ``PYTHONPATH``):
``+callbacks.step_clock._target_=step_clock.StepClock +callbacks.step_clock.out=/tmp/steps.json``.
Two clock reads per step (wall ``perf_counter`` and the process's CPU time) and the step's token counts, no
device sync: it does not change what it measures. CPU time is what a loaded, shared machine measures most steadily.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path

from lightning.pytorch import Callback


class StepClock(Callback):
    def __init__(self, out: str) -> None:
        self.out = Path(out)
        self.ends: list[float] = []
        self.cpu: list[float] = []
        self.tokens = TokenCount()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.tokens.add(batch)
        if not trainer.fit_loop._should_accumulate():
            self.ends.append(time.perf_counter())
            self.cpu.append(time.process_time())
            self.tokens.step()

    def on_train_end(self, trainer, pl_module) -> None:
        self.out.write_text(
            json.dumps({"step_ends": self.ends, "cpu_ends": self.cpu, **self.tokens.record()})
        )


class TokenCount:
    """Tokens of each optimizer step: ``input_ids`` entries (padding included) and real ones (attention mask)."""

    def __init__(self) -> None:
        self.padded: list[int] = []
        self.real: list[int] = []
        self._padded = self._real = 0

    def add(self, batch) -> None:
        if isinstance(batch, Mapping) and "input_ids" in batch:  # a dict, or transformers' BatchEncoding
            self._padded += batch["input_ids"].numel()
            mask = batch.get("attention_mask")
            self._real += int(mask.sum()) if mask is not None else batch["input_ids"].numel()

    def step(self) -> None:
        self.padded.append(self._padded)
        self.real.append(self._real)
        self._padded = self._real = 0

    def record(self) -> dict[str, list[int]]:
        return {"padded_tokens": self.padded, "real_tokens": self.real}
