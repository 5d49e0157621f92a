"""scheduler=wsd: linear warmup, the peak held, then a decay of the configured shape over the last steps."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import compose
from hydra.utils import instantiate

from lmlab.errors import ConfigError
from lmlab.optim import build_scheduler


def _factors(total: int, **kwargs) -> list[float]:
    """The lr factor (lr / peak) of each step 0..total, as the optimizer sees it."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    scheduler = build_scheduler(optimizer, total_steps=total, name="wsd", **kwargs)
    factors = []
    for _ in range(total + 1):
        factors.append(optimizer.param_groups[0]["lr"] / 2.0)
        optimizer.step()
        scheduler.step()
    return factors


def test_warmup_stable_and_1_sqrt_decay_boundaries():
    # 100 steps: 10 warmup (0..9), stable 10..79, 20 decay steps (80..99), step 100 at the floor
    f = _factors(100, warmup_steps=10, decay_ratio=0.2, decay_shape="1-sqrt")
    assert f[0] == 0.0 and f[5] == pytest.approx(0.5) and f[9] == pytest.approx(0.9)
    assert f[10] == f[45] == f[79] == 1.0
    assert f[80] == 1.0  # the first decay step is still the peak
    assert f[85] == pytest.approx(1 - math.sqrt(0.25))
    assert f[90] == pytest.approx(1 - math.sqrt(0.5))
    assert f[99] == pytest.approx(1 - math.sqrt(0.95))
    assert f[100] == 0.0
    assert all(a >= b for a, b in zip(f[10:], f[11:], strict=False))  # never rises after the warmup


def test_linear_decay_to_a_floor_and_warmup_ratio():
    # warmup_ratio 0.1 of 50 steps = 5; decay 0.4 of 50 = 20 steps (30..49); floor 0.1 x peak
    f = _factors(50, warmup_ratio=0.1, decay_ratio=0.4, decay_shape="linear", min_lr_ratio=0.1)
    assert f[5] == f[29] == 1.0
    assert f[30] == 1.0
    assert f[40] == pytest.approx(0.5 * 0.9 + 0.1)
    assert f[50] == pytest.approx(0.1)
    assert f[2] == pytest.approx(0.4 * 0.9 + 0.1)  # the warmup starts from the floor, not from 0


def test_cosine_shape_and_at_least_one_decay_step():
    f = _factors(40, warmup_steps=0, decay_ratio=0.5, decay_shape="cosine")
    assert f[0] == f[19] == f[20] == 1.0
    assert f[30] == pytest.approx(0.5)
    tiny = _factors(3, warmup_steps=0, decay_ratio=0.1)  # 0.3 of a step rounds up to one decay step
    assert tiny == [1.0, 1.0, 1.0, 0.0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"decay_ratio": 0.0}, r"scheduler.decay_ratio=0.0 must be in \(0, 1\]"),
        ({"decay_ratio": 1.5}, r"scheduler.decay_ratio=1.5 must be in \(0, 1\]"),
        ({"decay_shape": "exp"}, "scheduler.decay_shape='exp' is not one of 1-sqrt, linear, cosine"),
        ({"warmup_steps": 60, "decay_ratio": 0.5}, "60 warmup and 50 decay steps .* more than the 100"),
    ],
)
def test_impossible_phases_are_config_errors(kwargs, message):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ConfigError, match=message):
        build_scheduler(optimizer, total_steps=100, name="wsd", **kwargs)


def test_shipped_config(tmp_path):
    cfg = compose(["scheduler=wsd"], tmp_path)
    assert (cfg.scheduler.decay_ratio, cfg.scheduler.decay_shape, cfg.scheduler.warmup_ratio) == (
        0.2,
        "1-sqrt",
        0.05,
    )
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = instantiate(cfg.scheduler)(optimizer=optimizer, total_steps=1000)
    for _ in range(800):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == 1.0  # warmup 50, stable until step 800
    for _ in range(200):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == 0.0
