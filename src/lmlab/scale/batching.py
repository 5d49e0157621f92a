"""Batch sizes stated once, globally: the gradient accumulation is derived from the global batch, the
per-device micro-batch and the number of devices (litgpt's rule), and must divide exactly."""

from __future__ import annotations

from lmlab.errors import ConfigError


def accumulation_steps(
    micro_batch: int,
    world_size: int,
    global_batch: int | None = None,
    global_batch_tokens: int | None = None,
    sequence_length: int | None = None,
    configured: int = 1,
) -> int:
    """Gradient accumulation steps so that one optimizer step sees ``global_batch`` sequences (or
    ``global_batch_tokens`` tokens of ``sequence_length``-token sequences).

    Without a global batch, ``configured`` (``trainer.accumulate_grad_batches``) is used as is.
    """
    if global_batch is not None and global_batch_tokens is not None:
        raise ConfigError("set data.global_batch_size or data.global_batch_tokens, not both")
    if global_batch_tokens is not None:
        if not sequence_length:
            raise ConfigError("data.global_batch_tokens needs fixed-length sequences (language-model blocks)")
        if global_batch_tokens % sequence_length:
            raise ConfigError(
                f"data.global_batch_tokens={global_batch_tokens} is not a multiple of the sequence length "
                f"{sequence_length}; use e.g. {max(1, round(global_batch_tokens / sequence_length)) * sequence_length}"
            )
        global_batch = global_batch_tokens // sequence_length
    if global_batch is None:
        return configured
    per_step = micro_batch * world_size
    if global_batch % per_step or global_batch < per_step:
        hint = max(1, round(global_batch / per_step)) * per_step
        raise ConfigError(
            f"the global batch of {global_batch} sequences is not a multiple of data.batch_size={micro_batch} "
            f"x {world_size} device(s) = {per_step}: choose a global batch of e.g. {hint}, or another micro-batch"
        )
    steps = global_batch // per_step
    if configured not in (1, steps):
        raise ConfigError(
            f"trainer.accumulate_grad_batches={configured} contradicts the global batch ({global_batch} = "
            f"{micro_batch} x {world_size} device(s) x {steps}); set only one of them"
        )
    return steps
