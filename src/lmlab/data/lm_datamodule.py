"""LightningDataModule for language-model pretraining: packed blocks of token ids from the token cache."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset
from torchdata.stateful_dataloader import StatefulDataLoader
from transformers import PreTrainedTokenizerBase

from lmlab.data.loaders import train_loader
from lmlab.data.sources import TextSource
from lmlab.data.token_cache import build_token_cache, load_tokens
from lmlab.data.tokenizer import TokenizerSpec
from lmlab.errors import ConfigError, DataError

log = logging.getLogger(__name__)

STAGES = ("train", "validation", "test")


class PackedBlocks(Dataset):
    """Non-overlapping blocks of ``block_size`` tokens cut from a flat token array (the remainder is dropped).

    The memory map is opened lazily in each process, so DataLoader workers do not copy the corpus.
    """

    def __init__(self, folder: str | Path, block_size: int) -> None:
        self.folder, self.block_size = Path(folder), block_size
        self._tokens: np.memmap | None = None
        self.n_tokens = len(self.tokens)
        self.n_blocks = self.n_tokens // block_size

    @property
    def tokens(self) -> np.memmap:
        if self._tokens is None:
            self._tokens = load_tokens(self.folder)
        return self._tokens

    def __len__(self) -> int:
        return self.n_blocks

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        start = i * self.block_size
        block = self.tokens[start : start + self.block_size].astype(np.int64)
        return {"input_ids": torch.from_numpy(block)}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_tokens": None}


class LMDataModule(LightningDataModule):
    """Text source + tokenizer -> cached token arrays -> packed blocks.

    Args:
        source: where the text comes from (``lmlab.data.sources.text``).
        tokenizer: how to get the tokenizer (pretrained, or trained on the training split).
        splits: which source split feeds each stage; ``null`` skips a stage (e.g. ``test: null``).
        block_size: tokens per training sequence.
        batch_size: sequences per device per step; ``eval_batch_size`` for validation and test.
        num_proc: processes for the one-time tokenization (the Rust tokenizer is multi-threaded already).
        seed: the seed of the training order (epoch e uses seed + e; see ``lmlab.data.loaders``).
    """

    def __init__(
        self,
        source: TextSource,
        tokenizer: TokenizerSpec,
        cache_dir: str,
        block_size: int = 128,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        num_proc: int = 1,
        pin_memory: bool = True,
        splits: dict[str, str | None] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        splits = dict(splits or {"train": "train", "validation": "valid", "test": "test"})
        unknown = set(splits) - set(STAGES)
        if unknown:
            raise ConfigError(f"data.splits has unknown keys {sorted(unknown)}; use {STAGES}")
        if block_size < 2:
            raise ConfigError(f"data.block_size={block_size} must be at least 2")
        if batch_size < 1:
            raise ConfigError(f"data.batch_size={batch_size} must be at least 1")
        self.source, self.tokenizer_spec, self.cache_dir = source, tokenizer, cache_dir
        self.block_size, self.batch_size = block_size, batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers, self.num_proc, self.pin_memory = num_workers, num_proc, pin_memory
        self.seed = seed
        self.splits = {stage: split for stage, split in splits.items() if split}
        self.tokenizer: PreTrainedTokenizerBase | None = None
        self.cache_folders: dict[str, Path] = {}
        self.datasets: dict[str, PackedBlocks] = {}

    # What the model must accept: checked against its maximum positions before any data preparation.
    length_field = "data.block_size"

    @property
    def sequence_length(self) -> int:
        return self.block_size

    def has_stage(self, stage: str) -> bool:
        return {"validate": "validation"}.get(stage, stage) in self.splits

    def check(self, need_train: bool = True) -> None:
        """Find every configured split (local files or hub) before any expensive work."""
        if need_train and "train" not in self.splits:
            raise ConfigError("data.splits.train is not set: name the source split to train on")
        self.source.check(list(self.splits.values()))
        shared = [s for s in set(self.splits.values()) if list(self.splits.values()).count(s) > 1]
        for split in shared:
            stages = [stage for stage, s in self.splits.items() if s == split]
            log.warning("Stages %s all read the %r split; their metrics are not independent", stages, split)

    def prepare_tokenizer(self) -> PreTrainedTokenizerBase:
        if self.tokenizer is None:
            self.tokenizer = self.tokenizer_spec.load(self.source, self.splits.get("train"), self.cache_dir)
        return self.tokenizer

    def prepare_data(self) -> None:
        """Tokenize and cache every split (once per machine: later calls and other processes reuse it)."""
        tokenizer = self.prepare_tokenizer()
        for stage, split in self.splits.items():
            if stage not in self.cache_folders:
                self.cache_folders[stage] = build_token_cache(
                    self.source, split, tokenizer, self.cache_dir, self.num_proc
                )

    def setup(self, stage: str | None = None) -> None:
        self.prepare_data()  # a no-op when cached; needed on ranks whose prepare_data Lightning skipped
        for name, folder in self.cache_folders.items():
            if name in self.datasets:
                continue
            blocks = PackedBlocks(folder, self.block_size)
            if len(blocks) == 0:
                raise DataError(
                    f"the {name} split ({self.source.describe(self.splits[name])}) has {blocks.n_tokens} tokens, "
                    f"fewer than one block of data.block_size={self.block_size}; give more text or a smaller block"
                )
            self.datasets[name] = blocks
            log.info("%s: %d tokens -> %d blocks of %d", name, blocks.n_tokens, len(blocks), self.block_size)

    def tokens(self, stage: str) -> np.memmap:
        """The whole split as one flat token array (for sliding-window perplexity)."""
        self.setup()
        return self.datasets[stage].tokens

    def train_dataloader(self) -> StatefulDataLoader:
        return train_loader(
            self.datasets["train"], self.batch_size, self.seed, self.trainer, num_workers=self.num_workers
        )

    def _eval_loader(self, stage: str) -> DataLoader:
        if stage not in self.datasets:
            raise ConfigError(f"no {stage} split is configured: set data.splits.{stage}")
        return DataLoader(
            self.datasets[stage],
            batch_size=self.eval_batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
        )

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("validation")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")
