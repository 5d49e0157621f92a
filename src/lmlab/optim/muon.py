"""Muon for the hidden weight matrices, AdamW for everything else, as one optimizer (``optimizer=muon``).

Muon (``torch.optim.Muon``) orthogonalizes the momentum of each 2-D weight matrix with Newton-Schulz
iterations: meant for the matrices inside the transformer blocks. Embeddings and output heads (a lookup
table, a classifier) and the 1-D norms and biases are trained with AdamW, as in the Muon recipes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import torch
from lightning.pytorch.strategies import DeepSpeedStrategy, FSDPStrategy, ModelParallelStrategy, Strategy
from omegaconf import DictConfig, OmegaConf
from torch import nn
from transformers import PreTrainedModel

from lmlab.errors import ConfigError
from lmlab.optim.combined import CombinedOptimizer
from lmlab.optim.param_groups import fused_on_cpu

log = logging.getLogger(__name__)

# Strategies that shard or flatten parameters: Muon would orthogonalize pieces of matrices
_SHARDING_STRATEGIES = (FSDPStrategy, DeepSpeedStrategy, ModelParallelStrategy)


def hidden_matrices(module: nn.Module, exclude: Sequence[str] = ()) -> dict[str, nn.Parameter]:
    """The trainable 2-D weights inside the models' bodies (``base_model``), by name: not the weights of
    embedding tables, nor an output layer, nor any head outside the body, nor names matching an ``exclude``
    regular expression."""
    outside: set[int] = set()
    for sub in module.modules():
        if isinstance(sub, nn.Embedding):
            outside.add(id(sub.weight))
        if isinstance(sub, PreTrainedModel):
            output = sub.get_output_embeddings()
            outside.update(id(p) for p in (output.parameters() if output is not None else ()))
            body = sub.base_model
            if body is not sub:
                inside = {id(p) for p in body.parameters()}
                outside.update(id(p) for p in sub.parameters() if id(p) not in inside)
    patterns = [re.compile(pattern) for pattern in exclude]
    return {
        name: p
        for name, p in module.named_parameters()
        if p.requires_grad
        and p.ndim == 2
        and id(p) not in outside
        and not any(pattern.search(name) for pattern in patterns)
    }


class MuonAdamW(CombinedOptimizer):
    """``torch.optim.Muon`` on ``hidden_matrices(module)``, ``torch.optim.AdamW`` on the other parameters
    (weight decay on its >= 2-D ones only): one optimizer with the groups ``muon``, ``adamw_decay`` and
    ``adamw_no_decay``, each with its own learning rate and weight decay.

    Args:
        module: what is trained (the task module: the model and any extra head).
        muon: ``torch.optim.Muon`` arguments (``lr``, ``weight_decay``, ``momentum``, ``adjust_lr_fn``, ...).
        adamw: ``torch.optim.AdamW`` arguments; ``fused: null`` lets ``fused_on_cpu`` decide.
        muon_exclude: regular expressions of parameter names kept out of Muon (trained by AdamW).
        precision: the trainer's precision (for the fused AdamW kernel), None without a trainer.
        strategy: the trainer's strategy, None without a trainer.
    """

    def __init__(
        self,
        module: nn.Module,
        muon: Mapping[str, Any],
        adamw: Mapping[str, Any],
        muon_exclude: Sequence[str] = (),
        precision: str | None = None,
        strategy: Strategy | None = None,
    ) -> None:
        if isinstance(strategy, _SHARDING_STRATEGIES):
            raise ConfigError(
                f"optimizer=muon orthogonalizes whole weight matrices, and the {type(strategy).__name__} gives the "
                "optimizer shards or flattened pieces of them. Use trainer=ddp (or one device), or "
                "optimizer=adamw"
            )
        muon, adamw = _plain(muon), _plain(adamw)
        exclude = list(_plain(muon_exclude) or [])
        matrices = hidden_matrices(module, exclude)
        if not matrices:
            every = len(hidden_matrices(module))
            cause = (
                f"optimizer.muon_exclude={exclude} excludes all {every} of them"
                if every
                else "the model has none (are its parameters frozen or flattened?)"
            )
            raise ConfigError(
                f"optimizer=muon: no 2-D hidden weight matrix is left for Muon to train: {cause}. Narrow "
                "optimizer.muon_exclude, or use optimizer=adamw"
            )
        chosen = {id(p) for p in matrices.values()}
        rest = [p for p in module.parameters() if p.requires_grad and id(p) not in chosen]
        weight_decay = adamw.pop("weight_decay", 0.0)
        groups = [
            {"params": [p for p in rest if p.ndim >= 2], "weight_decay": weight_decay, "name": "adamw_decay"},
            {"params": [p for p in rest if p.ndim < 2], "weight_decay": 0.0, "name": "adamw_no_decay"},
        ]
        groups = [g for g in groups if g["params"]]
        fused = fused_on_cpu(partial(torch.optim.AdamW, **adamw), groups, precision)
        adamw = {k: v for k, v in adamw.items() if not (k == "fused" and v is None)}
        optimizers = [torch.optim.Muon([{"params": list(matrices.values()), "name": "muon"}], **muon)]
        if groups:
            optimizers.append(torch.optim.AdamW(groups, **{**adamw, **fused}))
        log.info(
            "Muon trains %d hidden matrices (%.2fM parameters); AdamW the other %d tensors",
            len(matrices), sum(p.numel() for p in matrices.values()) / 1e6, len(rest),
        )  # fmt: skip
        super().__init__(optimizers)


def _plain(value: Any) -> Any:
    """Config containers as plain Python ones (what torch stores in its param groups and checkpoints)."""
    if isinstance(value, DictConfig) or OmegaConf.is_list(value):
        return OmegaConf.to_container(value, resolve=True)
    return dict(value) if isinstance(value, Mapping) else value
