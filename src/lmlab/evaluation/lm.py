"""Language-model evaluation: sliding-window perplexity (causal LMs) or masked-token loss (masked LMs)."""

from __future__ import annotations

import logging
import time
from typing import Any

from torch.utils.data import DataLoader

from lmlab.data.lm_datamodule import LMDataModule
from lmlab.errors import ConfigError, config_stage
from lmlab.evaluation import EvalContext
from lmlab.metrics.perplexity import perplexity, sliding_window_perplexity
from lmlab.models import max_positions
from lmlab.tasks import MaskedLMModule

log = logging.getLogger(__name__)


def evaluate_language_model(ctx: EvalContext) -> tuple[dict[str, float], dict[str, Any]]:
    cfg, model = ctx.cfg, ctx.model
    head, train_config, device = ctx.head, ctx.train_config, ctx.device
    stage = cfg.split
    datamodule = ctx.datamodule(stage, kind=LMDataModule)
    limit = max_positions(model.config)
    context = cfg.context_length or (train_config.get("data") or {}).get("block_size") or limit
    if context is None:
        raise ConfigError("set context_length: the model config states no maximum number of positions")
    if limit is not None and context > limit:
        raise ConfigError(f"context_length={context} is larger than the model's maximum positions ({limit})")
    stride = cfg.stride or max(context // 2, 1)

    described = datamodule.source.describe(datamodule.splits[stage])

    start = time.perf_counter()
    if head == "causal_lm":
        tokens = datamodule.tokens(stage)
        result = sliding_window_perplexity(model, tokens, context, stride, cfg.batch_size, device)
        n_words = count_words(datamodule.source.iter_lines(datamodule.splits[stage]))
        metrics = {
            f"{stage}/ppl": result["ppl"],
            f"{stage}/loss": result["nll"],
            f"{stage}/tokens": result["tokens"],
            # Per word (whitespace-separated, plus one end-of-line per line, the WikiText convention;
            # 245,569 for the WikiText-2 test split): comparable across tokenizers, unlike per token.
            f"{stage}/word_ppl": perplexity(result["nll"] * result["tokens"] / max(n_words, 1)),
            f"{stage}/words": float(n_words),
        }
        method = f"sliding window: context {context}, stride {stride}, {int(result['windows'])} windows"
    else:
        metrics = masked_lm_metrics(ctx, datamodule, stage, context)
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


def masked_lm_metrics(ctx: EvalContext, datamodule: LMDataModule, stage: str, block: int) -> dict[str, float]:
    """The masked-LM loss of the training objective itself (``MaskedLMModule``: masks seeded by ``mask_seed``
    and the batch index) over non-overlapping blocks of the split; not comparable to a causal LM's ppl."""
    cfg = ctx.cfg
    blocks = datamodule.blocks(stage, block)
    module = MaskedLMModule(
        ctx.model, ctx.tokenizer, mlm_probability=cfg.mlm_probability, mask_seed=cfg.mask_seed
    )
    with config_stage("data loader", "batch_size"):
        loader = DataLoader(blocks, batch_size=cfg.batch_size, shuffle=False)
    (result,) = ctx.trainer().test(module, dataloaders=loader, verbose=False)
    return {
        f"{stage}/ppl": float(result["test/ppl"]),
        f"{stage}/loss": float(result["test/loss"]),
        f"{stage}/tokens": float(len(blocks) * block),
    }
