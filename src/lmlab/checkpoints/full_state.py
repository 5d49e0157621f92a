"""Full (unsharded) weights for the export and for loading the best checkpoint, whatever the strategy.

DDP and single-device runs hold full weights on every rank. FSDP shards them: every rank must take part in
gathering the full state dict (offloaded to CPU, materialized on rank 0 only). DeepSpeed ZeRO-3 partitions
parameters: they are gathered with ``deepspeed.zero.GatheredParameters``.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch import LightningModule, Trainer

from lmlab.checkpoints.reader import load_checkpoint_file


def is_sharded(trainer: Trainer) -> bool:
    name = type(trainer.strategy).__name__
    return name.startswith("FSDP") or name.startswith("DeepSpeed") or name.startswith("ModelParallel")


def full_model_state_dict(trainer: Trainer, module: LightningModule) -> dict[str, Any] | None:
    """The model's full state dict on rank 0 (None on other ranks); call on every rank."""
    name = type(trainer.strategy).__name__
    if name.startswith("FSDP"):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = get_model_state_dict(
            trainer.strategy.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
        )
        prefix = "model."
        return (
            {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            if trainer.is_global_zero
            else None
        )
    if name.startswith("DeepSpeed") and getattr(trainer.strategy, "zero_stage_3", False):
        import deepspeed

        params = list(module.model.parameters())
        with deepspeed.zero.GatheredParameters(params, modifier_rank=None):
            if trainer.is_global_zero:
                return {k: v.detach().cpu().clone() for k, v in module.model.state_dict().items()}
        return None
    return module.model.state_dict() if trainer.is_global_zero else None


def load_best_weights(trainer: Trainer, module: LightningModule, path: str, datamodule: Any) -> None:
    """Put the best checkpoint's weights into the module: read directly when the checkpoint is a plain file,
    through the strategy (a validation pass) when it is sharded."""
    if is_sharded(trainer):
        trainer.validate(module, datamodule=datamodule, ckpt_path=path, verbose=False)
        return
    state = load_checkpoint_file(path)["state_dict"]
    module.load_state_dict(state)
