"""Costly per-step extras (train/acc) are computed on exactly the steps Lightning writes to the logger, so the
value written is the one of that step, not one computed log_every_n_steps - 1 steps earlier."""

import csv

from conftest import compose

from lmlab.tasks.lm import CausalLMModule
from lmlab.train import train


def test_accuracy_is_computed_on_the_logged_steps(tiny_overrides, tmp_path, monkeypatch):
    computed: list[int] = []
    original = CausalLMModule.should_log_step

    def recording(self):
        result = original(self)
        if result:
            computed.append(self.global_step)
        return result

    monkeypatch.setattr(CausalLMModule, "should_log_step", recording)
    overrides = [
        *tiny_overrides,
        "trainer.max_steps=9",
        "trainer.log_every_n_steps=3",
        "trainer.val_check_interval=9",
    ]
    train(compose([*overrides, "run_test=false", "export.enabled=false"], tmp_path / "run"))
    with open(tmp_path / "run" / "csv" / "metrics.csv") as f:
        logged = sorted({int(r["step"]) for r in csv.DictReader(f) if r.get("train/acc")})
    assert logged == [2, 5, 8]
    assert computed == logged
