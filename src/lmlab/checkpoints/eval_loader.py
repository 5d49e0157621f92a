"""Load a trained model for evaluation from whatever names it: a checkpoint (a ``.ckpt`` file, or an FSDP or
DeepSpeed checkpoint folder), an export folder or a hub name.

A checkpoint carries everything needed (model config, head, tokenizer files, training config: see
``metadata.py``); an export folder is a Hugging Face model with lmlab's ``lmlab.json`` beside it.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from lmlab.checkpoints.export import EXPORT_INFO
from lmlab.checkpoints.folders import checkpoint_layout
from lmlab.checkpoints.reader import checkpoint_metadata, read_checkpoint
from lmlab.errors import CheckpointError
from lmlab.models import HEADS, load_pretrained_or_explain, set_special_token_ids
from lmlab.models.lora import adapter_from_meta

ADAPTER_CONFIG = "adapter_config.json"  # what peft's save_pretrained writes beside the adapter weights


def load_model_for_eval(
    path_or_name: str, head: str | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, str, dict[str, Any]]:
    """Load ``(model, tokenizer, head, training config)`` from a checkpoint, an export folder or a hub name."""
    path = Path(path_or_name).expanduser()
    if checkpoint_layout(path):
        return _from_lightning_checkpoint(path)
    if (path / ADAPTER_CONFIG).is_file():
        return _from_adapter_folder(path, head)
    if path.is_dir() and not (path / "config.json").is_file():
        raise CheckpointError(
            f"ckpt_path={path}: this folder has no config.json, so it is not a Hugging Face export, nor a checkpoint "
            "folder (FSDP: meta.pt and .metadata; DeepSpeed: latest). Give an lmlab export folder (<run dir>/export), "
            "a .ckpt file or a checkpoint folder (<run dir>/checkpoints/last.ckpt)."
        )
    info = _export_info(path)
    head = head or info.get("head") or "causal_lm"
    if head not in HEADS:
        raise CheckpointError(f"unknown head {head!r}; known: {sorted(HEADS)}")
    model = load_pretrained_or_explain(HEADS[head].from_pretrained, str(path_or_name), "ckpt_path")
    return model, _hub_tokenizer(path_or_name), head, info.get("config", {})


def load_tokenizer_for_eval(path_or_name: str) -> tuple[PreTrainedTokenizerBase, dict[str, Any]]:
    """Only the tokenizer (and the training config, if any) of a checkpoint, an export or tokenizer folder, or
    a hub name: for reports that need no model weights."""
    path = Path(path_or_name).expanduser()
    if checkpoint_layout(path):
        meta = checkpoint_metadata(read_checkpoint(path, weights=False), path)
        return tokenizer_from_files(meta["tokenizer_files"]), meta["config"]
    info = _export_info(path)
    return _hub_tokenizer(path_or_name), info.get("config", {})


def _export_info(path: Path) -> dict[str, Any]:
    """What ``export_hf`` wrote beside the model (head, training config, metrics); empty for other folders."""
    info = path / EXPORT_INFO
    if not info.is_file():
        return {}
    try:
        return json.loads(info.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CheckpointError(
            f"ckpt_path={path}: {info} is damaged ({e}); restore it or export the model again"
        ) from None


def _hub_tokenizer(path_or_name: str) -> PreTrainedTokenizerBase:
    return load_pretrained_or_explain(AutoTokenizer.from_pretrained, str(path_or_name), "ckpt_path")


def tokenizer_from_files(files: dict[str, bytes]) -> PreTrainedTokenizerBase:
    """The tokenizer saved in a checkpoint (``RunMetadata``: its files' bytes by name)."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            (Path(tmp) / name).write_bytes(data)
        return AutoTokenizer.from_pretrained(tmp)


def _from_adapter_folder(path: Path, head: str | None):
    """A LoRA adapter as peft saves it (``<run>/export/adapter``): its base model (``base_model_name_or_path``
    in adapter_config.json) with the adapter merged in."""
    from peft import PeftModel

    base = json.loads((path / ADAPTER_CONFIG).read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base:
        raise CheckpointError(f"ckpt_path={path}: {ADAPTER_CONFIG} names no base_model_name_or_path")
    info = _export_info(path)
    head = head or info.get("head") or "causal_lm"
    if head not in HEADS:
        raise CheckpointError(f"unknown head {head!r}; known: {sorted(HEADS)}")
    kwargs: dict[str, Any] = {}
    if info.get("model_config"):  # the head's labels, which the base's config.json does not have
        model_config = dict(info["model_config"])
        kwargs["config"] = AutoConfig.for_model(model_config.pop("model_type"), **model_config)
    field = f"base_model_name_or_path of {path / ADAPTER_CONFIG}"
    model = load_pretrained_or_explain(
        HEADS[head].from_pretrained, base, field, ignore_mismatched_sizes=True, **kwargs
    )
    model = PeftModel.from_pretrained(model, str(path)).merge_and_unload()
    has_tokenizer = (path / "tokenizer_config.json").is_file()
    return model, _hub_tokenizer(str(path) if has_tokenizer else base), head, info.get("config", {})


def _from_lightning_checkpoint(path: Path):
    ckpt = read_checkpoint(path)
    meta = checkpoint_metadata(ckpt, path)
    head = meta["head"]
    model_config = dict(meta["model_config"])
    config = AutoConfig.for_model(model_config.pop("model_type"), **model_config)
    state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    if meta.get("adapter_base"):  # a LoRA run's checkpoint: adapters only, on the base model it names
        return _from_adapter_checkpoint(path, meta, head, config, state)
    model = HEADS[head].from_config(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    # Tied weights (e.g. GPT-2's output layer) are stored once; anything else missing is an error.
    tied = set(getattr(model, "_tied_weights_keys", None) or [])
    missing = [k for k in missing if k not in tied]
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: weights do not match the saved model config (missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    model.tie_weights()
    return _with_tokenizer(model, meta, head)


def _from_adapter_checkpoint(path: Path, meta: dict[str, Any], head: str, config: Any, state: dict[str, Any]):
    base = meta["adapter_base"]["name_or_path"]
    model = load_pretrained_or_explain(
        HEADS[head].from_pretrained, base, f"the base model of {path} (its model.pretrained)",
        config=config, ignore_mismatched_sizes=True,
    )  # fmt: skip
    model = adapter_from_meta(model, meta["adapter_base"])
    missing, unexpected = model.load_state_dict(state, strict=False)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    missing = [k for k in missing if k in trainable]
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: adapter weights do not match the saved LoRA config (missing {missing[:5]}, "
            f"unexpected {unexpected[:5]})"
        )
    return _with_tokenizer(model.merge_and_unload(), meta, head)


def _with_tokenizer(model: PreTrainedModel, meta: dict[str, Any], head: str):
    tokenizer = tokenizer_from_files(meta["tokenizer_files"])
    set_special_token_ids(model, tokenizer)
    return model, tokenizer, head, meta["config"]
