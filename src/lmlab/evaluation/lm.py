"""Language-model evaluation: sliding-window perplexity (causal LMs) or masked-token loss (masked LMs)."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import open_dict

from lmlab.data.tokenizer import GivenTokenizer
from lmlab.errors import ConfigError
from lmlab.evaluation import EvalContext
from lmlab.metrics.perplexity import sliding_window_perplexity
from lmlab.models import max_positions
from lmlab.tasks.masking import mask_tokens

log = logging.getLogger(__name__)


def evaluate_language_model(ctx: EvalContext) -> tuple[dict[str, float], dict[str, Any]]:
    cfg, data_cfg, model, tokenizer = ctx.cfg, ctx.data_cfg, ctx.model, ctx.tokenizer
    head, train_config, device = ctx.head, ctx.train_config, ctx.device
    stage = cfg.split
    splits = data_cfg.get("splits") or {}
    if not splits.get(stage):
        raise ConfigError(f"split={stage!r}: data.splits.{stage} is not set (data.splits = {dict(splits)})")
    limit = max_positions(model.config)
    context = cfg.context_length or (train_config.get("data") or {}).get("block_size") or limit
    if context is None:
        raise ConfigError("set context_length: the model config states no maximum number of positions")
    if limit is not None and context > limit:
        raise ConfigError(f"context_length={context} is larger than the model's maximum positions ({limit})")
    stride = cfg.stride or max(context // 2, 1)

    data_cfg = data_cfg.copy()
    with open_dict(data_cfg):
        data_cfg.splits = {stage: splits[stage]}  # only the evaluated split is read
        data_cfg.block_size = context
    datamodule = instantiate(data_cfg, _partial_=True)(tokenizer=GivenTokenizer(tokenizer))
    datamodule.check(need_train=False)
    datamodule.prepare_data()
    tokens = datamodule.tokens(stage)
    described = datamodule.source.describe(datamodule.splits[stage])

    start = time.perf_counter()
    if head == "causal_lm":
        result = sliding_window_perplexity(model, tokens, context, stride, cfg.batch_size, device)
        n_words = count_words(datamodule.source.iter_lines(datamodule.splits[stage]))
        metrics = {
            f"{stage}/ppl": result["ppl"],
            f"{stage}/loss": result["nll"],
            f"{stage}/tokens": result["tokens"],
            # Per word (whitespace-separated, plus one end-of-line per line, the WikiText convention;
            # 245,569 for the WikiText-2 test split): comparable across tokenizers, unlike per token.
            f"{stage}/word_ppl": math.exp(min(result["nll"] * result["tokens"] / max(n_words, 1), 80.0)),
            f"{stage}/words": float(n_words),
        }
        method = f"sliding window: context {context}, stride {stride}, {int(result['windows'])} windows"
    else:
        metrics = masked_lm_loss(
            model,
            tokenizer,
            tokens,
            context,
            cfg.batch_size,
            device,
            cfg.mlm_probability,
            cfg.mask_seed,
            stage,
        )
        method = f"masked LM: {cfg.mlm_probability:.0%} of tokens masked (seed {cfg.mask_seed}), blocks of {context}"
        stride = context
    seconds = time.perf_counter() - start
    metrics[f"{stage}/tokens_per_sec"] = metrics[f"{stage}/tokens"] / max(seconds, 1e-9)
    log.info("%s perplexity on %s: %.3f (%s)", stage, described, metrics[f"{stage}/ppl"], method)
    summary = {
        "split": stage,
        "data": described,
        "context_length": context,
        "stride": stride,
        "method": method,
    }
    return metrics, summary


def count_words(lines) -> int:
    """Whitespace-separated words plus one end-of-line per line: how WikiText counts its tokens."""
    return sum(len(line.split()) + 1 for line, _ in lines)


@torch.no_grad()
def masked_lm_loss(
    model,
    tokenizer,
    tokens,
    block: int,
    batch_size: int,
    device: str,
    probability: float,
    seed: int,
    stage: str,
) -> dict[str, float]:
    """Loss over randomly masked tokens of non-overlapping blocks, with a fixed seed (not comparable to CLM ppl)."""
    model.eval().to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    special = torch.tensor(tokenizer.all_special_ids)
    n_blocks = len(tokens) // block
    if n_blocks == 0:
        raise ConfigError(f"the {stage} split has fewer than one block of {block} tokens")
    nll_sum, n = 0.0, 0
    for i in range(0, n_blocks, batch_size):
        rows = range(i, min(i + batch_size, n_blocks))
        ids = torch.stack(
            [torch.as_tensor(tokens[r * block : (r + 1) * block].astype("int64")) for r in rows]
        )
        inputs, labels = mask_tokens(
            ids.to(device), tokenizer.mask_token_id, len(tokenizer), special, probability, generator=generator
        )
        logits = model(input_ids=inputs).logits
        nll_sum += torch.nn.functional.cross_entropy(
            logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100, reduction="sum"
        ).item()
        n += int((labels != -100).sum())
    loss = nll_sum / max(n, 1)
    return {f"{stage}/ppl": math.exp(min(loss, 80.0)), f"{stage}/loss": loss, f"{stage}/tokens": float(n)}
