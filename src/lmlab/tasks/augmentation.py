"""Token-level text augmentation for fine-tuning, on the fly, on training batches only.

Each operation has a probability per token; special tokens ([CLS], [SEP], padding) are never touched. The
random numbers come from a generator seeded by (seed, step), so a run is reproducible and a resumed run
augments exactly as an uninterrupted one. Operations (applied in this order):

- ``deletion``: drop the token (the row is re-packed, padding moves to the end);
- ``swap``: exchange the token with its right neighbour (non-overlapping pairs);
- ``replace``: replace the token with the mask token (or the unknown token if there is none);
- ``span_mask``: start a span of ``span_length`` tokens replaced with the mask token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lmlab.errors import ConfigError


@dataclass
class Augmentation:
    deletion: float = 0.0
    swap: float = 0.0
    replace: float = 0.0
    span_mask: float = 0.0
    span_length: int = 3

    def __post_init__(self) -> None:
        for name in ("deletion", "swap", "replace", "span_mask"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"task.augmentation.{name}={getattr(self, name)} must be in [0, 1)")
        if self.span_length < 1:
            raise ConfigError(f"task.augmentation.span_length={self.span_length} must be at least 1")

    @property
    def active(self) -> bool:
        return any((self.deletion, self.swap, self.replace, self.span_mask))

    def __call__(
        self,
        batch: dict[str, torch.Tensor],
        special_ids: torch.Tensor,
        mask_id: int,
        pad_id: int,
        generator: torch.Generator,
    ) -> dict[str, torch.Tensor]:
        ids, attention = batch["input_ids"], batch.get("attention_mask")
        if attention is None:
            attention = torch.ones_like(ids)
        editable = (attention == 1) & ~torch.isin(ids, special_ids.to(ids.device))
        out = dict(batch)

        def coin(p: float) -> torch.Tensor:
            return torch.rand(ids.shape, generator=generator, device=ids.device) < p

        if self.deletion:
            keep = ~(coin(self.deletion) & editable) & (attention == 1)
            # stable sort: kept tokens first, in order; dropped and padding positions after them
            order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)
            ids = torch.where(keep.gather(1, order), ids.gather(1, order), pad_id)
            for key in ("token_type_ids",):
                if key in out:
                    out[key] = out[key].gather(1, order) * keep.gather(1, order)
            attention = keep.gather(1, order).to(attention.dtype)
            editable = (attention == 1) & ~torch.isin(ids, special_ids.to(ids.device))
        if self.swap:
            right = torch.zeros_like(editable)
            right[:, :-1] = editable[:, 1:]
            start = coin(self.swap) & editable & right
            start[:, 1:] &= ~start[:, :-1]  # no overlapping pairs: a swapped token is not swapped again
            partner = torch.zeros_like(start)
            partner[:, 1:] = start[:, :-1]
            shifted_left = torch.roll(ids, -1, dims=1)
            shifted_right = torch.roll(ids, 1, dims=1)
            ids = torch.where(start, shifted_left, torch.where(partner, shifted_right, ids))
        if self.replace:
            ids = torch.where(coin(self.replace) & editable, mask_id, ids)
        if self.span_mask:
            starts = coin(self.span_mask / self.span_length) & editable
            covered = starts.clone()
            for k in range(1, self.span_length):
                covered[:, k:] |= starts[:, :-k]
            ids = torch.where(covered & editable, mask_id, ids)
        out["input_ids"] = ids
        if "attention_mask" in batch:
            out["attention_mask"] = attention
        return out
