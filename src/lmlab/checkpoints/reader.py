"""Read a checkpoint, a Lightning ``.ckpt`` file or an FSDP or DeepSpeed checkpoint folder (``folders.py``), in
Lightning's layout: the one place the project calls ``torch.load`` on a checkpoint.

Every read is safe (``weights_only=True``: tensors and plain containers, no pickled code) and memory-mapped
on the CPU (tensors are read from the file as they are used, not copied into memory up front); a folder's
weights are gathered from its shards (``sharded.py``). Callers differ only in what an unreadable checkpoint
means: an error that explains it (``ckpt_path``), or a skip (``resume=auto`` looking for the newest good
checkpoint).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lmlab.checkpoints.folders import FSDP_META, checkpoint_layout, deepspeed_model_states, missing_parts
from lmlab.checkpoints.metadata import CHECKPOINT_KEY
from lmlab.checkpoints.sharded import fsdp_state_dict, lightning_from_deepspeed
from lmlab.errors import CheckpointError


def load_checkpoint_file(path: str | Path) -> dict[str, Any]:
    """A file's contents; raises whatever ``torch.load`` raises on a missing or damaged file."""
    return torch.load(path, map_location="cpu", weights_only=True, mmap=True)


def read_checkpoint(path: str | Path, weights: bool = True) -> dict[str, Any]:
    """A checkpoint in Lightning's layout (``state_dict``, ``global_step``, lmlab's entry, ...), or a
    CheckpointError saying why it can't be read. ``weights=False``: a folder's ``state_dict`` holds tensors on
    the meta device (names and shapes; for files, memory-mapping makes the weights cost nothing until used)."""
    path = Path(path)
    layout = checkpoint_layout(path)
    if layout is None:
        raise CheckpointError(
            f"ckpt_path={path}: no such file or folder"
            if not path.exists()
            else f"ckpt_path={path} is a folder, but not a checkpoint folder (FSDP: meta.pt and .metadata; "
            "DeepSpeed: latest). Give a .ckpt file or checkpoint folder (e.g. <run dir>/checkpoints/last.ckpt); to "
            "start from an export, use model.pretrained=<folder>."
        )
    missing = missing_parts(path)
    if missing:
        raise CheckpointError(
            f"ckpt_path={path} is an incomplete {layout} checkpoint folder ({missing}): its save was interrupted. "
            "Use an earlier checkpoint of the run (resume=auto picks the newest complete one)."
        )
    try:
        if layout == "file":
            return load_checkpoint_file(path)
        if layout == "fsdp":
            checkpoint = load_checkpoint_file(path / FSDP_META)
            checkpoint["state_dict"] = fsdp_state_dict(path, weights)
            return checkpoint
        states, partitioned = deepspeed_model_states(path)
        return lightning_from_deepspeed(load_checkpoint_file(states), path, partitioned, weights)
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - truncated zip, pickle errors, foreign formats
        raise CheckpointError(
            f"ckpt_path={path} is not a readable checkpoint (truncated, corrupt or not a torch file): "
            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        ) from None


def checkpoint_step(path: Path) -> int | None:
    """The global step of a complete, readable checkpoint, or None if it is incomplete, truncated or corrupt."""
    path = Path(path)
    try:
        layout = checkpoint_layout(path)
        if layout == "file":
            return int(load_checkpoint_file(path).get("global_step", -1))
        if layout is None or missing_parts(path):
            return None
        if layout == "fsdp":
            return int(load_checkpoint_file(path / FSDP_META).get("global_step", -1))
        return int(load_checkpoint_file(deepspeed_model_states(path)[0]).get("global_step", -1))
    except Exception:  # noqa: BLE001 - any failure means: not a usable checkpoint
        return None


def checkpoint_metadata(ckpt: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """The lmlab entry of a checkpoint (written by ``RunMetadata``), or an error if it has none."""
    meta = ckpt.get(CHECKPOINT_KEY)
    if not meta:
        raise CheckpointError(
            f"{path} was not written by lmlab (no '{CHECKPOINT_KEY}' entry); use an lmlab checkpoint"
        )
    return meta
