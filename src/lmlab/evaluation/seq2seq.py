"""Generation evaluation of a trained model (``python evaluate.py ckpt_path=<generation run>``).

Generates for every example of a split (``max_samples`` caps it) with the settings the model was trained
with, updated by ``generation.*`` overrides, and scores BLEU, ROUGE, length and diversity; writes the
predictions next to metrics.json.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from lmlab.data.tokenizer import GivenTokenizer
from lmlab.decoding.decode import generate_texts
from lmlab.decoding.records import GenerationRecord, score_records, write_predictions
from lmlab.decoding.settings import GenerationSettings, merge_settings
from lmlab.errors import ConfigError
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

    datamodule = _datamodule(cfg, data_cfg, tokenizer, head, stage)
    loader = datamodule.eval_dataloader(stage)
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
    log.info(
        "%s generation on %s, %d examples (%s): %s", stage, described, len(records), settings.describe(),
        ", ".join(f"{k}={v:.4g}" for k, v in scores.items()),
    )  # fmt: skip
    return metrics, summary


def _datamodule(cfg: DictConfig, data_cfg: DictConfig, tokenizer, head: str, stage: str):
    splits = data_cfg.get("splits") or {}
    if not splits.get(stage):
        raise ConfigError(f"split={stage!r}: data.splits.{stage} is not set (data.splits = {dict(splits)})")
    if "source" not in data_cfg or "max_target_length" not in data_cfg:
        raise ConfigError(
            "evaluation=generation needs source/target pair data (e.g. data=multi30k or data=seq2seq_files); "
            f"the data config has {sorted(data_cfg)}"
        )
    data_cfg = data_cfg.copy()
    with open_dict(data_cfg):
        data_cfg.splits = {stage: splits[stage]}  # only the evaluated split is read
        data_cfg.holdout_fraction = 0.0
        data_cfg.eval_batch_size = cfg.batch_size
        data_cfg.max_test_samples = data_cfg.max_eval_samples = cfg.get("max_samples")
    datamodule = instantiate(data_cfg, tokenizer=GivenTokenizer(tokenizer))
    datamodule.set_head(head)
    datamodule.check()
    datamodule.prepare_data()
    return datamodule
