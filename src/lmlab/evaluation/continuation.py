"""Continuation evaluation of a pretrained causal LM: prompt with k tokens of a passage, generate m, and
score the m generated tokens against the m true ones (BLEU, ROUGE) and for diversity.

Passages are non-overlapping windows of k + m tokens of the token stream that do not cross a document
boundary, evenly spread over the split (the same ones every time). Greedy decoding by default, with
exactly m new tokens (``min_new_tokens = max_new_tokens = m``), so lengths match the references. With W&B,
the first passages are logged as a table (``<split>/continuations``), as the training callback does.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from lmlab.data.lm_datamodule import LMDataModule
from lmlab.data.seq2seq_batches import ensure_pad_and_eos
from lmlab.data.tokenizer import document_separator_id
from lmlab.decoding.decode import generate_texts
from lmlab.decoding.records import GenerationRecord, score_records, write_predictions
from lmlab.decoding.settings import GenerationSettings
from lmlab.errors import ConfigError
from lmlab.evaluation import EvalContext
from lmlab.metrics.generated_text import TextMetricOptions

log = logging.getLogger(__name__)


def continuation_settings(
    new_tokens: int, overrides: dict[str, Any] | None, field: str
) -> GenerationSettings:
    """Greedy, exactly ``new_tokens`` new tokens, unless overridden (non-null entries of ``overrides``)."""
    values = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens}
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return GenerationSettings.from_config(values, field)


def continuation_starts(tokens: np.ndarray, span: int, samples: int, separator_id: int | None) -> list[int]:
    """Start offsets of up to ``samples`` evenly spread windows of ``span`` tokens inside one document."""
    n = len(tokens) // span
    if n == 0:
        raise ConfigError(f"the split has {len(tokens)} tokens, fewer than one passage of {span}")
    windows = np.asarray(tokens[: n * span]).reshape(n, span)
    ok = np.arange(n) if separator_id is None else np.flatnonzero(~(windows == separator_id).any(axis=1))
    if len(ok) > samples:
        ok = ok[np.linspace(0, len(ok) - 1, samples).round().astype(int)]
    return [int(i) * span for i in ok]


def continuation_records(
    model, tokenizer, tokens: np.ndarray, starts: list[tuple[int, int]], prompt_tokens: int,
    settings: GenerationSettings, batch_size: int, device: torch.device | str,
) -> list[GenerationRecord]:  # fmt: skip
    """Generate for ``(index, start)`` passages; the reference is the true next ``max_new_tokens`` tokens."""
    m = settings.max_new_tokens
    records = []
    for b in range(0, len(starts), batch_size):
        chunk = starts[b : b + batch_size]
        prompts = np.stack([np.asarray(tokens[s : s + prompt_tokens], dtype=np.int64) for _, s in chunk])
        ids = torch.from_numpy(prompts).to(device)
        texts, lengths = generate_texts(model, tokenizer, ids, torch.ones_like(ids), settings)
        for (index, s), prompt, text, length in zip(chunk, prompts, texts, lengths, strict=True):
            truth = tokenizer.decode(
                tokens[s + prompt_tokens : s + prompt_tokens + m].tolist(), skip_special_tokens=True
            )
            source = tokenizer.decode(prompt.tolist(), skip_special_tokens=True)
            records.append(GenerationRecord(index, source, [truth.strip()], text, length))
    return records


def evaluate_continuation(ctx: EvalContext) -> tuple[dict[str, float], dict[str, Any]]:
    cfg, model, tokenizer, head, device = ctx.cfg, ctx.model, ctx.tokenizer, ctx.head, ctx.device
    if head != "causal_lm":
        raise ConfigError(f"evaluation=continuation needs a causal LM, but the model's head is {head}")
    stage, opts = cfg.split, cfg.continuation
    datamodule = ctx.datamodule(stage, kind=LMDataModule)
    overrides = OmegaConf.to_container(cfg.get("generation") or {}, resolve=True)
    settings = continuation_settings(opts.new_tokens, overrides, "generation")
    span = opts.prompt_tokens + settings.max_new_tokens
    ensure_pad_and_eos(tokenizer)
    tokens = datamodule.tokens(stage)
    starts = continuation_starts(tokens, span, opts.samples, document_separator_id(tokenizer))
    model.eval().to(device)
    records = continuation_records(
        model,
        tokenizer,
        tokens,
        list(enumerate(starts)),
        opts.prompt_tokens,
        settings,
        cfg.batch_size,
        device,
    )
    scores, signature = score_records(records, TextMetricOptions())
    described = datamodule.source.describe(datamodule.splits[stage])
    summary = {
        "split": stage, "data": described, "examples": len(records), "prompt_tokens": opts.prompt_tokens,
        "new_tokens": settings.max_new_tokens, "generation": settings.to_dict(), "bleu_signature": signature,
    }  # fmt: skip
    path = write_predictions(
        Path(cfg.paths.output_dir) / "predictions" / f"continuation_{stage}", records, scores, summary
    )
    summary["predictions"] = str(path)
    trained = ((ctx.train_config.get("callbacks") or {}).get("continuation") or {}).get("log_examples")
    ctx.log_examples(f"{stage}/continuations", records, trained, default=10)
    log.info(
        "Continuation of %d passages of %s (%d prompt tokens, %s): %s", len(records), described,
        opts.prompt_tokens, settings.describe(), ", ".join(f"{k}={v:.4g}" for k, v in scores.items()),
    )  # fmt: skip
    return {f"{stage}/{k}": v for k, v in scores.items()}, summary
