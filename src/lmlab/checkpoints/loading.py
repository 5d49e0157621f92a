"""Read checkpoints and exports: validate a ``ckpt_path`` early, and load any of them for evaluation."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from lmlab.checkpoints.metadata import CHECKPOINT_KEY
from lmlab.errors import CheckpointError
from lmlab.models import HEADS, load_pretrained_or_explain, set_special_token_ids

log = logging.getLogger(__name__)

EXPORT_INFO = "lmlab.json"


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a Lightning ``.ckpt`` safely (``weights_only=True``, memory-mapped) or explain why it can't be read."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"ckpt_path={path}: no such file")
    if path.is_dir():
        raise CheckpointError(
            f"ckpt_path={path} is a folder; training resumes from a Lightning .ckpt file "
            "(e.g. <run dir>/checkpoints/last.ckpt). To start from an export, use model.pretrained=<folder>."
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # noqa: BLE001 - truncated zip, pickle errors, foreign formats
        raise CheckpointError(
            f"ckpt_path={path} is not a readable checkpoint (truncated, corrupt or not a torch file): "
            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        ) from None


def checkpoint_metadata(ckpt: dict[str, Any], path: str | Path) -> dict[str, Any]:
    meta = ckpt.get(CHECKPOINT_KEY)
    if not meta:
        raise CheckpointError(
            f"{path} was not written by lmlab (no '{CHECKPOINT_KEY}' entry); use an lmlab checkpoint"
        )
    return meta


def load_model_for_eval(
    path_or_name: str, head: str | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, str, dict[str, Any]]:
    """Load ``(model, tokenizer, head, training config)`` from a ``.ckpt``, an export folder or a hub name."""
    path = Path(path_or_name).expanduser()
    if path.is_file():
        return _from_lightning_checkpoint(path)
    info: dict[str, Any] = {}
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise CheckpointError(
                f"ckpt_path={path}: this folder has no config.json, so it is not a Hugging Face export. "
                "Give an lmlab export folder (<run dir>/export) or a .ckpt file."
            )
        if (path / EXPORT_INFO).is_file():
            info = json.loads((path / EXPORT_INFO).read_text())
    head = head or info.get("head") or "causal_lm"
    if head not in HEADS:
        raise CheckpointError(f"unknown head {head!r}; known: {sorted(HEADS)}")
    model = load_pretrained_or_explain(HEADS[head].from_pretrained, str(path_or_name), "ckpt_path")
    tokenizer = load_pretrained_or_explain(AutoTokenizer.from_pretrained, str(path_or_name), "ckpt_path")
    return model, tokenizer, head, info.get("config", {})


def load_tokenizer_for_eval(path_or_name: str) -> tuple[PreTrainedTokenizerBase, dict[str, Any]]:
    """Only the tokenizer (and the training config, if any) of a ``.ckpt``, an export or tokenizer folder, or
    a hub name: for reports that need no model weights."""
    path = Path(path_or_name).expanduser()
    if path.is_file():
        meta = checkpoint_metadata(read_checkpoint(path), path)
        return _tokenizer_from_files(meta["tokenizer_files"]), meta["config"]
    info = json.loads((path / EXPORT_INFO).read_text()) if (path / EXPORT_INFO).is_file() else {}
    tokenizer = load_pretrained_or_explain(AutoTokenizer.from_pretrained, str(path_or_name), "ckpt_path")
    return tokenizer, info.get("config", {})


def _tokenizer_from_files(files: dict[str, bytes]) -> PreTrainedTokenizerBase:
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            (Path(tmp) / name).write_bytes(data)
        return AutoTokenizer.from_pretrained(tmp)


def _from_lightning_checkpoint(path: Path):
    ckpt = read_checkpoint(path)
    meta = checkpoint_metadata(ckpt, path)
    head = meta["head"]
    model_config = dict(meta["model_config"])
    config = AutoConfig.for_model(model_config.pop("model_type"), **model_config)
    model = HEADS[head].from_config(config)
    state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    # Tied weights (e.g. GPT-2's output layer) are stored once; anything else missing is an error.
    tied = set(getattr(model, "_tied_weights_keys", None) or [])
    missing = [k for k in missing if k not in tied]
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: weights do not match the saved model config (missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    model.tie_weights()
    tokenizer = _tokenizer_from_files(meta["tokenizer_files"])
    set_special_token_ids(model, tokenizer)
    return model, tokenizer, head, meta["config"]
