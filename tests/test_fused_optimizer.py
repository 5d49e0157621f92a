"""AdamW uses PyTorch's fused CPU kernel when the config leaves the choice open, and only then; the update
is the same as the default one."""

from functools import partial

import pytest
import torch

from lmlab.optim import fused_on_cpu, param_groups


def _groups(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.LayerNorm(16), torch.nn.Linear(16, 4))
    return model, param_groups(model, 0.1)


@pytest.mark.parametrize(
    "factory, precision, expected",
    [
        (partial(torch.optim.AdamW, lr=1e-3, fused=None), "32-true", {"fused": True}),
        (partial(torch.optim.Adam, lr=1e-3), "bf16-true", {"fused": True}),
        (partial(torch.optim.AdamW, lr=1e-3, fused=None), "bf16-mixed", {}),  # Lightning: no clipping then
        (partial(torch.optim.AdamW, lr=1e-3, fused=False), "32-true", {}),  # the config decided
        (partial(torch.optim.AdamW, lr=1e-3, foreach=True), "32-true", {}),
        (partial(torch.optim.SGD, lr=1e-3), "32-true", {}),
        (partial(torch.optim.AdamW, lr=1e-3), None, {}),  # no trainer: nothing is assumed
    ],
)
def test_fused_only_when_left_open_on_cpu_full_precision(factory, precision, expected):
    _, groups = _groups()
    assert fused_on_cpu(factory, groups, precision) == expected


def test_fused_update_equals_default_update():
    states = []
    for fused in (False, True):
        model, groups = _groups()
        optimizer = torch.optim.AdamW(groups, lr=1e-2, betas=(0.9, 0.95), fused=fused)
        for step in range(3):
            torch.manual_seed(100 + step)
            model(torch.randn(5, 8)).square().mean().backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        states.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*states, strict=True):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)
