"""Random numbers that are a function of the step, so a resumed run draws exactly what an uninterrupted one did.

Before every training micro-batch the global generators (torch on the CPU and on CUDA devices, numpy,
Python's ``random``) are seeded from ``(seed, step, batch index, rank)``: dropout, and anything else that
draws from them in a training step, depends on nothing that happened before the step. What runs between
steps (validation, with its sampled generations; creating an epoch's data iterator) cannot shift the
numbers training draws next, and draws the same numbers itself in a resumed run.

A saved generator state could not do this: between a checkpoint and the next step the uninterrupted run may
validate or start an epoch (both draw from the global generator), and whether a resumed run repeats that
depends on where in the loop the checkpoint was written. Masks and augmentations of the task modules use
their own generators, seeded the same way (``lmlab.tasks``).
"""

from __future__ import annotations

import random

import numpy as np
import torch


def derived_seed(*parts: int) -> int:
    """A well-mixed 64-bit seed from non-negative integers (``numpy.random.SeedSequence``)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0])


def seed_generators(seed: int) -> None:
    """Seed torch's CPU and CUDA generators, numpy's and Python's global ones (cheaply: ``torch.manual_seed``
    also probes every other backend, 0.2 ms a call)."""
    torch.default_generator.manual_seed(seed)
    if torch.cuda.is_initialized():
        for generator in torch.cuda.default_generators:
            generator.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
