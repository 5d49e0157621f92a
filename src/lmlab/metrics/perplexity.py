"""Perplexity: the capped exponential of a mean token loss; a causal LM's on a long text by sliding window.

``perplexity`` caps the loss at ``MAX_LOG_PERPLEXITY`` (80 nats) before the exponential, so a diverged
loss gives a large finite number (about 5.5e34) instead of an overflow (``exp`` of more than 88.7 is inf in
float32). Every perplexity the project logs or reports goes through it.

``sliding_window_perplexity`` follows the Hugging Face perplexity guide. Windows of ``context_length``
tokens start every ``stride`` tokens; each window scores only the tokens that the previous window did not
(so every token is scored once, with up to ``context_length - stride`` tokens of context before it).
``stride == context_length`` gives non-overlapping blocks. The average is exact: the summed token negative
log-likelihood divided by the number of scored tokens (the guide's loop weights each window's mean loss by
``valid tokens - 1``, an approximation that differs slightly).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from lmlab.errors import ConfigError

MAX_LOG_PERPLEXITY = 80.0


def perplexity(loss: float | torch.Tensor) -> float | torch.Tensor:
    """``exp(min(loss, MAX_LOG_PERPLEXITY))`` of a mean negative log-likelihood in nats, a float or a tensor."""
    if isinstance(loss, torch.Tensor):
        return torch.exp(loss.clamp(max=MAX_LOG_PERPLEXITY))
    return math.exp(min(loss, MAX_LOG_PERPLEXITY))


def sliding_windows(n_tokens: int, context_length: int, stride: int) -> list[tuple[int, int, int]]:
    """``(begin, end, n_target)`` per window; the last ``n_target`` tokens of each window are scored."""
    if context_length < 2:
        raise ConfigError(f"context_length={context_length} must be at least 2")
    if not 1 <= stride <= context_length:
        raise ConfigError(f"stride={stride} must be between 1 and context_length={context_length}")
    windows, prev_end = [], 0
    for begin in range(0, n_tokens, stride):
        end = min(begin + context_length, n_tokens)
        windows.append((begin, end, end - prev_end))
        prev_end = end
        if end == n_tokens:
            break
    return windows


@torch.no_grad()
def sliding_window_perplexity(
    model: PreTrainedModel,
    tokens: Sequence[int] | np.ndarray | torch.Tensor,
    context_length: int,
    stride: int,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """Return ``ppl``, ``nll`` (mean per scored token), ``tokens`` (scored) and ``windows``."""
    tokens = torch.as_tensor(np.asarray(tokens, dtype=np.int64))
    if len(tokens) < 2:
        raise ConfigError("perplexity needs at least 2 tokens of text")
    model.eval().to(device)
    windows = sliding_windows(len(tokens), context_length, stride)
    nll_sum, n_scored = 0.0, 0
    # Windows of equal length are batched together (all but possibly the last one).
    by_length: dict[int, list[tuple[int, int, int]]] = {}
    for w in windows:
        by_length.setdefault(w[1] - w[0], []).append(w)
    for length, group in by_length.items():
        for i in range(0, len(group), batch_size):
            chunk = group[i : i + batch_size]
            input_ids = torch.stack([tokens[b:e] for b, e, _ in chunk]).to(device)
            # targets[j] is the token at j+1, scored only if it lies among the window's last n_target tokens
            targets = F.pad(input_ids[:, 1:], (0, 1), value=-100)
            positions = torch.arange(length, device=device)
            first_scored = torch.tensor([length - n for _, _, n in chunk], device=device)
            targets = targets.masked_fill(positions[None, :] + 1 < first_scored[:, None], -100)
            logits = model(input_ids=input_ids).logits
            nll_sum += F.cross_entropy(
                logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100, reduction="sum"
            ).item()
            n_scored += int((targets != -100).sum())
    nll = nll_sum / n_scored
    return {
        "ppl": perplexity(nll),
        "nll": nll,
        "tokens": float(n_scored),
        "windows": float(len(windows)),
    }
