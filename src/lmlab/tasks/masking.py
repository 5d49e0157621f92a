"""Dynamic masking for masked-LM pretraining (BERT's 80/10/10 rule), done on the batch's device."""

from __future__ import annotations

import torch


def mask_tokens(
    input_ids: torch.Tensor,
    mask_token_id: int,
    vocab_size: int,
    special_ids: torch.Tensor,
    probability: float = 0.15,
    mask_replace_prob: float = 0.8,
    random_replace_prob: float = 0.1,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose ``probability`` of the non-special positions; of those, replace ``mask_replace_prob`` with the
    mask token, ``random_replace_prob`` with a random token and keep the rest. Returns ``(inputs, labels)``
    with labels -100 wherever the loss is not computed.

    A generator makes the masks a pure function of its seed: validation uses the same masks every time,
    and training seeds it from the step, so a resumed run masks exactly as an uninterrupted one.
    """
    if not 0 <= mask_replace_prob + random_replace_prob <= 1:
        raise ValueError("mask_replace_prob + random_replace_prob must be in [0, 1]")
    shape, device = input_ids.shape, input_ids.device

    def coin(p: float) -> torch.Tensor:
        return torch.rand(shape, generator=generator, device=device) < p

    masked = coin(probability) & ~torch.isin(input_ids, special_ids.to(device))
    labels = input_ids.masked_fill(~masked, -100)
    to_mask = masked & coin(mask_replace_prob)
    remaining = 1.0 - mask_replace_prob
    to_random = masked & ~to_mask & coin(random_replace_prob / remaining if remaining > 0 else 0.0)
    random_tokens = torch.randint(vocab_size, shape, generator=generator, device=device)
    inputs = input_ids.masked_fill(to_mask, mask_token_id)
    inputs = torch.where(to_random, random_tokens, inputs)
    return inputs, labels
