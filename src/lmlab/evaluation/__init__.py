"""Evaluation of a trained model, one module per kind (dispatched by ``lmlab.stages.evaluate``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig


@dataclass
class EvalContext:
    """What every evaluator gets: the evaluation config, the data config (given, or the training one), the
    loaded model (None for tokenizer reports) and tokenizer, its head, the training config, the device."""

    cfg: DictConfig
    data_cfg: DictConfig
    model: Any
    tokenizer: Any
    head: str
    train_config: dict[str, Any]
    device: str
