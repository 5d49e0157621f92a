"""Sliding-window perplexity equals a direct computation with the same Hugging Face model."""

import math

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from lmlab.errors import ConfigError
from lmlab.metrics.perplexity import sliding_window_perplexity, sliding_windows


def reference_perplexity(model, tokens: torch.Tensor, max_length: int, stride: int) -> float:
    """The Hugging Face perplexity guide's loop, one window at a time, weighting each window's mean loss
    by the number of tokens it actually scored."""
    nll_sum, n_tokens, prev_end = 0.0, 0, 0
    seq_len = tokens.size(0)
    for begin in range(0, seq_len, stride):
        end = min(begin + max_length, seq_len)
        trg_len = end - prev_end
        input_ids = tokens[begin:end][None]
        target_ids = input_ids.clone()
        target_ids[:, :-trg_len] = -100
        with torch.no_grad():
            loss = model(input_ids, labels=target_ids).loss
        scored = int((target_ids[:, 1:] != -100).sum())  # labels are shifted inside the model
        nll_sum += loss.item() * scored
        n_tokens += scored
        prev_end = end
        if end == seq_len:
            break
    return math.exp(nll_sum / n_tokens)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=64, vocab_size=50)
    return GPT2LMHeadModel(config).eval()


@pytest.mark.parametrize(("context", "stride"), [(32, 16), (32, 32), (32, 7), (64, 64), (16, 1)])
def test_matches_reference(model, context, stride):
    tokens = torch.randint(0, 50, (301,), generator=torch.Generator().manual_seed(1))
    ours = sliding_window_perplexity(model, tokens, context, stride, batch_size=5)
    ref = reference_perplexity(model, tokens, context, stride)
    assert ours["ppl"] == pytest.approx(ref, rel=1e-4)
    if stride < context:  # every token but the first is scored exactly once
        assert ours["tokens"] == len(tokens) - 1
    else:  # non-overlapping blocks: the first token of each block has no context
        assert ours["tokens"] == len(tokens) - ours["windows"]


def test_windows_cover_every_token_once():
    for n, ctx, stride in [(100, 32, 16), (100, 32, 32), (33, 32, 16), (5, 32, 16)]:
        windows = sliding_windows(n, ctx, stride)
        scored = [t for b, e, k in windows for t in range(e - k, e)]
        assert scored == list(range(n))
        assert all(e - b <= ctx for b, e, _ in windows)


def test_bad_stride_is_a_clear_error(model):
    with pytest.raises(ConfigError, match="stride"):
        sliding_window_perplexity(model, torch.arange(40) % 50, 16, 17)
