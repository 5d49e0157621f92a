"""Checkpoint folders: what FSDP and DeepSpeed write where other strategies write one ``.ckpt`` file.

The folder keeps the checkpoint's name (``last.ckpt``, ``periodic-step000500.ckpt``). The layouts, as
Lightning 2.6 and DeepSpeed write them:

- FSDP with ``state_dict_type: sharded`` (Lightning's ``FSDPStrategy``): ``meta.pt``, a ``torch.save`` of the
  checkpoint without its weights and optimizer states (step, loops, callbacks, lmlab's metadata), written by
  rank 0 last; and a ``torch.distributed.checkpoint`` (DCP) of the rest: shard files ``__<rank>_0.distcp`` and
  their index ``.metadata``, with the LightningModule's weights under ``model.`` and the optimizers' states
  under ``optimizer_<i>.``.
- DeepSpeed (Lightning's ``DeepSpeedStrategy``): ``latest``, holding the tag ``checkpoint`` and written last,
  and the folder ``checkpoint/``: ``mp_rank_00_model_states.pt`` holds the LightningModule's weights in
  ``module`` and Lightning's checkpoint without weights and optimizer states at its top level;
  ``[bf16_]zero_pp_rank_<r>_mp_rank_00_optim_states.pt`` hold each rank's part of the optimizer (with the
  fp32 master weights). Under ZeRO stage 3 the weights are partitioned too: each rank writes
  ``zero_pp_rank_<r>_mp_rank_00_model_states.pt`` instead, with placeholders in ``module``.

This module recognizes them and says whether one is complete; ``sharded.py`` reads them.
"""

from __future__ import annotations

from pathlib import Path

FSDP_META = "meta.pt"  # Lightning's name (lightning.fabric.strategies.fsdp._METADATA_FILENAME)
DCP_INDEX = ".metadata"  # torch.distributed.checkpoint's index of the shards
DEEPSPEED_LATEST = "latest"
DEEPSPEED_MODEL = "mp_rank_00_model_states.pt"
DEEPSPEED_ZERO3_MODEL = "zero_pp_rank_0_mp_rank_00_model_states.pt"
DEEPSPEED_OPTIMIZER = "*_optim_states.pt"


def checkpoint_layout(path: Path) -> str | None:
    """``"file"`` (a ``.ckpt`` file), ``"fsdp"`` or ``"deepspeed"`` (a checkpoint folder, complete or not), or
    None: no such path, or a folder of neither layout (an export, say)."""
    if path.is_file():
        return "file"
    if not path.is_dir():
        return None
    if (path / FSDP_META).exists() or (path / DCP_INDEX).exists() or any(path.glob("*.distcp")):
        return "fsdp"
    if (path / DEEPSPEED_LATEST).exists() or any(path.glob("*/*_model_states.pt")):
        return "deepspeed"
    return None


def is_temporary(path: Path) -> bool:
    """A hidden sibling written by an atomic save (``.last.ckpt.tmp-*``): never a checkpoint to use."""
    return path.name.startswith(".")


def missing_parts(path: Path) -> str | None:
    """What a checkpoint folder lacks to be complete (a save that was interrupted), or None if nothing."""
    layout = checkpoint_layout(path)
    if layout == "fsdp":
        missing = [name for name in (FSDP_META, DCP_INDEX) if not (path / name).is_file()]
        return f"no {' and no '.join(missing)}" if missing else None
    if layout == "deepspeed":
        tag = deepspeed_tag(path)
        if tag is None:
            return f"no '{DEEPSPEED_LATEST}' file"
        if not (path / tag).is_dir():
            return f"'{DEEPSPEED_LATEST}' names the folder '{tag}', which does not exist"
        if deepspeed_model_states(path) is None:
            return f"no {tag}/{DEEPSPEED_MODEL} (nor {DEEPSPEED_ZERO3_MODEL})"
        if not any((path / tag).glob(DEEPSPEED_OPTIMIZER)):
            return f"no optimizer states ({tag}/{DEEPSPEED_OPTIMIZER})"
    return None


def deepspeed_tag(path: Path) -> str | None:
    """The tag (sub-folder) named in ``latest``, or None without one."""
    try:
        return (path / DEEPSPEED_LATEST).read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def deepspeed_model_states(path: Path) -> tuple[Path, bool] | None:
    """The file with the weights and Lightning's state, and whether the weights are partitioned (ZeRO-3)."""
    tag = deepspeed_tag(path)
    if tag is None:
        return None
    for name, partitioned in ((DEEPSPEED_MODEL, False), (DEEPSPEED_ZERO3_MODEL, True)):
        if (path / tag / name).is_file():
            return path / tag / name, partitioned
    return None
