"""Export a trained model in Hugging Face format: the input of every later stage."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lmlab.utils.io import atomic_write_dir

log = logging.getLogger(__name__)

EXPORT_INFO = "lmlab.json"  # head, training config and metrics, beside the Hugging Face files


def export_hf(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    out_dir: str | Path,
    head: str,
    config: dict[str, Any],
    metrics: dict[str, float] | None = None,
    state_dict: dict[str, Any] | None = None,
    data: dict[str, str] | None = None,
) -> Path:
    """Write model (safetensors) + tokenizer + resolved config to ``out_dir``, atomically.

    ``AutoModelFor...from_pretrained(out_dir)`` and ``AutoTokenizer.from_pretrained(out_dir)`` load it;
    ``model.pretrained=<out_dir>`` starts a fine-tuning stage from it. ``state_dict``: the full weights when
    the model in memory is sharded (FSDP, ZeRO-3); by default the model's own. ``data``: where each stage's
    data was read from (``BaseDataModule.describe_data``).
    """

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp, safe_serialization=True, state_dict=state_dict)
        tokenizer.save_pretrained(tmp)
        (tmp / "lmlab_config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(config)))
        info = {"head": head, "config": config, "metrics": metrics or {}, "data": data or {}}
        (tmp / EXPORT_INFO).write_text(json.dumps(info, indent=2, default=str))

    path = atomic_write_dir(out_dir, write)
    log.info("Exported the model and tokenizer to %s", path)
    return path
