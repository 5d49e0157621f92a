"""LightningDataModule for pretraining from token shards (``prepare_data.py``), streamed with litdata.

Training reads packed blocks of ``block_size`` tokens through litdata's ``StreamingDataset`` and
``StreamingDataLoader``: shuffled by chunk and within each chunk (seed + epoch), every rank and loader worker
reading its own chunks, so each block is read once per epoch across ranks; remote chunks are downloaded
ahead of use into the cache. The loader's position is saved in checkpoints (``state_dict``), so a resumed run
continues with the very batch that came next. Validation and test read the blocks of their splits in order.

A block never spans two chunks (litdata's ``TokensLoader``): the tail of each chunk shorter than a block is
not read, a negligible share when chunks are much longer than blocks. The order depends on the number of
ranks and loader workers (litdata hands chunks to each). The tokenizer is the one saved with the shards; a run
configured with another one is refused.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import signal
import sys
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from lmlab.data.base import STAGES, BaseDataModule, BlockLength
from lmlab.data.loaders import world
from lmlab.data.sources.shards import ShardSource
from lmlab.data.tokenizer import TokenizerSpec, TrainedTokenizer
from lmlab.errors import ConfigError, DataError, config_stage

try:
    from litdata import StreamingDataLoader, StreamingDataset, TokensLoader
    from litdata.utilities.env import _DistributedEnv
except ModuleNotFoundError as e:  # installed apart from the project (README, Set-up)
    raise ConfigError(
        f'data=streaming needs litdata ({e}): pip install --no-deps "litdata>=0.2.76" (see the README, Set-up)'
    ) from None

log = logging.getLogger(__name__)

WASTE_WARNING = 0.05  # warn when blocks leave more than this share of a split's tokens unread


def end_with_parent(parent: int, worker_id: int) -> None:
    """Loader workers end with the training process, also when it is killed (``kill -9``).

    torch's workers notice a dead parent only if it was alive when their setup ended; litdata's setup takes
    long enough for a process killed right after starting them to leave them waiting forever (holding its
    output pipes and memory).
    """
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before the line above
        os._exit(0)


def collate_blocks(blocks: list[np.ndarray]) -> dict[str, torch.Tensor]:
    return {"input_ids": torch.from_numpy(np.stack(blocks).astype(np.int64))}


class ShardBlocks(Dataset):
    """The blocks of one split's shards, in order, as a map-style dataset (evaluation: Lightning gives each
    rank its share, and a prefix can be taken). litdata is opened lazily in each process."""

    def __init__(self, source: ShardSource, split: str, block_size: int, cache_dir: str | None) -> None:
        self.source, self.split, self.block_size, self.cache_dir = source, split, block_size, cache_dir
        self.n_blocks = sum(dim // block_size for dim in source.split(split)["chunks"])
        self._dataset: Any = None

    def __len__(self) -> int:
        return self.n_blocks

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if self._dataset is None:
            self._dataset = open_blocks(
                self.source, self.split, self.block_size, self.cache_dir, shuffle=False
            )
        return {"input_ids": torch.from_numpy(np.asarray(self._dataset[int(i)]).astype(np.int64))}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_dataset": None}


def open_blocks(
    source: ShardSource, split: str, block_size: int, cache_dir: str | None, shuffle: bool, seed: int = 0
) -> Any:
    """litdata's ``StreamingDataset`` of a split, cut into blocks of ``block_size`` tokens."""
    return StreamingDataset(
        source.dataset_dir(split),
        cache_dir=cache_dir,
        item_loader=TokensLoader(block_size=block_size),
        shuffle=shuffle,
        drop_last=shuffle,
        seed=seed,
        item_shuffle_window="full",  # blocks are memory-mapped: a full permutation within a chunk is free
        storage_options=source.location.storage_options or None,
    )


class StreamingDataModule(BlockLength, BaseDataModule):
    """Token shards -> blocks of exactly ``block_size`` tokens, streamed by litdata.

    Args (beyond ``BaseDataModule``'s):
        source: the shards (``ShardSource``).
        block_size: tokens per sequence.
        max_cache_size: for remote shards, the disk the downloaded chunks may use ("100GB"; None: litdata's
            default).
        splits: the shard split each stage reads; None: every split the shards hold.
    """

    KIND = "token shards (data=streaming)"
    DEFAULT_SPLITS = {"train": "train", "validation": "validation", "test": "test"}

    def __init__(
        self,
        source: ShardSource,
        tokenizer: TokenizerSpec,
        cache_dir: str,
        block_size: int = 128,
        max_cache_size: str | None = None,
        splits: dict[str, str | None] | None = None,
        **kwargs: Any,
    ) -> None:
        if splits is None:  # reading the manifest is cheap; a location without shards fails here, first
            splits = {stage: stage for stage in source.split_names() if stage in STAGES}
        super().__init__(source, tokenizer, cache_dir, splits=splits, **kwargs)
        if block_size < 2:
            raise ConfigError(f"data.block_size={block_size} must be at least 2")
        self.block_size, self.max_cache_size = block_size, max_cache_size
        self.source: ShardSource = source
        logging.getLogger("litdata").setLevel(logging.WARNING)  # its notices on every dataset it opens
        self.datasets: dict[str, ShardBlocks] = {}

    def check(self, need_train: bool = True) -> None:
        super().check(need_train)
        self.source.check_tokenizer_spec(self.tokenizer_spec)
        for stage, split in self.splits.items():
            chunks = self.source.split(split)["chunks"]
            blocks = sum(dim // self.block_size for dim in chunks)
            if blocks == 0:
                raise ConfigError(
                    f"data.block_size={self.block_size} is larger than every chunk of the {split!r} shards "
                    f"(the largest holds {max(chunks)} tokens), and a block cannot span two chunks. Fix: "
                    f"data.block_size={max(chunks)} or less, or prepare the shards with larger chunks "
                    f"(prepare_data.py chunk_tokens=...)"
                )
            unread = 1 - blocks * self.block_size / sum(chunks)
            if unread > WASTE_WARNING:
                log.warning(
                    "data.block_size=%d leaves %.1f%% of the %s tokens unread (a block cannot span two chunks; "
                    "chunks hold up to %d tokens): prepare the shards with larger chunks to use them",
                    self.block_size, 100 * unread, stage, max(chunks),
                )  # fmt: skip

    def prepare_tokenizer(self) -> PreTrainedTokenizerBase:
        """The tokenizer saved with the shards; one the config asks for otherwise is refused."""
        if self.tokenizer is None:
            spec = self.tokenizer_spec
            if isinstance(spec, TrainedTokenizer):  # trained at preparation (settings checked in check())
                tokenizer = self._shards_tokenizer()
            else:
                tokenizer = spec.load(self.source, None, self.cache_dir)  # type: ignore[arg-type]
            self.source.check_tokenizer(tokenizer, spec)
            self.tokenizer = self.adapt_tokenizer(tokenizer)
        return self.tokenizer

    def _shards_tokenizer(self) -> PreTrainedTokenizerBase:
        folder = self.source.tokenizer_dir(self.cache_dir)
        try:
            return AutoTokenizer.from_pretrained(str(folder))
        except Exception as e:  # noqa: BLE001 - whatever damaged files make the tokenizer library raise
            raise DataError(
                f"the tokenizer saved with the shards ({folder}) cannot be read ({type(e).__name__}: "
                f"{str(e).strip()[:200]}). Fix: prepare the shards again"
            ) from None

    def prepare_data(self) -> None:
        """Nothing to prepare: ``prepare_data.py`` made the shards."""

    def setup(self, stage: str | None = None) -> None:
        for name, split in self.splits.items():
            if name != "train" and name not in self.datasets:
                self.datasets[name] = ShardBlocks(
                    self.source, split, self.block_size, self._chunk_cache(split)
                )

    def _chunk_cache(self, split: str) -> str | None:
        return self.source.chunk_cache(split, self.cache_dir)

    def train_dataset(self) -> StreamingDataset:
        dataset = open_blocks(
            self.source, self.splits["train"], self.block_size, self._chunk_cache("train"), True, self.seed
        )
        if self.max_cache_size is not None:
            dataset.max_cache_size = self.max_cache_size
        # litdata reads the process group itself; the Trainer says it in every launch (also before the group
        # exists, and under torchrun/srun)
        replicas, rank = world(self.trainer)
        nodes = getattr(self.trainer, "num_nodes", 1) if self.trainer is not None else 1
        dataset.distributed_env = _DistributedEnv(replicas, rank, max(1, min(nodes, replicas)))
        return dataset

    def eval_datasets(self, stage: str) -> list[ShardBlocks]:
        return [self.datasets[stage]]

    def train_dataloader(self) -> ShardLoader:
        with config_stage("data loader", "data"):
            return ShardLoader(
                self.train_dataset(),
                self.trainer,
                batch_size=self.batch_size,
                num_workers=self.num_workers,
                collate_fn=collate_blocks,
                worker_init_fn=functools.partial(end_with_parent, os.getpid()),
                pin_memory=self.pin_memory and torch.cuda.is_available(),
            )


class ShardLoader(StreamingDataLoader):
    """litdata's ``StreamingDataLoader``, counting epochs by the ones that delivered batches, and using a
    position loaded from a checkpoint for the next iteration only.

    litdata counts an epoch each time the loader is iterated, and replays a loaded position until an
    iteration runs to its end. Lightning iterates the loader without reading it (to check it, and again to put
    a resumed run in place) and stops each epoch after ``len(loader)`` batches, never at the end; both would
    change the order a resumed run reads. Here the epoch of a new iteration is one more than the last one that
    delivered a batch (or whose position was loaded); the first iteration counts the epochs the Trainer
    finished before (a run resumed after an epoch's last batch, whose position Lightning does not load).
    """

    def __init__(self, dataset: StreamingDataset, trainer: Any | None, **kwargs: Any) -> None:
        super().__init__(dataset, **kwargs)
        self._trainer = trainer
        self._position_loaded = False
        self._last_epoch: int | None = None  # in litdata's count, which starts at 1

    def load_state_dict(self, obj: dict[str, Any]) -> None:
        super().load_state_dict(obj)
        self._position_loaded = True
        self._last_epoch = int(obj["current_epoch"])

    def __iter__(self) -> Any:
        if self._last_epoch is None:
            self._last_epoch = self._trainer.current_epoch if self._trainer is not None else 0
        if not self._position_loaded:
            self.restore = False
            self.current_epoch = self._last_epoch  # litdata adds 1 as the iteration starts
        self._position_loaded = False
        return self._counted(super().__iter__())

    def _counted(self, batches: Any) -> Any:
        for batch in batches:
            self._last_epoch = self.current_epoch
            yield batch
