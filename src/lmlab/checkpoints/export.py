"""Export a trained model in Hugging Face format: the input of every later stage."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lmlab.models.lora import is_adapter, merged_copy
from lmlab.utils.io import atomic_write_dir

log = logging.getLogger(__name__)

EXPORT_INFO = "lmlab.json"  # head, training config and metrics, beside the Hugging Face files
ADAPTER_DIR = "adapter"  # of a LoRA run: the adapter as peft saves it, inside the export folder


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

    A LoRA model (peft) is exported twice: merged into a plain Hugging Face model in ``out_dir``, which loads
    without peft, and as the adapter alone in ``out_dir/adapter`` (``PeftModel.from_pretrained`` on its base
    model, or ``evaluate.py ckpt_path=<out_dir>/adapter``).
    """
    info = {"head": head, "config": config, "metrics": metrics or {}, "data": data or {}}

    def write(tmp: Path) -> None:
        if is_adapter(model):
            adapter = tmp / ADAPTER_DIR
            model.save_pretrained(adapter, safe_serialization=True)
            tokenizer.save_pretrained(adapter)
            # the head's config (labels) is not in the base model's config.json: kept for evaluate.py
            adapter_info = {**info, "model_config": model.config.to_dict()}
            (adapter / EXPORT_INFO).write_text(json.dumps(adapter_info, indent=2, default=str))
            merged_copy(model).save_pretrained(tmp, safe_serialization=True)
        else:
            model.save_pretrained(tmp, safe_serialization=True, state_dict=state_dict)
        tokenizer.save_pretrained(tmp)
        (tmp / "lmlab_config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(config)))
        (tmp / EXPORT_INFO).write_text(json.dumps(info, indent=2, default=str))

    path = atomic_write_dir(out_dir, write)
    log.info("Exported the model and tokenizer to %s", path)
    return path
