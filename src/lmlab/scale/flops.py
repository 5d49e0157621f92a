"""Model FLOPs utilization: achieved model FLOPs per second over the device's peak.

Model FLOPs per token, for training (forward + backward), follow the PaLM appendix: 6 N + 12 L d T, with N
the parameters (without position embeddings; the output projection counted once, tied or not), L layers,
d the model width and T the sequence length (the attention score and value matmuls).
"""

from __future__ import annotations

import torch
from torch import nn

# Dense peak TFLOP/s for bf16/fp16 tensor-core math (no sparsity), from the vendors' data sheets.
PEAK_TFLOPS = {
    "H200": 989.0,
    "H100 SXM": 989.0,
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H100": 989.0,
    "GH200": 989.0,
    "B200": 2250.0,
    "A100": 312.0,
    "A800": 312.0,
    "A10G": 125.0,
    "A10": 125.0,
    "L40S": 362.0,
    "L4": 121.0,
    "RTX 4090": 165.0,
    "RTX 3090": 71.0,
    "V100": 125.0,
    "T4": 65.0,
}


def device_peak_tflops() -> float | None:
    """Peak of the current CUDA device, or None when unknown (then MFU is not logged; set it in config)."""
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    for key in sorted(PEAK_TFLOPS, key=len, reverse=True):
        if key in name:
            return PEAK_TFLOPS[key]
    return None


def training_flops_per_token(model: nn.Module, sequence_length: int) -> float:
    config = getattr(model, "config", None)
    n_params = sum(p.numel() for p in model.parameters())
    for name, p in model.named_parameters():
        if "wpe" in name or "position_embeddings" in name:
            n_params -= p.numel()
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", 0)
    width = getattr(config, "hidden_size", None) or getattr(config, "n_embd", 0)
    return 6.0 * n_params + 12.0 * layers * width * sequence_length
