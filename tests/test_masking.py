"""BERT's dynamic masking: 15% of non-special tokens, 80% [MASK] / 10% random / 10% unchanged."""

import torch

from lmlab.tasks.masking import mask_tokens

MASK, VOCAB = 4, 1000
SPECIAL = torch.tensor([0, 1, 2, 3, 4])


def test_proportions_and_labels():
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, VOCAB, (200, 500), generator=gen)
    ids[:, 0] = 2  # a special token at the start of every row: never masked
    inputs, labels = mask_tokens(ids, MASK, VOCAB, SPECIAL, generator=gen)
    chosen = labels != -100
    assert not chosen[:, 0].any()
    assert torch.equal(labels[chosen], ids[chosen])  # labels are the original tokens, -100 elsewhere
    assert torch.equal(inputs[~chosen], ids[~chosen])  # unchosen positions are untouched
    share = chosen[:, 1:].float().mean().item()
    assert abs(share - 0.15) < 0.005
    masked = (inputs[chosen] == MASK).float().mean().item()
    kept = (inputs[chosen] == ids[chosen]).float().mean().item()
    assert abs(masked - 0.8) < 0.01
    assert abs(kept - 0.1) < 0.01  # a random replacement rarely draws the same token (1/1000)
    assert abs(1 - masked - kept - 0.1) < 0.01


def test_same_seed_same_masks():
    ids = torch.randint(5, VOCAB, (4, 64))
    a = mask_tokens(ids, MASK, VOCAB, SPECIAL, generator=torch.Generator().manual_seed(3))
    b = mask_tokens(ids, MASK, VOCAB, SPECIAL, generator=torch.Generator().manual_seed(3))
    c = mask_tokens(ids, MASK, VOCAB, SPECIAL, generator=torch.Generator().manual_seed(4))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[1], c[1])
