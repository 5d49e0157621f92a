"""Costly per-step extras (train/acc) are computed on exactly the steps Lightning writes to the logger, so the
value written is the one of that step, not one computed log_every_n_steps - 1 steps earlier."""

import csv

from conftest import compose

from lmlab.stages.train import train
from lmlab.tasks.lm import CausalLMModule


def train_and_read_steps(tiny_overrides, tmp_path, steps: int, metric: str) -> list[int]:
    """Train ``steps`` steps logging every 3; return the steps whose ``metric`` the CSV logger wrote."""
    overrides = [*tiny_overrides, f"trainer.max_steps={steps}", "trainer.log_every_n_steps=3"]
    overrides += [f"trainer.val_check_interval={steps}", "run_test=false", "export.enabled=false"]
    train(compose(overrides, tmp_path / "run"))
    with open(tmp_path / "run" / "csv" / "metrics.csv") as f:
        return sorted({int(r["step"]) for r in csv.DictReader(f) if r.get(metric)})


def test_accuracy_is_computed_on_the_logged_steps(tiny_overrides, tmp_path, monkeypatch):
    computed: list[int] = []
    original = CausalLMModule.should_log_step

    def recording(self):
        result = original(self)
        if result:
            computed.append(self.global_step)
        return result

    monkeypatch.setattr(CausalLMModule, "should_log_step", recording)
    logged = train_and_read_steps(tiny_overrides, tmp_path, 9, "train/acc")
    assert logged == [2, 5, 8]
    assert sorted(set(computed)) == logged


def test_training_values_are_logged_only_when_written(tiny_overrides, tmp_path, monkeypatch):
    """``self.log`` costs Lightning ~0.5 ms a call, so per-step training values are logged on the steps the
    logger writes and on the last step (whose value metrics.json reports), not on every step."""
    calls: list[tuple[str, int]] = []
    original = CausalLMModule.log

    def recording(self, name, value, *args, **kwargs):
        if name.startswith("train/"):
            calls.append((name, self.global_step))
        return original(self, name, value, *args, **kwargs)

    monkeypatch.setattr(CausalLMModule, "log", recording)
    written = train_and_read_steps(tiny_overrides, tmp_path, 10, "train/loss")
    assert [step for name, step in calls if name == "train/loss"] == [2, 5, 8, 9]
    assert written == [2, 5, 8]  # what the logger writes is unchanged
