"""The child side of bench/gpu_check.py: the synthetic GPT-2-sized data and the segment clock, loaded by the
``train.py`` children it starts (``data._target_=gpu_check_parts.SyntheticTokens``,
``+callbacks.clock._target_=gpu_check_parts.SegmentClock``)."""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback
from torch.utils.data import Dataset
from transformers import PreTrainedTokenizerFast

from lmlab.data.base import BaseDataModule, BlockLength

GPT2_VOCAB = 50257


def gpt2_sized_tokenizer(vocab_size: int) -> PreTrainedTokenizerFast:
    """A word-level tokenizer with ``vocab_size`` tokens, ``<|endoftext|>`` last as in GPT-2 (ids only)."""
    from tokenizers import Tokenizer, models

    vocab = {f"<{i}>": i for i in range(vocab_size - 1)} | {"<|endoftext|>": vocab_size - 1}
    end = "<|endoftext|>"
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=end))
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=end, eos_token=end, unk_token=end)


class RandomBlocks(Dataset):
    """Blocks of uniformly random token ids, made on demand (seeded by index): no memory, no preparation."""

    def __init__(self, n_blocks: int, block_size: int, vocab_size: int, seed: int) -> None:
        self.n_blocks, self.block_size, self.vocab_size, self.seed = n_blocks, block_size, vocab_size, seed

    def __len__(self) -> int:
        return self.n_blocks

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        return {"input_ids": torch.randint(0, self.vocab_size, (self.block_size,), generator=g)}


class SyntheticTokens(BlockLength, BaseDataModule):
    """Random token ids under a GPT-2-sized vocabulary, as ``data._target_=gpu_check.SyntheticTokens``."""

    KIND = "random token ids"

    def __init__(self, source: Any = None, tokenizer: Any = None, cache_dir: str = "", block_size: int = 1024,
                 vocab_size: int = GPT2_VOCAB, n_blocks: int = 1 << 20, num_proc: int = 1, **kwargs: Any) -> None:  # fmt: skip
        super().__init__(source, tokenizer, cache_dir, **kwargs)
        self.block_size, self.vocab_size, self.n_blocks = block_size, vocab_size, n_blocks

    def check(self, need_train: bool = True) -> None:
        """Nothing to find on disk."""

    def describe_data(self) -> dict[str, str]:
        return {"train": f"random token ids, vocabulary {self.vocab_size}"}

    def prepare_tokenizer(self) -> PreTrainedTokenizerFast:
        if self.tokenizer is None:
            self.tokenizer = gpt2_sized_tokenizer(self.vocab_size)
        return self.tokenizer

    def prepare_data(self) -> None:
        self.prepare_tokenizer()

    def train_dataset(self) -> RandomBlocks:
        return RandomBlocks(self.n_blocks, self.block_size, self.vocab_size, self.seed)

    def eval_datasets(self, stage: str) -> list[RandomBlocks]:
        return [RandomBlocks(64, self.block_size, self.vocab_size, self.seed + 1)]


class SegmentClock(Callback):
    """Times segments of steps after warm-up between device syncs, alternating the per-step non-finite-loss
    check on (``stop``) and off; writes ``<out_dir>/rank<N>.json`` on every rank at the end of training."""

    def __init__(self, out_dir: str, warmup_steps: int, segment_steps: int, segments: int,
                 expected_params: int, peak_tflops: float | str | None = "auto") -> None:  # fmt: skip
        self.out_dir, self.warmup, self.every = Path(out_dir), warmup_steps, segment_steps
        self.end = warmup_steps + 2 * segments * segment_steps
        self.expected_params, self.peak_tflops = expected_params, peak_tflops
        self.record: dict[str, Any] = {"segments": []}
        self._open: dict[str, Any] | None = None

    def _sync_clock(self, pl_module) -> float:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    def setup(self, trainer, pl_module, stage: str) -> None:
        """Before the strategy wraps or shards the model: its parameter count and model FLOPs per token."""
        from lmlab.models import count_parameters
        from lmlab.scale.flops import device_peak_tflops, training_flops_per_token

        params = count_parameters(pl_module.model)["params/total"]
        if params != self.expected_params:
            raise AssertionError(f"the model has {params:,} parameters, expected {self.expected_params:,}")
        length = trainer.datamodule.sequence_length
        peak = device_peak_tflops() if self.peak_tflops == "auto" else self.peak_tflops
        self.record.update(params=params, flops_per_token=training_flops_per_token(pl_module.model, length),
                           peak_tflops=peak, sequence_length=length)  # fmt: skip

    def on_train_start(self, trainer, pl_module) -> None:
        device = pl_module.device
        self.record.update(rank=trainer.global_rank, world_size=trainer.world_size, device=str(device),
                           device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu")  # fmt: skip
        self._start = self._sync_clock(pl_module)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        step = trainer.global_step
        if step >= self.warmup and step < self.end and (step - self.warmup) % self.every == 0:
            now = self._sync_clock(pl_module)
            self.record.setdefault("warmup_s", now - self._start)
            mode = "stop" if (step - self.warmup) // self.every % 2 == 0 else "off"
            pl_module.on_nonfinite_loss = mode  # read by TaskModule.checked_loss on every step
            if pl_module.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(pl_module.device)
            self._open = {"mode": mode, "first_step": step, "steps": 0, "tokens": 0, "start": now}
        if self._open is not None:
            self._open["tokens"] += batch["input_ids"].numel() * trainer.world_size
            self._open["steps"] += 1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        step = trainer.global_step  # after this optimizer step
        if step == 1:
            self.record["first_step_s"] = self._sync_clock(pl_module) - self._start
        if self._open is not None and (step - self.warmup) % self.every == 0:
            segment, self._open = self._open, None
            segment["seconds"] = self._sync_clock(pl_module) - segment.pop("start")
            segment["peak_mem_bytes"] = (
                torch.cuda.max_memory_allocated(pl_module.device) if pl_module.device.type == "cuda"
                else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            )  # fmt: skip
            self.record["segments"].append(segment)

    def on_train_end(self, trainer, pl_module) -> None:
        self.record["peak_mem_source"] = (
            "torch.cuda.max_memory_allocated" if pl_module.device.type == "cuda" else "peak RSS (CPU)"
        )
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / f"rank{trainer.global_rank}.json").write_text(json.dumps(self.record, indent=1))


# ------------------------------------------------------------------------------ the parent: plan, run, report
