"""A nanoGPT-equivalent reference, FOR BENCHMARK COMPARISON ONLY: not part of lmlab, not used by it.

nanoGPT (github.com/karpathy/nanoGPT) cannot be installed here, so this file re-implements, minimally and
from its published design, what its ``model.py`` and ``train.py`` do on a CPU without ``torch.compile``:

- model: token + position embeddings, pre-LayerNorm blocks of fused-QKV causal self-attention
  (``F.scaled_dot_product_attention(..., is_causal=True)``) and a GELU MLP (``nn.GELU()``, exact erf), final
  LayerNorm, LM head tied to the token embedding, ``nn.Linear`` layers, optional biases (nanoGPT's
  ``train.py`` default is ``bias=False``; GPT-2 has biases), the loss computed inside ``forward``;
- loop: nanoGPT's warmup + cosine learning-rate schedule, batches of ``batch_size`` random windows sliced from a flat uint16/uint32 token memmap (the next
  batch is fetched right after the forward), AdamW with weight decay on >= 2-D parameters (not fused on
  CPU), gradient clipping, ``zero_grad(set_to_none=True)``, fp32 on CPU (no autocast).

Use: ``bench/train_overhead.py`` runs it in its own process next to lmlab and a hand-written loop.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm(nn.Module):
    """LayerNorm with an optional bias (nanoGPT's: ``bias=False`` drops it)."""

    def __init__(self, n: int, bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.bias = nn.Parameter(torch.zeros(n)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class SelfAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int, dropout: float, bias: bool) -> None:
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.resid_dropout = nn.Dropout(dropout)
        self.n_head, self.n_embd, self.dropout = n_head, n_embd, dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C)))


class MLP(nn.Module):
    def __init__(self, n_embd: int, dropout: float, bias: bool) -> None:
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, n_embd: int, n_head: int, dropout: float, bias: bool) -> None:
        super().__init__()
        self.ln_1 = LayerNorm(n_embd, bias)
        self.attn = SelfAttention(n_embd, n_head, dropout, bias)
        self.ln_2 = LayerNorm(n_embd, bias)
        self.mlp = MLP(n_embd, dropout, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class NanoGPTRef(nn.Module):
    """nanoGPT's GPT: same parameters, same initialization (normal 0.02, scaled residual projections)."""

    def __init__(
        self, vocab_size: int, block_size: int, n_layer: int, n_head: int, n_embd: int,
        dropout: float = 0.0, bias: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.drop = nn.Dropout(dropout)
        self.h = nn.ModuleList([Block(n_embd, n_head, dropout, bias) for _ in range(n_layer)])
        self.ln_f = LayerNorm(n_embd, bias)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.wte.weight = self.lm_head.weight
        for name, p in self.named_parameters():
            if p.ndim >= 2:
                std = 0.02 / math.sqrt(2 * n_layer) if name.endswith("c_proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        return logits, loss


def configure_optimizer(model: nn.Module, lr: float, betas, weight_decay: float) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=betas)  # nanoGPT: fused only on CUDA


def get_batch(data: np.ndarray, block_size: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """nanoGPT's loader: random windows of a flat token memmap, targets shifted by one."""
    ix = torch.randint(len(data) - block_size, (batch_size,))
    x = torch.stack([torch.from_numpy(data[i : i + block_size].astype(np.int64)) for i in ix])
    y = torch.stack([torch.from_numpy(data[i + 1 : i + 1 + block_size].astype(np.int64)) for i in ix])
    return x, y


def get_lr(it: int, lr: float, warmup_iters: int, lr_decay_iters: int, min_lr: float) -> float:
    """nanoGPT's schedule: linear warmup, cosine decay to ``min_lr`` at ``lr_decay_iters``."""
    if it < warmup_iters:
        return lr * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - min_lr)


def train_steps(
    model: NanoGPTRef, optimizer: torch.optim.Optimizer, data: np.ndarray, block_size: int, batch_size: int,
    steps: int, grad_clip: float = 1.0, on_step=None, warmup_iters: int = 0,
) -> float:  # fmt: skip
    """nanoGPT's inner loop, with its learning-rate schedule (decay over ``steps``, to a tenth of the peak);
    ``on_step(i)`` is called after each optimizer step (timing). Returns the last loss."""
    model.train()
    peak = optimizer.param_groups[0]["lr"]
    x, y = get_batch(data, block_size, batch_size)
    loss = torch.zeros(())
    for i in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = get_lr(i, peak, warmup_iters, steps, peak / 10)
        _, loss = model(x, y)
        x, y = get_batch(data, block_size, batch_size)  # prefetch while (on GPU) the forward runs
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if on_step is not None:
            on_step(i)
    return float(loss)
