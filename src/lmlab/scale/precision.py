"""``trainer.precision=auto``: bf16 autocast on GPUs that support it, fp16 with a loss scaler on older GPUs,
fp32 on CPUs (and TF32 matmuls on Ampere and newer when ``tf32`` is on)."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def auto_precision(accelerator: str = "auto") -> str:
    import torch  # here, not at import: registering the config resolvers must stay light

    cuda = torch.cuda.is_available() and accelerator in ("auto", "gpu", "cuda")
    if cuda:
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def enable_tf32(enabled: bool = True) -> None:
    """TF32 matmuls and convolutions on Ampere and newer GPUs (about 8x fp32 throughput, 10-bit mantissa)."""
    import torch

    if enabled and torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8:
        torch.set_float32_matmul_precision("high")
        torch.backends.cudnn.allow_tf32 = True
        log.info("TF32 matmuls enabled (%s)", torch.cuda.get_device_name())
