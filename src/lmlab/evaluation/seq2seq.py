"""Generation evaluation of a trained model (``python evaluate.py ckpt_path=<generation run>``).

Generates for every example of a split (``max_samples`` caps it) with the settings the model was trained
with, updated by ``generation.*`` overrides, and scores BLEU, ROUGE, length and diversity; writes the
predictions next to metrics.json, and logs the W&B table of the first examples that training logs
(``<split>/generations``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from lmlab.data.seq2seq_datamodule import Seq2SeqDataModule
from lmlab.decoding.decode import generate_texts
from lmlab.decoding.records import GenerationRecord, score_records, write_predictions
from lmlab.decoding.settings import GenerationSettings, merge_settings
from lmlab.evaluation import EvalContext
from lmlab.metrics.generated_text import TextMetricOptions

log = logging.getLogger(__name__)


def evaluate_generation(ctx: EvalContext) -> tuple[dict[str, float], dict[str, Any]]:
    cfg, data_cfg, model, tokenizer = ctx.cfg, ctx.data_cfg, ctx.model, ctx.tokenizer
    head, train_config, device = ctx.head, ctx.train_config, ctx.device
    stage = cfg.split
    task_cfg = train_config.get("task") or {}
    overrides = OmegaConf.to_container(cfg.get("generation") or {}, resolve=True)
    values = merge_settings(task_cfg.get("generation"), overrides)
    values.setdefault("max_new_tokens", data_cfg.get("max_target_length"))  # a model trained elsewhere
    settings = GenerationSettings.from_config(values, "generation")
    options = TextMetricOptions(**(task_cfg.get("metrics") or {}))

    datamodule = ctx.datamodule(stage, max_samples=cfg.get("max_samples"), kind=Seq2SeqDataModule)
    datamodule.prepare_data()
    loader = datamodule.eval_loader(stage, cfg.batch_size)
    model.eval().to(device)
    prompt = (
        ("prompt_ids", "prompt_attention_mask") if head == "causal_lm" else ("input_ids", "attention_mask")
    )
    records: list[GenerationRecord] = []
    start, n_tokens = time.perf_counter(), 0
    for batch in loader:
        texts, lengths = generate_texts(
            model, tokenizer, batch[prompt[0]].to(device), batch[prompt[1]].to(device), settings
        )
        n_tokens += sum(lengths)
        records += [
            GenerationRecord(int(i), s, list(r), t, n)
            for i, s, r, t, n in zip(
                batch["index"], batch["sources"], batch["references"], texts, lengths, strict=True
            )
        ]
    seconds = time.perf_counter() - start
    scores, signature = score_records(records, options)
    metrics = {f"{stage}/{k}": v for k, v in scores.items()}
    metrics[f"{stage}/gen_tokens_per_sec"] = n_tokens / max(seconds, 1e-9)
    described = datamodule.source.describe(datamodule.splits[stage])
    summary = {
        "split": stage, "data": described, "examples": len(records), "generation": settings.to_dict(),
        "metric_options": options.to_dict(), "bleu_signature": signature,
    }  # fmt: skip
    path = write_predictions(Path(cfg.paths.output_dir) / "predictions" / stage, records, scores, summary)
    summary["predictions"] = str(path)
    ctx.log_examples(f"{stage}/generations", records, task_cfg.get("log_examples"), default=20)
    log.info(
        "%s generation on %s, %d examples (%s): %s", stage, described, len(records), settings.describe(),
        ", ".join(f"{k}={v:.4g}" for k, v in scores.items()),
    )  # fmt: skip
    return metrics, summary
