"""A Lightning callback that records when each optimizer step ends (benchmarks only).

Added to a real ``train.py`` run from the command line (``bench/`` on ``PYTHONPATH``):
``+callbacks.step_clock._target_=step_clock.StepClock +callbacks.step_clock.out=/tmp/steps.json``.
Two clock reads per step (wall ``perf_counter`` and the process's CPU time), no device sync: it does not
change what it measures. CPU time is what a loaded, shared machine measures most steadily.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from lightning.pytorch import Callback


class StepClock(Callback):
    def __init__(self, out: str) -> None:
        self.out = Path(out)
        self.ends: list[float] = []
        self.cpu: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not trainer.fit_loop._should_accumulate():
            self.ends.append(time.perf_counter())
            self.cpu.append(time.process_time())

    def on_train_end(self, trainer, pl_module) -> None:
        self.out.write_text(json.dumps({"step_ends": self.ends, "cpu_ends": self.cpu}))
