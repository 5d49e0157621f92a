"""Read a Lightning ``.ckpt`` file: the one place the project calls ``torch.load`` on a checkpoint.

Every read is safe (``weights_only=True``: tensors and plain containers, no pickled code) and memory-mapped
on the CPU (tensors are read from the file as they are used, not copied into memory up front). Callers
differ only in what an unreadable file means: an error that explains it (``ckpt_path``), or a skip
(``resume=auto`` looking for the newest good checkpoint).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lmlab.checkpoints.metadata import CHECKPOINT_KEY
from lmlab.errors import CheckpointError


def load_checkpoint_file(path: str | Path) -> dict[str, Any]:
    """The checkpoint's contents; raises whatever ``torch.load`` raises on a missing or damaged file."""
    return torch.load(path, map_location="cpu", weights_only=True, mmap=True)


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
        return load_checkpoint_file(path)
    except Exception as e:  # noqa: BLE001 - truncated zip, pickle errors, foreign formats
        raise CheckpointError(
            f"ckpt_path={path} is not a readable checkpoint (truncated, corrupt or not a torch file): "
            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        ) from None


def checkpoint_step(path: Path) -> int | None:
    """The global step of a readable checkpoint, or None if it is truncated or corrupt."""
    try:
        return int(load_checkpoint_file(path).get("global_step", -1))
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
