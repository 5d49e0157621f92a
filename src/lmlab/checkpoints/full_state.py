"""Full (unsharded) weights for the export and for loading the best checkpoint, whatever the strategy.

DDP and single-device runs hold full weights on every rank. FSDP shards them: every rank must take part in
gathering the full state dict (offloaded to CPU, materialized on rank 0 only). DeepSpeed ZeRO-3 partitions
parameters: they are gathered with ``deepspeed.zero.GatheredParameters``.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.strategies import DeepSpeedStrategy, FSDPStrategy, ModelParallelStrategy

from lmlab.checkpoints.reader import read_checkpoint


def is_sharded(trainer: Trainer) -> bool:
    return isinstance(trainer.strategy, (FSDPStrategy, DeepSpeedStrategy, ModelParallelStrategy))


def full_model_state_dict(trainer: Trainer, module: LightningModule) -> dict[str, Any] | None:
    """The model's full state dict on rank 0 (None on other ranks); call on every rank."""
    strategy = trainer.strategy
    if isinstance(strategy, FSDPStrategy):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        # offloading to the CPU (where rank 0 alone keeps the result) crashes FSDP when the shards already are
        # on the CPU (trainer=fsdp_cpu): there every rank gathers the full state instead
        offload = strategy.root_device.type != "cpu"
        state = get_model_state_dict(
            strategy.model, options=StateDictOptions(full_state_dict=True, cpu_offload=offload)
        )
        prefix = "model."
        return (
            {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            if trainer.is_global_zero
            else None
        )
    if isinstance(strategy, DeepSpeedStrategy) and strategy.zero_stage_3:
        import deepspeed

        params = list(module.model.parameters())
        with deepspeed.zero.GatheredParameters(params, modifier_rank=None):
            if trainer.is_global_zero:
                return {k: v.detach().cpu().clone() for k, v in module.model.state_dict().items()}
        return None
    return module.model.state_dict() if trainer.is_global_zero else None


def load_best_weights(trainer: Trainer, module: LightningModule, path: str, datamodule: Any) -> None:
    """Put the best checkpoint's weights into the module: through the strategy (a validation pass) when the
    model is sharded, else read directly (a file, or a checkpoint folder's consolidated weights)."""
    if is_sharded(trainer):
        trainer.validate(module, datamodule=datamodule, ckpt_path=path, verbose=False)
        return
    module.load_state_dict(module.complete_state_dict(read_checkpoint(path)["state_dict"]))
