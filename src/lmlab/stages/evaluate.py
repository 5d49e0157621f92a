"""The evaluation stage: load any checkpoint, export or hub model and evaluate it with the metrics of its head.

The metrics, the config (secrets masked, as in ``.hydra/``) and, for generated text, the same W&B table of
examples that training logs go to the configured loggers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from lmlab.checkpoints import load_model_for_eval, load_tokenizer_for_eval
from lmlab.config.secrets import scrub, scrub_files
from lmlab.config.tree import print_config_tree, resolve
from lmlab.errors import ConfigError, config_stage
from lmlab.evaluation import EvalContext
from lmlab.evaluation.classification import evaluate_classification
from lmlab.evaluation.continuation import evaluate_continuation
from lmlab.evaluation.coverage import evaluate_coverage
from lmlab.evaluation.lm import evaluate_language_model
from lmlab.evaluation.seq2seq import evaluate_generation
from lmlab.tracking.loggers import build_loggers, close_loggers
from lmlab.utils.io import atomic_write_json

log = logging.getLogger(__name__)

# kind -> evaluator(EvalContext) -> (metrics, summary).
# The kind is `evaluation=` if given, else the EVALUATION of the task the model was trained with, else by head.
EVALUATORS: dict[str, Callable[..., tuple[dict[str, float], dict[str, Any]]]] = {
    "language_model": evaluate_language_model,
    "classification": evaluate_classification,
    "generation": evaluate_generation,
    "continuation": evaluate_continuation,
    "coverage": evaluate_coverage,
}
KIND_BY_HEAD = {
    "causal_lm": "language_model",
    "masked_lm": "language_model",
    "sequence_classification": "classification",
    "seq2seq_lm": "generation",
}


def evaluation_kind(cfg: DictConfig, head: str, train_config: dict[str, Any]) -> str:
    if cfg.get("evaluation"):
        kind = cfg.evaluation
    elif (train_config.get("task") or {}).get("_target_"):
        kind = get_class(train_config["task"]["_target_"]).EVALUATION or KIND_BY_HEAD.get(head)
    else:
        kind = KIND_BY_HEAD.get(head)
    if kind not in EVALUATORS:
        raise ConfigError(f"evaluation={kind!r} is not one of {sorted(EVALUATORS)} (model head: {head})")
    return kind


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate ``cfg.ckpt_path``; write ``metrics.json`` in the run folder, log it, return the metrics."""
    print_config_tree(cfg)
    config = scrub(resolve(cfg))  # what is logged: secrets masked
    output_dir = Path(cfg.paths.output_dir)
    scrub_files(output_dir / ".hydra")
    L.seed_everything(cfg.seed)
    if cfg.get("evaluation") == "coverage":  # a tokenizer report: no model weights needed
        model, head = None, "tokenizer"
        tokenizer, train_config = load_tokenizer_for_eval(str(cfg.ckpt_path))
        kind = "coverage"
    else:
        model, tokenizer, head, train_config = load_model_for_eval(str(cfg.ckpt_path), cfg.get("head"))
        kind = evaluation_kind(cfg, head, train_config)
    # The data: given on the command line (data=...), else the data the model was trained on.
    data_cfg = cfg.get("data") or OmegaConf.create(train_config.get("data") or {})
    if not data_cfg:
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path} carries no training config (a hub model?), so the data to evaluate on "
            "is unknown: choose it, e.g. data=wikitext2"
        )
    device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
    with config_stage("device"):
        torch.empty(0, device=device)
    with config_stage("logger"):
        loggers = build_loggers(cfg)
    status = "failed"
    try:
        metrics, summary = EVALUATORS[kind](
            EvalContext(cfg, data_cfg, model, tokenizer, head, train_config, device, kind, loggers)
        )
        atomic_write_json(
            output_dir / "metrics.json",
            {
                "metrics": metrics,
                "ckpt_path": str(cfg.ckpt_path),
                "head": head,
                "evaluation": kind,
                **summary,
            },
        )
        for lg in loggers:
            lg.log_hyperparams({**config, "evaluation": scrub(summary)})
            lg.log_metrics(metrics)
        status = "success"
    finally:
        close_loggers(loggers, status)
    return metrics
