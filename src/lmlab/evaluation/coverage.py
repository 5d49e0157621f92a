"""Tokenizer coverage on a data split (``python evaluate.py evaluation=coverage ckpt_path=<model or tokenizer>``)."""

from __future__ import annotations

import logging
from typing import Any

from lmlab.data.lm_datamodule import LMDataModule
from lmlab.evaluation import EvalContext
from lmlab.metrics.coverage import coverage_report, word_counts

log = logging.getLogger(__name__)


def evaluate_coverage(ctx: EvalContext) -> tuple[dict[str, float], dict[str, Any]]:
    cfg, tokenizer = ctx.cfg, ctx.tokenizer
    stage = cfg.split
    # the raw text of the split (and of the training split, if any, for out-of-vocabulary rates)
    datamodule = ctx.datamodule(stage, "train", kind=LMDataModule)
    source, splits = datamodule.source, datamodule.splits
    counts = word_counts(line for line, _ in source.iter_lines(splits[stage]))
    train_counts = (
        word_counts(line for line, _ in source.iter_lines(splits["train"])) if splits.get("train") else None
    )
    report = coverage_report(tokenizer, counts, train_counts)
    metrics = {f"coverage/{k}": float(v) for k, v in report.items() if isinstance(v, (int, float))}
    lines = [
        f"Tokenizer {getattr(tokenizer, 'name_or_path', '')!r} on {source.describe(splits[stage])}:",
        f"  vocabulary {report['vocab_size']:,}; {report['words']:,} words ({report['word_types']:,} distinct) -> "
        f"{report['tokens']:,} tokens",
        f"  fertility {report['fertility']:.3f} tokens/word; {report['split_share']:.2%} of words split into "
        f"pieces; unknown-token rate {report['unk_rate']:.4%}",
    ]
    if "oov_rate" in report:
        lines.append(
            f"  words never seen in training ({source.describe(splits['train'])}): {report['oov_rate']:.2%} of "
            f"occurrences, {report['oov_type_rate']:.2%} of distinct words"
        )
    lines.append("  most frequent split words: " + ", ".join(
        f"{t['word']} ({t['count']}: {' '.join(t['pieces'])})" for t in report["top_split"][:10]
    ))  # fmt: skip
    log.info("\n".join(lines))
    print("\n".join(lines))
    summary = {"split": stage, "data": source.describe(splits[stage]), "top_split": report["top_split"]}
    return metrics, summary
