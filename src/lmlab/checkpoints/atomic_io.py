"""Checkpoint files written atomically, in the checkpoint's own folder.

Lightning's default writer serializes the whole checkpoint into memory, writes it to the system temp folder
and moves it into place: twice the memory, and a copy (not an atomic rename) when /tmp is another file
system. This one streams ``torch.save`` through ``lmlab.utils.io.atomic_open`` (a hidden temporary file
next to the target, fsynced, renamed over the final name), so a crash or a full disk never leaves a
truncated ``.ckpt``.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from lmlab.errors import CheckpointError
from lmlab.utils.io import atomic_open


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if "://" in str(path):  # remote storage: Lightning's fsspec writer handles it
            return super().save_checkpoint(checkpoint, path, storage_options)
        try:
            with atomic_open(path, "wb") as f:
                torch.save(checkpoint, f)
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise CheckpointError(
                    f"no space left on the device while writing the checkpoint {path}; the previous checkpoints are "
                    "intact. Free space, or keep fewer checkpoints (callbacks.model_checkpoint.save_top_k, "
                    "callbacks.periodic_checkpoint.save_top_k), then resume with resume=auto."
                ) from None
            raise
