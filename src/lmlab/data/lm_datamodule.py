"""LightningDataModule for language-model pretraining: packed blocks of token ids from the token cache."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from lmlab.data.base import BaseDataModule, BlockLength
from lmlab.data.sources import TextSource
from lmlab.data.token_cache import build_token_cache, load_tokens
from lmlab.data.tokenizer import TokenizerSpec
from lmlab.errors import ConfigError, DataError

log = logging.getLogger(__name__)


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


class LMDataModule(BlockLength, BaseDataModule):
    """Text source + tokenizer -> cached token arrays -> packed blocks of exactly ``block_size`` tokens.

    Args (beyond ``BaseDataModule``'s):
        block_size: tokens per training sequence.
        num_proc: processes for the one-time tokenization (the Rust tokenizer is multi-threaded already).
    """

    KIND = "language-model data (a text corpus, e.g. data=wikitext2 or data=text_files)"

    def __init__(
        self,
        source: TextSource,
        tokenizer: TokenizerSpec,
        cache_dir: str,
        block_size: int = 128,
        num_proc: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(source, tokenizer, cache_dir, **kwargs)
        if block_size < 2:
            raise ConfigError(f"data.block_size={block_size} must be at least 2")
        self.block_size, self.num_proc = block_size, num_proc
        self.cache_folders: dict[str, Path] = {}
        self.datasets: dict[str, PackedBlocks] = {}

    def check(self, need_train: bool = True) -> None:
        super().check(need_train)
        if not need_train:  # evaluation selects the splits it reads on purpose
            return
        read = set(self.splits.values())
        for split in sorted(self.source.named_splits() - read):
            stage = split if split in ("validation", "test") else "test"
            log.warning(
                "data.source.files.%s is set, but no stage reads the %r split, so it is not used. To use it: "
                "data.splits.%s=%s; otherwise remove the entry", split, split, stage, split,
            )  # fmt: skip

    def prepare_data(self) -> None:
        """Tokenize and cache every split (once per machine: later calls and other processes reuse it)."""
        tokenizer = self.prepare_tokenizer()
        for stage, split in self.splits.items():
            if stage not in self.cache_folders:
                self.cache_folders[stage] = build_token_cache(
                    self.source, split, tokenizer, self.cache_dir, self.num_proc
                )

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
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
        """The whole split as one flat token array (sliding-window perplexity, continuations): any context
        length can be cut from it, whatever ``block_size`` is."""
        self.check_stage(stage)
        self.prepare_data()
        return load_tokens(self.cache_folders[stage])

    def blocks(self, stage: str, length: int) -> PackedBlocks:
        """The split cut into non-overlapping blocks of ``length`` tokens (evaluation at another length)."""
        self.check_stage(stage)
        self.prepare_data()
        blocks = PackedBlocks(self.cache_folders[stage], length)
        if len(blocks) == 0:
            raise DataError(
                f"the {stage} split ({self.source.describe(self.splits[stage])}) has {blocks.n_tokens} tokens, "
                f"fewer than one block of {length}"
            )
        return blocks

    def train_dataset(self) -> PackedBlocks:
        return self.datasets["train"]

    def eval_datasets(self, stage: str) -> list[PackedBlocks]:
        return [self.datasets[stage]]
