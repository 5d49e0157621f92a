"""bench/ttl_report.py: crossings, side-by-side rates and the clock warnings of the time-to-loss benchmark."""

import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
from ttl_report import clock_warnings, crossing, rate, report  # noqa: E402

TOKENS_A_STEP = 1000


def curve(losses: list[float], seconds_a_step: float, every: int = 10) -> list[dict]:
    """Evaluations every ``every`` steps of a run that trains at a constant rate."""
    return [
        {"step": i * every, "tokens": i * every * TOKENS_A_STEP, "wall": i * every * seconds_a_step,
         "cpu": i * every * seconds_a_step, "loss": loss}
        for i, loss in enumerate(losses)
    ]  # fmt: skip


def a_run(losses, seconds_a_step, machine=None):
    return {"points": curve(losses, seconds_a_step), "params": {"total": 10, "non_embedding": 8},
            "machine": machine or {"cpu_id": "vm-a", "jobs": 1}}  # fmt: skip


def test_crossing_interpolates_between_evaluations():
    hit = crossing(curve([6.0, 5.0, 4.0], 0.5), target=4.5)
    assert hit == pytest.approx({"step": 15, "tokens": 15_000, "wall": 7.5, "cpu": 7.5})
    assert crossing(curve([6.0, 5.0], 0.5), target=4.0) is None


def test_rate_skips_the_first_half_of_a_throughput_run():
    points = curve([9.0, 8.0, 7.0], 0.1)
    points[1]["wall"] += 5.0  # a slow first step: start-up, not the training rate
    points[2]["wall"] += 5.0
    r = rate({"points": points, "load": 1.0})
    assert r["tokens_per_sec"] == pytest.approx(10 * TOKENS_A_STEP / 1.0)


def test_side_by_side_divides_tokens_to_target_by_the_measured_rates():
    # nanoGPT ends at 5.0 after 40 steps; "fast" reaches 5.0 at step 20 but ran on a 3x faster VM
    runs = {
        "nanogpt": {0: a_run([8.0, 7.0, 6.0, 5.5, 5.0], 1.0)},
        "fast": {0: a_run([8.0, 6.0, 5.0, 4.8, 4.9], 1 / 3, {"cpu_id": "vm-b", "jobs": 1})},
    }
    throughput = {
        "machine": {"date": "today"},
        "config": {"steps": 60, "repeats": 2},
        "runs": {
            "nanogpt": [{"tokens_per_sec": 1000, "cpu_per_token": 1e-3}, {"tokens_per_sec": 1000, "cpu_per_token": 1e-3}],
            "fast": [{"tokens_per_sec": 500, "cpu_per_token": 2e-3}, {"tokens_per_sec": 500, "cpu_per_token": 2e-3}],
        },
    }  # fmt: skip
    config = {"budget": 40}
    own = report(["nanogpt", "fast"], runs, {}, config)["systems"]["fast"]
    assert own["speedup_wall"] == pytest.approx(40 / (20 / 3))  # 6x by its own (faster) clock
    at = report(["nanogpt", "fast"], runs, {}, config, throughput)["side_by_side"]
    # half the tokens at half the rate: no faster at all
    assert at["fast"]["speedup_wall"] == pytest.approx(1.0)
    assert at["fast"]["cpu_to_target"]["mean"] == pytest.approx(20_000 * 2e-3)
    assert at["nanogpt_budget_wall"] == pytest.approx(40_000 / 1000)


def test_clock_warnings_name_mixed_machines_and_shared_cpus():
    same = {"a": {0: a_run([1.0], 1.0)}, "b": {0: a_run([1.0], 1.0)}}
    assert clock_warnings(same) == []
    mixed = {"a": {0: a_run([1.0], 1.0)}, "b": {0: a_run([1.0], 1.0, {"cpu_id": None})}}
    assert "2 machines" in clock_warnings(mixed)[0] and "not recorded" in clock_warnings(mixed)[0]
    shared = {"a": {0: a_run([1.0], 1.0, {"cpu_id": "vm-a", "jobs": 2})}}
    assert "--jobs" in clock_warnings(shared)[0]
