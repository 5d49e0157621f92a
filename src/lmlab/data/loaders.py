"""The training DataLoader every DataModule uses: sharded, seeded, resumable mid-epoch.

The order comes from ``DistributedSampler`` (a permutation seeded by ``seed + epoch``) for any number of
processes, one included, so a run on W devices with micro-batch m sees exactly the global batches of a
1-device run with batch W*m (and hence the same loss curve, up to rounding). The loader is torchdata's
``StatefulDataLoader``: Lightning saves its position in checkpoints, and a resumed run continues with the
very batch that came next.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import Dataset, DistributedSampler
from torchdata.stateful_dataloader import StatefulDataLoader


def world(trainer: Any | None) -> tuple[int, int]:
    """(number of processes, this process's rank), from the attached Trainer; (1, 0) without one."""
    if trainer is None:
        return 1, 0
    return trainer.world_size, trainer.global_rank


def train_loader(
    dataset: Dataset,
    batch_size: int,
    seed: int,
    trainer: Any | None,
    collate_fn: Callable | None = None,
    num_workers: int = 0,
    drop_last: bool = True,
) -> StatefulDataLoader:
    replicas, rank = world(trainer)
    sampler = DistributedSampler(
        dataset, num_replicas=replicas, rank=rank, shuffle=True, seed=seed, drop_last=drop_last
    )
    return StatefulDataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=drop_last,
        collate_fn=collate_fn,
        num_workers=num_workers,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=num_workers > 0,
    )
