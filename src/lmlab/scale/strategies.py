"""Lightning's FSDP and DeepSpeed strategies as lmlab's trainer configs use them (``trainer=fsdp``,
``fsdp_cpu``, ``deepspeed``).

Checkpoint folders that never look complete half-written: both strategies write a checkpoint as a folder,
every rank its part. Here every rank writes into a hidden temporary sibling (``.last.ckpt.tmp-*``); after a
barrier, rank 0 renames it into place, replacing an older folder of the same name
(``lmlab.utils.io.atomic_write_dir``). A kill during a save leaves the previous checkpoint intact and a hidden
folder that ``resume=auto`` ignores (and the next save of that name removes). The rename needs every rank to
write to one file system, as torch.distributed.checkpoint already does.

FSDP also runs on CPUs (gloo), where Lightning's own class refuses to, and clips gradients by their norm over
all shards (``trainer.gradient_clip_val``), which Lightning's FSDP precision plugin refuses to do.
"""

from __future__ import annotations

import glob
import shutil
from pathlib import Path
from typing import Any

from lightning.fabric.strategies.fsdp import _has_fsdp_modules, _setup_activation_checkpointing
from lightning.pytorch.strategies import DeepSpeedStrategy, FSDPStrategy
from torch.nn import Module

from lmlab.utils.io import atomic_write_dir


class AtomicFolderSave:
    """Mixin for a strategy that writes folders: ``save_checkpoint`` goes through a temporary folder."""

    def _writes_folder(self) -> bool:
        return True

    def save_checkpoint(self, checkpoint: dict[str, Any], filepath: Any, storage_options: Any = None) -> None:
        path = self.broadcast(str(filepath))  # rank 0's path, as the strategies themselves do
        if "://" in path or not self._writes_folder():  # remote storage or a single file: as Lightning does
            return super().save_checkpoint(checkpoint, path, storage_options)
        if self.is_global_zero:
            remove_leftovers(Path(path))
            atomic_write_dir(path, lambda tmp: self._save_all_ranks(checkpoint, tmp, storage_options))
        else:
            self._save_all_ranks(checkpoint, None, storage_options)

    def _save_all_ranks(self, checkpoint: dict[str, Any], tmp: Path | None, storage_options: Any) -> None:
        """Every rank writes its part into rank 0's temporary folder; returns when all have written."""
        folder = self.broadcast(str(tmp) if tmp is not None else None)
        super().save_checkpoint(checkpoint, folder, storage_options)
        self.barrier("lmlab.atomic_folder_save")


def remove_leftovers(path: Path) -> None:
    """Temporary folders of ``path`` left by an interrupted save (one writer per run folder: none is live)."""
    for pattern in (f".{glob.escape(path.name)}.tmp-*", f".{glob.escape(path.name)}.old-*"):
        for leftover in path.parent.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)


class AtomicFSDPStrategy(AtomicFolderSave, FSDPStrategy):
    """``FSDPStrategy`` with atomic sharded checkpoint folders (``state_dict_type: sharded``), on GPUs or CPUs."""

    def _writes_folder(self) -> bool:
        return self._state_dict_type == "sharded"

    _root: Module | None = None  # the FSDP unit wrapping the LightningModule

    def _setup_model(self, model: Module) -> Module:
        if self._root is not None and self._root.module is model:
            # validate, test or predict after fit: Lightning hands back the bare LightningModule, whose own
            # weights (embeddings, final norm) live in the shards of the root unit it wrapped: reuse that unit
            model = self._root
        elif self.root_device.type == "cpu" and not _has_fsdp_modules(model):
            model = self._wrap_on_cpu(model)
        else:
            model = super()._setup_model(model)
        self._root = model
        # Lightning's FSDP precision plugin has no reference to the root FSDP module, whose clip_grad_norm_ is
        # the one that is correct over shards, so it refuses to clip by norm
        self.precision_plugin.clip_grad_by_norm = lambda optimizer, clip_val: model.clip_grad_norm_(clip_val)
        return model

    def _wrap_on_cpu(self, model: Module) -> Module:
        """As Lightning wraps the model, but with the CPU device as FSDP's ``device_id``: Lightning passes the
        device's index, None on a CPU, and FSDP then asks for an accelerator."""
        from torch.distributed.fsdp import FullyShardedDataParallel

        model = FullyShardedDataParallel(
            module=model,
            cpu_offload=self.cpu_offload,
            mixed_precision=self.mixed_precision_config,
            sharding_strategy=self.sharding_strategy,
            device_id=self.root_device,
            **self.kwargs,
        )
        _setup_activation_checkpointing(model, self._activation_checkpointing_kwargs)
        return model


class AtomicDeepSpeedStrategy(AtomicFolderSave, DeepSpeedStrategy):
    """``DeepSpeedStrategy`` with atomic checkpoint folders."""

    def _writes_folder(self) -> bool:
        # with node-local storage every node writes its own copy: no one rank could rename them all
        return not (self.config or {}).get("checkpoint", {}).get("use_node_local_storage", False)
