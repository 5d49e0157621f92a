"""Read FSDP and DeepSpeed checkpoint folders (``folders.py``) in Lightning's layout, in one process.

FSDP: the weights are gathered from all shards with ``torch.distributed.checkpoint.load(no_dist=True)`` into
full tensors allocated from the shapes in the index (``.metadata``), so neither a process group nor the model
class is needed. The index is a pickle; it is read with an unpickler that admits only DCP's metadata classes,
as ``weights_only=True`` admits only tensors and plain containers.

DeepSpeed (ZeRO stages 1 and 2): ``module`` in the model-states file holds the full weights, in the precision
the engine trained in (16-bit under ``bf16-mixed``/``16-mixed``: the fp32 master weights are partitioned in
the optimizer states; DeepSpeed's ``zero_to_fp32.py`` consolidates those). Under ZeRO stage 3 only the shapes
can be read here; the weights need DeepSpeed's converter first.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import torch
from torch.distributed.checkpoint import FileSystemReader
from torch.distributed.checkpoint.metadata import Metadata, StorageMeta, TensorStorageMetadata

from lmlab.checkpoints.folders import DCP_INDEX
from lmlab.errors import CheckpointError

# Besides the dataclasses of torch.distributed.checkpoint.metadata and torch's dtypes, what an index holds
_DCP_CLASSES = {
    ("torch.distributed.checkpoint.filesystem", "_StorageInfo"),
    ("torch", "Size"),
    ("torch.serialization", "_get_layout"),
    ("collections", "OrderedDict"),
    *(
        (module, name)
        for module in ("pathlib", "pathlib._local")
        for name in ("Path", "PosixPath", "WindowsPath")
    ),
}
# DeepSpeed's entries of a model-states file that hold tensors: not copied into Lightning's layout
_DEEPSPEED_HEAVY = ("module", "optimizer", "frozen_param_fragments")


class _IndexUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "torch.distributed.checkpoint.metadata" or (module, name) in _DCP_CLASSES:
            return super().find_class(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a torch.distributed.checkpoint index")


class SafeFileSystemReader(FileSystemReader):
    """DCP's file reader, with the index read by an allow-list unpickler (shards: ``weights_only`` already)."""

    def read_metadata(self, *args: Any, **kwargs: Any) -> Metadata:
        with open(Path(self.path) / DCP_INDEX, "rb") as f:
            metadata = _IndexUnpickler(f).load()
        if not isinstance(metadata, Metadata):
            raise pickle.UnpicklingError(
                f"not a torch.distributed.checkpoint index: {type(metadata).__name__}"
            )
        metadata.storage_meta = metadata.storage_meta or StorageMeta()  # as FileSystemReader does
        metadata.storage_meta.load_id = self.load_id
        return metadata


def fsdp_state_dict(path: Path, weights: bool = True) -> dict[str, torch.Tensor]:
    """The LightningModule's full state dict (the ``model.`` entries), gathered from every shard; with
    ``weights=False`` tensors on the meta device: names and shapes, nothing read but the index."""
    reader = SafeFileSystemReader(path)
    entries = reader.read_metadata().state_dict_metadata
    device = "cpu" if weights else "meta"
    state = {
        key: torch.empty(entry.size, dtype=entry.properties.dtype, device=device)
        for key, entry in entries.items()
        if key.startswith("model.") and isinstance(entry, TensorStorageMetadata)
    }
    if weights and state:
        from torch.distributed.checkpoint import load

        with warnings.catch_warnings():  # "assuming the intent is to load in a single process": it is
            warnings.filterwarnings("ignore", message="torch.distributed is disabled")
            load(state, storage_reader=reader, no_dist=True)
    return {key.removeprefix("model."): value for key, value in state.items()}


def lightning_from_deepspeed(
    states: dict[str, Any], path: Path, partitioned: bool, weights: bool = True
) -> dict[str, Any]:
    """Lightning's checkpoint from a DeepSpeed model-states file: its top level, plus ``state_dict`` from
    ``module`` (names as the LightningModule's: older Lightning prefixed ``_forward_module.``)."""
    checkpoint = {k: v for k, v in states.items() if k not in _DEEPSPEED_HEAVY}
    if not partitioned:
        state = states.get("module") or {}
    elif weights:
        # .pt, not .ckpt: resume=auto must not take the weights-only file for a checkpoint to resume
        convert = f'c("{path}", "{path.with_name(f"{path.stem}-fp32.pt")}")'
        raise CheckpointError(
            f"ckpt_path={path} is a DeepSpeed ZeRO stage 3 checkpoint: its weights are partitioned over the ranks' files. "
            "Consolidate them into one file, which evaluate.py reads: python -c 'from "
            f"lightning.pytorch.utilities.deepspeed import convert_zero_checkpoint_to_fp32_state_dict as c; {convert}' "
            f"(DeepSpeed's own {path}/zero_to_fp32.py writes the weights without lmlab's metadata)"
        )
    else:  # the shapes of the partitioned parameters (a tied one under each name), and the buffers (whole)
        shapes = {k: s for group in states.get("param_shapes") or [] for k, s in group.items()}
        shapes.update(states.get("frozen_param_shapes") or {})
        shapes.update({k: shapes[v] for k, v in (states.get("shared_params") or {}).items() if v in shapes})
        state = {k: torch.empty(s, device="meta") for k, s in shapes.items()}
        module = states.get("module") or {}
        state.update({k: module[k] for k in states.get("buffer_names") or [] if k in module})
    checkpoint["state_dict"] = {_lightning_name(k): v for k, v in state.items()}
    return checkpoint


def _lightning_name(key: str) -> str:
    for prefix in ("_forward_module.", "module."):
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key
